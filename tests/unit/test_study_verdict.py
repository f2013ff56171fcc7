"""The study's statistics and verdict, on hand-computed numbers."""

import math

import pytest

from videosft.study.verdict import Point, slope, summarize, t_quantile, verdict


def test_summarize_t_interval_by_hand():
    s = summarize([1.0, 2.0, 3.0])  # mean 2, sd 1, n 3: half width 4.303 / sqrt(3)
    assert s.mean == 2.0
    assert s.high - s.mean == pytest.approx(4.303 / math.sqrt(3))
    assert summarize([5.0]).low is None and not summarize([5.0]).significant_negative


def test_t_quantile_is_conservative_between_table_rows():
    assert t_quantile(11) == t_quantile(10) == 2.228
    assert t_quantile(100) == 1.96
    with pytest.raises(ValueError):
        t_quantile(0)


def test_slope_by_hand():
    s = slope([0, 1, 2, 3], [0.0, -1.0, -2.0, -3.0])
    assert s.mean == pytest.approx(-1.0) and s.low == pytest.approx(-1.0) and s.high == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="two distinct"):
        slope([1, 1], [0, 1])


def _fixed(budget, d_img, d_vid):
    return [Point("fixed", budget, s, i, v) for s, (i, v) in enumerate(zip(d_img, d_vid))]


def test_present_when_both_significant_and_the_cost_grows():
    pts = (_fixed(2, [-1, -2, -1.5], [5, 6, 5.5]) + _fixed(8, [-6, -7, -6.5], [8, 9, 8.5])
           + [Point("hybrid", "hybrid", s, -2.0 - s * 0.1, 8.0) for s in range(3)])
    v = verdict(pts)
    assert v["label"] == "trade-off present"
    assert v["cost_budgets"] == [2, 8] and v["gain_budgets"] == [2, 8]
    assert any("grows" in line for line in v["sentences"])
    hybrid = next(line for line in v["sentences"] if line.startswith("hybrid"))
    assert "less image cost than fixed 8 frames" in hybrid


def test_absent_when_images_do_not_drop():
    v = verdict(_fixed(2, [0.5, 1.0, 0.0], [3, 4, 5]) + _fixed(8, [1, 2, 1.5], [4, 5, 6]))
    assert v["label"] == "trade-off absent" and v["cost_budgets"] == []


def test_not_significant_with_spread_or_one_seed():
    assert verdict(_fixed(2, [-5, 4, -3], [1, -1, 2]) + _fixed(8, [-6, 5, -4], [0, 1, 2]))["label"] == "not significant"
    assert verdict(_fixed(2, [-5], [5]) + _fixed(8, [-9], [9]))["label"] == "not significant"


def test_needs_fixed_trials():
    with pytest.raises(ValueError, match="fixed"):
        verdict([Point("hybrid", "hybrid", 0, 1, 1)])


def test_identical_seeds_give_no_interval():
    s = summarize([-20.8, -20.8])
    assert s.low is None and not s.significant_negative
    assert verdict(_fixed(2, [-5, -5], [5, 5]) + _fixed(8, [-9, -9], [9, 9]))["label"] == "not significant"
