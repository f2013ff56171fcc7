"""MME: HF parquet and original-release layouts; acc, acc+, score, perception/cognition by hand."""

import pytest

from videosft.eval.benchmarks import get_benchmark
from videosft.eval.benchmarks._io import BenchmarkDataError
from videosft.eval.benchmarks.mme import official_parse


def _row(qid, cat, q, ans, png):
    return {"question_id": qid, "image": {"bytes": png(qid), "path": None}, "question": q + " Please answer yes or no.",
            "answer": ans, "category": cat}


@pytest.fixture
def mme_items(tmp_path, png, write_parquet):
    rows = [
        _row("existence/e1.jpg", "existence", "Is there a dog?", "Yes", png),
        _row("existence/e1.jpg", "existence", "Is there a cat?", "No", png),
        _row("existence/e2.jpg", "existence", "Is there a car?", "Yes", png),
        _row("existence/e2.jpg", "existence", "Is there a bus?", "No", png),
        _row("count/c1.jpg", "count", "Are there two apples?", "Yes", png),
        _row("count/c1.jpg", "count", "Are there three apples?", "No", png),
        _row("code_reasoning/r1.png", "code_reasoning", "Does the code print 3?", "Yes", png),
        _row("code_reasoning/r1.png", "code_reasoning", "Does the code print 4?", "No", png),
    ]
    write_parquet(tmp_path / "data" / "test-00000-of-00001.parquet", rows)
    return get_benchmark("mme").load(str(tmp_path), cache_dir=str(tmp_path / "cache"))


def test_mme_parquet_items(mme_items, tmp_path):
    assert len(mme_items) == 8
    it = mme_items[0]
    assert it["id"] == "existence/e1.jpg#0" and it["cluster"] == "existence/e1.jpg"
    assert it["question"] == "Is there a dog?\nAnswer the question using a single word or phrase."
    assert it["answer"] == "yes" and it["media_type"] == "image" and it["group"] == "perception"
    assert it["media_path"].startswith(str(tmp_path / "cache")) and open(it["media_path"], "rb").read()[:4] == b"\x89PNG"
    assert mme_items[1]["media_path"] == it["media_path"]  # same image, cached once


def test_mme_scores_by_hand(mme_items, predict):
    preds = {
        "existence/e1.jpg#0": "Yes", "existence/e1.jpg#1": "No",  # image right on both
        "existence/e2.jpg#0": "No", "existence/e2.jpg#1": "No",  # one wrong
        "count/c1.jpg#0": "", "count/c1.jpg#1": "no",  # empty counts wrong
        "code_reasoning/r1.png#0": "Yes, it is.", "code_reasoning/r1.png#1": "Not correct",
    }
    s = get_benchmark("mme").score(predict(mme_items, preds))
    # existence: acc 3/4 = 75, acc+ 1/2 = 50 -> 125; count: acc 50, acc+ 0 -> 50
    assert s["existence/acc"] == pytest.approx(75.0) and s["existence/acc_plus"] == pytest.approx(50.0)
    assert s["existence/score"] == pytest.approx(125.0) and s["count/score"] == pytest.approx(50.0)
    assert s["perception"] == pytest.approx(175.0)
    # "Not correct" has no yes/no word -> unparsed -> wrong: acc 50, acc+ 0
    assert s["cognition"] == pytest.approx(50.0)
    assert s["total"] == pytest.approx(225.0)
    assert s["overall"] == pytest.approx(225.0 / 6)  # 3 categories, 200 points each -> 0..100
    # MME's own parser reads "Not correct" as "no" (prefix rule) -> code_reasoning 100 + 100
    assert s["perception_official_parse"] == pytest.approx(175.0)
    assert s["cognition_official_parse"] == pytest.approx(200.0)


def test_mme_official_parse_rules():
    assert official_parse("Yes.") == "yes" and official_parse("N") == "no"
    assert official_parse("Nope, not at all") == "no" and official_parse("There is a dog") == "other"
    assert official_parse("") == "other"


