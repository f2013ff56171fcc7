"""Ray Tune sweep over frame budgets: one trial = decode -> train -> consolidate -> evaluate.

Under Ray 2.60 Train v2, Tune runs a *function trainable* that builds and fits a TorchTrainer.
The trial itself reserves a token CPU fraction (Tune refuses an empty bundle; its Train workers
and Ray Data stages hold the real resources), so a small machine is not starved; how many trials
run at once is therefore set by `max_concurrent_trials`, derived when unset from the cluster at its
maximum (a cluster file's node-type maxima, or the autoscaler's), never from the nodes up at sweep
start: the pending Train worker groups of those trials are what makes the autoscaler scale out. The
base model is evaluated once per evaluation budget and shared.

Resuming: the Tune experiment is named by a hash of the config, so re-running the same config in
the same output_dir restores it (`Tuner.restore`: finished trials are kept, unfinished and errored
ones run again), while a changed config starts a new experiment instead of silently reusing
results. Belt and braces, a trial whose summary.json was written under the same config returns it
instead of retraining: that covers a driver killed between a trial's last write and Tune's next
experiment-state save, and a grid extended with new budgets.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from videosft.analysis.alignment import AlignmentSettings, run_alignment, write_alignment
from videosft.analysis.attention import (
    SUPPORTED_FAMILIES,
    TARGET_BOXES,
    AttentionSettings,
    run_attention,
    write_attention,
)
from videosft.analysis.compute import checkpoint_history, model_info, trial_compute
from videosft.analysis.report import write_report
from videosft.benchmarks import get_benchmark
from videosft.budget.stage import budget_manifest
from videosft.clusters_check import _cluster_spec_of
from videosft.clusters_fit import Bundle, kuberay_node_types, launcher_node_types, phases, place
from videosft.config import HYBRID, ExperimentConfig, from_dict
from videosft.eval.runner import EvalJob, evaluate_jobs
from videosft.ray_runtime import ensure_ray
from videosft.train.run import prepare_frame_cache, train_at_budget
from videosft.tune.tracking import check_tracking, tracking_callbacks, trial_metrics
from videosft.workspace import Inputs, anchored, output_dir, prepare_inputs, resolve_models, train_manifest

TRIAL_DRIVER_CPU = 0.01


def _short_hash(raw: Any) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:12]


def config_hash(cfg: ExperimentConfig, *, with_sweep: bool) -> str:
    """Short hash of what determines results: a trial's (with_sweep=False) or the grid's.

    Names, the output location and scheduling knobs (concurrency, resume) never change a result,
    so they are left out: moving a run or raising concurrency must not invalidate it.
    """
    raw = cfg.model_dump(mode="json")
    for key in ("name", "output_dir"):
        raw.pop(key, None)
    sweep = raw.pop("sweep", {})
    if with_sweep:
        raw["sweep"] = {k: v for k, v in sweep.items() if k not in ("max_concurrent_trials", "resume")}
    return _short_hash(raw)


def trial_dir(cfg: ExperimentConfig, budget: int | str) -> Path:
    return output_dir(cfg) / "trials" / f"budget_{budget}"


def finished_trial(cfg: ExperimentConfig, budget: int | str) -> dict[str, Any] | None:
    """The trial's summary when it already finished under this very config, else None."""
    path = trial_dir(cfg, budget) / "summary.json"
    if not cfg.sweep.resume or not path.exists():
        return None
    try:
        summary = json.loads(path.read_text())
    except ValueError:  # a summary cut short by a crash: run the trial again
        return None
    return summary if summary.get("config_hash") == config_hash(cfg, with_sweep=False) else None


