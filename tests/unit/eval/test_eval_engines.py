"""Engines: batched greedy decoding equals per-sample decoding; vLLM requests built without vllm.

Random tiny checkpoints answer "\\n" forever at their initial scale, which would make any two
decodings equal; the weights are re-drawn at a larger scale so answers depend on the input.
"""

import sys

import numpy as np
import pytest
import torch

from videosft import engines as E
from videosft import schema as S
from videosft.engines import clip_metadata, cut_at_eos, left_pad, plan_batches, vllm_request

FAMILIES = ["qwen2_5_vl", "qwen3_vl", "llava_next_video", "llava_1_5"]


def _rows():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(9):
        media = (S.MEDIA_IMAGE, S.MEDIA_VIDEO, S.MEDIA_TEXT)[i % 3]
        t = (1, 2, 4)[i % 3] if media != S.MEDIA_TEXT else 0
        frames = rng.integers(0, 256, size=(t, 56, 56, 3), dtype=np.uint8)
        rows.append(
            {
                S.ID: f"r{i}",
                S.MEDIA_TYPE: media,
                S.QUESTION: f"What colour is shape {i}?" + " more" * (i % 4),
                S.FRAMES: frames,
                S.SAMPLED_FPS: 2.5 if media == S.MEDIA_VIDEO else 0.0,
            }
        )
    return rows


@pytest.fixture(scope="module", params=FAMILIES)
def engine(request, tmp_path_factory):
    from videosft.data.synthetic import corpus
    from videosft.models.registry import get_family

    torch.set_num_threads(1)
    path = get_family(request.param).build_tiny(tmp_path_factory.mktemp(request.param), seed=0, extra_corpus=corpus())
    eng = E.TransformersEngine(str(path), request.param, max_new_tokens=5, batch_size=1)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in eng.model.named_parameters():
            scale, shift = (0.5 if p.dim() > 1 else 0.1), (1.0 if "norm" in name else 0.0)
            p.copy_(torch.randn(p.shape, generator=gen) * scale + shift)
    return eng


def test_batched_greedy_equals_per_sample(engine, monkeypatch):
    rows = _rows()
    engine.batch_size = 1
    single = engine.generate(rows)
    assert len(set(single)) > 3, single  # the outputs really depend on the input
    engine.batch_size = 4
    assert engine.generate(rows) == single  # the family's own batching (mixed media where it allows)
    monkeypatch.setattr(E, "MIXED_MEDIA_FAMILIES", frozenset())
    assert engine.generate(rows) == single  # one media type per batch
    order = [4, 0, 8, 2, 7, 1]
    assert engine.generate([rows[i] for i in order]) == [single[i] for i in order]


def test_generate_calls_the_model_once_per_planned_batch(engine, monkeypatch):
    rows = _rows()
    engine.batch_size = 4
    calls = []
    real = engine.model.generate
    monkeypatch.setattr(engine.model, "generate", lambda **kw: calls.append(kw["input_ids"].shape[0]) or real(**kw))
    engine.generate(rows)
    mix = engine.family.name in E.MIXED_MEDIA_FAMILIES
    assert calls == ([4, 4, 1] if mix else [3, 3, 3])


def test_plan_batches():
    media = ["image", "video", "image", "text", "video", "image"]
    assert plan_batches(media, 2, mix_media=True) == [[0, 1], [2, 3], [4, 5]]
    assert plan_batches(media, 2, mix_media=False) == [[0, 2], [5], [1, 4], [3]]
    assert plan_batches(media, 1, mix_media=True) == [[i] for i in range(6)]
    assert plan_batches([], 4, mix_media=False) == []
    with pytest.raises(ValueError, match="batch_size"):
        plan_batches(media, 0, mix_media=True)


