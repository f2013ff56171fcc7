"""Ray Tune sweep over frame budgets: one trial = decode -> train -> consolidate -> evaluate.

Under Ray 2.60 Train v2, Tune runs a *function trainable* that builds and fits a TorchTrainer.
The trial itself reserves a token CPU fraction (Tune refuses an empty bundle; its Train workers
and Ray Data stages hold the real resources), so a small machine is not starved. The base model is evaluated once per evaluation budget and shared.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from videosft.config import ExperimentConfig, from_dict
from videosft.workspace import Inputs, anchored, output_dir, prepare_inputs


TRIAL_DRIVER_CPU = 0.01


def ensure_ray() -> None:
    """Same code locally, under `ray job submit`, and in a RayJob."""
    import ray

    if not ray.is_initialized():
        ray.init(runtime_env={"env_vars": _worker_env()}, log_to_driver=True)


def _worker_env() -> dict[str, str]:
    env = {"TOKENIZERS_PARALLELISM": "false"}
    if "DS_ACCELERATOR" in os.environ:
        env["DS_ACCELERATOR"] = os.environ["DS_ACCELERATOR"]
    return env


def run_trial(cfg: ExperimentConfig, inputs: Inputs, budget: int) -> dict[str, Any]:
    """Train at `budget` frames and evaluate the result; returns the trial summary (also on disk)."""
    from videosft.eval.runner import evaluate_model
    from videosft.train.run import train_at_budget

    trial_dir = output_dir(cfg) / "trials" / f"budget_{budget}"
    outcome, stats = train_at_budget(cfg, inputs, budget, trial_dir)
    scores = evaluate_model(cfg, outcome.checkpoint_path, budget, trial_dir / "eval", inputs.data_root)
    summary = {
        "frame_budget": budget,
        "checkpoint": outcome.checkpoint_path,
        "train": {k: v for k, v in outcome.metrics.items() if isinstance(v, (int, float))},
        "scores": scores,
        "data": {"rows": stats.total, "rejected": stats.rejected, "rejects_path": stats.rejects_path},
        "contract_id": cfg.sampling.contract_id(),
    }
    (trial_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _trainable(params: dict[str, Any]) -> None:
    from ray import tune

    cfg = from_dict(params["experiment"])
    inputs = Inputs(**params["inputs"])
    summary = run_trial(cfg, inputs, int(params["frame_budget"]))
    flat = {"frame_budget": summary["frame_budget"]}
    for name, scores in summary["scores"].items():
        flat[f"{name}/overall"] = scores.get("overall")
    with tempfile.TemporaryDirectory() as tmp:  # a tiny checkpoint so Result.metrics is populated
        Path(tmp, "summary.json").write_text(json.dumps(summary))
        tune.report(flat, checkpoint=tune.Checkpoint.from_directory(tmp))


def evaluate_base(cfg: ExperimentConfig, inputs: Inputs) -> dict[int | str, dict[str, Any]]:
    """Evaluate the untuned base once per evaluation budget the sweep needs (cached on disk).

    Image benchmarks do not depend on the frame budget: they run once and are shared by every
    budget; only video benchmarks are re-run per budget.
    """
    from videosft.eval.benchmarks import get_benchmark
    from videosft.eval.runner import evaluate_model

    budgets = [cfg.eval.frame_budget] if cfg.eval.frame_budget else list(cfg.sweep.frame_budgets)
    video = [b for b in cfg.eval.benchmarks if get_benchmark(b).modality == "video"]
    out: dict[int | str, dict[str, Any]] = {}
    shared_image: dict[str, Any] | None = None
    for b in budgets:
        path = output_dir(cfg) / "base_eval" / f"budget_{b}"
        done = path / "scores.json"
        if done.exists():
            out[b] = json.loads(done.read_text())
        else:
            names = None if shared_image is None else video
            out[b] = {**(shared_image or {}), **evaluate_model(cfg, inputs.model_path, b, path, inputs.data_root, names)}
            done.write_text(json.dumps(out[b], indent=2))
        shared_image = {k: v for k, v in out[b].items() if k not in video}
    return out


def run_sweep(cfg: ExperimentConfig) -> Path:
    """Prepare inputs, evaluate the base, run one Tune trial per frame budget, write the report."""
    from ray import tune

    from videosft.analysis.tradeoff import write_report

    ensure_ray()
    cfg = anchored(cfg)
    inputs = prepare_inputs(cfg)
    from videosft.train.run import prepare_frame_cache

    prepare_frame_cache(cfg, inputs)  # decode once, before trials share it
    base = evaluate_base(cfg, inputs)
    trainable = tune.with_resources(_trainable, {"CPU": TRIAL_DRIVER_CPU})
    tuner = tune.Tuner(
        trainable,
        param_space={
            "experiment": cfg.model_dump(mode="json"),
            "inputs": {"model_path": inputs.model_path, "data_root": inputs.data_root},
            "frame_budget": tune.grid_search(list(cfg.sweep.frame_budgets)),
        },
        tune_config=tune.TuneConfig(max_concurrent_trials=cfg.sweep.max_concurrent_trials),
        run_config=tune.RunConfig(name="sweep", storage_path=str(output_dir(cfg) / "tune")),
    )
    results = tuner.fit()
    errors = [str(r.error) for r in results if r.error]
    if errors:
        raise RuntimeError(f"{len(errors)} sweep trial(s) failed; first: {errors[0]}")
    trials = [json.loads((output_dir(cfg) / "trials" / f"budget_{b}" / "summary.json").read_text())
              for b in cfg.sweep.frame_budgets]
    return write_report(cfg, base, trials, output_dir(cfg))
