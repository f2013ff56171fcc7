"""Paired statistics of the miniature study: Δ against the base per item and per seed.

PURE (stdlib only). Every trial and the base are scored on the *same* held-out items, so Δ is
taken item by item: d[s][i] = correct(trial of seed s, item i) − correct(base, item i), in
accuracy points (0 or ±100 per item). The seeds × items table is a two-way *crossed* design (every
seed answers every item), which we model as

    d[s][i] = μ + a_s + b_i + e_si        (seed effect, item effect, interaction/noise)

and estimate the variance of the grand mean by the method of moments:

    V = var_s(row means) / S  +  var_i(column means) / I

The first term estimates σa²/S + σe²/(SI) (how much the answer would move with other seeds), the
second σb²/I + σe²/(SI) (with other items). Their sum is conservative by σe²/(SI), exactly like the
pigeonhole bootstrap over seeds and items (Owen 2007, "The pigeonhole bootstrap"), but without its
resampling noise, and it does not understate the seed term with few seeds the way a bootstrap over
5 seeds does (a percentile bootstrap over n seeds is a t-interval with the normal quantile and a
(n−1)/n variance). The 95% interval is t-based with Welch–Satterthwaite degrees of freedom:
with few seeds and a large seed term the quantile is wide (df → S−1), with a small one the item
term dominates (df → I−1). The slope of Δ image per doubling of frames is the same estimator
applied to the per-(seed, item) least-squares slope across the fixed budgets (a linear contrast
of the d's), so it is paired too.

The *minimum detectable effect* at this n is (t_.975 + t_.80) × SE: the true Δ that a two-sided
test at 5 % would detect with 80 % power, given the variance this run measured.

No interval is given (None) with one seed (the seed term is unknown) or when every seed answered
every item identically (the seed never reached training: a bug to fix, not certainty).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Two-sided 95% (one-sided 97.5%) and one-sided 80% Student-t quantiles by degrees of freedom.
_T975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    12: 2.179,
    15: 2.131,
    20: 2.086,
    25: 2.060,
    30: 2.042,
    40: 2.021,
    60: 2.000,
    120: 1.980,
}
_T80 = {
    1: 1.376,
    2: 1.061,
    3: 0.978,
    4: 0.941,
    5: 0.920,
    6: 0.906,
    7: 0.896,
    8: 0.889,
    9: 0.883,
    10: 0.879,
    12: 0.873,
    15: 0.866,
    20: 0.860,
    25: 0.856,
    30: 0.854,
    40: 0.851,
    60: 0.848,
    120: 0.845,
}


def _quantile(table: dict[int, float], df: float, limit: float) -> float:
    """The tabulated quantile at the next df at or below `df` (conservative); `limit` beyond the table."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df > max(table):
        return limit
    return table[max(k for k in table if k <= df)]


def t_quantile(df: float) -> float:
    """Two-sided 95% t quantile (1.96 beyond 120 df)."""
    return _quantile(_T975, df, 1.96)


def t80_quantile(df: float) -> float:
    """One-sided 80% t quantile, the power term of the minimum detectable effect (0.842 beyond 120)."""
    return _quantile(_T80, df, 0.842)


@dataclass(frozen=True)
class Estimate:
    """A mean Δ (points) with its 95% interval, how it was obtained and what it could detect."""

    mean: float
    low: float | None
    high: float | None
    n: int  # seeds
    n_items: int = 0
    se: float | None = None
    df: float | None = None
    mde: float | None = None  # minimum detectable effect (80% power, two-sided 5%)
    note: str = ""  # why there is no interval

    @property
    def significant_negative(self) -> bool:
        return self.high is not None and self.high < 0

    @property
    def significant_positive(self) -> bool:
        return self.low is not None and self.low > 0

    def text(self) -> str:
        if self.low is None:
            return f"{self.mean:+.1f} (n={self.n}{', ' + self.note if self.note else ''})"
        return f"{self.mean:+.1f} [{self.low:+.1f}, {self.high:+.1f}]"


