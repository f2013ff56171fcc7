# Run: python benchmarks/bucketing.py [--budgets 4 16] [--micro 4] [--window 64] [--world 2]
"""Cost-grouped micro-batches (`data.bucket_by_cost`) vs the plain stream, on the synthetic training set.

No training: the synthetic set's training manifest (the demo's 48 videos + 32 images, mixed) is
generated in a temp dir and probed (frame size, frame count), each row priced before decode by
`estimated_cost` (frames the contract gives it x resized pixels per frame), and both orders are
cut into micro-batches exactly as a Train worker would: the plain stream in manifest order, and
`bucket_order` (what `iter_cost_grouped` yields in the training loop). A micro-batch costs
micro x its dearest row (everything is padded to it).

Printed per budget: padded fraction (the share of the padded micro-batches that is padding) and
the ratio bucketed/plain; max/min micro-batch cost; total padded cost; and, with the rows dealt
round-robin to `--world` ranks that each group their own shard with the same seed, the mean
per-step rank imbalance (slowest rank / mean rank cost), i.e. how long ranks wait on each other.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def synthetic_rows(tmp: Path) -> list[dict]:
    from videosft.config import SyntheticConfig
    from videosft.data.manifest import read_manifest
    from videosft.data.probe import probe_sample
    from videosft.data.synthetic import make_synthetic

    syn = SyntheticConfig()
    made = make_synthetic(
        tmp / "data",
        seed=syn.seed,
        n_train_video=syn.n_train_video,
        n_train_image=syn.n_train_image,
        n_eval_video=1,
        n_eval_image=1,
        size=syn.size,
        num_frames=syn.num_frames,
        fps=syn.fps,
    )
    return [probe_sample(r) for r in read_manifest(str(made.train))]


def rank_imbalance(costs: np.ndarray, micro: int, world: int, window: int, seed: int, bucketed: bool) -> float:
    """Mean over steps of max/mean padded micro-batch cost across ranks (1.0: nobody waits)."""
    from videosft.data.batching import bucket_order

    per_rank = []
    for r in range(world):
        mine = costs[r::world]
        if bucketed:
            mine = mine[bucket_order(mine, micro, window, [seed, 0])]
        steps = len(mine) // micro
        per_rank.append(mine[: steps * micro].reshape(steps, micro).max(axis=1) * micro)
    steps = min(len(p) for p in per_rank)
    table = np.stack([p[:steps] for p in per_rank])
    return float(np.mean(table.max(axis=0) / table.mean(axis=0)))


def report(costs: np.ndarray, budget: int, micro: int, window: int, world: int, seed: int) -> dict:
    from videosft.data.batching import bucket_order, padding_stats

    plain = padding_stats(costs, micro)
    grouped = padding_stats(costs[bucket_order(costs, micro, window, seed)], micro)
    out = {
        "budget": budget,
        "plain": plain,
        "bucketed": grouped,
        "padded_ratio": grouped["padded_fraction"] / plain["padded_fraction"],
        "compute_ratio": grouped["padded_total"] / plain["padded_total"],
        "imbalance_plain": rank_imbalance(costs, micro, world, window, seed, False),
        "imbalance_bucketed": rank_imbalance(costs, micro, world, window, seed, True),
    }
    print(
        f"budget {budget:>2}: padded fraction plain {plain['padded_fraction']:.3f} -> bucketed "
        f"{grouped['padded_fraction']:.3f} (ratio {out['padded_ratio']:.3f}); padded cost "
        f"bucketed/plain {out['compute_ratio']:.3f}; micro-batch cost max/min plain "
        f"{plain['batch_cost_max_min']:.2f}, bucketed {grouped['batch_cost_max_min']:.2f}; "
        f"{world}-rank step imbalance (max/mean) plain {out['imbalance_plain']:.3f}, "
        f"bucketed {out['imbalance_bucketed']:.3f}",
        flush=True,
    )
    return out


def main() -> None:
    from videosft.data.batching import estimated_cost
    from videosft.data.sampling import SamplingContract

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--micro", type=int, default=4)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--world", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    contract = SamplingContract()  # the demo's contract (fixed mode)
    with tempfile.TemporaryDirectory() as tmp:
        rows = synthetic_rows(Path(tmp))
    kinds = {k: sum(r["media_type"] == k for r in rows) for k in ("image", "video", "text")}
    print(
        f"synthetic training manifest: {len(rows)} rows {kinds}; micro {args.micro}, window {args.window}, "
        f"seed {args.seed}",
        flush=True,
    )
    for budget in args.budgets:
        costs = np.array([estimated_cost(r, budget, contract) for r in rows], np.int64)
        report(costs, budget, args.micro, args.window, args.world, args.seed)


if __name__ == "__main__":
    main()
