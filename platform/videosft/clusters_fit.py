"""Does an experiment config fit a cluster file? Node types and maxima vs. what one trial holds.

A config is *schedulable* on a cluster file when, with every worker group scaled to its maximum,
each phase of one trial can be placed at once:
  train    `train.num_workers` Ray Train bundles ({CPU: cpus_per_worker, GPU: 1 if use_gpu}, plus
           the host memory each rank needs to load the weights and hold offloaded ZeRO states)
           and the Ray Data decoders feeding them (`data.decode_concurrency` x `cpus_per_decoder`);
  eval     `eval.num_actors` engine actors ({CPU, GPU: gpus_per_actor}) and their decoders;
  budget   (hybrid sweeps) `budget.concurrency` predictor actors.
Each GPU's memory must hold the DeepSpeed estimate for the layout (`train/ds_config.py`:
model states + working set + activation reserve) at `train.num_workers` ranks.

Placement is first-fit-decreasing over the nodes (GPU bundles onto GPU nodes, CPU-only bundles
onto CPU-only nodes first), the same feasibility question Ray's placement of a PACK/SPREAD
placement group answers; it is conservative only in ignoring the head (which takes no work here).
Pure: reads parsed YAML, imports neither Ray nor CUDA.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from videosft.train.ds_config import PRESETS, Preset, choose_zero_stage, estimate_gpu_memory, preset_with_overrides

# Host memory (GiB) and GPU memory (GB) of the machine types the cluster files name.
INSTANCE_MEMORY_GIB = {
    "p5.48xlarge": 2048,
    "c7i.48xlarge": 384,
    "m7i.4xlarge": 64,
    "a3-highgpu-8g": 1872,
    "c3-standard-176": 704,
    "n2-standard-16": 64,
}
GPU_MEMORY_GB = {"H100": 80.0}
DEFAULT_GPU_MEMORY_GB = 80.0
GIB = 1024**3


@dataclass(frozen=True)
class NodeType:
    name: str
    cpus: float
    gpus: float
    memory_gib: float
    max_workers: int
    gpu_memory_gb: float = DEFAULT_GPU_MEMORY_GB


@dataclass(frozen=True)
class Bundle:
    what: str
    cpus: float
    gpus: float = 0.0
    memory_gib: float = 0.0


@dataclass
class _Node:
    kind: NodeType
    cpus: float
    gpus: float
    memory_gib: float
    placed: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- cluster files
def launcher_node_types(cfg: dict[str, Any]) -> list[NodeType]:
    """Worker node types of a `ray up` YAML (the head is left out: it takes no work)."""
    head = cfg.get("head_node_type")
    out = []
    for name, node in (cfg.get("available_node_types") or {}).items():
        if name == head:
            continue
        res = node.get("resources") or {}
        nc = node.get("node_config") or {}
        machine = nc.get("InstanceType") or nc.get("machineType") or ""
        acc = next((k.split(":", 1)[1] for k in res if k.startswith("accelerator_type:")), None)
        out.append(
            NodeType(
                name=name,
                cpus=float(res.get("CPU", 0)),
                gpus=float(res.get("GPU", 0)),
                memory_gib=float(INSTANCE_MEMORY_GIB.get(machine, 0)),
                max_workers=int(node.get("max_workers", 0)),
                gpu_memory_gb=GPU_MEMORY_GB.get(acc or "", DEFAULT_GPU_MEMORY_GB),
            )
        )
    return out


def _k8s_quantity(value: Any) -> float:
    """CPU ("180", "500m") or memory ("1500Gi", "200G") as a number (memory in GiB)."""
    s = str(value)
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", s)
    if not m:
        raise ValueError(f"cannot parse Kubernetes quantity {value!r}")
    num, unit = float(m.group(1)), m.group(2)
    scale = {
        "": 1,
        "m": 1e-3,
        "Ki": 1 / 1024**2,
        "Mi": 1 / 1024,
        "Gi": 1,
        "Ti": 1024,
        "K": 1e3 / GIB,
        "M": 1e6 / GIB,
        "G": 1e9 / GIB,
        "T": 1e12 / GIB,
    }
    if unit not in scale:
        raise ValueError(f"unknown unit in Kubernetes quantity {value!r}")
    return num * scale[unit]


def kuberay_node_types(spec: dict[str, Any]) -> list[NodeType]:
    """Worker groups of a RayCluster spec (or a RayJob's rayClusterSpec), sized by their limits."""
    out = []
    for group in spec.get("workerGroupSpecs") or []:
        container = (((group.get("template") or {}).get("spec") or {}).get("containers") or [{}])[0]
        limits = (container.get("resources") or {}).get("limits") or {}
        start = group.get("rayStartParams") or {}
        cpus = float(start.get("num-cpus", _k8s_quantity(limits.get("cpu", 0))))
        gpus = float(start.get("num-gpus", _k8s_quantity(limits.get("nvidia.com/gpu", 0))))
        out.append(
            NodeType(
                name=str(group.get("groupName")),
                cpus=cpus,
                gpus=gpus,
                memory_gib=_k8s_quantity(limits.get("memory", 0)),
                max_workers=int(group.get("maxReplicas", 0)),
            )
        )
    return out


# --------------------------------------------------------------------------- what a trial needs
def preset_for(cfg: Any) -> Preset | None:
    """The ds_config preset of a config's model at the config's own layout (None: no preset, e.g. tiny)."""
    name = cfg.name if cfg.name in PRESETS else None
    if name is None and cfg.model.path:
        tail = cfg.model.path.rstrip("/").split("/")[-1].split("@")[0]
        name = next((p.name for p in PRESETS.values() if p.hf_model_id.split("/")[-1] == tail), None)
    if name is None:
        return None
    workers = cfg.train.num_workers
    per_node = min(8, workers)
    stage = cfg.train.zero_stage
    if stage == "auto":  # the loop plans from the real GPU and frame budget; here: 80 GB, the preset's reserve
        base = PRESETS[name]
        stage, _ = choose_zero_stage(
            base.params, workers, DEFAULT_GPU_MEMORY_GB, hidden_size=base.hidden_size, vocab_size=base.vocab_size
        )
    return preset_with_overrides(
        name,
        {
            "num_gpus": workers,
            "num_nodes": math.ceil(workers / per_node),
            "zero.stage": stage,
            "micro_batch_per_gpu": cfg.train.micro_batch_size,
            "grad_accum": cfg.train.grad_accum,
            "eval_tensor_parallel": 1,
        },
    )


def host_gib_per_rank(cfg: Any, preset: Preset | None) -> float:
    """Host memory one Train rank needs: the weights `from_pretrained` loads (2 bytes/param in bf16,
    4 in fp32) plus its share of CPU-offloaded ZeRO states (16 bytes/param over all ranks)."""
    if preset is None:
        return 0.0
    per_param = 2 if cfg.train.precision == "bf16" else 4
    offload = 16 * preset.params / preset.num_gpus if preset.zero.offload_optimizer != "none" else 0.0
    return (per_param * preset.params + offload) / GIB


def phases(cfg: Any) -> dict[str, list[Bundle]]:
    """The bundles each phase of one trial holds at once."""
    preset = preset_for(cfg) if cfg.train.use_gpu else None
    mem = host_gib_per_rank(cfg, preset)
    decoders = [Bundle("decoder", cfg.data.cpus_per_decoder)] * cfg.data.decode_concurrency
    out = {
        "train": [Bundle("train worker", cfg.train.cpus_per_worker, 1.0 if cfg.train.use_gpu else 0.0, mem)]
        * cfg.train.num_workers
        + decoders,
        "eval": [Bundle("eval actor", cfg.eval.cpus_per_actor, cfg.eval.gpus_per_actor)] * cfg.eval.num_actors
        + decoders,
    }
    if "hybrid" in cfg.sweep.frame_budgets and cfg.budget.needs_model_path():
        b = cfg.budget
        out["budget"] = [Bundle("budget actor", b.cpus_per_actor, b.gpus_per_actor)] * b.concurrency
    return out


# --------------------------------------------------------------------------- placement
def place(bundles: Sequence[Bundle], node_types: Iterable[NodeType]) -> list[str]:
    """First-fit-decreasing placement on every node at its maximum; the bundles that found no room."""
    nodes = [_Node(t, t.cpus, t.gpus, t.memory_gib) for t in node_types for _ in range(t.max_workers)]
    left = []
    for b in sorted(bundles, key=lambda b: (b.gpus, b.cpus, b.memory_gib), reverse=True):
        # GPU work where the GPUs are; CPU-only work on CPU-only nodes first, so it never takes a
        # GPU node's CPUs while GPU bundles are still to come (they are placed first anyway).
        order = sorted(nodes, key=lambda n: (n.kind.gpus > 0) != (b.gpus > 0))
        for n in order:
            if (
                n.cpus + 1e-9 >= b.cpus
                and n.gpus + 1e-9 >= b.gpus
                and (not b.memory_gib or n.memory_gib + 1e-9 >= b.memory_gib)
            ):
                n.cpus, n.gpus, n.memory_gib = n.cpus - b.cpus, n.gpus - b.gpus, n.memory_gib - b.memory_gib
                n.placed.append(b.what)
                break
        else:
            left.append(b)
    return [f"{b.what} {{CPU: {b.cpus:g}, GPU: {b.gpus:g}, host memory: {b.memory_gib:.0f} GiB}}" for b in left]


def gpu_nodes_used(bundles: Sequence[Bundle], node_types: Sequence[NodeType]) -> int:
    """How many GPU nodes the placement of `bundles` touches (what the autoscaler must start)."""
    need = sum(b.gpus for b in bundles)
    per = max((t.gpus for t in node_types), default=0)
    return math.ceil(need / per) if per and need else 0


def schedule_problems(cfg: Any, node_types: Sequence[NodeType], where: str) -> list[str]:
    """Why one trial of `cfg` cannot run on `node_types` at their maxima (empty: it can)."""
    problems = []
    for phase, bundles in phases(cfg).items():
        left = place(bundles, node_types)
        if left:
            gpus = sum(t.gpus * t.max_workers for t in node_types)
            cpus = sum(t.cpus * t.max_workers for t in node_types)
            problems.append(
                f"{where}: config {cfg.name!r} {phase} phase: {len(left)} of {len(bundles)} bundles "
                f"do not fit (cluster at its maxima: {gpus:g} GPUs, {cpus:g} CPUs in "
                f"{', '.join(f'{t.name} x{t.max_workers}' for t in node_types)}); first: {left[0]}"
            )
    preset = preset_for(cfg) if cfg.train.use_gpu else None
    if preset is not None:
        est = estimate_gpu_memory(preset)
        gpu_mem = min((t.gpu_memory_gb for t in node_types if t.gpus), default=DEFAULT_GPU_MEMORY_GB)
        if est.total_gb > gpu_mem:
            problems.append(
                f"{where}: config {cfg.name!r}: DeepSpeed estimate {est.total_gb:.1f} GB per GPU "
                f"(ZeRO-{preset.zero.stage} over {preset.num_gpus} GPUs) exceeds {gpu_mem:g} GB"
            )
    return problems


def trial_nodes(cfg: Any, node_types: Sequence[NodeType]) -> int:
    """GPU nodes one trial needs at its peak phase."""
    return max(gpu_nodes_used(b, node_types) for b in phases(cfg).values())
