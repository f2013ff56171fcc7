# ray job submit --working-dir . --runtime-env clusters/runtime_env.yaml -- python jobs/sweep.py --config jobs/configs/demo.yaml
"""Frame-budget sweep: train -> consolidate -> evaluate per budget, then the trade-off report."""

import _args  # noqa: F401  (puts platform/ on sys.path when run from a checkout)

from videosft.config import load_config
from videosft.tune.sweep import run_sweep


def main() -> None:
    args = _args.parse(__doc__)
    cfg = load_config(args.config, args.overrides)  # fails here, before any cluster work
    report = run_sweep(cfg)
    print(f"report: {report}")


if __name__ == "__main__":
    main()
