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

import os
import time
from fractions import Fraction

import av
import numpy as np
from PIL import Image

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
) -> str:
    """Write a video of `frame_pattern` frames; `size` is (width, height) as encoders spell it.

    Odd sizes get yuv444p (yuv420p needs even dimensions); `gop` keeps several keyframes in short
    clips so seek paths are exercised.
    """
    width, height = size
    if pix_fmt is None:
        pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    with av.open(path, "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.gop_size = gop
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast"}
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frame_pattern(index, width, height), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
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
    path: str, indices: np.ndarray, out_hw: tuple[int, int] | None, *, backend: str = "auto",
    threads: int = 0, with_times: bool = False,
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
    from videosft.data.decode import decode_video  # late: decode imports nothing from here

    return decode_video(path, indices, out_hw, backend=backend, threads=threads, with_times=with_times)
