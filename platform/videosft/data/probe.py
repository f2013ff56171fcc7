"""Container facts about a media file (frames, fps, duration, size) without decoding it.

Probing runs before budgeting so that frame indices are chosen against what the file can really
deliver. A header that promises more frames than exist (a truncated download, a muxer bug) is what
makes decord's `get_batch` spin forever, so the count is checked here and the row says why, rather
than a decode worker finding out the hard way. The check reads packets, not pixels: seek to the
keyframe before the last promised frame and demux to the end. Only when those packets are missing,
damaged or fewer than promised does it decode (from the same keyframe, else from the start), so
the corrected count and the reason are what really decodes; a healthy file costs no decode at all.

Odd-but-valid media (one rule): metadata that disagrees with the stream (a frame count, duration
or frame rate the packets contradict) is corrected from the stream and recorded in PROBE_NOTE,
never put in ERROR; ERROR is only for media that cannot yield frames. WIDTH/HEIGHT are the size
a player shows: after the display matrix's rotation and the sample aspect ratio (read from the
first frame, the one decode every probe pays), so every backend resizes to the same upright shape.
Variable-frame-rate and Matroska/WebM streams (no stored count) are counted by demuxing every
packet: a frame number is a position in presentation order, as decord and torchcodec count.

Also owns the cheap file pre-checks and the wording of open errors; PyAV stream access (sources,
frame numbering, seeking, the corrupt-packet-tolerant frame loop) is `av_stream.py`.
"""

from __future__ import annotations

import contextlib
import os
import string
from collections import Counter
from dataclasses import dataclass
from typing import Any

import av
from PIL import Image

from videosft.data import av_stream
from videosft.schema import (
    DURATION,
    ERROR,
    FPS,
    HEIGHT,
    MEDIA_IMAGE,
    MEDIA_PATH,
    MEDIA_TYPE,
    MEDIA_VIDEO,
    NUM_FRAMES,
    PROBE_NOTE,
    WIDTH,
)

OVER_REPORTED = "frame count over-reported"  # stable substring of PROBE_NOTE
_TEXT_BYTES = set(string.printable.encode())


def precheck(path: str) -> str:
    """Reason a file cannot be media before any decoder touches it ("" when it may be).

    Decoders report these cases with vague or misleading messages, or not at all.
    """
    if not path:
        return "missing path"
    if not av_stream.is_uri(path):
        local = path.removeprefix("file://")
        if not os.path.exists(local):
            return f"file not found ({path})"
        if not os.path.isfile(local):
            return f"not a file ({path})"
        return "file is empty (0 bytes)" if os.path.getsize(local) == 0 else ""
    from pyarrow import fs

    try:
        filesystem, inner = av_stream._filesystem(path)
        info = filesystem.get_file_info(inner)
    except (OSError, ValueError) as exc:
        return f"cannot open ({exc})"
    if info.type == fs.FileType.NotFound:
        return f"file not found ({path})"
    if info.type != fs.FileType.File:
        return f"not a file ({path})"
    return "file is empty (0 bytes)" if info.size == 0 else ""


def _looks_like_text(path: str) -> bool:
    with av_stream.media_source(path) as src:
        if isinstance(src, str):
            with open(src, "rb") as handle:
                head = handle.read(512)
        else:
            head = src.read(512)
    return bool(head) and all(byte in _TEXT_BYTES for byte in head)


def describe_open_error(path: str, exc: BaseException) -> str:
    """Turn an av.open failure into a reason a person can act on."""
    if isinstance(exc, av.error.InvalidDataError):
        if _looks_like_text(path):
            return "not a video container (file is text)"
        return "no moov atom / not a video container"
    return f"cannot open container ({type(exc).__name__}: {exc})"


def diagnose(path: str) -> str:
    """Why PyAV cannot open `path` ("" if it can): other decoders' errors rarely say."""
    try:
        with av_stream.media_source(path) as src, av.open(src):
            return ""
    except av.FFmpegError as exc:
        return describe_open_error(path, exc)


def _last_packet(container: Any, stream: Any, reported: int, fps: float) -> int | None:
    """Index of the last frame the tail's packets carry, read without decoding.

    None when the packets cannot be trusted to decode (missing, cut short, unstamped): then only
    a decode can say where the frames stop.
    """
    if reported <= 0 or fps <= 0:
        return None
    last, seen = -1, 0
    packet_index = av_stream.packet_indexer(stream, fps)
    try:
        av_stream.seek_to_index(container, stream, reported - 1, fps)
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:  # the empty flush packet; edit-list cuts
                continue
            index = packet_index(packet)
            if packet.is_corrupt or index is None:
                return None
            last, seen = max(last, index), seen + 1
    except av.FFmpegError:
        return None
    return last if seen else None