def run_trial(
    cfg: ExperimentConfig, inputs: Inputs, budget: int | str, also_eval_at: int | None = None
) -> dict[str, Any]:
    """Train at `budget` frames (or "hybrid": per-sample predicted budgets) and evaluate the result.

    Returns the trial summary (also on disk). A hybrid trial is evaluated the same way: each video
    item at the budget the predictor gives it. `also_eval_at`: the same evaluation pass also scores
    the video benchmarks at that budget into <trial>/eval_fixed_<budget> (as `score_video_at`), so
    the engine and decode pools start once; the summary's eval wall time then covers both.
    """

    cached = finished_trial(cfg, budget)
    if cached is not None:
        print(f"[sweep] budget {budget}: finished under this config already; reusing its summary", flush=True)
        return cached
    out = trial_dir(cfg, budget)
    t0 = time.perf_counter()
    train_cfg, train_budget, hybrid = (cfg, budget, None) if budget != HYBRID else hybrid_training(cfg, inputs)
    outcome, stats = train_at_budget(train_cfg, inputs, train_budget, out)
    t1 = time.perf_counter()
    jobs = [EvalJob(out / "eval", cfg.eval.frame_budget or budget)]
    if also_eval_at is not None:
        jobs.append(EvalJob(out / f"eval_fixed_{also_eval_at}", also_eval_at, tuple(video_benchmarks(cfg))))
    scores = evaluate_jobs(cfg, outcome.checkpoint_path, jobs, inputs.data_root)[0]
    t2 = time.perf_counter()
    summary = {
        "frame_budget": budget,
        "checkpoint": outcome.checkpoint_path,
        "model": model_info(cfg.model.family, cfg.model.path, inputs.model_path),
        "train": {k: v for k, v in outcome.metrics.items() if isinstance(v, (int, float))},
        "scores": scores,
        "data": {"rows": stats.total, "rejected": stats.rejected, "rejects_path": stats.rejects_path},
        "compute": _compute(cfg, outcome, train_wall_s=t1 - t0, eval_wall_s=t2 - t1),
        "contract_id": cfg.sampling.contract_id(),
        **(hybrid or {}),
        "config_hash": config_hash(cfg, with_sweep=False),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tmp = out / "summary.json.tmp"  # written whole, then renamed: a crash never leaves half a summary
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(out / "summary.json")
    return summary


def hybrid_training(cfg: ExperimentConfig, inputs: Inputs) -> tuple[ExperimentConfig, int, dict[str, Any]]:
    """A Hybrid-Frame trial's training config: the manifest with each row's predicted budget.

    The budgeted manifest is cached by (predictor, model, prompt, contract, manifest) hash, so every
    seed and re-run of the sweep reuses one prediction pass. Returns the config pointing at it, the
    largest candidate (the decode default for rows without a budget) and what the summary records.
    """

    manifest = train_manifest(cfg, inputs)
    path = budget_manifest(
        manifest, cfg.budget, cfg.sampling, out_dir=output_dir(cfg) / "budgets", media_root=inputs.data_root
    )
    meta = json.loads(path.with_suffix(".meta.json").read_text())
    hist = {int(k): int(v) for k, v in meta["histogram"].items()}
    rows = json.loads(path.read_text())
    video = [int(r["frame_budget"]) for r in rows if "video" in r and r.get("frame_budget")]
    record = {
        "budget_predictor": cfg.budget.predictor,
        "budget_histogram": hist,
        "budget_fell_back": meta["fell_back"],
        "mean_frames": sum(video) / len(video) if video else None,
        "budget_manifest": str(path),
    }
    data = cfg.data.model_copy(update={"train_manifest": str(path), "train_sources": []})
    return cfg.model_copy(update={"data": data}), max(cfg.budget.candidates), record


def _compute(cfg: ExperimentConfig, outcome: Any, train_wall_s: float, eval_wall_s: float) -> dict[str, Any]:
    """The trial's compute accounting, from its clocks and the train log kept with its checkpoint."""

    tr, ev = cfg.train, cfg.eval
    return trial_compute(
        steps=int(outcome.metrics.get("step", tr.max_steps)),
        micro_batch_size=tr.micro_batch_size,
        grad_accum=tr.grad_accum,
        num_workers=tr.num_workers,
        use_gpu=tr.use_gpu,
        cpus_per_worker=tr.cpus_per_worker,
        train_wall_s=train_wall_s,
        eval_wall_s=eval_wall_s,
        eval_devices=ev.num_actors * (ev.gpus_per_actor or ev.cpus_per_actor),
        history=checkpoint_history(outcome.checkpoint_path),
    )


def score_video_at(cfg: ExperimentConfig, trial: Path, checkpoint: str, budget: int, data_root: str) -> Path:
    """Score a checkpoint on the video benchmarks at one fixed evaluation budget, into
    `<trial>/eval_fixed_<budget>` (resumable like every evaluation: a finished one costs no pass)."""
    out = trial / f"eval_fixed_{budget}"
    evaluate_jobs(cfg, checkpoint, [EvalJob(out, budget, tuple(video_benchmarks(cfg)))], data_root)
    return out


def video_benchmarks(cfg: ExperimentConfig) -> list[str]:
    """The configured benchmarks whose scores depend on the frame budget."""
    return [b for b in cfg.eval.benchmarks if get_benchmark(b, cfg.eval.protocol).modality == "video"]


def _trainable(params: dict[str, Any]) -> None:
    from ray import tune

    cfg = from_dict(params["experiment"])
    inputs = Inputs(**params["inputs"])
    budget = params["frame_budget"]
    at = int(params["also_eval_at"]) if params.get("also_eval_at") else None
    summary = run_trial(cfg, inputs, budget if budget == HYBRID else int(budget), also_eval_at=at)
    if at is not None:  # the study's one evaluation budget, while this trial holds its slot (a reused
        # trial scored it already, or is scored now; a finished evaluation costs no pass)
        score_video_at(cfg, trial_dir(cfg, budget), summary["checkpoint"], at, inputs.data_root)
    from videosft.analysis.compute import checkpoint_history

    *curve, final = trial_metrics(summary, checkpoint_history(summary["checkpoint"]))
    for row in curve:  # the training curve, for trackers (TensorBoard / MLflow / W&B)
        tune.report(row)
    with tempfile.TemporaryDirectory() as tmp:  # a tiny checkpoint so Result.metrics is populated
        Path(tmp, "summary.json").write_text(json.dumps(summary))
        tune.report(final, checkpoint=tune.Checkpoint.from_directory(tmp))


def evaluate_base(
    cfg: ExperimentConfig, inputs: Inputs, also: Sequence[EvalJob] = ()
) -> dict[int | str, dict[str, Any]]:
    """Evaluate the untuned base once per evaluation budget the sweep needs (cached on disk).

    Image benchmarks do not depend on the frame budget: they run once and are shared by every
    budget; only video benchmarks are re-run per budget. Every missing budget is one pass; `also`
    (other evaluations of the base, e.g. the study's fixed budget) joins that pass.
    """

    budgets = [cfg.eval.frame_budget] if cfg.eval.frame_budget else list(cfg.sweep.frame_budgets)
    video = video_benchmarks(cfg)
    out: dict[int | str, dict[str, Any]] = {}
    shared_image: dict[str, Any] | None = None
    todo = []
    for b in budgets:
        path = output_dir(cfg) / "base_eval" / f"budget_{b}"
        stamp = path / "key.json"
        if (
            (path / "scores.json").exists()
            and stamp.exists()
            and json.loads(stamp.read_text()).get("key") == base_eval_key(cfg, inputs, b)
        ):
            out[b] = json.loads((path / "scores.json").read_text())
            shared_image = shared_image or {k: v for k, v in out[b].items() if k not in video}
        else:
            todo.append((b, path))
    jobs = [  # one pass for every budget still missing; image benchmarks only in the first
        EvalJob(path, b, None if shared_image is None and i == 0 else tuple(video)) for i, (b, path) in enumerate(todo)
    ]
    jobs += list(also)
    scored = evaluate_jobs(cfg, inputs.model_path, jobs, inputs.data_root) if jobs else []
    for (b, path), scores in zip(todo, scored):
        shared_image = shared_image or {k: v for k, v in scores.items() if k not in video}
        out[b] = {**shared_image, **scores}
        (path / "scores.json").write_text(json.dumps(out[b], indent=2))
        (path / "key.json").write_text(json.dumps({"key": base_eval_key(cfg, inputs, b)}))
    return {b: out[b] for b in budgets}


def base_eval_key(cfg: ExperimentConfig, inputs: Inputs, budget: int | str) -> str:
    """What the base's scores depend on: model, data, contract, benchmarks and generation settings.

    Scheduling knobs (actors, CPUs, batch size) are left out; anything else changing (e.g.
    eval.limit) re-evaluates instead of reusing stale scores. Unchanged samples are still not
    re-generated: the predictions files keep them under their own per-row key.
    """
    ev = cfg.eval.model_dump(mode="json")
    for k in ("num_actors", "cpus_per_actor", "gpus_per_actor", "batch_size", "tensor_parallel_size"):
        ev.pop(k, None)
    raw = {
        "model": inputs.model_path,
        "data": inputs.data_root,
        "contract": cfg.sampling.contract_id(),
        "eval": ev,
        "frames": budget,
        "budget": cfg.budget.model_dump(mode="json") if budget == HYBRID else None,
    }
    return _short_hash(raw)


def trial_need(cfg: ExperimentConfig) -> dict[str, float]:
    """What one trial holds at its peak, per resource.

    Training holds its Train workers plus the Ray Data stage feeding them (a trial whose data stage
    cannot get a CPU stalls, the trap DESIGN.md names); evaluation holds the engine actors plus
    their decoders. The two phases do not overlap, so the trial needs the larger of the two.
    """
    data_cpu = cfg.data.decode_concurrency * cfg.data.cpus_per_decoder
    train_cpu = cfg.train.num_workers * cfg.train.cpus_per_worker + data_cpu
    eval_cpu = cfg.eval.num_actors * cfg.eval.cpus_per_actor + data_cpu
    train_gpu = cfg.train.num_workers if cfg.train.use_gpu else 0.0
    eval_gpu = cfg.eval.num_actors * cfg.eval.gpus_per_actor
    return {"CPU": max(train_cpu, eval_cpu), "GPU": max(train_gpu, eval_gpu)}


def derive_max_concurrent(cfg: ExperimentConfig, cluster: Mapping[str, float], n_trials: int | None = None) -> int:
    """`sweep.max_concurrent_trials` when set (> 0), else how many trials `cluster` holds.

    `cluster` is the cluster at its *maximum* (see `plan_concurrency`), never only what is up when
    the sweep starts: an autoscaling cluster starts empty. Bounded by every resource a trial needs
    (GPUs on a GPU sweep, CPUs always), at least 1, at most the number of trials (`n_trials`, default
    the sweep's budgets).
    """
    n_trials = n_trials or len(cfg.sweep.frame_budgets)
    if cfg.sweep.max_concurrent_trials:
        return min(cfg.sweep.max_concurrent_trials, n_trials)
    fits = [math.floor(float(cluster.get(res, 0.0)) / need + 1e-9) for res, need in trial_need(cfg).items() if need > 0]
    return max(1, min([n_trials, *fits]))


def trials_that_fit(cfg: ExperimentConfig, node_types: Any, n_trials: int | None = None) -> int:
    """How many trials run at once on `node_types` at their maxima: k copies of every phase's bundles
    (plus each trial's driver bundle) placed together (clusters_fit), at least 1, at most the trials."""

    n_trials = n_trials or len(cfg.sweep.frame_budgets)
    if cfg.sweep.max_concurrent_trials:
        return min(cfg.sweep.max_concurrent_trials, n_trials)
    driver = [Bundle("trial driver", TRIAL_DRIVER_CPU)]
    k = 0
    while k < n_trials and all(not place((bundles + driver) * (k + 1), node_types) for bundles in phases(cfg).values()):
        k += 1
    return max(1, k)


def cluster_file_node_types(path: str) -> Any:
    """Worker node types of a `ray up` YAML or a KubeRay RayCluster/RayJob manifest."""
    import yaml

    docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if isinstance(d, dict)]
    for doc in docs:
        if found := _cluster_spec_of(doc):
            return kuberay_node_types(found[1])
    if docs and "available_node_types" in docs[0]:
        return launcher_node_types(docs[0])
    raise ValueError(f"sweep.cluster_file={path!r}: neither a `ray up` YAML nor a KubeRay manifest")


