"""An interrupted sweep resumes: kill the sweep's driver (and its local Ray) once Tune has recorded
the first trial as finished, run the same command again, and check that the finished trial was
neither retrained nor re-evaluated, that Tune restored its experiment instead of starting a new
one, and that the report holds every trial.

The sweep runs as `python -m videosft.cli sweep` in its own process group, as a user would run
it, so SIGKILL to the group is a real crash (driver, raylet, workers), not a polite shutdown.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUDGETS = [1, 2]
# jobs/configs/ci.yaml at its smallest: one worker, one optimizer step, two items per benchmark, and
# no gradient-alignment / attention probes after the trials (test_demo_e2e checks those; here they
# only added ~15 s after the resumed trial)
OVERRIDES = [
    "train.num_workers=1",
    "train.max_steps=1",
    "eval.limit=2",
    f"sweep.frame_budgets={json.dumps(BUDGETS)}",
    "alignment.enabled=false",
    "attention.enabled=false",
]
pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _start(out: Path, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DS_ACCELERATOR": "cpu",
        "TOKENIZERS_PARALLELISM": "false",
        "RAY_ADDRESS": "local",  # a fresh local cluster, never one another test started with `ray start`
        "PYTHONPATH": os.pathsep.join([str(REPO / "platform"), os.environ.get("PYTHONPATH", "")]),
    }
    # --verbose: the [sweep] lines this test reads stay on stdout instead of the run's log file
    cmd = [
        sys.executable,
        "-m",
        "videosft.cli",
        "--verbose",
        "sweep",
        "--config",
        str(REPO / "jobs/configs/ci.yaml"),
        f"output_dir={out}",
        *OVERRIDES,
    ]
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _tune_statuses(out: Path) -> dict[str, str]:
    """{trial_id: status} from the newest saved Tune experiment state (empty while none is saved)."""
    # newest by the start time in the name: a restored run rewrites the older files too
    states = sorted((out / "tune").glob("sweep_*/experiment_state-*.json"), key=lambda p: p.name)
    try:
        trials = json.loads(states[-1].read_text())["trial_data"] if states else []
        return {t["trial_id"]: t["status"] for t in (json.loads(raw) for raw, _ in trials)}
    except (ValueError, KeyError, OSError):  # caught mid-write: look again
        return {}


def _wait_for_first_trial(proc: subprocess.Popen, out: Path, log: Path, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"sweep exited (rc {proc.returncode}) before it could be interrupted:\n{log.read_text()[-3000:]}"
            )
        if "TERMINATED" in _tune_statuses(out).values():
            return
        time.sleep(0.5)
    pytest.fail(f"no trial finished within {timeout_s} s:\n{log.read_text()[-3000:]}")


def _snapshot(path: Path) -> dict[str, int]:
    """mtime of every file under path: any retraining or re-evaluation rewrites some of them."""
    return {str(p.relative_to(path)): p.stat().st_mtime_ns for p in sorted(path.rglob("*")) if p.is_file()}


def test_interrupted_sweep_resumes_without_redoing_finished_trials(tmp_path):
    out, log1, log2 = tmp_path / "run", tmp_path / "first.log", tmp_path / "second.log"
    proc = _start(out, log1)
    try:
        _wait_for_first_trial(proc, out, log1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver, its raylet and every worker: a crash
        proc.wait(timeout=60)

    statuses = _tune_statuses(out)
    done = [p.parent.name for p in (out / "trials").glob("budget_*/summary.json")]
    assert len(done) == 1 and list(statuses.values()).count("TERMINATED") == 1, (done, statuses)
    finished = done[0]
    summary_before = (out / "trials" / finished / "summary.json").read_text()
    trial_files = _snapshot(out / "trials" / finished)
    train_files = _snapshot(out / "train" / f"train_{finished}")
    assert not (out / "report.md").exists()

    second = _start(out, log2)
    try:
        rc = second.wait(timeout=420)
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
    text = log2.read_text()
    assert rc == 0, text[-4000:]

    # Tune restored the same experiment: same trials, all finished, none added
    assert "[sweep] resuming Tune experiment" in text
    after = _tune_statuses(out)
    assert sorted(after) == sorted(statuses) and set(after.values()) == {"TERMINATED"}, (statuses, after)
    assert len(list((out / "tune").glob("sweep_*"))) == 1
    # the finished trial was neither retrained nor re-evaluated
    assert (out / "trials" / finished / "summary.json").read_text() == summary_before
    assert _snapshot(out / "trials" / finished) == trial_files
    assert _snapshot(out / "train" / f"train_{finished}") == train_files
    assert f"[sweep] {finished.replace('_', ' ')}: finished" not in text  # Tune did not even start it again

    results = json.loads((out / "results.json").read_text())
    assert sorted(t["frame_budget"] for t in results["trials"]) == BUDGETS
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    for budget in BUDGETS:
        assert f"\n| {budget} |" in md and f"<tr><td>{budget}</td>" in html
    for t in results["trials"]:
        assert t["compute"]["samples_seen"] > 0 and t["model"]["params"] > 0
