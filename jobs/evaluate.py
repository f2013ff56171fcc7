# ray job submit --working-dir . --runtime-env clusters/runtime_env.yaml -- python jobs/evaluate.py --config jobs/configs/demo.yaml model.path=/path/to/checkpoint
"""Evaluate one checkpoint (model.path) on the configured benchmarks; writes predictions + scores."""

from pathlib import Path

import _args  # noqa: F401  (puts platform/ on sys.path when run from a checkout)

from videosft.config import load_config
from videosft.eval.runner import evaluate_model
from videosft.tune.sweep import ensure_ray
from videosft.workspace import anchored, prepare_inputs, resolve_models


def main() -> None:
    args = _args.parse(__doc__)
    cfg = resolve_models(anchored(load_config(args.config, args.overrides)))  # fails before any cluster work
    ensure_ray()
    inputs = prepare_inputs(cfg)
    out = Path(cfg.output_dir) / "evaluate"
    scores = evaluate_model(cfg, inputs.model_path, cfg.eval.frame_budget, out, inputs.data_root)
    print({name: s.get("overall") for name, s in scores.items()})


if __name__ == "__main__":
    main()
