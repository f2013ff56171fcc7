"""TempCompass: the HF lmms-lab/TempCompass layout (and the GitHub release's questions/*.json),
both protocols' prompts, rules and aggregates, by hand.

VLMEvalKit cases are worked out by hand from its source at e8e78f0 (vlmeval/dataset/utils/tempcompass.py
``eval_rule_multi_choice`` / ``eval_rule_YorN`` / ``eval_rule_caption_matching`` /
``evaluate_tempcompass_mcq`` / ``evaluate_tempcompass_YorN`` / ``evaluate_tempcompass_captioning``;
vlmeval/dataset/tempcompass.py ``TempCompass.evaluate``, ``qa_template``, ``build_prompt``).
"""

import pytest

from videosft.benchmarks import get_benchmark
from videosft.benchmarks._io import BenchmarkDataError
from videosft.benchmarks.tempcompass import caption_choice, rule_caption_matching

MC = [
    {
        "video_id": "1001",
        "question": "What is the speed of the car?\nA. slow\nB. fast",
        "answer": "B. fast",
        "dim": "speed",
    },
    {
        "video_id": "1001",
        "question": "Where does it go?\nA. left\nB. right\nC. up",
        "answer": "C. up",
        "dim": "direction",
    },
    {
        "video_id": "1002_reverse",
        "question": "How fast is the video?\nA. slow\nB. fast",
        "answer": "A. slow",
        "dim": "speed",
    },
]
YN = [
    {"video_id": "1001", "question": "Is the car fast?", "answer": "yes", "dim": "speed"},
    {"video_id": "1001", "question": "Is the car slow?", "answer": "no", "dim": "speed"},
]
CM = [
    {
        "video_id": "1001",
        "question": "Which caption matches the video better?\nCaption A: moving left\nCaption B: moving up",
        "answer": "Caption B: moving up",
        "dim": "direction",
    },
    {
        "video_id": "1001",
        "question": "Which description is a more suitable match for the video?\nOption 1: moving up\nOption 2: moving left",
        "answer": "Option 1: moving up",
        "dim": "direction",
    },
]
CAP = [
    {
        "video_id": "1001",
        "question": "Describe the speed of the car.\nGenerated Caption:",
        "answer": "slow",
        "dim": "speed",
        "mc_question": "Speed?\nA. slow\nB. fast",
        "mc_answer": "A. slow",
    }
]


@pytest.fixture
def hf_root(tmp_path, write_parquet):
    """lmms-lab/TempCompass as downloaded, tempcompass_videos.zip unzipped to videos/."""
    for tt, rows in (("multi-choice", MC), ("yes_no", YN), ("caption_matching", CM), ("captioning", CAP)):
        write_parquet(tmp_path / tt / "test-00000-of-00001.parquet", rows)
    (tmp_path / "videos").mkdir()
    for vid in ("1001", "1002_reverse"):
        (tmp_path / "videos" / f"{vid}.mp4").write_bytes(b"")
    return tmp_path


def _rows(items, preds):
    return [dict(i, prediction=preds.get(i["id"], ""), error="") for i in items]


PREDS = {
    "multi-choice/1001/speed/0": "B",
    "multi-choice/1001/direction/0": "A. left",
    "multi-choice/1002_reverse/speed/0": "slow",
    "yes_no/1001/speed/0": "Yes, it is.",
    "yes_no/1001/speed/1": "I am unsure",
    "caption_matching/1001/direction/0": "Caption B",
    "caption_matching/1001/direction/1": "Option 2",
}


