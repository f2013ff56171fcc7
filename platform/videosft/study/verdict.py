"""The plain-words verdict of the miniature study, computed from paired per-item outcomes.

PURE (stdlib only). Input: one `TrialOutcomes` per trial (variant, training budget, seed, and per
held-out item whether the trial and the base answered it correctly). Output: per (variant,
budget) the paired Δ image / Δ video with the crossed seeds × items interval of
`study/paired.py`, the paired slope of Δ image per doubling of the fixed budgets, and a verdict
whose every word is chosen by a rule below, never written in advance:

- *trade-off present*: at some fixed budget Δ video is significantly > 0 and at some fixed budget
  Δ image is significantly < 0 (interval excludes 0);
- *trade-off absent*: Δ image is not significantly < 0 at any budget and its mean is >= 0 at every
  budget, each with an interval (no spatial cost, not merely an unproven one);
- *not significant*: anything else (e.g. a negative Δ image whose interval spans 0).
With one seed per point, or seeds that answered every item identically, there is no interval
(None) and nothing is called significant. `replication` compares two runs with disjoint seeds:
a verdict that changes between them is reported as *inconclusive* (the preset is not powered).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from videosft.study.paired import Estimate, crossed, paired_matrix, slope_matrix

LABELS = ("trade-off present", "trade-off absent", "not significant")


@dataclass(frozen=True)
class TrialOutcomes:
    """One trial's per-item correctness (item id -> 1.0/0.0) and its base's on the same items."""

    variant: str  # "fixed", "hybrid", "replay", "hybrid-<predictor>", ...
    budget: int | str  # training frame budget, or "hybrid"
    seed: int
    image: Mapping[str, float]
    video: Mapping[str, float]
    base_image: Mapping[str, float]
    base_video: Mapping[str, float]
    extra: Mapping[str, Any] = field(default_factory=dict)


def _group(trials: Sequence[TrialOutcomes]) -> dict[tuple[str, int | str], list[TrialOutcomes]]:
    groups: dict[tuple[str, int | str], list[TrialOutcomes]] = {}
    for t in trials:
        groups.setdefault((t.variant, t.budget), []).append(t)
    for key, ts in groups.items():
        if len({t.seed for t in ts}) != len(ts):
            raise ValueError(f"verdict: {key} has a seed twice")
    return groups


def delta(trials: Sequence[TrialOutcomes], kind: str) -> Estimate:
    """Paired Δ (kind "image" or "video") over the trials of one (variant, budget)."""
    _, matrix = paired_matrix(
        {t.seed: getattr(t, kind) for t in trials}, {t.seed: getattr(t, f"base_{kind}") for t in trials}
    )
    return crossed(matrix)


def by_point(trials: Sequence[TrialOutcomes]) -> dict[tuple[str, int | str], dict[str, Estimate]]:
    """(variant, budget) -> {"image": Estimate, "video": Estimate}, paired over seeds and items."""
    return {k: {"image": delta(v, "image"), "video": delta(v, "video")} for k, v in _group(trials).items()}


def image_slope(trials: Sequence[TrialOutcomes]) -> Estimate | None:
    """Paired slope of Δ image per doubling across the fixed budgets (seeds that ran every budget)."""
    fixed = [t for t in trials if t.variant == "fixed"]
    budgets = sorted({int(t.budget) for t in fixed})
    if len(budgets) < 2:
        return None
    seeds = sorted(set.intersection(*({t.seed for t in fixed if int(t.budget) == b} for b in budgets)))
    if not seeds:
        return None
    by = {(int(t.budget), t.seed): t for t in fixed}
    items = sorted(set.intersection(*(set(by[b, s].image) & set(by[b, s].base_image) for b in budgets for s in seeds)))
    mats = {
        b: paired_matrix(
            {s: {i: by[b, s].image[i] for i in items} for s in seeds}, {s: by[b, s].base_image for s in seeds}
        )[1]
        for b in budgets
    }
    return crossed(slope_matrix(mats))


def verdict(trials: Sequence[TrialOutcomes]) -> dict[str, Any]:
    """The study's answer from its numbers: a label, the sentences that justify it, the statistics."""
    table = by_point(trials)
    fixed = sorted(int(b) for v, b in table if v == "fixed")
    if not fixed:
        raise ValueError("verdict: needs trials of variant 'fixed'")
    img = {b: table[("fixed", b)]["image"] for b in fixed}
    vid = {b: table[("fixed", b)]["video"] for b in fixed}
    cost = [b for b in fixed if img[b].significant_negative]
    gain = [b for b in fixed if vid[b].significant_positive]
    if cost and gain:
        label = LABELS[0]
    elif not cost and all(img[b].mean >= 0 and img[b].low is not None for b in fixed):
        label = LABELS[1]
    else:
        label = LABELS[2]
    lines = [f"Verdict: {label}."]
    lines.append(_budget_sentence("video", vid, gain, "gained"))
    lines.append(_budget_sentence("image", img, cost, "lost"))
    trend = image_slope(trials)
    if trend is not None:
        direction = (
            "grows"
            if trend.significant_negative
            else ("shrinks" if trend.significant_positive else "does not change significantly")
        )
        lines.append(f"The image cost {direction} with the frame budget: slope of Δ image per doubling {trend.text()}.")
    mde = [e.mde for e in list(img.values()) + list(vid.values()) if e.mde is not None]
    if mde:
        lines.append(
            f"Minimum detectable effect at this n (80% power, 5% two-sided): {min(mde):.1f}-"
            f"{max(mde):.1f} points per fixed-budget Δ."
        )
    lines += _variant_sentences(table, img, max(fixed))
    return {
        "label": label,
        "sentences": lines,
        "cost_budgets": cost,
        "gain_budgets": gain,
        "slope_image_per_doubling": None if trend is None else trend.__dict__,
        "table": {f"{v}/{b}": {k: s.__dict__ for k, s in d.items()} for (v, b), d in table.items()},
    }


