"""MVBench: per-task JSON + prefix folders; empty predictions wrong; task mean by hand."""

import pytest

from videosft.eval.benchmarks import get_benchmark
from videosft.eval.benchmarks._io import BenchmarkDataError


@pytest.fixture
def mvb_root(tmp_path, write_json):
    write_json(tmp_path / "json" / "action_count.json", [
        {"video": "a1.mp4", "question": "How many times did the person jump?", "candidates": ["2", "3", "4"], "answer": "3"},
        {"video": "a2.mp4", "question": "How many claps?", "candidates": ["1", "5"], "answer": "5"},
        {"video": "a3.mp4", "question": "How many spins?", "candidates": ["0", "1", "2"], "answer": "0"},
    ])
    write_json(tmp_path / "json" / "moving_direction.json", [
        {"video": "video_10000.mp4", "question": "Where does the cube go?", "candidates": ["left", "right"], "answer": "left"},
        {"video": "video_10001.mp4", "question": "Where does the ball go?", "candidates": ["up", "down"], "answer": "down",
         "start": 1.5, "end": 4.0},
    ])
    (tmp_path / "video").mkdir()
    return tmp_path


def test_mvbench_items(mvb_root):
    items = get_benchmark("mvbench").load(str(mvb_root), tasks=("action_count", "moving_direction"))
    assert [i["id"] for i in items] == ["action_count/0", "action_count/1", "action_count/2",
                                        "moving_direction/0", "moving_direction/1"]
    assert items[0]["media_path"] == str(mvb_root / "video" / "perception" / "videos" / "a1.mp4")
    assert items[3]["media_path"] == str(mvb_root / "video" / "clevrer" / "video_validation" / "video_10000.mp4")
    assert items[0]["answer"] == "B" and items[0]["options"] == ["2", "3", "4"]
    assert items[0]["question"] == ("Question: How many times did the person jump?\nOptions:\n(A) 2\n(B) 3\n(C) 4\n"
                                    "Only give the best option.")
    assert "start" not in items[4]  # segments layout: clips are pre-cut
    orig = get_benchmark("mvbench").load(str(mvb_root), tasks=("moving_direction",), layout="original")
    assert (orig[1]["start"], orig[1]["end"]) == (1.5, 4.0)


def test_mvbench_scores_by_hand(mvb_root, predict):
    items = get_benchmark("mvbench").load(str(mvb_root), tasks=("action_count", "moving_direction"))
    preds = {"action_count/0": "(B) 3", "action_count/1": "", "action_count/2": "C",
             "moving_direction/0": "A", "moving_direction/1": "B"}
    s = get_benchmark("mvbench").score(predict(items, preds))
    assert s["task/action_count"] == pytest.approx(100 / 3) and s["task/moving_direction"] == pytest.approx(100.0)
    assert s["overall"] == pytest.approx((100 / 3 + 100) / 2)
    assert s["micro"] == pytest.approx(60.0)  # the empty answer stays in the denominator
    assert s["micro_excluding_empty_lmms_eval"] == pytest.approx(75.0) and s["n_empty"] == 1


def test_mvbench_errors(mvb_root, write_json):
    with pytest.raises(BenchmarkDataError, match=r"object_shuffle\.json"):
        get_benchmark("mvbench").load(str(mvb_root), tasks=("object_shuffle",))
    write_json(mvb_root / "json" / "object_shuffle.json", [{"video": "x.mp4", "question": "q", "candidates": ["a"], "answer": "b"}])
    with pytest.raises(BenchmarkDataError, match=r"object_shuffle\.json \(record 0\).*'answer'"):
        get_benchmark("mvbench").load(str(mvb_root), tasks=("object_shuffle",))
    with pytest.raises(ValueError, match="unknown MVBench task"):
        get_benchmark("mvbench").load(str(mvb_root), tasks=("juggling",))


def test_mvbench_judged_rows_reproduce_the_scores(mvb_root, predict, judge_rows, acc):
    bench = get_benchmark("mvbench")
    items = bench.load(str(mvb_root), tasks=("action_count", "moving_direction"))
    rows = predict(items, {"action_count/0": "(B) 3", "action_count/1": "", "action_count/2": "C",
                           "moving_direction/0": "A", "moving_direction/1": "B"})
    extracted, correct = judge_rows(bench, rows)
    assert extracted == ["B", None, "C", "A", "B"] and correct == [True, False, False, True, True]
    s = bench.score(rows)
    assert s["micro"] == pytest.approx(acc(correct))
    assert s["overall"] == pytest.approx((acc(correct[:3]) + acc(correct[3:])) / 2)
    hand = [dict(items[3], prediction="The cube moves to the left."), dict(items[0], prediction="(B)"),
            dict(items[4], prediction="up"), dict(items[4], prediction="")]
    assert judge_rows(bench, hand) == (["A", "B", "A", None], [True, True, False, False])
