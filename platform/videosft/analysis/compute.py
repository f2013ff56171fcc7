"""Compute accounting of one sweep trial: what it cost, per trial and per training sample.

Recorded in each trial's summary.json by `tune/sweep.run_trial` and read back by the report.
Everything is derived from measurements the trial already makes (wall clock around training and
evaluation, the train loop's per-window throughput log), never from a cost model, so the numbers
are as honest as the clock. Device-hours are *reserved* hours (wall time x devices held): what a
cluster bills, not what the kernels used. Pure: stdlib only, so it is unit-tested without Ray.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def visual_tokens_per_sample(history: Sequence[Mapping[str, Any]]) -> float | None:
    """Mean visual tokens per training sample, from the train loop's throughput windows.

    Each window logs samples/s and visual-tokens/s over the same interval, so their ratio is the
    window's mean visual tokens per sample exactly (the interval cancels); windows are averaged.
    """
    ratios = [
        float(h["visual_tokens_per_s"]) / float(h["samples_per_s"])
        for h in history
        if h.get("samples_per_s") and h.get("visual_tokens_per_s") is not None
    ]
    return sum(ratios) / len(ratios) if ratios else None


def tokens_per_sample(history: Sequence[Mapping[str, Any]]) -> float | None:
    """Mean tokens (text + visual, no padding) per training sample, same method as above."""
    ratios = [
        float(h["tokens_per_s"]) / float(h["samples_per_s"])
        for h in history
        if h.get("samples_per_s") and h.get("tokens_per_s") is not None
    ]
    return sum(ratios) / len(ratios) if ratios else None


def checkpoint_history(checkpoint: str | Path) -> list[dict[str, Any]]:
    """The per-window train log the train loop stores beside the consolidated checkpoint."""
    meta = Path(checkpoint) / "videosft_meta.json"
    try:
        return list(json.loads(meta.read_text()).get("history", []))
    except (OSError, ValueError):
        return []


def trial_compute(
    *,
    steps: int,
    micro_batch_size: int,
    grad_accum: int,
    num_workers: int,
    use_gpu: bool,
    cpus_per_worker: float,
    train_wall_s: float,
    eval_wall_s: float,
    eval_devices: float,
    history: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The `compute` block of a trial summary.

    `eval_devices` is what the evaluation held (GPUs if any, else CPUs), so evaluation cost is
    counted in the same unit as training's.
    """
    samples = steps * micro_batch_size * grad_accum * num_workers
    train_devices = num_workers if use_gpu else num_workers * cpus_per_worker
    train_h = train_wall_s * train_devices / 3600.0
    eval_h = eval_wall_s * eval_devices / 3600.0
    vis = visual_tokens_per_sample(history)
    return {
        "unit": "GPU-h" if use_gpu else "CPU-h",
        "num_workers": num_workers,
        "use_gpu": use_gpu,
        "train_devices": train_devices,
        "train_wall_s": round(train_wall_s, 3),
        "eval_wall_s": round(eval_wall_s, 3),
        "train_device_hours": train_h,
        "eval_device_hours": eval_h,
        "device_hours": train_h + eval_h,
        "samples_seen": samples,
        "device_seconds_per_sample": train_h * 3600.0 / samples if samples else None,
        "visual_tokens_per_sample": vis,
        "tokens_per_sample": tokens_per_sample(history),
        "visual_tokens_total": vis * samples if vis is not None else None,
    }


def count_params(model_path: str | Path) -> int | None:
    """Parameter count of a local safetensors checkpoint, read from the file headers only.

    A safetensors file starts with an 8-byte little-endian header length and a JSON header listing
    every tensor's shape, so a 72B checkpoint is sized in milliseconds without loading a weight.
    None for a hub id or a checkpoint in another format.
    """
    files = sorted(Path(model_path).glob("*.safetensors")) if Path(model_path).is_dir() else []
    if not files:
        return None
    total = 0
    for f in files:
        with f.open("rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for key, info in header.items():
            if key != "__metadata__":
                count = 1
                for dim in info["shape"]:
                    count *= int(dim)
                total += count
    return total


def model_info(family: str, configured_path: str | None, model_path: str) -> dict[str, Any]:
    """Name and size of a trial's base model, for grouping trials by model and scale in the report."""
    name = Path(configured_path.rstrip("/")).name if configured_path else f"tiny-{family}"
    return {"family": family, "name": name, "path": str(model_path), "params": count_params(model_path)}


def human_params(n: int | None) -> str:
    """'3.1B', '7.6M', ... for axis labels and tables."""
    if not n:
        return "?"
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.1f}{suffix}"
    return str(n)
