"""Object storage over real HTTP: moto's S3 server on localhost, read through pyarrow's S3FileSystem.

The endpoint reaches pyarrow the way it would in a cluster, through AWS_ENDPOINT_URL (its scheme
gives http) and dummy credentials in the environment, so `read_manifest("s3://bucket/...")` runs
the same code path it runs against real S3.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from local_services import moto_s3
from videosft import schema as S
from videosft.data import media_fixtures as mf
from videosft.data.decode import IsolatedDecoder, decode_sample, decode_video
from videosft.data.manifest import ManifestError, read_manifest
from videosft.data.probe import probe_video

pytest.importorskip("moto.server", reason="moto[server] not installed")

ROWS = [
    {
        "id": "a",
        "video": "videos/a.mp4",
        "task": "colour",
        "conversations": [{"from": "human", "value": "<video>\nColour?"}, {"from": "gpt", "value": "red"}],
    },
    {"id": "b", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A live S3 endpoint holding manifests (json, jsonl, parquet) and one video."""
    with pytest.MonkeyPatch.context() as patch, moto_s3(patch, "bucket") as client:
        _upload(client, str(tmp_path_factory.mktemp("s3src")))
        yield client


def _upload(client, local: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    client.put_object(Bucket="bucket", Key="train.json", Body=json.dumps(ROWS).encode())
    client.put_object(Bucket="bucket", Key="train.jsonl", Body="".join(json.dumps(r) + "\n" for r in ROWS).encode())
    keys = list(dict.fromkeys(k for r in ROWS for k in r))
    pq.write_table(
        pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in ROWS]), os.path.join(local, "train.parquet")
    )
    client.upload_file(os.path.join(local, "train.parquet"), "bucket", "train.parquet")
    mf.write_video(os.path.join(local, "a.mp4"), 24)
    client.upload_file(os.path.join(local, "a.mp4"), "bucket", "videos/a.mp4")


def test_read_manifest_from_s3(s3):
    from pyarrow import fs

    assert isinstance(fs.FileSystem.from_uri("s3://bucket/train.json")[0], fs.S3FileSystem)
    video, text = read_manifest("s3://bucket/train.json")
    assert video[S.MEDIA_PATH] == "s3://bucket/videos/a.mp4"  # relative to the manifest's "dir"
    assert video[S.QUESTION] == "Colour?" and video[S.SOURCE] == "s3://bucket/train.json"
    assert text[S.MEDIA_TYPE] == S.MEDIA_TEXT


def test_formats_agree_over_s3(s3):
    parsed = [
        read_manifest(f"s3://bucket/train.{fmt}", media_root="s3://bucket/") for fmt in ("json", "jsonl", "parquet")
    ]
    for rows in parsed:
        for row in rows:
            row.pop(S.SOURCE)
    assert parsed[0] == parsed[1] == parsed[2]


def test_missing_manifest_on_s3(s3):
    with pytest.raises(ManifestError, match="s3://bucket/nope.json: manifest not found"):
        read_manifest("s3://bucket/nope.json")


def test_probe_and_decode_video_on_s3(s3):
    uri = "s3://bucket/videos/a.mp4"
    meta = probe_video(uri)
    assert (meta[S.NUM_FRAMES], meta[S.FPS], meta[S.ERROR]) == (24, 8.0, "")
    for backend in ("decord", "pyav"):
        frames = decode_video(uri, np.array([4, 20]), (16, 16), backend=backend)
        assert [mf.read_index(f) for f in frames] == [4, 20]
    with IsolatedDecoder(timeout_s=20) as decoder:  # the child gets the caller's AWS_* env
        row = {S.MEDIA_TYPE: S.MEDIA_VIDEO, S.MEDIA_PATH: uri}
        out = decode_sample(row, np.array([9]), None, decoder)
        assert out[S.ERROR] == "" and mf.read_index(out[S.FRAMES][0]) == 9
        gone = decode_sample({**row, S.MEDIA_PATH: "s3://bucket/gone.mp4"}, np.array([0]), None, decoder)
        assert gone[S.ERROR] == "decode: file not found (s3://bucket/gone.mp4)"


def test_combined_manifest_from_s3_sources(s3, tmp_path):
    from videosft.data.manifest import combined_manifest

    out = combined_manifest([("s3://bucket/train.jsonl", "s3://bucket/")], tmp_path)
    video, text = read_manifest(str(out))
    assert video[S.MEDIA_PATH] == "s3://bucket/videos/a.mp4" and text[S.MEDIA_TYPE] == S.MEDIA_TEXT
    assert combined_manifest([("s3://bucket/train.jsonl", "s3://bucket/")], tmp_path) == out  # unchanged: reused
    with pytest.raises(ManifestError, match="s3://bucket/gone.json: expected a manifest file"):
        combined_manifest([("s3://bucket/gone.json", None)], tmp_path)
