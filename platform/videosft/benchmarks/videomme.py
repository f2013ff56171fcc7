"""Video-MME: 2,700 four-option questions on 900 videos, short / medium / long, one variant per protocol.

Layouts read (``layout`` option; ``auto`` picks by what is in ``root``):

- ``hf`` (``lmms-lab/Video-MME`` as downloaded, what lmms-eval reads): ``videomme/test-00000-of-00001.parquet``
  (video_id, duration, domain, sub_category, url, videoID, question_id, task_type, question, options
  ["A. ...", ...], answer "A"); videos unpacked from ``videos_chunked_*.zip`` into ``data/<videoID>.mp4``
  (.MP4 / .mkv accepted, as lmms-eval's ``videomme_doc_to_visual``); subtitles from ``subtitle.zip`` in
  ``subtitle/<videoID>.srt``.
- ``vlmevalkit`` (what VLMEvalKit's ``VideoMME.prepare_dataset`` leaves): ``Video-MME.tsv`` (index, video,
  video_path "./video/<id>.mp4", duration, domain, candidates (a Python list literal), sub_category, task_type,
  subtitle_path "./subtitle/<id>.srt", question, answer); videos in ``video/``.

Protocols:

- ``lmms_eval`` (0.7.3): task ``videomme`` (``videomme_doc_to_text`` with the YAML's default kwargs, whose
  instruction says "based on the video and the subtitles" even without subtitles - reproduced) or, with
  ``subtitles: true``, task ``videomme_w_subtitle`` (``videomme_doc_to_text_subtitle``: the subtitle cues at
  ``frame_num`` = 32 uniformly sampled frames, read by OpenCV's fps / frame count, font-tag text only, in
  ``list(set(...))`` order). 16 new tokens. Parse: ``extract_mcq_answer`` (``_task_utils/mcq_extract.py``)
  over A-D; an empty or unparseable answer is wrong and stays in the denominator. Score: micro accuracy
  (``videomme_aggregate_results``); the logged per-duration / domain / sub-category / task numbers are
  reported too, computed with its substring key matching.
- ``vlmevalkit`` (0.2rc1@e8e78f0): ``VideoMME.build_prompt`` (video_llm: template + "Question: ...\nAnswer: "),
  parse ``extract_characters_regex`` (its missing-comma prefixes reproduced: "The best option isThe correct
  option is", "Best answer:Best option:"), and where that finds nothing the ``extract_option`` path under
  ``exact_matching`` (options read from the question's own extra lines, usually none -> "Z", wrong): the row
  is flagged ``needs_judge`` (VLMEvalKit's default would ask an LLM). Score: ``get_dimension_rating``.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from videosft.benchmarks import _io
from videosft.benchmarks.answers import extract_choice, unanswered
from videosft.benchmarks.base import Benchmark, EvalItem
from videosft.benchmarks.lmms_eval_rules import extract_mcq_answer
from videosft.benchmarks.vlmevalkit_rules import can_infer

DURATIONS = ("short", "medium", "long")
CATEGORIES = (
    "Knowledge",
    "Film & Television",
    "Sports Competition",
    "Artistic Performance",
    "Life Record",
    "Multilingual",
)
SUB_CATEGORIES = (
    "Humanity & History",
    "Literature & Art",
    "Biology & Medicine",
    "Finance & Commerce",
    "Astronomy",
    "Geography",
    "Law",
    "Life Tip",
    "Technology",
    "Animation",
    "Movie & TV Show",
    "Documentary",
    "News Report",
    "Esports",
    "Basketball",
    "Football",
    "Athletics",
    "Other Sports",
    "Stage Play",
    "Magic Show",
    "Variety Show",
    "Acrobatics",
    "Handicraft",
    "Food",
    "Fashion",
    "Daily Life",
    "Travel",
    "Pet & Animal",
    "Exercise",
    "Multilingual",
)
TASK_CATEGORIES = (
    "Temporal Perception",
    "Spatial Perception",
    "Attribute Perception",
    "Action Recognition",
    "Object Recognition",
    "OCR Problems",
    "Counting Problem",
    "Temporal Reasoning",
    "Spatial Reasoning",
    "Action Reasoning",
    "Object Reasoning",
    "Information Synopsis",
)
LETTERS = ("A", "B", "C", "D")
OPTIONS = ("layout", "video_dir", "subtitles", "subtitle_dir", "durations", "frame_num")
LAYOUTS = ("auto", "hf", "vlmevalkit")

# ---- lmms-eval 0.7.3 prompts (tasks/videomme/utils.py + videomme.yaml / videomme_w_subtitle.yaml) ----
LMMS_OPTION_PROMPT = (
    "Select the best answer to the following multiple-choice question based on the video and the "
    "subtitles. Respond with only the letter (A, B, C, or D) of the correct option."
)
LMMS_POST_PROMPT = "\nAnswer with the option's letter from the given choices directly."  # videomme.yaml default
LMMS_SUB_HEADER = "This video's subtitles are listed below: \n"
LMMS_FRAME_NUM = 32  # videomme_w_subtitle.yaml default frame_num
_FONT_TEXT = re.compile(r'<font color="white" size=".72c">(.*?)</font>')

# ---- VLMEvalKit e8e78f0 prompts (vlmeval/dataset/videomme.py, VideoMME) ----
VLM_TMPL_NOSUB = (
    "\nThese are the frames of a video. Select the best answer to the following multiple-choice "
    "question based on the video. Respond with only the letter (A, B, C, or D) of the correct option.\n"
)
VLM_TMPL_SUB = (
    "\nThese are the frames of a video. This video's subtitles are listed below:\n{}\nSelect the best "
    "answer to the following multiple-choice question based on the video. Respond with only the letter "
    "(A, B, C, or D) of the correct option.\n"
)
_LETTER_PREFIX = re.compile(r"^\s*\(?([A-Z])[\.\)]\s*")


# ---------------------------------------------------------------- subtitles (lmms-eval)


def _parse_srt_time(t: str) -> float:
    h, m, s_ms = t.split(":")
    s, ms = s_ms.split(",")
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def srt_cues(text: str) -> dict[tuple[float, float], str]:
    """lmms-eval ``load_subtitles``: {(start_s, end_s): text}, sections split on blank lines (a repeated
    time range keeps its first position and its last text, as a dict does)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # it opens the file in text mode
    cues: dict[tuple[float, float], str] = {}
    for section in text.split("\n\n"):
        if section.strip():
            lines = section.split("\n")
            if len(lines) >= 3:
                start, end = lines[1].split(" --> ")
                cues[(_parse_srt_time(start), _parse_srt_time(end))] = " ".join(lines[2:])
    return cues


