"""Qwen2.5-VL: native video with mRoPE; tiny random checkpoints and sample encoding.

Temporal positions: Qwen2.5-VL spaces video tokens in time by `second_per_grid_ts`
(= temporal_patch_size / sampled fps). We set it from the sampling contract's *real* sampled fps,
as a float, instead of trusting the processor's estimate; truncating it to an int collapses every
temporal position once sampling exceeds 2 fps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from videosft.models.chat_templates import QWEN_CHAT_TEMPLATE
from videosft.models.registry import ModelFamily, register, to_numpy_features
from videosft.models.tokenizer import corpus_lines, train_byte_level_bpe

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Tiny processors must not upscale: frames arrive already sized by the sampling contract.
TINY_MIN_PIXELS = 28 * 28
TINY_MAX_PIXELS = 28 * 28 * 256
# Tiny text model: hidden 64 over 2 heads = head_dim 32, the smallest head size vLLM's CPU attention
# backend accepts (it rejects 16), so the same tiny checkpoint runs on both engines.
TINY_HEADS = 2


def build_tiny(out_dir: str | Path, seed: int = 0, extra_corpus: Sequence[str] = (), vocab_size: int = 600) -> Path:
    """Write a random-weight Qwen2.5-VL checkpoint (config, safetensors, tokenizer, processor)."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor, Qwen2Tokenizer
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab, merges = train_byte_level_bpe(corpus_lines(extra_corpus), vocab_size)
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS)})
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=TINY_MIN_PIXELS, max_pixels=TINY_MAX_PIXELS),
        video_processor=Qwen2VLVideoProcessor(min_pixels=TINY_MIN_PIXELS, max_pixels=TINY_MAX_PIXELS),
        tokenizer=tok,
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIAL_TOKENS}
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            # head_dim 32 (64 / 2 heads): vLLM's CPU attention rejects 16; mrope_section sums to 32 / 2.
            num_attention_heads=TINY_HEADS,
            num_key_value_heads=1,
            max_position_embeddings=8192,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]},
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=64,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            fullatt_block_indexes=[1],
            tokens_per_second=2,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out)  # safetensors by default
    processor.save_pretrained(out)
    return out


def encode(
    processor: Any,
    messages: list[dict[str, Any]],
    media: np.ndarray | None,
    media_type: str,
    sampled_fps: float = 0.0,
    add_generation_prompt: bool = False,
) -> dict[str, np.ndarray]:
    """One sample -> model inputs (numpy, unbatched: input_ids is (L,), pixel rows are (P, D))."""
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    kwargs: dict[str, Any] = {}
    if media_type == "image" and media is not None:
        kwargs["images"] = [media[0]]
    elif media_type == "video" and media is not None:
        kwargs["videos"] = [media]
        kwargs["videos_kwargs"] = {"do_sample_frames": False, "cap_pixels_per_frame": False}
    feats = to_numpy_features(processor(text=[text], return_tensors="pt", **kwargs))
    for key in ("input_ids", "attention_mask", "mm_token_type_ids"):
        if key in feats:
            feats[key] = feats[key][0]
    if media_type == "video" and media is not None:
        if sampled_fps <= 0:
            raise ValueError("qwen2_5_vl.encode: a video needs sampled_fps > 0 (from the sampling contract)")
        from videosft.models.positions import second_per_grid_ts

        step = second_per_grid_ts(processor.video_processor.temporal_patch_size, sampled_fps)
        feats["second_per_grid_ts"] = np.asarray([step], dtype=np.float32)
    return feats


@register("qwen2_5_vl")
def _family() -> ModelFamily:
    from videosft.models.positions import install_released_rope_index

    install_released_rope_index()  # every user of the family (train, engines) gets the released rule
    return ModelFamily(
        name="qwen2_5_vl",
        native_video=True,
        assistant_header="<|im_start|>assistant\n",
        turn_end="<|im_end|>",
        build_tiny=build_tiny,
        encode=encode,
    )
