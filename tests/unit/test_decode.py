"""Decode: exact frames from every backend, specific errors as data, hangs and crashes contained."""

from __future__ import annotations

import pickle
import time
from fractions import Fraction

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videosft import schema as S
from videosft.data import av_stream
from videosft.data import decode as D
from videosft.data import media_fixtures as mf
from videosft.data.decode import DecodeError, IsolatedDecoder, decode_sample, decode_video

GOOD = ("good", "one_frame", "mkv", "odd_size", "webm")


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("media")
    paths = mf.write_fixture_set(str(directory))
    paths["long"] = mf.write_video(str(directory / "long.mp4"), 150, gop=10)
    return paths


@pytest.fixture(scope="module")
def decoder():
    with IsolatedDecoder(timeout_s=10) as dec:
        yield dec


def _indices(frames: np.ndarray) -> list[int]:
    return [mf.read_index(f) for f in frames]


@pytest.mark.parametrize("backend", ["decord", "pyav"])
@pytest.mark.parametrize("kind", GOOD)
def test_exact_frames_each_backend(media, kind, backend):
    if kind not in media:
        pytest.skip("PyAV build has no VP9 encoder")
    count = {"good": 24, "one_frame": 1, "mkv": 16, "odd_size": 8, "webm": 16}[kind]
    wanted = np.array([count - 1, 0, count // 2, count // 2], np.int64)  # unsorted, repeated
    frames = decode_video(media[kind], wanted, (32, 40), backend=backend)
    assert frames.shape == (4, 32, 40, 3) and frames.dtype == np.uint8
    assert _indices(frames) == wanted.tolist()


def test_native_size_and_odd_dimensions(media):
    frames = decode_video(media["odd_size"], np.arange(8), None, backend="pyav")
    assert frames.shape == (8, 37, 63, 3)


def test_backends_agree_on_pixels(media):
    wanted = np.arange(0, 24, 5)
    a = decode_video(media["good"], wanted, (24, 32), backend="decord").astype(np.int16)
    b = decode_video(media["good"], wanted, (24, 32), backend="pyav").astype(np.int16)
    assert np.abs(a - b).mean() < 2.0


@pytest.mark.parametrize("backend", ["auto", "decord", "pyav"])
def test_thread_count_changes_no_pixel(media, backend):
    wanted = np.array([149, 3, 77, 77, 120])
    one = decode_video(media["long"], wanted, (16, 32), backend=backend, threads=1)
    auto = decode_video(media["long"], wanted, (16, 32), backend=backend, threads=0)
    assert np.array_equal(one, auto) and _indices(one) == wanted.tolist()
    with IsolatedDecoder(timeout_s=10, threads=1) as isolated:  # the pipeline's setting
        assert np.array_equal(isolated.decode(media["long"], wanted, (16, 32)).frames, one)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 149), min_size=1, max_size=12))
def test_any_index_set_decodes_exactly_with_pyav(media, wanted):
    frames = decode_video(media["long"], np.array(wanted), (16, 32), backend="pyav")
    assert _indices(frames) == wanted


@pytest.mark.parametrize("backend", ["auto", "decord", "pyav"])
@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("empty", "file is empty (0 bytes)"),
        ("truncated", "no moov atom / not a video container"),
        ("text", "not a video container (file is text)"),
    ],
)
def test_broken_files_raise_specific_reasons(media, kind, reason, backend):
    with pytest.raises(DecodeError, match=f"^{reason.replace('(', '.').replace(')', '.')}$"):
        decode_video(media[kind], np.array([0]), None, backend=backend)


def test_index_errors(media):
    with pytest.raises(DecodeError, match="^index 40 beyond last decodable frame 23$"):
        decode_video(media["good"], np.array([0, 40]), None)
    with pytest.raises(DecodeError, match=r"^index 30 beyond last decodable frame (\d+)$") as cut:
        decode_video(media["overreported"], np.array([30]), None, backend="pyav")
    assert _near_the_cut(int(cut.value.args[0].rsplit(" ", 1)[1]), media["overreported"])
    with pytest.raises(DecodeError, match="^negative frame index -1$"):
        decode_video(media["good"], np.array([-1]), None)
    with pytest.raises(ValueError, match="backend must be one of"):
        decode_video(media["good"], np.array([0]), None, backend="ffmpeg")


