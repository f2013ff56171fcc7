"""Resumable evaluation: a killed run keeps its rows, a re-run sends only the missing samples.

The engine is a fake with the real seam (`generate(rows) -> list[str]`) that counts what it is sent;
the predictor is the runner's in-process one (no Ray, no decode), so every call is visible here.
"""

import json

import pytest

from videosft.config import ExperimentConfig
from videosft.eval import predictions as P
from videosft.eval.runner import evaluate_model, local_predictor

BENCHES = ["synthetic_image", "synthetic_video"]


def _split(n, media, clusters):
    tag = "<video>" if media == "video" else "<image>"
    return [
        {
            "id": f"{media[0]}{i}",
            media: f"{media}s/clip{i % clusters}.mp4",
            "conversations": [
                {"from": "human", "value": f"{tag}\nWhich colour, {i}?"},
                {"from": "gpt", "value": "red" if i % 3 else "blue"},
            ],
            "task": "colour",
            "min_frames": 1 + i % 2,
            "options": ["red", "blue"],
        }
        for i in range(n)
    ]


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "eval_image.json").write_text(json.dumps(_split(7, "image", 4)))
    (root / "eval_video.json").write_text(json.dumps(_split(9, "video", 3)))
    return root


class Killed(BaseException):
    """Stands in for SIGKILL/KeyboardInterrupt: not an Exception, so nothing may swallow it."""


class CountingEngine:
    """Answers "red" except for every 4th question; raises (a kill) on call number `die_at`."""

    def __init__(self, die_at=None):
        self.seen, self.calls, self.die_at = [], 0, die_at

    def generate(self, rows):
        self.calls += 1
        if self.die_at is not None and self.calls >= self.die_at:
            raise Killed("killed mid-evaluation")
        self.seen += [r["id"] for r in rows]
        return ["blue" if int(r["id"].rsplit("::", 1)[1][1:]) % 4 == 0 else "red" for r in rows]


def _cfg(**eval_overrides):
    ov = [f"eval.{k}={v}" for k, v in {"bootstrap_resamples": 200, **eval_overrides}.items()]
    return ExperimentConfig().with_overrides(ov)


def _run(cfg, out, root, engine, model="/ckpt/a", budget=4):
    return evaluate_model(cfg, model, budget, out, str(root), BENCHES, predictor=local_predictor(engine, 2))


def _lines(path):
    return path.read_text().splitlines()


def test_killed_run_resumes_without_resending_finished_samples(tmp_path, data_root):
    cfg = _cfg()
    killed = CountingEngine(die_at=4)  # three blocks of two finish, the fourth call dies
    with pytest.raises(Killed):
        _run(cfg, tmp_path / "out", data_root, killed)
    finished = [json.loads(x)["id"] for x in _lines(P.predictions_path(tmp_path / "out", "synthetic_image"))]
    assert len(finished) == 6 and len(killed.seen) == 6  # every finished block was flushed

    again = CountingEngine()
    scores = _run(cfg, tmp_path / "out", data_root, again)
    assert not {s.split("::", 1)[1] for s in again.seen} & set(finished)
    assert len(again.seen) == 16 - 6
    assert scores["synthetic_image"]["resumed"] == 6 and scores["synthetic_video"]["resumed"] == 0
    assert scores["synthetic_image"]["predicted"] + scores["synthetic_video"]["predicted"] == 10

    fresh = _run(cfg, tmp_path / "fresh", data_root, CountingEngine())
    for name in BENCHES:  # resumed == uninterrupted, CI included; files hold one row per sample
        strip = lambda s: {k: v for k, v in s.items() if k not in ("resumed", "predicted")}  # noqa: E731
        assert strip(scores[name]) == strip(fresh[name])
        resumed_file, fresh_file = (P.predictions_path(tmp_path / d, name) for d in ("out", "fresh"))
        assert _lines(resumed_file) == _lines(fresh_file)

    third = CountingEngine()
    _run(cfg, tmp_path / "out", data_root, third)
    assert third.seen == []  # nothing left to do


