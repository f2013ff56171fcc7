"""The sampling contract: which frames of a video a sample sees, and at what pixel size.

This module owns the *pure* frame-index and resize math shared by training, evaluation and the
synthetic set (numpy + pydantic + stdlib only; never ray or torch). One `SamplingContract` object,
hashed by `contract_id()`, is recorded with every checkpoint and score so train and eval cannot
silently sample differently.

Two modes:
- ``fixed``: N frames spread uniformly by `uniform_indices`, a *nested* scheme, so one decode at the
  largest budget of a sweep serves every smaller budget and every trial sees the same frames.
- ``fps``: qwen-vl-utils 0.0.14 reproduced bit for bit (`smart_nframes` + torch's float32
  ``linspace(...).round()``), so a Qwen model sees what its own tooling would feed it.

The sampled fps a clip is labelled with (Qwen2.5-VL's ``second_per_grid_ts`` comes from it)
follows qwen-vl-utils too (``fps_rule="qwen_vl_utils"``, nframes / total * fps); the frames' real
spacing is the separately named ``fps_rule="span"``.

Both modes resize with `smart_resize` (also qwen-vl-utils 0.0.14) so pixels match across stages.
Frame-count padding to an even number (Qwen's ``temporal_patch_size`` = 2) is NOT done here in
fixed mode: the model processor repeats the last frame (transformers' Qwen2-VL processors do), or a
caller may use `pad_indices`.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

# Bump when the index/resize rules change: every contract hash changes with it.
CONTRACT_VERSION = "sampling-v2"  # v2: sampled fps follows qwen-vl-utils (fps_rule) by default

# qwen-vl-utils 0.0.14 constants (vision_process.py).
QWEN_MAX_RATIO = 200
QWEN_FPS_MAX_FRAMES = 768


# --------------------------------------------------------------------------- qwen rounding rules
def _round_by_factor(number: float, factor: int) -> int:
    """Closest multiple of factor; Python's round() (half to even), as qwen-vl-utils does."""
    return round(number / factor) * factor


def _ceil_by_factor(number: float, factor: int) -> int:
    return math.ceil(number / factor) * factor


def _floor_by_factor(number: float, factor: int) -> int:
    return math.floor(number / factor) * factor


