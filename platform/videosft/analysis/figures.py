"""The study's figures, re-drawn from our own trials (PNG files, matplotlib's Agg backend).

- `tradeoff.png`: image/video accuracy and their Δ against training frames (the summary view);
- `fig2_delta_per_benchmark.png`: Δ vs base per benchmark, one bar per trial (the study's Fig. 2);
- `fig4_delta_by_scale.png`: Δ image and Δ video average by model size (Fig. 4); with one model
  it is one column of points, one per budget, still worth drawing: it is the same axes a
  multi-model sweep fills in;
- `fig5_score_vs_frames.png`: each benchmark's score against training frames, base dashed (Fig. 5).

Fixed budgets sit on a log2 frame axis; a hybrid trial (per-sample budgets) is a star at its mean
frame count when it recorded one. Missing numbers are left out of a plot, never drawn as zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videosft.analysis.compute import human_params
from videosft.config import ExperimentConfig

MODALITY_COLOURS = {"image": "tab:blue", "video": "tab:orange"}


@dataclass(frozen=True)
class Figure:
    name: str
    path: Path
    caption: str


def pyplot() -> Any:
    """matplotlib.pyplot on the headless Agg backend (clusters and CI have no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _is_fixed(row: Mapping[str, Any]) -> bool:
    return isinstance(row["frame_budget"], (int, float))


def _frame_axis(ax: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Log2 axis ticked at the budgets actually trained (hybrid means fall between them)."""
    ticks = sorted({r["frame_budget"] for r in rows if _is_fixed(r) and r["frame_budget"] > 0})
    if ticks:
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel("training frames per video")


def _series(
    ax: Any, rows: Sequence[Mapping[str, Any]], key: str, style: str, colour: str, label: str, stars: bool = True
) -> None:
    """One line over the fixed budgets plus (stars=True) a star per hybrid trial at its mean frames.

    Base series pass stars=False: a hybrid trial's base sits at a fixed budget, not at its mean.
    """
    fixed = [r for r in rows if _is_fixed(r)]
    if fixed:
        ax.plot([r["frame_budget"] for r in fixed], [_nan(r.get(key)) for r in fixed], style, color=colour, label=label)
    if not stars:
        return
    for r in rows:
        if not _is_fixed(r) and r.get("frames") is not None:
            ax.plot(
                [r["frames"]],
                [_nan(r.get(key))],
                "*",
                color=colour,
                markersize=12,
                label=f"{label} ({r['frame_budget']})",
            )


def _by_model(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["model"], []).append(r)
    return out


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Lay out, write (creating the folder) and close a figure; returns its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    pyplot().close(fig)
    return out


def plot_tradeoff(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Accuracy (tuned solid, base dashed) and Δ vs base, image and video, against frames."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    groups = _by_model(rows)
    for model, mine in groups.items():
        tag = f"{model} " if len(groups) > 1 else ""
        for modality, colour in MODALITY_COLOURS.items():
            _series(ax1, mine, modality, "o-", colour, f"{tag}{modality} (tuned)")
            _series(ax1, mine, f"base_{modality}", "--", colour, f"{tag}{modality} (base)", stars=False)
            _series(ax2, mine, f"delta_{modality}", "o-", colour, f"{tag}Δ {modality}")
    ax2.axhline(0, color="grey", lw=0.8)
    for ax, title in ((ax1, "accuracy (%)"), (ax2, "Δ vs base (points)")):
        _frame_axis(ax, rows)
        ax.set_title(title)
        if rows:
            ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_delta_per_benchmark(rows: Sequence[Mapping[str, Any]], benches: Sequence[str], path: Path) -> Path:
    """Grouped bars: one group per benchmark, one bar per trial (the study's Fig. 2)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(benches) + 0.4 * len(rows)), 4))
    width = 0.8 / max(len(rows), 1)
    cmap = plt.get_cmap("viridis")
    for i, r in enumerate(rows):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(benches))]
        ax.bar(
            xs,
            [_nan(r.get(f"delta_{b}")) for b in benches],
            width,
            label=r["label"],
            color=cmap(i / max(len(rows) - 1, 1)),
        )
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(len(benches)), list(benches), rotation=20)
    ax.set_ylabel("Δ vs base (points)")
    ax.set_title("Δ per benchmark, one bar per trial")
    if rows:
        ax.legend(title="trial (train frames)", fontsize=7)
    return save_figure(fig, path)


