"""Rule-based budget predictors: `fixed` (one budget for all) and `fps` (the contract's fps rule).

These are the baselines every learned predictor must beat: `fixed` is what uniform-budget
training does, `fps` is what Qwen's own tooling does (frames proportional to duration). Both read
no pixels, so they cost next to nothing; `fps` needs only the probed frame count and rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from videosft import schema as S
from videosft.budget.base import BudgetConfig, BudgetPrediction, fallback, non_video_prediction, register, snap_up
from videosft.data.sampling import SamplingContract, smart_nframes


@register("fixed")
class FixedPredictor:
    """Every video gets `budget` frames (the uniform baseline a sweep point trains with)."""

    name = "fixed"
    needs_frames = False
    needs_probe = False

    def __init__(self, candidates: Sequence[int], default: int, budget: int | None = None) -> None:
        self.candidates = list(candidates)
        self.budget = int(budget if budget is not None else default)
        if self.budget not in self.candidates:
            raise ValueError(f"fixed: budget {self.budget} is not one of candidates {self.candidates}")

    @classmethod
    def from_config(cls, cfg: BudgetConfig, contract: SamplingContract | None = None) -> FixedPredictor:
        return cls(cfg.candidates, cfg.default)

    def predict(self, rows: list[dict[str, Any]]) -> list[BudgetPrediction]:
        return [
            non_video_prediction(r, self.candidates) or BudgetPrediction(self.budget, f"fixed {self.budget}")
            for r in rows
        ]


@register("fps")
class FpsPredictor:
    """Frames the contract's fps mode would sample (qwen's smart_nframes), snapped up to a candidate.

    Longer clips get more frames whatever is asked about them: that is the rule's known weakness,
    and why it is scored beside instruction-aware predictors.
    """

    name = "fps"
    needs_frames = False
    needs_probe = True

    def __init__(self, candidates: Sequence[int], default: int, contract: SamplingContract | None = None) -> None:
        self.candidates = list(candidates)
        self.default = int(default)
        self.contract = contract or SamplingContract(mode="fps")

    @classmethod
    def from_config(cls, cfg: BudgetConfig, contract: SamplingContract | None = None) -> FpsPredictor:
        return cls(cfg.candidates, cfg.default, contract)

    def frames_for(self, total_frames: int, video_fps: float) -> int:
        """The fps rule's frame count; clips too short for qwen's rule get all their frames."""
        c = self.contract
        try:
            return smart_nframes(
                total_frames,
                video_fps,
                fps=c.fps,
                min_frames=c.min_frames,
                max_frames=c.max_frames,
                frame_factor=c.frame_factor,
            )
        except ValueError:  # fewer frames than frame_factor: qwen refuses, we take them all
            return total_frames

    def predict(self, rows: list[dict[str, Any]]) -> list[BudgetPrediction]:
        out = []
        for row in rows:
            pred = non_video_prediction(row, self.candidates)
            if pred is None:
                total, fps = int(row.get(S.NUM_FRAMES) or 0), float(row.get(S.FPS) or 0.0)
                if total < 1 or not fps > 0:
                    pred = fallback(self.default, f"fps: no probe ({row.get(S.ERROR) or 'missing num_frames/fps'})")
                else:
                    n = self.frames_for(total, fps)
                    pred = BudgetPrediction(snap_up(n, self.candidates), f"fps rule {n} frames")
            out.append(pred)
        return out
