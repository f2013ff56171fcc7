"""MME under ``lmms_eval``: row for row and aggregate against lmms-eval 0.7.3's own task code.

The same generated predictions go to lmms-eval's ``mme_process_results`` + ``mme_aggregate_results``
(imported from the installed package by ``reference.lmms_eval_ref``) and to our judge + scorer.
lmms-eval's docs are the rows of the HF-layout parquet fixture, read as ``datasets`` hands them
to the task (the image column is not touched by these functions). The prompt is checked against
``mme_doc_to_text`` with the default kwargs read from lmms-eval's own ``mme.yaml``.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[2]))
sys.path.insert(0, str(Path(__file__).parent))

from reference.lmms_eval_ref import _tasks_dir, task_module  # noqa: E402
from videosft.benchmarks import get_benchmark  # noqa: E402
from videosft.benchmarks.mme import CATEGORIES, PERCEPTION  # noqa: E402

ROUNDS = 24  # x 280 items = 6720 rows per protocol check

# ---------------------------------------------------------------- awkward model outputs (shared with POPE)

_FIXED = [
    "Yes",
    "No",
    "yes",
    "no",
    "YES",
    "NO",
    "Yes.",
    "No.",
    "yes.",
    "no!",
    "Y",
    "N",
    "y",
    "n",
    "y.",
    "n.",
    ".yes",
    "Yes, there is.",
    "No, there is not.",
    "no, there is not",
    "Not sure.",
    "Nope",
    "None",
    "eyes",
    "know",
    "noon",
    "Yesterday",
    "Noted",
    "Yes or no",
    "yes and no",
    "No or yes",
    "The answer is yes.",
    "The answer is no",
    "Answer: Yes",
    "Answer: No",
    "answer: yes",
    "I think yes",
    "I don't know",
    "Maybe",
    "It is unclear.",
    "Unknown",
    "A",
    "A.",
    "(B) dog",
    "The answer is C",
    "b",
    "Answer: D",
    "E",
    "Z.",
    "B or C",
    "A man is walking a dog.",
    "",
    " ",
    "\n",
    "\t\n ",
    "  yes  ",
    "\nno\n",
    "Yes\nNo",
    "No\nYes",
    "yes\n\nThe image shows a cat.",
    "Ｙｅｓ",
    "ＮＯ",
    "yes\u200b",
    "\u00a0no",
    "Sí",
    "Да",
    "是",
    "否",
    "yés",
    "nö",
    "**Yes**",
    "**No**",
    "`yes`",
    '"Yes"',
    "'no'",
    "(yes)",
    "[no]",
    "{Yes}",
    "<no>",
    "Yes;",
    "No:",
    "yes/no",
    "no-no",
    "yes_no",
    "yes-sir",
    "Yes, 1,000 people.",
    "No, 3.5 meters",
    "yes...",
    "no.....",
    "1. yes",
    "2) no",
    "Yes!" * 3,
    "nnn",
    "yyy",
    "Yes " * 40,
    "There is no dog in the image, but there is a cat. So yes, an animal.",
    "In this image we can see " + "a very long ramble, " * 30 + "so the answer is no.",
    "Is there a dog? Yes.",
    "no." * 40,
    "." * 40 + "yes",
    "yes" + "." * 40 + " no",
]
_WORDS = [
    "yes",
    "no",
    "Yes",
    "No",
    "not",
    "dog",
    "the",
    "answer",
    "is",
    "maybe",
    "there",
    "y",
    "n",
    "none",
    "know",
    "eyes",
    "A",
    "B",
    "(C)",
    "1,000",
    "3.5",
    ".",
    ",",
    "!",
    "?",
    ":",
    ";",
    "-",
    "/",
    "\n",
    "  ",
    "é",
    "Ｙ",
]


def awkward_predictions(n: int, seed: int, extra: list[str] | None = None) -> list[str]:
    """n seeded model outputs: fixed awkward cases, option/answer texts, and random word salads."""
    rng = random.Random(seed)
    pool = _FIXED + list(extra or [])
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.55:
            p = rng.choice(pool)
        elif r < 0.85:
            sep = rng.choice([" ", "", ", ", ". ", "\n"])
            p = sep.join(rng.choice(_WORDS) for _ in range(rng.randint(1, 8)))
        else:
            p = rng.choice(pool)
            p = (
                rng.choice(["", " ", "\n", "The answer: ", "Answer: ", "("])
                + p
                + rng.choice(["", ".", " ", "\n", ")", "!"])
            )
        if rng.random() < 0.2:
            p = rng.choice([p.upper(), p.lower(), p.title(), p.swapcase()])
        out.append(p)
    return out


# ---------------------------------------------------------------- fixtures


def lmms_yaml(task: str, name: str) -> dict:
    """A task YAML of the installed lmms-eval, ``!function`` tags kept as strings."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    return yaml.load((_tasks_dir() / task / name).read_text(), Loader=Loader)


