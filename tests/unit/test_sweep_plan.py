"""Sweep planning without Ray: trial concurrency from cluster resources, config hashes that decide
what a resumed sweep may reuse, and the compute accounting written into each trial summary."""

import json
import struct

import pytest

from videosft.analysis.compute import count_params, human_params, trial_compute, visual_tokens_per_sample
from videosft.config import load_config
from videosft.tune.sweep import config_hash, derive_max_concurrent, finished_trial, trial_dir, trial_need


def test_ci_trials_fit_one_at_a_time_on_two_cpus():
    cfg = load_config(None, ["sweep.frame_budgets=[1, 2]"])
    # 2 workers x 0.5 CPU + one 0.5-CPU decoder while training; 1 actor + decoder while evaluating
    assert trial_need(cfg) == {"CPU": 1.5, "GPU": 0.0}
    assert derive_max_concurrent(cfg, {"CPU": 2.0}) == 1
    assert derive_max_concurrent(cfg, {"CPU": 16.0}) == 2  # never more than there are trials
    assert derive_max_concurrent(cfg, {}) == 1  # an empty autoscaling cluster still gets a trial


def test_a_pool_of_sweeps_is_bounded_by_all_its_trials_not_one_sweeps_budgets():
    """run_trial_pool plans over every pooled trial: 2 budgets per sweep, 10 trials in the pool."""
    overrides = ["train.num_workers=1", "eval.cpus_per_actor=0.5", "data.cpus_per_decoder=0.25"]
    cfg = load_config(None, ["sweep.frame_budgets=[1, 2]", *overrides])
    assert trial_need(cfg)["CPU"] == 0.75
    assert derive_max_concurrent(cfg, {"CPU": 16.0}) == 2  # one sweep: its two budgets
    assert derive_max_concurrent(cfg, {"CPU": 16.0}, n_trials=10) == 10
    assert derive_max_concurrent(cfg, {"CPU": 2.0}, n_trials=10) == 2  # the cores still bind
    capped = cfg.with_overrides(["sweep.max_concurrent_trials=3"])
    assert derive_max_concurrent(capped, {"CPU": 16.0}, n_trials=10) == 3


def test_gpu_trials_are_bounded_by_gpus_and_cpus():
    cfg = load_config(
        None,
        [
            "train.use_gpu=true",
            "train.num_workers=8",
            "sweep.frame_budgets=[2, 4, 8, 16, 32]",
            "eval.gpus_per_actor=1",
            "eval.num_actors=2",
        ],
    )
    assert trial_need(cfg)["GPU"] == 8
    assert derive_max_concurrent(cfg, {"CPU": 192.0, "GPU": 24.0}) == 3
    assert derive_max_concurrent(cfg, {"CPU": 8.0, "GPU": 24.0}) == 1  # 8 x 0.5 + 0.5 CPUs per trial bind first
    assert (
        derive_max_concurrent(
            cfg.model_copy(update={"sweep": cfg.sweep.model_copy(update={"max_concurrent_trials": 2})}), {"GPU": 64.0}
        )
        == 2
    )  # an explicit value wins


def test_config_hash_ignores_location_and_scheduling_only():
    cfg = load_config(None)
    same = load_config(None, ["output_dir=/elsewhere", "name=x", "sweep.max_concurrent_trials=4", "sweep.resume=false"])
    assert config_hash(cfg, with_sweep=True) == config_hash(same, with_sweep=True)
    grown = load_config(None, ["sweep.frame_budgets=[2, 4, 8, 16]"])
    assert config_hash(cfg, with_sweep=True) != config_hash(grown, with_sweep=True)
    assert config_hash(cfg, with_sweep=False) == config_hash(grown, with_sweep=False)  # its trials stay reusable
    assert config_hash(cfg, with_sweep=False) != config_hash(load_config(None, ["train.lr=1e-4"]), with_sweep=False)


