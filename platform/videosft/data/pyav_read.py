"""PyAV frame reading by a seek plan: the decoding half of `decode.py`'s PyAV backend.

`seek_plan.plan_reads` says where to seek; this runs the plan. Between seeks it decodes forward,
telling FFmpeg to skip frames that no other frame references unless they are wanted (exact: such
a frame cannot change another's pixels). A seek that lands past its first wanted frame (odd
timestamps) or on missing data (a truncated file) is retried from an earlier keyframe, so a frame
is never stood in for by a later one and the last decodable frame is found where the data ends.
Frames are indexed by timestamp (`av_stream.frame_index`) on constant-rate streams; on variable-rate
ones, by position in presentation order (the k-th timestamp of a packet scan), which is how decord
and torchcodec number frames, so every backend returns the same frame for the same index. Frames
come out upright: the display matrix's rotation is applied to each one.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import av
import numpy as np

from videosft.data import av_stream, seek_plan


class VariableRate(Exception):
    """Frame timestamps are irregular: timestamp indices (PyAV) and frame numbers (decord) differ."""


class Numbering:
    """Frame numbers of one stream: timestamp x fps (constant rate), else presentation order.

    Also seeks to a frame number and gives a frame's time, by the same rule.
    """

    def __init__(self, stream: Any, fps: float, pts: Sequence[int] | None = None) -> None:
        self.stream, self.fps, self.pts = stream, fps, list(pts) if pts is not None else None
        self.ordinal = {p: i for i, p in enumerate(self.pts)} if self.pts is not None else None
        self._by_time = av_stream.packet_indexer(stream, fps)

    def _of_pts(self, pts: int | None) -> int | None:
        if pts is None or self.ordinal is None:
            return None
        found = self.ordinal.get(pts)
        return found if found is not None else max(0, bisect.bisect_right(self.pts, pts) - 1)

    def frame(self, frame: Any) -> int:
        if self.ordinal is None:
            return av_stream.frame_index(frame, self.stream, self.fps)
        return self._of_pts(frame.pts)  # type: ignore[return-value]

    def packet(self, packet: Any) -> int | None:
        return self._by_time(packet) if self.ordinal is None else self._of_pts(packet.pts)

    def seek(self, container: Any, index: int, *, keyframe: bool) -> None:
        """To the keyframe at or before frame `index` (`keyframe`: `index` is one)."""
        if self.pts is None:
            if keyframe:  # aim half a frame after it, landing on it
                av_stream.seek_to_time(container, self.stream, (index + 0.5) / self.fps)
            else:
                av_stream.seek_to_index(container, self.stream, index, self.fps)
            return
        container.seek(self.pts[min(max(index, 0), len(self.pts) - 1)], stream=self.stream, backward=True)

    def seconds(self, indices: np.ndarray) -> np.ndarray:
        """Times of frames `indices` from the first frame: index / fps, or their timestamps."""
        if self.pts is None:
            return np.asarray(indices, np.float64) / self.fps
        base = float(self.stream.time_base)
        last = len(self.pts) - 1
        return np.array([(self.pts[min(int(i), last)] - self.pts[0]) * base for i in indices])


def read_frames(
    container: Any,
    stream: Any,
    wanted: np.ndarray,
    *,
    planned: bool = True,
    constant_rate_only: bool = False,
    scan: bool = True,
    threads: int = 0,
) -> tuple[dict[int, np.ndarray], int, Numbering]:
    """RGB frames (upright) at the sorted unique `wanted` indices that decode, the last index
    decoded, and the stream's numbering (its `seconds` gives the frames' times).

    planned=False is the earlier strategy, kept for side-by-side benchmarks: the gap rule with no
    keyframe list, every frame decoded (variable-rate frames still numbered by position). constant_rate_only raises VariableRate (before decoding)
    for a stream whose timestamps are irregular and were not scanned (so frames cannot be
    numbered by position). scan: learn keyframes by demuxing every packet (False: from the
    container's index only, for object-store URIs). threads: decoder threads (0: FFmpeg's
    choice, one per core).
    """
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = threads
    fps = av_stream.stream_fps(stream) or 1.0
    index = av_stream.StreamIndex(None, False)
    if planned or constant_rate_only or scan:  # unplanned reads still number frames by the scan
        index = av_stream.stream_index(container, stream, fps, scan=scan)
    by_position = not index.constant_rate and index.pts is not None
    if constant_rate_only and not index.constant_rate and not by_position:
        raise VariableRate
    numbering = Numbering(stream, fps, index.pts if by_position else None)
    keyframes = index.keyframes if planned else None
    got: dict[int, np.ndarray] = {}
    last = _read_plan(
        container,
        numbering,
        seek_plan.plan_reads(wanted.tolist(), keyframes),
        keyframes,
        _keep_wanted(numbering, wanted) if planned else None,
        got,
    )
    return got, last, numbering


Indexed = Iterator[tuple[int, Any]]  # (presentation index, av.VideoFrame)


def _keep_wanted(numbering: Numbering, wanted: np.ndarray) -> av_stream.PacketFilter:
    """Packets whose frame may be returned: a wanted index or the one after it (`_take` allows
    that), with a frame of margin either side in case a frame's timestamp is not its packet's."""
    keep = {int(i) + offset for i in wanted for offset in (-1, 0, 1, 2)}
    packet_index = numbering.packet

    def accept(packet: av.Packet) -> bool:
        index = packet_index(packet)
        return index is None or index in keep

    return accept


def _read_plan(
    container: Any,
    numbering: Numbering,
    plan: list[seek_plan.Read],
    keyframes: list[int] | None,
    keep: av_stream.PacketFilter | None,
    got: dict[int, np.ndarray],
) -> int:
    """Run the reads in order; returns the last index decoded (-1 if none)."""
    last, frames = -1, None
    for read in plan:
        if read.seek or frames is None:  # a read without a seek continues the previous one
            frames = _frames_after_seek(container, numbering, read, keyframes, keep)
        last = max(last, _take(frames, read.indices, got))
    return last


def _indexed(container: Any, numbering: Numbering, keep: av_stream.PacketFilter | None) -> Indexed:
    for frame in av_stream.iter_frames(container, numbering.stream, keep):
        yield numbering.frame(frame), frame


def _frames_after_seek(
    container: Any,
    numbering: Numbering,
    read: seek_plan.Read,
    keyframes: list[int] | None,
    keep: av_stream.PacketFilter | None,
) -> Indexed:
    """Frames from the read's seek point, retried from earlier keyframes while a seek lands past
    the first wanted frame or on no data (see the module docstring)."""
    if not read.seek:
        return _indexed(container, numbering, keep)
    first = read.indices[0]
    target = read.start if read.start is not None else first
    while True:
        numbering.seek(container, target, keyframe=read.start is not None)
        frames = _indexed(container, numbering, keep)
        head = next(frames, None)
        if (head is not None and head[0] <= first) or target == 0:
            return itertools.chain([head] if head else [], frames)
        target = seek_plan.earlier_start(keyframes, target)


def upright(frame: Any) -> np.ndarray:
    """A decoded frame as RGB, turned as its display matrix says (counter-clockwise degrees)."""
    rgb = frame.to_ndarray(format="rgb24")
    turns = av_stream.frame_rotation(frame) // 90
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _take(frames: Indexed, run: tuple[int, ...], got: dict[int, np.ndarray]) -> int:
    """Decode forward until past the run's last index; returns the last index decoded."""
    pending = [i for i in run if i not in got]
    index = -1
    for index, frame in frames:
        # A frame stands in for a wanted index it reaches at most one frame late (timestamp
        # jitter in variable-rate files); larger gaps are corrupt data and stay missing.
        while pending and pending[0] <= index:
            if index - pending[0] <= 1:
                got[pending[0]] = upright(frame)
            pending.pop(0)
        if not pending:
            break
    return index
