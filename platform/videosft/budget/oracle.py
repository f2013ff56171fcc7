"""`oracle`: the budget a sample really needs, to make training labels and to score predictors.

Two modes:
- ``min_frames``: the row's known minimal budget (the synthetic set computes it by construction),
  snapped up to a candidate. Exact ground truth, so predictors are scored exactly against it.
- ``probe``: the smallest candidate at which a given model answers correctly, found by asking the
  model at each candidate in turn (through the eval engine seam). This is how labels are made on
  real data, where nobody wrote min_frames down. Frames come from the experiment's sampling
  contract, decoded once at the largest candidate: nested indices make every smaller candidate's
  frames a subset (fps-mode contracts are not nested, so those budgets are decoded again).

A sample no candidate answers (or with no known min_frames) gets the default, ``fell_back=True``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from videosft import schema as S
from videosft.benchmarks.synthetic import is_correct
from videosft.budget.base import BudgetConfig, BudgetPrediction, fallback, non_video_prediction, register, snap_up
from videosft.budget.instruction import engine_row, make_budget_engine, safe_generate
from videosft.data.pipeline import DecodeStage
from videosft.data.sampling import SamplingContract

CorrectFn = Callable[[Mapping[str, Any]], bool]


def _default_correct(row: Mapping[str, Any]) -> bool:
    return is_correct(row)


@register("oracle")
class OraclePredictor:
    """Smallest sufficient candidate budget: from MIN_FRAMES, or by probing a model."""

    name = "oracle"
    needs_frames = False
    needs_probe = False

    def __init__(
        self,
        candidates: Sequence[int],
        default: int,
        mode: str = "min_frames",
        model_path: str | None = None,
        family: str = "qwen2_5_vl",
        engine_kind: str = "transformers",
        max_new_tokens: int = 4,
        contract: SamplingContract | None = None,
        decode_timeout_s: float = 60.0,
        engine: Any = None,
        correct_fn: CorrectFn | None = None,
    ) -> None:
        if mode not in ("min_frames", "probe"):
            raise ValueError(f"oracle: mode must be 'min_frames' or 'probe', got {mode!r}")
        self.candidates, self.default, self.mode = sorted(candidates), int(default), mode
        self.engine, self.decoder = None, None
        if mode == "probe":
            self.contract = contract or SamplingContract()
            self.engine = engine or make_budget_engine(engine_kind, model_path, family, max_new_tokens)
            self.decoder = DecodeStage(self.contract.model_dump(), None, decode_timeout_s)
            self.correct = correct_fn or _default_correct

    @classmethod
    def from_config(cls, cfg: BudgetConfig, contract: SamplingContract | None = None) -> OraclePredictor:
        return cls(
            cfg.candidates,
            cfg.default,
            cfg.oracle,
            cfg.model_path,
            cfg.family,
            cfg.engine,
            cfg.max_new_tokens,
            contract,
            cfg.decode_timeout_s,
        )

    def predict(self, rows: list[dict[str, Any]]) -> list[BudgetPrediction]:
        one = self._from_min_frames if self.mode == "min_frames" else self._probe
        return [non_video_prediction(r, self.candidates) or one(r) for r in rows]

    def _from_min_frames(self, row: dict[str, Any]) -> BudgetPrediction:
        needed = int(row.get(S.MIN_FRAMES, -1) if row.get(S.MIN_FRAMES) is not None else -1)
        if needed < 1:
            return fallback(self.default, "oracle: min_frames unknown")
        return BudgetPrediction(snap_up(needed, self.candidates), f"min_frames {needed}")

    def _probe(self, row: dict[str, Any]) -> BudgetPrediction:
        base = {k: v for k, v in row.items() if k not in (S.FRAME_BUDGET, S.FRAMES)}
        decoded = self.decoder({**base, S.FRAME_BUDGET: self.candidates[-1]})
        if decoded[S.ERROR]:
            return fallback(self.default, f"oracle: {decoded[S.ERROR]}")
        answer = ""
        for budget in self.candidates:
            media = self._at_budget(base, decoded, budget)
            if media[S.ERROR]:
                return fallback(self.default, f"oracle: {media[S.ERROR]}")
            answers = safe_generate(self.engine, [engine_row(media, str(row.get(S.QUESTION, "")))])
            if isinstance(answers, str):
                return fallback(self.default, answers)
            answer = answers[0]
            if self.correct({"answer": row.get(S.ANSWER, ""), "prediction": answer}):
                return BudgetPrediction(budget, f"correct at {budget}: {answer}")
        return fallback(self.default, f"oracle: never correct (last answer {answer!r})")

    def _at_budget(self, base: dict[str, Any], decoded: dict[str, Any], budget: int) -> dict[str, Any]:
        """Decoded row at `budget`: a subset of the largest decode when nested, else a fresh decode."""
        idx_all = np.asarray(decoded[S.FRAME_INDICES], np.int64)
        fps = float(decoded[S.FPS])
        want = self.contract.frame_indices(int(decoded[S.NUM_FRAMES]), fps, budget)
        pos = np.searchsorted(idx_all, want)
        if not (np.all(pos < len(idx_all)) and np.array_equal(idx_all[np.minimum(pos, len(idx_all) - 1)], want)):
            return self.decoder({**base, S.FRAME_BUDGET: budget})
        return {
            **decoded,
            S.FRAMES: np.asarray(decoded[S.FRAMES])[pos],
            S.FRAME_INDICES: want,
            S.SAMPLED_FPS: self.contract.sampled_fps(want, fps, int(decoded[S.NUM_FRAMES])),
        }
