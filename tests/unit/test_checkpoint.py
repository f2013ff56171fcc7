"""Resumable checkpoints: the data cursor (pure), save/load against a recording engine, the
resume-stream factory, and the materialized-set filter."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from local_services import moto_s3
from videosft.train import checkpoint as C
from videosft.train.checkpoint import (
    CURSOR_FILE,
    DS_DIR,
    SAMPLE_INDEX,
    DataCursor,
    ResumableStream,
    from_ranges,
    load_training_state,
    merge_cursor,
    read_cursor,
    remaining_rows,
    save_training_state,
    to_ranges,
    with_sample_index,
)


@given(st.lists(st.integers(0, 500), max_size=200))
def test_ranges_round_trip_and_are_minimal(indices):
    ranges = to_ranges(indices)
    assert from_ranges(ranges) == set(indices)
    assert all(a < b for a, b in ranges)
    assert all(prev[1] < nxt[0] for prev, nxt in zip(ranges, ranges[1:]))  # sorted, merged, disjoint


def test_prefix_costs_one_range():
    assert to_ranges(range(1000)) == [[0, 1000]]
    assert to_ranges([5, 3, 4, 9]) == [[3, 6], [9, 10]]


def test_cursor_json_round_trip():
    cur = merge_cursor(12, 1, [[0, 2, 4], [1, 3, 5]], history=[{"step": 10, "loss": 1.5}])
    back = DataCursor.from_json(cur.to_json())
    assert back == cur and back.history == ({"step": 10, "loss": 1.5},)
    assert back.consumed == ((0, 6),) and back.samples_per_rank == (3, 3) and back.tag == "step_00000012"
    with pytest.raises(ValueError, match="version"):
        DataCursor.from_json(json.dumps({"version": 99}))


def test_merge_carries_the_resumed_epoch_only():
    first = merge_cursor(4, 0, [[0, 1], [2, 3]])
    same = merge_cursor(8, 0, [[6, 7], [4, 5]], base=first)
    assert same.consumed_set() == set(range(8)) and same.samples_per_rank == (4, 4)
    nxt = merge_cursor(8, 1, [[0], [9]], base=first)  # a new epoch starts from nothing
    assert nxt.consumed_set() == {0, 9} and nxt.samples_per_rank == (1, 1)


def test_remaining_rows_drop_consumed_before_anything_is_decoded():
    rows = with_sample_index([{"id": f"r{i}"} for i in range(6)])
    assert [r[SAMPLE_INDEX] for r in rows] == list(range(6))
    cur = merge_cursor(2, 0, [[0, 3], [1, 5]])
    assert [r["id"] for r in remaining_rows(rows, cur)] == ["r2", "r4"]
    assert remaining_rows(rows, None) == rows


class RecordingEngine:
    """Implements the two engine methods the module uses, recording their arguments."""

    def __init__(self, step_after_load: int | None = None) -> None:
        self.saved: list[tuple[str, str]] = []
        self.loaded: list[tuple[str, str]] = []
        self.global_steps = 0
        self.step_after_load = step_after_load

    def save_checkpoint(self, save_dir: str, tag: str) -> None:
        os.makedirs(os.path.join(save_dir, tag), exist_ok=True)
        self.saved.append((save_dir, tag))

    def load_checkpoint(self, load_dir: str, tag: str) -> tuple[str | None, dict]:
        self.loaded.append((load_dir, tag))
        if not os.path.isdir(os.path.join(load_dir, tag)):
            return None, {}
        self.global_steps = self.step_after_load
        return os.path.join(load_dir, tag), {}


def test_save_then_load_round_trip(tmp_path):
    cur = merge_cursor(6, 0, [[0, 1, 2], [3, 4, 5]])
    for rank in (1, 0):  # every rank writes its shard; only rank 0 the cursor
        engine = RecordingEngine()
        save_training_state(engine, str(tmp_path / f"rank{rank}"), cur, rank)
        assert engine.saved == [(str(tmp_path / f"rank{rank}" / DS_DIR), "step_00000006")]
    assert not (tmp_path / "rank1" / CURSOR_FILE).exists()
    assert read_cursor(str(tmp_path / "rank0")) == cur
    engine = RecordingEngine(step_after_load=6)
    assert load_training_state(engine, str(tmp_path / "rank0"), world_size=2) == cur
    assert engine.loaded == [(str(tmp_path / "rank0" / DS_DIR), "step_00000006")]


def test_load_ignores_non_resumable_and_refuses_mismatches(tmp_path):
    (tmp_path / "videosft_meta.json").write_text("{}")  # the final HF checkpoint: nothing to resume
    assert load_training_state(RecordingEngine(), str(tmp_path), 2) is None
    save_training_state(RecordingEngine(), str(tmp_path), merge_cursor(6, 0, [[0], [1]]), 0)
    with pytest.raises(RuntimeError, match="written by 2 ranks, this run has 4"):
        load_training_state(RecordingEngine(6), str(tmp_path), 4)
    with pytest.raises(RuntimeError, match="step 5, cursor says 6"):
        load_training_state(RecordingEngine(5), str(tmp_path), 2)
    os.rmdir(tmp_path / DS_DIR / "step_00000006")
    with pytest.raises(RuntimeError, match="no checkpoint step_00000006"):
        load_training_state(RecordingEngine(6), str(tmp_path), 2)


def test_latest_cursor_of_a_run_that_never_reported(tmp_path):
    assert C.latest_cursor(str(tmp_path / "nope")) is None
    (tmp_path / "run").mkdir()
    assert C.latest_cursor(str(tmp_path / "run")) is None


def test_resumable_stream_builds_from_the_latest_cursor(monkeypatch):
    cur = merge_cursor(4, 0, [[0, 1], [2, 3]])
    monkeypatch.setattr(C, "latest_cursor", lambda path: cur if path == "/runs/x" else None)
    seen = []
    build = lambda c, tag: seen.append((c, tag)) or "ds"  # noqa: E731
    resume = ResumableStream(build, "/runs/x", resume=True)
    assert resume() == "ds" and resume() == "ds"
    assert ResumableStream(build, "/runs/x", resume=False)() == "ds"
    assert ResumableStream(build, "/runs/y", resume=True)() == "ds"
    assert seen == [
        (cur, {"stream": "resume", "attempt": 0}),
        (cur, {"stream": "resume", "attempt": 1}),
        (None, {"stream": "full", "attempt": 0}),
        (None, {"stream": "resume", "attempt": 0}),
    ]


def test_materialized_filter_drops_consumed_rows():
    from videosft.train.run import _drop_consumed

    table = pa.table({SAMPLE_INDEX: pa.array(range(10), pa.int64()), "x": list("abcdefghij")})
    cur = merge_cursor(2, 0, [[0, 1, 2], [7, 8]])
    kept = _drop_consumed(table, [list(r) for r in cur.consumed])
    assert kept[SAMPLE_INDEX].to_pylist() == [3, 4, 5, 6, 9] and kept["x"].to_pylist() == list("defgj")


# --------------------------------------------------------------------------- storage that fits
def _fake_run(root) -> tuple[str, str]:
    """A Ray Train run dir: a resumable checkpoint (ZeRO shards + cursor) and the final HF one."""
    resumable = root / "checkpoint_2026-01-01_00-00-00.000001"
    (resumable / DS_DIR / "step_00000002").mkdir(parents=True)
    for rank in range(2):
        (resumable / DS_DIR / "step_00000002" / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt").write_bytes(
            b"x" * 64
        )
    (resumable / CURSOR_FILE).write_text(DataCursor(step=2, epoch=0, world_size=2).to_json())
    final = root / "checkpoint_2026-01-01_00-00-01.000002"
    final.mkdir()
    (final / "model.safetensors").write_bytes(b"w" * 16)
    return str(resumable), str(final)


def test_drop_zero_shards_keeps_cursor_and_final_checkpoint(tmp_path):
    resumable, final = _fake_run(tmp_path)
    dropped = C.drop_zero_shards(str(tmp_path), keep=final)
    assert dropped == [os.path.join(resumable, DS_DIR)]
    assert not os.path.exists(os.path.join(resumable, DS_DIR))
    assert read_cursor(resumable).step == 2  # the checkpoint record still reads
    assert os.path.exists(os.path.join(final, "model.safetensors"))
    assert C.drop_zero_shards(str(tmp_path), keep=final) == []  # idempotent
    assert C.drop_zero_shards(str(tmp_path / "never-ran"), keep=final) == []


def test_storage_numbers_per_preset():
    """What the docs' storage table says: 14 bytes/param per resumable ZeRO checkpoint, 2 per
    consolidated one; deleting the shards leaves only the latter."""
    from videosft.train.ds_config import get_preset

    p32 = get_preset("qwen2_5_vl_32b").params
    assert C.zero_checkpoint_bytes(p32) == 14 * p32 and round(14 * p32 / 1e9) == 469
    kept = C.trial_storage_bytes(p32, keep_zero=True, resumable=True)
    dropped = C.trial_storage_bytes(p32, keep_zero=False, resumable=True)
    assert (round(kept["final"] / 1e9), round(dropped["final"] / 1e9), round(dropped["peak"] / 1e9)) == (536, 67, 938)
    assert C.trial_storage_bytes(p32, keep_zero=True, resumable=False) == {"final": 2 * p32, "peak": 2 * p32}


@pytest.fixture
def s3_bucket(monkeypatch):
    with moto_s3(monkeypatch, "ckpt"):
        yield "s3://ckpt"


def test_drop_zero_shards_and_local_copy_on_s3(s3_bucket, tmp_path):
    import boto3
    from pyarrow import fs

    resumable, final = _fake_run(tmp_path / "src")
    s3, _ = fs.FileSystem.from_uri(s3_bucket)
    client = boto3.client("s3")
    for path in (tmp_path / "src").rglob("*"):
        if path.is_file():
            client.upload_file(str(path), "ckpt", f"train/run/{path.relative_to(tmp_path / 'src')}")
    run = f"{s3_bucket}/train/run"
    final_uri = f"{run}/{os.path.basename(final)}"
    dropped = C.drop_zero_shards(run, keep=final_uri)
    assert dropped == [f"ckpt/train/run/{os.path.basename(resumable)}/{DS_DIR}"]
    left = {
        i.path
        for i in s3.get_file_info(fs.FileSelector("ckpt/train/run", recursive=True))
        if i.type == fs.FileType.File
    }
    assert not any(f"/{DS_DIR}/" in p for p in left) and any(p.endswith(CURSOR_FILE) for p in left)
    local = C.local_checkpoint(final_uri, str(tmp_path / "trial" / "checkpoint"))
    assert open(os.path.join(local, "model.safetensors"), "rb").read() == b"w" * 16
    assert C.local_checkpoint(final_uri, local) == local  # copied once
    assert C.local_checkpoint(str(tmp_path), "unused") == str(tmp_path)  # local paths stay


def test_docs_storage_table_follows_from_the_numbers():
    import re
    from pathlib import Path

    from videosft.train.ds_config import get_preset

    text = (Path(__file__).resolve().parents[2] / "clusters" / "README.md").read_text()
    rows = re.findall(
        r"^\| Qwen2\.5-VL-(\d+)B \| (\d+) GB \| (\d+) GB \| (\d+) GB \| (\d+) GB \| (\d+) GB \|", text, flags=re.M
    )
    assert [r[0] for r in rows] == ["3", "7", "32", "72"]
    for size, *numbers in rows:
        p = get_preset(f"qwen2_5_vl_{size}b").params
        kept = C.trial_storage_bytes(p, keep_zero=True, resumable=True)
        dropped = C.trial_storage_bytes(p, keep_zero=False, resumable=True)
        want = [
            kept["final"],
            dropped["final"],
            dropped["peak"],
            5 * kept["final"],
            4 * dropped["final"] + dropped["peak"],
        ]
        assert [int(n) for n in numbers] == [round(w / 1e9) for w in want], size
