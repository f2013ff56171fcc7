"""`curate` at the study's size: 20,000 videos drawn from annotation files of LLaVA-Video-178K scale.

Writes two subsets in the published layout with `--videos` videos each (caption: 1 row per video,
open-ended: 5, multiple-choice: 2, about the real files' ratio) and one-byte stand-in video files
under a user-extracted `videos_root` (no probe: this measures the annotation passes and the draw,
not decoding), then times `curate` and reports its peak RSS (VmHWM) and the annotation MB it read.

    python benchmarks/curate_scale.py --videos 60000 --num-videos 20000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from videosft.data.curate import CurateConfig, curate

_TEXT = "the person walks to the table and picks up a red cup then leaves the room slowly " * 3


def _write(root: Path, videos: int) -> int:
    written = 0
    for subset in ("0_30_s_academic_v0_1", "30_60_s_youtube_v0_1"):
        folder = root / subset
        folder.mkdir(parents=True)
        stem = subset.removesuffix("_v0_1")
        files = {
            "cap": (f"{subset}_cap_processed.json", 1),
            "oe": (f"{stem}_oe_v0_1_qa_processed.json", 5),
            "mc": (f"{stem}_mc_v0_1_qa_processed.json", 2),
        }
        media = root / "videos" / subset
        media.mkdir(parents=True)
        for kind, (name, per_video) in files.items():
            with (folder / name).open("w") as out:
                out.write("[")
                for v in range(videos):
                    for q in range(per_video):
                        row = {
                            "id": f"{subset}_{v}",
                            "conversations": [
                                {"from": "human", "value": f"<image>\nQuestion {q} about {kind}?"},
                                {"from": "gpt", "value": _TEXT},
                            ],
                            "data_source": subset,
                            "video": f"v/{v}.mp4",
                        }
                        out.write(("," if v or q else "") + json.dumps(row))
                out.write("]")
            written += (folder / name).stat().st_size
        (media / "v").mkdir()
        for v in range(videos):
            (media / "v" / f"{v}.mp4").write_bytes(b"x")
    return written


def _hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--videos", type=int, default=60_000, help="videos per subset")
    p.add_argument("--num-videos", type=int, default=20_000)
    args = p.parse_args()
    print(f"load: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        size = _write(root / "data", args.videos)
        t1 = time.perf_counter()
        base, c1 = _hwm_mb(), time.process_time()
        cfg = CurateConfig(
            data_root=str(root / "data"),
            out_dir=str(root / "out"),
            num_videos=args.num_videos,
            videos_root=str(root / "data" / "videos" / "{subset}"),
        )
        result = curate(cfg)
        t2, c2 = time.perf_counter(), time.process_time()
        stats = result["stats"]
        print(f"annotations: {size / 2**20:.0f} MB, {2 * args.videos * 8} rows (written in {t1 - t0:.1f} s)")
        print(
            f"curate: {stats['videos']} videos in {t2 - t1:.1f} s wall, {c2 - c1:.1f} s CPU "
            f"({size / 2**20 / (c2 - c1):.1f} MB of annotation per CPU second over both passes); "
            f"peak RSS {_hwm_mb():.0f} MB (before curate {base:.0f} MB)"
        )
        print(f"by format: {stats['by_format']}; duplicates skipped: {stats['draw']['duplicates']}")


if __name__ == "__main__":
    main()
