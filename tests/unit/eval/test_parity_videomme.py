"""Video-MME under protocol lmms_eval, row for row against lmms-eval 0.7.3's own task code.

The same generated predictions go to lmms-eval's ``videomme_process_results`` + ``videomme_aggregate_results``
(docs = the very parquet rows our loader read, the HF layout lmms-eval reads) and to our judge + score. The
prompt is checked against ``videomme_doc_to_text`` / ``videomme_doc_to_text_subtitle`` with the task YAMLs'
default ``lmms_eval_specific_kwargs`` (read with yaml, ``!function`` lines dropped as lmms-eval's utils do).
"""

import random
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[2]))
from reference.lmms_eval_ref import task_module  # noqa: E402
from videosft.benchmarks import get_benchmark  # noqa: E402
from videosft.benchmarks import videomme as V  # noqa: E402

m = task_module("videomme")
TASK_DIR = Path(m.__file__).parent
N_ROWS = 3000


def _yaml(name):
    text = "".join(line for line in (TASK_DIR / name).read_text().splitlines(True) if "!function" not in line)
    cfg = yaml.safe_load(text)
    if "include" in cfg:  # resolve by hand, as lmms-eval's task loader would
        base = _yaml(cfg.pop("include"))
        base.update(cfg)
        cfg = base
    return cfg


def _doc(rng, i):
    vid = f"v{i // 3:04d}"
    opts = [
        f"{L}. {rng.choice(['a man walking', 'two dogs', 'red car', 'None', 'B and C', '3', 'Café'])} {i}"
        for L in "ABCD"
    ]
    return {
        "video_id": f"{i // 3:03d}",
        "duration": rng.choice(V.DURATIONS),
        "domain": rng.choice(V.CATEGORIES),
        "sub_category": rng.choice(V.SUB_CATEGORIES),
        "url": f"https://www.youtube.com/watch?v={vid}",
        "videoID": vid,
        "question_id": f"{i // 3:03d}-{i % 3 + 1}",
        "task_type": rng.choice(V.TASK_CATEGORIES),
        "question": rng.choice(["What is shown?", " Leading space?", "Trailing space? ", "Which one?\nSecond line"]),
        "options": opts,
        "answer": rng.choice("ABCD"),
    }


def _pred(rng, doc):
    L = rng.choice("ABCDEFGH")
    text = doc["options"][rng.randrange(4)]
    pool = [
        L,
        f"{L}.",
        f"({L}) dog",
        f"The answer is {L}",
        L.lower(),
        "Not sure.",
        "A man is walking in the park.",
        "",
        " ",
        "\n\t",
        f"{L} or {rng.choice('ABCD')}",
        text,
        text[3:],
        f"Answer: {L}",
        f"answer: {L}.",
        f"The best answer is {L}.",
        f"I think it's {L}, but maybe {rng.choice('ABCD')}.",
        f"**{L}**",
        f"{L})",
        f"{L}: {text[3:]}",
        f"Option {L}",
        f"The correct option is ({L}).",
        f"选{L}",
        f"答案是{L}",
        "Ünïcødé ✓ 答案",
        f"Based on the video, {L}",
        "Best answer: " + L,
        "I cannot determine this from the video. " * rng.randint(1, 30),
        f"{rng.randint(0, 99)}",
        f"\n{L}\n",
        f"{L}\n\nBecause " + "blah " * rng.randint(0, 200),
        "Let me think step by step. First, A is wrong. Then B... So the answer is " + L,
        "'" + L + "'",
        f'"{L}"',
        f"{L}!",
        f"The answer is: {L}",
        "Z",
        "None of the above",
        "ABCD",
    ]
    s = rng.choice(pool)
    if rng.random() < 0.2:
        s = rng.choice(["", " ", "\n"]) + s + rng.choice(["", ".", " ", "\n", "!"])
    return s