def plan_concurrency(cfg: ExperimentConfig, n_trials: int | None = None) -> tuple[int, str, bool]:
    """(trials at once, where that number came from, whether the cluster autoscales).

    In order: `sweep.max_concurrent_trials`; the node-type maxima of `sweep.cluster_file`; the
    maxima of the autoscaler's own config (Ray's `get_max_resources_from_cluster_config`, None on
    some clusters, e.g. the local simulation); else the resources up now (no autoscaler).
    """
    import ray

    if cfg.sweep.max_concurrent_trials:
        return derive_max_concurrent(cfg, {}, n_trials), "sweep.max_concurrent_trials", False
    if cfg.sweep.cluster_file:
        types = cluster_file_node_types(cfg.sweep.cluster_file)
        return trials_that_fit(cfg, types, n_trials), f"node-type maxima of {cfg.sweep.cluster_file}", True
    try:
        from ray._private.state import state

        maxima = state.get_max_resources_from_cluster_config()
    except Exception:  # noqa: BLE001 - private API; its absence just means "no autoscaler config"
        maxima = None
    if maxima:
        return derive_max_concurrent(cfg, maxima, n_trials), "the autoscaler config's maxima", True
    resources = ray.cluster_resources()
    return derive_max_concurrent(cfg, resources, n_trials), "the resources up now (no autoscaler config)", False


