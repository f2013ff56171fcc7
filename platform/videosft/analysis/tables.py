"""The report's tables, laid out once and rendered twice (Markdown here, HTML in html_report.py).

A `Table` holds already-formatted cells, so report.md and report.html can never disagree on a
number. Builders read the rows computed in tradeoff.py and the trials' summaries; a missing
value (an old summary without compute accounting, scores without intervals) renders as "–".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from videosft.analysis.alignment import second_moment_note, second_moment_rows
from videosft.analysis.attention import ATTENTION_NOTE, attention_rows
from videosft.analysis.compute import human_params
from videosft.analysis.tradeoff import best_budgets, budget_key, model_name, score_ci, sorted_trials
from videosft.benchmarks.protocols import get_protocol
from videosft.config import ExperimentConfig


@dataclass(frozen=True)
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


def fmt(v: Any, signed: bool = False, digits: int = 1) -> str:
    if v is None:
        return "–"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def _big(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f}"


def intro_lines(
    cfg: ExperimentConfig, rows: Sequence[Mapping[str, Any]], trials: Sequence[Mapping[str, Any]]
) -> list[str]:
    """One paragraph saying what was run, so a figure pasted elsewhere keeps its context."""
    models = ", ".join(f"`{m}`" for m in dict.fromkeys(r["model"] for r in rows)) or f"`{cfg.model.family}`"
    return [
        f"Model family `{cfg.model.family}` ({models}), sampling contract `{cfg.sampling.contract_id()}` "
        f"({cfg.sampling.mode}), {cfg.train.max_steps} optimizer steps per trial, "
        f"evaluation budget: {cfg.eval.frame_budget or 'the training budget'}; {protocol_line(cfg)}; "
        f"{len(trials)} trial(s)."
    ]


def protocol_line(cfg: ExperimentConfig) -> str:
    """Whose evaluation rules the real benchmarks' scores reproduce (the synthetic ones are ours)."""
    p = get_protocol(cfg.eval.protocol)
    return f"evaluation protocol `{p.name}` ({p.tool} {p.version}, {p.judge})"


def main_table(cfg: ExperimentConfig, rows: Sequence[Mapping[str, Any]], trials: Sequence[Mapping[str, Any]]) -> Table:
    """Image and video averages against the base, with the base, chance and best-budget notes."""
    body = [
        [
            r["label"],
            fmt(r["image"]),
            fmt(r["delta_image"], True),
            fmt(r["video"]),
            fmt(r["delta_video"], True),
            fmt(r["train_loss"]),
            str(r["rejected"]),
        ]
        for r in rows
    ]
    per_budget = {r["base_eval_budget"]: r for r in sorted(rows, key=lambda r: budget_key(r["base_eval_budget"]))}
    notes = [
        "Base accuracy at each evaluation budget: "
        + ", ".join(
            f"{k} frames: image {fmt(r['base_image'])}, video {fmt(r['base_video'])}" for k, r in per_budget.items()
        )
    ]
    chance = {name: s.get("chance") for name, s in (trials[0]["scores"].items() if trials else [])}
    if any(v is not None for v in chance.values()):
        notes.append(
            "Chance level (uniform guess among listed options): "
            + ", ".join(f"{name} {fmt(v)}" for name, v in chance.items() if v is not None)
        )
    for model, best in best_budgets(rows).items():
        notes.append(
            f"Best budget for `{model}`: video {best.get('video', '–')}, image {best.get('image', '–')}, "
            f"both (mean of image and video) {best.get('balanced', '–')}."
        )
    return Table(
        "Image vs video against the untuned base",
        ["train frames", "image acc", "Δ image", "video acc", "Δ video", "train loss", "rejected rows"],
        body,
        notes,
    )


def _cell(score: float | None, delta: float | None, ci: Sequence[float] | None, with_delta: bool = True) -> str:
    interval = f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else ""
    return f"{fmt(score)}{interval}" + (f" ({fmt(delta, True)})" if with_delta else "")


def benchmark_table(
    cfg: ExperimentConfig,
    base: Mapping[Any, Any],
    trials: Sequence[Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
) -> Table:
    """Every benchmark's score, 95% interval when the scores carry one, and Δ; base rows first."""
    benches = list(dict.fromkeys([*cfg.eval.benchmarks, *(b for t in trials for b in t["scores"])]))
    used = {r["base_eval_budget"] for r in rows}  # only the base evaluations some trial is compared with
    body = []
    for key in sorted(used, key=budget_key):
        scores = base[key]
        body.append(
            [f"base (eval {key} frames)"]
            + [_cell(scores.get(b, {}).get("overall"), None, score_ci(scores.get(b, {})), False) for b in benches]
        )
    for r in rows:
        body.append([r["label"]] + [_cell(r.get(b), r.get(f"delta_{b}"), r.get(f"ci_{b}")) for b in benches])
    notes = [
        "Cells: score [bootstrap confidence interval, when computed] (Δ vs base). "
        "Image average and video average are in the table above."
    ]
    return Table("Per benchmark (score, Δ vs base)", ["train frames", *benches], body, notes)


def hybrid_table(
    cfg: ExperimentConfig, trials: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]]
) -> Table:
    """The study's Table 2: Hybrid-Frame (per-sample budgets) beside every fixed budget."""
    by_key = {(model_name(t, cfg), str(t["frame_budget"])): t for t in trials}
    body = []
    for r in rows:
        comp = by_key[(r["model"], str(r["frame_budget"]))].get("compute") or {}
        kind = "fixed" if isinstance(r["frame_budget"], (int, float)) else "per-sample"
        body.append(
            [
                r["label"],
                kind,
                fmt(r["frames"]),
                _big(comp.get("visual_tokens_per_sample")),
                fmt(r["image"]),
                fmt(r["delta_image"], True),
                fmt(r["video"]),
                fmt(r["delta_video"], True),
                fmt(comp.get("device_hours"), digits=4),
            ]
        )
    notes = (
        []
        if any(not isinstance(t["frame_budget"], (int, float)) for t in trials)
        else [
            'No Hybrid-Frame trial in this sweep; a trial with frame_budget "hybrid" (and its mean_frames) adds a row.'
        ]
    )
    return Table(
        "Hybrid-Frame vs fixed budgets (the study's Table 2)",
        [
            "budget",
            "kind",
            "frames / video",
            "visual tokens / sample",
            "image acc",
            "Δ image",
            "video acc",
            "Δ video",
            "device-hours",
        ],
        body,
        notes,
    )


