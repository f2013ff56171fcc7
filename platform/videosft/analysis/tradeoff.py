"""The trade-off report: per frame budget, image and video scores against the untuned base.

Writes `report.md` (tables), `tradeoff.png` (scores and deltas against training frame budget) and
`results.json` (every number behind them) into the run directory. Numbers only come from the
evaluation outputs; nothing here is written in advance.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean
from typing import Any, Mapping, Sequence

from videosft.config import ExperimentConfig


def modality_average(scores: Mapping[str, Mapping[str, Any]], modality: str) -> float | None:
    vals = [float(s["overall"]) for s in scores.values() if s.get("modality") == modality and s.get("overall") is not None]
    return mean(vals) if vals else None


def tradeoff_rows(cfg: ExperimentConfig, base: Mapping[Any, Mapping[str, Any]], trials: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per trial: image/video averages, their deltas vs the base at the same eval budget."""
    rows = []
    for t in sorted(trials, key=lambda t: t["frame_budget"]):
        b = t["frame_budget"]
        base_scores = base[cfg.eval.frame_budget or b]
        row: dict[str, Any] = {"frame_budget": b}
        for modality in ("image", "video"):
            tuned, ref = modality_average(t["scores"], modality), modality_average(base_scores, modality)
            row[f"{modality}"] = tuned
            row[f"base_{modality}"] = ref
            row[f"delta_{modality}"] = None if tuned is None or ref is None else tuned - ref
        for name, s in t["scores"].items():
            row[f"{name}"] = s.get("overall")
            row[f"delta_{name}"] = s.get("overall") - base_scores[name]["overall"] if name in base_scores else None
        row["rejected"] = t.get("data", {}).get("rejected", 0)
        row["train_loss"] = t.get("train", {}).get("loss")
        rows.append(row)
    return rows


def _fmt(v: Any, signed: bool = False) -> str:
    if v is None:
        return "–"
    return f"{v:+.1f}" if signed else f"{v:.1f}"


def markdown(cfg: ExperimentConfig, rows: Sequence[Mapping[str, Any]], trials: Sequence[Mapping[str, Any]]) -> str:
    benches = list(cfg.eval.benchmarks)
    lines = [
        f"# Video-SFT trade-off report: {cfg.name}",
        "",
        f"Model family `{cfg.model.family}`, sampling contract `{cfg.sampling.contract_id()}` "
        f"({cfg.sampling.mode}), {cfg.train.max_steps} optimizer steps per trial, "
        f"evaluation budget: {cfg.eval.frame_budget or 'the training budget'}.",
        "",
        "## Image vs video against the untuned base",
        "",
        "| train frames | image acc | Δ image | video acc | Δ video | train loss | rejected rows |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['frame_budget']} | {_fmt(r['image'])} | {_fmt(r['delta_image'], True)} | {_fmt(r['video'])} "
            f"| {_fmt(r['delta_video'], True)} | {_fmt(r['train_loss'])} | {r['rejected']} |"
        )
    lines += ["", "Base accuracy at each evaluation budget: " + ", ".join(
        f"{r['frame_budget']} frames: image {_fmt(r['base_image'])}, video {_fmt(r['base_video'])}" for r in rows), ""]
    chance = {name: s.get("chance") for name, s in (trials[0]["scores"].items() if trials else [])}
    if any(v is not None for v in chance.values()):
        lines += ["Chance level (uniform guess among listed options): " + ", ".join(
            f"{name} {_fmt(v)}" for name, v in chance.items() if v is not None), ""]
    lines += ["## Per benchmark (score, Δ vs base)", "", "| train frames | " + " | ".join(benches) + " |",
              "|---:|" + "---:|" * len(benches)]
    for r in rows:
        cells = [f"{_fmt(r.get(b))} ({_fmt(r.get('delta_' + b), True)})" for b in benches]
        lines.append(f"| {r['frame_budget']} | " + " | ".join(cells) + " |")
    lines += ["", "![trade-off](tradeoff.png)", ""]
    return "\n".join(lines)


def plot(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = [r["frame_budget"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for modality, colour in (("image", "tab:blue"), ("video", "tab:orange")):
        ax1.plot(budgets, [r[modality] for r in rows], "o-", color=colour, label=f"{modality} (tuned)")
        ax1.plot(budgets, [r[f"base_{modality}"] for r in rows], "--", color=colour, alpha=0.6, label=f"{modality} (base)")
        ax2.plot(budgets, [r[f"delta_{modality}"] for r in rows], "o-", color=colour, label=f"Δ {modality}")
    ax2.axhline(0, color="grey", lw=0.8)
    for ax, title in ((ax1, "accuracy (%)"), (ax2, "Δ vs base (points)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.set_xlabel("training frame budget")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(cfg: ExperimentConfig, base: Mapping[Any, Any], trials: Sequence[Mapping[str, Any]], out_dir: Path) -> Path:
    """Write report.md, tradeoff.png and results.json; returns the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = tradeoff_rows(cfg, base, trials)
    plot(rows, out_dir / "tradeoff.png")
    (out_dir / "results.json").write_text(json.dumps(
        {"config": cfg.model_dump(mode="json"), "rows": rows, "base": {str(k): v for k, v in base.items()},
         "trials": list(trials)}, indent=2, default=str))
    report = out_dir / "report.md"
    report.write_text(markdown(cfg, rows, trials))
    return report


def report_from_run_dir(run_dir: str | Path) -> Path:
    """Re-render the report of a finished run from its results.json (no Ray, no models)."""
    run = Path(run_dir)
    if not (run / "results.json").exists():
        raise FileNotFoundError(f"{run}: no results.json; is this the output_dir of a finished sweep?")
    results = json.loads((run / "results.json").read_text())
    cfg = ExperimentConfig.model_validate(results["config"])
    base = {(int(k) if str(k).isdigit() else k): v for k, v in results["base"].items()}
    return write_report(cfg, base, results["trials"], run)
