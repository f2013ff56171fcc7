"""The optional torchcodec backend: the same frames as PyAV, the same reasons for bad media.

torchcodec loads a system FFmpeg at import; CI machines have none, so these checks run in a child
process whose loader path offers PyAV's bundled FFmpeg under the names torchcodec links against.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from videosft.data import media_fixtures as mf

pytest.importorskip("torchcodec", reason="torchcodec not installed")

CHILD = r"""
import json, sys
import numpy as np
from videosft.data import media_fixtures as mf
from videosft.data.decode import DecodeError, decode_video, torchcodec_missing

media = json.loads(sys.argv[1])
out = {"missing": torchcodec_missing(), "frames": {}, "errors": {}, "pixel_gap": {}}
for kind in ("good", "mkv", "odd_size", "one_frame", "webm"):
    if kind not in media:
        continue
    n = {"good": 24, "mkv": 16, "odd_size": 8, "one_frame": 1, "webm": 16}[kind]
    wanted = np.array([n - 1, 0, n // 2, n // 2])
    frames = decode_video(media[kind], wanted, (32, 40), backend="torchcodec", threads=1)
    out["frames"][kind] = [mf.read_index(f) for f in frames] + [list(frames.shape)]
    pyav = decode_video(media[kind], wanted, (32, 40), backend="pyav")
    out["pixel_gap"][kind] = float(np.abs(frames.astype(int) - pyav.astype(int)).mean())
for kind, wanted in (("good", [0, 40]), ("empty", [0]), ("text", [0]), ("truncated", [0])):
    try:
        decode_video(media[kind], np.array(wanted), None, backend="torchcodec")
        out["errors"][kind] = "no error"
    except DecodeError as exc:
        out["errors"][kind] = str(exc)
odd, wanted = json.loads(sys.argv[2]), np.array(json.loads(sys.argv[3]))
out["odd_gap"], out["odd_times"] = {}, {}
for kind, path in odd.items():  # test_media_odd.py's clips: upright frames, real VFR timestamps
    tc, times = decode_video(path, wanted, None, backend="torchcodec", threads=1, with_times=True)
    ref = decode_video(path, wanted, None, backend="pyav")
    out["odd_gap"][kind] = float(np.abs(tc.astype(int) - ref.astype(int)).mean()) if tc.shape == ref.shape else -1.0
    out["odd_times"][kind] = None if times is None else [float(t) for t in times]
print("RESULT " + json.dumps(out))
"""


def _ffmpeg_shim(directory: Path) -> Path:
    """Links named as FFmpeg's sonames (libavutil.so.60, ...) to PyAV's bundled libraries."""
    import av

    libs = Path(av.__file__).resolve().parent.parent / "av.libs"
    for lib in libs.glob("lib*.so.*"):
        match = re.match(r"(lib(?:av|sw)\w+)-[0-9a-f]{8}\.so\.(\d+)", lib.name)
        if match:
            (directory / f"{match[1]}.so.{match[2]}").symlink_to(lib)
    return directory


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> dict:
    media = mf.write_fixture_set(str(tmp_path_factory.mktemp("media")))
    shim = _ffmpeg_shim(tmp_path_factory.mktemp("ffmpeg"))
    env = dict(
        os.environ, LD_LIBRARY_PATH=os.pathsep.join(p for p in (str(shim), os.environ.get("LD_LIBRARY_PATH", "")) if p)
    )
    odd = mf.write_odd_set(str(tmp_path_factory.mktemp("odd")))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(media), json.dumps(odd), json.dumps(ODD_WANTED)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def test_torchcodec_loads_with_an_ffmpeg_it_can_find(result):
    assert result["missing"] == ""


def test_exact_frames_in_the_order_asked(result):
    for kind, got in result["frames"].items():
        n = {"good": 24, "mkv": 16, "odd_size": 8, "one_frame": 1, "webm": 16}[kind]
        assert got[:4] == [n - 1, 0, n // 2, n // 2], kind
        assert got[4] == [4, 32, 40, 3]
    assert {"good", "mkv", "odd_size", "one_frame"} <= set(result["frames"])


def test_pixels_match_pyav(result):
    assert all(gap < 2.0 for gap in result["pixel_gap"].values()), result["pixel_gap"]


ODD_WANTED = [15, 0, 3, 7, 7, 12]


def test_odd_media_give_the_same_upright_frames_as_pyav(result):
    """Rotations (torchcodec turns frames itself), SAR, 10-bit, 4:2:2/4:4:4, VFR, a long header."""
    assert len(result["odd_gap"]) == 12
    for kind, gap in result["odd_gap"].items():
        assert 0.0 <= gap <= (1.5 if kind == "yuv420p10" else 0.0), (kind, gap)


def test_variable_rate_timestamps_match_the_other_backends(result):
    import numpy as np

    for kind in ("vfr_mp4", "vfr_mkv"):
        want = np.array(mf.VFR_PTS_MS)[ODD_WANTED] / 1000
        assert np.allclose(result["odd_times"][kind], want, atol=1e-3), kind
    assert result["odd_times"]["yuv444p"] is None  # constant rate: index / fps


def test_bad_media_get_the_same_reasons(result):
    assert result["errors"] == {
        "good": "index 40 beyond last decodable frame 23",
        "empty": "file is empty (0 bytes)",
        "text": "not a video container (file is text)",
        "truncated": "no moov atom / not a video container",
    }


def test_config_refuses_torchcodec_that_cannot_run_here():
    from videosft.config import ConfigError, load_config
    from videosft.data.decode import torchcodec_missing

    reason = torchcodec_missing()  # this process has no FFmpeg shim
    if not reason:
        assert load_config(None, ["data.decode_backend=torchcodec"]).data.decode_backend == "torchcodec"
        return
    with pytest.raises(ConfigError, match=r"data\.decode_backend: .*torchcodec cannot load FFmpeg"):
        load_config(None, ["data.decode_backend=torchcodec"])
