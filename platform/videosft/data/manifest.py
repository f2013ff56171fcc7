"""Annotation manifests (LLaVA-Video-178K style) -> one flat row per sample, schema column names.

A manifest is a JSON list, JSONL, or parquet file of rows like
`{"id", "video" | "image" | neither, "conversations": [{"from": "human", ...}, {"from": "gpt", ...}]}`
plus optional keys ("task", "min_frames", "data_source", "options", ...), stored locally or in
object storage (s3://, gs://; anything `pyarrow.fs.FileSystem.from_uri` opens).

Validation is strict and eager: a malformed row fails the whole read with a ManifestError naming
the file, row, id, field and what was expected, because a bad annotation silently dropped here
becomes a skewed training mix nobody can trace later. (Bad *media* is different: that is found by
probe/decode and kept as data.)
"""

from __future__ import annotations

import codecs
import json
import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from videosft import schema as S
from videosft.schema import (
    ANSWER,
    CONVERSATIONS,
    ID,
    MEDIA_IMAGE,
    MEDIA_PATH,
    MEDIA_TEXT,
    MEDIA_TYPE,
    MEDIA_VIDEO,
    MIN_FRAMES,
    QUESTION,
    SOURCE,
    TASK,
)

HUMAN, GPT = "human", "gpt"
_ROLE_ALIASES = {"human": HUMAN, "user": HUMAN, "gpt": GPT, "assistant": GPT}
_PLACEHOLDER = re.compile(r"<(?:video|image)>\n?")
_CONSUMED = {"id", "video", "image", "conversations", "task", "min_frames"}
# Columns the platform computes (read_manifest, probe, decode): never written back as annotations.
_COMPUTED = {
    ID,
    MEDIA_TYPE,
    MEDIA_PATH,
    QUESTION,
    ANSWER,
    CONVERSATIONS,
    TASK,
    MIN_FRAMES,
    SOURCE,
    S.ERROR,
    S.FRAMES,
    S.FRAME_INDICES,
    S.TIMESTAMPS,
    S.SAMPLED_FPS,
    S.CONTRACT_ID,
    S.NUM_FRAMES,
    S.FPS,
    S.DURATION,
    S.WIDTH,
    S.HEIGHT,
}


class ManifestError(ValueError):
    """A manifest file or row that does not match the expected annotation format."""


def _is_uri(path: str) -> bool:
    return "://" in path


def _open_fs(path: str) -> tuple[Any, str]:
    from pyarrow import fs

    if _is_uri(path):
        return fs.FileSystem.from_uri(path)
    return fs.LocalFileSystem(), os.path.abspath(path)


_READ_BYTES = 1 << 20  # streamed manifests are read a MiB at a time
_PARQUET_BATCH = 4096


def _load_raw(path: str) -> list[Any]:
    """Raw row objects of a JSON list, JSONL, or parquet file (format by suffix and content)."""
    return list(iter_raw(path))


def iter_raw(path: str) -> Iterator[Any]:
    """Raw row objects one at a time, never the whole file in memory: JSONL line by line, a JSON
    list object by object, parquet batch by batch. Malformed JSON raises ManifestError."""
    import pyarrow.parquet as pq

    try:
        filesystem, inner = _open_fs(path)
        if path.endswith(".parquet"):
            with filesystem.open_input_file(inner) as handle:
                for batch in pq.ParquetFile(handle).iter_batches(batch_size=_PARQUET_BATCH):
                    yield from batch.to_pylist()
            return
        with filesystem.open_input_stream(inner) as handle:
            yield from _iter_text_rows(path, handle)
    except FileNotFoundError as exc:
        raise ManifestError(f"{path}: manifest not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read manifest ({exc})") from exc


class _Text:
    """A UTF-8 stream as a sliding text buffer, counting the lines it has let go of."""

    def __init__(self, handle: Any) -> None:
        self.handle, self.decoder = handle, codecs.getincrementaldecoder("utf-8")()
        self.buf, self.pos, self.eof, self.lines_before = "", 0, False, 0

    def more(self) -> bool:
        if self.eof:
            return False
        chunk = self.handle.read(_READ_BYTES)
        self.eof = not chunk
        self.lines_before += self.buf.count("\n", 0, self.pos)
        self.buf = self.buf[self.pos :] + self.decoder.decode(chunk, final=self.eof)
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next non-blank character ("" at the end), consuming the blanks."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf) or not self.more():
                return self.buf[self.pos] if self.pos < len(self.buf) else ""