def test_finished_trial_reused_only_under_the_same_config(tmp_path):
    cfg = load_config(None, [f"output_dir={tmp_path}"])
    assert finished_trial(cfg, 2) is None
    trial_dir(cfg, 2).mkdir(parents=True)
    summary = {"frame_budget": 2, "config_hash": config_hash(cfg, with_sweep=False)}
    (trial_dir(cfg, 2) / "summary.json").write_text(json.dumps(summary))
    assert finished_trial(cfg, 2) == summary
    assert finished_trial(cfg.with_overrides(["train.lr=1e-4"]), 2) is None
    assert finished_trial(cfg.with_overrides(["sweep.resume=false"]), 2) is None
    (trial_dir(cfg, 2) / "summary.json").write_text('{"frame_budget": 2, "conf')  # cut short by a crash
    assert finished_trial(cfg, 2) is None


def test_trial_compute_counts_reserved_device_hours_and_visual_tokens():
    history = [
        {"samples_per_s": 4.0, "visual_tokens_per_s": 400.0, "tokens_per_s": 600.0},
        {"samples_per_s": 2.0, "visual_tokens_per_s": 240.0, "tokens_per_s": 320.0},
    ]
    assert visual_tokens_per_sample(history) == pytest.approx(110.0)
    c = trial_compute(
        steps=100,
        micro_batch_size=4,
        grad_accum=2,
        num_workers=2,
        use_gpu=False,
        cpus_per_worker=0.5,
        train_wall_s=3600.0,
        eval_wall_s=1800.0,
        eval_devices=1.0,
        history=history,
    )
    assert c["unit"] == "CPU-h" and c["samples_seen"] == 1600
    assert c["train_device_hours"] == 1.0 and c["eval_device_hours"] == 0.5 and c["device_hours"] == 1.5
    assert c["visual_tokens_total"] == pytest.approx(176_000) and c["device_seconds_per_sample"] == 2.25
    g = trial_compute(
        steps=10,
        micro_batch_size=1,
        grad_accum=1,
        num_workers=8,
        use_gpu=True,
        cpus_per_worker=8,
        train_wall_s=1800.0,
        eval_wall_s=0.0,
        eval_devices=8,
        history=[],
    )
    assert g["unit"] == "GPU-h" and g["device_hours"] == 4.0 and g["visual_tokens_per_sample"] is None


