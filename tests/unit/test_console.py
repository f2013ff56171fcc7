"""The console: Ray-like output (Python prints, child processes, fd-level writes) lands in the run's
log file, the person sees the log path once, one line per finished stage and the summary; an
error still reaches the terminal in full, after the descriptors are restored. Real subprocesses,
because the redirect works on file descriptors (pytest's capture is not fd 1)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from videosft.console import StageBars
from videosft.progress import progress_dir, read_progress, write_progress

SCRIPT = textwrap.dedent("""
    import os, subprocess, sys, time
    from videosft.console import Console
    from videosft.progress import write_progress

    run = sys.argv[1]
    with Console("demo", run) as con:
        con.watch(run)
        print("python noise from a library")
        os.write(2, b"C++ core worker noise\\n")
        subprocess.run([sys.executable, "-c", "print('a Ray worker streaming to the driver')"])
        for step in (0, 2, 4):
            write_progress(run, "train budget_2", step, 4, "steps")
            time.sleep(0.7)
        con.summary(["| table | row |"])
        if len(sys.argv) > 2:
            raise RuntimeError("trial failed: " + "x" * 300)
""")


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "run"), *extra], capture_output=True, text=True, timeout=120
    )


def test_quiet_console_sends_ray_output_to_the_log(tmp_path):
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    shown = proc.stdout + proc.stderr
    for noise in ("python noise", "C++ core worker", "a Ray worker"):
        assert noise not in shown
    (log,) = (tmp_path / "run" / "logs").glob("demo-*.log")
    text = log.read_text()
    assert "python noise" in text and "C++ core worker noise" in text and "a Ray worker streaming" in text
    assert shown.count(str(log)) == 1  # the path, printed once
    assert "train budget_2: 4/4 steps" in proc.stderr  # a pipe: one line per stage, when it ends
    assert proc.stdout.splitlines()[-1] == "| table | row |" and "videosft demo: done in" in proc.stdout
    assert len(shown.strip().splitlines()) <= 4, shown


def test_an_error_reaches_the_terminal_in_full(tmp_path):
    proc = _run(tmp_path, "fail")
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "RuntimeError: trial failed: " + "x" * 300 in proc.stderr
    assert "failed; Ray, Tune and Train output in" in proc.stderr
    assert "python noise" not in proc.stderr


def test_stage_lines_skip_stale_records_and_report_rate(tmp_path):
    import io
    import time

    write_progress(tmp_path, "eval old_run", 5, 5, "rows")  # an earlier run's record
    for rec in read_progress(tmp_path):
        assert rec["stage"] == "eval old_run"
    stream = io.StringIO()
    bars = StageBars(tmp_path, stream, since=time.time())
    bars.poll()
    assert not bars.bars and not bars.finished
    write_progress(tmp_path, "eval budget_4", 3, 8, "rows")
    bars.poll()
    assert bars.done["eval budget_4"] == 3 and "eval budget_4" not in bars.finished
    write_progress(tmp_path, "eval budget_4", 8, 8, "rows")
    bars.poll()
    assert "eval budget_4" in bars.finished and "eval budget_4: 8/8 rows in" in stream.getvalue()
    assert (progress_dir(tmp_path) / "eval_budget_4.json").exists()


def test_a_stage_elsewhere_reports_to_the_console_and_a_repeated_stage_gets_a_new_bar(tmp_path, monkeypatch):
    import io
    import time

    from videosft.progress import PROGRESS_ENV

    shown, elsewhere = tmp_path / "run", tmp_path / "cache" / "base-build"
    monkeypatch.setenv(PROGRESS_ENV, str(progress_dir(shown)))  # what Console.watch sets
    stream = io.StringIO()
    bars = StageBars(shown, stream, since=time.time() - 1)
    write_progress(elsewhere, "stage-1 base training", 10, 10, "steps")  # e.g. the demo's cached base
    bars.poll()
    assert "stage-1 base training: 10/10 steps" in stream.getvalue()
    assert read_progress(elsewhere) and read_progress(shown)
    time.sleep(0.01)
    write_progress(shown, "stage-1 base training", 2, 10, "steps")  # the same stage again (a study's next seed)
    bars.poll()
    assert bars.done["stage-1 base training"] == 2 and "stage-1 base training" not in bars.finished
