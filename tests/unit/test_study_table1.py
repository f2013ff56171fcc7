"""Table 1 in miniature: rows per predictor and the best learned predictor's paired comparisons."""

import pytest

from videosft.study.table1 import best_learned_sentence, table1, versus
from videosft.study.verdict import TrialOutcomes


def _trial(variant, budget, seed, img_lost, vid_gained, n=100):
    base_image, base_video = {f"im{k}": 1.0 for k in range(n)}, {f"vd{k}": 0.0 for k in range(n)}
    image = {k: (0.0 if j < img_lost + seed else 1.0) for j, k in enumerate(base_image)}
    video = {k: (1.0 if j < vid_gained + seed else 0.0) for j, k in enumerate(base_video)}
    return TrialOutcomes(variant, budget, seed, image, video, base_image, base_video)


def _study():
    trials, rows = [], []
    for seed in range(3):
        for variant, budget, lost, gained, tokens in (
            ("fixed", 1, 5, 10, 4),
            ("fixed", 16, 30, 40, 64),
            ("hybrid", "hybrid", 10, 40, 20),
            ("hybrid-text_classifier", "hybrid", 12, 38, 22),
            ("hybrid-similarity", "hybrid", 20, 25, 40),
        ):
            trials.append(_trial(variant, budget, seed, lost, gained))
            rows.append({"variant": variant, "budget": budget, "visual_tokens_per_sample": tokens})
    scores = {
        "oracle": {"exact": 1.0, "under": 0.0, "over": 0.0, "mean_frames": 6.0},
        "text_classifier": {"exact": 0.9, "under": 0.05, "over": 0.05, "mean_frames": 6.5},
        "similarity": {"exact": 0.4, "under": 0.3, "over": 0.3, "mean_frames": 8.0},
    }
    return trials, rows, scores


def test_table_has_fixed_learned_and_oracle_rows():
    trials, rows, scores = _study()
    lines, data = table1(trials, rows, scores, largest=16)
    assert [line.split(" | ")[0] for line in lines[2:7]] == [
        "| fixed 1",
        "| fixed 16",
        "| similarity",
        "| text_classifier",
        "| oracle",
    ]
    assert "instruction" not in data["rows"]  # it did not run: no row rather than a made-up one
    assert data["rows"]["text_classifier"]["image"]["mean"] == pytest.approx(-13.0)
    assert "| 90.0 | 5.0 | 5.0 | 6.50 |" in lines[5]


def test_best_learned_is_compared_paired_with_fixed_and_oracle():
    trials, _, scores = _study()
    text = best_learned_sentence(trials, scores, largest=16)
    assert text.startswith("Best learned predictor: text_classifier (exact 90.0%")
    d = versus(trials, ("hybrid-text_classifier", "hybrid"), ("hybrid", "hybrid"), "video")
    assert d.mean == pytest.approx(-2.0) and d.n == 3
    assert "vs the oracle" in text and "vs fixed 16 frames" in text
    assert best_learned_sentence(trials, {"oracle": scores["oracle"]}, 16) == "No learned predictor ran."
