"""Benchmark registry: a benchmark is chosen by its registered name, never by an import string.

Each name maps to (module, attribute) inside this package; modules are imported on first use so
that loading one benchmark never pays for (or breaks on) another.
"""

from __future__ import annotations

import importlib

from videosft.eval.benchmarks.base import Benchmark, EvalItem

_REGISTRY: dict[str, tuple[str, str]] = {
    "mme": ("mme", "MME"),
    "mmstar": ("mmstar", "MMSTAR"),
    "mmbench": ("mmbench", "MMBENCH"),
    "pope": ("pope", "POPE"),
    "videomme": ("videomme", "VIDEOMME"),
    "mvbench": ("mvbench", "MVBENCH"),
    "tempcompass": ("tempcompass", "TEMPCOMPASS"),
    "videommmu": ("videommmu", "VIDEOMMMU"),
    "synthetic_image": ("synthetic", "SYNTHETIC_IMAGE"),
    "synthetic_video": ("synthetic", "SYNTHETIC_VIDEO"),
}
BENCHMARKS: tuple[str, ...] = tuple(_REGISTRY)
IMAGE_BENCHMARKS: tuple[str, ...] = ("mme", "mmstar", "mmbench", "pope")
VIDEO_BENCHMARKS: tuple[str, ...] = ("videomme", "mvbench", "tempcompass", "videommmu")


def get_benchmark(name: str) -> Benchmark:
    """The registered Benchmark called ``name`` (case-insensitive)."""
    key = str(name).strip().lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    module, attr = _REGISTRY[key]
    return getattr(importlib.import_module(f"{__name__}.{module}"), attr)


__all__ = ["BENCHMARKS", "IMAGE_BENCHMARKS", "VIDEO_BENCHMARKS", "Benchmark", "EvalItem", "get_benchmark"]
