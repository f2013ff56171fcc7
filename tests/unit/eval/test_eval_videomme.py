"""Video-MME: published layouts (HF lmms-lab/Video-MME, VLMEvalKit's Video-MME.tsv), both protocols' prompts,
parsing and aggregation worked out by hand (lmms-eval 0.7.3 parity at scale: test_parity_videomme.py)."""

import numpy as np
import pytest

from videosft.benchmarks import get_benchmark
from videosft.benchmarks._io import BenchmarkDataError
from videosft.benchmarks.lmms_eval_rules import extract_mcq_answer as mcq_extract
from videosft.benchmarks.videomme import OPTIONS, subtitles_at_frames, vlm_extract_option, vlm_regex, vlm_subtitles

SRT = """1
00:00:01,000 --> 00:00:02,500
<font color="white" size=".72c">Hello there</font>

2
00:00:03,000 --> 00:00:04,000
<font color="white" size=".72c">General Kenobi</font>
"""
INSTR = (
    "Select the best answer to the following multiple-choice question based on the video and the subtitles. "
    "Respond with only the letter (A, B, C, or D) of the correct option."
)


def _row(vid, dur, n, task, answer):
    return {
        "video_id": vid[-3:],
        "duration": dur,
        "domain": "Knowledge",
        "sub_category": "Astronomy",
        "url": "",
        "videoID": vid,
        "question_id": f"{vid[-3:]}-{n}",
        "task_type": task,
        "question": f"Question {n} about {vid}?",
        "options": ["A. one", "B. two", "C. three", "D. four"],
        "answer": answer,
    }


ROWS = [
    _row("vidA001", "short", 1, "Counting Problem", "A"),
    _row("vidA001", "short", 2, "Counting Problem", "C"),
    _row("vidA001", "short", 3, "OCR Problems", "B"),
    _row("vidB002", "long", 1, "OCR Problems", "D"),
    _row("vidB002", "long", 2, "Counting Problem", "A"),
    _row("vidB002", "long", 3, "Counting Problem", "C"),
]


@pytest.fixture
def vmme_root(tmp_path, write_parquet):
    """lmms-lab/Video-MME as downloaded: videomme/test-00000-of-00001.parquet, data/ (from videos_chunked_*.zip),
    subtitle/ (from subtitle.zip)."""
    write_parquet(tmp_path / "videomme" / "test-00000-of-00001.parquet", ROWS)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "vidA001.mp4").touch()
    (tmp_path / "data" / "vidB002.MP4").touch()  # lmms-eval's doc_to_visual also accepts .MP4 / .mkv
    (tmp_path / "subtitle").mkdir()
    (tmp_path / "subtitle" / "vidA001.srt").write_text(SRT)
    return tmp_path


def _rows(items, preds):
    return [dict(it, prediction=p, error="") for it, p in zip(items, preds)]


def test_registry_protocols_options_and_lengths():
    lm, vk = get_benchmark("videomme"), get_benchmark("videomme", "vlmevalkit")
    assert (lm.protocol, vk.protocol) == ("lmms_eval", "vlmevalkit")
    assert lm.max_new_tokens == 16 and vk.max_new_tokens == 16
    assert set(OPTIONS) == {"layout", "video_dir", "subtitles", "subtitle_dir", "durations", "frame_num"}
    assert lm.options == vk.options == OPTIONS


def test_hf_layout_items_and_lmms_prompt(vmme_root):
    items = get_benchmark("videomme").load(str(vmme_root))
    assert len(items) == 6
    it = items[0]
    assert it["media_path"] == str(vmme_root / "data" / "vidA001.mp4") and it["cluster"] == "vidA001"
    assert items[3]["media_path"] == str(vmme_root / "data" / "vidB002.MP4")
    assert it["options"] == ["one", "two", "three", "four"] and it["answer"] == "A" and it["duration"] == "short"
    # videomme.yaml default post_prompt, and the instruction's "and the subtitles" even without them (upstream)
    assert it["question"] == (
        INSTR + "\nQuestion 1 about vidA001?\nA. one\nB. two\nC. three\nD. four\n"
        "\nAnswer with the option's letter from the given choices directly."
    )
    assert [i["id"] for i in get_benchmark("videomme").load(str(vmme_root), durations=("long",))] == [
        "002-1",
        "002-2",
        "002-3",
    ]


