"""TempCompass: temporal perception (action, speed, direction, order, attribute change) asked in
several formats about the same videos (some of them played in reverse).

Layouts: the original repo's ``questions/<format>.json`` ({video_id: {dimension: [{question,
answer}, ...]}}) or the HF ``lmms-lab/TempCompass`` parquet (``<format>/*.parquet`` with
video_id, question, answer, dim); videos at ``<video_dir>/<video_id>.mp4`` (default
``root/videos``).

Formats: ``multi-choice`` (answer "B. fast"), ``yes_no`` (answer yes/no), ``caption_matching``
(options "Caption A: ...", "Sentence B: ...", "Option 1: ..."; answer is one such line) and
``captioning``. Captioning is scored only by an LLM judge (the official protocol asks GPT to
answer the multi-choice question from the caption), so it is off by default; when requested,
its rows must carry ``judge_rating`` (0/1) from such a judge before scoring.

Prompts: the official TempCompass answer prompts ("\\nPlease directly give the best option:",
"\\nPlease answer yes or no:"). Extraction: the official rule-based matchers (exact answer,
"B", "B.", "B)" for multi-choice; startswith yes/no; option line / sentence / label for caption
matching) are all subsumed by the fixed rules here; where the official scripts then ask
ChatGPT, an unmatched answer is wrong (the official ``--disable_llm`` behaviour).

Scores: ``<format>/overall`` and ``<format>/<dimension>``; ``dim/<dimension>`` over all loaded
formats; ``overall`` = micro accuracy over every loaded question; ``format_mean`` = mean of the
per-format accuracies.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from videosft.eval.answers import (CORRECT, Verdict, corrects, group_accuracy, is_option_letter, judge_choice,
                                  judge_yes_no, judged, mean, pct, strip_answer_prefixes, verdict)
from videosft.eval.benchmarks import _io
from videosft.eval.benchmarks.base import Benchmark, EvalItem

FORMATS = ("multi-choice", "yes_no", "caption_matching", "captioning")
DEFAULT_FORMATS = ("multi-choice", "yes_no", "caption_matching")
DIMENSIONS = ("action", "speed", "direction", "order", "attribute_change")
ANSWER_PROMPT = {
    "multi-choice": "\nPlease directly give the best option:",
    "yes_no": "\nPlease answer yes or no:",
    "caption_matching": "\nPlease directly give the best option:",
    "captioning": "",  # the released captioning question already ends in its instruction
}
_MC_LINE = re.compile(r"^([A-Z])\.\s*(.*)$")
_CM_LINE = re.compile(r"^((?:Caption|Sentence|Option)\s+([A-Z0-9]+)):\s*(.*)$")


def _records(root: str, fmt: str) -> list[tuple[str, str, dict[str, Any], str]]:
    """(video_id, dimension, record, source file) for one format, from either layout."""
    path = _io.join(root, "questions", f"{fmt}.json")
    if _io.exists(path):
        data = _io.read_json(path)
        if not isinstance(data, dict):
            raise _io.BenchmarkDataError(f"{path}: expected {{video_id: {{dimension: [questions]}}}}")
        return [(vid, dim, q, path) for vid, dims in data.items() for dim, qs in dims.items() for q in qs]
    files = _io.find_tables(_io.join(root, fmt), subdirs=("",)) if _io.is_dir(_io.join(root, fmt)) else []
    if not files:
        raise _io.BenchmarkDataError(f"{path}: TempCompass {fmt} questions not found (nor {fmt}/*.parquet)")
    out = []
    for f in files:
        for i, row in enumerate(_io.read_table(f)):
            vid = str(_io.require(row, "video_id", f, f"row {i}"))
            out.append((vid, str(_io.require(row, "dim", f, f"row {i}")), row, f))
    return out


def _mc_fields(question: str, answer: str, src: str, where: str) -> tuple[list[str], str]:
    opts = [m.group(2).strip() for m in map(_MC_LINE.match, question.split("\n")[1:]) if m]
    letter = answer.strip()[:1]
    if not is_option_letter(letter, len(opts)):
        raise _io.BenchmarkDataError(f"{src} ({where}): field 'answer' {answer!r} does not name an option")
    return opts, letter


def _cm_fields(question: str, answer: str, src: str, where: str) -> tuple[list[str], list[str], str]:
    lines = [m for m in map(_CM_LINE.match, question.split("\n")[1:]) if m]
    labels, sents = [m.group(1) for m in lines], [m.group(3).strip() for m in lines]
    ans = answer.strip()
    pos = next((i for i, m in enumerate(lines) if ans in (m.group(0).strip(), m.group(1))), None)
    if pos is None:
        raise _io.BenchmarkDataError(f"{src} ({where}): field 'answer' {answer!r} is not one of the caption lines")
    return sents, labels, "ABCDEFGH"[pos]


def load(root: str, formats: Sequence[str] = DEFAULT_FORMATS, video_dir: str | None = None, **_: Any) -> list[EvalItem]:
    """TempCompass items for the requested formats (captioning needs a judge: off by default)."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown TempCompass format(s) {bad}; known: {FORMATS}")
    video_dir = video_dir or _io.join(root, "videos")
    items: list[EvalItem] = []
    for fmt in formats:
        counters: dict[tuple[str, str], int] = {}
        for vid, dim, rec, src in _records(root, fmt):
            k = counters[(vid, dim)] = counters.get((vid, dim), -1) + 1
            where = f"video {vid}, {dim} #{k}"
            question = str(_io.require(rec, "question", src, where)).strip()
            answer = str(_io.require(rec, "mc_answer" if fmt == "captioning" else "answer", src, where))
            item: EvalItem = {
                "id": f"{fmt}/{vid}/{dim}/{k}", "media_type": "video",
                "media_path": _io.join(video_dir, f"{vid}.mp4"), "question": question + ANSWER_PROMPT[fmt],
                "answer": answer.strip(), "options": [], "cluster": vid, "format": fmt, "dim": dim,
            }
            if fmt == "multi-choice":
                item["options"], item["answer"] = _mc_fields(question, answer, src, where)
            elif fmt == "yes_no":
                item["answer"] = answer.strip().lower()
                if item["answer"] not in ("yes", "no"):
                    raise _io.BenchmarkDataError(f"{src} ({where}): field 'answer' must be yes/no, got {answer!r}")
            elif fmt == "caption_matching":
                item["options"], item["option_labels"], item["answer"] = _cm_fields(question, answer, src, where)
            else:
                item["mc_question"] = str(rec.get("mc_question", ""))
            items.append(item)
    return items


