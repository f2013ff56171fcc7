"""MMStar: parquet with inline options; micro vs macro-category vs macro-l2 by hand."""

import pytest

from videosft.eval.benchmarks import get_benchmark
from videosft.eval.benchmarks.mmstar import parse_options


def test_parse_inline_options():
    q = "Which option describe the object?\nOptions: A: The suitcase is on the book., B: It is beneath the cat., C: x, D: y"
    assert parse_options(q) == ["The suitcase is on the book.", "It is beneath the cat.", "x", "y"]
    assert parse_options("No options here") == []


@pytest.fixture
def mmstar_items(tmp_path, png, write_parquet):
    def row(i, cat, l2, ans):
        return {"index": i, "question": f"Q{i}?\nOptions: A: 3 cm, B: 4 cm, C: 5 cm, D: 6 cm", "answer": ans,
                "category": cat, "l2_category": l2, "image": {"bytes": png(str(i)), "path": None}, "meta_info": None}

    rows = [row(0, "coarse perception", "image emotion", "A"), row(1, "coarse perception", "image emotion", "B"),
            row(2, "coarse perception", "image scene and topic", "C"), row(3, "math", "geometry", "B"),
            row(4, "math", "statistical reasoning", "D")]
    write_parquet(tmp_path / "mmstar.parquet", rows)
    return get_benchmark("mmstar").load(str(tmp_path), cache_dir=str(tmp_path / "cache"))


def test_mmstar_items(mmstar_items):
    it = mmstar_items[0]
    assert it["question"].endswith("D: 6 cm\nAnswer with the option's letter from the given choices directly.")
    assert it["options"] == ["3 cm", "4 cm", "5 cm", "6 cm"] and it["answer"] == "A" and it["cluster"] == "0"


def test_mmstar_macro_micro_by_hand(mmstar_items, predict):
    preds = {"0": "A", "1": "", "2": "(C)", "3": "4 cm", "4": "A"}  # right, empty, right, text match, wrong
    s = get_benchmark("mmstar").score(predict(mmstar_items, preds))
    assert s["overall"] == pytest.approx(60.0)  # micro 3/5
    assert s["category/coarse perception"] == pytest.approx(200 / 3) and s["category/math"] == pytest.approx(50.0)
    assert s["macro_category"] == pytest.approx((200 / 3 + 50) / 2)
    assert s["macro_l2"] == pytest.approx((50 + 100 + 100 + 0) / 4)  # lmms-eval "average"


def test_mmstar_judged_rows_reproduce_the_scores(mmstar_items, predict, judge_rows, acc):
    bench = get_benchmark("mmstar")
    rows = predict(mmstar_items, {"0": "A", "1": "", "2": "(C)", "3": "4 cm", "4": "A"})
    extracted, correct = judge_rows(bench, rows)
    assert extracted == ["A", None, "C", "B", "A"] and correct == [True, False, True, True, False]
    s = bench.score(rows)
    assert s["overall"] == pytest.approx(acc(correct))
    assert s["category/math"] == pytest.approx(acc(correct[3:]))
    hand = predict(mmstar_items, {"0": "The length is 3 cm.", "1": "(B)", "2": "It must be 6 cm", "3": "",
                                  "4": "no idea"})
    assert judge_rows(bench, hand) == (["A", "B", "D", None, None], [True, True, False, False, False])
    assert bench.judge(dict(hand[1], error="decode: timeout")) == {"extracted": None, "correct": False}