def video_frame_info(path: str) -> tuple[float, int]:
    """(fps, frame count) as OpenCV reports them (lmms-eval's ``extract_subtitles``); (0, 0) if unreadable."""
    import cv2

    cap = cv2.VideoCapture(path)
    try:
        return float(cap.get(cv2.CAP_PROP_FPS)), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()


def subtitles_at_frames(srt: str, fps: float, total_frame: int, frame_num: int = LMMS_FRAME_NUM) -> str:
    """lmms-eval ``videomme_doc_to_text_subtitle``'s subtitle text: the cues covering ``frame_num`` uniformly
    sampled frames (-1: every frame), each cue's font-tagged text, joined by newlines."""
    by_frame = [(int(s * fps), int(e * fps), t) for (s, e), t in srt_cues(srt).items()]
    if frame_num == -1:
        frame_num = total_frame
    frames = np.linspace(0, total_frame - 1, frame_num, dtype=int).tolist()
    picked = []
    for f in frames:
        for idx, (s, e, _) in enumerate(by_frame):
            if s <= f < e:
                picked.append(idx)
    texts = []
    for idx in list(set(picked)):  # upstream's order: a set of ints
        found = _FONT_TEXT.findall(by_frame[idx][2])
        if found:
            texts.append(found[0])
    return "\n".join(texts)


# ---------------------------------------------------------------- prompts


def lmms_prompt(question: str, raw_options: Sequence[str], subtitle: str | None = None) -> str:
    """lmms-eval's text for a doc: ``videomme_doc_to_text`` (subtitle None) or ``_subtitle`` (the subtitle
    text already chosen; "" from a file with no font-tagged cue at the sampled frames)."""
    body = question + "\n" + "\n".join(str(o) for o in raw_options)
    if subtitle is None:
        return LMMS_OPTION_PROMPT + "\n" + body + "\n" + LMMS_POST_PROMPT
    return LMMS_SUB_HEADER + subtitle + "\n" + LMMS_OPTION_PROMPT + "\n" + body + "\n" + "The best answer is:"


