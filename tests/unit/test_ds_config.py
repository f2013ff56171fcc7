"""DeepSpeed config building, ZeRO memory math and presets (videosft.train.ds_config)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from videosft.train.ds_config import (
    ACTIVATION_RESERVE_GB,
    GB,
    GPU_MEMORY_GB,
    PRESETS,
    Preset,
    ZeroSettings,
    build_ds_config,
    estimate_gpu_memory,
    estimate_model_state_bytes_per_gpu,
    get_preset,
    preset_ds_config,
    preset_with_overrides,
)

PLATFORM_DIR = Path(__file__).resolve().parents[2] / "platform"


def _cfg(**kw):
    base = dict(zero=ZeroSettings(), micro_batch_per_gpu=2, grad_accum=4, world_size=8, precision="bf16", lr=1e-5)
    base.update(kw)
    return build_ds_config(**base)


# --- purity ---------------------------------------------------------------------------------


def test_pure_modules_import_no_heavy_engines():
    code = (
        "import json, sys\n"
        "import videosft.train.ds_config, videosft.train.flops\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'deepspeed', 'ray'})\n"
        "print(json.dumps(heavy))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PLATFORM_DIR)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


# --- batch triple and key names ---------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(micro=st.integers(1, 64), accum=st.integers(1, 64), world=st.integers(1, 512), stage=st.sampled_from([2, 3]))
def test_batch_triple_is_consistent(micro, accum, world, stage):
    cfg = _cfg(zero=ZeroSettings(stage=stage), micro_batch_per_gpu=micro, grad_accum=accum, world_size=world)
    assert cfg["train_batch_size"] == micro * accum * world
    assert cfg["train_micro_batch_size_per_gpu"] == micro
    assert cfg["gradient_accumulation_steps"] == accum
    json.dumps(cfg)  # must be plain JSON


def test_stage2_block_has_no_stage3_or_offload_keys():
    z = _cfg(zero=ZeroSettings(stage=2))["zero_optimization"]
    assert z["stage"] == 2 and z["overlap_comm"] is True and z["contiguous_gradients"] is True
    assert not [k for k in z if k.startswith("stage3_")]
    assert "offload_optimizer" not in z and "offload_param" not in z


def test_stage3_block_and_offload_blocks_only_when_enabled():
    z = _cfg(zero=ZeroSettings(stage=3))["zero_optimization"]
    for key in (
        "stage3_prefetch_bucket_size",
        "stage3_param_persistence_threshold",
        "stage3_max_live_parameters",
        "stage3_max_reuse_distance",
        "stage3_gather_16bit_weights_on_model_save",
    ):
        assert key in z
    assert "offload_optimizer" not in z and "offload_param" not in z

    z = _cfg(zero=ZeroSettings(stage=3, offload_optimizer="cpu"))["zero_optimization"]
    assert z["offload_optimizer"] == {"device": "cpu", "pin_memory": True} and "offload_param" not in z

    zs = ZeroSettings(stage=3, offload_optimizer="nvme", offload_params="cpu", nvme_path="/local_nvme")
    z = _cfg(zero=zs)["zero_optimization"]
    assert z["offload_optimizer"] == {"device": "nvme", "pin_memory": True, "nvme_path": "/local_nvme"}
    assert z["offload_param"] == {"device": "cpu", "pin_memory": True}

    z = _cfg(zero=ZeroSettings(stage=2, offload_optimizer="cpu"))["zero_optimization"]
    assert z["offload_optimizer"]["device"] == "cpu"


def test_auto_buckets_resolve_from_hidden_size_or_deepspeed_defaults():
    z = _cfg(zero=ZeroSettings(stage=3), hidden_size=1000)["zero_optimization"]
    assert z["reduce_bucket_size"] == 1_000_000
    assert z["stage3_prefetch_bucket_size"] == 900_000
    assert z["stage3_param_persistence_threshold"] == 10_000
    z = _cfg(zero=ZeroSettings(stage=3))["zero_optimization"]
    assert (z["reduce_bucket_size"], z["stage3_prefetch_bucket_size"]) == (500_000_000, 50_000_000)
    z = _cfg(zero=ZeroSettings(stage=3, reduce_bucket_size=123, stage3_prefetch_bucket_size=0), hidden_size=64)
    assert z["zero_optimization"]["reduce_bucket_size"] == 123
    assert z["zero_optimization"]["stage3_prefetch_bucket_size"] == 0


@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_precision_blocks(precision):
    cfg = _cfg(precision=precision)
    assert ("bf16" in cfg) == (precision == "bf16")
    assert ("fp16" in cfg) == (precision == "fp16")
    if precision == "fp16":
        assert cfg["fp16"]["enabled"] is True and cfg["fp16"]["loss_scale"] == 0
    if precision == "bf16":
        assert cfg["bf16"] == {"enabled": True}


def test_optimizer_block_carries_lr_betas_and_torch_adam():
    cfg = _cfg(lr=3e-4, weight_decay=0.1, betas=(0.9, 0.95), torch_adam=True, grad_clip=0.5, steps_per_print=7)
    assert cfg["optimizer"]["type"] == "AdamW"
    assert cfg["optimizer"]["params"] == {
        "lr": 3e-4,
        "betas": [0.9, 0.95],
        "eps": 1e-8,
        "weight_decay": 0.1,
        "torch_adam": True,
    }
    assert cfg["gradient_clipping"] == 0.5 and cfg["steps_per_print"] == 7


def test_scheduler_choice():
    assert "scheduler" not in _cfg()
    warm = _cfg(warmup_steps=10)["scheduler"]
    assert warm["type"] == "WarmupLR" and warm["params"]["warmup_num_steps"] == 10
    assert warm["params"]["warmup_max_lr"] is None  # per-group lrs survive
    decay = _cfg(warmup_steps=10, total_steps=100)["scheduler"]
    assert decay["type"] == "WarmupDecayLR" and decay["params"]["total_num_steps"] == 100
    assert decay["params"]["warmup_max_lr"] is None and decay["params"]["warmup_type"] == "linear"
    assert _cfg(total_steps=50)["scheduler"]["params"]["warmup_num_steps"] == 1


# --- invalid combinations name the field -------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"stage": 2, "offload_params": "cpu"}, "offload_params"),
        ({"stage": 2, "offload_optimizer": "nvme", "nvme_path": "/x"}, "offload_optimizer"),
        ({"stage": 3, "offload_params": "nvme"}, "nvme_path"),
        ({"stage": 1}, "stage"),
        ({"offload_optimizer": "gpu"}, "offload_optimizer"),
        ({"reduce_bucket_size": 0}, "reduce_bucket_size"),
        ({"stage3_prefetch_bucket_size": -1}, "stage3_prefetch_bucket_size"),
        ({"overlap_com": True}, "overlap_com"),
    ],
)
def test_invalid_zero_settings_name_the_field(kwargs, field):
    with pytest.raises(ValidationError, match=field):
        ZeroSettings(**kwargs)


def test_zero_settings_are_frozen():
    with pytest.raises(ValidationError):
        ZeroSettings().stage = 3


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"micro_batch_per_gpu": 0}, "micro_batch_per_gpu"),
        ({"grad_accum": -1}, "grad_accum"),
        ({"world_size": 0}, "world_size"),
        ({"micro_batch_per_gpu": 2.0}, "micro_batch_per_gpu"),
        ({"lr": 0.0}, "lr"),
        ({"grad_clip": -1.0}, "grad_clip"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"warmup_steps": 10, "total_steps": 5}, "total_steps"),
        ({"precision": "int8"}, "precision"),
        ({"betas": (0.9, 1.0)}, "betas"),
    ],
)
def test_invalid_build_arguments_name_the_argument(kwargs, field):
    with pytest.raises(ValueError, match=field):
        _cfg(**kwargs)


# --- ZeRO memory math ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "opt", "par", "expected"),
    [  # Ψ = 1e9 params on N = 8 ranks, ZeRO paper rules, hand computed
        (0, "none", "none", 16e9),  # 2 + 2 + 12 bytes, nothing sharded
        (1, "none", "none", 5.5e9),  # 2Ψ + 2Ψ + 12Ψ/8
        (2, "none", "none", 3.75e9),  # 2Ψ + 14Ψ/8
        (3, "none", "none", 2e9),  # 16Ψ/8
        (2, "cpu", "none", 2e9),  # ZeRO-Offload: only bf16 params stay
        (3, "cpu", "none", 0.25e9),  # 2Ψ/8
        (3, "nvme", "cpu", 0),  # ZeRO-Infinity: nothing persistent on GPU
    ],
)
def test_model_state_bytes_hand_computed(stage, opt, par, expected):
    assert estimate_model_state_bytes_per_gpu(1_000_000_000, 8, stage, opt, par) == pytest.approx(expected, abs=1)


def test_fp32_grad_partition_adds_four_bytes_per_param_per_rank():
    base = estimate_model_state_bytes_per_gpu(10**9, 8, 3, "none", "none")
    extra = estimate_model_state_bytes_per_gpu(10**9, 8, 3, "none", "none", fp32_grad_partition=True)
    assert extra - base == 4 * 10**9 // 8


def test_model_state_estimate_rejects_bad_inputs():
    with pytest.raises(ValueError, match="offload_params"):
        estimate_model_state_bytes_per_gpu(10**9, 8, 2, "none", "cpu")
    with pytest.raises(ValueError, match="stage"):
        estimate_model_state_bytes_per_gpu(10**9, 8, 4, "none", "none")
    with pytest.raises(ValueError, match="offload_optimizer"):
        estimate_model_state_bytes_per_gpu(10**9, 8, 2, "disk", "none")


@settings(max_examples=80, deadline=None)
@given(params=st.integers(1, 10**12), world=st.integers(1, 1024))
def test_more_sharding_never_costs_more(params, world):
    by_stage = [estimate_model_state_bytes_per_gpu(params, world, s, "none", "none") for s in range(4)]
    assert by_stage == sorted(by_stage, reverse=True)
    for s in range(4):
        assert estimate_model_state_bytes_per_gpu(params, world + 1, s) <= by_stage[s]
        assert estimate_model_state_bytes_per_gpu(params, world, s, "cpu") <= by_stage[s]


# --- presets ------------------------------------------------------------------------------------


def test_required_presets_exist():
    for name in (
        "qwen2_5_vl_3b",
        "qwen2_5_vl_7b",
        "qwen2_5_vl_32b",
        "qwen2_5_vl_72b",
        "llava_next_video_7b",
        "llava_1_5_7b",
    ):
        assert get_preset(name).name == name


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_fits_h100_80gb_with_activation_reserve(name):
    preset = get_preset(name)
    est = estimate_gpu_memory(preset)
    assert est.activation_reserve_gb == ACTIVATION_RESERVE_GB >= 20
    assert est.model_states_ds_gb >= est.model_states_gb
    assert est.fits, f"{name}: {est.total_gb:.1f} GB > {GPU_MEMORY_GB} GB"
    # The rationale quotes the paper estimate; keep the prose honest if numbers change.
    assert f"{est.model_states_gb:.1f} GB" in preset.rationale
    assert est.cpu_gb_per_node < 1000  # offloaded states fit a 1-2 TB host
    assert preset.global_batch == 128
    # Evaluation: bf16 weights split over TP ranks must leave >= 25% of the GPU for KV cache.
    assert 2 * preset.params / preset.eval_tensor_parallel / GB <= 0.75 * GPU_MEMORY_GB


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_agree_with_deepspeeds_own_estimators(name):
    """Our stricter per-GPU figure never undercuts DeepSpeed's estimate_zero{2,3} functions."""
    pytest.importorskip("deepspeed")
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    p = get_preset(name)
    est, off = estimate_gpu_memory(p), p.zero.offload_optimizer != "none"
    if p.zero.stage == 2:
        _, ds_gpu = estimate_zero2_model_states_mem_needs(p.params, p.gpus_per_node, p.num_nodes, cpu_offload=off)
        assert est.model_states_ds_gb == pytest.approx(ds_gpu / GB, rel=1e-6)
    else:
        _, ds_gpu, _largest = estimate_zero3_model_states_mem_needs(
            p.params,
            p.vocab_size * p.hidden_size,
            p.gpus_per_node,
            p.num_nodes,
            cpu_offload=off,
            cpu_offload_params=p.zero.offload_params != "none",
        )
        assert est.model_states_ds_gb + est.working_set_gb >= ds_gpu / GB


