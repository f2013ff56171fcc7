"""Cost-grouped micro-batches (`data.bucket_by_cost`): less padding on a realistic mixed manifest, the
same rows (SAMPLE_INDEX still attached), the same step count, deterministic by seed, groups shuffled."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videosft import schema as S
from videosft.config import ConfigError, load_config
from videosft.data.batching import (
    bucket_order,
    estimated_cost,
    iter_cost_grouped,
    padding_stats,
    sequence_cost,
    window_rows,
)
from videosft.data.preprocess import N_TEXT_TOKENS, N_VISUAL_TOKENS
from videosft.data.sampling import SamplingContract
from videosft.train.checkpoint import SAMPLE_INDEX, with_sample_index

MICRO, WINDOW = 4, 64


def realistic_manifest(n: int = 600, seed: int = 0) -> list[dict]:
    """A LLaVA-Video-178K-like mix after probe: 55% videos (10 s to 3 min, 24-30 fps, 360p to 1080p,
    some with a Hybrid-Frame budget), 35% images (336 px to 1280x960), 10% text-only rows."""
    rng = np.random.default_rng(seed)
    video_sizes = [(360, 640), (480, 854), (720, 1280), (1080, 1920), (1280, 720)]
    image_sizes = [(336, 336), (480, 640), (768, 1024), (960, 1280), (224, 224)]
    rows = []
    for i in range(n):
        kind = rng.choice([S.MEDIA_VIDEO, S.MEDIA_IMAGE, S.MEDIA_TEXT], p=[0.55, 0.35, 0.10])
        row = {S.ID: f"r{i}", S.MEDIA_TYPE: str(kind)}
        if kind == S.MEDIA_VIDEO:
            h, w = video_sizes[rng.integers(len(video_sizes))]
            fps = float(rng.choice([24.0, 25.0, 30.0]))
            row.update({S.HEIGHT: h, S.WIDTH: w, S.FPS: fps, S.NUM_FRAMES: int(fps * rng.uniform(10, 180))})
            if rng.random() < 0.3:
                row[S.FRAME_BUDGET] = int(rng.choice([2, 4, 8]))
        elif kind == S.MEDIA_IMAGE:
            h, w = image_sizes[rng.integers(len(image_sizes))]
            row.update({S.HEIGHT: h, S.WIDTH: w, S.NUM_FRAMES: 1})
        rows.append(row)
    return with_sample_index(rows)


def _costs(rows: list[dict], budget: int = 16) -> np.ndarray:
    return np.array([estimated_cost(r, budget, SamplingContract()) for r in rows], np.int64)


def _batches(columns: dict[str, np.ndarray], sizes: list[int]):
    """Split a numpy batch into consecutive batches of the given sizes (how a shard hands rows over)."""
    start = 0
    for size in sizes:
        yield {k: v[start : start + size] for k, v in columns.items()}
        start += size


# --------------------------------------------------------------------------- the estimate
def test_estimated_cost_prices_frames_times_pixels():
    contract = SamplingContract()  # fixed mode; video frames resized to <= 4 x 3136 px, images <= 16 x 3136
    assert estimated_cost({S.MEDIA_TYPE: S.MEDIA_TEXT}, 16, contract) == 0
    assert estimated_cost({S.MEDIA_TYPE: S.MEDIA_IMAGE}, 16, contract) == 1  # size unknown: frames alone
    assert estimated_cost({S.MEDIA_TYPE: S.MEDIA_VIDEO}, 16, contract) == 16
    assert estimated_cost({S.MEDIA_TYPE: S.MEDIA_VIDEO, S.FRAME_BUDGET: 4}, 16, contract) == 4  # Hybrid-Frame
    h, w = contract.output_size(720, 1280, "video")
    clip = {S.MEDIA_TYPE: S.MEDIA_VIDEO, S.HEIGHT: 720, S.WIDTH: 1280, S.NUM_FRAMES: 900, S.FPS: 30.0}
    assert estimated_cost(clip, 16, contract) == 16 * h * w
    assert estimated_cost({**clip, S.NUM_FRAMES: 6}, 16, contract) == 6 * h * w  # a short clip has 6 frames
    ih, iw = contract.output_size(960, 1280, "image")
    assert estimated_cost({S.MEDIA_TYPE: S.MEDIA_IMAGE, S.HEIGHT: 960, S.WIDTH: 1280}, 16, contract) == ih * iw
    fps_mode = SamplingContract(mode="fps")  # 2 fps of a 60 s clip = 120 frames, capped by the budget
    assert estimated_cost({**clip, S.NUM_FRAMES: 1800}, 64, fps_mode) == 64 * h * w
    assert estimated_cost({**clip, S.NUM_FRAMES: 300}, 64, fps_mode) == 20 * h * w  # 10 s at 2 fps


def test_sequence_cost_is_the_padded_length():
    batch = {N_TEXT_TOKENS: np.array([30, 12]), N_VISUAL_TOKENS: np.array([4, 256])}
    assert sequence_cost(batch).tolist() == [34, 268]
    assert sequence_cost({N_VISUAL_TOKENS: np.array([5])}).tolist() == [5]


# --------------------------------------------------------------------------- padding
@pytest.mark.parametrize("budget", [4, 16, 64])
def test_padding_drops_on_a_realistic_mixed_manifest(budget):
    costs = _costs(realistic_manifest(), budget)
    plain = padding_stats(costs, MICRO)
    grouped = padding_stats(costs[bucket_order(costs, MICRO, WINDOW, seed=0)], MICRO)
    ratio = grouped["padded_fraction"] / plain["padded_fraction"]
    print(
        f"budget {budget}: padded fraction {plain['padded_fraction']:.3f} -> {grouped['padded_fraction']:.3f} "
        f"(ratio {ratio:.3f}); padded cost ratio {grouped['padded_total'] / plain['padded_total']:.3f}"
    )
    assert grouped["batches"] == plain["batches"]
    assert ratio < 0.35
    assert grouped["padded_total"] < 0.85 * plain["padded_total"]


def test_a_larger_window_pads_less():
    costs = _costs(realistic_manifest())
    fractions = [
        padding_stats(costs[bucket_order(costs, MICRO, w, seed=0)], MICRO)["padded_fraction"]
        for w in (MICRO, 16, 64, 256)
    ]
    assert fractions[0] == pytest.approx(padding_stats(costs, MICRO)["padded_fraction"])  # a window of one group
    assert fractions == sorted(fractions, reverse=True)


# --------------------------------------------------------------------------- same rows
@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 10), min_size=0, max_size=120), st.integers(1, 6), st.integers(1, 40), st.integers(0, 2**31)
)
def test_bucket_order_is_a_permutation_of_cost_sorted_groups(costs, micro, window, seed):
    costs = np.array(costs, np.int64)
    order = bucket_order(costs, micro, window, seed)
    assert sorted(order.tolist()) == list(range(len(costs)))
    span = window_rows(window, micro)
    for start in range(0, len(costs), span):  # rows stay in their window
        assert set(order[start : start + span].tolist()) == set(range(start, min(start + span, len(costs))))
        groups = [costs[order[i : i + micro]] for i in range(start, min(start + span, len(costs)), micro)]
        full = sorted((g for g in groups if len(g) == micro), key=lambda g: (g.min(), g.max()))
        for lo, hi in zip(full, full[1:]):  # groups are slices of the window's cost ranking
            assert lo.max() <= hi.min()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 150), st.integers(1, 5), st.integers(1, 50), st.data())
def test_iter_cost_grouped_keeps_rows_and_step_count(n, micro, window, data):
    rows = realistic_manifest(n, seed=n)
    columns = {S.ID: np.array([r[S.ID] for r in rows], object), SAMPLE_INDEX: np.arange(n), "cost": _costs(rows)}
    sizes, left = [], n
    while left:  # the shard hands rows over in batches of any size
        sizes.append(data.draw(st.integers(1, left)))
        left -= sizes[-1]
    out = list(iter_cost_grouped(_batches(columns, sizes), micro, window=window, seed=3, cost_fn=lambda b: b["cost"]))
    assert len(out) == n // micro and all(len(b[S.ID]) == micro for b in out)  # = iter_batches(drop_last)
    for b in out:  # every column moved together: SAMPLE_INDEX still names its row
        assert [rows[i][S.ID] for i in b[SAMPLE_INDEX]] == b[S.ID].tolist()
    kept = [i for b in out for i in b[SAMPLE_INDEX].tolist()]
    assert len(set(kept)) == len(kept) == n - n % micro
    every = list(
        iter_cost_grouped(
            _batches(columns, sizes), micro, window=window, seed=3, cost_fn=lambda b: b["cost"], drop_last=False
        )
    )
    assert Counter(i for b in every for i in b[SAMPLE_INDEX].tolist()) == Counter(range(n))
    # the loop's order is bucket_order's, whatever batch sizes the stream arrived in
    expected = bucket_order(columns["cost"], micro, window, 3).tolist()
    assert [i for b in every for i in b[SAMPLE_INDEX].tolist()] == expected


def test_dropped_rows_are_not_always_the_dearest():
    costs = np.arange(14)  # 3 groups of 4 and 2 rows left over in one window
    dropped = {tuple(sorted(costs[bucket_order(costs, 4, 64, s)][-2:])) for s in range(40)}
    assert len(dropped) == 4 and (12, 13) in dropped and (0, 1) in dropped


def test_ragged_columns_survive_regrouping():
    frames = [np.zeros((t, 2, 2, 3), np.uint8) for t in (1, 1, 4, 2, 4, 2)]
    col = np.empty(6, object)
    col[:] = frames
    out = list(
        iter_cost_grouped(
            [{"frames": np.stack(frames[:2])}, {"frames": col[2:]}],
            2,
            window=6,
            seed=0,
            cost_fn=lambda b: np.array([len(f) for f in b["frames"]]),
        )
    )
    assert sorted(tuple(len(f) for f in b["frames"]) for b in out) == [(1, 1), (2, 2), (4, 4)]


# --------------------------------------------------------------------------- seed and shuffling
def test_deterministic_by_seed():
    costs = _costs(realistic_manifest())
    assert bucket_order(costs, MICRO, WINDOW, 7).tolist() == bucket_order(costs, MICRO, WINDOW, 7).tolist()
    assert bucket_order(costs, MICRO, WINDOW, [7, 1]).tolist() != bucket_order(costs, MICRO, WINDOW, [7, 0]).tolist()
    assert bucket_order(costs, MICRO, WINDOW, 7).tolist() != bucket_order(costs, MICRO, WINDOW, 8).tolist()


def test_group_order_is_shuffled_not_monotone():
    costs = _costs(realistic_manifest(n=64 * 20))
    order = bucket_order(costs, MICRO, WINDOW, seed=0)
    per_window = costs[order].reshape(-1, WINDOW // MICRO, MICRO).max(axis=2)  # dearest row per group
    monotone = sum(np.all(np.diff(w) >= 0) or np.all(np.diff(w) <= 0) for w in per_window)
    assert monotone == 0
    # position in the window says nothing about cost: correlation near 0 over all windows (sd ~0.06)
    positions = np.tile(np.arange(WINDOW // MICRO), len(per_window))
    assert abs(np.corrcoef(positions, per_window.ravel())[0, 1]) < 0.2
    first = {int(bucket_order(costs[:WINDOW], MICRO, WINDOW, s)[0]) for s in range(20)}
    assert len(first) > 5  # the first micro-batch differs by seed


def test_ranks_with_the_same_seed_step_through_similar_costs():
    costs = _costs(realistic_manifest(n=1024))
    imbalance = {}
    for bucketed in (False, True):
        steps = []
        for r in range(2):  # a round-robin split, each rank grouping its own shard
            mine = costs[r::2]
            mine = mine[bucket_order(mine, MICRO, WINDOW, [0, 0])] if bucketed else mine
            steps.append(mine[: len(mine) // MICRO * MICRO].reshape(-1, MICRO).max(axis=1))
        table = np.stack(steps).astype(float)
        imbalance[bucketed] = float(np.mean(table.max(axis=0) / np.maximum(table.mean(axis=0), 1)))
    print(f"2-rank step imbalance (max/mean): plain {imbalance[False]:.3f}, bucketed {imbalance[True]:.3f}")
    assert imbalance[True] < imbalance[False]


# --------------------------------------------------------------------------- config and the loop seam
def test_config_knobs():
    cfg = load_config(None)
    assert cfg.data.bucket_by_cost is True and cfg.data.bucket_window == 64
    assert load_config(None, ["data.bucket_by_cost=false"]).data.bucket_by_cost is False
    with pytest.raises(ConfigError, match=r"data\.bucket_window"):
        load_config(None, ["data.bucket_window=0"])


class _Shard:
    """The `iter_batches` seam of Ray's DataIterator over an in-memory numpy batch."""

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        self.columns, self.calls = columns, []

    def iter_batches(
        self,
        *,
        batch_size: int,
        batch_format: str,
        drop_last: bool = False,
        local_shuffle_buffer_size: int | None = None,
        local_shuffle_seed: int | None = None,
    ):
        self.calls.append(batch_size)
        self.shuffles = getattr(self, "shuffles", []) + [(local_shuffle_buffer_size, local_shuffle_seed)]
        n = len(next(iter(self.columns.values())))
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            yield {k: v[start : min(start + batch_size, n)] for k, v in self.columns.items()}


