"""The study's paired statistics and verdict, on hand-computed numbers and simulated studies."""

import math
import random
import statistics

import pytest

from videosft.study.paired import crossed, paired_matrix, slope_matrix, slope_weights, t80_quantile, t_quantile
from videosft.study.verdict import TrialOutcomes, replication, verdict


def test_crossed_interval_by_hand():
    m = [[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]]  # seed means 2, 4; item means 2, 3, 4
    e = crossed(m)
    v_seed, v_item = statistics.variance([2, 4]) / 2, statistics.variance([2, 3, 4]) / 3
    assert e.mean == 3.0 and e.se == pytest.approx(math.sqrt(v_seed + v_item))
    df = (v_seed + v_item) ** 2 / (v_seed**2 / 1 + v_item**2 / 2)
    assert e.df == pytest.approx(df)
    assert e.high - e.mean == pytest.approx(t_quantile(df) * e.se)
    assert e.mde == pytest.approx((t_quantile(df) + t80_quantile(df)) * e.se)


def test_no_interval_for_one_seed_or_identical_seeds():
    one = crossed([[1.0, -1.0, 0.0]])
    assert one.low is None and "one seed" in one.note and not one.significant_negative
    same = crossed([[-100.0, 0.0, 0.0], [-100.0, 0.0, 0.0]])
    assert same.low is None and same.note == "seeds identical" and "seeds identical" in same.text()
    with pytest.raises(ValueError, match="same items"):
        crossed([[1.0, 2.0], [1.0]])


def test_quantiles_are_conservative_between_table_rows():
    assert t_quantile(11) == t_quantile(10.9) == 2.228
    assert t_quantile(1000) == 1.96 and t80_quantile(1000) == 0.842
    with pytest.raises(ValueError):
        t_quantile(0.5)


def test_paired_matrix_uses_common_items_in_id_order():
    items, m = paired_matrix(
        {0: {"b": 1, "a": 0, "c": 1}, 1: {"a": 1, "b": 1}}, {0: {"a": 1, "b": 0, "c": 0}, 1: {"a": 1, "b": 1, "c": 1}}
    )
    assert items == ["a", "b"] and m == [[-100.0, 100.0], [0.0, 0.0]]


def test_pairing_removes_item_difficulty():
    """The same consistent loss on items of very different difficulty: unpaired intervals would span
    zero (accuracies ~50 % with ±10-point bootstrap bands), the paired one does not."""
    rng = random.Random(0)
    base = {f"i{k}": float(rng.random() < 0.5) for k in range(300)}
    trials = {}
    for s in range(5):
        t = dict(base)
        for k in rng.sample([k for k, v in base.items() if v == 1.0], 15):  # each seed forgets 15 items
            t[k] = 0.0
        trials[s] = t
    e = crossed(paired_matrix(trials, {s: base for s in trials})[1])
    assert e.mean == pytest.approx(-5.0) and e.significant_negative


def test_crossed_interval_covers_the_truth_in_simulated_studies():
    """d = μ + seed + item + noise: the 95 % interval covers μ at least ~95 % of the time."""
    rng, mu, hits, sims = random.Random(1), -3.0, 0, 300
    for _ in range(sims):
        a = [rng.gauss(0, 4) for _ in range(5)]
        b = [rng.gauss(0, 20) for _ in range(60)]
        m = [[mu + a[s] + b[i] + rng.gauss(0, 30) for i in range(60)] for s in range(5)]
        e = crossed(m)
        hits += e.low <= mu <= e.high
    assert hits / sims >= 0.93


def test_slope_is_the_per_item_least_squares_contrast():
    w = slope_weights([1, 4, 16])  # x = 0, 2, 4
    assert w == pytest.approx([-0.25, 0.0, 0.25])  # (x - 2) / 8
    by = {1: [[0.0, 0.0]], 4: [[-2.0, -4.0]], 16: [[-4.0, -8.0]]}  # slopes -1 and -2 per doubling
    assert slope_matrix(by) == [pytest.approx([-1.0, -2.0])]
    with pytest.raises(ValueError, match="two distinct"):
        slope_weights([4, 4])


