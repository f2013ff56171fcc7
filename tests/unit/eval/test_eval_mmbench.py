"""MMBench: published layouts (lmms-lab/MMBench shards, VLMEvalKit TSVs), both protocols' prompts,
rules and CircularEval worked out by hand. Parity with lmms-eval's own code: test_parity_mmbench.py."""

import pytest

from videosft.benchmarks import get_benchmark
from videosft.benchmarks._io import BenchmarkDataError
from videosft.benchmarks.mmbench import lmms_can_infer
from videosft.benchmarks.vlmevalkit_rules import can_infer as vlmeval_can_infer

POST = "\nAnswer with the option's letter from the given choices directly."


def _hf_rows(png, answers=True):
    """lmms-lab/MMBench rows (en/dev): question 0 with 3 options and its 2 rotations, question 1 with 2."""

    def row(index, a, b, c, answer, q="What colour is the ball?", hint="Look closely.", cat="attribute_recognition"):
        return {
            "index": index,
            "question": q,
            "hint": hint,
            "A": a,
            "B": b,
            "C": c,
            "D": "nan",
            "answer": answer if answers else None,
            "category": cat,
            "image": {"bytes": png(str(index % 1_000_000)), "path": None},
            "source": "MMBench",
            "L2-category": "finegrained_perception (instance-level)",
            "comment": "nan",
            "split": "dev" if answers else "test",
        }

    return [
        row(0, "red", "green", "blue", "B"),
        row(1, "one", "two", "nan", "A", "How many balls?", "nan", "object_counting"),
        row(1_000_000, "green", "blue", "red", "A"),
        row(1_000_001, "two", "one", "nan", "B", "How many balls?", "nan", "object_counting"),
        row(2_000_000, "blue", "red", "green", "C"),
    ]


@pytest.fixture
def hf_repo(tmp_path, png, write_parquet):
    """A downloaded lmms-lab/MMBench: en/dev in two shards, en/test (no answers), cn/dev."""
    rows = _hf_rows(png)
    write_parquet(tmp_path / "en" / "dev-00000-of-00002.parquet", rows[:3])
    write_parquet(tmp_path / "en" / "dev-00001-of-00002.parquet", rows[3:])
    write_parquet(tmp_path / "en" / "test-00000-of-00001.parquet", _hf_rows(png, answers=False)[:2])
    write_parquet(tmp_path / "cn" / "dev-00000-of-00001.parquet", rows[:1])
    return tmp_path


def test_hf_layout_lmms_prompt_and_shards(hf_repo):
    bench = get_benchmark("mmbench", "lmms_eval")
    items = bench.load(str(hf_repo), cache_dir=str(hf_repo / "c"))
    assert [(i["id"], i["circular_group"], i["rotation"]) for i in items] == [
        ("0", "0", 0),
        ("1", "1", 0),
        ("1000000", "0", 1),
        ("1000001", "1", 1),
        ("2000000", "0", 2),
    ]
    # en_utils.mmbench_doc_to_text: hint, question and the options joined by spaces; "nan" cells dropped
    assert items[0]["question"] == (
        f"Look closely. What colour is the ball? There are several options:\nA. red\nB. green\nC. blue\n{POST}"
    )
    assert items[1]["question"] == f"How many balls? There are several options:\nA. one\nB. two\n{POST}"
    assert len({i["media_path"] for i in items}) == 2 and items[1]["l2_category"].startswith("finegrained")
    assert bench.load(str(hf_repo / "en"), cache_dir=str(hf_repo / "c")) == items  # the lang folder itself
    cn = bench.load(str(hf_repo), cache_dir=str(hf_repo / "c"), lang="cn")
    assert len(cn) == 1 and cn[0]["question"].endswith("\n\n请直接使用所提供的选项字母作为答案回答。")
    assert bench.max_new_tokens == 1024 and set(bench.options) >= {"lang", "split", "layout"}


def test_test_split_is_no_ground_truth(hf_repo):
    bench = get_benchmark("mmbench", "lmms_eval")
    items = bench.load(str(hf_repo), cache_dir=str(hf_repo / "c"), split="test")
    assert len(items) == 2 and all(i["answer"] == "" for i in items)
    s = bench.score([dict(i, prediction="A", error="") for i in items])
    assert s["no_ground_truth"] is True and "no answers" in s["message"] and s["overall"] != s["overall"]
    with pytest.raises(BenchmarkDataError, match="only the test split"):
        bench.load(str(hf_repo), lang="cc")
    with pytest.raises(BenchmarkDataError, match="no MMBench en/dev"):
        bench.load(str(hf_repo / "cn" / ".." / "nowhere"))


