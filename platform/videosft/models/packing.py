"""Sequence packing: several samples in one row, with attention, positions and loss kept per sample.

Why: a padded micro-batch pads every sample to its longest one; a LLaVA-Video-like mix (short
text/image samples beside long videos) then spends much of its compute on padding. A pack is one
row of at most `train.max_tokens_per_micro_batch` tokens holding whole samples back to back.

How transformers 5.x reads a packed row (no `attention_mask`, `position_ids` restarting at 0 in each
sample): `masking_utils.find_packed_sequence_indices` turns the restarts into a block-diagonal causal
mask for sdpa / eager / flex, and flash_attention_2 derives `cu_seqlens` from them
(`prepare_fa_kwargs_from_position_ids`) and runs the varlen kernel; the same inputs serve both.
Only without a KV cache, so the forward takes `use_cache=False` (FORWARD_KWARGS).
mRoPE families (Qwen2.5-VL, Qwen3-VL) take `position_ids` as (4, 1, L): row 0 the per-sample text
positions that drive the mask, rows 1-3 each sample's own 3-D mRoPE positions, computed per sample
by the model's own `get_rope_index` (for Qwen2.5-VL the released rule that models/positions.py
installs), i.e. exactly what the sample gets unpadded in an ordinary batch.

`sdpa` gets that mask as a dense (L, L) tensor and computes all of it, L the pack's length; the
`sdpa_packed` attention registered here (`use_packed_sdpa`) instead runs causal sdpa on each
sample's slice, sum L_i^2 like the varlen kernel (and torch's flash kernel on a GPU); other calls
(vision towers, padded batches, decoding) go to plain sdpa.

Vision inputs are joined as `collate` joins them (same order, same per-family layout), so the vision
tower sees what it would see for the padded batch of the same samples.

Loss: each sample's first label is IGNORE_INDEX, so the previous sample's last token is not trained
to predict it (unpacked, that position is shifted away anyway). The model's loss is then the mean
over the pack's supervised tokens: the per-token mean the padded micro-batch of the same samples
gets, and gradient accumulation averages micro-batches as it does without packing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from videosft.models.collate import join_vision
from videosft.models.labels import IGNORE_INDEX

PositionFn = Callable[[Mapping[str, np.ndarray]], np.ndarray]  # one sample's features -> (k, L) positions
_ROPE_KEYS = ("mm_token_type_ids", "image_grid_thw", "video_grid_thw", "second_per_grid_ts")
_TOKEN_KEYS = ("input_ids", "mm_token_type_ids")
# Forward kwargs a packed batch needs: transformers reads packed position_ids only without a KV
# cache, and decoders default to use_cache=True (an empty DynamicCache, then attention leaks across samples).
FORWARD_KWARGS = {"use_cache": False}


def plan_packs(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Group sample indices into packs of at most `budget` tokens (first-fit decreasing).

    Each pack lists its samples in stream order and packs are ordered by their first sample, so
    the data order survives as far as packing allows. A sample longer than the budget cannot be
    packed without cutting its visual tokens: that is an error naming the config field.
    """
    if budget < 1:
        raise ValueError(f"train.max_tokens_per_micro_batch must be >= 1, got {budget}")
    lengths = [int(n) for n in lengths]
    for i, n in enumerate(lengths):
        if n > budget:
            raise ValueError(
                f"train.max_tokens_per_micro_batch={budget} is below sample {i}'s {n} tokens; "
                "raise the budget or shorten/drop long samples (a sample is never split)"
            )
    packs: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda j: (-lengths[j], j)):
        for p, free in enumerate(room):
            if lengths[i] <= free:
                packs[p].append(i)
                room[p] -= lengths[i]
                break
        else:
            packs.append([i])
            room.append(budget - lengths[i])
    return sorted((sorted(p) for p in packs), key=lambda p: p[0])


def split_packs(packs: list[list[int]], count: int, lengths: Sequence[int]) -> list[list[int]]:
    """Split the packs holding the most tokens until there are `count` of them.

    Data-parallel ranks must run the same number of micro-batches (ZeRO collectives hang
    otherwise): every rank plans its window, the ranks agree on the largest pack count, and the
    others split packs (a split pack still fits the budget) to reach it.
    """
    packs = [list(p) for p in packs]
    if count < len(packs):
        raise ValueError(f"split_packs: cannot reduce {len(packs)} packs to {count}")
    if count > sum(len(p) for p in packs):
        raise ValueError(f"split_packs: {sum(len(p) for p in packs)} samples cannot fill {count} packs")
    while len(packs) < count:
        splittable = [p for p in packs if len(p) > 1]
        big = max(splittable, key=lambda p: (sum(lengths[i] for i in p), -p[0]))
        half = len(big) // 2
        packs.remove(big)
        packs += [big[:half], big[half:]]
    return sorted(packs, key=lambda p: p[0])


