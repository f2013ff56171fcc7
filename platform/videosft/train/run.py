"""One SFT run at one frame budget: manifest -> Ray Data decode + preprocess -> TorchTrainer.

Used by a sweep trial and by `jobs/train.py`; failed rows land in `<run_dir>/rejects.jsonl`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from videosft import schema as S
from videosft.config import ExperimentConfig
from videosft.data.pipeline import StageStats
from videosft.train.trainer import TrainOutcome
from videosft.workspace import Inputs, output_dir


def uses_frame_cache(cfg: ExperimentConfig) -> bool:
    return cfg.data.frame_cache and cfg.sampling.mode == "fixed"


def cache_root(cfg: ExperimentConfig) -> str:
    return cfg.data.cache_root or str(output_dir(cfg) / "frame_cache")


def prepare_frame_cache(cfg: ExperimentConfig, inputs: Inputs, rows: list[dict] | None = None) -> Any:
    """Decode the training manifest once at the sweep's largest budget (resumable; no-op when done)."""
    if not uses_frame_cache(cfg):
        return None
    from videosft.data.cache import prepare_cache
    from videosft.data.manifest import read_manifest

    if rows is None:
        rows = read_manifest(str(Path(inputs.data_root) / cfg.data.train_manifest))
    return prepare_cache(rows, cfg.sampling, list(cfg.sweep.frame_budgets), cache_root(cfg),
                         concurrency=cfg.data.decode_concurrency, cpus=cfg.data.cpus_per_decoder,
                         timeout_s=cfg.data.decode_timeout_s, max_failure_ratio=cfg.data.max_failure_ratio)


def train_at_budget(cfg: ExperimentConfig, inputs: Inputs, budget: int, run_dir: Path) -> tuple[TrainOutcome, StageStats]:
    """Decode the training manifest at `budget` frames, fine-tune, return the checkpoint + data stats."""
    from videosft.data.manifest import read_manifest
    from videosft.data.pipeline import decoded_dataset, encoded_dataset, split_rejects
    from videosft.data.preprocess import FEATURES, N_TEXT_TOKENS, N_VISUAL_TOKENS
    from videosft.train.trainer import fit

    rows = read_manifest(str(Path(inputs.data_root) / cfg.data.train_manifest))
    if uses_frame_cache(cfg):
        from videosft.data.cache import read_cached

        prepare_frame_cache(cfg, inputs, rows)  # a no-op once the sweep's cache is complete
        decoded = read_cached(cache_root(cfg), cfg.sampling, budget, ids=[r[S.ID] for r in rows])
    else:
        decoded = decoded_dataset(rows, cfg.sampling, budget, cfg.data.decode_timeout_s,
                                  cfg.data.decode_concurrency, cfg.data.cpus_per_decoder)
    encoded = encoded_dataset(decoded, cfg.model.family, inputs.model_path,
                              cfg.data.decode_concurrency, cfg.data.cpus_per_decoder)
    train_ds, stats = split_rejects(encoded, run_dir / "rejects.jsonl", cfg.data.max_failure_ratio, "train-data",
                                    keep_columns=[S.ID, S.MEDIA_TYPE, FEATURES, N_TEXT_TOKENS, N_VISUAL_TOKENS])
    outcome = fit(cfg, train_ds, inputs.model_path, budget, run_name=f"train_budget_{budget}",
                  storage_path=str(output_dir(cfg) / "train"))
    return outcome, stats
