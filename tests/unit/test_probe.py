"""Probe: exact metadata for good files, a specific reason for every broken one, no full decode."""

from __future__ import annotations

import pytest

from videosft import schema as S
from videosft.data import av_stream
from videosft.data import media_fixtures as mf
from videosft.data.probe import probe_image, probe_sample, probe_video


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, str]:
    return mf.write_fixture_set(str(tmp_path_factory.mktemp("media")))


@pytest.mark.parametrize(
    ("kind", "frames", "fps", "size"),
    [
        ("good", 24, 8.0, (64, 48)),
        ("one_frame", 1, 8.0, (64, 48)),
        ("mkv", 16, 8.0, (64, 48)),
        ("odd_size", 8, 8.0, (63, 37)),
        ("webm", 16, 8.0, (64, 48)),
    ],
)
def test_good_videos(media, kind, frames, fps, size):
    if kind not in media:
        pytest.skip("PyAV build has no VP9 encoder")
    out = probe_video(media[kind])
    assert out == {
        S.NUM_FRAMES: frames,
        S.FPS: fps,
        S.DURATION: pytest.approx(frames / fps),
        S.WIDTH: size[0],
        S.HEIGHT: size[1],
        S.ERROR: "",
        S.PROBE_NOTE: "",
    }


def test_ntsc_rate(tmp_path):
    path = mf.write_video(str(tmp_path / "ntsc.mp4"), 30, fps=30000 / 1001)
    out = probe_video(path)
    assert out[S.NUM_FRAMES] == 30 and out[S.FPS] == pytest.approx(29.97, abs=1e-2)
    assert out[S.ERROR] == ""


def test_over_reported_count_is_corrected_and_noted_not_rejected(media):
    out = probe_video(media["overreported"])
    has = out[S.NUM_FRAMES]  # ~16: where the cut falls depends on the encoded bytes
    assert abs(has - mf.decodable_frames(media["overreported"])) <= 2 and 12 <= has < 40
    assert out[S.DURATION] == pytest.approx(has / 8)
    assert out[S.ERROR] == ""
    assert out[S.PROBE_NOTE] == f"frame count over-reported (container says 40, stream has {has})"


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("empty", "probe: file is empty (0 bytes)"),
        ("truncated", "probe: no moov atom / not a video container"),
        ("text", "probe: not a video container (file is text)"),
    ],
)
def test_broken_files_give_reasons(media, kind, reason):
    out = probe_video(media[kind])
    assert out[S.ERROR] == reason and out[S.NUM_FRAMES] == 0


def test_missing_and_absent_paths(tmp_path):
    assert probe_video("")[S.ERROR] == "probe: missing path"
    missing = str(tmp_path / "gone.mp4")
    assert probe_video(missing)[S.ERROR] == f"probe: file not found ({missing})"
    assert probe_video(str(tmp_path))[S.ERROR].startswith("probe: not a file")


def test_audio_only_file_has_no_video_stream(tmp_path):
    import av
    import numpy as np

    path = str(tmp_path / "tone.m4a")
    with av.open(path, "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    assert probe_video(path)[S.ERROR] == "probe: no video stream"


def _count_decoded(monkeypatch) -> list:
    decoded = []
    real = av_stream.iter_frames

    def counting(*args, **kwargs):
        for frame in real(*args, **kwargs):
            decoded.append(frame)
            yield frame

    monkeypatch.setattr(av_stream, "iter_frames", counting)
    return decoded


def test_healthy_file_is_probed_without_decoding(tmp_path, monkeypatch):
    path = mf.write_video(str(tmp_path / "long.mp4"), 120, gop=12)
    decoded = _count_decoded(monkeypatch)
    assert probe_video(path)[S.NUM_FRAMES] == 120
    assert len(decoded) == 1  # the first frame (its display matrix); the tail's packets are read
    assert probe_video(path, decode_tail=True)[S.NUM_FRAMES] == 120
    assert 1 < len(decoded) <= 25  # the earlier rule: about one GOP, not 120 frames


def test_damaged_tail_is_decoded_to_find_the_last_frame(media, monkeypatch):
    decoded = _count_decoded(monkeypatch)
    out = probe_video(media["overreported"])
    assert (
        abs(out[S.NUM_FRAMES] - mf.decodable_frames(media["overreported"])) <= 2 and decoded
    )  # the packets say "cut short": decode to know


@pytest.mark.parametrize("keep", [0.3, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 0.97])
def test_packet_rule_agrees_with_decoding_on_cut_files(tmp_path, keep):
    path = mf.write_overreported_mp4(str(tmp_path / "cut.mp4"), num_frames=60, keep_fraction=keep)
    assert probe_video(path) == probe_video(path, decode_tail=True)


def test_packet_rule_agrees_with_decoding_on_good_files(media, tmp_path):
    extra = {
        "ntsc": mf.write_video(str(tmp_path / "ntsc.mp4"), 30, fps=30000 / 1001),
        "long_mkv": mf.write_video(str(tmp_path / "long.mkv"), 90, gop=10),
    }
    for kind, path in {**media, **extra}.items():
        if kind != "image":
            assert probe_video(path) == probe_video(path, decode_tail=True), kind


def test_images(media):
    assert probe_image(media["image"]) == {
        S.NUM_FRAMES: 1,
        S.FPS: 0.0,
        S.DURATION: 0.0,
        S.WIDTH: 64,
        S.HEIGHT: 48,
        S.ERROR: "",
        S.PROBE_NOTE: "",
    }
    assert probe_image(media["text"])[S.ERROR].startswith("probe: not an image (")
    assert probe_image(media["empty"])[S.ERROR] == "probe: file is empty (0 bytes)"


def test_probe_sample_dispatches_on_media_type(media):
    video = probe_sample({S.ID: "v", S.MEDIA_TYPE: S.MEDIA_VIDEO, S.MEDIA_PATH: media["good"]})
    assert video[S.NUM_FRAMES] == 24 and video[S.ID] == "v"
    image = probe_sample({S.MEDIA_TYPE: S.MEDIA_IMAGE, S.MEDIA_PATH: media["image"]})
    assert image[S.NUM_FRAMES] == 1 and image[S.ERROR] == ""
    text = probe_sample({S.MEDIA_TYPE: S.MEDIA_TEXT, S.MEDIA_PATH: ""})
    assert text[S.NUM_FRAMES] == 0 and text[S.ERROR] == ""
    kept = probe_sample({S.MEDIA_TYPE: S.MEDIA_VIDEO, S.MEDIA_PATH: media["good"], S.ERROR: "manifest: earlier"})
    assert kept[S.ERROR] == "manifest: earlier" and kept[S.NUM_FRAMES] == 0
