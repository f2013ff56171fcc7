"""Ray Data assembly: manifest rows -> probe + decode (actor pool) -> preprocess (actor pool).

Failed rows are never fatal: they carry `error`, are written to a rejects file with their reason,
and the run fails only when the failure ratio passes `data.max_failure_ratio`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from videosft import schema as S
from videosft.data.preprocess import EncodeStage
from videosft.data.sampling import SamplingContract
from videosft.schema import PROBE_NOTE

log = logging.getLogger(__name__)
_DATA_STORE_FRACTION = 0.5  # Ray Data's default share of the object store (its ResourceManager)


def _data_store_fraction() -> float:
    """Ray Data's share of the object store: the DataContext override, else its default."""
    from ray.data.context import DataContext

    override = DataContext.get_current().override_object_store_memory_limit_fraction
    return override if override is not None else _DATA_STORE_FRACTION


class TooManyRejects(RuntimeError):
    """More rows failed than the configured ratio allows.

    `summary()` is the one paragraph a person reads (the CLI prints it instead of a traceback):
    counts per reason, the first few files of each, the rejects file and the key to raise.
    """

    def __init__(self, message: str, *, summary: str = "") -> None:
        super().__init__(message)
        self._summary = summary

    def summary(self) -> str:
        return self._summary or str(self)


_SHOWN_FILES = 3  # files named per reason in a summary
_DETAIL = re.compile(r"\s*\([^()]*\)")  # "(container says 40, ...)", "(/path/x.mp4)"
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def reason_kind(reason: str) -> str:
    """A reject reason without its per-file details, so equal failures count together:
    "probe: file not found (/a.mp4)" -> "probe: file not found", numbers become N."""
    return _NUMBER.sub("N", _DETAIL.sub("", reason)).strip() or reason


def rejects_summary(
    stage: str, rejects: Sequence[tuple[str, str]], total: int, max_failure_ratio: float, rejects_path: str
) -> str:
    """One paragraph: `rejects` are (path or id, reason); reasons most frequent first."""
    groups: dict[str, list[str]] = {}
    for where, reason in rejects:
        groups.setdefault(reason_kind(reason), []).append(where)
    parts = []
    for kind, files in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        shown = ", ".join(files[:_SHOWN_FILES]) + (
            f", +{len(files) - _SHOWN_FILES} more" if len(files) > _SHOWN_FILES else ""
        )
        parts.append(f"{len(files)} x {kind} (e.g. {shown})")
    ratio = len(rejects) / total if total else 0.0
    needed = math.ceil(ratio * 100) / 100
    return (
        f"{stage}: {len(rejects)} of {total} rows failed ({100 * ratio:.1f}%), more than "
        f"data.max_failure_ratio={max_failure_ratio:g} allows. By reason: {'; '.join(parts)}. "
        f"Every reject, with its reason: {rejects_path}. Fix or drop those files, or accept "
        f"this share with data.max_failure_ratio={needed:g}."
    )


def check_failure_ratio(
    stage: str, rejects: Sequence[tuple[str, str]], total: int, max_failure_ratio: float, rejects_path: str
) -> None:
    """Raise TooManyRejects (with its summary) when len(rejects) / total > max_failure_ratio."""
    if total and len(rejects) / total > max_failure_ratio:
        raise TooManyRejects(
            f"{stage}: {len(rejects)} of {total} rows failed (> data.max_failure_ratio={max_failure_ratio}); "
            f"reasons in {rejects_path}",
            summary=rejects_summary(stage, rejects, total, max_failure_ratio, rejects_path),
        )


@dataclass(frozen=True)
class StageStats:
    total: int
    rejected: int
    rejects_path: str
    noted: int = 0  # rows kept whose metadata the probe corrected (PROBE_NOTE)


