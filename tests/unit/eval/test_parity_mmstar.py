"""MMStar under ``lmms_eval``: our loader, judge and scorer against lmms-eval 0.7.3's own task code.

The same generated predictions go to lmms-eval's ``mmstar_process_results`` + ``mmstar_aggregate_results``
and to our judge + score; the docs lmms-eval sees are the rows of the very ``mmstar.parquet`` our
loader read (Lin-Chen/MMStar layout). Prompts are checked against ``mmstar_doc_to_text`` with the
task YAML's default kwargs.
"""

import random
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[2]))
from reference.lmms_eval_ref import task_module  # noqa: E402
from videosft.benchmarks import get_benchmark  # noqa: E402

L2 = {
    "coarse perception": ["image scene and topic", "image style & quality", "image emotion"],
    "fine-grained perception": ["object counting", "recognition", "localization"],
    "instance reasoning": [
        "single-instance reasoning",
        "cross-instance attribute reasoning",
        "cross-instance relation reasoning",
    ],
    "logical reasoning": ["code & sequence reasoning", "diagram reasoning", "common reasoning"],
    "science & technology": [
        "biology & chemistry & physics",
        "electronics & energy & mechanical eng.",
        "geography & earth science & agriculture",
    ],
    "math": ["geometry", "numeric commonsense and calculation", "statistical reasoning"],
}
TEXTS = [
    "3 cm",
    "a red car",
    "The dog is sleeping.",
    "None of the above",
    "A man is walking",
    "42",
    "blue",
    "It is beneath the cat.",
    "Both A and B",
    "北京",
    "café au lait",
    "(B) maybe",
]


def awkward(rng: random.Random, opts: list[str], answer: str = "", clean: float = 0.0) -> str:
    """One generated model output of an awkward kind (seeded); leaning to ``answer`` when given,
    so that aggregates are not all near zero; with probability ``clean`` a plainly right answer."""
    right = bool(answer) and rng.random() < 0.6
    L = answer if right else rng.choice("ABCDEF")
    l = L.lower()
    pos = "ABCDEFGHIJ".index(L)
    t = opts[pos] if right and pos < len(opts) else rng.choice(opts)
    if answer and rng.random() < clean:
        return rng.choice([answer, f"{answer}.", f"({answer})", f"The answer is {answer}."])
    kinds = [
        L,
        f"{L}.",
        f"({L})",
        f"({L}) {t}",
        f"The answer is {L}",
        f"The answer is {L}.",
        l,
        f"{l}.",
        "Not sure.",
        "A man is walking down the street.",
        "",
        "   ",
        "\n",
        f"{L} or {rng.choice('ABCD')}",
        t,
        t.lower(),
        f"Answer: {L}",
        f"answer: {l}",
        f"{L}: {t}",
        f"{L}) {t}",
        f"I think it is {t}.",
        f"Option {L}",
        f"**{L}**",
        f"{L}\n\nBecause the image shows {t}.",
        f"The correct answer is ({L}) because " + "x " * 40,
        "I cannot determine the answer from the image.",
        f"It could be {L}, but {rng.choice('ABCD')} is better.",
        f"{L}{rng.choice('ABCD')}",
        f"é {L} ü",
        f"Because of the {t}, I choose {L}.",
        "Yes",
        "No idea",
        f"{L}.{rng.choice('ABCD')}.",
        f"  {L}  ",
        f'"{L}"',
        f"'{L}'",
        f"{L}!",
        f"Answer:\n{L}",
        f"{t} ({L})",
        "Sorry, I can't help with images of people yet.",
        f"The answer is {L} or {rng.choice('ABCD')}",
        " ".join(rng.choice(["the", "A", "cat", L, "is", "on", "B.", "(C)", "and"]) for _ in range(rng.randint(1, 12))),
    ]
    return rng.choice(kinds)


def _resolve_yaml(path: Path) -> dict:
    """A task YAML with its ``include:`` merged by hand (``!function`` lines dropped)."""
    lines = [ln for ln in path.read_text().splitlines() if "!function" not in ln]
    cfg = yaml.safe_load("\n".join(lines)) or {}
    if "include" in cfg:
        base = _resolve_yaml(path.parent / cfg.pop("include"))
        base.update(cfg)
        cfg = base
    return cfg


@pytest.fixture(scope="module")
def lmms():
    from loguru import logger

    logger.disable("lmms_eval")  # its aggregation logs every category and every failed GPT call
    return task_module("mmstar")


