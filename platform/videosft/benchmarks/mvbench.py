"""MVBench: 20 temporal tasks x 200 multiple-choice questions, one JSON file per task.

Published layouts read (``OpenGVLab/MVBench`` on the HF hub, as downloaded and unzipped):
  * ``json/<task>.json``: a list of {video, question, candidates, answer (the candidate text),
    optionally start/end seconds}; the same files on both branches;
  * videos under ``video/`` (or ``video_dir``) in one prefix folder per source dataset:
      - ``layout="video"``: the HF ``video`` revision lmms-eval reads (its ``DATA_LIST``): pre-cut
        clips (``star/Charades_segment``, ``sta/sta_video_segment``, ``ssv2_video_mp4``,
        ``nturgbd_convert``, ``tvqa/video_fps3_hq_segment``, ...), so a clip is the whole video;
      - ``layout="main"``: the HF ``main`` branch (VLMEvalKit's ``MVBench.type_data_list``): full
        videos (``star/Charades_v1_480``, ``sta/sta_video``, ``ssv2_video``, ``nturgbd``, ...);
        the five "bound" tasks then carry ``start``/``end`` (seconds) for the decoder, and a video
        missing from ``star/``/``clevrer/`` is looked up under ``data0613/`` (where the main
        branch's zips put some of them; VLMEvalKit's ``move_files``). Episodic reasoning on
        ``main`` is a folder of fps-3 TVQA frames (``tvqa/frames_fps3_hq/<clip>/``), which the
        video decoders here do not read: asking for it under ``main`` is a load error naming the
        fix (``layout: video`` or leave the task out);
      - ``layout="auto"`` (default): whichever of the two the prefix folders on disk match, else
        the protocol's own (lmms-eval: ``video``; VLMEvalKit: ``main``).
  ``prefixes`` overrides the table task by task. Every referenced video must exist at load
  (``_io.check_media_exist``; the main branch no longer ships ``nturgbd``).

Protocols (``eval.protocols``):
  * ``lmms_eval`` (0.7.3, ``tasks/mvbench``): prompt ``"Question:" + q + "\\nOption:\\n(A) c\\n..."
    + "Only give the best option.\\n"`` (no space after the colon, "Option:" singular: upstream's
    ``mvbench_doc_to_text`` as is); ``max_new_tokens`` 16 (``_default_template_yaml``); the
    parsing rule is ``mcq_acc`` (``^([A-E])\\.\\s*(.+)$`` first, else VQA-style punctuation
    stripping and the first standalone letter A-E, else the processed text itself, compared with
    the processed reference letter), including its quirks (the period regex is called with
    ``re.UNICODE`` as its *count*, letters beyond E only match by whole-answer equality);
    ``mvbench_aggregate_results``: per task, a prediction that is exactly "" leaves the
    denominator. The prediction is first what lmms-eval's model wrappers pass on: cut at the
    task's ``until`` ("\\n\\n", ``TaskConfig.fewshot_delimiter``) and stripped, so a blank answer
    is dropped from the denominator; a decode error stays in it, wrong (``n_errors``). lmms-eval reports no group number for ``mvbench``; ``overall`` is the mean of the
    per-task accuracies (MVBench's own average; each task has 200 questions).
  * ``vlmevalkit`` (0.2rc1@e8e78f0, ``dataset/mvbench.py`` + ``utils/mvbench.py``): system prompt
    ``MVBench.SYS``, user text ``"Question: q\\nOptions:\\n(A) c\\n...(rstrip)"`` +
    ``"\\nOnly give the best option."``, assistant prefix ``"Best option:("`` (items carry them as
    ``system_prompt`` / ``assistant_prefix``); rule path of ``check_ans_with_model`` with the
    ``exact_matching`` judge: first word of the answer (dots removed) a substring of ``"(x)"``, or
    ``"(x)"`` inside that word, else ``can_infer`` (option letter, then option text) must give the
    answer letter; where VLMEvalKit would then ask its LLM the row is flagged ``needs_judge``.
    Quirks kept: a prediction pandas reads back from the xlsx as NaN ("", "None", "NA", "null",
    ...) is never scored and its NaN score counts as correct in ``get_dimension_rating``; a
    whitespace-only answer is correct (``"" in "(a)"``). Aggregation: per task and ``overall``
    = correct / all rows. ``max_new_tokens`` 2048: VLMEvalKit sets no length per dataset; its
    Qwen2-VL and LLaVA wrappers generate up to 2048 new tokens.
Every judge also writes ``lenient`` (this project's extractor, ``answers.extract_choice``): an
extra column, never the headline.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from videosft.benchmarks import _io
from videosft.benchmarks.answers import extract_choice, mean, pct
from videosft.benchmarks.base import Benchmark, EvalItem
from videosft.benchmarks.vlmevalkit_rules import PANDAS_NA, can_infer

TASKS = (
    "action_sequence",
    "action_prediction",
    "action_antonym",
    "fine_grained_action",
    "unexpected_action",
    "object_existence",
    "object_interaction",
    "object_shuffle",
    "moving_direction",
    "action_localization",
    "scene_transition",
    "action_count",
    "moving_count",
    "moving_attribute",
    "state_change",
    "fine_grained_pose",
    "character_order",
    "egocentric_navigation",
    "episodic_reasoning",
    "counterfactual_inference",
)
# VLMEvalKit's task_type names (its score keys), per task.
DISPLAY = {t: t.replace("_", " ").title().replace("Fine Grained", "Fine-grained") for t in TASKS}
_CLEVRER, _PERC = "clevrer/video_validation", "perception/videos"
# lmms-eval 0.7.3 tasks/mvbench/utils.py DATA_LIST: the HF ``video`` revision.
VIDEO_PREFIXES = {
    "object_interaction": "star/Charades_segment",
    "action_sequence": "star/Charades_segment",
    "action_prediction": "star/Charades_segment",
    "action_localization": "sta/sta_video_segment",
    "moving_count": _CLEVRER,
    "fine_grained_pose": "nturgbd_convert",
    "character_order": _PERC,
    "object_shuffle": _PERC,
    "egocentric_navigation": "vlnqa",
    "moving_direction": _CLEVRER,
    "episodic_reasoning": "tvqa/video_fps3_hq_segment",
    "fine_grained_action": "Moments_in_Time_Raw/videos",
    "scene_transition": "scene_qa/video",
    "state_change": _PERC,
    "moving_attribute": _CLEVRER,
    "action_antonym": "ssv2_video_mp4",
    "unexpected_action": "FunQA_test/test",
    "counterfactual_inference": _CLEVRER,
    "object_existence": _CLEVRER,
    "action_count": _PERC,
}
# VLMEvalKit MVBench.type_data_list: the HF ``main`` branch (episodic reasoning: frame folders).
MAIN_PREFIXES = dict(
    VIDEO_PREFIXES,
    object_interaction="star/Charades_v1_480",
    action_sequence="star/Charades_v1_480",
    action_prediction="star/Charades_v1_480",
    action_localization="sta/sta_video",
    fine_grained_pose="nturgbd",
    episodic_reasoning="tvqa/frames_fps3_hq",
    action_antonym="ssv2_video",
)
LAYOUTS = {"video": VIDEO_PREFIXES, "main": MAIN_PREFIXES}
# Tasks whose main-branch videos are full recordings cut by the JSON's start/end (VLMEvalKit "bound").
BOUND_TASKS = (
    "action_sequence",
    "action_prediction",
    "object_interaction",
    "action_localization",
    "episodic_reasoning",
)
FRAME_TASKS_MAIN = ("episodic_reasoning",)

LMMS_POST_PROMPT = "Only give the best option.\n"  # every mvbench_<task>.yaml's default post_prompt
VLMEVAL_SYS = (
    "Carefully watch the video and pay attention to the cause and sequence of events, "
    "the detail and movement of objects, and the action and pose of persons. "
    "Based on your observations, select the best option that accurately addresses the question.\n"
)
VLMEVAL_POST = "\nOnly give the best option."
VLMEVAL_ASSISTANT_PREFIX = "Best option:("


def lmms_eval_prompt(question: str, candidates: Sequence[str], post_prompt: str = LMMS_POST_PROMPT) -> str:
    """lmms-eval ``mvbench_doc_to_text``."""
    opts = "".join(f"({string.ascii_uppercase[i]}) {c}\n" for i, c in enumerate(candidates))
    return "Question:" + question + "\nOption:\n" + opts + post_prompt


def vlmevalkit_prompt(question: str, candidates: Sequence[str]) -> str:
    """VLMEvalKit ``MVBench.qa_template`` question + the ``build_prompt`` instruction part."""
    text = f"Question: {question}\nOptions:\n" + "".join(
        f"({chr(ord('A') + i)}) {c}\n" for i, c in enumerate(candidates)
    )
    return text.rstrip() + VLMEVAL_POST


# ---------------------------------------------------------------- loading


LAYOUT_ALIASES = {"hf_main": "main", "hf_video": "video"}


def _pick_layout(layout: str, video_dir: str, tasks: Sequence[str], protocol: str) -> str:
    layout = LAYOUT_ALIASES.get(layout, layout)
    if layout in LAYOUTS:
        return layout
    if layout != "auto":
        raise ValueError(
            f"MVBench layout must be 'auto', 'video' (alias hf_video) or 'main' (alias hf_main), got {layout!r}"
        )
    differing = [t for t in tasks if VIDEO_PREFIXES[t] != MAIN_PREFIXES[t]]
    found = {name: sum(_io.is_dir(_io.join(video_dir, table[t])) for t in differing) for name, table in LAYOUTS.items()}
    if found["video"] != found["main"]:
        return max(found, key=found.get)
    return "video" if protocol == "lmms_eval" else "main"


def _task_items(
    path: str, task: str, video_root: str, layout: str, protocol: str, data0613: str | None
) -> list[EvalItem]:
    records = _io.read_json(path)
    if not isinstance(records, list):
        raise _io.BenchmarkDataError(f"{path}: expected a JSON list of questions")
    items = []
    for i, rec in enumerate(records):
        where = f"record {i}"
        video = str(_io.require(rec, "video", path, where))
        raw_cands = _io.require(rec, "candidates", path, where)
        if not isinstance(raw_cands, list) or not raw_cands:
            raise _io.BenchmarkDataError(f"{path} ({where}): field 'candidates' must be a non-empty list")
        cands = [str(c) for c in raw_cands]
        if len(cands) > 26:
            raise _io.BenchmarkDataError(f"{path} ({where}): more than 26 candidates")
        ans_text = str(_io.require(rec, "answer", path, where))
        if ans_text not in cands:
            raise _io.BenchmarkDataError(f"{path} ({where}): field 'answer' {ans_text!r} is not among 'candidates'")
        question = str(_io.require(rec, "question", path, where))
        media = _io.join(video_root, video)
        if data0613 and not _io.exists(media) and _io.exists(_io.join(data0613, video)):
            media = _io.join(data0613, video)
        item: EvalItem = {
            "id": f"{task}/{i}",
            "media_type": "video",
            "media_path": media,
            "question": lmms_eval_prompt(question, cands)
            if protocol == "lmms_eval"
            else vlmevalkit_prompt(question, cands),
            "answer": string.ascii_uppercase[cands.index(ans_text)],  # first equal candidate, as both tools
            "answer_text": ans_text,
            "options": cands,
            "raw_question": question,
            "video": video,
            "cluster": f"{task}/{video}",
            "task": task,
        }
        if protocol == "vlmevalkit":
            item["system_prompt"], item["assistant_prefix"] = VLMEVAL_SYS, VLMEVAL_ASSISTANT_PREFIX
        if layout == "main" and task in BOUND_TASKS and rec.get("start") is not None and rec.get("end") is not None:
            item["start"], item["end"] = float(rec["start"]), float(rec["end"])
        items.append(item)
    return items


def _loader(protocol: str):
    def load(
        root: str,
        tasks: Sequence[str] = TASKS,
        layout: str = "auto",
        prefixes: Mapping[str, str] | None = None,
        video_dir: str | None = None,
        check_media: bool = True,
        **_: Any,
    ) -> list[EvalItem]:
        """MVBench items for ``tasks``: JSON under root/json, videos under video_dir (root/video)."""
        tasks = [tasks] if isinstance(tasks, str) else list(tasks)
        unknown = [t for t in tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"unknown MVBench task(s) {unknown}; known: {TASKS}")
        bad = sorted(set(prefixes or {}) - set(TASKS))
        if bad:
            raise ValueError(f"MVBench prefixes: unknown task(s) {bad}")
        json_dir = _io.join(root, "json") if _io.is_dir(_io.join(root, "json")) else root
        if video_dir is None:
            video_dir = _io.join(root, "video") if _io.is_dir(_io.join(root, "video")) else root
        chosen = _pick_layout(layout, video_dir, tasks, protocol)
        table = dict(LAYOUTS[chosen], **(prefixes or {}))
        if chosen == "main":
            frames = [t for t in tasks if t in FRAME_TASKS_MAIN and t not in (prefixes or {})]
            if frames:
                raise _io.BenchmarkDataError(
                    f"mvbench: task(s) {frames} are folders of fps-3 frames in the HF main layout "
                    f"({MAIN_PREFIXES['episodic_reasoning']}/<clip>/), which the video decoders do not read; "
                    "use eval.benchmark_options.mvbench.layout: video (the HF 'video' revision's "
                    f"{VIDEO_PREFIXES['episodic_reasoning']} mp4 clips) or leave the task out with tasks: [...]"
                )
        items: list[EvalItem] = []
        for task in tasks:
            path = _io.join(json_dir, f"{task}.json")
            if not _io.exists(path):
                raise _io.BenchmarkDataError(f"{path}: MVBench task file not found")
            prefix = table[task]
            data0613 = (
                _io.join(video_dir, "data0613", prefix)
                if chosen == "main" and prefix.split("/")[0] in ("star", "clevrer")
                else None
            )
            items += _task_items(path, task, _io.join(video_dir, prefix), chosen, protocol, data0613)
        if check_media:
            _io.check_media_exist("mvbench", items)
        return items

    return load


# ---------------------------------------------------------------- lmms-eval 0.7.3 rule

_LMMS_PUNCT = [
    ";",
    r"/",
    "[",
    "]",
    '"',
    "{",
    "}",
    "(",
    ")",
    "=",
    "+",
    "\\",
    "_",
    "-",
    ">",
    "<",
    "@",
    "`",
    ",",
    "?",
    "!",
]
_LMMS_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")  # upstream's pattern, '(?!<=' and all
_LMMS_COMMA = re.compile(r"(\d)(\,)(\d)")
_LMMS_OPTION = re.compile(r"^([A-E])\.\s*(.+)$", re.IGNORECASE)
_LMMS_LETTER = re.compile(r"\b([A-E])\b", re.IGNORECASE)


def _lmms_punctuation(text: str) -> str:
    out = text
    comma = _LMMS_COMMA.search(text) is not None
    for p in _LMMS_PUNCT:
        # upstream tests the *input* text but edits the running output
        out = out.replace(p, "") if (p + " " in text or " " + p in text) or comma else out.replace(p, " ")
    return _LMMS_PERIOD.sub("", out, re.UNICODE)  # re.UNICODE (32) lands in sub's count argument


@lru_cache(maxsize=1 << 16)
def lmms_eval_process(answer: str) -> str:
    """``mcq_acc``'s inner ``process``: an option letter (upper case) or the processed text."""
    m = _LMMS_OPTION.match(answer.strip())
    if m:
        return m.group(1).upper()
    s = answer.replace("\n", " ").replace("\t", " ").strip()
    s = _lmms_punctuation(s)
    s = s.strip("'").strip('"').strip(")").strip("(").strip().lower()
    m = _LMMS_LETTER.search(s)
    return m.group(1).upper() if m else s


