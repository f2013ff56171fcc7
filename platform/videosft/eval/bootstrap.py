"""Clustered bootstrap confidence intervals for benchmark scores.

Questions about the same image or video are not independent (MME asks two per image, Video-MME
three per video, MMBench's rotations share one image), so resampling questions understates the
uncertainty. Here whole clusters (the EvalItem ``cluster`` key) are resampled with replacement,
every row of a drawn cluster going in, and the metric is recomputed on each resample; the
interval is the percentile interval of those replicates. A fixed seed makes it reproducible.

``metric_fn`` may return a float or a scorer's dict (its ``"overall"`` is used), so any
registered ``Benchmark.score`` can be passed directly. Resampled rows are shallow copies whose
cluster-level keys (``cluster``, ``circular_group``) get a per-draw suffix, so that a cluster
drawn twice counts as two clusters in scorers that group by them (MME acc+, MMBench circular).
``headline_ci`` packages the interval of a benchmark's headline metric as the ``ci`` block of its
scores JSON (the evaluation runner writes one per benchmark).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

_GROUP_KEYS = ("circular_group",)


def _as_float(value: Any) -> float:
    if isinstance(value, Mapping):
        value = value["overall"]
    return float(value)


def clustered_bootstrap_ci(
    rows: Sequence[Mapping[str, Any]],
    metric_fn: Callable[[Sequence[Mapping[str, Any]]], Any],
    cluster_key: str = "cluster",
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """(lo, hi) percentile interval of ``metric_fn`` over cluster-resampled ``rows``."""
    if not rows:
        raise ValueError("clustered_bootstrap_ci needs at least one row")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    clusters: dict[Any, list[Mapping[str, Any]]] = {}
    for i, r in enumerate(rows):
        if cluster_key not in r:
            raise KeyError(f"row {i} has no cluster key {cluster_key!r}")
        clusters.setdefault(r[cluster_key], []).append(r)
    members = list(clusters.values())
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot, dtype=np.float64)
    for b in range(n_boot):
        picks = rng.integers(0, len(members), size=len(members))
        sample = []
        for draw, c in enumerate(picks):
            for r in members[c]:
                row = dict(r)
                row[cluster_key] = f"{r[cluster_key]}#{draw}"
                for k in _GROUP_KEYS:
                    if k in row:
                        row[k] = f"{row[k]}#{draw}"
                sample.append(row)
        stats[b] = _as_float(metric_fn(sample))
    lo, hi = np.quantile(stats, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def headline_ci(
    rows: Sequence[Mapping[str, Any]],
    score_fn: Callable[[Sequence[Mapping[str, Any]]], Mapping[str, Any]],
    metric: str = "overall",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any] | None:
    """The ``ci`` block of a benchmark's scores: a clustered percentile interval of ``metric``.

    Rows without a ``cluster`` are their own cluster (their id). None when there is nothing to
    resample (no rows, or ``n_boot`` 0).
    """
    if not rows or n_boot < 1:
        return None
    rows = [r if r.get("cluster") not in (None, "") else {**r, "cluster": f"id:{r['id']}"} for r in rows]
    lo, hi = clustered_bootstrap_ci(
        rows, lambda rs: float(score_fn(rs)[metric]), n_boot=n_boot, alpha=1.0 - level, seed=seed
    )
    return {
        "low": lo,
        "high": hi,
        "level": level,
        "n_clusters": len({r["cluster"] for r in rows}),
        "resamples": n_boot,
        "seed": seed,
        "metric": metric,
        "cluster_key": "cluster",
    }
