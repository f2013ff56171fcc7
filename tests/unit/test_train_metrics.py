"""Per-step metric rows (throughput by token kind, MFU) and the model preparation the loop does
before the engine (FLOP shape, gradient checkpointing), on hand numbers and a tiny real model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from videosft import schema as S
from videosft.config import load_config
from videosft.train.flops import mfu, transformer_train_flops, vision_flops
from videosft.train.metrics import (
    ModelShape,
    StepWindow,
    batch_flops,
    count_patches,
    device_peak_flops,
    format_row,
    model_shape,
)

SHAPE = ModelShape(n_params_lm=1000, n_params_vit=200, n_layers=2, hidden=16, patch_size=14, train_vit=True)


def test_count_patches_per_layout():
    qwen = {"pixel_values": np.zeros((64, 1176)), "pixel_values_videos": np.zeros((128, 1176))}
    assert count_patches(qwen, 14) == 192  # flattened patches: one per row
    llava = {"pixel_values": np.zeros((3, 3, 336, 336))}
    assert count_patches(llava, 14) == 3 * 24 * 24
    next_video = {"pixel_values_videos": np.zeros((1, 8, 3, 336, 336))}
    assert count_patches(next_video, 14) == 8 * 24 * 24
    assert count_patches({"input_ids": np.zeros((2, 5))}, 14) == 0


def test_batch_flops_is_lm_plus_vision():
    want = transformer_train_flops(1000, 50, 2, 16, 40) + vision_flops(200, 30, True)
    assert batch_flops(SHAPE, lm_tokens=50, seq_len=40, patches=30) == want


def test_metric_row_rates_and_mfu():
    window = StepWindow(t0=100.0)
    window.add(samples=4, tokens=300, visual=120, patches=480, flops=6e9, loss=2.0)
    window.add(samples=4, tokens=100, visual=40, patches=160, flops=2e9, loss=1.0)
    row = window.row(step=10, peak_flops=1e12, now=102.0)
    assert row["step"] == 10 and row["loss"] == pytest.approx(1.5)
    assert row["samples_per_s"] == pytest.approx(4.0)
    assert row["tokens_per_s"] == pytest.approx(200.0)
    assert row["visual_tokens_per_s"] == pytest.approx(80.0)
    assert row["text_tokens_per_s"] == pytest.approx(120.0)
    assert row["patches_per_s"] == pytest.approx(320.0)
    assert row["mfu"] == pytest.approx(mfu(8e9, 2.0, 1, 1e12)) == pytest.approx(0.004)
    assert "mfu 0.40%" in format_row(row)
    json.dumps(row)  # what Ray and videosft_meta.json receive


def test_no_peak_means_no_mfu_key_not_nan():
    window = StepWindow(t0=0.0)
    window.add(samples=1, tokens=10, visual=0, patches=0, flops=1.0, loss=0.5)
    row = window.row(step=1, peak_flops=None, now=1.0)
    assert "mfu" not in row and all(np.isfinite(v) for v in row.values())
    assert format_row(row).endswith("mfu n/a")


def test_device_peak_flops_override_and_cpu():
    assert device_peak_flops(False, "fp32", 2.5e12) == 2.5e12
    assert device_peak_flops(False, "fp32", None) is None
    cfg = load_config(None, ["train.peak_flops=1e12"])
    assert cfg.train.peak_flops == 1e12 and load_config(None).train.peak_flops is None


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    from videosft.models.registry import get_family

    fam = get_family("qwen2_5_vl")
    return fam, fam.build_tiny(tmp_path_factory.mktemp("qwen"), seed=0)


def _model(path):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(path)
    model.train()
    return model


def test_model_shape_counts_groups(tiny_qwen):
    fam, path = tiny_qwen
    model = _model(path)
    shape = model_shape(model, fam, train_vit=False)
    visual = sum(p.numel() for p in model.model.visual.parameters())
    lm = sum(p.numel() for p in model.model.language_model.parameters())
    head = model.lm_head.weight  # the head's matmul counts whether or not it is tied to the embedding
    assert shape.n_params_vit == visual
    assert shape.n_params_lm == lm - model.get_input_embeddings().weight.numel() + head.numel()
    assert shape.n_layers == model.config.text_config.num_hidden_layers and shape.patch_size == 14
    assert not shape.train_vit


@pytest.mark.parametrize("on", [True, False])
def test_gradient_checkpointing_follows_the_config(tiny_qwen, on):
    from transformers import AutoProcessor

    from videosft.data.preprocess import encode_sample, load_features
    from videosft.models.collate import collate
    from videosft.train.loop import checkpointing_on, prepare_model

    fam, path = tiny_qwen
    model = _model(path)
    cfg = load_config(None, [f"train.gradient_checkpointing={str(on).lower()}"])
    groups, shape = prepare_model(model, fam, cfg.train)
    assert checkpointing_on(model) is on
    assert groups and shape.n_params_lm > 0
    # and it still trains: a real forward/backward reaches the language model's weights
    processor = AutoProcessor.from_pretrained(path)
    turns = [{"from": "human", "value": "What colour is the shape?"}, {"from": "gpt", "value": "red"}]
    row = {
        S.MEDIA_TYPE: "image",
        S.CONVERSATIONS: json.dumps(turns),
        S.SAMPLED_FPS: 0.0,
        S.FRAMES: np.random.default_rng(0).integers(0, 255, (1, 56, 56, 3), dtype=np.uint8),
    }
    batch = collate(
        [load_features(encode_sample(row, fam, processor, False)["features"])], processor.tokenizer.pad_token_id
    )
    model(**batch).loss.backward()
    layer = model.model.language_model.layers[0].mlp.up_proj.weight
    assert layer.grad is not None and torch.count_nonzero(layer.grad) > 0
