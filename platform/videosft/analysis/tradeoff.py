"""The trade-off's numbers: per trial, image and video scores against the untuned base.

This module owns the numbers (rows, deltas, averages, best budgets), computed only from the
evaluation outputs and the trials' own summaries; `tables.py` lays them out, `figures.py` draws
them, `html_report.py` assembles the page and `report.py` writes the report files.

A trial is one (model, frame budget) point. Its budget is an int (fixed frames per video) or a
string such as "hybrid" (per-sample budgets; the trial then carries `mean_frames`). The base is
the sweep's base model, evaluated once per evaluation budget (`{budget: {benchmark: scores}}`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import mean
from typing import Any

from videosft.config import ExperimentConfig

Scores = Mapping[str, Mapping[str, Any]]  # benchmark name -> its scores dict


def modality_average(scores: Scores, modality: str) -> float | None:
    vals = [
        float(s["overall"]) for s in scores.values() if s.get("modality") == modality and s.get("overall") is not None
    ]
    return mean(vals) if vals else None


def budget_key(budget: Any) -> tuple[int, float, str]:
    """Sort key: fixed budgets numerically, then named ones (hybrid) after them."""
    return (0, float(budget), "") if isinstance(budget, (int, float)) else (1, 0.0, str(budget))


def trial_frames(trial: Mapping[str, Any]) -> float | None:
    """Frames per video the trial trained on: the budget, or a hybrid trial's measured mean."""
    b = trial["frame_budget"]
    if isinstance(b, (int, float)):
        return float(b)
    return float(trial["mean_frames"]) if trial.get("mean_frames") is not None else None


def model_name(trial: Mapping[str, Any], cfg: ExperimentConfig) -> str:
    return str((trial.get("model") or {}).get("name") or cfg.model.family)


def base_key(cfg: ExperimentConfig, base: Mapping[Any, Scores], trial: Mapping[str, Any]) -> Any:
    """Which base evaluation a trial is compared with: the one at the trial's eval budget.

    That is `eval.frame_budget` when fixed, else the trial's own budget. A hybrid trial has no
    single budget: it is compared at the base budget nearest its mean frame count.
    """
    key = trial.get("eval_frame_budget") or cfg.eval.frame_budget or trial["frame_budget"]
    for k in (key, str(key)):
        if k in base:
            return k
    frames = trial_frames(trial)
    numeric = [k for k in base if isinstance(k, (int, float))]
    if frames is not None and numeric:
        return min(numeric, key=lambda k: (abs(k - frames), k))
    return next(iter(base), None)


def base_for(cfg: ExperimentConfig, base: Mapping[Any, Scores], trial: Mapping[str, Any]) -> Scores:
    key = base_key(cfg, base, trial)
    return base[key] if key in base else {}


def score_ci(scores: Mapping[str, Any]) -> tuple[float, float] | None:
    """A benchmark's bootstrap interval, if its scores carry one (several spellings accepted).

    evaluate_model writes `ci: {low, high, level, ...}`; also accepted: `ci: {ci95: [lo, hi]}`,
    `ci: {ci_low, ci_high}`, `ci: [lo, hi]`, or those keys at the top level. Scores without an
    interval render without one.
    """
    ci = scores.get("ci")
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        return float(ci[0]), float(ci[1])
    # bare low/high count only inside `ci`: at the top level they could mean anything
    for node, lo, hi in ((ci, "low", "high"), (ci, "ci_low", "ci_high"), (scores, "ci_low", "ci_high")):
        if isinstance(node, Mapping) and node.get(lo) is not None and node.get(hi) is not None:
            return float(node[lo]), float(node[hi])
    for node in (ci, scores):
        pair = node.get("ci95") if isinstance(node, Mapping) else None
        if isinstance(pair, (list, tuple)) and len(pair) == 2:
            return float(pair[0]), float(pair[1])
    return None


def _delta(tuned: float | None, ref: float | None) -> float | None:
    return None if tuned is None or ref is None else float(tuned) - float(ref)


def sorted_trials(trials: Sequence[Mapping[str, Any]], cfg: ExperimentConfig) -> list[Mapping[str, Any]]:
    return sorted(trials, key=lambda t: (model_name(t, cfg), budget_key(t["frame_budget"])))


def tradeoff_rows(
    cfg: ExperimentConfig, base: Mapping[Any, Scores], trials: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One row per trial: image/video averages and per-benchmark scores, with deltas vs the base."""
    models = {model_name(t, cfg) for t in trials}
    rows = []
    for t in sorted_trials(trials, cfg):
        b, ref = t["frame_budget"], base_for(cfg, base, t)
        name = model_name(t, cfg)
        row: dict[str, Any] = {
            "frame_budget": b,
            "model": name,
            "params": (t.get("model") or {}).get("params"),
            "frames": trial_frames(t),
            "label": f"{name} · {b}" if len(models) > 1 else str(b),
            "base_eval_budget": base_key(cfg, base, t),
        }
        for modality in ("image", "video"):
            tuned, ref_avg = modality_average(t["scores"], modality), modality_average(ref, modality)
            row[modality], row[f"base_{modality}"], row[f"delta_{modality}"] = tuned, ref_avg, _delta(tuned, ref_avg)
        for bench, s in t["scores"].items():
            row[bench] = s.get("overall")
            row[f"base_{bench}"] = ref.get(bench, {}).get("overall")
            row[f"delta_{bench}"] = _delta(s.get("overall"), row[f"base_{bench}"])
            row[f"ci_{bench}"] = score_ci(s)
        row["rejected"] = t.get("data", {}).get("rejected", 0)
        row["train_loss"] = t.get("train", {}).get("loss")
        rows.append(row)
    return rows


def best_budgets(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model, the budget with the best video average, the best image average, and the best
    mean of the two (the budget to pick when neither skill may be sacrificed)."""
    out: dict[str, dict[str, Any]] = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        candidates = {
            "video": [(r["video"], r) for r in mine if r["video"] is not None],
            "image": [(r["image"], r) for r in mine if r["image"] is not None],
            "balanced": [
                ((r["image"] + r["video"]) / 2, r) for r in mine if r["image"] is not None and r["video"] is not None
            ],
        }
        # max keeps the first of equals: on a tie the smaller (cheaper) budget wins
        out[model] = {k: max(v, key=lambda p: p[0])[1]["frame_budget"] for k, v in candidates.items() if v}
    return out
