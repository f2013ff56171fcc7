# ray job submit --working-dir . --runtime-env clusters/runtime_env.yaml -- python jobs/evaluate.py --config jobs/configs/demo.yaml --model /path/to/checkpoint
"""`videosft evaluate` as a job: one checkpoint (default: model.path) on the configured benchmarks."""

import _args
from videosft.verbs import evaluate


def main() -> None:
    args = _args.parse("evaluate")
    scores = evaluate(**_args.kwargs(args))
    print({name: s.get("overall") for name, s in scores.items()})


if __name__ == "__main__":
    main()
