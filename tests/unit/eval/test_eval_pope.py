"""POPE: the published layouts (HF default + Full configs, VLMEvalKit POPE.tsv, original JSON lines)
and both protocols' rules worked out by hand (lmms-eval 0.7.3 ``tasks/pope/utils.py``; VLMEvalKit
e8e78f0 ``vlmeval/dataset/utils/yorn.py`` ``POPE_rating`` / ``YOrN_Extraction``)."""

import json
import math

import pytest

from videosft.benchmarks import get_benchmark
from videosft.benchmarks._io import BenchmarkDataError

INSTR = "\nAnswer the question using a single word or phrase."


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


@pytest.fixture
def original_root(tmp_path):
    coco = tmp_path / "output" / "coco"
    for split, labels in (("random", ["yes", "yes", "no", "no"]), ("adversarial", ["yes", "no", "yes", "no"])):
        _jsonl(
            coco / f"coco_pope_{split}.json",
            [
                {
                    "question_id": i + 1,
                    "image": f"COCO_{i // 2}.jpg",
                    "text": f"Is there a {o} in the image?",
                    "label": lab,
                }
                for i, (o, lab) in enumerate(zip(["dog", "cat", "car", "bus"], labels))
            ],
        )
    images = tmp_path / "val2014"
    images.mkdir()
    for i in range(2):
        (images / f"COCO_{i}.jpg").write_bytes(b"\xff\xd8x")
    return tmp_path


def _load(root, protocol="lmms_eval", **kw):
    return get_benchmark("pope", protocol).load(str(root), cache_dir=str(root / "cache"), **kw)


def _check_verdicts(bench, rows):
    out = []
    for r in rows:
        v = bench.judge(r)
        assert isinstance(v["correct"], bool) and (v["extracted"] is None or v["extracted"]) and "lenient" in v
        assert not v["correct"] or v["extracted"] is not None
        out.append(v)
    return out


PREDS = {
    "random/1": "Yes",
    "random/2": "Yes.",
    "random/3": "yes",
    "random/4": "Yes",
    "adversarial/1": "No",
    "adversarial/2": " no\n",
    "adversarial/3": "I don't know",
    "adversarial/4": "yes",
}


def test_original_layout_items(original_root):
    items = _load(original_root, splits=("random", "adversarial"))
    assert len(items) == 8 and get_benchmark("pope", "lmms_eval").max_new_tokens == 128
    it = items[0]
    assert it["id"] == "random/1" and it["split"] == "random" and it["answer"] == "yes"
    assert it["question"] == "Is there a dog in the image?" + INSTR  # pope_doc_to_text, default kwargs
    assert it["media_path"] == str(original_root / "val2014" / "COCO_0.jpg") and it["cluster"] == "COCO_0.jpg"


def test_lmms_exact_match_scores_by_hand(original_root, predict):
    bench = get_benchmark("pope", "lmms_eval")
    rows = predict(_load(original_root, splits=("random", "adversarial")), PREDS)
    v = _check_verdicts(bench, rows)
    # pope_process_results: pred.lower().strip() must equal the label; "Yes." is not "yes"
    assert [x["extracted"] for x in v] == ["yes", "yes.", "yes", "yes", "no", "no", "i don't know", "yes"]
    assert [x["correct"] for x in v] == [True, False, False, False, False, True, False, False]
    assert v[1]["lenient"] == "yes"  # our lenient reading, never scored
    s = bench.score(rows)
    # random: TP1 ("yes."/yes is neither), FP2, FN0 -> P 1/3, R 1/1; acc 1/4
    assert s["random/pope_accuracy"] == 0.25 and s["random/pope_precision"] == pytest.approx(1 / 3)
    assert s["random/pope_recall"] == 1.0 and s["random/pope_f1_score"] == pytest.approx(0.5)
    assert s["random/pope_yes_ratio"] == 0.5  # upstream: share of *labels* that are yes
    assert s["random/predicted_yes_ratio"] == 0.75 and s["random/unparsed"] == 1
    # adversarial: "No" on yes -> FN; " no\n" on no -> TN; "i don't know" on yes -> not FN (left out);
    # "yes" on no -> FP: TP0 FP1 FN1 -> P 0, R 0, F1 0; acc 1/4
    assert s["adversarial/pope_accuracy"] == 0.25 and s["adversarial/pope_f1_score"] == 0
    # pooled (task pope): TP1 FP3 FN1 -> P .25, R .5, F1 1/3; acc 2/8
    assert s["pope_accuracy"] == 0.25 and s["pope_precision"] == 0.25 and s["pope_recall"] == 0.5
    assert s["pope_f1_score"] == pytest.approx(1 / 3) and s["overall"] == pytest.approx(100 / 3)
    assert s["pope_f1_score_mean_splits"] == pytest.approx(0.25)
    assert "popular/pope_f1_score" not in s


