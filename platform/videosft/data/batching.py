"""Cost-grouped micro-batches: rows of similar padded length train together, in a random order.

A 64-frame video and a single image in one micro-batch pad the image to the video's length, and
the step costs what the video costs, times the batch. Training groups by cost at the consumer
(`data.bucket_by_cost`), because Ray splits and re-packs blocks (streaming_split, block-size
limits), so no block layout produced upstream survives to the training loop: each Train worker
reads its shard in windows of `data.bucket_window` rows, orders a window by cost, cuts it into
micro-batches and shuffles their order (seeded), so a micro-batch holds rows of similar cost
while the order training sees stays random. The cost is exact (the encoded row's text + visual
tokens, the length collate pads to), and the manifest rows are not reordered before decode: the
frame cache yields rows in its own order, and a pre-sorted list would reach a window as one run
of equal costs. Grouping permutes rows within a window only, so SAMPLE_INDEX (the data cursor's
key) rides along and the step count equals plain `iter_batches(drop_last=True)`. `bucket_order`
is the same ordering over a list of costs (tests, benchmarks/bucketing.py); `estimated_cost`
prices a manifest row before decode (frames the contract gives it x resized pixels).
Sequence packing (`train.packing`, models/packing.py) replaces this grouping when it is on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from videosft import schema as S
from videosft.data.preprocess import N_TEXT_TOKENS, N_VISUAL_TOKENS

CostFn = Callable[[dict[str, np.ndarray]], np.ndarray]
Seed = int | Sequence[int]


def visual_cost(batch: Mapping[str, Any]) -> np.ndarray:
    """Per-row cost: visual tokens if preprocess counted them, else frames x height x width.

    Encoded rows carry N_VISUAL_TOKENS (the model's true count) and no frames; decoded rows carry
    FRAMES, whose T*H*W is proportional to the tokens any patch-based tower makes of them.
    """
    if N_VISUAL_TOKENS in batch:
        return np.asarray(batch[N_VISUAL_TOKENS], np.int64)
    if S.FRAMES in batch:
        return np.array([int(np.prod(np.shape(f)[:3])) for f in batch[S.FRAMES]], np.int64)
    raise KeyError(f"visual_cost: batch has neither {N_VISUAL_TOKENS!r} nor {S.FRAMES!r} (columns: {sorted(batch)})")


def sequence_cost(batch: Mapping[str, Any]) -> np.ndarray:
    """Per-row padded length of encoded rows: text + visual tokens, the length collate pads to.

    The visual tokens (frames x pixels / patch area) dominate for video; text rows still cost
    their text. Rows without the token counts fall back to `visual_cost`.
    """
    if N_TEXT_TOKENS in batch and N_VISUAL_TOKENS in batch:
        return np.asarray(batch[N_TEXT_TOKENS], np.int64) + np.asarray(batch[N_VISUAL_TOKENS], np.int64)
    return visual_cost(batch)


def estimated_cost(row: Mapping[str, Any], budget: int, contract: Any = None) -> int:
    """Visual cost of a manifest row before decode: frames it will get x pixels per frame.

    Frames: 0 for text, 1 for an image, and for a video the row's FRAME_BUDGET (Hybrid-Frame) or
    `budget`, through the contract's frame rule when the probe gave NUM_FRAMES (and FPS). Pixels:
    the contract's resized HEIGHT x WIDTH when the probe or manifest gave a size, else 1 (the
    frame count alone orders the rows). `contract` is a SamplingContract or None.
    """
    kind = row.get(S.MEDIA_TYPE)
    if kind not in (S.MEDIA_VIDEO, S.MEDIA_IMAGE):
        return 0
    frames = 1
    if kind == S.MEDIA_VIDEO:
        own = row.get(S.FRAME_BUDGET)
        frames = int(own) if own is not None and int(own) > 0 else int(budget)
        total, fps = int(row.get(S.NUM_FRAMES) or 0), float(row.get(S.FPS) or 0.0)
        if contract is not None and total > 0 and (contract.mode == "fixed" or fps > 0):
            try:
                frames = len(contract.frame_indices(total, fps, frames))
            except ValueError:  # a clip too short for the rule: decode will reject it anyway
                pass
    height, width = int(row.get(S.HEIGHT) or 0), int(row.get(S.WIDTH) or 0)
    if height <= 0 or width <= 0:
        return frames
    if contract is not None:
        height, width = contract.output_size(height, width, kind)
    return frames * height * width


def _rng(seed: Seed, window: int) -> np.random.Generator:
    base = [int(seed)] if isinstance(seed, (int, np.integer)) else [int(s) for s in seed]
    return np.random.default_rng([*base, int(window)])


def _window_order(costs: np.ndarray, group_size: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of one window: cost-sorted groups of `group_size` in shuffled order, leftover last.

    The leftover (len % group_size rows, only in a stream's last window) is a random slice of the
    cost ranking, so drop_last does not always drop the dearest rows.
    """
    ranked = np.argsort(np.asarray(costs), kind="stable")
    groups, rest = divmod(len(ranked), group_size)
    cut = int(rng.integers(groups + 1)) * group_size
    full = np.concatenate([ranked[:cut], ranked[cut + rest :]]).reshape(groups, group_size)
    return np.concatenate([full[rng.permutation(groups)].ravel(), ranked[cut : cut + rest]]).astype(np.int64)


