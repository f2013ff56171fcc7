"""MMBench under ``lmms_eval``: our loader, judge and CircularEval against lmms-eval 0.7.3's own code.

Docs are the rows of the very ``en/dev-00000-of-00001.parquet`` our loader read (lmms-lab/MMBench
layout: rotations as ``index + k*1e6``, missing options and hints stored as the string "nan" or as
null). The same generated predictions go to ``mmbench_process_results`` and
``mmbench_aggregate_dev_results_eval`` (``MMBench_Evaluator.eval_result(..., "openai")``) and to our
judge + score. With no API key upstream would call GPT for rows its rules cannot read; the test
replaces ``MMBench_Evaluator.extract_answer_from_item`` (the GPT step) with a judge that abstains,
and ``requests.post`` with one that fails, so nothing leaves the machine. That is the rule path our
protocol reproduces; the abstentions are counted against our ``questions_needing_judge``.
"""

import random
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parents[2]))
from reference.lmms_eval_ref import task_module  # noqa: E402
from videosft.benchmarks import get_benchmark  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_parity_mmstar import _resolve_yaml, awkward  # noqa: E402

CATS = [
    ("attribute_recognition", "finegrained_perception (instance-level)"),
    ("object_counting", "finegrained_perception (instance-level)"),
    ("image_scene", "coarse_perception"),
    ("physical_relation", "relation_reasoning"),
    ("future_prediction", "logic_reasoning"),
    ("spatial_relationship", "finegrained_perception (cross-instance)"),
]
TEXTS = [
    "red",
    "dark red",
    "a dog",
    "two",
    "banana",
    "The man is walking.",
    "None",
    "A",
    "cat",
    "nan bread",
    "é",
    "seven apples",
    "B",
    "",
]


def _dev_rows(n_questions: int, seed: int = 3) -> list[dict]:
    """lmms-lab/MMBench en/dev rows: every question with its CircularEval rotations."""
    rng = random.Random(seed)
    rows = []
    for q in range(n_questions):
        n = rng.choice([2, 3, 4, 4])
        opts = rng.sample([t for t in TEXTS if t], n)
        ans = rng.randrange(n)
        if q % 17 == 0 and n > 2:
            opts[(ans + 1) % n] = ""  # an empty option cell: dropped from the prompt, kept among the choices
        cat, l2 = CATS[q % len(CATS)]
        hint = rng.choice(["nan", None, "Look at the picture.", "Read the sign.\nIt is old."])
        missing = rng.choice(["nan", None])
        for k in range(n):  # rotation k shows options k, k+1, ...
            rot = opts[k:] + opts[:k]
            cells = {c: (rot[i] if i < n else missing) for i, c in enumerate("ABCD")}
            rows.append(
                {
                    "index": q + k * 1_000_000,
                    "question": f"What is shown ({q})?",
                    "hint": hint,
                    **cells,
                    "answer": "ABCD"[(ans - k) % n],
                    "category": cat,
                    "image": {"bytes": b"\x89PNG\r\n\x1a\n" + str(q).encode(), "path": None},
                    "source": "MMBench",
                    "L2-category": l2,
                    "comment": "nan",
                    "split": "dev",
                }
            )
    return rows


@pytest.fixture(scope="module")
def mmb_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("MMBench")
    (root / "en").mkdir()
    pq.write_table(pa.Table.from_pylist(_dev_rows(330)), root / "en" / "dev-00000-of-00001.parquet")
    return root


@pytest.fixture(scope="module")
def lmms():
    from loguru import logger

    logger.disable("lmms_eval")  # its aggregation logs every category and every failed GPT call
    return task_module("mmbench", "en_utils"), task_module("mmbench", "mmbench_evals")


def _docs(root):
    return [
        {k: v for k, v in r.items() if k != "image"}
        for r in pq.read_table(root / "en" / "dev-00000-of-00001.parquet").to_pylist()
    ]


def test_prompts_equal_lmms_doc_to_text(lmms, mmb_root):
    en_utils, _ = lmms
    cfg = _resolve_yaml(Path(en_utils.__file__).parent / "mmbench_en_dev.yaml")
    kwargs = cfg["lmms_eval_specific_kwargs"]["default"]
    bench = get_benchmark("mmbench", "lmms_eval")
    assert bench.max_new_tokens == cfg["generation_kwargs"]["max_new_tokens"] == 1024
    items = bench.load(str(mmb_root), cache_dir=str(mmb_root / "c"))
    docs = _docs(mmb_root)
    assert len(items) == len(docs) > 1000
    for it, doc in zip(items, docs):
        assert it["question"] == en_utils.mmbench_doc_to_text(doc, kwargs)
    assert "There are several options:" in items[0]["question"]


def _lmms_rows(en_utils, evals, docs, preds):
    """What ``eval_result`` judges: process_results' gpt_eval_score dicts, columns as it renames them."""
    import pandas as pd

    results = [en_utils.mmbench_process_results(d, [p])["gpt_eval_score"] for d, p in zip(docs, preds)]
    data = pd.DataFrame(results)
    data["prediction"] = [str(x) for x in data["prediction"]]
    for k in data.keys():
        data[k.lower() if k not in "ABCD" else k] = data.pop(k)
    return results, data