def _last_decodable(container: Any, stream: Any, reported: int, fps: float) -> int:
    """Index of the last frame that decodes: seek near the promised end, else walk from the start."""
    last = -1
    if reported > 0 and fps > 0:
        with contextlib.suppress(av.FFmpegError):
            av_stream.seek_to_index(container, stream, reported - 1, fps)
            last = max(
                (av_stream.frame_index(f, stream, fps) for f in av_stream.iter_frames(container, stream)), default=-1
            )
    if last < 0:  # the tail's keyframe is missing: only a full walk finds where the data stops
        container.seek(stream.start_time or 0, stream=stream, backward=True)
        last = max(
            (av_stream.frame_index(f, stream, fps) for f in av_stream.iter_frames(container, stream)), default=-1
        )
    return last


def _decoded_count(container: Any, stream: Any) -> int:
    """Frames that decode from the start (variable rate: a timestamp does not give a position)."""
    container.seek(stream.start_time or 0, stream=stream, backward=True)
    return sum(1 for _ in av_stream.iter_frames(container, stream))


@dataclass(frozen=True)
class PacketCount:
    """What demuxing every packet says: frames (stamped packets), damage, and the rate."""

    frames: int
    damaged: bool
    rate: float  # 1 / the common frame interval when every interval agrees, else 0.0
    span: float  # seconds from the first frame's timestamp to the last one's


def count_packets(container: Any, stream: Any) -> PacketCount:
    """Demux the whole stream (no decoding; decord does the same on open), then rewind."""
    stamps: list[int] = []
    damaged = False
    av_stream.seek_to_time(container, stream, 0.0)
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue
            if packet.pts is None or packet.is_corrupt:
                damaged = True
                continue
            stamps.append(packet.pts)
    except av.FFmpegError:
        damaged = True
    with contextlib.suppress(av.FFmpegError):
        av_stream.seek_to_time(container, stream, 0.0)
    stamps.sort()
    base = float(stream.time_base)
    steps = Counter(b - a for a, b in zip(stamps, stamps[1:]))
    rate = 0.0
    if steps and max(steps) - min(steps) <= 1 and min(steps) > 0:  # one tick of rounding
        rate = 1.0 / (((max(steps) + min(steps)) / 2) * base)
    elif damaged and steps:  # a lost packet leaves a gap; the rest still keep one rate
        step, seen = steps.most_common(1)[0]
        rate = 1.0 / (step * base) if step > 0 and seen >= 0.9 * sum(steps.values()) else 0.0
    span = (stamps[-1] - stamps[0]) * base if stamps else 0.0
    return PacketCount(len(stamps), damaged, rate, span)


def _empty_probe(error: str = "") -> dict[str, Any]:
    return {NUM_FRAMES: 0, FPS: 0.0, DURATION: 0.0, WIDTH: 0, HEIGHT: 0, ERROR: error, PROBE_NOTE: ""}


def probe_video(path: str, *, decode_tail: bool = False) -> dict[str, Any]:
    """NUM_FRAMES, FPS, DURATION, WIDTH, HEIGHT, ERROR ("" when fine) and PROBE_NOTE of a video.

    Never raises for bad media: the reason goes in ERROR as "probe: <reason>". Metadata the
    stream contradicts (an over-reported frame count or duration, a wrong frame rate) is
    corrected (NUM_FRAMES is what decodes) and described in PROBE_NOTE; the row stays usable.
    decode_tail=True always decodes the tail GOP to check the count (the earlier, slower rule;
    it also catches a tail whose packets are intact but whose bitstream is not).
    """
    reason = precheck(path)
    if reason:
        return _empty_probe(f"probe: {reason}")
    try:
        with av_stream.media_source(path) as src, av.open(src) as container:
            if not container.streams.video:
                return _empty_probe("probe: no video stream")
            return _probe_stream(container, container.streams.video[0], decode_tail)
    except av.FFmpegError as exc:
        return _empty_probe(f"probe: {describe_open_error(path, exc)}")
    except OSError as exc:
        return _empty_probe(f"probe: cannot read ({exc})")


def _first_frame(container: Any, stream: Any) -> av.VideoFrame | None:
    with contextlib.suppress(av.FFmpegError):
        frame = next(av_stream.iter_frames(container, stream), None)
        av_stream.seek_to_time(container, stream, 0.0)
        return frame
    return None


