"""MME: the published layouts (HF parquet, VLMEvalKit MME.tsv, original release) and both protocols'
rules worked out by hand (lmms-eval 0.7.3 ``tasks/mme/utils.py``; VLMEvalKit e8e78f0
``vlmeval/dataset/utils/yorn.py``, ``vlmeval/smp/misc.py``, ``vlmeval/dataset/image_base.py``)."""

import math

import pytest

from videosft.benchmarks import get_benchmark
from videosft.benchmarks._io import BenchmarkDataError
from videosft.benchmarks.mme import parse_pred_ans, vlmeval_process_punctuation, yorn_extraction

SUFFIX = " Please answer yes or no."


def _row(qid, cat, q, ans, png):
    return {
        "question_id": qid,
        "image": {"bytes": png(qid), "path": qid.split("/")[-1]},
        "question": q + SUFFIX,
        "answer": ans,
        "category": cat,
    }


ROWS = [
    ("existence/e1.jpg", "existence", "Is there a dog?", "Yes"),
    ("existence/e1.jpg", "existence", "Is there a cat?", "No"),
    ("existence/e2.jpg", "existence", "Is there a car?", "Yes"),
    ("existence/e2.jpg", "existence", "Is there a bus?", "No"),
    ("count/c1.jpg", "count", "Are there two apples?", "Yes"),
    ("count/c1.jpg", "count", "Are there three apples?", "No"),
    ("code_reasoning/r1.png", "code_reasoning", "Does the code print 3?", "Yes"),
    ("code_reasoning/r1.png", "code_reasoning", "Does the code print 4?", "No"),
]
PREDS = ["Yes", "No", "No", "No", "", "no", "Yes, it is.", "Not correct"]


@pytest.fixture
def hf_root(tmp_path, png, write_parquet):
    rows = [_row(*r, png) for r in ROWS]
    # lmms-lab/MME as downloaded: data/test-0000N-of-00004-<hash>.parquet
    write_parquet(tmp_path / "data" / "test-00000-of-00002-a25dbe3b44c4fda6.parquet", rows[:4])
    write_parquet(tmp_path / "data" / "test-00001-of-00002-7d22c7f1aba6fca4.parquet", rows[4:])
    return tmp_path


def _load(root, protocol="lmms_eval"):
    return get_benchmark("mme", protocol).load(str(root), cache_dir=str(root / "cache"))


def _check_verdicts(bench, rows):
    """Every verdict's shape: extracted str|None, correct bool (implies extracted), lenient column."""
    out = []
    for r in rows:
        v = bench.judge(r)
        assert isinstance(v["correct"], bool) and (v["extracted"] is None or v["extracted"])
        assert not v["correct"] or v["extracted"] is not None
        assert "lenient" in v
        if not str(r.get("prediction") or "").strip():
            assert v["extracted"] is None and not v["correct"]
        out.append(v)
    return out


def test_hf_parquet_items_lmms_prompt(hf_root):
    items = _load(hf_root)
    assert len(items) == 8
    it = items[0]
    assert it["id"] == "existence/e1.jpg#0" and it["cluster"] == it["question_id"] == "existence/e1.jpg"
    # mme_doc_to_text, default kwargs: suffix dropped, post_prompt appended
    assert it["question"] == "Is there a dog?\nAnswer the question using a single word or phrase."
    assert it["answer"] == "yes" and it["group"] == "perception"
    assert open(it["media_path"], "rb").read()[:4] == b"\x89PNG" and items[1]["media_path"] == it["media_path"]
    assert get_benchmark("mme", "lmms_eval").max_new_tokens == 16


def test_lmms_scores_by_hand(hf_root, predict):
    bench = get_benchmark("mme", "lmms_eval")
    items = _load(hf_root)
    rows = predict(items, dict(zip((i["id"] for i in items), PREDS)))
    v = _check_verdicts(bench, rows)
    # parse_pred_ans: "Not correct" -> first 4 chars "not " contain "no" -> "no" (right on a No label)
    assert [x["extracted"] for x in v] == ["yes", "no", "no", "no", None, "no", "yes", "no"]
    assert [x["correct"] for x in v] == [True, True, False, True, False, True, True, True]
    assert v[7]["lenient"] is None  # our lenient reader finds no yes/no word: an extra column only
    s = bench.score(rows)
    # existence: images (100+100), (50+0) -> mean 125; count: (50+0) -> 50; code: 200
    assert s["existence/score"] == 125.0 and s["count/score"] == 50.0 and s["code_reasoning/score"] == 200.0
    assert s["mme_perception_score"] == s["perception"] == 175.0 and s["mme_cognition_score"] == 200.0
    assert s["existence/acc"] == 75.0 and s["existence/acc_plus"] == 50.0
    assert s["total"] == 375.0 and s["overall"] == pytest.approx(375.0 / 6)


