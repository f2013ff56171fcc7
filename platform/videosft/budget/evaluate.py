"""Scoring frame-budget predictors against known minimal budgets (`videosft predictors-eval`).

On the synthetic set every question's minimal sufficient budget is known by construction, so a
predictor is scored exactly: *exact* (predicted == needed, both snapped to a candidate), *under*
(predicted < needed: the costly error, the model cannot see what it is asked about), *over*
(predicted > needed: only wasted compute), mean frames per sample (the cost), fallback rate (how
often its answer was unusable) and samples/s. Rows with unknown min_frames (-1) count for cost,
speed and fallbacks but not for exact/under/over.

`run_predictors_eval` runs each predictor in-process (same predictor and thumbnail code as the Ray
stage, so timings are the predictor's own, without actor start-up) and writes JSON, Markdown, PNG.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from videosft import schema as S
from videosft.budget.base import BudgetConfig, BudgetPrediction, predictor_from_config, snap_up
from videosft.budget.stage import RowPreparer, predict_rows
from videosft.budget.text_classifier import train_text_classifier
from videosft.data.manifest import read_manifest
from videosft.data.sampling import SamplingContract

PredictorSpec = str | tuple[str, Mapping[str, Any]]  # name, or (label, BudgetConfig fields)


def _rate(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def score_predictions(
    rows: Sequence[Mapping[str, Any]],
    predictions: Sequence[BudgetPrediction],
    candidates: Sequence[int],
    seconds: float | None = None,
) -> dict[str, Any]:
    """Exact/under/over rates vs min_frames snapped up to a candidate, cost, fallbacks, speed."""
    if len(rows) != len(predictions):
        raise ValueError(f"score_predictions: {len(rows)} rows but {len(predictions)} predictions")
    pairs = [
        (snap_up(int(r[S.MIN_FRAMES]), candidates), p.budget)
        for r, p in zip(rows, predictions)
        if int(r.get(S.MIN_FRAMES, -1)) >= 1
    ]
    n = len(rows)
    return {
        "n": n,
        "n_scored": len(pairs),
        "exact": _rate([b == need for need, b in pairs]),
        "under": _rate([b < need for need, b in pairs]),
        "over": _rate([b > need for need, b in pairs]),
        "mean_frames": sum(p.budget for p in predictions) / n if n else None,
        "needed_mean_frames": sum(need for need, _ in pairs) / len(pairs) if pairs else None,
        "fallback": _rate([p.fell_back for p in predictions]),
        "seconds": seconds,
        "samples_per_s": n / seconds if seconds else None,
    }


def _fmt(value: Any, pct: bool = False, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.{digits}f}" if pct else f"{value:.{digits}f}"


def predictors_table(scores: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown table, one predictor per row, in the order given."""
    lines = [
        "| predictor | n | exact % | under % | over % | mean frames | needed frames | fallback % | samples/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in scores.items():
        lines.append(
            f"| {name} | {s['n']} | {_fmt(s['exact'], True)} | {_fmt(s['under'], True)} | "
            f"{_fmt(s['over'], True)} | {_fmt(s['mean_frames'], digits=2)} | "
            f"{_fmt(s['needed_mean_frames'], digits=2)} | {_fmt(s['fallback'], True)} | "
            f"{_fmt(s['samples_per_s'])} |"
        )
    return "\n".join(lines) + "\n"


def plot_predictors(scores: Mapping[str, Mapping[str, Any]], out_path: str | Path) -> Path:
    """Left: exact/under/over per predictor (stacked). Right: cost (mean frames) vs under-budget rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(scores)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    bottom = [0.0] * len(names)
    for key, colour in (("exact", "tab:green"), ("over", "tab:orange"), ("under", "tab:red")):
        vals = [100 * (scores[n][key] or 0.0) for n in names]
        left.bar(names, vals, bottom=bottom, color=colour, label=key)
        bottom = [b + v for b, v in zip(bottom, vals)]
    left.set_ylabel("% of scored samples")
    left.tick_params(axis="x", rotation=30)
    left.legend()
    for n in names:
        x, y = scores[n]["mean_frames"] or 0.0, 100 * (scores[n]["under"] or 0.0)
        right.scatter([x], [y])
        right.annotate(n, (x, y), fontsize=8)
    right.set_xlabel("mean frames per sample (cost)")
    right.set_ylabel("under-budget % (the costly error)")
    fig.tight_layout()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _train_text_classifier(data_root: Path, train_manifest: str, candidates: Sequence[int], out: Path) -> str:
    """Fit the text classifier on the train split's min_frames oracle labels (video rows)."""

    rows = [
        r
        for r in read_manifest(str(data_root / train_manifest))
        if r[S.MEDIA_TYPE] == S.MEDIA_VIDEO and r[S.MIN_FRAMES] >= 1
    ]
    labels = [snap_up(r[S.MIN_FRAMES], candidates) for r in rows]
    return str(train_text_classifier([r[S.QUESTION] for r in rows], labels, candidates, out))


def _config_for(
    spec: PredictorSpec, candidates: Sequence[int], default: int, model_path: str | None, family: str, text_model: Any
) -> tuple[str, BudgetConfig]:
    label, fields = (spec, {"predictor": spec}) if isinstance(spec, str) else (spec[0], dict(spec[1]))
    fields = {"candidates": list(candidates), "default": default, "family": family, **fields}
    name = fields.get("predictor", label)
    if fields.get("model_path") is None:
        if name == "text_classifier":
            fields["model_path"] = text_model()
        elif name == "instruction" or (name == "oracle" and fields.get("oracle") == "probe"):
            fields["model_path"] = model_path
    return label, BudgetConfig(**{"predictor": name, **fields})


def evaluate_predictor(
    cfg: BudgetConfig, rows: list[dict[str, Any]], contract: SamplingContract
) -> tuple[list[BudgetPrediction], float, float]:
    """(predictions, load seconds, prepare+predict seconds) for one predictor over rows."""

    t0 = time.perf_counter()
    predictor = predictor_from_config(cfg, contract)
    prepare = RowPreparer(predictor, cfg)
    if rows:  # warm-up, counted as load: starts the decoder child and the model's first kernels
        predict_rows(predictor, prepare(rows[:1]), cfg.candidates, cfg.default)
    t1 = time.perf_counter()
    preds = predict_rows(predictor, prepare(rows), cfg.candidates, cfg.default)
    return preds, t1 - t0, time.perf_counter() - t1


def run_predictors_eval(
    data_root: str | Path,
    predictors: Sequence[PredictorSpec],
    candidates: Sequence[int],
    out_dir: str | Path,
    *,
    model_path: str | None = None,
    family: str = "qwen2_5_vl",
    default: int | None = None,
    contract: SamplingContract | None = None,
    eval_manifest: str = "eval_video.json",
    train_manifest: str = "train.json",
    limit: int | None = None,
) -> Path:
    """Score predictors on `eval_manifest` under data_root; returns the Markdown report's path.

    `model_path` is the VLM for `instruction` and `oracle` probing; `text_classifier` without a
    model_path is trained first on `train_manifest`'s min_frames labels. A spec may be
    (label, {BudgetConfig fields}) to score variants, e.g. ("similarity-dinov2", {...}).
    """

    root, out = Path(data_root), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ordered = sorted(candidates)
    default = default if default is not None else ordered[len(ordered) // 2]
    contract = contract or SamplingContract()
    rows = read_manifest(str(root / eval_manifest))[:limit]
    trained: list[str] = []

    def text_model() -> str:  # trained at most once, and only when a spec needs it
        if not trained:
            trained.append(_train_text_classifier(root, train_manifest, ordered, out / "text_classifier.npz"))
        return trained[0]

    scores: dict[str, dict[str, Any]] = {}
    for spec in predictors:
        label, cfg = _config_for(spec, ordered, default, model_path, family, text_model)
        preds, load_s, seconds = evaluate_predictor(cfg, rows, contract)
        scores[label] = {
            **score_predictions(rows, preds, ordered, seconds),
            "load_seconds": load_s,
            "config": cfg.model_dump(mode="json"),
        }
        _write_predictions(out / f"predictions.{label}.jsonl", rows, preds)
        print(
            f"[predictors-eval] {label}: exact {_fmt(scores[label]['exact'], True)}% "
            f"under {_fmt(scores[label]['under'], True)}% ({_fmt(scores[label]['samples_per_s'])}/s)",
            flush=True,
        )
    (out / "predictors.json").write_text(json.dumps(scores, indent=1) + "\n")
    plot_predictors(scores, out / "predictors.png")
    report = out / "predictors.md"
    report.write_text(
        f"# Frame-budget predictors vs known minimal budgets\n\nset: {root / eval_manifest} "
        f"({len(rows)} rows), candidates {ordered}, default {default}\n\n"
        + predictors_table(scores)
        + "\n![predictors](predictors.png)\n"
    )
    return report


def _write_predictions(path: Path, rows: Sequence[Mapping[str, Any]], preds: Sequence[BudgetPrediction]) -> None:
    with path.open("w") as fh:
        for r, p in zip(rows, preds):
            fh.write(
                json.dumps(
                    {
                        "id": r[S.ID],
                        "task": r.get(S.TASK, ""),
                        "min_frames": r.get(S.MIN_FRAMES, -1),
                        "frame_budget": p.budget,
                        "budget_raw": p.raw,
                        "fell_back": p.fell_back,
                    }
                )
                + "\n"
            )
