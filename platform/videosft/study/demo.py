"""`videosft demo`: the frame-budget sweep from a base that already knows images.

Its config is `demo.yaml` beside this module (jobs/configs/demo.yaml is a copy): the defaults plus
Video-SFT on the clips only, at the study's learning rate, with enough held-out items to see a Δ.

With `model.path` unset (the embedded demo) the sweep starts from the study's stage-1 base
(base_model.ensure_base: shipped with the package, else cached, else built once), so the report's
base row is above chance on the image split and each trial's Δ image / Δ video shows what Video-SFT
cost and bought; a set `model.path` is used as given. The base is copied into the run dir
(`base_model/`, where the README's evaluate/alignment commands look) with its provenance in
`base_model.json`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from videosft.config import ConfigError, ExperimentConfig
from videosft.study.base_model import DEMO_BASE, Base, ensure_base, stage1_recipe, verify
from videosft.tune.sweep import run_sweep
from videosft.workspace import output_dir

DEMO_CONFIG = Path(__file__).with_name("demo.yaml")  # the embedded demo (`videosft demo` without --config)


# What a sweep derives from its base: stale once the base in the run dir is replaced.
DERIVED = ("base_eval", "trials", "tune", "train", "alignment", "attention", "results.json")


def stage_base(base: Base, out: Path) -> Path:
    """Copy the verified base into `<out>/base_model` (the README's commands point there).

    A copy that does not verify as this base (none yet, a random tiny model from an older demo, or
    another recipe) is replaced, and every result derived from it in `out` is removed: caches key
    the base by its path, so they must not outlive the weights behind that path.
    """
    dest = out / "base_model"
    if verify(dest, base.info["digest"]) is None:
        for name in DERIVED:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(base.path, dest)
    return dest


def demo_config(cfg: ExperimentConfig) -> tuple[ExperimentConfig, dict | None]:
    """The config the demo sweeps: `model.path` set to the stage-1 base when unset; (cfg, its provenance or None)."""
    if cfg.model.path is not None:
        return cfg, None
    family = stage1_recipe(DEMO_BASE)["family"]
    if cfg.model.family != family:
        raise ConfigError(
            f"model.family={cfg.model.family!r}: the demo's stage-1 base is {family}; "
            "set model.path to a base of that family, or model.family=qwen2_5_vl"
        )
    base = ensure_base()
    out = output_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    path = stage_base(base, out)
    info = {
        "path": str(path),
        "from": str(base.path),
        "source": base.source,
        **{k: v for k, v in base.info.items() if k != "files"},
    }
    (out / "base_model.json").write_text(json.dumps(info, indent=2))
    return cfg.with_overrides([f"model.path={path}"]), info


def run_demo(cfg: ExperimentConfig) -> Path:
    """The sweep (run_sweep) from the demo's base; returns the report path."""
    cfg, _ = demo_config(cfg)
    return run_sweep(cfg)
