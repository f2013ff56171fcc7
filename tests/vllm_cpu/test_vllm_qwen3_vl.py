"""Qwen3-VL on vLLM's CPU backend: the same prompts, tokens and first-step log-probabilities as
transformers, for images, text and videos of several lengths and sampled rates.

The tiny checkpoint (head_dim 32, interleaved mRoPE, two deepstack taps) is re-drawn at a larger
weight scale so greedy answers depend on the input. Prompt token ids must be identical: that holds
the timestamp text (`<t seconds>` per temporal group, from the contract's sampled fps sent as clip
metadata), the released layout without outer vision markers (`qwen3_vl.released_video_layout`,
applied by both engines) and the 1-frame padding. Greedy tokens identical and log-probabilities
within the Qwen2.5-VL parity's 1e-4 (float32 both; kernel accumulation order only) hold the
positions (interleaved mRoPE, text after each group at max + 1) and the deepstack additions.
"""

from __future__ import annotations

import gc
import json
import re
from collections import defaultdict

import numpy as np
import pytest
from vllm_fixtures import max_logprob_gap, rescale_weights

from videosft import schema as S

TOL = 1e-4
TOP = 5
# (frames, sampled fps): odd counts pad their last group, 1 frame pads to 2, fps sets the timestamps
VIDEOS = [(1, 1.0), (2, 2.0), (3, 0.5), (4, 2.5), (5, 3.0), (8, 1.0)]


def _rows():
    rng = np.random.default_rng(0)
    rows = []
    specs = [("image", 1, 0.0), ("image", 1, 0.0), ("text", 0, 0.0), ("text", 0, 0.0)]
    specs += [("video", n, fps) for n, fps in VIDEOS]
    for i, (media, t, fps) in enumerate(specs):
        side = 56 if i % 2 else 84
        frames = rng.integers(0, 256, (t, side, side, 3), dtype=np.uint8) if t else np.zeros((0, 1, 1, 3), np.uint8)
        rows.append(
            {
                S.ID: f"r{i}",
                S.MEDIA_TYPE: media,
                S.QUESTION: f"What colour is shape {i}?" + " more" * (i % 3),
                S.FRAMES: frames,
                S.SAMPLED_FPS: fps,
            }
        )
    return rows


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    from videosft.engines import TransformersEngine, VLLMEngine
    from videosft.models.registry import get_family

    path = rescale_weights(str(get_family("qwen3_vl").build_tiny(tmp_path_factory.mktemp("qwen3"), seed=0)), "qwen3_vl")
    rows = _rows()
    hf = TransformersEngine(path, "qwen3_vl", max_new_tokens=5, batch_size=4)
    hf_out = hf.greedy(rows, top_logprobs=TOP)
    engine = VLLMEngine(path, "qwen3_vl", max_new_tokens=5, max_frames=8)
    try:
        vl_out = engine.greedy(rows, top_logprobs=TOP)
    finally:
        del engine
        gc.collect()
    return rows, hf, hf_out, vl_out


def _label(row):
    if row[S.MEDIA_TYPE] != S.MEDIA_VIDEO:
        return row[S.MEDIA_TYPE]
    return f"video {len(row[S.FRAMES])}f@{float(row[S.SAMPLED_FPS]):g}fps"


def test_prompt_token_ids_are_identical_and_carry_the_timestamps(compared):
    from videosft.models.qwen3_vl_positions import timestamp_text, timestamps

    rows, hf, _, vl = compared
    tok = hf.processor.tokenizer
    for row, v in zip(rows, vl):
        assert hf.encode(row)["input_ids"].tolist() == v["prompt_token_ids"], _label(row)
        if row[S.MEDIA_TYPE] == S.MEDIA_VIDEO:
            text = tok.decode(v["prompt_token_ids"])
            stamps = [timestamp_text(s) for s in timestamps(range(len(row[S.FRAMES])), row[S.SAMPLED_FPS])]
            assert text.count("<|vision_start|>") == len(stamps) and all(s in text for s in stamps), text
            assert not re.search(r"<\|vision_start\|><\d", text), text  # no outer marker before a timestamp


def test_greedy_tokens_and_first_logprobs_agree(compared, capsys):
    rows, _, hf, vl = compared
    table = defaultdict(lambda: {"rows": 0, "tokens_equal": 0, "max_abs_dlogprob": 0.0})
    for row, a, b in zip(rows, hf, vl):
        t = table[_label(row)]
        t["rows"] += 1
        t["tokens_equal"] += a["token_ids"] == b["token_ids"]
        t["max_abs_dlogprob"] = max(t["max_abs_dlogprob"], max_logprob_gap(a["first_logprobs"], b["first_logprobs"]))
    with capsys.disabled():
        print("\n[vllm qwen3_vl parity] " + json.dumps(table, indent=None))
    assert len({a["text"] for a in hf}) > 3, [a["text"] for a in hf]  # answers depend on the input
    for label, t in table.items():
        assert t["tokens_equal"] == t["rows"], (label, t)
        assert t["max_abs_dlogprob"] < TOL, (label, t)
