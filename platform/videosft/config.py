"""The experiment config: one typed, frozen tree, loaded from YAML with dotted overrides.

Validation happens here, before any Ray work: unknown keys and bad values fail with a message that
names the dotted key and what was expected. The tree crosses Ray as a plain dict
(`cfg.model_dump()`) and is rebuilt inside workers with `ExperimentConfig.model_validate`.
We use pydantic models (frozen, extra="forbid") rather than bare dataclasses: same immutability,
and field-named error messages for free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from videosft.benchmarks import BENCHMARKS, get_benchmark
from videosft.budget.base import BudgetConfig
from videosft.data.sampling import SamplingContract
from videosft.engines import VLLMConfig  # defined beside the engine; budget.vllm reuses it
from videosft.models.param_groups import FreezePolicy
from videosft.models.registry import family_names


class ConfigError(ValueError):
    """A config that cannot run; the message names the key and what was expected."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelConfig(_Strict):
    family: str = "qwen2_5_vl"
    path: str | None = None  # None: build a tiny random model at <output_dir>/base_model
    tiny_seed: int = 0

    @field_validator("family")
    @classmethod
    def _known_family(cls, v: str) -> str:
        if v not in family_names():
            raise ValueError(f"unknown family {v!r}; expected one of {family_names()}")
        return v


class SyntheticConfig(_Strict):
    n_train_video: int = Field(48, ge=1)
    n_train_image: int = Field(32, ge=0)
    n_eval_video: int = Field(32, ge=1)
    n_eval_image: int = Field(32, ge=1)
    size: int = Field(64, ge=16)
    num_frames: int = Field(32, ge=2)
    fps: float = Field(8.0, gt=0)
    seed: int = 0


class ManifestSource(_Strict):
    """One source of a multi-source training set (LLaVA-Video-178K ships ten, each a JSON of rows
    plus a folder of videos): the manifest and the dir/URI its relative media paths resolve against."""

    manifest: str  # local path or URI (s3://, gs://); JSON, JSONL or parquet
    media_root: str | None = None  # None: the manifest's own directory


class DataConfig(_Strict):
    root: str | None = None  # None: generate the synthetic set at <output_dir>/data
    train_manifest: str = "train.json"  # under root, unless train_sources is set
    # Several manifests, each with its own media root, trained on as one set (ids must be unique
    # across them). Replaces root/train_manifest for training; evaluation manifests stay under root.
    train_sources: list[ManifestSource] = []
    eval_image_manifest: str = "eval_image.json"
    eval_video_manifest: str = "eval_video.json"
    synthetic: SyntheticConfig = SyntheticConfig()
    max_failure_ratio: float = Field(0.05, ge=0.0, le=1.0)
    decode_timeout_s: float = Field(60.0, gt=0)
    # auto: planned PyAV reads on constant-frame-rate video, else decord then PyAV. torchcodec is
    # optional: it must be installed with an FFmpeg it can load (checked here, before any Ray work).
    decode_backend: Literal["auto", "decord", "pyav", "torchcodec"] = "auto"
    decode_concurrency: int = Field(1, ge=1)
    cpus_per_decoder: float = Field(0.5, gt=0)
    # Decode each training video once per sweep at its largest budget; smaller budgets read subsets
    # (fixed-mode indices are nested). Off in fps mode, where budgets do not nest.
    frame_cache: bool = True
    cache_root: str | None = None  # None: <output_dir>/frame_cache; s3://... on multi-node clusters
    # Image replay (a mitigation of Video-SFT's spatial cost): the share of image samples mixed into
    # the video stream. None trains on the manifest's own mix; r in [0, 1) keeps every video row and
    # draws image rows so images are r of the stream (0.0: video only). Sweepable.
    image_replay_ratio: float | None = Field(None, ge=0.0, lt=1.0)
    # Stream decode -> encode straight into training instead of materializing the encoded set first
    # (needed when it does not fit the object store); rejects are then counted after training.
    stream_train: bool = False
    # Cost-grouped micro-batches: each Train worker orders every window of `bucket_window` rows it
    # reads by padded length (visual + text tokens), cuts it into micro-batches and shuffles their
    # order (train.seed, epoch), so an image is not padded to a 16-frame video's length. Costs a
    # window of encoded rows of host memory per worker; rows never leave their window.
    bucket_by_cost: bool = True
    bucket_window: int = Field(64, ge=1)
    # Rows shuffled through a buffer of this many before batching, seeded by (train.seed, epoch), so
    # seeds differ in data order (0: stream order). The resume cursor is a set of rows: order-free.
    shuffle_buffer: int = Field(256, ge=0)

    @field_validator("decode_backend")
    @classmethod
    def _backend_runs_here(cls, v: str) -> str:
        if v == "torchcodec":
            from videosft.data.decode import torchcodec_missing

            if reason := torchcodec_missing():
                raise ValueError(f"decode_backend 'torchcodec': {reason}")
        return v


