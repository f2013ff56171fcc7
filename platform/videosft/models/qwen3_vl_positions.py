"""Qwen3-VL time and positions: the timestamps rendered in the prompt and the interleaved-mRoPE index.

Qwen3-VL carries time in text, not in positions. A video of T frames (padded to a multiple of
temporal_patch_size by repeating its last frame) becomes T / temporal_patch_size groups; group k is
preceded by `<t_k seconds>`, t_k the mean time of its first and last frame (frame index / fps, at
one decimal). Each group is then a separate t = 1 grid on the mRoPE axes: temporal position
constant over the group, (row, col) over its merged patches, everything offset by (largest position
so far + 1); text counts up by 1 from there. transformers 5.x (`Qwen3VLModel.get_rope_index`, which
splits video grids into t = 1 grids) and vLLM 0.32 (`Qwen3VLForConditionalGeneration.
_get_mrope_input_positions`) both compute this; `rope_index` is that rule written once more from
the description, so tests can hold both to it (transformers' 5.x Qwen2.5-VL rule drifted from the
released one: `positions.py`). The interleaving (t, h, w frequencies alternating per channel,
`mrope_section`) happens inside the model and needs nothing from us.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from videosft.models.positions import walk_positions


def timestamps(frames_indices: Sequence[int], fps: float, temporal_patch_size: int = 2) -> list[float]:
    """Seconds of each temporal patch group: mean of its first and last frame's time (index / fps)."""
    if fps <= 0 or temporal_patch_size < 1:
        raise ValueError(f"timestamps: need fps > 0 and temporal_patch_size >= 1, got {fps}, {temporal_patch_size}")
    idx = [int(i) for i in frames_indices]
    if not idx:
        return []
    idx += [idx[-1]] * (-len(idx) % temporal_patch_size)  # the processor repeats the last frame
    return [
        (idx[k] / fps + idx[k + temporal_patch_size - 1] / fps) / 2 for k in range(0, len(idx), temporal_patch_size)
    ]


def timestamp_text(seconds: float) -> str:
    """The text before a group, as the released processor renders it."""
    return f"<{seconds:.1f} seconds>"


def rope_index(
    input_ids: torch.Tensor,
    mm_token_type_ids: torch.Tensor,
    image_grid_thw: Any = None,
    video_grid_thw: Any = None,
    attention_mask: Any = None,
    spatial_merge_size: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """mRoPE positions (3, B, L) and deltas (B, 1); padding positions stay 0.

    Per row (padding dropped by `attention_mask`): a run of vision tokens of one type is the next
    image (grid (1, h, w)) or the next temporal group of the current video (grids (t, h, w) give t
    groups of (1, h, w)); it spans h/m x w/m tokens at (max so far + 1) + (0, row, col). Text
    counts up by 1 from (max so far + 1).
    """
    images = iter([[int(x) for x in g] for g in image_grid_thw] if image_grid_thw is not None else [])
    groups = iter(
        [[1, int(g[1]), int(g[2])] for g in video_grid_thw for _ in range(int(g[0]))]
        if video_grid_thw is not None
        else []
    )

    def next_item(token_type: int) -> np.ndarray:
        t, h, w = next(images if token_type == 1 else groups)
        if t != 1:
            raise ValueError(f"qwen3_vl rope_index: an image grid must have t == 1, got {(t, h, w)}")
        return np.indices((1, h // spatial_merge_size, w // spatial_merge_size)).reshape(3, -1)

    return walk_positions(input_ids, mm_token_type_ids, attention_mask, next_item)