def test_mme_official_prompt(tmp_path, png, write_parquet):
    write_parquet(tmp_path / "mme.parquet", [_row("OCR/o.png", "OCR", "Is the word hello?", "Yes", png)])
    items = get_benchmark("mme").load(str(tmp_path), cache_dir=str(tmp_path / "c"), prompt="official")
    assert items[0]["question"] == "Is the word hello? Please answer yes or no."


def test_mme_release_layout(tmp_path):
    rel = tmp_path / "MME_Benchmark_release_version"
    (rel / "artwork" / "images").mkdir(parents=True)
    (rel / "artwork" / "questions_answers_YN").mkdir()
    (rel / "artwork" / "images" / "10.jpg").write_bytes(b"\xff\xd8x")
    (rel / "artwork" / "questions_answers_YN" / "10.txt").write_text("Is this by Monet?\tYes\nIs this by Dali?\tNo\n")
    (rel / "OCR").mkdir()
    (rel / "OCR" / "7.png").write_bytes(b"\x89PNGx")
    (rel / "OCR" / "7.txt").write_text("Is the word 'stop'?\tNo\nIs the word 'go'?\tYes\n")
    items = get_benchmark("mme").load(str(tmp_path))
    assert [i["id"] for i in items] == ["artwork/10.jpg#0", "artwork/10.jpg#1", "OCR/7.png#0", "OCR/7.png#1"]
    assert items[0]["media_path"] == str(rel / "artwork" / "images" / "10.jpg")
    assert [i["answer"] for i in items] == ["yes", "no", "no", "yes"]
    s = get_benchmark("mme").score([dict(i, prediction="Yes") for i in items])
    assert s["artwork/score"] == pytest.approx(50.0) and s["OCR/score"] == pytest.approx(50.0)
    assert s["perception"] == pytest.approx(100.0) and s["cognition"] == 0.0


def test_mme_malformed(tmp_path, png, write_parquet):
    bad = _row("count/x.jpg", "count", "q", "Maybe", png)
    write_parquet(tmp_path / "mme.parquet", [bad])
    with pytest.raises(BenchmarkDataError, match=r"mme\.parquet.*'answer'"):
        get_benchmark("mme").load(str(tmp_path), cache_dir=str(tmp_path / "c"))
    del bad["category"]
    write_parquet(tmp_path / "mme.parquet", [bad])
    with pytest.raises(BenchmarkDataError, match="'category'"):
        get_benchmark("mme").load(str(tmp_path), cache_dir=str(tmp_path / "c"))
    with pytest.raises(BenchmarkDataError, match="no MME"):
        get_benchmark("mme").load(str(tmp_path / "empty_dir_that_is_missing"))


def test_mme_judged_rows_reproduce_the_scores(mme_items, predict, judge_rows, acc):
    bench = get_benchmark("mme")
    preds = ["Yes", "No", "No", "No", "", "no", "Yes, it is.", "Not correct"]
    rows = predict(mme_items, dict(zip((i["id"] for i in mme_items), preds)))
    extracted, correct = judge_rows(bench, rows)
    assert extracted == ["yes", "no", "no", "no", None, "no", "yes", None]
    assert correct == [True, True, False, True, False, True, True, False]
    s = bench.score(rows)
    for cat in ("existence", "count", "code_reasoning"):  # acc per question, acc+ per image, from verdicts
        oks = [(r["cluster"], ok) for r, ok in zip(rows, correct) if r["category"] == cat]
        images = {c: all(ok for c2, ok in oks if c2 == c) for c, _ in oks}
        assert s[f"{cat}/acc"] == pytest.approx(acc([ok for _, ok in oks]))
        assert s[f"{cat}/acc_plus"] == pytest.approx(acc(list(images.values())))
    hand = [dict(mme_items[0], prediction="Yes, there is a dog in the image."),
            dict(mme_items[1], prediction="There is no cat."), dict(mme_items[0], prediction="(B)"),
            dict(mme_items[0], prediction="")]
    assert judge_rows(bench, hand) == (["yes", "no", None, None], [True, True, False, False])