def _questions(rng: random.Random, cat: str, i: int) -> list[str]:
    base = [f"Is there a {cat} thing number {i} in the image?", f"Does picture {i} show  {cat}?"]
    styles = [
        lambda q: q + " Please answer yes or no.",  # the release form
        lambda q: "  " + q + " Please answer yes or no.  \n",  # whitespace around
        lambda q: q,  # no suffix
        lambda q: q + " Please answer yes or no. Please answer yes or no.",
        lambda q: q + "Please answer yes or no.",  # no space: not the replaced string
    ]
    return [rng.choice(styles)(q) for q in base]


@pytest.fixture(scope="module")
def mme_hf(tmp_path_factory):
    """14 categories x 10 images x 2 questions in lmms-lab/MME's layout: two shards under data/."""
    root = tmp_path_factory.mktemp("mme_hf")
    rng = random.Random(7)
    rows = []
    for cat in CATEGORIES:
        for i in range(10):
            qid = f"{cat}/{i:04d}.png"
            img = {"bytes": b"\x89PNG\r\n\x1a\n" + qid.encode(), "path": f"{i:04d}.png"}
            for q, a in zip(_questions(rng, cat, i), rng.choice([("Yes", "No"), ("No", "Yes")])):
                rows.append({"question_id": qid, "image": img, "question": q, "answer": a, "category": cat})
    import pyarrow as pa

    (root / "data").mkdir()
    half = len(rows) // 2
    for k, part in enumerate((rows[:half], rows[half:])):
        pq.write_table(pa.Table.from_pylist(part), root / "data" / f"test-0000{k}-of-00002-{k}a25dbe3b44c4fda6.parquet")
    return root


@pytest.fixture(scope="module")
def loaded(mme_hf):
    bench = get_benchmark("mme", "lmms_eval")
    items = bench.load(str(mme_hf), cache_dir=str(mme_hf / "cache"))
    docs = []
    for f in sorted((mme_hf / "data").glob("*.parquet")):
        docs += pq.read_table(f).to_pylist()  # what datasets gives lmms-eval (image left undecoded)
    assert len(docs) == len(items) == 280
    return bench, items, docs


# ---------------------------------------------------------------- checks


def test_prompt_equals_lmms_doc_to_text(loaded):
    m = task_module("mme")
    cfg = lmms_yaml("mme", "mme.yaml")
    kwargs = cfg["lmms_eval_specific_kwargs"]["default"]
    bench, items, docs = loaded
    for it, doc in zip(items, docs):
        assert it["question"] == m.mme_doc_to_text(doc, kwargs)
    assert bench.max_new_tokens == cfg["generation_kwargs"]["max_new_tokens"] == 16


