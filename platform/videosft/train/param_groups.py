"""Module groups (vision tower, projector, language model): freeze policy, per-group learning rates,
and the vision-tower keepalive that keeps ZeRO-3 ranks in step.

Pure except torch: works on any `nn.Module` whose parameter names follow the family's layout, so the
same rules apply to a tiny random model and a 72B checkpoint.

Groups (first matching rule wins, by dotted parameter name):
- qwen2_5_vl: `visual.merger.*` is the projector, the rest of `visual.*` the vision tower.
- llava_next_video / llava_1_5: `vision_tower.*` the vision tower; `multi_modal_projector.*`,
  `image_newline` (LLaVA-NeXT's row separator) and `vision_resampler.*` the projector.
- everything else (embeddings, decoder, norm, lm_head) is the language model.

ZeRO-3 keepalive: under ZeRO-3 every module's parameters are all-gathered collectively when it
runs, so every rank must run the vision tower the same number of times per step, or ranks pair
different collectives and hang. The model runs one vision pass for images and one for videos when
the batch has them; `visual_keepalive_loss` runs the *missing* passes on a tiny dummy input and
returns 0 x their output, so each rank makes exactly one image pass and (for native-video families)
one video pass per step, and frozen-or-not, the vision parameters get a zero gradient, never None.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

VISION, PROJECTOR, LLM = "vision", "projector", "llm"
GROUPS = (VISION, PROJECTOR, LLM)

_LLAVA_RULES = ((PROJECTOR, r"(^|\.)(multi_modal_projector\.|vision_resampler\.|image_newline$)"),
                (VISION, r"(^|\.)vision_tower\."))
_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "qwen2_5_vl": ((PROJECTOR, r"(^|\.)visual\.merger\."), (VISION, r"(^|\.)visual\.")),
    "llava_next_video": _LLAVA_RULES,
    "llava_1_5": _LLAVA_RULES,
}


class FreezePolicy(BaseModel):
    """Which module groups train, and their learning rates (None: the base lr)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    train_vision: bool = False
    train_projector: bool = True
    train_llm: bool = True
    lr_vision: float | None = Field(None, gt=0)
    lr_projector: float | None = Field(None, gt=0)
    lr_llm: float | None = Field(None, gt=0)

    def trains(self, group: str) -> bool:
        return {VISION: self.train_vision, PROJECTOR: self.train_projector, LLM: self.train_llm}[group]

    def lr(self, group: str, base_lr: float) -> float:
        value = {VISION: self.lr_vision, PROJECTOR: self.lr_projector, LLM: self.lr_llm}[group]
        return base_lr if value is None else value


def _family_name(family: Any) -> str:
    name = family if isinstance(family, str) else getattr(family, "name", None)
    if name not in _RULES:
        raise ValueError(f"param_groups: no module-group rules for family {name!r}; known: {sorted(_RULES)}")
    return name


def group_of(param_name: str, family: Any) -> str:
    """The module group ('vision', 'projector' or 'llm') a dotted parameter name belongs to."""
    for group, pattern in _RULES[_family_name(family)]:
        if re.search(pattern, param_name):
            return group
    return LLM


def named_module_groups(model: nn.Module, family: Any) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """{group: [(name, param)]} over the model's unique parameters (tied weights appear once)."""
    groups: dict[str, list[tuple[str, nn.Parameter]]] = {g: [] for g in GROUPS}
    for name, param in model.named_parameters(remove_duplicate=True):
        groups[group_of(name, family)].append((name, param))
    return groups


def module_groups(model: nn.Module, family: Any) -> dict[str, list[nn.Parameter]]:
    """{'vision': [...], 'projector': [...], 'llm': [...]}: every parameter in exactly one group."""
    return {g: [p for _, p in named] for g, named in named_module_groups(model, family).items()}


def _no_decay(name: str, param: nn.Parameter) -> bool:
    # Biases, norm scales and other 1-D vectors (CLS/class embeddings, image_newline) take no decay.
    return param.ndim < 2 or name.endswith(".bias") or "norm" in name.lower()


