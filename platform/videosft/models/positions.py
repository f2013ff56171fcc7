"""Qwen2.5-VL temporal positions: where each sampled moment lands on the mRoPE time axis.

Qwen2.5-VL gives the k-th temporal grid step (temporal_patch_size frames) the time position
floor(k * tokens_per_second * second_per_grid_ts), with second_per_grid_ts = temporal_patch_size /
sampled_fps. The sampling contract knows the real sampled fps, so we set it from there, as a float.
Truncated to an int it is 0 for any sampling above temporal_patch_size fps (2 fps for the released
models) and every temporal position collapses onto the first. Note the model's own resolution:
one time position is 1 / tokens_per_second seconds (0.5 s for the released tokens_per_second=2), so
grid steps closer than that share a position even with the float; only the truncation is a bug.

Where text resumes after a vision block: the released Qwen2.5-VL rule (the Qwen team's code,
transformers 4.49-4.5x `get_rope_index`, and vLLM's `get_mrope_input_positions`) starts it at the
largest position of everything before + 1, so text after a long video sits after the video's last
moment. transformers 5.x resumes at start + max(h, w) / merge instead, ignoring the video's
temporal extent: a model trained there and served by vLLM sees different positions. We compute
positions ourselves with the released rule (`rope_index`, with vLLM's exact arithmetic) and install
it as the transformers model's `get_rope_index` (`install_released_rope_index`), so training,
TransformersEngine and vLLM agree; tests/vllm_cpu checks that both engines still agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch


def second_per_grid_ts(temporal_patch_size: int, sampled_fps: float) -> float:
    """Seconds spanned by one temporal grid step, from the contract's real sampled fps (a float)."""
    if sampled_fps <= 0 or temporal_patch_size < 1:
        raise ValueError(
            f"second_per_grid_ts: need sampled_fps > 0 and temporal_patch_size >= 1, "
            f"got {sampled_fps}, {temporal_patch_size}"
        )
    return float(temporal_patch_size) / float(sampled_fps)


def rope_index(
    input_ids: torch.Tensor,
    mm_token_type_ids: torch.Tensor,
    image_grid_thw: Any = None,
    video_grid_thw: Any = None,
    second_per_grid_ts: Any = None,
    attention_mask: Any = None,
    spatial_merge_size: int = 2,
    tokens_per_second: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """mRoPE positions (3, B, L) and deltas (B, 1) by the released rule; padding positions stay 0.

    Per row (padding dropped by `attention_mask`): text runs count up by 1 from (max position so
    far + 1); a vision item of grid (t, h, w) spans t x h/m x w/m tokens at (max so far + 1) +
    (floor(k * t_factor), row, col), t_factor = tokens_per_second * second_per_grid_ts (1 for
    images), computed as vLLM does (float64 of the float32 second_per_grid_ts). Items are taken in
    order from the grids, several in one run of same-type tokens if they touch.
    """
    images = iter([[int(x) for x in g] for g in image_grid_thw] if image_grid_thw is not None else [])
    videos = iter([[int(x) for x in g] for g in video_grid_thw] if video_grid_thw is not None else [])
    spg = iter(
        [float(x) for x in torch.as_tensor(second_per_grid_ts).float().reshape(-1).tolist()]
        if second_per_grid_ts is not None
        else []
    )

    def next_item(token_type: int) -> np.ndarray:
        t, h, w = next(images if token_type == 1 else videos)
        factor = float(tokens_per_second) * next(spg, 1.0) if token_type == 2 else 1.0
        grid = np.indices((t, h // spatial_merge_size, w // spatial_merge_size)).reshape(3, -1)
        if factor != 1.0:
            grid[0] = (grid[0] * factor).astype(np.int64)
        return grid

    return walk_positions(input_ids, mm_token_type_ids, attention_mask, next_item)


def walk_positions(
    input_ids: torch.Tensor,
    mm_token_type_ids: torch.Tensor,
    attention_mask: Any,
    next_item: Callable[[int], np.ndarray],
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mRoPE walk both Qwen families share: positions (3, B, L) and deltas (B, 1).

    Per row (padding dropped by `attention_mask`, its positions stay 0): a text run counts up by 1
    from (max so far + 1); a run of vision tokens takes `next_item(token_type)`, the (3, n) grid
    of the next image (1) or video item (2) relative to its start, placed at (max so far + 1).
    """
    pos = torch.zeros(3, *input_ids.shape, dtype=torch.long, device=input_ids.device)
    deltas = []
    for b in range(input_ids.shape[0]):
        keep = (
            attention_mask[b].bool() if attention_mask is not None else torch.ones_like(input_ids[b], dtype=torch.bool)
        )
        types = mm_token_type_ids[b][keep].tolist()
        chunks, nxt, i = [], 0, 0
        while i < len(types):
            if types[i] == 0:
                j = i
                while j < len(types) and types[j] == 0:
                    j += 1
                chunks.append(np.broadcast_to(np.arange(j - i), (3, j - i)) + nxt)
            else:
                grid = next_item(types[i])
                chunks.append(grid + nxt)
                j = i + grid.shape[1]
            nxt, i = int(chunks[-1].max()) + 1, j
        row = torch.from_numpy(np.concatenate(chunks, axis=1) if chunks else np.zeros((3, 0), np.int64))
        pos[:, b, keep] = row.to(pos.device)
        deltas.append(nxt - len(types))
    return pos, torch.tensor(deltas, device=input_ids.device).unsqueeze(1)


def install_released_rope_index() -> None:
    """Make transformers' Qwen2.5-VL use `rope_index` (training, generation, everything); idempotent."""
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as M

    if getattr(M.Qwen2_5_VLModel.get_rope_index, "_videosft", False):
        return

    def get_rope_index(
        self: Any,
        input_ids: torch.Tensor,
        mm_token_type_ids: torch.Tensor,
        image_grid_thw: Any = None,
        video_grid_thw: Any = None,
        second_per_grid_ts: Any = None,
        attention_mask: Any = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        vision = self.config.vision_config
        return rope_index(
            input_ids,
            mm_token_type_ids,
            image_grid_thw,
            video_grid_thw,
            second_per_grid_ts,
            attention_mask,
            int(vision.spatial_merge_size),
            float(vision.tokens_per_second),
        )

    get_rope_index._videosft = True  # type: ignore[attr-defined]
    get_rope_index.transformers_rule = M.Qwen2_5_VLModel.get_rope_index  # type: ignore[attr-defined]
    M.Qwen2_5_VLModel.get_rope_index = get_rope_index


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
    install_released_rope_index()
    inner = getattr(model, "model", model)  # the ForConditionalGeneration wrapper or the bare model
    pos, _ = inner.get_rope_index(
        ids,
        mm_token_type_ids=_tensor(features["mm_token_type_ids"])[None].long(),
        video_grid_thw=grid,
        second_per_grid_ts=spg,
        attention_mask=_tensor(features["attention_mask"])[None].long(),
    )
    video = ids[0] == int(model.config.video_token_id)
    merge = int(model.config.vision_config.spatial_merge_size)
    t, h, w = (int(x) for x in grid[0])
    temporal = pos[0, 0, video].reshape(t, (h // merge) * (w // merge))
    return temporal[:, 0] - temporal[0, 0]
