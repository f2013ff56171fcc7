"""Video-MME: HF parquet layout, subtitles, per-duration / task-type scores by hand."""

import pytest

from videosft.eval.benchmarks import get_benchmark
from videosft.eval.benchmarks._io import BenchmarkDataError
from videosft.eval.benchmarks.videomme import official_parse, srt_text

SRT = """1
00:00:01,000 --> 00:00:02,500
<font color="white" size=".72c">Hello there</font>

2
00:00:03,000 --> 00:00:04,000
<font color="white" size=".72c">General Kenobi</font>
"""


def _row(vid, dur, n, task, answer):
    return {"video_id": vid[-3:], "duration": dur, "domain": "Knowledge", "sub_category": "Astronomy",
            "url": "", "videoID": vid, "question_id": f"{vid[-3:]}-{n}", "task_type": task,
            "question": f"Question {n} about {vid}?", "options": ["A. one", "B. two", "C. three", "D. four"],
            "answer": answer}


@pytest.fixture
def vmme_root(tmp_path, write_parquet):
    rows = [_row("vidA001", "short", 1, "Counting Problem", "A"), _row("vidA001", "short", 2, "Counting Problem", "C"),
            _row("vidA001", "short", 3, "OCR Problems", "B"), _row("vidB002", "long", 1, "OCR Problems", "D"),
            _row("vidB002", "long", 2, "Counting Problem", "A"), _row("vidB002", "long", 3, "Counting Problem", "C")]
    write_parquet(tmp_path / "videomme" / "test-00000-of-00001.parquet", rows)
    (tmp_path / "subtitle").mkdir()
    (tmp_path / "subtitle" / "vidA001.srt").write_text(SRT)
    return tmp_path


def test_videomme_items_and_prompt(vmme_root):
    items = get_benchmark("videomme").load(str(vmme_root))
    assert len(items) == 6
    it = items[0]
    assert it["media_path"] == str(vmme_root / "data" / "vidA001.mp4") and it["cluster"] == "vidA001"
    assert it["options"] == ["one", "two", "three", "four"] and it["answer"] == "A" and it["duration"] == "short"
    assert it["question"] == (
        "Select the best answer to the following multiple-choice question based on the video. Respond with only "
        "the letter (A, B, C, or D) of the correct option.\nQuestion 1 about vidA001?\nA. one\nB. two\nC. three\n"
        "D. four\nThe best answer is:")
    assert [i["id"] for i in get_benchmark("videomme").load(str(vmme_root), durations=("long",))] == ["002-1", "002-2", "002-3"]


def test_videomme_subtitles(vmme_root):
    assert srt_text(SRT) == "Hello there\nGeneral Kenobi"
    items = get_benchmark("videomme").load(str(vmme_root), subtitles=True)
    assert items[0]["question"].startswith("This video's subtitles are listed below:\nHello there\nGeneral Kenobi\n"
                                           "Select the best answer to the following multiple-choice question based "
                                           "on the video and the subtitles.")
    assert "\nNo subtitles available\n" in items[3]["question"]


def test_videomme_scores_by_hand(vmme_root, predict):
    items = get_benchmark("videomme").load(str(vmme_root))
    ids = [i["id"] for i in items]
    preds = dict(zip(ids, ["A", "Based on the video, C", "", "The best answer is D", "B", "(C) three"]))
    s = get_benchmark("videomme").score(predict(items, preds))
    assert s["overall"] == pytest.approx(400 / 6)
    assert s["duration/short"] == pytest.approx(200 / 3) and s["duration/long"] == pytest.approx(200 / 3)
    assert s["task_type/Counting Problem"] == pytest.approx(75.0) and s["task_type/OCR Problems"] == pytest.approx(50.0)
    # the official regex takes the first capital A-D: "Based on ..." -> B (wrong)
    assert s["overall_official_parse"] == pytest.approx(50.0)


def test_videomme_official_parse():
    assert official_parse("The best answer is C.") == "C" and official_parse("") == ""
    assert official_parse("Based on it, A") == "B"


def test_videomme_bad_answer(tmp_path, write_parquet):
    write_parquet(tmp_path / "t.parquet", [_row("v1", "short", 1, "OCR Problems", "E")])
    with pytest.raises(BenchmarkDataError, match=r"t\.parquet \(question_id v1-1\).*'answer'"):
        get_benchmark("videomme").load(str(tmp_path))


def test_videomme_judged_rows_reproduce_the_scores(vmme_root, predict, judge_rows, acc):
    bench = get_benchmark("videomme")
    items = bench.load(str(vmme_root))
    preds = ["A", "Based on the video, C", "", "The best answer is D", "B", "(C) three"]
    rows = predict(items, dict(zip((i["id"] for i in items), preds)))
    extracted, correct = judge_rows(bench, rows)
    assert extracted == ["A", "C", None, "D", "B", "C"] and correct == [True, True, False, True, False, True]
    s = bench.score(rows)
    assert s["overall"] == pytest.approx(acc(correct))
    assert s["duration/short"] == pytest.approx(acc(correct[:3]))
    assert s["duration/long"] == pytest.approx(acc(correct[3:]))
    # options: one, two, three, four; answers A, C, B
    hand = [dict(items[0], prediction="(B)"), dict(items[1], prediction="I count three of them."),
            dict(items[2], prediction="The answer is (B) two."), dict(items[2], prediction=" ")]
    assert judge_rows(bench, hand) == (["B", "C", "B", None], [False, True, True, False])
