"""The budget stage in Ray Data, and the budgeted manifest training reads back.

`predict_budgets_dataset` adds FRAME_BUDGET, BUDGET_RAW and `budget_fell_back` to every row with an
actor pool (`map_batches` + a callable class: the predictor's model loads once per actor, sized by
`budget.concurrency` / `cpus_per_actor` / `gpus_per_actor`). Predictors that look at pixels get
low-res thumbnails decoded inside the stage by the same isolated `DecodeStage` training uses, with a
small fixed contract, so a hanging container costs one row, never the stage.

`budget_manifest` is the cached entry point: manifest in, manifest out (LLaVA layout plus
"frame_budget" / "budget_raw"), named by a hash of everything that decides the budgets, so a
rerun, or every trial of a sweep, reuses the file instead of asking the VLM again. Training needs
no new code path: `read_manifest` keeps the extra keys and `DecodeStage` honours `frame_budget`.
`budget_rows` does the same for in-memory rows (evaluation items; `cached_budget_rows` keeps them
like the manifest); `write_predictor_sft_manifest`
turns oracle labels into SFT data that teaches a VLM to be the instruction predictor.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from videosft import schema as S
from videosft.budget.base import (
    BUDGET_FELL_BACK,
    BudgetConfig,
    BudgetPrediction,
    BudgetPredictor,
    budget_question,
    fallback,
    predictor_from_config,
)
from videosft.data.manifest import read_manifest, to_llava_row, write_manifest
from videosft.data.pipeline import DecodeStage, actor_pool
from videosft.data.sampling import SamplingContract
from videosft.ray_runtime import ensure_ray

CACHE_VERSION = "budget-cache-v1"  # bump when predictors change what they answer for the same key
_STAGE_COLUMNS = (S.ID, S.MEDIA_TYPE, S.MEDIA_PATH, S.QUESTION, S.ANSWER, S.TASK, S.MIN_FRAMES, S.NUM_FRAMES, S.FPS)


def thumbnail_contract(cfg: BudgetConfig) -> SamplingContract:
    """`num_thumbnails` nested-uniform frames at about `thumbnail_pixels` each (images too)."""
    px = cfg.thumbnail_pixels
    return SamplingContract(
        mode="fixed",
        num_frames=cfg.num_thumbnails,
        min_pixels=px,
        max_pixels=px,
        video_min_pixels=px,
        video_max_pixels=px,
    )


class RowPreparer:
    """Adds what a predictor reads: thumbnails (+ probe columns) or just probe columns, per video row."""

    def __init__(self, predictor: BudgetPredictor, cfg: BudgetConfig) -> None:
        self.decoder = None
        if predictor.needs_frames:
            self.decoder = DecodeStage(thumbnail_contract(cfg).model_dump(), cfg.num_thumbnails, cfg.decode_timeout_s)
        self.needs_probe = predictor.needs_probe

    def __call__(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self._one(dict(r)) for r in rows]

    def _one(self, row: dict[str, Any]) -> dict[str, Any]:
        row.pop(S.FRAME_BUDGET, None)  # a budget already on the row must not size the thumbnails
        if row.get(S.MEDIA_TYPE) != S.MEDIA_VIDEO:
            return row  # predictors answer images/text without looking
        if self.decoder is not None:
            return self.decoder(row)
        if self.needs_probe and not (int(row.get(S.NUM_FRAMES) or 0) > 0 and float(row.get(S.FPS) or 0) > 0):
            from videosft.data.probe import probe_video

            meta = probe_video(str(row.get(S.MEDIA_PATH) or ""))
            row.update({S.NUM_FRAMES: meta[S.NUM_FRAMES], S.FPS: meta[S.FPS], S.ERROR: meta.get(S.ERROR, "")})
        return row


def predict_rows(
    predictor: BudgetPredictor, rows: list[dict[str, Any]], candidates: Sequence[int], default: int
) -> list[BudgetPrediction]:
    """predictor.predict with the stage's guarantees: one candidate per row, errors as fallbacks."""
    try:
        preds = list(predictor.predict(rows))
    except Exception as exc:  # a predictor bug costs this batch its predictions, not the run
        return [fallback(default, f"{predictor.name}: {type(exc).__name__}: {exc}")] * len(rows)
    if len(preds) != len(rows):
        return [fallback(default, f"{predictor.name}: {len(preds)} answers for {len(rows)} rows")] * len(rows)
    allowed = set(candidates)
    return [p if p.budget in allowed else fallback(default, f"not a candidate: {p.budget} ({p.raw})") for p in preds]


