"""train.zero_stage / gradient_checkpointing "auto": the per-GPU arithmetic on the presets' shapes.

Expected stages are worked out by hand in the comments (GB = 1e9 bytes; model states with
DeepSpeed's fp32 grad partition: ZeRO-2 2Ψ + 18Ψ/N, ZeRO-3 20Ψ/N), not read back from the code.
"""

from types import SimpleNamespace

import pytest

from videosft.train.ds_config import PRESETS, ZeroSettings, build_ds_config, choose_zero_stage
from videosft.train.memory_plan import (
    RUNTIME_RESERVE_GB,
    ActivationShape,
    activation_bytes,
    plan_memory,
    tokens_per_sample,
)

QWEN_VIT = dict(vit_layers=32, vit_hidden=1280, vit_intermediate=3420)
SHAPES = {  # published Qwen2.5-VL configs
    "qwen2_5_vl_3b": ActivationShape(36, 2048, 11008, 151936, **QWEN_VIT),
    "qwen2_5_vl_7b": ActivationShape(28, 3584, 18944, 152064, **QWEN_VIT),
    "qwen2_5_vl_72b": ActivationShape(80, 8192, 29568, 152064, **QWEN_VIT),
}
PROCESSOR_336 = SimpleNamespace(
    video_processor=SimpleNamespace(patch_size=14, merge_size=2, temporal_patch_size=2, max_pixels=336 * 336)
)


def _plan(name, world, frames, micro, gpu_gb=80.0, **pinned):
    preset, shape = PRESETS[name], SHAPES[name]
    tokens, patches = tokens_per_sample(PROCESSOR_336, frames)
    act = activation_bytes(shape, tokens * micro, patches * micro, False) / 1e9
    ckpt = activation_bytes(shape, tokens * micro, patches * micro, True) / 1e9
    kw = {"zero_stage": "auto", "checkpointing": "auto", **pinned}
    return plan_memory(
        params=preset.params,
        world_size=world,
        gpu_memory_gb=gpu_gb,
        hidden_size=preset.hidden_size,
        vocab_size=preset.vocab_size,
        activations_gb=act,
        activations_ckpt_gb=ckpt,
        **kw,
    )


def test_activation_bytes_by_hand():
    s = ActivationShape(lm_layers=2, lm_hidden=4, lm_intermediate=8, vocab=10)
    # full: 2 layers x (5*4 + 2*8) x 2 bytes x 3 tokens = 432; logits 3 x 10 x 10 = 300
    assert activation_bytes(s, 3, 0, False) == 432 + 300
    # checkpointed: layer inputs 2 x 4 x 2 x 3 = 48, one recomputed layer 216, logits 300
    assert activation_bytes(s, 3, 0, True) == 48 + 216 + 300
    vit = ActivationShape(1, 4, 8, 10, vit_layers=1, vit_hidden=2, vit_intermediate=2)
    assert activation_bytes(vit, 0, 5, False) - activation_bytes(vit, 0, 5, False, train_vit=False) == (10 + 4) * 2 * 5


def test_tokens_per_sample_qwen_processor_and_fallback():
    # 32 frames -> 16 temporal patches x (336/14)^2 = 576 -> 9216 patches; 2x2 merge -> 2304 + 256 text tokens
    assert tokens_per_sample(PROCESSOR_336, 32) == (2304 + 256, 9216)
    assert tokens_per_sample(PROCESSOR_336, 31) == (2304 + 256, 9216)  # the last pair is padded
    assert tokens_per_sample(SimpleNamespace(), 8) == (8 * 144 + 256, 8 * 576)


def test_3b_on_8_gpus_is_zero2_and_checkpoints_only_when_activations_do_not_fit():
    # ZeRO-2 states: 2*3.75 + 18*3.75/8 = 15.94 GB, + 1.0 GB all-gather buckets, + 6 GB runtime.
    # 32 frames x 1: activations 2560 tokens x (36 x 32256 x 2 + 1.52e6) + 9216 patches x 32 x 19640
    # x 2 = 17.6 GB -> 40.6 GB: fits, no recompute.
    plan = _plan("qwen2_5_vl_3b", 8, 32, 1)
    assert (plan.zero_stage, plan.checkpointing) == (2, False)
    assert plan.total_gb == pytest.approx(40.6, abs=0.2)
    # 32 frames x 4: 70.6 GB of activations; ZeRO-2 93.5 GB and ZeRO-3 (20*3.75/8 = 9.4 GB + 3.1 GB
    # gathers) 88 GB both miss 80; checkpointing leaves 21.7 GB -> ZeRO-2 + checkpointing, 44.7 GB.
    plan = _plan("qwen2_5_vl_3b", 8, 32, 4)
    assert (plan.zero_stage, plan.checkpointing) == (2, True)
    assert "ZeRO-2 93.5 GB; ZeRO-3 88.0 GB; ZeRO-2 + checkpointing 44.7 GB" in plan.reason