def vlm_prompt(question: str, raw_options: Sequence[str], subtitle: str | None = None) -> str:
    """VLMEvalKit ``VideoMME.build_prompt`` (video_llm) text parts, concatenated: SYS (""), the template,
    "Question: <question>\\n<candidates>\\nAnswer: "."""
    tmpl = VLM_TMPL_NOSUB if subtitle is None else VLM_TMPL_SUB.format(subtitle)
    return tmpl + "Question: {}\nAnswer: ".format(question + "\n" + "\n".join(str(o) for o in raw_options))


def vlm_subtitles(srt: str, fps: float, n_frames: int, nframe: int) -> str:
    """VLMEvalKit's subtitle lines (``build_prompt`` with ``use_subtitle``): at frame indices
    int(i * n/(nframe+1)), i = 1..nframe, the first cue with start < t < end (t = the frame's time in whole
    ms, as pysubs2.make_time), its text with newlines as spaces. pysubs2's SRT markup conversion is
    approximated by dropping HTML tags (Video-MME's files carry only <font> tags; pysubs2 is not installed
    here, so this path is checked by hand, not against pysubs2)."""
    cues = []  # every cue in file order (pysubs2 keeps repeated time ranges)
    for section in srt.replace("\r\n", "\n").replace("\r", "\n").split("\n\n"):
        lines = section.strip("\n").split("\n")
        if len(lines) >= 3 and " --> " in lines[1]:
            start, end = lines[1].split(" --> ")
            cues.append(
                (
                    round(_parse_srt_time(start.strip()) * 1000),
                    round(_parse_srt_time(end.strip()) * 1000),
                    " ".join(lines[2:]),
                )
            )
    step = n_frames / (nframe + 1)
    out = []
    for i in range(1, nframe + 1):
        t_ms = int(round(int(i * step) / fps * 1000)) if fps else 0
        text = ""
        for s, e, body in cues:
            if s < t_ms < e:
                text = re.sub(r"<[^>]+>", "", body).replace("\\N", " ")
                break
        if text.strip():
            out.append(text)
    return "\n".join(out)


# ---------------------------------------------------------------- loading


def _video_path(video_dir: str, vid: str) -> str:
    cands = [_io.join(video_dir, f"{vid}{ext}") for ext in (".mp4", ".MP4", ".mkv")]
    if _io.is_uri(video_dir):
        return cands[0]
    return next((c for c in cands if _io.exists(c)), cands[0])


def _detect_layout(root: str) -> str:
    if _io.exists(_io.join(root, "Video-MME.tsv")):
        return "vlmevalkit"
    return "hf"


def _hf_rows(root: str) -> tuple[str, list[dict[str, Any]]]:
    d = _io.join(root, "videomme")
    files = (
        [f for f in _io.list_files(d, ".parquet") if f.rsplit("/", 1)[-1].startswith("test-")] if _io.is_dir(d) else []
    )
    if not files:
        raise _io.BenchmarkDataError(
            f"{root}: no Video-MME parquet (expected videomme/test-00000-of-00001.parquet, "
            "the lmms-lab/Video-MME layout)"
        )
    rows = []
    for f in files:
        rows += [(f, r) for r in _io.read_table(f)]
    return files[0], rows


