"""The study's Table 1 in miniature: Hybrid-Frame with every real budget predictor the platform has.

Each predictor is scored twice. Against the known minimal budgets of the held-out clips
(`budget/evaluate.py`: exact, under- and over-allocation, mean frames), and downstream: a
Hybrid-Frame trial per seed trained and evaluated on its budgets, paired against the same stage-1
base as the main study (Δ image, Δ video, visual tokens per sample). The predictors:

- `similarity` (pixels embedding: counts distinct thumbnails; never reads the question);
- `text_classifier` (hashed bag of words, trained here on the train split's min_frames labels);
- `instruction`: a tiny VLM trained *by the project for the task*: the stage-1 base fine-tuned on
  `write_predictor_sft_manifest` (the instruction + thumbnails -> the oracle's budget) of the
  train split, then asked exactly as `InstructionPredictor` asks;
- `oracle` (the known minimal budgets): the ceiling, the main study's own hybrid trial.
The fixed-budget rows come from the main study's fixed trials, so the table compares like with like.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from videosft import schema as S
from videosft.budget.base import BudgetConfig, snap_up
from videosft.budget.evaluate import _train_text_classifier, run_predictors_eval
from videosft.budget.stage import write_predictor_sft_manifest
from videosft.config import ExperimentConfig
from videosft.data.manifest import read_manifest
from videosft.study.configs import merge_nested, stage2_configs, study_config
from videosft.study.paired import crossed, paired_matrix
from videosft.study.presets import StudyPreset
from videosft.study.verdict import by_point
from videosft.train.run import train_at_budget
from videosft.workspace import Inputs

LEARNED = ("similarity", "text_classifier", "instruction")


def _candidates(preset: StudyPreset) -> list[int]:
    return sorted(set(preset.budgets))


def text_predictor(preset: StudyPreset, out: Path, base: Mapping[str, Any]) -> str:
    """The text classifier's weights, trained once on the train split's labels (cached)."""

    path = out / "predictors" / "text_classifier.npz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _train_text_classifier(Path(base["data_root"]), "train.json", _candidates(preset), path)
    return str(path)


def instruction_predictor(preset: StudyPreset, out: Path, base: Mapping[str, Any]) -> str:
    """A tiny VLM taught to be the instruction predictor: the base, SFT on (question -> budget) (cached)."""

    ckpt = out / "predictors" / "instruction"
    if (ckpt / "config.json").exists():
        return str(ckpt)
    cands = _candidates(preset)
    bcfg = BudgetConfig(
        predictor="instruction", candidates=cands, default=max(cands), num_thumbnails=preset.predictor_thumbnails
    )
    rows = [
        r
        for r in read_manifest(str(Path(base["data_root"]) / "train.json"))
        if r[S.MEDIA_TYPE] == S.MEDIA_VIDEO and int(r.get(S.MIN_FRAMES, -1)) >= 1
    ]
    manifest = write_predictor_sft_manifest(
        rows, [snap_up(int(r[S.MIN_FRAMES]), cands) for r in rows], bcfg, out / "predictors" / "instruction_sft.json"
    )
    cfg = study_config(
        preset,
        str(out / "predictors"),
        model={"path": base["checkpoint"]},
        data={"root": base["data_root"], "train_manifest": str(manifest), "frame_cache": False},
        train={"max_steps": preset.predictor_steps, "lr": preset.video_lr, "seed": 0},
    )
    outcome, _ = train_at_budget(
        cfg,
        Inputs(model_path=base["checkpoint"], data_root=base["data_root"]),
        preset.predictor_thumbnails,
        out / "predictors" / "instruction_run",
    )
    shutil.copytree(outcome.checkpoint_path, ckpt, dirs_exist_ok=True)
    return str(ckpt)


def predictor_fields(preset: StudyPreset, out: Path, base: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The `budget:` section of a Hybrid-Frame trial with predictor `name`."""
    cands = _candidates(preset)
    # One budget cache for every seed: the budgets do not depend on the trial's seed.
    fields: dict[str, Any] = {
        "predictor": name,
        "candidates": cands,
        "default": max(cands),
        "cache_dir": str(out / "budgets"),
    }
    if name == "text_classifier":
        fields["model_path"] = text_predictor(preset, out, base)
    elif name == "instruction":
        fields.update(model_path=instruction_predictor(preset, out, base), num_thumbnails=preset.predictor_thumbnails)
    return fields


