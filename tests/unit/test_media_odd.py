"""Odd-but-valid media: corrected and noted, never rejected; the same upright frames from every backend.

Clips come from `media_fixtures.write_odd_set` (display-matrix rotations in mp4/mov/mkv, a 4:3 sample
aspect ratio, 10-bit and 4:2:2/4:4:4 chroma, variable frame rate, a Matroska header that claims 75 s).
The reference for every pixel test is an independent full PyAV decode: every frame, sorted by
timestamp, turned as its display matrix says, resized by the shared resize to the probed display
size. torchcodec's checks on the same clips run in test_decode_torchcodec.py's child process (it
needs PyAV's bundled FFmpeg on the loader path; one torch import serves both).
"""

from __future__ import annotations

import av
import numpy as np
import pytest

from videosft import schema as S
from videosft.data import media_fixtures as mf
from videosft.data.av_stream import frame_rotation
from videosft.data.decode import decode_video, resize_frames
from videosft.data.probe import probe_video
from videosft.schema import PROBE_NOTE

ODD = (
    "rot90_mp4",
    "rot270_mp4",
    "rot180_mp4",
    "rot90_mov",
    "rot90_mkv",
    "sar_4_3",
    "yuv420p10",
    "yuv422p",
    "yuv444p",
    "vfr_mp4",
    "vfr_mkv",
    "long_header_mkv",
)
WANTED = np.array([15, 0, 3, 7, 7, 12])
# In-process paths: (backend, legacy). legacy=True with "pyav" is the unplanned gap-rule read.
PATHS = {
    "pyav_planned": ("pyav", False),
    "pyav_unplanned": ("pyav", True),
    "auto": ("auto", False),
    "decord": ("decord", False),
}
TOLERANCE = {"yuv420p10": 1.5}  # decoders' 10-bit -> 8-bit conversions differ by ~0.6 grey levels


@pytest.fixture(scope="module")
def odd(tmp_path_factory) -> dict[str, str]:
    return mf.write_odd_set(str(tmp_path_factory.mktemp("odd")))


def _display_hw(path: str) -> tuple[int, int]:
    meta = probe_video(path)
    return meta[S.HEIGHT], meta[S.WIDTH]