@pytest.fixture(scope="module")
def mmstar_dir(tmp_path_factory):
    """An ``mmstar.parquet`` in the Lin-Chen/MMStar layout: 18 l2 categories, unequal sizes."""
    import pyarrow as pa

    rng = random.Random(7)
    rows, i = [], 0
    for cat, l2s in L2.items():
        for j, l2 in enumerate(l2s):
            for _ in range(20 + 7 * j + rng.randint(0, 5)):
                opts = rng.sample(TEXTS, 4)
                q = f"Question {i}: which one fits?"
                if i % 9 == 0:
                    q += " Please answer yes or no."
                q = (
                    (" " if i % 5 == 0 else "")
                    + q
                    + "\nOptions: "
                    + ", ".join(f"{c}: {o}" for c, o in zip("ABCD", opts))
                )
                rows.append(
                    {
                        "index": i,
                        "question": q,
                        "image": {"bytes": b"\x89PNG\r\n\x1a\n" + str(i).encode(), "path": None},
                        "answer": rng.choice("ABCD"),
                        "category": cat,
                        "l2_category": l2,
                        "meta_info": {"source": "x", "split": "val", "image_path": f"{i}.png"},
                    }
                )
                i += 1
    d = tmp_path_factory.mktemp("mmstar")
    pq.write_table(pa.Table.from_pylist(rows), d / "mmstar.parquet")
    return d


def test_prompts_equal_lmms_doc_to_text(lmms, mmstar_dir):
    kwargs = _resolve_yaml(Path(lmms.__file__).parent / "mmstar.yaml")["lmms_eval_specific_kwargs"]["default"]
    items = get_benchmark("mmstar", "lmms_eval").load(str(mmstar_dir), cache_dir=str(mmstar_dir / "c"))
    docs = pq.read_table(mmstar_dir / "mmstar.parquet").to_pylist()
    assert len(items) == len(docs)
    for it, doc in zip(items, docs):
        assert it["question"] == lmms.mmstar_doc_to_text(doc, kwargs)
    assert get_benchmark("mmstar", "lmms_eval").max_new_tokens == 1024
    assert "generation_kwargs" not in _resolve_yaml(Path(lmms.__file__).parent / "mmstar.yaml")  # model default


def test_rows_and_aggregates_agree_with_lmms_eval(lmms, mmstar_dir):
    bench = get_benchmark("mmstar", "lmms_eval")
    items = bench.load(str(mmstar_dir), cache_dir=str(mmstar_dir / "c"))
    docs = pq.read_table(mmstar_dir / "mmstar.parquet").to_pylist()
    compared = agree = 0
    for seed in range(7):
        rng = random.Random(seed)
        rows = [
            dict(it, prediction=awkward(rng, it["options"], it["answer"], clean=seed / 7), error="") for it in items
        ]
        outs = [lmms.mmstar_process_results(doc, [r["prediction"]]) for doc, r in zip(docs, rows)]
        for r, out in zip(rows, outs):
            compared += 1
            agree += float(bench.judge(r)["correct"]) == out["average"]["score"]
        ours = bench.score(rows)
        for metric in list(L2) + ["average"]:
            ref = lmms.mmstar_aggregate_results([o[metric] for o in outs if metric in o])
            mine = ours["overall"] if metric == "average" else ours[f"category/{metric}"]
            assert mine == pytest.approx(100 * ref, abs=1e-9), (seed, metric)
        print(f"\nmmstar seed {seed}: overall {ours['overall']:.2f}, micro {ours['micro']:.2f}")
        assert ours["micro"] == pytest.approx(100 * sum(o["average"]["score"] for o in outs) / len(outs))
    print(f"\nmmstar parity: {agree}/{compared} rows agree")
    assert compared >= 3000 and agree == compared


def test_extractor_matches_lmms_mcq_extract_on_many_strings():
    from lmms_eval.tasks._task_utils.mcq_extract import extract_mcq_answer  # noqa: F401  (harness registered it)

    from videosft.benchmarks.lmms_eval_rules import extract_mcq_answer as ours

    rng = random.Random(11)
    for _ in range(5000):
        s = awkward(rng, TEXTS)
        assert ours(s, ("A", "B", "C", "D")) == extract_mcq_answer(s, choices=["A", "B", "C", "D"]), s
