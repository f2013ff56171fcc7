"""DeepSpeed JSON config building, ZeRO memory math, and the per-model scale presets.

PURE on purpose: this module imports neither deepspeed, torch nor ray, so a config can be built,
validated and printed on a laptop before any cluster exists (tests assert the import set).
`train/engine.py` is the only place that hands the resulting dict to `deepspeed.initialize`.

Key names follow DeepSpeed 0.19 (`deepspeed/runtime/zero/config.py`, `offload_config.py`,
`precision_config.py`, `lr_schedules.py`); DeepSpeed's own pydantic models forbid unknown keys,
and a unit test feeds our output to `deepspeed.runtime.config.DeepSpeedConfig`.

Memory rules (ZeRO paper, mixed-precision Adam, Ψ params, N data-parallel ranks): 2Ψ bf16
params + 2Ψ bf16 grads + 12Ψ fp32 master/m/v = 16Ψ. Stage 1 shards the 12Ψ, stage 2 also the
grads (2Ψ + 14Ψ/N), stage 3 everything (16Ψ/N). DeepSpeed 0.19 also keeps an fp32 gradient
partition (+4Ψ/N); presets are checked against that stricter rule, which equals DeepSpeed's own
ZeRO-2 estimator (2Ψ + 18Ψ/N) and exceeds its ZeRO-3 one (18Ψ/N).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Offload = Literal["none", "cpu", "nvme"]
AutoOrPositive = Literal["auto"] | Annotated[int, Field(gt=0)]
AutoOrNonNegative = Literal["auto"] | Annotated[int, Field(ge=0)]

GB = 1e9  # decimal GB: an "80GB" H100 has ~85.5e9 bytes, so 80e9 leaves a small extra margin
GPU_MEMORY_GB = 80.0
# Kept free for activations, CUDA context, allocator fragmentation and NCCL. A grad-checkpointed
# 8k-token video sample on a 7B LM needs ~2 GB of layer checkpoints, ~5 GB of fp32 logits
# (152k vocab) and a few GB of one recomputed layer; 24 GB covers that with room to spare.
ACTIVATION_RESERVE_GB = 24.0
_DS_ALLGATHER_BUCKET = 500_000_000  # DeepSpeed's default allgather_bucket_size (elements), stage 1/2


class ZeroSettings(BaseModel):
    """The `zero_optimization` block, restricted to the choices this platform supports."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: Literal[2, 3] = 2
    offload_optimizer: Offload = "none"
    offload_params: Offload = "none"
    nvme_path: str | None = None  # required when either offload targets nvme
    pin_memory: bool = True
    overlap_comm: bool = True
    contiguous_gradients: bool = True
    # "auto" resolves from the LM hidden size (h², 0.9·h², 10·h: the Hugging Face rule) or,
    # without one, to DeepSpeed's defaults; DeepSpeed itself only accepts integers.
    reduce_bucket_size: AutoOrPositive = "auto"
    stage3_prefetch_bucket_size: AutoOrNonNegative = "auto"
    stage3_param_persistence_threshold: AutoOrNonNegative = "auto"
    stage3_max_live_parameters: int = Field(1_000_000_000, ge=0)
    stage3_max_reuse_distance: int = Field(1_000_000_000, ge=0)
    # True so rank 0 can write a plain 16-bit state dict next to the shards on save.
    stage3_gather_16bit_weights_on_model_save: bool = True

    @model_validator(mode="after")
    def _check_combination(self) -> ZeroSettings:
        if self.offload_params != "none" and self.stage != 3:
            raise ValueError(
                f"zero.offload_params={self.offload_params!r} requires zero.stage=3 "
                f"(got zero.stage={self.stage}); only ZeRO-3 partitions parameters"
            )
        if self.offload_optimizer == "nvme" and self.stage != 3:
            # DeepSpeed's stage 1/2 optimizer treats any offload device as CPU: no NVMe swapping.
            raise ValueError(
                f"zero.offload_optimizer='nvme' requires zero.stage=3 (got zero.stage={self.stage}); "
                "use offload_optimizer='cpu' with ZeRO-2"
            )
        if "nvme" in (self.offload_optimizer, self.offload_params) and not self.nvme_path:
            raise ValueError("zero.nvme_path must be set when an offload targets 'nvme'")
        return self