def test_circular_by_hand_lmms(hf_repo):
    bench = get_benchmark("mmbench", "lmms_eval")
    items = bench.load(str(hf_repo), cache_dir=str(hf_repo / "c"))
    preds = {
        "0": "B",
        "1000000": "A.",
        "2000000": "(A)",  # last rotation wrong -> question 0 fails
        "1": "A",
        "1000001": "one",
    }  # text match: "one" is option B of rotation 1
    rows = [dict(i, prediction=preds[i["id"]], error="") for i in items]
    assert [bench.judge(r)["extracted"] for r in rows] == ["B", "A", "A", "B", "A"]
    s = bench.score(rows)
    assert s["overall"] == 50.0 and s["vanilla"] == 100.0 and s["all_rotations"] == 80.0
    assert s["category/attribute_recognition"] == 0.0 and s["category/object_counting"] == 100.0
    assert s["questions_needing_judge"] == 0
    # an unreadable answer: upstream would ask GPT; the rule outcome (wrong) stands and the row is flagged
    rows[3] = dict(rows[3], prediction="No idea at all.")
    v = bench.judge(rows[3])
    assert v["extracted"] is None and v["correct"] is False and v["needs_judge"] is True
    s = bench.score(rows)
    assert s["overall"] == 0.0 and s["questions_needing_judge"] == 1
    assert bench.judge(dict(rows[0], error="decode: timeout")) == {
        "extracted": None,
        "correct": False,
        "needs_judge": False,
        "lenient": None,
    }


def test_lmms_can_infer_by_hand():
    """mmbench_evals.MMBench_Evaluator.can_infer / can_infer_option / can_infer_text, worked by hand."""
    ch = {"A": "a dog", "B": "a cat", "C": "nan", "D": None}  # build_choices keeps the string "nan"
    ch = {k: v for k, v in ch.items() if v is not None}
    assert lmms_can_infer("B", ch) == "B"
    assert lmms_can_infer("The answer is B.", ch) == "B"  # ("", ".") suffix tuple
    assert lmms_can_infer("A man is walking down the road", ch) is False  # 'A' with > 3 words: quantifier
    assert lmms_can_infer("E", ch) == "E"  # can_infer_option always allows A-E
    assert lmms_can_infer("I like bananas", ch) == "C"  # "nan" (a missing option) is inside "bananas"
    assert lmms_can_infer("a cat", ch) == "B" and lmms_can_infer("a dog or a cat", ch) is False
    assert lmms_can_infer("b", ch) is False  # letters are case-sensitive; "b" is in no option text
    assert lmms_can_infer("", ch) is False


def test_vlmevalkit_can_infer_by_hand():
    """VLMEvalKit e8e78f0 vlmeval/utils/matching_util.py can_infer (can_infer_option, can_infer_text)."""
    ch = {"A": "red", "B": "green", "C": "blue"}
    assert vlmeval_can_infer("B", dict(ch)) == "B"
    assert vlmeval_can_infer("(C).", dict(ch)) == "C"  # '.()' become spaces before splitting
    assert vlmeval_can_infer("Cannot determine the answer", dict(ch)) == "Z"  # reject_to_answer
    assert vlmeval_can_infer("Z", dict(ch)) == "Z"  # count 0 and a lone Z
    # one letter, but not within the last 5 tokens: falls through; the text is too long to match
    assert vlmeval_can_infer("I think B is right but let me explain a lot more here", dict(ch)) is False
    assert vlmeval_can_infer("So the correct answer is **B** here, not a or c, ok", dict(ch)) == "B"  # verbose re
    assert vlmeval_can_infer("the answer is c", dict(ch)) == "C"  # the verbose regex ignores case
    assert vlmeval_can_infer("green", dict(ch)) == "B" and vlmeval_can_infer("green or blue", dict(ch)) is False
    assert vlmeval_can_infer("A B", dict(ch)) is False  # two letters
    assert vlmeval_can_infer("", dict(ch)) is False
    assert vlmeval_can_infer("Failed to obtain answer via API", dict(ch)) is False


