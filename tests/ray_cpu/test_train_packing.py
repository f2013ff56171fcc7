"""train.packing end to end: 2 gloo workers under ZeRO-2 train on packed micro-batches.

The two ranks hold different samples, so their windows pack into different numbers of packs; the
loop's per-window agreement (all_reduce MAX, models/packing.py) must keep their micro-batch counts
equal, or the ZeRO gradient reduction would hang. Real parts: synthetic mp4s/pngs, tiny
Qwen2.5-VL, Ray Data stream, Ray Train.
"""

import json
from pathlib import Path

import pytest

from videosft.config import load_config
from videosft.train.run import train_at_budget
from videosft.workspace import prepare_inputs

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.ray, pytest.mark.slow]
STEPS = 3


def test_packed_training_steps_on_two_ranks(local_ray, tmp_path):
    cfg = load_config(
        REPO / "jobs/configs/ci.yaml",
        [
            f"output_dir={tmp_path}",
            f"train.max_steps={STEPS}",
            "train.packing=true",
            "train.max_tokens_per_micro_batch=512",
            "data.bucket_window=4",
            "sweep.frame_budgets=[2]",
        ],
    )
    outcome, stats = train_at_budget(cfg, prepare_inputs(cfg), 2, tmp_path / "run")
    meta = json.loads((Path(outcome.checkpoint_path) / "videosft_meta.json").read_text())
    assert meta["steps"] == STEPS and outcome.metrics["step"] == STEPS
    rows = meta["history"]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert all(r["loss"] == r["loss"] and r["loss"] > 0 for r in rows)  # finite, trained
    per_step = [r["samples_per_s"] * r["window_s"] for r in rows]  # rank 0's samples in its one pack
    assert max(per_step) > 1.5  # packs hold several samples (one micro-batch per step)
