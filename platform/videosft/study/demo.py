"""`videosft demo`: the frame-budget sweep from a base that already knows images.

Its config is `demo.yaml` beside this module (jobs/configs/demo.yaml is a copy): the defaults plus
Video-SFT on the clips only, at the study's learning rate, with enough held-out items to see a Δ.

With `model.path` unset (the embedded demo) the sweep starts from the study's stage-1 base
(base_model.ensure_base: shipped with the package, else cached, else built once), so the report's
base row is above chance on the image split and each trial's Δ image / Δ video shows what Video-SFT
cost and bought; a set `model.path` is used as given. The base's provenance is written next to the
report as `base_model.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

from videosft.config import ConfigError, ExperimentConfig
from videosft.study.base_model import DEMO_BASE, ensure_base, stage1_recipe
from videosft.tune.sweep import run_sweep
from videosft.workspace import output_dir

DEMO_CONFIG = Path(__file__).with_name("demo.yaml")  # the embedded demo (`videosft demo` without --config)


def demo_config(cfg: ExperimentConfig) -> tuple[ExperimentConfig, dict | None]:
    """The config the demo sweeps: `model.path` set to the stage-1 base when unset; (cfg, base.json or None)."""
    if cfg.model.path is not None:
        return cfg, None
    family = stage1_recipe(DEMO_BASE)["family"]
    if cfg.model.family != family:
        raise ConfigError(f"model.family={cfg.model.family!r}: the demo's stage-1 base is {family}; "
                          "set model.path to a base of that family, or model.family=qwen2_5_vl")
    base = ensure_base()
    info = {"path": str(base.path), "source": base.source, **{k: v for k, v in base.info.items() if k != "files"}}
    return cfg.with_overrides([f"model.path={base.path}"]), info


def run_demo(cfg: ExperimentConfig) -> Path:
    """The sweep (run_sweep) from the demo's base; returns the report path."""
    cfg, base = demo_config(cfg)
    if base is not None:
        out = output_dir(cfg)
        out.mkdir(parents=True, exist_ok=True)
        (out / "base_model.json").write_text(json.dumps(base, indent=2))
    return run_sweep(cfg)
