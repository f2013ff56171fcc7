"""Model FLOPs and MFU (model FLOPs utilisation) estimates for vision-language training steps.

PURE: no torch/deepspeed/ray import, so a report can compute MFU from logged token counts and
step times anywhere. MFU counts the FLOPs the *model* needs (PaLM, Chowdhery et al. 2022,
appendix B), not what the hardware executed: activation recomputation from gradient
checkpointing is deliberately not counted, so checkpointing shows up as lower MFU, as it should.

Conventions:
- Language model: 6·N FLOPs per token for forward+backward of the dense matmuls (2 forward,
  4 backward), plus 12·L·h·s per token for attention scores and the weighted sum (PaLM's term,
  which counts the full s×s attention even under a causal mask, as everyone reporting MFU does).
- Vision tower: 2·N per patch forward. If the tower trains, backward costs twice the forward
  (×3 total); a frozen tower needs no backward at all, because nothing below it wants gradients.
  The ViT attention term is left out: Qwen2.5-VL's windowed attention makes it small, and
  leaving it out under-reports MFU rather than inflating it.
"""

from __future__ import annotations

import math

# Dense (no 2:4 sparsity) peak tensor throughput per device, FLOP/s, from vendor datasheets.
# "fp32" is the plain FP32 (non tensor core) rate: PyTorch does not use TF32 for matmuls by
# default; "tf32" is the tensor-core rate for runs that enable it.
PEAK_FLOPS: dict[str, dict[str, float]] = {
    "h100_sxm": {"bf16": 989e12, "fp16": 989e12, "tf32": 494.5e12, "fp32": 67e12, "fp8": 1979e12},
    "h100_pcie": {"bf16": 756e12, "fp16": 756e12, "tf32": 378e12, "fp32": 51e12, "fp8": 1513e12},
    # H200 is the H100 SXM die with more and faster HBM: same compute peak.
    "h200": {"bf16": 989e12, "fp16": 989e12, "tf32": 494.5e12, "fp32": 67e12, "fp8": 1979e12},
    "a100": {"bf16": 312e12, "fp16": 312e12, "tf32": 156e12, "fp32": 19.5e12},
    # Placeholder only: CPU peaks vary by 100x across machines, so peak_flops_for never returns
    # it. A caller who wants a CPU "MFU" (e.g. the laptop demo) must pass it explicitly and say so.
    "cpu_placeholder": {"bf16": 1e12, "fp16": 1e12, "tf32": 1e12, "fp32": 1e12},
}

_PRECISION_ALIASES = {
    "bfloat16": "bf16",
    "torch.bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "torch.float16": "fp16",
    "float32": "fp32",
    "float": "fp32",
    "torch.float32": "fp32",
    "float8": "fp8",
}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def transformer_train_flops(n_params_lm: int, n_text_tokens: int, n_layers: int, hidden: int, seq_len: int) -> float:
    """FLOPs of one forward+backward pass of the language model over `n_text_tokens` tokens.

    `n_text_tokens` is every token the LM processes (text and visual tokens alike; padding
    excluded), `seq_len` the attention span each token sees (the packed/padded sequence length).
    Returns tokens · (6·N + 12·L·h·s).
    """
    _require(n_params_lm > 0, f"n_params_lm must be > 0, got {n_params_lm}")
    _require(n_text_tokens >= 0, f"n_text_tokens must be >= 0, got {n_text_tokens}")
    _require(n_layers > 0 and hidden > 0, f"n_layers and hidden must be > 0, got {n_layers}, {hidden}")
    _require(seq_len > 0, f"seq_len must be > 0, got {seq_len}")
    per_token = 6.0 * n_params_lm + 12.0 * n_layers * hidden * seq_len
    return float(n_text_tokens) * per_token


def vision_flops(n_params_vit: int, n_patches: int, train_vit: bool) -> float:
    """FLOPs spent in the vision tower on `n_patches` patches: 2·N·patches, ×3 when it trains."""
    _require(n_params_vit >= 0, f"n_params_vit must be >= 0, got {n_params_vit}")
    _require(n_patches >= 0, f"n_patches must be >= 0, got {n_patches}")
    forward = 2.0 * n_params_vit * n_patches
    return 3.0 * forward if train_vit else forward


def mfu(total_flops: float, seconds: float, n_devices: int, peak_flops_per_device: float) -> float:
    """Achieved model FLOP/s over the peak of all devices, a fraction in [0, 1] when sane.

    Values above 1 are returned, not clipped: they mean the FLOP count or the peak is wrong,
    and hiding that would hide the bug.
    """
    _require(total_flops >= 0 and math.isfinite(total_flops), f"total_flops must be finite, >= 0: {total_flops}")
    _require(seconds > 0, f"seconds must be > 0, got {seconds}")
    _require(n_devices > 0, f"n_devices must be > 0, got {n_devices}")
    _require(peak_flops_per_device > 0, f"peak_flops_per_device must be > 0, got {peak_flops_per_device}")
    return total_flops / (seconds * n_devices * peak_flops_per_device)


def _device_key(device_name: str) -> str | None:
    """Map a device name (torch.cuda.get_device_name, nvidia-smi) to a PEAK_FLOPS key."""
    name = device_name.lower()
    if "h200" in name:  # also "NVIDIA GH200 144G HBM3e"
        return "h200"
    if "h100" in name:
        return "h100_pcie" if "pcie" in name else "h100_sxm"
    if "a100" in name:
        return "a100"
    return None  # CPUs and unknown devices: no honest default peak


def peak_flops_for(device_name: str, precision: str) -> float | None:
    """Dense peak FLOP/s for a device and precision, or None when unknown (never a guess).

    CPU names return None on purpose; see PEAK_FLOPS["cpu_placeholder"].
    """
    key = _device_key(device_name)
    if key is None:
        return None
    precision = _PRECISION_ALIASES.get(precision.lower(), precision.lower())
    return PEAK_FLOPS[key].get(precision)


def step_mfu(
    *,
    n_params_lm: int,
    n_lm_tokens: int,
    n_layers: int,
    hidden: int,
    seq_len: int,
    n_params_vit: int,
    n_patches: int,
    train_vit: bool,
    seconds: float,
    n_devices: int,
    peak_flops_per_device: float,
) -> float:
    """MFU of one logged training step: LM and vision FLOPs summed, over wall time × peak."""
    total = transformer_train_flops(n_params_lm, n_lm_tokens, n_layers, hidden, seq_len)
    total += vision_flops(n_params_vit, n_patches, train_vit)
    return mfu(total, seconds, n_devices, peak_flops_per_device)
