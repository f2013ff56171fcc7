"""Fit one SFT run with Ray Train's TorchTrainer over Ray Data datasets of encoded samples.

Fault tolerance: `FailureConfig(max_failures=train.max_failures)` restarts the worker group from
the latest reported checkpoint when a worker dies; with `train.checkpoint_every` > 0 that is a
resumable one (ZeRO shards + data cursor, see train/checkpoint.py). Datasets may be factories
(callables), which Ray Train v2 calls again at every restart: that is how the resumed stream
leaves out the samples the checkpoint already consumed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videosft.config import ExperimentConfig
from videosft.progress import train_progress_callback, write_progress
from videosft.train.loop import train_loop_per_worker

# Test hook: "RANK:STEP:MARKER" makes that rank exit hard at that step unless MARKER exists
# (it creates MARKER first), so a test can kill a worker mid-run exactly once; "hold:RANK:STEP:MARKER"
# makes it wait there instead, its node id in MARKER, for the test to kill its node.
FAULT_ENV = "VIDEOSFT_FAULT_INJECT"
# Keep the two newest checkpoints: the final consolidated one (always the latest) and the last
# resumable one, or the two last resumable ones while the run is going.
CHECKPOINTS_TO_KEEP = 2
WORKER_START_TIMEOUT_ENV = "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S"  # Ray Train v2's knob


@dataclass(frozen=True)
class TrainOutcome:
    checkpoint_path: str  # consolidated Hugging Face checkpoint directory
    metrics: dict[str, Any]


def fit(
    cfg: ExperimentConfig,
    datasets: Mapping[str, Any],
    model_path: str,
    frame_budget: int,
    run_name: str,
    storage_path: str,
) -> TrainOutcome:
    """Train `model_path` on `datasets["train"]` (+ "train_resume"); returns where the consolidated checkpoint is.

    `datasets` values are Ray Datasets or zero-argument factories returning one.
    """
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    # Read by Ray Train's controller (propagated from this process): on an autoscaling cluster the
    # worker group waits for GPU nodes to boot, far longer than Ray's 60 s default.
    os.environ[WORKER_START_TIMEOUT_ENV] = str(cfg.train.worker_start_timeout_s)
    scaling = ray.train.ScalingConfig(
        num_workers=cfg.train.num_workers,
        use_gpu=cfg.train.use_gpu,
        resources_per_worker={"CPU": cfg.train.cpus_per_worker, **({"GPU": 1} if cfg.train.use_gpu else {})},
    )
    stage = f"train {run_name.removeprefix('train_')}"
    write_progress(cfg.output_dir, stage, 0, cfg.train.max_steps, "steps")  # the stage starts now
    run_config = ray.train.RunConfig(
        name=run_name,
        storage_path=storage_path if "://" in storage_path else str(Path(storage_path).resolve()),
        failure_config=ray.train.FailureConfig(max_failures=cfg.train.max_failures),
        checkpoint_config=ray.train.CheckpointConfig(num_to_keep=CHECKPOINTS_TO_KEEP),
        # the step the workers reported -> <output_dir>/progress (the console's "train <run>" bar)
        callbacks=[train_progress_callback(cfg.output_dir, stage, cfg.train.max_steps)],
    )
    trainer = TorchTrainer(
        _loop,
        train_loop_config={
            "experiment": cfg.model_dump(mode="json"),
            "model_path": model_path,
            "frame_budget": frame_budget,
            "contract_id": cfg.sampling.contract_id(),
            "fault": os.environ.get(FAULT_ENV) or None,
        },
        scaling_config=scaling,
        torch_config=TorchConfig(backend="nccl" if cfg.train.use_gpu else "gloo"),
        datasets=dict(datasets),
        dataset_config=ray.train.DataConfig(datasets_to_split=list(datasets)),
        run_config=run_config,
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"training run {run_name} finished without a checkpoint")
    path = result.checkpoint.path  # on object storage: "bucket/key" of the storage's filesystem
    if "://" in storage_path and "://" not in path:
        path = f"{storage_path.split('://', 1)[0]}://{path}"
    return TrainOutcome(checkpoint_path=path, metrics=dict(result.metrics or {}))


def _loop(loop_config: dict[str, Any]) -> None:
    train_loop_per_worker(loop_config)
