"""Experiment tracking through Ray Tune's own logger callbacks, chosen by name in the config.

`tracking.backends` lists any of tensorboard (Ray's TBXLoggerCallback; needs tensorboardX), mlflow
(MLflowLoggerCallback; needs mlflow) and wandb (WandbLoggerCallback; needs wandb). Each trial logs
its training curve (loss, throughput per logged step) and then its scores, so the curves and the
final numbers sit side by side in the tracker. A backend whose package is missing fails at
`check_tracking`, before any cluster work starts.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from videosft.config import ExperimentConfig

_PACKAGES = {"tensorboard": "tensorboardX", "mlflow": "mlflow", "wandb": "wandb"}


def check_tracking(cfg: ExperimentConfig) -> None:
    """Fail fast, naming the key and the missing package."""
    for backend in cfg.tracking.backends:
        package = _PACKAGES[backend]
        if importlib.util.find_spec(package) is None:
            raise ValueError(f"tracking.backends: {backend!r} needs the {package!r} package (pip install {package})")


def tracking_callbacks(cfg: ExperimentConfig) -> list[Any]:
    """Ray Tune logger callbacks for the configured backends (empty list: Tune's defaults only)."""
    check_tracking(cfg)
    out: list[Any] = []
    project = cfg.tracking.project or cfg.name
    for backend in cfg.tracking.backends:
        if backend == "tensorboard":
            from ray.tune.logger import TBXLoggerCallback

            out.append(TBXLoggerCallback())
        elif backend == "mlflow":
            from ray.air.integrations.mlflow import MLflowLoggerCallback

            out.append(MLflowLoggerCallback(tracking_uri=cfg.tracking.mlflow_tracking_uri, experiment_name=project))
        else:
            from ray.air.integrations.wandb import WandbLoggerCallback

            out.append(WandbLoggerCallback(project=project))
    return out


def trial_metrics(summary: dict[str, Any], history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """What a trial reports to Tune: one row per logged training step, then its scores (numbers only)."""
    frames = summary.get("mean_frames") if summary["frame_budget"] == "hybrid" else summary["frame_budget"]
    rows = [{f"train/{k}": float(v) for k, v in h.items() if isinstance(v, (int, float))} for h in history]
    final: dict[str, float] = {"frames": float(frames) if frames is not None else -1.0}
    for name, scores in summary["scores"].items():
        if isinstance(scores.get("overall"), (int, float)):
            final[f"{name}/overall"] = float(scores["overall"])
    return rows + [final]
