"""Manifest reading: formats agree, rows are normalised, and malformed rows fail precisely."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videosft import schema as S
from videosft.data.manifest import ManifestError, read_manifest, read_manifests, strip_placeholders

ROWS = [
    {
        "id": "v1",
        "video": "clips/a.mp4",
        "task": "colour",
        "min_frames": 1,
        "data_source": "synthetic",
        "options": ["A. red", "B. blue"],
        "conversations": [
            {"from": "human", "value": "<video>\nWhat colour is the ball?"},
            {"from": "gpt", "value": "A. red"},
        ],
    },
    {
        "id": "i1",
        "image": "/abs/img.png",
        "conversations": [
            {"from": "human", "value": "<image>\nDescribe."},
            {"from": "gpt", "value": "A square."},
            {"from": "human", "value": "And the colour?"},
            {"from": "gpt", "value": "Blue."},
        ],
    },
    {"id": "t1", "conversations": [{"from": "human", "value": "Say hi"}, {"from": "gpt", "value": "hi"}]},
    {
        "id": "u1",
        "video": "s3://bucket/v/b.mp4",
        "conversations": [{"from": "human", "value": "<video>\nWhere?"}, {"from": "gpt", "value": "Left."}],
    },
]


def _write(path: str, rows: list, fmt: str) -> str:
    if fmt == "json":
        with open(path, "w") as f:
            json.dump(rows, f)
    elif fmt == "jsonl":
        with open(path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    else:  # from_pylist takes its columns from the first row: give every row every key
        keys = list(dict.fromkeys(k for r in rows for k in r))
        pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in rows]), path)
    return path


@pytest.fixture()
def manifests(tmp_path) -> dict[str, str]:
    return {fmt: _write(str(tmp_path / f"train.{fmt}"), ROWS, fmt) for fmt in ("json", "jsonl", "parquet")}


def test_formats_give_identical_rows(manifests):
    parsed = {fmt: read_manifest(p) for fmt, p in manifests.items()}
    for rows in parsed.values():
        for row in rows:
            row.pop(S.SOURCE)
    assert parsed["json"] == parsed["jsonl"] == parsed["parquet"]


def test_row_fields(manifests, tmp_path):
    video, image, text, uri = read_manifest(manifests["json"])
    assert video[S.ID] == "v1" and video[S.MEDIA_TYPE] == S.MEDIA_VIDEO
    assert video[S.MEDIA_PATH] == str(tmp_path / "clips" / "a.mp4")
    assert video[S.QUESTION] == "What colour is the ball?" and video[S.ANSWER] == "A. red"
    assert (video[S.TASK], video[S.MIN_FRAMES]) == ("colour", 1)
    assert video["options"] == ["A. red", "B. blue"] and video["data_source"] == "synthetic"
    assert video[S.SOURCE] == manifests["json"]
    assert image[S.MEDIA_TYPE] == S.MEDIA_IMAGE and image[S.MEDIA_PATH] == "/abs/img.png"
    turns = json.loads(image[S.CONVERSATIONS])
    assert [t["value"] for t in turns] == ["Describe.", "A square.", "And the colour?", "Blue."]
    assert (image[S.TASK], image[S.MIN_FRAMES]) == ("", -1)
    assert text[S.MEDIA_TYPE] == S.MEDIA_TEXT and text[S.MEDIA_PATH] == ""
    assert uri[S.MEDIA_PATH] == "s3://bucket/v/b.mp4"


def test_media_root_local_and_uri(manifests, tmp_path):
    rows = read_manifest(manifests["jsonl"], media_root=str(tmp_path / "media"))
    assert rows[0][S.MEDIA_PATH] == str(tmp_path / "media" / "clips" / "a.mp4")
    rows = read_manifest(manifests["jsonl"], media_root="gs://b/root/")
    assert rows[0][S.MEDIA_PATH] == "gs://b/root/clips/a.mp4"
    assert rows[3][S.MEDIA_PATH] == "s3://bucket/v/b.mp4"  # URIs are never re-rooted


def test_read_manifests_mixes_sources(manifests, tmp_path):
    other = _write(str(tmp_path / "eval.jsonl"), [dict(ROWS[2], id="t9")], "jsonl")
    rows = read_manifests([(manifests["json"], "/data"), other])
    assert [r[S.ID] for r in rows] == ["v1", "i1", "t1", "u1", "t9"]
    assert rows[0][S.MEDIA_PATH] == "/data/clips/a.mp4"
    assert {r[S.SOURCE] for r in rows} == {manifests["json"], other}


def _bad(**changes):
    row = json.loads(json.dumps(ROWS[0]))
    row.update(changes)
    return row


HUMAN = {"from": "human", "value": "q"}
GPT = {"from": "gpt", "value": "a"}


@pytest.mark.parametrize(
    ("row", "field", "expected"),
    [
        (_bad(conversations=[GPT, HUMAN]), "conversations[0].from", "must start with a human turn"),
        (_bad(conversations=[HUMAN, HUMAN]), "conversations[1].from", "turns must alternate"),
        (_bad(conversations=[HUMAN]), "conversations", "at least 2 turns"),
        (_bad(conversations="hi"), "conversations", "a list"),
        (_bad(conversations=[HUMAN, {"from": "gpt", "value": 3}]), "conversations[1].value", "string"),
        (_bad(video=5), "video", "a non-empty string path"),
        (_bad(image="x.png"), "video/image", "at most one"),
        (_bad(min_frames="8"), "min_frames", "positive integer"),
        (_bad(min_frames=0), "min_frames", "positive integer"),
        (_bad(task=3), "task", "a string"),
        (_bad(id=None), "id", "non-empty string or integer"),
    ],
)
def test_malformed_rows_name_file_row_id_field(tmp_path, row, field, expected):
    path = _write(str(tmp_path / "bad.json"), [ROWS[2], row], "json")
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    message = str(info.value)
    assert message.startswith(f"{path}: row 1") and f"field '{field}'" in message
    assert expected in message
    if row.get("id") is not None:
        assert "(id='v1')" in message


def test_file_level_errors(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(str(tmp_path / "nope.json"))
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(ROWS[2]) + "\n{not json\n")
    with pytest.raises(ManifestError, match=r"broken.jsonl: line 2 \(row 1\): invalid JSON"):
        read_manifest(str(path))
    path = tmp_path / "broken.json"
    path.write_text("[1, 2")
    with pytest.raises(ManifestError, match="broken.json: invalid JSON at line 1"):
        read_manifest(str(path))
    path = _write(str(tmp_path / "scalar.json"), [7], "json")
    with pytest.raises(ManifestError, match="row 0: field '<row>': expected a JSON object"):
        read_manifest(path)


def test_duplicate_ids_rejected(tmp_path):
    path = _write(str(tmp_path / "dup.jsonl"), [ROWS[2], ROWS[2]], "jsonl")
    with pytest.raises(ManifestError, match=r"row 1 \(id='t1'\): field 'id': .*repeat of row 0"):
        read_manifest(path)


def test_role_aliases_and_integer_ids(tmp_path):
    row = {"id": 7, "conversations": [{"from": "user", "value": "<image>q"}, {"from": "assistant", "value": "a"}]}
    (out,) = read_manifest(_write(str(tmp_path / "m.json"), [row], "json"))
    assert out[S.ID] == "7" and out[S.QUESTION] == "q"
    assert json.loads(out[S.CONVERSATIONS])[1]["from"] == "gpt"


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_strip_placeholders_removes_every_placeholder(text):
    stripped = strip_placeholders(f"<video>\n{text}<image>")
    assert stripped == stripped.strip()
    if "<" not in text:  # only placeholders go; user text (and its inner newlines) stays
        assert stripped == text.strip()


def test_manifest_paths_are_not_resolved_twice(tmp_path):
    os.makedirs(tmp_path / "sub")
    path = _write(str(tmp_path / "sub" / "m.jsonl"), [ROWS[0]], "jsonl")
    assert read_manifest(path)[0][S.MEDIA_PATH] == str(tmp_path / "sub" / "clips" / "a.mp4")


def test_join_path_keeps_uris_intact():
    from videosft.data.manifest import join_path

    assert join_path("s3://bucket/llava", "train.json") == "s3://bucket/llava/train.json"
    assert join_path("gs://b/root/", "sub/t.jsonl") == "gs://b/root/sub/t.jsonl"
    assert join_path("/data", "train.json") == "/data/train.json"
    assert join_path("/data", "s3://other/t.json") == "s3://other/t.json"
    assert join_path("s3://b", "/abs/t.json") == "/abs/t.json"


def test_ids_must_be_unique_across_sources(manifests, tmp_path):
    other = _write(str(tmp_path / "other.json"), [ROWS[2]], "json")  # t1 again
    with pytest.raises(ManifestError, match=r"other\.json: field 'id'.*'t1', already in .*train\.json"):
        read_manifests([manifests["json"], other])


def test_llava_rows_round_trip(manifests, tmp_path):
    from videosft.data.manifest import to_llava_row, write_manifest

    rows = read_manifest(manifests["json"])
    out = write_manifest([to_llava_row(r) for r in rows], tmp_path / "again" / "copy.json")
    again = read_manifest(str(out))
    for a, b in zip(rows, again, strict=True):
        assert a.pop(S.SOURCE) != b.pop(S.SOURCE)
        assert a == b  # media paths were written resolved, so they read back unchanged


def test_combined_manifest_resolves_each_source_and_tracks_changes(tmp_path):
    from videosft.data.manifest import combined_manifest

    os.makedirs(tmp_path / "academic")
    a = _write(str(tmp_path / "academic" / "qa.json"), [ROWS[0]], "json")
    b = _write(str(tmp_path / "youtube.jsonl"), [dict(ROWS[0], id="v2"), ROWS[2]], "jsonl")
    sources = [(a, None), (b, "s3://bucket/youtube")]
    out = combined_manifest(sources, tmp_path / "manifests")
    rows = read_manifest(str(out))
    assert [r[S.ID] for r in rows] == ["v1", "v2", "t1"]
    assert rows[0][S.MEDIA_PATH] == str(tmp_path / "academic" / "clips" / "a.mp4")  # its own dir
    assert rows[1][S.MEDIA_PATH] == "s3://bucket/youtube/clips/a.mp4"  # its media_root
    assert rows[0]["options"] == ["A. red", "B. blue"] and rows[0][S.MIN_FRAMES] == 1
    stamp = out.stat().st_mtime_ns
    assert combined_manifest(sources, tmp_path / "manifests") == out and out.stat().st_mtime_ns == stamp
    _write(b, [dict(ROWS[0], id="v3")], "jsonl")  # a source changed: a new combined file
    changed = combined_manifest(sources, tmp_path / "manifests")
    assert changed != out and [r[S.ID] for r in read_manifest(str(changed))] == ["v1", "v3"]
    with pytest.raises(ManifestError, match=r"nope\.json: expected a manifest file, found notfound"):
        combined_manifest([(str(tmp_path / "nope.json"), None)], tmp_path / "manifests")