def test_truncated_last_line_is_dropped_and_recomputed(tmp_path, data_root):
    cfg = _cfg()
    _run(cfg, tmp_path / "out", data_root, CountingEngine())
    path = P.predictions_path(tmp_path / "out", "synthetic_video")
    lines = _lines(path)
    path.write_text("\n".join(lines[:5]) + "\n" + lines[5][: len(lines[5]) // 2])  # a write cut by a kill
    lost = {json.loads(x)["id"] for x in lines[5:]}

    again = CountingEngine()
    scores = _run(cfg, tmp_path / "out", data_root, again)
    assert {s.split("::", 1)[1] for s in again.seen} == lost
    assert scores["synthetic_video"]["resumed"] == 5
    rows = [json.loads(x) for x in _lines(path)]  # every line parses again, one per sample
    assert len(rows) == 9 and len({r["id"] for r in rows}) == 9


def test_rows_of_another_run_or_with_errors_are_recomputed(tmp_path, data_root):
    cfg = _cfg()
    _run(cfg, tmp_path / "out", data_root, CountingEngine())
    other = CountingEngine()  # another checkpoint: nothing carries over
    _run(cfg, tmp_path / "out", data_root, other, model="/ckpt/b")
    assert len(other.seen) == 16
    other_budget = CountingEngine()  # another frame budget (other frames): nothing carries over
    _run(cfg, tmp_path / "out", data_root, other_budget, model="/ckpt/b", budget=8)
    assert len(other_budget.seen) == 16

    path = P.predictions_path(tmp_path / "out", "synthetic_image")
    rows = [json.loads(x) for x in _lines(path)]
    rows[2]["error"] = "decode: timeout"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    retry = CountingEngine()
    _run(cfg, tmp_path / "out", data_root, retry, model="/ckpt/b", budget=8)
    assert [s.split("::", 1)[1] for s in retry.seen] == [rows[2]["id"]]


def test_scores_record_contract_budget_and_a_deterministic_clustered_ci(tmp_path, data_root):
    cfg = _cfg()
    a = _run(cfg, tmp_path / "a", data_root, CountingEngine())
    b = _run(cfg, tmp_path / "b", data_root, CountingEngine())
    for name, clusters in (("synthetic_image", 4), ("synthetic_video", 3)):
        s = json.loads((tmp_path / "a" / f"{name}.scores.json").read_text())
        assert s == a[name]
        ci = s["ci"]
        assert ci == b[name]["ci"]  # seeded: the same interval every run
        assert {"low", "high", "level", "n_clusters", "resamples"} <= set(ci)
        assert ci["level"] == 0.95 and ci["resamples"] == 200 and ci["n_clusters"] == clusters
        assert ci["low"] <= s["overall"] <= ci["high"]
        assert s["contract_id"] == cfg.sampling.contract_id() and s["frame_budget"] == 4
        assert s["sampling"]["mode"] == cfg.sampling.mode
    c = _run(cfg.with_overrides(["seed=1"]), tmp_path / "c", data_root, CountingEngine())
    assert c["synthetic_video"]["ci"]["seed"] == 1


def test_eval_frame_budget_is_the_one_recorded(tmp_path, data_root):
    scores = _run(_cfg(frame_budget=2), tmp_path / "out", data_root, CountingEngine(), budget=8)
    assert scores["synthetic_image"]["frame_budget"] == 2


def test_ci_can_be_turned_off(tmp_path, data_root):
    scores = _run(_cfg(bootstrap_resamples=0), tmp_path / "out", data_root, CountingEngine())
    assert scores["synthetic_video"]["ci"] is None


def test_read_rows_tolerates_garbage(tmp_path):
    path = tmp_path / "x.predictions.jsonl"
    path.write_text('{"id": "a", "prediction": "x"}\nnot json\n[1, 2]\n\n{"id": "b"')
    rows, bad = P.read_rows(path)
    assert [r["id"] for r in rows] == ["a"] and bad == 3
    assert P.read_rows(tmp_path / "missing.jsonl") == ([], 0)


def test_run_key_fingerprints_local_checkpoints(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"one")
    k1 = P.run_key(str(ckpt), "c", 4, 8)
    (ckpt / "model.safetensors").write_bytes(b"two!")  # retrained into the same directory
    k2 = P.run_key(str(ckpt), "c", 4, 8)
    assert k1["checkpoint"] == k2["checkpoint"] == str(ckpt) and k1 != k2
    assert P.run_key("s3://bucket/ckpt", "c", 4, 8)["checkpoint_fingerprint"] == ""
    assert P.run_key("Qwen/Qwen2.5-VL-7B-Instruct", "c", None, 8)["checkpoint"] == "Qwen/Qwen2.5-VL-7B-Instruct"


def test_predictions_rows_carry_raw_output_extracted_answer_and_correctness(tmp_path, data_root):
    cfg = _cfg(bootstrap_resamples=0)
    killed = CountingEngine(die_at=2)  # rows appended mid-run hold the raw output only
    with pytest.raises(Killed):
        _run(cfg, tmp_path / "killed", data_root, killed)
    appended = [json.loads(x) for x in _lines(P.predictions_path(tmp_path / "killed", "synthetic_image"))]
    assert appended and all("extracted" not in r and "correct" not in r for r in appended)

    engine = CountingEngine()
    base = local_predictor(engine, 2)

    def predict(items):  # the engine answers in sentences; v4 fails to decode, v5 comes back empty
        for block in base(items):
            for p in block:
                if p["id"].endswith("::v4"):
                    p.update(prediction="", error="decode: timeout")
                elif p["id"].endswith("::v5"):
                    p["prediction"] = ""
                elif p["id"].endswith("::v7"):
                    p["prediction"] = "I cannot tell."
                else:
                    p["prediction"] = f"{p['prediction'].capitalize()}, I think."
            yield block

    scores = evaluate_model(cfg, "/ckpt/a", 4, tmp_path / "out", str(data_root), BENCHES, predictor=predict)
    for name in BENCHES:
        rows = [json.loads(x) for x in _lines(P.predictions_path(tmp_path / "out", name))]
        for r in rows:
            assert {"id", "answer", "prediction", "extracted", "correct", "error"} <= set(r)
            assert list(r)[:5] == ["id", "answer", "prediction", "extracted", "correct"]  # verdict beside the output
            assert isinstance(r["correct"], bool)
            if r["prediction"] and r["id"] != "v7":
                assert r["prediction"].endswith(", I think.")
                assert r["extracted"] == r["prediction"].split(",")[0].lower()
                assert r["correct"] == (r["extracted"] == r["answer"])
        assert scores[name]["overall"] == pytest.approx(100.0 * sum(r["correct"] for r in rows) / len(rows))
        assert scores[name]["rows_correct"] == sum(r["correct"] for r in rows)
    video = {r["id"]: r for r in map(json.loads, _lines(P.predictions_path(tmp_path / "out", "synthetic_video")))}
    assert video["v4"]["error"] and (video["v4"]["extracted"], video["v4"]["correct"]) == (None, False)
    assert (video["v5"]["prediction"], video["v5"]["extracted"], video["v5"]["correct"]) == ("", None, False)
    assert (video["v7"]["extracted"], video["v7"]["correct"]) == ("i", False)
    assert video["v1"]["correct"] and not video["v3"]["correct"]  # v3's answer is blue, the engine said red
    assert scores["synthetic_video"]["rows_unextracted"] == 2 and scores["synthetic_video"]["decode_errors"] == 1


def test_resumed_rows_are_judged_afresh(tmp_path, data_root):
    cfg = _cfg(bootstrap_resamples=0)
    _run(cfg, tmp_path / "out", data_root, CountingEngine())
    path = P.predictions_path(tmp_path / "out", "synthetic_image")
    rows = [json.loads(x) for x in _lines(path)]
    judged = [(r["extracted"], r["correct"]) for r in rows]
    path.write_text("".join(json.dumps({**r, "extracted": "bogus", "correct": not r["correct"]}) + "\n" for r in rows))
    again = CountingEngine()
    _run(cfg, tmp_path / "out", data_root, again)
    assert again.seen == []  # the rows were kept, not recomputed ...
    assert [(r["extracted"], r["correct"]) for r in map(json.loads, _lines(path))] == judged  # ... but re-judged


class BudgetEngine:
    """Answers by the frames a row was decoded at (so a wrong budget shows in the scores); records them.
    0: the contract's own number of frames."""

    def __init__(self):
        self.seen = []

    def generate(self, rows):
        self.seen += [(r["id"], r["decoded_at"]) for r in rows]
        return ["red" if r["decoded_at"] >= 4 else "blue" for r in rows]


def _decoding_pass(engine, passes):
    """Stands in for runner.ray_predictor: each row decoded at its own frame_budget, else the pass's
    (the DecodeStage's rule), counting passes (each would start a decode pool and an engine pool)."""

    def make(cfg, model_path, budget):
        passes.append(budget)
        return local_predictor(
            engine, 3, decode=lambda r: {**r, "decoded_at": int(r.get("frame_budget") or budget or 0)}
        )

    return make


def test_several_jobs_share_one_pass_and_score_as_separate_evaluations(tmp_path, data_root, monkeypatch):
    from videosft.eval import runner
    from videosft.eval.runner import EvalJob, evaluate_jobs

    cfg = _cfg()
    passes, engine = [], BudgetEngine()
    monkeypatch.setattr(runner, "ray_predictor", _decoding_pass(engine, passes))
    jobs = [EvalJob(tmp_path / "own", 4, tuple(BENCHES)), EvalJob(tmp_path / "fixed_1", 1, ("synthetic_video",))]
    both = evaluate_jobs(cfg, "/ckpt/a", jobs, str(data_root))
    assert passes == [4]  # one pass for both budgets
    videos = [(i, at) for i, at in engine.seen if "synthetic_video" in i]
    assert sorted(at for _, at in videos) == [1] * 9 + [4] * 9  # each job's rows at its own budget
    assert len([i for i, _ in engine.seen if "synthetic_image" in i]) == 7  # image rows only in the job asking

    alone = []
    for job in jobs:  # the same evaluations one pass each
        out = tmp_path / "alone" / job.out_dir.name
        alone.append(evaluate_model(cfg, "/ckpt/a", job.frame_budget, out, str(data_root), list(job.benchmarks)))
    assert passes == [4, 4, 1]
    assert both == alone  # every field of every benchmark's scores
    assert both[0]["synthetic_video"]["overall"] != both[1]["synthetic_video"]["overall"]  # the budgets did differ
    for job in jobs:
        for name in job.benchmarks:
            shared, _ = P.read_rows(P.predictions_path(job.out_dir, name))
            separate, _ = P.read_rows(P.predictions_path(tmp_path / "alone" / job.out_dir.name, name))
            assert shared == separate and len(shared) == (9 if name == "synthetic_video" else 7)

    again = evaluate_jobs(cfg, "/ckpt/a", jobs, str(data_root))  # all finished: no pass at all
    assert passes == [4, 4, 1]
    for job_again, job_both in zip(again, both):
        for name, scores in job_again.items():
            assert scores["resumed"] == scores["n_items"] and scores["predicted"] == 0
            drop = ("resumed", "predicted")
            assert {k: v for k, v in scores.items() if k not in drop} == {
                k: v for k, v in job_both[name].items() if k not in drop
            }


def test_jobs_at_the_contracts_own_budget_and_a_number_run_separately(tmp_path, data_root, monkeypatch):
    from videosft.eval import runner
    from videosft.eval.runner import EvalJob, evaluate_jobs

    passes, engine = [], BudgetEngine()
    monkeypatch.setattr(runner, "ray_predictor", _decoding_pass(engine, passes))
    jobs = [EvalJob(tmp_path / "a", None, ("synthetic_video",)), EvalJob(tmp_path / "b", 2, ("synthetic_video",))]
    evaluate_jobs(_cfg(), "/ckpt/a", jobs, str(data_root))
    assert passes == [None, 2]  # "the contract's own" is not a number a row can carry
    assert sorted(at for _, at in engine.seen) == [0] * 9 + [2] * 9
