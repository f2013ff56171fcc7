"""GPU step time, throughput and MFU of Video-SFT on a Qwen2.5-VL-3B-shaped model, per frame budget.

Random weights with the published Qwen2.5-VL-3B shapes (LM 2048x36, vocab 151936; ViT 1280x32), so
the FLOPs and memory are the real model's; inputs are random frames through the real processor and
chat template. One GPU, one rank. Prints, measured in one run:
  - per frame budget (bf16, torch's fused AdamW): step seconds, samples/s, LM tokens/s, visual
    tokens/s, MFU, peak memory; `--layout auto` (default) runs each budget with the ZeRO stage and
    activation checkpointing the loop's `auto` would choose there (train/memory_plan.py, from this
    GPU's memory and the batch's tokens and patches), `--layout zero3` with ZeRO-3 throughout (the
    layout of the earlier results/train_gpu_h200_*.json runs, before fused AdamW);
  - ZeRO-3 / ZeRO-2 and ZeRO-3 / bare-torch step-time ratios at one budget (the engine's overhead).

    DS_ACCELERATOR=cuda python benchmarks/train_gpu.py --budgets 8,16,32,64 --out train_gpu.json
    DS_ACCELERATOR=cuda python benchmarks/train_gpu.py --layout zero3 --out train_gpu_zero3.json  # before
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))
os.environ.setdefault("DS_ACCELERATOR", "cuda")

from videosft import schema as S  # noqa: E402
from videosft.data.preprocess import encode_sample, load_features  # noqa: E402
from videosft.models.collate import collate, to_device  # noqa: E402
from videosft.models.param_groups import FreezePolicy, apply_policy, install_visual_keepalive  # noqa: E402
from videosft.models.registry import get_family  # noqa: E402
from videosft.train.ds_config import GB, ZeroSettings, build_ds_config  # noqa: E402
from videosft.train.flops import peak_flops_for, step_mfu  # noqa: E402
from videosft.train.memory_plan import activation_bytes, activation_shape, plan_memory  # noqa: E402
from videosft.train.single_rank import init_single_rank  # noqa: E402

TURNS = [
    {"from": "human", "value": "In which order did the two shapes flash?"},
    {"from": "gpt", "value": "first red then blue"},
]
QWEN_3B = {
    "text": dict(
        hidden_size=2048,
        intermediate_size=11008,
        num_hidden_layers=36,
        num_attention_heads=16,
        num_key_value_heads=2,
        vocab_size=151936,
        max_position_embeddings=32768,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
    ),
    "vision": dict(
        depth=32,
        hidden_size=1280,
        intermediate_size=3420,
        num_heads=16,
        out_hidden_size=2048,
        window_size=112,
        fullatt_block_indexes=[7, 15, 23, 31],
    ),
}


def _model(tiny_path: Path):
    """The 3B shape on the tiny checkpoint's special-token ids (so the tiny processor drives it)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    cfg = Qwen2_5_VLConfig.from_pretrained(tiny_path)
    for key, value in QWEN_3B["text"].items():
        setattr(cfg.text_config, key, value)
    cfg.text_config.layer_types = ["full_attention"] * cfg.text_config.num_hidden_layers  # derived at init
    for key, value in QWEN_3B["vision"].items():
        setattr(cfg.vision_config, key, value)
    cfg.tie_word_embeddings = True
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2_5_VLForConditionalGeneration(cfg).to(torch.bfloat16)
    model.train()
    return model


def _batch(fam, processor, frames: int, side: int, micro: int) -> dict[str, torch.Tensor]:
    rows = []
    for i in range(micro):
        media = np.random.default_rng(i).integers(0, 255, (frames, side, side, 3), dtype=np.uint8)
        row = {S.MEDIA_TYPE: "video", S.CONVERSATIONS: json.dumps(TURNS), S.SAMPLED_FPS: 2.0, S.FRAMES: media}
        rows.append(load_features(encode_sample(row, fam, processor, for_generation=False)["features"]))
    return collate(rows, processor.tokenizer.pad_token_id)