def _near_the_cut(last: int, path: str) -> bool:
    """Where a damaged tail ends is a frame or two apart between decoders (frame threads drop
    what was in flight at the error; concealment may or may not emit the cut frame)."""
    return abs(last - (mf.decodable_frames(path) - 1)) <= 2


def _row(kind: str, path: str, **extra) -> dict:
    return {S.ID: "r", S.MEDIA_TYPE: kind, S.MEDIA_PATH: path, **extra}


@pytest.mark.parametrize("isolated", [False, True])
def test_decode_sample_never_raises(media, decoder, isolated, tmp_path):
    dec = decoder if isolated else None
    cases = {
        "decode: file is empty (0 bytes)": _row(S.MEDIA_VIDEO, media["empty"]),
        "decode: no moov atom / not a video container": _row(S.MEDIA_VIDEO, media["truncated"]),
        "decode: not a video container (file is text)": _row(S.MEDIA_VIDEO, media["text"]),
        "decode: missing path": _row(S.MEDIA_VIDEO, ""),
        f"decode: file not found ({tmp_path}/x.mp4)": _row(S.MEDIA_VIDEO, f"{tmp_path}/x.mp4"),
        "cut": _row(S.MEDIA_VIDEO, media["overreported"], **{S.NUM_FRAMES: 16}),
        "decode: index 40 beyond last decodable frame 23": _row(S.MEDIA_VIDEO, media["good"]),
        "decode: unknown media type 'audio'": _row("audio", media["good"]),
    }
    for reason, row in cases.items():
        out = decode_sample(row, np.array([0, 40]), (8, 8), dec)
        if reason == "cut":
            head, last = out[S.ERROR].rsplit(" ", 1)
            assert head == "decode: index 40 beyond last decodable frame", out[S.ERROR]
            assert _near_the_cut(int(last), media["overreported"]), out[S.ERROR]
        else:
            assert out[S.ERROR] == reason
        assert out[S.FRAMES].shape == (0, 8, 8, 3) and out[S.FRAME_INDICES].size == 0
    img = decode_sample(_row(S.MEDIA_IMAGE, media["text"]), np.array([0]), (8, 8), dec)
    assert img[S.ERROR].startswith("decode: not an image (")


@pytest.mark.parametrize("isolated", [False, True])
def test_decode_sample_good_rows(media, decoder, isolated):
    dec = decoder if isolated else None
    wanted = np.array([1, 5, 9])
    video = decode_sample(_row(S.MEDIA_VIDEO, media["good"], **{S.NUM_FRAMES: 24}), wanted, (16, 24), dec)
    assert video[S.ERROR] == "" and video[S.FRAMES].shape == (3, 16, 24, 3)
    assert _indices(video[S.FRAMES]) == [1, 5, 9] and video[S.FRAME_INDICES].tolist() == [1, 5, 9]
    image = decode_sample(_row(S.MEDIA_IMAGE, media["image"]), wanted, (16, 24), dec)
    assert image[S.FRAMES].shape == (1, 16, 24, 3) and _indices(image[S.FRAMES]) == [5]
    text = decode_sample(_row(S.MEDIA_TEXT, ""), wanted, (16, 24), dec)
    assert text[S.ERROR] == "" and text[S.FRAMES].shape == (0, 16, 24, 3)
    kept = decode_sample(_row(S.MEDIA_VIDEO, media["good"], **{S.ERROR: "probe: x"}), wanted, None, dec)
    assert kept[S.ERROR] == "probe: x" and kept[S.FRAMES].shape[0] == 0


@pytest.mark.parametrize("path", ["sleep://60", "spin://"])
def test_hang_is_killed_at_timeout_and_decoder_recovers(media, path):
    with IsolatedDecoder(timeout_s=1.0, decode_fn=mf.faulty_decode) as dec:
        assert dec.decode(media["good"], np.array([2]), None).error == ""  # child is warm
        start = time.monotonic()
        result = dec.decode(path, np.array([0]), None)
        assert result.frames is None and result.error == "decode: timeout after 1s"
        assert time.monotonic() - start < 4
        after = dec.decode(media["good"], np.array([3, 4]), (8, 16))
        assert after.error == "" and _indices(after.frames) == [3, 4] and dec.restarts == 1


