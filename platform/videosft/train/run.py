"""One SFT run at one frame budget: manifest -> Ray Data decode + preprocess -> TorchTrainer.

Used by a sweep trial and by `jobs/train.py`; failed rows land in `<run_dir>/rejects.jsonl`.

The training rows are fixed before anything is decoded: the manifest (image-replay mixed when
`data.image_replay_ratio` is set), each row numbered with a stable SAMPLE_INDEX. Ray Train gets
two dataset factories (train/checkpoint.py): "train" (a full epoch) and "train_resume" (the rest
of the epoch a restart resumes, the rows the checkpoint's data cursor has not consumed, dropped
from the row list before decode). Two ways to feed them:
- default: decode + encode everything up front and materialize it (rejects counted before
  training); a restart filters the materialized rows, nothing is decoded or encoded again;
- `data.stream_train`: a lazy decode -> encode stream per epoch, for sets larger than the object
  store; a restart builds its stream from the unconsumed rows only. Each decode (or frame-cache
  read) is logged to `<run_dir>/decode_log.jsonl`, the audit that a resume did not decode the
  consumed videos again; rejects are appended to rejects.jsonl as the stream meets them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videosft import schema as S
from videosft.config import ExperimentConfig
from videosft.data.cache import prepare_cache, read_cached
from videosft.data.manifest import read_manifest
from videosft.data.mixing import replay_mix
from videosft.data.pipeline import (
    DecodeStage,
    StageStats,
    TooManyRejects,
    actor_pool,
    decoded_dataset,
    encoded_dataset,
    split_rejects,
)
from videosft.data.preprocess import FEATURES, N_TEXT_TOKENS, N_VISUAL_TOKENS, EncodeStage
from videosft.data.sampling import SamplingContract
from videosft.progress import write_progress
from videosft.train.checkpoint import (
    SAMPLE_INDEX,
    DataCursor,
    ResumableStream,
    drop_zero_shards,
    from_ranges,
    local_checkpoint,
    remaining_rows,
    with_sample_index,
)
from videosft.train.trainer import TrainOutcome, fit
from videosft.workspace import Inputs, output_dir, train_manifest

DECODE_LOG = "decode_log.jsonl"


def uses_frame_cache(cfg: ExperimentConfig) -> bool:
    return cfg.data.frame_cache and cfg.sampling.mode == "fixed"


def cache_root(cfg: ExperimentConfig) -> str:
    return cfg.data.cache_root or str(output_dir(cfg) / "frame_cache")


def prepare_frame_cache(cfg: ExperimentConfig, inputs: Inputs, rows: list[dict] | None = None) -> Any:
    """Decode the training manifest once at the sweep's largest budget (resumable; no-op when done)."""
    if not uses_frame_cache(cfg):
        return None

    if rows is None:
        rows = read_manifest(train_manifest(cfg, inputs))
    return prepare_cache(
        rows,
        cfg.sampling,
        cfg.sweep.decode_budgets(cfg.budget.candidates),
        cache_root(cfg),
        concurrency=cfg.data.decode_concurrency,
        cpus=cfg.data.cpus_per_decoder,
        timeout_s=cfg.data.decode_timeout_s,
        max_failure_ratio=cfg.data.max_failure_ratio,
        backend=cfg.data.decode_backend,
        on_progress=_cache_progress(cfg),
    )


def _cache_progress(cfg: ExperimentConfig) -> Any:
    """Rows in the frame cache so far -> <output_dir>/progress (the console's "prepare" bar)."""

    return lambda done, total: write_progress(cfg.output_dir, "prepare frame cache", done, total, "rows")


