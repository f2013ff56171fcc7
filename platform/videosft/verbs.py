"""One library function per verb: what `videosft <verb>` and `jobs/<verb>.py` both call.

Each function takes the verb's arguments by name (the CLI's argument names: cli.py builds its
keyword arguments from the parsed command line, and so does every job through jobs/_args.py) and
holds the verb's defaulting, input resolution and fan-out, so a verb run on a laptop and the same
verb submitted as a Ray job do the same thing. Printing is the caller's: these return results.
`VERBS` is the registry both sides look functions up in (tests/unit/test_verbs.py checks that
every job is a thin wrapper over one of them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videosft.analysis.alignment import AlignmentSettings, checkpoint_labels, run_alignment, write_alignment_report
from videosft.analysis.attention import AttentionSettings, run_attention, write_attention_report
from videosft.analysis.report import report_from_run_dir
from videosft.budget.evaluate import run_predictors_eval
from videosft.budget.stage import budget_manifest
from videosft.config import ConfigError, ExperimentConfig, from_dict
from videosft.data.curate import CurateConfig, CurateError
from videosft.data.curate import curate as curate_subset
from videosft.data.manifest import ManifestError, iter_manifest
from videosft.data.sampling import SamplingContract
from videosft.eval.runner import evaluate_model
from videosft.ray_runtime import ensure_ray
from videosft.study.demo import run_demo
from videosft.study.presets import get_preset
from videosft.study.run import run_study
from videosft.train.run import prepare_frame_cache, train_at_budget
from videosft.tune.sweep import run_sweep
from videosft.workspace import Inputs, anchored, output_dir, prepare_inputs, resolve_models, train_manifest


def _resolved(cfg: ExperimentConfig, *, budget: bool | None = None) -> tuple[ExperimentConfig, Inputs]:
    """Absolute paths, models checked (before any cluster work), Ray up, inputs built or found."""
    cfg = resolve_models(anchored(cfg), budget=budget)
    ensure_ray()
    return cfg, prepare_inputs(cfg)


# --------------------------------------------------------------------------- prepare
@dataclass(frozen=True)
class Prepared:
    inputs: Inputs
    cache: Any  # data.cache.CacheInfo, or None when the frame cache is off


def prepare(cfg: ExperimentConfig) -> Prepared:
    """Resolve inputs (building the synthetic set / tiny model when the config asks for them) and
    decode the training set once into the frame cache (resumable; a no-op when complete)."""
    cfg, inputs = _resolved(cfg)
    # Streamed: the driver holds one chunk of rows (and the ids), never the whole manifest.
    cache = prepare_frame_cache(cfg, inputs, rows=iter_manifest(train_manifest(cfg, inputs)))
    return Prepared(inputs=inputs, cache=cache)


# --------------------------------------------------------------------------- sweep / train
def sweep(cfg: ExperimentConfig) -> Path:
    """The frame-budget sweep (prepare, base eval, one Tune trial per budget, report); the report path."""
    return run_sweep(cfg)


@dataclass(frozen=True)
class Trained:
    checkpoint: str
    run_dir: Path
    rows: int
    rejected: int
    metrics: dict[str, Any]


def train(cfg: ExperimentConfig, frame_budget: int) -> Trained:
    """One Video-SFT run at one frame budget, under <output_dir>/runs/budget_<T>."""
    if frame_budget < 1:
        raise ConfigError(f"--frame-budget: must be >= 1, got {frame_budget}")
    cfg, inputs = _resolved(cfg)
    run_dir = output_dir(cfg) / "runs" / f"budget_{frame_budget}"
    outcome, stats = train_at_budget(cfg, inputs, frame_budget, run_dir)
    return Trained(
        checkpoint=outcome.checkpoint_path,
        run_dir=run_dir,
        rows=stats.total,
        rejected=stats.rejected,
        metrics={k: v for k, v in outcome.metrics.items() if isinstance(v, (int, float))},
    )


# --------------------------------------------------------------------------- evaluate
def evaluate(
    cfg: ExperimentConfig,
    model: str | None = None,
    data_root: str | None = None,
    frame_budget: int | None = None,
    benchmarks: Sequence[str] | None = None,
    protocol: str | None = None,
    out: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Evaluate one checkpoint (default: the experiment's model) on the configured benchmarks (or
    `benchmarks`, under `protocol`); predictions and scores under `out` (default <output_dir>/evaluate)."""
    update = {
        k: v
        for k, v in (("benchmarks", list(benchmarks) if benchmarks else None), ("protocol", protocol))
        if v is not None
    }
    if update:  # validated like any override
        cfg = from_dict({**cfg.model_dump(mode="json"), "eval": {**cfg.eval.model_dump(mode="json"), **update}})
    cfg, inputs = _resolved(cfg)
    target = out or str(output_dir(cfg) / "evaluate")
    return evaluate_model(
        cfg, model or inputs.model_path, frame_budget or cfg.eval.frame_budget, target, data_root or inputs.data_root
    )


