"""Video-MMMU: knowledge acquisition from lecture videos, in three tracks of 300 questions:
perception, comprehension, adaptation (apply what was taught to a new problem).

Layout (HF ``lmms-lab/VideoMMMU``): one config folder per track (``Perception/``,
``Comprehension/``, ``Adaptation/``) holding parquet (or .json/.jsonl) rows with id
("<split>_<Subject>_<n>"), question, options (list, may be empty), answer (letter, or the value
for open questions), question_type ("multiple-choice" / open), and for adaptation an image.
Videos are at ``<video_dir>/<Discipline>/<id>.mp4`` (discipline from the subject, as lmms-eval
lays them out; default ``video_dir`` = root), else ``<video_dir>/<id>.mp4``.

Prompts: lmms-eval's ("Please directly output the option letter/data as the answer." after the
question for perception/comprehension; the "You should watch and learn the video content. Then
apply what you learned to answer ..." preamble for adaptation). An adaptation row's image, if
present, is cached and its path given as ``question_image_path``.

Scoring: multiple-choice via ``answers.extract_choice`` (MMMU's parser falls back to a random
option; here unparseable is wrong); open answers via MMMU's deterministic open-answer rule (key
sub-response after words like "is"/"therefore"/"=", numbers compared rounded to 2 decimals,
strings by containment). lmms-eval drops empty open predictions ("API Error") from the
denominator; here they are wrong. ``track/<t>`` accuracies, ``overall`` = micro over all loaded
questions (equals the mean of the three 300-question tracks on the full set), ``track_mean``.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from videosft.eval.answers import (CORRECT, Verdict, corrects, format_options, group_accuracy, is_option_letter,
                                  judge_choice, judged, mean, pct, verdict)
from videosft.eval.benchmarks import _io
from videosft.eval.benchmarks.base import Benchmark, EvalItem

TRACKS = ("Perception", "Comprehension", "Adaptation")
DISCIPLINES = {
    "Art": ("Art", "Art_Theory", "Design", "Music"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Humanities": ("History", "Literature", "Sociology", "Psychology"),
    "Engineering": ("Agriculture", "Architecture_and_Engineering", "Computer_Science", "Electronics",
                    "Energy_and_Power", "Materials", "Mechanical_Engineering"),
    "Medicine": ("Basic_Medical_Science", "Clinical_Medicine", "Diagnostics_and_Laboratory_Medicine",
                 "Pharmacy", "Public_Health"),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
}
_SUBJECT_TO_DISCIPLINE = {s: d for d, subs in DISCIPLINES.items() for s in subs}
POST = "\nPlease directly output the option letter/data as the answer."
ADAPT_PRE = ("Please directly output the option letter/data as the answer. You should watch and learn the video "
             "content. Then apply what you learned to ")
ADAPT_MCQ = "answer the following multi-choice question. The image for this question is at the end of the video.\n"
ADAPT_OPEN = "answer the following open-ended question. The image for this question is at the end of the video.\n"
_LETTER_PREFIX = re.compile(r"^\s*([A-Z])\.\s*")


def subject_of(item_id: str) -> str:
    return "_".join(str(item_id).split("_")[1:-1])


def _prompt(track: str, question: str, options: list[str], is_mc: bool) -> str:
    body = f"{question}\n{format_options(options)}" if is_mc else question
    if track != "Adaptation":
        return body + POST
    return ADAPT_PRE + (ADAPT_MCQ if is_mc else ADAPT_OPEN) + body


def _track_files(root: str, track: str) -> list[str]:
    for name in (track, track.lower()):
        d = _io.join(root, name)
        if _io.is_dir(d):
            files = _io.find_tables(d, subdirs=("",), suffixes=(".parquet", ".json", ".jsonl"))
            if files:
                return files
    raise _io.BenchmarkDataError(f"{_io.join(root, track)}: Video-MMMU track folder with parquet/json not found")


def load(root: str, tracks: Sequence[str] = TRACKS, video_dir: str | None = None,
         cache_dir: str | None = None, **_: Any) -> list[EvalItem]:
    """Video-MMMU items for the requested tracks."""
    names = {t.lower(): t for t in TRACKS}
    if any(t.lower() not in names for t in tracks):
        raise ValueError(f"unknown Video-MMMU track(s) {list(tracks)}; known: {TRACKS}")
    video_dir = video_dir or root
    items: list[EvalItem] = []
    for track in (names[t.lower()] for t in tracks):
        for f in _track_files(root, track):
            rows = _io.read_table(f) if f.endswith(".parquet") else _io.read_json(f)
            for i, row in enumerate(rows):
                vid = str(_io.require(row, "id", f, f"row {i}"))
                where = f"id {vid}"
                options = [_LETTER_PREFIX.sub("", str(o), count=1) for o in (row.get("options") or [])]
                qtype = str(row.get("question_type") or ("multiple-choice" if options else "open"))
                is_mc = qtype == "multiple-choice" or (qtype == "perception" and bool(options))
                answer = str(_io.require(row, "answer", f, where)).strip()
                if is_mc and not is_option_letter(answer.upper(), len(options)):
                    raise _io.BenchmarkDataError(f"{f} ({where}): field 'answer' {answer!r} is not an option letter")
                discipline = _SUBJECT_TO_DISCIPLINE.get(subject_of(vid), "")
                rel = f"{discipline}/{vid}.mp4" if discipline else f"{vid}.mp4"
                item: EvalItem = {
                    "id": f"{track}/{vid}", "media_type": "video", "media_path": _io.join(video_dir, rel),
                    "question": _prompt(track, str(_io.require(row, "question", f, where)).strip(), options, is_mc),
                    "answer": answer.upper() if is_mc else answer, "options": options if is_mc else [],
                    "cluster": vid, "track": track, "question_type": "multiple-choice" if is_mc else "open",
                    "discipline": discipline,
                }
                image = row.get("image")
                if isinstance(image, Mapping) and not image.get("bytes"):
                    image = None  # HF Image column with no picture for this row
                if image:
                    item["question_image_path"] = _io.cache_image_cell(
                        image, cache_dir or _io.default_cache_dir("videommmu"), vid, f)
                items.append(item)
    return items


# ---- MMMU open-answer rule (deterministic part of MMMU / lmms-eval eval_utils) ----
_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ", "are ",
               "in total ", "total ", "identify ", "recognize ", "calculated as ", "counted as ", "measured as ",
               "observed as ", "concluded as ", "found to be ", "equals ", "determined to be ", "number of ",
               "value is ", "adds up to ", "have ", "has ")
_NUM = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b|-?\d+(?:\.\d+)?[eE][+-]?\d+|-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")


def _normalize(s: str) -> list[Any]:
    s = s.strip()
    try:
        return [round(float(s.replace(",", "")), 2)]
    except ValueError:
        s = s.lower()
        return [" " + s, s + " "] if len(s) == 1 else [s]


def open_candidates(response: str) -> list[Any]:
    """MMMU ``parse_open_response``: key tails of each line plus every number in them."""
    text = response.strip().strip(".").lower()
    subs = re.split(r"\n", text)
    keys = []
    for idx, sub in enumerate(subs):
        inds = _INDICATORS + (("=",) if idx == len(subs) - 1 else ())
        tails = [sub.split(ind)[-1].strip() for ind in inds if ind in sub]
        tails = [t for t in tails if t and t not in (":", ",", ".", "!", "?", ";", "'")]
        if tails:
            keys.append(min(tails, key=len))
    keys = keys or [text]
    preds = keys + [n for k in keys for n in _NUM.findall(k)]
    out: list[Any] = []
    for p in preds:
        for v in _normalize(p):
            if v not in out:
                out.append(v)
    return out


def open_answer(prediction: Any, answer: str) -> tuple[str, bool]:
    """(extracted, correct) by MMMU's open rule: the first candidate matching a gold normalization,
    else the first candidate (the key response) and False; ("", False) for an empty prediction."""
    text = str(prediction or "")
    if not text.strip():
        return "", False
    golds = _normalize(str(answer))
    cands = open_candidates(text)
    for pred in cands:
        if isinstance(pred, str):
            if any(isinstance(g, str) and g in pred for g in golds):
                return pred.strip(), True
        elif pred in golds:
            return _fmt(pred), True
    first = cands[0] if cands else ""
    return (first.strip() if isinstance(first, str) else _fmt(first)), False


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def open_correct(prediction: Any, answer: str) -> bool:
    return open_answer(prediction, answer)[1]


@judged
def judge(row: Mapping[str, Any]) -> Verdict:
    """Per row: the option letter (multiple-choice) or the matched / key open-answer text (open)."""
    if row.get("question_type") == "open":
        return verdict(*open_answer(row.get("prediction"), str(row["answer"])))
    return judge_choice(row)


def is_correct(row: Mapping[str, Any]) -> bool:
    return judge(row)[CORRECT]


def score(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    correct = corrects(judge(r) for r in rows)
    by_track = group_accuracy(rows, correct, lambda r: str(r["track"]))
    out: dict[str, Any] = {"overall": pct(sum(correct), len(rows)), "track_mean": mean(by_track.values()), "n": len(rows)}
    out.update({f"track/{t}": by_track[t] for t in TRACKS if t in by_track})
    by_disc = group_accuracy(rows, correct, lambda r: str(r.get("discipline", "")))
    out.update({f"discipline/{d}": v for d, v in sorted(by_disc.items()) if d})
    return out


VIDEOMMMU = Benchmark(name="videommmu", modality="video", load=load, score=score, judge=judge)
