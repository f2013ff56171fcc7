"""MVBench under ``lmms_eval``: row-for-row and aggregate parity with lmms-eval 0.7.3's own code.

The same loader rows feed both sides: lmms-eval ``doc`` dicts are rebuilt from them in the HF layout
lmms-eval reads (``video``, ``question``, ``candidates``, ``answer``), our item ``question`` must be
lmms-eval's ``mvbench_doc_to_text`` with the task YAML's default kwargs, its ``media_path`` must be
``mvbench_doc_to_visual``'s path, and thousands of seeded awkward generations are scored by
``mvbench_process_results`` + ``mvbench_aggregate_results`` and by our judge + scorer. lmms-eval
receives each generation as its model wrappers pass it on (cut at the task's ``until`` "\\n\\n",
stripped: ``mvbench.lmms_eval_output``).
"""

import random
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[2]))
from reference.lmms_eval_ref import _tasks_dir, task_module  # noqa: E402
from videosft.benchmarks import get_benchmark  # noqa: E402
from videosft.benchmarks.mvbench import TASKS, VIDEO_PREFIXES, lmms_eval_output  # noqa: E402

N_PER_TASK = 60
ROUNDS = (0.05, 0.5, 0.95)  # one prediction mix per round, awkward to mostly plain: 20 * 60 * 3 = 3600 rows


class _FnLoader(yaml.SafeLoader):
    pass


_FnLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def task_yaml(folder: str, name: str) -> dict:
    """A task YAML with its ``include:`` resolved by hand (included first, the task's keys win)."""
    d = _tasks_dir() / folder
    cfg = yaml.load((d / name).read_text(), Loader=_FnLoader)
    if "include" in cfg:
        base = yaml.load((d / cfg.pop("include")).read_text(), Loader=_FnLoader)
        base.update(cfg)
        cfg = base
    return cfg


WORDS = [
    "dog",
    "the cube",
    "left",
    "right",
    "3",
    "0",
    "jumping",
    "a red ball",
    "It moved up.",
    "None",
    "B",
    "walking",
    "opens the door",
    "1,000",
    "3.5",
    "e.g. running",
    "down-stairs",
    "x/y",
    "über",
    "狗",
]


def make_json(rng: random.Random, task: str, n: int) -> list[dict]:
    recs = []
    for i in range(n):
        k = rng.randint(2, 6)  # MVBench has 2-5 options; 6 exercises letters past E
        cands = rng.sample(WORDS, k)
        rec = {
            "video": f"{task}_{i}.mp4",
            "question": rng.choice(
                [f"What happens to {rng.choice(WORDS)}?", " How many times? ", "Which one\nis it?", "Q"]
            ),
            "candidates": cands,
            "answer": rng.choice(cands),
        }
        if rng.random() < 0.3:
            rec["start"], rec["end"] = 1.0, 5.5
        recs.append(rec)
    return recs


def awkward(rng: random.Random, options: list[str], answer: str = "A", p_right: float = 0.5) -> str:
    L = "ABCDEFGH"
    right = rng.random() < p_right  # how often to aim at the reference (low to high scores)
    letter = answer if right else rng.choice(L[: len(options) + 2])
    opt = options[L.index(answer)] if right else rng.choice(options)
    pool = [
        letter,
        letter.lower(),
        f"{letter}.",
        f"({letter})",
        f"{letter})",
        f"({letter}) {opt}",
        f"{letter}. {opt}",
        f"The answer is {letter}",
        f"The answer is {letter}.",
        f"Answer: {letter}",
        f"answer: ({letter.lower()})",
        f"{letter} or {rng.choice(L[:4])}",
        opt,
        opt + ".",
        opt.upper(),
        f"I think it is {opt}.",
        "Yes.",
        "no, it is not",
        "Not sure.",
        "A man is walking to the door.",
        "I cannot tell.",
        "",
        " ",
        "\n",
        "\t",
        "\n\n",
        f" {letter} ",
        f"\n{letter}",
        f"{letter}\n\nBecause the video shows {opt}.",
        f"{letter}\nexplanation",
        f"Best option:({letter}",
        f"[{letter}]",
        f"{{{letter}}}",
        f'"{letter}"',
        f"'{letter}'",
        f"{letter}!",
        f"-{letter}-",
        f"{letter}, {opt}",
        f"{letter};",
        f"Option {letter}",
        f"({letter}",
        f"{letter}. ",
        "Ｂ",
        "答案是B",
        "E",
        "F.",
        "e.g. B",
        "1,000",
        "3.5 times",
        "a/b",
        "D. d. d.",
        f"{letter}.{opt}",
        "It is (C) because of B",
        "A. " + "very long ramble " * 40,
        "ramble " * 60 + letter,
        f"{letter}:{opt}",
        f"<{letter}>",
        f"{letter}@",
        "None",
        "N/A",
        "null",
    ]
    s = rng.choice(pool)
    if rng.random() < 0.15:
        s = rng.choice([" ", "\n", "  "]) + s + rng.choice(["", " ", "\n", "."])
    return s


