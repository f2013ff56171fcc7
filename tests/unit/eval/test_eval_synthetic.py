"""Synthetic splits: LLaVA-Video layout loads; scores hand-computed per task and min_frames."""

import json

import pytest

from videosft.benchmarks import BENCHMARKS, get_benchmark
from videosft.benchmarks._io import BenchmarkDataError


def _rec(i, media, task, mf, answer, key="video"):
    tag = "<video>" if key == "video" else "<image>"
    return {
        "id": f"s{i}",
        key: media,
        "conversations": [
            {"from": "human", "value": f"{tag}\nWhat colour is the square?"},
            {"from": "gpt", "value": answer},
        ],
        "task": task,
        "min_frames": mf,
        "options": ["red", "blue"],
    }


def test_registry_names_and_unknown():
    assert set(BENCHMARKS) == {
        "mme",
        "mmstar",
        "mmbench",
        "pope",
        "videomme",
        "mvbench",
        "tempcompass",
        "videommmu",
        "synthetic_image",
        "synthetic_video",
    }
    with pytest.raises(ValueError, match="synthetic_video"):
        get_benchmark("nope")


def test_synthetic_video_load_and_score(tmp_path):
    recs = [
        _rec(0, "v/0.mp4", "colour", 1, "red"),
        _rec(1, "v/1.mp4", "colour", 1, "blue"),
        _rec(2, "v/2.mp4", "direction", 2, "left"),
        _rec(3, "v/3.mp4", "flash_order", 16, "Green"),
    ]
    (tmp_path / "eval_video.json").write_text(json.dumps(recs))
    bench = get_benchmark("synthetic_video")
    assert bench.modality == "video"
    items = bench.load(str(tmp_path))
    assert len(items) == 4
    it = items[0]
    assert it["question"] == "What colour is the square?"
    assert it["media_type"] == "video" and it["media_path"] == str(tmp_path / "v/0.mp4")
    assert it["answer"] == "red" and it["cluster"] == "v/0.mp4" and it["min_frames"] == 1
    preds = ["Red.", "red", "Left, then right", ""]  # right, wrong, right, empty -> wrong
    rows = [dict(i, prediction=p) for i, p in zip(items, preds)]
    s = bench.score(rows)
    assert s["overall"] == pytest.approx(50.0)  # 2 of 4, empty stays in the denominator
    assert s["task/colour"] == pytest.approx(50.0)
    assert s["task/direction"] == pytest.approx(100.0)
    assert s["task/flash_order"] == pytest.approx(0.0)
    assert s["min_frames/1"] == pytest.approx(50.0)
    assert s["min_frames/2"] == pytest.approx(100.0)
    assert s["min_frames/16"] == pytest.approx(0.0)


def test_synthetic_image_load(tmp_path):
    (tmp_path / "eval_image.json").write_text(json.dumps([_rec(0, "i/0.png", "colour", 1, "red", "image")]))
    items = get_benchmark("synthetic_image").load(str(tmp_path))
    assert items[0]["media_type"] == "image" and items[0]["media_path"].endswith("i/0.png")


def test_synthetic_malformed_names_file_and_field(tmp_path):
    bad = _rec(0, "v/0.mp4", "colour", 1, "red")
    del bad["video"]
    (tmp_path / "eval_video.json").write_text(json.dumps([bad]))
    with pytest.raises(BenchmarkDataError, match=r"eval_video\.json.*'video'"):
        get_benchmark("synthetic_video").load(str(tmp_path))
    with pytest.raises(BenchmarkDataError, match="eval_image.json"):
        get_benchmark("synthetic_image").load(str(tmp_path))


def test_chance_is_the_mean_inverse_option_count():
    from videosft.benchmarks.synthetic import score

    rows = [
        {"answer": "red", "prediction": "red", "options": ["red", "blue"], "task": "c", "min_frames": 1},
        {"answer": "left", "prediction": "", "options": ["left", "right", "up", "down"], "task": "d", "min_frames": 2},
    ]
    out = score(rows)
    assert out["overall"] == 50.0
    assert out["chance"] == 100.0 * (0.5 + 0.25) / 2


def test_synthetic_judged_rows_reproduce_the_scores(tmp_path, judge_rows, acc):
    recs = [
        _rec(0, "v/0.mp4", "colour", 1, "red"),
        _rec(1, "v/1.mp4", "colour", 1, "blue"),
        _rec(2, "v/2.mp4", "direction", 2, "left"),
        _rec(3, "v/3.mp4", "flash_order", 16, "Green"),
    ]
    (tmp_path / "eval_video.json").write_text(json.dumps(recs))
    bench = get_benchmark("synthetic_video")
    items = bench.load(str(tmp_path))
    rows = [dict(i, prediction=p) for i, p in zip(items, ["Red.", "red", "Left, then right", ""])]
    extracted, correct = judge_rows(bench, rows)
    assert extracted == ["red", "red", "left", None] and correct == [True, False, True, False]
    assert bench.score(rows)["overall"] == pytest.approx(acc(correct))
    hand = [
        dict(items[0], prediction="(B)"),
        dict(items[3], prediction="Green, then red."),
        dict(items[1], prediction="The square is blue"),
        dict(items[1], prediction="..."),
    ]
    assert judge_rows(bench, hand) == (["b", "green", "the", None], [False, True, False, False])
