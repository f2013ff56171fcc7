"""MFU arithmetic (videosft.train.flops), checked against hand-computed numbers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videosft.train.flops import (
    PEAK_FLOPS,
    mfu,
    peak_flops_for,
    step_mfu,
    transformer_train_flops,
    vision_flops,
)


def test_transformer_flops_small_hand_computed():
    # 1000 tokens · (6 · 1e9 + 12 · 2 layers · 128 hidden · 512 seq) = 1000 · (6e9 + 1_572_864)
    assert transformer_train_flops(10**9, 1000, 2, 128, 512) == 6_001_572_864_000.0


def test_transformer_flops_qwen7b_sized_video_sample():
    # 7e9 params, one 8192-token sample, 28 layers, hidden 3584:
    # 6N = 42e9 per token; attention 12·28·3584·8192 = 9_865_003_008 per token
    # total = 8192 · 51_865_003_008 = 424_878_104_641_536 (~4.25e14)
    assert transformer_train_flops(7 * 10**9, 8192, 28, 3584, 8192) == 424_878_104_641_536.0


def test_transformer_flops_zero_tokens_is_zero():
    assert transformer_train_flops(10**9, 0, 2, 128, 512) == 0.0


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((0, 1, 1, 1, 1), "n_params_lm"),
        ((1, -1, 1, 1, 1), "n_text_tokens"),
        ((1, 1, 0, 1, 1), "n_layers"),
        ((1, 1, 1, 1, 0), "seq_len"),
    ],
)
def test_transformer_flops_rejects_bad_inputs(args, name):
    with pytest.raises(ValueError, match=name):
        transformer_train_flops(*args)


def test_vision_flops_frozen_vs_trained():
    # 600M-param ViT over 1000 patches: forward 2·6e8·1000 = 1.2e12; training adds 2× backward.
    assert vision_flops(600_000_000, 1000, train_vit=False) == 1.2e12
    assert vision_flops(600_000_000, 1000, train_vit=True) == 3.6e12
    assert vision_flops(600_000_000, 0, train_vit=True) == 0.0
    with pytest.raises(ValueError, match="n_patches"):
        vision_flops(1, -1, train_vit=False)


def test_mfu_hand_computed():
    # 8 H100s at half of 989 TFLOP/s for one second.
    assert mfu(0.5 * 8 * 989e12, 1.0, 8, 989e12) == pytest.approx(0.5)
    # 1e15 FLOPs in 10 s on 4 A100s: 1e15 / (10 · 4 · 312e12) = 0.0801282...
    assert mfu(1e15, 10.0, 4, 312e12) == pytest.approx(1e15 / 1.248e16)
    # Impossible numbers are returned, not clipped, so a wrong FLOP count stays visible.
    assert mfu(1e15, 2.0, 4, 1e14) == pytest.approx(1.25)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((1.0, 0.0, 1, 1.0), "seconds"),
        ((1.0, 1.0, 0, 1.0), "n_devices"),
        ((1.0, 1.0, 1, 0.0), "peak_flops_per_device"),
        ((-1.0, 1.0, 1, 1.0), "total_flops"),
        ((float("nan"), 1.0, 1, 1.0), "total_flops"),
    ],
)
def test_mfu_rejects_bad_inputs(args, name):
    with pytest.raises(ValueError, match=name):
        mfu(*args)


def test_peak_table_values():
    assert PEAK_FLOPS["h100_sxm"]["bf16"] == 989e12
    assert PEAK_FLOPS["h200"]["bf16"] == 989e12
    assert PEAK_FLOPS["a100"]["bf16"] == 312e12
    assert "cpu_placeholder" in PEAK_FLOPS


@pytest.mark.parametrize(
    ("device", "precision", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", "bf16", 989e12),
        ("NVIDIA H100 80GB HBM3", "bfloat16", 989e12),
        ("NVIDIA H100 80GB HBM3", "torch.float16", 989e12),
        ("NVIDIA H100 PCIe", "bf16", 756e12),
        ("NVIDIA H200", "bf16", 989e12),
        ("NVIDIA A100-SXM4-80GB", "bf16", 312e12),
        ("NVIDIA A100-SXM4-80GB", "fp32", 19.5e12),
        ("NVIDIA H100 80GB HBM3", "int4", None),  # unknown precision: no guess
        ("cpu", "bf16", None),  # CPU peak must be passed explicitly
        ("Intel(R) Xeon(R) Platinum 8480+", "bf16", None),
        ("NVIDIA L4", "bf16", None),
    ],
)
def test_peak_flops_for(device, precision, expected):
    assert peak_flops_for(device, precision) == expected


def test_step_mfu_sums_lm_and_vision():
    # LM: 1000 · (6e9 + 1_572_864) = 6_001_572_864_000; ViT trained: 3 · 2 · 1e8 · 500 = 3e11
    total = 6_001_572_864_000 + 300_000_000_000
    got = step_mfu(
        n_params_lm=10**9,
        n_lm_tokens=1000,
        n_layers=2,
        hidden=128,
        seq_len=512,
        n_params_vit=10**8,
        n_patches=500,
        train_vit=True,
        seconds=2.0,
        n_devices=2,
        peak_flops_per_device=PEAK_FLOPS["cpu_placeholder"]["bf16"],
    )
    assert got == pytest.approx(total / (2.0 * 2 * 1e12))


@settings(max_examples=50, deadline=None)
@given(tokens=st.integers(0, 10**6), k=st.integers(1, 8))
def test_flops_are_linear_in_tokens(tokens, k):
    one = transformer_train_flops(10**9, tokens, 4, 256, 1024)
    assert transformer_train_flops(10**9, k * tokens, 4, 256, 1024) == pytest.approx(k * one)
