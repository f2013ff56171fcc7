"""The consolidated checkpoint writer (train/consolidate.py) on tiny real Qwen2.5-VL models.

The writer must produce what `save_pretrained(max_shard_size=...)` produces (same files, index,
key set: tied lm_head left out, checkpoint-format names), load with `from_pretrained` with no
missing or unexpected keys, and give back every tensor bit for bit; under ZeRO-3 on two gloo
ranks, gathered unit by unit, it must equal the state dict gathered all at once.
"""

import json
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from videosft.train import consolidate as C

SOURCE_ROOT = Path(__file__).resolve().parents[2] / "platform"


def _tiny_qwen(layers: int, seed: int = 0, tie: bool = True):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=300,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=layers,
            num_attention_heads=2,
            num_key_value_heads=1,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=2,
            rope_parameters={"rope_type": "default", "rope_theta": 1e4, "mrope_section": [4, 6, 6]},
        ),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64),
        tie_word_embeddings=tie,
    )
    torch.manual_seed(seed)
    return Qwen2_5_VLForConditionalGeneration(config)


def _load(path):
    from transformers import AutoModelForImageTextToText

    model, info = AutoModelForImageTextToText.from_pretrained(path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    return model.state_dict()


def _data_bytes(path):
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(n))
    header.pop("__metadata__")
    return header, os.path.getsize(path) - 8 - n


@pytest.mark.parametrize("tie", [True, False])
def test_sharded_checkpoint_is_save_pretrained_and_loads_equal(tmp_path, tie):
    model = _tiny_qwen(layers=6, tie=tie)
    limit = 100_000  # "100KB": ~14 shards of this 1.3 MB model
    out, ref = tmp_path / "out", tmp_path / "ref"
    plan = C.consolidate(model, str(out), 0, max_shard_size="100KB", max_unit_bytes=64_000)
    C.write_side_files(model, str(out))
    model.save_pretrained(ref, max_shard_size="100KB")

    assert plan.is_sharded and len(plan.shards) > 5
    assert sorted(os.listdir(out)) == sorted(os.listdir(ref))
    index = json.loads((out / C.INDEX_NAME).read_text())
    assert index == json.loads((ref / C.INDEX_NAME).read_text())  # weight_map and metadata.total_size
    assert set(index["weight_map"].values()) == {s.filename for s in plan.shards}
    assert ("lm_head.weight" in index["weight_map"]) is not tie  # tied: stored once, as the embedding
    total = 0
    for shard in plan.shards:
        header, data = _data_bytes(out / shard.filename)
        assert data <= limit or len(header) == 1, (shard.filename, data)  # a lone oversized tensor may exceed
        assert set(header) == {n for n, f in index["weight_map"].items() if f == shard.filename}
        total += data
    assert total == index["metadata"]["total_size"]

    got, want = _load(out), model.state_dict()
    assert got.keys() == want.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), key
    unsharded = _load(ref)  # the same model through save_pretrained: identical tensors, every key
    assert all(torch.equal(got[k], unsharded[k]) for k in unsharded)


def test_one_shard_is_a_single_model_safetensors(tmp_path):
    model = _tiny_qwen(layers=2)
    plan = C.write_state_dict(model.state_dict(), model, str(tmp_path), max_shard_size="5GB")
    C.write_side_files(model, str(tmp_path))
    assert not plan.is_sharded and not (tmp_path / C.INDEX_NAME).exists() and (tmp_path / C.WEIGHTS_NAME).exists()
    got = _load(tmp_path)
    assert all(torch.equal(got[k], v) for k, v in model.state_dict().items())


def test_units_are_bounded_and_cover_the_plan():
    plan = C.plan_shards(_tiny_qwen(layers=4), "100KB")
    cut = C.units(plan, 20_000)
    assert [t for unit in cut for t in unit] == list(plan.tensors())
    assert all(sum(t.nbytes for t in u) <= 20_000 or len(u) == 1 for u in cut)
    assert max(t.nbytes for t in plan.tensors()) > 20_000  # the embedding gets a unit of its own


def test_writer_refuses_tensors_out_of_plan(tmp_path):
    model = _tiny_qwen(layers=2)
    plan = C.plan_shards(model, "5GB")
    writer = C.ShardWriter(plan, C._local_fs(), str(tmp_path))
    first = next(plan.tensors())
    with pytest.raises(RuntimeError, match="plan's next tensor"):
        writer.put("not.a.weight", torch.zeros(first.shape, dtype=first.dtype))
    with pytest.raises(RuntimeError, match="plan's next tensor"):
        writer.put(first.name, torch.zeros(first.shape, dtype=torch.float16))
    writer.put(first.name, torch.zeros(first.shape, dtype=first.dtype))
    with pytest.raises(RuntimeError, match="never arrived"):
        writer.finish()


