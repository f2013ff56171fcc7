"""Frame-budget prediction: the predictor seam, its config, the candidate rules, the registry.

A budget predictor reads a sample (its instruction, and for some predictors a few low-res
thumbnails or the container's fps) and picks how many frames the sample gets, always one of a
configured *candidate* set (e.g. 1, 2, 4, 8, 16): nested uniform indices make every candidate's
frames a subset of the next one's, so one decode at the largest candidate serves them all.

A predictor never crashes a pipeline over one sample: an answer it cannot use becomes the
configured default budget with ``fell_back=True``, and fallbacks are counted and reported.
Pure module (pydantic + stdlib): no ray, no torch, so the rules are unit-tested exhaustively.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from videosft import schema as S
from videosft.engines import VLLMConfig
from videosft.models.registry import family_names

BUDGET_FELL_BACK = "budget_fell_back"  # bool column: the predictor's answer was unusable
DEFAULT_CANDIDATES = (1, 2, 4, 8, 16)
DEFAULT_PROMPT = "How many frames does this question need? Answer with one of: {candidates}."


@dataclass(frozen=True)
class BudgetPrediction:
    """One sample's budget; raw is what the predictor saw or said (kept for audit)."""

    budget: int
    raw: str
    fell_back: bool = False


class BudgetPredictor(Protocol):
    """What every predictor implements; `needs_*` tell the stage what to put in the rows first."""

    name: str
    needs_frames: bool  # rows carry FRAMES (thumbnails), SAMPLED_FPS, NUM_FRAMES, FPS
    needs_probe: bool  # rows carry NUM_FRAMES and FPS (container metadata only)

    def predict(self, rows: list[dict[str, Any]]) -> list[BudgetPrediction]: ...


# --------------------------------------------------------------------------- candidate rules
def snap_up(frames: int, candidates: Sequence[int]) -> int:
    """Smallest candidate >= frames (never fewer than needed); the largest when none is.

    Rounding *up* is the safe direction: an under-budget sample cannot be answered at all,
    an over-budget one only costs compute.
    """
    ordered = sorted(candidates)
    i = bisect.bisect_left(ordered, frames)
    return ordered[min(i, len(ordered) - 1)]


_NUMBER = re.compile(r"(?<![\d.])\d+(?![\d.]*\d)", re.ASCII)


def parse_budget_answer(text: str, candidates: Sequence[int]) -> int | None:
    """The candidate a model's answer names, or None when it names none or several.

    Strict on purpose: exactly one distinct integer may appear and it must be a candidate. An
    echo of the prompt ("1, 2, 4, 8, 16") or a non-candidate ("5") is not silently rounded into
    a budget; the caller falls back to the default and counts it.
    """
    found = {int(m) if len(m) <= 6 else -1 for m in _NUMBER.findall(str(text or ""))}
    if len(found) != 1:
        return None
    (value,) = found
    return value if value in set(candidates) else None


def non_video_prediction(row: dict[str, Any], candidates: Sequence[int]) -> BudgetPrediction | None:
    """Images and text rows take the smallest candidate without asking anyone (one frame at most)."""
    kind = row.get(S.MEDIA_TYPE, S.MEDIA_VIDEO)
    if kind == S.MEDIA_VIDEO:
        return None
    return BudgetPrediction(min(candidates), f"non-video ({kind})")


def format_prompt(prompt: str, candidates: Sequence[int]) -> str:
    """Spell the candidates into the prompt's ``{candidates}`` slot."""
    return prompt.replace("{candidates}", ", ".join(str(c) for c in candidates))


def budget_question(question: str, prompt: str) -> str:
    """What the instruction predictor asks; its SFT manifest asks the very same words."""
    return f"Question: {question}\n{prompt}"


def fallback(default: int, why: str) -> BudgetPrediction:
    return BudgetPrediction(int(default), why[:500], True)


