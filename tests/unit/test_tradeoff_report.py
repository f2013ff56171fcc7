"""Trade-off report: deltas against the base at the same evaluation budget, tables, plot, re-render."""

import json

from videosft.analysis.tradeoff import report_from_run_dir, tradeoff_rows, write_report
from videosft.config import load_config


def _scores(img, vid):
    return {"synthetic_image": {"overall": img, "modality": "image"},
            "synthetic_video": {"overall": vid, "modality": "video"}}


def test_rows_compare_each_trial_to_the_base_at_its_budget(tmp_path):
    cfg = load_config(None, ["sweep.frame_budgets=[2, 4]"])
    base = {2: _scores(50.0, 20.0), 4: _scores(50.0, 30.0)}
    trials = [{"frame_budget": 4, "scores": _scores(40.0, 45.0), "data": {"rejected": 1}, "train": {"loss": 1.5}},
              {"frame_budget": 2, "scores": _scores(48.0, 25.0), "data": {"rejected": 0}, "train": {"loss": 2.0}}]
    rows = tradeoff_rows(cfg, base, trials)
    assert [r["frame_budget"] for r in rows] == [2, 4]
    assert rows[0]["delta_image"] == -2.0 and rows[0]["delta_video"] == 5.0
    assert rows[1]["delta_image"] == -10.0 and rows[1]["delta_video"] == 15.0
    assert rows[1]["delta_synthetic_video"] == 15.0

    report = write_report(cfg, base, trials, tmp_path)
    text = report.read_text()
    assert "| 2 | 48.0 | -2.0 | 25.0 | +5.0 | 2.0 | 0 |" in text
    assert "| 4 | 40.0 | -10.0 | 45.0 | +15.0 | 1.5 | 1 |" in text
    assert (tmp_path / "tradeoff.png").stat().st_size > 5000
    assert json.loads((tmp_path / "results.json").read_text())["rows"] == json.loads(json.dumps(rows))

    (tmp_path / "report.md").unlink()
    assert report_from_run_dir(tmp_path).read_text() == text  # re-rendered from results.json alone


def test_fixed_eval_budget_uses_one_base():
    cfg = load_config(None, ["sweep.frame_budgets=[2, 4]", "eval.frame_budget=8"])
    base = {8: _scores(50.0, 20.0)}
    trials = [{"frame_budget": b, "scores": _scores(50.0, 20.0 + b)} for b in (2, 4)]
    assert [r["delta_video"] for r in tradeoff_rows(cfg, base, trials)] == [2.0, 4.0]
