"""`curate`: a seeded, stratified subset of LLaVA-Video-178K as one manifest the sweep reads.

The study trains on N videos (20,000) drawn from the dataset's subsets, mixing instruction formats.
This draws them reproducibly: each (source, format) cell gets a share of N from the configured
proportions (capped by what the cell holds; a shortfall goes to the other cells by the same
weights), and walks its own seeded permutation of the cell's videos, so the same seed and data give
the same subset, and a cell's order does not depend on the other cells' weights (only which of its
videos a sibling cell of the same subset reached first does).

One row per video: a video id is drawn once, under the first cell reaching it (cells take turns in
a fixed order); its row holds every annotation row of the drawn format for that video, merged into
one conversation in file order (`merge_formats` adds its other formats' turns after them). Rows
whose video is missing, undecodable or outside the duration range are skipped, counted by reason,
and replaced from the same cell. Videos come from where the user extracted them (`videos_root`) or
from the subsets' `*_videos_N.tar.gz`, listed once (cached) and extracted member by member.

Annotations are read twice, streamed: once for ids and video paths, once for the chosen rows'
conversations, so a 669 MB annotation file never sits in memory.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from videosft import schema as S
from videosft.data.curate_stats import build_stats, write_stats
from videosft.data.llava_video import FORMATS, SUBSET, Subset, discover, extract_members, list_archive, subset_bucket
from videosft.data.manifest import ManifestError, iter_raw, join_path, parse_row, strip_placeholders, write_manifest
from videosft.data.pipeline import reason_kind

MANIFEST_NAME = "curated.json"


class CurateError(ValueError):
    """Curation settings that do not fit the data found (names the key)."""


class CurateConfig(BaseModel):
    """Curation settings; validated before anything is read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_root: str  # the dataset's root (local dir or s3://, gs:// URI) holding the subset folders
    out_dir: str  # curated.json, curation_stats.{json,md}, extracted videos (by default)
    num_videos: int = Field(20_000, ge=1)
    seed: int = 0
    # Subset name -> weight (relative share of num_videos); {}: every subset found, equal weights.
    # Subsets left out of a non-empty mapping are not drawn from.
    source_weights: dict[str, float] = {}
    # Format -> weight within each source, renormalized over the formats a source has.
    format_weights: dict[Literal["caption", "open_ended", "multi_choice"], float] = {
        "caption": 1.0,
        "open_ended": 1.0,
        "multi_choice": 1.0,
    }
    duration_s: tuple[float, float] | None = None  # keep videos whose probed duration is in [lo, hi]
    decodable: bool = False  # probe every drawn video; drop those that cannot yield frames
    probe_engine: Literal["ray", "local"] = "ray"  # ray: Ray Data tasks; local: in this process
    probe_concurrency: int = Field(2, ge=1)
    probe_cpus: float = Field(0.5, gt=0)
    # Where the user extracted the archives: the rows' `video` paths resolve under it; "{subset}"
    # in it is replaced by each subset's name (e.g. /data/llava/{subset}/videos). None: extract
    # the drawn members from the subsets' *_videos_N.tar.gz into `extract_dir`.
    videos_root: str | None = None
    extract_dir: str | None = None  # None: <out_dir>/videos
    merge_formats: bool = False

    @field_validator("source_weights")
    @classmethod
    def _subset_names(cls, v: dict[str, float]) -> dict[str, float]:
        for name, weight in v.items():
            if not SUBSET.match(name):
                raise ValueError(f"source_weights: {name!r} is not a subset name like 0_30_s_academic_v0_1")
            if weight < 0 or not math.isfinite(weight):
                raise ValueError(f"source_weights[{name!r}]: expected a finite weight >= 0, got {weight}")
        if v and sum(v.values()) <= 0:
            raise ValueError("source_weights: expected at least one positive weight")
        return v

    @field_validator("format_weights")
    @classmethod
    def _format_weights(cls, v: dict[str, float]) -> dict[str, float]:
        if any(w < 0 or not math.isfinite(w) for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError(f"format_weights: expected finite weights >= 0, one positive, got {v}")
        return v

    @field_validator("duration_s")
    @classmethod
    def _range(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (0 <= v[0] < v[1]):
            raise ValueError(f"duration_s: expected [lo, hi] with 0 <= lo < hi, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _videos_root(self) -> CurateConfig:
        if self.videos_root is not None:
            try:
                self.videos_root.format(subset="x")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"videos_root: only {{subset}} may be substituted ({exc})") from None
        return self

    def needs_probe(self) -> bool:
        return self.decodable or self.duration_s is not None


# --------------------------------------------------------------------------- allocation
def allocate(total: int, weights: dict[Any, float], capacity: dict[Any, int], seed: int = 0) -> dict[Any, int]:
    """Split `total` over keys in proportion to `weights`, no key above its `capacity`: largest
    remainders (ties broken by a seeded hash, so no name is favoured), and what a full key cannot
    take goes to the others by the same weights."""
    out = {k: 0 for k in weights}
    left = total
    while left > 0:
        open_keys = [k for k in weights if weights[k] > 0 and out[k] < capacity.get(k, 0)]
        if not open_keys:
            break
        mass = sum(weights[k] for k in open_keys)
        exact = {k: left * weights[k] / mass for k in open_keys}
        give = {k: min(int(exact[k]), capacity[k] - out[k]) for k in open_keys}
        rest = left - sum(give.values())
        for k in sorted(open_keys, key=lambda k: (-(exact[k] - int(exact[k])), _key_hash(seed, k))):
            if rest <= 0:
                break
            if out[k] + give[k] < capacity[k]:
                give[k] += 1
                rest -= 1
        if not any(give.values()):
            break
        for k, n in give.items():
            out[k] += n
        left -= sum(give.values())
    return out


def allocate_cells(
    total: int,
    weights: dict[tuple[str, str], float],
    capacity: dict[tuple[str, str], int],
    source_capacity: dict[str, int],
    seed: int = 0,
) -> dict[tuple[str, str], int]:
    """Two levels: `total` over sources (their summed cell weights, capped by source_capacity),
    then each source's share over its formats (capped by the cells' capacity); a source whose
    formats cannot take its share hands the rest back to the other sources."""
    out = {c: 0 for c in weights}
    left = total
    while left > 0:
        src_w: dict[str, float] = {}
        for (name, _), w in weights.items():
            src_w[name] = src_w.get(name, 0.0) + w
        room = {
            s: min(
                source_capacity.get(s, 0) - sum(out[c] for c in out if c[0] == s),
                sum(capacity.get(c, 0) - out[c] for c in out if c[0] == s),
            )
            for s in src_w
        }
        shares = allocate(left, src_w, room, seed)
        placed = 0
        for name, share in shares.items():
            cells = {c: w for c, w in weights.items() if c[0] == name}
            got = allocate(share, cells, {c: capacity.get(c, 0) - out[c] for c in cells}, seed)
            for c, n in got.items():
                out[c] += n
                placed += n
        if placed == 0:
            break
        left -= placed
    return out


def _key_hash(seed: int, key: Any) -> bytes:
    return hashlib.sha256(f"{seed}/{key}".encode()).digest()


def _cell_weights(cfg: CurateConfig, subsets: dict[str, Subset]) -> dict[tuple[str, str], float]:
    """(subset, format) -> share of num_videos: the source's weight split over the formats it has."""
    src = cfg.source_weights or {name: 1.0 for name in subsets}
    total = sum(src.values())
    fw: dict[str, float] = {str(k): v for k, v in cfg.format_weights.items()}
    weights = {}
    for name in sorted(src):
        formats = [f for f in FORMATS if f in subsets[name].annotations]
        fmass = sum(fw.get(f, 0.0) for f in formats)
        for fmt in formats:
            share = fw.get(fmt, 0.0) / fmass if fmass > 0 else 0.0
            weights[(name, fmt)] = src[name] / total * share
    return weights


def _cell_seed(seed: int, cell: tuple[str, str]) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{cell[0]}/{cell[1]}".encode()).digest()[:8], "big")


# --------------------------------------------------------------------------- index (pass 1)
def _ident(raw: Any, path: str, index: int) -> tuple[str, str]:
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: row {index}: expected a JSON object, got {type(raw).__name__}")
    ident, video = raw.get("id"), raw.get("video")
    if isinstance(ident, bool) or not isinstance(ident, (str, int)) or ident == "":
        raise ManifestError(f"{path}: row {index}: field 'id': expected a non-empty string or integer, got {ident!r}")
    if not isinstance(video, str) or not video.strip():
        raise ManifestError(
            f"{path}: row {index} (id={ident!r}): field 'video': expected a relative video path, got {video!r}"
        )
    return str(ident), video


def _index(subsets: dict[str, Subset], cells: Iterable[tuple[str, str]]) -> tuple[dict, dict, int]:
    """cell -> its ids in file order (each once); (subset, id) -> the video path its rows give; and
    how many ids name different video paths in different subsets (still one video: ids dedupe)."""
    candidates: dict[tuple[str, str], list[str]] = {}
    videos: dict[tuple[str, str], str] = {}
    paths_of: dict[str, set[str]] = {}
    for cell in sorted(cells):
        name, fmt = cell
        seen: dict[str, None] = {}
        for path in subsets[name].annotations[fmt]:
            for index, raw in enumerate(iter_raw(path)):
                ident, video = _ident(raw, path, index)
                seen.setdefault(ident, None)
                videos.setdefault((name, ident), video)
                paths_of.setdefault(ident, set()).add(_norm(video))
        candidates[cell] = list(seen)
    conflicts = sum(1 for p in paths_of.values() if len(p) > 1)
    return candidates, videos, conflicts


# --------------------------------------------------------------------------- media
class _Media:
    """Resolves drawn videos to files: under videos_root, or extracted from the subset's archives."""

    def __init__(self, cfg: CurateConfig, subsets: dict[str, Subset]) -> None:
        self.cfg, self.subsets = cfg, subsets
        self.extract_dir = Path(cfg.extract_dir or Path(cfg.out_dir) / "videos")
        self.members: dict[str, dict[str, str]] = {}  # subset -> member name -> archive
        self.errors: dict[str, str] = {}  # archive -> why it could not be read to its end

    def available(self, subset: str) -> dict[str, str] | None:
        """Archive members of a subset (None with videos_root: files are checked when drawn)."""
        if self.cfg.videos_root is not None:
            return None
        if subset not in self.members:
            index: dict[str, str] = {}
            for uri in self.subsets[subset].archives:
                for name in list_archive(uri, Path(self.cfg.out_dir) / "archive_index", self.errors):
                    index.setdefault(name, uri)
            self.members[subset] = index
        return self.members[subset]

    def has(self, subset: str, video: str) -> bool:
        members = self.available(subset)
        return True if members is None else _norm(video) in members

    def resolve(self, items: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(subset, video) -> a path decoders open (extracting archive members as needed)."""
        if self.cfg.videos_root is not None:
            return {(s, v): join_path(self.cfg.videos_root.format(subset=s), v) for s, v in items}
        by_archive: dict[str, set[str]] = {}
        for subset, video in items:
            by_archive.setdefault(self.members[subset][_norm(video)], set()).add(_norm(video))
        out: dict[tuple[str, str], str] = {}
        got: dict[str, str] = {}
        for uri in sorted(by_archive):
            got.update(extract_members(uri, by_archive[uri], self.extract_dir, self.errors))
        for subset, video in items:
            out[(subset, video)] = got.get(_norm(video), "")
        return out


def _norm(video: str) -> str:
    import posixpath

    return posixpath.normpath(video.removeprefix("./"))


def _probe_rows(rows: list[dict[str, Any]], cfg: CurateConfig) -> dict[str, dict[str, Any]]:
    """id -> probe facts, on Ray Data tasks (the decode pipeline's probe) or in this process."""
    if not rows:
        return {}
    if cfg.probe_engine == "local":
        return {r[S.ID]: _probe_one(r) for r in rows}
    import ray.data

    blocks = max(1, min(len(rows), 4 * cfg.probe_concurrency))  # one block would run on one task
    ds = ray.data.from_items(rows, override_num_blocks=blocks).map(
        _probe_one, num_cpus=cfg.probe_cpus, compute=ray.data.TaskPoolStrategy(size=cfg.probe_concurrency)
    )
    return {r[S.ID]: r for r in ds.take_all()}


def _probe_one(row: dict[str, Any]) -> dict[str, Any]:
    from videosft.data.probe import probe_video

    meta = probe_video(row[S.MEDIA_PATH], decode_tail=True)  # decodes the tail GOP: a real decode check
    return {S.ID: row[S.ID], S.ERROR: meta[S.ERROR], S.DURATION: float(meta[S.DURATION])}


# --------------------------------------------------------------------------- draw
def _draw(cfg: CurateConfig, subsets: dict[str, Subset], media: _Media) -> tuple[dict, dict, dict]:
    weights = _cell_weights(cfg, subsets)
    if cfg.duration_s is not None:  # buckets that cannot hold the range are not read at all
        lo, hi = cfg.duration_s
        weights = {c: w for c, w in weights.items() if subset_bucket(c[0])[0] <= hi and subset_bucket(c[0])[1] >= lo}
    weights = {c: w for c, w in weights.items() if w > 0}
    if not weights:
        raise CurateError(
            "no (source, format) cell has a positive weight in the data found "
            f"(sources: {sorted(subsets)}; check source_weights, format_weights, duration_s)"
        )
    candidates, videos, conflicts = _index(subsets, weights)
    orders = {}
    for cell, ids in candidates.items():
        order = list(ids)
        random.Random(_cell_seed(cfg.seed, cell)).shuffle(order)
        orders[cell] = order
    cells = sorted(weights)
    source_ids: dict[str, set[str]] = {}
    for (name, _), ids in candidates.items():
        source_ids.setdefault(name, set()).update(ids)
    targets = planned = allocate_cells(
        cfg.num_videos,
        weights,
        {c: len(orders[c]) for c in cells},
        {s: len(ids) for s, ids in source_ids.items()},
        cfg.seed,
    )
    pos = {c: 0 for c in cells}
    accepted: dict[tuple[str, str], list[str]] = {c: [] for c in cells}
    taken: set[str] = set()
    counts: Counter = Counter()
    rejected: Counter = Counter()
    facts: dict[str, dict[str, Any]] = {}
    paths: dict[str, str] = {}
    while True:
        batch = _take(cells, orders, pos, targets, accepted, taken, videos, media, counts)
        if not batch:
            short = cfg.num_videos - sum(len(v) for v in accepted.values())
            room = {c: len(orders[c]) - pos[c] for c in cells}
            if short <= 0 or not any(room.values()):
                break
            extra = allocate_cells(short, weights, room, {s: short for s in source_ids}, cfg.seed)
            if not any(extra.values()):
                break
            targets = {c: len(accepted[c]) + extra[c] for c in cells}  # the shortfall, by the same weights
            continue
        located = media.resolve([(c[0], videos[(c[0], i)]) for c, i in batch])
        rows = [{S.ID: i, S.MEDIA_PATH: located[(c[0], videos[(c[0], i)])]} for c, i in batch]
        probed = _probe_rows([r for r in rows if r[S.MEDIA_PATH]], cfg) if cfg.needs_probe() else {}
        for (cell, ident), row in zip(batch, rows):
            reason = "" if row[S.MEDIA_PATH] else "archive member missing"
            meta = probed.get(ident)
            if not reason and meta is not None:
                reason = meta[S.ERROR] if cfg.decodable else ""
                if not reason and cfg.duration_s is not None:
                    lo, hi = cfg.duration_s
                    if not (lo <= meta[S.DURATION] <= hi):
                        reason = f"duration {meta[S.DURATION]:.1f} s outside [{lo:g}, {hi:g}]"
            elif not reason and cfg.videos_root is not None:
                from videosft.data.probe import precheck

                if precheck(row[S.MEDIA_PATH]):  # not there (or empty) where the user extracted
                    counts["missing"] += 1
                    continue
            if reason:
                rejected[reason_kind(reason)] += 1
                continue
            accepted[cell].append(ident)
            paths[ident] = row[S.MEDIA_PATH]
            if meta is not None:
                facts[ident] = meta
    draw: dict[str, Any] = {
        "requested": cfg.num_videos,
        "seed": cfg.seed,
        "duplicates": counts["duplicates"],
        "missing_media": counts["missing"],
        "rejected": dict(rejected),
        "id_conflicts": conflicts,
        "short": max(0, cfg.num_videos - sum(len(v) for v in accepted.values())),
        "archive_errors": dict(media.errors),
    }
    planned_by: dict[str, dict[str, int]] = {}
    drawn_by: dict[str, dict[str, int]] = {}
    for (name, fmt), n in planned.items():
        planned_by.setdefault(name, {})[fmt] = n
        drawn_by.setdefault(name, {})[fmt] = len(accepted[(name, fmt)])
    draw.update(targets=planned_by, drawn=drawn_by)
    return accepted, {"videos": videos, "paths": paths, "facts": facts}, draw


def _take(cells, orders, pos, targets, accepted, taken, videos, media, counts) -> list[tuple[tuple[str, str], str]]:
    """The next tentative draws: cells take one candidate each in turn until each has its target
    (counting its accepted rows), skipping ids already drawn and videos with no file."""
    need = {c: targets[c] - len(accepted[c]) for c in cells}
    batch = []
    active = [c for c in cells if need[c] > 0]
    while active:
        still = []
        for cell in active:
            while pos[cell] < len(orders[cell]):
                ident = orders[cell][pos[cell]]
                pos[cell] += 1
                if ident in taken:
                    counts["duplicates"] += 1
                    continue
                if not media.has(cell[0], videos[(cell[0], ident)]):
                    taken.add(ident)
                    counts["missing"] += 1
                    continue
                taken.add(ident)
                batch.append((cell, ident))
                need[cell] -= 1
                break
            if need[cell] > 0 and pos[cell] < len(orders[cell]):
                still.append(cell)
        active = still
    return batch


# --------------------------------------------------------------------------- rows (pass 2)
def _conversations(
    subsets: dict[str, Subset], chosen: dict[str, tuple[str, str]], merge_formats: bool
) -> dict[str, list[list[dict[str, str]]]]:
    """id -> its annotation rows' turns (drawn format first, then others when merging), validated
    by the manifest reader's row checks."""
    wanted: dict[tuple[str, str], set[str]] = {}
    for ident, (name, fmt) in chosen.items():
        for other in [fmt] + ([f for f in FORMATS if f != fmt] if merge_formats else []):
            if other in subsets[name].annotations:
                wanted.setdefault((name, other), set()).add(ident)
    parts: dict[str, dict[str, list[list[dict[str, str]]]]] = {}
    for (name, fmt), ids in sorted(wanted.items()):
        for path in subsets[name].annotations[fmt]:
            for index, raw in enumerate(iter_raw(path)):
                ident = str(raw.get("id")) if isinstance(raw, dict) else ""
                if ident not in ids:
                    continue
                parse_row(raw, index, path, "")  # ManifestError naming file, row, id and field
                turns = [
                    {"from": "human" if t % 2 == 0 else "gpt", "value": str(turn["value"])}
                    for t, turn in enumerate(raw["conversations"])
                ]
                parts.setdefault(ident, {}).setdefault(fmt, []).append(turns)
    out = {}
    for ident, (_name, fmt) in chosen.items():
        by_fmt = parts.get(ident, {})
        out[ident] = by_fmt.get(fmt, []) + [r for f in FORMATS if f != fmt for r in by_fmt.get(f, [])]
    return out


def _merge(rows: list[list[dict[str, str]]]) -> list[dict[str, str]]:
    """Annotation rows of one video -> one conversation; only the first human turn keeps its
    <image>/<video> placeholder (the model sees the video once)."""
    merged: list[dict[str, str]] = []
    for turns in rows:
        for turn in turns:
            value = turn["value"]
            if merged and turn["from"] == "human":
                value = strip_placeholders(value)
            merged.append({"from": turn["from"], "value": value})
    return merged


# --------------------------------------------------------------------------- entry point
def curate(cfg: CurateConfig) -> dict[str, Any]:
    """Draw the subset, write `<out_dir>/curated.json` (absolute media paths: list it as a
    `data.train_sources` manifest) and the statistics table; returns paths and the stats."""
    subsets = discover(cfg.data_root)
    unknown = sorted(set(cfg.source_weights) - set(subsets))
    if unknown:
        raise CurateError(f"source_weights: {unknown} not found under {cfg.data_root} (found: {sorted(subsets)})")
    media = _Media(cfg, subsets)
    accepted, found, draw = _draw(cfg, subsets, media)
    chosen = {ident: cell for cell, ids in accepted.items() for ident in ids}
    turns = _conversations(subsets, chosen, cfg.merge_formats)
    records = []
    for cell in sorted(accepted):
        for ident in accepted[cell]:
            name, fmt = cell
            meta = found["facts"].get(ident)
            record = {
                "id": ident,
                "video": found["paths"][ident],
                "conversations": _merge(turns[ident]),
                "data_source": name,
                "format": fmt,
                "duration_bucket_s": list(subset_bucket(name)),
            }
            if meta is not None:
                record["duration"] = round(meta[S.DURATION], 3)
            records.append(record)
    out = Path(cfg.out_dir)
    manifest = write_manifest(records, out / MANIFEST_NAME)
    stats = build_stats(records, draw)
    stats["ignored_files"] = {n: s.ignored for n, s in subsets.items() if s.ignored}
    stats_json, stats_md = write_stats(stats, out)
    (out / "curate_config.json").write_text(json.dumps(cfg.model_dump(), indent=1) + "\n")
    return {"manifest": str(manifest), "stats_json": str(stats_json), "stats_md": str(stats_md), "stats": stats}
