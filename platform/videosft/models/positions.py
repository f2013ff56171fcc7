"""Qwen2.5-VL temporal positions: where each sampled moment lands on the mRoPE time axis.

Qwen2.5-VL gives the k-th temporal grid step (temporal_patch_size frames) the time position
floor(k * tokens_per_second * second_per_grid_ts), with second_per_grid_ts = temporal_patch_size /
sampled_fps. The sampling contract knows the real sampled fps, so we set it from there, as a float.
Truncated to an int it is 0 for any sampling above temporal_patch_size fps (2 fps for the released
models) and every temporal position collapses onto the first. Note the model's own resolution:
one time position is 1 / tokens_per_second seconds (0.5 s for the released tokens_per_second=2), so
grid steps closer than that share a position even with the float; only the truncation is a bug.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch


def second_per_grid_ts(temporal_patch_size: int, sampled_fps: float) -> float:
    """Seconds spanned by one temporal grid step, from the contract's real sampled fps (a float)."""
    if sampled_fps <= 0 or temporal_patch_size < 1:
        raise ValueError(f"second_per_grid_ts: need sampled_fps > 0 and temporal_patch_size >= 1, "
                         f"got {sampled_fps}, {temporal_patch_size}")
    return float(temporal_patch_size) / float(sampled_fps)


def _tensor(value: Any) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))


def video_step_positions(model: Any, features: Mapping[str, Any], second_per_grid: float | None = None) -> torch.Tensor:
    """Temporal mRoPE position of each temporal grid step of one encoded Qwen2.5-VL video sample.

    `features` is one sample from `qwen2_5_vl.encode` (unbatched). `second_per_grid` overrides the
    sample's own `second_per_grid_ts` (to show what another value would do). Positions are relative
    to the video's first step, shape (T_grid,).
    """
    ids = _tensor(features["input_ids"])[None].long()
    grid = _tensor(features["video_grid_thw"]).long()
    spg = _tensor(features["second_per_grid_ts"]).float()
    if second_per_grid is not None:
        spg = torch.tensor([second_per_grid])
    inner = getattr(model, "model", model)  # the ForConditionalGeneration wrapper or the bare model
    pos, _ = inner.get_rope_index(
        ids, mm_token_type_ids=_tensor(features["mm_token_type_ids"])[None].long(), video_grid_thw=grid,
        second_per_grid_ts=spg, attention_mask=_tensor(features["attention_mask"])[None].long(),
    )
    video = ids[0] == int(model.config.video_token_id)
    merge = int(model.config.vision_config.spatial_merge_size)
    t, h, w = (int(x) for x in grid[0])
    temporal = pos[0, 0, video].reshape(t, (h // merge) * (w // merge))
    return temporal[:, 0] - temporal[0, 0]
