"""Streaming helpers over Ray Datasets: group rows by visual-token cost, mix sources by ratio.

Both work block by block (map_batches, union) and never materialize or shuffle a dataset, so they
run on data far larger than the object store.

Cost bucketing is why padded batches stay cheap: a 64-frame video and a single image in one micro
batch pad the image to the video's length, and the step costs what the video costs, times the
batch. `bucket_by_cost` tags each row with its cost and a bucket (a Ray Data map, runs anywhere);
`iter_bucketed_batches` turns any stream of batches, e.g. a Train worker's
`shard.iter_batches(...)`, into batches whose rows share a bucket. Grouping has to happen at the
consumer: Ray splits and re-packs blocks (streaming_split, block-size limits), so no block
layout produced upstream survives to the training loop.

Training does the grouping with `iter_cost_grouped` (`data.bucket_by_cost`): each Train worker
reads its shard in windows of `data.bucket_window` rows, orders a window by cost, cuts it into
micro-batches and shuffles their order (seeded), so a micro-batch holds rows of similar cost while
the order training sees stays random. The cost there is exact (the encoded row's text + visual
tokens, the length collate pads to), and the manifest rows are not reordered before decode: the
frame cache yields rows in its own order, and a pre-sorted list would reach a window as one run of
equal costs. Grouping permutes rows within a window only, so SAMPLE_INDEX (the data cursor's key)
rides along and the step count equals plain `iter_batches(drop_last=True)`. `bucket_order` is the
same ordering over a list of costs (tests, benchmarks/bucketing.py); `estimated_cost` prices a
manifest row before decode (frames the contract gives it x resized pixels).

`mix_by_ratio` mixes image/video/text sources in configured proportions by deterministic per-row
sampling (a hash of seed, source and row id), so a mix is reproducible whatever the block layout
and costs nothing but a filter. `replay_mix` is image replay for Video-SFT over plain manifest rows
(before decode, so training can number them for its data cursor): every video row once, plus an
exact number of image rows chosen by the same per-row hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from videosft import schema as S
from videosft.data.preprocess import N_TEXT_TOKENS, N_VISUAL_TOKENS

COST = "visual_cost"  # int64: frames x pixels of a decoded row, or its visual-token count
BUCKET = "cost_bucket"  # int64: index of the cost bucket (0 = cheapest)
MIX_SOURCE = "mix_source"  # str: which source of a mixture the row came from

CostFn = Callable[[dict[str, np.ndarray]], np.ndarray]
Seed = int | Sequence[int]


# --------------------------------------------------------------------------- cost
def visual_cost(batch: Mapping[str, Any]) -> np.ndarray:
    """Per-row cost: visual tokens if preprocess counted them, else frames x height x width.

    Encoded rows carry N_VISUAL_TOKENS (the model's true count) and no frames; decoded rows carry
    FRAMES, whose T*H*W is proportional to the tokens any patch-based tower makes of them.
    """
    if N_VISUAL_TOKENS in batch:
        return np.asarray(batch[N_VISUAL_TOKENS], np.int64)
    if S.FRAMES in batch:
        return np.array([int(np.prod(np.shape(f)[:3])) for f in batch[S.FRAMES]], np.int64)
    raise KeyError(f"visual_cost: batch has neither {N_VISUAL_TOKENS!r} nor {S.FRAMES!r} "
                   f"(columns: {sorted(batch)})")


def cost_boundaries(costs: Sequence[float] | np.ndarray, num_buckets: int) -> list[int]:
    """Bucket edges at cost quantiles of a sample, so buckets fill evenly.

    A small sample (`ds.take(1000)` through `visual_cost`, or probe metadata) is enough: edges
    only need to separate the modes (text, images, short and long videos).
    """
    if num_buckets < 1:
        raise ValueError(f"cost_boundaries: num_buckets must be >= 1, got {num_buckets}")
    values = np.asarray(costs, np.float64)
    if values.size == 0 or num_buckets == 1:
        return []
    edges = np.quantile(values, np.arange(1, num_buckets) / num_buckets, method="higher")
    return sorted({int(e) for e in edges})


def _tag_costs(batch: dict[str, np.ndarray], boundaries: list[int], cost_fn: CostFn) -> dict[str, np.ndarray]:
    cost = np.asarray(cost_fn(batch), np.int64)
    batch[COST] = cost
    # side="right": a row whose cost equals an edge goes to the bucket above, as quantiles do.
    batch[BUCKET] = np.searchsorted(np.asarray(boundaries, np.int64), cost, side="right").astype(np.int64)
    return batch


def bucket_by_cost(ds: Any, boundaries: Sequence[int], *, cost_fn: CostFn = visual_cost) -> Any:
    """Add COST and BUCKET columns (bucket i holds costs in [boundaries[i-1], boundaries[i]))."""
    edges = [int(b) for b in boundaries]
    if edges != sorted(edges):
        raise ValueError(f"bucket_by_cost: boundaries must be ascending, got {edges}")
    return ds.map_batches(_tag_costs, fn_kwargs={"boundaries": edges, "cost_fn": cost_fn},
                          batch_format="numpy")


def _take(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Rows -> a numpy batch (column -> array), the shape `iter_batches(batch_format="numpy")` gives."""
    out = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        try:
            out[key] = np.stack(values) if isinstance(values[0], np.ndarray) else np.asarray(values)
        except ValueError:  # ragged tensors (frames of different sizes) stay an object array
            out[key] = np.empty(len(values), object)
            out[key][:] = values
    return out


def _rows(batch: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    n = len(next(iter(batch.values()))) if batch else 0
    for i in range(n):
        yield {k: v[i] for k, v in batch.items()}


def iter_bucketed_batches(batches: Iterable[Mapping[str, Any]], batch_size: int, *,
                          key: str = BUCKET, drop_last: bool = False) -> Iterator[dict[str, np.ndarray]]:
    """Re-batch a stream so every batch holds rows of one bucket; memory stays bounded.

    At most (batch_size - 1) rows wait per bucket, so a few buckets hold back a few batches.
    Leftovers come out at the end (partial) unless drop_last. Drop-in for the training loop:
    `iter_bucketed_batches(shard.iter_batches(batch_size=64, batch_format="numpy"), micro)`.
    """
    if batch_size < 1:
        raise ValueError(f"iter_bucketed_batches: batch_size must be >= 1, got {batch_size}")
    pending: dict[int, list[dict[str, Any]]] = {}
    for batch in batches:
        for row in _rows(batch):
            group = pending.setdefault(int(row[key]), [])
            group.append(row)
            if len(group) == batch_size:
                yield _take(group)
                pending[int(row[key])] = []
    if not drop_last:
        for group in pending.values():
            if group:
                yield _take(group)


# --------------------------------------------------------------------------- cost-grouped micro-batches
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
    full = np.concatenate([ranked[:cut], ranked[cut + rest:]]).reshape(groups, group_size)
    return np.concatenate([full[rng.permutation(groups)].ravel(), ranked[cut:cut + rest]]).astype(np.int64)


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
    parts = [start + _window_order(values[start:start + span], group_size, _rng(seed, w))
             for w, start in enumerate(range(0, len(values), span))]
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


def iter_cost_grouped(batches: Iterable[Mapping[str, np.ndarray]], batch_size: int, *, window: int, seed: Seed,
                      cost_fn: CostFn = sequence_cost, drop_last: bool = True) -> Iterator[dict[str, np.ndarray]]:
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


def _emit(rows: dict[str, np.ndarray], batch_size: int, rng: np.random.Generator, cost_fn: CostFn,
          drop: bool) -> Iterator[dict[str, np.ndarray]]:
    """One window's micro-batches in `_window_order`; `drop`: leave out the partial one at the end."""
    order = _window_order(np.asarray(cost_fn(rows)), batch_size, rng)
    stop = len(order) - len(order) % batch_size if drop else len(order)
    for start in range(0, stop, batch_size):
        yield _slice(rows, order[start:start + batch_size])


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
    return {"padded_fraction": float(1.0 - values.sum() / padded.sum()),
            "batch_cost_max_min": float(padded.max() / max(padded.min(), 1e-12)),
            "padded_total": float(padded.sum()), "batches": int(len(padded))}


# --------------------------------------------------------------------------- mixing
def _unit_hash(seed: int, source: str, ids: Iterable[Any]) -> np.ndarray:
    """Uniform [0, 1) per row from (seed, source, id): same rows kept on every run and layout."""
    prefix = f"{seed}\x00{source}\x00".encode()
    words = [int.from_bytes(hashlib.blake2b(prefix + str(i).encode(), digest_size=8).digest(), "little")
             for i in ids]
    return (np.asarray(words, np.uint64) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _sample_rows(table: Any, source: str, rate: float, seed: int, id_column: str) -> Any:
    """Keep each row floor(rate) times, plus once more with probability frac(rate)."""
    import pyarrow as pa

    u = _unit_hash(seed, source, table[id_column].to_pylist())
    copies = np.floor(rate) + (u < rate - np.floor(rate))
    taken = table.take(pa.array(np.repeat(np.arange(table.num_rows), copies.astype(np.int64))))
    return taken.append_column(MIX_SOURCE, pa.array([source] * taken.num_rows, pa.string()))


def mixture_rates(sizes: Mapping[str, int], ratios: Mapping[str, float],
                  num_samples: int | None = None) -> dict[str, float]:
    """Expected copies of each row per source so the mix has `ratios` (normalised).

    num_samples=None: the largest mix that repeats nothing (the scarcest source is used fully).
    A number: that many rows in all, repeating rows of a source that is short (rate > 1).
    """
    if set(sizes) != set(ratios):
        raise ValueError(f"mix_by_ratio: sources {sorted(sizes)} and ratio keys {sorted(ratios)} differ")
    if any(r < 0 for r in ratios.values()) or not sum(ratios.values()) > 0:
        raise ValueError(f"mix_by_ratio: ratios must be >= 0 with a positive sum, got {dict(ratios)}")
    total = float(sum(ratios.values()))
    share = {k: ratios[k] / total for k in ratios}
    if num_samples is None:
        usable = [sizes[k] / share[k] for k in share if share[k] > 0]
        if min(usable) == 0:
            raise ValueError(f"mix_by_ratio: a source with a positive ratio is empty ({dict(sizes)})")
        num_samples = int(min(usable))
    return {k: (share[k] * num_samples / sizes[k] if sizes[k] else 0.0) for k in share}


def mix_by_ratio(datasets: Mapping[str, Any], ratios: Mapping[str, float], seed: int = 0, *,
                 num_samples: int | None = None, sizes: Mapping[str, int] | None = None,
                 id_column: str = S.ID) -> Any:
    """One Dataset drawing from each source in the given proportions, tagged with MIX_SOURCE.

    `sizes` defaults to `ds.count()`, which is metadata-only for manifests and parquet (mix
    before decoding, or over a frame cache); pass them to avoid running a lazy pipeline twice.
    Proportions are exact in expectation (Bernoulli per row), within a few rows at any size.
    """
    sizes = dict(sizes) if sizes is not None else {k: ds.count() for k, ds in datasets.items()}
    rates = mixture_rates(sizes, ratios, num_samples)
    parts = [datasets[k].map_batches(_sample_rows, batch_format="pyarrow", batch_size=None,
                                     fn_kwargs={"source": k, "rate": rates[k], "seed": seed,
                                                "id_column": id_column})
             for k in sorted(datasets) if rates[k] > 0]
    return parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]



def _take_exact(rows: Sequence[dict[str, Any]], k: int, seed: int, source: str) -> list[dict[str, Any]]:
    """Exactly k rows: whole copies of `rows`, then the remainder with the smallest per-row hashes."""
    full, rest = divmod(k, len(rows)) if rows else (0, 0)
    order = np.argsort(_unit_hash(seed, source, [r[S.ID] for r in rows]), kind="stable")
    return list(rows) * full + [rows[i] for i in sorted(order[:rest])]


def replay_mix(rows: Sequence[dict[str, Any]], image_ratio: float, seed: int = 0) -> list[dict[str, Any]]:
    """Every non-image row (videos, text) plus image rows making `image_ratio` of the result.

    Image replay for Video-SFT: the video stream stays whole and round(n_video * r / (1 - r))
    image rows join it, chosen by a per-row hash of (seed, id) (the same rows on every run and
    manifest order; whole copies first when the manifest has too few images), then the mix is
    interleaved by a seeded permutation. Plain rows in, plain rows out: runs before decode, so
    the result can be numbered for the data cursor. MIX_SOURCE says "video" or "image".
    """
    if not 0.0 <= image_ratio < 1.0:
        raise ValueError(f"replay_mix: image_ratio must be in [0, 1), got {image_ratio}")
    videos = [r for r in rows if r[S.MEDIA_TYPE] != S.MEDIA_IMAGE]
    images = [r for r in rows if r[S.MEDIA_TYPE] == S.MEDIA_IMAGE]
    if not videos:
        raise ValueError("replay_mix: the manifest has no video (or text) rows to mix images into")
    n_images = round(len(videos) * image_ratio / (1.0 - image_ratio))
    if n_images and not images:
        raise ValueError(f"replay_mix: image_ratio={image_ratio} but the manifest has no image rows")
    out = [{**r, MIX_SOURCE: "video"} for r in videos]
    out += [{**r, MIX_SOURCE: "image"} for r in _take_exact(images, n_images, seed, "image")]
    # Interleave: a stream of all videos then all images would train one modality per half epoch.
    order = np.random.default_rng([seed, 7]).permutation(len(out))
    return [out[i] for i in order]