def test_lmms_subtitle_prompt_picks_cues_at_sampled_frames(vmme_root):
    import cv2

    w = cv2.VideoWriter(str(vmme_root / "data" / "vidA001.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (16, 16))
    for _ in range(50):  # 5 s at 10 fps: cue 1 = frames [10, 25), cue 2 = [30, 40)
        w.write(np.zeros((16, 16, 3), np.uint8))
    w.release()
    # frame_num 4: np.linspace(0, 49, 4, dtype=int) = [0, 16, 32, 49] -> cue 1 (16) and cue 2 (32)
    assert subtitles_at_frames(SRT, 10.0, 50, 4) == "Hello there\nGeneral Kenobi"
    # frame_num 2: frames [0, 49] -> no cue
    assert subtitles_at_frames(SRT, 10.0, 50, 2) == ""
    items = get_benchmark("videomme").load(str(vmme_root), subtitles=True, frame_num=4)
    assert items[0]["question"] == (
        "This video's subtitles are listed below: \nHello there\nGeneral Kenobi\n"
        + INSTR
        + "\nQuestion 1 about vidA001?\nA. one\nB. two\nC. three\nD. four\nThe best answer is:"
    )
    assert items[3]["question"].startswith("This video's subtitles are listed below: \nNo subtitles available\n")
    assert items[0]["task"] == "videomme_w_subtitle"
    assert get_benchmark("videomme").score(_rows(items, ["A"] * 6))["task"] == "videomme_w_subtitle"
    with pytest.raises(ValueError, match="URI"):
        get_benchmark("videomme").load(str(vmme_root), subtitles=True, video_dir="s3://bucket/videomme/data")


def test_lmms_judge_by_hand(vmme_root):
    """extract_mcq_answer (lmms_eval/tasks/_task_utils/mcq_extract.py): start > end > phrase > (X) > X. > X: > X)
    > "X " > bare letter, latest position within a format."""
    assert mcq_extract("B or C", "ABCD") == "B"  # a leading standalone letter beats the trailing one
    assert mcq_extract("I think it's A, but maybe B.", "ABCD") == "B"  # trailing letter ("end")
    assert mcq_extract("Based on the video, C", "ABCD") == "C"  # "Based": a letter inside a word is not "start"
    assert mcq_extract("b", "ABCD") == "" and mcq_extract("E", "ABCD") == "" and mcq_extract(" \n", "ABCD") == ""
    assert mcq_extract("A man is walking.", "ABCD") == "A"  # upstream reads the article as option A
    bench = get_benchmark("videomme")
    items = bench.load(str(vmme_root))
    preds = ["A", "Based on the video, C", "", "The best answer is D", "b", "(C) three"]
    verdicts = [bench.judge(r) for r in _rows(items, preds)]
    assert [v["extracted"] for v in verdicts] == ["A", "C", None, "D", None, "C"]
    assert [v["correct"] for v in verdicts] == [True, True, False, True, False, True]
    assert [v["lenient"] for v in verdicts] == ["A", "C", None, "D", "B", "C"]  # our extractor: extra column only
    assert not any(v.get("needs_judge") for v in verdicts)
    s = bench.score(_rows(items, preds))
    assert s["overall"] == pytest.approx(400 / 6) == s["videomme_perception_score"]
    assert s["n"] == 6  # the empty answer stays in the denominator
    assert s["duration/short"] == pytest.approx(200 / 3) and s["duration/long"] == pytest.approx(200 / 3)
    assert s["duration/medium"] == 0 and s["task"] == "videomme"
    assert s["task_type/Counting Problem"] == pytest.approx(75.0) and s["task_type/OCR Problems"] == pytest.approx(50.0)
    # a failed row is an empty answer
    assert bench.judge(dict(items[0], prediction="A", error="decode: boom")) == {
        "extracted": None,
        "correct": False,
        "lenient": None,
    }


def test_vlmevalkit_prompt_and_regex_by_hand(vmme_root):
    """VLMEvalKit e8e78f0 vlmeval/dataset/videomme.py VideoMME.build_prompt (video_llm) and
    vlmeval/dataset/utils/videomme.py extract_characters_regex."""
    items = get_benchmark("videomme", "vlmevalkit").load(str(vmme_root))
    assert items[0]["question"] == (
        "\nThese are the frames of a video. Select the best answer to the following multiple-choice question based "
        "on the video. Respond with only the letter (A, B, C, or D) of the correct option.\n"
        "Question: Question 1 about vidA001?\nA. one\nB. two\nC. three\nD. four\nAnswer: "
    )
    assert vlm_regex("Based on the video, C") == "B"  # the first capital A-D anywhere
    assert vlm_regex("Best answer: A") == "B"  # "Best answer:" is never removed: a comma is missing upstream
    assert vlm_regex("The best option is C") == "C" and vlm_regex("Answer: D") == "D"
    assert vlm_regex("The answer is (B) two.") == "B" and vlm_regex("b") == ""
    assert vlm_regex("i cannot tell which one of these options is right for this clip, sorry") == ""  # >10 words
    # extract_option under exact_matching: options from the question's own lines; Video-MME has none -> "Z"
    assert vlm_extract_option("Which colour?", "blue") == "Z"
    assert vlm_extract_option("Which colour?\nA. red\nB. blue", "it is blue") == "B"  # can_infer_text
    assert vlm_extract_option("Which colour?\nA. red\nB. blue", "Cannot determine the answer") == "Z"


def test_vlmevalkit_judge_and_rating_by_hand(vmme_root):
    bench = get_benchmark("videomme", "vlmevalkit")
    items = bench.load(str(vmme_root))
    preds = ["A", "Based on the video, C", "", "Best answer: D", "b", "(C) three"]
    verdicts = [bench.judge(r) for r in _rows(items, preds)]
    assert [v["extracted"] for v in verdicts] == ["A", "B", None, "B", None, "C"]
    assert [v["correct"] for v in verdicts] == [True, False, False, False, False, True]
    assert [v["needs_judge"] for v in verdicts] == [False, False, True, False, True, False]
    s = bench.score(_rows(items, preds))
    assert s["overall"] == pytest.approx(200 / 6) and s["n"] == 6
    assert s["duration/short"] == pytest.approx(100 / 3) and s["duration/long"] == pytest.approx(100 / 3)
    r = s["rating"]  # get_dimension_rating: "%.3f" strings, nan for empty groups
    assert r["overall"]["overall"] == "0.333" and r["short"]["overall"] == "0.333" and r["medium"]["overall"] == "nan"
    assert (
        r["overall"]["task_type"]["Counting Problem"] == "0.500" and r["long"]["task_type"]["OCR Problems"] == "0.000"
    )
    assert r["overall"]["domain"]["Knowledge"] == "0.333" and r["overall"]["domain"]["Multilingual"] == "nan"


def test_vlmevalkit_tsv_layout(tmp_path, write_tsv):
    """What VLMEvalKit's prepare_dataset leaves: Video-MME.tsv (candidates as a list literal), video/, subtitle/."""
    rows = [
        {
            "index": i,
            "video": r["videoID"],
            "video_path": f"./video/{r['videoID']}.mp4",
            "duration": r["duration"],
            "domain": r["domain"],
            "candidates": repr(r["options"]),
            "sub_category": r["sub_category"],
            "task_type": r["task_type"],
            "subtitle_path": f"./subtitle/{r['videoID']}.srt",
            "question": r["question"],
            "answer": r["answer"],
        }
        for i, r in enumerate(ROWS)
    ]
    write_tsv(tmp_path / "Video-MME.tsv", rows)
    (tmp_path / "video").mkdir()
    for v in ("vidA001", "vidB002"):
        (tmp_path / "video" / f"{v}.mp4").touch()
    for protocol in ("vlmevalkit", "lmms_eval"):
        items = get_benchmark("videomme", protocol).load(str(tmp_path))
        assert [i["id"] for i in items] == [str(i) for i in range(6)]
        assert items[3]["media_path"] == str(tmp_path / "video" / "vidB002.mp4")
        assert items[0]["options"] == ["one", "two", "three", "four"] and items[1]["answer"] == "C"


def test_missing_videos_fail_at_load_naming_them(tmp_path, write_parquet):
    write_parquet(tmp_path / "videomme" / "test-00000-of-00001.parquet", ROWS)
    with pytest.raises(
        BenchmarkDataError, match=r"videomme: 2 of 2 referenced media file\(s\) are missing(.|\n)*vidA001"
    ):
        get_benchmark("videomme").load(str(tmp_path))


def test_bad_rows_fail_at_load(tmp_path, write_parquet):
    write_parquet(tmp_path / "videomme" / "test-00000-of-00001.parquet", [_row("v1", "short", 1, "OCR Problems", "E")])
    with pytest.raises(BenchmarkDataError, match=r"test-00000-of-00001\.parquet \(question_id v1-1\).*'answer'"):
        get_benchmark("videomme").load(str(tmp_path))
    write_parquet(tmp_path / "videomme" / "test-00000-of-00001.parquet", [_row("v1", "short", 1, "Nonsense", "A")])
    with pytest.raises(BenchmarkDataError, match="task_type"):
        get_benchmark("videomme").load(str(tmp_path))
    with pytest.raises(BenchmarkDataError, match="videomme/test-00000-of-00001.parquet"):
        get_benchmark("videomme").load(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="layout"):
        get_benchmark("videomme").load(str(tmp_path), layout="zip")


def test_vlmevalkit_subtitles_by_hand(vmme_root):
    """VideoMME.build_prompt with use_subtitle: frames int(i * n / (nframe + 1)), i = 1..nframe; the first cue
    with start < t < end (strict both ways)."""
    # n=50, nframe=4: step 10 -> frames 10, 20, 30, 40 -> 1000, 2000, 3000, 4000 ms; cues 1000-2500, 3000-4000
    assert vlm_subtitles(SRT, 10.0, 50, 4) == "Hello there"  # 1000 and 3000 are cue starts, 4000 an end
    assert vlm_subtitles(SRT, 10.0, 50, 9) == "Hello there\nHello there\nGeneral Kenobi"  # frames 5,10,..,45
    import cv2

    w = cv2.VideoWriter(str(vmme_root / "data" / "vidA001.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (16, 16))
    for _ in range(50):
        w.write(np.zeros((16, 16, 3), np.uint8))
    w.release()
    items = get_benchmark("videomme", "vlmevalkit").load(str(vmme_root), subtitles=True, frame_num=4)
    assert items[0]["question"].startswith(
        "\nThese are the frames of a video. This video's subtitles are listed "
        "below:\nHello there\nSelect the best answer"
    )
    assert "listed below:\n\nSelect" in items[3]["question"]  # no subtitle file: empty