def window_rows(window: int, group_size: int) -> int:
    """Rows per window: `window` rounded up to a whole number of groups."""
    if window < 1 or group_size < 1:
        raise ValueError(f"bucketing: window and group_size must be >= 1, got {window}, {group_size}")
    return -(-window // group_size) * group_size


def bucket_order(costs: Sequence[float] | np.ndarray, group_size: int, window: int, seed: Seed) -> np.ndarray:
    """A permutation of a stream: each window of rows cost-sorted, cut into groups, groups shuffled.

    Consecutive `group_size` slices of the result are micro-batches of similar cost; rows never
    leave their window (bounded memory on a stream). Exactly the order `iter_cost_grouped` yields.
    """
    values = np.asarray(costs)
    span = window_rows(window, group_size)
    parts = [
        start + _window_order(values[start : start + span], group_size, _rng(seed, w))
        for w, start in enumerate(range(0, len(values), span))
    ]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _batch_len(batch: Mapping[str, Any]) -> int:
    return len(next(iter(batch.values()))) if batch else 0


def _concat(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for key in a:
        try:
            out[key] = np.concatenate([a[key], b[key]])
        except ValueError:  # tensor columns of different shapes: join as objects, one by one
            out[key] = np.empty(len(a[key]) + len(b[key]), object)
            for i, value in enumerate([*a[key], *b[key]]):
                out[key][i] = value
    return out


def _slice(batch: Mapping[str, np.ndarray], index: Any) -> dict[str, np.ndarray]:
    return {k: v[index] for k, v in batch.items()}


def iter_cost_grouped(
    batches: Iterable[Mapping[str, np.ndarray]],
    batch_size: int,
    *,
    window: int,
    seed: Seed,
    cost_fn: CostFn = sequence_cost,
    drop_last: bool = True,
) -> Iterator[dict[str, np.ndarray]]:
    """Re-batch a stream into micro-batches of similar cost, window by window (`bucket_order`).

    Feed it `shard.iter_batches(batch_size=window_rows(window, batch_size), batch_format="numpy")`.
    At most a window plus one incoming batch wait in memory. The rows are the stream's rows (a
    permutation within each window, every column kept), and with drop_last it yields
    floor(n / batch_size) batches, as `iter_batches(batch_size, drop_last=True)` would: ranks
    with equal shards still take the same number of steps.
    """
    span = window_rows(window, batch_size)
    pending: dict[str, np.ndarray] | None = None
    w = 0
    for batch in batches:
        pending = dict(batch) if pending is None else _concat(pending, batch)
        while _batch_len(pending) >= span:
            head, pending = _slice(pending, slice(0, span)), _slice(pending, slice(span, None))
            yield from _emit(head, batch_size, _rng(seed, w), cost_fn, drop=False)
            w += 1
    if pending is not None and _batch_len(pending):
        yield from _emit(pending, batch_size, _rng(seed, w), cost_fn, drop=drop_last)


def _emit(
    rows: dict[str, np.ndarray], batch_size: int, rng: np.random.Generator, cost_fn: CostFn, drop: bool
) -> Iterator[dict[str, np.ndarray]]:
    """One window's micro-batches in `_window_order`; `drop`: leave out the partial one at the end."""
    order = _window_order(np.asarray(cost_fn(rows)), batch_size, rng)
    stop = len(order) - len(order) % batch_size if drop else len(order)
    for start in range(0, stop, batch_size):
        yield _slice(rows, order[start : start + batch_size])


def padding_stats(costs: Sequence[float] | np.ndarray, batch_size: int) -> dict[str, float]:
    """Padding of a stream cut into full micro-batches, where a batch costs batch_size x its dearest row.

    padded_fraction: share of the padded batches that is padding; batch_cost_max_min: dearest over
    cheapest micro-batch; padded_total: sum of the padded batch costs (what the steps compute).
    """
    values = np.asarray(costs, np.float64)
    values = values[: len(values) - len(values) % batch_size].reshape(-1, batch_size)
    if values.size == 0:
        raise ValueError(f"padding_stats: fewer than batch_size={batch_size} rows")
    padded = values.max(axis=1) * batch_size
    return {
        "padded_fraction": float(1.0 - values.sum() / padded.sum()),
        "batch_cost_max_min": float(padded.max() / max(padded.min(), 1e-12)),
        "padded_total": float(padded.sum()),
        "batches": int(len(padded)),
    }
