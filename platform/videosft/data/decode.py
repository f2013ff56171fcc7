"""Frames at chosen indices, as uint8 (T, H, W, 3), with bad media reported as data.

Two layers. `decode_video` / `decode_image` decode in-process and raise `DecodeError` with a
specific reason. `IsolatedDecoder` runs them in a child process with a timeout and an address-space
cap, because native decoders hang (decord's `get_batch` is known to spin on broken containers
while holding the GIL, so no thread can interrupt it) and balloon (tens of GB on long clips); only
a process can be killed. `decode_sample` is what a Ray Data stage calls: it never raises for bad media.

PyAV reads by a seek plan (`pyav_read.py`, `seek_plan.py`): each GOP decoded at most once, and
frames nothing references decoded only when wanted. decord decodes every frame from the keyframe,
so "auto" reads with PyAV wherever the two number frames alike (constant frame rate: the same
frames, pixel for pixel) and keeps decord, whose numbering it always used, elsewhere.

Resizing is done by one function (PIL bicubic on RGB) for every backend, so a frame looks the
same whichever decoder produced it: training and evaluation must see identical pixels.

Odd-but-valid media come out the same from every backend: frames are upright (the display matrix
applied: PyAV turns each frame, torchcodec turns them itself, and decord, which turns 180 degrees
in mp4, fails on quarter turns and ignores Matroska's, never reads a rotated stream: PyAV does),
10-bit and 4:2:2/4:4:4 streams are converted to 8-bit RGB by each decoder's FFmpeg (within a grey
level or so of each other), and with no output size a non-square sample aspect ratio is resized to
the display size. Variable-frame-rate streams are read by plan too, numbered by presentation
order like decord; their frame times (`with_times`) are the real timestamps.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import resource
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from PIL import Image

from videosft.data import av_stream, frame_buffer, probe, pyav_read
from videosft.schema import (
    ERROR,
    FRAME_INDICES,
    FRAMES,
    MEDIA_IMAGE,
    MEDIA_PATH,
    MEDIA_TEXT,
    MEDIA_TYPE,
    MEDIA_VIDEO,
    NUM_FRAMES,
)

BACKENDS = ("auto", "decord", "pyav", "torchcodec")
_DECORD_CHUNK = 16  # frames per get_batch: bounds full-resolution memory before resizing


class DecodeError(Exception):
    """A decode failed for a reason worth recording (the message is that reason)."""


def resize_frames(frames: np.ndarray, out_hw: tuple[int, int] | None) -> np.ndarray:
    """Resize (T, H, W, 3) uint8 frames to out_hw=(H, W) with PIL bicubic; None keeps the size."""
    if out_hw is None or frames.shape[1:3] == tuple(out_hw):
        return np.ascontiguousarray(frames)
    height, width = out_hw
    out = np.empty((len(frames), height, width, 3), np.uint8)
    for i, frame in enumerate(frames):
        out[i] = np.asarray(Image.fromarray(frame).resize((width, height), Image.BICUBIC))
    return out


def _empty_frames(out_hw: tuple[int, int] | None) -> np.ndarray:
    return np.zeros((0, *(out_hw or (0, 0)), 3), np.uint8)


def _beyond(index: int, last: int) -> DecodeError:
    return DecodeError(f"index {index} beyond last decodable frame {last}")


class _Rotated(Exception):
    """decord cannot be trusted with this stream's display matrix: read it with PyAV."""


def _display_hw(frames: np.ndarray, sar: Any) -> tuple[int, int] | None:
    """The display size of frames with a non-square sample aspect ratio (None: square)."""
    if not sar or float(sar) <= 0 or float(sar) == 1.0 or not frames.size:
        return None
    width, height = av_stream.display_size(frames.shape[2], frames.shape[1], 0, sar)
    return height, width


def _constant_or_times(times: np.ndarray) -> np.ndarray | None:
    """None when frame times are evenly spaced (index / fps is then exact), else the times."""
    steps = np.diff(times)
    if steps.size == 0 or np.ptp(steps) <= 1e-4 + 1e-3 * float(np.mean(steps)):
        return None
    return times