def _bucket_sizes(zero: ZeroSettings, hidden_size: int | None, trainable_params: int | None = None) -> dict[str, int]:
    """Resolve "auto" bucket sizes to the integers DeepSpeed requires.

    An "auto" reduce bucket never exceeds the trainable parameter count: ZeRO-1/2 allocate the
    bucket (twice with overlap_comm) at every micro-step, and DeepSpeed's 5e8-element default on a
    30M-parameter CPU model cost 2 x 2 GB of fresh pages a step (benchmarks/train_cpu.py).
    """
    h2 = hidden_size * hidden_size if hidden_size else None
    reduce = h2 or 500_000_000
    if trainable_params:
        reduce = max(1, min(reduce, int(trainable_params)))
    auto = {
        "reduce_bucket_size": reduce,
        "stage3_prefetch_bucket_size": int(0.9 * h2) if h2 else 50_000_000,
        "stage3_param_persistence_threshold": 10 * hidden_size if hidden_size else 100_000,
    }
    return {k: (auto[k] if getattr(zero, k) == "auto" else int(getattr(zero, k))) for k in auto}


def _offload_block(device: str, zero: ZeroSettings) -> dict[str, Any]:
    block: dict[str, Any] = {"device": device, "pin_memory": zero.pin_memory}
    if device == "nvme":
        block["nvme_path"] = zero.nvme_path
    return block


def _zero_block(zero: ZeroSettings, hidden_size: int | None, trainable_params: int | None = None) -> dict[str, Any]:
    buckets = _bucket_sizes(zero, hidden_size, trainable_params)
    block: dict[str, Any] = {
        "stage": zero.stage,
        "overlap_comm": zero.overlap_comm,
        "contiguous_gradients": zero.contiguous_gradients,
        "reduce_bucket_size": buckets["reduce_bucket_size"],
    }
    if zero.offload_optimizer != "none":  # blocks only when enabled: absent means "on GPU"
        block["offload_optimizer"] = _offload_block(zero.offload_optimizer, zero)
    if zero.offload_params != "none":
        block["offload_param"] = _offload_block(zero.offload_params, zero)
    if zero.stage == 3:
        block.update(
            stage3_prefetch_bucket_size=buckets["stage3_prefetch_bucket_size"],
            stage3_param_persistence_threshold=buckets["stage3_param_persistence_threshold"],
            stage3_max_live_parameters=zero.stage3_max_live_parameters,
            stage3_max_reuse_distance=zero.stage3_max_reuse_distance,
            stage3_gather_16bit_weights_on_model_save=zero.stage3_gather_16bit_weights_on_model_save,
        )
    return block


def _scheduler_block(warmup_steps: int, total_steps: int | None) -> dict[str, Any] | None:
    """WarmupLR (warm up, then constant) or WarmupDecayLR (warm up, then linear decay to 0).

    `warmup_max_lr` is None on purpose: DeepSpeed then takes each param group's own lr as its
    peak, so per-module-group learning rates passed to `deepspeed.initialize` survive. A float
    here would overwrite every group's lr (WarmupDecayLR's own default is a fixed 1e-3).
    DeepSpeed clamps warmup to at least 2 steps and starts from warmup_min_lr=0.
    """
    if warmup_steps == 0 and total_steps is None:
        return None
    params: dict[str, Any] = {
        "warmup_min_lr": 0.0,
        "warmup_max_lr": None,
        "warmup_num_steps": max(1, warmup_steps),
        "warmup_type": "linear",  # DeepSpeed's default is "log"; linear matches common SFT recipes
    }
    if total_steps is None:
        return {"type": "WarmupLR", "params": params}
    return {"type": "WarmupDecayLR", "params": {**params, "total_num_steps": total_steps}}


def _check_range(low: float, strict: bool, **values: float) -> None:
    """Raise naming the first argument below `low` (or equal to it when `strict`)."""
    for name, value in values.items():
        if value < low or (strict and value == low):
            raise ValueError(f"{name} must be {'>' if strict else '>='} {low}, got {value}")


