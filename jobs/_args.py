"""What every job shares: `platform/` on sys.path, and the CLI's own arguments for its verb.

A job is `videosft <verb>` submitted to a cluster: `parse(verb)` parses the job's command line
with that verb's CLI subparser (same flags, same defaults) and `kwargs(args)` builds the keyword
arguments exactly as the CLI does (cli.verb_kwargs), so both call videosft.verbs' function the
same way. Jobs print plainly: Ray's job logs are where their output is read.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

# Jobs run from a checkout (`ray job submit --working-dir .`): make `platform/` importable without
# requiring an install, while an installed videosft still wins if present.
_SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "platform")
if _SRC not in sys.path:
    sys.path.append(_SRC)

from videosft.cli import build_parser, verb_kwargs  # noqa: E402  (after the sys.path fix above)


def parse(verb: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The job's command line, parsed as `videosft <verb> ...` would parse it."""
    return build_parser().parse_args([verb, *(sys.argv[1:] if argv is None else argv)])


def kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The verb function's keyword arguments (a bad config fails here, before any cluster work)."""
    return verb_kwargs(args)
