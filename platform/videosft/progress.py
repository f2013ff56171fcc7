"""Stage progress as small JSON files under `<output_dir>/progress/`, for the console to show.

The places that know a stage's done/total run in different processes: the frame-cache loop on
the driver, a Tune trial's Ray Train controller (steps, from the metrics the workers report) and
the evaluation loop inside that trial (rows scored). A file per stage, rewritten whole (write +
rename), is the one channel all of them share with the driver on one machine or a shared mount,
costs nothing when nobody reads it, and needs no actor. Writing never fails a stage.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

PROGRESS_DIR = "progress"
# Set by the console to the dir it shows: stages whose output_dir is elsewhere (the demo's cached
# stage-1 base, a study's sweeps) report there too. Ray workers on this machine inherit it.
PROGRESS_ENV = "VIDEOSFT_PROGRESS_DIR"


def progress_dir(output_dir: str | os.PathLike[str]) -> Path:
    return Path(output_dir) / PROGRESS_DIR


def _slug(stage: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stage).strip("_") or "stage"


def write_progress(
    output_dir: str | os.PathLike[str] | None, stage: str, done: int, total: int | None, unit: str = "rows"
) -> None:
    """Record that `stage` has `done` of `total` units under `output_dir` (and the console's dir,
    PROGRESS_ENV); best-effort (an OSError is ignored)."""
    record = {
        "stage": stage,
        "done": int(done),
        "total": None if total is None else int(total),
        "unit": unit,
        "t": time.time(),
    }
    roots = (
        [] if output_dir is None or "://" in str(output_dir) else [progress_dir(output_dir)]
    )  # object storage: nobody polls it
    if os.environ.get(PROGRESS_ENV):
        roots.append(Path(os.environ[PROGRESS_ENV]))
    for root in dict.fromkeys(Path(r).resolve() for r in roots):
        path = root / f"{_slug(stage)}.json"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(record))
            tmp.replace(path)
        except OSError:
            pass


def read_progress(output_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every stage's latest record, oldest first (a half-written or foreign file is skipped)."""
    records = []
    root = progress_dir(output_dir)
    if not root.is_dir():
        return []
    for path in root.glob("*.json"):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and {"stage", "done", "total", "unit", "t"} <= set(rec):
            records.append(rec)
    return sorted(records, key=lambda r: r["t"])


def clear_progress(output_dir: str | os.PathLike[str]) -> None:
    """Forget the records of an earlier run in the same output_dir (the console starts afresh)."""
    root = progress_dir(output_dir)
    for path in root.glob("*.json") if root.is_dir() else []:
        path.unlink(missing_ok=True)


def train_progress_callback(output_dir: str | os.PathLike[str], stage: str, total_steps: int) -> Any:
    """A Ray Train callback (runs in the Train controller) that records the reported step.

    The workers report metrics (with "step") every `train.log_every` steps; the controller calls
    `after_report` with every worker's report, so the step shown is what all ranks reached.
    """
    from ray.train import UserCallback

    class _StepProgress(UserCallback):
        def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
            steps = [m.get("step") for m in metrics if isinstance(m, dict) and m.get("step") is not None]
            if steps:
                write_progress(output_dir, stage, min(int(s) for s in steps), total_steps, "steps")

    return _StepProgress()
