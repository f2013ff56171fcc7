"""The trade-off report: per trial, image and video scores against the untuned base.

Writes into the run directory `report.md` (tables), `report.html` (the same tables and every
figure embedded, one file to mail or attach to a paper), the figures as PNGs, and `results.json`
(every number behind them). Numbers only come from the evaluation outputs and the trials' own
summaries; nothing here is written in advance. This module owns the numbers (rows, deltas,
averages, best budgets); `tables.py` lays them out, `figures.py` draws them, `html_report.py`
assembles the page.

A trial is one (model, frame budget) point. Its budget is an int (fixed frames per video) or a
string such as "hybrid" (per-sample budgets; the trial then carries `mean_frames`). The base is
the sweep's base model, evaluated once per evaluation budget (`{budget: {benchmark: scores}}`).
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean
from typing import Any, Mapping, Sequence

from videosft.config import ExperimentConfig

Scores = Mapping[str, Mapping[str, Any]]  # benchmark name -> its scores dict


def modality_average(scores: Scores, modality: str) -> float | None:
    vals = [float(s["overall"]) for s in scores.values() if s.get("modality") == modality and s.get("overall") is not None]
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


def tradeoff_rows(cfg: ExperimentConfig, base: Mapping[Any, Scores], trials: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per trial: image/video averages and per-benchmark scores, with deltas vs the base."""
    models = {model_name(t, cfg) for t in trials}
    rows = []
    for t in sorted_trials(trials, cfg):
        b, ref = t["frame_budget"], base_for(cfg, base, t)
        name = model_name(t, cfg)
        row: dict[str, Any] = {"frame_budget": b, "model": name, "params": (t.get("model") or {}).get("params"),
                               "frames": trial_frames(t), "label": f"{name} · {b}" if len(models) > 1 else str(b),
                               "base_eval_budget": base_key(cfg, base, t)}
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
            "balanced": [((r["image"] + r["video"]) / 2, r) for r in mine
                         if r["image"] is not None and r["video"] is not None],
        }
        # max keeps the first of equals: on a tie the smaller (cheaper) budget wins
        out[model] = {k: max(v, key=lambda p: p[0])[1]["frame_budget"] for k, v in candidates.items() if v}
    return out


def write_report(cfg: ExperimentConfig, base: Mapping[Any, Any], trials: Sequence[Mapping[str, Any]], out_dir: Path,
                 alignment: Sequence[Mapping[str, Any]] = (), attention: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Write report.md, report.html, the figures and results.json; returns the Markdown path.

    `alignment`: gradient-alignment probe results (base and trials), drawn as a table and a figure.
    """
    from videosft.analysis.figures import write_figures
    from videosft.analysis.html_report import write_html
    from videosft.analysis.tables import intro_lines, report_tables, to_markdown

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = tradeoff_rows(cfg, base, trials)
    figures = write_figures(cfg, trials, rows, out_dir)
    (out_dir / "results.json").write_text(json.dumps(
        {"config": cfg.model_dump(mode="json"), "rows": rows, "base": {str(k): v for k, v in base.items()},
         "trials": list(trials), "best": best_budgets(rows), "alignment": list(alignment),
         "attention": list(attention)}, indent=2, default=str))
    intro = intro_lines(cfg, rows, trials)
    tables = report_tables(cfg, base, trials, rows)
    if alignment:
        from videosft.analysis.figures import Figure
        from videosft.analysis.tables import alignment_table
        from videosft.analysis.alignment import plot_alignment

        tables.append(alignment_table(alignment))
        figures.append(Figure("alignment", plot_alignment(alignment, out_dir / "alignment.png"),
                              "Gradient alignment: cosine of image-loss and video-loss gradients against the "
                              "frame budget T, base and every trial (error bars: spread over batch pairs)"))
    if alignment and any(r.get("second_moment") for r in alignment):
        from videosft.analysis.tables import second_moment_table

        tables.append(second_moment_table(alignment))
    if attention:
        from videosft.analysis.attention import plot_attention
        from videosft.analysis.figures import Figure
        from videosft.analysis.tables import attention_table

        tables.append(attention_table(attention))
        figures.append(Figure("attention", plot_attention(attention, out_dir / "attention.png"),
                              "Figure 3 in miniature: the answer position's attention over the frame (last layer "
                              "group, mean over heads), base and every trial; boxes: the target"))
    md = [f"# Video-SFT trade-off report: {cfg.name}", "", *intro, ""]
    for table in tables:
        md += [to_markdown(table), ""]
    md += ["## Figures", ""] + [f"![{f.caption}]({f.path.name})\n\n*{f.caption}*\n" for f in figures]
    report = out_dir / "report.md"
    report.write_text("\n".join(md))
    write_html(out_dir / "report.html", f"Video-SFT trade-off report: {cfg.name}", intro, tables, figures)
    return report


def _budget_from_json(key: str) -> int | str:
    return int(key) if str(key).isdigit() else key


def report_from_run_dir(run_dir: str | Path) -> Path:
    """Re-render the report of a finished run from its results.json (no Ray, no models)."""
    run = Path(run_dir)
    if not (run / "results.json").exists():
        raise FileNotFoundError(f"{run}: no results.json; is this the output_dir of a finished sweep?")
    results = json.loads((run / "results.json").read_text())
    cfg = ExperimentConfig.model_validate(results["config"])
    base = {_budget_from_json(k): v for k, v in results["base"].items()}
    return write_report(cfg, base, results["trials"], run, alignment=results.get("alignment") or (),
                        attention=results.get("attention") or ())