def test_items_from_the_hf_layout(hf_root):
    bench = get_benchmark("tempcompass")
    assert bench.protocol == "lmms_eval" and bench.max_new_tokens == 128
    assert {"task_types", "video_dir"} <= set(bench.options)
    items = bench.load(str(hf_root))  # captioning (judge-only) is off by default
    assert len(items) == 7 and {i["task_type"] for i in items} == {"multi-choice", "yes_no", "caption_matching"}
    mc = items[0]
    assert mc["id"] == "multi-choice/1001/speed/0" and mc["answer"] == "B. fast" and mc["options"] == ["slow", "fast"]
    assert mc["question"] == "What is the speed of the car?\nA. slow\nB. fast\nPlease directly give the best option:"
    assert mc["media_path"] == str(hf_root / "videos" / "1001.mp4") and mc["cluster"] == "1001"
    yn = [i for i in items if i["task_type"] == "yes_no"]
    assert yn[0]["question"] == "Is the car fast?\nPlease answer yes or no:"
    cm = [i for i in items if i["task_type"] == "caption_matching"]
    assert cm[0]["option_labels"] == ["Caption A", "Caption B"] and cm[1]["options"] == ["moving up", "moving left"]
    cap = bench.load(str(hf_root), task_types=("captioning",))[0]
    assert cap["question"] == CAP[0]["question"] and cap["mc_answer"] == "A. slow"
    # the VLMEvalKit variant builds the same text (qa_template + build_prompt's instruction part)
    v = get_benchmark("tempcompass", "vlmevalkit").load(
        str(hf_root), task_types=("multi-choice", "yes_no", "captioning")
    )
    assert [i["question"] for i in v] == [i["question"] for i in items[:5]] + [cap["question"]]


def test_github_release_layout_and_errors(tmp_path, write_json, hf_root):
    write_json(
        tmp_path / "gh" / "questions" / "yes_no.json",
        {"1001": {"speed": [{"question": "Is it fast?", "answer": "no"}]}},
    )
    (tmp_path / "gh" / "videos").mkdir()
    with pytest.raises(BenchmarkDataError, match=r"tempcompass: 1 of 1 referenced media"):
        get_benchmark("tempcompass").load(str(tmp_path / "gh"), task_types=("yes_no",))
    (tmp_path / "gh" / "videos" / "1001.mp4").write_bytes(b"")
    items = get_benchmark("tempcompass").load(str(tmp_path / "gh"), task_types=("yes_no",))
    assert items[0]["id"] == "yes_no/1001/speed/0" and items[0]["answer"] == "no"
    with pytest.raises(BenchmarkDataError, match="multi-choice"):
        get_benchmark("tempcompass").load(str(tmp_path / "gh"), task_types=("multi-choice",))
    with pytest.raises(ValueError, match="unknown TempCompass task type"):
        get_benchmark("tempcompass").load(str(hf_root), task_types=("essay",))
    write_json(
        tmp_path / "bad" / "questions" / "caption_matching.json",
        {"1001": {"order": [{"question": "Which?\nCaption A - x\nCaption B - y", "answer": "Caption A - x"}]}},
    )
    with pytest.raises(BenchmarkDataError, match="Label: sentence"):
        get_benchmark("tempcompass").load(str(tmp_path / "bad"), task_types=("caption_matching",), check_media=False)


def test_lmms_eval_rules_and_scores_by_hand(hf_root):
    bench = get_benchmark("tempcompass")
    items = bench.load(str(hf_root), task_types=("multi-choice", "yes_no", "caption_matching", "captioning"))
    rows = _rows(items, dict(PREDS, **{"captioning/1001/speed/0": "The car moves slowly."}))
    v = [bench.judge(r) for r in rows]
    # multi-choice: "B" bare letter right; "A. left" prefix wrong; "slow" no rule -> judge upstream, 0 here
    # yes_no: startswith yes; "I am unsure" -> judge; caption_matching: label "B" via option_inds; "2" wrong
    assert [x["correct"] for x in v] == [True, False, False, True, False, True, False, False]
    assert [bool(x.get("needs_judge")) for x in v] == [False, False, True, False, True, False, False, True]
    assert [x["extracted"] for x in v[:3]] == ["B", "A", None]
    s = bench.score(rows)
    assert s["multi-choice/avg_accuracy"] == pytest.approx(100 / 3)
    assert s["multi-choice/speed_accuracy"] == pytest.approx(50.0) and s["multi-choice/direction_accuracy"] == 0.0
    assert s["yes_no/avg_accuracy"] == 50.0 and s["caption_matching/avg_accuracy"] == 50.0
    assert s["captioning/avg_accuracy"] == 0.0 and s["rows_needing_judge"] == 3
    assert s["overall"] == pytest.approx((100 / 3 + 50 + 50 + 0) / 4)
    assert s["micro"] == pytest.approx(300 / 8)
    # quirks kept: "Not sure" starts with "no"; answers are cut at "\n\n" and stripped first
    yn_no = rows[4]
    assert bench.judge(dict(yn_no, prediction="Not sure."))["correct"] is True
    mc = rows[0]
    assert bench.judge(dict(mc, prediction="  B\n\nbecause it is fast"))["correct"] is True
    assert bench.judge(dict(mc, prediction="(B)"))["correct"] is False  # no "(B" rule upstream
    assert bench.judge(dict(mc, prediction="B", error="decode failed")) == {
        "extracted": None,
        "correct": False,
        "lenient": None,
    }