class TrainConfig(_Strict):
    num_workers: int = Field(2, ge=1)
    use_gpu: bool = False
    # On a 2-core machine a whole CPU per worker starves the Ray Data stage feeding it.
    cpus_per_worker: float = Field(0.5, gt=0)
    # "auto": ZeRO-2 when params + grads + optimizer states + activations fit a GPU, else ZeRO-3
    # (train/memory_plan.py, logged by rank 0); CPU runs resolve auto to 2.
    zero_stage: Literal[2, 3, "auto"] = 2
    max_steps: int = Field(100, ge=1)
    micro_batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0)
    # constant: lr after warm-up stays put (short CPU runs); linear: decays to 0 at max_steps.
    lr_schedule: Literal["constant", "linear"] = "constant"
    grad_clip: float = Field(1.0, gt=0)
    precision: Literal["fp32", "bf16"] = "fp32"
    log_every: int = Field(5, ge=1)
    seed: int = 0
    # Which module groups train and their learning rates. The default trains everything (the tiny
    # demo model starts random); real-model configs usually freeze the vision tower.
    freeze: FreezePolicy = FreezePolicy(train_vision=True)
    # Recompute activations in backward: memory for ~30% time. "auto": on only when the estimated
    # activations at the frame budget and micro-batch would not fit (train/memory_plan.py); off on CPU.
    gradient_checkpointing: bool | Literal["auto"] = False
    # Save a resumable checkpoint (ZeRO shards + data cursor) every N optimizer steps; 0: only the
    # final consolidated one. A failed worker restarts the run from the latest, max_failures times.
    checkpoint_every: int = Field(0, ge=0)
    max_failures: int = Field(2, ge=-1)  # -1: retry forever (Ray's convention)
    # Keep the ZeRO shards of the last resumable checkpoint after the run consolidated its
    # safetensors checkpoint. Off: they are deleted (14 bytes/param: a 32B trial's 469 GB).
    keep_zero_checkpoints: bool = False
    # Largest safetensors file of the consolidated checkpoint (HF's units: decimal KB/MB/GB/TB).
    # Rank 0 streams the shards unit by unit (train/consolidate.py), so this bounds file size only.
    max_shard_size: str = Field("5GB", pattern=r"^[1-9][0-9]*(KB|MB|GB|TB)$")
    # Where Ray Train writes checkpoints and results; None: <output_dir>/train. May be s3:// or
    # gs://: the final consolidated checkpoint is then copied back under the trial's directory.
    storage_path: str | None = None
    # How long a Train worker group may wait for its resources (Ray's default, 60 s, is shorter
    # than a GPU node's boot + image pull on an autoscaling cluster).
    worker_start_timeout_s: float = Field(1800.0, gt=0)
    # Peak FLOP/s of one device for the MFU metric; None: the GPU's datasheet peak, no MFU on CPU.
    peak_flops: float | None = Field(None, gt=0)
    # Sequence packing (models/packing.py): each micro-batch is one row of whole samples, at most
    # max_tokens_per_micro_batch tokens, attention and positions kept per sample; replaces
    # micro_batch_size (samples per micro-batch vary) and data.bucket_by_cost's grouping.
    packing: bool = False
    max_tokens_per_micro_batch: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _packing_budget(self) -> TrainConfig:
        if self.packing and self.max_tokens_per_micro_batch is None:
            raise ValueError("train.packing: true needs train.max_tokens_per_micro_batch (the pack's token budget)")
        return self