def caption_choice(prediction: Any, sentences: Sequence[str], labels: Sequence[str]) -> str:
    """Letter (position) of the caption a prediction picked: full line, label, or sentence."""
    s = strip_answer_prefixes(str(prediction or "")).strip()
    low = s.lower().rstrip(". ").strip()
    shorts = [lab.split()[-1].lower() for lab in labels]
    for i, (lab, sent) in enumerate(zip(labels, sentences)):
        full = f"{lab}: {sent}".lower().rstrip(". ")
        if low in (full, lab.lower(), shorts[i], sent.lower().rstrip(". ")):
            return "ABCDEFGH"[i]
    # A leading label: "Caption B ...", "Option 2: ...", "B.", "(2)", "1:"; a bare "A man ..."
    # is the article, not a label.
    m = re.match(r"^(?:caption|sentence|option)\s+([a-z0-9]+)\b", low) or re.match(r"^\(?([a-z0-9])(?:[.):]|$)", low)
    if m and m.group(1) in shorts:
        return "ABCDEFGH"[shorts.index(m.group(1))]
    hits = [i for i, sent in enumerate(sentences) if sent and sent.lower().rstrip(". ") in low]
    return "ABCDEFGH"[hits[0]] if len(hits) == 1 else ""


def _captioning_rating(row: Mapping[str, Any]) -> bool:
    if row.get("judge_rating") not in (0, 1, True, False):
        raise ValueError(f"TempCompass captioning row {row.get('id')} has no judge_rating: captioning needs an LLM judge")
    return bool(row["judge_rating"])


@judged
def judge(row: Mapping[str, Any]) -> Verdict:
    """Per row, by format: multi-choice -> option letter; yes_no -> "yes"/"no"; caption_matching ->
    the letter (position) of the caption picked; captioning -> the caption itself, right per its
    external ``judge_rating`` (no rule extracts an answer from a caption)."""
    fmt = row.get("format")
    if fmt == "multi-choice":
        return judge_choice(row)
    if fmt == "yes_no":
        return judge_yes_no(row)
    if fmt == "caption_matching":
        got = caption_choice(row.get("prediction", ""), row["options"], row["option_labels"])
        return verdict(got, got == row["answer"])
    if fmt == "captioning":
        return verdict(str(row.get("prediction", "")).strip(), _captioning_rating(row))
    raise ValueError(f"TempCompass row {row.get('id')} has unknown format {fmt!r}")


def is_correct(row: Mapping[str, Any]) -> bool:
    return judge(row)[CORRECT]


def score(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    correct = corrects(judge(r) for r in rows)
    out: dict[str, Any] = {"overall": pct(sum(correct), len(rows)), "n": len(rows)}
    by_fmt = group_accuracy(rows, correct, lambda r: str(r["format"]))
    for fmt in FORMATS:
        if fmt not in by_fmt:
            continue
        out[f"{fmt}/overall"] = by_fmt[fmt]
        sub = [(r, ok) for r, ok in zip(rows, correct) if r["format"] == fmt]
        dims = group_accuracy([r for r, _ in sub], [ok for _, ok in sub], lambda r: str(r["dim"]))
        out.update({f"{fmt}/{d}": v for d, v in sorted(dims.items())})
    out["format_mean"] = mean(by_fmt.values())
    by_dim = group_accuracy(rows, correct, lambda r: str(r["dim"]))
    out.update({f"dim/{d}": v for d, v in sorted(by_dim.items())})
    return out


TEMPCOMPASS = Benchmark(name="tempcompass", modality="video", load=load, score=score, judge=judge)
