"""Scoring budget predictors against known minimal budgets: hand-computed math and the report."""

import json

import pytest

from videosft import schema as S
from videosft.budget import BudgetPrediction
from videosft.budget.evaluate import plot_predictors, predictors_table, run_predictors_eval, score_predictions
from videosft.data.synthetic import make_synthetic

CANDS = [1, 2, 4, 8, 16]


def test_scores_by_hand():
    rows = [{S.MIN_FRAMES: m} for m in (1, 3, 8, 32, -1)]  # needed (snapped up): 1, 4, 8, 16, unknown
    preds = [
        BudgetPrediction(1, "a"),
        BudgetPrediction(2, "b"),
        BudgetPrediction(16, "c"),
        BudgetPrediction(16, "d", True),
        BudgetPrediction(4, "e", True),
    ]
    s = score_predictions(rows, preds, CANDS, seconds=2.0)
    assert (s["n"], s["n_scored"]) == (5, 4)
    assert s["exact"] == pytest.approx(2 / 4)  # rows 0 and 3
    assert s["under"] == pytest.approx(1 / 4)  # row 1: 2 < 4
    assert s["over"] == pytest.approx(1 / 4)  # row 2: 16 > 8
    assert s["mean_frames"] == pytest.approx((1 + 2 + 16 + 16 + 4) / 5)
    assert s["needed_mean_frames"] == pytest.approx((1 + 4 + 8 + 16) / 4)
    assert s["fallback"] == pytest.approx(2 / 5)
    assert s["samples_per_s"] == pytest.approx(2.5)


def test_empty_and_mismatched_inputs():
    s = score_predictions([], [], CANDS)
    assert s["exact"] is None and s["mean_frames"] is None and s["samples_per_s"] is None
    with pytest.raises(ValueError, match="1 rows but 0 predictions"):
        score_predictions([{S.MIN_FRAMES: 1}], [], CANDS)


def test_table_and_plot(tmp_path):
    s = score_predictions([{S.MIN_FRAMES: 2}], [BudgetPrediction(1, "x")], CANDS, seconds=0.5)
    table = predictors_table({"fixed": s, "none": score_predictions([], [], CANDS)})
    lines = table.strip().splitlines()
    assert lines[0].startswith("| predictor | n | exact %") and len(lines) == 4
    assert "| fixed | 1 | 0.0 | 100.0 | 0.0 | 1.00 | 2.00 | 0.0 | 2.0 |" in table
    assert "| none | 0 | – |" in table
    png = plot_predictors({"fixed": s}, tmp_path / "p.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_predictors_eval_on_the_synthetic_set(tmp_path):
    make_synthetic(tmp_path / "data", n_train_video=8, n_train_image=0, n_eval_video=8, n_eval_image=0)
    specs = [
        "fixed",
        "fps",
        "similarity",
        "text_classifier",
        "oracle",
        ("similarity-strict", {"predictor": "similarity", "distinct_threshold": 0.5}),
    ]
    report = run_predictors_eval(tmp_path / "data", specs, CANDS, tmp_path / "out")
    scores = json.loads((tmp_path / "out" / "predictors.json").read_text())
    assert list(scores) == ["fixed", "fps", "similarity", "text_classifier", "oracle", "similarity-strict"]
    assert scores["oracle"]["exact"] == 1.0 and scores["oracle"]["under"] == 0.0  # scored against itself
    assert scores["fixed"]["mean_frames"] == 4.0  # default: the middle candidate
    assert all(s["n"] == 8 and s["samples_per_s"] > 0 for s in scores.values())
    assert (tmp_path / "out" / "text_classifier.npz").exists()
    assert "| similarity-strict |" in report.read_text()
    assert (tmp_path / "out" / "predictors.png").exists()
    lines = (tmp_path / "out" / "predictions.similarity.jsonl").read_text().splitlines()
    assert len(lines) == 8 and json.loads(lines[0])["frame_budget"] in CANDS