def test_crash_and_memory_cap_are_contained(media):
    with IsolatedDecoder(timeout_s=10, memory_limit_mb=1024, decode_fn=mf.faulty_decode) as dec:
        crash = dec.decode("crash://", np.array([0]), None)
        assert crash.error == "decode: decoder process died (SIGABRT; memory cap 1024 MiB)"
        hog = dec.decode("hog://4096", np.array([0]), None)
        assert hog.error == "decode: out of memory (cap 1024 MiB)"
        good = dec.decode(media["good"], np.array([7]), None)
        assert good.error == "" and _indices(good.frames) == [7]


def _count_shared_reads(dec: IsolatedDecoder) -> list[tuple]:
    """Record each time the parent takes frames from the shared buffer (not the pipe)."""
    reads, read = [], dec._frames.read

    def counted(shape):
        reads.append(tuple(shape))
        return read(shape)

    dec._frames.read = counted
    return reads


@pytest.mark.skipif(not D.frame_buffer.available(), reason="no memfd_create / descriptor passing here")
def test_frames_come_back_through_the_shared_buffer_and_survive_a_restart(media):
    wanted = np.array([149, 3, 77, 77, 120])
    expected = decode_video(media["long"], wanted, (16, 32), backend="auto", threads=1)
    with IsolatedDecoder(timeout_s=1.0, threads=1, decode_fn=mf.faulty_decode) as dec:
        native = dec.decode(media["long"], np.array([0, 1]), None)  # size unknown: nothing reserved
        assert native.error == "" and _indices(native.frames) == [0, 1] and dec._frames.capacity == 0
        reads = _count_shared_reads(dec)  # (the first request went through the pipe)
        got = dec.decode(media["long"], wanted, (16, 32))
        assert got.error == "" and np.array_equal(got.frames, expected) and reads == [(5, 16, 32, 3)]
        assert dec._frames.capacity == 1 << 20  # reserved to fit, in whole MiB
        big = dec.decode(media["long"], np.arange(150), (240, 320))  # 33 MiB: the buffer grows
        assert big.error == "" and _indices(big.frames) == list(range(150)) and dec._frames.capacity == 33 << 20
        assert dec.decode("sleep://60", np.array([0]), None).error == "decode: timeout after 1s"
        again = dec.decode(media["long"], wanted, (16, 32))  # a new child, the same buffer
        assert dec.restarts == 1 and np.array_equal(again.frames, expected) and len(reads) == 3
        assert not np.shares_memory(got.frames, again.frames)  # each result owns its pixels
    assert dec._frames is None  # closed with the decoder


def test_decoder_pickles_lazily(media):
    dec = IsolatedDecoder(timeout_s=5)
    clone = pickle.loads(pickle.dumps(dec))  # what Ray does with constructor state
    assert clone._proc is None
    try:
        assert _indices(clone.decode(media["mkv"], np.array([15]), None).frames) == [15]
    finally:
        clone.close()
    with pytest.raises(ValueError, match="backend must be one of"):
        IsolatedDecoder(backend="nope")


# --- keyframe-planned reads against a brute-force sequential decode, on long-GOP clips ---
LONG_GOP, LONG_FRAMES, LONG_FPS = 60, 240, 24  # keyframes exactly at 0, 60, 120, 180


