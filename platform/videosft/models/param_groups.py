"""Module groups (vision tower, projector, language model): freeze policy, per-group learning rates,
and the vision-tower keepalive that keeps ZeRO-3 ranks in step.

Pure except torch (imported lazily, so `config.py` can import `FreezePolicy` without it): works on
any `nn.Module` whose parameter names follow the family's layout, so the same rules apply to a tiny
random model and a 72B checkpoint.

Groups (first matching rule wins, by dotted parameter name):
- qwen2_5_vl: `visual.merger.*` is the projector, the rest of `visual.*` the vision tower.
- qwen3_vl: `visual.merger.*` and the deepstack mergers `visual.deepstack_merger_list.*` (they
  project intermediate vision features into the decoder) are the projector, the rest of `visual.*`
  the vision tower.
- llava_next_video / llava_1_5: `vision_tower.*` the vision tower; `multi_modal_projector.*`,
  `image_newline` (LLaVA-NeXT's row separator) and `vision_resampler.*` the projector.
- everything else (embeddings, decoder, norm, lm_head) is the language model.

Vision keepalive (ZeRO-2 and ZeRO-3): DeepSpeed reduces gradients in buckets filled as gradients
arrive, so a rank whose batch has no image (or no video) produces no vision gradients, fills its
buckets differently and the ranks' reduce collectives mismatch (seen on ZeRO-2 and ZeRO-3). ZeRO-3
also all-gathers each module's parameters as it runs and asserts that every rank ran the same
modules in the same order. The model runs the vision tower between the token embedding and the
decoder, once for images and once for videos. `install_visual_keepalive` hooks the model so the
passes a batch lacks run on a dummy input at that same point and join the decoder input as
0 x features: loss unchanged, vision gradients zero instead of None, same modules in the same order
on every rank. A dummy loss term added before or after the forward is not enough: it moves the
vision passes before the embedding (or after the decoder) and a 2-rank ZeRO-3 run with one
text-only rank still fails (checked with DeepSpeed 0.19.8 on gloo).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import torch
    from torch import nn

VISION, PROJECTOR, LLM = "vision", "projector", "llm"
GROUPS = (VISION, PROJECTOR, LLM)

_LLAVA_RULES = (
    (PROJECTOR, r"(^|\.)(multi_modal_projector\.|vision_resampler\.|image_newline$)"),
    (VISION, r"(^|\.)vision_tower\."),
)
_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "qwen2_5_vl": ((PROJECTOR, r"(^|\.)visual\.merger\."), (VISION, r"(^|\.)visual\.")),
    "qwen3_vl": ((PROJECTOR, r"(^|\.)visual\.(merger|deepstack_merger_list)\."), (VISION, r"(^|\.)visual\.")),
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


_NATIVE_VIDEO = {"qwen2_5_vl", "qwen3_vl", "llava_next_video"}  # one vision pass for images and one for videos


def _vision_tower(model: nn.Module) -> nn.Module:
    inner = getattr(model, "model", model)
    visual = getattr(inner, "visual", None)  # Qwen2.5-VL; LLaVA families call it vision_tower
    return visual if visual is not None else inner.vision_tower


def _language_model(model: nn.Module) -> nn.Module:
    return getattr(model, "model", model).language_model


def dummy_visual_pass(model: nn.Module, family: Any, modality: str, device: torch.device | None = None) -> torch.Tensor:
    """Run one image or video pass on a minimal input; return the sum of its features.

    The same code path as a real pass of that modality, so the same parameters are used (LLaVA-NeXT's
    `image_newline` only by images). Qwen: 2x2 patches = one merged token; LLaVA: one CLIP-sized frame.
    """
    import torch

    name = _family_name(family)
    ref = next(model.parameters())  # dtype only: ZeRO-3 partitions (and may offload) the data
    cfg = model.config.vision_config
    device = ref.device if device is None else device
    if name in ("qwen2_5_vl", "qwen3_vl"):
        width = cfg.in_channels * cfg.temporal_patch_size * cfg.patch_size**2  # one flattened patch
        rows = torch.zeros(4, width, dtype=ref.dtype, device=device)
        grid = torch.tensor([[1, 2, 2]], device=device)
        out = (
            model.get_image_features(pixel_values=rows, image_grid_thw=grid)
            if modality == "image"
            else model.get_video_features(pixel_values_videos=rows, video_grid_thw=grid)
        )
    else:
        side = cfg.image_size  # CLIP towers take exactly their configured resolution
        frame = torch.zeros(1, 1, 3, side, side, dtype=ref.dtype, device=device)
        if modality == "video":
            out = model.get_video_features(pixel_values_videos=frame)
        elif name == "llava_next_video":  # any-res: a square image is its base view + one tile
            from transformers.models.llava_next_video.modeling_llava_next_video import image_size_to_num_patches

            tiles = image_size_to_num_patches([side, side], model.config.image_grid_pinpoints, side)
            sizes = torch.tensor([[side, side]], device=device)
            out = model.get_image_features(pixel_values=frame.expand(1, tiles, 3, side, side), image_sizes=sizes)
        else:
            out = model.get_image_features(pixel_values=frame[0])
    value = getattr(out, "pooler_output", out)
    parts = [value] if isinstance(value, torch.Tensor) else list(value)
    for level in getattr(out, "deepstack_features", None) or []:  # Qwen3-VL: its mergers join the sum
        parts.extend([level] if isinstance(level, torch.Tensor) else list(level))
    return sum(p.float().sum() for p in parts)


class VisualKeepalive:
    """Forward hooks that make every forward run the same vision passes, in the same order.

    The model's forward embeds the tokens, runs an image pass if its inputs carry `pixel_values`,
    then a video pass if they carry `pixel_values_videos`, then the decoder. DeepSpeed ZeRO-3
    gathers each module's parameters as it runs and, while recording its prefetch trace, asserts
    that every rank ran the same modules in the same order. So the passes a batch lacks run on a
    dummy input exactly where a real one would: a missing image pass just before a real video pass
    (hooked on the vision tower), any other missing pass just before the decoder (hooked on the
    language model). Their features join the decoder input as 0 x sum, so the loss is unchanged and
    in backward the same parameters receive gradients on every rank (zeros from dummies, never None),
    so ZeRO-2's gradient buckets and ZeRO-3's gathers and reduce-scatters pair up across ranks.
    Native-video families make an image and a video pass every step; llava_1_5 (video frames are
    images) one image pass. Install on the bare model before `deepspeed.initialize`; `remove()`
    undoes it (do so before `generate`: decode steps carry no media and would each run dummies).
    """

    def __init__(self, model: nn.Module, family: Any) -> None:
        self.model, self.family = model, _family_name(family)
        self.modalities = ("image", "video") if self.family in _NATIVE_VIDEO else ("image",)
        self.dummy_passes = 0  # total dummy passes run (for metrics and tests)
        self._present: set[str] = set()
        self._done: set[str] = set()
        self._pending: list[torch.Tensor] = []
        self._in_dummy = False
        self._device: torch.device | None = None
        self._handles = [
            model.register_forward_pre_hook(self._start, with_kwargs=True),
            _vision_tower(model).register_forward_pre_hook(self._before_vision),
            _language_model(model).register_forward_pre_hook(self._before_decoder, with_kwargs=True),
        ]

    def _start(self, module: nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        keys = {"image": "pixel_values", "video": "pixel_values_videos"}
        self._present = {m for m, key in keys.items() if kwargs.get(key) is not None}
        self._done, self._pending = set(), []
        ids = kwargs.get("input_ids", args[0] if args else None)
        self._device = getattr(ids, "device", None)

    def _dummy(self, modality: str) -> None:
        self._in_dummy = True
        try:
            self._pending.append(dummy_visual_pass(self.model, self.family, modality, self._device))
        finally:
            self._in_dummy = False
        self._done.add(modality)
        self.dummy_passes += 1

    def _before_vision(self, module: nn.Module, args: Any) -> None:
        if self._in_dummy:
            return
        # Real passes come image first, then video: name the one starting now.
        current = "image" if "image" in self._present and "image" not in self._done else "video"
        if current == "video" and "image" in self.modalities and "image" not in self._done:
            self._dummy("image")  # keep image-before-video order on a video-only rank
        self._done.add(current)

    def _before_decoder(self, module: nn.Module, args: Any, kwargs: dict[str, Any]) -> Any:
        for modality in self.modalities:
            if modality not in self._done:
                self._dummy(modality)
        if not self._pending:
            return None
        embeds = kwargs.get("inputs_embeds")
        if embeds is None:
            raise RuntimeError("VisualKeepalive: the language model was called without inputs_embeds")
        total, self._pending = sum(self._pending), []
        return args, {**kwargs, "inputs_embeds": embeds + (0.0 * total).to(embeds.dtype)}

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def install_visual_keepalive(model: nn.Module, family: Any) -> VisualKeepalive:
    """Make every training forward of `model` run the vision passes alike on every rank (ZeRO-2/3)."""
    return VisualKeepalive(model, family)
