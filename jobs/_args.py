"""Shared argument parsing for the job entry points: --config PATH plus dotted overrides."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

# Jobs run from a checkout (`ray job submit --working-dir .`): make `platform/` importable without
# requiring an install, while an installed videosft still wins if present.
_SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "platform")
if _SRC not in sys.path:
    sys.path.append(_SRC)


def parse(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", required=True, help="experiment YAML, e.g. jobs/configs/demo.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_steps=50")
    return p.parse_args(argv)
