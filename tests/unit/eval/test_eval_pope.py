"""POPE: original JSON-lines and HF parquet layouts; a yes-biased model scored by hand."""

import json

import pytest

from videosft.eval.benchmarks import get_benchmark
from videosft.eval.benchmarks._io import BenchmarkDataError


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


@pytest.fixture
def pope_items(tmp_path):
    coco = tmp_path / "output" / "coco"
    _jsonl(coco / "coco_pope_random.json", [
        {"question_id": i + 1, "image": f"COCO_{i // 2}.jpg", "text": f"Is there a {o} in the image?", "label": lab}
        for i, (o, lab) in enumerate([("dog", "yes"), ("cat", "yes"), ("car", "no"), ("bus", "no")])
    ])
    _jsonl(coco / "coco_pope_adversarial.json", [
        {"question_id": i + 1, "image": f"COCO_{i // 2}.jpg", "text": f"Is there a {o} in the image?", "label": lab}
        for i, (o, lab) in enumerate([("dog", "yes"), ("cat", "no"), ("car", "yes"), ("bus", "no")])
    ])
    return get_benchmark("pope").load(str(tmp_path), splits=("random", "adversarial"), image_dir="/coco/val2014")


def test_pope_items(pope_items):
    assert len(pope_items) == 8
    it = pope_items[0]
    assert it["id"] == "random/1" and it["split"] == "random" and it["answer"] == "yes"
    assert it["question"] == "Is there a dog in the image?\nAnswer the question using a single word or phrase."
    assert it["media_path"] == "/coco/val2014/COCO_0.jpg" and it["cluster"] == "COCO_0.jpg"


def test_pope_skewed_yes_ratio_by_hand(pope_items, predict):
    preds = {f"random/{i}": "Yes" for i in range(1, 5)}  # says yes to everything
    preds.update({"adversarial/1": "No", "adversarial/2": "no", "adversarial/3": "I don't know", "adversarial/4": "Yes"})
    s = get_benchmark("pope").score(predict(pope_items, preds))
    # random: TP2 FP2 TN0 FN0
    assert s["random/accuracy"] == pytest.approx(50.0)
    assert s["random/precision"] == pytest.approx(50.0) and s["random/recall"] == pytest.approx(100.0)
    assert s["random/f1"] == pytest.approx(200 / 3)
    assert s["random/yes_ratio"] == pytest.approx(100.0)  # of predictions; the labels are 50% yes
    # adversarial: FN, TN, unparsed on a yes label (FN), FP -> TP0 FP1 TN1 FN2
    assert s["adversarial/accuracy"] == pytest.approx(25.0)
    assert s["adversarial/precision"] == 0.0 and s["adversarial/recall"] == 0.0 and s["adversarial/f1"] == 0.0
    assert s["adversarial/yes_ratio"] == pytest.approx(25.0) and s["adversarial/unparsed"] == 1
    # pooled: TP2 FP3 TN1 FN2 -> P 2/5, R 2/4, F1 = 2*.4*.5/.9
    assert s["accuracy"] == pytest.approx(37.5) and s["yes_ratio"] == pytest.approx(62.5)
    assert s["precision"] == pytest.approx(40.0) and s["recall"] == pytest.approx(50.0)
    assert s["overall"] == s["f1"] == pytest.approx(100 * 0.4 / 0.9)
    assert s["f1_mean_splits"] == pytest.approx(100 / 3)
    # original POPE rule reads "I don't know" as yes -> adversarial TP1 FP1 TN1 FN1; pooled TP3 FP3 FN1
    assert s["f1_pope_parse"] == pytest.approx(100 * 2 * 0.5 * 0.75 / 1.25)
    assert "popular/f1" not in s


def test_pope_parquet_layout(tmp_path, png, write_parquet):
    rows = [
        {"id": str(i), "question_id": str(i), "question": "Is there a dog in the image?", "answer": a,
         "image_source": f"COCO_{i}", "image": {"bytes": png(str(i)), "path": None}, "category": c}
        for i, (a, c) in enumerate([("yes", "popular"), ("no", "popular"), ("no", "random")])
    ]
    write_parquet(tmp_path / "data" / "test-00000.parquet", rows)
    items = get_benchmark("pope").load(str(tmp_path), splits=("popular",), cache_dir=str(tmp_path / "cache"))
    assert [i["id"] for i in items] == ["popular/0", "popular/1"]
    assert items[0]["cluster"] == "COCO_0" and items[0]["media_path"].startswith(str(tmp_path / "cache"))
    s = get_benchmark("pope").score([dict(i, prediction="no") for i in items])
    assert s["popular/accuracy"] == pytest.approx(50.0) and s["popular/yes_ratio"] == 0.0 and s["overall"] == 0.0


def test_pope_errors(tmp_path):
    with pytest.raises(BenchmarkDataError, match="coco_pope_random.json"):
        get_benchmark("pope").load(str(tmp_path), splits=("random",))
    _jsonl(tmp_path / "coco_pope_random.json", [{"question_id": 1, "image": "x.jpg", "text": "q"}])
    with pytest.raises(BenchmarkDataError, match=r"coco_pope_random\.json \(line 1\).*label"):
        get_benchmark("pope").load(str(tmp_path), splits=("random",))
    with pytest.raises(ValueError, match="unknown POPE split"):
        get_benchmark("pope").load(str(tmp_path), splits=("hard",))


def test_pope_judged_rows_reproduce_the_scores(pope_items, predict, judge_rows, acc):
    bench = get_benchmark("pope")
    preds = {f"random/{i}": "Yes" for i in range(1, 5)}
    preds.update({"adversarial/1": "No", "adversarial/2": "no", "adversarial/3": "I don't know", "adversarial/4": "Yes"})
    rows = predict(pope_items, preds)
    extracted, correct = judge_rows(bench, rows)
    assert extracted == ["yes"] * 4 + ["no", "no", None, "yes"]
    assert correct == [True, True, False, False, False, True, False, False]
    s = bench.score(rows)
    assert s["accuracy"] == pytest.approx(acc(correct))
    assert s["random/accuracy"] == pytest.approx(acc(correct[:4]))
    assert s["yes_ratio"] == pytest.approx(acc([e == "yes" for e in extracted]))  # of the extracted answers
    assert s["unparsed"] == extracted.count(None)
    hand = [dict(pope_items[0], prediction="Yes, there is a dog in the image."),
            dict(pope_items[2], prediction="There is no car."), dict(pope_items[2], prediction="(B)"),
            dict(pope_items[0], prediction="")]
    assert judge_rows(bench, hand) == (["yes", "no", None, None], [True, True, False, False])