class BudgetStage:
    """Ray Data callable class: one predictor (and its model) per actor, batches in, budgets out."""

    def __init__(self, cfg: dict[str, Any], contract: dict[str, Any]) -> None:
        self.cfg = BudgetConfig.model_validate(cfg)
        self.predictor = predictor_from_config(self.cfg, SamplingContract.model_validate(contract))
        self.prepare = RowPreparer(self.predictor, self.cfg)
        if "torch" in sys.modules:  # size torch's threads to the reservation: actors share the cores
            sys.modules["torch"].set_num_threads(max(1, int(self.cfg.cpus_per_actor)))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(next(iter(batch.values()), []))
        rows = self.prepare([{k: batch[k][i] for k in batch} for i in range(n)])
        preds = predict_rows(self.predictor, rows, self.cfg.candidates, self.cfg.default)
        out = dict(batch)
        out[S.FRAME_BUDGET] = np.asarray([p.budget for p in preds], np.int64)
        out[S.BUDGET_RAW] = np.asarray([p.raw for p in preds], dtype=object)
        out[BUDGET_FELL_BACK] = np.asarray([p.fell_back for p in preds], bool)
        return out


def check_model_path(cfg: BudgetConfig) -> None:
    """Fail on the driver, before Ray starts, rather than in every actor's constructor."""
    if cfg.needs_model_path() and not cfg.model_path:
        raise ValueError(
            f"budget.model_path: predictor {cfg.predictor!r} (embedding={cfg.embedding}, "
            f"oracle={cfg.oracle}) needs a model path"
        )


def predict_budgets_dataset(ds: Any, cfg: BudgetConfig, contract: SamplingContract) -> Any:
    """Rows -> the same rows plus FRAME_BUDGET, BUDGET_RAW, budget_fell_back (lazy Ray Dataset)."""

    check_model_path(cfg)
    return ds.map_batches(
        BudgetStage,
        fn_constructor_kwargs={"cfg": cfg.model_dump(), "contract": contract.model_dump()},
        batch_size=cfg.batch_size,
        compute=actor_pool(cfg.concurrency),
        num_cpus=cfg.cpus_per_actor,
        num_gpus=cfg.gpus_per_actor or None,
    )


# --------------------------------------------------------------------------- manifest + cache
def _llava_row(row: dict[str, Any]) -> dict[str, Any]:
    """A flat row (read_manifest layout + budget columns) -> a LLaVA-Video-178K annotation."""
    return {
        **to_llava_row(row),
        S.FRAME_BUDGET: int(row[S.FRAME_BUDGET]),
        S.BUDGET_RAW: str(row[S.BUDGET_RAW]),
        BUDGET_FELL_BACK: bool(row.get(BUDGET_FELL_BACK, False)),
    }


def write_budget_manifest(rows: Sequence[dict[str, Any]], out_path: str | Path) -> Path:
    """Write rows as a LLaVA JSON manifest with "frame_budget"/"budget_raw" (atomic: tmp + rename)."""
    return write_manifest([_llava_row(dict(r)) for r in rows], out_path)


def write_predictor_sft_manifest(
    rows: Sequence[dict[str, Any]], labels: Sequence[int], cfg: BudgetConfig, out_path: str | Path
) -> Path:
    """A LLaVA manifest that teaches a VLM to *be* the instruction predictor (Hybrid-Frame).

    Each video row becomes "<video> Question: ... How many frames ...?" -> the oracle's label, at
    `num_thumbnails` frames, exactly the prompt `InstructionPredictor` asks; train the predictor
    VLM on it with the ordinary SFT flow. Labels come from the `oracle` (min_frames or probe).
    """
    prompt = cfg.prompt_text()
    items = []
    for row, label in zip(rows, labels, strict=True):
        if row.get(S.MEDIA_TYPE) != S.MEDIA_VIDEO:
            continue
        turns = [
            {"from": "human", "value": budget_question(str(row[S.QUESTION]), prompt)},
            {"from": "gpt", "value": str(int(label))},
        ]
        items.append(
            {
                S.ID: f"{row[S.ID]}-budget",
                S.MEDIA_TYPE: S.MEDIA_VIDEO,
                S.MEDIA_PATH: row[S.MEDIA_PATH],
                S.CONVERSATIONS: turns,
                S.TASK: "frame_budget",
                S.FRAME_BUDGET: cfg.num_thumbnails,
                S.BUDGET_RAW: f"label {int(label)}",
            }
        )
    return write_budget_manifest(items, out_path)


def _file_digest(path: str) -> str:
    if not os.path.isfile(path):
        return f"path:{path}"
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def budget_cache_key(cfg: BudgetConfig, contract: SamplingContract, manifest_path: str) -> str:
    """16-hex key of everything that decides the budgets (not concurrency or resources).

    The model is keyed by its path, not its bytes: overwrite a checkpoint in place and you must
    clear the cache (or bump CACHE_VERSION); the manifest is keyed by its content.
    """
    return _decisive_key(cfg, contract, _file_digest(manifest_path))


