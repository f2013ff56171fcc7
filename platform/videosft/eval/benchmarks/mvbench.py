"""MVBench: 20 temporal tasks x 200 multiple-choice questions, one JSON file per task.

Layout (HF ``OpenGVLab/MVBench``): ``json/<task>.json`` (a list of {video, question, candidates,
answer (the candidate text)}, some with start/end seconds) and videos under ``video/`` in one
prefix folder per source dataset. Two prefix maps are provided:
  * ``layout="segments"`` (default): the pre-cut clips lmms-eval reads (``star/Charades_segment``,
    ``ssv2_video_mp4``, ...), so a clip is the whole video and start/end can be ignored;
  * ``layout="original"``: the MVBench notebook's full videos (``star/Charades_v1_480`` ...);
    items then carry ``start``/``end`` (seconds) that the decoder must honour, and episodic
    reasoning points at a folder of TVQA frames.
``prefixes`` overrides either map task by task.

Prompt (lmms-eval / MVBench): "Question: ...\\nOptions:\\n(A) ...\\n(B) ...\\n" followed by
"Only give the best option." Answer letters follow candidate order.

Scores: ``task/<task>`` accuracy, ``overall`` = mean over tasks (MVBench's leaderboard average;
equals micro accuracy on the full 200-per-task set), ``micro``. Empty / unparseable predictions
are wrong and stay in the denominator. lmms-eval drops empty predictions from its denominator;
that number is reported as ``micro_excluding_empty_lmms_eval`` so the difference is visible
(MVBench's own ``check_ans`` even counts an empty answer right: "" is a substring of "(a)").
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from videosft.eval.answers import corrects, group_accuracy, judge_choice, mean, pct
from videosft.eval.benchmarks import _io
from videosft.eval.benchmarks.base import Benchmark, EvalItem

TASKS = (
    "action_sequence", "action_prediction", "action_antonym", "fine_grained_action", "unexpected_action",
    "object_existence", "object_interaction", "object_shuffle", "moving_direction", "action_localization",
    "scene_transition", "action_count", "moving_count", "moving_attribute", "state_change",
    "fine_grained_pose", "character_order", "egocentric_navigation", "episodic_reasoning",
    "counterfactual_inference",
)
_CLEVRER, _PERC = "clevrer/video_validation", "perception/videos"
SEGMENT_PREFIXES = {
    "object_interaction": "star/Charades_segment", "action_sequence": "star/Charades_segment",
    "action_prediction": "star/Charades_segment", "action_localization": "sta/sta_video_segment",
    "moving_count": _CLEVRER, "fine_grained_pose": "nturgbd_convert", "character_order": _PERC,
    "object_shuffle": _PERC, "egocentric_navigation": "vlnqa", "moving_direction": _CLEVRER,
    "episodic_reasoning": "tvqa/video_fps3_hq_segment", "fine_grained_action": "Moments_in_Time_Raw/videos",
    "scene_transition": "scene_qa/video", "state_change": _PERC, "moving_attribute": _CLEVRER,
    "action_antonym": "ssv2_video_mp4", "unexpected_action": "FunQA_test/test",
    "counterfactual_inference": _CLEVRER, "object_existence": _CLEVRER, "action_count": _PERC,
}
ORIGINAL_PREFIXES = dict(
    SEGMENT_PREFIXES,
    object_interaction="star/Charades_v1_480", action_sequence="star/Charades_v1_480",
    action_prediction="star/Charades_v1_480", action_localization="sta/sta_video",
    fine_grained_pose="nturgbd", episodic_reasoning="tvqa/frames_fps3_hq", action_antonym="ssv2_video",
)
INSTRUCTION = "Only give the best option."


def build_prompt(question: str, candidates: Sequence[str]) -> str:
    opts = "".join(f"({'ABCDEFGH'[i]}) {c}\n" for i, c in enumerate(candidates))
    return f"Question: {question.strip()}\nOptions:\n{opts}{INSTRUCTION}"


def _task_items(path: str, task: str, video_root: str, layout: str) -> list[EvalItem]:
    records = _io.read_json(path)
    if not isinstance(records, list):
        raise _io.BenchmarkDataError(f"{path}: expected a JSON list of questions")
    items = []
    for i, rec in enumerate(records):
        where = f"record {i}"
        video = str(_io.require(rec, "video", path, where))
        cands = [str(c) for c in _io.require(rec, "candidates", path, where)]
        ans_text = str(_io.require(rec, "answer", path, where))
        if ans_text not in cands:
            raise _io.BenchmarkDataError(f"{path} ({where}): field 'answer' {ans_text!r} is not among 'candidates'")
        item: EvalItem = {
            "id": f"{task}/{i}",
            "media_type": "video",
            "media_path": _io.join(video_root, video),
            "question": build_prompt(str(_io.require(rec, "question", path, where)), cands),
            "answer": "ABCDEFGH"[cands.index(ans_text)],
            "options": cands,
            "cluster": f"{task}/{video}",
            "task": task,
        }
        if layout == "original" and "start" in rec and "end" in rec:
            item["start"], item["end"] = float(rec["start"]), float(rec["end"])
        items.append(item)
    return items


def load(
    root: str,
    tasks: Sequence[str] = TASKS,
    layout: str = "segments",
    prefixes: Mapping[str, str] | None = None,
    video_dir: str | None = None,
    **_: Any,
) -> list[EvalItem]:
    """MVBench items for ``tasks``; JSON under root/json, videos under video_dir (root/video)."""
    if layout not in ("segments", "original"):
        raise ValueError(f"MVBench layout must be 'segments' or 'original', got {layout!r}")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown MVBench task(s) {unknown}; known: {TASKS}")
    table = dict(SEGMENT_PREFIXES if layout == "segments" else ORIGINAL_PREFIXES, **(prefixes or {}))
    json_dir = _io.join(root, "json") if _io.is_dir(_io.join(root, "json")) else root
    if video_dir is None:
        video_dir = _io.join(root, "video") if _io.is_dir(_io.join(root, "video")) else root
    items: list[EvalItem] = []
    for task in tasks:
        path = _io.join(json_dir, f"{task}.json")
        if not _io.exists(path):
            raise _io.BenchmarkDataError(f"{path}: MVBench task file not found")
        items += _task_items(path, task, _io.join(video_dir, table[task]), layout)
    return items


judge = judge_choice  # per row: the extracted option letter (None if no rule decides), right or not


def score(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    correct = corrects(judge(r) for r in rows)
    per_task = group_accuracy(rows, correct, lambda r: str(r.get("task", "")))
    answered = [(ok, r) for ok, r in zip(correct, rows) if str(r.get("prediction") or "").strip()]
    out: dict[str, Any] = {
        "overall": mean(per_task.values()),
        "micro": pct(sum(correct), len(rows)),
        "micro_excluding_empty_lmms_eval": pct(sum(ok for ok, _ in answered), len(answered)),
        "n": len(rows),
        "n_empty": len(rows) - len(answered),
    }
    out.update({f"task/{t}": per_task[t] for t in TASKS if t in per_task})
    out.update({f"task/{t}": v for t, v in per_task.items() if t not in TASKS})
    return out


MVBENCH = Benchmark(name="mvbench", modality="video", load=load, score=score, judge=judge)
