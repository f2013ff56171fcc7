"""Container facts about a media file (frames, fps, duration, size) without decoding it all.

Probing runs before budgeting so that frame indices are chosen against what the file can really
deliver. The one decode it does is cheap and deliberate: seek to the last frame the container
promises and decode to the end. A header that promises more frames than exist (a truncated
download, a muxer bug) is what makes decord's `get_batch` spin forever, so the count is corrected
here and the row says why, rather than a decode worker finding out the hard way.

Also owns the low-level PyAV helpers `decode.py` shares: opening local paths and object-store
URIs, cheap file pre-checks, error wording, and a packet loop that survives corrupt packets.
"""

from __future__ import annotations

import contextlib
import os
import string
from collections.abc import Iterator
from typing import Any

import av
from PIL import Image

from videosft.schema import DURATION, ERROR, FPS, HEIGHT, MEDIA_IMAGE, MEDIA_PATH, MEDIA_TYPE
from videosft.schema import MEDIA_VIDEO, NUM_FRAMES, WIDTH

OVER_REPORTED = "frame count over-reported"  # stable substring for pipelines that tolerate it
_MAX_BAD_PACKETS = 64  # give up on a stream after this many undecodable packets in a row
_TEXT_BYTES = set(string.printable.encode())


def is_uri(path: str) -> bool:
    """Object-store and other URIs (s3://, gs://, ...) go through pyarrow.fs; plain paths do not."""
    return "://" in path and not path.startswith("file://")


def _filesystem(uri: str) -> tuple[Any, str]:
    from pyarrow import fs  # late: pyarrow's S3 init is slow and most probes are local

    return fs.FileSystem.from_uri(uri)


def precheck(path: str) -> str:
    """Reason a file cannot be media before any decoder touches it ("" when it may be).

    Decoders report these cases with vague or misleading messages, or not at all.
    """
    if not path:
        return "missing path"
    if not is_uri(path):
        local = path.removeprefix("file://")
        if not os.path.exists(local):
            return f"file not found ({path})"
        if not os.path.isfile(local):
            return f"not a file ({path})"
        return "file is empty (0 bytes)" if os.path.getsize(local) == 0 else ""
    from pyarrow import fs

    try:
        filesystem, inner = _filesystem(path)
        info = filesystem.get_file_info(inner)
    except (OSError, ValueError) as exc:
        return f"cannot open ({exc})"
    if info.type == fs.FileType.NotFound:
        return f"file not found ({path})"
    if info.type != fs.FileType.File:
        return f"not a file ({path})"
    return "file is empty (0 bytes)" if info.size == 0 else ""


@contextlib.contextmanager
def media_source(path: str) -> Iterator[Any]:
    """A local path, or a seekable pyarrow file for URIs (PyAV and decord both accept either)."""
    if not is_uri(path):
        yield path.removeprefix("file://")
        return
    filesystem, inner = _filesystem(path)
    with filesystem.open_input_file(inner) as handle:
        yield handle


def _looks_like_text(path: str) -> bool:
    with media_source(path) as src:
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
        with media_source(path) as src, av.open(src):
            return ""
    except av.FFmpegError as exc:
        return describe_open_error(path, exc)


def frame_index(frame: av.VideoFrame, stream: av.video.stream.VideoStream, fps: float) -> int:
    """Presentation index of a decoded frame from its timestamp (exact for constant frame rate)."""
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    return int(round((float(frame.time) - start) * fps))