@pytest.mark.parametrize(
    "pred,want",
    [
        ("Yes.", "yes"),
        ("y", "yes"),
        ("N", "no"),
        ("n.", "no"),
        ("Nope, not at all", "no"),
        ("None", "no"),
        ("eyes", "yes"),
        ("know", "no"),
        ("I think yes", "other"),
        ("There is a dog", "other"),
        ("", "other"),
        ("A", "other"),
        (" yes ", "yes"),
        ("y.e.s", "yes"),
        ("Yesterday", "yes"),
        ("No, yes", "no"),
    ],
)
def test_lmms_parse_pred_ans_by_hand(pred, want):
    assert parse_pred_ans(pred) == want


def test_vlmevalkit_prompt_and_scores_by_hand(hf_root, predict):
    """``ImageBaseDataset.build_prompt`` keeps MME's question; ``YOrN_Extraction`` + ``MME_rating``."""
    bench = get_benchmark("mme", "vlmevalkit")
    items = _load(hf_root, "vlmevalkit")
    assert items[0]["question"] == "Is there a dog? Please answer yes or no." and bench.max_new_tokens == 2048
    rows = predict(items, dict(zip((i["id"] for i in items), PREDS)))
    v = _check_verdicts(bench, rows)
    # "Yes, it is." -> words ['yes', 'it', 'is'] -> Yes; "Not correct" -> no 'no' word -> Unknown (LLM judge)
    assert [x["extracted"] for x in v] == ["Yes", "No", "No", "No", None, "No", "Yes", None]
    assert [x["needs_judge"] for x in v] == [False] * 4 + [True, False, False, True]
    s = bench.score(rows)
    # existence acc 75 + acc+ 50; count 50 + 0; code_reasoning 50 + 0
    assert s["existence/score"] == 125.0 and s["count/score"] == 50.0 and s["code_reasoning/score"] == 50.0
    assert s["perception"] == 175.0 and s["reasoning"] == 50.0 and s["overall"] == pytest.approx(225.0 / 6)


@pytest.mark.parametrize(
    "text,want",
    [
        ("Yes.", "Yes"),  # period not between digits: dropped (no lowercasing here)
        ("yes,no", "yes no"),  # no mark next to a space: replaced by a space
        ("yes, no", "yes no"),  # ", " present: every comma deleted
        ("1,000 yes", "1000 yes"),  # digit,digit anywhere: every mark deleted
        ("3.5 no.", "3.5 no"),
        ("(yes)", " yes "),
        ("yes:", "yes:"),  # ':' and '*' and "'" are not in the list
        ("a." * 40, "a" * 32 + "a." * 8),  # sub(..., re.UNICODE) passes 32 as count: 32 periods at most
    ],
)
def test_vlmeval_process_punctuation_by_hand(text, want):
    assert vlmeval_process_punctuation(text) == want


@pytest.mark.parametrize(
    "pred,want",
    [
        ("Yes", "Yes"),
        ("no.", "No"),
        ("Yes, there is a dog.", "Yes"),
        ("No, there is not.", "No"),
        ("yes or no", "Unknown"),
        ("Not sure.", "Unknown"),
        ("Nope", "Unknown"),
        ("", "Unknown"),
        ("**Yes**", "Unknown"),
        ("Yes:", "Unknown"),
        ("(yes)", "Yes"),
        ("YES!", "Yes"),
        ("yes/no", "Unknown"),
        ("There is no dog", "No"),
        ("yes" + "." * 40 + " no", "No"),  # only 32 periods go: "yes........" is not the word "yes"
    ],
)
def test_vlmeval_yorn_extraction_by_hand(pred, want):
    assert yorn_extraction(pred) == want


def test_vlmevalkit_tsv_layout_with_image_references(tmp_path, b64png, write_tsv, predict):
    """VLMEvalKit MME.tsv: base64 cells, a <=64-char cell naming another row's index, image_path groups."""
    big = b64png("x" * 80)
    rows = [
        {
            "index": "0",
            "image": big,
            "question": "Is it red?" + SUFFIX,
            "answer": "Yes",
            "category": "color",
            "image_path": "color/000.png",
        },
        {
            "index": "1",
            "image": "0",
            "question": "Is it blue?" + SUFFIX,
            "answer": "No",
            "category": "color",
            "image_path": "color/000.png",
        },
        {
            "index": "2",
            "image": b64png("y" * 80),
            "question": "Is 1+1=2?" + SUFFIX,
            "answer": "Yes",
            "category": "numerical_calculation",
            "image_path": "numerical_calculation/1.png",
        },
        {
            "index": "3",
            "image": "2",
            "question": "Is 1+1=3?" + SUFFIX,
            "answer": "No",
            "category": "numerical_calculation",
            "image_path": "numerical_calculation/1.png",
        },
    ]
    write_tsv(tmp_path / "MME.tsv", rows)
    for protocol in ("vlmevalkit", "lmms_eval"):
        items = _load(tmp_path, protocol)
        assert [i["id"] for i in items] == ["0", "1", "2", "3"]
        assert items[1]["media_path"] == items[0]["media_path"] and items[0]["cluster"] == "color/000.png"
    s = get_benchmark("mme", "vlmevalkit").score(predict(items, {"0": "Yes", "1": "Yes", "2": "yes", "3": "no"}))
    assert s["color/score"] == 50.0 and s["numerical_calculation/score"] == 200.0
    write_tsv(tmp_path / "MME.tsv", [dict(rows[1], image="7")])
    with pytest.raises(BenchmarkDataError, match="names no row"):
        _load(tmp_path)