def pin_autoscaling_coordinator() -> bool:
    """Create Ray's autoscaling coordinator on this (the driver's, i.e. the head) node; True if done.

    Ray Train v2 and Ray Data share one detached `AutoscalingCoordinator` actor, created on the node
    of whoever asks first (hard node affinity) and never removed. A Train run inside a Tune trial
    asks first from a worker node, and since Ray 2.8 a node holding an actor is never idle: seen on
    the simulated cluster, one worker node stayed up for good, holding only that actor. Created
    here first, it lives on the head, which never scales down anyway. Uses Ray's own (internal)
    factory so it is the same actor; on a Ray without it this does nothing.
    """
    try:
        from ray.data._internal.cluster_autoscaler import get_or_create_autoscaling_coordinator
    except ImportError:
        return False
    get_or_create_autoscaling_coordinator()
    return True


def request_trial_resources(cfg: ExperimentConfig, concurrent: int) -> list[dict[str, float]]:
    """Ask the autoscaler for `concurrent` trials' training bundles at once; returns what was asked."""
    from ray.autoscaler.sdk import request_resources

    from videosft.clusters_fit import phases

    bundles = []
    for b in phases(cfg)["train"]:
        bundle = {"CPU": b.cpus, **({"GPU": b.gpus} if b.gpus else {})}
        bundles.append({k: v for k, v in bundle.items() if v > 0})
    bundles = [b for b in bundles if b] * concurrent
    request_resources(bundles=bundles)
    return bundles


