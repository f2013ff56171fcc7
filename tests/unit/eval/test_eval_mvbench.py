"""MVBench: the HF layouts as downloaded, both protocols' prompts, rules and aggregates, by hand.

VLMEvalKit cases are worked out by hand from its source at e8e78f0 (vlmeval/dataset/mvbench.py
``MVBench.qa_template`` / ``build_prompt`` / ``evaluate``; vlmeval/dataset/utils/mvbench.py
``check_ans_with_model`` / ``get_dimension_rating``; vlmeval/utils/matching_util.py ``can_infer``).
"""

import pytest

from videosft.benchmarks import get_benchmark
from videosft.benchmarks._io import BenchmarkDataError
from videosft.benchmarks.mvbench import MAIN_PREFIXES, TASKS, VIDEO_PREFIXES
from videosft.benchmarks.vlmevalkit_rules import PANDAS_NA

RECORDS = {
    "action_count": [
        {
            "video": "a1.mp4",
            "question": "How many times did the person jump?",
            "candidates": ["2", "3", "4"],
            "answer": "3",
        },
        {"video": "a2.mp4", "question": "How many claps?", "candidates": ["1", "5"], "answer": "5"},
        {"video": "a3.mp4", "question": "How many spins?", "candidates": ["0", "1", "2"], "answer": "0"},
    ],
    "moving_direction": [
        {
            "video": "video_10000.mp4",
            "question": "Where does the cube go?",
            "candidates": ["left", "right"],
            "answer": "left",
        },
        {
            "video": "video_10001.mp4",
            "question": "Where does the ball go?",
            "candidates": ["up", "down"],
            "answer": "down",
        },
    ],
    "action_sequence": [
        {
            "video": "ZS9XR.mp4",
            "question": "What did the person do first?",
            "candidates": ["sat", "ran", "ate", "slept"],
            "answer": "ran",
            "start": 1.5,
            "end": 9.0,
        },
    ],
    "fine_grained_action": [
        {"video": "m1.mp4", "question": "Which action?", "candidates": ["a", "b", "c", "d", "e", "f"], "answer": "f"},
    ],
}


def _build(root, write_json, layout, skip=(), sub="video"):
    table = VIDEO_PREFIXES if layout == "video" else MAIN_PREFIXES
    for task, recs in RECORDS.items():
        write_json(root / "json" / f"{task}.json", recs)
        for r in recs:
            if r["video"] in skip:
                continue
            p = root / sub / table[task] / r["video"] if sub else root / table[task] / r["video"]
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"")
    return root


@pytest.fixture
def hf_video(tmp_path, write_json):
    """The HF ``video`` revision lmms-eval reads: pre-cut clips under lmms-eval's DATA_LIST folders."""
    return _build(tmp_path / "mvbench_video", write_json, "video")


@pytest.fixture
def hf_main(tmp_path, write_json):
    """The HF ``main`` branch unzipped: full videos under VLMEvalKit's type_data_list folders."""
    return _build(tmp_path / "mvbench_main", write_json, "main")


def test_lmms_eval_items_prompt_and_layout(hf_video):
    bench = get_benchmark("mvbench")  # lmms_eval is the default protocol
    assert bench.protocol == "lmms_eval" and bench.max_new_tokens == 16
    assert {"tasks", "layout", "prefixes", "video_dir"} <= set(bench.options)
    items = bench.load(str(hf_video), tasks=("action_count", "moving_direction", "action_sequence"))
    assert [i["id"] for i in items] == [
        "action_count/0",
        "action_count/1",
        "action_count/2",
        "moving_direction/0",
        "moving_direction/1",
        "action_sequence/0",
    ]
    assert items[0]["media_path"] == str(hf_video / "video" / "perception" / "videos" / "a1.mp4")
    assert items[3]["media_path"] == str(hf_video / "video" / "clevrer" / "video_validation" / "video_10000.mp4")
    assert items[5]["media_path"] == str(hf_video / "video" / "star" / "Charades_segment" / "ZS9XR.mp4")
    assert items[0]["answer"] == "B" and items[0]["options"] == ["2", "3", "4"]
    # mvbench_doc_to_text as is: no space after "Question:", "Option:" singular, trailing newline
    assert items[0]["question"] == (
        "Question:How many times did the person jump?\nOption:\n(A) 2\n(B) 3\n(C) 4\nOnly give the best option.\n"
    )
    assert "start" not in items[5]  # the video revision's clips are pre-cut


def test_main_layout_bounds_data0613_and_auto(hf_main, write_json):
    bench = get_benchmark("mvbench")
    items = bench.load(str(hf_main), tasks=("action_sequence", "action_count"))  # auto: main folders on disk
    assert items[0]["media_path"] == str(hf_main / "video" / "star" / "Charades_v1_480" / "ZS9XR.mp4")
    assert (items[0]["start"], items[0]["end"]) == (1.5, 9.0) and "start" not in items[1]
    # a star/clevrer video the main branch's zips left under data0613/ is found there
    moved = hf_main / "video" / "data0613" / "clevrer" / "video_validation" / "video_10001.mp4"
    moved.parent.mkdir(parents=True)
    (hf_main / "video" / "clevrer" / "video_validation" / "video_10001.mp4").rename(moved)
    md = bench.load(str(hf_main), tasks=("moving_direction",), layout="hf_main")  # alias of main
    assert md[1]["media_path"] == str(moved)
    # the same directory forced to the video revision's table: its folders are not there
    with pytest.raises(BenchmarkDataError, match=r"mvbench: 1 of 1 referenced media file\(s\) are missing"):
        bench.load(str(hf_main), tasks=("action_sequence",), layout="video")


