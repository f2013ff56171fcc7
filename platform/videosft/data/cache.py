"""Decode-once frame cache: a sweep decodes each video once, at its largest frame budget.

Fixed-mode frame indices are nested (convention 7): the 8-frame set is a subset of the 16-frame
set, so frames decoded at the sweep's largest budget serve every smaller one, and decode, the
dominant cost of a video sweep, is paid once instead of once per trial.

Layout under ``<cache_root>/<contract_id>/max<B>/`` (a local path or an object-store URI):
  part-00000/*.parquet  one row per sample: the manifest columns plus FRAMES as raw uint8 bytes
                        with a FRAMES_SHAPE column, FRAME_INDICES, TIMESTAMPS, SAMPLED_FPS, probe
                        columns, ERROR, CONTRACT_ID (images stored once, as 1 frame)
  _manifest.json        the committed parts; a part is visible only once listed here, so a run
                        killed mid-write leaves nothing half-read, and the next run redoes it
  rejects.jsonl         failed rows (id, path, stage, reason), rebuilt from the parts every run

Failed rows are cached too (as error rows): corrupt media fail the same way every time, and
`read_cached` must yield them so a trial's rejects match a direct decode. Delete the cache
directory to retry them. One writer per cache directory at a time.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import posixpath
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass
from typing import Any

import numpy as np

from videosft import schema as S
from videosft.data.pipeline import TooManyRejects, check_failure_ratio, decoded_dataset  # noqa: F401
from videosft.data.sampling import SamplingContract
from videosft.schema import PROBE_NOTE

CACHE_VERSION = "frame-cache-v1"
MANIFEST = "_manifest.json"
REJECTS = "rejects.jsonl"
FRAMES_SHAPE = "frames_shape"  # cache-only column: FRAMES is stored flat, as bytes
_ORIG_BUDGET = "_cache_frame_budget"  # carries a row's own FRAME_BUDGET past the pinned decode
# DecodeStage leaves these out for some media (images have no fps, text has no probe at all);
# the cache stores them as null, which is what Ray Data shows for a key missing in a block.
_PROBE_COLUMNS = (S.NUM_FRAMES, S.FPS, S.DURATION, S.WIDTH, S.HEIGHT)


class CacheMismatch(ValueError):
    """The cache cannot serve this request (wrong contract, budget above its max, non-nested)."""


@dataclass(frozen=True)
class CacheInfo:
    """What `prepare_cache` left on disk; `decoded` is 0 when everything was already cached."""

    path: str
    contract_id: str
    max_budget: int
    total: int
    decoded: int
    rejected: int
    rejects_path: str
    parts: tuple[str, ...]
    noted: int = 0  # rows kept whose metadata the probe corrected (PROBE_NOTE says how)


# --------------------------------------------------------------------------- storage helpers
def _fs(path: str) -> tuple[Any, str]:
    """pyarrow filesystem + inner path, so a cache on s3:// or gs:// works like a local one."""
    from pyarrow import fs

    if "://" in path and not path.startswith("file://"):
        return fs.FileSystem.from_uri(path)
    return fs.LocalFileSystem(), os.path.abspath(path.removeprefix("file://"))


def _join(base: str, *names: str) -> str:
    return posixpath.join(base, *names) if "://" in base else os.path.join(base, *names)


def cache_dir(cache_root: str, contract: SamplingContract, max_budget: int) -> str:
    """Directory holding the cache of one contract decoded at `max_budget`."""
    return _join(cache_root, contract.contract_id(), f"max{max_budget}")


def _read_text(path: str) -> str | None:
    from pyarrow import fs

    filesystem, inner = _fs(path)
    if filesystem.get_file_info(inner).type != fs.FileType.File:
        return None
    with filesystem.open_input_stream(inner) as handle:
        return handle.read().decode("utf-8")


def _write_text(path: str, text: str) -> None:
    """Write-then-rename locally (atomic); object stores make a single PUT atomic already."""
    filesystem, inner = _fs(path)
    filesystem.create_dir(posixpath.dirname(inner), recursive=True)
    target = inner if "://" in path else inner + ".tmp"
    with filesystem.open_output_stream(target) as handle:
        handle.write(text.encode("utf-8"))
    if target != inner:
        filesystem.move(target, inner)


