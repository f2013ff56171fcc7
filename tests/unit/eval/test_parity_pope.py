"""POPE under ``lmms_eval``: row for row and aggregate against lmms-eval 0.7.3's own task code.

The same generated predictions go to lmms-eval's ``pope_process_results`` and its five
``pope_aggregate_*`` functions and to our judge + scorer, on both HF layouts lmms-eval reads: the
default config (task ``pope``: ``data/test-*.parquet``, one ``category`` column, pooled metrics)
and the ``Full`` config (tasks ``pope_adv`` / ``pope_pop`` / ``pope_random``: one split per file,
per-split metrics). Prompts are checked against ``pope_doc_to_text`` with each YAML's defaults.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parents[2]))
sys.path.insert(0, str(Path(__file__).parent))

from test_parity_mme import awkward_predictions, lmms_yaml  # noqa: E402

from reference.lmms_eval_ref import task_module  # noqa: E402
from videosft.benchmarks import get_benchmark  # noqa: E402

ROUNDS = 20  # x 360 items = 7200 rows per layout
AGGS = {
    "pope_accuracy": "pope_aggregate_accuracy",
    "pope_precision": "pope_aggregate_precision",
    "pope_recall": "pope_aggregate_recall",
    "pope_f1_score": "pope_aggregate_f1_score",
    "pope_yes_ratio": "pope_aggregate_yes_ratio",
}
TASK_SPLIT = {"pope_adv.yaml": "adversarial", "pope_pop.yaml": "popular", "pope_random.yaml": "random"}
OBJECTS = ["dog", "cat", "car", "dining table", "person", "traffic light", "bus", "cup"]


def _rows(split: str, n: int, rng: random.Random, start: int) -> list[dict]:
    rows = []
    for i in range(n):
        obj = rng.choice(OBJECTS)
        q = rng.choice(
            [
                f"Is there a {obj} in the image?",
                f" Is there a {obj} in the image? ",
                f"Is there a {obj} in the image?\n",
            ]
        )
        src = f"COCO_val2014_{(start + i) // 2:012d}"
        rows.append(
            {
                "id": str(start + i),
                "question_id": str(i + 1),
                "question": q,
                "answer": rng.choice(["yes", "no"]),
                "image_source": src,
                "image": {"bytes": b"\x89PNG\r\n\x1a\n" + src.encode(), "path": None},
                "category": split,
            }
        )
    return rows


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """The same 360 rows (120 per split) in both lmms-lab/POPE configs."""
    rng = random.Random(3)
    by_split = {s: _rows(s, 120, rng, 1000 * k) for k, s in enumerate(("adversarial", "popular", "random"))}
    default = tmp_path_factory.mktemp("pope_default")
    (default / "data").mkdir()
    allrows = [r for s in by_split.values() for r in s]
    for k in range(3):  # data/test-0000k-of-00003.parquet, rows in published order split over shards
        pq.write_table(
            pa.Table.from_pylist(allrows[k * 120 : (k + 1) * 120]), default / "data" / f"test-0000{k}-of-00003.parquet"
        )
    full = tmp_path_factory.mktemp("pope_full")
    (full / "Full").mkdir()
    for s, rows in by_split.items():
        pq.write_table(pa.Table.from_pylist(rows), full / "Full" / f"{s}-00000-of-00001.parquet")
    return default, full, by_split


def _reference(m, docs, preds):
    res = [m.pope_process_results(d, [p]) for d, p in zip(docs, preds)]
    return res, {k: getattr(m, fn)([r[k] for r in res]) for k, fn in AGGS.items()}


def _check_rows(bench, items, docs, preds, res):
    for it, _doc, p, r in zip(items, docs, preds, res):
        v = bench.judge(dict(it, prediction=p, error=""))
        ref = r["pope_accuracy"]
        assert v["correct"] == (ref["score"] == 1.0), (p, v, ref)
        assert (v["extracted"] or "") == ref["prediction"], (p, v, ref)  # the parsed answer lmms-eval records
        assert it["answer"] == ref["ground_truth"]


def test_prompts_equal_lmms_doc_to_text(layouts):
    m = task_module("pope")
    default, full, by_split = layouts
    bench = get_benchmark("pope", "lmms_eval")
    for root, yamls in ((default, ["pope.yaml"]), (full, list(TASK_SPLIT))):
        items = bench.load(str(root), cache_dir=str(root / "cache"))
        docs = [r for s in by_split.values() for r in s]
        assert len(items) == len(docs) == 360
        for name in yamls:
            cfg = lmms_yaml("pope", name)
            kwargs = cfg["lmms_eval_specific_kwargs"]["default"]
            assert bench.max_new_tokens == cfg["generation_kwargs"]["max_new_tokens"] == 128
            for it, doc in zip(items, docs):
                if name == "pope.yaml" or TASK_SPLIT[name] == doc["category"]:
                    assert it["question"] == m.pope_doc_to_text(doc, kwargs)


def test_default_config_rows_and_pooled_aggregates(layouts):
    """Task ``pope``: the whole test split pooled, every aggregate identical."""
    m = task_module("pope")
    default, _, by_split = layouts
    bench = get_benchmark("pope", "lmms_eval")
    items = bench.load(str(default), cache_dir=str(default / "cache"))
    docs = [r for s in by_split.values() for r in s]
    for rnd in range(ROUNDS):
        preds = awkward_predictions(len(items), seed=100 + rnd, extra=["dog", "There is a cat.", "yes yes", "no no"])
        res, agg = _reference(m, docs, preds)
        _check_rows(bench, items, docs, preds, res)
        s = bench.score([dict(it, prediction=p, error="") for it, p in zip(items, preds)])
        for k, v in agg.items():
            assert s[k] == v, (rnd, k, s[k], v)  # exact
        assert s["overall"] == 100.0 * agg["pope_f1_score"]


def test_full_config_rows_and_per_split_aggregates(layouts):
    """Tasks ``pope_adv`` / ``pope_pop`` / ``pope_random`` (group ``pope_full``): per split, identical."""
    m = task_module("pope")
    _, full, by_split = layouts
    bench = get_benchmark("pope", "lmms_eval")
    items = bench.load(str(full), cache_dir=str(full / "cache"))
    for rnd in range(ROUNDS):
        preds = awkward_predictions(len(items), seed=200 + rnd)
        s = bench.score([dict(it, prediction=p, error="") for it, p in zip(items, preds)])
        for split, docs in by_split.items():
            idx = [i for i, it in enumerate(items) if it["split"] == split]
            assert [items[i]["question_id"] for i in idx] == [d["question_id"] for d in docs]
            sub_preds = [preds[i] for i in idx]
            res, agg = _reference(m, docs, sub_preds)
            _check_rows(bench, [items[i] for i in idx], docs, sub_preds, res)
            for k, v in agg.items():
                assert s[f"{split}/{k}"] == v, (rnd, split, k)


def test_one_split_loaded_is_that_task(layouts):
    m = task_module("pope")
    _, full, by_split = layouts
    bench = get_benchmark("pope", "lmms_eval")
    items = bench.load(str(full), splits=["popular"], cache_dir=str(full / "cache"))
    docs = by_split["popular"]
    preds = awkward_predictions(len(items), seed=5)
    _, agg = _reference(m, docs, preds)
    s = bench.score([dict(it, prediction=p) for it, p in zip(items, preds)])
    assert {k: s[k] for k in agg} == agg and {k: s[f"popular/{k}"] for k in agg} == agg
    assert "random/pope_f1_score" not in s


def test_vlmevalkit_tsv_layout_under_lmms_eval_agrees_too(tmp_path, b64png, write_tsv):
    """POPE.tsv under lmms_eval: a row shared by splits ("popular,random") is asked once and stands for
    one lmms-eval doc per split, as in the default config; pooled and per-split aggregates agree."""
    m = task_module("pope")
    rng = random.Random(13)
    rows, docs, owner = [], [], []
    for i in range(240):
        cats = rng.choice(["adversarial", "popular", "random", "popular,random", "adversarial,popular,random"])
        q = f"Is there a {rng.choice(OBJECTS)} in the image?"
        a = rng.choice(["Yes", "No"])
        img = b64png(f"img{i}" * 20) if i % 3 == 0 else str(i - i % 3)
        rows.append({"index": str(i), "image": img, "question": q, "answer": a, "category": cats})
        for c in cats.split(","):
            docs.append({"question_id": str(i), "question": q, "answer": a, "category": c})
            owner.append(i)
    write_tsv(tmp_path / "POPE.tsv", rows)
    bench = get_benchmark("pope", "lmms_eval")
    items = bench.load(str(tmp_path), cache_dir=str(tmp_path / "cache"))
    kwargs = lmms_yaml("pope", "pope.yaml")["lmms_eval_specific_kwargs"]["default"]
    assert [items[i]["question"] for i in owner] == [m.pope_doc_to_text(d, kwargs) for d in docs]
    for rnd in range(10):
        preds = awkward_predictions(len(items), seed=300 + rnd)
        res, agg = _reference(m, docs, [preds[i] for i in owner])
        _check_rows(bench, [items[i] for i in owner], docs, [preds[i] for i in owner], res)
        s = bench.score([dict(it, prediction=p) for it, p in zip(items, preds)])
        assert {k: s[k] for k in agg} == agg
        for split in ("adversarial", "popular", "random"):
            idx = [j for j, d in enumerate(docs) if d["category"] == split]
            _, sub = _reference(m, [docs[j] for j in idx], [preds[owner[j]] for j in idx])
            assert {k: s[f"{split}/{k}"] for k in sub} == sub
