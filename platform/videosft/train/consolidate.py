"""The final Hugging Face checkpoint, written one unit of parameters at a time.

Gathering every ZeRO-3 partition at once puts the whole model on every rank (144 GB of bf16
weights per GPU for a 72B model) and `save_pretrained` then serialises a second copy. Here the
checkpoint is planned from metadata alone (names, full shapes, dtypes) and written in that plan's
order: each *unit* (consecutive tensors, at most `max_unit_bytes` unless one tensor is larger) is
gathered collectively (`GatheredParameters(unit, modifier_rank=None)`), rank 0 streams its bytes
into the open safetensors shard, and the unit is released before the next. Nothing holds more than
one unit: no rank gathers more, and rank 0's writer has no shard buffer, because a shard's header
(names, shapes, offsets) is known from the plan before any tensor arrives.

The layout is the one `save_pretrained` writes: the same key set (tied weights removed by
transformers' `remove_tied_weights_from_state_dict`, names reverted to the checkpoint format by
`revert_weight_conversion`), shards split by `huggingface_hub.split_torch_state_dict_into_shards`
(`model-0000k-of-0000n.safetensors` + `model.safetensors.index.json`, or one `model.safetensors`),
safetensors metadata {"format": "pt"}. So `from_pretrained` and vLLM load it as they load any
released checkpoint.

Files go to a pyarrow filesystem path: the trial's checkpoint directory itself (local or shared
disk, or object storage), so the weights exist once on storage and never in a temporary copy.
Under ZeRO-2 or on one rank parameters are whole and the same writer runs without gathering.
"""

from __future__ import annotations

import json
import posixpath
import struct
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
DEFAULT_MAX_SHARD_SIZE = "5GB"
DEFAULT_MAX_UNIT_BYTES = 512 * 2**20  # a unit: consecutive tensors up to this (a larger tensor alone)
_ALIGN = 8  # safetensors pads its JSON header with spaces to a multiple of 8 bytes


@dataclass(frozen=True)
class PlannedTensor:
    """One tensor of the checkpoint: its saved name, the module state key it comes from, its layout."""

    name: str
    source: str
    shape: tuple[int, ...]
    dtype: Any  # torch.dtype
    nbytes: int


@dataclass(frozen=True)
class Shard:
    filename: str
    tensors: tuple[PlannedTensor, ...]

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)


@dataclass(frozen=True)
class ShardPlan:
    """Which tensor goes into which file, in write order; identical on every rank."""

    shards: tuple[Shard, ...]
    total_parameters: int

    @property
    def is_sharded(self) -> bool:
        return len(self.shards) > 1

    @property
    def total_size(self) -> int:
        return sum(s.nbytes for s in self.shards)

    def tensors(self) -> Iterator[PlannedTensor]:
        for shard in self.shards:
            yield from shard.tensors

    def index(self) -> dict[str, Any]:
        """The HF index file's content (as `save_pretrained` writes it)."""
        return {
            "metadata": {"total_parameters": self.total_parameters, "total_size": self.total_size},
            "weight_map": {t.name: s.filename for s in self.shards for t in s.tensors},
        }


# --------------------------------------------------------------------------- plan
def _full_shape(tensor: Any) -> tuple[int, ...]:
    """The unpartitioned shape: ZeRO-3 keeps it in `ds_shape`, the tensor itself holds a slice."""
    return tuple(int(d) for d in (tensor.ds_shape if hasattr(tensor, "ds_shape") else tensor.shape))