def _trial(variant, budget, seed, img_lost, vid_gained, n=200, base_img=None):
    """A trial that loses `img_lost` image items and gains `vid_gained` video items vs a fixed base."""
    base_image = base_img or {f"im{k}": 1.0 for k in range(n)}
    base_video = {f"vd{k}": 0.0 for k in range(n)}
    image = {k: (0.0 if j < img_lost else v) for j, (k, v) in enumerate(base_image.items())}
    video = {k: (1.0 if j < vid_gained else v) for j, (k, v) in enumerate(base_video.items())}
    return TrialOutcomes(variant, budget, seed, image, video, base_image, base_video)


def _fixed(budget, lost, gained):
    return [_trial("fixed", budget, s, i, v) for s, (i, v) in enumerate(zip(lost, gained))]


def test_present_when_both_significant_and_the_cost_grows():
    ts = (
        _fixed(2, [10, 12, 11], [30, 32, 31])
        + _fixed(8, [40, 44, 42], [50, 52, 51])
        + [_trial("hybrid", "hybrid", s, 15 + s, 50) for s in range(3)]
    )
    v = verdict(ts)
    assert v["label"] == "trade-off present"
    assert v["cost_budgets"] == [2, 8] and v["gain_budgets"] == [2, 8]
    assert any("grows" in line for line in v["sentences"])
    assert any("Minimum detectable effect" in line for line in v["sentences"])
    hybrid = next(line for line in v["sentences"] if line.startswith("hybrid"))
    assert "less image cost than fixed 8 frames" in hybrid
    assert v["table"]["fixed/8"]["image"]["mean"] == pytest.approx(-21.0)


def test_absent_when_images_do_not_drop():
    def gains(budget, seed, n):  # image items 0..n-1 were wrong in the base and are right now
        t = _trial("fixed", budget, seed, 0, 30 + seed, base_img={f"im{k}": float(k >= 10) for k in range(200)})
        return TrialOutcomes(
            t.variant,
            t.budget,
            t.seed,
            {k: 1.0 if int(k[2:]) < n else v for k, v in t.image.items()},
            t.video,
            t.base_image,
            t.base_video,
        )

    v = verdict([gains(b, s, s) for b in (2, 8) for s in range(3)])
    assert v["label"] == "trade-off absent" and v["cost_budgets"] == []


def test_not_significant_with_one_seed_or_identical_seeds():
    assert verdict(_fixed(2, [20], [20]) + _fixed(8, [60], [40]))["label"] == "not significant"
    assert verdict(_fixed(2, [0], [20]) + _fixed(8, [0], [40]))["label"] == "not significant"  # not "absent"
    same = verdict(_fixed(2, [20, 20], [20, 20]) + _fixed(8, [60, 60], [40, 40]))
    assert same["label"] == "not significant" and same["table"]["fixed/8"]["image"]["note"] == "seeds identical"


def test_needs_fixed_trials_and_distinct_seeds():
    with pytest.raises(ValueError, match="fixed"):
        verdict([_trial("hybrid", "hybrid", 0, 1, 1)])
    with pytest.raises(ValueError, match="seed twice"):
        verdict([_trial("fixed", 2, 0, 1, 1), _trial("fixed", 2, 0, 2, 2)])


def test_replication_agrees_or_is_inconclusive():
    a = {"label": "trade-off present", "seeds": [0, 1, 2]}
    assert replication(a, {"label": "trade-off present", "seeds": [3, 4, 5]})["agree"]
    rep = replication(a, {"label": "not significant", "seeds": [3, 4, 5]})
    assert rep["label"] == "inconclusive" and "not powered" in rep["sentence"]
    with pytest.raises(ValueError, match="disjoint"):
        replication(a, {"label": "trade-off present", "seeds": [2, 3]})


def test_planned_mde_sizes_the_laptop_preset():
    """The issue's numbers: seeds spread by ~7.4 points (28.1 vs 38.5 at 16 frames), a third of the
    items flip. 2 seeds x 96 items detect only costs above ~28 points; 5 x 384 detect ~14."""
    from videosft.study.paired import planned_mde

    old_half, old_mde = planned_mde(2, 96, 7.4, 100 * math.sqrt(0.35))
    new_half, new_mde = planned_mde(5, 384, 7.4, 100 * math.sqrt(0.35))
    assert old_mde > 27.0 and old_half > 20.0
    assert new_mde < 14.0 and new_half < 10.0
