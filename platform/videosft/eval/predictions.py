"""Per-benchmark prediction files that survive a killed evaluation: append as you go, resume, compact.

``<bench>.predictions.jsonl`` holds one JSON object per finished sample. The runner appends each
block of predictions the moment the engine pool returns it (flushed, so a killed process leaves
every finished row on disk), and a re-run reads the file back and sends only the missing samples to
the engine. A row counts as finished for a run when it has no error and its run key (checkpoint path
and a fingerprint of its files, sampling-contract id, frame budget, max_new_tokens: everything that
changes the model's answer) equals the current run's; rows from another run, rows with errors
(decode failures and timeouts are retried) and unparseable lines (the truncated last line of a
killed write) are dropped and recomputed. At the end the file is rewritten in benchmark order, one
row per sample, each row then also carrying its benchmark judge's verdict: ``extracted`` (the answer
the fixed rules read from the raw ``prediction``, null when none) and ``correct``. Appended rows
have no verdict yet; a resumed row's old verdict is replaced by a fresh one at scoring.

Pure stdlib: no Ray, no torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

from videosft import schema as S

RUN_KEY_FIELDS = (
    "checkpoint",
    "checkpoint_fingerprint",
    "contract_id",
    "frame_budget",
    "max_new_tokens",
    "protocol",
    "protocol_version",
    "options_id",
)
_WEIGHT_FILES = (".safetensors", ".bin", ".json")
ROW_FIELDS = (S.ID, S.ANSWER, S.PREDICTION, S.ERROR) + RUN_KEY_FIELDS
# Written only when the row has been judged; the last two only when the benchmark's judge gives them.
VERDICT_FIELDS = (S.EXTRACTED, S.CORRECT, "needs_judge", "lenient")


def predictions_path(out_dir: str | Path, bench: str) -> Path:
    return Path(out_dir) / f"{bench}.predictions.jsonl"


def checkpoint_fingerprint(checkpoint: str) -> str:
    """Size + mtime digest of a local checkpoint directory's weight and config files ("" for URIs).

    A trial retrained into the same directory gets new files, so its old predictions stop matching.
    """
    p = Path(checkpoint)
    if "://" in str(checkpoint) or not p.is_dir():
        return ""
    h = hashlib.sha1()
    for f in sorted(p.iterdir()):
        if f.is_file() and f.name.endswith(_WEIGHT_FILES):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def run_key(
    checkpoint: str,
    contract_id: str,
    frame_budget: int | None,
    max_new_tokens: int,
    protocol: str = "videosft",
    protocol_version: str = "1",
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What identifies one benchmark's evaluation run; an existing local path is made absolute.

    The protocol and the loader options are part of it: either changes the prompts, hence the predictions.
    """
    path = str(checkpoint)
    if "://" not in path and os.path.exists(path):
        path = os.path.abspath(path)
    return {
        "checkpoint": path,
        "checkpoint_fingerprint": checkpoint_fingerprint(path),
        "contract_id": str(contract_id),
        "frame_budget": frame_budget,
        "max_new_tokens": int(max_new_tokens),
        "protocol": str(protocol),
        "protocol_version": str(protocol_version),
        "options_id": options_id(options or {}),
    }


def options_id(options: Mapping[str, Any]) -> str:
    """Short digest of a benchmark's loader options ("" when none are set)."""
    if not options:
        return ""
    blob = json.dumps(options, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def read_rows(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """(rows, bad line count) of a predictions file; a missing file is empty.

    A line that is not a complete JSON object (a write cut off by a kill) is skipped, not fatal.
    """
    p = Path(path)
    if not p.exists():
        return [], 0
    rows, bad = [], 0
    with p.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if isinstance(row, dict) and S.ID in row:
                rows.append(row)
            else:
                bad += 1
    return rows, bad


def is_finished(row: Mapping[str, Any], key: Mapping[str, Any]) -> bool:
    return not row.get(S.ERROR) and all(row.get(k) == v for k, v in key.items())


def resume(path: str | Path, key: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """Finished rows by sample id (last one wins) and counts of what was dropped.

    The file is rewritten to hold exactly the kept rows, so appends start on a clean line (a
    truncated last line would otherwise be glued to the next row).
    """
    rows, bad = read_rows(path)
    kept: dict[str, dict[str, Any]] = {}
    for row in rows:
        if is_finished(row, key):
            kept[str(row[S.ID])] = row
    stats = {"kept": len(kept), "bad_lines": bad, "dropped": len(rows) - len(kept)}
    if rows or bad:
        write_rows(path, kept.values())
    return kept, stats


def record(item_id: str, answer: Any, prediction: str, error: str, key: Mapping[str, Any]) -> dict[str, Any]:
    """One predictions-file row: the sample id, reference, raw output, error and the run key."""
    return {S.ID: str(item_id), S.ANSWER: answer, S.PREDICTION: str(prediction), S.ERROR: str(error), **key}


def with_verdict(row: Mapping[str, Any], verdict: Mapping[str, Any]) -> dict[str, Any]:
    """A predictions-file row plus its judge's verdict (``extracted``: str | None, ``correct``: bool,
    and ``needs_judge`` / ``lenient`` where the benchmark's judge gives them)."""
    out = {**row, S.EXTRACTED: verdict[S.EXTRACTED], S.CORRECT: bool(verdict[S.CORRECT])}
    out.update({k: verdict[k] for k in VERDICT_FIELDS[2:] if k in verdict})
    return out


def _line(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k in ROW_FIELDS:
        out[k] = row.get(k)
        if k == S.PREDICTION:  # the verdict sits beside the raw output it was read from
            out.update({v: row[v] for v in VERDICT_FIELDS if v in row})
    return out


def append_rows(fh: TextIO, rows: Iterable[Mapping[str, Any]]) -> None:
    """Append rows to an open predictions file and flush: a kill after this loses none of them."""
    for row in rows:
        fh.write(json.dumps(_line(row)) + "\n")
    fh.flush()


def write_rows(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Replace the file atomically (write a sibling, then rename): readers never see half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as fh:
        append_rows(fh, rows)
    os.replace(tmp, p)
