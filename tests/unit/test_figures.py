"""The study's figures draw from our trial summaries, whatever they hold: every file a valid PNG."""

import json

import pytest
from PIL import Image
from report_data import scores, trial

from videosft.analysis.figures import write_figures
from videosft.analysis.tradeoff import tradeoff_rows
from videosft.config import load_config

PNG = b"\x89PNG\r\n\x1a\n"
FILES = ["tradeoff.png", "fig2_delta_per_benchmark.png", "fig4_delta_by_scale.png", "fig5_score_vs_frames.png"]
BENCHES = ["synthetic_image", "mme", "synthetic_video", "mvbench"]


def _draw(tmp_path, trials, base):
    cfg = load_config(None, [f"eval.benchmarks={json.dumps(BENCHES)}"])
    figures = write_figures(cfg, trials, tradeoff_rows(cfg, base, trials), tmp_path)
    assert [f.path.name for f in figures] == FILES
    for f in figures:
        assert f.path.read_bytes()[:8] == PNG and f.caption
        with Image.open(f.path) as im:
            im.verify()
        with Image.open(f.path) as im:
            assert im.size[0] >= 500 and im.size[1] >= 400
    return figures


def _values(img, vid):
    return {"synthetic_image": img, "mme": img + 10, "synthetic_video": vid, "mvbench": vid + 5}


def _base():
    return {b: scores(_values(60.0, 20.0 + b), b) for b in (2, 4, 8)}


def test_one_model_three_budgets_and_hybrid(tmp_path):
    trials = [trial(b, _values(60.0 - b, 25.0 + 2 * b)) for b in (2, 4, 8)]
    trials.append(trial("hybrid", _values(57.0, 40.0), mean_frames=3.5))
    figures = _draw(tmp_path, trials, _base())
    # one model still yields a Fig. 4 with content: more than a blank canvas compresses to
    assert figures[2].path.stat().st_size > 15_000


def test_several_models_order_by_scale(tmp_path):
    trials = [
        trial(b, _values(55.0, 30.0 + b), model=name, params=params)
        for name, params in (("qwen-7b", 7_000_000_000), ("qwen-3b", 3_000_000_000))
        for b in (2, 8)
    ]
    _draw(tmp_path, trials, _base())


@pytest.mark.parametrize("case", ["single", "missing_scores", "no_trials", "hybrid_only"])
def test_degenerate_sweeps_still_draw(tmp_path, case):
    trials = {
        "single": [trial(4, _values(50.0, 30.0), params=None)],
        "missing_scores": [trial(2, {**_values(50.0, 30.0), "mvbench": None}), trial(4, _values(49.0, 31.0))],
        "no_trials": [],
        "hybrid_only": [trial("hybrid", _values(50.0, 30.0), mean_frames=2.7)],
    }[case]
    _draw(tmp_path, trials, _base())