def test_rows_and_aggregates_agree_with_lmms_eval(loaded):
    m = task_module("mme")
    bench, items, docs = loaded
    rows_compared = 0
    for rnd in range(ROUNDS):
        preds = awkward_predictions(len(items), seed=rnd)
        rows = [dict(it, prediction=p, error="") for it, p in zip(items, preds)]
        results = {"mme_perception_score": [], "mme_cognition_score": []}
        for row, doc, pred in zip(rows, docs, preds):
            ref = m.mme_process_results(doc, [pred])
            ((key, val),) = ref.items()
            results[key].append(val)
            v = bench.judge(row)
            assert v["correct"] == (val["score"] == 1.0), (pred, v, val)
            parsed = m.parse_pred_ans(pred)
            assert (v["extracted"] or "other") == parsed, (pred, v)
            assert key == ("mme_perception_score" if row["category"] in PERCEPTION else "mme_cognition_score")
            rows_compared += 1
        ours = bench.score(rows)
        for key, values in results.items():
            assert ours[key] == m.mme_aggregate_results(values), (rnd, key)  # exact, not approx
        # per category: lmms-eval's category2avg_score (it logs them) == ours
        for cat in CATEGORIES:
            sub = [val for key in results for val in results[key] if val["category"] == cat]
            assert ours[f"{cat}/score"] == m.mme_aggregate_results(sub), cat
    assert rows_compared == ROUNDS * 280


def test_partial_categories_sum_like_lmms_eval(loaded):
    """A run on a few categories: upstream sums the categories present (no 0 for the absent)."""
    m = task_module("mme")
    bench, items, docs = loaded
    keep = [i for i, it in enumerate(items) if it["category"] in ("OCR", "count", "code_reasoning")]
    preds = awkward_predictions(len(keep), seed=99)
    rows = [dict(items[i], prediction=p) for i, p in zip(keep, preds)]
    res = [m.mme_process_results(docs[i], [p]) for i, p in zip(keep, preds)]
    per = [next(iter(r.values())) for r in res if "mme_perception_score" in r]
    cog = [next(iter(r.values())) for r in res if "mme_cognition_score" in r]
    s = bench.score(rows)
    assert s["mme_perception_score"] == m.mme_aggregate_results(per)
    assert s["mme_cognition_score"] == m.mme_aggregate_results(cog)
    assert s["overall"] == pytest.approx(s["total"] / 6)


def test_vlmevalkit_tsv_layout_under_lmms_eval_agrees_too(tmp_path, b64png, write_tsv):
    """MME.tsv read under lmms_eval: lmms-eval's docs (question_id = the image) give the same prompts,
    rows and totals as ours on the items loaded from the TSV (second questions reuse the image by index)."""
    m = task_module("mme")
    rng = random.Random(11)
    rows, docs = [], []
    for cat in CATEGORIES:
        for i in range(4):
            path = f"{cat}/{i}.png"
            first = str(len(rows))
            for q, a in zip(_questions(rng, cat, i), rng.choice([("Yes", "No"), ("No", "Yes")])):
                img = b64png(path * 8) if str(len(rows)) == first else first
                rows.append(
                    {
                        "index": str(len(rows)),
                        "image": img,
                        "question": q,
                        "answer": a,
                        "category": cat,
                        "image_path": path,
                    }
                )
                docs.append({"question_id": path, "question": q, "answer": a, "category": cat})
    write_tsv(tmp_path / "MME.tsv", rows)
    bench = get_benchmark("mme", "lmms_eval")
    items = bench.load(str(tmp_path), cache_dir=str(tmp_path / "cache"))
    kwargs = lmms_yaml("mme", "mme.yaml")["lmms_eval_specific_kwargs"]["default"]
    assert [it["question"] for it in items] == [m.mme_doc_to_text(d, kwargs) for d in docs]
    for rnd in range(5):
        preds = awkward_predictions(len(items), seed=500 + rnd)
        res = [next(iter(m.mme_process_results(d, [p]).items())) for d, p in zip(docs, preds)]
        ours = bench.score([dict(it, prediction=p) for it, p in zip(items, preds)])
        assert [bench.judge(dict(it, prediction=p))["correct"] for it, p in zip(items, preds)] == [
            v["score"] == 1.0 for _, v in res
        ]
        for key in ("mme_perception_score", "mme_cognition_score"):
            assert ours[key] == m.mme_aggregate_results([v for k, v in res if k == key])
