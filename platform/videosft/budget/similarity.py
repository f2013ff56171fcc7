"""`similarity`: count visually distinct segments among a few thumbnails, budget by the count.

The idea (from frame-selection work built on DINOv2 features): a clip whose frames all look alike
needs one frame; a clip with k distinct scenes needs at least k. Consecutive thumbnails whose
embeddings lie further apart than `distinct_threshold` (cosine distance) start a new segment, and
the count maps to a candidate by `segment_thresholds`. It reads pixels only, never the question,
which is its known blind spot (the study found it unreliable): a brief event between thumbnails
is invisible, and motion makes every thumbnail "distinct" whatever is asked.

Measured on the synthetic clips with the pixels embedding: codec noise 0.000, a shape moving
~5 px between thumbnails 0.013-0.017, a recoloured shape 0.04-0.11, a full-frame flash 0.25-0.66;
the default threshold 0.02 counts recolourings and flashes, not small motion. DINOv2 distances
live on another scale: tune `distinct_threshold` per embedding.

Two embeddings: DINOv2 (transformers `Dinov2Model` from a path; `build_tiny_dinov2` writes a
random tiny one for tests) and "pixels", a 16x16 area-averaged frame scaled to [-1, 1], so the
predictor works with no model at all.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from videosft import schema as S
from videosft.budget.base import BudgetConfig, BudgetPrediction, fallback, non_video_prediction, register, snap_up

PIXEL_SIDE = 16  # coarse enough to ignore codec noise, fine enough to see a moved or recoloured shape


def pixel_embeddings(frames: np.ndarray, side: int = PIXEL_SIDE) -> np.ndarray:
    """(T, side*side*3) float32: area-averaged thumbnails centred on mid-grey.

    Centring matters: raw uint8 vectors are all positive, so their cosines sit near 1 whatever
    the content; around mid-grey a colour change flips signs and shows up as distance.
    """
    small = [
        np.asarray(Image.fromarray(np.asarray(f, np.uint8)).resize((side, side), Image.BOX), np.float32) for f in frames
    ]
    return (np.stack(small).reshape(len(small), -1) / 127.5 - 1.0).astype(np.float32)


def consecutive_distances(emb: np.ndarray) -> np.ndarray:
    """Cosine distance between each embedding and the next, (T-1,); two zero vectors are alike."""
    emb = np.asarray(emb, np.float64)
    norms = np.linalg.norm(emb, axis=1)
    a, b = emb[:-1], emb[1:]
    denom = norms[:-1] * norms[1:]
    cos = np.where(denom > 1e-12, (a * b).sum(axis=1) / np.maximum(denom, 1e-12), 0.0)
    both_zero = (norms[:-1] <= 1e-12) & (norms[1:] <= 1e-12)
    return np.where(both_zero, 0.0, 1.0 - cos)


def count_segments(emb: np.ndarray, threshold: float) -> int:
    """1 + the number of consecutive pairs further apart than threshold (0 for no frames)."""
    if len(emb) == 0:
        return 0
    return 1 + int(np.sum(consecutive_distances(emb) > threshold))


def segments_to_budget(count: int, candidates: Sequence[int], thresholds: Sequence[int] | None) -> int:
    """thresholds[i] is the largest count still given candidates[i]; None: smallest candidate >= count."""
    if thresholds is None:
        return snap_up(max(count, 1), candidates)
    return sorted(candidates)[bisect.bisect_left(list(thresholds), count)]


class Dinov2Embedder:
    """Pooled (CLS) DINOv2 features of each frame, through the checkpoint's own image processor."""

    def __init__(self, model_path: str, device: str | None = None) -> None:
        import torch
        from transformers import AutoImageProcessor, Dinov2Model

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.processor = AutoImageProcessor.from_pretrained(model_path)
        self.model = Dinov2Model.from_pretrained(model_path).to(self.device).eval()

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        inputs = self.processor(images=[np.asarray(f, np.uint8) for f in frames], return_tensors="pt")
        with self.torch.no_grad():
            out = self.model(pixel_values=inputs["pixel_values"].to(self.device))
        return out.pooler_output.float().cpu().numpy()


def build_tiny_dinov2(out_dir: str | Path, seed: int = 0, image_size: int = 56) -> Path:
    """Write a random-weight DINOv2 (config, safetensors, BitImageProcessor config) loadable by path."""
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=image_size,
        patch_size=14,
    )
    torch.manual_seed(seed)
    Dinov2Model(config).save_pretrained(out)
    BitImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(out)
    return out


@register("similarity")
class SimilarityPredictor:
    """Budget from the number of visually distinct segments among the row's thumbnails."""

    name = "similarity"
    needs_frames = True
    needs_probe = False

    def __init__(
        self,
        candidates: Sequence[int],
        default: int,
        embedding: str = "pixels",
        model_path: str | None = None,
        distinct_threshold: float = 0.02,
        segment_thresholds: Sequence[int] | None = None,
    ) -> None:
        if embedding not in ("pixels", "dinov2"):
            raise ValueError(f"similarity: embedding must be 'pixels' or 'dinov2', got {embedding!r}")
        if embedding == "dinov2" and not model_path:
            raise ValueError("similarity: embedding 'dinov2' needs budget.model_path (a Dinov2Model directory)")
        self.candidates, self.default = list(candidates), int(default)
        self.threshold, self.segment_thresholds = float(distinct_threshold), segment_thresholds
        self.embed = Dinov2Embedder(str(model_path)) if embedding == "dinov2" else pixel_embeddings
        self.embedding = embedding

    @classmethod
    def from_config(cls, cfg: BudgetConfig, contract: Any = None) -> SimilarityPredictor:
        return cls(
            cfg.candidates, cfg.default, cfg.embedding, cfg.model_path, cfg.distinct_threshold, cfg.segment_thresholds
        )

    def predict(self, rows: list[dict[str, Any]]) -> list[BudgetPrediction]:
        return [non_video_prediction(r, self.candidates) or self._one(r) for r in rows]

    def _one(self, row: dict[str, Any]) -> BudgetPrediction:
        frames = row.get(S.FRAMES)
        if frames is None or len(frames) == 0:
            return fallback(self.default, f"similarity: no thumbnails ({row.get(S.ERROR) or 'empty'})")
        try:
            count = count_segments(self.embed(np.asarray(frames)), self.threshold)
        except Exception as exc:  # a bad frame costs this row its prediction, not the stage
            return fallback(self.default, f"similarity: {type(exc).__name__}: {exc}")
        budget = segments_to_budget(count, self.candidates, self.segment_thresholds)
        return BudgetPrediction(budget, f"{count} segments ({self.embedding})")