class EvalConfig(_Strict):
    benchmarks: list[str] = ["synthetic_image", "synthetic_video"]
    frame_budget: int | None = Field(None, ge=1)  # None: evaluate each trial at its training budget
    engine: Literal["transformers", "vllm"] = "transformers"
    num_actors: int = Field(1, ge=1)
    cpus_per_actor: float = Field(1.0, gt=0)
    gpus_per_actor: float = Field(0.0, ge=0)
    batch_size: int = Field(8, ge=1)
    # Whose rules the scores reproduce (videosft/benchmarks/protocols.py): prompts, generation length, parsing, aggregation.
    protocol: Literal["lmms_eval", "vlmevalkit"] = "lmms_eval"
    # None: each benchmark's protocol length (lmms-eval: 16..1024 tokens); an int overrides every benchmark.
    max_new_tokens: int | None = Field(None, ge=1)
    # Loader options per benchmark, e.g. {videomme: {subtitles: true}, mvbench: {layout: hf_main}}.
    benchmark_options: dict[str, dict[str, Any]] = {}
    limit: int | None = Field(None, ge=1)  # cap items per benchmark (smoke runs)
    tensor_parallel_size: int = Field(1, ge=1)  # vLLM only
    vllm: VLLMConfig = VLLMConfig()  # vLLM engine settings, per-device defaults (eval.engine=vllm)
    roots: dict[str, str] = {}  # benchmark name -> its data root (synthetic_* default to data.root)
    bootstrap_resamples: int = Field(1000, ge=0)  # clustered bootstrap CI of each headline score; 0: none
    ci_level: float = Field(0.95, gt=0, lt=1)


class AlignmentConfig(_Strict):
    """The gradient-alignment probe a sweep runs on the base and on every trial's checkpoint."""

    enabled: bool = True
    batches: int = Field(2, ge=1)  # k image x k video batches per budget (spread over k*k pairs)
    batch_size: int = Field(2, ge=1)
    manifest: str = "train.json"  # under data.root: image and video rows are drawn from it


class AttentionConfig(_Strict):
    """The attention probe (Figure 3) a sweep runs on the base and every trial; skipped, with a note,
    for a family without a token-to-pixel map or held-out rows without target boxes."""

    enabled: bool = True
    items: int = Field(16, ge=1)  # held-out items per modality
    layer_groups: int = Field(3, ge=1)  # contiguous groups of LLM layers (thirds)
    image_manifest: str = "eval_image.json"  # under data.root ("" = none)
    video_manifest: str = "eval_video.json"  # under data.root ("" = none); clips at eval.frame_budget
    boxes: str | None = None  # JSONL of {id, frame_index, box} replacing the rows' target_boxes


class TrackingConfig(_Strict):
    """Experiment trackers fed through Ray Tune's logger callbacks (tune/tracking.py)."""

    backends: list[Literal["tensorboard", "mlflow", "wandb"]] = []
    project: str | None = None  # MLflow experiment / W&B project; None: the experiment's name
    mlflow_tracking_uri: str | None = None  # None: MLflow's default (./mlruns or MLFLOW_TRACKING_URI)


HYBRID = "hybrid"  # a sweep "budget": train and evaluate on per-sample budgets from `budget.predictor`


class SweepConfig(_Strict):
    # Fixed training frame budgets, and "hybrid" for a Hybrid-Frame trial (per-sample budgets).
    frame_budgets: list[int | Literal["hybrid"]] = [2, 4, 8, "hybrid"]
    # None or 0: as many trials as the cluster holds at its *maximum*: the node-type maxima of
    # `cluster_file`, else of the autoscaler's config, else (no autoscaler) what is up now (tune/sweep.py).
    max_concurrent_trials: int | None = Field(None, ge=0)
    # A cluster file (clusters/aws.yaml, gcp.yaml, kuberay/*.yaml, or any `ray up` YAML) whose node
    # types and max_workers bound concurrency; relative paths resolve against the driver's cwd.
    cluster_file: str | None = None
    # On an autoscaling cluster, ask the autoscaler up front (ray.autoscaler.sdk.request_resources)
    # for every concurrent trial's training bundles, so nodes boot in parallel; cleared at the end.
    request_resources: bool = True
    # Re-running in the same output_dir continues the sweep (Tune restore) and reuses every trial
    # whose summary.json was written under the same config; false starts a fresh Tune experiment.
    resume: bool = True

    @field_validator("frame_budgets")
    @classmethod
    def _positive_unique(cls, v: list[int | str]) -> list[int | str]:
        if not v:
            raise ValueError("need at least one frame budget")
        if any(b != HYBRID and b < 1 for b in v) or len(set(v)) != len(v):
            raise ValueError(f"frame budgets must be unique positive ints or 'hybrid', got {v}")
        return v

    def fixed_budgets(self) -> list[int]:
        return [b for b in self.frame_budgets if b != HYBRID]

    def decode_budgets(self, candidates: Sequence[int]) -> list[int]:
        """Every budget a trial may decode at: the fixed ones, and the predictor's candidates if hybrid."""
        extra = list(candidates) if HYBRID in self.frame_budgets else []
        return sorted(set(self.fixed_budgets()) | set(extra))


