"""TempCompass under ``lmms_eval``: row-for-row and aggregate parity with lmms-eval 0.7.3's own code.

The fixture is the HF ``lmms-lab/TempCompass`` layout (``<task_type>/test-00000-of-00001.parquet``,
``videos/<video_id>.mp4``); lmms-eval ``doc`` dicts are rebuilt from our loader rows. lmms-eval's
ChatGPT fallback is kept on the machine: ``requests.post`` answers as OpenAI does without a valid
key (HTTP 401, an ``invalid_request_error`` body) and ``time.sleep`` is a no-op, so its own retry
loop runs and returns what it returns then (rating 0; captioning -1). Every call is counted: a row
reaches the judge upstream exactly when our verdict says ``needs_judge``.
"""

import json
import random
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[2]))
from reference.lmms_eval_ref import _tasks_dir, task_module  # noqa: E402
from videosft.benchmarks import get_benchmark  # noqa: E402
from videosft.benchmarks.mvbench import lmms_eval_output  # noqa: E402
from videosft.benchmarks.tempcompass import DIMENSIONS, TASK_TYPES  # noqa: E402

N_PER_TYPE = 400
ROUNDS = (0.0, 0.6, 0.95)  # share of task-type-shaped answers per round: 4 * 400 * 3 = 4800 rows compared
YAML_OF = {
    "multi-choice": "tempcompass_mc.yaml",
    "yes_no": "tempcompass_yes_no.yaml",
    "caption_matching": "tempcompass_caption_matching.yaml",
    "captioning": "tempcompass_captioning.yaml",
}


class _FnLoader(yaml.SafeLoader):
    pass


_FnLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def task_yaml(name: str) -> dict:
    d = _tasks_dir() / "tempcompass"
    cfg = yaml.load((d / name).read_text(), Loader=_FnLoader)
    if "include" in cfg:
        base = yaml.load((d / cfg.pop("include")).read_text(), Loader=_FnLoader)
        base.update(cfg)
        cfg = base
    return cfg


SENTS = [
    "The car moves left",
    "The car moves right",
    "A man is walking",
    "The ball falls slowly",
    "The flower blooms",
    "The person first sits then stands",
    "people dancing",
    "Caption A",
    "speeding up",
    "fast",
]
TEXTS = ["slow", "fast", "left", "right", "normal speed", "clockwise", "counter-clockwise", "up", "down", "A man"]


def make_rows(rng: random.Random, tt: str, n: int) -> list[dict]:
    out = []
    for _ in range(n):
        vid = f"{rng.randint(1000, 9999)}{rng.choice(['', '_reverse'])}"
        dim = rng.choice(DIMENSIONS)
        if tt == "multi-choice":
            opts = rng.sample(TEXTS, rng.randint(2, 4))
            k = rng.randrange(len(opts))
            q = "What is happening?\n" + "\n".join(f"{'ABCD'[j]}. {o}" for j, o in enumerate(opts))
            out.append({"video_id": vid, "question": q, "answer": f"{'ABCD'[k]}. {opts[k]}", "dim": dim})
        elif tt == "yes_no":
            out.append(
                {
                    "video_id": vid,
                    "question": f"Is the car moving {rng.choice(TEXTS)}?",
                    "answer": rng.choice(["yes", "no"]),
                    "dim": dim,
                }
            )
        elif tt == "caption_matching":
            style = rng.choice(["Caption", "Sentence", "Option"])
            sents = rng.sample(SENTS, 2)
            labels = [f"{style} {x}" for x in (["1", "2"] if style == "Option" else ["A", "B"])]
            lines = [f"{lab}: {s}" for lab, s in zip(labels, sents)]
            out.append(
                {
                    "video_id": vid,
                    "question": "Which caption matches the video better?\n" + "\n".join(lines),
                    "answer": rng.choice(lines),
                    "dim": dim,
                }
            )
        else:
            opts = rng.sample(TEXTS, 3)
            k = rng.randrange(3)
            mcq = "What is the speed?\n" + "\n".join(f"{'ABC'[j]}. {o}" for j, o in enumerate(opts))
            out.append(
                {
                    "video_id": vid,
                    "question": "Describe the video in detail.\nGenerated Caption:",
                    "answer": opts[k],
                    "dim": dim,
                    "mc_question": mcq,
                    "mc_answer": f"{'ABC'[k]}. {opts[k]}",
                }
            )
    return out


