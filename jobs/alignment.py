# ray job submit --working-dir . --runtime-env clusters/runtime_env.yaml -- python jobs/alignment.py --config jobs/configs/demo.yaml --model /path/to/base --model /path/to/trial_checkpoint
"""Gradient-alignment probe (image vs video loss gradients per frame budget) of one or more
checkpoints, one Ray task each (a GPU when train.use_gpu); writes JSON per checkpoint, alignment.md
and alignment.png under <output_dir>/alignment. Without --model it probes the base model."""

import argparse
import dataclasses
from pathlib import Path

import _args  # noqa: F401  (puts platform/ on sys.path when run from a checkout)
import ray

from videosft.analysis.alignment import AlignmentSettings, checkpoint_labels, write_alignment_report
from videosft.config import load_config
from videosft.tune.sweep import ensure_ray
from videosft.workspace import anchored, output_dir, prepare_inputs


@ray.remote
def probe(model_path: str, data_root: str, settings: dict, family: str, contract: dict, device: str, label: str) -> dict:
    from videosft.analysis.alignment import AlignmentSettings, run_alignment
    from videosft.data.sampling import SamplingContract

    return run_alignment(model_path, data_root, AlignmentSettings(**settings), family=family,
                         contract=SamplingContract.model_validate(contract), device=device, label=label)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True)
    p.add_argument("--model", action="append", default=[], help="checkpoint dir (repeat); default: the base model")
    p.add_argument("--budgets", default=None, help="comma-separated T (default: sweep.frame_budgets)")
    p.add_argument("--batches", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    cfg = anchored(load_config(args.config, args.overrides))
    budgets = [int(b) for b in args.budgets.split(",")] if args.budgets else cfg.sweep.fixed_budgets()
    settings = AlignmentSettings(budgets=tuple(budgets), batches=args.batches, batch_size=args.batch_size)
    ensure_ray()
    inputs = prepare_inputs(cfg)
    models = args.model or [inputs.model_path]
    gpu = cfg.train.use_gpu
    refs = [probe.options(num_cpus=1, num_gpus=1 if gpu else 0).remote(
                str(Path(m).resolve()), inputs.data_root, dataclasses.asdict(settings),
                cfg.model.family, cfg.sampling.model_dump(), "cuda" if gpu else "cpu", label)
            for m, label in zip(models, checkpoint_labels(models))]
    paths = write_alignment_report(ray.get(refs), output_dir(cfg) / "alignment")
    print(paths["markdown"].read_text())
    print(f"alignment: {', '.join(str(p) for p in paths.values())}")


if __name__ == "__main__":
    main()
