# ray job submit --working-dir . --runtime-env clusters/runtime_env.yaml -- python jobs/train.py --config jobs/configs/demo.yaml --frame-budget 8
"""One Video-SFT run at one frame budget; prints the consolidated checkpoint path."""

import argparse

import _args  # noqa: F401  (puts platform/ on sys.path when run from a checkout)

from videosft.config import load_config
from videosft.train.run import train_at_budget
from videosft.tune.sweep import ensure_ray
from videosft.workspace import resolve_models, anchored, output_dir, prepare_inputs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True)
    p.add_argument("--frame-budget", type=int, required=True)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    cfg = resolve_models(anchored(load_config(args.config, args.overrides)))  # fails before any cluster work
    ensure_ray()
    inputs = prepare_inputs(cfg)
    run_dir = output_dir(cfg) / "runs" / f"budget_{args.frame_budget}"
    outcome, stats = train_at_budget(cfg, inputs, args.frame_budget, run_dir)
    print(f"checkpoint: {outcome.checkpoint_path} (rows {stats.total}, rejected {stats.rejected})")


if __name__ == "__main__":
    main()