def test_7b_on_8_gpus_zero2_at_32_frames_zero3_at_64():
    # ZeRO-2 states 2*8.29 + 18*8.29/8 = 35.2 GB; 32 frames x 1: +19.7 GB activations -> 62 GB: ZeRO-2.
    assert (_plan("qwen2_5_vl_7b", 8, 32, 1).zero_stage, _plan("qwen2_5_vl_7b", 8, 32, 1).checkpointing) == (2, False)
    # 64 frames: 38.2 GB activations -> ZeRO-2 80.5 GB misses; ZeRO-3 (20.7 GB states) 67.2 GB fits
    # without recompute, which beats ZeRO-2 + checkpointing.
    plan = _plan("qwen2_5_vl_7b", 8, 64, 1)
    assert (plan.zero_stage, plan.checkpointing) == (3, False)


def test_72b_is_zero3_whatever_the_frames():
    # ZeRO-2 keeps 2Ψ = 146.8 GB of 16-bit params on every GPU: never fits 80 GB.
    for frames in (8, 32, 64):
        assert _plan("qwen2_5_vl_72b", 64, frames, 1).zero_stage == 3
    assert choose_zero_stage(PRESETS["qwen2_5_vl_72b"].params, 64, 80.0, hidden_size=8192, vocab_size=152064)[0] == 3
    # 8 frames x 1: ZeRO-3 50.9 GB fits without checkpointing; 32 frames needs it (87 GB without)
    assert _plan("qwen2_5_vl_72b", 64, 8, 1).checkpointing is False
    assert _plan("qwen2_5_vl_72b", 64, 32, 1).checkpointing is True
    # one node of 8 GPUs: nothing fits, the plan says so and falls back to the leanest layout
    plan = _plan("qwen2_5_vl_72b", 8, 8, 1)
    assert (plan.zero_stage, plan.checkpointing) == (3, True) and "nothing fits" in plan.reason


def test_pinned_values_are_kept():
    plan = _plan("qwen2_5_vl_3b", 8, 32, 1, zero_stage=3)  # ZeRO-2 would fit; pinned 3 stays
    assert (plan.zero_stage, plan.checkpointing) == (3, False)
    plan = _plan("qwen2_5_vl_3b", 8, 8, 1, checkpointing=True)
    assert (plan.zero_stage, plan.checkpointing) == (2, True)
    plan = _plan("qwen2_5_vl_3b", 8, 32, 4, zero_stage=2, checkpointing=False)
    assert (plan.zero_stage, plan.checkpointing) == (2, False) and "nothing fits" in plan.reason


def test_cpu_resolves_auto_without_planning():
    plan = plan_memory(
        zero_stage="auto",
        checkpointing="auto",
        params=10**6,
        world_size=2,
        gpu_memory_gb=None,
        hidden_size=64,
        vocab_size=600,
        activations_gb=1e9,
        activations_ckpt_gb=1e9,
    )
    assert (plan.zero_stage, plan.checkpointing) == (2, False)


def test_runtime_reserve_counts_against_the_gpu():
    # a plan that fits 80 GB only without the reserve does not fit
    ok = _plan("qwen2_5_vl_3b", 8, 32, 1, gpu_gb=40.6 + 0.1)
    tight = _plan("qwen2_5_vl_3b", 8, 32, 1, gpu_gb=40.6 - RUNTIME_RESERVE_GB)
    assert not ok.checkpointing and tight.checkpointing


