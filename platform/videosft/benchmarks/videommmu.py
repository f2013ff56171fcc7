"""Video-MMMU: knowledge acquisition from lecture videos, three tracks of 300 questions (perception,
comprehension, adaptation), one variant per protocol.

Layouts read (``layout`` option; ``auto`` picks by what is in ``root``):

- ``hf`` (``lmms-lab/VideoMMMU`` as downloaded, what lmms-eval reads): one config folder per track
  (``Perception/``, ``Comprehension/``, ``Adaptation/``) holding ``test-00000-of-00001.parquet`` (or the
  parquet converter's ``test/0000.parquet``) with id ("<Track>_<Subject>_<n>"), question, options (list, may
  be empty), answer, question_type ("multiple-choice" or open), optionally image (HF Image struct); videos
  unpacked from ``Art.zip``, ``Business.zip``, ``Engineering.zip``, ``Humanities.zip``, ``Medicine.zip``,
  ``Science.zip`` into ``<Discipline>/<id>.mp4`` (lmms-eval's ``videommmu_doc_to_visual`` /
  ``get_cache_dir``).
- ``vlmevalkit`` (what VLMEvalKit's ``VideoMMMU.prepare_dataset`` leaves): ``VideoMMMU.tsv`` (index, id,
  category = the track, question, options as JSON, answer, question_type, video "videos/<Discipline>/<id>.mp4",
  image "images/<name>"), videos under ``videos/``.

Protocols:

- ``lmms_eval`` (0.7.3), tasks ``video_mmmu_{perception,comprehension,adaptation}``: prompts from
  ``videommmu_doc_to_text_perception_comprehension`` / ``_adaptation`` with ``_default_template_yaml``'s
  default kwargs (perception/comprehension: question, options, "Please ignore the Quiz question in last frame
  of the video."; adaptation: "You should watch and learn ..." + the multi-choice / open-ended preamble; the
  image is the video's last frame, no separate picture). 1024 new tokens. Parse: multiple-choice by
  ``extract_mcq_answer`` over the row's letters (none: "No Answer Found."; no options at all: A-H, upstream),
  anything else by MMMU's ``parse_open_response``; exact-match / MMMU ``eval_open`` correctness (a
  ``question_type`` "perception" row is parsed as open and compared as multiple-choice: never right, as
  upstream). Empty: an open answer that is exactly "" is "API Error" and leaves the denominator; an empty
  multiple-choice answer is wrong and stays. Aggregation per track (each track is its own lmms-eval task):
  ``videommmu_aggregate_results``'s ``mmmu_acc`` (0..1, rounded to 5 places) and its printed table; here
  ``track/<T>`` = 100 x that track's accuracy, ``overall`` = their mean over the loaded tracks.
- ``vlmevalkit`` (0.2rc1@e8e78f0): prompts from ``VideoMMMU.build_prompt`` (the same text plus "Add `Answer:
  {Your final answer}` at the end of your reply."; adaptation also gets the question image). Parse: the text
  after the last "Answer:", then VideoMMMU.py's own ``parse_multi_choice_response`` (X. / X: first, then (X),
  then "X ", then option text; none: "No Answere Found") or ``parse_open_response``; an empty answer is "API
  Error" and leaves the denominator (both kinds). No LLM judge exists for it. Aggregation:
  ``aggregate_results`` (per track hit/total x 100, Overall = micro over the tracks) - ``overall``.
"""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from videosft.benchmarks import _io
from videosft.benchmarks.answers import extract_choice, mean, unanswered
from videosft.benchmarks.base import Benchmark, EvalItem
from videosft.benchmarks.lmms_eval_rules import extract_mcq_answer

