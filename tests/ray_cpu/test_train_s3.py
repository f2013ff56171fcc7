"""Ray Train storage on object storage, end to end: `train.storage_path=s3://...` against moto's S3
server over real HTTP (pyarrow's S3 filesystem, as on a cluster with an instance role).

A 2-worker ZeRO-2 run checkpoints to the bucket, rank 1 dies hard at step 3, Ray Train restarts
the group from the step-2 checkpoint it reads back from the bucket, and after the run the ZeRO
shards are gone from the bucket (train.keep_zero_checkpoints=false) while the consolidated
safetensors checkpoint is copied next to the trial.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from videosft.config import load_config
from videosft.train.checkpoint import CURSOR_FILE, DS_DIR
from videosft.train.run import train_at_budget
from videosft.train.trainer import FAULT_ENV
from videosft.workspace import prepare_inputs

moto_server = pytest.importorskip("moto.server", reason="moto[server] not installed")
boto3 = pytest.importorskip("boto3")

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.ray, pytest.mark.slow]
STEPS, EVERY, KILL_AT, BUCKET = 4, 2, 3, "videosft-runs"


@pytest.fixture()
def s3_ray(monkeypatch):
    """A moto S3 endpoint, and a local Ray whose workers see it the way the driver does (env)."""
    import ray

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {**env, "DS_ACCELERATOR": "cpu", "TOKENIZERS_PARALLELISM": "false"}},
    )
    try:
        yield f"s3://{BUCKET}"
    finally:
        ray.shutdown()
        server.stop()


def _keys(prefix: str) -> list[str]:
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def test_train_checkpoints_on_s3_resume_from_there_and_drop_their_zero_shards(s3_ray, tmp_path, monkeypatch):
    cfg = load_config(
        REPO / "jobs/configs/ci.yaml",
        [
            f"output_dir={tmp_path}",
            "data.synthetic.n_train_video=12",
            "data.synthetic.n_train_image=4",
            "data.synthetic.num_frames=8",
            "data.frame_cache=false",
            "data.stream_train=true",
            "data.cpus_per_decoder=0.4",
            f"train.max_steps={STEPS}",
            "train.micro_batch_size=2",
            "train.num_workers=2",
            f"train.checkpoint_every={EVERY}",
            "train.max_failures=2",
            "train.zero_stage=2",
            "train.keep_zero_checkpoints=false",  # (ci.yaml keeps them for the local resume test)
            f"train.storage_path={s3_ray}/train",
            "sweep.frame_budgets=[2]",
        ],
    )
    inputs = prepare_inputs(cfg)
    marker = tmp_path / "fault_fired.json"
    monkeypatch.setenv(FAULT_ENV, f"1:{KILL_AT}:{marker}")
    run_dir = tmp_path / "run"
    before = _keys("train/")

    outcome, stats = train_at_budget(cfg, inputs, 2, run_dir)

    assert before == [] and json.loads(marker.read_text())["step"] == KILL_AT
    # the consolidated checkpoint came back next to the trial, whole
    local = Path(outcome.checkpoint_path)
    assert local == run_dir / "checkpoint" and (local / "model.safetensors").stat().st_size > 0
    meta = json.loads((local / "videosft_meta.json").read_text())
    assert meta["steps"] == STEPS and meta["resumed_from_step"] == KILL_AT - KILL_AT % EVERY == 2
    assert [h["step"] for h in meta["history"]] == list(range(1, STEPS + 1))
    # in the bucket: the run's results and checkpoints; the resumable one kept its cursor (what the
    # restart read) but not its ZeRO shards; the final one holds the same safetensors
    keys = _keys("train/train_run/")
    checkpoints = sorted({k.split("/")[2] for k in keys if re.match(r"checkpoint_\d{4}-", k.split("/")[2])})
    assert len(checkpoints) == 2, keys
    cursors = [k for k in keys if k.endswith(CURSOR_FILE)]
    assert len(cursors) == 1 and json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key=cursors[0])["Body"].read())
    assert not [k for k in keys if f"/{DS_DIR}/" in k]  # train.keep_zero_checkpoints=false
    remote = [k for k in keys if k.endswith("model.safetensors")]
    assert len(remote) == 1
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=remote[0])["Body"].read()
    assert body == (local / "model.safetensors").read_bytes()
    assert stats.total == 16 and stats.rejected == 0
    size = sum(o["Size"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="train/")["Contents"])
    print(f"\ns3 storage: {len(keys)} objects, {size / 1e6:.1f} MB in the bucket after the run; resumed from step 2")
