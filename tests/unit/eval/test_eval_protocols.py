"""The protocol seam in the runner: per-benchmark generation length, run keys, scores naming the protocol."""

import json

import pytest

from videosft.benchmarks import BENCHMARKS, get_benchmark
from videosft.benchmarks.protocols import PROTOCOLS, get_protocol
from videosft.config import ConfigError, ExperimentConfig
from videosft.eval import predictions as P
from videosft.eval.runner import evaluate_model, local_predictor

BENCHES = ["synthetic_image", "synthetic_video"]


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    for media, n in (("image", 5), ("video", 4)):
        tag = "<video>" if media == "video" else "<image>"
        rows = [
            {
                "id": f"{media[0]}{i}",
                media: f"{media}s/clip{i}.mp4",
                "conversations": [{"from": "human", "value": f"{tag}\nWhich colour?"}, {"from": "gpt", "value": "red"}],
                "task": "colour",
                "min_frames": 1,
                "options": ["red", "blue"],
            }
            for i in range(n)
        ]
        (root / f"eval_{media}.json").write_text(json.dumps(rows))
    return root


class LengthEngine:
    """Records the generation length each row asks for; answers "red"."""

    def __init__(self):
        self.lengths = []

    def generate(self, rows):
        self.lengths += [r.get("max_new_tokens") for r in rows]
        return ["red"] * len(rows)


def _cfg(*overrides):
    return ExperimentConfig().with_overrides(["eval.bootstrap_resamples=0", *overrides])


def test_rows_carry_their_benchmarks_length_and_scores_name_the_protocol(tmp_path, data_root):
    engine = LengthEngine()
    scores = evaluate_model(_cfg(), "/ckpt/a", 4, tmp_path, str(data_root), BENCHES, local_predictor(engine, 3))
    assert engine.lengths == [4] * 9  # the synthetic benchmarks' own length (no eval.max_new_tokens)
    for name in BENCHES:
        s = scores[name]
        assert (s["protocol"], s["protocol_version"], s["max_new_tokens"]) == ("videosft", "1", 4)
        assert s["rows_needing_judge"] == 0
        row = json.loads(P.predictions_path(tmp_path, name).read_text().splitlines()[0])
        assert (row["protocol"], row["protocol_version"]) == ("videosft", "1")


def test_explicit_max_new_tokens_overrides_and_invalidates_old_predictions(tmp_path, data_root):
    first, second = LengthEngine(), LengthEngine()
    evaluate_model(_cfg(), "/ckpt/a", 4, tmp_path, str(data_root), BENCHES, local_predictor(first, 3))
    evaluate_model(
        _cfg("eval.max_new_tokens=32"), "/ckpt/a", 4, tmp_path, str(data_root), BENCHES, local_predictor(second, 3)
    )
    assert second.lengths == [32] * 9  # another length is another run: nothing reused


def test_every_real_benchmark_has_both_protocols_with_their_versions():
    for name in BENCHMARKS:
        for protocol in PROTOCOLS:
            bench = get_benchmark(name, protocol)
            assert bench.name == name and bench.max_new_tokens >= 1
            assert bench.protocol == ("videosft" if name.startswith("synthetic_") else protocol)
            get_protocol(bench.protocol)
    with pytest.raises(ValueError, match="eval.protocol: unknown protocol 'helm'"):
        get_benchmark("mme", "helm")


def test_benchmark_options_are_checked_at_config_load():
    with pytest.raises(ConfigError, match="eval.benchmark_options: unknown benchmark 'nope'"):
        _cfg("eval.benchmark_options={nope: {x: 1}}")
    with pytest.raises(ConfigError, match=r"eval.benchmark_options.synthetic_image: unknown option\(s\) \['layout'\]"):
        _cfg("eval.benchmark_options={synthetic_image: {layout: hf}}")
    with pytest.raises(ConfigError, match="eval.protocol"):
        _cfg("eval.protocol=helm")


def test_loader_options_are_part_of_the_run_key():
    from videosft.eval.runner import benchmark_key

    cfg = _cfg()
    other = _cfg("eval.benchmark_options={mmbench: {lang: cn}}")
    plain, cn = benchmark_key(cfg, "mmbench", "/ckpt/a", 4), benchmark_key(other, "mmbench", "/ckpt/a", 4)
    assert plain["options_id"] == "" and cn["options_id"] != ""
    assert {k: v for k, v in plain.items() if k != "options_id"} == {k: v for k, v in cn.items() if k != "options_id"}
    assert (plain["protocol"], plain["protocol_version"], plain["max_new_tokens"]) == ("lmms_eval", "0.7.3", 1024)


def test_an_items_own_length_reaches_the_engine(tmp_path, data_root, monkeypatch):
    """A loader may give an item its own length (MMBench cn/cc: 256 where en is 1024)."""
    import dataclasses

    from videosft.benchmarks import synthetic

    items = [{**it, "max_new_tokens": 7} for it in synthetic.SYNTHETIC_IMAGE.load(str(data_root))]
    monkeypatch.setattr(
        synthetic, "SYNTHETIC_IMAGE", dataclasses.replace(synthetic.SYNTHETIC_IMAGE, load=lambda root, **_: items)
    )
    engine = LengthEngine()
    evaluate_model(_cfg(), "/ckpt/a", 4, tmp_path, str(data_root), ["synthetic_image"], local_predictor(engine, 3))
    assert engine.lengths == [7] * 5


def test_hybrid_predictions_are_keyed_by_their_predictor():
    """Two Hybrid-Frame evaluations with different predictors must not reuse each other's rows."""
    from videosft.eval.runner import benchmark_key

    oracle = benchmark_key(_cfg("budget.predictor=oracle"), "synthetic_video", "/ckpt/a", "hybrid")
    similar = benchmark_key(_cfg("budget.predictor=similarity"), "synthetic_video", "/ckpt/a", "hybrid")
    fixed = benchmark_key(_cfg("budget.predictor=similarity"), "synthetic_video", "/ckpt/a", 4)
    assert oracle["options_id"] != similar["options_id"] and fixed["options_id"] == ""