TRACKS = ("Perception", "Comprehension", "Adaptation")
# lmms-eval get_cache_dir: the video folder (zip name) of each subject.
DISCIPLINES = {
    "Art": ("Art", "Art_Theory", "Design", "Music"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Humanities": ("History", "Literature", "Sociology", "Psychology"),
    "Engineering": (
        "Agriculture",
        "Architecture_and_Engineering",
        "Computer_Science",
        "Electronics",
        "Energy_and_Power",
        "Materials",
        "Mechanical_Engineering",
    ),
    "Medicine": (
        "Basic_Medical_Science",
        "Clinical_Medicine",
        "Diagnostics_and_Laboratory_Medicine",
        "Pharmacy",
        "Public_Health",
    ),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
}
_SUBJECT_TO_DISCIPLINE = {s: d for d, subs in DISCIPLINES.items() for s in subs}
# lmms-eval DOMAIN_CAT2SUB_CAT: the printed table's domains.
DOMAINS = {
    "Art and Design": ("Art", "Art_Theory", "Design", "Music"),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Health and Medicine": (
        "Basic_Medical_Science",
        "Clinical_Medicine",
        "Diagnostics_and_Laboratory_Medicine",
        "Pharmacy",
        "Public_Health",
    ),
    "Humanities and Social Science": ("History", "Literature", "Sociology", "Psychology"),
    "Tech and Engineering": (
        "Agriculture",
        "Architecture_and_Engineering",
        "Computer_Science",
        "Electronics",
        "Energy_and_Power",
        "Materials",
        "Mechanical_Engineering",
    ),
}
OPTIONS = ("layout", "video_dir", "tracks", "splits", "cache_dir")
LAYOUTS = ("auto", "hf", "vlmevalkit")
API_ERROR = "API Error"

# _default_template_yaml lmms_eval_specific_kwargs.default (VLMEvalKit's class constants are the same text)
PRE_PROMPT = "You should watch and learn the video content. Then apply what you learned to "
PC_PROMPT = "\nPlease ignore the Quiz question in last frame of the video."
MCQ_PROMPT = "answer the following multi-choice question. The image for this question is at the end of the video.\n"
OPEN_PROMPT = "answer the following open-ended question. The image for this question is at the end of the video.\n"
MCQ_POST = ""
VLM_ANSWER_POST = "\nAdd `Answer: {Your final answer}` at the end of your reply."
_LETTER_PREFIX = re.compile(r"^\s*([A-Z])\.\s*")


def subject_of(item_id: str) -> str:
    """lmms-eval ``extract_subset_name``: the part between "<split>_" and "_<n>"."""
    split = str(item_id).split("_")[0]
    m = re.search(rf"^{re.escape(split)}_(.+?)_\d+$", str(item_id))
    if not m:
        raise ValueError(f'No match found in "{item_id}"')
    return m.group(1)


def parse_options(options: Sequence[str]) -> str:
    """Both tools' ``parse_options``: kept as is when already lettered "A.", "B.", ..., else "X. text"."""
    letters = [chr(ord("A") + i) for i in range(len(options))]
    if all(o.startswith(f"{L}.") for o, L in zip(options, letters)):
        return "\n".join(options)
    return "\n".join(f"{L}. {o}" for L, o in zip(letters, options))


def prompt(track: str, question: str, options: Sequence[str], question_type: str, protocol: str) -> str:
    if track == "Adaptation":
        if question_type == "multiple-choice":
            text = (
                PRE_PROMPT
                + MCQ_PROMPT
                + question
                + "\n"
                + parse_options(options)
                + (MCQ_POST if protocol == "lmms_eval" else "")
            )
        else:
            text = PRE_PROMPT + OPEN_PROMPT + question
    else:
        text = question + "\n" + parse_options(options) + PC_PROMPT + (MCQ_POST if protocol == "lmms_eval" else "")
    return text if protocol == "lmms_eval" else text + VLM_ANSWER_POST


# ---------------------------------------------------------------- loading


def _track_files(root: str, track: str) -> list[str]:
    d = _io.join(root, track)
    if _io.is_dir(d):
        files = [f for f in _io.list_files(d, ".parquet") if f.rsplit("/", 1)[-1].startswith("test")]
        if not files and _io.is_dir(_io.join(d, "test")):  # refs/convert/parquet: <Track>/test/0000.parquet
            files = _io.list_files(_io.join(d, "test"), ".parquet")
        if files:
            return files
    raise _io.BenchmarkDataError(
        f"{d}: Video-MMMU track folder with test-*.parquet not found (the lmms-lab/VideoMMMU layout)"
    )