def test_count_params_reads_safetensors_headers_only(tmp_path):
    for i, shapes in enumerate(({"a": [3, 4], "b": [5]}, {"c": [2, 2, 2]})):
        header = json.dumps(
            {
                "__metadata__": {"format": "pt"},
                **{k: {"dtype": "F32", "shape": v, "data_offsets": [0, 0]} for k, v in shapes.items()},
            }
        ).encode()
        (tmp_path / f"model-{i}.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    assert count_params(tmp_path) == 12 + 5 + 8
    assert count_params(tmp_path / "missing") is None and count_params("Qwen/Qwen2.5-VL-7B-Instruct") is None
    assert human_params(7_615_616_512) == "7.6B" and human_params(None) == "?"


def test_base_eval_key_ignores_scheduling_but_not_what_changes_scores():
    from videosft.config import from_dict
    from videosft.tune.sweep import base_eval_key
    from videosft.workspace import Inputs

    inputs = Inputs(model_path="/m", data_root="/d")
    key = base_eval_key(from_dict({}), inputs, 4)
    assert base_eval_key(from_dict({"eval": {"num_actors": 3, "batch_size": 2}}), inputs, 4) == key
    assert base_eval_key(from_dict({"eval": {"limit": 5}}), inputs, 4) != key
    assert base_eval_key(from_dict({}), Inputs(model_path="/other", data_root="/d"), 4) != key
    assert base_eval_key(from_dict({}), inputs, 8) != key
    assert base_eval_key(from_dict({"budget": {"default": 16}}), inputs, 4) == key  # only hybrid reads it
    assert base_eval_key(from_dict({"budget": {"default": 16}}), inputs, "hybrid") != base_eval_key(
        from_dict({}), inputs, "hybrid"
    )


def test_concurrency_comes_from_the_cluster_files_maxima_not_its_current_size():
    """An autoscaling cluster starts with no worker nodes; the sweep plans for its node-type maxima."""
    from pathlib import Path

    from videosft.tune.sweep import cluster_file_node_types, plan_concurrency, trials_that_fit

    root = Path(__file__).resolve().parents[2]
    expected = {
        "qwen2_5_vl_3b": 5,
        "qwen2_5_vl_7b": 5,
        "qwen2_5_vl_32b": 4,
        "qwen2_5_vl_72b": 1,
        "llava_1_5_7b": 5,
        "llava_next_video_7b": 5,
    }
    for name, want in expected.items():
        cfg = load_config(root / f"jobs/configs/{name}.yaml")
        assert cfg.sweep.cluster_file == "clusters/aws.yaml" and not cfg.sweep.max_concurrent_trials
        for f in (
            "clusters/aws.yaml",
            "clusters/gcp.yaml",
            "clusters/kuberay/raycluster.yaml",
            "clusters/kuberay/rayjob-sweep.yaml",
        ):
            assert trials_that_fit(cfg, cluster_file_node_types(str(root / f))) == want, (name, f)
    cfg = load_config(root / "jobs/configs/qwen2_5_vl_7b.yaml", [f"sweep.cluster_file={root / 'clusters/aws.yaml'}"])
    assert plan_concurrency(cfg) == (5, f"node-type maxima of {root / 'clusters/aws.yaml'}", True)
    fixed = cfg.with_overrides(["sweep.max_concurrent_trials=2"])
    assert plan_concurrency(fixed) == (2, "sweep.max_concurrent_trials", False)  # an explicit value wins


def test_trials_that_fit_packs_whole_trials_per_node():
    from videosft.clusters_fit import NodeType
    from videosft.tune.sweep import trials_that_fit

    cfg = load_config(
        None,
        [
            "sweep.frame_budgets=[1, 2, 3, 4]",
            "train.num_workers=1",
            "train.cpus_per_worker=1",
            "data.decode_concurrency=1",
            "data.cpus_per_decoder=0.25",
            "eval.cpus_per_actor=1",
        ],
    )
    nodes = [NodeType("cpu", cpus=1.5, gpus=0, memory_gib=0, max_workers=3)]
    assert trials_that_fit(cfg, nodes) == 3  # one trial's worker (1) + decoder (0.25) + driver per 1.5-CPU node
    assert trials_that_fit(cfg, [NodeType("cpu", 1.5, 0, 0, 0)]) == 1  # nothing fits: still one pending trial


@pytest.mark.parametrize("fails", [False, True])
def test_a_pool_asks_the_autoscaler_for_every_slot_and_always_clears_it(tmp_path, monkeypatch, fails):
    """run_trial_pool on an autoscaling cluster: one up-front request for all its slots (as run_sweep
    makes), dropped after the trials, whether they finished or failed; none on a fixed cluster."""
    import ray.tune

    from videosft.tune import sweep
    from videosft.workspace import Inputs

    calls: list = []
    cfg = load_config(None, ["sweep.frame_budgets=[1, 2]", "train.num_workers=1", "data.cpus_per_decoder=0.25"])

    class FakeTuner:
        def __init__(self, *args, **kwargs):
            calls.append(("tuner", kwargs["tune_config"].max_concurrent_trials))

        def fit(self):
            calls.append(("fit",))
            if fails:
                raise RuntimeError("a trial died")
            return []

    monkeypatch.setattr(ray.tune, "Tuner", FakeTuner)
    monkeypatch.setattr(sweep, "finish_sweep", lambda *p: tmp_path / "report.md")
    monkeypatch.setattr(sweep, "_clear_resource_request", lambda: calls.append(("clear",)))
    monkeypatch.setattr(sweep, "request_trial_resources", lambda c, k: calls.append(("request", k)))
    monkeypatch.setattr(sweep, "pin_autoscaling_coordinator", lambda: calls.append(("pin",)))  # no Ray here
    prepared = [(cfg, Inputs(model_path="m", data_root="d"), {}), (cfg, Inputs(model_path="m", data_root="d"), {})]
    for autoscaling in (True, False):
        calls.clear()
        monkeypatch.setattr(sweep, "plan_concurrency", lambda c, n_trials=None, a=autoscaling: (3, "test", a))
        if fails:
            with pytest.raises(RuntimeError, match="a trial died"):
                sweep.run_trial_pool(prepared, tmp_path / "tune")
        else:
            assert sweep.run_trial_pool(prepared, tmp_path / "tune") == [tmp_path / "report.md"] * 2
        asked = [("pin",), ("request", 3)] if autoscaling else []
        assert calls == [*asked, ("tuner", 3), ("fit",), ("clear",)]
    import ray

    assert not ray.is_initialized()  # a unit test must not leave a Ray cluster behind