def awkward(rng: random.Random, row: dict, p_focus: float = 0.6) -> str:
    q, a = row["raw_question"], row["answer"]
    lines = q.split("\n")[1:]
    line = rng.choice(lines) if lines else a
    letter = rng.choice("ABCDE")
    pool = [
        a,
        a + ".",
        a.lower(),
        " " + a,
        letter,
        letter.lower(),
        f"{letter}.",
        f"{letter})",
        f"({letter})",
        f"{letter}. {rng.choice(TEXTS)}",
        f"{letter}) x",
        f"The answer is {letter}",
        f"Answer: {letter}",
        line,
        line + ".",
        line.split(": ")[-1],
        line.split(": ")[0],
        line.split(": ")[0].split()[-1],
        f"({letter}) {line.split(': ')[-1]}",
        f"{line.split(': ')[0]}.",
        f"{line.split(': ')[0].split()[-1]}.",
        "1",
        "2",
        "Option 1",
        "Caption B",
        "Sentence A",
        "yes",
        "Yes.",
        "YES, it is",
        "no",
        "No.",
        "no, it is not",
        "Not sure.",
        "nothing moves",
        "I don't know",
        "A man is walking",
        "",
        " ",
        "\n",
        "\n\n",
        "\t",
        f"{a}\n\nBecause...",
        f"\n{letter}",
        f"{letter}\nexplanation",
        "B or C",
        "Ｂ",
        "答案是A",
        "None",
        "NA",
        "ramble " * 50,
        f"{letter} " + "long " * 30,
        "fast",
        "slow",
        "The car moves left",
        rng.choice(SENTS),
    ]
    tt = row["task_type"]
    if rng.random() < p_focus and tt != "captioning":  # shaped for the task type's own rules
        right = a[0] if tt == "multi-choice" else a
        if tt == "multi-choice":
            hits = [a, right, f"{right}.", f"{right})", f"{right}. x"]
            near = [letter, f"{letter}.", f"{letter})", f"{right}:", f"({right})", a.split(". ", 1)[-1]]
        elif tt == "yes_no":
            hits = [a, a.capitalize(), f"{a}.", f"{a}, because"]
            near = ["yes", "no", "Yes", "No", "nope", "yeah", "Not sure"]
        else:
            lab, sent = a.split(": ")
            hits = [a, sent, lab, lab.split()[1], f"{lab}.", f"(x) {sent}", f"{lab.split()[1]}."]
            near = [line, line.split(": ")[1], line.split(": ")[0].split()[1]]
        pool = hits if rng.random() < p_focus else near
    s = rng.choice(pool)
    if rng.random() < 0.1:
        s = rng.choice([" ", "\n", "  "]) + s + rng.choice(["", " ", "\n"])
    return s


@pytest.fixture(scope="module")
def lmms():
    return task_module("tempcompass")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("tempcompass_hf")
    rng = random.Random(14)
    (root / "videos").mkdir()
    for tt in TASK_TYPES:
        rows = make_rows(rng, tt, N_PER_TYPE)
        (root / tt).mkdir()
        pq.write_table(pa.Table.from_pylist(rows), root / tt / "test-00000-of-00001.parquet")
        for r in rows:
            (root / "videos" / f"{r['video_id']}.mp4").write_bytes(b"")
    return root