def _tracks(tracks: Any, splits: Any) -> list[str]:
    chosen = splits if splits is not None else tracks
    if isinstance(chosen, str):
        chosen = [chosen]
    names = {t.lower(): t for t in TRACKS}
    bad = [t for t in chosen if str(t).lower() not in names]
    if bad:
        raise ValueError(f"videommmu: unknown track(s) {bad}; known: {TRACKS}")
    return [names[str(t).lower()] for t in chosen]


def load(
    root: str,
    protocol: str = "lmms_eval",
    layout: str = "auto",
    tracks: Sequence[str] = TRACKS,
    splits: Sequence[str] | None = None,
    video_dir: str | None = None,
    cache_dir: str | None = None,
    **_: Any,
) -> list[EvalItem]:
    """Video-MMMU items for the requested tracks (``tracks`` or its alias ``splits``), ``protocol``'s prompts."""
    if layout not in LAYOUTS:
        raise ValueError(f"videommmu: unknown layout {layout!r}; expected one of {LAYOUTS}")
    wanted = _tracks(tracks, splits)
    if layout == "auto":
        layout = "vlmevalkit" if _io.exists(_io.join(root, "VideoMMMU.tsv")) else "hf"
    rows: list[tuple[str, str, dict[str, Any]]] = []  # (file, track, row)
    if layout == "hf":
        for track in wanted:
            for f in _track_files(root, track):
                rows += [(f, track, r) for r in _io.read_table(f)]
    else:
        tsv = _io.join(root, "VideoMMMU.tsv")
        for r in _io.read_table(tsv):
            if str(r.get("category")) in wanted:
                rows.append((tsv, str(r["category"]), r))
    items: list[EvalItem] = []
    for i, (f, track, row) in enumerate(rows):
        vid = str(_io.require(row, "id", f, f"row {i}"))
        where = f"id {vid}"
        try:
            subject = subject_of(vid)
        except ValueError as e:
            raise _io.BenchmarkDataError(f"{f} ({where}): field 'id' has no subject ({e})") from e
        if subject not in _SUBJECT_TO_DISCIPLINE:
            raise _io.BenchmarkDataError(f"{f} ({where}): subject {subject!r} is not a Video-MMMU subject")
        raw = row.get("options")
        if layout == "vlmevalkit":
            try:
                raw = json.loads(raw) if isinstance(raw, str) and raw else []
            except json.JSONDecodeError as e:
                raise _io.BenchmarkDataError(f"{f} ({where}): field 'options' is not JSON ({e})") from e
        options = [str(o) for o in (raw if raw is not None else [])]
        qtype = row.get("question_type")
        qtype = "None" if qtype is None or qtype == "" else str(qtype)  # lmms-eval: doc.get(..., "None")
        answer = str(_io.require(row, "answer", f, where))
        question = str(_io.require(row, "question", f, where))
        if layout == "hf":
            rel = (
                _io.join(video_dir, f"{_SUBJECT_TO_DISCIPLINE[subject]}/{vid}.mp4")
                if video_dir
                else _io.join(root, _SUBJECT_TO_DISCIPLINE[subject], f"{vid}.mp4")
            )
        else:
            rel = (
                _io.join(video_dir, f"{_SUBJECT_TO_DISCIPLINE[subject]}/{vid}.mp4")
                if video_dir
                else _io.media_ref(root, str(_io.require(row, "video", f, where)))
            )
        item: EvalItem = {
            "id": f"{track}/{vid}",
            "media_type": "video",
            "media_path": rel,
            "question": prompt(track, question, options, qtype, protocol),
            "answer": answer,
            "options": [_LETTER_PREFIX.sub("", o, count=1) for o in options],
            "raw_options": options,
            "cluster": vid,
            "doc_id": vid,
            "track": track,
            "question_type": qtype,
            "subject": subject,
            "discipline": _SUBJECT_TO_DISCIPLINE[subject],
        }
        image = row.get("image")
        if protocol == "vlmevalkit" and track == "Adaptation" and image not in (None, ""):
            if layout == "vlmevalkit" and isinstance(image, str):
                item["question_image_path"] = _io.media_ref(root, image)
            elif not (isinstance(image, Mapping) and not image.get("bytes")):
                item["question_image_path"] = _io.cache_image_cell(
                    image, cache_dir or _io.default_cache_dir("videommmu"), vid, f
                )
        items.append(item)
    _io.check_media_exist("videommmu", items)
    return items