def scale_for(cfg: ExperimentConfig, concurrent: int, autoscaling: bool) -> list[dict[str, float]]:
    """Before a Tuner on an autoscaling cluster: pin the coordinator, then ask for every slot's nodes.

    Both steps only matter with an autoscaler; the request (`sweep.request_resources`) makes the
    nodes for all `concurrent` trials launch together instead of one trial at a time. The caller
    clears the request after fit (`_clear_resource_request`). Returns the bundles asked for.
    """
    if not autoscaling:
        return []
    pin_autoscaling_coordinator()
    return request_trial_resources(cfg, concurrent) if cfg.sweep.request_resources else []


def _tuner(cfg: ExperimentConfig, inputs: Inputs) -> Any:
    """A new Tuner, or the restored one when this config's experiment exists in output_dir."""
    from ray import tune

    trainable = tune.with_resources(_trainable, {"CPU": TRIAL_DRIVER_CPU})
    storage = output_dir(cfg) / "tune"
    name = f"sweep_{config_hash(cfg, with_sweep=True)}"
    param_space = {
        "experiment": cfg.model_dump(mode="json"),
        "inputs": {"model_path": inputs.model_path, "data_root": inputs.data_root},
        "frame_budget": tune.grid_search(list(cfg.sweep.frame_budgets)),
    }
    if cfg.sweep.resume and tune.Tuner.can_restore(str(storage / name)):
        print(f"[sweep] resuming Tune experiment {storage / name}", flush=True)
        return tune.Tuner.restore(
            str(storage / name), trainable=trainable, param_space=param_space, resume_errored=True
        )
    if not cfg.sweep.resume:
        name += time.strftime("_%Y%m%d-%H%M%S")
    concurrent, source, autoscaling = plan_concurrency(cfg)
    print(
        f"[sweep] {len(cfg.sweep.frame_budgets)} trials, at most {concurrent} at once ({source}) -> {storage / name}",
        flush=True,
    )
    scale_for(cfg, concurrent, autoscaling)
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(max_concurrent_trials=concurrent),
        run_config=tune.RunConfig(name=name, storage_path=str(storage), callbacks=tracking_callbacks(cfg)),
    )