def compute_table(cfg: ExperimentConfig, trials: Sequence[Mapping[str, Any]]) -> Table:
    """What each trial cost: per trial (wall time, device-hours) and per training sample."""
    multi = len({model_name(t, cfg) for t in trials}) > 1
    body = []
    for t in sorted_trials(trials, cfg):
        c = t.get("compute") or {}
        label = f"{model_name(t, cfg)} · {t['frame_budget']}" if multi else str(t["frame_budget"])
        params = human_params((t.get("model") or {}).get("params"))
        body.append(
            [
                label,
                params,
                _big(c.get("samples_seen")),
                _big(c.get("visual_tokens_per_sample")),
                _big(c.get("visual_tokens_total")),
                fmt(c.get("train_wall_s")),
                fmt(c.get("eval_wall_s")),
                c.get("unit", "–"),
                fmt(c.get("device_hours"), digits=4),
                fmt(c.get("device_seconds_per_sample"), digits=3),
            ]
        )
    notes = [
        "Device-hours are reserved hours: wall time × devices held (GPUs on GPU runs, CPUs on CPU "
        "runs), training plus evaluation. Visual tokens per sample are measured by the train loop."
    ]
    return Table(
        "Compute per trial and per sample",
        [
            "trial",
            "params",
            "samples seen",
            "visual tokens / sample",
            "visual tokens",
            "train s",
            "eval s",
            "unit",
            "device-hours",
            "device-s / sample",
        ],
        body,
        notes,
    )


def provenance_table(cfg: ExperimentConfig, trials: Sequence[Mapping[str, Any]]) -> Table:
    """Sampling contract and data rejects per trial: the two things that silently skew a comparison."""
    want = cfg.sampling.contract_id()
    body = []
    for t in sorted_trials(trials, cfg):
        d = t.get("data") or {}
        contract = t.get("contract_id", "–")
        body.append(
            [
                str(t["frame_budget"]),
                model_name(t, cfg),
                f"`{contract}`" + (" ≠ config" if contract not in ("–", want) else ""),
                str(d.get("rows", "–")),
                str(d.get("rejected", "–")),
                str(d.get("rejects_path") or "–"),
                str(t.get("config_hash", "–")),
            ]
        )
    return Table(
        "Provenance: sampling contract and data rejects",
        ["train frames", "model", "sampling contract", "rows", "rejected", "rejects file", "config hash"],
        body,
        [f"The config's sampling contract is `{want}`; every score file records the one it was made with."],
    )


def report_tables(
    cfg: ExperimentConfig,
    base: Mapping[Any, Any],
    trials: Sequence[Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
) -> list[Table]:
    return [
        main_table(cfg, rows, trials),
        benchmark_table(cfg, base, trials, rows),
        hybrid_table(cfg, trials, rows),
        compute_table(cfg, trials),
        provenance_table(cfg, trials),
    ]


def to_markdown(table: Table) -> str:
    aligns = ["---"] + ["---:"] * (len(table.headers) - 1)  # labels left, numbers right
    lines = [f"## {table.title}", "", "| " + " | ".join(table.headers) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in table.rows]
    for note in table.notes:
        lines += ["", note]
    return "\n".join(lines)


def alignment_table(results: Sequence[Mapping[str, Any]]) -> Table:
    """Gradient alignment per checkpoint and frame budget (overall cosine, mean ± std over pairs)."""
    budgets = sorted({int(t) for r in results for t in r["budgets"]})
    rows = []
    for r in results:
        cells = []
        for t in budgets:
            cell = r["overall"].get(str(t))
            cells.append("–" if not cell or cell.get("mean") is None else f"{cell['mean']:+.3f} ± {cell['std']:.3f}")
        first = r.get("first_nonpositive_budget")
        rows.append([str(r.get("label") or r["checkpoint"]), *cells, "never" if first is None else str(first)])
    groups = sorted({g for r in results for g in r.get("groups", {})})
    notes = [
        "Cosine between the image-loss gradient and the video-loss gradient at T frames (same weights); "
        "negative means a video step undoes image skill. Per module group: " + ", ".join(groups) + " in results.json."
    ]
    return Table(
        "Gradient alignment (image vs video gradients)",
        ["checkpoint", *[f"T={t}" for t in budgets], "first T with cos ≤ 0"],
        rows,
        notes,
    )


def second_moment_table(results: Sequence[Mapping[str, Any]]) -> Table:
    """E||grad L_video||^2 per checkpoint and budget, split by minimal budget, with the bound's terms."""
    headers, rows = second_moment_rows(results)
    return Table("Second moment of the video gradient (Proposition 3)", headers, rows, [second_moment_note(results)])


def attention_table(results: Sequence[Mapping[str, Any]]) -> Table:
    """Answer-position attention on the target per checkpoint, modality and layer group (Figure 3)."""
    headers, rows = attention_rows(results)
    return Table("Attention on the target (Figure 3)", headers, rows, [ATTENTION_NOTE])
