# ray job submit --working-dir . --runtime-env clusters/runtime_env.yaml -- python jobs/sweep.py --config jobs/configs/demo.yaml
"""`videosft sweep` as a job: train -> consolidate -> evaluate per budget, then the trade-off report."""

import _args
from videosft.verbs import sweep


def main() -> None:
    args = _args.parse("sweep")
    print(f"report: {sweep(**_args.kwargs(args))}")


if __name__ == "__main__":
    main()