class DecodeStage:
    """Ray Data callable class: probe, choose indices by the contract, decode in an isolated child.

    One per actor: the isolated decoder process is reused across rows and restarted on a hang.
    It decodes with `threads` threads: as many as the CPUs the actor reserved, so actors do not
    oversubscribe the cores they share.
    """

    def __init__(
        self, contract: dict[str, Any], budget: int | None, timeout_s: float, threads: int = 1, backend: str = "auto"
    ) -> None:
        from videosft.data.decode import IsolatedDecoder

        self.contract = SamplingContract.model_validate(contract)
        self.budget = budget
        self.decoder = IsolatedDecoder(timeout_s=timeout_s, threads=threads, backend=backend)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        out = dict(row)
        out.setdefault(S.ERROR, "")
        out.update({S.FRAME_INDICES: np.zeros(0, np.int64), S.TIMESTAMPS: np.zeros(0, np.float64), S.SAMPLED_FPS: 0.0})
        out[S.CONTRACT_ID] = self.contract.contract_id()
        out.setdefault(PROBE_NOTE, "")
        media_type = row[S.MEDIA_TYPE]
        if media_type == S.MEDIA_TEXT:
            out[S.FRAMES] = np.zeros((0, 1, 1, 3), np.uint8)
            return out
        try:
            if media_type == S.MEDIA_VIDEO:
                self._video(row, out)
            else:
                self._image(row, out)
        except Exception as exc:  # errors are data, never a crashed pipeline
            out[S.ERROR] = f"decode: {type(exc).__name__}: {exc}"
        if out[S.ERROR]:
            out[S.FRAMES] = np.zeros((0, 1, 1, 3), np.uint8)
        return out

    def _video(self, row: dict[str, Any], out: dict[str, Any]) -> None:
        from videosft.data.probe import probe_video

        meta = probe_video(row[S.MEDIA_PATH])
        out.update({k: meta[k] for k in (S.NUM_FRAMES, S.FPS, S.DURATION, S.WIDTH, S.HEIGHT, PROBE_NOTE)})
        if meta.get(S.ERROR):  # only media that cannot yield frames; corrected metadata is a note
            out[S.ERROR] = meta[S.ERROR]
            return
        budget = int(row.get(S.FRAME_BUDGET) or 0) or self.budget
        indices = self.contract.frame_indices(int(meta[S.NUM_FRAMES]), float(meta[S.FPS]), budget)
        out_hw = self.contract.output_size(int(meta[S.HEIGHT]), int(meta[S.WIDTH]), "video")
        res = self.decoder.decode(row[S.MEDIA_PATH], indices, out_hw)
        if res.error:
            out[S.ERROR] = res.error
            return
        out[S.FRAMES] = res.frames
        out[S.FRAME_INDICES] = np.asarray(indices, np.int64)
        out[S.TIMESTAMPS] = (
            np.asarray(indices, np.float64) / float(meta[S.FPS])
            if res.times is None
            else np.asarray(res.times, np.float64)
        )  # variable rate: real timestamps
        out[S.SAMPLED_FPS] = self.contract.sampled_fps(indices, float(meta[S.FPS]), int(meta[S.NUM_FRAMES]))

    def _image(self, row: dict[str, Any], out: dict[str, Any]) -> None:
        from videosft.data.decode import decode_image
        from videosft.data.probe import probe_image

        meta = probe_image(row[S.MEDIA_PATH])
        if meta.get(S.ERROR):
            out[S.ERROR] = meta[S.ERROR]
            return
        out_hw = self.contract.output_size(int(meta[S.HEIGHT]), int(meta[S.WIDTH]), "image")
        out[S.FRAMES] = decode_image(row[S.MEDIA_PATH], out_hw)
        out.update({S.NUM_FRAMES: 1, S.WIDTH: meta[S.WIDTH], S.HEIGHT: meta[S.HEIGHT]})


def actor_pool(size: int) -> Any:
    """A fixed-size actor pool (Ray Data's `compute=` form; `concurrency=` is deprecated)."""
    import ray.data

    return ray.data.ActorPoolStrategy(size=size)


def largest_row_bytes(rows: Sequence[dict[str, Any]], contract: SamplingContract, budget: int | None) -> int:
    """Upper bound on one decoded video row's frame bytes: the most frames any row may get (a
    row's own frame_budget wins) at the contract's largest frame size (smart_resize stays within
    video_max_pixels)."""
    own = [int(r.get(S.FRAME_BUDGET) or 0) for r in rows]
    default = budget or (contract.num_frames if contract.mode == "fixed" else contract.max_frames)
    frames = max([default, *own])
    if contract.mode == "fps":
        frames = min(frames, contract.max_frames)
    return frames * contract.video_max_pixels * 3