def _decode_decord(
    path: str, indices: np.ndarray, out_hw: tuple[int, int] | None, threads: int = 0
) -> tuple[np.ndarray, np.ndarray | None]:
    """decord: fast random access; counts frames from packets, so it sees what really decodes.

    Raises _Rotated for a stream with a display rotation (see the module docstring).
    """
    import decord

    rotation, sar = av_stream.orientation(path)
    if rotation:
        raise _Rotated
    with av_stream.media_source(path) as src:
        reader = decord.VideoReader(src, ctx=decord.cpu(0), num_threads=threads)
        if indices.size and indices.max() >= len(reader):
            raise _beyond(int(indices.max()), len(reader) - 1)
        wanted = np.unique(indices)
        starts = reader.get_frame_timestamp(np.arange(len(reader)))[:, 0]
        chunks = []
        for i in range(0, len(wanted), _DECORD_CHUNK):
            raw = reader.get_batch(wanted[i : i + _DECORD_CHUNK]).asnumpy()
            chunks.append(resize_frames(raw, out_hw or _display_hw(raw, sar)))
    times = _constant_or_times(starts - starts[0]) if len(starts) else None
    if not chunks:
        return _empty_frames(out_hw), None
    at = np.searchsorted(wanted, indices)
    return np.concatenate(chunks)[at], None if times is None else times[indices]


def torchcodec_missing() -> str:
    """Why the optional torchcodec backend cannot run here ("" when it can).

    torchcodec links against a system FFmpeg (4-8) that it tries to load at import, so being
    installed is not enough. Older releases raised at import when no FFmpeg loaded; 0.17 imports
    fine, sets `torchcodec.ffmpeg_major_version` to None and fails at the first decode, so both
    are checked.
    """
    try:
        import torchcodec
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except ImportError:
        return "torchcodec is not installed (pip install torchcodec)"
    except Exception as exc:  # torchcodec raises RuntimeError when no FFmpeg library loads
        return f"torchcodec cannot load FFmpeg ({_first_line(exc)})"
    if hasattr(torchcodec, "ffmpeg_major_version") and torchcodec.ffmpeg_major_version is None:
        return (
            "torchcodec cannot load FFmpeg (no libavutil/libavcodec of FFmpeg 4-8 on the library path; "
            "install FFmpeg's shared libraries or point LD_LIBRARY_PATH at them)"
        )
    return ""


def _decode_torchcodec(
    path: str, indices: np.ndarray, out_hw: tuple[int, int] | None, threads: int = 0
) -> tuple[np.ndarray, np.ndarray | None]:
    """torchcodec in exact seek mode: it scans the file once, so frame numbers are real; it
    applies the display rotation itself."""
    from torchcodec.decoders import VideoDecoder

    wanted = np.unique(indices)
    with av_stream.media_source(path) as src:
        reader = VideoDecoder(src, seek_mode="exact", dimension_order="NHWC", num_ffmpeg_threads=threads)
        if wanted.size and wanted[-1] >= len(reader):
            raise _beyond(int(wanted[-1]), len(reader) - 1)
        if not wanted.size:
            return _empty_frames(out_hw), None
        batch = reader.get_frames_at(wanted.tolist())
        raw = batch.data.numpy()
        sar = None if out_hw else av_stream.orientation(path)[1]
        frames = resize_frames(raw, out_hw or _display_hw(raw, sar))
        begin = reader.metadata.begin_stream_seconds or 0.0
        times = batch.pts_seconds.numpy().astype(np.float64) - float(begin)
    at = np.searchsorted(wanted, indices)
    fps = float(reader.metadata.average_fps or 0.0)
    regular = fps > 0 and np.allclose(times, wanted / fps, atol=0.5 / fps)
    return frames[at], None if regular else times[at]