def _iter_text_rows(path: str, handle: Any) -> Iterator[Any]:
    text = _Text(handle)
    if text.peek() != "[":  # JSONL, whatever the suffix says
        yield from _parse_jsonl(path, text)
        return
    text.pos += 1
    decoder, first = json.JSONDecoder(), True
    while True:
        char = text.peek()
        if char == "]":
            return
        if not first:
            if char != ",":
                raise _json_error(path, text, "expected ',' or ']'")
            text.pos += 1
            text.peek()
        first = False
        while True:
            try:
                obj, end = decoder.raw_decode(text.buf, text.pos)
                if end < len(text.buf) or text.eof or isinstance(obj, (dict, list, str)):
                    break  # a bare number at the buffer's end may continue in the next read
            except json.JSONDecodeError as exc:
                if not text.more():
                    raise _json_error(path, text, exc.msg, exc.lineno) from exc
                continue
            if not text.more():
                break
        text.pos = end
        yield obj


def _json_error(path: str, text: _Text, msg: str, lineno: int | None = None) -> ManifestError:
    line = text.lines_before + (lineno if lineno is not None else text.buf.count("\n", 0, text.pos) + 1)
    return ManifestError(f"{path}: invalid JSON at line {line} ({msg})")


def _parse_jsonl(path: str, text: _Text) -> Iterator[Any]:
    lineno, rows = 0, 0
    while True:
        newline = text.buf.find("\n", text.pos)
        if newline < 0 and text.more():
            continue
        line = text.buf[text.pos :] if newline < 0 else text.buf[text.pos : newline]
        if newline < 0 and not line:
            return
        lineno += 1
        text.pos = len(text.buf) if newline < 0 else newline + 1
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ManifestError(
                    f"{path}: line {lineno} (row {rows}): invalid JSON ({exc.msg}); expected a "
                    "JSON list or one JSON object per line"
                ) from exc
            rows += 1
        if newline < 0:
            return


def strip_placeholders(text: str) -> str:
    """Drop <video>/<image> placeholders (and the newline after each): models add their own."""
    return _PLACEHOLDER.sub("", text).strip()


def _dirname(path: str) -> str:
    if _is_uri(path):
        return path.rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(path))


def join_path(root: str, name: str) -> str:
    """`name` under `root`, for local dirs and URIs alike (pathlib would turn s3://b into s3:/b);
    an absolute or URI `name` is returned as is."""
    if _is_uri(name) or os.path.isabs(name):
        return name
    if _is_uri(root):
        return root.rstrip("/") + "/" + name
    return os.path.join(root, name)


def resolve_media_path(media: str, base: str) -> str:
    """Absolute paths and URIs stay as they are; relative ones join `base` (a dir or URI)."""
    if _is_uri(media) or os.path.isabs(media):
        return media
    if _is_uri(base):
        scheme, rest = base.split("://", 1)
        return f"{scheme}://{posixpath.normpath(posixpath.join(rest, media))}"
    return os.path.normpath(os.path.join(os.path.abspath(base), media))


