"""The miniature study's report: paired Δ against the stage-1 base per training budget, intervals
over seeds × items, breakdowns by question kind and minimal budget, the alignment probe, the
verdict, and the numbers file that two runs of the same command must reproduce exactly.

Δ is always taken against the base evaluated the same way (same evaluation budget, same items), so
the table isolates what Video-SFT changed; it is paired item by item (`study/paired.py`). Per-item
correctness comes from the runs' predictions files (`<bench>.predictions.jsonl`, one judged row per
item). Everything printed is computed here from the run's files.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from videosft.analysis.alignment import alignment_markdown
from videosft.study.presets import StudyPreset
from videosft.study.verdict import TrialOutcomes, crossed, paired_matrix, replication, verdict

IMG, VID = "synthetic_image", "synthetic_video"


def read_outcomes(path: Path) -> dict[str, float]:
    """item id -> 1.0 / 0.0 from a judged predictions file (rows without a verdict are skipped)."""
    out: dict[str, float] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if row.get("correct") is not None:
                out[str(row["id"])] = 1.0 if row["correct"] else 0.0
    return out


def base_outcomes(out: Path, bench: str, budget: int | str) -> dict[str, float]:
    """The base's per-item outcomes at `budget`; image items are budget-free, so any budget's file serves."""
    path = out / "base_eval" / f"budget_{budget}" / f"{bench}.predictions.jsonl"
    if not path.exists() and bench == IMG:
        path = next(iter(sorted((out / "base_eval").glob(f"budget_*/{IMG}.predictions.jsonl"))), path)
    return read_outcomes(path)


def _overall(scores: Mapping[str, Any], bench: str) -> float:
    return float(scores[bench]["overall"])


def trial_kind(variant: str, summary: Mapping[str, Any]) -> str:
    """fixed / replay / hybrid, and hybrid-<predictor> for a non-oracle Hybrid-Frame trial."""
    if summary["frame_budget"] != "hybrid":
        return variant
    pred = summary.get("budget_predictor", "oracle")
    return "hybrid" if pred == "oracle" else f"hybrid-{pred}"


def collect_trials(runs: Sequence[tuple[str, int, Any]]) -> tuple[list[TrialOutcomes], list[dict[str, Any]]]:
    """One TrialOutcomes per trial (paired against the base at its training budget) and its raw row."""
    trials, rows = [], []
    for variant, seed, cfg in runs:
        out = Path(cfg.output_dir)
        for path in sorted((out / "trials").glob("*/summary.json")):
            summary = json.loads(path.read_text())
            budget, kind = summary["frame_budget"], trial_kind(variant, summary)
            ev = path.parent / "eval"
            t = TrialOutcomes(
                kind,
                budget,
                seed,
                read_outcomes(ev / f"{IMG}.predictions.jsonl"),
                read_outcomes(ev / f"{VID}.predictions.jsonl"),
                base_outcomes(out, IMG, budget),
                base_outcomes(out, VID, budget),
            )
            trials.append(t)
            tr = summary.get("train", {})
            rows.append(
                {
                    "variant": kind,
                    "budget": budget,
                    "seed": seed,
                    "image": _overall(summary["scores"], IMG),
                    "video": _overall(summary["scores"], VID),
                    "d_image": 100 * _mean_delta(t.image, t.base_image),
                    "d_video": 100 * _mean_delta(t.video, t.base_video),
                    "final_loss": tr.get("loss"),
                    "data_order_digest": tr.get("data_order_digest"),
                    "visual_tokens_per_sample": summary.get("compute", {}).get("visual_tokens_per_sample"),
                    "video_breakdown": {
                        k: v for k, v in summary["scores"][VID].items() if k.startswith(("task/", "min_frames/"))
                    },
                    "mean_frames": summary.get("mean_frames"),
                    "budget_predictor": summary.get("budget_predictor"),
                }
            )
    return trials, rows


def _mean_delta(trial: Mapping[str, float], base: Mapping[str, float]) -> float:
    common = sorted(set(trial) & set(base))
    return statistics.fmean(trial[i] - base[i] for i in common) if common else float("nan")


def seed_reach(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Trial kinds whose seeds trained on the same data order (the seed did not reach training)."""
    by: dict[str, list[Any]] = {}
    for r in rows:
        if r.get("data_order_digest") is not None:
            by.setdefault(f"{r['variant']}/{r['budget']}", []).append(r["data_order_digest"])
    return sorted(k for k, v in by.items() if len(v) > 1 and len(set(v)) < len(v))


def fixed_budget_table(fixed_dirs: Mapping[str, Path]) -> dict[str, dict[str, Any]]:
    """Paired Δ video at the fixed evaluation budget per trial kind ("base" -> the base's eval dir)."""
    base = read_outcomes(fixed_dirs["base"] / f"{VID}.predictions.jsonl")
    groups: dict[str, dict[int, dict[str, float]]] = {}
    for key, d in fixed_dirs.items():
        if key == "base":
            continue
        kind, budget, seed = key.rsplit("/", 2)
        groups.setdefault(f"{kind}/{budget}", {})[int(seed)] = read_outcomes(d / f"{VID}.predictions.jsonl")
    out = {}
    for key, by_seed in groups.items():
        _, matrix = paired_matrix(by_seed, {s: base for s in by_seed})
        out[key] = crossed(matrix).__dict__
    return out


