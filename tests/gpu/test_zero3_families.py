"""ZeRO-3 bf16 SFT on a real GPU for every family: mixed image/video/text batches, keep-alive,
gradient checkpointing, consolidation to a Hugging Face checkpoint that loads again.

One rank cannot show a cross-rank hang, but it runs the exact GPU code path the Ray Train workers
run (engine seam, param groups, keep-alive, device/dtype move, consolidation), in bf16 with NCCL.
"""

import json

import numpy as np
import pytest
import torch

from videosft import schema as S
from videosft.data.preprocess import encode_sample, load_features
from videosft.models.collate import collate, to_device
from videosft.models.param_groups import FreezePolicy, apply_policy, install_visual_keepalive
from videosft.models.registry import get_family
from videosft.train.ds_config import ZeroSettings, build_ds_config

pytestmark = pytest.mark.gpu
FAMILIES = ("qwen2_5_vl", "qwen3_vl", "llava_next_video", "llava_1_5")
TURNS = [{"from": "human", "value": "What colour is the shape?"}, {"from": "gpt", "value": "red"}]


def _batch(fam, processor, media_types, seed):
    rows = []
    for i, media_type in enumerate(media_types):
        row = {S.MEDIA_TYPE: media_type, S.CONVERSATIONS: json.dumps(TURNS), S.SAMPLED_FPS: 2.0}
        if media_type != "text":
            n = 4 if media_type == "video" else 1
            row[S.FRAMES] = np.random.default_rng(seed + i).integers(0, 255, (n, 56, 56, 3), dtype=np.uint8)
        rows.append(load_features(encode_sample(row, fam, processor, for_generation=False)["features"]))
    return collate(rows, processor.tokenizer.pad_token_id)


def _train(family_name, tmp_path, gradient_checkpointing):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from videosft.train.consolidate import consolidate
    from videosft.train.engine import init_engine

    fam = get_family(family_name)
    path = fam.build_tiny(tmp_path / "model", seed=0)
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.bfloat16)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    groups = apply_policy(model, fam, FreezePolicy(), 1e-3, 0.0)
    keepalive = install_visual_keepalive(model, fam)
    ds = build_ds_config(
        zero=ZeroSettings(stage=3),
        micro_batch_per_gpu=3,
        grad_accum=1,
        world_size=1,
        precision="bf16",
        lr=1e-3,
        torch_adam=True,
    )
    engine = init_engine(model, ds, groups)
    batches = [
        _batch(fam, processor, m, 10 * i)
        for i, m in enumerate([("video", "image", "text"), ("text", "text", "text"), ("video", "video", "image")])
    ]
    losses = []
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    for step in range(15):
        loss = engine(**to_device(batches[step % 3], engine.device, torch.bfloat16)).loss
        engine.backward(loss)
        engine.step()
        losses.append(float(loss.detach()))
    # The final checkpoint's path: unit-by-unit gather, streamed shards (train/consolidate.py).
    consolidate(engine.module, str(tmp_path / "ckpt"), 0, max_shard_size="2MB")
    keepalive.remove()
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    print(
        f"[gpu] {family_name} gc={gradient_checkpointing} losses {losses[0]:.3f}->{losses[-3]:.3f} "
        f"dummy_passes={keepalive.dummy_passes} peak_mem={peak:.0f}MiB"
    )
    return fam, engine, processor, tmp_path / "ckpt", shapes, losses, keepalive


@pytest.mark.parametrize("family_name", FAMILIES)
def test_zero3_bf16_trains_and_consolidates(family_name, tmp_path, single_rank_nccl):
    import deepspeed
    from transformers import AutoModelForImageTextToText

    fam, engine, processor, ckpt, shapes, losses, keepalive = _train(family_name, tmp_path, False)
    assert engine.zero_optimization_stage() == 3 and engine.bfloat16_enabled()
    assert all(np.isfinite(losses)), losses
    assert losses[12] < losses[0], f"the mixed batch did not get easier: {losses}"
    assert keepalive.dummy_passes > 0  # the text-only batch ran dummy vision passes
    engine.module.config.save_pretrained(ckpt)
    reloaded, info = AutoModelForImageTextToText.from_pretrained(ckpt, dtype=torch.bfloat16, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert {k: tuple(v.shape) for k, v in reloaded.state_dict().items()} == shapes  # gathered, not partitions
    name = next(k for k in reloaded.state_dict() if "embed_tokens" in k)
    param = engine.module.get_parameter(name)
    with deepspeed.zero.GatheredParameters([param], modifier_rank=None):
        expected = param.data.detach().cpu().clone()
    assert torch.equal(reloaded.state_dict()[name].cpu(), expected)
    engine.destroy()


def test_zero3_with_gradient_checkpointing(tmp_path, single_rank_nccl):
    _, engine, _, _, _, losses, _ = _train("qwen2_5_vl", tmp_path, True)
    assert all(np.isfinite(losses)) and losses[12] < losses[0], losses
    engine.destroy()