def _load_state(path: str, contract: SamplingContract, max_budget: int) -> dict[str, Any]:
    text = _read_text(_join(path, MANIFEST))
    if text is None:
        return {
            "version": CACHE_VERSION,
            "contract_id": contract.contract_id(),
            "contract": contract.model_dump(mode="json"),
            "max_budget": max_budget,
            "parts": [],
        }
    state = json.loads(text)
    if state.get("version") != CACHE_VERSION or state.get("contract_id") != contract.contract_id():
        raise CacheMismatch(
            f"{path}: cache written by {state.get('version')} for contract "
            f"{state.get('contract_id')}, not {CACHE_VERSION} / {contract.contract_id()}"
        )
    return state


def _drop_uncommitted(path: str, state: dict[str, Any]) -> None:
    """Delete part dirs a killed run left behind: they were never listed, so never read."""
    from pyarrow import fs

    filesystem, inner = _fs(path)
    committed = {p["name"] for p in state["parts"]}
    for info in filesystem.get_file_info(fs.FileSelector(inner, allow_not_found=True)):
        if (
            info.type == fs.FileType.Directory
            and info.base_name.startswith("part-")
            and info.base_name not in committed
        ):
            filesystem.delete_dir(info.path)


def _part_files(path: str, state: dict[str, Any]) -> tuple[Any, list[str]]:
    """Filesystem + the parquet files of the committed parts (inner paths, sorted)."""
    from pyarrow import fs

    filesystem, inner = _fs(path)
    files = []
    for part in state["parts"]:
        selector = fs.FileSelector(posixpath.join(inner, part["name"]), recursive=True, allow_not_found=True)
        files += [i.path for i in filesystem.get_file_info(selector) if i.path.endswith(".parquet")]
    return filesystem, sorted(files)


def _index(path: str, state: dict[str, Any]) -> Any:
    """(id, media_path, error) of every committed row, reading only those columns."""
    import pyarrow as pa
    import pyarrow.dataset as pds

    columns = [S.ID, S.MEDIA_PATH, S.ERROR]
    filesystem, files = _part_files(path, state)
    if not files:
        return pa.table({c: pa.array([], pa.string()) for c in columns + [PROBE_NOTE]})
    dataset = pds.dataset(files, filesystem=filesystem, format="parquet")
    if PROBE_NOTE in dataset.schema.names:  # caches written before the column lack it
        columns.append(PROBE_NOTE)
    return dataset.to_table(columns=columns)


# --------------------------------------------------------------------------- rows in and out
def _pin_budget(row: dict[str, Any], max_budget: int) -> dict[str, Any]:
    """Decode at least `max_budget` frames even where a row carries its own smaller budget."""
    out = dict(row)
    own = row.get(S.FRAME_BUDGET)
    out[_ORIG_BUDGET] = None if own is None else int(own)
    out[S.FRAME_BUDGET] = max(int(own or 0), max_budget)
    return out


def _to_cache_row(row: dict[str, Any]) -> dict[str, Any]:
    """A decoded row -> plain Arrow-friendly values (frames as bytes + shape, lists, nulls)."""
    frames = np.ascontiguousarray(row[S.FRAMES], dtype=np.uint8)
    out = {k: v for k, v in row.items() if k not in (S.FRAMES, _ORIG_BUDGET)}
    out.update(
        {
            S.FRAMES: frames.tobytes(),
            FRAMES_SHAPE: list(frames.shape),
            S.FRAME_INDICES: np.asarray(row[S.FRAME_INDICES], np.int64).tolist(),
            S.TIMESTAMPS: np.asarray(row[S.TIMESTAMPS], np.float64).tolist(),
            S.FRAME_BUDGET: row.get(_ORIG_BUDGET),
        }
    )
    for column in _PROBE_COLUMNS:
        out.setdefault(column, None)
    out[PROBE_NOTE] = out.get(PROBE_NOTE) or ""
    return out


