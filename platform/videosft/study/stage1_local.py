"""Stage 1 in one process: the study's image-only SFT recipe without Ray Train's per-step overhead.

Why it exists: on 2 shared cores `stage1_ray` (Ray Train + DeepSpeed + Ray Data) ran at ~3 s
per optimizer step where the same step costs ~0.1-0.2 s in plain torch, so its 2500-step base
takes hours there; this builds the same kind of base in minutes, for the demo (base_model.py).
It keeps what decides the weights: the same config (`configs.stage1_config`), synthetic stills and
random tiny model (`workspace.prepare_inputs`), decode and encode stages, freeze policy and
optimizer groups, AdamW (DeepSpeed's torch_adam on CPU: betas 0.9/0.999, eps 1e-8), gradient
clipping, micro-batch, learning rate, steps and seeding. It differs in data order (a seeded
permutation per epoch instead of Ray Data's shuffle buffer and cost buckets) and in running no
DeepSpeed engine, so its weights are not bit-identical to `stage1_ray`'s. Scoring is the
project's own (`eval.runner.evaluate_model`, the same evaluation the report uses, with its
in-process predictor: no Ray, whose start-up also times out on an overloaded machine).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from videosft import schema as S
from videosft.data.manifest import read_manifest
from videosft.data.pipeline import DecodeStage
from videosft.data.preprocess import FEATURES, EncodeStage, load_features
from videosft.engines import TransformersEngine
from videosft.eval.runner import evaluate_model, local_predictor
from videosft.models.registry import get_family
from videosft.progress import write_progress
from videosft.study.configs import IMAGE_MANIFEST, stage1_config, stage1_summary, write_image_manifest
from videosft.study.presets import StudyPreset
from videosft.train.loop import prepare_model, seed_everything
from videosft.workspace import prepare_inputs

PROCESSOR_FILES = (
    "chat_template.jinja",
    "processor_config.json",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def encoded_stills(cfg: Any, data_root: str, model_path: str) -> list[dict[str, np.ndarray]]:
    """Every training still, decoded and encoded (labels on the answer only) by the pipeline's own stages."""
    decode = DecodeStage(cfg.sampling.model_dump(), None, cfg.data.decode_timeout_s)
    encode = EncodeStage(cfg.model.family, model_path)
    out = []
    for row in read_manifest(str(Path(data_root) / IMAGE_MANIFEST)):
        if row[S.MEDIA_TYPE] != S.MEDIA_IMAGE:
            continue
        enc = encode(decode(row))
        if enc.get(S.ERROR):
            raise RuntimeError(f"stage 1: {row[S.ID]}: {enc[S.ERROR]}")
        out.append(load_features(enc[FEATURES]))
    if not out:
        raise RuntimeError(f"stage 1: no stills in {Path(data_root) / IMAGE_MANIFEST}")
    return out


def train_stills(cfg: Any, model_path: str, feats: list[dict[str, np.ndarray]], out: Path) -> dict[str, Any]:
    """`cfg.train.max_steps` AdamW steps over the stills (epochs in seeded order); saves a safetensors checkpoint."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from videosft.models.collate import collate

    tr = cfg.train
    seed_everything(tr.seed, tr.cpus_per_worker, use_gpu=False)
    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=torch.float32)
    model.train()
    groups, _ = prepare_model(model, get_family(cfg.model.family), tr)
    opt = torch.optim.AdamW(groups, lr=tr.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=tr.weight_decay)
    params = [p for g in groups for p in g["params"]]
    pad = AutoProcessor.from_pretrained(model_path).tokenizer.pad_token_id
    rng, order, losses, t0 = np.random.default_rng(tr.seed), [], [], time.perf_counter()
    for step in range(1, tr.max_steps + 1):
        if len(order) < tr.micro_batch_size:  # next epoch; drop_last like the pipeline's micro-batches
            order = [int(i) for i in rng.permutation(len(feats))]
        batch = collate([feats[order.pop()] for _ in range(tr.micro_batch_size)], pad)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, tr.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        write_progress(cfg.output_dir, "stage-1 base training", step, tr.max_steps, "steps")
        if step % max(tr.log_every, 1) == 0 or step == tr.max_steps:
            print(
                f"[stage1] step {step}/{tr.max_steps} loss {np.mean(losses[-tr.log_every :]):.4f} "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    for name in PROCESSOR_FILES:  # the random model's tokenizer and processor, unchanged
        if (Path(model_path) / name).exists():
            shutil.copy2(Path(model_path) / name, out / name)
    meta = {
        "steps": tr.max_steps,
        "lr": tr.lr,
        "final_loss": float(np.mean(losses[-50:])),
        "train_wall_s": time.perf_counter() - t0,
        "trainer": "study.stage1_local",
    }
    (out / "videosft_meta.json").write_text(json.dumps(meta, indent=2))
    return meta


def _local_predictor(cfg: Any, ckpt: Path) -> Any:
    """The evaluation's predictor in this process (stills decode in-process; same engine and greedy
    decoding as the eval actors, so the same predictions), so stage 1 needs no Ray at all."""

    engine = TransformersEngine(
        str(ckpt), cfg.model.family, cfg.eval.max_new_tokens or 16, batch_size=cfg.eval.batch_size
    )
    return local_predictor(
        engine, cfg.eval.batch_size, DecodeStage(cfg.sampling.model_dump(), None, cfg.data.decode_timeout_s)
    )


def _trained(ckpt: Path, cfg: Any) -> dict[str, Any] | None:
    """The meta of a finished training of this config in `ckpt` (so a failed evaluation does not retrain)."""
    try:
        meta = json.loads((ckpt / "videosft_meta.json").read_text())
    except (OSError, ValueError):
        return None
    same = meta.get("steps") == cfg.train.max_steps and meta.get("lr") == cfg.train.lr
    return meta if same and (ckpt / "model.safetensors").exists() else None


def stage1_local(preset: StudyPreset, out: Path) -> dict[str, Any]:
    """Stage 1 of `preset` under `out`, in this process; the summary `stage1_ray` returns (cached)."""

    out = Path(out).resolve()
    done = out / "stage1" / "base.json"
    if done.exists():
        return json.loads(done.read_text())
    cfg = stage1_config(preset, out)
    inputs = prepare_inputs(cfg)
    write_image_manifest(inputs.data_root)
    ckpt = out / "base_checkpoint"
    meta = _trained(ckpt, cfg)
    if meta is None:  # written last by train_stills: a checkpoint without it is unfinished
        meta = train_stills(cfg, inputs.model_path, encoded_stills(cfg, inputs.data_root, inputs.model_path), ckpt)
    scores = evaluate_model(
        cfg,
        str(ckpt),
        preset.eval_budget,
        out / "stage1" / "eval",
        inputs.data_root,
        predictor=_local_predictor(cfg, ckpt),
    )
    image = scores["synthetic_image"]
    summary = stage1_summary(preset, ckpt, inputs, image, train_wall_s=meta["train_wall_s"], trainer=meta["trainer"])
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(summary, indent=2))
    print(
        f"[stage1] base: image accuracy {image['overall']:.1f} (chance {image.get('chance'):.1f}) after "
        f"{preset.base_steps} steps, {meta['train_wall_s']:.0f} s",
        flush=True,
    )
    return summary
