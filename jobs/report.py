# ray job submit --working-dir . -- python jobs/report.py /mnt/shared/runs/qwen2_5_vl_7b
"""`videosft report` as a job: re-render a finished run's trade-off report from its results.json."""

import _args
from videosft.verbs import report


def main() -> None:
    args = _args.parse("report")
    print(f"report: {report(**_args.kwargs(args))}")


if __name__ == "__main__":
    main()