@pytest.fixture(scope="module")
def generated(tmp_path_factory, request):
    rng = random.Random(20260114)
    root = tmp_path_factory.mktemp("vmme")
    docs = [_doc(rng, i) for i in range(N_ROWS)]
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "videomme").mkdir()
    pq.write_table(pa.Table.from_pylist(docs), root / "videomme" / "test-00000-of-00001.parquet")
    (root / "data").mkdir()
    for d in docs:
        (root / "data" / f"{d['videoID']}.mp4").touch()
    items = get_benchmark("videomme", "lmms_eval").load(str(root))
    preds = [_pred(rng, d) for d in docs]
    return docs, items, preds


def test_prompt_equals_doc_to_text_default_kwargs(generated):
    docs, items, _ = generated
    kwargs = _yaml("videomme.yaml")["lmms_eval_specific_kwargs"]["default"]
    assert len(items) == len(docs)
    for doc, it in zip(docs, items):
        assert it["question"] == m.videomme_doc_to_text(doc, kwargs)
        assert it["answer"] == m.videomme_process_results(doc, [it["answer"]])["videomme_perception_score"]["answer"]
    assert _yaml("videomme.yaml")["generation_kwargs"]["max_new_tokens"] == get_benchmark("videomme").max_new_tokens


def test_rows_and_aggregate_agree_with_lmms_eval(generated, monkeypatch):
    docs, items, preds = generated
    bench = get_benchmark("videomme", "lmms_eval")
    results = [m.videomme_process_results(d, [p])["videomme_perception_score"] for d, p in zip(docs, preds)]
    rows = [dict(it, prediction=p, error="") for it, p in zip(items, preds)]
    verdicts = [bench.judge(r) for r in rows]
    agree = sum(
        (v["extracted"] or "") == res["pred_answer"] and v["correct"] == bool(res["score"])
        for v, res in zip(verdicts, results)
    )
    assert agree == len(rows) == N_ROWS
    assert sum(v["correct"] for v in verdicts) not in (0, N_ROWS)  # the generator exercises both outcomes

    logged = []
    monkeypatch.setattr(m, "eval_logger", type("L", (), {"info": staticmethod(logged.append)}))
    upstream = m.videomme_aggregate_results(results)
    ours = bench.score(rows)
    assert ours["overall"] == upstream == ours["videomme_perception_score"]
    # every logged number, in its own format
    expect = [f"Evaluation on video Type: {d}: {ours[f'duration/{d}']: .1f}%" for d in V.DURATIONS]
    expect += [f"Evaluation on Categories: {c}: {ours[f'domain/{c}']: .1f}%" for c in V.CATEGORIES]
    expect += [f"Evaluation on Video Sub Categories: {s}: {ours[f'sub_category/{s}']: .1f}%" for s in V.SUB_CATEGORIES]
    expect += [f"Evaluation on Task Categories: {t}: {ours[f'task_type/{t}']: .1f}%" for t in V.TASK_CATEGORIES]
    expect += [f"Overall Performance: {ours['overall']: .1f}%"]
    assert logged == expect


def test_subsets_of_rows_aggregate_identically(generated):
    docs, items, preds = generated
    bench = get_benchmark("videomme", "lmms_eval")
    rng = random.Random(7)
    for _ in range(20):
        idx = rng.sample(range(N_ROWS), rng.randint(1, 200))
        res = [m.videomme_process_results(docs[i], [preds[i]])["videomme_perception_score"] for i in idx]
        assert bench.score([dict(items[i], prediction=preds[i], error="") for i in idx])[
            "overall"
        ] == m.videomme_aggregate_results(res)


def test_extractor_agrees_on_more_strings():
    from videosft.benchmarks.lmms_eval_rules import extract_mcq_answer

    rng = random.Random(3)
    alphabet = "ABCDEFGHabcd .():;,!?'\"\n*-答案是选 the answer is option"
    for _ in range(20000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
        assert extract_mcq_answer(s, ["A", "B", "C", "D"]) == m.extract_characters_regex(s), repr(s)


# ---------------------------------------------------------------- subtitles (videomme_w_subtitle)


def _write_video(path, n_frames, fps):
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (16, 16))
    for _ in range(n_frames):
        w.write(np.zeros((16, 16, 3), np.uint8))
    w.release()


def _srt(cues):
    def t(x):
        ms = int(round(x * 1000))
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return "\n\n".join(f"{i + 1}\n{t(s)} --> {t(e)}\n{text}" for i, (s, e, text) in enumerate(cues)) + "\n"