def _cache_types() -> dict[str, Any]:
    import pyarrow as pa

    return {
        S.FRAMES: pa.large_binary(),
        FRAMES_SHAPE: pa.list_(pa.int64()),
        S.FRAME_INDICES: pa.list_(pa.int64()),
        S.TIMESTAMPS: pa.list_(pa.float64()),
        S.SAMPLED_FPS: pa.float64(),
        S.NUM_FRAMES: pa.int64(),
        S.FPS: pa.float64(),
        S.DURATION: pa.float64(),
        S.WIDTH: pa.int64(),
        S.HEIGHT: pa.int64(),
        S.FRAME_BUDGET: pa.int64(),
        S.ERROR: pa.string(),
        S.CONTRACT_ID: pa.string(),
        PROBE_NOTE: pa.string(),
    }


def _cast_cache_block(table: Any) -> Any:
    """One schema for every shard: an all-null or all-empty block would otherwise infer null types."""
    for name, kind in _cache_types().items():
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, table[name].cast(kind))
    return table


def _positions(cached: np.ndarray, wanted: np.ndarray, row_id: str, budget: int) -> np.ndarray:
    """Where each wanted index sits among the cached ones; CacheMismatch if one is missing."""
    pos = np.minimum(np.searchsorted(cached, wanted), max(len(cached) - 1, 0))
    if len(cached) == 0 or not np.array_equal(cached[pos], wanted):
        missing = sorted(set(wanted.tolist()) - set(cached.tolist()))[:8]
        raise CacheMismatch(
            f"row {row_id!r}: frames {missing} of budget {budget} are not in the "
            f"cache (cached {len(cached)} frames); budgets are nested only in "
            "fixed mode and only up to the cache's max budget"
        )
    return pos