def lmms_eval_correct(gt_letter: str, pred: str) -> bool:
    return lmms_eval_process(pred) == lmms_eval_process(gt_letter)


LMMS_UNTIL = "\n\n"  # lmms-eval TaskConfig.fewshot_delimiter: the `until` of every generate_until task here


def lmms_eval_output(raw: Any) -> str:
    """What lmms-eval's model wrappers (qwen2_vl, llava_vid, ...) hand to ``process_results``: the
    generation cut at the first ``until`` string ("\\n\\n", the YAMLs set none) and stripped."""
    text = "" if raw is None else str(raw)
    cut = text.find(LMMS_UNTIL)
    return (text if cut < 0 else text[:cut]).strip()


def _lenient(row: Mapping[str, Any]) -> str | None:
    got = extract_choice(str(row.get("prediction") or ""), row.get("options") or [])
    return got or None


def judge_lmms_eval(row: Mapping[str, Any]) -> dict[str, Any]:
    """lmms-eval ``mvbench_process_results`` for one row; ``counted`` is False where the aggregate
    drops it (a prediction that is exactly "")."""
    if row.get("error"):
        return {"extracted": None, "correct": False, "lenient": None, "counted": True}
    pred = lmms_eval_output(row.get("prediction"))
    got = lmms_eval_process(pred)
    return {
        "extracted": got or None,
        "correct": bool(got) and lmms_eval_correct(str(row["answer"]), pred),
        "lenient": _lenient(row),
        "counted": pred != "",
    }


