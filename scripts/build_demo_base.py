"""Build the demo's shipped base: `videosft demo` starts Video-SFT from it (study/base_model.py).

    python scripts/build_demo_base.py                 # stage 1 in one process (minutes), into the package
    python scripts/build_demo_base.py --trainer ray   # the study's Ray Train stage 1 (hours on 2 shared cores)

Writes platform/videosft/assets/demo_base/ (safetensors weights, config, tokenizer, processor and
base.json: the stage-1 recipe's digest, the held-out image accuracy against chance, every file's
sha256). Stage 1's own outputs (synthetic stills, random init, evaluation) stay in --work-dir.
Same command, same machine: same weights (seeded, one torch thread).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from videosft.study.base_model import DEMO_BASE, SHIPPED, build_base, recipe_digest, verify


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(SHIPPED), help="where the base goes (default: the package's assets)")
    p.add_argument("--work-dir", default=None, help="stage 1's outputs (default: a temporary directory)")
    p.add_argument("--trainer", choices=("local", "ray"), default="local")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="videosft-demo-base-")).resolve()
    staged = work / "base"
    if staged.exists():
        shutil.rmtree(staged)
    info = build_base(DEMO_BASE, staged, work_dir=work / "stage1", trainer=args.trainer)
    if not verify(staged, recipe_digest(DEMO_BASE, args.trainer)):
        print(f"error: {staged} does not verify", file=sys.stderr)
        return 1
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(staged, out)
    size = sum(f.stat().st_size for f in out.iterdir())
    print(
        json.dumps(
            {
                "out": str(out),
                "bytes": size,
                "digest": info["digest"],
                "accuracy": info["accuracy"],
                "chance": info["chance"],
                "train_wall_s": info["train_wall_s"],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
