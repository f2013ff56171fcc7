"""verbs.fan_out (the alignment / attention verbs' fan-out): several checkpoints run as one Ray task
each, in worker processes; a single CPU call stays in this process (no Ray task)."""

import os

import pytest

from videosft.verbs import fan_out

pytestmark = pytest.mark.ray


def test_fan_out_runs_one_task_per_call(local_ray):
    def where(label):  # defined here: pickled by value, so workers need not import this module
        import os

        return label, os.getpid()

    out = fan_out(where, [("base",), ("budget_2",)], "cpu")
    assert [label for label, _ in out] == ["base", "budget_2"]
    assert all(pid != os.getpid() for _, pid in out)
    assert fan_out(where, [("only",)], "cpu") == [("only", os.getpid())]