# ---------------------------------------------------------------- MMMU open-answer rule (both tools)

_INDICATORS = (
    "could be ",
    "so ",
    "is ",
    "thus ",
    "therefore ",
    "final ",
    "answer ",
    "result ",
    "are ",
    "in total ",
    "total ",
    "identify ",
    "recognize ",
    "calculated as ",
    "counted as ",
    "measured as ",
    "observed as ",
    "concluded as ",
    "found to be ",
    "equals ",
    "determined to be ",
    "number of ",
    "value is ",
    "adds up to ",
    "have ",
    "has ",
)
_NUM_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
_NUM_SCI = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
_NUM_SIMPLE = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")
_TRIVIAL = (":", ",", ".", "!", "?", ";", "'")


def normalize_str(s: str) -> list[Any]:
    """MMMU ``normalize_str``: a number (commas dropped) rounded to 2 places, else the lowercased string
    (a single character padded both ways to avoid trivial matches)."""
    s = s.strip()
    try:
        return [round(float(s.replace(",", "")), 2)]
    except ValueError:
        s = s.lower()
        return [" " + s, s + " "] if len(s) == 1 else [s]


def _key_responses(response: str) -> list[str]:
    response = response.strip().strip(".").lower()
    # upstream splits on r"\.\s(?=[A-Z])|\n" after lowercasing: only newlines can split
    subs = re.split(r"\.\s(?=[A-Z])|\n", response)
    keys = []
    for idx, resp in enumerate(subs):
        inds = _INDICATORS + (("=",) if idx == len(subs) - 1 else ())
        shortest = None
        for ind in inds:
            if ind in resp:
                tail = resp.split(ind)[-1].strip()
                if not shortest or len(tail) < len(shortest):  # "" is replaced by the next tail, as upstream
                    shortest = tail
        if shortest and shortest.strip() not in _TRIVIAL:
            keys.append(shortest)
    return keys or [response]


def parse_open_response(response: str) -> Any:
    """MMMU ``parse_open_response``: "API Error" for "" (or that text), else the normalized key
    sub-responses plus every number in them (a set: order is irrelevant to ``eval_open``)."""
    if response == API_ERROR or response == "":
        return API_ERROR
    keys = _key_responses(response)
    preds: list[Any] = list(keys)
    for k in keys:
        preds += _NUM_COMMAS.findall(k) + _NUM_SCI.findall(k) + _NUM_SIMPLE.findall(k)
    out: list[Any] = []
    for p in preds:
        for v in normalize_str(p):
            if v not in out:
                out.append(v)
    return out


def eval_open(gold: str, preds: Any) -> bool:
    """MMMU ``eval_open``: a string pred containing a normalized gold string, or a number equal to one."""
    golds = normalize_str(gold)
    for p in preds:
        if isinstance(p, str):
            if any(isinstance(g, str) and g in p for g in golds):
                return True
        elif p in golds:
            return True
    return False


def _first_open_hit(gold: str, preds: list[Any]) -> Any:
    golds = normalize_str(gold)
    for p in preds:
        if (isinstance(p, str) and any(isinstance(g, str) and g in p for g in golds)) or (
            not isinstance(p, str) and p in golds
        ):
            return p
    return preds[0] if preds else None


def _show(v: Any) -> str:
    if isinstance(v, str):
        return v.strip() or v
    return str(int(v)) if float(v).is_integer() else str(v)


# ---------------------------------------------------------------- VLMEvalKit multiple-choice parser


def vlm_parse_multi_choice(response: str, letters: Sequence[str], index2ans: Mapping[str, str]) -> str:
    """VLMEvalKit ``videommmu.parse_multi_choice_response``."""
    if response == API_ERROR or response == "":
        return API_ERROR
    for ch in ",.!?;:'":
        response = response.strip(ch)
    response = " " + response + " "
    index_ans, with_brack, with_period, with_colon = True, False, False, False
    cands: list[str] = []
    for c in letters:
        if f"{c}." in response:
            cands.append(c)
            with_period = True
    for c in letters:
        if f"{c}:" in response:
            cands.append(c)
            with_colon = True
    if not cands:
        for c in letters:
            if f"({c})" in response:
                cands.append(c)
                with_brack = True
    if not cands:
        for c in letters:
            if f"{c} " in response:
                cands.append(c)
    if not cands and len(response.split()) > 5:
        for idx, ans in index2ans.items():
            if ans.lower() in response.lower():
                cands.append(idx)
                index_ans = False
    if not cands:
        return "No Answere Found"  # sic
    if len(cands) == 1:
        return cands[0]
    if not index_ans:
        starts = [response.lower().rfind(index2ans[c].lower()) for c in cands]
    elif with_period:
        starts = [response.rfind(f"{c}.") for c in cands]
    elif with_colon:
        starts = [response.rfind(f"{c}:") for c in cands]
    elif with_brack:
        starts = [response.rfind(f"({c})") for c in cands]
    else:
        starts = [response.rfind(f" {c} ") for c in cands]
    return cands[int(np.argmax(starts))]