def _per_task(
    rows: Sequence[Mapping[str, Any]], hits: Sequence[bool], counted: Sequence[bool]
) -> dict[str, tuple[int, int]]:
    out: dict[str, list[int]] = {}
    for r, ok, c in zip(rows, hits, counted):
        acc = out.setdefault(str(r.get("task", "")), [0, 0])
        acc[0] += int(bool(ok) and c)
        acc[1] += int(c)
    return {t: (h, n) for t, (h, n) in out.items()}


def _ordered(d: Mapping[str, Any]) -> list[str]:
    return [t for t in TASKS if t in d] + [t for t in d if t not in TASKS]


def score_lmms_eval(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    verdicts = [judge_lmms_eval(r) for r in rows]
    hits, counted = [v["correct"] for v in verdicts], [v["counted"] for v in verdicts]
    per = _per_task(rows, hits, counted)
    # mvbench_aggregate_results: 100 * correct / answered, 0 when nothing was answered
    task_acc = {t: (100 * h / n if n > 0 else 0) for t, (h, n) in per.items()}
    n_counted = sum(counted)
    out: dict[str, Any] = {
        "overall": mean(task_acc[t] for t in _ordered(task_acc)),
        "micro": pct(sum(h for h, _ in per.values()), n_counted),
        "micro_all_rows": pct(sum(hits), len(rows)),  # empties kept in the denominator, for comparison
        "n": len(rows),
        "n_counted": n_counted,
        "n_empty": len(rows) - n_counted,
        "n_errors": sum(1 for r in rows if r.get("error")),
    }
    out.update({f"task/{t}": task_acc[t] for t in _ordered(task_acc)})
    return out


# ---------------------------------------------------------------- VLMEvalKit 0.2rc1 rule

# Predictions pandas reads back as NaN from VLMEvalKit's xlsx: `PANDAS_NA` (videosft/benchmarks/vlmevalkit_rules.py).


@lru_cache(maxsize=1 << 16)
def _vlm_check(pred: str, answer_text: str, candidates: tuple[str, ...]) -> tuple[bool, str | None, bool]:
    """(correct, extracted, needs_judge) by ``check_ans_with_model`` with no LLM."""
    # evaluate(): the "(x) text" reference takes the *last* equal candidate, the letter that
    # can_infer must hit the *first* (its loop rewrites item['answer'] once)
    last = max(i for i, c in enumerate(candidates) if c == answer_text)
    gt_letter = string.ascii_uppercase[candidates.index(answer_text)]
    gt = f"({chr(ord('A') + last)}) {answer_text}"
    pred_option = pred.lower().strip().split(" ")[0]
    gt_option = gt.lower().strip().split(" ")[0]
    if pred_option.replace(".", "") in gt_option or gt_option in pred_option:
        return True, chr(ord("A") + last), False
    choices = {string.ascii_uppercase[i]: c for i, c in enumerate(candidates)}
    got = can_infer(pred, choices) or None
    # extract_answer_from_item: no rule decides -> the LLM would be asked ('Z' under exact_matching)
    return got == gt_letter, got, got is None


def judge_vlmevalkit(row: Mapping[str, Any]) -> dict[str, Any]:
    """VLMEvalKit ``MVBench.evaluate`` for one row, ``exact_matching`` judge."""
    if row.get("error"):
        return {"extracted": None, "correct": False, "lenient": None}
    pred = "" if row.get("prediction") is None else str(row.get("prediction"))
    if pred in PANDAS_NA:
        # read back as NaN: skipped by evaluate(), and get_dimension_rating's `if item['score']` is
        # true for the NaN score, so the row counts as correct (upstream quirk, reproduced)
        return {"extracted": None, "correct": True, "lenient": _lenient(row), "unscored_nan": True}
    ok, got, needs = _vlm_check(pred, str(row["answer_text"]), tuple(str(c) for c in row["options"]))
    out = {"extracted": got, "correct": ok, "lenient": _lenient(row)}
    if needs:
        out["needs_judge"] = True
    return out


def score_vlmevalkit(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    verdicts = [judge_vlmevalkit(r) for r in rows]
    hits = [v["correct"] for v in verdicts]
    per = _per_task(rows, hits, [True] * len(rows))
    out: dict[str, Any] = {
        "overall": pct(sum(hits), len(rows)),
        "task_mean": mean(pct(h, n) for h, n in per.values()),
        "n": len(rows),
        "n_nan_counted_correct": sum(1 for v in verdicts if v.get("unscored_nan")),
        "rows_needing_judge": sum(1 for v in verdicts if v.get("needs_judge")),
        "n_errors": sum(1 for r in rows if r.get("error")),
    }
    out.update({f"task/{t}": pct(*per[t]) for t in _ordered(per)})
    out.update({f"task_count/{t}": list(per[t]) for t in _ordered(per)})
    return out


# check_media (a keyword for tests) is deliberately not a config option: a run always checks its videos.
_OPTIONS = ("tasks", "layout", "prefixes", "video_dir")
MVBENCH = {
    "lmms_eval": Benchmark(
        name="mvbench",
        modality="video",
        load=_loader("lmms_eval"),
        score=score_lmms_eval,
        judge=judge_lmms_eval,
        protocol="lmms_eval",
        max_new_tokens=16,
        options=_OPTIONS,
    ),
    "vlmevalkit": Benchmark(
        name="mvbench",
        modality="video",
        load=_loader("vlmevalkit"),
        score=score_vlmevalkit,
        judge=judge_vlmevalkit,
        protocol="vlmevalkit",
        max_new_tokens=2048,
        options=_OPTIONS,
    ),
}