def test_main_layout_frame_folders_are_a_clear_error(hf_main):
    with pytest.raises(BenchmarkDataError, match=r"episodic_reasoning.*fps-3 frames.*layout: video"):
        get_benchmark("mvbench").load(str(hf_main), tasks=("episodic_reasoning",), layout="main")
    with pytest.raises(BenchmarkDataError, match="frames"):  # the default task list includes it
        get_benchmark("mvbench", "vlmevalkit").load(str(hf_main), layout="main")


def test_missing_videos_fail_at_load(tmp_path, write_json):
    root = _build(tmp_path / "m", write_json, "video", skip=("a2.mp4", "a3.mp4"))
    with pytest.raises(BenchmarkDataError, match=r"(?s)mvbench: 2 of 3 .*a2\.mp4.*a3\.mp4"):
        get_benchmark("mvbench").load(str(root), tasks=("action_count",))


def test_errors(hf_video, write_json):
    bench = get_benchmark("mvbench")
    with pytest.raises(BenchmarkDataError, match=r"object_shuffle\.json"):
        bench.load(str(hf_video), tasks=("object_shuffle",))
    write_json(
        hf_video / "json" / "object_shuffle.json",
        [{"video": "x.mp4", "question": "q", "candidates": ["a"], "answer": "b"}],
    )
    with pytest.raises(BenchmarkDataError, match=r"object_shuffle\.json \(record 0\).*'answer'"):
        bench.load(str(hf_video), tasks=("object_shuffle",))
    with pytest.raises(ValueError, match="unknown MVBench task"):
        bench.load(str(hf_video), tasks=("juggling",))
    with pytest.raises(ValueError, match="layout"):
        bench.load(str(hf_video), tasks=("action_count",), layout="segments")
    assert set(TASKS) == set(VIDEO_PREFIXES) == set(MAIN_PREFIXES) and len(TASKS) == 20


def _rows(items, preds):
    return [dict(i, prediction=preds.get(i["id"], ""), error="") for i in items]


def test_lmms_eval_rule_and_denominator_by_hand(hf_video):
    """mcq_acc worked by hand (lmms-eval tasks/mvbench/utils.py)."""
    bench = get_benchmark("mvbench")
    items = bench.load(str(hf_video), tasks=("action_count", "moving_direction", "fine_grained_action"))
    ac0, ac1, ac2, md0, md1, fg = items
    cases = [
        (ac0, "(B) 3", True),  # punctuation stripped -> "b 3" -> first standalone letter B
        (ac0, "B. 3", True),  # ^([A-E])\.\s*(.+)$
        (ac0, "b", True),
        (ac0, "The answer is B", True),
        (ac0, "A man is jumping", False),  # "a" is a standalone letter: read as A
        (ac0, "3", False),  # the option text is not mapped to its letter
        (ac0, "B or C", True),  # first standalone letter
        (ac0, " B \n", True),  # stripped by the model wrapper
        (ac0, "B\n\nBecause C", True),  # cut at "\n\n" (the task's until)
        (md0, "E", False),
        (fg, "F", True),  # letters past E only by equality of the processed answer
        (fg, "F. f", False),  # ... so "F. f" -> "f f" != "f"
    ]
    for item, pred, ok in cases:
        v = bench.judge(dict(item, prediction=pred, error=""))
        assert v["correct"] is ok, (pred, v)
        assert "lenient" in v
    assert bench.judge(dict(ac0, prediction="", error=""))["counted"] is False
    assert bench.judge(dict(ac0, prediction="  ", error=""))["counted"] is False  # strip -> ""
    assert bench.judge(dict(ac0, prediction="B", error="decode failed")) == {
        "extracted": None,
        "correct": False,
        "lenient": None,
        "counted": True,
    }

    s = bench.score(
        _rows(
            items,
            {
                "action_count/0": "(B) 3",
                "action_count/1": "",
                "action_count/2": "C",
                "moving_direction/0": "A",
                "moving_direction/1": "B",
                "fine_grained_action/0": " ",
            },
        )
    )
    assert s["task/action_count"] == pytest.approx(50.0)  # 1 of the 2 answered; the empty leaves the denominator
    assert s["task/moving_direction"] == pytest.approx(100.0)
    assert s["task/fine_grained_action"] == 0  # nothing answered: 0, as mvbench_aggregate_results
    assert s["overall"] == pytest.approx(50.0)  # mean over tasks
    assert s["micro"] == pytest.approx(75.0) and s["micro_all_rows"] == pytest.approx(50.0)
    assert s["n_empty"] == 2 and s["n_counted"] == 4


