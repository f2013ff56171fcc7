"""The project's own synthetic spatial/temporal evaluation splits (made by data/synthetic.py).

Layout (LLaVA-Video-178K style), under a root directory:
  eval_image.json / eval_video.json: a list of
    {"id", "image" | "video": path relative to root,
     "conversations": [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", "value": ans}],
     "task", "min_frames", "options" (optional list)}
Every question has a known minimal sufficient frame budget (``min_frames``), so scores are broken
down per task and per min_frames: that is how the frame-budget trade-off is read off.

Scoring: a prediction is right when its first words, lowercased and stripped of punctuation,
equal the lowercased answer (first word for the usual one-word answers; first k words for a
k-word answer). The generator's answers are single words by design, so no parser is needed and
no parse can be lenient. ``judge`` records those first words as the row's extracted answer.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

from videosft.benchmarks import _io
from videosft.benchmarks.answers import CORRECT, Verdict, corrects, group_accuracy, judged, pct, verdict
from videosft.benchmarks.base import Benchmark, EvalItem

_PLACEHOLDER = re.compile(r"<(?:image|video)>\s*")


def _turn(conv: Sequence[Mapping[str, Any]], speaker: str, source: str, rid: str) -> str:
    for t in conv:
        if isinstance(t, Mapping) and t.get("from") == speaker:
            return str(_io.require(t, "value", source, f"id={rid} conversations"))
    raise _io.BenchmarkDataError(f"{source} (id={rid}): field 'conversations' has no {speaker!r} turn")


def load_split(root: str, filename: str, media_type: str) -> list[EvalItem]:
    """Load one synthetic split (eval_image.json or eval_video.json) under ``root``."""
    source = _io.join(root, filename)
    records = _io.read_json(source)
    if not isinstance(records, list):
        raise _io.BenchmarkDataError(f"{source}: expected a JSON list of records")
    items: list[EvalItem] = []
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise _io.BenchmarkDataError(f"{source} (record {i}): expected an object")
        rid = str(_io.require(rec, "id", source, f"record {i}"))
        rel = str(_io.require(rec, media_type, source, f"id={rid}"))
        conv = _io.require(rec, "conversations", source, f"id={rid}")
        if not isinstance(conv, list):
            raise _io.BenchmarkDataError(f"{source} (id={rid}): field 'conversations' is not a list")
        question = _PLACEHOLDER.sub("", _turn(conv, "human", source, rid)).strip()
        items.append(
            {
                "id": rid,
                "media_type": media_type,
                "media_path": rel if _io.is_uri(rel) else _io.join(root, rel),
                "question": question,
                "answer": _turn(conv, "gpt", source, rid).strip(),
                "options": [str(o) for o in rec.get("options") or []],
                "cluster": rel,
                "task": str(rec.get("task", "")),
                "min_frames": int(rec.get("min_frames", -1)),
            }
        )
    return items


def load_image(root: str, **_: Any) -> list[EvalItem]:
    return load_split(root, "eval_image.json", "image")


def load_video(root: str, **_: Any) -> list[EvalItem]:
    return load_split(root, "eval_video.json", "video")


def _words(s: Any) -> list[str]:
    table = str.maketrans({c: " " for c in string.punctuation})
    return str(s or "").lower().translate(table).split()


@judged
def judge(row: Mapping[str, Any]) -> Verdict:
    """Extracted: the prediction's first k words (k = words in the answer), lowercased, punctuation
    dropped; right when they equal the answer's words."""
    ans = _words(row["answer"])
    got = _words(row.get("prediction", ""))[: len(ans)]
    return verdict(" ".join(got), bool(ans) and got == ans)


def is_correct(row: Mapping[str, Any]) -> bool:
    """First k words of the prediction (k = words in the answer) equal the answer, lowercased."""
    return judge(row)[CORRECT]


def chance(rows: Sequence[Mapping[str, Any]]) -> float | None:
    """Expected accuracy of uniform guessing among each question's listed options (0..100)."""
    opts = [len(r.get("options") or []) for r in rows]
    if not rows or not all(opts):
        return None
    return 100.0 * sum(1.0 / n for n in opts) / len(opts)


def score(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """overall accuracy, plus ``task/<task>`` and ``min_frames/<n>`` breakdowns (all 0..100)."""
    correct = corrects(judge(r) for r in rows)
    out: dict[str, Any] = {"overall": pct(sum(correct), len(rows)), "n": len(rows), "chance": chance(rows)}
    for task, acc in group_accuracy(rows, correct, lambda r: str(r.get("task", ""))).items():
        out[f"task/{task}"] = acc
    by_mf = group_accuracy(rows, correct, lambda r: int(r.get("min_frames", -1)))
    for mf in sorted(by_mf):
        out[f"min_frames/{mf}"] = by_mf[mf]
    return out


# Our own benchmarks: one rule set under every protocol; answers are one word or letter, so 4 tokens.
SYNTHETIC_IMAGE = Benchmark(
    name="synthetic_image", modality="image", load=load_image, score=score, judge=judge, max_new_tokens=4
)
SYNTHETIC_VIDEO = Benchmark(
    name="synthetic_video", modality="video", load=load_video, score=score, judge=judge, max_new_tokens=4
)