def build_ds_config(
    *,
    zero: ZeroSettings,
    micro_batch_per_gpu: int,
    grad_accum: int,
    world_size: int,
    precision: Literal["bf16", "fp16", "fp32"],
    grad_clip: float = 1.0,
    lr: float,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    torch_adam: bool = False,
    fused_adam: bool = False,
    warmup_steps: int = 0,
    total_steps: int | None = None,
    steps_per_print: int = 10**9,
    hidden_size: int | None = None,
    trainable_params: int | None = None,
) -> dict[str, Any]:
    """Return a DeepSpeed config dict; `lr` is the default for param groups that set none.

    The batch triple is written out in full (train = micro × accum × world) so DeepSpeed never
    infers one of them. `torch_adam=True` makes DeepSpeed use torch.optim.AdamW, which avoids
    JIT-building cpu_adam on CPU-only runs. `hidden_size` resolves "auto" bucket sizes and
    `trainable_params` caps the "auto" reduce bucket. `fused_adam=True` (with torch_adam) asks for
    torch.optim.AdamW(fused=True): one kernel over all parameters on CUDA, no JIT build (DeepSpeed
    passes the optimizer params through as keyword arguments).
    """
    counts = {
        "micro_batch_per_gpu": micro_batch_per_gpu,
        "grad_accum": grad_accum,
        "world_size": world_size,
        "warmup_steps": warmup_steps,
        "total_steps": 1 if total_steps is None else total_steps,
    }
    for name, value in counts.items():  # DeepSpeed asserts on non-integer batch sizes much later
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    _check_range(0, True, micro_batch_per_gpu=micro_batch_per_gpu, grad_accum=grad_accum, world_size=world_size)
    _check_range(0, True, lr=lr)
    _check_range(0, False, grad_clip=grad_clip, weight_decay=weight_decay, warmup_steps=warmup_steps)
    if precision not in ("bf16", "fp16", "fp32"):
        raise ValueError(f"precision must be 'bf16', 'fp16' or 'fp32', got {precision!r}")
    if total_steps is not None and total_steps < max(1, warmup_steps):
        raise ValueError(f"total_steps ({total_steps}) must be >= max(1, warmup_steps={warmup_steps})")
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"betas must be two floats in [0, 1), got {betas}")
    if fused_adam and not torch_adam:
        raise ValueError("fused_adam=True needs torch_adam=True (it selects torch.optim.AdamW(fused=True))")
    config: dict[str, Any] = {
        "train_batch_size": micro_batch_per_gpu * grad_accum * world_size,
        "train_micro_batch_size_per_gpu": micro_batch_per_gpu,
        "gradient_accumulation_steps": grad_accum,
        "gradient_clipping": grad_clip,
        "steps_per_print": steps_per_print,
        "wall_clock_breakdown": False,
        "zero_optimization": _zero_block(zero, hidden_size, trainable_params),
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": lr,
                "betas": [float(betas[0]), float(betas[1])],
                "eps": 1e-8,
                "weight_decay": weight_decay,
                "torch_adam": torch_adam,
                **({"fused": True} if fused_adam else {}),
            },
        },
    }
    if precision == "bf16":
        config["bf16"] = {"enabled": True}
    elif precision == "fp16":  # dynamic loss scaling (loss_scale 0), DeepSpeed's documented defaults
        config["fp16"] = {
            "enabled": True,
            "loss_scale": 0,
            "initial_scale_power": 16,
            "loss_scale_window": 1000,
            "hysteresis": 2,
            "min_loss_scale": 1,
        }
    scheduler = _scheduler_block(warmup_steps, total_steps)
    if scheduler is not None:
        config["scheduler"] = scheduler
    return config


def estimate_model_state_bytes_per_gpu(
    params: int,
    world_size: int,
    stage: int,
    offload_optimizer: str = "none",
    offload_params: str = "none",
    *,
    fp32_grad_partition: bool = False,
) -> int:
    """Bytes of params + grads + Adam states resident on one GPU (ZeRO paper rules).

    Offloading the optimizer moves the fp32 states and the gradient partition to host memory
    (ZeRO-Offload), leaving only 16-bit params on the GPU; offloading params (stage 3 only)
    removes those too. `fp32_grad_partition` adds DeepSpeed's extra 4Ψ/N fp32 gradient buffer.
    Working buffers (gathered layers, comm buckets) are not model states: see estimate_gpu_memory.
    """
    if params <= 0 or world_size < 1:
        raise ValueError(f"params and world_size must be positive, got {params}, {world_size}")
    if stage not in (0, 1, 2, 3):
        raise ValueError(f"stage must be 0..3, got {stage}")
    for name, value in (("offload_optimizer", offload_optimizer), ("offload_params", offload_params)):
        if value not in ("none", "cpu", "nvme"):
            raise ValueError(f"{name} must be 'none', 'cpu' or 'nvme', got {value!r}")
    if offload_params != "none" and stage != 3:
        raise ValueError(f"offload_params={offload_params!r} requires stage=3 (got stage={stage})")
    n = world_size
    p16 = 0.0 if offload_params != "none" else (2 * params / n if stage == 3 else 2 * params)
    if offload_optimizer != "none":
        grads = optim = 0.0
    else:
        grads = 2 * params / n if stage >= 2 else 2 * params
        optim = (12 + (4 if fp32_grad_partition else 0)) * params / (n if stage >= 1 else 1)
    return int(math.ceil(p16 + grads + optim))