def training_rows(cfg: ExperimentConfig, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's training rows, numbered (SAMPLE_INDEX): the manifest, or its image-replay mix."""
    if cfg.data.image_replay_ratio is not None:
        rows = replay_mix(rows, cfg.data.image_replay_ratio, seed=cfg.seed)
    return with_sample_index(rows)


def _append_jsonl(path: str | None, records: Sequence[dict[str, Any]]) -> None:
    """Best-effort append (one write, O_APPEND): an audit log must never fail a data stage."""
    if not path or not records:
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a") as fh:
            fh.write("".join(json.dumps(r) + "\n" for r in records))
    except OSError:
        pass


class LoggedDecodeStage(DecodeStage):
    """DecodeStage that appends (id, sample_index, stream tag) of each decoded row to a log."""

    def __init__(
        self,
        contract: dict[str, Any],
        budget: int | None,
        timeout_s: float,
        threads: int = 1,
        backend: str = "auto",
        *,
        log_path: str | None,
        tag: dict[str, Any],
    ) -> None:
        super().__init__(contract, budget, timeout_s, threads, backend)
        self.log_path, self.tag = log_path, tag

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        out = super().__call__(row)
        _append_jsonl(
            self.log_path,
            [{"id": row[S.ID], SAMPLE_INDEX: int(row[SAMPLE_INDEX]), "source": "decode", "t": time.time(), **self.tag}],
        )
        return out


class StreamEncodeStage(EncodeStage):
    """EncodeStage for flat_map: good rows come out projected to `keep`, failed rows are logged and dropped."""

    def __init__(self, family: str, model_path: str, keep: list[str], rejects_path: str | None) -> None:
        super().__init__(family, model_path, for_generation=False)
        self.keep, self.rejects_path = keep, rejects_path

    def __call__(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        out = super().__call__(row)
        if out.get(S.ERROR):
            _append_jsonl(
                self.rejects_path,
                [{"id": row[S.ID], "path": row.get(S.MEDIA_PATH, ""), "stage": "train-stream", "reason": out[S.ERROR]}],
            )
            return []
        return [{k: out[k] for k in self.keep}]


def _attach_indices(
    row: dict[str, Any], index_of: dict[str, list[int]], log_path: str | None, tag: dict[str, Any]
) -> list[dict[str, Any]]:
    """A frame-cache row -> one row per training sample that uses it (replay may repeat images)."""
    indices = index_of.get(str(row[S.ID]), [])
    _append_jsonl(
        log_path, [{"id": row[S.ID], SAMPLE_INDEX: i, "source": "cache", "t": time.time(), **tag} for i in indices]
    )
    return [{**row, SAMPLE_INDEX: i} for i in indices]


def _drop_consumed(table: Any, ranges: list[list[int]]) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    done = pa.array(sorted(from_ranges(ranges)), pa.int64())
    return table.filter(pc.invert(pc.is_in(table[SAMPLE_INDEX], value_set=done)))


@dataclass(frozen=True)
class TrainData:
    """How to (re)build the training stream from numbered rows; picklable, runs in Ray's controller."""

    rows: tuple[dict[str, Any], ...]
    contract: dict[str, Any]
    budget: int
    family: str
    model_path: str
    timeout_s: float
    concurrency: int
    cpus: float
    cache_root: str | None  # set: frames come from the decode-once cache
    keep: tuple[str, ...]
    log_path: str | None = None
    rejects_path: str | None = None
    backend: str = "auto"  # data.decode_backend

    def decoded(self, cursor: DataCursor | None, tag: dict[str, Any] | None = None) -> Any:
        """Decoded rows of the epoch's unconsumed samples: the cursor filters plain rows, pre-decode."""

        rows = remaining_rows(self.rows, cursor)
        tag = {**(tag or {}), "from_step": cursor.step if cursor else 0}
        if self.cache_root is not None:
            index_of: dict[str, list[int]] = {}
            for r in rows:
                index_of.setdefault(str(r[S.ID]), []).append(int(r[SAMPLE_INDEX]))
            own = {str(r[S.ID]): int(r[S.FRAME_BUDGET]) for r in rows if r.get(S.FRAME_BUDGET)}  # hybrid
            ds = read_cached(
                self.cache_root,
                SamplingContract.model_validate(self.contract),
                self.budget,
                ids=list(index_of),
                budget_of=own,
            )
            return ds.flat_map(
                _attach_indices,
                fn_kwargs={"index_of": index_of, "log_path": self.log_path, "tag": tag},
                num_cpus=self.cpus,
            )
        return decoded_dataset(
            rows,
            SamplingContract.model_validate(self.contract),
            self.budget,
            self.timeout_s,
            self.concurrency,
            self.cpus,
            self.backend,
            stage=LoggedDecodeStage,
            stage_kwargs={"log_path": self.log_path, "tag": tag},
        )

    def stream(self, cursor: DataCursor | None, tag: dict[str, Any] | None = None) -> Any:
        """The lazy decode -> encode stream (failed rows dropped and appended to rejects_path)."""

        return self.decoded(cursor, tag).flat_map(
            StreamEncodeStage,
            compute=actor_pool(self.concurrency),
            num_cpus=self.cpus,
            fn_constructor_kwargs={
                "family": self.family,
                "model_path": self.model_path,
                "keep": list(self.keep),
                "rejects_path": self.rejects_path,
            },
        )


@dataclass(frozen=True)
class MaterializedData:
    """Factory over an already materialized encoded set: a resume filters it (no decode, no encode)."""

    dataset: Any

    def __call__(self, cursor: DataCursor | None, tag: dict[str, Any] | None = None) -> Any:
        if cursor is None:
            return self.dataset
        return self.dataset.map_batches(
            _drop_consumed,
            batch_format="pyarrow",
            batch_size=None,
            fn_kwargs={"ranges": [list(r) for r in cursor.consumed]},
            num_cpus=0.25,
        )


def _stream_stats(rows: int, rejects_path: Path, max_failure_ratio: float) -> StageStats:
    lines = rejects_path.read_text().splitlines() if rejects_path.exists() else []
    rejected = len({json.loads(line)["id"] for line in lines if line.strip()})  # a restart may re-log a row
    if rows and rejected / rows > max_failure_ratio:
        raise TooManyRejects(
            f"train-stream: {rejected} of {rows} rows failed (> data.max_failure_ratio="
            f"{max_failure_ratio}); reasons in {rejects_path}"
        )
    return StageStats(total=rows, rejected=rejected, rejects_path=str(rejects_path))


def train_at_budget(
    cfg: ExperimentConfig, inputs: Inputs, budget: int, run_dir: Path
) -> tuple[TrainOutcome, StageStats]:
    """Decode the training manifest at `budget` frames, fine-tune, return the checkpoint + data stats."""

    manifest = read_manifest(train_manifest(cfg, inputs))
    if uses_frame_cache(cfg):
        prepare_frame_cache(cfg, inputs, manifest)  # a no-op once the sweep's cache is complete
    rows = training_rows(cfg, manifest)
    run_dir = Path(run_dir)
    rejects = run_dir / "rejects.jsonl"
    keep = (S.ID, S.MEDIA_TYPE, FEATURES, N_TEXT_TOKENS, N_VISUAL_TOKENS, SAMPLE_INDEX)
    data = TrainData(
        rows=tuple(rows),
        contract=cfg.sampling.model_dump(),
        budget=budget,
        family=cfg.model.family,
        model_path=inputs.model_path,
        timeout_s=cfg.data.decode_timeout_s,
        concurrency=cfg.data.decode_concurrency,
        cpus=cfg.data.cpus_per_decoder,
        cache_root=cache_root(cfg) if uses_frame_cache(cfg) else None,
        keep=keep,
        log_path=str(run_dir / DECODE_LOG) if cfg.data.stream_train else None,
        rejects_path=str(rejects) if cfg.data.stream_train else None,
        backend=cfg.data.decode_backend,
    )
    # One Ray Train run per run_dir: a hybrid trial decodes at the largest candidate, so a name made
    # from the budget collided with that fixed trial and checkpoint retention deleted its checkpoint.
    run_name = f"train_{Path(run_dir).name}"
    storage = (
        cfg.train.storage_path.rstrip("/") if cfg.train.storage_path else str((output_dir(cfg) / "train").resolve())
    )
    if cfg.data.stream_train:
        rejects.unlink(missing_ok=True)
        build: Any = data.stream
    else:
        encoded = encoded_dataset(
            data.decoded(None),
            cfg.model.family,
            inputs.model_path,
            cfg.data.decode_concurrency,
            cfg.data.cpus_per_decoder,
        )
        train_ds, stats = split_rejects(
            encoded, rejects, cfg.data.max_failure_ratio, "train-data", keep_columns=list(keep)
        )
        build = MaterializedData(train_ds)
    run_path = f"{storage}/{run_name}"
    datasets = {
        "train": ResumableStream(build, run_path, resume=False),
        "train_resume": ResumableStream(build, run_path, resume=True),
    }
    outcome = fit(cfg, datasets, inputs.model_path, budget, run_name=run_name, storage_path=storage)
    outcome = _after_fit(cfg, outcome, run_path, run_dir)
    if cfg.data.stream_train:
        stats = _stream_stats(len(rows), rejects, cfg.data.max_failure_ratio)
    return outcome, stats


def _after_fit(cfg: ExperimentConfig, outcome: TrainOutcome, run_path: str, run_dir: Path) -> TrainOutcome:
    """Storage that fits: drop the ZeRO shards once the safetensors checkpoint exists (unless
    train.keep_zero_checkpoints), and bring an object-store checkpoint next to the trial."""
    import dataclasses

    if not cfg.train.keep_zero_checkpoints:
        for path in drop_zero_shards(run_path, keep=outcome.checkpoint_path):
            print(f"[train] deleted ZeRO shards {path} (train.keep_zero_checkpoints=false)", flush=True)
    local = local_checkpoint(outcome.checkpoint_path, str(Path(run_dir) / "checkpoint"))
    return dataclasses.replace(outcome, checkpoint_path=local)
