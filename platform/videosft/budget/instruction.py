"""`instruction` (Hybrid-Frame): a VLM reads the instruction and a few thumbnails and names a budget.

The study being reproduced found this the reliable predictor: whether a question needs one frame
("what colour is it?") or many ("which flashed first?") is written in the question, and a small
VLM can read it. We ask through the same engine seam evaluation uses (`videosft.engines`: transformers
on CPU/GPU, vLLM on GPU or CPU with `budget.engine: vllm`, settings in `budget.vllm`), so any registered model family can be the predictor and the thumbnails
reach it exactly as video reaches an evaluated model.

The answer is parsed strictly (`parse_budget_answer`): only a candidate can come out; anything
else, including an engine error, becomes the default budget with ``fell_back=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from videosft import schema as S
from videosft.budget.base import (
    DEFAULT_PROMPT,
    BudgetConfig,
    BudgetPrediction,
    budget_question,
    fallback,
    format_prompt,
    non_video_prediction,
    parse_budget_answer,
    register,
)
from videosft.engines import make_engine

_ENGINE_KEYS = (S.MEDIA_TYPE, S.FRAMES, S.SAMPLED_FPS, S.FPS, S.NUM_FRAMES, S.FRAME_INDICES)


def make_budget_engine(
    kind: str, model_path: str | None, family: str, max_new_tokens: int, vllm: Any = None, threads: int | None = None
) -> Any:
    """An eval engine for a predictor; fails naming the config key when no model is given.

    `vllm` is `budget.vllm` (same keys as `eval.vllm`); the engine applies it inside the actor.
    """
    if not model_path:
        raise ValueError("budget.model_path: the instruction/oracle-probe predictors need a VLM checkpoint path")

    return make_engine(kind, str(model_path), family, max_new_tokens, vllm=vllm, threads=threads)


def engine_row(row: dict[str, Any], question: str) -> dict[str, Any]:
    """A row the engine seam accepts: the media columns of `row` with a different question."""
    out = {k: row[k] for k in _ENGINE_KEYS if k in row}
    out[S.QUESTION] = question
    return out


def safe_generate(engine: Any, rows: list[dict[str, Any]]) -> list[str] | str:
    """Engine answers, or the error text when the engine fails (a predictor never crashes a stage)."""
    try:
        answers = list(engine.generate(rows))
    except Exception as exc:
        return f"engine error: {type(exc).__name__}: {exc}"
    if len(answers) != len(rows):
        return f"engine error: {len(answers)} answers for {len(rows)} rows"
    return answers


@register("instruction")
class InstructionPredictor:
    """Ask a VLM "how many frames does this question need?" with the question and thumbnails."""

    name = "instruction"
    needs_frames = True
    needs_probe = False

    def __init__(
        self,
        candidates: Sequence[int],
        default: int,
        model_path: str | None = None,
        family: str = "qwen2_5_vl",
        prompt: str = DEFAULT_PROMPT,
        max_new_tokens: int = 4,
        engine_kind: str = "transformers",
        engine: Any = None,
        vllm: Any = None,
        threads: int | None = None,
    ) -> None:
        self.candidates, self.default = list(candidates), int(default)
        self.prompt = format_prompt(prompt, self.candidates)
        # `engine` lets a caller share one loaded model between predictors (same seam as eval).
        self.engine = engine or make_budget_engine(engine_kind, model_path, family, max_new_tokens, vllm, threads)

    @classmethod
    def from_config(cls, cfg: BudgetConfig, contract: Any = None) -> InstructionPredictor:
        return cls(
            cfg.candidates,
            cfg.default,
            cfg.model_path,
            cfg.family,
            cfg.prompt,
            cfg.max_new_tokens,
            cfg.engine,
            vllm=cfg.vllm.model_dump(),
            threads=max(1, int(cfg.cpus_per_actor)),
        )

    def question(self, row: dict[str, Any]) -> str:
        return budget_question(str(row.get(S.QUESTION, "")), self.prompt)

    def predict(self, rows: list[dict[str, Any]]) -> list[BudgetPrediction]:
        out: list[BudgetPrediction | None] = [non_video_prediction(r, self.candidates) for r in rows]
        ask = []
        for i, row in enumerate(rows):
            frames = row.get(S.FRAMES)
            if out[i] is None and (frames is None or len(np.asarray(frames)) == 0):
                out[i] = fallback(self.default, f"instruction: no thumbnails ({row.get(S.ERROR) or 'empty'})")
            elif out[i] is None:
                ask.append(i)
        answers = safe_generate(self.engine, [engine_row(rows[i], self.question(rows[i])) for i in ask]) if ask else []
        for j, i in enumerate(ask):
            out[i] = fallback(self.default, answers) if isinstance(answers, str) else self._parse(answers[j])
        return [p for p in out if p is not None]

    def _parse(self, text: str) -> BudgetPrediction:
        value = parse_budget_answer(text, self.candidates)
        if value is None:
            return fallback(self.default, text)
        return BudgetPrediction(value, text)
