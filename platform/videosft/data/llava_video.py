"""LLaVA-Video-178K as published on the Hugging Face hub (lmms-lab/LLaVA-Video-178K), local or s3/gs.

The layout (verified against the dataset card's `configs` and the repo's file tree; docs/curation.md
says where): one folder per subset, named `<duration bucket>_<source>`, e.g. `0_30_s_academic_v0_1/`,
`1_2_m_nextqa/`. Each holds annotation JSON lists, one per instruction format, and the videos as
`<subset>_videos_<N>.tar.gz` archives whose members are named as the rows' `video` field:

    0_30_s_academic_v0_1/0_30_s_academic_v0_1_cap_processed.json      caption
    0_30_s_academic_v0_1/0_30_s_academic_oe_v0_1_qa_processed.json    open_ended
    0_30_s_academic_v0_1/0_30_s_academic_mc_v0_1_qa_processed.json    multi_choice
    30_60_s_nextqa/30_60_s_nextqa_oe_qa_processed.json                open_ended (no _v0_1)
    0_30_s_academic_v0_1/0_30_s_academic_v0_1_videos_1.tar.gz

This module owns that layout: finding subsets and their files, and listing / extracting archive
members safely (regular files only, no absolute or `..` names, written inside the extraction root).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import tarfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videosft.data.manifest import ManifestError

CAPTION, OPEN_ENDED, MULTI_CHOICE = "caption", "open_ended", "multi_choice"  # the card's split names
FORMATS = (CAPTION, OPEN_ENDED, MULTI_CHOICE)
_KIND_FORMAT = {"oe": OPEN_ENDED, "mc": MULTI_CHOICE}

# Duration buckets as the folder names spell them -> [lo, hi] seconds.
BUCKETS = {"0_30_s": (0.0, 30.0), "30_60_s": (30.0, 60.0), "1_2_m": (60.0, 120.0), "2_3_m": (120.0, 180.0)}
SOURCES = ("academic_v0_1", "youtube_v0_1", "activitynet", "nextqa", "perceptiontest")
# The 18 bucketed subsets the card lists (activitynet and nextqa in all four buckets, perceptiontest
# in the two short ones). `llava_hound` (LLaVA-Hound-255K) has another layout and is not read here.
PUBLISHED_SUBSETS = tuple(
    f"{b}_{s}" for b in BUCKETS for s in SOURCES if not (s == "perceptiontest" and b in ("1_2_m", "2_3_m"))
)
SUBSET = re.compile(r"^(?P<bucket>0_30_s|30_60_s|1_2_m|2_3_m)_(?P<source>" + "|".join(SOURCES) + r")$")
_ANNOTATION = re.compile(r"^(?P<stem>.+?)(?:_(?P<kind>oe|mc))?(?P<ver>_v0_1)?_(?P<type>cap|qa)_processed\.json$")
_ARCHIVE = re.compile(r"^(?P<subset>.+)_videos_(?P<n>\d+)\.tar\.gz$")


def subset_source(subset: str) -> str:
    """`0_30_s_academic_v0_1` -> `academic_v0_1` (the source without its duration bucket)."""
    match = SUBSET.match(subset)
    return match["source"] if match else subset


def subset_bucket(subset: str) -> tuple[float, float]:
    match = SUBSET.match(subset)
    if not match:
        raise ValueError(f"{subset!r} is not a LLaVA-Video-178K subset name (e.g. 0_30_s_academic_v0_1)")
    return BUCKETS[match["bucket"]]


def annotation_format(subset: str, filename: str) -> str | None:
    """The instruction format of an annotation file of `subset`, None when it is not one.

    `<stem>_v0_1_cap_processed.json` is a caption file, `<stem>_{oe,mc}[_v0_1]_qa_processed.json`
    open-ended / multiple-choice, where <stem> is the subset name without `_v0_1`.
    """
    match = _ANNOTATION.match(filename)
    if not match:
        return None
    stem = subset.removesuffix("_v0_1")
    if match["stem"] != stem or bool(match["ver"]) != subset.endswith("_v0_1"):
        return None
    if match["type"] == "cap":
        return CAPTION if match["kind"] is None else None
    return _KIND_FORMAT.get(match["kind"] or "")


@dataclass
class Subset:
    name: str
    uri: str  # the folder (local path or URI)
    annotations: dict[str, list[str]] = field(default_factory=dict)  # format -> files
    archives: list[str] = field(default_factory=list)  # sorted by their number
    ignored: list[str] = field(default_factory=list)  # files in the folder that are neither


def _fs(root: str) -> tuple[Any, str]:
    from pyarrow import fs

    if "://" in root:
        return fs.FileSystem.from_uri(root.rstrip("/"))
    return fs.LocalFileSystem(), os.path.abspath(root)


def _join(root: str, name: str) -> str:
    return root.rstrip("/") + "/" + name if "://" in root else os.path.join(root, name)


def discover(root: str) -> dict[str, Subset]:
    """Subsets under `root` (a local dir or s3://, gs:// URI), each with its annotation files by
    format and its video archives. Folders not named like a subset are skipped."""
    from pyarrow import fs

    filesystem, inner = _fs(root)
    try:
        entries = filesystem.get_file_info(fs.FileSelector(inner, recursive=False))
    except (FileNotFoundError, OSError) as exc:
        raise ManifestError(f"{root}: cannot list the LLaVA-Video-178K root ({exc})") from exc
    found: dict[str, Subset] = {}
    for entry in sorted(entries, key=lambda e: e.base_name):
        if entry.type != fs.FileType.Directory or not SUBSET.match(entry.base_name):
            continue
        sub = Subset(entry.base_name, _join(root, entry.base_name))
        archives = []
        for info in sorted(filesystem.get_file_info(fs.FileSelector(entry.path)), key=lambda e: e.base_name):
            if info.type != fs.FileType.File:
                continue
            fmt = annotation_format(sub.name, info.base_name)
            arch = _ARCHIVE.match(info.base_name)
            if fmt:
                sub.annotations.setdefault(fmt, []).append(_join(sub.uri, info.base_name))
            elif arch and arch["subset"] == sub.name:
                archives.append((int(arch["n"]), _join(sub.uri, info.base_name)))
            else:
                sub.ignored.append(info.base_name)
        sub.archives = [uri for _, uri in sorted(archives)]
        found[sub.name] = sub
    if not found:
        raise ManifestError(f"{root}: no LLaVA-Video-178K subset folders (e.g. 0_30_s_academic_v0_1/) found")
    return found


# --------------------------------------------------------------------------- archives
def member_name(name: str) -> str | None:
    """A tar member's name as a relative POSIX path, None when it is unsafe (absolute, `..`)."""
    if not name or name.startswith("/") or "\\" in name:
        return None
    norm = posixpath.normpath(name)
    if norm in (".", "") or norm.startswith("../") or norm == "..":
        return None
    return norm


def _open_tar_stream(uri: str) -> Any:
    filesystem, inner = _fs(uri)
    return filesystem.open_input_stream(inner, compression=None)  # tarfile inflates the gzip itself


def _stamp(uri: str) -> list[Any]:
    filesystem, inner = _fs(uri)
    info = filesystem.get_file_info(inner)
    return [uri, info.size, info.mtime_ns]


def list_archive(uri: str, cache_dir: str | Path | None = None, errors: dict[str, str] | None = None) -> dict[str, int]:
    """Regular-file members of a `*_videos_N.tar.gz` (normalized name -> size). Reading a tar.gz's
    index means inflating all of it, so the listing is cached under `cache_dir` keyed by the
    archive's URI, size and mtime. Unsafe or non-file members are left out.

    An archive that cannot be read to its end (a cut download) raises ManifestError, unless
    `errors` is given: then the reason goes in `errors[uri]` and the members before the damage
    come back (the last one read, whose data may be cut, left out); such a listing is not cached.
    """
    cache = None
    if cache_dir is not None:
        key = hashlib.sha256(json.dumps(_stamp(uri)).encode()).hexdigest()[:16]
        cache = Path(cache_dir) / f"{key}.json"
        if cache.exists():
            return json.loads(cache.read_text())
    members: dict[str, int] = {}
    last = None
    try:
        with _open_tar_stream(uri) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
            for member in tar:
                name = member_name(member.name)
                if member.isreg() and name is not None:
                    members[name] = member.size
                    last = name
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        reason = f"cannot read video archive to its end ({type(exc).__name__}: {exc})"
        if errors is None:
            raise ManifestError(f"{uri}: {reason}") from exc
        errors[uri] = reason
        if last is not None:
            members.pop(last, None)
        return members
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(members))
    return members


