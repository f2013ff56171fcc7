"""train_loop_per_worker: SFT with a DeepSpeed engine on one Ray Train worker.

The config arrives as a plain dict and is rebuilt here (no module globals cross Ray). Every rank
iterates its shard of the streamed dataset with drop_last so all ranks take the same number of
steps (ZeRO collectives hang otherwise), in micro-batches grouped by cost (`data.bucket_by_cost`:
a permutation within windows of the shard, data/batching.py, so the step count is unchanged).
Every `train.checkpoint_every` optimizer steps all ranks save their ZeRO shard plus the data
cursor and report it (train/checkpoint.py); a restarted worker group loads the latest such
checkpoint and reads the rest of the interrupted epoch from the "train_resume" dataset, which
holds only the samples the cursor has not consumed. The last report carries a consolidated
Hugging Face checkpoint (safetensors + processor + videosft_meta.json), gathered unit by unit and
written by rank 0 straight into Ray's checkpoint directory (train/consolidate.py).
Metric rows (loss, throughput per token kind, MFU) come from train/metrics.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import time
from typing import Any

import numpy as np

from videosft.config import from_dict
from videosft.data.batching import iter_cost_grouped, window_rows
from videosft.data.preprocess import FEATURES, N_VISUAL_TOKENS, load_features
from videosft.models.param_groups import apply_policy, install_visual_keepalive
from videosft.models.registry import get_family
from videosft.train.checkpoint import SAMPLE_INDEX, DataCursor, load_training_state, merge_cursor, save_training_state
from videosft.train.consolidate import consolidate, write_side_files
from videosft.train.ds_config import GB, ZeroSettings, build_ds_config
from videosft.train.memory_plan import plan_for_worker
from videosft.train.metrics import StepWindow, batch_flops, count_patches, device_peak_flops, model_shape

HOLD_S = 600.0  # a held rank exits by itself if nothing took its node away by then


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    import ray.train
    import torch

    cfg = from_dict(loop_config["experiment"])
    os.environ.setdefault("DS_ACCELERATOR", "cuda" if cfg.train.use_gpu else "cpu")
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from videosft.train.engine import init_engine

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    seed_everything(cfg.train.seed + rank, cfg.train.cpus_per_worker, cfg.train.use_gpu)
    model_path = loop_config["model_path"]
    dtype = torch.bfloat16 if cfg.train.precision == "bf16" else torch.float32
    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype)
    model.train()
    processor = AutoProcessor.from_pretrained(model_path)
    family = get_family(cfg.model.family)
    cfg = resolve_memory_plan(cfg, model, processor, world, loop_config.get("frame_budget") or 1, rank)
    param_groups, shape = prepare_model(model, family, cfg.train)
    # Every rank must run the same vision passes in the same order each step, even when its
    # micro-batch has no image or no video (dummy passes): otherwise ZeRO-2's gradient buckets and
    # ZeRO-3's parameter gathers differ across ranks and the collectives fail or hang.
    keepalive = install_visual_keepalive(model, family)
    engine = init_engine(model, _ds_config(cfg, world, model), param_groups)
    cursor = _restore(engine, world)
    history = _run_steps(engine, cfg, processor.tokenizer.pad_token_id, rank, shape, cursor, loop_config.get("fault"))
    keepalive.remove()
    _report_final(engine, processor, cfg.train.max_shard_size, history, loop_config, rank, cursor)


def seed_everything(seed: int, cpus: float, use_gpu: bool) -> None:
    """Same seed, same machine, same numbers: seed every RNG, pin torch's threads to the worker's
    CPU reservation (a float reduction split over another thread count rounds differently) and ask
    for deterministic kernels where torch has them (warn_only: ops without one still run)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if not use_gpu:
        torch.set_num_threads(max(1, int(cpus)))
    torch.use_deterministic_algorithms(True, warn_only=True)