class Preset(BaseModel):
    """A known-good scale recipe for one model on H100-80GB nodes (8 GPUs per node)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    family: str  # videosft.models registry name
    hf_model_id: str
    params_b: float = Field(gt=0)  # total parameters (vision tower + projector + LM), billions
    hidden_size: int = Field(gt=0)  # LM hidden size: resolves "auto" buckets
    vocab_size: int = Field(gt=0)  # embedding / lm_head is the largest module ZeRO-3 gathers
    num_gpus: int = Field(gt=0)
    num_nodes: int = Field(gt=0)
    zero: ZeroSettings
    micro_batch_per_gpu: int = Field(gt=0)
    grad_accum: int = Field(gt=0)
    gradient_checkpointing: bool = True
    precision: Literal["bf16", "fp16"] = "bf16"
    eval_tensor_parallel: int = Field(1, gt=0)  # vLLM tensor_parallel_size for evaluation
    rationale: str

    @model_validator(mode="after")
    def _check_layout(self) -> Preset:
        if self.num_gpus % self.num_nodes:
            raise ValueError(f"num_gpus ({self.num_gpus}) must be a multiple of num_nodes ({self.num_nodes})")
        if self.gpus_per_node > 8:
            raise ValueError(f"num_gpus/num_nodes = {self.gpus_per_node} exceeds 8 GPUs per node")
        tp = self.eval_tensor_parallel
        if tp & (tp - 1) or tp > self.gpus_per_node:
            raise ValueError(f"eval_tensor_parallel ({tp}) must be a power of two <= GPUs per node")
        return self

    @property
    def gpus_per_node(self) -> int:
        return self.num_gpus // self.num_nodes

    @property
    def global_batch(self) -> int:
        return self.micro_batch_per_gpu * self.grad_accum * self.num_gpus

    @property
    def params(self) -> int:
        return int(round(self.params_b * 1e9))


@dataclass(frozen=True)
class MemoryEstimate:
    """Per-GPU memory in GB for one preset; `total_gb` includes the activation reserve."""

    model_states_gb: float  # ZeRO paper rule (16 bytes/param)
    model_states_ds_gb: float  # plus DeepSpeed's fp32 grad partition (+4 bytes/param/N)
    working_set_gb: float  # stage-3 gathered params + prefetch, or stage-2 comm buckets
    activation_reserve_gb: float
    cpu_gb_per_node: float  # host memory for offloaded states (0 without offload)

    @property
    def total_gb(self) -> float:
        return self.model_states_ds_gb + self.working_set_gb + self.activation_reserve_gb

    @property
    def fits(self) -> bool:
        return self.total_gb <= GPU_MEMORY_GB


def working_set_bytes(zero: ZeroSettings, hidden_size: int, vocab_size: int) -> float:
    """Per-GPU working buffers that are not model states: stage-3 gathers + prefetch, or stage-2
    all-gather buckets, plus the reduce buckets (16-bit, doubled by overlap_comm)."""
    buckets = _bucket_sizes(zero, hidden_size)
    reduce = 2 * buckets["reduce_bucket_size"] * (2 if zero.overlap_comm else 1)
    if zero.stage == 3:
        # DeepSpeed's estimator counts 4 bytes/param of the largest gathered module (the
        # embedding / lm_head here); max_live_parameters can hold more at once.
        gathered = max(4 * vocab_size * hidden_size, 2 * zero.stage3_max_live_parameters)
        return gathered + 2 * buckets["stage3_prefetch_bucket_size"] + reduce
    return 2 * _DS_ALLGATHER_BUCKET + reduce


def zero_stage_fits(
    stage: int,
    params: int,
    world_size: int,
    gpu_memory_gb: float,
    *,
    hidden_size: int,
    vocab_size: int,
    activations_gb: float,
) -> tuple[bool, float]:
    """(fits, GB per GPU): model states (with DeepSpeed's fp32 grad partition) + working buffers +
    `activations_gb` at ZeRO `stage` without offload, against `gpu_memory_gb`."""
    states = estimate_model_state_bytes_per_gpu(params, world_size, stage, fp32_grad_partition=True)
    total = (states + working_set_bytes(ZeroSettings(stage=stage), hidden_size, vocab_size)) / GB + activations_gb
    return total <= gpu_memory_gb, total


def choose_zero_stage(
    params: int,
    world_size: int,
    gpu_memory_gb: float,
    *,
    hidden_size: int,
    vocab_size: int,
    activations_gb: float = ACTIVATION_RESERVE_GB,
) -> tuple[int, str]:
    """ZeRO-2 when its per-GPU memory fits (no per-layer parameter gathers), else ZeRO-3; with why."""
    fits2, gb2 = zero_stage_fits(
        2,
        params,
        world_size,
        gpu_memory_gb,
        hidden_size=hidden_size,
        vocab_size=vocab_size,
        activations_gb=activations_gb,
    )
    _, gb3 = zero_stage_fits(
        3,
        params,
        world_size,
        gpu_memory_gb,
        hidden_size=hidden_size,
        vocab_size=vocab_size,
        activations_gb=activations_gb,
    )
    stage = 2 if fits2 else 3
    why = (
        f"zero_stage auto -> {stage}: {params / 1e9:.2f}B params on {world_size} GPU(s) of {gpu_memory_gb:.0f} GB, "
        f"with {activations_gb:.1f} GB of activations: ZeRO-2 needs {gb2:.1f} GB/GPU, ZeRO-3 {gb3:.1f}"
    )
    return stage, why


def estimate_gpu_memory(preset: Preset) -> MemoryEstimate:
    """Model states + working buffers + activation reserve for `preset`, in GB per GPU."""
    z, p = preset.zero, preset.params
    args = (p, preset.num_gpus, z.stage, z.offload_optimizer, z.offload_params)
    # Host side: fp32 master + Adam moments + fp32 grads (16Ψ), plus 16-bit params (2Ψ).
    offloaded = (16 * p if z.offload_optimizer != "none" else 0) + (2 * p if z.offload_params != "none" else 0)
    return MemoryEstimate(
        model_states_gb=estimate_model_state_bytes_per_gpu(*args) / GB,
        model_states_ds_gb=estimate_model_state_bytes_per_gpu(*args, fp32_grad_partition=True) / GB,
        working_set_gb=working_set_bytes(z, preset.hidden_size, preset.vocab_size) / GB,
        activation_reserve_gb=ACTIVATION_RESERVE_GB,
        cpu_gb_per_node=offloaded / preset.num_nodes / GB,
    )


def _preset(
    name: str,
    family: str,
    hf: str,
    params_b: float,
    hidden: int,
    vocab: int,
    gpus: int,
    nodes: int,
    zero: dict[str, Any],
    micro: int,
    accum: int,
    tp: int,
    why: str,
) -> Preset:
    return Preset(
        name=name,
        family=family,
        hf_model_id=hf,
        params_b=params_b,
        hidden_size=hidden,
        vocab_size=vocab,
        num_gpus=gpus,
        num_nodes=nodes,
        zero=ZeroSettings(**zero),
        micro_batch_per_gpu=micro,
        grad_accum=accum,
        eval_tensor_parallel=tp,
        rationale=why,
    )


# Global batch 128 everywhere so trade-off points differ only in model and frame budget.
# GB figures are the ZeRO-paper model states per GPU (estimate_gpu_memory; a test keeps them true).
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        _preset(
            "qwen2_5_vl_3b",
            "qwen2_5_vl",
            "Qwen/Qwen2.5-VL-3B-Instruct",
            3.75,
            2048,
            151936,
            8,
            1,
            {"stage": 2},
            2,
            8,
            1,
            "ZeRO-2 on one node: 2Ψ+14Ψ/8 = 14.1 GB/GPU of model states; ZeRO-3's per-layer "
            "all-gathers would buy nothing at this size, and >50 GB stays free for video activations.",
        ),
        _preset(
            "qwen2_5_vl_7b",
            "qwen2_5_vl",
            "Qwen/Qwen2.5-VL-7B-Instruct",
            8.29,
            3584,
            152064,
            8,
            1,
            {"stage": 3},
            1,
            16,
            1,
            "ZeRO-3 on one node: 16Ψ/8 = 16.6 GB/GPU (ZeRO-2 would be 31.1 GB); the extra headroom "
            "goes to 64-frame samples of ~8k visual tokens, whose fp32 logits alone are ~5 GB.",
        ),
        _preset(
            "qwen2_5_vl_32b",
            "qwen2_5_vl",
            "Qwen/Qwen2.5-VL-32B-Instruct",
            33.5,
            5120,
            152064,
            16,
            2,
            {"stage": 3},
            1,
            8,
            2,
            "ZeRO-3 over 2 nodes: 16Ψ/16 = 33.5 GB/GPU (41.9 GB with DeepSpeed's fp32 grad partition); "
            "one node would need 67.0 GB. Eval: 67 GB of bf16 weights -> vLLM TP=2.",
        ),
        _preset(
            "qwen2_5_vl_72b",
            "qwen2_5_vl",
            "Qwen/Qwen2.5-VL-72B-Instruct",
            73.4,
            8192,
            152064,
            64,
            8,
            {"stage": 3},
            1,
            2,
            4,
            "ZeRO-3 over 8 nodes, no offload: 16Ψ/64 = 18.4 GB/GPU plus ~5 GB to gather the 1.2B-param "
            "embedding; 32 GPUs would be 36.7 GB. Eval: 147 GB of weights -> vLLM TP=4.",
        ),
        _preset(
            "qwen2_5_vl_72b_offload",
            "qwen2_5_vl",
            "Qwen/Qwen2.5-VL-72B-Instruct",
            73.4,
            8192,
            152064,
            32,
            4,
            {"stage": 3, "offload_optimizer": "cpu"},
            1,
            4,
            4,
            "Half the GPUs: ZeRO-3 + CPU optimizer offload leaves 2Ψ/32 = 4.6 GB/GPU; fp32 master, Adam "
            "moments and grads (16Ψ) move to host, ~294 GB per node, and CPU Adam slows each step.",
        ),
        _preset(
            "llava_next_video_7b",
            "llava_next_video",
            "llava-hf/LLaVA-NeXT-Video-7B-hf",
            7.06,
            4096,
            32064,
            8,
            1,
            {"stage": 3},
            1,
            16,
            1,
            "ZeRO-3 on one node, as LLaVA's own fine-tune scripts: 16Ψ/8 = 14.1 GB/GPU, leaving room "
            "for long frame sequences at micro-batch 1.",
        ),
        _preset(
            "llava_1_5_7b",
            "llava_1_5",
            "llava-hf/llava-1.5-7b-hf",
            7.06,
            4096,
            32064,
            8,
            1,
            {"stage": 3},
            16,
            1,
            1,
            "LLaVA-1.5's recipe (ZeRO-3, 16 per GPU, global 128): 16Ψ/8 = 14.1 GB/GPU; 576 image tokens "
            "per sample keep 16 checkpointed ~2k-token sequences well inside the rest.",
        ),
    )
}


def get_preset(name: str) -> Preset:
    """Return the preset called `name`, or fail naming the known ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name]


