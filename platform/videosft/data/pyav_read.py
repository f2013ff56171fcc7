"""PyAV frame reading by a seek plan: the decoding half of `decode.py`'s PyAV backend.

`seek_plan.plan_reads` says where to seek; this runs the plan. Between seeks it decodes forward,
telling FFmpeg to skip frames that no other frame references unless they are wanted (exact: such
a frame cannot change another's pixels). A seek that lands past its first wanted frame (odd
timestamps) or on missing data (a truncated file) is retried from an earlier keyframe, so a frame
is never stood in for by a later one and the last decodable frame is found where the data ends.
Frames are indexed by timestamp (`probe.frame_index`), as PyAV always indexed them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import av
import numpy as np

from videosft.data import probe, seek_plan


class VariableRate(Exception):
    """Frame timestamps are irregular: timestamp indices (PyAV) and frame numbers (decord) differ."""


def read_frames(container: Any, stream: Any, wanted: np.ndarray, *, planned: bool = True,
                constant_rate_only: bool = False, scan: bool = True,
                threads: int = 0) -> tuple[dict[int, np.ndarray], int]:
    """RGB frames at the sorted unique `wanted` indices that decode, and the last index decoded.

    planned=False is the earlier strategy, kept for side-by-side benchmarks: the gap rule with no
    keyframe list, every frame decoded. constant_rate_only raises VariableRate (before decoding)
    for a stream whose timestamps are irregular. scan: learn keyframes by demuxing every packet
    (False: from the container's index only, for object-store URIs). threads: decoder threads
    (0: FFmpeg's choice, one per core).
    """
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = threads
    fps = probe.stream_fps(stream) or 1.0
    index = probe.StreamIndex(None, False)
    if planned or constant_rate_only:
        index = probe.stream_index(container, stream, fps, scan=scan)
    if constant_rate_only and not index.constant_rate:
        raise VariableRate
    keyframes = index.keyframes if planned else None
    got: dict[int, np.ndarray] = {}
    last = _read_plan(container, stream, fps, seek_plan.plan_reads(wanted.tolist(), keyframes),
                      keyframes, _keep_wanted(stream, fps, wanted) if planned else None, got)
    return got, last


Indexed = Iterator[tuple[int, Any]]  # (presentation index, av.VideoFrame)


def _keep_wanted(stream: Any, fps: float, wanted: np.ndarray) -> probe.PacketFilter:
    """Packets whose frame may be returned: a wanted index or the one after it (`_take` allows
    that), with a frame of margin either side in case a frame's timestamp is not its packet's."""
    keep = {int(i) + offset for i in wanted for offset in (-1, 0, 1, 2)}
    packet_index = probe.packet_indexer(stream, fps)

    def accept(packet: av.Packet) -> bool:
        index = packet_index(packet)
        return index is None or index in keep

    return accept


def _read_plan(container: Any, stream: Any, fps: float, plan: list[seek_plan.Read],
               keyframes: list[int] | None, keep: probe.PacketFilter | None,
               got: dict[int, np.ndarray]) -> int:
    """Run the reads in order; returns the last index decoded (-1 if none)."""
    last, frames = -1, None
    for read in plan:
        if read.seek or frames is None:  # a read without a seek continues the previous one
            frames = _frames_after_seek(container, stream, fps, read, keyframes, keep)
        last = max(last, _take(frames, read.indices, got))
    return last


def _indexed(container: Any, stream: Any, fps: float, keep: probe.PacketFilter | None) -> Indexed:
    for frame in probe.iter_frames(container, stream, keep):
        yield probe.frame_index(frame, stream, fps), frame


def _frames_after_seek(container: Any, stream: Any, fps: float, read: seek_plan.Read,
                       keyframes: list[int] | None, keep: probe.PacketFilter | None) -> Indexed:
    """Frames from the read's seek point, retried from earlier keyframes while a seek lands past
    the first wanted frame or on no data (see the module docstring)."""
    if not read.seek:
        return _indexed(container, stream, fps, keep)
    first = read.indices[0]
    target = read.start if read.start is not None else first
    while True:
        if read.start is not None:  # a known keyframe: aim half a frame after it, landing on it
            probe.seek_to_time(container, stream, (target + 0.5) / fps)
        else:
            probe.seek_to_index(container, stream, target, fps)
        frames = _indexed(container, stream, fps, keep)
        head = next(frames, None)
        if (head is not None and head[0] <= first) or target == 0:
            return itertools.chain([head] if head else [], frames)
        target = seek_plan.earlier_start(keyframes, target)


def _take(frames: Indexed, run: tuple[int, ...], got: dict[int, np.ndarray]) -> int:
    """Decode forward until past the run's last index; returns the last index decoded."""
    pending = [i for i in run if i not in got]
    index = -1
    for index, frame in frames:
        # A frame stands in for a wanted index it reaches at most one frame late (timestamp
        # jitter in variable-rate files); larger gaps are corrupt data and stay missing.
        while pending and pending[0] <= index:
            if index - pending[0] <= 1:
                got[pending[0]] = frame.to_ndarray(format="rgb24")
            pending.pop(0)
        if not pending:
            break
    return index
