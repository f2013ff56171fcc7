"""The miniature study's experiment configs: stage 1 (the base) and every stage-2 sweep, from a preset.

Pure config building (no Ray, no training), so the study runner, Table 1 and the demo's base
recipe share one definition of what each stage trains on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from videosft.config import ExperimentConfig, from_dict
from videosft.study.presets import StudyPreset

IMAGE_MANIFEST = "train_image.json"


def merge_nested(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge_nested(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def study_config(preset: StudyPreset, output_dir: str, **extra: Any) -> ExperimentConfig:
    """The experiment config of one study stage: defaults + preset + `extra` (nested dicts)."""
    raw = merge_nested(ExperimentConfig().model_dump(mode="json"), preset.experiment_overrides())
    # The study probes alignment once, on its base, per budget (run_study); not per trial.
    raw = merge_nested(
        raw,
        {
            "name": f"study-{preset.name}",
            "output_dir": output_dir,
            "alignment": {"enabled": False},
            "attention": {"enabled": False},
        },
    )  # the study probes attention itself (attention_section)
    return from_dict(merge_nested(raw, extra))


def write_image_manifest(data_root: str) -> None:
    """Write the image-only training manifest (stage 1) beside train.json (idempotent).

    Stage 2 needs no manifest of its own: `data.image_replay_ratio` 0.0 keeps train.json's videos only.
    """
    root = Path(data_root)
    rows = json.loads((root / "train.json").read_text())
    (root / IMAGE_MANIFEST).write_text(json.dumps([r for r in rows if "image" in r], indent=1))


def stage1_config(preset: StudyPreset, out: Path) -> ExperimentConfig:
    """Stage 1's experiment config: image-only SFT of the random tiny model (its hash keys a built base)."""
    return study_config(
        preset,
        str(out),
        data={"train_manifest": IMAGE_MANIFEST, "frame_cache": False},
        train={"max_steps": preset.base_steps, "lr": preset.base_lr},
        eval={"benchmarks": ["synthetic_image"]},
    )


def stage1_summary(
    preset: StudyPreset, checkpoint: Path, inputs: Any, image: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """What every stage-1 path records of its base (base.json): where it is, its held-out image
    scores and its recipe; `extra` adds the path's own fields (wall time, trainer, provenance)."""
    return {
        "checkpoint": str(checkpoint),
        "data_root": inputs.data_root,
        "random_init": inputs.model_path,
        "accuracy": image["overall"],
        "chance": image.get("chance"),
        "ci": image.get("ci"),
        "steps": preset.base_steps,
        "lr": preset.base_lr,
        **extra,
        "per_task": {k: v for k, v in image.items() if k.startswith("task/")},
    }


def stage2_configs(
    preset: StudyPreset, out: Path, base: dict[str, Any], seeds: Sequence[int] | None = None
) -> list[tuple[str, int, ExperimentConfig]]:
    """(variant, seed, sweep config) for every stage-2 sweep of the preset (`seeds`: its own by default).

    The seed is both `train.seed` (data order, RNGs) and the experiment seed (which image rows a
    replay trial mixes in, bootstrap resampling): every trial kind derives its stream from it.
    """
    budgets: list[Any] = list(preset.budgets) + (["hybrid"] if preset.hybrid else [])
    common = {
        "model": {"path": base["checkpoint"]},
        "data": {
            "root": base["data_root"],
            "train_manifest": "train.json",
            "image_replay_ratio": 0.0,
            "cache_root": str(out / "frame_cache"),
        },  # one decode serves every stage-2 sweep
        "train": {"max_steps": preset.video_steps, "lr": preset.video_lr},
        "budget": {
            "predictor": preset.hybrid_predictor,
            "candidates": sorted(set(preset.budgets)),
            "default": max(preset.budgets),
        },
    }
    runs = []
    for seed in preset.seeds if seeds is None else seeds:
        seeded = merge_nested(common, {"seed": seed, "train": {"seed": seed}})
        cfg = study_config(
            preset, str(out / "stage2" / f"seed_{seed}"), **merge_nested(seeded, {"sweep": {"frame_budgets": budgets}})
        )
        runs.append(("fixed", seed, cfg))
        if preset.replay_ratio > 0:
            replay = merge_nested(
                seeded,
                {
                    "sweep": {"frame_budgets": [max(preset.budgets)]},
                    "data": {"image_replay_ratio": preset.replay_ratio},
                },
            )
            runs.append(("replay", seed, study_config(preset, str(out / "stage2" / f"replay_seed_{seed}"), **replay)))
    return runs