def plot_delta_by_scale(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Δ image avg and Δ video avg per model, models ordered by size (the study's Fig. 4)."""
    plt = pyplot()
    groups = _by_model(rows)
    order = sorted(groups, key=lambda m: (groups[m][0].get("params") or 0, m))
    fig, ax = plt.subplots(figsize=(max(5.0, 2.0 * len(order)), 4))
    for i, model in enumerate(order):
        mine = groups[model]
        for j, r in enumerate(mine):
            x = i + (j - (len(mine) - 1) / 2) * 0.12
            for modality, marker in (("image", "o"), ("video", "s")):
                y = _nan(r.get(f"delta_{modality}"))
                ax.plot([x], [y], marker, color=MODALITY_COLOURS[modality], markersize=8)
                if y == y:  # not NaN
                    ax.annotate(str(r["frame_budget"]), (x, y), textcoords="offset points", xytext=(5, 3), fontsize=7)
    for modality, marker in (("image", "o"), ("video", "s")):
        ax.plot([], [], marker, color=MODALITY_COLOURS[modality], label=f"Δ {modality} average")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(len(order)), [f"{m}\n({human_params(groups[m][0].get('params'))})" for m in order])
    ax.set_xlim(-0.6, max(len(order) - 1, 0) + 0.6)
    ax.set_ylabel("Δ vs base (points)")
    ax.set_title("Δ by model scale (labels: training frames)")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_score_vs_frames(rows: Sequence[Mapping[str, Any]], benches: Sequence[str], path: Path) -> Path:
    """Each benchmark's score against training frames, its base as a dashed line (Fig. 5).

    The base line follows the base the trial is compared with (the trial's evaluation budget), so
    with `eval.frame_budget` unset it moves with the budget, as it should.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    cmap = plt.get_cmap("tab10")
    groups = _by_model(rows)
    for model, mine in groups.items():
        tag = f"{model} " if len(groups) > 1 else ""
        for k, bench in enumerate(benches):
            _series(ax, mine, bench, "o-", cmap(k % 10), f"{tag}{bench}")
            _series(ax, mine, f"base_{bench}", "--", cmap(k % 10), f"{tag}{bench} (base)", stars=False)
    _frame_axis(ax, rows)
    ax.set_ylabel("score")
    ax.set_title("Score against training frames (base dashed)")
    if rows:
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def write_figures(
    cfg: ExperimentConfig, trials: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]], out_dir: Path
) -> list[Figure]:
    """Draw every figure into out_dir; returns them in report order."""
    benches = list(dict.fromkeys([*cfg.eval.benchmarks, *(b for t in trials for b in t["scores"])]))
    return [
        Figure(
            "tradeoff",
            plot_tradeoff(rows, out_dir / "tradeoff.png"),
            "Image and video accuracy (base dashed) and Δ vs base against training frames",
        ),
        Figure(
            "fig2",
            plot_delta_per_benchmark(rows, benches, out_dir / "fig2_delta_per_benchmark.png"),
            "Fig. 2: Δ vs base per benchmark, one bar per trial",
        ),
        Figure(
            "fig4",
            plot_delta_by_scale(rows, out_dir / "fig4_delta_by_scale.png"),
            "Fig. 4: Δ image and Δ video average by model scale",
        ),
        Figure(
            "fig5",
            plot_score_vs_frames(rows, benches, out_dir / "fig5_score_vs_frames.png"),
            "Fig. 5: score against training frames per benchmark (base dashed)",
        ),
    ]