def prepare_model(model: Any, family: Any, train_cfg: Any) -> tuple[list[dict[str, Any]], Any]:
    """Freeze policy + optimizer groups, FLOP shape (before ZeRO-3 partitions), gradient checkpointing."""

    groups = apply_policy(model, family, train_cfg.freeze, train_cfg.lr, train_cfg.weight_decay)
    shape = model_shape(model, family, train_vit=train_cfg.freeze.train_vision)
    if train_cfg.gradient_checkpointing:
        # Non-reentrant checkpointing: gradients reach the checkpointed blocks even when their
        # inputs need none (a frozen embedding), and it composes with the keepalive's hooks.
        # (transformers 5.x renamed the method to activation_checkpointing_*; older 5.x has only the old.)
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return groups, shape


def checkpointing_on(model: Any) -> bool:
    """Whether activation (gradient) checkpointing is enabled on `model`."""
    name = (
        "is_activation_checkpointing"
        if hasattr(type(model), "is_activation_checkpointing")
        else "is_gradient_checkpointing"
    )
    return bool(getattr(model, name))


def resolve_memory_plan(cfg: Any, model: Any, processor: Any, world: int, frames: int, rank: int = 0) -> Any:
    """`cfg` with "auto" train.zero_stage / gradient_checkpointing resolved (train/memory_plan.py)."""
    if cfg.train.zero_stage != "auto" and cfg.train.gradient_checkpointing != "auto":
        return cfg
    import torch

    gpu_gb = (
        torch.cuda.get_device_properties(0).total_memory / GB
        if cfg.train.use_gpu and torch.cuda.is_available()
        else None
    )
    plan = plan_for_worker(model, processor, cfg.train, world, frames, gpu_gb)
    if rank == 0:
        print(f"[train] {plan.reason}", flush=True)
    train = cfg.train.model_copy(update={"zero_stage": plan.zero_stage, "gradient_checkpointing": plan.checkpointing})
    return cfg.model_copy(update={"train": train})


def _ds_config(cfg: Any, world: int, model: Any = None) -> dict[str, Any]:
    """The engine's DeepSpeed config; `model` (before the engine) sizes the "auto" reduce bucket."""

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad) if model is not None else None
    return build_ds_config(
        # overlap_comm double-buffers the reduce bucket for CUDA streams and contiguous_gradients
        # copies every gradient into it against GPU memory fragmentation; on CPU both only add a
        # fresh bucket-sized buffer and a copy per step (benchmarks/results/README.md: a small gain at
        # best, within the shared machine's noise)
        zero=ZeroSettings(
            stage=cfg.train.zero_stage, overlap_comm=cfg.train.use_gpu, contiguous_gradients=cfg.train.use_gpu
        ),
        trainable_params=trainable,
        micro_batch_per_gpu=cfg.train.micro_batch_size,
        grad_accum=cfg.train.grad_accum,
        world_size=world,
        precision=cfg.train.precision,
        grad_clip=cfg.train.grad_clip,
        lr=cfg.train.lr,
        weight_decay=cfg.train.weight_decay,
        # torch's AdamW: no JIT build of DeepSpeed's cpu_adam / fused_adam; on CUDA its fused kernel
        torch_adam=True,
        fused_adam=cfg.train.use_gpu,
        warmup_steps=cfg.train.warmup_steps,
        total_steps=cfg.train.max_steps if cfg.train.lr_schedule == "linear" else None,
    )


def _restore(engine: Any, world: int) -> DataCursor | None:
    """Load the latest resumable checkpoint Ray hands this attempt, if any (every rank, collectively)."""
    import ray.train

    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return None
    with ckpt.as_directory() as directory:
        cursor = load_training_state(engine, directory, world)
    if cursor is not None and ray.train.get_context().get_world_rank() == 0:
        print(
            f"[train] resumed at step {cursor.step} (epoch {cursor.epoch}, "
            f"{cursor.n_consumed()} samples of it consumed)",
            flush=True,
        )
    return cursor


