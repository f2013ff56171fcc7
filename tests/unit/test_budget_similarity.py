"""`similarity` predictor on real clips with known colour changes, through the real thumbnail decode."""

import numpy as np
import pytest

from videosft import schema as S
from videosft.budget import BudgetConfig, get_predictor, predictor_from_config
from videosft.budget.similarity import (
    build_tiny_dinov2,
    consecutive_distances,
    count_segments,
    pixel_embeddings,
    segments_to_budget,
)
from videosft.budget.stage import RowPreparer
from videosft.data.synthetic import render, write_mp4

SIZE, T = 64, 24


def _clip(path, colours_by_frame):
    frames = np.stack(
        [render([("square", c, SIZE / 2, SIZE / 2, 0.3 * SIZE)] if c else [], SIZE) for c in colours_by_frame]
    )
    write_mp4(path, frames, fps=8.0)
    return {S.ID: path.stem, S.MEDIA_TYPE: S.MEDIA_VIDEO, S.MEDIA_PATH: str(path), S.QUESTION: "q"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return [
        _clip(d / "static.mp4", ["red"] * T),
        _clip(d / "three.mp4", ["red"] * 8 + ["green"] * 8 + ["blue"] * 8),  # thumbnails 0,3,..,21: 3 runs
        _clip(d / "blink.mp4", [None] * 9 + ["yellow"] * 6 + [None] * 9),  # dark, yellow, dark
    ]


@pytest.fixture(scope="module")
def thumbnails(clips):
    cfg = BudgetConfig(predictor="similarity", num_thumbnails=8)
    prepare = RowPreparer(predictor_from_config(cfg), cfg)
    rows = prepare(clips)
    prepare.decoder.decoder.close()
    return rows


def test_thumbnails_are_small_nested_frames(thumbnails):
    for row in thumbnails:
        assert row[S.ERROR] == "" and row[S.FRAMES].shape == (8, 56, 56, 3)
        assert row[S.FRAME_INDICES].tolist() == [0, 3, 6, 9, 12, 15, 18, 21]


def test_pixel_embedding_counts_the_colour_segments(thumbnails):
    counts = [count_segments(pixel_embeddings(r[S.FRAMES]), 0.02) for r in thumbnails]
    assert counts == [1, 3, 3]


def test_predictor_maps_segments_to_candidates(thumbnails):
    p = get_predictor("similarity", candidates=[1, 2, 4, 8, 16], default=8)
    got = p.predict(thumbnails + [{S.MEDIA_TYPE: S.MEDIA_IMAGE}])
    assert [g.budget for g in got] == [1, 4, 4, 1] and not any(g.fell_back for g in got)
    assert got[1].raw == "3 segments (pixels)"
    custom = get_predictor("similarity", candidates=[1, 2, 4, 8, 16], default=8, segment_thresholds=[1, 1, 2, 4])
    assert [g.budget for g in custom.predict(thumbnails)] == [1, 8, 8]


def test_missing_thumbnails_fall_back():
    p = get_predictor("similarity", candidates=[1, 2, 4], default=2)
    empty = np.zeros((0, 1, 1, 3), np.uint8)
    got = p.predict([{S.MEDIA_TYPE: S.MEDIA_VIDEO, S.FRAMES: empty, S.ERROR: "decode: gone"}])
    assert (got[0].budget, got[0].fell_back) == (2, True) and "decode: gone" in got[0].raw


@pytest.mark.parametrize(
    "count, thresholds, want",
    [
        (1, None, 1),
        (3, None, 4),
        (40, None, 16),
        (0, None, 1),
        (1, [1, 2, 3, 5], 1),
        (2, [1, 2, 3, 5], 2),
        (3, [1, 2, 3, 5], 4),
        (5, [1, 2, 3, 5], 8),
        (6, [1, 2, 3, 5], 16),
    ],
)
def test_segments_to_budget(count, thresholds, want):
    assert segments_to_budget(count, [1, 2, 4, 8, 16], thresholds) == want


def test_distances_handle_zero_vectors():
    emb = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    assert consecutive_distances(emb).tolist() == [0.0, 1.0, 2.0]
    assert count_segments(np.zeros((0, 4)), 0.1) == 0


def test_tiny_dinov2_embedding_runs_and_yields_candidates(tmp_path, thumbnails):
    path = build_tiny_dinov2(tmp_path / "dino", seed=0)
    cfg = BudgetConfig(predictor="similarity", embedding="dinov2", model_path=str(path), distinct_threshold=1e-4)
    got = predictor_from_config(cfg).predict(thumbnails)
    assert all(g.budget in cfg.candidates and not g.fell_back for g in got)
    assert got[0].budget == 1  # identical frames embed identically whatever the weights
    assert got[1].budget > 1  # a random encoder still tells red from green
    with pytest.raises(ValueError, match="budget.model_path"):
        get_predictor("similarity", candidates=[1, 2], default=1, embedding="dinov2")
