"""Model-family registry: one entry per supported architecture, chosen by name from the config.

Everything downstream takes a model *path*; the family says how to build a tiny random checkpoint,
how to turn one sample (frames + conversation) into model inputs, and which tokens open and close
an assistant turn so the loss covers assistant tokens only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ModelFamily:
    """What the platform needs to know about one architecture."""

    name: str
    native_video: bool  # False: video frames are fed another way (documented in the family module)
    assistant_header: str  # rendered text that opens an assistant turn
    turn_end: str  # token text that closes a turn; it is part of the loss (the model must learn to stop)
    build_tiny: Callable[..., Path]  # build_tiny(out_dir, seed=0, extra_corpus=()) -> out_dir
    encode: Callable[..., dict[str, np.ndarray]]  # encode(processor, messages, media, media_type, sampled_fps)
    # Rendered chat text -> the text the processor (or vLLM) expands; identity for most families.
    # Qwen3-VL: the released video layout (`qwen3_vl.released_video_layout`).
    prompt_text: Callable[[str], str] = lambda text: text
    # Fewest frames the video processor takes (Qwen3-VL: temporal_patch_size); shorter clips are
    # padded by repeating their last frame (`pad_video_frames`), as the processor pads odd counts.
    min_video_frames: int = 1


_FAMILIES: dict[str, Callable[[], ModelFamily]] = {}


def register(name: str) -> Callable[[Callable[[], ModelFamily]], Callable[[], ModelFamily]]:
    """Register a lazy family factory (families import transformers classes only when chosen)."""

    def deco(factory: Callable[[], ModelFamily]) -> Callable[[], ModelFamily]:
        _FAMILIES[name] = factory
        return factory

    return deco


def family_names() -> list[str]:
    _load_builtin()
    return sorted(_FAMILIES)


def get_family(name: str) -> ModelFamily:
    """Return the family called `name`, or fail naming the known ones."""
    _load_builtin()
    if name not in _FAMILIES:
        raise ValueError(f"model.family: unknown family {name!r}; expected one of {sorted(_FAMILIES)}")
    return _FAMILIES[name]()


def _load_builtin() -> None:
    # Importing the modules runs their @register decorators.
    from videosft.models import qwen2_5_vl, qwen3_vl  # noqa: F401

    try:  # families added by later work register themselves the same way
        from videosft.models import llava  # noqa: F401
    except ImportError:
        pass


def pad_video_frames(frames: np.ndarray, min_frames: int) -> tuple[np.ndarray, list[int]]:
    """(frames, frames_indices) with at least `min_frames` frames: the last frame repeated, its index too."""
    n = len(frames)
    if n == 0:
        raise ValueError("a video row has no frames")
    indices = list(range(n)) + [n - 1] * max(0, min_frames - n)
    return (frames if len(indices) == n else frames[indices]), indices


def to_numpy_features(features: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Processor output (torch tensors or lists) -> plain numpy arrays that cross Ray Data."""
    out: dict[str, np.ndarray] = {}
    for key, value in features.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        out[key] = np.asarray(value)
    return out