def position_fn(model: Any) -> PositionFn:
    """Per-sample position_ids for `model`: (4, L) for mRoPE families, (1, L) for 1-D RoPE ones.

    mRoPE families are those whose base model has `get_rope_index` (Qwen2.5-VL, Qwen3-VL); it is
    called on the single unpadded sample, so the positions are the ones the sample gets unpacked.
    """
    inner = getattr(model, "model", model)
    rope = getattr(inner, "get_rope_index", None)

    def text_only(features: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.arange(len(features["input_ids"]), dtype=np.int64)[None]

    if rope is None:
        return text_only

    def mrope(features: Mapping[str, np.ndarray]) -> np.ndarray:
        if "mm_token_type_ids" not in features:
            raise ValueError("packing: an mRoPE sample needs mm_token_type_ids (from the family's processor)")
        ids = torch.as_tensor(np.asarray(features["input_ids"], dtype=np.int64))[None]
        kwargs = {k: torch.as_tensor(np.asarray(features[k])) for k in _ROPE_KEYS if k in features and len(features[k])}
        kwargs["mm_token_type_ids"] = kwargs["mm_token_type_ids"].long()[None]
        with torch.no_grad():
            pos, _ = rope(ids, attention_mask=torch.ones_like(ids), **kwargs)
        return np.concatenate([text_only(features), pos[:, 0].cpu().numpy().astype(np.int64)], axis=0)

    return mrope


def pack(samples: Sequence[Mapping[str, np.ndarray]], positions: PositionFn) -> dict[str, torch.Tensor]:
    """Concatenate whole unpadded samples into one (1, L) row; no attention_mask (see module docstring)."""
    if not samples:
        raise ValueError("pack: empty pack")
    for i, s in enumerate(samples):
        if "attention_mask" in s and not np.all(np.asarray(s["attention_mask"]) == 1):
            raise ValueError(f"pack: sample {i} is padded (attention_mask has zeros); pack unpadded samples")
    batch: dict[str, torch.Tensor] = {}
    for key in _TOKEN_KEYS:
        if key in samples[0]:
            batch[key] = torch.from_numpy(np.concatenate([np.asarray(s[key], np.int64) for s in samples]))[None]
    if "labels" in samples[0]:
        labels = [np.asarray(s["labels"], np.int64).copy() for s in samples]
        for row in labels:
            row[:1] = IGNORE_INDEX
        batch["labels"] = torch.from_numpy(np.concatenate(labels))[None]
    pos = np.concatenate([positions(s) for s in samples], axis=1)
    batch["position_ids"] = torch.from_numpy(pos[:, None] if len(pos) > 1 else pos)
    batch.update(join_vision(samples))
    return batch


def pack_lengths(batch: Mapping[str, torch.Tensor]) -> list[int]:
    """Sample lengths inside a packed batch (where the text positions restart), for FLOP accounting."""
    text = batch["position_ids"].reshape(-1, batch["position_ids"].shape[-1])[0]
    starts = (text == 0).nonzero().reshape(-1).tolist() + [int(text.numel())]
    return [b - a for a, b in zip(starts, starts[1:])]


def iter_packs(
    windows: Iterable[Mapping[str, np.ndarray]],
    budget: int,
    lengths: Callable[[Mapping[str, np.ndarray]], Any],
    agree: Callable[[int], int] = lambda n: n,
) -> Iterator[dict[str, np.ndarray]]:
    """Re-batch a stream of row windows into packs: each yielded batch holds the rows of one pack.

    `lengths(window)` gives each row's token count; `agree(n)` turns this rank's pack count into
    the count every rank uses (`agreed_pack_count`), so data-parallel ranks step together.
    """
    for rows in windows:
        sizes = [int(n) for n in lengths(rows)]
        if not sizes:
            continue
        packs = plan_packs(sizes, budget)
        for p in split_packs(packs, agree(len(packs)), sizes):
            yield {k: v[p] for k, v in rows.items()}


def agreed_pack_count(n: int, device: Any = "cpu") -> int:
    """The largest pack count over the data-parallel ranks (collective; `n` without torch.distributed)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return n
    count = torch.tensor([n], dtype=torch.int64, device=device)
    dist.all_reduce(count, op=dist.ReduceOp.MAX)
    return int(count.item())


def attention_span(lengths: Sequence[int]) -> int:
    """The seq_len that makes tokens x 12·L·h·seq_len equal a pack's attention FLOPs (sum of L_i²)."""
    total = sum(lengths)
    return max(1, round(sum(n * n for n in lengths) / total)) if total else 1


PACKED_SDPA = "sdpa_packed"


def _packed_sdpa(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Causal sdpa per packed sample (split where the text positions restart), else plain sdpa."""
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    pos = kwargs.get("position_ids")
    packed = (
        pos is not None
        and query.shape[0] == 1
        and query.shape[2] == key.shape[2] == pos.shape[-1] > 1
        and getattr(module, "is_causal", False)
        and kwargs.get("is_causal", True)
        and kwargs.get("sliding_window") is None
    )
    starts = (pos.reshape(-1, pos.shape[-1])[0] == 0).nonzero().reshape(-1).tolist() if packed else []
    if len(starts) < 2 or starts[0] != 0:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    groups = getattr(module, "num_key_value_groups", 1)
    key, value = (repeat_kv(key, groups), repeat_kv(value, groups)) if groups > 1 else (key, value)
    bounds = starts + [query.shape[2]]
    out = torch.cat(
        [
            torch.nn.functional.scaled_dot_product_attention(
                query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], dropout_p=dropout, scale=scaling, is_causal=True
            )
            for a, b in zip(bounds, bounds[1:])
        ],
        dim=2,
    )
    return out.transpose(1, 2).contiguous(), None


def register_packed_sdpa() -> str:
    """Register `sdpa_packed` with transformers (attention + sdpa's mask builder); idempotent."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(PACKED_SDPA, _packed_sdpa)
    AttentionMaskInterface.register(PACKED_SDPA, sdpa_mask)
    return PACKED_SDPA


def use_packed_sdpa(model: Any) -> bool:
    """Switch a model on sdpa to `sdpa_packed` (what packed training should run); False if not on sdpa."""
    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    model.set_attn_implementation(register_packed_sdpa())
    return True