def load(
    root: str,
    protocol: str = "lmms_eval",
    layout: str = "auto",
    video_dir: str | None = None,
    subtitles: bool = False,
    subtitle_dir: str | None = None,
    durations: Sequence[str] = DURATIONS,
    frame_num: int = LMMS_FRAME_NUM,
    **_: Any,
) -> list[EvalItem]:
    """Video-MME items with ``protocol``'s prompt (optionally only some durations; subtitles off by default:
    lmms-eval task ``videomme``; ``subtitles: true`` is task ``videomme_w_subtitle``)."""
    if layout not in LAYOUTS:
        raise ValueError(f"videomme: unknown layout {layout!r}; expected one of {LAYOUTS}")
    if isinstance(durations, str):
        durations = (durations,)
    bad = [d for d in durations if d not in DURATIONS]
    if bad:
        raise ValueError(f"videomme: unknown duration(s) {bad}; expected from {DURATIONS}")
    layout = _detect_layout(root) if layout == "auto" else layout
    if layout == "hf":
        _, pairs = _hf_rows(root)
        video_dir = video_dir or _io.join(root, "data")
    else:
        tsv = _io.join(root, "Video-MME.tsv")
        pairs = [(tsv, r) for r in _io.read_table(tsv)]
        video_dir = video_dir or _io.join(root, "video")
    subtitle_dir = subtitle_dir or _io.join(root, "subtitle")
    if subtitles and _io.is_uri(video_dir):
        raise ValueError(
            "videomme: subtitles pick cues by the videos' frame rate and length, read locally with "
            f"OpenCV; video_dir {video_dir!r} is a URI (copy the videos locally)"
        )
    task = (
        ("videomme_w_subtitle" if subtitles else "videomme")
        if protocol == "lmms_eval"
        else ("Video-MME (use_subtitle)" if subtitles else "Video-MME")
    )
    items: list[EvalItem] = []
    for i, (f, row) in enumerate(pairs):
        if layout == "hf":
            qid = str(_io.require(row, "question_id", f, f"row {i}"))
            vid = str(_io.require(row, "videoID", f, f"question_id {qid}"))
            raw_opts = [str(o) for o in _io.require(row, "options", f, f"question_id {qid}")]
        else:
            qid = str(_io.require(row, "index", f, f"row {i}"))
            vid = str(_io.require(row, "video", f, f"index {qid}"))
            try:
                raw_opts = [str(o) for o in ast.literal_eval(str(_io.require(row, "candidates", f, f"index {qid}")))]
            except (ValueError, SyntaxError) as e:
                raise _io.BenchmarkDataError(
                    f"{f} (index {qid}): field 'candidates' is not a list literal ({e})"
                ) from e
        where = f"question_id {qid}"
        duration = str(_io.require(row, "duration", f, where))
        if duration not in DURATIONS:
            raise _io.BenchmarkDataError(f"{f} ({where}): field 'duration' {duration!r} not in {DURATIONS}")
        if duration not in durations:
            continue
        # Both tools' aggregations index fixed category tables (a KeyError there); fail at load instead.
        for field, known in (("domain", CATEGORIES), ("sub_category", SUB_CATEGORIES), ("task_type", TASK_CATEGORIES)):
            if str(_io.require(row, field, f, where)) not in known:
                raise _io.BenchmarkDataError(
                    f"{f} ({where}): field {field!r} {row[field]!r} is not a Video-MME {field}"
                )
        answer = str(_io.require(row, "answer", f, where))
        if answer not in LETTERS[: len(raw_opts)]:
            raise _io.BenchmarkDataError(f"{f} ({where}): field 'answer' {answer!r} is not an option letter")
        question = str(_io.require(row, "question", f, where))  # verbatim: both tools use it unstripped
        media = _video_path(video_dir, vid)
        sub_path = _io.join(subtitle_dir, f"{vid}.srt")
        if not subtitles:
            prompt = (lmms_prompt if protocol == "lmms_eval" else vlm_prompt)(question, raw_opts)
        elif protocol == "lmms_eval":
            if _io.exists(sub_path):  # lmms-eval reads fps / frames of data/<videoID>.mp4 itself
                fps, total = video_frame_info(_io.join(video_dir, f"{vid}.mp4"))
                prompt = lmms_prompt(
                    question, raw_opts, subtitles_at_frames(_io.read_text(sub_path), fps, total, int(frame_num))
                )
            else:
                prompt = lmms_prompt(question, raw_opts, "No subtitles available")
        else:
            text = ""
            if _io.exists(sub_path):
                fps, total = video_frame_info(media)
                text = vlm_subtitles(_io.read_text(sub_path), fps, total, int(frame_num))
            prompt = vlm_prompt(question, raw_opts, text)
        items.append(
            {
                "id": qid,
                "media_type": "video",
                "media_path": media,
                "question": prompt,
                "answer": answer,
                "options": [_LETTER_PREFIX.sub("", o, count=1).strip() for o in raw_opts],
                "raw_options": raw_opts,
                "raw_question": question,
                "cluster": vid,
                "videoID": vid,
                "question_id": qid,
                "duration": duration,
                "domain": str(row["domain"]),
                "sub_category": str(row["sub_category"]),
                "task_type": str(row["task_type"]),
                "subtitle_path": sub_path if subtitles else "",
                "task": task,
            }
        )
    _io.check_media_exist("videomme", items)
    return items