def _reference(path: str, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upright frames at `indices` (presentation order) and their times, by a plain full decode."""
    with av.open(path) as container:
        frames = sorted(container.decode(video=0), key=lambda f: f.pts)
        start = float(frames[0].time)
        rgb = [np.rot90(f.to_ndarray(format="rgb24"), frame_rotation(f) // 90) for f in frames]
        times = np.array([float(f.time) - start for f in frames])
    return resize_frames(np.stack([rgb[i] for i in indices]), _display_hw(path)), times[indices]


def _unturned_index(frame: np.ndarray, kind: str) -> int:
    """The frame index a pattern frame carries, after undoing its display rotation."""
    turns = {"rot90": 1, "rot270": 3, "rot180": 2}.get(kind.split("_")[0], 0)
    return mf.read_index(np.rot90(frame, -turns))


def test_probe_corrects_and_notes_instead_of_rejecting(odd):
    for kind in ODD:
        meta = probe_video(odd[kind])
        assert meta[S.ERROR] == "" and meta[S.NUM_FRAMES] == 16, (kind, meta)
    assert (probe_video(odd["rot90_mp4"])[S.WIDTH], probe_video(odd["rot90_mp4"])[S.HEIGHT]) == (48, 64)
    assert probe_video(odd["sar_4_3"])[S.WIDTH] == 85  # 64 x 4/3, as a player shows it
    long = probe_video(odd["long_header_mkv"])
    assert long[PROBE_NOTE] == "duration over-reported (container says 75 s = 600 frames, stream has 16)"
    assert long[S.DURATION] == pytest.approx(2.0)
    assert probe_video(odd["vfr_mkv"])[PROBE_NOTE] == ""  # a variable rate is not a wrong header


@pytest.mark.parametrize("kind", ODD)
def test_every_backend_gives_the_same_upright_frames(odd, kind):
    path = odd[kind]
    want, _ = _reference(path, WANTED)
    assert want.shape[1:3] == _display_hw(path)
    for name, (backend, legacy) in PATHS.items():
        got = decode_video(path, WANTED, None, backend=backend, legacy=legacy, threads=1)
        assert got.shape == want.shape, (kind, name)
        gap = float(np.abs(got.astype(int) - want.astype(int)).mean())
        assert gap <= TOLERANCE.get(kind, 0.0), (kind, name, gap)
        if kind != "sar_4_3":  # stretched stripes still read, but keep the check to square pixels
            assert [_unturned_index(f, kind) for f in got] == WANTED.tolist(), (kind, name)


def test_resized_output_is_the_same_shape_for_every_backend(odd):
    for kind in ("rot90_mp4", "rot90_mkv", "sar_4_3"):
        shapes = {decode_video(odd[kind], WANTED, (32, 24), backend=b, legacy=lg).shape for b, lg in PATHS.values()}
        assert shapes == {(len(WANTED), 32, 24, 3)}, kind


@pytest.mark.parametrize("kind", ["vfr_mp4", "vfr_mkv"])
def test_variable_rate_reads_are_planned_with_real_timestamps(odd, kind, monkeypatch):
    from videosft.data import decode as decode_module

    path = odd[kind]
    _, want_times = _reference(path, WANTED)
    assert np.allclose(want_times, np.array(mf.VFR_PTS_MS)[WANTED] / 1000)
    for name, (backend, legacy) in PATHS.items():
        _, times = decode_video(path, WANTED, None, backend=backend, legacy=legacy, with_times=True)
        assert times is not None and np.allclose(times, want_times, atol=1e-3), (kind, name, times)
    monkeypatch.setattr(decode_module, "_decode_decord", lambda *a, **k: pytest.fail("fell back to decord"))
    decode_video(path, WANTED, None)  # "auto" reads variable-rate files by plan now


def test_constant_rate_times_stay_index_over_fps(odd):
    _, times = decode_video(odd["yuv444p"], WANTED, None, with_times=True)
    assert times is None  # the pipeline then uses index / fps, exactly as before


def test_decode_stage_keeps_corrected_rows_and_notes_them(odd, tmp_path):
    from videosft.data.pipeline import DecodeStage
    from videosft.data.sampling import SamplingContract

    cut = mf.write_overreported_mp4(str(tmp_path / "cut.mp4"))  # header says 40, ~16 decode
    stage = DecodeStage(SamplingContract().model_dump(), 8, timeout_s=30)
    try:
        rows = {
            k: stage({S.ID: k, S.MEDIA_TYPE: S.MEDIA_VIDEO, S.MEDIA_PATH: p})
            for k, p in {"cut": cut, "long": odd["long_header_mkv"], "vfr": odd["vfr_mkv"]}.items()
        }
    finally:
        stage.decoder.close()
    for ident, row in rows.items():
        assert row[S.ERROR] == "" and len(row[S.FRAMES]) == 8, (ident, row[S.ERROR])
    has = probe_video(cut)[S.NUM_FRAMES]  # what the stage's probe corrected the count to
    assert abs(has - mf.decodable_frames(cut)) <= 2  # a damaged tail: decoders differ by a frame or two
    assert rows["cut"][PROBE_NOTE] == f"frame count over-reported (container says 40, stream has {has})"
    assert rows["long"][PROBE_NOTE].startswith("duration over-reported")
    vfr = rows["vfr"]
    assert np.allclose(vfr[S.TIMESTAMPS], np.array(mf.VFR_PTS_MS)[vfr[S.FRAME_INDICES]] / 1000)


# --------------------------------------------------------------------------- failure you can read
def _failing_prepare(tmp_path):
    from videosft.data.pipeline import check_failure_ratio

    rejects = [(f"/data/src{i % 2}/empty{i}.mp4", "probe: file is empty (0 bytes)") for i in range(5)]
    rejects += [
        ("/data/src0/slow.mp4", "decode: timeout after 20s"),
        ("/data/src1/cut.mp4", "decode: index 40 beyond last decodable frame 23"),
    ]

    def run(args):
        check_failure_ratio("prepare-cache", rejects, 20, 0.05, str(tmp_path / "rejects.jsonl"))

    return run


def test_too_many_rejects_exits_with_one_paragraph(tmp_path, monkeypatch, capsys):
    from videosft import cli

    monkeypatch.setattr(cli, "cmd_prepare", _failing_prepare(tmp_path))
    assert cli.main(["prepare"]) == cli.EXIT_REJECTS
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("videosft prepare: prepare-cache: 7 of 20 rows failed (35.0%)")
    assert (
        "5 x probe: file is empty (e.g. /data/src0/empty0.mp4, /data/src1/empty1.mp4, /data/src0/empty2.mp4, +2 more)"
    ) in err
    assert "1 x decode: timeout after Ns (e.g. /data/src0/slow.mp4)" in err
    assert "1 x decode: index N beyond last decodable frame N (e.g. /data/src1/cut.mp4)" in err
    assert str(tmp_path / "rejects.jsonl") in err and "data.max_failure_ratio=0.35" in err


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    from videosft import cli
    from videosft.data.pipeline import TooManyRejects

    monkeypatch.setattr(cli, "cmd_prepare", _failing_prepare(tmp_path))
    with pytest.raises(TooManyRejects, match="7 of 20 rows failed"):
        cli.main(["--debug", "prepare"])
