"""The trade-off report files of a run: report.md, report.html, the figures and results.json.

Writes into the run directory `report.md` (tables), `report.html` (the same tables and every
figure embedded, one file to mail or attach to a paper), the figures as PNGs, and `results.json`
(every number behind them), so `videosft report RUN_DIR` can re-render it without Ray or models.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from videosft.analysis.alignment import plot_alignment
from videosft.analysis.attention import plot_attention
from videosft.analysis.figures import Figure, write_figures
from videosft.analysis.html_report import write_html
from videosft.analysis.tables import (
    alignment_table,
    attention_table,
    intro_lines,
    report_tables,
    second_moment_table,
    to_markdown,
)
from videosft.analysis.tradeoff import best_budgets, tradeoff_rows
from videosft.config import ExperimentConfig


def write_report(
    cfg: ExperimentConfig,
    base: Mapping[Any, Any],
    trials: Sequence[Mapping[str, Any]],
    out_dir: Path,
    alignment: Sequence[Mapping[str, Any]] = (),
    attention: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write report.md, report.html, the figures and results.json; returns the Markdown path.

    `alignment`: gradient-alignment probe results (base and trials), drawn as a table and a figure.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = tradeoff_rows(cfg, base, trials)
    figures = write_figures(cfg, trials, rows, out_dir)
    (out_dir / "results.json").write_text(
        json.dumps(
            {
                "config": cfg.model_dump(mode="json"),
                "rows": rows,
                "base": {str(k): v for k, v in base.items()},
                "trials": list(trials),
                "best": best_budgets(rows),
                "alignment": list(alignment),
                "attention": list(attention),
            },
            indent=2,
            default=str,
        )
    )
    intro = intro_lines(cfg, rows, trials)
    tables = report_tables(cfg, base, trials, rows)
    if alignment:
        tables.append(alignment_table(alignment))
        figures.append(
            Figure(
                "alignment",
                plot_alignment(alignment, out_dir / "alignment.png"),
                "Gradient alignment: cosine of image-loss and video-loss gradients against the "
                "frame budget T, base and every trial (error bars: spread over batch pairs)",
            )
        )
    if alignment and any(r.get("second_moment") for r in alignment):
        tables.append(second_moment_table(alignment))
    if attention:
        tables.append(attention_table(attention))
        figures.append(
            Figure(
                "attention",
                plot_attention(attention, out_dir / "attention.png"),
                "Figure 3 in miniature: the answer position's attention over the frame (last layer "
                "group, mean over heads), base and every trial; boxes: the target",
            )
        )
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
    return write_report(
        cfg,
        base,
        results["trials"],
        run,
        alignment=results.get("alignment") or (),
        attention=results.get("attention") or (),
    )
