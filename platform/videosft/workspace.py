"""Resolve an experiment's inputs: the base model path and the data root (building defaults).

The embedded default needs no downloads: with `model.path` unset a tiny random checkpoint of the
configured family is written under the output dir; with `data.root` unset the synthetic study set
is generated there. Both are reused when already present, so re-runs start fast.

Models by id or path (`model.path`, `budget.model_path`): a Hugging Face repo id
(`Qwen/Qwen2.5-VL-7B-Instruct`, `Org/Name@revision`, or `hf://Org/Name`) resolves through the HF
cache (`huggingface_hub.snapshot_download`; put `HF_HOME` on the shared mount so every node sees
one download); a local or shared path is used as is; an `s3://` / `gs://` prefix is copied once
into `<HF_HOME>/videosft-objects/` (the loaders read local directories only). All of it happens
on the driver before any cluster work: an id that is neither cached nor downloadable (e.g.
`HF_HUB_OFFLINE=1` and no cached copy) fails with a ConfigError naming the key and the id.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from videosft.config import HYBRID, ConfigError, ExperimentConfig
from videosft.data.manifest import combined_manifest, join_path
from videosft.data.synthetic import make_synthetic
from videosft.models.registry import get_family


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

    def fix_model(p: str | None) -> str | None:  # a Hugging Face repo id is not a relative path
        return p if p is None or model_kind(p) == "hf" else fix(p)

    sources = [
        s.model_copy(update={"manifest": fix(s.manifest), "media_root": fix(s.media_root)})
        for s in cfg.data.train_sources
    ]
    data = cfg.data.model_copy(update={"root": fix(cfg.data.root), "train_sources": sources})
    model = cfg.model.model_copy(update={"path": fix_model(cfg.model.path)})
    budget = cfg.budget.model_copy(update={"model_path": fix_model(cfg.budget.model_path)})
    return cfg.model_copy(update={"output_dir": fix(cfg.output_dir), "data": data, "model": model, "budget": budget})


def prepare_inputs(cfg: ExperimentConfig) -> Inputs:
    """Return model and data locations, generating the synthetic set / tiny model when unset.

    `model.path` is resolved to a directory every loader can read (see `resolve_model`).
    """
    out = output_dir(cfg)
    data_root = cfg.data.root or str(_ensure_synthetic(cfg, out / "data"))
    model_path = (
        resolve_model(cfg.model.path, "model.path")
        if cfg.model.path
        else str(_ensure_tiny_model(cfg, out / "base_model", Path(data_root)))
    )
    return Inputs(model_path=model_path, data_root=data_root)


# --------------------------------------------------------------------------- models by id or path
HF_SCHEME = "hf://"
# Hugging Face repo ids: "Org/Name" (letters, digits, - _ .), optionally "@revision".
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*(@[\w.\-/]+)?$")
_TRUE = {"1", "true", "yes", "on"}


def model_kind(spec: str) -> str:
    """ "hf" (a Hugging Face repo id), "uri" (s3://, gs://, ...) or "path" (local or shared mount).

    A bare `Org/Name` is an id unless a directory of that relative name exists here (a local path
    wins, as in transformers' `from_pretrained`); "./Org/Name" or an absolute path is always a path.
    """
    if spec.startswith(HF_SCHEME):
        return "hf"
    if "://" in spec:
        return "uri"
    if spec.startswith(("/", ".", "~")) or not _REPO_ID.match(spec) or Path(spec).exists():
        return "path"
    return "hf"


def hub_cache() -> Path:
    """Where huggingface_hub caches repos, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def hf_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def resolve_model(spec: str, key: str) -> str:
    """A local directory holding the model `spec` names; ConfigError naming `key` when there is none."""
    kind = model_kind(spec)
    if kind == "hf":
        return _resolve_hub(spec, key)
    if kind == "uri":
        return _materialize_uri(spec, key)
    path = Path(spec).expanduser()
    if not path.exists():
        raise ConfigError(
            f"{key}={spec!r}: no such file or directory on this machine. Give a path every "
            "node can reach (e.g. under /mnt/shared), an s3:// / gs:// URI, or a Hugging Face "
            "repo id such as Qwen/Qwen2.5-VL-7B-Instruct"
        )
    return str(path.resolve())


def _resolve_hub(spec: str, key: str) -> str:
    from huggingface_hub import snapshot_download

    repo, _, revision = spec.removeprefix(HF_SCHEME).partition("@")
    cache, offline = hub_cache(), hf_offline()
    try:
        # The env is read here, not at huggingface_hub's import: HF_HUB_OFFLINE set later still counts.
        return str(snapshot_download(repo, revision=revision or None, cache_dir=str(cache), local_files_only=offline))
    except Exception as exc:  # LocalEntryNotFoundError, RepositoryNotFoundError, network errors
        why = (
            "HF_HUB_OFFLINE=1 and no cached copy"
            if offline
            else f"not cached and the download failed ({type(exc).__name__}: {exc})"
        )
        raise ConfigError(
            f"{key}={spec!r}: Hugging Face model {repo!r}{f' at revision {revision!r}' if revision else ''} "
            f"cannot be resolved: {why}. Cache: {cache} (HF_HOME / HF_HUB_CACHE; on a cluster put it on the "
            f"shared mount). Download it once with `hf download {repo}` where the hub is reachable, or "
            f"point {key} at a local directory"
        ) from None


def _materialize_uri(spec: str, key: str) -> str:
    """Copy a model directory from object storage into the shared cache, once (a stamp marks it done)."""
    from pyarrow import fs

    dest = Path(os.environ.get("VIDEOSFT_MODEL_CACHE") or hub_cache().parent / "videosft-objects")
    dest = dest / (hashlib.sha256(spec.rstrip("/").encode()).hexdigest()[:16] + "-" + Path(spec.rstrip("/")).name)
    stamp = dest / ".videosft-complete"
    if stamp.exists():
        return str(dest)
    try:
        filesystem, root = fs.FileSystem.from_uri(spec.rstrip("/"))
        infos = filesystem.get_file_info(fs.FileSelector(root, recursive=True, allow_not_found=True))
    except Exception as exc:
        raise ConfigError(f"{key}={spec!r}: cannot list it ({type(exc).__name__}: {exc})") from None
    if not any(i.type == fs.FileType.File for i in infos):
        raise ConfigError(f"{key}={spec!r}: no files under that URI")
    dest.mkdir(parents=True, exist_ok=True)
    fs.copy_files(root, str(dest), source_filesystem=filesystem, destination_filesystem=fs.LocalFileSystem())
    stamp.write_text(spec)
    return str(dest)


def resolve_models(cfg: ExperimentConfig, budget: bool | None = None) -> ExperimentConfig:
    """Check every model the run loads, on the driver, before any cluster work.

    `model.path` is checked here and resolved again (from the cache, no download) by
    `prepare_inputs`; `budget.model_path` (when `budget`, or by default when a hybrid trial needs
    it) is replaced by the resolved directory, since predictors load it inside trials.
    """
    if cfg.model.path:
        resolve_model(cfg.model.path, "model.path")
    wanted = HYBRID in cfg.sweep.frame_budgets if budget is None else budget
    if cfg.budget.model_path and wanted:
        budget = cfg.budget.model_copy(update={"model_path": resolve_model(cfg.budget.model_path, "budget.model_path")})
        cfg = cfg.model_copy(update={"budget": budget})
    return cfg


def train_manifest(cfg: ExperimentConfig, inputs: Inputs) -> str:
    """The training manifest: data.root/data.train_manifest, or with data.train_sources the one
    manifest combining them (written under <output_dir>/manifests, reused while they are unchanged)."""
    if cfg.data.train_sources:
        sources = [(s.manifest, s.media_root) for s in cfg.data.train_sources]
        return str(combined_manifest(sources, output_dir(cfg) / "manifests"))
    return join_path(inputs.data_root, cfg.data.train_manifest)


def _ensure_synthetic(cfg: ExperimentConfig, root: Path) -> Path:
    stamp = root / ".complete.json"
    want = cfg.data.synthetic.model_dump()
    if stamp.exists() and json.loads(stamp.read_text()) == want:
        return root
    syn = cfg.data.synthetic
    print(f"[prepare] writing synthetic study set to {root}", flush=True)
    make_synthetic(
        root,
        seed=syn.seed,
        n_train_video=syn.n_train_video,
        n_train_image=syn.n_train_image,
        n_eval_video=syn.n_eval_video,
        n_eval_image=syn.n_eval_image,
        size=syn.size,
        num_frames=syn.num_frames,
        fps=syn.fps,
    )
    stamp.write_text(json.dumps(want))
    return root


def _ensure_tiny_model(cfg: ExperimentConfig, path: Path, data_root: Path) -> Path:
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
