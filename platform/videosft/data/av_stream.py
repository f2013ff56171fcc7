"""PyAV stream access that probing and decoding share: where bytes come from, how frames are numbered.

Opening local paths and object-store URIs (pyarrow.fs), frame numbering by timestamp, packet
indexing without decoding, seeking, the display matrix (rotation) and sample aspect ratio, and a
packet loop that survives corrupt packets and can skip decoding frames nobody asked for. `probe.py`
says what a file holds; `pyav_read.py` and `decode.py` read frames; both stand on these.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import av

_MAX_BAD_PACKETS = 64  # give up on a stream after this many undecodable packets in a row


def is_uri(path: str) -> bool:
    """Object-store and other URIs (s3://, gs://, ...) go through pyarrow.fs; plain paths do not."""
    return "://" in path and not path.startswith("file://")


def _filesystem(uri: str) -> tuple[Any, str]:
    from pyarrow import fs  # late: pyarrow's S3 init is slow and most probes are local

    return fs.FileSystem.from_uri(uri)


@contextlib.contextmanager
def media_source(path: str) -> Iterator[Any]:
    """A local path, or a seekable pyarrow file for URIs (PyAV and decord both accept either)."""
    if not is_uri(path):
        yield path.removeprefix("file://")
        return
    filesystem, inner = _filesystem(path)
    with filesystem.open_input_file(inner) as handle:
        yield handle


def frame_index(frame: av.VideoFrame, stream: av.video.stream.VideoStream, fps: float) -> int:
    """Presentation index of a decoded frame from its timestamp (exact for constant frame rate)."""
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    return int(round((float(frame.time) - start) * fps))


def stream_fps(stream: av.video.stream.VideoStream) -> float:
    """Average frame rate, falling back to FFmpeg's guesses for containers that omit it."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def packet_indexer(stream: av.video.stream.VideoStream, fps: float) -> Callable[[av.Packet], int | None]:
    """packet -> presentation index of the frame it carries, by `frame_index`'s rule (None: no
    pts). Built once per stream: it runs on every packet of a scan."""
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    num, den = stream.time_base.numerator, stream.time_base.denominator

    def index(packet: av.Packet) -> int | None:
        pts = packet.pts  # float steps as PyAV's `frame.time` takes them, so ties round alike
        return None if pts is None else int(round((float(pts) * num / den - start) * fps))

    return index


PacketFilter = Callable[[av.Packet], bool]


def iter_frames(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    keep: PacketFilter | None = None,
) -> Iterator[av.VideoFrame]:
    """Decode from the current position to the end, skipping corrupt packets.

    A demux error (data cut off) ends the stream, but frames still buffered in the decoder are
    flushed out: plain `container.decode()` raises and loses them. With `keep`, a packet it
    rejects is decoded only if other frames reference it (FFmpeg's skip_frame=NONREF): a frame
    nothing refers to cannot change any other frame's pixels, so skipping it is exact. On H.264
    with B-frames that is about half the frames of a sparse read.
    """
    packets = container.demux(stream)
    context, skipping = stream.codec_context, False
    context.skip_frame = "DEFAULT"  # an abandoned earlier loop may have left it skipping
    bad = 0
    while bad < _MAX_BAD_PACKETS:
        try:
            packet = next(packets)
        except StopIteration:  # demux's last, empty packet has already flushed the decoder
            return
        except av.FFmpegError:
            break
        skip = keep is not None and not keep(packet)
        if skip != skipping:  # set on change only; FFmpeg copies it to each packet's frame thread
            skipping = skip
            context.skip_frame = "NONREF" if skip else "DEFAULT"
        try:
            frames = packet.decode()
            bad = 0
        except av.FFmpegError:
            bad += 1
            continue
        yield from (f for f in frames if f.time is not None)
    with contextlib.suppress(av.FFmpegError):
        yield from (f for f in context.decode(None) if f.time is not None)


def seek_to_time(container: av.container.InputContainer, stream: av.video.stream.VideoStream, seconds: float) -> None:
    """Seek to the keyframe at or before `seconds` after the stream start (decoders flushed)."""
    start = stream.start_time or 0
    container.seek(start + int(max(0.0, seconds) / stream.time_base), stream=stream, backward=True)


def seek_to_index(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    index: int,
    fps: float,
) -> None:
    """Seek to the keyframe at or before frame `index` (half a frame early, against rounding)."""
    seek_to_time(container, stream, (index - 0.5) / fps if fps > 0 else 0.0)


@dataclass(frozen=True)
class StreamIndex:
    """What a read plan needs to know about a stream, learnt without decoding.

    keyframes: presentation indices of the keyframes (None: unknown). constant_rate: frame k's
    timestamp rounds to k for every k, so a timestamp-based index (PyAV's) names the same frame as
    a frame-number-based one (decord's); False also when it cannot be told. pts: every frame's
    timestamp in presentation order (from a scan; None without one), so a variable-rate stream's
    frame k is the k-th timestamp, as decord and torchcodec number it.
    """

    keyframes: list[int] | None
    constant_rate: bool
    pts: list[int] | None = None


def stream_index(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, fps: float, *, scan: bool = True
) -> StreamIndex:
    """Keyframes and frame-rate regularity from the packets (`scan`, then rewound) or the index.

    A scan demuxes every packet without decoding (decord does the same when it opens a file);
    without one, only mp4/mov's full sample table answers: its keyframe positions in decode order
    (a few frames early for open GOPs, which costs a little decoding, never a wrong frame) and its
    decode timestamps.
    """
    if scan:
        return _scan_packets(container, stream, fps)
    entries = [e for e in stream.index_entries if not e.is_discard]
    if len(entries) < 2 or len(entries) < stream.frames or all(e.is_keyframe for e in entries):
        return StreamIndex(None, False)  # no full sample table (Matroska keeps a few cues)
    first = entries[0].timestamp
    steps = [int(round(float((e.timestamp - first) * stream.time_base) * fps)) for e in entries]
    return StreamIndex([at for at, e in enumerate(entries) if e.is_keyframe], steps == list(range(len(entries))))


def _scan_packets(container: Any, stream: Any, fps: float) -> StreamIndex:
    indices: list[int] = []
    stamps: list[int] = []
    key_stamps: list[int] = []
    stamped = True
    packet_index = packet_indexer(stream, fps)
    with contextlib.suppress(av.FFmpegError):  # data cut off: what was read is what exists
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue
            index = packet_index(packet)
            if index is None:
                stamped = False
                continue
            indices.append(index)
            stamps.append(packet.pts)
            if packet.is_keyframe:
                key_stamps.append(packet.pts)
    seek_to_time(container, stream, 0.0)
    regular = stamped and sorted(indices) == list(range(len(indices)))
    stamps.sort()
    ordinal = {pts: at for at, pts in enumerate(stamps)}  # constant rate: the same numbers
    keyframes = sorted(ordinal[pts] for pts in key_stamps)
    return StreamIndex(keyframes or None, regular, stamps if stamped and len(ordinal) == len(stamps) else None)


def frame_rotation(frame: av.VideoFrame) -> int:
    """Counter-clockwise degrees (0, 90, 180, 270) the frame's display matrix asks for."""
    return int(round((frame.rotation or 0) / 90.0)) % 4 * 90


def display_size(width: int, height: int, rotation: int, sar: Any) -> tuple[int, int]:
    """(width, height) a player shows: the sample aspect ratio stretches the width, then a
    quarter turn swaps the two."""
    if sar and float(sar) > 0 and float(sar) != 1.0:
        width = max(1, int(round(width * float(sar))))
    return (height, width) if rotation % 180 else (width, height)


def orientation(path: str) -> tuple[int, Any]:
    """(rotation, sample aspect ratio or None) of a video's first frame, for decoders that do not
    say; (0, None) when it cannot be read (the decode then reports why)."""
    try:
        with media_source(path) as src, av.open(src) as container:
            stream = container.streams.video[0]
            first = next(iter_frames(container, stream), None)
            return (frame_rotation(first) if first is not None else 0), stream.sample_aspect_ratio
    except (av.FFmpegError, OSError, IndexError):
        return 0, None
