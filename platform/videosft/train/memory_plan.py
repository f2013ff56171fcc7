"""`train.zero_stage: auto` and `train.gradient_checkpointing: auto`: chosen from a per-GPU estimate.

PURE (no torch, deepspeed or ray): the loop hands in the model's shape, the frame budget and the
GPU's memory, and logs the plan's reason. The choice, cheapest first among what fits:
  1. ZeRO-2, no checkpointing  (no per-layer parameter gathers, no recompute),
  2. ZeRO-3, no checkpointing  (gathers overlap compute on NVLink; recompute would add ~1/3 FLOPs),
  3. ZeRO-2 + checkpointing,   4. ZeRO-3 + checkpointing (also the fallback when nothing fits).
A value pinned in the config (2 / 3, true / false) is kept and only the other one is chosen.

Activation bytes per micro-batch (16-bit, sdpa/flash attention so no s² scores), per token and
layer of a SwiGLU transformer: (5·h + 2·I)·2 bytes. Counting the tensors autograd keeps gives
about twice that (10 hidden-sized, 4 intermediate-sized); the coefficient is calibrated on the
H200 run of a Qwen2.5-VL-3B shape (benchmarks/results/train_gpu_h200_micro{1,4}.json: peak memory
grew 14.1 GiB from 32 to 64 frames at micro-batch 1 and 29.1 GiB from 64 x 1 to 32 x 4; this rule
predicts 15.5 and 31.6 GiB). With checkpointing: each layer's input (h·2 bytes) plus one layer
being recomputed. The loss upcasts the logits: tokens·vocab·(2 + 4 + 4) bytes (bf16 logits, fp32
copy, fp32 gradient) either way. The vision tower counts the same per patch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from videosft.train.ds_config import GB, zero_stage_fits

# CUDA context, NCCL buffers, allocator fragmentation and transient kernels' workspace.
RUNTIME_RESERVE_GB = 6.0
TEXT_TOKENS_PER_SAMPLE = 256  # prompt + answer of a video-SFT sample, on top of its visual tokens
DEFAULT_PATCHES_PER_FRAME = 576  # 336 px / 14 px patches, squared: LLaVA-style towers


@dataclass(frozen=True)
class ActivationShape:
    """What the activation estimate needs from a model config (LM and vision tower)."""

    lm_layers: int
    lm_hidden: int
    lm_intermediate: int
    vocab: int
    vit_layers: int = 0
    vit_hidden: int = 0
    vit_intermediate: int = 0


def activation_shape(model_config: Any) -> ActivationShape:
    """Read an ActivationShape from a transformers multimodal config (text_config + vision_config)."""
    text = model_config.get_text_config()
    vision = getattr(model_config, "vision_config", None)

    def v(name: str, *alts: str) -> int:
        for key in (name, *alts):
            value = getattr(vision, key, None) if vision is not None else None
            if value:
                return int(value)
        return 0

    return ActivationShape(
        lm_layers=int(text.num_hidden_layers),
        lm_hidden=int(text.hidden_size),
        lm_intermediate=int(getattr(text, "intermediate_size", 4 * text.hidden_size)),
        vocab=int(text.vocab_size),
        vit_layers=v("depth", "num_hidden_layers"),
        vit_hidden=v("hidden_size", "embed_dim"),
        vit_intermediate=v("intermediate_size"),
    )


def activation_bytes(
    shape: ActivationShape, lm_tokens: int, patches: int, checkpointing: bool, train_vit: bool = True
) -> float:
    """Activation memory of one micro-batch's forward kept for backward (see the module docstring)."""

    def stack(layers: int, h: int, i: int, n: int) -> float:
        per_layer = (5 * h + 2 * i) * 2 * n
        return (layers * h * 2 * n + per_layer) if checkpointing else layers * per_layer

    lm = stack(shape.lm_layers, shape.lm_hidden, shape.lm_intermediate, lm_tokens)
    logits = lm_tokens * shape.vocab * (2 + 4 + 4)
    vit = stack(shape.vit_layers, shape.vit_hidden, shape.vit_intermediate, patches) if train_vit else 0.0
    return lm + logits + vit