def _probe_stream(container: Any, stream: Any, decode_tail: bool) -> dict[str, Any]:
    fps = av_stream.stream_fps(stream)
    if stream.duration is not None:
        duration = float(stream.duration * stream.time_base)
    else:  # Matroska/WebM keep only a container duration
        duration = container.duration / av.time_base if container.duration else 0.0
    exact = stream.frames > 0  # mp4 stores the count; elsewhere it is estimated from duration
    reported = stream.frames if exact else int(round(duration * fps))
    stream.codec_context.thread_count = 1  # one keyframe: decoder threads would cost more than it
    first = _first_frame(container, stream)
    rotation = av_stream.frame_rotation(first) if first is not None else 0
    width, height = av_stream.display_size(
        stream.codec_context.width, stream.codec_context.height, rotation, stream.sample_aspect_ratio
    )
    out = _empty_probe()
    out.update({FPS: fps, DURATION: duration, WIDTH: width, HEIGHT: height, NUM_FRAMES: reported})
    last = None if decode_tail or not exact else _last_packet(container, stream, reported, fps)
    if last is not None and last + 1 == reported:
        return out  # the tail's packets keep the promise: the common case, nothing decoded
    count, notes = _count_frames(container, stream, reported, fps, exact, decode_tail)
    fps = out[FPS] = notes.pop("fps", fps)
    if count <= 0:
        out.update({NUM_FRAMES: 0, ERROR: "probe: no decodable frames"})
        return out
    out[NUM_FRAMES] = count
    if notes.pop("variable", False):
        if exact and count < reported:  # the stored count is a count, whatever the rate
            notes["count"] = f"{OVER_REPORTED} (container says {reported}, stream has {count})"
        out[PROBE_NOTE] = "; ".join(notes[k] for k in ("count", "rate") if k in notes)
        return out  # the container's duration stands: frames are not evenly spaced in it
    if count != reported:
        out[DURATION] = count / fps if fps > 0 else duration
    tolerance = 0 if exact else 1  # an estimate from the duration may be a frame off
    if count < reported - tolerance:
        what = OVER_REPORTED if exact else "duration over-reported"
        said = f"{reported}" if exact else f"{duration:.3g} s = {reported} frames"
        notes["count"] = f"{what} (container says {said}, stream has {count})"
    elif count > reported + tolerance:
        notes["count"] = f"frame count under-reported (container says {reported}, stream has {count})"
    out[PROBE_NOTE] = "; ".join(notes[k] for k in ("count", "rate") if k in notes)
    return out


def _count_frames(
    container: Any, stream: Any, reported: int, fps: float, exact: bool, decode_tail: bool
) -> tuple[int, dict[str, Any]]:
    """Frames the stream really has, and notes on metadata it contradicts ("fps": a corrected
    rate, "duration": the stream's, "rate": a note). Decodes only when packets are damaged or
    fewer than promised, or decode_tail asks."""
    notes: dict[str, Any] = {}
    packets = count_packets(container, stream)
    if packets.rate and fps > 0 and abs(packets.rate - fps) > 0.01 * fps:
        notes["rate"] = f"frame rate {fps:.4g} corrected to {packets.rate:.4g} (timestamps)"
        notes["fps"] = fps = packets.rate
    elif fps <= 0 and packets.frames > 1 and packets.span > 0:
        fps = (packets.frames - 1) / packets.span
        notes["rate"] = f"frame rate missing, {fps:.4g} from timestamps"
        notes["fps"] = fps
    if not packets.rate and packets.frames > 1:  # variable rate: a count is not duration x fps
        notes["variable"] = True
    count = packets.frames
    if packets.damaged or decode_tail or (exact and count < reported) or (not exact and count < reported - 1):
        if packets.rate or decode_tail and not packets.frames:
            count = _last_decodable(container, stream, max(reported, count), fps) + 1
        else:
            count = _decoded_count(container, stream)
    return count, notes


def probe_image(path: str) -> dict[str, Any]:
    """WIDTH/HEIGHT of an image, NUM_FRAMES=1; reads the header only."""
    reason = precheck(path)
    if reason:
        return _empty_probe(f"probe: {reason}")
    try:
        with av_stream.media_source(path) as src, Image.open(src) as image:
            width, height = image.size
    except (OSError, Image.DecompressionBombError) as exc:
        return _empty_probe(f"probe: not an image ({exc})")
    out = _empty_probe()
    out.update({NUM_FRAMES: 1, WIDTH: width, HEIGHT: height})
    return out


def probe_sample(row: dict[str, Any]) -> dict[str, Any]:
    """A manifest row plus probe columns; text rows get zeros, rows already in error are kept."""
    out = dict(row)
    if row.get(ERROR):
        out.update({k: v for k, v in _empty_probe(row[ERROR]).items() if k not in row})
        return out
    kind = row.get(MEDIA_TYPE)
    if kind == MEDIA_VIDEO:
        out.update(probe_video(row.get(MEDIA_PATH) or ""))
    elif kind == MEDIA_IMAGE:
        out.update(probe_image(row.get(MEDIA_PATH) or ""))
    else:
        out.update(_empty_probe())
    return out
