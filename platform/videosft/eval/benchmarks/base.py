"""The benchmark seam: every benchmark is a loader plus a scorer over plain dict rows.

A loader turns a published benchmark layout into rows the evaluation runner feeds to an engine;
a scorer turns those rows plus predictions into the benchmark's official numbers. Both are
pure (no Ray, no torch) so scoring is unit-tested against hand-computed values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

# An evaluation item is a plain dict (it crosses Ray Data) with at least these keys:
#   id: str                  unique per item (after any expansion, e.g. MMBench rotations)
#   media_type: "image" | "video" | "text"
#   media_path: str          absolute path / URI of the image or video ("" for text)
#   question: str            full prompt text the model sees (options and instruction included)
#   answer: str              reference answer in the benchmark's own form (e.g. "A", "yes")
#   options: list[str]       option letters/strings when multiple choice, else []
#   cluster: str             id of the image/video, for clustered bootstrap intervals
# plus any benchmark-specific keys (category, duration, task, circular_group, ...).
EvalItem = dict[str, Any]

# A prediction row is the item plus: prediction (raw model output, str).
Loader = Callable[..., list[EvalItem]]
Scorer = Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]]


@dataclass(frozen=True)
class Benchmark:
    """One registered benchmark: how to load it, how to score it, and what kind it is."""

    name: str
    modality: str  # "image" | "video": which side of the trade-off it measures
    load: Loader  # load(root: str, **options) -> list[EvalItem]
    score: Scorer  # score(prediction_rows) -> {"overall": float in [0, 100], ...}
    primary_metric: str = "overall"
