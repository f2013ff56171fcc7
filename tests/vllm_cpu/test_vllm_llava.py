"""The LLaVA families on vLLM's CPU backend: which modalities it serves, and parity with transformers.

- LLaVA-1.5: image, video as frames-as-images (the layout it trains on), text: all served.
- LLaVA-NeXT-Video: video and text only (vLLM 0.32 has no image path for it; an image row fails
  with a message naming the engine). vLLM's video pooler computes image_size // patch_size**2, so
  the tower must be >= 196 px (the 56-px default would divide by zero): built at 196 px here.
Weights are re-drawn at a larger scale so greedy answers depend on the input (random tiny weights
answer "\\n" to everything); the same tolerance as the Qwen2.5-VL parity applies.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
from vllm_fixtures import max_logprob_gap, rescale_weights

from videosft import schema as S

TOL = 1e-4


def _rows(size):
    rng = np.random.default_rng(0)
    rows = []
    for i, (media, t) in enumerate([("image", 1), ("image", 1), ("video", 2), ("video", 4), ("text", 0), ("text", 0)]):
        frames = rng.integers(0, 256, (t, size, size, 3), dtype=np.uint8) if t else np.zeros((0, 1, 1, 3), np.uint8)
        rows.append(
            {
                S.ID: f"r{i}",
                S.MEDIA_TYPE: media,
                S.QUESTION: f"What colour is shape {i}?" + " more" * i,
                S.FRAMES: frames,
                S.SAMPLED_FPS: 2.0 if media == "video" else 0.0,
            }
        )
    return rows


def _compare(path, family, rows):
    from videosft.engines import TransformersEngine, VLLMEngine

    hf = TransformersEngine(path, family, max_new_tokens=5, batch_size=3).greedy(rows, top_logprobs=5)
    engine = VLLMEngine(path, family, max_new_tokens=5, max_frames=8)
    try:
        vl = engine.greedy(rows, top_logprobs=5)
    finally:
        del engine
        gc.collect()
    assert len({a["text"] for a in hf}) > 2, [a["text"] for a in hf]  # answers depend on the input
    for row, a, b in zip(rows, hf, vl):
        assert a["token_ids"] == b["token_ids"], row[S.ID]
        assert max_logprob_gap(a["first_logprobs"], b["first_logprobs"]) < TOL, row[S.ID]


def test_llava_1_5_image_frames_as_images_and_text(tmp_path):
    from videosft.models.llava import build_tiny_1_5

    path = rescale_weights(str(build_tiny_1_5(tmp_path / "llava15", seed=0)), "llava_1_5")
    _compare(path, "llava_1_5", _rows(28))


def test_llava_next_video_video_and_text_and_no_images(tmp_path):
    from videosft.engines import VLLMEngine
    from videosft.models.llava import build_tiny_next_video

    path = rescale_weights(str(build_tiny_next_video(tmp_path / "lnv", seed=0, image_size=196)), "llava_next_video")
    rows = _rows(196)
    _compare(path, "llava_next_video", [r for r in rows if r[S.MEDIA_TYPE] != "image"])
    engine = VLLMEngine.__new__(VLLMEngine)  # the refusal needs no engine start
    from videosft.models.registry import get_family

    engine.family = get_family("llava_next_video")
    with pytest.raises(ValueError, match="video and text rows only"):
        engine.greedy(rows[:1])
