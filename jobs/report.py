# ray job submit --working-dir . -- python jobs/report.py --run-dir /mnt/shared/runs/qwen2_5_vl_7b
"""Re-render a finished run's trade-off report (Markdown + PNG) from its results.json."""

import argparse

import _args  # noqa: F401  (puts platform/ on sys.path when run from a checkout)

from videosft.analysis.tradeoff import report_from_run_dir


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run-dir", required=True)
    print(f"report: {report_from_run_dir(p.parse_args().run_dir)}")


if __name__ == "__main__":
    main()
