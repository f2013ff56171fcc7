"""train_loop_per_worker: SFT with a DeepSpeed engine on one Ray Train worker.

The config arrives as a plain dict and is rebuilt here (no module globals cross Ray). Every rank
iterates its shard of the streamed dataset with drop_last so all ranks take the same number of
steps (ZeRO collectives hang otherwise). The last report carries a consolidated Hugging Face
checkpoint (safetensors + processor + videosft_meta.json) written by rank 0.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any

import numpy as np


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    import ray.train
    import torch

    from videosft.config import from_dict

    cfg = from_dict(loop_config["experiment"])
    os.environ.setdefault("DS_ACCELERATOR", "cuda" if cfg.train.use_gpu else "cpu")
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from videosft.train.ds_config import ZeroSettings, build_ds_config
    from videosft.models.registry import get_family
    from videosft.train.engine import consolidated_state_dict, init_engine
    from videosft.train.param_groups import apply_policy, install_visual_keepalive

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.manual_seed(cfg.train.seed + rank)
    model_path = loop_config["model_path"]
    dtype = torch.bfloat16 if cfg.train.precision == "bf16" else torch.float32
    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype)
    model.train()
    processor = AutoProcessor.from_pretrained(model_path)
    ds_config = build_ds_config(
        zero=ZeroSettings(stage=cfg.train.zero_stage),
        micro_batch_per_gpu=cfg.train.micro_batch_size,
        grad_accum=cfg.train.grad_accum,
        world_size=world,
        precision=cfg.train.precision,
        grad_clip=cfg.train.grad_clip,
        lr=cfg.train.lr,
        weight_decay=cfg.train.weight_decay,
        torch_adam=not cfg.train.use_gpu,  # avoid JIT-building cpu_adam on CPU machines
        warmup_steps=cfg.train.warmup_steps,
        total_steps=cfg.train.max_steps if cfg.train.lr_schedule == "linear" else None,
    )
    family = get_family(cfg.model.family)
    param_groups = apply_policy(model, family, cfg.train.freeze, cfg.train.lr, cfg.train.weight_decay)
    # Every rank must run the same vision passes in the same order each step, even when its
    # micro-batch has no image or no video (dummy passes): otherwise ZeRO-2's gradient buckets and
    # ZeRO-3's parameter gathers differ across ranks and the collectives fail or hang.
    keepalive = install_visual_keepalive(model, family)
    engine = init_engine(model, ds_config, param_groups)
    history = _run_steps(engine, cfg, processor.tokenizer.pad_token_id, rank)
    keepalive.remove()
    state = consolidated_state_dict(engine, rank)
    _report_final(engine, processor, state, history, loop_config, rank)


def _run_steps(engine: Any, cfg: Any, pad_id: int, rank: int) -> list[dict[str, float]]:
    """Optimizer steps until max_steps, looping epochs over this rank's shard."""
    import ray.train

    from videosft.data.preprocess import FEATURES, N_VISUAL_TOKENS, load_features
    from videosft.train.collate import collate, count_tokens, to_device

    shard = ray.train.get_dataset_shard("train")
    history: list[dict[str, float]] = []
    last_logged = -1
    window = {"samples": 0, "tokens": 0, "visual": 0, "loss": 0.0, "n": 0, "t0": time.perf_counter()}
    while engine.global_steps < cfg.train.max_steps:
        batches = 0
        for batch in shard.iter_batches(batch_size=cfg.train.micro_batch_size, batch_format="numpy", drop_last=True):
            batches += 1
            inputs = collate([load_features(b) for b in batch[FEATURES]], pad_id)
            loss = engine(**to_device(inputs, engine.device, _float_dtype(engine))).loss
            engine.backward(loss)
            engine.step()
            _, total = count_tokens(inputs)
            window["samples"] += len(batch[FEATURES])
            window["tokens"] += total
            window["visual"] += int(np.sum(batch[N_VISUAL_TOKENS]))
            window["loss"] += float(loss.detach())
            window["n"] += 1
            step = engine.global_steps  # counts optimizer steps, not micro-batches
            if step != last_logged and (step % cfg.train.log_every == 0 or step >= cfg.train.max_steps):
                last_logged = step
                history.append(_flush(window, step, rank))
                ray.train.report({**history[-1]})
            if step >= cfg.train.max_steps:
                break
        if batches == 0:
            raise RuntimeError(
                f"rank {rank}: the training shard yielded no full batch of {cfg.train.micro_batch_size}; "
                "add data or lower train.micro_batch_size"
            )
    return history


def _float_dtype(engine: Any) -> Any:
    import torch

    if engine.bfloat16_enabled():
        return torch.bfloat16
    return torch.float16 if engine.fp16_enabled() else torch.float32


def _flush(window: dict[str, float], step: int, rank: int) -> dict[str, float]:
    dt = max(time.perf_counter() - window["t0"], 1e-9)
    row = {
        "step": step,
        "loss": window["loss"] / max(window["n"], 1),
        "samples_per_s": window["samples"] / dt,
        "tokens_per_s": window["tokens"] / dt,
        "visual_tokens_per_s": window["visual"] / dt,
    }
    window.update({"samples": 0, "tokens": 0, "visual": 0, "loss": 0.0, "n": 0, "t0": time.perf_counter()})
    if rank == 0:
        print(f"[train] step {step} loss {row['loss']:.4f} samples/s {row['samples_per_s']:.2f}", flush=True)
    return row


def _report_final(engine: Any, processor: Any, state: Any, history: list, loop_config: dict, rank: int) -> None:
    """Every rank reports; rank 0 attaches the consolidated HF checkpoint."""
    import ray.train

    final = {**(history[-1] if history else {}), "final": 1, "step": engine.global_steps}
    if rank != 0:
        ray.train.report(final)
        return
    with tempfile.TemporaryDirectory() as tmp:
        engine.module.save_pretrained(tmp, state_dict=state)
        processor.save_pretrained(tmp)
        meta = {
            "frame_budget": loop_config["frame_budget"],
            "contract_id": loop_config["contract_id"],
            "steps": engine.global_steps,
            "base_model": loop_config["model_path"],
            "history": history,
        }
        with open(os.path.join(tmp, "videosft_meta.json"), "w") as fh:
            json.dump(meta, fh, indent=2)
        ray.train.report(final, checkpoint=ray.train.Checkpoint.from_directory(tmp))