# ---------------------------------------------------------------- parsing: VLMEvalKit
# (lmms-eval's extract_mcq_answer is videosft/benchmarks/lmms_eval_rules.py; can_infer is videosft/benchmarks/vlmevalkit_rules.py)


# Two commas are missing upstream, so two pairs of prefixes are single (rarely matching) strings.
_VLM_PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option isThe correct option is",
    "Best answer:Best option:",
    "Answer:",
    "Option:",
)


def vlm_regex(s: str) -> str:
    """VLMEvalKit ``utils/videomme.extract_characters_regex``: strip, drop the answer prefixes, "" for a
    long (>10 words) answer with no A-D, else the first capital A-D anywhere (or "")."""
    s = s.strip()
    for p in _VLM_PREFIXES:
        s = s.replace(p, "")
    if len(s.split()) > 10 and not re.search("[ABCD]", s):
        return ""
    m = re.search(r"[ABCD]", s)
    return m[0] if m else ""


def vlm_extract_option(question: str, prediction: str) -> str:
    """VLMEvalKit ``utils/videomme.extract_option`` under ``exact_matching`` (no judge model): options come
    from the *question*'s lines after the first ("A. ..." etc.; Video-MME questions have none), then
    ``can_infer``; nothing inferred -> "Z"."""
    choices: dict[str, str] = {}
    for k, line in enumerate(question.split("\n")[1:]):
        oid = chr(ord("A") + k) + "."
        if line.find(oid) >= 0:
            choices[chr(ord("A") + k)] = line[line.find(oid) + len(oid) :].strip(". \n")
    pred = str(prediction)
    ret = can_infer(pred, choices)
    return ret if ret else "Z"


# ---------------------------------------------------------------- judges


def _lenient(row: Mapping[str, Any]) -> str | None:
    got = extract_choice(str(row.get("prediction") or ""), row.get("options") or []) if not unanswered(row) else ""
    return got or None


@functools.lru_cache(maxsize=1 << 16)
def _lmms_verdict(pred: str, answer: str) -> tuple[str, bool]:
    got = extract_mcq_answer(pred, LETTERS)
    return got, got == answer  # the aggregation's exact comparison (process_results' lower() agrees on A-D)


@functools.lru_cache(maxsize=1 << 16)
def _vlm_verdict(pred: str, answer: str, question: str) -> tuple[str, bool, bool]:
    got = vlm_regex(pred)
    if got:
        return got, got == answer, False
    got = vlm_extract_option(question, pred)
    return got, got == answer, True


def _pred(row: Mapping[str, Any]) -> str:
    # A failed row (decode error, no output) reaches the official tools as an empty answer.
    return "" if row.get("error") else str(row.get("prediction") or "")


def judge_lmms(row: Mapping[str, Any]) -> dict[str, Any]:
    """lmms-eval per row: ``extract_mcq_answer`` over A-D; empty/unparseable -> None, wrong."""
    got, ok = _lmms_verdict(_pred(row), str(row["answer"]))
    return {"extracted": got or None, "correct": ok, "lenient": _lenient(row)}


def judge_vlm(row: Mapping[str, Any]) -> dict[str, Any]:
    """VLMEvalKit per row: ``extract_characters_regex``; where it finds nothing, the exact-matching
    ``extract_option`` outcome (its "Z", no answer, is recorded as None: wrong) and ``needs_judge``."""
    got, ok, needs = _vlm_verdict(_pred(row), str(row["answer"]), str(row.get("raw_question", "")))
    return {
        "extracted": None if got in ("", "Z") else got,
        "correct": ok,
        "needs_judge": needs,
        "lenient": _lenient(row),
    }


# ---------------------------------------------------------------- scores


def _task(rows: Sequence[Mapping[str, Any]]) -> str:
    """The official task the rows reproduce (with or without subtitles), "mixed" if both are present."""
    tasks = sorted({str(r.get("task", "")) for r in rows})
    return tasks[0] if len(tasks) == 1 else "mixed"


def _acc(c: int, n: int) -> float:
    return 100 * c / n if n > 0 else 0


_GROUPS = (
    tuple(("duration", d) for d in DURATIONS)
    + tuple(("domain", c) for c in CATEGORIES)
    + tuple(("sub_category", x) for x in SUB_CATEGORIES)
    + tuple(("task_type", t) for t in TASK_CATEGORIES)
)


@functools.cache
def _groups_of(key: str) -> tuple[tuple[str, str], ...]:
    """The logged groups whose name is a substring of the aggregation key (upstream's ``if name in k``)."""
    return tuple(g for g in _GROUPS if g[1] in key)