def test_rows_and_aggregates_agree_with_lmms_eval(lmms, mmb_root, monkeypatch, tmp_path):
    import requests

    en_utils, evals = lmms
    judge_calls = []

    def no_network(*a, **k):
        raise AssertionError("the parity test must never reach the network")

    def abstaining_judge(self, item):  # the GPT step: abstain (never equals a letter), count the call
        judge_calls.append(int(item["index"]))
        return None, "no judge in this test"

    monkeypatch.setattr(requests, "post", no_network)
    monkeypatch.setattr(evals.MMBench_Evaluator, "extract_answer_from_item", abstaining_judge)
    monkeypatch.setattr(en_utils, "generate_submission_file", lambda name, args: str(tmp_path / name))

    bench = get_benchmark("mmbench", "lmms_eval")
    items = bench.load(str(mmb_root), cache_dir=str(mmb_root / "c"))
    docs = _docs(mmb_root)
    compared = agree = 0
    for seed in range(3):
        rng = random.Random(100 + seed)
        clean = (0.0, 0.8, 0.95)[seed]  # from mostly awkward to mostly plain answers: low to high scores
        preds = [awkward(rng, [it["doc"][c] or "" for c in "ABCD"], it["answer"], clean) for it in items]
        rows = [dict(it, prediction=p, error="") for it, p in zip(items, preds)]
        results, data = _lmms_rows(en_utils, evals, docs, preds)
        ev = en_utils.mmbench_evaluator
        for r, i in zip(rows, range(len(data))):
            ref = ev.prefetch_answer(data.iloc[i])
            v = bench.judge(r)
            compared += 1
            agree += (v["extracted"] == (ref or None)) and v["needs_judge"] == (ref is False)
        judge_calls.clear()
        ref_overall = en_utils.mmbench_aggregate_dev_results_eval(results, None)
        _, ref_cat, ref_l2 = ev.eval_result(results, eval_method="openai")
        ours = bench.score(rows)
        assert ours["overall"] == pytest.approx(ref_overall, abs=1e-9), seed
        assert {k: ours[f"category/{k}"] for k in ref_cat} == pytest.approx({k: 100 * v for k, v in ref_cat.items()})
        assert {k: ours[f"l2_category/{k}"] for k in ref_l2} == pytest.approx({k: 100 * v for k, v in ref_l2.items()})
        assert len([k for k in ours if k.startswith("category/")]) == len(ref_cat)
        # eval_result ran twice (aggregation + detail): each judge-needing question asked once per run
        assert len(judge_calls) == 2 * ours["questions_needing_judge"] and ours["questions_needing_judge"] > 0
        assert ours["n_questions"] == 330
        print(
            f"\nmmbench seed {seed}: overall {ours['overall']:.2f} (lmms-eval {ref_overall:.2f}), "
            f"{ours['questions_needing_judge']} questions needing the judge"
        )
    print(f"\nmmbench parity: {agree}/{compared} rows agree")
    assert compared >= 3000 and agree == compared


def test_random_fallback_only_touches_judge_rows(lmms, mmb_root, monkeypatch, tmp_path):
    """Upstream with no API key: GPT fails, then a seeded *random* letter. Only judge-needing groups differ."""
    en_utils, evals = lmms
    monkeypatch.setattr(
        evals.MMBench_Evaluator, "get_chat_response", lambda self, prompt, **k: "Failed to obtain answer via API"
    )
    bench = get_benchmark("mmbench", "lmms_eval")
    items = bench.load(str(mmb_root), cache_dir=str(mmb_root / "c"))
    rng = random.Random(5)
    preds = [awkward(rng, [it["doc"][c] or "" for c in "ABCD"], it["answer"]) for it in items]
    rows = [dict(it, prediction=p, error="") for it, p in zip(items, preds)]
    results, _ = _lmms_rows(en_utils, evals, _docs(mmb_root), preds)
    ref, _, _ = en_utils.mmbench_evaluator.eval_result(results, eval_method="openai")
    ours = bench.score(rows)
    # a random letter can only turn a judge-needing question right
    assert ours["overall"] <= 100 * ref <= ours["overall"] + 100 * ours["questions_needing_judge"] / 330


@pytest.mark.parametrize(
    "lang,split,utils,fn,yaml_name",
    [
        ("cn", "dev", "cn_utils", "mmbench_doc_to_text", "mmbench_cn_dev.yaml"),
        ("cc", "test", "cc_utils", "mmbench_cn_cc_doc_to_text", "mmbench_cc.yaml"),
    ],
)
def test_cn_and_cc_prompts_equal_lmms_doc_to_text(tmp_path, lang, split, utils, fn, yaml_name):
    mod = task_module("mmbench", utils)
    kwargs = _resolve_yaml(Path(mod.__file__).parent / yaml_name)["lmms_eval_specific_kwargs"]["default"]
    rows = _dev_rows(40, seed=9)
    if lang == "cc":
        rows = [{k: v for k, v in r.items() if k not in ("hint", "L2-category", "split", "comment")} for r in rows]
    (tmp_path / lang).mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / lang / f"{split}-00000-of-00001.parquet")
    items = get_benchmark("mmbench", "lmms_eval").load(
        str(tmp_path), cache_dir=str(tmp_path / "c"), lang=lang, split=split
    )
    docs = [{k: v for k, v in r.items() if k != "image"} for r in rows]
    assert len(items) == len(docs)
    for it, doc in zip(items, docs):
        assert it["question"] == getattr(mod, fn)(doc, kwargs)