def test_vlmevalkit_prompt_and_generation_length(hf_main):
    bench = get_benchmark("mvbench", "vlmevalkit")
    assert bench.protocol == "vlmevalkit" and bench.max_new_tokens == 2048
    item = bench.load(str(hf_main), tasks=("action_count",))[0]
    # qa_template (rstrip) + build_prompt's "\nOnly give the best option." text part
    assert (
        item["question"]
        == "Question: How many times did the person jump?\nOptions:\n(A) 2\n(B) 3\n(C) 4\nOnly give the best option."
    )
    assert item["system_prompt"].startswith("Carefully watch the video") and item["assistant_prefix"] == "Best option:("


def test_vlmevalkit_rule_by_hand(hf_main):
    bench = get_benchmark("mvbench", "vlmevalkit")
    items = bench.load(str(hf_main), tasks=("action_count", "moving_direction"))
    ac0 = items[0]  # candidates 2/3/4, answer "3" = B -> reference "(b) 3"
    cases = [
        # check_ans_with_model: first word (dots removed) a substring of "(b)", or "(b)" inside it
        ("(B) 3", True, False),
        ("B", True, False),
        ("b.", True, False),
        ("B)", True, False),
        ("(", True, False),  # "(" in "(b)"
        (" ", True, False),  # first word "" is in "(b)"
        ("B or C", True, False),
        ("A", False, False),  # can_infer_option: A is the only letter -> A != B
        ("Best option:(B)", True, False),  # can_infer_option: splits [Best, option, B]
        ("The answer is B", True, False),
        ("3", True, False),  # can_infer_text: only "3" occurs in "3"
        ("I think it is 3", False, True),  # can_infer_text: 15 chars > 2 * 3 -> no rule decides
        ("a", False, True),  # case-sensitive letter split, no option text in "a" -> would ask the LLM
        ("ab", False, True),
        ("Cannot determine the answer", False, False),  # rejection string -> 'Z'
        ("C or A", False, False),  # first word "c"; can_infer_option: two letters -> text: "4"? no -> ...
    ]
    for pred, ok, needs in cases[:-1]:
        v = bench.judge(dict(ac0, prediction=pred, error=""))
        assert (v["correct"], bool(v.get("needs_judge"))) == (ok, needs), (pred, v)
    v = bench.judge(dict(ac0, prediction="C or A", error=""))
    assert v["correct"] is False and v.get("needs_judge") is True  # count 2 letters, no text hit
    # evaluate() skips NaN predictions and get_dimension_rating's `if item['score']` counts NaN as right
    for pred in ("", "None", "NA", "null", "nan"):
        v = bench.judge(dict(ac0, prediction=pred, error=""))
        assert v["correct"] is True and v["unscored_nan"] is True, pred
    assert "" in PANDAS_NA and "none" not in PANDAS_NA
    assert bench.judge(dict(ac0, prediction="none", error=""))["correct"] is False

    rows = _rows(
        items,
        {
            "action_count/0": "B",
            "action_count/1": "",
            "action_count/2": "C",
            "moving_direction/0": "A",
            "moving_direction/1": "I think it is up",
        },
    )
    s = bench.score(rows)
    assert s["task/action_count"] == pytest.approx(200 / 3)  # the empty counts as right (NaN quirk)
    assert s["task/moving_direction"] == pytest.approx(50.0)
    assert s["overall"] == pytest.approx(60.0)  # correct / all rows, as its 'overall' row
    assert s["task_count/action_count"] == [2, 3] and s["n_nan_counted_correct"] == 1
    assert s["rows_needing_judge"] == 1  # "I think it is up": can_infer_text too long -> LLM upstream


def test_config_passes_loader_options():
    from videosft.config import _check_benchmark_options

    for protocol in ("lmms_eval", "vlmevalkit"):
        _check_benchmark_options(
            {
                "mvbench": {
                    "layout": "main",
                    "tasks": ["action_count"],
                    "video_dir": "/v",
                    "prefixes": {"action_count": "perception/videos"},
                }
            },
            protocol,
        )
        with pytest.raises(ValueError, match="check_media"):
            _check_benchmark_options({"mvbench": {"check_media": False}}, protocol)


def test_lmms_eval_cache_dir_layout_without_video_folder(tmp_path, write_json):
    """lmms-eval unzips the ``video`` revision into its cache dir: prefix folders at the top."""
    root = _build(tmp_path / "mvbench_video", write_json, "video", sub="")
    items = get_benchmark("mvbench").load(str(root), tasks=("action_sequence",))
    assert items[0]["media_path"] == str(root / "star" / "Charades_segment" / "ZS9XR.mp4")
    other = tmp_path / "elsewhere"
    _build(other, write_json, "video")
    items = get_benchmark("mvbench").load(str(root), tasks=("action_sequence",), video_dir=str(other / "video"))
    assert items[0]["media_path"] == str(other / "video" / "star" / "Charades_segment" / "ZS9XR.mp4")