# ---------------------------------------------------------------- judges


def _pred(row: Mapping[str, Any]) -> str:
    # A failed row (decode error, no output) reaches the official tools as an empty answer.
    return "" if row.get("error") else str(row.get("prediction") or "")


def _letters(n: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(n)]


@functools.lru_cache(maxsize=1 << 16)
def _lmms(pred: str, answer: str, qtype: str, options: tuple[str, ...]) -> tuple[Any, bool, bool]:
    """(parsed_pred, correct, counted) by lmms-eval's process_results + evaluate_videommmu."""
    if qtype == "multiple-choice":
        got = extract_mcq_answer(pred, _letters(len(options))) or "No Answer Found."
        return got, got == answer, True
    parsed = parse_open_response(pred)
    if parsed == API_ERROR:
        return API_ERROR, False, False
    if qtype == "perception":  # eval_multi_choice(gold, list): a list never equals the gold string
        return parsed, False, True
    return parsed, eval_open(answer, parsed), True


@functools.lru_cache(maxsize=1 << 16)
def _vlm(pred: str, answer: str, qtype: str, options: tuple[str, ...]) -> tuple[Any, bool, bool]:
    """(parsed_pred, correct, counted) by VLMEvalKit's process_results + evaluate_mmmu."""
    pred = pred.rpartition("Answer:")[-1].strip()
    if qtype == "multiple-choice":
        letters = _letters(len(options))
        parsed: Any = vlm_parse_multi_choice(pred, letters, dict(zip(letters, options)))
    else:
        parsed = parse_open_response(pred)
    if parsed == API_ERROR:
        return API_ERROR, False, False
    if qtype in ("multiple-choice", "perception"):
        return parsed, parsed == answer, True
    return parsed, eval_open(answer, parsed), True


def _verdict(row: Mapping[str, Any], rule) -> dict[str, Any]:
    parsed, ok, counted = rule(
        _pred(row), str(row["answer"]), str(row.get("question_type", "None")), tuple(row.get("raw_options") or ())
    )
    if isinstance(parsed, list):
        shown = _show(_first_open_hit(str(row["answer"]), parsed)) if parsed else None
    else:
        shown = None if parsed in (API_ERROR, "No Answer Found.", "No Answere Found") else parsed
    out = {"extracted": shown or None, "correct": bool(ok)}
    if not counted:
        out["excluded"] = True  # "API Error": left out of the denominator by the official aggregation
    if row.get("question_type") == "multiple-choice":
        got = extract_choice(_pred(row), row.get("options") or []) if not unanswered(row) else ""
        out["lenient"] = got or None
    return out


def judge_lmms(row: Mapping[str, Any]) -> dict[str, Any]:
    """lmms-eval per row (see the module doc); ``excluded`` marks an "API Error" row."""
    return _verdict(row, _lmms)


def judge_vlm(row: Mapping[str, Any]) -> dict[str, Any]:
    """VLMEvalKit per row (see the module doc); ``excluded`` marks an "API Error" row."""
    return _verdict(row, _vlm)


# ---------------------------------------------------------------- scores


