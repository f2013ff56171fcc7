"""Resumable checkpoints: the data cursor (pure), save/load against a recording engine, the
resume-stream factory, and the materialized-set filter."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from videosft.train import checkpoint as C
from videosft.train.checkpoint import (
    CURSOR_FILE, DS_DIR, SAMPLE_INDEX, DataCursor, ResumableStream, from_ranges, load_training_state, merge_cursor,
    read_cursor, remaining_rows, save_training_state, to_ranges, with_sample_index,
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
    assert seen == [(cur, {"stream": "resume", "attempt": 0}), (cur, {"stream": "resume", "attempt": 1}),
                    (None, {"stream": "full", "attempt": 0}), (None, {"stream": "resume", "attempt": 0})]


def test_materialized_filter_drops_consumed_rows():
    from videosft.train.run import _drop_consumed

    table = pa.table({SAMPLE_INDEX: pa.array(range(10), pa.int64()), "x": list("abcdefghij")})
    cur = merge_cursor(2, 0, [[0, 1, 2], [7, 8]])
    kept = _drop_consumed(table, [list(r) for r in cur.consumed])
    assert kept[SAMPLE_INDEX].to_pylist() == [3, 4, 5, 6, 9] and kept["x"].to_pylist() == list("defgj")
