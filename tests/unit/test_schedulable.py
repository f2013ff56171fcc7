"""Every shipped config is schedulable on every cluster file: node types and maxima vs. one trial.

GPUs, CPUs and host memory per Train rank (weights loaded by from_pretrained, offloaded ZeRO
states) must be placeable with every group at its maximum, and each GPU must hold the DeepSpeed
memory estimate for the config's layout (train/ds_config.py). clusters/README.md's table of which
cluster file runs which config is kept equal to these numbers.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from videosft.clusters_check import _cluster_spec_of
from videosft.clusters_fit import (
    NodeType,
    kuberay_node_types,
    launcher_node_types,
    phases,
    preset_for,
    schedule_problems,
    trial_nodes,
)
from videosft.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "jobs" / "configs").glob("*.yaml"))
LAUNCHER = ["clusters/aws.yaml", "clusters/gcp.yaml"]
KUBERAY = [
    "clusters/kuberay/raycluster.yaml",
    "clusters/kuberay/rayjob-sweep.yaml",
    "clusters/kuberay/rayjob-evaluate.yaml",
]


def node_types(rel: str) -> list[NodeType]:
    path = ROOT / rel
    if rel in LAUNCHER:
        return launcher_node_types(yaml.safe_load(path.read_text()))
    for doc in yaml.safe_load_all(path.read_text()):
        if spec := _cluster_spec_of(doc):
            return kuberay_node_types(spec[1])
    raise AssertionError(f"{rel}: no Ray cluster spec")


@pytest.mark.parametrize("cluster", LAUNCHER + KUBERAY)
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_config_fits_every_cluster_file(config, cluster):
    types = node_types(cluster)
    assert any(t.gpus for t in types) and all(t.max_workers > 0 for t in types)
    assert schedule_problems(load_config(config), types, cluster) == []


def test_node_types_are_read_from_the_files():
    aws = {t.name: t for t in node_types("clusters/aws.yaml")}
    assert (aws["gpu_h100"].gpus, aws["gpu_h100"].cpus, aws["gpu_h100"].memory_gib) == (8, 192, 2048)
    k8s = {t.name: t for t in node_types("clusters/kuberay/raycluster.yaml")}
    assert (k8s["gpu-h100"].gpus, k8s["gpu-h100"].cpus, k8s["gpu-h100"].memory_gib) == (8, 180, 1500)
    assert k8s["cpu-decode"].gpus == 0 and all(t.memory_gib > 0 for t in [*aws.values(), *k8s.values()])


def test_72b_did_not_fit_four_gpu_nodes():
    """The bug this check exists for: 64 Train workers against a GPU group capped at 4 x 8 GPUs."""
    capped = [dataclasses.replace(t, max_workers=4) if t.gpus else t for t in node_types("clusters/aws.yaml")]
    problems = schedule_problems(load_config(ROOT / "jobs/configs/qwen2_5_vl_72b.yaml"), capped, "aws")
    assert len(problems) == 1 and "'qwen2_5_vl_72b' train phase: 32 of 96 bundles" in problems[0]


def test_gpu_memory_estimate_is_checked():
    cfg = load_config(ROOT / "jobs/configs/qwen2_5_vl_32b.yaml", ["train.num_workers=8"])
    problems = schedule_problems(cfg, node_types("clusters/aws.yaml"), "aws")
    assert any("DeepSpeed estimate" in p and "over 8 GPUs" in p for p in problems)


def test_host_memory_per_rank_is_checked():
    cfg = load_config(ROOT / "jobs/configs/qwen2_5_vl_72b.yaml")
    small = [dataclasses.replace(t, memory_gib=512) if t.gpus else t for t in node_types("clusters/aws.yaml")]
    assert any("host memory: 137 GiB" in p for p in schedule_problems(cfg, small, "aws"))


def test_study_configs_have_a_preset_at_their_own_layout():
    for config in CONFIGS:
        cfg = load_config(config)
        if cfg.train.use_gpu:
            preset = preset_for(cfg)
            assert preset is not None and preset.num_gpus == cfg.train.num_workers, config.name
            assert len(phases(cfg)["train"]) >= cfg.train.num_workers


def _docs_table() -> dict[str, int]:
    text = (ROOT / "clusters" / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)\.yaml` \| (\d+) \|", text, flags=re.M)
    return {name: int(n) for name, n in rows}


def test_docs_name_the_gpu_nodes_each_config_needs():
    table = _docs_table()
    assert set(table) == {c.stem for c in CONFIGS}
    for config in CONFIGS:
        assert table[config.stem] == trial_nodes(load_config(config), node_types("clusters/aws.yaml")), config.stem


def test_one_default_shared_path_everywhere():
    """Configs, jobs, docs and the PVC init Job agree on /mnt/shared/runs for output_dir."""
    for config in CONFIGS:
        out = load_config(config).output_dir
        assert not out.startswith("/mnt/shared") or out.startswith("/mnt/shared/runs/"), config.name
    texts = [
        p.read_text()
        for p in [
            *ROOT.glob("jobs/*.py"),
            *ROOT.glob("jobs/configs/*.yaml"),
            ROOT / "clusters/README.md",
            *ROOT.glob("clusters/kuberay/*.yaml"),
            ROOT / "clusters/aws.yaml",
            ROOT / "clusters/gcp.yaml",
        ]
    ]
    assert not any("/mnt/shared/videosft/" in t for t in texts)
    assert "/mnt/shared/runs" in (ROOT / "clusters/kuberay/shared-pvc.yaml").read_text()