def _budget_sentence(kind: str, stats: Mapping[int, Estimate], sig: list[int], verb: str) -> str:
    detail = ", ".join(f"{b} frames {s.text()}" for b, s in stats.items())
    if sig:
        return f"Δ {kind} ({detail}): significantly {verb} at {', '.join(map(str, sig))} frames."
    return f"Δ {kind} ({detail}): no budget differs significantly from the base."


def _variant_sentences(table: Mapping, img: Mapping[int, Estimate], largest: int) -> list[str]:
    """How each non-fixed variant's image cost compares with the largest fixed budget's."""
    out = []
    for (variant, budget), stats in sorted(table.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        if variant == "fixed":
            continue
        diff = stats["image"].mean - img[largest].mean
        better = "less" if diff > 0 else "more"
        out.append(
            f"{variant} ({budget}): Δ image {stats['image'].text()}, Δ video {stats['video'].text()}; "
            f"{abs(diff):.1f} points {better} image cost than fixed {largest} frames."
        )
    return out


def replication(first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, Any]:
    """Do two runs with disjoint seeds give the same verdict? Else the answer is *inconclusive*.

    `first`/`second` are the `verdict` dicts plus their "seeds". Overlapping seeds are refused:
    a replication that shares seeds shares their luck.
    """
    a, b = set(first["seeds"]), set(second["seeds"])
    if a & b:
        raise ValueError(f"replication: the runs share seeds {sorted(a & b)}; use disjoint seed sets")
    agree = first["label"] == second["label"]
    label = first["label"] if agree else "inconclusive"
    text = (
        f"Both disjoint seed sets ({sorted(a)} and {sorted(b)}) give '{label}'."
        if agree
        else f"Inconclusive: seeds {sorted(a)} give '{first['label']}' but seeds {sorted(b)} give "
        f"'{second['label']}'; the preset is not powered to decide."
    )
    return {
        "label": label,
        "agree": agree,
        "labels": [first["label"], second["label"]],
        "seeds": [sorted(a), sorted(b)],
        "sentence": text,
    }