@pytest.mark.parametrize("bucketed", [False, True])
def test_loop_micro_batches(bucketed):
    from videosft.train.loop import micro_batches

    rows = realistic_manifest(150)
    cfg = load_config(None, [f"data.bucket_by_cost={str(bucketed).lower()}", "data.bucket_window=30"])
    visual = _costs(rows) // 784  # tokens of 28 x 28 px
    shard = _Shard({SAMPLE_INDEX: np.arange(150), N_VISUAL_TOKENS: visual, N_TEXT_TOKENS: np.full(150, 20)})
    out = list(micro_batches(shard, cfg, epoch=0))
    assert len(out) == 150 // cfg.train.micro_batch_size  # the same steps either way
    assert shard.calls == [32 if bucketed else cfg.train.micro_batch_size]  # windows of whole micro-batches
    padded = padding_stats(np.concatenate([b[N_VISUAL_TOKENS] + 20 for b in out]), cfg.train.micro_batch_size)
    assert (padded["padded_fraction"] < 0.5 * padding_stats(visual + 20, 4)["padded_fraction"]) == bucketed


def test_train_seed_reaches_the_data_order():
    """Weights come from a checkpoint and nothing else is random: the seed must shuffle the stream."""
    from videosft.train.loop import micro_batches

    seeds = []
    for overrides in (["train.seed=0"], ["train.seed=1"], ["train.seed=0", "data.shuffle_buffer=0"]):
        shard = _Shard(
            {SAMPLE_INDEX: np.arange(40), N_VISUAL_TOKENS: np.ones(40, int), N_TEXT_TOKENS: np.ones(40, int)}
        )
        list(micro_batches(shard, load_config(None, overrides), epoch=0))
        seeds.append(shard.shuffles[0])
    assert seeds[0][0] == 256 and seeds[0][1] != seeds[1][1]
    assert seeds[2] == (None, None)