def lmms_track_table(rows: Sequence[Mapping[str, Any]]) -> tuple[float, dict[str, Any]]:
    """``videommmu_aggregate_results`` over one track's rows: (mmmu_acc, printed table), same arithmetic."""
    by_subset: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        _, ok, counted = _lmms(
            _pred(r), str(r["answer"]), str(r.get("question_type", "None")), tuple(r.get("raw_options") or ())
        )
        if counted:
            by_subset[str(r["subject"])].append(ok)
    result = {s: {"acc": sum(v) / len(v), "num_example": len(v)} for s, v in by_subset.items()}

    def ins_acc(res: Mapping[str, Mapping[str, Any]]) -> float:
        acc, num = 0, 0
        for c in res.values():
            acc += c["acc"] * c["num_example"]
            num += c["num_example"]
        return acc / num if num else 0

    table: dict[str, Any] = {}
    for domain, cats in DOMAINS.items():
        inner = {c: result[c] for c in cats if c in result}
        table["Overall-" + domain] = {
            "num": int(sum(c["num_example"] for c in inner.values())),
            "acc": round(ins_acc(inner), 5),
        }
        for c, res in inner.items():
            table[c] = {"num": int(res["num_example"]), "acc": round(res["acc"], 5)}
    overall = ins_acc(result)
    table["Overall"] = {"num": sum(c["num_example"] for c in result.values()), "acc": round(overall, 5)}
    return table["Overall"]["acc"], table


def score_lmms(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per track (each its own lmms-eval task): ``mmmu_acc/<T>`` (0..1, its rounding), ``table/<T>`` (its
    printed dict), ``track/<T>`` (0..100, unrounded); ``overall`` = mean of the loaded tracks' ``track/<T>``."""
    out: dict[str, Any] = {}
    tracks = [t for t in TRACKS if any(r["track"] == t for r in rows)]
    for t in tracks:
        sub = [r for r in rows if r["track"] == t]
        acc, table = lmms_track_table(sub)
        counted = [
            _lmms(_pred(r), str(r["answer"]), str(r.get("question_type", "None")), tuple(r.get("raw_options") or ()))
            for r in sub
        ]
        hits = sum(c[1] for c in counted if c[2])
        n = sum(1 for c in counted if c[2])
        out[f"mmmu_acc/{t}"] = acc
        out[f"table/{t}"] = table
        out[f"track/{t}"] = 100 * hits / n if n else 0.0
        out[f"excluded/{t}"] = len(sub) - n
    out["overall"] = mean(out[f"track/{t}"] for t in tracks)
    out["n"] = len(rows)
    out["excluded"] = sum(out[f"excluded/{t}"] for t in tracks)
    return out


def score_vlm(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """VLMEvalKit ``aggregate_results``: per track total / hit / acc (x100) over non-"API Error" rows,
    ``Overall`` = hit / total x 100 over all of them (``overall``)."""
    total: dict[str, int] = defaultdict(int)
    hit: dict[str, int] = defaultdict(int)
    for r in rows:
        _, ok, counted = _vlm(
            _pred(r), str(r["answer"]), str(r.get("question_type", "None")), tuple(r.get("raw_options") or ())
        )
        if counted:
            total[r["track"]] += 1
            hit[r["track"]] += int(ok)
    n, h = sum(total.values()), sum(hit.values())
    out: dict[str, Any] = {
        "overall": 100 * h / n if n else 0.0,
        "n": len(rows),
        "total": n,
        "hit": h,
        "excluded": len(rows) - n,
    }
    for t in TRACKS:
        if total[t]:
            out[f"track/{t}"] = hit[t] / total[t] * 100
            out[f"total/{t}"], out[f"hit/{t}"] = total[t], hit[t]
    return out


VIDEOMMMU = {
    "lmms_eval": Benchmark(
        name="videommmu",
        modality="video",
        load=functools.partial(load, protocol="lmms_eval"),
        score=score_lmms,
        judge=judge_lmms,
        protocol="lmms_eval",
        max_new_tokens=1024,  # _default_template_yaml generation_kwargs
        options=OPTIONS,
    ),
    # VLMEvalKit sets no per-dataset length; its prompt asks for reasoning ending in "Answer: ...", so the
    # reply must have room: lmms-eval's 1024 is kept (eval.max_new_tokens overrides).
    "vlmevalkit": Benchmark(
        name="videommmu",
        modality="video",
        load=functools.partial(load, protocol="vlmevalkit"),
        score=score_vlm,
        judge=judge_vlm,
        protocol="vlmevalkit",
        max_new_tokens=1024,
        options=OPTIONS,
    ),
}