class ExperimentConfig(_Strict):
    name: str = "demo"
    output_dir: str = "runs/demo"
    seed: int = 0
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    sampling: SamplingContract = SamplingContract()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    sweep: SweepConfig = SweepConfig()
    # Per-sample frame budgets for "hybrid" sweep trials. The embedded default uses the oracle (the
    # synthetic set's known minimal budgets); real data needs a predictor that reads the sample.
    budget: BudgetConfig = BudgetConfig()
    alignment: AlignmentConfig = AlignmentConfig()
    attention: AttentionConfig = AttentionConfig()
    tracking: TrackingConfig = TrackingConfig()

    @field_validator("output_dir")
    @classmethod
    def _output_dir_is_a_path(cls, v: str) -> str:
        # The run directory is written with pathlib (trial summaries, predictions, reports, Tune
        # state), so a URI would silently become a local folder named "s3:"; refuse it up front.
        if "://" in v:
            raise ValueError(
                f"output_dir must be a filesystem path every node can reach, not a URI ({v!r}): a shared "
                "mount (EFS on AWS, Filestore on GCP, a ReadWriteMany PVC on Kubernetes, e.g. "
                "/mnt/shared/runs/<name>) or a local path on one machine. Object storage (s3:// or gs://) "
                "is supported for data.root, model.path and data.cache_root, not for output_dir"
            )
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> ExperimentConfig:
        from videosft.benchmarks import BENCHMARKS

        unknown = [b for b in self.eval.benchmarks if b not in BENCHMARKS]
        if unknown:
            raise ValueError(f"eval.benchmarks: unknown {unknown}; expected names from {sorted(BENCHMARKS)}")
        _check_benchmark_options(self.eval.benchmark_options, self.eval.protocol)
        if self.train.use_gpu and self.train.precision == "fp32":
            pass  # allowed (debugging), just slower
        if HYBRID in self.sweep.frame_budgets and self.budget.needs_model_path() and not self.budget.model_path:
            raise ValueError(
                f"sweep.frame_budgets has 'hybrid' but budget.predictor={self.budget.predictor!r} "
                "needs budget.model_path"
            )
        if not self.train.use_gpu and self.train.precision == "bf16":
            raise ValueError("train.precision: bf16 needs train.use_gpu=true; use fp32 on CPU")
        return self

    def with_overrides(self, overrides: Sequence[str]) -> ExperimentConfig:
        return _validate(apply_overrides(self.model_dump(), overrides), source="overrides")


def _check_benchmark_options(options: Mapping[str, Mapping[str, Any]], protocol: str) -> None:
    """eval.benchmark_options names known benchmarks and only the options their loaders take."""

    for name, opts in options.items():
        if name not in BENCHMARKS:
            raise ValueError(
                f"eval.benchmark_options: unknown benchmark {name!r}; expected names from {sorted(BENCHMARKS)}"
            )
        allowed = get_benchmark(name, protocol).options
        bad = sorted(set(opts) - set(allowed))
        if bad:
            raise ValueError(
                f"eval.benchmark_options.{name}: unknown option(s) {bad}; {name} takes "
                f"{sorted(allowed) or 'no options'}"
            )


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` strings (value parsed as YAML) to a nested dict, returning a new dict."""
    out = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected dotted.key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {key}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = yaml.safe_load(value)
    return out


def _validate(raw: dict[str, Any], source: str) -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            got = f" (got {err['input']!r})" if err["type"] != "extra_forbidden" else ""
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            lines.append(f"  {loc}: {msg}{got}")
        raise ConfigError(f"invalid config from {source}:\n" + "\n".join(lines)) from None


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Load YAML (or the built-in defaults when path is None), apply overrides, validate."""
    raw: dict[str, Any] = {}
    if path is not None:
        text = Path(path).read_text()
        loaded = yaml.safe_load(text)
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
        raw = loaded or {}
    return _validate(
        apply_overrides(raw, overrides), source=str(path or "defaults") + (" + overrides" if overrides else "")
    )


def from_dict(raw: dict[str, Any]) -> ExperimentConfig:
    """Rebuild the config inside a Ray worker from its plain-dict form."""
    return ExperimentConfig.model_validate(raw)
