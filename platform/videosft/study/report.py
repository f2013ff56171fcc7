"""The miniature study's report: Δ against the stage-1 base per training budget, intervals over
seeds, breakdowns by question kind and minimal budget, the alignment probe, and the verdict.

Δ is always taken against the base evaluated the same way (same evaluation budget), so the table
isolates what Video-SFT changed. Everything printed is computed here from the run's files.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Sequence

from videosft.study.presets import StudyPreset
from videosft.study.verdict import Point, summarize, verdict

IMG, VID = "synthetic_image", "synthetic_video"


def _overall(scores: dict[str, Any], bench: str) -> float:
    return float(scores[bench]["overall"])


def collect_points(runs: Sequence[tuple[str, int, Any]]) -> tuple[list[Point], list[dict[str, Any]]]:
    """One Point per trial (Δ at its training budget) and the raw rows behind them."""
    points, rows = [], []
    for variant, seed, cfg in runs:
        out = Path(cfg.output_dir)
        for path in sorted((out / "trials").glob("*/summary.json")):
            trial = json.loads(path.read_text())
            budget = trial["frame_budget"]
            base = json.loads((out / "base_eval" / f"budget_{budget}" / "scores.json").read_text())
            d_img = _overall(trial["scores"], IMG) - _overall(base, IMG)
            d_vid = _overall(trial["scores"], VID) - _overall(base, VID)
            kind = "hybrid" if budget == "hybrid" else variant  # a hybrid trial of the fixed sweep
            points.append(Point(kind, budget, seed, d_img, d_vid))
            rows.append({"variant": kind, "budget": budget, "seed": seed, "d_image": d_img, "d_video": d_vid,
                         "image": _overall(trial["scores"], IMG), "video": _overall(trial["scores"], VID),
                         "base_image": _overall(base, IMG), "base_video": _overall(base, VID),
                         "video_breakdown": {k: v for k, v in trial["scores"][VID].items()
                                             if k.startswith(("task/", "min_frames/"))},
                         "mean_frames": trial.get("mean_frames")})
    return points, rows


def _fixed_budget_rows(fixed_scores: dict[str, Any]) -> list[str]:
    base = fixed_scores["base"]
    groups: dict[str, list[float]] = {}
    for key, scores in fixed_scores.items():
        if key == "base":
            continue
        variant, budget, _seed = key.split("/")
        groups.setdefault(f"{variant}/{budget}", []).append(_overall(scores, VID) - _overall(base, VID))
    return [f"| {_label(*key.split('/', 1))} | {summarize(groups[key]).text()} |" for key in sorted(groups, key=_order)]


def _breakdown(rows: list[dict[str, Any]]) -> list[str]:
    """Mean video accuracy per question kind / minimal budget, per (variant, budget), over seeds."""
    keys = sorted({k for r in rows for k in r["video_breakdown"]},
                  key=lambda k: (k.split("/")[0], int(k.split("/")[1]) if k.split("/")[1].isdigit() else 0, k))
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(f"{r['variant']}/{r['budget']}", []).append(r)
    lines = ["| trial | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for key in sorted(groups, key=_order):
        name, rs = _label(*key.split("/", 1)), groups[key]
        cells = [f"{statistics.fmean(r['video_breakdown'].get(k, float('nan')) for r in rs):.1f}" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def write_study_report(preset: StudyPreset, out: Path, base: dict[str, Any], runs: Sequence[tuple[str, int, Any]],
                       fixed_scores: dict[str, Any], alignment: dict[str, Any], wall_s: float) -> Path:
    from videosft.analysis.alignment import alignment_markdown

    points, rows = collect_points(runs)
    result = verdict(points)
    table = result["table"]
    lines = [f"# Miniature study `{preset.name}`", "",
             f"Wall time {wall_s / 60:.1f} min; seeds {preset.seeds}; {preset.video_steps} Video-SFT steps per "
             f"trial at lr {preset.video_lr}.", "",
             "## Stage 1: the spatial base", "",
             f"Image SFT from random weights, {base['steps']} steps at lr {base['lr']}: held-out image accuracy "
             f"**{base['accuracy']:.1f}%** (chance {base['chance']:.1f}%); per task "
             + ", ".join(f"{k[5:]} {v:.1f}" for k, v in base["per_task"].items()) + ".", "",
             "## Stage 2: Δ against the base (points; mean [95% t-interval over seeds])", "",
             "| variant | training frames | Δ image | Δ video |", "|---|---|---|---|"]
    frames = {r["variant"]: r["mean_frames"] for r in rows if r.get("mean_frames") is not None}
    for key in sorted(table, key=_order):
        variant, budget = key.split("/", 1)
        shown = f"{budget} ({frames[variant]:.1f} per video)" if variant in frames else budget
        lines.append(f"| {variant} | {shown} | {_fmt(table[key]['image'])} | {_fmt(table[key]['video'])} |")
    lines += ["", "### Verdict", ""] + [f"- {s}" for s in result["sentences"]]
    lines += ["", f"## Δ video at the fixed evaluation budget ({preset.eval_budget} frames)", "",
              "| trial | Δ video |", "|---|---|"] + _fixed_budget_rows(fixed_scores)
    lines += ["", "## Video accuracy by question kind and minimal sufficient budget (training budget)", ""]
    lines += _breakdown(rows)
    lines += ["", "## Gradient alignment (image vs video loss gradients) on the stage-1 base", "",
              alignment_markdown([alignment])]
    md = out / "study_report.md"
    md.write_text("\n".join(lines) + "\n")
    (out / "study_report.json").write_text(json.dumps(
        {"preset": preset.model_dump(), "base": base, "verdict": result, "trials": rows,
         "fixed_budget": fixed_scores, "alignment": alignment, "wall_s": wall_s}, indent=2, default=str))
    print("\n".join(lines), flush=True)
    return md


def _order(key: str) -> tuple[int, int, str]:
    """fixed budgets ascending, then the other variants (hybrid, replay, ...)."""
    variant, budget = key.split("/", 1)
    return (0 if variant == "fixed" else 1, int(budget) if budget.isdigit() else 10**9, variant)


def _label(variant: str, budget: Any) -> str:
    return variant if variant == "hybrid" else f"{variant} {budget}"


def _fmt(stats: dict[str, Any]) -> str:
    if stats["low"] is None:
        return f"{stats['mean']:+.1f} (n={stats['n']})"
    return f"{stats['mean']:+.1f} [{stats['low']:+.1f}, {stats['high']:+.1f}]"
