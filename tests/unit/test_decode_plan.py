"""Seek plans (pure): each GOP decoded at most once, dense requests read in one pass, gap rule
when no keyframe list is known."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videosft.data import seek_plan as P
from videosft.data.seek_plan import Read, plan_reads


def test_keyframe_at_or_before():
    keys = [0, 250, 500]
    assert [P.keyframe_at_or_before(keys, i) for i in (0, 249, 250, 251, 999)] == [0, 0, 250, 250, 500]
    assert P.keyframe_at_or_before([30, 60], 10) == 0  # before the first keyframe: stream start
    assert P.keyframe_at_or_before([], 10) == 0


def test_sparse_long_gop_seeks_once_per_gop():
    plan = plan_reads([749, 10, 260, 100, 600, 610, 610], [0, 250, 500, 750])
    assert plan == [Read(False, 0, (10, 100)), Read(True, 250, (260,)), Read(True, 500, (600, 610, 749))]
    assert P.frames_decoded(plan) == 101 + 11 + 250


def test_dense_request_is_one_sequential_pass():
    plan = plan_reads(range(0, 1000, 5), [0, 250, 500, 750])
    assert plan == [Read(False, 0, tuple(range(0, 1000, 5)))]
    assert P.frames_decoded(plan) == 996


def test_min_skip_boundary():
    # after frame 10, the keyframe at 20 skips 9 frames (11..19): seek only when that is > min_skip
    assert [r.seek for r in plan_reads([10, 25], [0, 20], min_skip=9)] == [False]
    assert [r.seek for r in plan_reads([10, 25], [0, 20], min_skip=8)] == [False, True]


def test_keyframe_already_passed_keeps_decoding():
    # 240 and 260 share nothing but the next keyframe (250) is only 9 frames ahead of 240
    assert plan_reads([100, 240, 260], [0, 250], min_skip=9) == [Read(False, 0, (100, 240, 260))]


def test_first_read_starts_at_stream_start_or_seeks():
    assert plan_reads([5], [0, 100]) == [Read(False, 0, (5,))]
    assert plan_reads([105], [0, 100]) == [Read(True, 100, (105,))]
    assert plan_reads([5], [30, 60]) == [Read(False, 0, (5,))]  # no keyframe 0 listed


def test_edge_inputs():
    assert plan_reads([], [0, 10]) == [] and plan_reads([], None) == []
    with pytest.raises(ValueError, match="negative frame index -3"):
        plan_reads([4, -3], [0])
    assert plan_reads([7], [-5, 0, 3]) == [Read(False, 0, (7,))]  # negative keyframes ignored


def test_gap_rule_without_keyframes():
    plan = plan_reads([0, 1, 40, 200, 210, 500], None)
    assert [r.indices for r in plan] == [(0, 1, 40), (200, 210), (500,)]
    assert [r.seek for r in plan] == [False, True, True]
    assert [r.start for r in plan] == [0, None, None] and P.frames_decoded(plan) is None
    assert plan_reads([60, 70], None, gap=48) == [Read(True, None, (60, 70))]
    assert plan_reads([48], None, gap=48) == [Read(False, 0, (48,))]


def test_earlier_start():
    assert P.earlier_start([0, 250, 500], 500) == 250
    assert P.earlier_start([0, 250, 500], 250) == 0
    assert P.earlier_start(None, 101) == 50
    assert P.earlier_start(None, 0) == 0 and P.earlier_start([0, 9], 0) == 0


def _brute_cost(wanted: list[int], keys: list[int]) -> int:
    """Frames decoded seeking to the keyframe before every wanted frame, as brute samplers do."""
    return sum(w - P.keyframe_at_or_before(keys, w) + 1 for w in wanted)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2000), max_size=60), st.lists(st.integers(0, 2000), max_size=20), st.integers(0, 30))
def test_plan_properties(wanted, keyframes, min_skip):
    plan = plan_reads(wanted, keyframes, min_skip=min_skip)
    keys = sorted(set(keyframes))
    flat = [i for read in plan for i in read.indices]
    assert flat == sorted(set(wanted))  # every wanted frame once, in order
    position = -1
    for number, read in enumerate(plan):
        assert read.indices and list(read.indices) == sorted(read.indices)
        assert read.seek == (number > 0 or read.start > 0)
        if read.seek:  # a seek lands on the keyframe before its first frame, well past the last
            assert read.start == P.keyframe_at_or_before(keys, read.indices[0])
            assert read.start - (position + 1) > min_skip
        position = read.indices[-1]
    unique = sorted(set(wanted))
    cost = P.frames_decoded(plan)
    assert cost <= (unique[-1] + 1 if unique else 0)  # never worse than one sequential pass
    # nor than a seek per frame, but for frames decoded on to dodge seeks (min_skip at most)
    assert cost <= _brute_cost(unique, keys) + min_skip * len(unique)
    spans = [(r.start, r.indices[-1]) for r in plan]
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:]))  # no frame decoded twice