class _Progress:
    """Which epoch this rank is in, which stream it reads, and what it trained on (for the cursor)."""

    def __init__(self, cursor: DataCursor | None) -> None:
        self.base = cursor
        self.epoch = cursor.epoch if cursor else 0
        self.resuming = cursor is not None
        self.consumed_before = cursor.consumed_set() if cursor else set()
        self.mine: list[int] = []
        # (id, sample index) in the order this rank trained on them, all epochs: the seed's data order
        self.order = hashlib.sha256()

    def stream_name(self) -> str:
        return "train_resume" if self.resuming else "train"

    def take(self, indices: np.ndarray, ids: Any = ()) -> None:
        idx = [int(i) for i in indices]
        self.order.update(json.dumps([[str(x) for x in ids], idx]).encode())
        if self.resuming and self.consumed_before.intersection(idx):
            # The controller built the resume stream from another checkpoint than the one loaded:
            # training on would repeat samples. Fail; the restart rebuilds both from the same one.
            raise RuntimeError(
                f"resume stream out of step with the loaded checkpoint (step {self.base.step}): "
                f"it yields consumed samples {sorted(self.consumed_before.intersection(idx))[:5]}"
            )
        self.mine.extend(idx)

    def end_epoch(self) -> None:
        if self.base is not None and self.base.epoch == self.epoch:
            self.base = None  # its consumed set belonged to the epoch that just ended
        self.epoch += 1
        self.resuming = False
        self.consumed_before = set()
        self.mine = []

    def cursor(self, step: int, history: list[dict[str, Any]]) -> DataCursor:
        """Collective: gather every rank's indices into the cursor of `step`."""
        import torch.distributed as dist

        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, self.mine)
        return merge_cursor(step, self.epoch, gathered, base=self.base, history=history)


def _run_steps(
    engine: Any, cfg: Any, pad_id: int, rank: int, shape: Any, cursor: DataCursor | None, fault: str | None
) -> list[dict[str, Any]]:
    """Optimizer steps until max_steps, looping epochs over this rank's shard, checkpointing as configured."""
    import ray.train

    from videosft.models.collate import count_tokens, to_device

    peak = device_peak_flops(cfg.train.use_gpu, cfg.train.precision, cfg.train.peak_flops)
    build = _input_builder(engine, cfg, pad_id)
    history: list[dict[str, Any]] = list(cursor.history) if cursor else []
    progress = _Progress(cursor)
    window, prev_step = StepWindow(), engine.global_steps
    while engine.global_steps < cfg.train.max_steps:
        shard, batches = ray.train.get_dataset_shard(progress.stream_name()), 0
        for batch in micro_batches(shard, cfg, progress.epoch):
            batches += 1
            progress.take(batch[SAMPLE_INDEX], batch.get("id", ()))
            inputs, forward_kwargs, span = build([load_features(b) for b in batch[FEATURES]])
            loss = engine(**to_device(inputs, engine.device, _float_dtype(engine)), **forward_kwargs).loss
            engine.backward(loss)
            engine.step()
            tokens, patches = count_tokens(inputs)[1], count_patches(inputs, shape.patch_size)
            window.add(
                samples=len(batch[FEATURES]),
                tokens=tokens,
                visual=int(np.sum(batch[N_VISUAL_TOKENS])),
                patches=patches,
                loss=loss.detach(),
                flops=batch_flops(shape, tokens, span, patches),
            )
            step = engine.global_steps  # counts optimizer steps, not micro-batches
            if step != prev_step:
                prev_step = step
                window = _at_step(engine, cfg, step, window, peak, history, progress, rank)
                _maybe_fail(fault, rank, step)
            if step >= cfg.train.max_steps:
                break
        if batches == 0 and not progress.resuming:
            raise RuntimeError(
                f"rank {rank}: the training shard yielded no full batch of {cfg.train.micro_batch_size}; "
                "add data or lower train.micro_batch_size"
            )
        progress.end_epoch()
    if history:  # 48 bits as a number, so it survives the numeric-only trial summary
        history[-1]["data_order_digest"] = int(progress.order.hexdigest()[:12], 16)
    return history