def _write_long_gop(path: str, *, vfr: bool = False) -> str:
    """H.264 with B-frames and a keyframe every LONG_GOP frames only (no scene-cut keyframes)."""
    rng = np.random.default_rng(3)
    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=LONG_FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.gop_size = LONG_GOP
        stream.options = {
            "crf": "18",
            "preset": "veryfast",
            "bframes": "3",
            "keyint_min": str(LONG_GOP),
            "sc_threshold": "0",
        }
        if vfr:  # irregular frame durations, as phone recordings have
            stream.codec_context.time_base = Fraction(1, 1000)
        pts = 0
        for index in range(LONG_FRAMES):
            frame = av.VideoFrame.from_ndarray(mf.frame_pattern(index, 64, 48), format="rgb24")
            if vfr:
                frame.pts, frame.time_base = pts, Fraction(1, 1000)
                pts += int(rng.choice([20, 33, 50, 66]))
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def long_gop(tmp_path_factory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("long_gop")
    return {
        "mp4": _write_long_gop(str(directory / "gop.mp4")),
        "mkv": _write_long_gop(str(directory / "gop.mkv")),
        "vfr": _write_long_gop(str(directory / "vfr.mp4"), vfr=True),
    }


def _brute_force(path: str) -> np.ndarray:
    """Every frame, decoded in one sequential pass with no seek: the reference."""
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _index_sets() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    sets = [np.linspace(0, LONG_FRAMES - 1, n).round().astype(np.int64) for n in (1, 4, 8, 32)]
    sets += [
        np.array([59, 60, 61, 119, 120, 239]),  # either side of each keyframe
        np.array([200, 5, 5, 130, 64]),  # unsorted, repeated
        np.arange(0, LONG_FRAMES, 3),
    ]  # dense
    sets += [rng.integers(0, LONG_FRAMES, int(rng.integers(1, 25))) for _ in range(6)]
    return sets


@pytest.mark.parametrize("kind", ["mp4", "mkv"])
def test_every_path_matches_brute_force(long_gop, kind):
    path = long_gop[kind]
    reference = _brute_force(path)
    assert len(reference) == LONG_FRAMES
    paths = {
        "auto": {},
        "pyav planned": {"backend": "pyav"},
        "decord": {"backend": "decord"},
        "pyav legacy": {"backend": "pyav", "legacy": True},
    }
    for wanted in _index_sets():
        for name, how in paths.items():
            frames = decode_video(path, wanted, None, **how)
            assert np.array_equal(frames, reference[wanted]), (name, wanted.tolist())
    wanted = np.array([3, 150, 90])
    assert np.array_equal(decode_video(path, wanted, (24, 40)), D.resize_frames(reference[wanted], (24, 40)))


def _seeks(monkeypatch) -> list[float]:
    seconds: list[float] = []
    real = av_stream.seek_to_time
    monkeypatch.setattr(av_stream, "seek_to_time", lambda c, s, t: (seconds.append(t), real(c, s, t))[1])
    return seconds


def test_planned_reads_seek_once_per_gop(long_gop, monkeypatch):
    seeks = _seeks(monkeypatch)
    wanted = np.array([200, 5, 30, 70, 100, 130, 205])
    assert _indices(decode_video(long_gop["mp4"], wanted, None, backend="pyav")) == wanted.tolist()
    # the packet scan rewinds to 0; then one seek onto each later keyframe touched
    assert [round(t * LONG_FPS - 0.5) for t in seeks] == [0, 60, 120, 180]


def _decoded_frames(monkeypatch) -> list[int]:
    count = [0]
    real = av_stream.iter_frames

    def counting(*args, **kwargs):
        for frame in real(*args, **kwargs):
            count[0] += 1
            yield frame

    monkeypatch.setattr(av_stream, "iter_frames", counting)
    return count


def test_planned_reads_skip_unreferenced_frames(long_gop, monkeypatch):
    count = _decoded_frames(monkeypatch)
    wanted = np.array([59, 119, 179, 239])  # the worst case: the last frame of each GOP
    decode_video(long_gop["mp4"], wanted, None, backend="pyav", legacy=True)
    legacy, count[0] = count[0], 0
    decode_video(long_gop["mp4"], wanted, None, backend="pyav")
    assert legacy == LONG_FRAMES and count[0] < 0.75 * legacy  # B-frames nobody references


def test_variable_frame_rate_keeps_each_backends_numbering(long_gop):
    path, wanted = long_gop["vfr"], np.arange(0, LONG_FRAMES, 7)
    # auto keeps decord's frame numbers on irregular timestamps (what it always returned)
    assert np.array_equal(decode_video(path, wanted, None), decode_video(path, wanted, None, backend="decord"))
    assert np.array_equal(decode_video(path, wanted, None, backend="decord"), _brute_force(path)[wanted])
    # PyAV numbers frames by timestamp, planned or not
    assert np.array_equal(
        decode_video(path, wanted, None, backend="pyav"), decode_video(path, wanted, None, backend="pyav", legacy=True)
    )


def test_stream_index_from_packets_or_sample_table(long_gop):
    for kind, table in (
        ("mp4", ([0, 60, 120, 180], True)),
        ("mkv", (None, False)),
        ("vfr", ([0, 60, 120, 180], False)),
    ):
        with av.open(long_gop[kind]) as container:
            stream = container.streams.video[0]
            fps = av_stream.stream_fps(stream)
            scanned = av_stream.stream_index(container, stream, fps)
            assert scanned.constant_rate == (kind != "vfr")
            assert kind == "vfr" or scanned.keyframes == [0, 60, 120, 180]
            indexed = av_stream.stream_index(container, stream, fps, scan=False)
            assert (indexed.keyframes, indexed.constant_rate) == table, kind
