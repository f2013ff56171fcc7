"""The benchmark seam: every benchmark is a loader, a per-row judge and a scorer over plain dict rows.

A loader turns a published benchmark layout into rows the evaluation runner feeds to an engine;
a judge turns one row plus its prediction into ``{"extracted": str | None, "correct": bool}`` by
the benchmark's fixed extraction rules (the runner writes it into every predictions-file row); a
scorer turns those rows into the benchmark's official numbers, aggregating the judge's verdicts so
the per-row file and the scores can never disagree. Where the official metric is not per-row
(MMBench CircularEval, MME acc+), the judge still gives each row its own extracted answer and
correctness and the scorer groups them. All pure (no Ray, no torch): unit-tested by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# An evaluation item is a plain dict (it crosses Ray Data) with at least these keys:
#   id: str                  unique per item (after any expansion, e.g. MMBench rotations)
#   media_type: "image" | "video" | "text"
#   media_path: str          absolute path / URI of the image or video ("" for text)
#   question: str            full prompt text the model sees (options and instruction included)
#   answer: str              reference answer in the benchmark's own form (e.g. "A", "yes")
#   options: list[str]       option letters/strings when multiple choice, else []
#   cluster: str             id of the image/video, for clustered bootstrap intervals
#   max_new_tokens: int      optional: this item's generation length where the protocol's differs
#                            within one benchmark (MMBench cn/cc); else the Benchmark's
# plus any benchmark-specific keys (category, duration, task, circular_group, ...).
EvalItem = dict[str, Any]

# A prediction row is the item plus: prediction (raw model output, str) and error (str, "" if fine).
Loader = Callable[..., list[EvalItem]]
Scorer = Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]]
# judge(prediction_row) -> {"extracted": str | None, "correct": bool}; an empty prediction or a row
# with an error is {"extracted": None, "correct": False} (answers.judged). A judge may add
# ``needs_judge`` (bool: the official tool would ask an LLM judge for this row; the rule-based
# outcome stands) and ``lenient`` (str | None: our lenient extractor's reading, an extra column,
# never the headline). Both are written to the predictions file when present.
Judge = Callable[[Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Benchmark:
    """One registered benchmark: how to load it, judge a row, score rows, and what kind it is."""

    name: str
    modality: str  # "image" | "video": which side of the trade-off it measures
    load: Loader  # load(root: str, **options) -> list[EvalItem]
    score: Scorer  # score(prediction_rows) -> {"overall": float in [0, 100], ...}, from judge's verdicts
    judge: Judge  # judge(prediction_row) -> {"extracted": str | None, "correct": bool}
    primary_metric: str = "overall"
    protocol: str = "videosft"  # eval.protocols name whose rules this variant implements
    max_new_tokens: int = 16  # the protocol's generation length (eval.max_new_tokens overrides)
    # Loader keyword options a user may set under eval.benchmark_options.<name> (checked at config load).
    options: tuple[str, ...] = field(default_factory=tuple)
