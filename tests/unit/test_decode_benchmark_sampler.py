"""The decode benchmark's CPU split by process kind (benchmarks/decode.py's MemorySampler)."""

from __future__ import annotations

import importlib.util
import multiprocessing as mp
import sys
import time
from pathlib import Path

import psutil
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "decode.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("decode_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


class _Proc:
    """A process as psutil shows it, whose name and command line can vanish (it exited)."""

    def __init__(self, pid: int, cmd: list[str]) -> None:
        self.pid, self.cmd, self.gone, self.reads = pid, cmd, False, 0

    def name(self) -> str:
        self.reads += 1
        if self.gone:
            raise psutil.NoSuchProcess(self.pid)
        return self.cmd[0]

    def cmdline(self) -> list[str]:
        if self.gone:
            raise psutil.NoSuchProcess(self.pid)
        return self.cmd


def test_a_label_survives_the_process_exiting(bench):
    sampler = bench.MemorySampler()
    child = _Proc(11, ["python", "-c", "from multiprocessing.forkserver import main"])
    worker = _Proc(12, ["python", "/site-packages/ray/_private/workers/default_worker.py", "--node-ip-address=x"])
    for proc in (child, worker):
        sampler._label(proc, me=1)
    assert sampler._role == {11: "decoder children (forkserver)", 12: "ray workers (starting)"}
    worker.cmd = ["ray::IDLE"]  # imported: renamed itself
    sampler._label(worker, me=1)
    assert sampler._role[12] == "ray idle workers"
    child.gone = True
    sampler._label(child, me=1)
    assert sampler._role[11] == "decoder children (forkserver)" and child.reads == 1  # not read again
    worker.cmd = ["ray::DecodeStage.__call__()"]  # an idle worker took an actor: read again
    sampler._label(worker, me=1)
    assert sampler._role[12] == "ray actors/tasks (DecodeStage.__call__())"
    worker.gone = True
    sampler._label(worker, me=1)
    assert sampler._role[12] == "ray actors/tasks (DecodeStage.__call__())"


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_an_exited_childs_cpu_stays_with_its_kind(bench):
    sampler = bench.MemorySampler(period_s=0.05, pss_period_s=60)
    sampler.start()
    try:
        ctx = mp.get_context("forkserver")
        proc = ctx.Process(target=_spin, args=(0.6,))
        proc.start()
        proc.join(30)
        time.sleep(0.2)  # samples after the exit
    finally:
        sampler.stop()
    roles = sampler.cpu_by_role
    assert proc.exitcode == 0
    # forkserver and its child are both "decoder children"; the child's last 0.05 s may be unsampled
    assert roles.get("decoder children (forkserver)", 0.0) >= 0.4, roles
    assert roles.get("other", 0.0) < 0.1, roles