def test_vlmevalkit_scores_by_hand(original_root, predict):
    """YOrN_Extraction then POPE_rating: 'Unknown' is y_pred 0, so a yes label counts as FN there."""
    bench = get_benchmark("pope", "vlmevalkit")
    items = _load(original_root, "vlmevalkit", splits=("random", "adversarial"))
    assert items[0]["question"] == "Is there a dog in the image?" and bench.max_new_tokens == 2048
    v = _check_verdicts(bench, predict(items, PREDS))
    assert [x["extracted"] for x in v] == ["Yes", "Yes", "Yes", "Yes", "No", "No", None, "Yes"]
    assert [x["needs_judge"] for x in v] == [False] * 6 + [True, False]
    s = bench.score(predict(items, PREDS))
    # random: TP2 FP2 -> P 50 R 100 F1 66.7, acc 50
    assert s["random/Overall"] == pytest.approx(200 / 3) and s["random/acc"] == 50.0
    assert s["random/precision"] == 50.0 and s["random/recall"] == 100.0
    # adversarial: FN (No), TN, FN (Unknown), FP -> all 0, acc 25
    assert s["adversarial/Overall"] == 0 and s["adversarial/acc"] == 25.0
    # Overall: TP2 FP3 FN2 -> P .4 R .5 F1 .444
    assert s["Overall"] == s["overall"] == pytest.approx(100 * 0.4 / 0.9)
    assert s["precision"] == pytest.approx(40.0) and s["recall"] == pytest.approx(50.0) and s["acc"] == 37.5
    q = _load(original_root, "vlmevalkit", splits=("random",), prompt="qwen2_vl")[0]["question"]
    assert q == "Is there a dog in the image? Please answer yes or no."  # qwen2_vl/prompt.py _build_yorn_prompt


def _hf_row(i, answer, category, png):
    return {
        "id": str(i),
        "question_id": str(i),
        "question": "Is there a dog in the image?",
        "answer": answer,
        "image_source": f"COCO_val2014_{i:012d}",
        "image": {"bytes": png(str(i)), "path": None},
        "category": category,
    }


def test_hf_default_config_layout(tmp_path, png, write_parquet):
    rows = [_hf_row(i, a, c, png) for i, (a, c) in enumerate([("yes", "popular"), ("no", "popular"), ("no", "random")])]
    write_parquet(tmp_path / "data" / "test-00000-of-00003.parquet", rows[:2])
    write_parquet(tmp_path / "data" / "test-00001-of-00003.parquet", rows[2:])
    items = _load(tmp_path, splits=("popular",))
    assert [i["id"] for i in items] == ["popular/0", "popular/1"]
    assert items[0]["cluster"] == "COCO_val2014_000000000000" and items[0]["media_path"].startswith(
        str(tmp_path / "cache")
    )
    s = get_benchmark("pope", "lmms_eval").score([dict(i, prediction="no") for i in items])
    assert s["popular/pope_accuracy"] == 0.5 and s["popular/predicted_yes_ratio"] == 0.0 and s["overall"] == 0.0