def test_preset_ds_config_uses_preset_layout():
    p = get_preset("qwen2_5_vl_32b")
    cfg = preset_ds_config(p, lr=1e-5, warmup_steps=5, total_steps=50)
    assert cfg["train_batch_size"] == p.micro_batch_per_gpu * p.grad_accum * p.num_gpus
    assert cfg["zero_optimization"]["stage"] == 3
    assert cfg["zero_optimization"]["reduce_bucket_size"] == p.hidden_size**2


def test_unknown_preset_lists_known_names():
    with pytest.raises(ValueError, match="qwen2_5_vl_7b"):
        get_preset("qwen_9000b")


def test_dotted_overrides():
    p = preset_with_overrides("qwen2_5_vl_3b", {"zero.stage": 3, "zero.offload_params": "cpu", "grad_accum": 4})
    assert (p.zero.stage, p.zero.offload_params, p.grad_accum) == (3, "cpu", 4)
    assert get_preset("qwen2_5_vl_3b").zero.stage == 2  # the table is untouched
    p = preset_with_overrides("qwen2_5_vl_72b", {"num_gpus": 32, "num_nodes": 4})
    assert p.gpus_per_node == 8


@pytest.mark.parametrize("key", ["zero.bogus", "bogus", "zero.stage.deeper", "micro_batch"])
def test_unknown_override_key_is_named(key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        preset_with_overrides("qwen2_5_vl_7b", {key: 1})


def test_override_breaking_a_rule_names_the_field():
    with pytest.raises(ValidationError, match="offload_params"):
        preset_with_overrides("qwen2_5_vl_3b", {"zero.offload_params": "cpu"})  # 3B preset is ZeRO-2
    with pytest.raises(ValidationError, match="num_nodes"):
        preset_with_overrides("qwen2_5_vl_7b", {"num_gpus": 12, "num_nodes": 8})
    with pytest.raises(ValidationError, match="eval_tensor_parallel"):
        preset_with_overrides("qwen2_5_vl_7b", {"eval_tensor_parallel": 3})


def test_presets_are_frozen():
    with pytest.raises(ValidationError):
        get_preset("qwen2_5_vl_7b").num_gpus = 1
    assert isinstance(get_preset("qwen2_5_vl_7b"), Preset)


# --- DeepSpeed itself accepts the output --------------------------------------------------------


def _ds_configs():
    nvme = ZeroSettings(stage=3, offload_optimizer="nvme", offload_params="cpu", nvme_path="/tmp/videosft_nvme")
    return {
        "stage2_bf16_warmup": _cfg(zero=ZeroSettings(stage=2), world_size=1, warmup_steps=3, hidden_size=64),
        "stage2_cpu_offload": _cfg(zero=ZeroSettings(stage=2, offload_optimizer="cpu"), world_size=1),
        "stage3_fp16_decay": _cfg(
            zero=ZeroSettings(stage=3), world_size=1, precision="fp16", warmup_steps=3, total_steps=10, torch_adam=True
        ),
        "stage3_nvme_fp32": _cfg(zero=nvme, world_size=1, precision="fp32", total_steps=10),
        "stage2_fused_torch_adamw": _cfg(
            zero=ZeroSettings(stage=2), world_size=1, torch_adam=True, fused_adam=True, trainable_params=1000
        ),
    }


def test_deepspeed_config_accepts_built_configs():
    """Parse with deepspeed.runtime.config.DeepSpeedConfig: its pydantic models forbid unknown keys.

    Without an initialised process group DeepSpeedConfig takes world_size=1, so the configs
    here use world_size=1; the last check shows it enforces the batch triple against the world.
    """
    pytest.importorskip("deepspeed")
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    from deepspeed.runtime.config import DeepSpeedConfig

    for name, cfg in _ds_configs().items():
        ds = DeepSpeedConfig(json.loads(json.dumps(cfg)))
        z = cfg["zero_optimization"]
        assert ds.zero_optimization_stage == z["stage"], name
        assert ds.train_batch_size == cfg["train_batch_size"], name
        assert ds.gradient_accumulation_steps == cfg["gradient_accumulation_steps"], name
        assert ds.gradient_clipping == cfg["gradient_clipping"], name
        assert ds.bfloat16_config.enabled == ("bf16" in cfg), name
        assert ds.float16_config.enabled == ("fp16" in cfg), name
        assert ds.zero_config.reduce_bucket_size == z["reduce_bucket_size"], name
        for block, parsed in (
            ("offload_optimizer", ds.zero_config.offload_optimizer),
            ("offload_param", ds.zero_config.offload_param),
        ):
            device = getattr(parsed.device, "value", parsed.device) if parsed else "none"
            assert device == z.get(block, {}).get("device", "none"), (name, block)
        if z["stage"] == 3:
            assert ds.zero_config.prefetch_bucket_size == z["stage3_prefetch_bucket_size"], name
            assert ds.zero_config.gather_16bit_weights_on_model_save is True, name
        assert (
            ds.optimizer_name == "adamw"
            and ds.optimizer_params["torch_adam"] == cfg["optimizer"]["params"]["torch_adam"]
        ), name
        assert ds.scheduler_name == cfg.get("scheduler", {}).get("type"), name

    bad = _cfg(zero=ZeroSettings(stage=3), world_size=1)
    bad["zero_optimization"]["stage3_prefetch_bucket_sise"] = 1  # a typo DeepSpeed must reject
    with pytest.raises(Exception, match="stage3_prefetch_bucket_sise"):
        DeepSpeedConfig(bad)
    with pytest.raises(AssertionError, match="train_batch_size"):
        DeepSpeedConfig(_cfg(world_size=8))  # 2*4*8 != 2*4*1 in a 1-process world


def test_deepspeed_scheduler_keeps_per_group_learning_rates():
    """Instantiate the scheduler as DeepSpeed's engine does: getattr(lr_schedules, type)(opt, **params)."""
    pytest.importorskip("deepspeed")
    import torch
    from deepspeed.runtime import lr_schedules

    cfg = _cfg(lr=1e-3, warmup_steps=4, total_steps=12, torch_adam=True)
    opt_params = {k: v for k, v in cfg["optimizer"]["params"].items() if k != "torch_adam"}
    groups = [
        {"params": [torch.nn.Parameter(torch.zeros(2))], "lr": 1e-3},
        {"params": [torch.nn.Parameter(torch.zeros(2))], "lr": 2e-5},
    ]  # e.g. a slower vision tower
    opt = torch.optim.AdamW(groups, **opt_params)
    sched = getattr(lr_schedules, cfg["scheduler"]["type"])(opt, **cfg["scheduler"]["params"])
    lrs = []  # lrs[i]: the lrs DeepSpeed sets at scheduler iteration i
    for _ in range(13):
        sched.step()
        lrs.append([g["lr"] for g in opt.param_groups])
    assert lrs[4] == pytest.approx([1e-3, 2e-5])  # peak = each group's own lr, after warmup
    assert lrs[2] == pytest.approx([0.5e-3, 1e-5])  # linear warmup scales every group alike
    assert lrs[8] == pytest.approx([0.5e-3, 1e-5])  # linear decay, halfway from step 4 to 12
    assert lrs[12] == pytest.approx([0.0, 0.0], abs=1e-12)  # zero at total_steps