def _decode_pyav(
    path: str,
    indices: np.ndarray,
    out_hw: tuple[int, int] | None,
    *,
    planned: bool = True,
    constant_rate_only: bool = False,
    threads: int = 0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """PyAV reading by a seek plan (see pyav_read.py); raises pyav_read.VariableRate before any
    decoding when `constant_rate_only` and the stream's timestamps are irregular and unscanned."""
    wanted = np.unique(indices)
    with av_stream.media_source(path) as src, av.open(src) as container:
        if not container.streams.video:
            raise DecodeError("no video stream")
        stream = container.streams.video[0]
        got, last, numbering = pyav_read.read_frames(
            container,
            stream,
            wanted,
            planned=planned,
            constant_rate_only=constant_rate_only,
            scan=not av_stream.is_uri(path),
            threads=threads,
        )
        sar = stream.sample_aspect_ratio
        times = None if numbering.pts is None else numbering.seconds(indices)
    missing = [int(i) for i in wanted if int(i) not in got]
    if missing and missing[-1] > last:
        raise _beyond(missing[-1], last)
    if missing:
        raise DecodeError(f"frame {missing[0]} could not be decoded")
    if not got:
        return _empty_frames(out_hw), None
    raw = np.stack([got[int(i)] for i in wanted])
    frames = resize_frames(raw, out_hw or _display_hw(raw, sar))
    return frames[np.searchsorted(wanted, indices)], times


def decode_video(
    path: str,
    indices: np.ndarray,
    out_hw: tuple[int, int] | None,
    *,
    backend: str = "auto",
    legacy: bool = False,
    threads: int = 0,
    with_times: bool = False,
) -> Any:
    """uint8 (len(indices), H, W, 3) upright frames in the order asked (repeats allowed).

    backend "auto" reads with planned PyAV wherever it can number frames as decord does (constant
    frame rate, or any rate once the packets are scanned: local files), at a fraction of the
    decoding; otherwise it tries decord and falls back to PyAV. PyAV's error is the one reported
    (it says why: decord mostly says "Error reading"). Raises DecodeError on bad media.
    legacy=True is the earlier strategy (decord first, PyAV by the gap rule), kept so benchmarks
    can compare the two side by side; it returns the same frames. threads: decoder threads (0:
    the decoder's choice, about one per core; a pipeline actor holding one CPU passes 1, which
    costs ~10% less CPU per frame than letting two actors' decoders each spread over every core).
    backend "torchcodec" (optional, when installed with an FFmpeg it can load) decodes with
    torchcodec only; its errors are explained by PyAV's diagnosis of the file. A rotated stream is
    read by PyAV under backend "decord" (module docstring). with_times=True returns (frames,
    times): seconds of each frame from the first one, or None where that is index / fps (a
    constant frame rate).
    """
    frames, times = _decode_video(path, indices, out_hw, backend, legacy, threads)
    return (frames, times) if with_times else frames


def _decode_video(
    path: str, indices: Any, out_hw: tuple[int, int] | None, backend: str, legacy: bool, threads: int
) -> tuple[np.ndarray, np.ndarray | None]:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    reason = probe.precheck(path)
    if reason:
        raise DecodeError(reason)
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if indices.size and indices.min() < 0:
        raise DecodeError(f"negative frame index {int(indices.min())}")
    if backend == "torchcodec":
        try:
            return _decode_torchcodec(path, indices, out_hw, threads)
        except DecodeError:
            raise
        except Exception as exc:  # torchcodec raises RuntimeError/ValueError on bad media
            raise _explained(path, backend, exc) from exc
    if backend == "auto" and not legacy:
        with contextlib.suppress(pyav_read.VariableRate):
            return _pyav_or_reason(path, indices, out_hw, planned=True, constant_rate_only=True, threads=threads)
    if backend in ("auto", "decord"):
        try:
            return _decode_decord(path, indices, out_hw, threads)
        except DecodeError:
            raise
        except _Rotated:
            pass
        except Exception as exc:  # decord raises DECORDError, IndexError, RuntimeError
            if backend == "decord":
                raise _explained(path, backend, exc) from exc
    return _pyav_or_reason(path, indices, out_hw, planned=not legacy, threads=threads)


def _explained(path: str, backend: str, exc: BaseException) -> DecodeError:
    """A decord/torchcodec failure, worded by PyAV's diagnosis of the file when it has one (they
    rarely say why themselves)."""
    return DecodeError(probe.diagnose(path) or f"{backend}: {_first_line(exc)}")


def _pyav_or_reason(
    path: str, indices: np.ndarray, out_hw: tuple[int, int] | None, **how: Any
) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        return _decode_pyav(path, indices, out_hw, **how)
    except av.FFmpegError as exc:
        raise DecodeError(probe.describe_open_error(path, exc)) from exc


def _first_line(exc: BaseException) -> str:
    """The informative line of a (possibly multi-line, decord-prefixed) exception message."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return re.sub(r"^(\[[\d:]+\] \S+:\d+: )+", "", text)[:200]


def decode_image(path: str, out_hw: tuple[int, int] | None) -> np.ndarray:
    """uint8 (1, H, W, 3) RGB; raises DecodeError on a missing, empty or non-image file."""
    reason = probe.precheck(path)
    if reason:
        raise DecodeError(reason)
    try:
        with av_stream.media_source(path) as src, Image.open(src) as image:
            rgb = np.asarray(image.convert("RGB"))
    except (OSError, Image.DecompressionBombError) as exc:
        raise DecodeError(f"not an image ({_first_line(exc)})") from exc
    return resize_frames(rgb[None], out_hw)


@dataclass
class DecodeResult:
    """Frames or the reason there are none ("decode: ..."); exactly one is set."""

    frames: np.ndarray | None
    error: str = ""
    times: np.ndarray | None = None  # seconds from the first frame; None: index / fps


DecodeFn = Callable[..., np.ndarray]


def _child_main(
    conn: Any, decode_fn: DecodeFn, memory_mb: int | None, alarm_s: int, env: dict[str, str], shared: bool = False
) -> None:
    """Child loop: decode requests until the pipe closes; replies with a header, then the frames
    in the shared buffer (when they fit its capacity as of the request) or as raw bytes."""
    os.environ.update(env)  # a forkserver child inherits the server's env, not the caller's
    if memory_mb:
        limit = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, signal.SIG_DFL)  # the kernel kills us even if the GIL is held
    conn.send(("ready",))
    buffer = frame_buffer.receive(conn) if shared else None
    while True:
        try:
            kind, path, indices, out_hw, backend, threads, capacity = conn.recv()
        except (EOFError, OSError):
            return
        signal.alarm(alarm_s)  # orphan guard: dies even if the parent is gone
        try:
            times = None
            if kind == MEDIA_IMAGE:
                frames = decode_image(path, out_hw)
            else:
                frames = decode_fn(path, np.asarray(indices), out_hw, backend=backend, threads=threads, with_times=True)
                if isinstance(frames, tuple):
                    frames, times = frames
            frames = np.ascontiguousarray(frames, dtype=np.uint8)
            reply: tuple = ("ok", frames.shape, None if times is None else np.asarray(times).tolist())
        except DecodeError as exc:
            reply, frames = ("err", str(exc)), None
        except MemoryError:
            reply, frames = ("err", f"out of memory (cap {memory_mb} MiB)"), None
        except Exception as exc:  # a bug in a decoder is still this row's problem only
            reply, frames = ("err", f"{type(exc).__name__}: {_first_line(exc)}"), None
        if buffer is not None and frames is not None and 0 < frames.nbytes <= capacity:
            buffer.write(frames)
            reply, frames = (*reply, "shared"), None
        signal.alarm(0)
        conn.send(reply)
        if frames is not None and frames.nbytes:
            conn.send_bytes(memoryview(frames).cast("B"))


class IsolatedDecoder:
    """Decodes in a child process; a hang or crash costs one row and a restart, never the caller.

    Safe inside a Ray Data actor: the child starts lazily on the first call (so the object can be
    built and pickled cheaply), uses 'forkserver' (never fork from a threaded Ray worker), and is
    killed on close()/__del__. Calls are serialised with a lock (actors may be concurrent).
    """

    def __init__(
        self,
        timeout_s: float = 20.0,
        memory_limit_mb: int | None = 8192,
        *,
        backend: str = "auto",
        decode_fn: DecodeFn = decode_video,
        start_timeout_s: float = 120.0,
        threads: int = 0,
        shared_frames: bool = True,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.timeout_s, self.memory_limit_mb = timeout_s, memory_limit_mb
        self.backend, self.decode_fn, self.start_timeout_s = backend, decode_fn, start_timeout_s
        self.threads = threads  # decoder threads per call (0: the decoder's choice)
        self.shared_frames = shared_frames  # frames back through shared memory where available
        self.restarts = 0  # how many children were killed or died (for stage metrics)
        self._proc: Any = None
        self._conn: Any = None
        self._frames: frame_buffer.SharedFrames | None = None  # outlives children; see frame_buffer
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_proc=None, _conn=None, _frames=None, _lock=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _start(self) -> None:
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":  # pay the av/decord import once, in the server
            ctx.set_forkserver_preload(["videosft.data.decode"])
        parent, child = ctx.Pipe(duplex=True)
        alarm_s = int(self.timeout_s) + 30
        if self._frames is None and self.shared_frames:
            self._frames = frame_buffer.SharedFrames.create()
        self._proc = ctx.Process(
            target=_child_main,
            daemon=True,
            name="videosft-decoder",
            args=(child, self.decode_fn, self.memory_limit_mb, alarm_s, dict(os.environ), self._frames is not None),
        )
        self._proc.start()
        child.close()
        self._conn = parent
        if not parent.poll(self.start_timeout_s) or parent.recv() != ("ready",):
            raise RuntimeError(f"no ready signal in {self.start_timeout_s:g}s")
        if self._frames is not None:
            frame_buffer.send(parent, self._frames, self._proc.pid)

    def _kill(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()
        with contextlib.suppress(Exception):
            self._proc.kill()
            self._proc.join(5)
            self._proc.close()
        self._proc = self._conn = None

    def close(self) -> None:
        """Stop the child and free the frame buffer; a later call starts afresh."""
        self._kill()
        if self._frames is not None:
            with contextlib.suppress(Exception):
                self._frames.close()
            self._frames = None

    __del__ = close  # _kill never raises, so this is safe at interpreter exit too

    def __enter__(self) -> IsolatedDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def decode(self, path: str, indices: np.ndarray, out_hw: tuple[int, int] | None) -> DecodeResult:
        """Video frames at `indices`, or the error; never raises for bad media."""
        indices = np.asarray(indices, np.int64).tolist()
        request = (MEDIA_VIDEO, path, indices, tuple(out_hw) if out_hw else None, self.backend, self.threads)
        return self._call(request, len(indices))

    def decode_image(self, path: str, out_hw: tuple[int, int] | None) -> DecodeResult:
        """Image as (1, H, W, 3), isolated too (decompression bombs exist)."""
        return self._call((MEDIA_IMAGE, path, [], tuple(out_hw) if out_hw else None, "auto", 1), 1)

    def _capacity(self, frames: int, out_hw: tuple[int, int] | None) -> int:
        """Shared-buffer bytes the child may use for this request, grown first to what `frames`
        frames at `out_hw` take (without a size, what it already holds); 0: use the pipe."""
        if self._frames is None:
            return 0
        return self._frames.reserve(frames * out_hw[0] * out_hw[1] * 3 if out_hw else 0)

    def _call(self, request: tuple, frames: int) -> DecodeResult:
        with self._lock:
            try:
                if self._proc is None or not self._proc.is_alive():
                    self._start()
            except Exception as exc:  # a broken environment: every row says so, none crashes
                self._kill()
                return DecodeResult(None, f"decode: decoder process failed to start ({exc})")
            try:
                return self._exchange((*request, self._capacity(frames, request[3])))
            except TimeoutError:
                self._restart()
                return DecodeResult(None, f"decode: timeout after {self.timeout_s:g}s")
            except (EOFError, OSError):
                how = self._death()
                self._restart()
                return DecodeResult(
                    None, f"decode: decoder process died ({how}; memory cap {self.memory_limit_mb} MiB)"
                )

    def _death(self) -> str:
        """How the child ended, e.g. "SIGSEGV" (its pipe closes a moment before it is reaped)."""
        self._proc.join(5)
        code = self._proc.exitcode
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return signal.Signals(-code).name
        return f"exit code {code}"

    def _restart(self) -> None:
        self.restarts += 1
        self._kill()  # the next call starts a fresh child

    def _exchange(self, request: tuple) -> DecodeResult:
        self._conn.send(request)
        if not self._conn.poll(self.timeout_s):
            raise TimeoutError
        reply = self._conn.recv()
        if reply[0] == "err":
            return DecodeResult(None, f"decode: {reply[1]}")
        if reply[-1] == "shared":
            frames = self._frames.read(reply[1])
        else:
            frames = np.empty(reply[1], np.uint8)
            if frames.nbytes:  # the child sends no bytes message for an empty array
                self._conn.recv_bytes_into(memoryview(frames).cast("B"))
        times = reply[2]
        return DecodeResult(frames, "", None if times is None else np.asarray(times, np.float64))


def _refusal(row: dict[str, Any], kind: str, path: str, indices: np.ndarray) -> str:
    """Why a row cannot be decoded, found from its columns alone ("" if it may be)."""
    if kind not in (MEDIA_VIDEO, MEDIA_IMAGE):
        return f"decode: unknown media type {kind!r}"
    if not path:
        return "decode: missing path"
    available = int(row.get(NUM_FRAMES) or 0)  # probed count: spare decord an over-read
    if kind == MEDIA_VIDEO and available > 0 and indices.size and indices.max() >= available:
        return f"decode: {_beyond(int(indices.max()), available - 1)}"
    return ""


def decode_sample(
    row: dict[str, Any], indices: np.ndarray, out_hw: tuple[int, int] | None, decoder: IsolatedDecoder | None = None
) -> dict[str, Any]:
    """Row plus FRAMES, FRAME_INDICES and ERROR; never raises for bad media.

    decoder=None decodes in-process (tests, trusted data); pipelines pass an IsolatedDecoder.
    Rows already in error keep it; indices past a probed NUM_FRAMES fail here, before a decoder
    is asked for frames the file does not have. Failed rows get (0, H, W, 3) frames, so the
    column keeps one type for Arrow.
    """
    out = dict(row)
    indices = np.asarray(indices, np.int64).reshape(-1)
    out.update({FRAMES: _empty_frames(out_hw), FRAME_INDICES: np.zeros(0, np.int64)})
    out.setdefault(ERROR, "")
    kind, path = row.get(MEDIA_TYPE, MEDIA_TEXT), row.get(MEDIA_PATH) or ""
    if out[ERROR] or kind == MEDIA_TEXT:
        return out
    result = DecodeResult(None, _refusal(row, kind, path, indices))
    if not result.error:
        result = _run(decoder, kind, path, indices, out_hw)
    if result.error:
        out[ERROR] = result.error
    else:
        out[FRAMES] = result.frames
        out[FRAME_INDICES] = np.zeros(1, np.int64) if kind == MEDIA_IMAGE else indices
    return out


def _run(
    decoder: IsolatedDecoder | None, kind: str, path: str, indices: np.ndarray, out_hw: tuple[int, int] | None
) -> DecodeResult:
    if decoder is not None:
        if kind == MEDIA_IMAGE:
            return decoder.decode_image(path, out_hw)
        return decoder.decode(path, indices, out_hw)
    try:
        if kind == MEDIA_IMAGE:
            return DecodeResult(decode_image(path, out_hw))
        frames, times = decode_video(path, indices, out_hw, with_times=True)
        return DecodeResult(frames, "", times)
    except DecodeError as exc:
        return DecodeResult(None, f"decode: {exc}")
    except Exception as exc:  # in-process has no child to absorb decoder bugs: keep them as data
        return DecodeResult(None, f"decode: {type(exc).__name__}: {_first_line(exc)}")
