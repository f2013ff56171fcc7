"""Benchmark registry: a benchmark is chosen by its registered name, never by an import string.

Each name maps to (module, attribute) inside this package; modules are imported on first use so
that loading one benchmark never pays for (or breaks on) another. The attribute is either a dict
{protocol name: Benchmark} (one variant per evaluation protocol, `benchmarks.protocols`) or a single
Benchmark that follows the same rules under every protocol (the synthetic benchmarks, ours).
"""

from __future__ import annotations

import importlib

from videosft.benchmarks.base import Benchmark, EvalItem
from videosft.benchmarks.protocols import DEFAULT_PROTOCOL, get_protocol

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


def get_benchmark(name: str, protocol: str = DEFAULT_PROTOCOL) -> Benchmark:
    """The registered Benchmark called ``name`` (case-insensitive), as ``protocol`` defines it."""
    key = str(name).strip().lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    get_protocol(protocol)  # unknown protocol names fail here, naming the choices
    module, attr = _REGISTRY[key]
    found = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    if isinstance(found, Benchmark):
        return found
    if protocol not in found:
        raise ValueError(f"benchmark {key!r} has no {protocol!r} protocol; it has {sorted(found)}")
    return found[protocol]


__all__ = ["BENCHMARKS", "IMAGE_BENCHMARKS", "VIDEO_BENCHMARKS", "Benchmark", "EvalItem", "get_benchmark"]
