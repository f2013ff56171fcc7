"""The GPU training path's optimizer and memory plan on a real GPU: the loop's DeepSpeed config
(use_gpu) gives ZeRO-2 over torch's fused AdamW, the "auto" plan picks ZeRO-2 without
checkpointing for a tiny model, and a few steps lower the loss on a fixed batch."""

import json

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.gpu


def test_fused_adamw_under_zero2_trains_on_gpu(tmp_path, single_rank_nccl):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from videosft import schema as S
    from videosft.config import load_config
    from videosft.data.preprocess import encode_sample, load_features
    from videosft.models.collate import collate, to_device
    from videosft.models.param_groups import install_visual_keepalive
    from videosft.models.registry import get_family
    from videosft.train.engine import init_engine
    from videosft.train.loop import _ds_config, prepare_model, resolve_memory_plan

    fam = get_family("qwen2_5_vl")
    path = fam.build_tiny(tmp_path / "tiny")
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.bfloat16).cuda()
    processor = AutoProcessor.from_pretrained(path)
    cfg = load_config(
        None,
        [
            "train.use_gpu=true",
            "train.precision=bf16",
            "train.zero_stage=auto",
            "train.gradient_checkpointing=auto",
            "train.micro_batch_size=2",
            "train.lr=1e-3",
        ],
    )
    cfg = resolve_memory_plan(cfg, model, processor, world=1, frames=8)
    assert (cfg.train.zero_stage, cfg.train.gradient_checkpointing) == (2, False)
    groups, _ = prepare_model(model, fam, cfg.train)
    install_visual_keepalive(model, fam)
    engine = init_engine(model, _ds_config(cfg, 1, model), groups)
    inner = engine.optimizer.optimizer  # ZeRO-2 wraps the basic optimizer
    assert isinstance(inner, torch.optim.AdamW) and inner.defaults["fused"] is True
    turns = [{"from": "human", "value": "What colour is the shape?"}, {"from": "gpt", "value": "red"}]
    rows = [
        {
            S.MEDIA_TYPE: "video",
            S.CONVERSATIONS: json.dumps(turns),
            S.SAMPLED_FPS: 2.0,
            S.FRAMES: np.random.default_rng(i).integers(0, 255, (4, 56, 56, 3), dtype=np.uint8),
        }
        for i in range(2)
    ]
    batch = collate(
        [load_features(encode_sample(r, fam, processor, False)["features"]) for r in rows],
        processor.tokenizer.pad_token_id,
    )
    inputs = to_device(batch, engine.device, torch.bfloat16)
    losses = []
    for _ in range(6):
        loss = engine(**inputs).loss
        engine.backward(loss)
        engine.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0], losses
    engine.destroy()