Prepared = tuple[ExperimentConfig, Inputs, dict[int | str, dict[str, Any]]]  # what prepare_sweep returns


def prepare_sweep(cfg: ExperimentConfig, also_eval_base: Sequence[EvalJob] = ()) -> Prepared:
    """Everything before a sweep's trials: checks, inputs, the frame cache, the base's scores
    (`also_eval_base`: more evaluations of the base in the same pass, see `evaluate_base`)."""

    check_tracking(cfg)  # a missing tracker package fails before any cluster work
    cfg = resolve_models(anchored(cfg))  # so does a model id that cannot be resolved (workspace.py)
    ensure_ray()
    inputs = prepare_inputs(cfg)
    prepare_frame_cache(cfg, inputs)  # decode once, before trials share it
    if HYBRID in cfg.sweep.frame_budgets:
        hybrid_training(cfg, inputs)  # predict the budgets once, before trials (maybe of other seeds) read them
    return cfg, inputs, evaluate_base(cfg, inputs, also_eval_base)


def finish_sweep(cfg: ExperimentConfig, inputs: Inputs, base: dict[int | str, dict[str, Any]]) -> Path:
    """Everything after a sweep's trials: the probes it asks for and its report."""

    trials = [json.loads((trial_dir(cfg, b) / "summary.json").read_text()) for b in cfg.sweep.frame_budgets]
    alignment = sweep_alignment(cfg, inputs, trials)
    attention = sweep_attention(cfg, inputs, trials)
    return write_report(cfg, base, trials, output_dir(cfg), alignment=alignment, attention=attention)


def _raise_failed(results: Any) -> None:
    errors = [str(r.error) for r in results if r.error]
    if errors:
        raise RuntimeError(f"{len(errors)} sweep trial(s) failed; first: {errors[0]}")


def run_sweep(cfg: ExperimentConfig) -> Path:
    """Prepare inputs, evaluate the base, run (or resume) one Tune trial per budget, write the report."""

    cfg, inputs, base = prepare_sweep(cfg)
    try:
        results = _tuner(cfg, inputs).fit()
    finally:
        _clear_resource_request()
    _raise_failed(results)
    return finish_sweep(cfg, inputs, base)


