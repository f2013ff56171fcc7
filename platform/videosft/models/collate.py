"""Collate per-sample feature dicts into one padded model batch (pure: numpy + torch tensors only).

Text tensors are right-padded; vision tensors are concatenated along the patch axis, which is how
Qwen2.5-VL / LLaVA processors batch variable-size images and videos. Two LLaVA-NeXT layouts need more:
its any-resolution images arrive as (1, P, C, H, W) with P tiles varying per image (padded to the
batch's largest P; the model drops the padding using `image_sizes`), and its videos as (1, T, C, H, W)
with T varying per sample (joined into one (1, sum T, C, H, W) clip: the model encodes and pools each
frame independently and scatters features in frame order, so this equals batching the videos).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from videosft.models.labels import IGNORE_INDEX

_PAD_VALUES = {"input_ids": None, "attention_mask": 0, "labels": IGNORE_INDEX, "mm_token_type_ids": 0}
_CONCAT_KEYS = (
    "pixel_values",
    "image_grid_thw",
    "pixel_values_videos",
    "video_grid_thw",
    "second_per_grid_ts",
    "image_sizes",
    "image_sizes_videos",
)


def collate(samples: Sequence[Mapping[str, np.ndarray]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pad the 1-D token tensors to the batch's longest sample and concatenate vision tensors."""
    if not samples:
        raise ValueError("collate: empty batch")
    longest = max(len(s["input_ids"]) for s in samples)
    batch: dict[str, torch.Tensor] = {}
    for key, pad in _PAD_VALUES.items():
        if key not in samples[0]:
            continue
        fill = pad_token_id if pad is None else pad
        rows = np.full((len(samples), longest), fill, dtype=np.int64)
        for i, s in enumerate(samples):
            rows[i, : len(s[key])] = s[key]
        batch[key] = torch.from_numpy(rows)
    batch.update(join_vision(samples))
    return batch


def join_vision(samples: Sequence[Mapping[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """The samples' vision tensors joined in sample order (shared with packing, models/packing.py)."""
    batch: dict[str, torch.Tensor] = {}
    for key in _CONCAT_KEYS:
        parts = [s[key] for s in samples if key in s and len(s[key])]
        if parts:
            batch[key] = torch.from_numpy(_join(key, parts))
    for key in ("pixel_values", "pixel_values_videos"):
        if key in batch:
            batch[key] = batch[key].float()
    return batch


def _join(key: str, parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate one vision key's per-sample arrays (see the module docstring for the 5-D cases)."""
    if parts[0].ndim == 5 and key == "pixel_values_videos":  # LLaVA-NeXT-Video: (1, T, C, H, W)
        return np.concatenate([p.reshape(-1, *p.shape[2:]) for p in parts], axis=0)[None]
    if parts[0].ndim == 5 and key == "pixel_values":  # LLaVA-NeXT any-res tiles: (1, P, C, H, W)
        tiles = max(p.shape[1] for p in parts)
        parts = [np.pad(p, [(0, 0), (0, tiles - p.shape[1])] + [(0, 0)] * 3) for p in parts]
    return np.concatenate(parts, axis=0)


def to_device(
    batch: Mapping[str, torch.Tensor], device: torch.device | str, float_dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """Move a collated batch to the engine's device; pixel tensors take the model's float dtype.

    DeepSpeed's engine does not move inputs, and a bf16 vision tower fed fp32 pixels would either
    upcast silently or fail in its first conv, depending on the family.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in batch.items():
        value = value.to(device, non_blocking=True)
        out[key] = value.to(float_dtype) if value.is_floating_point() and key != "second_per_grid_ts" else value
    return out


def count_tokens(batch: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    """(supervised tokens, total non-pad tokens) of a collated batch, for throughput metrics."""
    supervised = int((batch["labels"] != IGNORE_INDEX).sum()) if "labels" in batch else 0
    total = int(batch["attention_mask"].sum()) if "attention_mask" in batch else int(batch["input_ids"].numel())
    return supervised, total