@pytest.fixture
def tsv_dir(tmp_path, b64png, write_tsv):
    base = {"hint": "nan", "category": "c1", "l2-category": "l2", "split": "dev"}
    rows = [
        dict(base, index=0, question="Q0?", hint="H.", A="red", B="green", C="", D="", answer="B", image=b64png("x")),
        dict(
            base, index=1000000, question="Q0?", hint="H.", A="green", B="red", C="", D="", answer="A", image="0"
        ),  # VLMEvalKit stores a repeated image once: this cell names row 0
        dict(base, index=1, question="Q1?", A="None", B="two", C="three", D="", answer="C", image=b64png("y")),
    ]
    write_tsv(tmp_path / "MMBench_DEV_EN.tsv", rows)
    write_tsv(tmp_path / "MMBench_TEST_EN.tsv", [{k: v for k, v in rows[2].items() if k != "answer"}])
    return tmp_path


def test_vlmevalkit_tsv_prompt_and_circular(tsv_dir):
    bench = get_benchmark("mmbench", "vlmevalkit")
    items = bench.load(str(tsv_dir), cache_dir=str(tsv_dir / "c"))
    assert [i["id"] for i in items] == ["0", "1000000", "1"]
    assert items[0]["question"] == (
        "Hint: H.\nQuestion: Q0?\nOptions:\nA. red\nB. green\n"
        "Please select the correct answer from the options above. \n"
    )
    # pandas reads "None" and "" as NaN: that option disappears from the prompt and the choices
    assert items[2]["question"] == (
        "Question: Q1?\nOptions:\nB. two\nC. three\nPlease select the correct answer from the options above. \n"
    )
    assert items[0]["media_path"] == items[1]["media_path"]
    rows = [dict(i, prediction=p, error="") for i, p in zip(items, ["B", "green", "Cannot determine the answer"])]
    vs = [bench.judge(r) for r in rows]
    assert [v["extracted"] for v in vs] == ["B", "A", "Z"] and [v["needs_judge"] for v in vs] == [False] * 3
    s = bench.score(rows)
    assert s["overall"] == 50.0 and s["n_questions"] == 2 and bench.max_new_tokens == 2048
    test = bench.load(str(tsv_dir), cache_dir=str(tsv_dir / "c"), split="test")
    assert bench.score([dict(test[0], prediction="C", error="")])["no_ground_truth"] is True


def test_layout_choice_when_both_present(hf_repo, tsv_dir, tmp_path):
    # same folder: one layout read, never both
    lm = get_benchmark("mmbench", "lmms_eval").load(str(tmp_path), cache_dir=str(tmp_path / "c"))
    vk = get_benchmark("mmbench", "vlmevalkit").load(str(tmp_path), cache_dir=str(tmp_path / "c"))
    assert len(lm) == 5 and len(vk) == 3
    forced = get_benchmark("mmbench", "lmms_eval").load(str(tmp_path), cache_dir=str(tmp_path / "c"), layout="tsv")
    assert [i["id"] for i in forced] == ["0", "1000000", "1"] and "There are several options:" in forced[0]["question"]


def test_mmbench_errors(tmp_path, b64png, write_tsv):
    row = {
        "index": 5,
        "question": "Q?",
        "hint": "",
        "A": "x",
        "B": "y",
        "answer": "C",
        "category": "c",
        "l2-category": "l",
        "image": b64png("x"),
    }
    write_tsv(tmp_path / "MMBench_DEV_EN.tsv", [row])
    with pytest.raises(BenchmarkDataError, match=r"MMBench_DEV_EN\.tsv \(index 5\).*'answer'"):
        get_benchmark("mmbench").load(str(tmp_path), cache_dir=str(tmp_path / "c"))
    write_tsv(tmp_path / "MMBench_DEV_EN.tsv", [dict(row, answer="A", image="")])
    with pytest.raises(BenchmarkDataError, match=r"MMBench_DEV_EN\.tsv.*'image'"):
        get_benchmark("mmbench").load(str(tmp_path), cache_dir=str(tmp_path / "c"))
    write_tsv(tmp_path / "MMBench_DEV_EN.tsv", [dict(row, answer="A"), dict(row, index=6, answer="")])
    with pytest.raises(BenchmarkDataError, match="1 of 2 rows have no 'answer'"):
        get_benchmark("mmbench").load(str(tmp_path), cache_dir=str(tmp_path / "c"))
    with pytest.raises(BenchmarkDataError, match="split 'val' unknown"):
        get_benchmark("mmbench").load(str(tmp_path), split="val")