def _pool_trainable(params: dict[str, Any]) -> None:
    jobs = json.loads(Path(params["jobs"]).read_text())
    _trainable(jobs[int(params["index"])])


def run_trial_pool(prepared: list[Prepared], storage: Path, also_eval_at: int | None = None) -> list[Path]:
    """The trials of several sweeps (e.g. a study's seeds and variants) as one Tune run; their reports.

    Run one after another, each sweep's last round leaves slots idle (5 trials on 2 slots: 3 rounds
    for 2.5 trials' work) and a study of many sweeps pays that per sweep; pooled, the slots stay
    full until the last trial. Each trial is still its sweep's (its config, output dir, cache, base
    scores, report), and a finished trial is reused by its summary's config hash, so re-running
    continues. `also_eval_at`: each trial also scores its checkpoint on the video benchmarks at that
    budget (`score_video_at`) before its slot frees. Concurrency as for a sweep, over all trials.
    `prepared`: each sweep's `prepare_sweep` result (the caller orders them, e.g. to share caches).
    """
    from ray import tune

    jobs = [
        {
            "experiment": cfg.model_dump(mode="json"),
            "inputs": {"model_path": inputs.model_path, "data_root": inputs.data_root},
            "frame_budget": budget,
            "also_eval_at": also_eval_at,
        }
        for cfg, inputs, _ in prepared
        for budget in cfg.sweep.frame_budgets
    ]
    storage.mkdir(parents=True, exist_ok=True)
    name = f"pool_{_short_hash(jobs)}_{time.strftime('%Y%m%d-%H%M%S')}"
    jobs_file = storage / f"{name}.jobs.json"  # trials read their job here: short names, small configs
    jobs_file.write_text(json.dumps(jobs))
    first = prepared[0][0]
    concurrent, source, autoscaling = plan_concurrency(first, n_trials=len(jobs))
    print(f"[sweep] {len(jobs)} trials of {len(prepared)} sweeps, at most {concurrent} at once ({source})", flush=True)
    scale_for(first, concurrent, autoscaling)
    tuner = tune.Tuner(
        tune.with_resources(_pool_trainable, {"CPU": TRIAL_DRIVER_CPU}),
        param_space={"jobs": str(jobs_file), "index": tune.grid_search(list(range(len(jobs))))},
        tune_config=tune.TuneConfig(max_concurrent_trials=concurrent),
        run_config=tune.RunConfig(name=name, storage_path=str(storage)),
    )
    try:
        results = tuner.fit()
    finally:
        _clear_resource_request()
    _raise_failed(results)
    return [finish_sweep(*p) for p in prepared]


def _clear_resource_request() -> None:
    """Drop the up-front request so idle nodes scale back down (a no-op when none was made)."""
    try:
        from ray.autoscaler.sdk import request_resources

        request_resources(bundles=[])
    except Exception:  # noqa: BLE001 - no autoscaler (local Ray): nothing to clear
        pass