def test_max_shard_size_is_validated_at_load():
    from pydantic import ValidationError

    from videosft.config import TrainConfig

    assert TrainConfig().max_shard_size == "5GB"
    with pytest.raises(ValidationError, match="max_shard_size"):
        TrainConfig(max_shard_size="5 gigs")


_ZERO3_CONSOLIDATE = """
import os, sys
import deepspeed, torch, torch.distributed as dist
from safetensors.torch import save_file
sys.path.insert(0, sys.argv[2])
from test_consolidate import _tiny_qwen
from videosft.train.consolidate import consolidate
from videosft.train.ds_config import ZeroSettings, build_ds_config
from videosft.train.engine import init_engine

rank, out = int(os.environ["RANK"]), sys.argv[1]
dist.init_process_group("gloo")
zero = ZeroSettings(stage=3, stage3_param_persistence_threshold=0)  # every parameter partitioned
engine = init_engine(_tiny_qwen(layers=12), build_ds_config(zero=zero, micro_batch_per_gpu=1, grad_accum=1,
                                                            world_size=2, precision="fp32", lr=1e-2, torch_adam=True))
ids = torch.arange(8).reshape(1, 8) + rank
engine.backward(engine(input_ids=ids, labels=ids).loss)  # one step: the weights now differ from the init
engine.step()
assert all(p.numel() < p.ds_numel for p in engine.module.parameters() if p.ds_numel > 1)  # partitions only
plan = consolidate(engine.module, os.path.join(out, "ckpt") if rank == 0 else None, rank, max_shard_size="200KB",
                   max_unit_bytes=50_000)
with deepspeed.zero.GatheredParameters(list(engine.module.parameters()), modifier_rank=None):  # the old way
    if rank == 0:
        state = {k: v.detach().clone() for k, v in engine.module.state_dict().items()}
        del state["lm_head.weight"]  # tied to the embedding (safetensors refuses shared storage)
        save_file(state, os.path.join(out, "gathered_all.safetensors"))
        engine.module.config.save_pretrained(os.path.join(out, "ckpt"))
print("CONSOLIDATED", rank, len(plan.shards), flush=True)
"""


@pytest.mark.slow  # two processes importing transformers + DeepSpeed: ~40 s of CPU in all
def test_zero3_two_ranks_unit_by_unit_equals_gathered_all(tmp_path):
    """Two gloo ranks, ZeRO-3 with every parameter partitioned, a 12-layer model after one step."""
    from safetensors.torch import load_file

    (tmp_path / "zero3_consolidate.py").write_text(_ZERO3_CONSOLIDATE)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    procs = []
    for rank in range(2):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "DS_ACCELERATOR": "cpu",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(SOURCE_ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(tmp_path / "zero3_consolidate.py"), str(tmp_path), str(Path(__file__).parent)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    try:
        outs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for rank, (p, out) in enumerate(zip(procs, outs)):
        assert p.returncode == 0 and f"CONSOLIDATED {rank}" in out, out[-3000:]
    assert len(list((tmp_path / "ckpt").glob("model-*-of-*.safetensors"))) > 3
    got = _load(tmp_path / "ckpt")
    want = load_file(str(tmp_path / "gathered_all.safetensors"))
    assert set(got) == set(want) | {"lm_head.weight"}
    for key, value in want.items():
        assert torch.equal(got[key], value), key
    assert torch.equal(got["lm_head.weight"], want["model.language_model.embed_tokens.weight"])
    untrained = _tiny_qwen(layers=12).state_dict()  # the step moved the weights: not the seed's init
    key = "model.language_model.layers.0.mlp.up_proj.weight"
    assert not torch.equal(untrained[key], got[key])


@pytest.mark.parametrize("family", ["qwen2_5_vl", "llava_next_video", "llava_1_5"])
def test_every_family_round_trips_in_its_checkpoint_names(family, tmp_path):
    """Families whose checkpoint names differ from their module names (LLaVA: language_model.model.*)."""
    from transformers import AutoModelForImageTextToText

    from videosft.models.registry import get_family

    model = AutoModelForImageTextToText.from_pretrained(get_family(family).build_tiny(tmp_path / "base", seed=0))
    out, ref = tmp_path / "out", tmp_path / "ref"
    C.consolidate(model, str(out), 0, max_shard_size="200KB")
    model.save_pretrained(ref, max_shard_size="200KB")
    assert json.loads((out / C.INDEX_NAME).read_text()) == json.loads((ref / C.INDEX_NAME).read_text())
    model.config.save_pretrained(out)
    got = _load(out)
    assert all(torch.equal(got[k], v) for k, v in model.state_dict().items())