def _from_cache_row(
    row: dict[str, Any], contract: dict[str, Any], budget: int, budget_of: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """A cached row -> the row `decoded_dataset` yields at `budget` (frames subset, fps redone).

    The row's budget is, in order: `budget_of[id]` (the caller's manifest), the cached row's own
    FRAME_BUDGET, then `budget`.
    """
    out = {k: v for k, v in row.items() if k != FRAMES_SHAPE}
    frames = np.frombuffer(row[S.FRAMES], np.uint8).reshape(row[FRAMES_SHAPE])
    cached = np.asarray(row[S.FRAME_INDICES], np.int64)
    if row[S.MEDIA_TYPE] != S.MEDIA_VIDEO or row[S.ERROR]:  # images, text, errors: as stored
        out.update(
            {S.FRAMES: frames.copy(), S.FRAME_INDICES: cached, S.TIMESTAMPS: np.asarray(row[S.TIMESTAMPS], np.float64)}
        )
        return out
    spec = SamplingContract.model_validate(contract)
    want_budget = int((budget_of or {}).get(str(row[S.ID])) or row.get(S.FRAME_BUDGET) or 0) or budget
    fps = float(row[S.FPS])
    wanted = spec.frame_indices(int(row[S.NUM_FRAMES]), fps, want_budget)
    pos = _positions(cached, wanted, str(row[S.ID]), want_budget)
    stored = np.asarray(row[S.TIMESTAMPS], np.float64)  # real timestamps on variable-rate video
    out.update(
        {
            S.FRAMES: frames[pos],
            S.FRAME_INDICES: wanted,
            S.TIMESTAMPS: stored[pos] if len(stored) == len(cached) else spec.timestamps(wanted, fps),
            S.SAMPLED_FPS: float(spec.sampled_fps(wanted, fps, int(row[S.NUM_FRAMES]))),
        }
    )
    if str(row[S.ID]) in (budget_of or {}):  # as decoding the caller's row would carry it
        out[S.FRAME_BUDGET] = want_budget
    return out


# --------------------------------------------------------------------------- prepare
def _check_budgets(contract: SamplingContract, budgets: Sequence[int]) -> int:
    """The budget to decode at; refuses requests one decode cannot serve."""
    if not budgets or any(int(b) < 1 for b in budgets):
        raise ValueError(f"prepare_cache: budgets must be a non-empty list of ints >= 1, got {budgets}")
    if contract.mode != "fixed" and len(set(budgets)) > 1:
        raise CacheMismatch(
            "prepare_cache: fps-mode frame indices are not nested across budgets "
            f"({sorted(set(budgets))}); cache one budget per contract or use fixed mode"
        )
    top = max(int(b) for b in budgets)
    odd = sorted({int(b) for b in budgets if top % int(b)})
    if odd:
        lcm = math.lcm(*(int(b) for b in budgets))
        raise CacheMismatch(
            f"prepare_cache: budgets {odd} do not divide the largest budget {top}, "
            f"so their frames are not nested in its frames; use divisors of {top} "
            f"or add {lcm} (the lcm) as the largest budget"
        )
    return top


def _repeat_error(ident: str) -> ValueError:
    return ValueError(f"prepare_cache: ids key the cache and must be unique; {ident!r} repeats")


def _check_request(rows: Iterable[dict[str, Any]], contract: SamplingContract, budgets: Sequence[int]) -> int:
    """`_check_budgets`, plus unique ids up front when the rows are a list (a stream is checked
    as it is read: `_todo_chunks`)."""
    top = _check_budgets(contract, budgets)
    if isinstance(rows, Sequence):
        repeats = [i for i, n in Counter(str(r[S.ID]) for r in rows).items() if n > 1]
        if repeats:
            raise _repeat_error(repeats[0])
    return top


def _todo_chunks(
    rows: Iterable[dict[str, Any]], done: set[str], size: int, counts: dict[str, int]
) -> Iterator[list[dict[str, Any]]]:
    """Rows not yet cached, `size` at a time, read lazily: only one chunk (and the ids) is ever
    held, so a 178k-row manifest streams through. `counts` gets "total" and "cached"."""
    seen: set[str] = set()
    chunk: list[dict[str, Any]] = []
    for row in rows:
        ident = str(row[S.ID])
        if ident in seen:
            raise _repeat_error(ident)
        seen.add(ident)
        counts["total"] = counts.get("total", 0) + 1
        if ident in done:
            counts["cached"] = counts.get("cached", 0) + 1
            continue
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass(frozen=True)
class CachePlan:
    """What `prepare_cache` would do now: rows seen, already cached, and the parts to write."""

    path: str
    max_budget: int
    total: int
    cached: int
    parts: tuple[int, ...]  # rows per part still to decode, in order

    @property
    def todo(self) -> int:
        return sum(self.parts)


def plan_cache(
    rows: Iterable[dict[str, Any]],
    contract: SamplingContract,
    budgets: Sequence[int],
    cache_root: str,
    *,
    commit_every: int = 2048,
) -> CachePlan:
    """Frame-cache planning without decoding: which rows are cached, how the rest splits into
    parts. Streams `rows` like `prepare_cache` (constant memory but for the ids)."""
    max_budget = _check_request(rows, contract, budgets)
    path = cache_dir(cache_root, contract, max_budget)
    state = _load_state(path, contract, max_budget)
    done = set(_index(path, state)[S.ID].to_pylist())
    counts: dict[str, int] = {}
    parts = tuple(len(chunk) for chunk in _todo_chunks(rows, done, commit_every, counts))
    return CachePlan(path, max_budget, counts.get("total", 0), counts.get("cached", 0), parts)


def _write_part(
    rows: Sequence[dict[str, Any]], contract: SamplingContract, max_budget: int, target: str, opts: dict[str, Any]
) -> None:
    """Decode `rows` on the actor pool and stream them into parquet shards under `target`."""
    ds = decoded_dataset(
        [_pin_budget(r, max_budget) for r in rows],
        contract,
        max_budget,
        opts["timeout_s"],
        opts["concurrency"],
        opts["cpus"],
        opts["backend"],
    )
    ds = ds.map(_to_cache_row).map_batches(_cast_cache_block, batch_format="pyarrow", batch_size=None)
    ds.write_parquet(target, min_rows_per_file=opts["rows_per_file"])


def _noted(index: Any) -> int:
    if PROBE_NOTE not in index.column_names:
        return 0
    return sum(1 for note in index[PROBE_NOTE].to_pylist() if note)


def _failed(index: Any) -> list[dict[str, Any]]:
    """The index's error rows as dicts (filtered in Arrow: the good rows never become objects)."""
    import pyarrow.compute as pc

    if not index.num_rows:
        return []
    mask = pc.fill_null(pc.not_equal(index[S.ERROR], ""), False)
    return index.filter(mask).select([S.ID, S.MEDIA_PATH, S.ERROR]).to_pylist()


def _write_rejects(path: str, index: Any) -> tuple[str, int]:
    bad = _failed(index)
    lines = [
        json.dumps({"id": r[S.ID], "path": r[S.MEDIA_PATH], "stage": "prepare-cache", "reason": r[S.ERROR]})
        for r in bad
    ]
    target = _join(path, REJECTS)
    _write_text(target, "".join(line + "\n" for line in lines))
    return target, len(bad)


def prepare_cache(
    rows: Iterable[dict[str, Any]],
    contract: SamplingContract,
    budgets: Sequence[int],
    cache_root: str,
    *,
    concurrency: int = 1,
    cpus: float = 0.5,
    timeout_s: float = 60.0,
    max_failure_ratio: float = 0.05,
    commit_every: int = 2048,
    rows_per_file: int = 64,
    backend: str = "auto",
    on_progress: Callable[[int, int | None], None] | None = None,
) -> CacheInfo:
    """Decode every row not yet cached, once, at max(budgets); safe to re-run (resumes).

    Work is committed every `commit_every` rows, so a killed run loses at most one chunk and a
    re-run decodes only the rows no committed part holds. `rows` may be a lazy iterable (e.g.
    `manifest.iter_manifest`): it is read one chunk at a time, so the driver never holds the
    whole manifest. Raises TooManyRejects (after writing everything) when the cache's failure
    ratio passes `max_failure_ratio`; the reasons are in the returned cache dir's rejects.jsonl.
    """
    max_budget = _check_request(rows, contract, budgets)
    path = cache_dir(cache_root, contract, max_budget)
    state = _load_state(path, contract, max_budget)
    _drop_uncommitted(path, state)
    done = set(_index(path, state)[S.ID].to_pylist())
    opts = {
        "timeout_s": timeout_s,
        "concurrency": concurrency,
        "cpus": cpus,
        "backend": backend,
        "rows_per_file": rows_per_file,
    }
    decoded = 0
    total = len(rows) if isinstance(rows, Sized) else None  # a lazy manifest: the total is unknown
    if on_progress is not None:
        on_progress(len(done), total)
    for chunk in _todo_chunks(rows, done, commit_every, {}):
        name = f"part-{len(state['parts']):05d}"
        _write_part(chunk, contract, max_budget, _join(path, name), opts)
        state["parts"].append({"name": name, "rows": len(chunk)})
        _write_text(_join(path, MANIFEST), json.dumps(state, indent=1))
        decoded += len(chunk)
        if on_progress is not None:  # rows committed so far (cached before + decoded now)
            on_progress(len(done) + decoded, total)
    index = _index(path, state)
    rejects_path, rejected = _write_rejects(path, index)
    info = CacheInfo(
        path=path,
        contract_id=contract.contract_id(),
        max_budget=max_budget,
        total=index.num_rows,
        decoded=decoded,
        rejected=rejected,
        rejects_path=rejects_path,
        parts=tuple(p["name"] for p in state["parts"]),
        noted=_noted(index),
    )
    bad = [(r[S.MEDIA_PATH] or r[S.ID], r[S.ERROR]) for r in _failed(index)]
    check_failure_ratio("prepare-cache", bad, info.total, max_failure_ratio, rejects_path)
    return info


# --------------------------------------------------------------------------- read
def _find_cache(cache_root: str, contract: SamplingContract, budget: int) -> str:
    """The committed cache of this contract with the smallest max budget that `budget` divides.

    (Fixed-mode indices of budget n are nested in those of k*n only.)
    """
    from pyarrow import fs

    base = _join(cache_root, contract.contract_id())
    filesystem, inner = _fs(base)
    listing = filesystem.get_file_info(fs.FileSelector(inner, allow_not_found=True))
    found = sorted(
        int(i.base_name[3:])
        for i in listing
        if i.type == fs.FileType.Directory and i.base_name.startswith("max") and i.base_name[3:].isdigit()
    )
    for max_budget in found:
        path = _join(base, f"max{max_budget}")
        if max_budget % budget == 0 and _read_text(_join(path, MANIFEST)) is not None:
            return path
    raise CacheMismatch(
        f"no frame cache for contract {contract.contract_id()} with a max budget "
        f"that is a multiple of {budget} under {cache_root} (found max {found}); "
        "run prepare_cache (`videosft prepare`) with this budget first"
    )


@contextlib.contextmanager
def _parquet_reader_v1() -> Iterator[None]:
    """Plan the read with Ray Data's V1 parquet datasource (the flag is read when the plan is built).

    Ray 2.60's default V2 reader runs a ListFiles task that took 6-20 s of wall time (0.1 s CPU)
    per read on a 2-core machine, against 0.2-0.5 s for V1: a fixed tax on every trial's read.
    """
    from ray.data.context import DataContext

    ctx = DataContext.get_current()
    old = getattr(ctx, "use_datasource_v2", False)
    ctx.use_datasource_v2 = False
    try:
        yield
    finally:
        ctx.use_datasource_v2 = old


def _keep_ids(table: Any, ids: list[str]) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    return table.filter(pc.is_in(table[S.ID], value_set=pa.array(ids, pa.string())))


def _select(ds: Any, path: str, state: dict[str, Any], ids: Iterable[Any] | None) -> Any:
    """Only the rows of `ids` (one cache can serve several manifests); all must be cached."""
    if ids is None:
        return ds
    wanted = [str(i) for i in ids]
    missing = set(wanted) - set(_index(path, state)[S.ID].to_pylist())
    if missing:
        raise CacheMismatch(
            f"read_cached: {len(missing)} ids are not in the cache at {path} "
            f"(e.g. {sorted(missing)[:3]}); run prepare_cache on these rows first"
        )
    return ds.map_batches(_keep_ids, batch_format="pyarrow", batch_size=None, fn_kwargs={"ids": wanted})


def read_cached(
    cache_root: str,
    contract: SamplingContract,
    budget: int,
    ids: Iterable[Any] | None = None,
    budget_of: Mapping[str, int] | None = None,
) -> Any:
    """Ray Dataset of rows exactly as `decoded_dataset(rows, contract, budget, ...)` yields them.

    Frames are the cached subset at the indices the contract picks for `budget` (fixed mode nests
    them); SAMPLED_FPS and TIMESTAMPS are recomputed for that subset. `ids` (the manifest's ids)
    restricts the rows to one manifest. `budget_of` (id -> frames) gives rows their own budgets, as
    the caller's manifest sets them (Hybrid-Frame): the cache was filled from another manifest, so
    its rows do not carry them. Streams from parquet: nothing is materialized. Raises
    CacheMismatch when the cache cannot serve `budget` or lacks some of `ids`.
    """
    import ray.data

    if budget < 1:
        raise ValueError(f"read_cached: budget must be >= 1, got {budget}")
    path = _find_cache(cache_root, contract, budget)
    state = _load_state(path, contract, budget)
    if contract.mode != "fixed" and budget != state["max_budget"]:
        raise CacheMismatch(
            f"read_cached: fps-mode indices are not nested; the cache at {path} "
            f"serves budget {state['max_budget']} only, not {budget}"
        )
    filesystem, files = _part_files(path, state)
    if not files:
        raise CacheMismatch(f"read_cached: the cache at {path} has no committed rows")
    with _parquet_reader_v1():
        ds = _select(ray.data.read_parquet(files, filesystem=filesystem), path, state, ids)
    return ds.map(
        _from_cache_row,
        fn_kwargs={
            "contract": contract.model_dump(mode="json"),
            "budget": int(budget),
            "budget_of": dict(budget_of or {}),
        },
    )
