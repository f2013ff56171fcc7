"""The demo's base: a tiny Qwen2.5-VL that already answers the spatial questions (study stage 1).

From random weights every base score is 0 and a demo report cannot show the study's trade-off;
Video-SFT from a base that knows images can. The base is the study's own stage 1 (image-only SFT,
`run.stage1_base`) with the `DEMO_BASE` preset, found by the digest of that stage's recipe, in order:

1. the artifact shipped in the package (`videosft/assets/demo_base/`, built by
   `scripts/build_demo_base.py`), when its recorded digest is the current recipe's and every file
   matches its recorded sha256;
2. the cache `$VIDEOSFT_CACHE/bases/<digest>/` (default `~/.cache/videosft`), same checks;
3. else stage 1 builds it into that cache, in a temporary sibling renamed into place only when
   complete, so an interrupted or corrupt cache is rebuilt, never trusted.

Shipping is the default because stage 1 is the slow part (2500 optimizer steps: hours through Ray
Train on 2 shared cores, minutes in one process, `stage1_local`), while the artifact is under 1 MB.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videosft.eval.runner import evaluate_model
from videosft.study.configs import stage1_config, stage1_summary, write_image_manifest
from videosft.study.presets import StudyPreset
from videosft.study.stage1_local import stage1_local
from videosft.study.stage1_ray import stage1_ray
from videosft.workspace import prepare_inputs

MANIFEST = "base.json"  # written last: its presence with matching hashes is what "complete" means
SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "demo_base"
# Checkpoint files a loader needs; stage 1's own bookkeeping (train logs, Ray state) is left behind.
KEEP = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "chat_template.jinja",
    "processor_config.json",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)

# The laptop study's stage-1 recipe (lr 3e-4: the rate at which the tiny model learns the spatial
# tasks rather than the answer prior), on its 512 training stills.
DEMO_BASE = StudyPreset(
    # 4 clips per split only so every question of the set reaches the tiny tokenizer's corpus.
    name="demo-base",
    n_train_image=512,
    n_train_video=4,
    n_eval_image=96,
    n_eval_video=4,
    base_steps=2500,
    base_lr=3e-4,
    video_steps=1,
    video_lr=3e-4,
    budgets=[1],
    hybrid=False,
    eval_budget=1,
    worker_cpus=1.0,
)


@dataclass(frozen=True)
class Base:
    """A verified base checkpoint and what stage 1 measured on it."""

    path: Path
    source: str  # "shipped" | "cache" | "built"
    info: dict[str, Any]  # base.json: digest, recipe, image accuracy, chance, per task, file hashes


def base_preset(preset: StudyPreset) -> StudyPreset:
    """The stage-1 recipe of a study preset with `stage1_trainer: local`: DEMO_BASE with the preset's
    stage-1 fields, so the laptop preset (same stills, steps, rate, batch) gets the shipped base.

    Only the image split matters to stage 1, and synthetic rows come from per-row seeds, so the
    base's 512 training stills are the study set's first 512 whatever its other split sizes."""
    fields = ("n_train_image", "base_steps", "base_lr", "micro_batch_size")
    return DEMO_BASE.model_copy(update={k: getattr(preset, k) for k in fields})


def study_stage1(preset: StudyPreset, out: Path) -> dict[str, Any]:
    """Stage 1 of a `stage1_trainer: local` study: its verified base (ensure_base), copied into
    `<out>/base_checkpoint` and scored on this study's own held-out stills; the summary
    `stage1_ray` returns, plus where the base came from (cached)."""
    out = Path(out).resolve()
    done = out / "stage1" / "base.json"
    if done.exists():
        return json.loads(done.read_text())
    recipe = base_preset(preset)
    base = ensure_base(recipe)
    cfg = stage1_config(preset, out)
    inputs = prepare_inputs(cfg)  # the study's own synthetic set (and frame-cache root)
    write_image_manifest(inputs.data_root)
    ckpt = out / "base_checkpoint"
    shutil.rmtree(ckpt, ignore_errors=True)
    shutil.copytree(base.path, ckpt)
    scores = evaluate_model(cfg, str(ckpt), preset.eval_budget, out / "stage1" / "eval", inputs.data_root)
    image = scores["synthetic_image"]
    summary = stage1_summary(
        preset,
        ckpt,
        inputs,
        image,
        train_wall_s=base.info.get("train_wall_s"),
        trainer="local",
        base_source=base.source,
        base_from=str(base.path),
        base_digest=base.info["digest"],
    )
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(summary, indent=2))
    print(
        f"[study] stage 1 base ({base.source}, recipe {base.info['digest']}): image accuracy "
        f"{image['overall']:.1f} (chance {image.get('chance'):.1f}) on this study's held-out stills",
        flush=True,
    )
    return summary


def cache_root() -> Path:
    return Path(os.environ.get("VIDEOSFT_CACHE") or "~/.cache/videosft").expanduser() / "bases"


def stage1_recipe(preset: StudyPreset, trainer: str = "local") -> dict[str, Any]:
    """What determines stage 1's weights (not where it runs, how it is scheduled, or how it is scored).

    Picked field by field rather than hashing the whole config, so a new unrelated config option
    does not make every shipped and cached base stale.
    """
    cfg = stage1_config(preset, Path("."))
    tr = cfg.train
    return {
        "family": cfg.model.family,
        "tiny_seed": cfg.model.tiny_seed,
        "seed": cfg.seed,
        "synthetic": cfg.data.synthetic.model_dump(mode="json"),
        "manifest": cfg.data.train_manifest,
        "contract": cfg.sampling.contract_id(),
        "train": {
            k: getattr(tr, k)
            for k in (
                "max_steps",
                "lr",
                "micro_batch_size",
                "grad_accum",
                "num_workers",
                "zero_stage",
                "precision",
                "grad_clip",
                "weight_decay",
                "warmup_steps",
                "lr_schedule",
                "seed",
            )
        },
        "freeze": tr.freeze.model_dump(mode="json"),
        "trainer": trainer,
    }


def recipe_digest(preset: StudyPreset, trainer: str = "local") -> str:
    return hashlib.sha256(json.dumps(stage1_recipe(preset, trainer), sort_keys=True).encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, digest: str) -> dict[str, Any] | None:
    """base.json when `path` holds a complete base of recipe `digest` (every file's sha256 as recorded), else None."""
    try:
        info = json.loads((path / MANIFEST).read_text())
        files = info["files"]
        if info.get("digest") != digest or "model.safetensors" not in files:
            return None
        if any(_sha256(path / name) != sha for name, sha in files.items()):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return info


def write_base(
    checkpoint: Path, summary: dict[str, Any], preset: StudyPreset, dest: Path, trainer: str = "local"
) -> dict[str, Any]:
    """Copy the loader files of a stage-1 checkpoint into `dest` and record base.json (last)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in KEEP:
        if (checkpoint / name).exists():
            shutil.copy2(checkpoint / name, dest / name)
    files = {p.name: _sha256(p) for p in sorted(dest.iterdir()) if p.name != MANIFEST}
    info = {
        "digest": recipe_digest(preset, trainer),
        "recipe": stage1_recipe(preset, trainer),
        "preset": preset.model_dump(mode="json"),
        "accuracy": summary["accuracy"],
        "chance": summary["chance"],
        "ci": summary.get("ci"),
        "per_task": summary.get("per_task", {}),
        "train_wall_s": summary.get("train_wall_s"),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "files": files,
    }
    (dest / MANIFEST).write_text(json.dumps(info, indent=2))
    return info


def build_base(preset: StudyPreset, dest: Path, work_dir: Path | None = None, trainer: str = "local") -> dict[str, Any]:
    """Run stage 1 into `dest`: trainer "local" (study.stage1_local, one process, minutes) or "ray"
    (stage1_ray, the study's Ray Train path, hours on 2 shared cores); either is scored by the
    project's evaluation on held-out stills. Stage 1's own outputs go to `work_dir` (default: beside `dest`).
    """
    if trainer not in ("local", "ray"):
        raise ValueError(f"build_base: trainer must be 'local' or 'ray', got {trainer!r}")
    work = (Path(work_dir) if work_dir else dest.with_name(dest.name + "-stage1")).resolve()
    summary = stage1_local(preset, work) if trainer == "local" else stage1_ray(preset, work)
    return write_base(Path(summary["checkpoint"]), summary, preset, dest, trainer)


Builder = Callable[[StudyPreset, Path], dict[str, Any]]


def ensure_base(
    preset: StudyPreset = DEMO_BASE,
    *,
    shipped: Path | None = SHIPPED,
    cache: Path | None = None,
    builder: Builder = build_base,
) -> Base:
    """The verified base of `preset`: shipped, else cached, else built into the cache (see module doc)."""
    digest = recipe_digest(preset)
    if shipped is not None and (info := verify(shipped, digest)):
        return Base(shipped, "shipped", info)
    target = (cache or cache_root()) / digest
    if info := verify(target, digest):
        return Base(target, "cache", info)
    print(
        f"[base] no verified stage-1 base for recipe {digest}; building it into {target} "
        f"({preset.base_steps} image-SFT steps: the slow part, done once)",
        flush=True,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=target.parent))
    try:
        builder(preset, partial / "base")
        if not verify(partial / "base", digest):
            raise RuntimeError(f"stage 1 wrote no verifiable base under {partial / 'base'}")
        if target.exists():  # a corrupt or partial earlier copy
            shutil.rmtree(target)
        os.replace(partial / "base", target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    info = verify(target, digest)
    assert info is not None
    return Base(target, "built", info)