def test_reduce_bucket_is_capped_at_the_trainable_parameters_and_fused_adam_reaches_torch():
    base = dict(micro_batch_per_gpu=1, grad_accum=1, world_size=1, precision="fp32", lr=1e-3, torch_adam=True)
    z = build_ds_config(zero=ZeroSettings(stage=2), trainable_params=30_000_000, **base)["zero_optimization"]
    assert z["reduce_bucket_size"] == 30_000_000  # not DeepSpeed's 5e8 default
    z = build_ds_config(zero=ZeroSettings(stage=2), trainable_params=10**10, hidden_size=2048, **base)
    assert z["zero_optimization"]["reduce_bucket_size"] == 2048**2
    cfg = build_ds_config(zero=ZeroSettings(stage=2), fused_adam=True, **base)
    assert cfg["optimizer"]["params"]["fused"] is True and cfg["optimizer"]["params"]["torch_adam"] is True
    with pytest.raises(ValueError, match="fused_adam"):
        build_ds_config(zero=ZeroSettings(stage=2), fused_adam=True, **{**base, "torch_adam": False})


def test_loop_resolves_auto_on_cpu_and_asks_for_fused_adamw_on_gpu(tmp_path):
    """The loop's seam: a tiny model under `auto` on CPU trains ZeRO-2 without recompute; a GPU
    config gets torch's fused AdamW and an overlap_comm reduce bucket no larger than the model."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from videosft.config import load_config
    from videosft.models.registry import get_family
    from videosft.train.loop import _ds_config, resolve_memory_plan

    path = get_family("qwen2_5_vl").build_tiny(tmp_path / "tiny")
    model, processor = AutoModelForImageTextToText.from_pretrained(path), AutoProcessor.from_pretrained(path)
    cfg = load_config(None, ["train.zero_stage=auto", "train.gradient_checkpointing=auto"])
    resolved = resolve_memory_plan(cfg, model, processor, world=2, frames=8)
    assert (resolved.train.zero_stage, resolved.train.gradient_checkpointing) == (2, False)
    assert cfg.train.zero_stage == "auto"  # the original is untouched
    cpu = _ds_config(resolved, 2, model)
    n = sum(p.numel() for p in model.parameters())
    assert cpu["zero_optimization"]["reduce_bucket_size"] == n and not cpu["zero_optimization"]["overlap_comm"]
    assert not cpu["zero_optimization"]["contiguous_gradients"]
    assert "fused" not in cpu["optimizer"]["params"]
    gpu = _ds_config(load_config(None, ["train.use_gpu=true", "train.precision=bf16"]), 8, model)
    assert gpu["optimizer"]["params"]["fused"] is True and gpu["zero_optimization"]["overlap_comm"]
    assert gpu["zero_optimization"]["contiguous_gradients"]


def test_one_h200_matches_what_ran_and_what_ran_out_of_memory():
    """benchmarks/results: on one H200 (143771 MiB) ZeRO-2 ran the 3B shape at 1 x 16 frames and ran
    out of memory at 4 x 32 frames; the plan keeps ZeRO-2 for the first and recomputes for the second."""
    h200 = 143771 * 2**20 / 1e9
    assert (
        _plan("qwen2_5_vl_3b", 1, 16, 1, gpu_gb=h200).zero_stage,
        _plan("qwen2_5_vl_3b", 1, 16, 1, gpu_gb=h200).checkpointing,
    ) == (2, False)
    plan = _plan("qwen2_5_vl_3b", 1, 32, 4, gpu_gb=h200)
    assert "ZeRO-2 152.6 GB" in plan.reason  # > 150.8 GB: the OOM the benchmark saw
    assert (plan.zero_stage, plan.checkpointing) == (2, True)


@pytest.mark.parametrize("name, stage", [("qwen2_5_vl_3b", 2), ("qwen2_5_vl_7b", 2), ("qwen2_5_vl_72b", 3)])
def test_cluster_fit_check_resolves_auto_for_the_preset_configs(name, stage):
    """clusters_fit sizes a trial before any GPU exists: 80 GB and the preset's 24 GB activation
    reserve (7B: 2*8.29 + 18*8.29/8 + 1 + 24 = 60.2 GB fits ZeRO-2; 72B on 64: 2Ψ alone is 147 GB)."""
    from pathlib import Path

    from videosft.clusters_fit import preset_for
    from videosft.config import load_config

    repo = Path(__file__).resolve().parents[2]
    cfg = load_config(repo / f"jobs/configs/{name}.yaml", ["train.zero_stage=auto"])
    assert preset_for(cfg).zero.stage == stage