def smart_resize(
    height: int,
    width: int,
    factor: int = 28,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> tuple[int, int]:
    """(h, w) divisible by factor, area within [min_pixels, max_pixels], aspect kept.

    Same float arithmetic, in the same order, as qwen-vl-utils 0.0.14, so results match bit for bit.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"smart_resize: height and width must be > 0, got {height}x{width}")
    max_pixels = max_pixels if max_pixels is not None else 16384 * factor**2
    min_pixels = min_pixels if min_pixels is not None else 4 * factor**2
    if max_pixels < min_pixels:
        raise ValueError(f"smart_resize: max_pixels ({max_pixels}) must be >= min_pixels ({min_pixels})")
    ratio = max(height, width) / min(height, width)
    if ratio > QWEN_MAX_RATIO:
        raise ValueError(f"smart_resize: absolute aspect ratio must be smaller than {QWEN_MAX_RATIO}, got {ratio}")
    h_bar = max(factor, _round_by_factor(height, factor))
    w_bar = max(factor, _round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = _floor_by_factor(height / beta, factor)
        w_bar = _floor_by_factor(width / beta, factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = _ceil_by_factor(height * beta, factor)
        w_bar = _ceil_by_factor(width * beta, factor)
    return h_bar, w_bar


def smart_nframes(
    total_frames: int,
    video_fps: float,
    *,
    fps: float = 2.0,
    min_frames: int = 4,
    max_frames: int | None = None,
    frame_factor: int = 2,
    nframes: int | None = None,
) -> int:
    """Frame count qwen-vl-utils 0.0.14 picks: fps rule clamped to [min, max, total], a frame_factor multiple.

    ``nframes`` reproduces qwen's explicit-count path (rounded to frame_factor, fps ignored);
    ``max_frames=None`` means qwen's default min(768, total_frames). Raises ValueError like qwen
    when the result falls outside [frame_factor, total_frames] (e.g. a 1-frame "video").
    """
    if nframes is not None:
        n = _round_by_factor(nframes, frame_factor)
    else:
        lo = _ceil_by_factor(min_frames, frame_factor)
        hi_raw = max_frames if max_frames is not None else min(QWEN_FPS_MAX_FRAMES, total_frames)
        hi = _floor_by_factor(hi_raw, frame_factor)
        wanted = total_frames / video_fps * fps
        n = _floor_by_factor(min(min(max(wanted, lo), hi), total_frames), frame_factor)
    if not frame_factor <= n <= total_frames:
        raise ValueError(f"smart_nframes: nframes should be in [{frame_factor}, {total_frames}], got {n}")
    return n


def linspace_indices(total_frames: int, nframes: int) -> np.ndarray:
    """``torch.linspace(0, total-1, n, dtype=float32).round().long()`` without torch.

    torch's CPU kernel computes step = (end - start) / (n - 1) in float32, then the first half as
    start + step*i and the second half as end - step*(n-1-i), each with a single (fused) rounding
    to float32; rounding is half to even. Computing the products exactly in float64 and casting
    once reproduces that bit for bit (checked against torch in the tests).
    """
    if nframes < 1 or total_frames < 1:
        raise ValueError(f"linspace_indices: need total_frames >= 1 and nframes >= 1, got {total_frames}, {nframes}")
    if nframes == 1:
        return np.zeros(1, dtype=np.int64)
    start, end = np.float32(0.0), np.float32(total_frames - 1)
    step = np.float64((end - start) / np.float32(nframes - 1))  # float32 division, as torch
    i = np.arange(nframes, dtype=np.float64)
    head = (np.float64(start) + step * i).astype(np.float32)
    tail = (np.float64(end) - step * (nframes - 1 - i)).astype(np.float32)
    values = np.where(np.arange(nframes) < nframes // 2, head, tail)
    return np.rint(values).astype(np.int64)


# --------------------------------------------------------------------------- nested uniform scheme
def uniform_indices(total_frames: int, n: int) -> np.ndarray:
    """n frames spread uniformly, nested across budgets: indices(n) is a subset of indices(k*n).

    Index i is floor(T/2 + i*T/n) mod T (exact integer math), sorted: a grid of step T/n anchored at
    the middle frame. A constant anchor is what makes it nested (index i of budget n is index k*i
    of budget k*n). Even n gives {floor(j*T/n)} (starts at frame 0); odd n is centred, so a 1-frame
    budget sees the middle frame rather than the first. n >= total_frames returns every frame once
    (length total_frames, no duplicates); padding to an even count is the processor's job.
    """
    if total_frames < 1:
        raise ValueError(f"uniform_indices: total_frames must be >= 1, got {total_frames}")
    if n < 1:
        raise ValueError(f"uniform_indices: n must be >= 1, got {n}")
    if n >= total_frames:
        return np.arange(total_frames, dtype=np.int64)
    i = np.arange(n, dtype=np.int64)
    idx = (np.int64(total_frames) * (n + 2 * i)) // (2 * n) % total_frames
    return np.sort(idx)


def pad_indices(indices: np.ndarray, factor: int) -> np.ndarray:
    """Repeat the last index until len is a multiple of factor (qwen-vl-utils pads frame lists so)."""
    idx = np.asarray(indices, dtype=np.int64)
    missing = -len(idx) % factor
    if missing and len(idx):
        idx = np.concatenate([idx, np.full(missing, idx[-1], dtype=np.int64)])
    return idx


# --------------------------------------------------------------------------- the contract
_POSITIVE_INTS = (
    "num_frames",
    "min_frames",
    "max_frames",
    "frame_factor",
    "image_factor",
    "min_pixels",
    "max_pixels",
    "video_min_pixels",
    "video_max_pixels",
)


class SamplingContract(BaseModel):
    """How frames are chosen and sized; embedded as ``sampling:`` in the experiment config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["fixed", "fps"] = "fixed"
    num_frames: int = 8  # fixed mode: default budget (a per-sample frame_budget overrides it)
    fps: float = 2.0  # fps mode: qwen FPS
    min_frames: int = 4  # fps mode: qwen FPS_MIN_FRAMES
    max_frames: int = QWEN_FPS_MAX_FRAMES  # fps mode: qwen FPS_MAX_FRAMES
    frame_factor: int = 2  # fps mode: qwen FRAME_FACTOR
    image_factor: int = 28  # patch_size * merge_size
    min_pixels: int = 3136  # images
    max_pixels: int = 3136 * 16
    video_min_pixels: int = 3136  # each video frame
    video_max_pixels: int = 3136 * 4
    # The sampled fps a clip is labelled with (it becomes Qwen2.5-VL's second_per_grid_ts =
    # temporal_patch_size / fps): "qwen_vl_utils" = nframes / total_frames * video_fps, exactly as
    # qwen-vl-utils 0.0.14 reports it (what published Qwen2.5-VL numbers were made with); "span" =
    # the frames' real spacing, (n - 1) * video_fps / (last - first). Part of the contract hash.
    fps_rule: Literal["qwen_vl_utils", "span"] = "qwen_vl_utils"

    @field_validator(*_POSITIVE_INTS)
    @classmethod
    def _positive(cls, value: int, info: ValidationInfo) -> int:
        if value < 1:
            raise ValueError(f"{info.field_name} must be >= 1, got {value}")
        return value

    @field_validator("fps")
    @classmethod
    def _positive_fps(cls, value: float) -> float:
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"fps must be a finite number > 0, got {value}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> SamplingContract:
        for lo, hi in (
            ("min_frames", "max_frames"),
            ("min_pixels", "max_pixels"),
            ("video_min_pixels", "video_max_pixels"),
        ):
            if getattr(self, lo) > getattr(self, hi):
                raise ValueError(f"{lo} ({getattr(self, lo)}) must be <= {hi} ({getattr(self, hi)})")
        return self

    def frame_indices(self, total_frames: int, video_fps: float, budget: int | None = None) -> np.ndarray:
        """Sorted int64 source-frame indices for one video.

        fixed: `uniform_indices(total, budget or num_frames)` (nested across budgets).
        fps: qwen's rule; a budget caps the count at its largest frame_factor multiple (at least
        frame_factor). Raises ValueError where qwen would (fewer than frame_factor frames).
        """
        if total_frames < 1:
            raise ValueError(f"frame_indices: total_frames must be >= 1, got {total_frames}")
        if budget is not None and budget < 1:
            raise ValueError(f"frame_indices: budget must be >= 1 or None, got {budget}")
        if self.mode == "fixed":
            return uniform_indices(total_frames, budget if budget is not None else self.num_frames)
        if not video_fps > 0:
            raise ValueError(f"frame_indices: video_fps must be > 0 in fps mode, got {video_fps}")
        n = smart_nframes(
            total_frames,
            video_fps,
            fps=self.fps,
            min_frames=self.min_frames,
            max_frames=self.max_frames,
            frame_factor=self.frame_factor,
        )
        if budget is not None:
            n = min(n, max(self.frame_factor, _floor_by_factor(budget, self.frame_factor)))
        return linspace_indices(total_frames, n)

    def sampled_fps(self, indices: np.ndarray, video_fps: float, total_frames: int) -> float:
        """The sampled frame rate of ``indices`` out of a ``total_frames`` clip, by ``fps_rule``.

        qwen_vl_utils: ``nframes / max(total_frames, 1e-6) * video_fps`` in qwen-vl-utils' own
        operation order (bit-identical floats). span: intervals / span seconds; a single distinct
        frame has no spacing, so the source rate. Always a float: truncated to int it collapses
        Qwen2.5-VL's temporal positions.
        """
        idx = np.asarray(indices, dtype=np.int64)
        if self.fps_rule == "qwen_vl_utils":
            return float(len(idx) / max(int(total_frames), 1e-6) * float(video_fps))
        distinct = np.unique(idx)
        if len(distinct) < 2:
            return float(video_fps)
        return float((len(distinct) - 1) * float(video_fps) / float(distinct[-1] - distinct[0]))

    @staticmethod
    def timestamps(indices: np.ndarray, video_fps: float) -> np.ndarray:
        """Float64 seconds of each sampled frame (frame i starts at i / video_fps)."""
        return np.asarray(indices, dtype=np.float64) / float(video_fps)

    def output_size(self, height: int, width: int, media: Literal["video", "image"] = "video") -> tuple[int, int]:
        """Resized (h, w) for a frame (video pixel bounds) or a still image (image pixel bounds)."""
        if media == "video":
            lo, hi = self.video_min_pixels, self.video_max_pixels
        elif media == "image":
            lo, hi = self.min_pixels, self.max_pixels
        else:
            raise ValueError(f"output_size: media must be 'video' or 'image', got {media!r}")
        return smart_resize(height, width, self.image_factor, lo, hi)

    def contract_id(self) -> str:
        """Stable 12-hex id: sha256 of sorted canonical JSON of every field plus CONTRACT_VERSION."""
        payload = {"version": CONTRACT_VERSION, **self.model_dump(mode="json")}
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]
