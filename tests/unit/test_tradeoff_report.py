"""Trade-off report: deltas against the base at the same evaluation budget, tables, HTML, re-render."""

import base64
import json
import re

from report_data import scores, trial

from videosft.analysis.report import report_from_run_dir, write_report
from videosft.analysis.tables import benchmark_table, compute_table, hybrid_table
from videosft.analysis.tradeoff import best_budgets, score_ci, tradeoff_rows
from videosft.config import load_config


def _scores(img, vid):
    return {
        "synthetic_image": {"overall": img, "modality": "image"},
        "synthetic_video": {"overall": vid, "modality": "video"},
    }


def test_rows_compare_each_trial_to_the_base_at_its_budget(tmp_path):
    cfg = load_config(None, ["sweep.frame_budgets=[2, 4]"])
    base = {2: _scores(50.0, 20.0), 4: _scores(50.0, 30.0)}
    trials = [
        {"frame_budget": 4, "scores": _scores(40.0, 45.0), "data": {"rejected": 1}, "train": {"loss": 1.5}},
        {"frame_budget": 2, "scores": _scores(48.0, 25.0), "data": {"rejected": 0}, "train": {"loss": 2.0}},
    ]
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


# ---------------------------------------------------------------- the full report (realistic summaries)
BENCHES = ["synthetic_image", "mme", "synthetic_video", "mvbench"]
OVERRIDES = ["sweep.frame_budgets=[2, 4, 8]", f"eval.benchmarks={json.dumps(BENCHES)}"]


def _study():
    """Base at each budget, three fixed budgets and a hybrid trial (mean 3.2 frames)."""
    base = {
        b: scores({"synthetic_image": 60.0, "mme": 70.0, "synthetic_video": 20.0 + b, "mvbench": 30.0}, b, ci=True)
        for b in (2, 4, 8)
    }
    trials = [
        trial(8, {"synthetic_image": 50.0, "mme": 62.0, "synthetic_video": 40.0, "mvbench": 41.0}, rejected=2, ci=True),
        trial(2, {"synthetic_image": 59.0, "mme": 69.0, "synthetic_video": 25.0, "mvbench": 33.0}, ci=True),
        trial(4, {"synthetic_image": 55.0, "mme": 66.0, "synthetic_video": 35.0, "mvbench": 38.0}),
        trial(
            "hybrid", {"synthetic_image": 58.0, "mme": 68.0, "synthetic_video": 36.0, "mvbench": 39.0}, mean_frames=3.2
        ),
    ]
    return load_config(None, OVERRIDES), base, trials


def test_rows_average_modalities_and_delta_every_benchmark():
    cfg, base, trials = _study()
    rows = tradeoff_rows(cfg, base, trials)
    assert [r["frame_budget"] for r in rows] == [2, 4, 8, "hybrid"]  # fixed numerically, named after
    r8 = rows[2]
    assert (
        r8["image"] == 56.0 and r8["base_image"] == 65.0 and r8["delta_image"] == -9.0
    )  # mean(50, 62) vs mean(60, 70)
    assert r8["video"] == 40.5 and r8["base_video"] == 29.0 and r8["delta_video"] == 11.5  # base video = mean(28, 30)
    assert r8["delta_mme"] == -8.0 and r8["delta_synthetic_video"] == 12.0 and r8["delta_mvbench"] == 11.0
    assert r8["ci_mme"] == (58.0, 66.0) and rows[1]["ci_mme"] is None
    hybrid = rows[3]
    assert hybrid["frames"] == 3.2 and hybrid["base_eval_budget"] == 4  # nearest base budget to its mean
    assert hybrid["delta_synthetic_video"] == 36.0 - 24.0
    assert best_budgets(rows) == {"tiny-qwen2_5_vl": {"video": 8, "image": 2, "balanced": "hybrid"}}