def _input_builder(engine: Any, cfg: Any, pad_id: int) -> Any:
    """samples -> (model inputs, extra forward kwargs, attention span for FLOPs): padded or packed."""
    from videosft.models.collate import collate
    from videosft.models.packing import FORWARD_KWARGS, attention_span, pack, pack_lengths, position_fn, use_packed_sdpa

    if not cfg.train.packing:

        def padded(samples: list) -> tuple[dict, dict, int]:
            inputs = collate(samples, pad_id)
            return inputs, {}, int(inputs["input_ids"].shape[1])

        return padded
    positions = position_fn(engine.module)  # per-sample mRoPE needs only the config, not gathered weights
    use_packed_sdpa(engine.module)  # sdpa -> causal sdpa per packed sample (no dense pack-sized mask)

    def packed(samples: list) -> tuple[dict, dict, int]:
        inputs = pack(samples, positions)
        return inputs, FORWARD_KWARGS, attention_span(pack_lengths(inputs))

    return packed


def micro_batches(shard: Any, cfg: Any, epoch: int) -> Any:
    """This rank's micro-batches for one epoch, cost-grouped when `data.bucket_by_cost` (drop_last).

    With `train.packing` each micro-batch is one pack (models/packing.py) planned within windows of
    `data.bucket_window` rows; the ranks agree on each window's pack count so they step together.

    Every rank uses the same seed, so ranks holding similar windows step through groups of
    similar rank in the cost order together: the step waits less on its slowest rank.
    """
    micro = cfg.train.micro_batch_size
    # The seed must reach the data order: weights come from a checkpoint and nothing else is random,
    # so without this every train.seed trains the same model (seen in the study: zero spread).
    shuffle = (
        {
            "local_shuffle_buffer_size": cfg.data.shuffle_buffer,
            "local_shuffle_seed": int(cfg.train.seed) * 1_000_003 + epoch,
        }
        if cfg.data.shuffle_buffer
        else {}
    )
    if cfg.train.packing:
        return _packs(shard, cfg, shuffle)
    if not cfg.data.bucket_by_cost:
        return shard.iter_batches(batch_size=micro, batch_format="numpy", drop_last=True, **shuffle)

    windows = shard.iter_batches(batch_size=window_rows(cfg.data.bucket_window, micro), batch_format="numpy", **shuffle)
    return iter_cost_grouped(windows, micro, window=cfg.data.bucket_window, seed=[cfg.train.seed, epoch])


def _packs(shard: Any, cfg: Any, shuffle: dict[str, Any]) -> Any:
    """Packed micro-batches: windows of rows (equal on every rank: Ray Train splits with equal=True)."""
    import torch

    from videosft.data.preprocess import N_TEXT_TOKENS, N_VISUAL_TOKENS
    from videosft.models.packing import agreed_pack_count, iter_packs

    device = torch.device("cuda", torch.cuda.current_device()) if cfg.train.use_gpu else "cpu"  # NCCL needs CUDA
    windows = shard.iter_batches(batch_size=cfg.data.bucket_window, batch_format="numpy", **shuffle)
    return iter_packs(
        windows,
        cfg.train.max_tokens_per_micro_batch,
        lambda rows: np.asarray(rows[N_TEXT_TOKENS]) + np.asarray(rows[N_VISUAL_TOKENS]),
        agree=lambda n: agreed_pack_count(n, device),
    )


def _at_step(
    engine: Any,
    cfg: Any,
    step: int,
    window: Any,
    peak: float | None,
    history: list[dict[str, Any]],
    progress: _Progress,
    rank: int,
) -> Any:
    """After optimizer step `step`: log a metric row and/or save + report a resumable checkpoint."""
    import ray.train

    from videosft.train.metrics import StepWindow, format_row

    row = None
    if step % cfg.train.log_every == 0 or step >= cfg.train.max_steps:
        row = window.row(step, peak)
        history.append(row)
        window = StepWindow()
        if rank == 0:
            print(format_row(row), flush=True)
    every = cfg.train.checkpoint_every
    if every and step % every == 0 and step < cfg.train.max_steps:  # the final step gets the HF checkpoint
        t0, cpu0 = time.perf_counter(), time.process_time()
        cursor = progress.cursor(step, history)
        with tempfile.TemporaryDirectory() as tmp:
            save_training_state(engine, tmp, cursor, rank)
            ray.train.report(
                {**(row or {}), "step": step, "resumable": 1}, checkpoint=ray.train.Checkpoint.from_directory(tmp)
            )
        # Ray's controller collects reports by polling the workers: one that died right after
        # reporting would take its report along, the checkpoint would never register, and a
        # restart would fall back a whole interval more. Wait until Ray has committed it.
        ray.train.get_all_reported_checkpoints(consistency_mode=ray.train.CheckpointConsistencyMode.COMMITTED)
        window.t0 += time.perf_counter() - t0  # checkpoint time is not training throughput
        window.cpu0 += time.process_time() - cpu0
        if rank == 0:
            print(f"[train] step {step}: resumable checkpoint saved in {time.perf_counter() - t0:.1f}s", flush=True)
    elif row is not None:
        ray.train.report({**row})
    return window


