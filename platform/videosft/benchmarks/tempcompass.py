"""TempCompass: temporal perception (action, speed, direction, order, attribute change) asked in
four task types about the same videos (some of them played in reverse).

Published layouts read:
  * HF ``lmms-lab/TempCompass`` as downloaded (what lmms-eval and VLMEvalKit read):
    ``<task_type>/test-00000-of-00001.parquet`` (any ``*.parquet`` there) for ``multi-choice``,
    ``yes_no``, ``caption_matching``, ``captioning``, with columns ``video_id``, ``question``,
    ``answer``, ``dim`` (captioning also ``mc_question``, ``mc_answer``); videos from
    ``tempcompass_videos.zip`` unzipped to ``videos/<video_id>.mp4`` (``video_dir`` overrides);
  * the TempCompass GitHub release: ``questions/<task_type>.json`` ({video_id: {dim: [{question,
    answer, ...}]}}), same videos.
Every referenced video must exist at load (``_io.check_media_exist``).

Protocols (``eval.protocols``), both with the rules of the TempCompass authors' scripts:
  * ``lmms_eval`` (0.7.3, ``tasks/tempcompass``): prompt = ``pre_prompt`` ("") + question +
    ``post_prompt[task_type]`` ("\\nPlease directly give the best option:", "\\nPlease answer yes
    or no:", same as multi-choice for caption matching, "" for captioning); the YAMLs set no
    ``generation_kwargs``, so the model wrapper's default applies (``max_new_tokens`` 128, lmms-eval's
    qwen2_vl wrapper) and the answer is cut at the first "\\n\\n" (the task's ``until``) and
    stripped, as lmms-eval's wrappers do before ``process_results``. Rules per task type:
    multi-choice: exact answer, a bare "A"-"D", or a "A." / "A)" prefix; yes_no: lowercased
    answer starts with "yes"/"no" ("not sure" is "no", upstream); caption_matching:
    ``eval_rule`` (the whole option line, its sentence, or its label); everything else, and every
    captioning row, goes to the ChatGPT judge upstream. Here no judge is called: with no API key
    lmms-eval's ``get_eval_result`` retries and returns rating 0 (captioning: -1), i.e. wrong, and
    the row is flagged ``needs_judge``. Aggregation ``tempcompass_aggregate_rating``: per task type
    ``avg_accuracy`` and ``<dim>_accuracy`` = 100 * (rating == 1) / rows. lmms-eval reports no group
    number; ``overall`` is the mean of the loaded task types' ``avg_accuracy``.
  * ``vlmevalkit`` (0.2rc1@e8e78f0, ``dataset/tempcompass.py`` + ``utils/tempcompass.py``): the same
    prompts (its ``qa_template`` rebuilds the same text) and the same rules
    (``eval_rule_multi_choice`` / ``eval_rule_YorN`` / ``eval_rule_caption_matching``); with the
    ``exact_matching`` judge an unmatched row is rating 0 (flagged ``needs_judge``), captioning
    raises upstream (rows here: wrong, flagged). A prediction pandas reads back from VLMEvalKit's
    xlsx as NaN ("", "None", "NA", ...) crashes its rules upstream; here it is wrong and counted in
    ``n_unscorable_nan``. Aggregation ``TempCompass.evaluate``: ``<task_type>/<dim>``,
    ``<task_type>/overall``, ``dim/<dim>``, and ``overall`` = correct / all rows (VLMEvalKit rounds
    to 2 decimals on display; the numbers here are unrounded). ``max_new_tokens`` 2048: VLMEvalKit
    sets none per dataset; its Qwen2-VL and LLaVA wrappers generate up to 2048 new tokens.
Every judge also writes ``lenient`` (this project's extractor): an extra column, never the headline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from videosft.benchmarks import _io
from videosft.benchmarks.answers import (
    extract_choice,
    extract_yes_no,
    is_option_letter,
    mean,
    pct,
    strip_answer_prefixes,
)
from videosft.benchmarks.base import Benchmark, EvalItem
from videosft.benchmarks.mvbench import lmms_eval_output
from videosft.benchmarks.vlmevalkit_rules import PANDAS_NA

TASK_TYPES = ("multi-choice", "yes_no", "caption_matching", "captioning")
FORMATS = TASK_TYPES  # the old name
DEFAULT_TASK_TYPES = ("multi-choice", "yes_no", "caption_matching")
DIMENSIONS = ("action", "speed", "direction", "order", "attribute_change")
# lmms-eval tasks/tempcompass/_default_template_yaml lmms_eval_specific_kwargs.default
PRE_PROMPT = ""
POST_PROMPT = {
    "multi-choice": "\nPlease directly give the best option:",
    "yes_no": "\nPlease answer yes or no:",
    "caption_matching": "\nPlease directly give the best option:",
    "captioning": "",
}
ANSWER_PROMPT = POST_PROMPT
# The YAMLs set no generation_kwargs, so lmms-eval's model wrapper default applies: 128 in its
# qwen2_vl wrapper (llava_vid: 1024); generation is cut at "\n\n" (the task's `until`) anyway.
LMMS_EVAL_MAX_NEW_TOKENS = 128
_MC_LINE = re.compile(r"^([A-Z])\.\s*(.*)$")


# ---------------------------------------------------------------- loading


def _records(root: str, task_type: str) -> list[tuple[str, str, dict[str, Any], str]]:
    """(video_id, dim, record, source file) for one task type, from either layout."""
    folder = _io.join(root, task_type)
    files = _io.find_tables(folder, subdirs=("",)) if _io.is_dir(folder) else []
    if files:
        out = []
        for f in files:
            for i, row in enumerate(_io.read_table(f)):
                vid = str(_io.require(row, "video_id", f, f"row {i}"))
                out.append((vid, str(_io.require(row, "dim", f, f"row {i}")), row, f))
        return out
    path = _io.join(root, "questions", f"{task_type}.json")
    if _io.exists(path):
        data = _io.read_json(path)
        if not isinstance(data, dict):
            raise _io.BenchmarkDataError(f"{path}: expected {{video_id: {{dim: [questions]}}}}")
        return [(vid, dim, q, path) for vid, dims in data.items() for dim, qs in dims.items() for q in qs]
    raise _io.BenchmarkDataError(
        f"{folder}: TempCompass {task_type} questions not found "
        f"(want {task_type}/*.parquet as on lmms-lab/TempCompass, or questions/{task_type}.json)"
    )


def _mc_options(question: str, answer: str, src: str, where: str) -> list[str]:
    opts = [m.group(2).strip() for m in map(_MC_LINE.match, question.split("\n")[1:]) if m]
    if not is_option_letter(answer.strip()[:1], len(opts)):
        raise _io.BenchmarkDataError(f"{src} ({where}): field 'answer' {answer!r} does not name an option")
    return opts


def _cm_options(question: str, answer: str, src: str, where: str) -> tuple[list[str], list[str]]:
    lines = question.split("\n")[1:]
    if not lines or any(": " not in ln for ln in lines):
        raise _io.BenchmarkDataError(f"{src} ({where}): caption_matching question needs option lines 'Label: sentence'")
    if ": " not in answer or len(answer.split(": ")[0].split()) < 2:
        raise _io.BenchmarkDataError(f"{src} ({where}): field 'answer' {answer!r} is not a 'Caption X: sentence' line")
    return [ln.split(": ")[1] for ln in lines], [ln.split(": ")[0] for ln in lines]


def _loader(protocol: str):
    def load(
        root: str,
        task_types: Sequence[str] | None = None,
        video_dir: str | None = None,
        formats: Sequence[str] | None = None,
        check_media: bool = True,
        **_: Any,
    ) -> list[EvalItem]:
        """TempCompass items for the requested task types (captioning is judge-only: off by default)."""
        wanted = task_types if task_types is not None else formats if formats is not None else DEFAULT_TASK_TYPES
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        bad = [f for f in wanted if f not in TASK_TYPES]
        if bad:
            raise ValueError(f"unknown TempCompass task type(s) {bad}; known: {TASK_TYPES}")
        vdir = video_dir or _io.join(root, "videos")
        items: list[EvalItem] = []
        for tt in wanted:
            counters: dict[tuple[str, str], int] = {}
            for vid, dim, rec, src in _records(root, tt):
                k = counters[(vid, dim)] = counters.get((vid, dim), -1) + 1
                where = f"video {vid}, {dim} #{k}"
                question = str(_io.require(rec, "question", src, where))
                answer = str(_io.require(rec, "answer", src, where))
                item: EvalItem = {
                    "id": f"{tt}/{vid}/{dim}/{k}",
                    "media_type": "video",
                    "media_path": _io.join(vdir, f"{vid}.mp4"),
                    # lmms-eval doc_to_text == VLMEvalKit qa_template + its instruction part
                    "question": f"{PRE_PROMPT}{question}{POST_PROMPT[tt]}",
                    "answer": answer,
                    "options": [],
                    "cluster": vid,
                    "task_type": tt,
                    "format": tt,
                    "dim": dim,
                    "video_id": vid,
                    "raw_question": question,
                }
                if tt == "multi-choice":
                    item["options"] = _mc_options(question, answer, src, where)
                elif tt == "yes_no":
                    if answer.strip().lower() not in ("yes", "no"):
                        raise _io.BenchmarkDataError(f"{src} ({where}): field 'answer' must be yes/no, got {answer!r}")
                elif tt == "caption_matching":
                    item["options"], item["option_labels"] = _cm_options(question, answer, src, where)
                else:
                    item["mc_question"] = str(_io.require(rec, "mc_question", src, where))
                    item["mc_answer"] = str(_io.require(rec, "mc_answer", src, where))
                items.append(item)
        if check_media:
            _io.check_media_exist("tempcompass", items)
        return items

    return load


# ---------------------------------------------------------------- the TempCompass rules


def rule_multi_choice(pred: str, answer: str) -> int | str:
    """lmms-eval ``tempcompass_process_results_multi_choice`` rules == VLMEvalKit
    ``eval_rule_multi_choice``: 1 / 0, or "fail" (the LLM judge would be asked)."""
    if pred == answer:
        return 1
    if pred in ("A", "B", "C", "D"):
        return int(pred == answer[0])
    if pred.startswith(("A.", "B.", "C.", "D.")):
        return int(pred.split(".")[0] == answer[0])
    if pred.startswith(("A)", "B)", "C)", "D)")):
        return int(pred.split(")")[0] == answer[0])
    return "fail"


def rule_yes_no(pred: str) -> str | bool:
    """``extract_pred`` / ``eval_rule_YorN``: "yes", "no", or False."""
    low = pred.lower()
    if low.startswith("yes"):
        return "yes"
    if low.startswith("no"):
        return "no"
    return False


@lru_cache(maxsize=1 << 16)
def rule_caption_matching(pred: str, question: str, answer: str) -> tuple[int | str, str | None]:
    """``eval_rule`` (lmms-eval) == ``eval_rule_caption_matching`` (VLMEvalKit): (rating or
    "fail", the matched option string). Later loops override earlier matches, as upstream."""
    option_strs = question.split("\n")[1:]
    option_sents = [opt.split(": ")[1] for opt in option_strs]
    option_inds = [opt.split(": ")[0] for opt in option_strs] + [
        opt.split(": ")[0].replace("Sentence ", "").replace("Option ", "").replace("Caption ", "")
        for opt in option_strs
    ]
    got = None
    for s in option_strs:
        if s == pred:
            got = s
    for s in option_sents:
        if s == pred or (") " in pred and s == pred.split(") ")[1]):
            got = s
    for s in option_inds:
        if s == pred or s == pred.replace(".", ""):
            got = s
    if got is None:
        return "fail", None
    ok = (
        got == answer
        or got == answer.split(":")[0]
        or got == answer.split(": ")[1]
        or got == answer.split(": ")[0].split()[1]
    )
    return int(ok), got


def caption_choice(prediction: Any, sentences: Sequence[str], labels: Sequence[str]) -> str:
    """Lenient reading (extra column): letter (position) of the caption a prediction picked."""
    s = strip_answer_prefixes(str(prediction or "")).strip()
    low = s.lower().rstrip(". ").strip()
    shorts = [lab.split()[-1].lower() for lab in labels]
    for i, (lab, sent) in enumerate(zip(labels, sentences)):
        full = f"{lab}: {sent}".lower().rstrip(". ")
        if low in (full, lab.lower(), shorts[i], sent.lower().rstrip(". ")):
            return "ABCDEFGH"[i]
    m = re.match(r"^(?:caption|sentence|option)\s+([a-z0-9]+)\b", low) or re.match(r"^\(?([a-z0-9])(?:[.):]|$)", low)
    if m and m.group(1) in shorts:
        return "ABCDEFGH"[shorts.index(m.group(1))]
    hits = [i for i, sent in enumerate(sentences) if sent and sent.lower().rstrip(". ") in low]
    return "ABCDEFGH"[hits[0]] if len(hits) == 1 else ""


def _lenient(row: Mapping[str, Any], pred: str) -> str | None:
    tt = row.get("task_type")
    if tt == "multi-choice":
        got = extract_choice(pred, row.get("options") or [])
    elif tt == "yes_no":
        got = extract_yes_no(pred)
    elif tt == "caption_matching":
        got = caption_choice(pred, row.get("options") or [], row.get("option_labels") or [])
    else:
        got = ""
    return got or None


def _rule_verdict(row: Mapping[str, Any], pred: str) -> dict[str, Any]:
    """The rule-based rating of one row (rating 1 = correct), shared by both protocols."""
    tt = row.get("task_type", row.get("format"))
    answer = str(row["answer"])
    if tt == "multi-choice":
        r = rule_multi_choice(pred, answer)
        got = None if r == "fail" else (answer[:1] if pred == answer else pred[:1])
    elif tt == "yes_no":
        y = rule_yes_no(pred)
        r, got = ("fail", None) if not y else (int(y == answer), y)
    elif tt == "caption_matching":
        r, got = rule_caption_matching(pred, str(row["raw_question"]), answer)
    elif tt == "captioning":
        r, got = "fail", None  # judged only by ChatGPT upstream
    else:
        raise ValueError(f"TempCompass row {row.get('id')} has unknown task type {tt!r}")
    out = {"extracted": got, "correct": r == 1, "lenient": _lenient(row, pred)}
    if r == "fail":
        out["needs_judge"] = True
    return out


def judge_lmms_eval(row: Mapping[str, Any]) -> dict[str, Any]:
    if row.get("error"):
        return {"extracted": None, "correct": False, "lenient": None}
    pred = lmms_eval_output(row.get("prediction"))  # cut at "\n\n" and stripped, as lmms-eval's wrappers
    return _rule_verdict(row, pred)


def judge_vlmevalkit(row: Mapping[str, Any]) -> dict[str, Any]:
    if row.get("error"):
        return {"extracted": None, "correct": False, "lenient": None}
    pred = "" if row.get("prediction") is None else str(row.get("prediction"))
    out = _rule_verdict(row, pred)
    if pred in PANDAS_NA and row.get("task_type") != "captioning":
        out.update(correct=False, extracted=None, unscorable_nan=True)  # upstream: NaN.startswith -> crash
        out.pop("needs_judge", None)
    return out


def _tt(r: Mapping[str, Any]) -> str:
    return str(r.get("task_type", r.get("format")))


def _groups(rows: Sequence[Mapping[str, Any]], hits: Sequence[bool], key) -> dict[Any, list[int]]:
    out: dict[Any, list[int]] = {}
    for r, ok in zip(rows, hits):
        acc = out.setdefault(key(r), [0, 0])
        acc[0] += int(bool(ok))
        acc[1] += 1
    return out


def _ordered_dims(dims) -> list[str]:
    return [d for d in DIMENSIONS if d in dims] + sorted(d for d in dims if d not in DIMENSIONS)


def score_lmms_eval(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    verdicts = [judge_lmms_eval(r) for r in rows]
    hits = [v["correct"] for v in verdicts]
    by_tt = _groups(rows, hits, _tt)
    by_tt_dim = _groups(rows, hits, lambda r: (_tt(r), str(r["dim"])))
    by_dim = _groups(rows, hits, lambda r: str(r["dim"]))
    out: dict[str, Any] = {}
    for tt in [t for t in TASK_TYPES if t in by_tt] + [t for t in by_tt if t not in TASK_TYPES]:
        h, n = by_tt[tt]
        out[f"{tt}/avg_accuracy"] = h / n * 100  # tempcompass_aggregate_rating
        for d in _ordered_dims({d for (t, d) in by_tt_dim if t == tt}):
            h, n = by_tt_dim[(tt, d)]
            out[f"{tt}/{d}_accuracy"] = h / n * 100
    out["overall"] = mean(out[f"{tt}/avg_accuracy"] for tt in by_tt)
    out["micro"] = pct(sum(hits), len(rows))
    out.update({f"dim/{d}": pct(*by_dim[d]) for d in _ordered_dims(by_dim)})
    out.update(
        n=len(rows),
        rows_needing_judge=sum(1 for v in verdicts if v.get("needs_judge")),
        n_errors=sum(1 for r in rows if r.get("error")),
    )
    return out


def score_vlmevalkit(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    verdicts = [judge_vlmevalkit(r) for r in rows]
    hits = [v["correct"] for v in verdicts]
    by_tt = _groups(rows, hits, _tt)
    by_tt_dim = _groups(rows, hits, lambda r: (_tt(r), str(r["dim"])))
    by_dim = _groups(rows, hits, lambda r: str(r["dim"]))
    out: dict[str, Any] = {"overall": pct(sum(hits), len(rows))}
    for tt in [t for t in TASK_TYPES if t in by_tt] + [t for t in by_tt if t not in TASK_TYPES]:
        out[f"{tt}/overall"] = pct(*by_tt[tt])
        for d in _ordered_dims({d for (t, d) in by_tt_dim if t == tt}):
            out[f"{tt}/{d}"] = pct(*by_tt_dim[(tt, d)])
    out.update({f"dim/{d}": pct(*by_dim[d]) for d in _ordered_dims(by_dim)})
    out["task_type_mean"] = mean(pct(*v) for v in by_tt.values())
    out.update(
        n=len(rows),
        rows_needing_judge=sum(1 for v in verdicts if v.get("needs_judge")),
        n_unscorable_nan=sum(1 for v in verdicts if v.get("unscorable_nan")),
        n_errors=sum(1 for r in rows if r.get("error")),
    )
    return out


_OPTIONS = ("task_types", "formats", "video_dir")  # check_media: a keyword for tests, never off in a run
TEMPCOMPASS = {
    "lmms_eval": Benchmark(
        name="tempcompass",
        modality="video",
        load=_loader("lmms_eval"),
        score=score_lmms_eval,
        judge=judge_lmms_eval,
        protocol="lmms_eval",
        max_new_tokens=LMMS_EVAL_MAX_NEW_TOKENS,
        options=_OPTIONS,
    ),
    "vlmevalkit": Benchmark(
        name="tempcompass",
        modality="video",
        load=_loader("vlmevalkit"),
        score=score_vlmevalkit,
        judge=judge_vlmevalkit,
        protocol="vlmevalkit",
        max_new_tokens=2048,
        options=_OPTIONS,
    ),
}