def apply_policy(
    model: nn.Module, family: Any, policy: FreezePolicy, base_lr: float, weight_decay: float
) -> list[dict[str, Any]]:
    """Freeze the groups the policy does not train; return optimizer param groups for the rest.

    Frozen parameters get requires_grad=False and appear in no group. Each trained module group
    yields up to two optimizer groups (decayed / not decayed), tagged with `name` for logging.
    """
    if base_lr <= 0 or weight_decay < 0:
        raise ValueError(f"apply_policy: need base_lr > 0 and weight_decay >= 0, got {base_lr}, {weight_decay}")
    out: list[dict[str, Any]] = []
    for group, named in named_module_groups(model, family).items():
        trains = policy.trains(group)
        for _, param in named:
            param.requires_grad_(trains)
        if not trains:
            continue
        lr = policy.lr(group, base_lr)
        decay = [p for n, p in named if not _no_decay(n, p)]
        no_decay = [p for n, p in named if _no_decay(n, p)]
        for suffix, params, wd in (("", decay, weight_decay), ("_no_decay", no_decay, 0.0)):
            if params:
                out.append({"name": group + suffix, "params": params, "lr": lr, "weight_decay": wd})
    if not out:
        raise ValueError("apply_policy: the freeze policy trains nothing (train_vision/projector/llm all False)")
    return out


def _dummy_passes(model: nn.Module, family: str, batch: Mapping[str, Any]) -> list[Any]:
    """Run the vision passes this batch lacks on a minimal input; return their outputs."""
    ref = next(model.parameters())
    dtype, device = ref.dtype, batch["input_ids"].device if "input_ids" in batch else ref.device
    cfg = model.config.vision_config
    outs = []
    if family == "qwen2_5_vl":
        # One 2x2 patch grid (one merged token); Qwen's patch rows are C * temporal_patch * patch^2.
        rows = torch.zeros(4, cfg.in_channels * cfg.temporal_patch_size * cfg.patch_size**2, dtype=dtype, device=device)
        grid = torch.tensor([[1, 2, 2]], device=device)
        if "pixel_values" not in batch:
            outs.append(model.get_image_features(pixel_values=rows, image_grid_thw=grid))
        if "pixel_values_videos" not in batch:
            outs.append(model.get_video_features(pixel_values_videos=rows, video_grid_thw=grid))
        return outs
    side = cfg.image_size  # CLIP towers take exactly their configured resolution
    frame = torch.zeros(1, 3, side, side, dtype=dtype, device=device)
    if "pixel_values" not in batch:
        if family == "llava_next_video":
            from transformers.models.llava_next_video.modeling_llava_next_video import image_size_to_num_patches

            tiles = image_size_to_num_patches([side, side], model.config.image_grid_pinpoints, side)
            sizes = torch.tensor([[side, side]], device=device)
            outs.append(model.get_image_features(pixel_values=frame[:, None].expand(1, tiles, -1, -1, -1), image_sizes=sizes))
        else:
            outs.append(model.get_image_features(pixel_values=frame))
    if family == "llava_next_video" and "pixel_values_videos" not in batch:
        outs.append(model.get_video_features(pixel_values_videos=frame[:, None]))
    return outs


def _sum_outputs(out: Any) -> torch.Tensor:
    value = getattr(out, "pooler_output", out)
    if isinstance(value, torch.Tensor):
        return value.float().sum()
    return sum((v.float().sum() for v in value), torch.zeros(()))


def visual_keepalive_loss(model: nn.Module, family: Any, batch: Mapping[str, Any]) -> torch.Tensor:
    """0 x (vision passes this batch lacks): add it to the loss so every rank runs the tower alike.

    Call it on the unwrapped model (`engine.module`) *before* the forward, so the vision tower runs
    before the language model on every rank, as it does inside the forward of a batch with media.
    Returns a zero scalar that carries grad into the vision tower and projector (zero gradients,
    not None); a plain zero without graph when the batch already makes every pass.
    """
    outs = _dummy_passes(model, _family_name(family), batch)
    if not outs:
        return torch.zeros((), device=batch["input_ids"].device if "input_ids" in batch else None)
    return 0.0 * sum(_sum_outputs(o) for o in outs)