def stream_fps(stream: av.video.stream.VideoStream) -> float:
    """Average frame rate, falling back to FFmpeg's guesses for containers that omit it."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def iter_frames(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> Iterator[av.VideoFrame]:
    """Decode from the current position to the end, skipping corrupt packets.

    A demux error (data cut off) ends the stream, but frames still buffered in the decoder are
    flushed out: plain `container.decode()` raises and loses them.
    """
    packets = container.demux(stream)
    bad = 0
    while bad < _MAX_BAD_PACKETS:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError:
            break
        try:
            frames = packet.decode()
            bad = 0
        except av.FFmpegError:
            bad += 1
            continue
        yield from (f for f in frames if f.time is not None)
    with contextlib.suppress(av.FFmpegError):
        yield from (f for f in stream.codec_context.decode(None) if f.time is not None)


def seek_to_index(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, index: int,
    fps: float,
) -> None:
    """Seek to the keyframe at or before frame `index` (half a frame early, against rounding)."""
    start = stream.start_time or 0
    seconds = max(0.0, (index - 0.5) / fps) if fps > 0 else 0.0
    container.seek(start + int(seconds / stream.time_base), stream=stream, backward=True)


def _last_decodable(container: Any, stream: Any, reported: int, fps: float) -> int:
    """Index of the last frame that decodes: seek near the promised end, else walk from the start."""
    last = -1
    if reported > 0 and fps > 0:
        with contextlib.suppress(av.FFmpegError):
            seek_to_index(container, stream, reported - 1, fps)
            last = max((frame_index(f, stream, fps) for f in iter_frames(container, stream)),
                       default=-1)
    if last < 0:  # the tail's keyframe is missing: only a full walk finds where the data stops
        container.seek(stream.start_time or 0, stream=stream, backward=True)
        last = max((frame_index(f, stream, fps) for f in iter_frames(container, stream)),
                   default=-1)
    return last


def _empty_probe(error: str = "") -> dict[str, Any]:
    return {NUM_FRAMES: 0, FPS: 0.0, DURATION: 0.0, WIDTH: 0, HEIGHT: 0, ERROR: error}


def probe_video(path: str) -> dict[str, Any]:
    """NUM_FRAMES, FPS, DURATION, WIDTH, HEIGHT and ERROR ("" when fine) of a video file.

    Never raises for bad media: the reason goes in ERROR as "probe: <reason>". An over-reported
    frame count is corrected (NUM_FRAMES is what decodes) and still recorded in ERROR.
    """
    reason = precheck(path)
    if reason:
        return _empty_probe(f"probe: {reason}")
    try:
        with media_source(path) as src, av.open(src) as container:
            if not container.streams.video:
                return _empty_probe("probe: no video stream")
            return _probe_stream(container, container.streams.video[0])
    except av.FFmpegError as exc:
        return _empty_probe(f"probe: {describe_open_error(path, exc)}")
    except OSError as exc:
        return _empty_probe(f"probe: cannot read ({exc})")


def _probe_stream(container: Any, stream: Any) -> dict[str, Any]:
    fps = stream_fps(stream)
    if stream.duration is not None:
        duration = float(stream.duration * stream.time_base)
    else:  # Matroska/WebM keep only a container duration
        duration = container.duration / av.time_base if container.duration else 0.0
    exact = stream.frames > 0  # mp4 stores the count; elsewhere it is estimated from duration
    reported = stream.frames if exact else int(round(duration * fps))
    out = _empty_probe()
    out.update({FPS: fps, DURATION: duration, WIDTH: stream.codec_context.width,
                HEIGHT: stream.codec_context.height, NUM_FRAMES: reported})
    stream.thread_type = "AUTO"
    last = _last_decodable(container, stream, reported, fps)
    if last < 0:
        out.update({NUM_FRAMES: 0, ERROR: "probe: no decodable frames"})
    elif last + 1 != reported:
        out[NUM_FRAMES] = last + 1
        out[DURATION] = (last + 1) / fps if fps > 0 else duration
        if last + 1 < reported - (0 if exact else 1):  # estimates may be a frame off, no more
            out[ERROR] = (f"probe: {OVER_REPORTED} (container says {reported}, "
                          f"last decodable {last})")
    return out


def probe_image(path: str) -> dict[str, Any]:
    """WIDTH/HEIGHT of an image, NUM_FRAMES=1; reads the header only."""
    reason = precheck(path)
    if reason:
        return _empty_probe(f"probe: {reason}")
    try:
        with media_source(path) as src, Image.open(src) as image:
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