def test_release_layout(tmp_path):
    rel = tmp_path / "MME_Benchmark_release_version"
    (rel / "artwork" / "images").mkdir(parents=True)
    (rel / "artwork" / "questions_answers_YN").mkdir()
    (rel / "artwork" / "images" / "10.jpg").write_bytes(b"\xff\xd8x")
    (rel / "artwork" / "questions_answers_YN" / "10.txt").write_text(
        "Is this by Monet? Please answer yes or no.\tYes\nIs this by Dali? Please answer yes or no.\tNo\n"
    )
    (rel / "OCR").mkdir()
    (rel / "OCR" / "7.png").write_bytes(b"\x89PNGx")
    (rel / "OCR" / "7.txt").write_text("Is the word 'stop'?\tNo\nIs the word 'go'?\tYes\n")
    items = get_benchmark("mme").load(str(tmp_path))
    assert [i["id"] for i in items] == ["artwork/10.jpg#0", "artwork/10.jpg#1", "OCR/7.png#0", "OCR/7.png#1"]
    assert items[0]["media_path"] == str(rel / "artwork" / "images" / "10.jpg")
    assert items[0]["question"] == "Is this by Monet?\nAnswer the question using a single word or phrase."
    assert [i["answer"] for i in items] == ["yes", "no", "no", "yes"]
    s = get_benchmark("mme").score([dict(i, prediction="Yes") for i in items])
    assert s["artwork/score"] == 50.0 and s["OCR/score"] == 50.0
    assert s["perception"] == 100.0 and s["cognition"] == 0.0


def test_no_ground_truth_is_reported_not_a_crash(tmp_path, png, write_parquet):
    rows = [dict(_row(*r, png), answer=None) for r in ROWS[:2]]
    write_parquet(tmp_path / "data" / "test-00000-of-00001.parquet", rows)
    for protocol in ("lmms_eval", "vlmevalkit"):
        bench = get_benchmark("mme", protocol)
        items = _load(tmp_path, protocol)
        rows_p = [dict(i, prediction="Yes") for i in items]
        assert not any(bench.judge(r)["correct"] for r in rows_p)
        s = bench.score(rows_p)
        assert s["no_ground_truth"] and "no ground truth" in s["message"] and math.isnan(s["overall"])


def test_malformed(tmp_path, png, write_parquet):
    bad = _row("count/x.jpg", "count", "q", "Maybe", png)
    write_parquet(tmp_path / "mme.parquet", [bad])
    with pytest.raises(BenchmarkDataError, match=r"mme\.parquet.*'answer'"):
        _load(tmp_path)
    del bad["category"]
    write_parquet(tmp_path / "mme.parquet", [bad])
    with pytest.raises(BenchmarkDataError, match="'category'"):
        _load(tmp_path)
    with pytest.raises(BenchmarkDataError, match="no MME"):
        get_benchmark("mme").load(str(tmp_path / "empty_dir_that_is_missing"))


def test_error_rows_are_unanswered(hf_root):
    for protocol in ("lmms_eval", "vlmevalkit"):
        bench = get_benchmark("mme", protocol)
        it = _load(hf_root, protocol)[0]
        v = bench.judge(dict(it, prediction="Yes", error="decode failed"))
        assert v["extracted"] is None and v["correct"] is False


@pytest.mark.parametrize("protocol,length", [("lmms_eval", 16), ("vlmevalkit", 2048)])
def test_runner_scores_name_the_protocol_and_count_judge_rows(hf_root, tmp_path, protocol, length):
    import json

    from videosft.config import ExperimentConfig
    from videosft.eval.runner import evaluate_model, local_predictor

    class Engine:
        lengths = []

        def generate(self, rows):
            self.lengths += [r.get("max_new_tokens") for r in rows]
            return [
                "Not correct"
                if r["question"].startswith(
                    ("Is there a cat", "Is there a bus", "Are there three", "Does the code print 4")
                )
                else "Yes"
                for r in rows
            ]

    engine = Engine()
    cfg = ExperimentConfig().with_overrides(
        [
            "eval.bootstrap_resamples=20",
            f"eval.protocol={protocol}",
            f"eval.benchmark_options={{mme: {{cache_dir: {tmp_path / 'c'}}}}}",
        ]
    )
    out = tmp_path / "out"
    s = evaluate_model(cfg, "/ckpt/a", 4, out, str(hf_root), ["mme"], local_predictor(engine, 3))["mme"]
    assert engine.lengths == [length] * 8 and s["protocol"] == protocol and s["max_new_tokens"] == length
    # "Not correct": lmms-eval reads "no" (prefix rule); VLMEvalKit finds no yes/no word -> LLM judge
    assert s["rows_needing_judge"] == (0 if protocol == "lmms_eval" else 4)
    row = json.loads((out / "mme.predictions.jsonl").read_text().splitlines()[1])
    assert "lenient" in row and json.loads((out / "mme.scores.json").read_text())["n_items"] == 8