@pytest.fixture
def offline_judge(lmms, monkeypatch):
    """OpenAI's answer to a request without a valid key; lmms-eval's retry sleeps skipped."""
    calls = {"n": 0}

    class Response:
        status_code = 401
        content = json.dumps(
            {
                "error": {
                    "message": "Incorrect API key provided: YOUR_API_KEY.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            }
        ).encode()

    def post(*args, **kwargs):
        calls["n"] += 1
        return Response()

    monkeypatch.setattr(lmms.requests, "post", post)
    monkeypatch.setattr(lmms.time, "sleep", lambda s: None)
    monkeypatch.setattr(lmms, "print", lambda *a, **k: None, raising=False)  # its retry messages
    return calls


PROCESS = {
    "multi-choice": "tempcompass_process_results_multi_choice",
    "yes_no": "tempcompass_process_results_yes_no",
    "caption_matching": "tempcompass_process_results_caption_matching",
    "captioning": "tempcompass_process_results_captioning",
}
TO_TEXT = {
    "multi-choice": "tempcompass_doc_to_text_multi_choice",
    "yes_no": "tempcompass_doc_to_text_yes_no",
    "caption_matching": "tempcompass_doc_to_text_caption_matching",
    "captioning": "tempcompass_doc_to_text_captioning",
}


def doc_of(item) -> dict:
    doc = {"video_id": item["video_id"], "question": item["raw_question"], "answer": item["answer"], "dim": item["dim"]}
    if item["task_type"] == "captioning":
        doc.update(mc_question=item["mc_question"], mc_answer=item["mc_answer"])
    return doc


def test_prompts_and_paths_equal_lmms_eval(lmms, dataset, monkeypatch):
    bench = get_benchmark("tempcompass", "lmms_eval")
    items = bench.load(str(dataset), task_types=TASK_TYPES)
    assert len(items) == 4 * N_PER_TYPE
    monkeypatch.setattr(lmms, "cache_dir", str(dataset / "videos"))
    for item in items:
        tt = item["task_type"]
        cfg = task_yaml(YAML_OF[tt])
        assert cfg["dataset_name"] == tt and "generation_kwargs" not in cfg
        kwargs = cfg["lmms_eval_specific_kwargs"]["default"]
        doc = doc_of(item)
        assert item["question"] == getattr(lmms, TO_TEXT[tt])(doc, kwargs), item["id"]
        assert item["media_path"] == lmms.tempcompass_doc_to_visual(doc)[0]
        assert lmms.tempcompass_doc_to_answer(doc) == item["answer"]
    group = yaml.load((_tasks_dir() / "tempcompass" / "_tempcompass.yaml").read_text(), Loader=_FnLoader)
    assert [task_yaml(YAML_OF[t])["task"] for t in TASK_TYPES] == group["task"]


def test_every_row_and_aggregate_agrees_with_lmms_eval(lmms, dataset, offline_judge):
    bench = get_benchmark("tempcompass", "lmms_eval")
    items = bench.load(str(dataset), task_types=TASK_TYPES)
    rng = random.Random(1414)
    n_rows, mc = 0, []
    for p_focus in ROUNDS:
        rows = [dict(it, prediction=awkward(rng, it, p_focus), error="") for it in items]
        theirs, asked = [], []
        for r in rows:
            before = offline_judge["n"]
            theirs.append(getattr(lmms, PROCESS[r["task_type"]])(doc_of(r), [lmms_eval_output(r["prediction"])]))
            asked.append(offline_judge["n"] > before)
        ours = [bench.judge(r) for r in rows]
        bad = [
            (r["task_type"], r["prediction"], r["answer"], t["avg_accuracy"]["rating"], o)
            for r, t, o, a in zip(rows, theirs, ours, asked)
            if (t["avg_accuracy"]["rating"] == 1) != o["correct"] or a != bool(o.get("needs_judge"))
        ]
        assert not bad, f"{len(bad)} of {len(rows)} rows disagree, e.g. {bad[:5]}"

        scores = bench.score(rows)
        assert scores["rows_needing_judge"] == sum(asked) > 100
        for tt in TASK_TYPES:
            sub = [t for r, t in zip(rows, theirs) if r["task_type"] == tt]
            metrics = {}
            for res in sub:
                for key, value in res.items():
                    metrics.setdefault(key, []).append(value)
            declared = [m["metric"] for m in task_yaml(YAML_OF[tt])["metric_list"]]
            assert set(metrics) <= set(declared)
            ours_keys = {k.split("/", 1)[1] for k in scores if k.startswith(tt + "/")}
            assert ours_keys == set(metrics), tt  # every field lmms-eval reports, no more
            for key, values in metrics.items():
                assert scores[f"{tt}/{key}"] == pytest.approx(
                    lmms.tempcompass_aggregate_rating(values, None), abs=1e-12
                )
        assert scores["overall"] == pytest.approx(sum(scores[f"{t}/avg_accuracy"] for t in TASK_TYPES) / 4)
        assert scores["captioning/avg_accuracy"] == 0  # judge-only upstream: -1 with no key
        n_rows += len(rows)
        mc.append(scores["multi-choice/avg_accuracy"])
    assert n_rows == 4800
    assert mc[0] < 20 < 60 < mc[-1], mc  # aggregates compared from low to high scores


def test_upstream_quirks_reproduced(lmms, dataset, offline_judge):
    bench = get_benchmark("tempcompass", "lmms_eval")
    items = bench.load(str(dataset), task_types=("yes_no", "multi-choice"))
    yn = next(i for i in items if i["task_type"] == "yes_no" and i["answer"] == "no")
    mc = next(i for i in items if i["task_type"] == "multi-choice")
    for item, pred in [
        (yn, "Not sure."),
        (yn, "nothing"),
        (mc, "E"),
        (mc, f"{mc['answer'][0]}.whatever"),
        (mc, " " + mc["answer"][0]),
        (mc, mc["answer"][0] + "\n\nbecause"),
    ]:
        t = getattr(lmms, PROCESS[item["task_type"]])(doc_of(item), [lmms_eval_output(pred)])["avg_accuracy"]
        assert (t["rating"] == 1) == bench.judge(dict(item, prediction=pred))["correct"], pred
    assert bench.judge(dict(yn, prediction="Not sure."))["correct"]  # startswith("no")
