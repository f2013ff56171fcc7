"""Statistics and the plain-words verdict of the miniature study, computed from the numbers.

PURE (stdlib only). Input: one `Point` per trial (variant, training budget, seed, Δ image and Δ video
against the base, in accuracy points). Output: per (variant, budget) the mean over seeds with a 95%
t-interval, the slope of Δ image against log2(budget) across the fixed budgets with its interval,
and a verdict whose every word is chosen by a rule below, never written in advance:

- *trade-off present*: at some fixed budget Δ video is significantly > 0 and at some fixed budget
  Δ image is significantly < 0 (interval excludes 0);
- *trade-off absent*: Δ image is not significantly < 0 at any budget and its mean is >= 0 at every
  budget (no spatial cost, not merely an unproven one);
- *not significant*: anything else (e.g. a negative Δ image whose interval spans 0).
With one seed per point, or seeds that agree exactly, there is no spread to build an interval
from: the interval is then undefined (None) and nothing is called significant.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable, Sequence

# Two-sided 95% Student-t quantiles by degrees of freedom (beyond 30: the normal 1.96 is within 4%).
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
         10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042}


@dataclass(frozen=True)
class Point:
    """One trial's outcome: Δ = trial score − base score, accuracy points (0..100 scale)."""

    variant: str  # "fixed", "hybrid", "replay", ...
    budget: int | str  # training frame budget; "hybrid" rows may carry their mean frames elsewhere
    seed: int
    d_image: float
    d_video: float


@dataclass(frozen=True)
class Summary:
    mean: float
    low: float | None
    high: float | None
    n: int

    @property
    def significant_negative(self) -> bool:
        return self.high is not None and self.high < 0

    @property
    def significant_positive(self) -> bool:
        return self.low is not None and self.low > 0

    def text(self) -> str:
        if self.low is None:
            return f"{self.mean:+.1f} (n={self.n})"
        return f"{self.mean:+.1f} [{self.low:+.1f}, {self.high:+.1f}]"


def t_quantile(df: int) -> float:
    """Two-sided 95% t quantile; the next tabulated df below `df` (conservative) or 1.96."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df > 30:
        return 1.96
    return _T975[max(k for k in _T975 if k <= df)]


def summarize(values: Sequence[float]) -> Summary:
    """Mean and 95% t-interval over seeds (interval None with fewer than two values)."""
    if not values:
        raise ValueError("summarize: no values")
    mean = statistics.fmean(values)
    if len(values) < 2 or statistics.pstdev(values) == 0.0:
        # No spread, no interval: identical seeds usually mean the seed never reached training
        # (a bug to fix, not certainty), so nothing built on them may be called significant.
        return Summary(mean, None, None, len(values))
    half = t_quantile(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return Summary(mean, mean - half, mean + half, len(values))


def slope(xs: Sequence[float], ys: Sequence[float]) -> Summary:
    """OLS slope of ys on xs with a 95% interval (None when fewer than 3 points or one x)."""
    if len(xs) != len(ys) or not xs:
        raise ValueError("slope: xs and ys must be equal-length and non-empty")
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("slope: needs at least two distinct budgets")
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    if len(xs) < 3:
        return Summary(b, None, None, len(xs))
    resid = sum((y - my - b * (x - mx)) ** 2 for x, y in zip(xs, ys))
    se = math.sqrt(resid / (len(xs) - 2) / sxx)
    half = t_quantile(len(xs) - 2) * se
    return Summary(b, b - half, b + half, len(xs))


def by_point(points: Iterable[Point]) -> dict[tuple[str, int | str], dict[str, Summary]]:
    """(variant, budget) -> {"image": Summary, "video": Summary} over seeds."""
    groups: dict[tuple[str, int | str], list[Point]] = {}
    for p in points:
        groups.setdefault((p.variant, p.budget), []).append(p)
    return {k: {"image": summarize([p.d_image for p in v]), "video": summarize([p.d_video for p in v])}
            for k, v in groups.items()}


def verdict(points: Sequence[Point]) -> dict[str, object]:
    """The study's answer from its numbers: a label, the sentences that justify it, the statistics."""
    table = by_point(points)
    fixed = sorted(b for v, b in table if v == "fixed")
    if not fixed:
        raise ValueError("verdict: needs trials of variant 'fixed'")
    img = {b: table[("fixed", b)]["image"] for b in fixed}
    vid = {b: table[("fixed", b)]["video"] for b in fixed}
    cost = [b for b in fixed if img[b].significant_negative]
    gain = [b for b in fixed if vid[b].significant_positive]
    if cost and gain:
        label = "trade-off present"
    elif not cost and all(img[b].mean >= 0 for b in fixed):
        label = "trade-off absent"
    else:
        label = "not significant"
    lines = [f"Verdict: {label}."]
    lines.append(_budget_sentence("video", vid, gain, "gained"))
    lines.append(_budget_sentence("image", img, cost, "lost"))
    trend = None
    fx = [p for p in points if p.variant == "fixed"]
    if len({p.budget for p in fx}) >= 2:
        trend = slope([math.log2(int(p.budget)) for p in fx], [p.d_image for p in fx])
        direction = "grows" if trend.significant_negative else ("shrinks" if trend.significant_positive else
                                                                 "does not change significantly")
        lines.append(f"The image cost {direction} with the frame budget: slope of Δ image per doubling "
                     f"{trend.text()}.")
    lines += _variant_sentences(table, img, max(fixed))
    return {"label": label, "sentences": lines, "cost_budgets": cost, "gain_budgets": gain,
            "slope_image_per_doubling": None if trend is None else trend.__dict__,
            "table": {f"{v}/{b}": {k: s.__dict__ for k, s in d.items()} for (v, b), d in table.items()}}


def _budget_sentence(kind: str, stats: dict[int, Summary], sig: list[int], verb: str) -> str:
    detail = ", ".join(f"{b} frames {s.text()}" for b, s in stats.items())
    if sig:
        return f"Δ {kind} ({detail}): significantly {verb} at {', '.join(map(str, sig))} frames."
    return f"Δ {kind} ({detail}): no budget differs significantly from the base."


def _variant_sentences(table: dict, img: dict[int, Summary], largest: int) -> list[str]:
    """How each non-fixed variant's image cost compares with the largest fixed budget's."""
    out = []
    for (variant, budget), stats in sorted(table.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        if variant == "fixed":
            continue
        diff = stats["image"].mean - img[largest].mean
        better = "less" if diff > 0 else "more"
        out.append(f"{variant} ({budget}): Δ image {stats['image'].text()}, Δ video {stats['video'].text()}; "
                   f"{abs(diff):.1f} points {better} image cost than fixed {largest} frames.")
    return out
