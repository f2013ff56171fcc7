"""Resolve an experiment's inputs: the base model path and the data root (building defaults).

The embedded default needs no downloads: with `model.path` unset a tiny random checkpoint of the
configured family is written under the output dir; with `data.root` unset the synthetic study set
is generated there. Both are reused when already present, so re-runs start fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from videosft.config import ExperimentConfig
from videosft.data.manifest import combined_manifest, join_path


@dataclass(frozen=True)
class Inputs:
    model_path: str
    data_root: str


def output_dir(cfg: ExperimentConfig) -> Path:
    return Path(cfg.output_dir).expanduser().resolve()


def anchored(cfg: ExperimentConfig) -> ExperimentConfig:
    """The config with every local path made absolute against the *driver's* working directory.

    Tune trials and Ray workers run in their own working directories; a relative output_dir
    resolved there would scatter results under Ray's temp dirs.
    """
    def fix(p: str | None) -> str | None:
        return p if p is None or "://" in p else str(Path(p).expanduser().resolve())

    sources = [s.model_copy(update={"manifest": fix(s.manifest), "media_root": fix(s.media_root)})
               for s in cfg.data.train_sources]
    data = cfg.data.model_copy(update={"root": fix(cfg.data.root), "train_sources": sources})
    model = cfg.model.model_copy(update={"path": fix(cfg.model.path)})
    return cfg.model_copy(update={"output_dir": fix(cfg.output_dir), "data": data, "model": model})


def prepare_inputs(cfg: ExperimentConfig) -> Inputs:
    """Return model and data locations, generating the synthetic set / tiny model when unset."""
    out = output_dir(cfg)
    data_root = cfg.data.root or str(_ensure_synthetic(cfg, out / "data"))
    model_path = cfg.model.path or str(_ensure_tiny_model(cfg, out / "base_model", Path(data_root)))
    return Inputs(model_path=model_path, data_root=data_root)


def train_manifest(cfg: ExperimentConfig, inputs: Inputs) -> str:
    """The training manifest: data.root/data.train_manifest, or with data.train_sources the one
    manifest combining them (written under <output_dir>/manifests, reused while they are unchanged)."""
    if cfg.data.train_sources:
        sources = [(s.manifest, s.media_root) for s in cfg.data.train_sources]
        return str(combined_manifest(sources, output_dir(cfg) / "manifests"))
    return join_path(inputs.data_root, cfg.data.train_manifest)


def _ensure_synthetic(cfg: ExperimentConfig, root: Path) -> Path:
    from videosft.data.synthetic import make_synthetic

    stamp = root / ".complete.json"
    want = cfg.data.synthetic.model_dump()
    if stamp.exists() and json.loads(stamp.read_text()) == want:
        return root
    syn = cfg.data.synthetic
    print(f"[prepare] writing synthetic study set to {root}", flush=True)
    make_synthetic(root, seed=syn.seed, n_train_video=syn.n_train_video, n_train_image=syn.n_train_image,
                   n_eval_video=syn.n_eval_video, n_eval_image=syn.n_eval_image, size=syn.size,
                   num_frames=syn.num_frames, fps=syn.fps)
    stamp.write_text(json.dumps(want))
    return root


def _ensure_tiny_model(cfg: ExperimentConfig, path: Path, data_root: Path) -> Path:
    from videosft.models.registry import get_family

    stamp = path / ".complete.json"
    want = {"family": cfg.model.family, "seed": cfg.model.tiny_seed}
    if stamp.exists() and json.loads(stamp.read_text()) == want:
        return path
    print(f"[prepare] building tiny {cfg.model.family} at {path}", flush=True)
    get_family(cfg.model.family).build_tiny(path, seed=cfg.model.tiny_seed, extra_corpus=corpus_from(data_root))
    stamp.write_text(json.dumps(want))
    return path


def corpus_from(data_root: Path) -> list[str]:
    """All conversation text of the manifests under data_root: the tiny tokenizer's training text."""
    lines: list[str] = []
    for manifest in sorted(Path(data_root).glob("*.json")):
        try:
            rows = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        for row in rows if isinstance(rows, list) else []:
            for turn in row.get("conversations", []):
                lines.append(str(turn.get("value", "")).replace("<video>", "").replace("<image>", ""))
    return lines