def _counts(model) -> dict[str, int]:
    lm = model.model.language_model
    embed = lm.embed_tokens.weight.numel()
    head = model.lm_head.weight.numel()  # tied: same tensor as embed, but its matmul is real compute
    return {
        "lm": sum(p.numel() for p in lm.parameters()) - embed + head,
        "vit": sum(p.numel() for p in model.model.visual.parameters()),
        "layers": model.config.text_config.num_hidden_layers,
        "hidden": model.config.text_config.hidden_size,
    }


def _time_steps(step, inputs, warmup: int, steps: int) -> float:
    for _ in range(warmup):
        step(inputs)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step(inputs)
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def _engine(model, fam, stage: int, micro: int, checkpointing: bool = False):
    from videosft.train.engine import init_engine

    if checkpointing:  # as loop.prepare_model: non-reentrant, composes with the keepalive hooks
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    groups = apply_policy(model, fam, FreezePolicy(), 1e-5, 0.0)
    install_visual_keepalive(model, fam)
    ds = build_ds_config(
        zero=ZeroSettings(stage=stage),
        micro_batch_per_gpu=micro,
        grad_accum=1,
        world_size=1,
        precision="bf16",
        lr=1e-5,
        torch_adam=True,
        fused_adam=True,
        hidden_size=2048,
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
    )
    engine = init_engine(model, ds, groups)

    def step(inputs):
        loss = engine(**inputs).loss
        engine.backward(loss)
        engine.step()

    return engine, step


def _bare(model):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)

    def step(inputs):
        model(**inputs).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return opt, step


def _row(budget, seconds, inputs, counts, micro, peak) -> dict:
    tokens = int(inputs["attention_mask"].sum())
    patches = int(inputs["pixel_values_videos"].shape[0])
    visual = patches // 4  # 2x2 spatial merge
    m = step_mfu(
        n_params_lm=counts["lm"],
        n_lm_tokens=tokens,
        n_layers=counts["layers"],
        hidden=counts["hidden"],
        seq_len=int(inputs["input_ids"].shape[1]),
        n_params_vit=counts["vit"],
        n_patches=patches,
        train_vit=True,
        seconds=seconds,
        n_devices=1,
        peak_flops_per_device=peak,
    )
    return {
        "frames": budget,
        "step_s": seconds,
        "samples_per_s": micro / seconds,
        "lm_tokens_per_s": tokens / seconds,
        "visual_tokens_per_s": visual / seconds,
        "mfu": m,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30,
        "lm_tokens": tokens,
        "patches": patches,
    }


def _free(*objs) -> None:
    for o in objs:
        del o
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


def _compare(make_step, tiny: Path, inputs, args, keepalive=None) -> float | None:
    """Step time of another set-up on the same batch; None if it does not fit in memory."""
    model = _model(tiny)
    if keepalive is not None:
        install_visual_keepalive(model, keepalive)
    try:
        return _time_steps(make_step(model), inputs, args.warmup, args.steps)
    except torch.OutOfMemoryError:
        return None
    finally:
        del model
        _free()