# --------------------------------------------------------------------------- predict-budgets
def predict_budgets(cfg: ExperimentConfig) -> Path:
    """Annotate the training manifest with a per-sample frame_budget (Hybrid-Frame); the new manifest.

    The instruction / oracle-probe predictors default to the experiment's own model when
    `budget.model_path` is unset (the study used a small VLM).
    """
    cfg, inputs = _resolved(cfg, budget=True)
    budget_cfg = cfg.budget
    if budget_cfg.model_path is None and budget_cfg.needs_model_path():
        budget_cfg = budget_cfg.model_copy(update={"model_path": inputs.model_path, "family": cfg.model.family})
    return budget_manifest(
        train_manifest(cfg, inputs),
        budget_cfg,
        cfg.sampling,
        str(output_dir(cfg) / "budgets"),
        media_root=inputs.data_root,
    )


# --------------------------------------------------------------------------- alignment
def fan_out(fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]], device: str) -> list[Any]:
    """`fn(*args)` for each of `calls`: one Ray task each (a GPU each on cuda), or in this process
    when there is a single CPU call (nothing to fan out, and no Ray needed)."""
    if len(calls) == 1 and device == "cpu":
        return [fn(*calls[0])]
    import ray

    ensure_ray()
    task = ray.remote(num_cpus=1, num_gpus=1 if device.startswith("cuda") else 0)(fn)
    return ray.get([task.remote(*c) for c in calls])


# A probe, by name: (its runner, its settings type, its report writer). Ray tasks get the name and
# plain dicts, so nothing unpicklable crosses to a worker.
_PROBES = {
    "alignment": (run_alignment, AlignmentSettings, write_alignment_report),
    "attention": (run_attention, AttentionSettings, write_attention_report),
}


def _probe(
    kind: str,
    model_path: str,
    data_root: str,
    settings: dict[str, Any],
    family: str | None,
    contract: dict[str, Any],
    device: str,
    label: str,
) -> dict[str, Any]:
    run, settings_type, _ = _PROBES[kind]
    return run(
        model_path,
        data_root,
        settings_type(**settings),
        family=family,
        contract=SamplingContract.model_validate(contract),
        device=device,
        label=label,
    )


@dataclass(frozen=True)
class Probed:
    """What a probe verb returns: one result per checkpoint, and the report files written."""

    results: list[dict[str, Any]]
    paths: dict[str, Path]


def _probe_checkpoints(
    kind: str,
    cfg: ExperimentConfig,
    model: Sequence[str],
    data_root: str | None,
    settings: Any,
    family: str | None,
    device: str | None,
    out: str | None,
) -> Probed:
    """Run probe `kind` on each checkpoint (default: the base model) via `fan_out`; write its report."""
    device = device or ("cuda" if cfg.train.use_gpu else "cpu")
    cfg = anchored(cfg)
    inputs = None
    if not model or data_root is None:
        cfg, inputs = _resolved(cfg)
    models = [str(Path(m).resolve()) for m in model] or [inputs.model_path]  # type: ignore[union-attr]
    root = data_root or inputs.data_root  # type: ignore[union-attr]
    args = [
        (kind, m, root, dataclasses.asdict(settings), family, cfg.sampling.model_dump(), device, label)
        for m, label in zip(models, checkpoint_labels(models))
    ]
    results = fan_out(_probe, args, device)
    write_report = _PROBES[kind][2]
    return Probed(results=results, paths=write_report(results, out or str(output_dir(cfg) / kind)))