def preset_with_overrides(name: str, overrides: dict[str, Any]) -> Preset:
    """Copy of preset `name` with dotted-key overrides applied, e.g. {"zero.stage": 3}.

    The result is re-validated as a whole, so an override that breaks a rule (offload_params
    under stage 2) fails with the same field-naming error as a hand-written preset.
    """
    data = get_preset(name).model_dump()
    for key, value in overrides.items():
        node, parts = data, key.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                where = ".".join(parts[:depth]) or "preset"
                known = sorted(node) if isinstance(node, dict) else []
                raise ValueError(f"unknown preset override key {key!r}: {where} has no field {part!r}; known: {known}")
            if depth == len(parts) - 1:
                node[part] = value
            else:
                node = node[part]
    return Preset.model_validate(data)


def preset_ds_config(preset: Preset, *, lr: float, **kwargs: Any) -> dict[str, Any]:
    """build_ds_config for a preset's layout; other build_ds_config keywords pass through."""
    return build_ds_config(
        zero=preset.zero,
        micro_batch_per_gpu=preset.micro_batch_per_gpu,
        grad_accum=preset.grad_accum,
        world_size=preset.num_gpus,
        precision=preset.precision,
        hidden_size=preset.hidden_size,
        lr=lr,
        **kwargs,
    )