def table1_configs(
    preset: StudyPreset, out: Path, base: Mapping[str, Any], seeds: Sequence[int]
) -> list[tuple[str, int, ExperimentConfig]]:
    """One Hybrid-Frame sweep per (learned predictor, seed), beside the main study's sweeps."""

    runs = []
    for name in preset.table1_predictors:
        budget = predictor_fields(preset, out, base, name)
        for variant, seed, cfg in stage2_configs(preset, out, base, seeds):
            if variant != "fixed":
                continue
            raw = merge_nested(
                cfg.model_dump(mode="json"),
                {
                    "output_dir": str(out / "stage2" / f"{name}_seed_{seed}"),
                    "sweep": {"frame_budgets": ["hybrid"]},
                    "budget": budget,
                },
            )
            runs.append(("fixed", seed, ExperimentConfig.model_validate(raw)))
    return runs


def score_predictors(preset: StudyPreset, out: Path, base: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every predictor against the held-out clips' known minimal budgets (cached JSON)."""

    path = out / "predictors" / "eval" / "predictors.json"
    if not path.exists():
        specs = [(name, predictor_fields(preset, out, base, name)) for name in ("oracle", *preset.table1_predictors)]
        run_predictors_eval(
            base["data_root"], specs, _candidates(preset), path.parent, default=max(_candidates(preset))
        )
    return json.loads(path.read_text())


def table1(
    trials: Sequence[Any], rows: Sequence[Mapping[str, Any]], scores: Mapping[str, Mapping[str, Any]], largest: int
) -> tuple[list[str], dict[str, Any]]:
    """Markdown rows of Table 1 and the best learned predictor's paired comparison with fixed and oracle.

    `trials`/`rows` as `report.collect_trials` returns them (main study + predictor trials)."""

    table = by_point(trials)
    tokens: dict[str, list[float]] = {}
    for r in rows:
        if r.get("visual_tokens_per_sample") is not None:
            tokens.setdefault(f"{r['variant']}/{r['budget']}", []).append(float(r["visual_tokens_per_sample"]))
    lines = [
        "| predictor | exact % | under % | over % | mean frames (held-out) | Δ image | Δ video | "
        "visual tokens/sample |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = [(f"fixed {b}", ("fixed", b), None) for b in sorted(int(b) for v, b in table if v == "fixed")]
    keys += [
        (name, (f"hybrid-{name}" if name != "oracle" else "hybrid", "hybrid"), name) for name in (*LEARNED, "oracle")
    ]
    out: dict[str, Any] = {}
    for label, key, pred in keys:
        if key not in table:
            continue
        s = scores.get(pred, {}) if pred else {}
        tok = tokens.get(f"{key[0]}/{key[1]}")
        cells = [
            _pct(s.get("exact")),
            _pct(s.get("under")),
            _pct(s.get("over")),
            f"{s['mean_frames']:.2f}" if s.get("mean_frames") is not None else "–",
            table[key]["image"].text(),
            table[key]["video"].text(),
            f"{sum(tok) / len(tok):.0f}" if tok else "–",
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
        out[label] = {
            "predictor_scores": s,
            "image": table[key]["image"].__dict__,
            "video": table[key]["video"].__dict__,
            "visual_tokens_per_sample": tok,
        }
    sentence = best_learned_sentence(trials, scores, largest)
    return lines + ["", f"- {sentence}"], {"rows": out, "best_learned": sentence}


def best_learned_sentence(trials: Sequence[Any], scores: Mapping[str, Mapping[str, Any]], largest: int) -> str:
    """The best learned predictor (highest exact %) vs the largest fixed budget and the oracle, paired."""
    learned = [
        n
        for n in LEARNED
        if n in scores and scores[n].get("exact") is not None and any(t.variant == f"hybrid-{n}" for t in trials)
    ]
    if not learned:
        return "No learned predictor ran."
    best = max(learned, key=lambda n: scores[n]["exact"])
    parts = [f"Best learned predictor: {best} (exact {100 * scores[best]['exact']:.1f}% of held-out clips)."]
    for other, label in ((("fixed", largest), f"fixed {largest} frames"), (("hybrid", "hybrid"), "the oracle")):
        for kind in ("video", "image"):
            d = versus(trials, (f"hybrid-{best}", "hybrid"), other, kind)
            if d is not None:
                parts.append(f"Δ {kind} vs {label}: {d.text()}.")
    return " ".join(parts)


def versus(trials: Sequence[Any], a: tuple[str, Any], b: tuple[str, Any], kind: str) -> Any:
    """Paired difference of two trial kinds on the same seeds and items (a − b, points), or None."""
    ta = {t.seed: getattr(t, kind) for t in trials if (t.variant, t.budget) == a}
    tb = {t.seed: getattr(t, kind) for t in trials if (t.variant, t.budget) == b}
    seeds = sorted(set(ta) & set(tb))
    if not seeds:
        return None
    return crossed(paired_matrix({s: ta[s] for s in seeds}, {s: tb[s] for s in seeds})[1])


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"