def test_subtitle_prompt_equals_doc_to_text_subtitle(tmp_path, monkeypatch, write_parquet):
    # lmms-eval reads <HF_HOME>/videomme/{data,subtitle}; our root is that videomme folder.
    root = tmp_path / "videomme"
    monkeypatch.setattr(m, "base_cache_dir", str(tmp_path))
    rng = random.Random(11)
    docs = []
    for i, (n, fps) in enumerate([(300, 10), (90, 30), (47, 25), (200, 24), (64, 8)]):
        d = _doc(rng, i * 3)
        d["videoID"] = f"sub{i}"
        docs.append(d)
        (root / "data").mkdir(parents=True, exist_ok=True)
        _write_video(root / "data" / f"sub{i}.mp4", n, fps)
        dur = n / fps
        cues, t = [], 0.0
        while t < dur + 2:
            span = rng.uniform(0.2, 3.0)
            body = rng.choice(
                [
                    '<font color="white" size=".72c">line {k}</font>',
                    "plain {k}",
                    '<font color="white" size=".72c">two\nrows {k}</font>',
                    "<i>x {k}</i>",
                ]
            )
            cues.append((t, t + span, body.format(k=len(cues))))
            t += span + rng.choice([0.0, 0.1, 1.5])
        if i == 2:
            cues.append(cues[0])  # a repeated time range: lmms-eval's dict keeps one
        if i != 4:  # sub4 has no subtitle file: "No subtitles available"
            (root / "subtitle").mkdir(exist_ok=True)
            (root / "subtitle" / f"sub{i}.srt").write_text(_srt(cues))
    write_parquet(root / "videomme" / "test-00000-of-00001.parquet", docs)
    kwargs = _yaml("videomme_w_subtitle.yaml")["lmms_eval_specific_kwargs"]["default"]
    items = get_benchmark("videomme", "lmms_eval").load(str(root), subtitles=True)
    assert [it["question"] for it in items] == [m.videomme_doc_to_text_subtitle(d, kwargs) for d in docs]
    assert "No subtitles available" in items[4]["question"]
    assert all(re.search(r"below: \n(line|two rows) \d+\n", it["question"]) for it in items[:4])
    assert all("plain" not in it["question"] and "<font" not in it["question"] for it in items)
    for n in (1, 8, 64, -1):  # other frame budgets
        items = get_benchmark("videomme", "lmms_eval").load(str(root), subtitles=True, frame_num=n)
        assert [it["question"] for it in items] == [
            m.videomme_doc_to_text_subtitle(d, dict(kwargs, frame_num=n)) for d in docs
        ]
    assert re.search("This video's subtitles are listed below: \n", items[0]["question"])


@pytest.mark.parametrize("plain", [0.0, 0.5, 0.95])
def test_aggregates_agree_from_low_to_high_scores(generated, monkeypatch, plain):
    """Mostly-plain mixes (the right letter in a usual form) push the score up; every logged number agrees."""
    docs, items, _ = generated
    rng = random.Random(int(plain * 100))
    preds = [
        rng.choice(
            [d["answer"], f"The answer is {d['answer']}.", f"({d['answer']})", d["options"][ord(d["answer"]) - 65]]
        )
        if rng.random() < plain
        else _pred(rng, d)
        for d in docs
    ]
    logged = []
    monkeypatch.setattr(m, "eval_logger", type("L", (), {"info": staticmethod(logged.append)}))
    upstream = m.videomme_aggregate_results(
        [m.videomme_process_results(d, [p])["videomme_perception_score"] for d, p in zip(docs, preds)]
    )
    ours = get_benchmark("videomme").score([dict(it, prediction=p, error="") for it, p in zip(items, preds)])
    assert ours["overall"] == upstream
    assert logged[-1] == f"Overall Performance: {upstream: .1f}%"
    assert [line.rsplit(": ", 1)[1] for line in logged[:3]] == [f"{ours[f'duration/{d}']: .1f}%" for d in V.DURATIONS]
    assert (plain < 0.5) == (upstream < 50)