def tokens_per_sample(processor: Any, frames: int) -> tuple[int, int]:
    """(LM tokens, vision patches) of one video sample at `frames` frames, at the processor's size cap.

    Qwen-style video processors expose patch/merge/temporal sizes and max_pixels; other families
    fall back to 576 patches a frame, 4 patches a token (LLaVA-NeXT-Video's pooled 144 per frame).
    """
    vp = getattr(processor, "video_processor", None)
    patch = getattr(vp, "patch_size", None)
    max_pixels = getattr(vp, "max_pixels", None)
    if max_pixels is None and isinstance(getattr(vp, "size", None), dict):
        max_pixels = vp.size.get("longest_edge")
    if patch and max_pixels:
        temporal = int(getattr(vp, "temporal_patch_size", 1) or 1)
        merge = int(getattr(vp, "merge_size", 1) or 1)
        patches = math.ceil(frames / temporal) * int(max_pixels) // (int(patch) ** 2)
        return patches // (merge * merge) + TEXT_TOKENS_PER_SAMPLE, patches
    patches = frames * DEFAULT_PATCHES_PER_FRAME
    return patches // 4 + TEXT_TOKENS_PER_SAMPLE, patches


@dataclass(frozen=True)
class MemoryPlan:
    zero_stage: int
    checkpointing: bool
    total_gb: float  # per-GPU estimate of the chosen plan
    gpu_memory_gb: float | None  # None: CPU, nothing planned
    reason: str


def plan_memory(
    *,
    zero_stage: int | str,
    checkpointing: bool | str,
    params: int,
    world_size: int,
    gpu_memory_gb: float | None,
    hidden_size: int,
    vocab_size: int,
    activations_gb: float,
    activations_ckpt_gb: float,
) -> MemoryPlan:
    """Resolve "auto" stage / checkpointing (see the module docstring); pinned values are kept.

    `gpu_memory_gb=None` (CPU training): auto means ZeRO-2 without checkpointing, host memory
    is not planned.
    """
    if gpu_memory_gb is None:
        stage = 2 if zero_stage == "auto" else int(zero_stage)
        ckpt = False if checkpointing == "auto" else bool(checkpointing)
        return MemoryPlan(stage, ckpt, 0.0, None, f"CPU: zero_stage {stage}, checkpointing {ckpt} (not planned)")
    stages = (2, 3) if zero_stage == "auto" else (int(zero_stage),)
    ckpts = (False, True) if checkpointing == "auto" else (bool(checkpointing),)
    usable = gpu_memory_gb - RUNTIME_RESERVE_GB
    tried = []
    for ckpt in ckpts:
        for stage in stages:
            act = activations_ckpt_gb if ckpt else activations_gb
            fits, total = zero_stage_fits(
                stage, params, world_size, usable, hidden_size=hidden_size, vocab_size=vocab_size, activations_gb=act
            )
            tried.append(f"ZeRO-{stage}{' + checkpointing' if ckpt else ''} {total + RUNTIME_RESERVE_GB:.1f} GB")
            if fits:
                return MemoryPlan(
                    stage,
                    ckpt,
                    total + RUNTIME_RESERVE_GB,
                    gpu_memory_gb,
                    f"plan: ZeRO-{stage}, checkpointing {'on' if ckpt else 'off'} "
                    f"(per GPU of {gpu_memory_gb:.0f} GB: {'; '.join(tried)})",
                )
    stage, ckpt = stages[-1], ckpts[-1]
    return MemoryPlan(
        stage,
        ckpt,
        float("nan"),
        gpu_memory_gb,
        f"plan: nothing fits {gpu_memory_gb:.0f} GB per GPU ({'; '.join(tried)}); using ZeRO-{stage}, "
        f"checkpointing {'on' if ckpt else 'off'}: lower the micro-batch or frames, add GPUs or offload",
    )


def plan_for_worker(
    model: Any, processor: Any, train_cfg: Any, world_size: int, frames: int, gpu_memory_gb: float | None
) -> MemoryPlan:
    """The plan of one Train worker: `model` before the engine (full parameter counts), the
    frame budget's LM tokens and patches per micro-batch (packing: the pack's token budget)."""
    shape = activation_shape(model.config)
    tokens, patches = tokens_per_sample(processor, max(int(frames), 1))
    if getattr(train_cfg, "packing", False) and getattr(train_cfg, "max_tokens_per_micro_batch", None):
        scale = train_cfg.max_tokens_per_micro_batch / tokens
    else:
        scale = float(train_cfg.micro_batch_size)
    lm_tokens, n_patches = int(tokens * scale), int(patches * scale)
    train_vit = bool(train_cfg.freeze.train_vision)
    text = model.config.get_text_config()
    return plan_memory(
        zero_stage=train_cfg.zero_stage,
        checkpointing=train_cfg.gradient_checkpointing,
        params=sum(int(p.numel()) for p in model.parameters()),
        world_size=world_size,
        gpu_memory_gb=gpu_memory_gb,
        hidden_size=int(text.hidden_size),
        vocab_size=int(text.vocab_size),
        activations_gb=activation_bytes(shape, lm_tokens, n_patches, False, train_vit) / GB,
        activations_ckpt_gb=activation_bytes(shape, lm_tokens, n_patches, True, train_vit) / GB,
    )