class _RowChecker:
    """Validates one raw row; every failure names file, row, id and field."""

    def __init__(self, path: str, index: int, raw: Any) -> None:
        self.raw = raw
        ident = f" (id={raw['id']!r})" if isinstance(raw, dict) and "id" in raw else ""
        self.where = f"{path}: row {index}{ident}"

    def fail(self, field: str, expected: str, got: Any) -> ManifestError:
        shown = repr(got)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return ManifestError(f"{self.where}: field '{field}': expected {expected}, got {shown}")

    def ident(self) -> str:
        value = self.raw.get("id")
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            raise self.fail("id", "a non-empty string or integer", value)
        return str(value)

    def media(self) -> tuple[str, str]:
        present = {k: self.raw[k] for k in (MEDIA_VIDEO, MEDIA_IMAGE) if self.raw.get(k) is not None}
        if len(present) > 1:
            raise self.fail("video/image", "at most one of 'video' and 'image'", sorted(present))
        if not present:
            return MEDIA_TEXT, ""
        ((kind, value),) = present.items()
        if not isinstance(value, str) or not value.strip():
            raise self.fail(kind, "a non-empty string path", value)
        return kind, value

    def conversations(self) -> list[dict[str, str]]:
        turns = self.raw.get("conversations")
        if not isinstance(turns, list) or len(turns) < 2:
            raise self.fail("conversations", "a list of at least 2 turns (human, gpt)", turns)
        out = []
        for t, turn in enumerate(turns):
            if not isinstance(turn, dict):
                raise self.fail(f"conversations[{t}]", "an object with 'from' and 'value'", turn)
            role = _ROLE_ALIASES.get(turn.get("from"))  # type: ignore[arg-type]
            want = HUMAN if t % 2 == 0 else GPT
            if role != want:
                rule = "must start with a human turn" if t == 0 else "turns must alternate"
                raise self.fail(f"conversations[{t}].from", f"{want!r} ({rule})", turn.get("from"))
            if not isinstance(turn.get("value"), str):
                raise self.fail(f"conversations[{t}].value", "a string", turn.get("value"))
            out.append({"from": role, "value": strip_placeholders(turn["value"])})
        return out

    def task(self) -> str:
        value = self.raw.get("task")
        if value is not None and not isinstance(value, str):
            raise self.fail("task", "a string", value)
        return value or ""

    def min_frames(self) -> int:
        value = self.raw.get("min_frames")
        if value is None:
            return -1
        if isinstance(value, bool) or not isinstance(value, int) or (value < 1 and value != -1):
            raise self.fail("min_frames", "a positive integer (or -1 for unknown)", value)
        return value


def parse_row(raw: Any, index: int, path: str, base: str) -> dict[str, Any]:
    """One raw annotation -> a flat row; extra keys (options, data_source, ...) are kept."""
    check = _RowChecker(path, index, raw)
    if not isinstance(raw, dict):
        raise check.fail("<row>", "a JSON object", type(raw).__name__)
    kind, media = check.media()
    turns = check.conversations()
    # Extras first so the computed columns win a name clash; None is "absent" (parquet fills it).
    row = {k: v for k, v in raw.items() if k not in _CONSUMED and v is not None}
    row.update(
        {
            ID: check.ident(),
            MEDIA_TYPE: kind,
            MEDIA_PATH: resolve_media_path(media, base) if media else "",
            QUESTION: turns[0]["value"],
            ANSWER: turns[1]["value"],
            CONVERSATIONS: json.dumps(turns, ensure_ascii=False),
            TASK: check.task(),
            MIN_FRAMES: check.min_frames(),
            SOURCE: path,
        }
    )
    return row


def read_manifest(path: str, media_root: str | None = None) -> list[dict[str, Any]]:
    """Rows of one manifest; media paths resolve against media_root, else the manifest's dir.

    Raises ManifestError (naming file, row, id, field) on the first malformed row, and on ids
    repeated within the file (ids key rejects files and evaluation results). The whole file is
    parsed before any row is checked; `iter_manifest` streams instead.
    """
    raw_rows = _load_raw(path)
    if raw_rows and not isinstance(raw_rows, list):
        raise ManifestError(f"{path}: expected a JSON list of rows, got {type(raw_rows).__name__}")
    return list(_parsed(iter(raw_rows), path, media_root))


def iter_manifest(path: str, media_root: str | None = None) -> Iterator[dict[str, Any]]:
    """`read_manifest`'s rows one at a time, reading the file as they are consumed: a 178k-row
    manifest never sits in memory whole (only its ids do, to refuse repeats)."""
    return _parsed(iter_raw(path), path, media_root)


def _parsed(raw_rows: Iterator[Any], path: str, media_root: str | None) -> Iterator[dict[str, Any]]:
    base = media_root if media_root is not None else _dirname(path)
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_rows):
        row = parse_row(raw, index, path, base)
        if row[ID] in seen:
            raise ManifestError(
                f"{path}: row {index} (id={row[ID]!r}): field 'id': expected a "
                f"unique id, got a repeat of row {seen[row[ID]]}"
            )
        seen[row[ID]] = index
        yield row