# --------------------------------------------------------------------------- config
class BudgetConfig(BaseModel):
    """How per-sample frame budgets are chosen; embedded as ``budget:`` in the experiment config."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    # oracle: the known minimal budgets (synthetic data); real data: instruction / text_classifier / similarity
    predictor: str = "oracle"
    candidates: list[int] = list(DEFAULT_CANDIDATES)
    default: int = 8  # fallback budget (and the `fixed` predictor's budget); must be a candidate
    model_path: str | None = None  # VLM (instruction, oracle probe), DINOv2 (similarity), npz (text_classifier)
    family: str = "qwen2_5_vl"  # model family of the VLM at model_path
    engine: Literal["transformers", "vllm"] = "transformers"
    vllm: VLLMConfig = VLLMConfig()  # settings when engine=vllm (the same keys as eval.vllm)
    prompt: str = DEFAULT_PROMPT
    max_new_tokens: int = Field(4, ge=1)
    num_thumbnails: int = Field(8, ge=1)
    thumbnail_pixels: int = Field(56 * 56, ge=28 * 28)  # per thumbnail; low-res on purpose
    embedding: Literal["pixels", "dinov2"] = "pixels"
    distinct_threshold: float = Field(0.02, gt=0.0, le=2.0)  # cosine distance starting a new segment
    segment_thresholds: list[int] | None = None  # None: smallest candidate >= segment count
    oracle: Literal["min_frames", "probe"] = "min_frames"
    concurrency: int = Field(1, ge=1)
    cpus_per_actor: float = Field(1.0, gt=0)
    gpus_per_actor: float = Field(0.0, ge=0)
    batch_size: int = Field(8, ge=1)
    decode_timeout_s: float = Field(60.0, gt=0)
    cache_dir: str | None = None  # None: the caller's output dir decides

    @field_validator("predictor")
    @classmethod
    def _known_predictor(cls, v: str) -> str:
        if v not in predictor_names():
            raise ValueError(f"unknown predictor {v!r}; expected one of {predictor_names()}")
        return v

    @field_validator("family")
    @classmethod
    def _known_family(cls, v: str) -> str:
        if v not in family_names():
            raise ValueError(f"unknown family {v!r}; expected one of {family_names()}")
        return v

    @field_validator("candidates")
    @classmethod
    def _ascending(cls, v: list[int]) -> list[int]:
        if not v or any(c < 1 for c in v) or any(a >= b for a, b in zip(v, v[1:])):
            raise ValueError(f"candidates must be strictly ascending positive ints, got {v}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> BudgetConfig:
        if self.default not in self.candidates:
            raise ValueError(f"default ({self.default}) must be one of candidates {self.candidates}")
        t = self.segment_thresholds
        if t is not None and (len(t) != len(self.candidates) - 1 or any(a > b for a, b in zip(t, t[1:]))):
            raise ValueError(
                f"segment_thresholds must be {len(self.candidates) - 1} non-decreasing "
                f"segment counts (one per candidate boundary), got {t}"
            )
        return self

    def needs_model_path(self) -> bool:
        """Whether the chosen predictor reads a checkpoint (checked before any Ray work starts)."""
        return (
            self.predictor in ("instruction", "text_classifier")
            or (self.predictor == "similarity" and self.embedding == "dinov2")
            or (self.predictor == "oracle" and self.oracle == "probe")
        )

    def prompt_text(self) -> str:
        """The budget question as the VLM sees it, candidates spelled out."""
        return format_prompt(self.prompt, self.candidates)


# --------------------------------------------------------------------------- registry
_PREDICTORS: dict[str, Callable[..., BudgetPredictor]] = {}


def register(name: str) -> Callable[[Callable[..., BudgetPredictor]], Callable[..., BudgetPredictor]]:
    """Register a predictor class; `from_config(cfg, contract)` on it maps config -> settings."""

    def deco(cls: Callable[..., BudgetPredictor]) -> Callable[..., BudgetPredictor]:
        _PREDICTORS[name] = cls
        return cls

    return deco


def _load_builtin() -> None:
    # Importing runs the @register decorators; heavy imports (torch) stay inside the classes.
    from videosft.budget import instruction, oracle, rules, similarity, text_classifier  # noqa: F401


def predictor_names() -> list[str]:
    _load_builtin()
    return sorted(_PREDICTORS)


def get_predictor(name: str, **settings: Any) -> BudgetPredictor:
    """Build a predictor by registered name, e.g. get_predictor("fixed", candidates=[1, 2], default=2)."""
    _load_builtin()
    if name not in _PREDICTORS:
        raise ValueError(f"budget.predictor: unknown predictor {name!r}; expected one of {sorted(_PREDICTORS)}")
    return _PREDICTORS[name](**settings)


def predictor_from_config(cfg: BudgetConfig, contract: Any = None) -> BudgetPredictor:
    """The predictor `cfg` names, with its settings taken from cfg (and the sampling contract)."""
    _load_builtin()
    return _PREDICTORS[cfg.predictor].from_config(cfg, contract)  # type: ignore[attr-defined]