def test_caption_matching_rule_by_hand():
    q = "Which caption matches the video better?\nCaption A: moving left\nCaption B: moving up"
    a = "Caption B: moving up"
    assert rule_caption_matching("Caption B: moving up", q, a) == (1, "Caption B: moving up")  # option_strs loop
    assert rule_caption_matching("Caption B", q, a) == (1, "Caption B")  # == answer.split(":")[0]
    assert rule_caption_matching("moving up", q, a) == (1, "moving up")
    assert rule_caption_matching("(B) moving up", q, a) == (1, "moving up")  # ") " split
    assert rule_caption_matching("B.", q, a) == (1, "B")
    assert rule_caption_matching("Caption A", q, a) == (0, "Caption A")
    assert rule_caption_matching("The caption B", q, a) == ("fail", None)
    assert rule_caption_matching("", q, a) == ("fail", None)


def test_vlmevalkit_rules_and_aggregates_by_hand(hf_root):
    bench = get_benchmark("tempcompass", "vlmevalkit")
    assert bench.max_new_tokens == 2048
    items = bench.load(str(hf_root), task_types=("multi-choice", "yes_no", "caption_matching", "captioning"))
    rows = _rows(items, dict(PREDS, **{"captioning/1001/speed/0": "slow car"}))
    v = [bench.judge(r) for r in rows]
    # eval_rule_multi_choice / eval_rule_YorN / eval_rule_caption_matching as lmms-eval; exact_matching:
    # a 'fail' is rating 0; captioning raises upstream under exact_matching -> wrong, flagged
    assert [x["correct"] for x in v] == [True, False, False, True, False, True, False, False]
    assert [bool(x.get("needs_judge")) for x in v] == [False, False, True, False, True, False, False, True]
    # no strip upstream: " B" is not "B"
    assert bench.judge(dict(rows[0], prediction=" B"))["correct"] is False
    # NaN from the xlsx ("", "None", ...) crashes its rules upstream: wrong here, counted apart
    nan = bench.judge(dict(rows[0], prediction="None"))
    assert nan["correct"] is False and nan["unscorable_nan"] is True
    s = bench.score(rows)
    assert s["multi-choice/overall"] == pytest.approx(100 / 3) and s["multi-choice/speed"] == 50.0
    assert s["yes_no/overall"] == 50.0 and s["caption_matching/direction"] == 50.0 and s["captioning/speed"] == 0.0
    assert s["dim/speed"] == pytest.approx(200 / 5)  # MC 1/2, YN 1/2, captioning 0/1
    assert s["overall"] == pytest.approx(300 / 8)  # success / overall over all rows
    assert s["rows_needing_judge"] == 3 and s["n_unscorable_nan"] == 0


def test_lenient_column_is_extra():
    sents, labels = ["moving up", "moving left"], ["Option 1", "Option 2"]
    assert caption_choice("Option 1: moving up", sents, labels) == "A"
    assert caption_choice("The video shows it moving left.", sents, labels) == "B"
    assert caption_choice("A man walks", sents, ["Caption A", "Caption B"]) == ""
