"""Resumable training state: DeepSpeed shards + the data cursor, and the stream that honours it.

A mid-run checkpoint is one directory in the run's storage that every rank writes into (Ray Train
v2 merges the ranks' report directories into one):
  deepspeed/<tag>/...   each rank's ZeRO shard (`engine.save_checkpoint`), `deepspeed/latest`
  videosft_cursor.json  (rank 0) the global step, the epoch and which samples it consumed, and
                        the metric history so far

**The data cursor.** Every training row carries a stable SAMPLE_INDEX, its position in the
training row list `run.py` builds before anything is decoded (manifest order after the image
replay mix). The cursor stores, for the epoch in progress, the set of sample indices the ranks
*trained on* up to the checkpointed step (as sorted half-open ranges, so a prefix-like set costs a
few numbers), gathered from every rank. On restart the stream for the rest of that epoch is
built from the rows *not* in the set, before decode and encode, so consumed videos are never
decoded again (DESIGN: "resuming by skipping batches re-decodes every consumed video").

Why an index set and not "skip the first k rows of a deterministic order": Ray Train splits the
stream across ranks with `streaming_split`, which hands blocks to whichever rank asks first, so
which rows a rank saw is not a function of k; pinning a deterministic order and rank assignment
would cost the split's load balancing and still break whenever Ray re-packs blocks. The set of
indices that actually went through the model is exact whatever the layout, and the filter that
applies it runs on plain manifest rows (or on cache keys), where it costs nothing.

**Who applies it.** Ray Train v2 calls a dataset *factory* (`datasets={"train_resume": f}`) every
time it starts a worker group, in the controller, before any worker runs. `ResumableStream` is
that factory: it reads the cursor of the latest checkpoint the controller registered (from the run
directory's checkpoint snapshot, via `ray.train.Result.from_path`), which is the checkpoint the
restarted workers get from `ray.train.get_checkpoint()`. The workers check the stream against
their own cursor and fail loudly (another restart) rather than train on a stream out of step.

Pure except where it touches an engine (duck-typed `save_checkpoint`/`load_checkpoint`) or Ray
(`latest_cursor`, imported lazily).
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

SAMPLE_INDEX = "sample_index"  # int64: a row's stable position in the run's training row list
CURSOR_FILE = "videosft_cursor.json"
DS_DIR = "deepspeed"
CURSOR_VERSION = 1


# --------------------------------------------------------------------------- index ranges
def to_ranges(indices: Iterable[int]) -> list[list[int]]:
    """Sorted, merged half-open ranges [[a, b), ...] covering exactly `indices` (duplicates ok)."""
    out: list[list[int]] = []
    for i in sorted(set(int(x) for x in indices)):
        if out and out[-1][1] == i:
            out[-1][1] = i + 1
        else:
            out.append([i, i + 1])
    return out


def from_ranges(ranges: Sequence[Sequence[int]]) -> set[int]:
    """Inverse of `to_ranges`."""
    out: set[int] = set()
    for start, stop in ranges:
        if stop < start:
            raise ValueError(f"from_ranges: bad range [{start}, {stop})")
        out.update(range(int(start), int(stop)))
    return out


# --------------------------------------------------------------------------- the cursor
@dataclass(frozen=True)
class DataCursor:
    """Where training stood at a checkpoint: optimizer step, epoch, and what that epoch consumed.

    `consumed` holds sample indices of the epoch in progress (rows of earlier epochs are not
    needed to resume); `samples_per_rank` counts what each rank trained on in that epoch.
    """

    step: int
    epoch: int
    world_size: int
    consumed: tuple[tuple[int, int], ...] = ()
    samples_per_rank: tuple[int, ...] = ()
    history: tuple[dict[str, Any], ...] = field(default=(), compare=False)

    @property
    def tag(self) -> str:
        """The DeepSpeed checkpoint tag of this step (same on every rank)."""
        return f"step_{self.step:08d}"

    def consumed_set(self) -> set[int]:
        return from_ranges(self.consumed)

    def n_consumed(self) -> int:
        return sum(b - a for a, b in self.consumed)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": CURSOR_VERSION,
                "step": self.step,
                "epoch": self.epoch,
                "world_size": self.world_size,
                "consumed": [list(r) for r in self.consumed],
                "samples_per_rank": list(self.samples_per_rank),
                "history": list(self.history),
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> DataCursor:
        raw = json.loads(text)
        if raw.get("version") != CURSOR_VERSION:
            raise ValueError(f"data cursor version {raw.get('version')!r}, expected {CURSOR_VERSION}")
        return cls(
            step=int(raw["step"]),
            epoch=int(raw["epoch"]),
            world_size=int(raw["world_size"]),
            consumed=tuple(tuple(int(x) for x in r) for r in raw["consumed"]),
            samples_per_rank=tuple(int(n) for n in raw["samples_per_rank"]),
            history=tuple(raw.get("history", [])),
        )


def merge_cursor(
    step: int,
    epoch: int,
    per_rank: Sequence[Iterable[int]],
    *,
    base: DataCursor | None = None,
    history: Sequence[dict[str, Any]] = (),
) -> DataCursor:
    """The cursor after `step`: every rank's indices of this epoch (gathered) plus `base`'s.

    `base` is the cursor this attempt resumed from; when it is in the same epoch its consumed
    set and per-rank counts carry over, so a second failure after a resume still loses nothing.
    """
    lists = [[int(i) for i in rank] for rank in per_rank]
    same_epoch = base is not None and base.epoch == epoch
    everything = base.consumed_set() if same_epoch else set()
    for rank in lists:
        everything.update(rank)
    prior = list(base.samples_per_rank) if same_epoch and len(base.samples_per_rank) == len(lists) else [0] * len(lists)
    return DataCursor(
        step=int(step),
        epoch=int(epoch),
        world_size=len(lists),
        consumed=tuple(tuple(r) for r in to_ranges(everything)),
        samples_per_rank=tuple(p + len(rank) for p, rank in zip(prior, lists)),
        history=tuple(history),
    )


def remaining_rows(rows: Sequence[dict[str, Any]], cursor: DataCursor | None) -> list[dict[str, Any]]:
    """The rows of the epoch in progress that the cursor has not consumed (all when None)."""
    if cursor is None:
        return list(rows)
    done = cursor.consumed_set()
    return [r for r in rows if int(r[SAMPLE_INDEX]) not in done]


def with_sample_index(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of `rows` numbered 0..n-1 in order: the stable key the cursor records."""
    return [{**r, SAMPLE_INDEX: i} for i, r in enumerate(rows)]