def crossed(matrix: Sequence[Sequence[float]]) -> Estimate:
    """Grand mean of a seeds × items table with the crossed-design 95% interval (module docstring)."""
    if not matrix or not matrix[0]:
        raise ValueError("crossed: needs at least one seed and one item")
    n_items = len(matrix[0])
    if any(len(row) != n_items for row in matrix):
        raise ValueError("crossed: every seed must be scored on the same items")
    seeds = len(matrix)
    rows = [statistics.fmean(r) for r in matrix]
    mean = statistics.fmean(rows)
    if seeds < 2:
        return Estimate(mean, None, None, seeds, n_items, note="one seed: seed spread unknown")
    if all(list(r) == list(matrix[0]) for r in matrix[1:]):
        return Estimate(mean, None, None, seeds, n_items, note="seeds identical")
    cols = [statistics.fmean(matrix[s][i] for s in range(seeds)) for i in range(n_items)]
    v_seed = statistics.variance(rows) / seeds
    v_item = statistics.variance(cols) / n_items if n_items > 1 else 0.0
    var = v_seed + v_item
    se = math.sqrt(var)
    if se == 0.0:
        return Estimate(mean, mean, mean, seeds, n_items, se=0.0, df=float("inf"), mde=0.0)
    denom = v_seed**2 / (seeds - 1) + (v_item**2 / (n_items - 1) if n_items > 1 else 0.0)
    df = var**2 / denom if denom > 0 else float("inf")
    half = t_quantile(df) * se
    return Estimate(
        mean, mean - half, mean + half, seeds, n_items, se=se, df=df, mde=(t_quantile(df) + t80_quantile(df)) * se
    )


Outcomes = Mapping[str, float]  # item id -> 1.0 correct / 0.0 wrong


def paired_matrix(trials: Mapping[int, Outcomes], bases: Mapping[int, Outcomes]) -> tuple[list[str], list[list[float]]]:
    """(items, seeds × items Δ in points): each seed's trial minus its base, item by item.

    Only items every seed and its base scored are kept (a missing prediction is not a zero), in
    sorted id order, so the table does not depend on the order files were read in.
    """
    seeds = sorted(trials)
    if not seeds:
        raise ValueError("paired_matrix: no trials")
    common = set(trials[seeds[0]])
    for s in seeds:
        common &= set(trials[s]) & set(bases[s])
    items = sorted(common)
    if not items:
        raise ValueError("paired_matrix: the trials and the base share no scored item")
    return items, [[100.0 * (float(trials[s][i]) - float(bases[s][i])) for i in items] for s in seeds]


def slope_weights(budgets: Sequence[int]) -> list[float]:
    """Least-squares weights on log2(budget): slope = Σ w_b · y_b (needs two distinct budgets)."""
    xs = [math.log2(int(b)) for b in budgets]
    mx = statistics.fmean(xs)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("slope: needs at least two distinct budgets")
    return [(x - mx) / sxx for x in xs]


def slope_matrix(by_budget: Mapping[int, Sequence[Sequence[float]]]) -> list[list[float]]:
    """Per-(seed, item) least-squares slope of Δ on log2(budget), from budget -> seeds × items Δ."""
    budgets = sorted(by_budget)
    weights = slope_weights(budgets)
    first = by_budget[budgets[0]]
    return [
        [sum(w * by_budget[b][s][i] for w, b in zip(weights, budgets)) for i in range(len(first[0]))]
        for s in range(len(first))
    ]


def planned_mde(seeds: int, items: int, seed_sd: float, item_sd: float) -> tuple[float, float]:
    """(half-width of the 95% interval, minimum detectable effect) a design would give, in points.

    `seed_sd`: sd of a seed's mean Δ around the truth (what reruns with other seeds spread by);
    `item_sd`: sd of an item's seed-averaged Δ (at most 100·sqrt(P(the item flips))). The same
    crossed variance and Satterthwaite t as `crossed`, so a preset can be sized before it runs.
    """
    v_seed, v_item = seed_sd**2 / seeds, item_sd**2 / items
    var = v_seed + v_item
    df = var**2 / (v_seed**2 / (seeds - 1) + v_item**2 / (items - 1))
    se = math.sqrt(var)
    return t_quantile(df) * se, (t_quantile(df) + t80_quantile(df)) * se
