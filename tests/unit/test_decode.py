"""Decode: exact frames from every backend, specific errors as data, hangs and crashes contained."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videosft import schema as S
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


def test_pyav_sparse_reads_seek_between_runs(media, monkeypatch):
    seeks = []
    real = D.probe.seek_to_index
    monkeypatch.setattr(D.probe, "seek_to_index",
                        lambda c, s, i, fps: (seeks.append(i), real(c, s, i, fps)))
    wanted = np.array([149, 0, 3, 70, 72, 140, 2])
    assert _indices(decode_video(media["long"], wanted, None, backend="pyav")) == wanted.tolist()
    assert seeks == [70, 140]  # the first run decodes from the start; one seek per later run


def test_plan_runs_is_gap_based():
    runs = D._plan_runs(np.array([0, 1, 40, 200, 210, 500]))
    assert [r.tolist() for r in runs] == [[0, 1, 40], [200, 210], [500]]
    assert D._plan_runs(np.array([], np.int64)) == []


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 149), min_size=1, max_size=12))
def test_any_index_set_decodes_exactly_with_pyav(media, wanted):
    frames = decode_video(media["long"], np.array(wanted), (16, 32), backend="pyav")
    assert _indices(frames) == wanted


@pytest.mark.parametrize("backend", ["auto", "decord", "pyav"])
@pytest.mark.parametrize(("kind", "reason"), [
    ("empty", "file is empty (0 bytes)"),
    ("truncated", "no moov atom / not a video container"),
    ("text", "not a video container (file is text)"),
])
def test_broken_files_raise_specific_reasons(media, kind, reason, backend):
    with pytest.raises(DecodeError, match=f"^{reason.replace('(', '.').replace(')', '.')}$"):
        decode_video(media[kind], np.array([0]), None, backend=backend)


def test_index_errors(media):
    with pytest.raises(DecodeError, match="^index 40 beyond last decodable frame 23$"):
        decode_video(media["good"], np.array([0, 40]), None)
    with pytest.raises(DecodeError, match="^index 30 beyond last decodable frame 15$"):
        decode_video(media["overreported"], np.array([30]), None, backend="pyav")
    with pytest.raises(DecodeError, match="^negative frame index -1$"):
        decode_video(media["good"], np.array([-1]), None)
    with pytest.raises(ValueError, match="backend must be one of"):
        decode_video(media["good"], np.array([0]), None, backend="ffmpeg")


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
        "decode: index 40 beyond last decodable frame 15":
            _row(S.MEDIA_VIDEO, media["overreported"], **{S.NUM_FRAMES: 16}),
        "decode: index 40 beyond last decodable frame 23": _row(S.MEDIA_VIDEO, media["good"]),
        "decode: unknown media type 'audio'": _row("audio", media["good"]),
    }
    for reason, row in cases.items():
        out = decode_sample(row, np.array([0, 40]), (8, 8), dec)
        assert out[S.ERROR] == reason
        assert out[S.FRAMES].shape == (0, 8, 8, 3) and out[S.FRAME_INDICES].size == 0
    img = decode_sample(_row(S.MEDIA_IMAGE, media["text"]), np.array([0]), (8, 8), dec)
    assert img[S.ERROR].startswith("decode: not an image (")


@pytest.mark.parametrize("isolated", [False, True])
def test_decode_sample_good_rows(media, decoder, isolated):
    dec = decoder if isolated else None
    wanted = np.array([1, 5, 9])
    video = decode_sample(_row(S.MEDIA_VIDEO, media["good"], **{S.NUM_FRAMES: 24}), wanted,
                          (16, 24), dec)
    assert video[S.ERROR] == "" and video[S.FRAMES].shape == (3, 16, 24, 3)
    assert _indices(video[S.FRAMES]) == [1, 5, 9] and video[S.FRAME_INDICES].tolist() == [1, 5, 9]
    image = decode_sample(_row(S.MEDIA_IMAGE, media["image"]), wanted, (16, 24), dec)
    assert image[S.FRAMES].shape == (1, 16, 24, 3) and _indices(image[S.FRAMES]) == [5]
    text = decode_sample(_row(S.MEDIA_TEXT, ""), wanted, (16, 24), dec)
    assert text[S.ERROR] == "" and text[S.FRAMES].shape == (0, 16, 24, 3)
    kept = decode_sample(_row(S.MEDIA_VIDEO, media["good"], **{S.ERROR: "probe: x"}), wanted,
                         None, dec)
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
    with IsolatedDecoder(timeout_s=10, memory_limit_mb=1024,
                         decode_fn=mf.faulty_decode) as dec:
        crash = dec.decode("crash://", np.array([0]), None)
        assert crash.error == "decode: decoder process died (SIGABRT; memory cap 1024 MiB)"
        hog = dec.decode("hog://4096", np.array([0]), None)
        assert hog.error == "decode: out of memory (cap 1024 MiB)"
        good = dec.decode(media["good"], np.array([7]), None)
        assert good.error == "" and _indices(good.frames) == [7]


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