def score_lmms(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``videomme_aggregate_results``: ``overall`` (= ``videomme_perception_score``, 0..100) plus every number
    it logs, grouped as it does: a group sums the duration_domain_sub-category_task keys that *contain* its
    name (substring match, reproduced); empty groups are 0."""
    hit: dict[tuple[str, str], int] = dict.fromkeys(_GROUPS, 0)
    tot: dict[tuple[str, str], int] = dict.fromkeys(_GROUPS, 0)
    correct = 0
    for r in rows:
        key = f"{r['duration']}_{r['domain']}_{r['sub_category']}_{r['task_type']}"
        ok = int(_lmms_verdict(_pred(r), str(r["answer"]))[1])
        correct += ok
        for g in _groups_of(key):
            hit[g] += ok
            tot[g] += 1
    answered = len(rows)
    out: dict[str, Any] = {
        "overall": _acc(correct, answered),
        "videomme_perception_score": _acc(correct, answered),
        "n": answered,
        "correct": correct,
        "task": _task(rows),
    }
    out.update({f"{kind}/{name}": _acc(hit[(kind, name)], tot[(kind, name)]) for kind, name in _GROUPS})
    return out


def _fmt3(scores: list[int]) -> str:
    return f"{np.mean(scores):.3f}" if scores else "nan"


def score_vlm(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """VLMEvalKit ``get_dimension_rating``: per duration and overall, the mean score of domain /
    sub-category / task type as "%.3f" strings (``rating``, as its _rating.json); ``overall`` =
    its primary metric 'Overall Score' (= overall|overall * 100), here unrounded; ``duration/<d>`` likewise."""
    groups: dict[str, dict[str, dict[str, list[int]]]] = {
        d: {
            "domain": {k: [] for k in CATEGORIES},
            "sub_category": {k: [] for k in SUB_CATEGORIES},
            "task_type": {k: [] for k in TASK_CATEGORIES},
        }
        for d in DURATIONS + ("overall",)
    }
    per_dur: dict[str, list[int]] = {d: [] for d in DURATIONS + ("overall",)}
    for r in rows:
        s = int(_vlm_verdict(_pred(r), str(r["answer"]), str(r.get("raw_question", "")))[1])
        for d in (str(r["duration"]), "overall"):
            groups[d]["domain"][r["domain"]].append(s)
            groups[d]["sub_category"][r["sub_category"]].append(s)
            groups[d]["task_type"][r["task_type"]].append(s)
            per_dur[d].append(s)
    rating = {
        d: {
            "overall": _fmt3(per_dur[d]),
            **{kind: {k: _fmt3(v) for k, v in g.items()} for kind, g in groups[d].items()},
        }
        for d in groups
    }
    out: dict[str, Any] = {
        "overall": _acc(sum(per_dur["overall"]), len(per_dur["overall"])),
        "n": len(rows),
        "task": _task(rows),
        "correct": sum(per_dur["overall"]),
        "rating": rating,
    }
    out.update({f"duration/{d}": _acc(sum(per_dur[d]), len(per_dur[d])) for d in DURATIONS})
    out.update({f"domain/{c}": _acc(sum(v), len(v)) for c, v in groups["overall"]["domain"].items()})
    out.update({f"task_type/{t}": _acc(sum(v), len(v)) for t, v in groups["overall"]["task_type"].items()})
    return out


VIDEOMME = {
    "lmms_eval": Benchmark(
        name="videomme",
        modality="video",
        load=functools.partial(load, protocol="lmms_eval"),
        score=score_lmms,
        judge=judge_lmms,
        protocol="lmms_eval",
        max_new_tokens=16,  # videomme.yaml / videomme_w_subtitle.yaml generation_kwargs
        options=OPTIONS,
    ),
    # VLMEvalKit sets no per-dataset length (each model's own default); its prompt asks for the letter only and
    # its regex reads the first A-D, so lmms-eval's 16 is kept (eval.max_new_tokens overrides).
    "vlmevalkit": Benchmark(
        name="videomme",
        modality="video",
        load=functools.partial(load, protocol="vlmevalkit"),
        score=score_vlm,
        judge=judge_vlm,
        protocol="vlmevalkit",
        max_new_tokens=16,
        options=OPTIONS,
    ),
}