def extract_members(
    uri: str, wanted: Iterable[str], dest: str | Path, errors: dict[str, str] | None = None
) -> dict[str, str]:
    """Extract only `wanted` members (normalized names) of one archive under `dest`, streaming it
    once; returns name -> local path of those written or already there with the same size (with
    `errors`, a damaged archive's reason goes there and the members written before it come back).

    Safe by construction: only regular files are written, through a temp file renamed into place,
    at `dest/<name>` after checking that the resolved path stays under `dest` (no traversal, no
    links followed out of it).
    """
    want = {n for n in wanted}
    root = Path(dest).resolve()
    done: dict[str, str] = {}
    if not want:
        return done
    try:
        with _open_tar_stream(uri) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
            for member in tar:
                name = member_name(member.name)
                if name not in want or not member.isreg():
                    continue
                target = (root / name).resolve()
                if root not in target.parents:
                    raise ManifestError(f"{uri}: member {member.name!r} would be written outside {root}")
                if target.exists() and target.stat().st_size == member.size:
                    done[name] = str(target)
                else:
                    _write_member(tar, member, target)
                    done[name] = str(target)
                if len(done) == len(want):
                    break
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:  # a cut archive: keep what was written
        reason = f"cannot read video archive to its end ({type(exc).__name__}: {exc})"
        if errors is None:
            raise ManifestError(f"{uri}: {reason}") from exc
        errors[uri] = reason
    return done


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".part{os.getpid()}")
    source = tar.extractfile(member)
    if source is None:
        raise ManifestError(f"archive member {member.name!r} has no data")
    try:
        with source, tmp.open("wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
