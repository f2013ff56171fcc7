# ray job submit --working-dir . --runtime-env clusters/runtime_env.yaml -- python jobs/curate.py --data-root s3://bucket/LLaVA-Video-178K --out /mnt/shared/curated --decodable
"""`videosft curate` as a job: a seeded, stratified LLaVA-Video-178K subset (curated.json) and its
statistics table, from the same flags (or a --settings YAML) and the same library function."""

from pathlib import Path

import _args
from videosft.verbs import curate


def main() -> None:
    args = _args.parse("curate")
    result = curate(**_args.kwargs(args))  # settings validated in kwargs(), before any listing or Ray work
    print(Path(result["stats_md"]).read_text())
    print(f"manifest: {result['manifest']}\nstatistics: {result['stats_json']}")


if __name__ == "__main__":
    main()
