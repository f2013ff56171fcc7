"""Shared readers: URIs through pyarrow.fs, clear errors naming file and field."""

import pytest

from videosft.benchmarks import _io, get_benchmark
from videosft.benchmarks._io import BenchmarkDataError


def test_file_uri_root_loads(tmp_path, write_json):
    write_json(
        tmp_path / "eval_image.json",
        [
            {
                "id": "a",
                "image": "i/a.png",
                "task": "colour",
                "min_frames": 1,
                "conversations": [{"from": "human", "value": "<image>\nColour?"}, {"from": "gpt", "value": "red"}],
            }
        ],
    )
    items = get_benchmark("synthetic_image").load(f"file://{tmp_path}")
    assert items[0]["media_path"] == f"file://{tmp_path}/i/a.png"


def test_errors_name_file_and_field(tmp_path):
    with pytest.raises(BenchmarkDataError, match=r"nope\.json: file not found"):
        _io.read_json(str(tmp_path / "nope.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BenchmarkDataError, match=r"bad\.json: malformed JSON"):
        _io.read_json(str(tmp_path / "bad.json"))
    (tmp_path / "t.tsv").write_text("a\tb\n1\t2\t3\n")
    with pytest.raises(BenchmarkDataError, match=r"t\.tsv: row 0 has more cells"):
        _io.read_table(str(tmp_path / "t.tsv"))
    with pytest.raises(BenchmarkDataError, match=r"x\.xlsx: unsupported"):
        _io.read_table(str(tmp_path / "x.xlsx"))
    with pytest.raises(BenchmarkDataError, match=r"f\.tsv \(row 3\): missing required field 'question'"):
        _io.require({"question": None}, "question", "f.tsv", "row 3")
    with pytest.raises(BenchmarkDataError, match=r"'image' is not base64|'image' is empty"):
        _io.cache_b64_image("!!!!", str(tmp_path), "k", "src.tsv")


def test_tsv_keeps_literal_none_and_empty(tmp_path):
    (tmp_path / "t.tsv").write_text("A\tB\tC\nNone\tNA\t\n")
    assert _io.read_table(str(tmp_path / "t.tsv")) == [{"A": "None", "B": "NA", "C": ""}]


def test_image_cache_is_content_addressed(tmp_path, png):
    a = _io.cache_image_bytes(png("x"), str(tmp_path), "one")
    b = _io.cache_image_bytes(png("x"), str(tmp_path), "two")
    c = _io.cache_image_bytes(png("y"), str(tmp_path), "one")
    assert a == b != c and a.endswith(".png")
