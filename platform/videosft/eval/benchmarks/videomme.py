"""Video-MME: 2,700 four-option questions on 900 videos, short / medium / long.

Layout (HF ``lmms-lab/Video-MME``): a parquet (``videomme/test-*.parquet``, or under root or
``data/``) with video_id, duration, domain, sub_category, videoID, question_id, task_type,
question, options (["A. ...", ...]), answer ("A"); videos at ``<video_dir>/<videoID>.mp4``
(default ``root/data``; .MP4 / .mkv accepted); optional subtitles at
``<subtitle_dir>/<videoID>.srt`` (default ``root/subtitle``).

Prompt: the official Video-MME template ("Select the best answer ... Respond with only the
letter (A, B, C, or D) of the correct option." / question / options / "The best answer is:").
With ``subtitles=True`` the whole subtitle text (font tags stripped) is prepended with the
official "This video's subtitles are listed below:" header. The official protocol keeps only
the subtitle lines at the sampled frames; that depends on the frame budget, so each item also
carries ``subtitle_path`` for a runner that wants to redo it per budget.

Scores: ``overall`` (micro accuracy, as Video-MME and both tools report), ``duration/<d>``,
``task_type/<t>``, ``domain/<d>``. Extraction via ``answers.extract_choice``;
``overall_official_parse`` uses Video-MME's ``extract_characters_regex`` (first capital A-D
anywhere after removing answer prefixes), which also reads "Based on..." as B.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from videosft.eval.answers import corrects, group_accuracy, is_option_letter, judge_choice, pct
from videosft.eval.benchmarks import _io
from videosft.eval.benchmarks.base import Benchmark, EvalItem

DURATIONS = ("short", "medium", "long")
_INSTR = "Select the best answer to the following multiple-choice question based on the video{subs}. Respond with only the letter (A, B, C, or D) of the correct option."
_SUB_HEADER = "This video's subtitles are listed below:"
_LETTER_PREFIX = re.compile(r"^\s*\(?([A-Z])[\.\)]\s*")
_FONT = re.compile(r"<[^>]+>")


def srt_text(srt: str) -> str:
    """The spoken lines of an .srt file, one per cue, markup removed."""
    lines = []
    for block in re.split(r"\n\s*\n", srt.replace("\r\n", "\n")):
        rows = [r for r in block.strip().split("\n") if r.strip()]
        if len(rows) >= 3 and "-->" in rows[1]:
            text = _FONT.sub("", " ".join(rows[2:])).strip()
            if text:
                lines.append(text)
    return "\n".join(lines)


def build_prompt(question: str, options: Sequence[str], subtitles: str | None = None) -> str:
    opts = "\n".join(f"{'ABCDEFGH'[i]}. {t}" for i, t in enumerate(options))
    body = f"{_INSTR.format(subs=' and the subtitles' if subtitles is not None else '')}\n{question}\n{opts}\nThe best answer is:"
    if subtitles is None:
        return body
    return f"{_SUB_HEADER}\n{subtitles or 'No subtitles available'}\n{body}"


def _video_path(video_dir: str, vid: str) -> str:
    cands = [_io.join(video_dir, f"{vid}{ext}") for ext in (".mp4", ".MP4", ".mkv")]
    if _io.is_uri(video_dir):
        return cands[0]
    return next((c for c in cands if _io.exists(c)), cands[0])


def load(
    root: str,
    video_dir: str | None = None,
    subtitles: bool = False,
    subtitle_dir: str | None = None,
    durations: Sequence[str] = DURATIONS,
    **_: Any,
) -> list[EvalItem]:
    """Video-MME items (optionally only some durations; subtitles off by default)."""
    files = _io.find_tables(root, subdirs=("", "videomme", "data"), suffixes=(".parquet", ".jsonl", ".json"))
    if not files:
        raise _io.BenchmarkDataError(f"{root}: no Video-MME parquet/json found (looked in ., videomme/, data/)")
    video_dir = video_dir or _io.join(root, "data")
    subtitle_dir = subtitle_dir or _io.join(root, "subtitle")
    items: list[EvalItem] = []
    for f in files:
        rows = _io.read_table(f) if f.endswith(".parquet") else _io.read_json(f)
        for i, row in enumerate(rows):
            qid = str(_io.require(row, "question_id", f, f"row {i}"))
            where = f"question_id {qid}"
            duration = str(_io.require(row, "duration", f, where)).strip().lower()
            if duration not in DURATIONS:
                raise _io.BenchmarkDataError(f"{f} ({where}): field 'duration' {duration!r} not in {DURATIONS}")
            if duration not in durations:
                continue
            vid = str(_io.require(row, "videoID", f, where))
            raw_opts = list(_io.require(row, "options", f, where))
            options = [_LETTER_PREFIX.sub("", str(o), count=1).strip() for o in raw_opts]
            answer = str(_io.require(row, "answer", f, where)).strip().upper()
            if not is_option_letter(answer, len(options)):
                raise _io.BenchmarkDataError(f"{f} ({where}): field 'answer' {answer!r} is not an option letter")
            sub_path = _io.join(subtitle_dir, f"{vid}.srt")
            subs = None
            if subtitles:
                subs = srt_text(_io.read_text(sub_path)) if _io.exists(sub_path) else ""
            question = str(_io.require(row, "question", f, where)).strip()
            items.append(
                {
                    "id": qid,
                    "media_type": "video",
                    "media_path": _video_path(video_dir, vid),
                    "question": build_prompt(question, options, subs),
                    "answer": answer,
                    "options": options,
                    "cluster": vid,
                    "duration": duration,
                    "domain": str(row.get("domain", "")),
                    "sub_category": str(row.get("sub_category", "")),
                    "task_type": str(_io.require(row, "task_type", f, where)),
                    "subtitle_path": sub_path,
                }
            )
    return items


def official_parse(prediction: Any) -> str:
    """Video-MME / lmms-eval ``extract_characters_regex``."""
    s = str(prediction or "").strip()
    for prefix in ("The best answer is", "The correct answer is", "The answer is", "The answer",
                   "The best option is", "The correct option is", "Best answer:", "Best option:"):
        s = s.replace(prefix, "")
    m = re.search(r"[ABCD]", s)  # (its ">10 words and no letter" guard is implied by this)
    return m.group(0) if m else ""


judge = judge_choice  # per row: the extracted option letter (None if no rule decides), right or not


def score(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    correct = corrects(judge(r) for r in rows)
    official = [official_parse(r.get("prediction")) == str(r["answer"]).upper() for r in rows]
    out: dict[str, Any] = {
        "overall": pct(sum(correct), len(rows)),
        "overall_official_parse": pct(sum(official), len(rows)),
        "n": len(rows),
    }
    by_dur = group_accuracy(rows, correct, lambda r: str(r.get("duration", "")))
    out.update({f"duration/{d}": by_dur[d] for d in DURATIONS if d in by_dur})
    for key in ("task_type", "domain"):
        acc = group_accuracy(rows, correct, lambda r, k=key: str(r.get(k, "")))
        out.update({f"{key}/{k}": v for k, v in sorted(acc.items())})
    return out


VIDEOMME = Benchmark(name="videomme", modality="video", load=load, score=score, judge=judge)
