"""Fault tolerance end to end: a training worker dies mid-run, Ray Train restarts the worker group
from the latest resumable checkpoint (ZeRO-2 shards + data cursor), and the resumed stream leaves
out the samples already trained on, before decode.

Real parts throughout: synthetic mp4s, a tiny Qwen2.5-VL, 2 gloo workers under DeepSpeed ZeRO-2,
a lazy Ray Data decode -> encode stream (`data.stream_train`, no frame cache, so every sample the
stream yields is decoded by DecodeStage in it), and a hard `os._exit(1)` of rank 1. The decode
log the stream writes (one line per decoded row, tagged with the attempt) is the decode count.
"""

import json
from pathlib import Path

import pytest
from resume_config import CI_CONFIG, resumable_run_overrides

from videosft.config import load_config
from videosft.train.checkpoint import CURSOR_FILE, SAMPLE_INDEX, DataCursor
from videosft.train.run import DECODE_LOG, train_at_budget
from videosft.train.trainer import FAULT_ENV
from videosft.workspace import prepare_inputs

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# one epoch = 16 rows / (2 workers x micro-batch 2) = 4 steps (resumable_run_overrides' run)
N_ROWS, STEPS, EVERY, KILL_AT, WORLD, MICRO = 16, 4, 2, 3, 2, 2


def test_killed_worker_resumes_from_checkpoint_without_redecoding(local_ray, tmp_path, monkeypatch):
    cfg = load_config(
        CI_CONFIG, resumable_run_overrides(tmp_path, steps=STEPS, every=EVERY, extra=["data.cpus_per_decoder=0.4"])
    )
    inputs = prepare_inputs(cfg)
    marker = tmp_path / "fault_fired.json"
    monkeypatch.setenv(FAULT_ENV, f"1:{KILL_AT}:{marker}")
    run_dir = tmp_path / "run"

    outcome, stats = train_at_budget(cfg, inputs, 2, run_dir)

    # the worker really died once, at the step we asked for
    assert json.loads(marker.read_text()) == {"rank": 1, "step": KILL_AT}
    # the run still finished with the right number of optimizer steps, from the latest checkpoint
    meta = json.loads((Path(outcome.checkpoint_path) / "videosft_meta.json").read_text())
    assert meta["steps"] == STEPS and outcome.metrics["step"] == STEPS
    resumed = meta["resumed_from_step"]
    assert resumed == KILL_AT - KILL_AT % EVERY == 2  # the latest checkpoint before the kill
    assert KILL_AT - resumed <= EVERY  # lost at most one checkpoint interval
    steps_logged = [h["step"] for h in meta["history"]]
    assert steps_logged == list(range(1, STEPS + 1))  # pre-failure history came back with the cursor
    assert stats.total == N_ROWS and stats.rejected == 0

    # the resumable checkpoint Ray kept (num_to_keep=2: it and the final one) holds every rank's
    # ZeRO shard and the cursor the restart resumed from
    run_root = tmp_path / "train" / "train_run"  # train_<run_dir name>
    cursors = [DataCursor.from_json(p.read_text()) for p in run_root.glob(f"checkpoint_*/{CURSOR_FILE}")]
    assert [c.step for c in cursors] == [resumed]
    cursor = cursors[0]
    assert cursor.n_consumed() == resumed * WORLD * MICRO and cursor.samples_per_rank == (resumed * MICRO,) * WORLD
    shards = list(run_root.glob(f"checkpoint_*/deepspeed/{cursor.tag}/*optim_states.pt"))
    assert len(shards) == WORLD

    # decodes: the first attempt decoded (at least) what it trained on; the restart decoded exactly
    # the samples the step-2 cursor had not consumed, each once, and never the consumed ones
    log = [json.loads(line) for line in (run_dir / DECODE_LOG).read_text().splitlines()]
    first = [r for r in log if r["attempt"] == 0 and r["stream"] == "full"]
    after = [r for r in log if r["attempt"] >= 1 or r["stream"] == "resume"]
    assert all(r["stream"] == "resume" and r["attempt"] == 1 and r["from_step"] == resumed for r in after)
    redecoded = [r[SAMPLE_INDEX] for r in after]
    assert len(redecoded) == len(set(redecoded)) == N_ROWS - resumed * WORLD * MICRO
    consumed_before_resume = set(range(N_ROWS)) - set(redecoded)
    assert len(consumed_before_resume) == resumed * WORLD * MICRO
    assert consumed_before_resume == cursor.consumed_set()  # exactly what the cursor recorded
    assert consumed_before_resume <= {r[SAMPLE_INDEX] for r in first}  # decoded once, before the kill
    print(
        f"\nresumed at step {resumed}; decodes: attempt 0 {len(first)}, after restart {len(after)} "
        f"(of {N_ROWS} rows; {len(consumed_before_resume)} consumed rows not decoded again)"
    )
