"""Shared readers for published benchmark layouts: tables, JSON, text, embedded images.

Every loader reads from a user-given root that may be a local path or a URI (s3://, gs://,
file://), so all file access goes through ``pyarrow.fs.FileSystem.from_uri`` here and nowhere
else. Readers fail loudly with the file and the field in the message: a benchmark that silently
loads half its rows produces a wrong score that looks right.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow.fs as pafs

_SCHEMES = ("s3://", "gs://", "gcs://", "hdfs://", "file://", "abfs://", "az://")


class BenchmarkDataError(ValueError):
    """A benchmark file is missing or malformed; the message names the file and the field."""


def is_uri(path: str) -> bool:
    return any(path.startswith(s) for s in _SCHEMES)


def join(root: str, *parts: str) -> str:
    """Join path parts under a local root or a URI root (URIs always use '/')."""
    if is_uri(root):
        out = root.rstrip("/")
        for p in parts:
            out = out + "/" + str(p).strip("/")
        return out
    return os.path.join(os.path.abspath(root), *[str(p) for p in parts])


def _fs(path: str) -> tuple[pafs.FileSystem, str]:
    # from_uri rejects relative local paths, so absolutise them first.
    return pafs.FileSystem.from_uri(path if is_uri(path) else os.path.abspath(path))


def exists(path: str) -> bool:
    fs, p = _fs(path)
    return fs.get_file_info(p).type != pafs.FileType.NotFound


def is_dir(path: str) -> bool:
    fs, p = _fs(path)
    return fs.get_file_info(p).type == pafs.FileType.Directory


def list_files(path: str, suffix: str = "") -> list[str]:
    """Sorted full paths/URIs of the regular files directly under ``path`` ending in ``suffix``."""
    fs, p = _fs(path)
    if fs.get_file_info(p).type != pafs.FileType.Directory:
        raise BenchmarkDataError(f"{path}: expected a directory")
    infos = fs.get_file_info(pafs.FileSelector(p, recursive=False))
    names = sorted(i.base_name for i in infos if i.type == pafs.FileType.File)
    return [join(path, n) for n in names if n.endswith(suffix)]


def read_bytes(path: str) -> bytes:
    fs, p = _fs(path)
    try:
        with fs.open_input_stream(p) as f:
            return f.read()
    except FileNotFoundError as e:
        raise BenchmarkDataError(f"{path}: file not found") from e


def read_text(path: str) -> str:
    data = read_bytes(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BenchmarkDataError(f"{path}: not UTF-8 text ({e})") from e


def read_json(path: str) -> Any:
    """A JSON document, or a JSONL file (one object per line) when the name ends in .jsonl."""
    text = read_text(path)
    try:
        if path.endswith(".jsonl"):
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BenchmarkDataError(f"{path}: malformed JSON ({e})") from e


def read_table(path: str) -> list[dict[str, Any]]:
    """Rows of a .parquet, .tsv or .csv table as dicts.

    TSV/CSV cells are kept as strings; an empty cell is "" (pandas' default NA list would also
    turn a legitimate option text such as "None" or "NA" into a missing option).
    """
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        fs, p = _fs(path)
        try:
            return pq.read_table(p, filesystem=fs).to_pylist()
        except FileNotFoundError as e:
            raise BenchmarkDataError(f"{path}: file not found") from e
        except Exception as e:  # pyarrow raises several types for corrupt files
            raise BenchmarkDataError(f"{path}: unreadable parquet ({e})") from e
    if path.endswith((".tsv", ".csv")):
        csv.field_size_limit(sys.maxsize)  # base64 images are megabytes per cell
        delim = "\t" if path.endswith(".tsv") else ","
        reader = csv.DictReader(io.StringIO(read_text(path), newline=""), delimiter=delim)
        rows = [dict(r) for r in reader]
        for i, r in enumerate(rows):
            if None in r:
                raise BenchmarkDataError(f"{path}: row {i} has more cells than the header")
        return rows
    raise BenchmarkDataError(f"{path}: unsupported table format (want .parquet, .tsv or .csv)")


def require(row: Mapping[str, Any], field: str, source: str, where: str = "") -> Any:
    """row[field], or a BenchmarkDataError naming the file, the row and the missing field."""
    value = row.get(field) if isinstance(row, Mapping) else None
    if value is None or (isinstance(value, float) and value != value):
        at = f" ({where})" if where else ""
        raise BenchmarkDataError(f"{source}{at}: missing required field {field!r}")
    return value


def first_present(row: Mapping[str, Any], fields: Iterable[str], source: str, where: str = "") -> Any:
    """The first of several alternative field names present in the row (published layouts vary)."""
    fields = list(fields)
    for f in fields:
        v = row.get(f)
        if v is not None and not (isinstance(v, float) and v != v):
            return v
    at = f" ({where})" if where else ""
    raise BenchmarkDataError(f"{source}{at}: missing required field, one of {fields}")


def _image_ext(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return ".gif"
    if data.startswith(b"BM"):
        return ".bmp"
    return ".img"


def cache_image_bytes(data: bytes, cache_dir: str, stem: str) -> str:
    """Write image bytes once under cache_dir and return the path.

    Named by content hash alone, so an image shared by many questions (MMBench rotations, MME's
    two questions per image, VLMEvalKit's deduplicated TSV cells) is one file, and reloading a
    benchmark rewrites nothing. ``stem`` only labels errors.
    """
    if not data:
        raise BenchmarkDataError(f"{stem}: empty image bytes")
    digest = hashlib.sha1(data).hexdigest()[:20]
    path = os.path.join(os.path.abspath(cache_dir), f"{digest}{_image_ext(data)}")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # atomic: parallel loaders never see half an image
    return path


def cache_b64_image(b64: str, cache_dir: str, stem: str, source: str, field: str = "image") -> str:
    """Decode an embedded base64 image (TSV layouts) into the cache and return its path."""
    try:
        data = base64.b64decode(str(b64), validate=False)
    except (binascii.Error, ValueError) as e:
        raise BenchmarkDataError(f"{source} ({stem}): field {field!r} is not base64 ({e})") from e
    if not data:
        raise BenchmarkDataError(f"{source} ({stem}): field {field!r} is empty")
    return cache_image_bytes(data, cache_dir, stem)


def cache_image_cell(cell: Any, cache_dir: str, stem: str, source: str, field: str = "image") -> str:
    """An image cell in any published form (HF {'bytes','path'} struct, raw bytes, base64) -> path."""
    if isinstance(cell, Mapping):
        if cell.get("bytes"):
            return cache_image_bytes(cell["bytes"], cache_dir, stem)
        raise BenchmarkDataError(f"{source} ({stem}): field {field!r} has no image bytes")
    if isinstance(cell, (bytes, bytearray)):
        return cache_image_bytes(bytes(cell), cache_dir, stem)
    if isinstance(cell, str) and cell:
        return cache_b64_image(cell, cache_dir, stem, source, field)
    raise BenchmarkDataError(f"{source} ({stem}): field {field!r} holds no image")


def find_tables(
    root: str, subdirs: Iterable[str] = ("", "data"), suffixes: tuple[str, ...] = (".parquet",)
) -> list[str]:
    """Table files directly under root or under one of its usual sub-folders (HF ``data/``)."""
    found: list[str] = []
    for sub in subdirs:
        d = join(root, sub) if sub else root
        if is_dir(d):
            found += [f for f in list_files(d) if f.endswith(suffixes)]
    return found


def default_cache_dir(benchmark: str) -> str:
    """Where embedded images go when the caller names no cache dir (local, per benchmark)."""
    import tempfile

    return os.path.join(tempfile.gettempdir(), "videosft_eval_cache", benchmark)


def media_ref(root: str, rel: str) -> str:
    """A media path from an annotation: URIs and absolute paths stay, relative ones join root."""
    rel = str(rel)
    if is_uri(rel) or os.path.isabs(rel):
        return rel
    return join(root, rel)


def check_media_exist(benchmark: str, items: Iterable[Mapping[str, Any]], show: int = 5) -> None:
    """Fail at load, once, naming the benchmark, the missing count and the first few files.

    A missing video would otherwise reach the decoder, be scored wrong and silently lower the score.
    """
    paths = sorted({str(it["media_path"]) for it in items if it.get("media_path")})
    missing = [p for p in paths if not exists(p)]
    if missing:
        listed = "\n  ".join(missing[:show]) + (
            f"\n  ... and {len(missing) - show} more" if len(missing) > show else ""
        )
        raise BenchmarkDataError(
            f"{benchmark}: {len(missing)} of {len(paths)} referenced media file(s) are missing:\n  {listed}"
        )
