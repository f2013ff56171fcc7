"""The curated set's statistics table (the study's supplementary table): JSON and Markdown.

Per source x instruction format: videos; per source: durations (probed seconds when the media
were probed, else the folder's duration bucket), turns per video, and question / answer lengths
in words. Counts of what the draw skipped (duplicates, missing members, rejects) come along, so
the table says how the subset was reached, not only what it holds.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from videosft.data.llava_video import FORMATS, subset_bucket
from videosft.data.manifest import strip_placeholders


def _words(text: str) -> int:
    return len(strip_placeholders(text).split())


def _summary(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {
        "mean": round(statistics.fmean(ordered), 3),
        "median": round(statistics.median(ordered), 3),
        "p90": round(p90, 3),
        "min": round(ordered[0], 3),
        "max": round(ordered[-1], 3),
    }


def row_facts(record: dict[str, Any]) -> dict[str, Any]:
    """Turns and word lengths of one curated row (LLaVA record)."""
    turns = record["conversations"]
    questions = [_words(t["value"]) for t in turns[0::2]]
    answers = [_words(t["value"]) for t in turns[1::2]]
    return {"turns": len(answers), "questions": questions, "answers": answers}


def build_stats(records: Sequence[dict[str, Any]], draw: dict[str, Any]) -> dict[str, Any]:
    """The statistics of `records` (curated LLaVA rows with data_source, format, duration)."""
    sources = sorted(
        {r["data_source"] for r in records} | set(draw.get("targets", {})), key=lambda s: (subset_bucket(s)[0], s)
    )  # buckets in duration order
    counts = {s: {f: 0 for f in FORMATS} for s in sources}
    per_source: dict[str, dict[str, list[float]]] = {
        s: {"duration": [], "turns": [], "q": [], "a": []} for s in sources
    }
    for record in records:
        src = record["data_source"]
        counts[src][record["format"]] += 1
        facts = row_facts(record)
        acc = per_source[src]
        if record.get("duration") is not None:
            acc["duration"].append(float(record["duration"]))
        acc["turns"].append(facts["turns"])
        acc["q"].extend(facts["questions"])
        acc["a"].extend(facts["answers"])
    table = {}
    for src in sources:
        acc = per_source[src]
        lo, hi = subset_bucket(src)
        table[src] = {
            "counts": counts[src],
            "videos": sum(counts[src].values()),
            "duration_bucket_s": [lo, hi],
            "duration_s": _summary(acc["duration"]),
            "turns": _summary(acc["turns"]),
            "question_words": _summary(acc["q"]),
            "answer_words": _summary(acc["a"]),
        }
    totals = {f: sum(counts[s][f] for s in sources) for f in FORMATS}
    every = [row_facts(r) for r in records]
    durations = [float(r["duration"]) for r in records if r.get("duration") is not None]
    return {
        "videos": len(records),
        "by_format": totals,
        "sources": table,
        "overall": {
            "duration_s": _summary(durations),
            "turns": _summary([f["turns"] for f in every]),
            "question_words": _summary([q for f in every for q in f["questions"]]),
            "answer_words": _summary([a for f in every for a in f["answers"]]),
        },
        "draw": draw,
    }


def _fmt(summary: dict[str, float] | None, key: str = "mean") -> str:
    return "-" if summary is None else f"{summary[key]:g}"


def stats_markdown(stats: dict[str, Any]) -> str:
    """The supplementary table: one line per source, then the totals and how the draw went."""
    head = (
        "| source | bucket (s) | " + " | ".join(FORMATS) + " | videos | duration s (mean / median) "
        "| turns (mean) | question words (mean / p90) | answer words (mean / p90) |"
    )
    lines = ["# Curated training set: statistics", "", head, "|" + "---|" * (len(FORMATS) + 7)]
    for src, row in stats["sources"].items():
        lo, hi = row["duration_bucket_s"]
        dur = f"{_fmt(row['duration_s'])} / {_fmt(row['duration_s'], 'median')}" if row["duration_s"] else "not probed"
        lines.append(
            f"| {src} | {lo:g}-{hi:g} | "
            + " | ".join(str(row["counts"][f]) for f in FORMATS)
            + f" | {row['videos']} | {dur} | {_fmt(row['turns'])} | "
            f"{_fmt(row['question_words'])} / {_fmt(row['question_words'], 'p90')} | "
            f"{_fmt(row['answer_words'])} / {_fmt(row['answer_words'], 'p90')} |"
        )
    overall = stats["overall"]
    dur = (
        f"{_fmt(overall['duration_s'])} / {_fmt(overall['duration_s'], 'median')}"
        if overall["duration_s"]
        else "not probed"
    )
    lines.append(
        "| **all** | | "
        + " | ".join(str(stats["by_format"][f]) for f in FORMATS)
        + f" | {stats['videos']} | {dur} | {_fmt(overall['turns'])} | "
        f"{_fmt(overall['question_words'])} / {_fmt(overall['question_words'], 'p90')} | "
        f"{_fmt(overall['answer_words'])} / {_fmt(overall['answer_words'], 'p90')} |"
    )
    draw = stats["draw"]
    lines += [
        "",
        f"Requested {draw['requested']} videos (seed {draw['seed']}); curated {stats['videos']}.",
        f"Skipped while drawing: {draw['duplicates']} already drawn under another source/format "
        f"(same video id), {draw['missing_media']} with no video file or archive member, "
        f"{sum(draw['rejected'].values())} rejected by filters"
        + (f" ({'; '.join(f'{n} x {k}' for k, n in sorted(draw['rejected'].items()))})" if draw["rejected"] else "")
        + ".",
        f"Short of target: {draw['short']} (cells whose candidates ran out; see `targets`/`drawn` in the JSON).",
    ]
    if draw.get("archive_errors"):
        lines.append(
            f"Archives not readable to their end ({len(draw['archive_errors'])}; members before the "
            "damage used): " + ", ".join(f"`{u.rsplit('/', 1)[-1]}`" for u in sorted(draw["archive_errors"])) + "."
        )
    return "\n".join(lines) + "\n"


def write_stats(stats: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / "curation_stats.json", out / "curation_stats.md"
    js.write_text(json.dumps(stats, indent=1) + "\n")
    md.write_text(stats_markdown(stats))
    return js, md
