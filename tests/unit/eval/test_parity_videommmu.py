"""Video-MMMU under protocol lmms_eval, row for row against lmms-eval 0.7.3's own task code.

Docs are the very parquet rows our loader read (``lmms-lab/VideoMMMU`` layout, one folder per track); the
same generated predictions go to lmms-eval's ``videommmu_process_results`` + ``videommmu_aggregate_results``
(one lmms-eval task per track) and to our judge + score. Prompts are checked against
``videommmu_doc_to_text_perception_comprehension`` / ``_adaptation`` with ``_default_template_yaml``'s
default kwargs, video paths against ``videommmu_doc_to_visual``.
"""

import random
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[2]))
from reference.lmms_eval_ref import task_module  # noqa: E402
from videosft.benchmarks import get_benchmark  # noqa: E402
from videosft.benchmarks import videommmu as M  # noqa: E402

m = task_module("videommmu")
TASK_DIR = Path(m.__file__).parent
N_PER_TRACK = 1200
SUBJECTS = [s for subs in M.DISCIPLINES.values() for s in subs]


def _yaml(name):
    text = "".join(line for line in (TASK_DIR / name).read_text().splitlines(True) if "!function" not in line)
    cfg = yaml.safe_load(text)
    if "include" in cfg:
        base = _yaml(cfg.pop("include"))
        base.update(cfg)
        cfg = base
    return cfg


OPEN_ANSWERS = ["12", "3.14", "1,000", "0.5", "-2", "mitochondria", "a", "x", "1e3", "42", "7.0", "Paris", "2/3"]


def _doc(rng, track, i):
    subject = rng.choice(SUBJECTS)
    kind = rng.random()
    if (track != "Adaptation" and kind < 0.85) or kind < 0.6:
        qtype = "multiple-choice" if kind < 0.55 or 0.6 <= kind < 0.83 else "perception"  # "perception": a quirk
        n = rng.choice([4, 4, 5, 6, 8, 10])
        texts = [
            rng.choice(["12", "mitochondria", "a cell", "None", "B only", "3.5 m/s", "Ünïcødé", "x = 2"]) + f" {k}"
            for k in range(n)
        ]
        opts = [f"{chr(65 + k)}. {t}" for k, t in enumerate(texts)] if rng.random() < 0.5 else texts
        answer = rng.choice([chr(65 + k) for k in range(n)])
    else:
        qtype, opts, answer = "open", [], rng.choice(OPEN_ANSWERS)
    return {
        "id": f"{track}_{subject}_{i}",
        "question": rng.choice(["What is X?", "Compute <image 1> value.", " Why?\nExplain."]),
        "options": opts,
        "answer": answer,
        "question_type": qtype,
    }


def _pred(rng, doc):
    L = rng.choice("ABCDEFGHIJ")
    ans = doc["answer"]
    opt = doc["options"][0] if doc["options"] else "mitochondria"
    pool = [
        L,
        f"{L}.",
        f"({L}) dog",
        f"The answer is {L}",
        L.lower(),
        "Not sure.",
        "A man is walking.",
        "",
        " ",
        "\n",
        f"{L} or {rng.choice('ABCD')}",
        opt,
        f"Answer: {L}",
        "API Error",
        f"**{L}**",
        f"答案是{L}",
        ans,
        f"The answer is {ans}.",
        f"= {ans}",
        f"so the total is {ans}",
        f"{ans}.",
        f"Result: {ans} units",
        f"{rng.randint(-5, 2000)}",
        f"{rng.uniform(-10, 10):.3f}",
        "1,000",
        "1e3",
        "3.1416",
        "0.50",
        "-2.0",
        "The value is 12\nTherefore, the final answer is 42.",
        "It is a.",
        "x",
        "Paris is the capital. So Paris.",
        "Let me think. " * rng.randint(1, 40) + f"Therefore {ans}",
        "Ünïcødé ✓",
        "is ",
        "so .",
        "total = ",
        f"The answer is {L}. {opt}",
        f"I choose {L}",
        f"{L}: {opt}",
    ]
    s = rng.choice(pool)
    if rng.random() < 0.15:
        s = rng.choice(["", " ", "\n"]) + s + rng.choice(["", ".", " ", "\n"])
    return s


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(20260114)
    root = tmp_path_factory.mktemp("vmmmu")
    docs = {}
    for track in M.TRACKS:
        docs[track] = [_doc(rng, track, i) for i in range(N_PER_TRACK)]
        (root / track).mkdir()
        pq.write_table(pa.Table.from_pylist(docs[track]), root / track / "test-00000-of-00001.parquet")
        for d in docs[track]:
            disc = M._SUBJECT_TO_DISCIPLINE[M.subject_of(d["id"])]
            (root / disc).mkdir(exist_ok=True)
            (root / disc / f"{d['id']}.mp4").touch()
    items = get_benchmark("videommmu", "lmms_eval").load(str(root))
    flat = [d for t in M.TRACKS for d in docs[t]]
    preds = [_pred(rng, d) for d in flat]
    return root, flat, items, preds


