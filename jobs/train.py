# ray job submit --working-dir . --runtime-env clusters/runtime_env.yaml -- python jobs/train.py --config jobs/configs/demo.yaml --frame-budget 8
"""`videosft train` as a job: one Video-SFT run at one frame budget; prints the consolidated checkpoint."""

import _args
from videosft.verbs import train


def main() -> None:
    args = _args.parse("train")
    trained = train(**_args.kwargs(args))
    print(f"checkpoint: {trained.checkpoint} (rows {trained.rows}, rejected {trained.rejected})")


if __name__ == "__main__":
    main()
