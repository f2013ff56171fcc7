"""`videosft study`: the miniature study end to end (stage 1 base, stage 2 sweeps, probe, verdict).

Stage 1 trains the tiny model on the synthetic *image* split only, so stage 2 starts, like the
study, from a checkpoint that already understands images. Stage 2 is one Ray Tune sweep per seed
(fixed budgets + Hybrid-Frame) plus an image-replay sweep, every trial with the same optimizer
steps, all from that base; every trial is also scored at one fixed evaluation budget. Each step is
cached on disk, so re-running continues where it stopped.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from videosft.analysis.alignment import AlignmentSettings, plot_alignment, run_alignment
from videosft.analysis.attention import AttentionSettings, attention_markdown, plot_attention, run_attention
from videosft.config import ExperimentConfig
from videosft.data.synthetic import regenerate_target_boxes
from videosft.eval.runner import EvalJob
from videosft.ray_runtime import ensure_ray
from videosft.study.base_model import study_stage1
from videosft.study.configs import (
    stage2_configs,
)
from videosft.study.presets import StudyPreset
from videosft.study.report import collect_trials, replication_section, trial_kind, write_study_report
from videosft.study.stage1_ray import stage1_ray
from videosft.study.table1 import score_predictors, table1, table1_configs
from videosft.tune.sweep import prepare_sweep, run_trial_pool, score_video_at, video_benchmarks


def stage1_base(preset: StudyPreset, out: Path) -> dict[str, Any]:
    """The study's base: trained here through Ray Train, or the preset's local-recipe base (cached)."""
    return stage1_ray(preset, out) if preset.stage1_trainer == "ray" else study_stage1(preset, out)


def _share_base_eval(first: Path, target: Path) -> None:
    """Greedy evaluation of the same base is deterministic: evaluate it once, copy it to the others."""
    src, dst = first / "base_eval", target / "base_eval"
    if src.exists() and not dst.exists():
        shutil.copytree(src, dst)


def run_stage2(
    preset: StudyPreset, out: Path, base: dict[str, Any], seeds: Sequence[int]
) -> tuple[list[tuple[str, int, ExperimentConfig]], dict[str, Path]]:
    """Every stage-2 sweep of `seeds` as one pool of trials (each also scored at the fixed
    evaluation budget while it holds its slot), then the fixed-budget scores by trial."""

    runs = stage2_configs(preset, out, base, seeds)
    first = out / "stage2" / f"seed_{preset.seeds[0]}"
    prepared = []
    # The base at the fixed evaluation budget (as score_video_at below) joins the first sweep's base pass.
    base_fixed = EvalJob(out / "stage1" / f"eval_fixed_{preset.eval_budget}", preset.eval_budget)
    for variant, seed, cfg in runs:  # one at a time: the first sweep's base scores serve the rest
        _share_base_eval(first, Path(cfg.output_dir))
        print(f"[study] stage 2: {variant} sweep, seed {seed}: {cfg.sweep.frame_budgets}", flush=True)
        also = [replace(base_fixed, benchmarks=tuple(video_benchmarks(cfg)))] if not prepared else []
        prepared.append(prepare_sweep(cfg, also_eval_base=also))
    run_trial_pool(prepared, out / "stage2" / "tune", also_eval_at=preset.eval_budget)
    data_root = base["data_root"]
    fixed = {"base": score_video_at(runs[0][2], out / "stage1", base["checkpoint"], preset.eval_budget, data_root)}
    for variant, seed, cfg in runs:
        for summary_path in sorted(Path(cfg.output_dir, "trials").glob("*/summary.json")):
            summary = json.loads(summary_path.read_text())
            key = f"{trial_kind(variant, summary)}/{summary['frame_budget']}/{seed}"
            fixed[key] = score_video_at(cfg, summary_path.parent, summary["checkpoint"], preset.eval_budget, data_root)
    return runs, fixed


def run_table1(
    preset: StudyPreset, out: Path, base: dict[str, Any], runs: list[tuple[str, int, ExperimentConfig]]
) -> tuple[list[str], dict[str, Any]]:
    """Table 1 in miniature: a Hybrid-Frame sweep per learned predictor and seed, then the table."""

    # The base's hybrid evaluation depends on the predictor, not the seed: shared per predictor.
    extra = table1_configs(preset, out, base, preset.seeds)
    first: dict[str, Path] = {}
    prepared = []
    for _variant, seed, cfg in extra:
        _share_base_eval(first.setdefault(cfg.budget.predictor, Path(cfg.output_dir)), Path(cfg.output_dir))
        print(f"[study] table 1: {cfg.budget.predictor} hybrid sweep, seed {seed}", flush=True)
        prepared.append(prepare_sweep(cfg))
    run_trial_pool(prepared, out / "stage2" / "tune")
    runs = runs + [("fixed", seed, cfg) for _, seed, cfg in extra]
    scores = score_predictors(preset, out, base)
    trials, rows = collect_trials(runs)
    lines, data = table1(trials, rows, scores, max(preset.budgets))
    return [
        "",
        "## Table 1 in miniature: budget predictors vs known minimal budgets and downstream",
        "",
        "Held-out clips scored against their known minimal budgets (candidates "
        f"{sorted(set(preset.budgets))}); Δ paired against the base as above.",
    ] + [""] + lines, data


def run_study(preset: StudyPreset, output_dir: str, replicate: bool = False) -> Path:
    """Run (or continue) the whole study; returns the path of its report.

    `replicate`: also run the preset's `replicate_seeds` (disjoint from its seeds) on the same base
    and frame cache, and report whether the two seed sets give the same verdict ("inconclusive"
    when they do not).
    """

    out = Path(output_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ensure_ray()
    base = stage1_base(preset, out)
    runs, fixed = run_stage2(preset, out, base, preset.seeds)
    sections, extra = [], {}
    if replicate:
        if not preset.replicate_seeds:
            raise ValueError(f"study --replicate: preset {preset.name!r} has no replicate_seeds")
        runs_b, fixed_b = run_stage2(preset, out, base, preset.replicate_seeds)
        sections, extra = replication_section(runs, fixed, runs_b, fixed_b, preset)
    if preset.table1_predictors:
        more, table = run_table1(preset, out, base, runs)
        sections, extra = sections + more, {**extra, "table1": table}
    alignment = _alignment(preset, base, runs[0][2], out)
    sections += attention_section(preset, out, base, runs[0])
    return write_study_report(
        preset, out, base, runs, fixed, alignment, time.perf_counter() - t0, extra_sections=sections, extra_json=extra
    )


def _alignment(preset: StudyPreset, base: dict[str, Any], cfg: ExperimentConfig, out: Path) -> dict[str, Any]:
    """The gradient-alignment probe on the base checkpoint at every training budget (cached)."""

    path = out / "alignment_base.json"
    if path.exists() and "second_moment" in (cached := json.loads(path.read_text())):
        return cached  # (a probe from before the second moment is redone)
    settings = AlignmentSettings(
        budgets=tuple(sorted(set(preset.budgets))),
        batches=preset.alignment_batches,
        batch_size=4,
        manifest="train.json",
        step_size=preset.video_lr,
    )
    result = run_alignment(
        base["checkpoint"],
        base["data_root"],
        settings,
        family=cfg.model.family,
        contract=cfg.sampling,
        label="stage-1 base",
    )
    path.write_text(json.dumps(result, indent=2))
    return result


ATTENTION_ITEMS = 24  # held-out items per modality: a few dozen forward passes per checkpoint


def attention_section(
    preset: StudyPreset, out: Path, base: dict[str, Any], run: tuple[str, int, ExperimentConfig]
) -> list[str]:
    """Figure 3 in miniature: the attention probe on the base and every trial of the first seed's
    sweep (fixed budgets and Hybrid-Frame), clips at the fixed evaluation budget; one JSON per
    checkpoint under <out>/attention (cached), a table and the heat-map panel in the report."""

    _variant, seed, cfg = run
    todo = [("base", base["checkpoint"])]
    for summary_path in sorted(Path(cfg.output_dir, "trials").glob("*/summary.json")):
        summary = json.loads(summary_path.read_text())
        kind = trial_kind("fixed", summary)
        todo.append(
            (
                kind if summary["frame_budget"] == "hybrid" else f"{kind} {summary['frame_budget']}",
                summary["checkpoint"],
            )
        )
    target = out / "attention"
    target.mkdir(parents=True, exist_ok=True)
    items = min(ATTENTION_ITEMS, preset.n_eval_image, preset.n_eval_video)
    settings = AttentionSettings(
        budgets=(preset.eval_budget,),
        items=items,
        layer_groups=3,
        boxes=_target_boxes_file(cfg, base["data_root"], target),
    )
    results = []
    for label, ckpt in todo:
        path = target / f"attention-{label.replace(' ', '_')}.json"
        if not path.exists():
            res = run_attention(
                ckpt, base["data_root"], settings, family=cfg.model.family, contract=cfg.sampling, label=label
            )
            path.write_text(json.dumps(res, indent=1))
        results.append(json.loads(path.read_text()))
    plot_attention(results, target / "attention.png")
    alignment_png = plot_alignment([json.loads((out / "alignment_base.json").read_text())], out / "alignment.png")
    heading, _, table = attention_markdown(results, figure="attention/attention.png").strip().partition("\n")
    return [
        "",
        heading,
        "",
        f"The base and seed {seed}'s trials; clips at {preset.eval_budget} frames.",
        table.rstrip(),
        "",
        f"![gradient alignment and the video gradient's second moment on the base]({alignment_png.name})",
    ]


def _target_boxes_file(cfg: ExperimentConfig, data_root: str, out: Path) -> str | None:
    """None when the held-out rows carry target_boxes; else (a set written before rows had them) the
    boxes re-derived from each row's generation seed, as a boxes JSONL under `out`."""

    rows = [r for name in ("eval_image.json", "eval_video.json") for r in json.loads(Path(data_root, name).read_text())]
    if all("target_boxes" in r for r in rows):
        return None
    syn = cfg.data.synthetic
    path = out / "target_boxes.jsonl"
    with path.open("w") as fh:
        for r in rows:
            boxes = regenerate_target_boxes(
                r["id"],
                r["task"],
                r["conversations"][1]["value"],
                seed=syn.seed,
                size=syn.size,
                num_frames=syn.num_frames,
            )
            for i, frame in enumerate(boxes):
                for box in frame:
                    fh.write(json.dumps({"id": r["id"], "frame_index": i, "box": box}) + "\n")
    return str(path)