def _breakdown(rows: list[dict[str, Any]]) -> list[str]:
    """Mean video accuracy per question kind / minimal budget, per (variant, budget), over seeds."""
    keys = sorted(
        {k for r in rows for k in r["video_breakdown"]},
        key=lambda k: (k.split("/")[0], int(k.split("/")[1]) if k.split("/")[1].isdigit() else 0, k),
    )
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(f"{r['variant']}/{r['budget']}", []).append(r)
    lines = ["| trial | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for key in sorted(groups, key=_order):
        name, rs = _label(*key.split("/", 1)), groups[key]
        cells = [f"{statistics.fmean(r['video_breakdown'].get(k, float('nan')) for r in rs):.1f}" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _digest(outcomes: Mapping[str, float]) -> str:
    return hashlib.sha256(json.dumps(sorted(outcomes.items())).encode()).hexdigest()[:16]


def study_numbers(
    base: Mapping[str, Any],
    trials: Sequence[TrialOutcomes],
    rows: Sequence[Mapping[str, Any]],
    result: Mapping[str, Any],
    fixed: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every number the study reports and nothing that may vary between identical runs (paths,
    clocks): two runs of the same command and seeds on one machine must write this file identically."""
    per_trial = [
        {
            k: r[k]
            for k in (
                "variant",
                "budget",
                "seed",
                "image",
                "video",
                "final_loss",
                "data_order_digest",
                "mean_frames",
                "visual_tokens_per_sample",
            )
        }
        | {"image_items": _digest(t.image), "video_items": _digest(t.video)}
        for r, t in zip(rows, trials)
    ]
    return _rounded(
        {
            "base": {k: base[k] for k in ("accuracy", "chance", "per_task", "steps", "lr")},
            "trials": sorted(per_trial, key=lambda r: (r["variant"], str(r["budget"]), r["seed"])),
            "verdict": {k: result[k] for k in ("label", "table", "slope_image_per_doubling")},
            "fixed_budget": fixed,
            **(extra or {}),
        }
    )


def _rounded(obj: Any, digits: int = 6) -> Any:
    """Floats to `digits` significant digits. Accuracies and Δs are exact fractions of the items; a
    training loss is not: two identical runs (same data order, one thread) were seen to differ in its
    7th digit (5.7217718 vs 5.7217720), float noise of MKL's alignment-dependent kernels."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, dict):
        return {k: _rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_rounded(v, digits) for v in obj]
    return obj


def environment() -> dict[str, Any]:
    """What decides the numbers beyond code and seeds: library versions and the CPU's kernel path."""
    import platform

    import torch
    import transformers

    cpu = ""
    try:
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    except OSError:
        pass
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "cpu": cpu or platform.processor(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads_per_worker": 1,
    }


REPRODUCIBILITY = (
    "Same command, same seeds, same machine: identical numbers (`study_numbers.json`; every RNG seeded, "
    "the data order drawn from the seed and recorded as a digest per trial, torch pinned to one thread "
    "per worker, deterministic kernels requested). Across machines the numbers still vary: torch's CPU "
    "kernels (oneDNN/MKL GEMMs, reductions) take a code path per instruction set ({cap} here) and per "
    "library version, and a different path rounds differently; over thousands of optimizer steps the "
    "difference grows into another trajectory, so a stage-1 base retrained elsewhere lands a few points "
    "away. The environment is recorded in the report JSON; compare runs across machines by their paired "
    "intervals, not their digits."
)


def write_study_report(
    preset: StudyPreset,
    out: Path,
    base: dict[str, Any],
    runs: Sequence[tuple[str, int, Any]],
    fixed_dirs: Mapping[str, Path],
    alignment: dict[str, Any],
    wall_s: float,
    extra_sections: Sequence[str] = (),
    extra_json: Mapping[str, Any] | None = None,
) -> Path:
    trials, rows = collect_trials(runs)
    result = verdict(trials)
    unreached = seed_reach(rows)
    if unreached:
        result["sentences"].append(f"Warning: seeds trained on identical data orders in {', '.join(unreached)}.")
    table = result["table"]
    fixed = fixed_budget_table(fixed_dirs)
    lines = [
        f"# Miniature study `{preset.name}`",
        "",
        f"Wall time {wall_s / 60:.1f} min; seeds {preset.seeds}; {preset.video_steps} Video-SFT steps per "
        f"trial at lr {preset.video_lr}; {preset.n_eval_image} held-out image and {preset.n_eval_video} "
        f"video items.",
        "",
        "## Stage 1: the spatial base",
        "",
        f"Image SFT from random weights, {base['steps']} steps at lr {base['lr']}: held-out image accuracy "
        f"**{base['accuracy']:.1f}%** (chance {base['chance']:.1f}%); per task "
        + ", ".join(f"{k[5:]} {v:.1f}" for k, v in base["per_task"].items())
        + ".",
        "",
        "## Stage 2: Δ against the base (points; mean [95% interval], paired over seeds × items)",
        "",
        "Each trial minus the base on the same items, per seed; interval from the crossed seeds × items "
        "variance (study/paired.py). MDE: the minimum detectable effect at this n (80% power).",
        "",
        "| variant | training frames | Δ image | Δ video | MDE image | MDE video | visual tokens/sample |",
        "|---|---|---|---|---|---|---|",
    ]
    frames = {r["variant"]: r["mean_frames"] for r in rows if r.get("mean_frames") is not None}
    tokens: dict[str, list[float]] = {}
    for r in rows:
        if r.get("visual_tokens_per_sample") is not None:
            tokens.setdefault(f"{r['variant']}/{r['budget']}", []).append(float(r["visual_tokens_per_sample"]))
    for key in sorted(table, key=_order):
        variant, budget = key.split("/", 1)
        shown = f"{budget} ({frames[variant]:.1f} per video)" if variant in frames else budget
        tok = f"{statistics.fmean(tokens[key]):.0f}" if key in tokens else "–"
        lines.append(
            f"| {variant} | {shown} | {_fmt(table[key]['image'])} | {_fmt(table[key]['video'])} | "
            f"{_mde(table[key]['image'])} | {_mde(table[key]['video'])} | {tok} |"
        )
    lines += ["", "### Verdict", ""] + [f"- {s}" for s in result["sentences"]]
    lines += list(extra_sections)
    lines += [
        "",
        f"## Δ video at the fixed evaluation budget ({preset.eval_budget} frames), paired",
        "",
        "| trial | Δ video |",
        "|---|---|",
    ]
    lines += [f"| {_label(*k.split('/', 1))} | {_fmt(fixed[k])} |" for k in sorted(fixed, key=_order)]
    lines += ["", "## Video accuracy by question kind and minimal sufficient budget (training budget)", ""]
    lines += _breakdown(rows)
    lines += [
        "",
        alignment_markdown([alignment]).rstrip(),
        "",
        "Probed on the stage-1 base, the checkpoint every trial starts from.",
    ]
    env = environment()
    lines += [
        "",
        "## Reproducibility",
        "",
        REPRODUCIBILITY.format(cap=env["cpu_capability"]),
        "",
        f"Environment: {env}.",
    ]
    md = out / f"{preset.report_name}.md"
    md.write_text("\n".join(lines) + "\n")
    numbers = study_numbers(base, trials, rows, result, fixed, extra_json)
    (out / f"{preset.report_name.replace('report', 'numbers')}.json").write_text(
        json.dumps(numbers, indent=1, sort_keys=True, default=str) + "\n"
    )
    (out / f"{preset.report_name}.json").write_text(
        json.dumps(
            {
                "preset": preset.model_dump(),
                "base": base,
                "verdict": result,
                "trials": rows,
                "fixed_budget": fixed,
                "alignment": alignment,
                "wall_s": wall_s,
                "environment": env,
                **(extra_json or {}),
            },
            indent=2,
            default=str,
        )
    )
    print("\n".join(lines), flush=True)
    return md


def _order(key: str) -> tuple[int, int, str]:
    """fixed budgets ascending, then the other variants (hybrid, replay, ...)."""
    variant, budget = key.split("/", 1)
    return (0 if variant == "fixed" else 1, int(budget) if budget.isdigit() else 10**9, variant)


def _label(variant: str, budget: Any) -> str:
    return variant if variant.startswith("hybrid") else f"{variant} {budget}"


def _fmt(stats: Mapping[str, Any]) -> str:
    if stats["low"] is None:
        note = f", {stats['note']}" if stats.get("note") else ""
        return f"{stats['mean']:+.1f} (n={stats['n']}{note})"
    return f"{stats['mean']:+.1f} [{stats['low']:+.1f}, {stats['high']:+.1f}]"


def _mde(stats: Mapping[str, Any]) -> str:
    return "–" if stats.get("mde") is None else f"{stats['mde']:.1f}"


def replication_section(
    runs_a: Sequence[tuple[str, int, Any]],
    fixed_a: Mapping[str, Path],
    runs_b: Sequence[tuple[str, int, Any]],
    fixed_b: Mapping[str, Path],
    preset: StudyPreset,
) -> tuple[list[str], dict[str, Any]]:
    """The replication check: the verdict of each disjoint seed set and whether they agree."""

    va, vb = verdict(collect_trials(runs_a)[0]), verdict(collect_trials(runs_b)[0])
    rep = replication({**va, "seeds": preset.seeds}, {**vb, "seeds": preset.replicate_seeds})
    lines = [
        "",
        "### Replication with disjoint seeds",
        "",
        f"- {rep['sentence']}",
        f"- Seeds {preset.replicate_seeds}: " + " ".join(vb["sentences"][1:3]),
    ]
    return lines, {"replication": rep, "replica_verdict": vb, "replica_fixed_budget": fixed_budget_table(fixed_b)}