def test_prompts_paths_and_length_equal_lmms_eval(generated, monkeypatch):
    root, docs, items, _ = generated
    monkeypatch.setattr(m, "cache_dir", str(root))
    kwargs = _yaml("perception.yaml")["lmms_eval_specific_kwargs"]["default"]
    assert kwargs == _yaml("adaptation.yaml")["lmms_eval_specific_kwargs"]["default"]
    assert len(items) == len(docs) == 3 * N_PER_TRACK
    for d, it in zip(docs, items):
        fn = (
            m.videommmu_doc_to_text_adaptation
            if it["track"] == "Adaptation"
            else m.videommmu_doc_to_text_perception_comprehension
        )
        assert it["question"] == fn(d, kwargs)
        assert [it["media_path"]] == m.videommmu_doc_to_visual(d)
    assert (
        _yaml("perception.yaml")["generation_kwargs"]["max_new_tokens"]
        == get_benchmark("videommmu").max_new_tokens
        == 1024
    )


def _upstream_parsed_equal(ours, theirs):
    if isinstance(theirs, list):
        return isinstance(ours, list) and sorted(map(repr, ours)) == sorted(map(repr, theirs))
    return ours == theirs


def test_rows_and_aggregates_agree_with_lmms_eval(generated, monkeypatch):
    _, docs, items, preds = generated
    bench = get_benchmark("videommmu", "lmms_eval")
    rows = [dict(it, prediction=p, error="") for it, p in zip(items, preds)]
    results = [m.videommmu_process_results(d, [p])["mmmu_acc"] for d, p in zip(docs, preds)]
    agree = 0
    for r, res in zip(rows, results):
        parsed, ok, counted = M._lmms(r["prediction"], r["answer"], r["question_type"], tuple(r["raw_options"]))
        _, up = m.evaluate_videommmu([res]) if res["parsed_pred"] != "API Error" else (None, None)
        v = bench.judge(r)
        same = _upstream_parsed_equal(parsed, res["parsed_pred"]) and counted == (res["parsed_pred"] != "API Error")
        same = same and (v["correct"] == bool(up and up["acc"] == 1.0)) and (v.get("excluded", False) != counted)
        agree += same
    assert agree == len(rows)
    n_excl = sum(1 for res in results if res["parsed_pred"] == "API Error")
    assert 0 < n_excl < len(rows) and 0 < sum(bench.judge(r)["correct"] for r in rows) < len(rows)

    printed = []
    monkeypatch.setattr(m, "print", printed.append, raising=False)
    ours = bench.score(rows)
    for t in M.TRACKS:
        idx = [i for i, r in enumerate(rows) if r["track"] == t]
        up = m.videommmu_aggregate_results([results[i] for i in idx])
        assert ours[f"mmmu_acc/{t}"] == up
        assert ours[f"table/{t}"] == printed[-1]  # every field of the printed table, same rounding
        assert round(ours[f"track/{t}"] / 100, 5) == up
    assert ours["overall"] == pytest.approx(sum(ours[f"track/{t}"] for t in M.TRACKS) / 3)
    assert ours["excluded"] == n_excl


def test_random_subsets_aggregate_identically(generated, monkeypatch):
    _, docs, items, preds = generated
    monkeypatch.setattr(m, "print", lambda *a, **k: None, raising=False)
    bench = get_benchmark("videommmu", "lmms_eval")
    rng = random.Random(5)
    for _ in range(25):
        t = rng.choice(M.TRACKS)
        pool = [i for i, it in enumerate(items) if it["track"] == t]
        idx = rng.sample(pool, rng.randint(1, 60))
        up = m.videommmu_aggregate_results([m.videommmu_process_results(docs[i], [preds[i]])["mmmu_acc"] for i in idx])
        assert bench.score([dict(items[i], prediction=preds[i], error="") for i in idx])[f"mmmu_acc/{t}"] == up


def test_open_parser_agrees_on_more_strings():
    rng = random.Random(9)
    alphabet = "0123456789.,-eE =isotalfn\nABC answer final so total is are has x "
    for _ in range(15000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        ours, theirs = M.parse_open_response(s), m.parse_open_response(s)
        assert _upstream_parsed_equal(ours, theirs), repr(s)
        if isinstance(theirs, list):
            for gold in ("12", "1,000", "a", "is", "-2", "0.5"):
                assert M.eval_open(gold, ours) == m.eval_open(gold, theirs), (s, gold)


@pytest.mark.parametrize("plain", [0.0, 0.5, 0.95])
def test_aggregates_agree_from_low_to_high_scores(generated, monkeypatch, plain):
    """Mostly-plain mixes (the right answer in a usual form) push the score up; every track's number and
    printed table agree."""
    _, docs, items, _ = generated
    rng = random.Random(int(plain * 100))
    preds = [
        rng.choice([d["answer"], f"The answer is {d['answer']}.", f"Answer: {d['answer']}"])
        if rng.random() < plain
        else _pred(rng, d)
        for d in docs
    ]
    printed = []
    monkeypatch.setattr(m, "print", printed.append, raising=False)
    ours = get_benchmark("videommmu").score([dict(it, prediction=p, error="") for it, p in zip(items, preds)])
    for t in M.TRACKS:
        idx = [i for i, it in enumerate(items) if it["track"] == t]
        up = m.videommmu_aggregate_results([m.videommmu_process_results(docs[i], [preds[i]])["mmmu_acc"] for i in idx])
        assert ours[f"mmmu_acc/{t}"] == up and ours[f"table/{t}"] == printed[-1]
    assert (plain < 0.5) == (ours["overall"] < 50)
