"""Ray Data decode stage: bad media become counted rejects with reasons, never a crashed pipeline."""

import json

import pytest

from videosft import schema as S
from videosft.data.media_fixtures import (
    write_empty,
    write_long_header_mkv,
    write_overreported_mp4,
    write_text_as_video,
    write_video,
)
from videosft.data.pipeline import TooManyRejects, decoded_dataset, split_rejects
from videosft.data.sampling import SamplingContract

pytestmark = pytest.mark.ray


def _row(i, path, media="video"):
    return {
        S.ID: f"r{i}",
        S.MEDIA_TYPE: media,
        S.MEDIA_PATH: str(path),
        S.QUESTION: "q",
        S.ANSWER: "a",
        S.CONVERSATIONS: "[]",
        S.ERROR: "",
    }


def test_bad_videos_are_rejected_with_reasons(local_ray, tmp_path):
    good = [write_video(tmp_path / f"ok{i}.mp4", num_frames=12) for i in range(2)]
    # valid files whose headers over-report: corrected and noted, never rejected
    good += [write_overreported_mp4(str(tmp_path / "cut.mp4")), write_long_header_mkv(str(tmp_path / "long.mkv"))]
    bad = [write_empty(tmp_path / "empty.mp4"), write_text_as_video(tmp_path / "text.mp4"), tmp_path / "missing.mp4"]
    rows = [_row(i, p) for i, p in enumerate(good + bad)]
    ds = decoded_dataset(rows, SamplingContract(), 4, timeout_s=30, concurrency=1, cpus=0.5)
    good_ds, stats = split_rejects(ds, tmp_path / "rejects.jsonl", 0.6, "decode", keep_columns=[S.ID, S.FRAMES])
    assert (stats.total, stats.rejected, stats.noted) == (7, 3, 2)
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    reasons = {r["id"]: r["reason"] for r in rejects}
    assert set(reasons) == {"r4", "r5", "r6"}
    assert (
        "empty" in reasons["r4"]
        and "text" in reasons["r5"]
        and ("missing" in reasons["r6"] or "not found" in reasons["r6"])
    )
    frames = [r[S.FRAMES] for r in good_ds.take_all()]
    assert len(frames) == 4 and all(f.shape[0] == 4 and f.dtype.name == "uint8" for f in frames)


def test_failure_ratio_stops_the_run(local_ray, tmp_path):
    rows = [_row(0, write_video(tmp_path / "ok.mp4", num_frames=8)), _row(1, tmp_path / "missing.mp4")]
    ds = decoded_dataset(rows, SamplingContract(), 2, timeout_s=30, concurrency=1, cpus=0.5)
    with pytest.raises(TooManyRejects, match="1 of 2 rows failed") as caught:
        split_rejects(ds, tmp_path / "rejects.jsonl", 0.1, "decode")
    summary = caught.value.summary()  # what the CLI prints instead of a traceback
    assert summary.startswith("decode: 1 of 2 rows failed (50.0%), more than data.max_failure_ratio=0.1")
    assert "1 x probe: file not found (e.g. " in summary and "missing.mp4" in summary
    assert str(tmp_path / "rejects.jsonl") in summary and "data.max_failure_ratio=0.5." in summary


def test_object_store_check_reads_the_running_cluster(local_ray):
    from videosft.data.pipeline import check_object_store

    store = local_ray.cluster_resources()["object_store_memory"]
    assert check_object_store(int(store // 16), actors=2) == ""  # 4 rows fit in Ray Data's half
    assert f"of {store / 2**20:.0f})" in check_object_store(int(store), actors=2)
