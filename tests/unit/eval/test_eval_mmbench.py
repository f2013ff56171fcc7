"""MMBench: TSV with base64 images, generated circular rotations, circular vs vanilla by hand."""

import pytest

from videosft.eval.benchmarks import get_benchmark
from videosft.eval.benchmarks._io import BenchmarkDataError

INSTR = "Answer with the option's letter from the given choices directly."


@pytest.fixture
def mmb_tsv(tmp_path, b64png, write_tsv):
    rows = [
        {"index": 0, "question": "What colour is the ball?", "hint": "Look closely.", "A": "red", "B": "green",
         "C": "blue", "D": "", "answer": "B", "category": "attribute_recognition",
         "l2-category": "finegrained_perception (instance-level)", "image": b64png("ball")},
        # VLMEvalKit stores a repeated image once: this row's image cell names row 0.
        {"index": 1, "question": "How many balls?", "hint": "nan", "A": "one", "B": "two", "C": "", "D": "",
         "answer": "A", "category": "object_counting", "l2-category": "finegrained_perception (instance-level)",
         "image": "0"},
    ]
    return write_tsv(tmp_path / "MMBench_DEV_EN.tsv", rows)


def test_mmbench_rotations(mmb_tsv, tmp_path):
    items = get_benchmark("mmbench").load(str(tmp_path), cache_dir=str(tmp_path / "cache"))
    assert [(i["id"], i["rotation"], i["answer"]) for i in items] == [
        ("0", 0, "B"), ("1000000", 1, "A"), ("2000000", 2, "C"), ("1", 0, "A"), ("1000001", 1, "B")]
    assert items[1]["options"] == ["green", "blue", "red"]
    assert items[1]["question"] == f"Look closely.\nWhat colour is the ball?\nA. green\nB. blue\nC. red\n{INSTR}"
    assert items[3]["question"] == f"How many balls?\nA. one\nB. two\n{INSTR}"  # "nan" hint dropped
    assert {i["circular_group"] for i in items} == {"0", "1"} and items[4]["cluster"] == "1"
    assert len({i["media_path"] for i in items}) == 1  # the referenced image is the same file
    assert open(items[0]["media_path"], "rb").read().startswith(b"\x89PNG")


def test_mmbench_circular_by_hand(mmb_tsv, tmp_path, predict):
    items = get_benchmark("mmbench").load(str(tmp_path), cache_dir=str(tmp_path / "cache"))
    preds = {"0": "B", "1000000": "A", "2000000": "A",  # last rotation wrong -> question 0 fails
             "1": "A", "1000001": "B."}
    s = get_benchmark("mmbench").score(predict(items, preds))
    assert s["overall"] == pytest.approx(50.0)  # circular: 1 of 2 questions
    assert s["vanilla"] == pytest.approx(100.0)  # both unrotated questions right
    assert s["all_rotations"] == pytest.approx(80.0)
    assert s["category/attribute_recognition"] == 0.0 and s["category/object_counting"] == 100.0
    assert s["l2_category/finegrained_perception (instance-level)"] == pytest.approx(50.0)
    # an empty answer on one rotation is wrong and sinks its question
    preds["1000001"] = ""
    s = get_benchmark("mmbench").score(predict(items, preds))
    assert s["overall"] == 0.0 and s["vanilla"] == pytest.approx(100.0)


def test_mmbench_vanilla_only(mmb_tsv, tmp_path):
    items = get_benchmark("mmbench").load(str(tmp_path), cache_dir=str(tmp_path / "c"), circular=False)
    assert [i["id"] for i in items] == ["0", "1"]


def test_mmbench_published_rotations_kept(tmp_path, b64png, write_tsv):
    base = {"question": "Q?", "hint": "", "category": "c", "l2-category": "l2", "image": b64png("x")}
    rows = [dict(base, index=0, A="x", B="y", answer="A"), dict(base, index=1000000, A="y", B="x", answer="B")]
    write_tsv(tmp_path / "mmb.tsv", rows)
    items = get_benchmark("mmbench").load(str(tmp_path / "mmb.tsv"), cache_dir=str(tmp_path / "c"))
    assert [(i["id"], i["circular_group"], i["rotation"]) for i in items] == [("0", "0", 0), ("1000000", "0", 1)]
    s = get_benchmark("mmbench").score([dict(items[0], prediction="A"), dict(items[1], prediction="A")])
    assert s["overall"] == 0.0 and s["vanilla"] == 100.0


def test_mmbench_errors(tmp_path, b64png, write_tsv):
    row = {"index": 5, "question": "Q?", "hint": "", "A": "x", "B": "y", "answer": "C", "category": "c",
           "l2-category": "l", "image": b64png("x")}
    write_tsv(tmp_path / "bad.tsv", [row])
    with pytest.raises(BenchmarkDataError, match=r"bad\.tsv \(index 5\).*'answer'"):
        get_benchmark("mmbench").load(str(tmp_path), cache_dir=str(tmp_path / "c"))
    write_tsv(tmp_path / "bad.tsv", [dict(row, answer="")])
    with pytest.raises(BenchmarkDataError, match="'answer'"):
        get_benchmark("mmbench").load(str(tmp_path), cache_dir=str(tmp_path / "c"))
    write_tsv(tmp_path / "bad.tsv", [dict(row, answer="A", image="")])
    with pytest.raises(BenchmarkDataError, match=r"bad\.tsv.*'image'"):
        get_benchmark("mmbench").load(str(tmp_path), cache_dir=str(tmp_path / "c"))


def test_mmbench_judged_rows_reproduce_the_scores(mmb_tsv, tmp_path, predict, judge_rows, acc):
    bench = get_benchmark("mmbench")
    items = bench.load(str(tmp_path), cache_dir=str(tmp_path / "cache"))
    rows = predict(items, {"0": "B", "1000000": "A", "2000000": "A", "1": "A", "1000001": "B."})
    extracted, correct = judge_rows(bench, rows)  # each rotation: its own letter, its own correctness
    assert extracted == ["B", "A", "A", "A", "B"] and correct == [True, True, False, True, True]
    s = bench.score(rows)
    assert s["all_rotations"] == pytest.approx(acc(correct))
    assert s["vanilla"] == pytest.approx(acc([ok for r, ok in zip(rows, correct) if r["rotation"] == 0]))
    groups = {}
    for r, ok in zip(rows, correct):  # CircularEval: a question counts only if every rotation is right
        groups[r["circular_group"]] = groups.get(r["circular_group"], True) and ok
    assert s["overall"] == pytest.approx(acc(list(groups.values()))) == 50.0
    # rotation 1 shows green, blue, red (answer A = green)
    hand = [dict(items[1], prediction="(A)"), dict(items[1], prediction="The ball is green."),
            dict(items[1], prediction="It is red, I think"), dict(items[0], prediction="(B)"),
            dict(items[0], prediction="")]
    assert judge_rows(bench, hand) == (["A", "A", "C", "B", None], [True, True, False, True, False])