@pytest.fixture(scope="module")
def lmms():
    return task_module("mvbench")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("mvbench_hf_video")
    rng = random.Random(14)
    import json

    (root / "json").mkdir()
    for task in TASKS:
        recs = make_json(rng, task, N_PER_TASK)
        (root / "json" / f"{task}.json").write_text(json.dumps(recs))
        vdir = root / "video" / VIDEO_PREFIXES[task]
        vdir.mkdir(parents=True, exist_ok=True)
        for r in recs:
            (vdir / r["video"]).write_bytes(b"")
    return root


def doc_of(item) -> dict:
    return {
        "video": item["video"],
        "question": item["raw_question"],
        "candidates": list(item["options"]),
        "answer": item["answer_text"],
    }


def test_prompts_and_paths_equal_lmms_eval(lmms, dataset, monkeypatch):
    bench = get_benchmark("mvbench", "lmms_eval")
    items = bench.load(str(dataset), layout="video")
    assert len(items) == 20 * N_PER_TASK
    assert bench.max_new_tokens == task_yaml("mvbench", "_default_template_yaml")["generation_kwargs"]["max_new_tokens"]
    monkeypatch.setattr(lmms, "base_cache_dir", str(dataset))
    monkeypatch.setattr(lmms, "cache_name", "video")
    kwargs = {t: task_yaml("mvbench", f"mvbench_{t}.yaml")["lmms_eval_specific_kwargs"]["default"] for t in TASKS}
    for item in items:
        doc = doc_of(item)
        assert item["question"] == lmms.mvbench_doc_to_text(doc, kwargs[item["task"]]), item["id"]
        assert item["media_path"] == lmms.mvbench_doc_to_visual(doc, kwargs[item["task"]])[0], item["id"]
    assert set(lmms.DATA_LIST) == set(TASKS) and lmms.DATA_LIST == VIDEO_PREFIXES
    # the group YAML lists exactly our 20 tasks
    group = yaml.load((_tasks_dir() / "mvbench" / "mvbench.yaml").read_text(), Loader=_FnLoader)
    assert sorted(t.removeprefix("mvbench_") for t in group["task"]) == sorted(TASKS)


def test_every_row_and_aggregate_agrees_with_lmms_eval(lmms, dataset):
    bench = get_benchmark("mvbench", "lmms_eval")
    items = bench.load(str(dataset), layout="video")
    rng = random.Random(1414)
    n_rows, overall = 0, []
    for p_right in ROUNDS:
        rows = [dict(it, prediction=awkward(rng, it["options"], it["answer"], p_right), error="") for it in items]
        theirs = [
            lmms.mvbench_process_results(doc_of(r), [lmms_eval_output(r["prediction"])])["mvbench_accuracy"]
            for r in rows
        ]
        ours = [bench.judge(r) for r in rows]
        bad = [
            (r["prediction"], r["answer"], r["options"], t, o)
            for r, t, o in zip(rows, theirs, ours)
            if bool(t["score"]) != o["correct"]
            or (t["pred_answer"] != "") != o["counted"]
            or t["gt_answer"] != r["answer"]
        ]
        assert not bad, f"{len(bad)} of {len(rows)} rows disagree, e.g. {bad[:5]}"
        assert sum(not o["counted"] for o in ours) > 5  # empties (dropped from the denominator) present

        scores = bench.score(rows)
        for task in TASKS:
            got = [t for r, t in zip(rows, theirs) if r["task"] == task]
            assert scores[f"task/{task}"] == pytest.approx(lmms.mvbench_aggregate_results(got), abs=1e-12), task
        assert scores["overall"] == pytest.approx(sum(scores[f"task/{t}"] for t in TASKS) / 20)
        assert scores["n_empty"] == sum(1 for t in theirs if t["pred_answer"] == "")
        n_rows += len(rows)
        overall.append(scores["overall"])
    assert n_rows == 3600
    assert overall[0] < 25 < 50 < overall[-1], overall  # aggregates compared from low to high scores


def test_aggregate_edge_cases_agree(lmms, dataset):
    """A task whose every prediction is empty: lmms-eval scores it 0 (no ZeroDivisionError)."""
    bench = get_benchmark("mvbench", "lmms_eval")
    items = bench.load(str(dataset), tasks=("action_count",), layout="video")[:5]
    rows = [dict(it, prediction=p, error="") for it, p in zip(items, ["", " ", "\n\n", "", "\t"])]
    theirs = [
        lmms.mvbench_process_results(doc_of(r), [lmms_eval_output(r["prediction"])])["mvbench_accuracy"] for r in rows
    ]
    assert bench.score(rows)["task/action_count"] == lmms.mvbench_aggregate_results(theirs) == 0