def alignment(
    cfg: ExperimentConfig,
    model: Sequence[str] = (),
    data_root: str | None = None,
    manifest: str = "train.json",
    family: str | None = None,
    budgets: Sequence[int] | None = None,
    batches: int = 2,
    batch_size: int = 2,
    seed: int = 0,
    device: str | None = None,
    out: str | None = None,
) -> Probed:
    """Gradient-alignment probe (cos of image- vs video-loss gradients per frame budget) of each
    checkpoint in `model` (default: the experiment's base model).

    Several checkpoints, or a GPU probe, fan out as one Ray task each (a GPU each when the device
    is cuda, so a CPU head node never loads a model); one CPU probe runs in this process.
    `family` defaults to the checkpoint's config.json, `budgets` to sweep.frame_budgets, `device`
    to cuda when train.use_gpu, `out` to <output_dir>/alignment.
    """
    try:
        settings = AlignmentSettings(
            budgets=tuple(budgets or cfg.sweep.fixed_budgets()),
            batches=batches,
            batch_size=batch_size,
            manifest=manifest,
            seed=seed,
            decode_timeout_s=cfg.data.decode_timeout_s,
            step_size=cfg.train.lr,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return _probe_checkpoints("alignment", cfg, model, data_root, settings, family, device, out)


# --------------------------------------------------------------------------- attention
def attention(
    cfg: ExperimentConfig,
    model: Sequence[str] = (),
    data_root: str | None = None,
    family: str | None = None,
    budgets: Sequence[int] | None = None,
    items: int = 24,
    layer_groups: int = 3,
    image_manifest: str = "eval_image.json",
    video_manifest: str = "eval_video.json",
    boxes: str | None = None,
    device: str | None = None,
    out: str | None = None,
) -> Probed:
    """Attention probe (share of the answer position's attention on the target's visual tokens, and
    its concentration, per layer group) of each checkpoint in `model` (default: the base model).

    Fans out like `alignment`; `budgets` defaults to eval.frame_budget (else the largest fixed
    training budget), `out` to <output_dir>/attention; `boxes`: a JSONL of {id, frame_index, box}.
    """
    fixed = cfg.sweep.fixed_budgets()
    try:
        settings = AttentionSettings(
            budgets=tuple(budgets or [cfg.eval.frame_budget or (max(fixed) if fixed else 8)]),
            items=items,
            layer_groups=layer_groups,
            image_manifest=image_manifest,
            video_manifest=video_manifest,
            boxes=str(Path(boxes).resolve()) if boxes else None,
            decode_timeout_s=cfg.data.decode_timeout_s,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return _probe_checkpoints("attention", cfg, model, data_root, settings, family, device, out)


# --------------------------------------------------------------------------- report, predictors, study
def report(run_dir: str) -> Path:
    """Re-render a finished run's trade-off report (Markdown + PNG + HTML) from its results.json."""
    return report_from_run_dir(run_dir)


def predictors_eval(
    data_root: str,
    predictors: Sequence[str],
    candidates: Sequence[int],
    out: str,
    model_path: str | None = None,
    family: str = "qwen2_5_vl",
    limit: int | None = None,
) -> Path:
    """Score frame-budget predictors against the synthetic set's known minimal budgets; the report path."""
    ensure_ray()
    return run_predictors_eval(
        data_root, list(predictors), list(candidates), out, model_path=model_path, family=family, limit=limit
    )


def study(preset: str, output_dir: str | None = None, replicate: bool = False) -> Path:
    """The miniature study (spatial base, Video-SFT sweeps, probe, verdict); the report path."""
    try:
        chosen = get_preset(preset)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return run_study(chosen, output_dir or f"runs/study-{chosen.name}", replicate=replicate)


def curate(settings: CurateConfig) -> dict[str, Any]:
    """A seeded, stratified LLaVA-Video-178K subset (curated.json) and its statistics table."""
    if settings.needs_probe() and settings.probe_engine == "ray":
        ensure_ray()
    try:
        return curate_subset(settings)
    except (CurateError, ManifestError) as exc:  # the user's data or settings, not a bug
        raise ConfigError(f"curate: {exc}") from exc


# Verb -> its function; cli.py and jobs/_args.py look functions up here.
VERBS: dict[str, Callable[..., Any]] = {
    "demo": run_demo,  # the sweep, from the stage-1 base when model.path is unset
    "sweep": sweep,
    "prepare": prepare,
    "train": train,
    "evaluate": evaluate,
    "predict-budgets": predict_budgets,
    "alignment": alignment,
    "attention": attention,
    "report": report,
    "predictors-eval": predictors_eval,
    "study": study,
    "curate": curate,
}
