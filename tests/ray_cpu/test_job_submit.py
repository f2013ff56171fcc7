"""A real `ray job submit` of the sweep job to a local head on 127.0.0.1, as users run it on clusters.

The head gets its own ports and temp dir (other Ray clusters may share the machine), token auth is
requested explicitly (Ray 2.60 turns it on when a token file exists; the job CLI must then send it),
and only this head's processes are stopped afterwards (`ray stop` would kill every cluster here).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from local_services import free_port, kill_cluster

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture()
def local_head():
    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    temp_dir = tempfile.mkdtemp(prefix="vsft-rt-", dir="/tmp")  # short: unix socket paths are capped
    gcs, dash = free_port(), free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "DS_ACCELERATOR": "cpu", "RAY_ADDRESS": ""}
    env.pop("RAY_ADDRESS")
    subprocess.run(
        [
            ray_bin,
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={gcs}",
            "--num-cpus=2",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dash}",
            # Every port of its own: another Ray cluster on this machine (a user's, or a study run
            # beside CI) holds the defaults, and a dashboard agent that cannot bind 52365 never
            # registers, so every submission answers "No available agent".
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--ray-client-server-port={free_port()}",
            f"--temp-dir={temp_dir}",
            "--disable-usage-stats",
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=180,
    )
    try:
        yield ray_bin, f"http://127.0.0.1:{dash}", env
    finally:
        kill_cluster(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_sweep_job_submitted_to_a_local_head_succeeds(local_head, tmp_path):
    ray_bin, address, env = local_head
    run_dir = tmp_path / "run"
    sub_id = f"videosft-ci-{int(time.time())}"
    cmd = [
        ray_bin,
        "job",
        "submit",
        "--address",
        address,
        "--submission-id",
        sub_id,
        "--no-wait",
        "--working-dir",
        ".",
        "--runtime-env",
        "clusters/runtime_env.yaml",
        "--",
        "python",
        "jobs/sweep.py",
        "--config",
        "jobs/configs/ci.yaml",
        f"output_dir={run_dir}",
        "sweep.frame_budgets=[1]",
        # the submission path is under test, not the sweep (test_demo_e2e runs it whole): one
        # worker, one step, two items per benchmark, no probes after the trial
        "train.num_workers=1",
        "train.max_steps=1",
        "eval.limit=2",
        "alignment.enabled=false",
        "attention.enabled=false",
    ]
    # A just-started head answers 500 "No available agent to submit job, please try again later"
    # until its dashboard agent registers (seconds; longer on a loaded machine): retry that, and
    # only that, for up to 5 minutes.
    deadline = time.time() + 300
    while True:
        sub = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        if sub.returncode == 0 or "No available agent" not in sub.stdout + sub.stderr or time.time() > deadline:
            break
        time.sleep(15)
    assert sub.returncode == 0, sub.stdout[-3000:] + sub.stderr[-3000:]
    status = ""
    deadline = time.time() + 600
    while time.time() < deadline:
        proc = subprocess.run(
            [ray_bin, "job", "status", "--address", address, sub_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        out = proc.stdout + proc.stderr  # Ray's CLI logger writes the status line to stderr
        # `ray job status` prints "Job '<id>' succeeded" / "... failed" / "... was stopped"
        words = {"succeeded": "SUCCEEDED", "failed": "FAILED", "was stopped": "STOPPED"}
        status = next((v for k, v in words.items() if f"' {k}" in out.lower()), "")
        if status:
            break
        time.sleep(5)
    proc = subprocess.run(
        [ray_bin, "job", "logs", "--address", address, sub_id], env=env, capture_output=True, text=True, timeout=60
    )
    logs = proc.stdout + proc.stderr
    (tmp_path / "job.log").write_text(logs)  # kept for inspection when the job fails
    assert status == "SUCCEEDED", f"job status {status or 'still running'}; log tail:\n{logs[-4000:]}"
    assert f"report: {run_dir}/report.md" in logs
    results = json.loads((run_dir / "results.json").read_text())
    assert [r["frame_budget"] for r in results["rows"]] == [1]
    assert Path(results["trials"][0]["checkpoint"]).is_dir()
