"""Fit one SFT run with Ray Train's TorchTrainer over a Ray Data dataset of encoded samples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videosft.config import ExperimentConfig


@dataclass(frozen=True)
class TrainOutcome:
    checkpoint_path: str  # consolidated Hugging Face checkpoint directory
    metrics: dict[str, Any]


def fit(cfg: ExperimentConfig, train_ds: Any, model_path: str, frame_budget: int, run_name: str, storage_path: str) -> TrainOutcome:
    """Train `model_path` on `train_ds`; returns where the consolidated checkpoint is."""
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    scaling = ray.train.ScalingConfig(
        num_workers=cfg.train.num_workers,
        use_gpu=cfg.train.use_gpu,
        resources_per_worker={"CPU": cfg.train.cpus_per_worker, **({"GPU": 1} if cfg.train.use_gpu else {})},
    )
    trainer = TorchTrainer(
        _loop,
        train_loop_config={
            "experiment": cfg.model_dump(mode="json"),
            "model_path": model_path,
            "frame_budget": frame_budget,
            "contract_id": cfg.sampling.contract_id(),
        },
        scaling_config=scaling,
        torch_config=TorchConfig(backend="nccl" if cfg.train.use_gpu else "gloo"),
        datasets={"train": train_ds},
        run_config=ray.train.RunConfig(name=run_name, storage_path=str(Path(storage_path).resolve())),
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"training run {run_name} finished without a checkpoint")
    return TrainOutcome(checkpoint_path=result.checkpoint.path, metrics=dict(result.metrics or {}))


def _loop(loop_config: dict[str, Any]) -> None:
    from videosft.train.loop import train_loop_per_worker

    train_loop_per_worker(loop_config)
