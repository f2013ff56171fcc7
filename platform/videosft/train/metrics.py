"""Per-step training metrics: throughput by token kind and an MFU estimate, one row per log window.

PURE (numpy + flops.py; tensors are read through `.shape`), so the row is unit-tested without a
model. Each rank accumulates its own micro-batches into a `StepWindow`; `row()` turns the window
into the dict reported to Ray and logged:
  step, loss, samples_per_s, tokens_per_s (every non-pad LM token), text_tokens_per_s,
  visual_tokens_per_s (placeholder tokens the LM sees), patches_per_s (vision-tower inputs),
  mfu (only when the device peak is known: `peak_flops_for(device)` on GPU or `train.peak_flops`)
Rates are per worker (this rank's samples over this rank's wall time); MFU is this rank's model
FLOPs over its wall time and one device's peak, which equals the job's MFU when ranks are balanced.

FLOPs follow flops.py: 6·N_lm·tokens + the attention term 12·L·h·s per token for the language
model, 2·N_vit·patches for the vision tower (×3 when it trains). The language-model count N_lm
excludes the input embedding (a lookup, no matmul) and includes the output head.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from videosft.models.param_groups import LLM, PROJECTOR, VISION, module_groups
from videosft.train.flops import mfu, peak_flops_for, transformer_train_flops, vision_flops

_VISION_KEYS = ("pixel_values", "pixel_values_videos")


@dataclass(frozen=True)
class ModelShape:
    """What the FLOP count needs to know about a model (taken before ZeRO-3 partitions it)."""

    n_params_lm: int
    n_params_vit: int
    n_layers: int
    hidden: int
    patch_size: int
    train_vit: bool


def model_shape(model: Any, family: Any, train_vit: bool) -> ModelShape:
    """Count parameters per module group; call before the engine (ZeRO-3 empties `numel()` later)."""

    groups = module_groups(model, family)
    count = {g: sum(int(p.numel()) for p in params) for g, params in groups.items()}
    emb_in, emb_out = model.get_input_embeddings(), model.get_output_embeddings()
    n_lm = count[LLM] - int(emb_in.weight.numel())
    if emb_out is not None and emb_out.weight is emb_in.weight:
        n_lm += int(emb_out.weight.numel())  # tied: counted once, as the embedding; its matmul is real
    text = model.config.get_text_config()
    vision = getattr(model.config, "vision_config", None)
    return ModelShape(
        n_params_lm=n_lm,
        n_params_vit=count[VISION] + count[PROJECTOR],
        n_layers=int(text.num_hidden_layers),
        hidden=int(text.hidden_size),
        patch_size=int(getattr(vision, "patch_size", 14) or 14),
        train_vit=train_vit,
    )


def count_patches(batch: Mapping[str, Any], patch_size: int) -> int:
    """Vision-tower input patches of a collated batch.

    Qwen2.5-VL hands the tower flattened patches, one per row of a 2-D `pixel_values[_videos]`;
    LLaVA families hand it images (N, C, H, W) or clips/tiles (B, T, C, H, W), each cut into
    (H / p) x (W / p) patches.
    """
    total = 0
    for key in _VISION_KEYS:
        value = batch.get(key)
        if value is None:
            continue
        shape = tuple(int(d) for d in value.shape)
        if len(shape) == 2:
            total += shape[0]
        elif len(shape) >= 4:
            images = math.prod(shape[:-3])
            total += images * (shape[-2] // patch_size) * (shape[-1] // patch_size)
    return total


def batch_flops(shape: ModelShape, lm_tokens: int, seq_len: int, patches: int) -> float:
    """Model FLOPs of one micro-batch's forward + backward (see the module docstring)."""
    lm = transformer_train_flops(shape.n_params_lm, lm_tokens, shape.n_layers, shape.hidden, max(seq_len, 1))
    return lm + vision_flops(shape.n_params_vit, patches, shape.train_vit)


@dataclass
class StepWindow:
    """Accumulates the micro-batches between two logged steps on one rank."""

    samples: int = 0
    tokens: int = 0
    visual: int = 0
    patches: int = 0
    flops: float = 0.0
    loss: float = 0.0
    n: int = 0
    t0: float = field(default_factory=time.perf_counter)
    # This process's CPU seconds (every thread: Ray's too): on a shared machine the load stretches
    # wall time far more than the CPU time the step itself costs.
    cpu0: float = field(default_factory=time.process_time)

    def add(self, *, samples: int, tokens: int, visual: int, patches: int, flops: float, loss: Any) -> None:
        """`loss` may be a detached device tensor: summed on the device, read once in row()."""
        self.samples += samples
        self.tokens += tokens
        self.visual += visual
        self.patches += patches
        self.flops += flops
        self.loss = self.loss + loss  # out of place: never writes into a step's loss tensor
        self.n += 1

    def row(self, step: int, peak_flops: float | None, now: float | None = None) -> dict[str, float]:
        """The metric row of this window; `mfu` is present only when `peak_flops` is known."""
        dt = max((time.perf_counter() if now is None else now) - self.t0, 1e-9)
        out = {
            "step": step,
            "loss": float(self.loss) / max(self.n, 1),  # a device tensor's only host sync, once a window
            "samples_per_s": self.samples / dt,
            "tokens_per_s": self.tokens / dt,
            "text_tokens_per_s": max(self.tokens - self.visual, 0) / dt,
            "visual_tokens_per_s": self.visual / dt,
            "patches_per_s": self.patches / dt,
            "window_s": dt,
            "window_cpu_s": time.process_time() - self.cpu0,
        }
        if peak_flops:
            out["mfu"] = mfu(self.flops, dt, 1, peak_flops)
        return out


def format_row(row: Mapping[str, Any]) -> str:
    """One log line for a metric row."""
    text = (
        f"[train] step {row['step']} loss {row['loss']:.4f} samples/s {row['samples_per_s']:.2f} "
        f"text tok/s {row['text_tokens_per_s']:.1f} visual tok/s {row['visual_tokens_per_s']:.1f}"
    )
    return text + (f" mfu {row['mfu']:.2%}" if "mfu" in row else " mfu n/a")


def device_peak_flops(use_gpu: bool, precision: str, override: float | None) -> float | None:
    """The per-device peak for MFU: the configured override, else the GPU's datasheet peak, else None."""
    if override:
        return float(override)
    if not use_gpu:
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    return peak_flops_for(torch.cuda.get_device_name(), precision)
