"""Tiny real media files, good and broken, for tests and benchmarks.

Every good video carries its own frame index in its pixels (8 black/white stripes in the top half,
one bit each), so a test can check that a decoder returned exactly the frames it was asked for,
after lossy coding and resizing. Broken files reproduce what real crawls contain: empty files,
downloads cut before the `moov` atom, text saved as `.mp4`, and `faststart` mp4s cut mid-`mdat`
whose header still promises every frame (the over-reported frame count that makes decord spin).

`faulty_decode` is a stand-in decode function for `IsolatedDecoder(decode_fn=...)`: it implements
the same seam as `decode.decode_video` but sleeps, crashes or eats memory on special paths, so the
isolation machinery can be tested without a real pathological file.
"""

from __future__ import annotations

import contextlib
import os
import time
from fractions import Fraction

import av
import numpy as np
from PIL import Image

from videosft.data.decode import decode_video

PATTERN_BITS = 8
PATTERN_MAX_FRAMES = 1 << PATTERN_BITS  # indices wrap modulo this


def frame_pattern(index: int, width: int, height: int) -> np.ndarray:
    """RGB frame whose top half encodes `index` in stripes; the bottom half is an index colour."""
    img = np.zeros((height, width, 3), np.uint8)
    top = max(1, height // 2)
    for bit in range(PATTERN_BITS):
        if (index >> bit) & 1:
            img[:top, bit * width // PATTERN_BITS : (bit + 1) * width // PATTERN_BITS] = 255
    img[top:] = ((index * 37) % 256, (index * 91 + 60) % 256, 200)
    return img


def read_index(frame: np.ndarray) -> int:
    """Recover the index `frame_pattern` drew, from a decoded (possibly resized) RGB frame."""
    height, width = frame.shape[:2]
    row = frame[height // 4].astype(np.float32).mean(axis=-1)
    centres = [(2 * bit + 1) * width // (2 * PATTERN_BITS) for bit in range(PATTERN_BITS)]
    return sum(1 << bit for bit, x in enumerate(centres) if row[x] > 128)


def has_encoder(codec: str) -> bool:
    """Whether this PyAV build can encode `codec` (libvpx is missing from some wheels)."""
    try:
        av.codec.Codec(codec, "w")
    except Exception:  # av raises UnknownCodecError or ValueError depending on version
        return False
    return True


def write_video(
    path: str,
    num_frames: int = 16,
    size: tuple[int, int] = (64, 48),
    fps: float = 8.0,
    *,
    codec: str = "libx264",
    pix_fmt: str | None = None,
    gop: int = 12,
    container_options: dict[str, str] | None = None,
    rotation: int = 0,
    sar: Fraction | None = None,
    pts_ms: list[int] | None = None,
) -> str:
    """Write a video of `frame_pattern` frames; `size` is (width, height) as encoders spell it.

    Odd sizes get yuv444p (yuv420p needs even dimensions); `gop` keeps several keyframes in short
    clips so seek paths are exercised. Odd-but-valid variants: `rotation` (counter-clockwise
    degrees, written as the stream's display matrix), `sar` (sample aspect ratio), `pix_fmt`
    (e.g. yuv420p10le, yuv422p, yuv444p), `pts_ms` (each frame's timestamp in milliseconds: a
    variable frame rate).
    """
    width, height = size
    if pix_fmt is None:
        pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    with av.open(path, "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.gop_size = gop
        if sar is not None:
            stream.codec_context.sample_aspect_ratio = sar
        if rotation:
            stream.set_display_rotation(rotation)
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if codec == "libx264":
            stream.options = {
                "crf": "18",
                "preset": "veryfast",
                "x264-params": "threads=1",
            }  # same bytes on any core count
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frame_pattern(index, width, height), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[index], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


VFR_PTS_MS = [0, 100, 150, 400, 420, 440, 700, 1000, 1050, 1100, 1500, 1600, 1700, 2000, 2100, 2500]


def write_odd_set(directory: str) -> dict[str, str]:
    """Awkward but valid videos, 16 frames each: {kind: path}. Rotations in mp4, mov and mkv
    (decord treats each differently), a non-square sample aspect ratio, 10-bit and 4:2:2/4:4:4
    chroma, variable frame rate in mp4 and mkv, and a Matroska header whose duration promises
    far more frames than the stream has."""
    os.makedirs(directory, exist_ok=True)
    join = lambda name: os.path.join(directory, name)  # noqa: E731
    paths = {
        "rot90_mp4": write_video(join("rot90.mp4"), rotation=90, gop=6),
        "rot270_mp4": write_video(join("rot270.mp4"), rotation=270, gop=6),
        "rot180_mp4": write_video(join("rot180.mp4"), rotation=180, gop=6),
        "rot90_mov": write_video(join("rot90.mov"), rotation=90, gop=6),
        "rot90_mkv": write_video(join("rot90.mkv"), rotation=90, gop=6),
        "sar_4_3": write_video(join("sar.mp4"), sar=Fraction(4, 3), gop=6),
        "yuv420p10": write_video(join("p10.mp4"), pix_fmt="yuv420p10le", gop=6),
        "yuv422p": write_video(join("p422.mp4"), pix_fmt="yuv422p", gop=6),
        "yuv444p": write_video(join("p444.mp4"), pix_fmt="yuv444p", gop=6),
        "vfr_mp4": write_video(join("vfr.mp4"), pts_ms=VFR_PTS_MS, gop=6),
        "vfr_mkv": write_video(join("vfr.mkv"), pts_ms=VFR_PTS_MS, gop=6),
        "long_header_mkv": write_long_header_mkv(join("long_header.mkv")),
    }
    return paths


def write_long_header_mkv(path: str, num_frames: int = 16, claimed_s: float = 75.0) -> str:
    """Matroska whose Segment Duration claims `claimed_s` seconds (600 frames at 8 fps) while the
    stream holds `num_frames`: the header is patched after writing, as some muxers leave it."""
    import struct

    write_video(path, num_frames, gop=6)
    with open(path, "rb") as handle:
        data = bytearray(handle.read())
    at = data.find(b"\x44\x89")  # the Duration element id, in the Segment Info
    if at < 0:
        raise RuntimeError("no Matroska Duration element to patch")
    size = data[at + 2] & 0x7F  # a one-byte EBML size: 4 or 8 (float or double)
    scale = 1_000_000  # TimecodeScale default: durations in milliseconds
    value = claimed_s * 1e9 / scale
    data[at + 3 : at + 3 + size] = struct.pack(">f" if size == 4 else ">d", value)
    with open(path, "wb") as handle:
        handle.write(bytes(data))
    return path


def write_webm(path: str, num_frames: int = 16, codec: str = "libvpx-vp9") -> str:
    """VP9 (or VP8 with codec="libvpx") in WebM; callers skip when `has_encoder` is False."""
    return write_video(path, num_frames, codec=codec)


def write_mkv(path: str, num_frames: int = 16) -> str:
    """H.264 in Matroska: no per-stream frame count in the header, only a duration."""
    return write_video(path, num_frames)


def write_odd_size(path: str, size: tuple[int, int] = (63, 37), num_frames: int = 8) -> str:
    """Odd width and height (yuv444p), which yuv420p-only code paths get wrong."""
    return write_video(path, num_frames, size=size)


def write_empty(path: str) -> str:
    """A 0-byte file, as left by a failed download."""
    open(path, "wb").close()
    return path


def write_text_as_video(path: str) -> str:
    """An HTML error page saved under a video name, as crawlers often store."""
    with open(path, "w") as handle:
        handle.write("<html><body>403 Forbidden</body></html>\n")
    return path


def write_truncated_mp4(path: str, num_frames: int = 16, keep_fraction: float = 0.5) -> str:
    """A normal mp4 (moov at the end) cut short: no moov atom, so not a readable container."""
    write_video(path, num_frames)
    _truncate(path, keep_fraction)
    return path


def decodable_frames(path: str) -> int:
    """Frames a plain packet-by-packet PyAV decode gets out of `path` (one decoder thread, a
    damaged packet skipped): the independent answer tests hold the probe to. A cut file's count
    depends on its encoded bytes, which libx264 does not keep identical run to run in a process
    that also loaded decord's FFmpeg (measured: 1-30 of 300 encodes differ)."""
    count = 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        for packet in container.demux(stream):
            with contextlib.suppress(av.FFmpegError):
                count += len(packet.decode())  # the last, empty packet flushes the decoder
    return count


def write_overreported_mp4(path: str, num_frames: int = 40, keep_fraction: float = 0.6) -> str:
    """A faststart mp4 (moov first) cut mid-mdat: the header promises `num_frames`, fewer decode."""
    write_video(path, num_frames, container_options={"movflags": "faststart"})
    _truncate(path, keep_fraction)
    return path


def write_image(path: str, index: int = 0, size: tuple[int, int] = (64, 48)) -> str:
    """A PNG/JPEG (by suffix) carrying `frame_pattern(index)`."""
    Image.fromarray(frame_pattern(index, *size)).save(path)
    return path


def _truncate(path: str, keep_fraction: float) -> None:
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.truncate(int(size * keep_fraction))


def write_fixture_set(directory: str) -> dict[str, str]:
    """Write one of every fixture kind into `directory`; returns {kind: path} (for benchmarks)."""
    os.makedirs(directory, exist_ok=True)
    join = lambda name: os.path.join(directory, name)  # noqa: E731
    paths = {
        "good": write_video(join("good.mp4"), 24),
        "one_frame": write_video(join("one_frame.mp4"), 1),
        "mkv": write_mkv(join("good.mkv")),
        "odd_size": write_odd_size(join("odd.mp4")),
        "empty": write_empty(join("empty.mp4")),
        "truncated": write_truncated_mp4(join("truncated.mp4")),
        "text": write_text_as_video(join("text.mp4")),
        "overreported": write_overreported_mp4(join("overreported.mp4")),
        "image": write_image(join("image.png"), 5),
    }
    if has_encoder("libvpx-vp9"):
        paths["webm"] = write_webm(join("good.webm"))
    return paths


# --- a faulty stand-in for decode.decode_video (same signature), for isolation tests ---
SLEEP_PREFIX = "sleep://"  # sleeps this many seconds, e.g. "sleep://30"
CRASH_PREFIX = "crash://"  # dies by SIGSEGV-like abort, as a native decoder bug would
HOG_PREFIX = "hog://"  # allocates this many MiB, e.g. "hog://20000", to hit the memory cap
SPIN_PREFIX = "spin://"  # busy-loops in Python forever (holds the GIL between switches)


def faulty_decode(
    path: str,
    indices: np.ndarray,
    out_hw: tuple[int, int] | None,
    *,
    backend: str = "auto",
    threads: int = 0,
    with_times: bool = False,
) -> np.ndarray:
    """Misbehave on the special prefixes above, else decode normally."""
    if path.startswith(SLEEP_PREFIX):
        time.sleep(float(path[len(SLEEP_PREFIX) :]))
    elif path.startswith(CRASH_PREFIX):
        os.abort()
    elif path.startswith(HOG_PREFIX):
        hog = np.ones(int(path[len(HOG_PREFIX) :]) << 20, np.uint8)  # touch every page
        return hog[:0].reshape(0, 1, 1, 1)
    elif path.startswith(SPIN_PREFIX):
        while True:
            pass

    return decode_video(path, indices, out_hw, backend=backend, threads=threads, with_times=with_times)