def _decisive_key(cfg: BudgetConfig, contract: SamplingContract, content: str) -> str:
    """The key of `budget_cache_key` for rows whose content digest is `content`."""
    decisive = cfg.model_dump(
        exclude={
            "mode",
            "concurrency",
            "cpus_per_actor",
            "gpus_per_actor",
            "batch_size",
            "decode_timeout_s",
            "cache_dir",
            "prompt",
            "vllm",
        }
    )
    payload = {
        "version": CACHE_VERSION,
        **decisive,
        "prompt": cfg.prompt_text(),
        "contract_id": contract.contract_id(),
        "manifest": content,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def budget_manifest(
    manifest_path: str,
    cfg: BudgetConfig,
    contract: SamplingContract,
    out_dir: str | Path | None = None,
    media_root: str | None = None,
) -> Path:
    """The budgeted copy of a manifest, computed on Ray once per cache key and reused after."""
    cache = Path(cfg.cache_dir or out_dir or Path(manifest_path).parent)
    key = budget_cache_key(cfg, contract, manifest_path)
    out = cache / f"{Path(manifest_path).stem}.budget-{cfg.predictor}-{key}.json"
    if out.exists():
        print(f"[budget] reusing {out}", flush=True)
        return out

    rows = read_manifest(manifest_path, media_root)
    merged = budget_rows(rows, cfg, contract)
    fell = sum(1 for r in merged if r[BUDGET_FELL_BACK])
    meta = {
        "key": key,
        "predictor": cfg.predictor,
        "contract_id": contract.contract_id(),
        "rows": len(rows),
        "fell_back": fell,
        "histogram": _histogram(r[S.FRAME_BUDGET] for r in merged),
    }
    # The meta first and the manifest last, each whole (tmp + rename): the manifest's presence means
    # both are complete, so a concurrent trial that finds it can read its meta.
    meta_path = out.with_suffix(".meta.json")
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = meta_path.with_name(f".{meta_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta, indent=1) + "\n")
    tmp.replace(meta_path)
    write_budget_manifest(merged, out)
    print(f"[budget] {cfg.predictor}: {len(rows)} rows, {fell} fell back -> {out}", flush=True)
    return out


def budget_rows(rows: Sequence[dict[str, Any]], cfg: BudgetConfig, contract: SamplingContract) -> list[dict]:
    """rows (manifest rows or eval items) + FRAME_BUDGET, BUDGET_RAW, budget_fell_back, in order.

    Only the columns predictors read cross Ray (extras such as option lists stay on the driver),
    and results are joined back by id, so row order and extra keys survive the actor pool.
    """
    import ray
    import ray.data

    check_model_path(cfg)
    ensure_ray()
    columns = [k for k in _STAGE_COLUMNS if any(k in r for r in rows)]  # one schema for every row
    items = [{k: r.get(k) for k in columns} for r in rows]
    ds = predict_budgets_dataset(ray.data.from_items(items), cfg, contract)
    got = ds.select_columns([S.ID, S.FRAME_BUDGET, S.BUDGET_RAW, BUDGET_FELL_BACK]).take_all()
    by_id = {
        str(g[S.ID]): {
            S.FRAME_BUDGET: int(g[S.FRAME_BUDGET]),
            S.BUDGET_RAW: str(g[S.BUDGET_RAW]),
            BUDGET_FELL_BACK: bool(g[BUDGET_FELL_BACK]),
        }
        for g in got
    }
    return [{**r, **by_id[str(r[S.ID])]} for r in rows]


def cached_budget_rows(
    rows: Sequence[dict[str, Any]], cfg: BudgetConfig, contract: SamplingContract, cache_dir: str | Path
) -> list[dict]:
    """`budget_rows`, kept in `cache_dir` under a key of the predictor's decisive settings and the
    rows' content (the columns predictors read, ids included): the evaluation items of a Hybrid-Frame
    sweep get their budgets once, not once per trial and base (the instruction predictor is a model
    pass over every video item). Same reuse rules as `budget_manifest`."""

    columns = [k for k in _STAGE_COLUMNS if any(k in r for r in rows)]
    content = json.dumps([{k: r.get(k) for k in columns} for r in rows], sort_keys=True, default=str)
    key = _decisive_key(cfg, contract, hashlib.sha256(content.encode("utf-8")).hexdigest())
    path = Path(cfg.cache_dir or cache_dir) / f"items.budget-{cfg.predictor}-{key}.json"
    fields = (S.FRAME_BUDGET, S.BUDGET_RAW, BUDGET_FELL_BACK)
    if path.exists():
        by_id = json.loads(path.read_text())
        print(f"[budget] {cfg.predictor}: reusing {len(by_id)} item budgets from {path}", flush=True)
        return [{**r, **by_id[str(r[S.ID])]} for r in rows]
    merged = budget_rows(rows, cfg, contract)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # whole, then renamed (trials run side by side)
    tmp.write_text(json.dumps({str(r[S.ID]): {f: r[f] for f in fields} for r in merged}))
    tmp.replace(path)
    return merged


def _histogram(budgets: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for b in budgets:
        counts[str(int(b))] = counts.get(str(int(b)), 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: int(kv[0])))
