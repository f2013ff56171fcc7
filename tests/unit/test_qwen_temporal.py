"""Qwen2.5-VL temporal positions come from the real sampled fps, kept as a float (the int trap).

A 10 s clip sampled at 64 frames is 6.4 fps: 32 temporal grid steps (temporal_patch_size 2), each
0.3125 s apart. Positions are read from the model's own `get_rope_index`.
"""

import numpy as np
import pytest

from videosft.models.positions import second_per_grid_ts, video_step_positions
from videosft.models.registry import get_family

FRAMES, SECONDS = 64, 10.0
FPS = FRAMES / SECONDS  # 6.4 > 2


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    fam = get_family("qwen2_5_vl")
    path = fam.build_tiny(tmp_path_factory.mktemp("qwen_t"), seed=0)
    processor, model = AutoProcessor.from_pretrained(path), AutoModelForImageTextToText.from_pretrained(path)
    frames = np.random.default_rng(0).integers(0, 255, (FRAMES, 28, 28, 3), dtype=np.uint8)
    question = {"type": "text", "text": "Which colour flashed first?"}
    messages = [{"role": "user", "content": [{"type": "video"}, question]}]
    return model, fam.encode(processor, messages, frames, "video", sampled_fps=FPS)


@pytest.fixture
def tokens_per_second(clip):
    """Temporarily change the model's time resolution (positions per second); restored afterwards."""
    cfg = clip[0].config.vision_config
    saved = cfg.tokens_per_second
    yield lambda value: setattr(cfg, "tokens_per_second", value)
    cfg.tokens_per_second = saved


def test_second_per_grid_ts_is_the_float_from_the_contract(clip):
    _, feats = clip
    assert feats["video_grid_thw"].tolist() == [[FRAMES // 2, 2, 2]]
    assert feats["second_per_grid_ts"].dtype == np.float32
    assert feats["second_per_grid_ts"][0] == pytest.approx(2 / FPS) == second_per_grid_ts(2, FPS) == 0.3125
    with pytest.raises(ValueError, match="sampled_fps"):
        second_per_grid_ts(2, 0.0)


def test_every_temporal_grid_step_gets_its_own_position(clip, tokens_per_second):
    model, feats = clip
    # Positions per second high enough to resolve 0.3125 s steps (4 x 0.3125 = 1.25 per step).
    tokens_per_second(4)
    steps = video_step_positions(model, feats)
    assert len(steps) == FRAMES // 2
    assert len(set(steps.tolist())) == FRAMES // 2  # all 32 distinct
    assert steps.tolist() == [int(k * 4 * 0.3125) for k in range(FRAMES // 2)]


def test_released_time_resolution_spans_the_clip(clip):
    """At the released tokens_per_second=2 one position is 0.5 s: 32 steps spread over ~20 positions."""
    model, feats = clip
    assert model.config.vision_config.tokens_per_second == 2
    steps = video_step_positions(model, feats).tolist()
    assert steps == [int(k * 2 * 0.3125) for k in range(FRAMES // 2)]
    assert steps == sorted(steps) and steps[-1] == 19  # ~ tokens_per_second x 10 s
    assert len(set(steps)) == 20


def test_truncating_second_per_grid_ts_to_int_collapses_every_position(clip, tokens_per_second):
    model, feats = clip
    truncated = float(int(2 / FPS))  # 0: the trap
    for tps in (2, 4):
        tokens_per_second(tps)
        assert set(video_step_positions(model, feats, second_per_grid=truncated).tolist()) == {0}
        assert len(set(video_step_positions(model, feats).tolist())) > 1