def test_score_ci_accepts_every_spelling_and_tolerates_absence():
    assert score_ci({"overall": 50.0}) is None
    assert score_ci({"ci": {"low": 1.0, "high": 2.0, "level": 0.95, "n_clusters": 32}}) == (
        1.0,
        2.0,
    )  # evaluate_model's
    assert score_ci({"low": 1.0, "high": 2.0}) is None  # bare low/high outside `ci` mean something else
    assert score_ci({"ci": {"ci95": [1.0, 2.0]}}) == (1.0, 2.0)
    assert score_ci({"ci": {"ci_low": 1.0, "ci_high": 2.0}}) == (1.0, 2.0)
    assert score_ci({"ci": [1, 2]}) == (1.0, 2.0)
    assert score_ci({"ci_low": 1.0, "ci_high": 2.0}) == (1.0, 2.0)


def test_tables_show_intervals_hybrid_and_compute():
    cfg, base, trials = _study()
    rows = tradeoff_rows(cfg, base, trials)
    bench = benchmark_table(cfg, base, trials, rows)
    by_label = {r[0]: r for r in bench.rows}
    assert by_label["8"][1:] == [
        "50.0 [46.0, 54.0] (-10.0)",
        "62.0 [58.0, 66.0] (-8.0)",
        "40.0 [36.0, 44.0] (+12.0)",
        "41.0 [37.0, 45.0] (+11.0)",
    ]
    assert by_label["4"][1] == "55.0 (-5.0)"  # no interval in its scores: none shown
    assert by_label["base (eval 4 frames)"][1] == "60.0 [56.0, 64.0]"
    hyb = {r[0]: r for r in hybrid_table(cfg, trials, rows).rows}
    assert list(hyb) == ["2", "4", "8", "hybrid"]
    assert hyb["hybrid"][1:4] == ["per-sample", "3.2", "64"] and hyb["2"][1:3] == ["fixed", "2.0"]
    comp = {r[0]: r for r in compute_table(cfg, trials).rows}
    assert comp["8"][1:] == ["1.2M", "800", "160", "128,000", "360.0", "36.0", "CPU-h", "0.1100", "0.450"]


def test_report_writes_markdown_and_self_contained_html(tmp_path):
    cfg, base, trials = _study()
    md = write_report(cfg, base, trials, tmp_path).read_text()
    assert "| 8 | 56.0 | -9.0 | 40.5 | +11.5 | 2.0 | 2 |" in md
    assert "| hybrid | 63.0 | -2.0 | 37.5 | +10.5 | 2.0 | 0 |" in md  # compared with the 4-frame base
    assert "Best budget for `tiny-qwen2_5_vl`: video 8, image 2" in md
    assert "`84d8ff962cb5`" in md and "Hybrid-Frame vs fixed budgets" in md
    assert "evaluation protocol `lmms_eval` (lmms-eval 0.7.3" in md
    html = (tmp_path / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 4
    assert all(base64.b64decode(img).startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    assert "<img" in html and 'src="fig' not in html and "tradeoff.png" not in html  # nothing linked
    for label in ("2", "4", "8", "hybrid"):
        assert f"<tr><td>{label}</td>" in html
    assert "56.0" in html and "+11.5" in html and "[46.0, 54.0]" in html

    (tmp_path / "report.md").unlink()
    (tmp_path / "report.html").unlink()
    assert report_from_run_dir(tmp_path).read_text() == md
    assert (tmp_path / "report.html").read_text() == html


def test_old_summaries_without_model_compute_or_intervals_still_render(tmp_path):
    cfg = load_config(None, ["sweep.frame_budgets=[2]"])
    base = {2: _scores(50.0, 20.0)}
    text = write_report(cfg, base, [{"frame_budget": 2, "scores": _scores(40.0, 30.0)}], tmp_path).read_text()
    assert "| 2 | 40.0 | -10.0 | 30.0 | +10.0 | – | 0 |" in text
    assert "<td>2</td>" in (tmp_path / "report.html").read_text()