def plan_shards(model: Any, max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE) -> ShardPlan:
    """The checkpoint `model.save_pretrained(max_shard_size=...)` would write, planned on meta tensors.

    Works on a ZeRO-3 partitioned module (full shapes from `ds_shape`). Refuses a weight conversion
    that is not a pure renaming (merging or splitting tensors on save): those need whole groups of
    tensors at once, which this writer does not gather.
    """
    import torch
    from huggingface_hub import split_torch_state_dict_into_shards
    from transformers.core_model_loading import revert_weight_conversion
    from transformers.modeling_utils import remove_tied_weights_from_state_dict

    live = model.state_dict(keep_vars=True)
    for key in getattr(model, "_keys_to_ignore_on_save", None) or ():
        live.pop(key, None)
    meta = {k: torch.empty(_full_shape(v), dtype=v.dtype, device="meta") for k, v in live.items()}
    source_of = {id(v): k for k, v in meta.items()}
    kept = remove_tied_weights_from_state_dict(dict(meta), model)
    saved = revert_weight_conversion(model, dict(kept))
    if len(saved) != len(kept) or any(id(v) not in source_of for v in saved.values()):
        raise NotImplementedError(
            f"{type(model).__name__}: its checkpoint conversion merges or splits tensors; "
            "train/consolidate.py writes renamed tensors only"
        )
    split = split_torch_state_dict_into_shards(
        saved, filename_pattern="model{suffix}.safetensors", max_shard_size=max_shard_size
    )
    shards = []
    for filename, names in split.filename_to_tensors.items():
        shards.append(
            Shard(
                filename,
                tuple(
                    PlannedTensor(
                        name,
                        source_of[id(saved[name])],
                        tuple(saved[name].shape),
                        saved[name].dtype,
                        saved[name].numel() * saved[name].element_size(),
                    )
                    for name in names
                ),
            )
        )
    params = sum(int(p.ds_numel) if hasattr(p, "ds_numel") else p.numel() for p in model.parameters())
    return ShardPlan(tuple(shards), params)


def units(plan: ShardPlan, max_unit_bytes: int = DEFAULT_MAX_UNIT_BYTES) -> list[list[PlannedTensor]]:
    """Consecutive runs of the plan's tensors of at most `max_unit_bytes` (a larger tensor alone)."""
    out: list[list[PlannedTensor]] = []
    size = 0
    for t in plan.tensors():
        if out and size + t.nbytes <= max_unit_bytes:
            out[-1].append(t)
            size += t.nbytes
        else:
            out.append([t])
            size = t.nbytes
    return out


# --------------------------------------------------------------------------- safetensors stream
def _dtype_tag(dtype: Any) -> str:
    import torch

    tags = {
        torch.float64: "F64",
        torch.float32: "F32",
        torch.float16: "F16",
        torch.bfloat16: "BF16",
        torch.int64: "I64",
        torch.int32: "I32",
        torch.int16: "I16",
        torch.int8: "I8",
        torch.uint8: "U8",
        torch.bool: "BOOL",
    }
    if dtype not in tags:
        raise TypeError(f"consolidate: no safetensors dtype for {dtype}")
    return tags[dtype]


def shard_header(shard: Shard) -> bytes:
    """The safetensors prefix of `shard`: little-endian u64 header length, then the padded JSON header."""
    entries: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for t in shard.tensors:
        entries[t.name] = {
            "dtype": _dtype_tag(t.dtype),
            "shape": list(t.shape),
            "data_offsets": [offset, offset + t.nbytes],
        }
        offset += t.nbytes
    text = json.dumps(entries, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % _ALIGN)
    return struct.pack("<Q", len(text)) + text


class ShardWriter:
    """Rank 0's side: receives the plan's tensors in order and streams them into their shard files.

    `put` checks each tensor against the plan (name, shape, dtype) and writes its bytes as they
    are, so the only host memory held is the tensor passed in (a GPU tensor is copied to host one
    at a time). A shard file is opened at its first tensor and closed after its last.
    """

    def __init__(self, plan: ShardPlan, filesystem: Any, directory: str) -> None:
        self.plan = plan
        self.filesystem = filesystem
        self.directory = directory
        self._order = list(plan.tensors())
        self._shard_of = {t.name: s for s in plan.shards for t in s.tensors}
        self._next = 0
        self._stream: Any = None
        self._left = 0  # tensors still to come in the open shard

    def _path(self, filename: str) -> str:
        return posixpath.join(self.directory, filename)

    def _filename(self, shard: Shard) -> str:
        return shard.filename if self.plan.is_sharded else WEIGHTS_NAME

    def put(self, name: str, tensor: Any) -> None:
        import torch

        if self._next >= len(self._order):
            raise RuntimeError(f"consolidate: tensor {name!r} arrived after the plan's last one")
        want = self._order[self._next]
        if name != want.name or tuple(tensor.shape) != want.shape or tensor.dtype != want.dtype:
            raise RuntimeError(
                f"consolidate: got {name!r} {tuple(tensor.shape)} {tensor.dtype}, the plan's next "
                f"tensor is {want.name!r} {want.shape} {want.dtype}"
            )
        if self._stream is None:
            shard = self._shard_of[name]
            self._stream = self.filesystem.open_output_stream(self._path(self._filename(shard)))
            self._stream.write(shard_header(shard))
            self._left = len(shard.tensors)
        host = tensor.detach()
        if host.device.type != "cpu":
            host = host.to("cpu")
        raw = host.contiguous().reshape(-1).view(torch.uint8)
        if raw.numel():
            self._stream.write(memoryview(raw.numpy()))
        self._next += 1
        self._left -= 1
        if self._left == 0:
            self._stream.close()
            self._stream = None

    def finish(self) -> None:
        """Check every planned tensor arrived; write the index when the plan has several shards."""
        if self._next != len(self._order):
            raise RuntimeError(
                f"consolidate: {len(self._order) - self._next} planned tensors never arrived "
                f"(next: {self._order[self._next].name!r})"
            )
        if self.plan.is_sharded:
            with self.filesystem.open_output_stream(self._path(INDEX_NAME)) as out:
                out.write((json.dumps(self.plan.index(), indent=2, sort_keys=True) + "\n").encode("utf-8"))