def test_hf_full_config_layout(tmp_path, png, write_parquet):
    for k, split in enumerate(("adversarial", "popular", "random")):
        write_parquet(
            tmp_path / "Full" / f"{split}-00000-of-00001.parquet",
            [_hf_row(10 * k + j, a, split, png) for j, a in enumerate(["yes", "no"])],
        )
    items = _load(tmp_path)
    assert sorted({i["split"] for i in items}) == ["adversarial", "popular", "random"] and len(items) == 6
    assert [i["split"] for i in _load(tmp_path, splits=["random"])] == ["random", "random"]
    # the parquet converter's Full/<split>/0000.parquet is read too
    conv = tmp_path / "conv"
    write_parquet(conv / "Full" / "popular" / "0000.parquet", [_hf_row(0, "yes", "popular", png)])
    assert [i["id"] for i in _load(conv)] == ["popular/0"]


def test_vlmevalkit_tsv_layout_multi_split_rows(tmp_path, b64png, write_tsv, predict):
    """POPE.tsv: image references by index; a 'popular,random' row is asked once, counted in both."""
    rows = [
        {
            "index": "1",
            "image": b64png("a" * 80),
            "question": "Is there a dog in the image?",
            "answer": "Yes",
            "category": "popular,random",
        },
        {"index": "2", "image": "1", "question": "Is there a cat in the image?", "answer": "No", "category": "random"},
        {
            "index": "3",
            "image": b64png("b" * 80),
            "question": "Is there a car in the image?",
            "answer": "No",
            "category": "adversarial",
        },
    ]
    write_tsv(tmp_path / "POPE.tsv", rows)
    items = _load(tmp_path, "vlmevalkit")
    assert [i["id"] for i in items] == ["1", "2", "3"] and items[1]["media_path"] == items[0]["media_path"]
    assert items[0]["categories"] == ["popular", "random"]
    s = get_benchmark("pope", "vlmevalkit").score(predict(items, {"1": "Yes", "2": "Yes", "3": "No"}))
    # exploded: popular [TP]; random [TP, FP]; adversarial [TN]; Overall TP2 FP1 FN0 over 4 rows
    assert s["popular/Overall"] == 100.0 and s["random/precision"] == 50.0 and s["random/acc"] == 50.0
    assert s["Overall"] == pytest.approx(80.0) and s["acc"] == 75.0 and s["n"] == 4 and s["rows"] == 3
    assert [i["id"] for i in _load(tmp_path, "lmms_eval", splits=("popular",))] == ["1"]


def test_errors_and_missing_images(tmp_path, original_root):
    with pytest.raises(BenchmarkDataError, match="coco_pope_random.json"):
        _load(tmp_path / "nothing", splits=("random",))
    _jsonl(tmp_path / "x" / "coco_pope_random.json", [{"question_id": 1, "image": "x.jpg", "text": "q"}])
    with pytest.raises(BenchmarkDataError, match=r"coco_pope_random\.json \(line 1\).*label"):
        _load(tmp_path / "x", splits=("random",))
    with pytest.raises(ValueError, match="unknown POPE split"):
        _load(tmp_path, splits=("hard",))
    (original_root / "val2014" / "COCO_1.jpg").unlink()
    with pytest.raises(
        BenchmarkDataError, match=r"pope: 1 of 2 referenced media file\(s\) are missing:\n.*COCO_1\.jpg"
    ):
        _load(original_root, splits=("random",))


def test_no_ground_truth(tmp_path, png, write_parquet):
    write_parquet(tmp_path / "data" / "test-00000-of-00001.parquet", [_hf_row(0, None, "random", png)])
    for protocol in ("lmms_eval", "vlmevalkit"):
        s = get_benchmark("pope", protocol).score([dict(i, prediction="yes") for i in _load(tmp_path, protocol)])
        assert s["no_ground_truth"] and "no ground truth" in s["message"] and math.isnan(s["overall"])