def check_object_store(
    row_bytes: int, actors: int, store_bytes: float | None = None, fraction: float | None = None
) -> str:
    """Warn ("" when fine) if Ray Data's share of the object store holds under 2 rows per actor.

    Below that, backpressure admits one decode task at a time and the other actors idle: measured
    on 2 cores at 32 frames (19 MB rows), a 100 MB store ran 11 of 12 rows on one actor (1.12x a
    single decord process), while 200 MB and 400 MB kept both busy (1.49x and 1.71x). Nothing is
    wrong with the data, so this logs rather than fails; the fix is a larger object store.
    """
    if store_bytes is None:
        import ray

        store_bytes = ray.cluster_resources().get("object_store_memory", 0.0) if ray.is_initialized() else 0.0
    share = store_bytes * (_data_store_fraction() if fraction is None else fraction)
    if not store_bytes or share >= 2 * actors * row_bytes:
        return ""
    message = (
        f"Ray Data's share of the object store ({share / 2**20:.0f} MiB of {store_bytes / 2**20:.0f}) "
        f"holds fewer than 2 decoded rows (up to {row_bytes / 2**20:.1f} MiB each) per decode actor "
        f"({actors}): decoding will run about one actor at a time. Start Ray with "
        f"object_store_memory >= {4 * actors * row_bytes / 2**20:.0f} MiB, or lower the frame budget "
        "or video_max_pixels."
    )
    log.warning(message)
    return message


def decoder_threads(cpus: float) -> int:
    """Decoder threads for an actor that reserved `cpus` CPUs (at least one)."""
    return max(1, round(cpus))


def decoded_dataset(
    rows: Sequence[dict[str, Any]],
    contract: SamplingContract,
    budget: int | None,
    timeout_s: float,
    concurrency: int,
    cpus: float,
    backend: str = "auto",
    *,
    stage: type[DecodeStage] = DecodeStage,
    stage_kwargs: dict[str, Any] | None = None,
) -> Any:
    """Manifest rows -> Ray Dataset of decoded rows (errors kept as data).

    `stage` may be a DecodeStage subclass taking extra constructor arguments (`stage_kwargs`).
    """
    import ray.data

    check_object_store(largest_row_bytes(rows, contract, budget), concurrency)
    ds = ray.data.from_items([_clean_row(r) for r in rows])
    return ds.map(
        stage,
        fn_constructor_kwargs={
            "contract": contract.model_dump(),
            "budget": budget,
            "timeout_s": timeout_s,
            "threads": decoder_threads(cpus),
            "backend": backend,
            **(stage_kwargs or {}),
        },
        compute=actor_pool(concurrency),
        num_cpus=cpus,
    )


def encoded_dataset(decoded: Any, family: str, model_path: str, concurrency: int, cpus: float) -> Any:
    """Decoded rows -> rows with a FEATURES blob (training inputs + assistant-only labels)."""

    return decoded.map(
        EncodeStage,
        fn_constructor_kwargs={"family": family, "model_path": model_path, "for_generation": False},
        compute=actor_pool(concurrency),
        num_cpus=cpus,
    )


def split_rejects(
    ds: Any, rejects_path: str | Path, max_failure_ratio: float, stage: str, keep_columns: Sequence[str] | None = None
) -> tuple[Any, StageStats]:
    """Materialize, write failed rows to a JSONL rejects file, fail past the allowed ratio.

    The good rows come back fully materialized (projected to `keep_columns`): no lazy operator is
    left to run while Train workers hold the CPUs, which would deadlock a small machine.
    """
    ds = ds.materialize()
    total = ds.count()
    bad = ds.filter(lambda r: bool(r[S.ERROR])).select_columns([S.ID, S.MEDIA_PATH, S.ERROR]).take_all()
    path = Path(rejects_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for r in bad:
            fh.write(json.dumps({"id": r[S.ID], "path": r[S.MEDIA_PATH], "stage": stage, "reason": r[S.ERROR]}) + "\n")
    noted = ds.filter(lambda r: bool(r.get(PROBE_NOTE))).count() if PROBE_NOTE in ds.columns() else 0
    stats = StageStats(total=total, rejected=len(bad), rejects_path=str(path), noted=noted)
    check_failure_ratio(
        stage, [(r[S.MEDIA_PATH] or r[S.ID], r[S.ERROR]) for r in bad], total, max_failure_ratio, str(path)
    )
    good = ds.filter(lambda r: not r[S.ERROR]) if bad else ds
    if keep_columns is not None:
        good = good.select_columns(list(keep_columns))
    return good.materialize(), stats


def _clean_row(row: dict[str, Any]) -> dict[str, Any]:
    """Keep only columns with a stable Arrow type (manifest extras like option lists become JSON)."""
    out = {}
    for k, v in row.items():
        out[k] = json.dumps(v) if isinstance(v, (list, dict)) else v
    return out