# --------------------------------------------------------------------------- save / load
def save_training_state(engine: Any, directory: str, cursor: DataCursor, rank: int) -> None:
    """Write this rank's part of a resumable checkpoint into `directory` (collective: all ranks).

    Every rank writes its own ZeRO shard files under deepspeed/<tag>/; rank 0 also writes the
    cursor. The names never collide, so Ray Train can merge the ranks' directories.
    """
    engine.save_checkpoint(os.path.join(directory, DS_DIR), tag=cursor.tag)
    if rank == 0:
        with open(os.path.join(directory, CURSOR_FILE), "w") as fh:
            fh.write(cursor.to_json())


def read_cursor(directory: str) -> DataCursor | None:
    """The cursor of a resumable checkpoint directory; None for other checkpoints (the final HF one)."""
    path = os.path.join(directory, CURSOR_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return DataCursor.from_json(fh.read())


def load_training_state(engine: Any, directory: str, world_size: int) -> DataCursor | None:
    """Load the engine (weights, optimizer, scheduler, step) from `directory`; return its cursor.

    Returns None, loading nothing, when the directory is not a resumable checkpoint. A cursor
    written by a different number of ranks is refused: ZeRO shards are per data-parallel rank.
    """
    cursor = read_cursor(directory)
    if cursor is None:
        return None
    if cursor.world_size != world_size:
        raise RuntimeError(
            f"checkpoint at step {cursor.step} was written by {cursor.world_size} ranks, "
            f"this run has {world_size}; ZeRO shards cannot be re-split on load"
        )
    path, _ = engine.load_checkpoint(os.path.join(directory, DS_DIR), tag=cursor.tag)
    if path is None:
        raise RuntimeError(f"DeepSpeed found no checkpoint {cursor.tag} under {directory}/{DS_DIR}")
    if int(engine.global_steps) != cursor.step:
        raise RuntimeError(f"loaded DeepSpeed state is at step {engine.global_steps}, cursor says {cursor.step}")
    return cursor


# --------------------------------------------------------------------------- controller side
def latest_cursor(run_path: str) -> DataCursor | None:
    """The cursor of the latest checkpoint Ray Train registered for the run at `run_path`.

    Reads the run's checkpoint snapshot (`ray.train.Result.from_path`), so it also finds the
    checkpoint of an earlier driver that died; None when there is none or it carries no cursor.
    """
    import ray.train
    from pyarrow import fs

    try:
        result = ray.train.Result.from_path(run_path)
    except RuntimeError:  # no run directory or no snapshot yet: a fresh start
        return None
    except Exception as exc:  # an unreadable snapshot: build the full stream; workers that did
        # load a checkpoint then see consumed samples in it and fail loudly (see the loop)
        print(f"[train] could not read the checkpoint snapshot under {run_path}: {exc!r}", flush=True)
        return None
    ckpt = result.checkpoint
    if ckpt is None:
        return None
    target = posixpath.join(ckpt.path, CURSOR_FILE)
    if ckpt.filesystem.get_file_info(target).type != fs.FileType.File:
        return None
    with ckpt.filesystem.open_input_stream(target) as handle:
        return DataCursor.from_json(handle.read().decode("utf-8"))


class ResumableStream:
    """Ray Train dataset factory: `build(cursor, tag)` at every worker-group start.

    `build(None, tag)` must return the full epoch's stream; `build(cursor, tag)` the stream of the
    rows the cursor has not consumed, filtered before decode. With `resume=False` the factory
    always builds the full stream (the dataset of later epochs). `tag` ({"stream", "attempt"})
    labels what the stream logs; attempts count this factory's calls (one per worker group).
    """

    def __init__(self, build: Callable[[DataCursor | None, dict[str, Any]], Any], run_path: str, resume: bool) -> None:
        self.build = build
        self.run_path = run_path
        self.resume = resume
        self.attempt = 0

    def __call__(self) -> Any:
        cursor = latest_cursor(self.run_path) if self.resume else None
        tag = {"stream": "resume" if self.resume else "full", "attempt": self.attempt}
        self.attempt += 1
        if cursor is not None:
            print(
                f"[train] resume stream: leaving out {cursor.n_consumed()} samples consumed before "
                f"step {cursor.step} (epoch {cursor.epoch})",
                flush=True,
            )
        return self.build(cursor, tag)


# --------------------------------------------------------------------------- storage
def _fs_and_path(location: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path in it) for a local path or a URI (s3://, gs://)."""
    from pyarrow import fs

    if "://" in location:
        return fs.FileSystem.from_uri(location)
    return fs.LocalFileSystem(), os.path.abspath(location)


def drop_zero_shards(run_path: str, keep: str) -> list[str]:
    """Delete the ZeRO shards (`deepspeed/`) of every checkpoint of the run at `run_path` but `keep`.

    Called once the run consolidated its Hugging Face checkpoint (`keep`, which has no shards):
    the shards only serve a resume, and they are most of a trial's bytes (14 bytes per parameter
    against the consolidated checkpoint's 2). The cursor files stay (a few KB), so the run's
    checkpoint records still read. Works on local paths and object storage alike; returns what
    it deleted.
    """
    from pyarrow import fs

    filesystem, root = _fs_and_path(run_path)
    _, keep_path = _fs_and_path(keep)
    dropped = []
    for info in filesystem.get_file_info(fs.FileSelector(root, allow_not_found=True)):
        if info.type != fs.FileType.Directory or posixpath.normpath(info.path) == posixpath.normpath(keep_path):
            continue
        shards = posixpath.join(info.path, DS_DIR)
        if filesystem.get_file_info(shards).type == fs.FileType.Directory:
            filesystem.delete_dir(shards)
            dropped.append(shards)
    return dropped


def local_checkpoint(path: str, dest: str) -> str:
    """`path` itself when local, else a copy of the object-store checkpoint under `dest` (once)."""
    from pyarrow import fs

    if "://" not in path:
        return path
    stamp = os.path.join(dest, ".videosft-copied-from")
    if os.path.exists(stamp):
        with open(stamp) as fh:
            if fh.read() == path:
                return dest
    filesystem, src = _fs_and_path(path)
    os.makedirs(dest, exist_ok=True)
    fs.copy_files(src, dest, source_filesystem=filesystem, destination_filesystem=fs.LocalFileSystem())
    with open(stamp, "w") as fh:
        fh.write(path)
    return dest


def zero_checkpoint_bytes(params: int) -> int:
    """Bytes of one resumable ZeRO checkpoint of a `params` model trained in bf16 with Adam: the 16-bit
    module (2/param) plus the fp32 master weights and both Adam moments (12/param), over all ranks."""
    return 14 * params


def trial_storage_bytes(params: int, *, keep_zero: bool, resumable: bool) -> dict[str, int]:
    """What one trial leaves on storage, and its peak while running.

    The consolidated safetensors checkpoint is 2 bytes/param (bf16). With resumable checkpoints on
    (`train.checkpoint_every` > 0) Ray Train keeps the newest two while the run goes (a new one is
    written before the old one is deleted); at the end, the final checkpoint and, only when
    `keep_zero`, the last resumable one.
    """
    hf = 2 * params
    if not resumable:
        return {"final": hf, "peak": hf}
    zero = zero_checkpoint_bytes(params)
    # Peak: two resumable checkpoints (or the last one plus the final one, which is smaller).
    return {"final": hf + (zero if keep_zero else 0), "peak": max(2 * zero, zero + hf)}