def test_cut_at_eos_and_left_pad():
    assert cut_at_eos([5, 6, 9, 0, 0], frozenset({9})) == [5, 6, 9]
    assert cut_at_eos([5, 6], frozenset({9})) == [5, 6]
    feats = [
        {
            "input_ids": np.array([1, 2, 3]),
            "attention_mask": np.ones(3, np.int64),
            "pixel_values": np.ones((4, 6), np.float32),
        },
        {"input_ids": np.array([7]), "attention_mask": np.ones(1, np.int64)},
    ]
    batch = left_pad(feats, pad_token_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [0, 0, 7]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert tuple(batch["pixel_values"].shape) == (4, 6)


def _render(messages):
    parts = []
    for m in messages:
        for c in m["content"]:
            parts.append(f"<{c['type']}>" if c["type"] != "text" else c["text"])
    return "|".join(parts)


def test_vllm_requests_send_video_as_video_with_the_contract_fps():
    rows = _rows()
    video = vllm_request(rows[1], _render, native_video=True)
    frames, meta = video["multi_modal_data"]["video"]
    assert isinstance(video["multi_modal_data"]["video"], tuple) and frames.shape == (2, 56, 56, 3)
    assert frames.dtype == np.uint8 and "image" not in video["multi_modal_data"]
    # transformers >= 5 derives the rate from metadata, vLLM's Qwen2.5-VL path from the kwarg: both 2.5
    assert meta["frames_indices"] == [0, 1] and meta["total_num_frames"] == 2
    assert len(meta["frames_indices"]) / meta["total_num_frames"] * meta["fps"] == 2.5
    assert video["mm_processor_kwargs"] == {"fps": 2.5, "do_sample_frames": False}
    assert video["prompt"] == "<video>|" + rows[1][S.QUESTION]

    image = vllm_request(rows[0], _render, native_video=True)
    assert image["multi_modal_data"]["image"].shape == (56, 56, 3) and "mm_processor_kwargs" not in image
    text = vllm_request(rows[2], _render, native_video=True)
    assert text == {"prompt": rows[2][S.QUESTION]}

    # a family without a video path gets the frames-as-images layout it was trained on
    as_images = vllm_request(rows[1], _render, native_video=False)
    assert as_images["prompt"] == "<image>|<image>|" + rows[1][S.QUESTION]
    assert [f.shape for f in as_images["multi_modal_data"]["image"]] == [(56, 56, 3)] * 2
    assert "vllm" not in sys.modules


def test_vllm_request_pads_a_short_clip_as_the_family_encode_does():
    """Qwen3-VL's video processor takes >= 2 frames: a 1-frame clip repeats its frame, and the
    metadata says so (frames_indices [0, 0]), exactly as models.qwen3_vl.encode pads it."""
    from videosft.models import qwen3_vl

    row = {**_rows()[1], S.FRAMES: _rows()[1][S.FRAMES][:1]}
    frames, meta = vllm_request(row, _render, native_video=True, min_video_frames=2)["multi_modal_data"]["video"]
    assert frames.shape == (2, 56, 56, 3) and np.array_equal(frames[0], frames[1])
    assert meta["frames_indices"] == [0, 0] and meta["total_num_frames"] == 1
    ours = qwen3_vl.clip_metadata(1, 2.5, [0, 0])
    assert {k: meta[k] for k in ours} == ours  # training and vLLM describe the clip alike
    frames, meta = vllm_request(_rows()[1], _render, native_video=True, min_video_frames=2)["multi_modal_data"]["video"]
    assert frames.shape[0] == 2 and meta["frames_indices"] == [0, 1]  # long enough: untouched


def test_vllm_request_needs_the_sampled_fps():
    row = {**_rows()[1], S.SAMPLED_FPS: 0.0}
    with pytest.raises(ValueError, match="sampled_fps"):
        vllm_request(row, _render, native_video=True)
    assert clip_metadata(4, 8.0)["duration"] == 0.5


def test_vllm_engine_has_the_transformers_seam():
    import inspect

    for cls in (E.TransformersEngine, E.VLLMEngine):
        params = list(inspect.signature(cls.__init__).parameters)
        assert params[1:4] == ["model_path", "family", "max_new_tokens"]
        assert list(inspect.signature(cls.generate).parameters) == ["self", "rows"]
    with pytest.raises(ValueError, match="eval.engine"):
        E.make_engine("nope", "/x", "qwen2_5_vl", 4)


def test_a_row_max_new_tokens_overrides_the_engine_default(engine):
    """Greedy: a row cut at its own length equals that row generated alone to that length."""
    rows = _rows()[:6]
    engine.batch_size, engine.max_new_tokens = 4, 5
    full = engine.greedy(rows)
    assert any(len(c["token_ids"]) > 2 for c in full)  # some rows run past the shorter limits below
    limits = [1, 3, None, 2, 5, 1]
    mixed = engine.greedy([{**r, "max_new_tokens": n} if n else r for r, n in zip(rows, limits)])
    for c, f, n in zip(mixed, full, limits):
        assert c["token_ids"] == cut_at_eos(f["token_ids"][: n or 5], engine.eos_ids)
    engine.max_new_tokens = 2
    alone = engine.greedy([{**rows[4], "max_new_tokens": 5}])  # the row's 5 wins over the default 2
    assert alone[0]["token_ids"] == full[4]["token_ids"]


def test_row_max_new_tokens_validation():
    assert E.row_max_new_tokens({}, 7) == 7
    assert E.row_max_new_tokens({"max_new_tokens": np.int64(3)}, 7) == 3
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="max_new_tokens"):
            E.row_max_new_tokens({"max_new_tokens": bad}, 7)


def test_vllm_settings_resolve_per_device_and_set_the_environment():
    cpu = E.VLLMConfig(device="cpu").resolve()
    assert cpu == {
        "device": "cpu",
        "dtype": "float32",
        "max_model_len": 4096,
        "enforce_eager": True,
        "in_process": True,
    }
    gpu = E.VLLMConfig(device="cuda").resolve()
    assert gpu["dtype"] == "auto" and gpu["max_model_len"] is None and not gpu["enforce_eager"]
    assert E.VLLMConfig(device="cpu", kv_cache_gib=3).environment(cpu) == {
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "VLLM_CPU_KVCACHE_SPACE": "3",
    }
    assert E.VLLMConfig().environment(gpu) == {"VLLM_ENABLE_V1_MULTIPROCESSING": "1"}
    assert E.vllm_limits("llava_next_video", True, 8) == {"video": 1}
    assert E.vllm_limits("llava_1_5", False, 8) == {"image": 8, "video": 0}
    from videosft.config import ExperimentConfig

    cfg = ExperimentConfig().with_overrides(["eval.vllm.kv_cache_gib=2", "budget.vllm.max_model_len=1024"])
    assert cfg.eval.vllm.kv_cache_gib == 2 and cfg.budget.vllm.max_model_len == 1024