def write_state_dict(
    state: dict[str, Any], model: Any, directory: str, max_shard_size: int | str, filesystem: Any = None
) -> ShardPlan:
    """Write an in-memory `state` of `model` (same keys as its state_dict) in the sharded HF layout."""
    filesystem = filesystem or _local_fs()
    plan = plan_shards(model, max_shard_size)
    filesystem.create_dir(directory, recursive=True)
    writer = ShardWriter(plan, filesystem, directory)
    for t in plan.tensors():
        writer.put(t.name, state[t.source])
    writer.finish()
    return plan


# --------------------------------------------------------------------------- collective write
def consolidate(
    model: Any,
    directory: str | None,
    rank: int,
    *,
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    filesystem: Any = None,
    max_unit_bytes: int = DEFAULT_MAX_UNIT_BYTES,
    on_unit: Callable[[int, Sequence[PlannedTensor]], None] | None = None,
) -> ShardPlan:
    """Write `model`'s weights (ZeRO-3 partitioned or whole) as a sharded HF checkpoint; every rank calls this.

    Each rank gathers the same units in the same order (the plan is computed from metadata on
    every rank); rank 0 writes into `directory` on `filesystem` (local disk when None), other
    ranks pass `directory=None`. `on_unit(i, unit)` runs on every rank while unit i is gathered
    (the memory benchmark samples there). Returns the plan.
    """
    plan = plan_shards(model, max_shard_size)
    live = model.state_dict(keep_vars=True)
    partitioned = any(hasattr(p, "ds_id") for p in model.parameters())
    writer = None
    if rank == 0:
        if directory is None:
            raise ValueError("consolidate: rank 0 needs the checkpoint directory")
        filesystem = filesystem or _local_fs()
        filesystem.create_dir(directory, recursive=True)
        writer = ShardWriter(plan, filesystem, directory)
    for i, unit in enumerate(units(plan, max_unit_bytes)):
        with _gathered([live[t.source] for t in unit], partitioned):
            if on_unit is not None:
                on_unit(i, unit)
            if writer is not None:
                for t in unit:
                    writer.put(t.name, live[t.source].data)
    if writer is not None:
        writer.finish()
    return plan


class _NoGather:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _gathered(tensors: list[Any], partitioned: bool) -> Any:
    """GatheredParameters over the unit's ZeRO-3 parameters (read-only: modifier_rank=None)."""
    params = [p for p in tensors if hasattr(p, "ds_id")]
    if not partitioned or not params:
        return _NoGather()
    import deepspeed

    return deepspeed.zero.GatheredParameters(params, modifier_rank=None)


def _local_fs() -> Any:
    from pyarrow import fs

    return fs.LocalFileSystem()


# --------------------------------------------------------------------------- side files
def write_side_files(
    model: Any, directory: str, filesystem: Any = None, extra: Callable[[str], None] | None = None
) -> None:
    """Config + generation config (as `save_pretrained` writes them), then whatever `extra(tmp)` adds
    (processor, run metadata): written to a small local directory and copied next to the weights."""
    from pyarrow import fs

    filesystem = filesystem or _local_fs()
    config = model.config
    config.dtype = str(model.dtype).split(".")[1]
    config.architectures = [type(model).__name__]
    with tempfile.TemporaryDirectory() as tmp:
        config.save_pretrained(tmp)
        if model.can_generate():
            model.generation_config.save_pretrained(tmp)
        if extra is not None:
            extra(tmp)
        filesystem.create_dir(directory, recursive=True)
        fs.copy_files(tmp, directory, source_filesystem=fs.LocalFileSystem(), destination_filesystem=filesystem)