def sweep_alignment(cfg: ExperimentConfig, inputs: Inputs, trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The gradient-alignment probe on the base and every trial checkpoint (one JSON each, cached).

    Runs in a Ray task sized like one training worker, so on a GPU cluster it gets a GPU and the
    driver (often a CPU head node) never loads a model.
    """
    if not cfg.alignment.enabled or not cfg.sweep.fixed_budgets():
        return []
    import ray

    out = output_dir(cfg) / "alignment"
    todo = [("base", inputs.model_path)] + [(f"budget_{t['frame_budget']}", t["checkpoint"]) for t in trials]
    resources = (
        {"num_gpus": 1, "num_cpus": cfg.train.cpus_per_worker}
        if cfg.train.use_gpu
        else {"num_cpus": cfg.train.cpus_per_worker}
    )
    probe = ray.remote(**resources)(_probe_one)
    pending = {
        label: probe.remote(cfg.model_dump(mode="json"), inputs.data_root, label, path, str(out))
        for label, path in todo
        if not (out / f"alignment-{label}.json").exists()
    }
    results = []
    for label, _ in todo:
        path = out / f"alignment-{label}.json"
        if label in pending:
            ray.get(pending[label])
        results.append(json.loads(path.read_text()))
    return results


def _probe_one(raw_cfg: dict[str, Any], data_root: str, label: str, model_path: str, out_dir: str) -> str:
    cfg = from_dict(raw_cfg)
    settings = AlignmentSettings(
        budgets=tuple(cfg.sweep.fixed_budgets()),
        batches=cfg.alignment.batches,
        batch_size=cfg.alignment.batch_size,
        manifest=cfg.alignment.manifest,
        seed=cfg.seed,
        decode_timeout_s=cfg.data.decode_timeout_s,
        step_size=cfg.train.lr,
    )
    result = run_alignment(
        model_path,
        data_root,
        settings,
        family=cfg.model.family,
        contract=cfg.sampling,
        device="cuda" if cfg.train.use_gpu else "cpu",
        label=label,
    )
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return str(write_alignment(result, Path(out_dir) / f"alignment-{label}.json"))


def sweep_attention(cfg: ExperimentConfig, inputs: Inputs, trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The attention probe on the base and every trial checkpoint (one JSON each, cached; Ray tasks
    sized like a training worker). Skipped, with a note, when the family has no token-to-pixel map
    or the held-out rows carry no target boxes (and attention.boxes is unset)."""

    att = cfg.attention
    if not att.enabled:
        return []
    if cfg.model.family not in SUPPORTED_FAMILIES:
        print(
            f"[sweep] attention probe skipped: family {cfg.model.family} not in {list(SUPPORTED_FAMILIES)}", flush=True
        )
        return []
    manifests = [m for m in (att.image_manifest, att.video_manifest) if m]
    if not att.boxes and not any(
        TARGET_BOXES in r
        for m in manifests
        if Path(inputs.data_root, m).exists()
        for r in json.loads(Path(inputs.data_root, m).read_text())[:1]
    ):
        print("[sweep] attention probe skipped: held-out rows have no target_boxes (set attention.boxes)", flush=True)
        return []
    import ray

    out = output_dir(cfg) / "attention"
    todo = [("base", inputs.model_path)] + [(f"budget_{t['frame_budget']}", t["checkpoint"]) for t in trials]
    resources = (
        {"num_gpus": 1, "num_cpus": cfg.train.cpus_per_worker}
        if cfg.train.use_gpu
        else {"num_cpus": cfg.train.cpus_per_worker}
    )
    probe = ray.remote(**resources)(_attend_one)
    pending = {
        label: probe.remote(cfg.model_dump(mode="json"), inputs.data_root, label, path, str(out))
        for label, path in todo
        if not (out / f"attention-{label}.json").exists()
    }
    results = []
    for label, _ in todo:
        if label in pending:
            ray.get(pending[label])
        results.append(json.loads((out / f"attention-{label}.json").read_text()))
    return results


def _attend_one(raw_cfg: dict[str, Any], data_root: str, label: str, model_path: str, out_dir: str) -> str:
    cfg = from_dict(raw_cfg)
    att, fixed = cfg.attention, cfg.sweep.fixed_budgets()
    settings = AttentionSettings(
        budgets=(cfg.eval.frame_budget or (max(fixed) if fixed else 8),),
        items=att.items,
        layer_groups=att.layer_groups,
        image_manifest=att.image_manifest,
        video_manifest=att.video_manifest,
        boxes=att.boxes,
        decode_timeout_s=cfg.data.decode_timeout_s,
    )
    result = run_attention(
        model_path,
        data_root,
        settings,
        family=cfg.model.family,
        contract=cfg.sampling,
        device="cuda" if cfg.train.use_gpu else "cpu",
        label=label,
    )
    return str(write_attention(result, Path(out_dir) / f"attention-{label}.json"))