def _maybe_fail(fault: str | None, rank: int, step: int) -> None:
    """Fault injection for tests (see trainer.FAULT_ENV), once per MARKER.

    "RANK:STEP:MARKER": that rank exits hard at that step. "hold:RANK:STEP:MARKER": it writes its
    node id into MARKER and waits there, for the test to take its whole node away (a preemption).
    """
    if not fault:
        return
    hold = fault.startswith("hold:")
    want_rank, want_step, marker = fault.removeprefix("hold:").split(":", 2)
    if int(want_rank) != rank or int(want_step) != step or os.path.exists(marker):
        return
    import ray

    where = {"node": ray.get_runtime_context().get_node_id(), "pid": os.getpid()} if hold else {}
    with open(marker, "w") as fh:
        fh.write(json.dumps({"rank": rank, "step": step, **where}))
    if hold:
        print(f"[train] fault injection: rank {rank} holds at step {step} on node {where['node']}", flush=True)
        time.sleep(HOLD_S)
    print(f"[train] fault injection: rank {rank} exits at step {step}", flush=True)
    os._exit(1)


def _float_dtype(engine: Any) -> Any:
    import torch

    if engine.bfloat16_enabled():
        return torch.bfloat16
    return torch.float16 if engine.fp16_enabled() else torch.float32


def _report_final(
    engine: Any,
    processor: Any,
    max_shard_size: str,
    history: list,
    loop_config: dict,
    rank: int,
    cursor: DataCursor | None,
) -> None:
    """Every rank gathers, unit by unit, while rank 0 writes the HF checkpoint straight into this
    run's checkpoint directory on Ray's storage (train/consolidate.py); then every rank reports,
    rank 0 with that directory (NO_UPLOAD: it is already where Ray keeps checkpoints)."""
    import ray.train

    resumed = cursor.step if cursor is not None else None  # the step this attempt restarted from
    final = {**(history[-1] if history else {}), "final": 1, "step": engine.global_steps}
    if resumed is not None:
        final["resumed_from_step"] = resumed
    t0 = time.perf_counter()
    if rank != 0:
        consolidate(engine.module, None, rank, max_shard_size=max_shard_size)
        ray.train.report(final)
        return
    storage = ray.train.get_context().get_storage()
    name = storage.make_default_checkpoint_dir_name()
    path = storage.build_checkpoint_path_from_name(name)
    filesystem = storage.storage_filesystem
    plan = consolidate(engine.module, path, rank, max_shard_size=max_shard_size, filesystem=filesystem)
    meta = {
        "frame_budget": loop_config["frame_budget"],
        "contract_id": loop_config["contract_id"],
        "steps": engine.global_steps,
        "base_model": loop_config["model_path"],
        "history": history,
        "resumed_from_step": resumed,
    }

    def _extra(tmp: str) -> None:
        processor.save_pretrained(tmp)
        with open(os.path.join(tmp, "videosft_meta.json"), "w") as fh:
            json.dump(meta, fh, indent=2)

    write_side_files(engine.module, path, filesystem, extra=_extra)
    print(
        f"[train] consolidated {plan.total_size / 1e9:.3f} GB in {len(plan.shards)} shard(s) into {path} "
        f"in {time.perf_counter() - t0:.1f}s",
        flush=True,
    )
    ray.train.report(
        final,
        checkpoint=ray.train.Checkpoint(path, filesystem=filesystem),
        checkpoint_dir_name=name,
        checkpoint_upload_mode=ray.train.CheckpointUploadMode.NO_UPLOAD,
    )
