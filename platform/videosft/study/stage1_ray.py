"""Stage 1 through the platform's own path: Ray Train + DeepSpeed + Ray Data, image-only SFT.

The production way to build a study base (and the one CI's smoke study runs). On 2 shared cores it
costs ~1-3 s per optimizer step, so the laptop study's 2500-step base would take hours there; that
preset uses the same recipe run in one process instead (`stage1_local`, via `base_model`).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from videosft.eval.runner import evaluate_model
from videosft.ray_runtime import ensure_ray
from videosft.study.configs import stage1_config, stage1_summary, write_image_manifest
from videosft.study.presets import StudyPreset
from videosft.train.run import train_at_budget
from videosft.workspace import prepare_inputs


def stage1_ray(preset: StudyPreset, out: Path) -> dict[str, Any]:
    """Image SFT from random weights; returns {checkpoint, accuracy, chance, ...} (cached)."""

    done = out / "stage1" / "base.json"
    if done.exists():
        return json.loads(done.read_text())
    ensure_ray()
    cfg = stage1_config(preset, out)
    inputs = prepare_inputs(cfg)
    write_image_manifest(inputs.data_root)
    t0 = time.perf_counter()
    outcome, _ = train_at_budget(cfg, inputs, 1, out / "stage1")
    ckpt = out / "base_checkpoint"
    shutil.copytree(outcome.checkpoint_path, ckpt, dirs_exist_ok=True)
    wall = time.perf_counter() - t0
    scores = evaluate_model(cfg, str(ckpt), preset.eval_budget, out / "stage1" / "eval", inputs.data_root)
    image = scores["synthetic_image"]
    summary = stage1_summary(preset, ckpt, inputs, image, train_wall_s=wall)
    done.write_text(json.dumps(summary, indent=2))
    print(
        f"[study] stage 1 base: image accuracy {image['overall']:.1f} (chance {image.get('chance'):.1f}) "
        f"after {preset.base_steps} steps, {wall:.0f} s",
        flush=True,
    )
    return summary