def main() -> None:
    from transformers import AutoProcessor

    ap = argparse.ArgumentParser()
    ap.add_argument("--budgets", default="8,16,32,64")
    ap.add_argument("--side", type=int, default=336)
    ap.add_argument("--micro", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--compare-at", type=int, default=16)
    ap.add_argument("--out", default="train_gpu.json")
    ap.add_argument("--layout", choices=["auto", "zero3"], default="auto")
    args = ap.parse_args()
    init_single_rank("nccl")
    fam = get_family("qwen2_5_vl")
    tiny = fam.build_tiny(Path(tempfile.mkdtemp()) / "tiny")
    processor = AutoProcessor.from_pretrained(tiny)
    processor.video_processor.max_pixels = processor.image_processor.max_pixels = args.side * args.side
    peak = peak_flops_for(torch.cuda.get_device_name(), "bf16")
    print(f"device {torch.cuda.get_device_name()} peak bf16 {peak:.3g} FLOP/s", flush=True)
    result: dict = {
        "device": torch.cuda.get_device_name(),
        "side": args.side,
        "micro": args.micro,
        "layout": args.layout,
        args.layout: [],
    }
    budgets = [int(b) for b in args.budgets.split(",")]
    rows = result[args.layout]

    model = _model(tiny)
    counts = _counts(model)
    result["params"] = counts
    print(f"params: LM {counts['lm'] / 1e9:.2f}B (non-embedding + head), ViT {counts['vit'] / 1e9:.2f}B", flush=True)
    if args.layout == "zero3":
        engine, step = _engine(model, fam, 3, args.micro)
        for budget in budgets:
            torch.cuda.reset_peak_memory_stats()
            inputs = to_device(_batch(fam, processor, budget, args.side, args.micro), engine.device, torch.bfloat16)
            rows.append(
                _row(budget, _time_steps(step, inputs, args.warmup, args.steps), inputs, counts, args.micro, peak)
                | {"zero_stage": 3, "checkpointing": False}
            )
            print(json.dumps(rows[-1]), flush=True)
            Path(args.out).write_text(json.dumps(result, indent=2))
        engine.destroy()
        _free(engine, model, step)
    else:
        _free(model)
        for budget in budgets:
            rows.append(_planned_row(fam, tiny, processor, budget, counts, args, peak))
            print(json.dumps(rows[-1]), flush=True)
            Path(args.out).write_text(json.dumps(result, indent=2))

    compare = to_device(_batch(fam, processor, args.compare_at, args.side, args.micro), "cuda", torch.bfloat16)
    result["zero2_step_s"] = _compare(lambda m: _engine(m, fam, 2, args.micro)[1], tiny, compare, args)
    result["bare_torch_step_s"] = _compare(lambda m: _bare(m)[1], tiny, compare, args, keepalive=fam)
    main = next((r.get("step_s") for r in rows if r["frames"] == args.compare_at), None)
    if not (main and result["zero2_step_s"] and result["bare_torch_step_s"]):
        print(f"comparison incomplete (out of memory or --compare-at not in --budgets): {result}", flush=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
        return
    result[f"ratio_{args.layout}_over_zero2"] = main / result["zero2_step_s"]
    result[f"ratio_{args.layout}_over_bare_torch"] = main / result["bare_torch_step_s"]
    print(
        f"at {args.compare_at} frames: {args.layout} {main:.3f}s, ZeRO-2 {result['zero2_step_s']:.3f}s, bare torch "
        f"{result['bare_torch_step_s']:.3f}s; {args.layout}/ZeRO-2 {result[f'ratio_{args.layout}_over_zero2']:.2f}, "
        f"{args.layout}/bare {result[f'ratio_{args.layout}_over_bare_torch']:.2f}",
        flush=True,
    )
    Path(args.out).write_text(json.dumps(result, indent=2))


def _plan_for(model, inputs, micro: int):
    """The loop's `auto` plan for this batch on this GPU (one rank)."""
    text = model.config.get_text_config()
    shape = activation_shape(model.config)
    tokens = int(inputs["attention_mask"].sum())
    patches = int(inputs["pixel_values_videos"].shape[0])
    return plan_memory(
        zero_stage="auto",
        checkpointing="auto",
        params=sum(p.numel() for p in model.parameters()),
        world_size=1,
        gpu_memory_gb=torch.cuda.get_device_properties(0).total_memory / GB,
        hidden_size=int(text.hidden_size),
        vocab_size=int(text.vocab_size),
        activations_gb=activation_bytes(shape, tokens, patches, False) / GB,
        activations_ckpt_gb=activation_bytes(shape, tokens, patches, True) / GB,
    )


def _planned_row(fam, tiny: Path, processor, budget: int, counts: dict, args, peak: float) -> dict:
    """One budget under the planned ZeRO stage / checkpointing: a fresh model and engine each."""
    inputs = to_device(_batch(fam, processor, budget, args.side, args.micro), "cuda", torch.bfloat16)
    model = _model(tiny)
    plan = _plan_for(model, inputs, args.micro)
    print(f"{budget} frames: {plan.reason}", flush=True)
    engine, step = _engine(model, fam, plan.zero_stage, args.micro, plan.checkpointing)
    torch.cuda.reset_peak_memory_stats()
    try:
        row = _row(budget, _time_steps(step, inputs, args.warmup, args.steps), inputs, counts, args.micro, peak)
    except torch.OutOfMemoryError:
        row = {"frames": budget, "oom": True}
    row.update(zero_stage=plan.zero_stage, checkpointing=plan.checkpointing, planned_gb=plan.total_gb)
    engine.destroy()
    _free(engine, model, step)
    return row


if __name__ == "__main__":
    main()