def read_manifests(sources: Iterable[str | tuple[str, str | None]]) -> list[dict[str, Any]]:
    """Concatenate several manifests, each a path or (path, media_root); SOURCE tells them apart.

    Ids must be unique across sources too (they key rejects, caches and the resume cursor): a
    repeat fails naming both files.
    """
    return list(iter_manifests(sources))


def iter_manifests(sources: Iterable[str | tuple[str, str | None]]) -> Iterator[dict[str, Any]]:
    """`read_manifests`, streamed (see `iter_manifest`)."""
    seen: dict[str, str] = {}
    for source in sources:
        path, root = (source, None) if isinstance(source, str) else source
        for row in iter_manifest(path, root):
            if row[ID] in seen:
                raise ManifestError(
                    f"{path}: field 'id': expected ids unique across manifests, got "
                    f"{row[ID]!r}, already in {seen[row[ID]]}"
                )
            seen[row[ID]] = path
            yield row


def to_llava_row(row: dict[str, Any]) -> dict[str, Any]:
    """A flat row (read_manifest's layout) -> the LLaVA-Video-178K annotation it came from, with
    its media path as resolved (absolute or a URI) and its extra keys; computed columns dropped."""
    kind = str(row.get(MEDIA_TYPE, MEDIA_TEXT))
    turns = row.get(CONVERSATIONS)
    turns = json.loads(turns) if isinstance(turns, str) else list(turns or [])
    if not turns:
        turns = [{"from": HUMAN, "value": str(row[QUESTION])}, {"from": GPT, "value": str(row[ANSWER])}]
    if kind in (MEDIA_VIDEO, MEDIA_IMAGE):  # read_manifest stripped the placeholder; put it back
        turns[0] = {**turns[0], "value": f"<{kind}>\n{turns[0]['value']}"}
    out: dict[str, Any] = {"id": str(row[ID])}
    if kind in (MEDIA_VIDEO, MEDIA_IMAGE):
        out[kind] = str(row[MEDIA_PATH])
    out["conversations"] = turns
    if row.get(TASK):
        out["task"] = str(row[TASK])
    if int(row.get(MIN_FRAMES, -1) or -1) >= 1:
        out["min_frames"] = int(row[MIN_FRAMES])
    out.update({k: _plain(v) for k, v in row.items() if k not in _COMPUTED})
    return out


def _plain(value: Any) -> Any:
    """numpy scalars/arrays -> JSON-native values."""
    if hasattr(value, "tolist"):  # numpy arrays and scalars alike
        return value.tolist()
    return value


def combined_manifest(sources: Sequence[tuple[str, str | None]], out_dir: str | Path) -> Path:
    """One local manifest holding every source's rows, media paths resolved (absolute or URIs).

    Everything downstream (frame cache, Hybrid-Frame budgets, trials on other nodes) then reads
    one file. It is named by the sources and each file's size and mtime, so it is rebuilt when a
    source changes and reused (not rewritten) otherwise; a bad source fails here, naming the file.
    """
    import hashlib

    stamps = []
    for path, root in sources:
        filesystem, inner = _open_fs(path)
        info = filesystem.get_file_info(inner)
        if info.type.name != "File":
            raise ManifestError(f"{path}: expected a manifest file, found {info.type.name.lower()}")
        stamps.append([path, root, info.size, info.mtime_ns])
    key = hashlib.sha256(json.dumps(stamps).encode()).hexdigest()[:12]
    out = Path(out_dir) / f"train-{key}.json"
    if not out.exists():
        write_manifest((to_llava_row(r) for r in iter_manifests(sources)), out)
    return out


def write_manifest(records: Iterable[dict[str, Any]], out_path: str | Path) -> Path:
    """Write LLaVA annotations (e.g. `to_llava_row` output) as a JSON list manifest, atomically,
    one record at a time (a generator is never held whole)."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write("[")
            for n, record in enumerate(records):
                handle.write(("," if n else "") + "\n" + json.dumps(record, ensure_ascii=False))
            handle.write("\n]\n")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
