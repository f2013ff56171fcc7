"""Qwen3-VL: native video with interleaved mRoPE, timestamps in the prompt, deepstack visual features.

What differs from Qwen2.5-VL (transformers 5.x `qwen3_vl`, vLLM `qwen3_vl.py`):
- time is text: each temporal patch group (temporal_patch_size frames) of a video is rendered as
  `<t seconds><|vision_start|>frame tokens<|vision_end|>`, t the mean of the group's first and last
  frame times (`frames_indices[i] / fps`). The model has no `second_per_grid_ts`; its mRoPE puts every
  group at one time position (t = 1 grids), so the prompt text is the only clock. We hand the
  processor the clip's own metadata (`clip_metadata`: frames 0..T-1 at the contract's real sampled
  fps), the same metadata `VLLMEngine` sends, so training, TransformersEngine and vLLM render the
  same timestamps; without it transformers falls back to fps=24 with a warning.
- mRoPE is interleaved (t, h, w frequencies alternate, `mrope_interleaved`) and text after a vision
  block resumes at its largest position + 1 in transformers and vLLM alike (`models/qwen3_vl_positions`).
- deepstack: features of some vision layers (`deepstack_visual_indexes`) are added to the first
  decoder layers' hidden states at the visual tokens; their mergers belong to the projector group.
- patch size 16 (factor 32), and the released chat template adds no default system prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from videosft.models.chat_templates import QWEN3_VL_CHAT_TEMPLATE
from videosft.models.registry import ModelFamily, pad_video_frames, register, to_numpy_features
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
# Timestamp text, so "<0.2 seconds>" is a few tokens rather than bytes.
FAMILY_CORPUS = tuple(f"<{t / 10:.1f} seconds>" for t in range(0, 200, 3))
MIN_VIDEO_FRAMES = 2  # temporal_patch_size: Qwen3VLVideoProcessor rejects fewer frames
NORM = (0.5, 0.5, 0.5)  # released preprocessor_config: image_mean = image_std for images and videos
PATCH = 16  # Qwen3-VL's ViT patch; with merge 2 a frame side is a multiple of 32
TINY_MIN_PIXELS = 32 * 32
TINY_MAX_PIXELS = 32 * 32 * 256  # per image
TINY_VIDEO_MAX_PIXELS = 32 * 32 * 256 * 128  # Qwen3-VL's video budget is over all frames (t x h x w)
# head_dim 32 (the smallest vLLM's CPU attention serves); interleaved mrope_section sums to 32 / 2.
# 3 decoder layers: deepstack adds features after layers 0 and 1; an addition after the last layer
# would reach only the visual positions' own logits (never in the loss), so its merger would not learn.
TINY_TEXT = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=3,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=32,
    max_position_embeddings=8192,
)
TINY_ROPE = {"rope_type": "default", "rope_theta": 5_000_000.0, "mrope_section": [6, 5, 5], "mrope_interleaved": True}


def tiny_processor(tok: Any) -> Any:
    """Qwen3VLProcessor around `tok` with tiny pixel bounds (frames arrive sized by the contract)."""
    from transformers import Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    return Qwen3VLProcessor(
        # Released Qwen3-VL normalizes images like videos (mean = std = 0.5), and vLLM's on-device
        # normalization applies the image processor's values to both: CLIP's defaults here would
        # make every video differ between the engines.
        image_processor=Qwen2VLImageProcessor(
            patch_size=PATCH,
            merge_size=2,
            temporal_patch_size=2,
            image_mean=list(NORM),
            image_std=list(NORM),
            size={"shortest_edge": TINY_MIN_PIXELS, "longest_edge": TINY_MAX_PIXELS},
        ),
        video_processor=Qwen3VLVideoProcessor(
            patch_size=PATCH,
            merge_size=2,
            temporal_patch_size=2,
            cap_pixels_per_frame=False,
            image_mean=list(NORM),
            image_std=list(NORM),
            size={"shortest_edge": TINY_MIN_PIXELS, "longest_edge": TINY_VIDEO_MAX_PIXELS},
        ),
        tokenizer=tok,
        chat_template=QWEN3_VL_CHAT_TEMPLATE,
    )


def build_tiny(out_dir: str | Path, seed: int = 0, extra_corpus: Sequence[str] = (), vocab_size: int = 640) -> Path:
    """Write a random-weight Qwen3-VL checkpoint (config, safetensors, tokenizer, processor)."""
    import torch
    from transformers import Qwen2Tokenizer, Qwen3VLConfig, Qwen3VLForConditionalGeneration

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab, merges = train_byte_level_bpe(corpus_lines([*FAMILY_CORPUS, *extra_corpus]), vocab_size)
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS)})
    processor = tiny_processor(tok)
    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIAL_TOKENS}
    config = Qwen3VLConfig(
        text_config=dict(
            vocab_size=len(tok),
            **TINY_TEXT,
            rope_parameters=dict(TINY_ROPE),
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            # 3 blocks, deepstack taps after blocks 0 and 1 feed decoder layers 0 and 1 (8B: 3 taps, 36 layers)
            depth=3,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=64,
            patch_size=PATCH,
            spatial_merge_size=2,
            temporal_patch_size=2,
            num_position_embeddings=64,
            deepstack_visual_indexes=[0, 1],
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out)  # safetensors by default
    processor.save_pretrained(out)
    return out


def clip_metadata(num_frames: int, sampled_fps: float, frames_indices: Sequence[int] | None = None) -> dict[str, Any]:
    """The decoded clip as its own video: frames 0..T-1 at the contract's real sampled fps.

    The same fields `engines.clip_metadata` sends vLLM, so both render the same timestamps.
    `frames_indices` lists a padded clip's frames (`registry.pad_video_frames`).
    """
    if sampled_fps <= 0:
        raise ValueError("qwen3_vl: a video needs sampled_fps > 0 (from the sampling contract)")
    fps = float(sampled_fps)
    indices = list(range(int(num_frames))) if frames_indices is None else [int(i) for i in frames_indices]
    return {"fps": fps, "duration": num_frames / fps, "total_num_frames": int(num_frames), "frames_indices": indices}


VIDEO_PLACEHOLDER = "<|vision_start|><|video_pad|><|vision_end|>"


def released_video_layout(text: str) -> str:
    """Rendered chat text -> the text whose expansion is the released Qwen3-VL video layout.

    The released processor (the Qwen team's, transformers 4.57) replaced the chat template's whole
    `<|vision_start|><|video_pad|><|vision_end|>` with the timestamped groups
    `<t seconds><|vision_start|>...<|vision_end|>` x T. transformers >= 5.10 expands only the bare
    `<|video_pad|>` and keeps the template's outer markers, and vLLM 0.32 follows it, so both
    would feed `<|vision_start|><t seconds><|vision_start|>...<|vision_end|><|vision_end|>`, a
    layout the released model never saw. Handing them the bare `<|video_pad|>` makes both produce
    the released one (checked in tests/unit/test_models_qwen3_vl.py and tests/vllm_cpu).
    """
    return text.replace(VIDEO_PLACEHOLDER, "<|video_pad|>")


def encode(
    processor: Any,
    messages: list[dict[str, Any]],
    media: np.ndarray | None,
    media_type: str,
    sampled_fps: float = 0.0,
    add_generation_prompt: bool = False,
) -> dict[str, np.ndarray]:
    """One sample -> model inputs (numpy, unbatched: input_ids is (L,), pixel rows are (P, D))."""
    text = released_video_layout(
        processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    )
    kwargs: dict[str, Any] = {}
    if media_type == "image" and media is not None:
        kwargs["images"] = [media[0]]
    elif media_type == "video" and media is not None:
        frames, indices = pad_video_frames(media, MIN_VIDEO_FRAMES)  # a 1-frame clip: the processor needs 2
        kwargs["videos"] = [frames]
        kwargs["videos_kwargs"] = {
            "do_sample_frames": False,
            "cap_pixels_per_frame": False,
            "video_metadata": [clip_metadata(len(media), sampled_fps, indices)],
        }
    out = processor(text=[text], return_tensors="pt", **kwargs)
    out.pop("video_metadata", None)  # the timestamps it carried are in the text now
    feats = to_numpy_features(out)
    for key in ("input_ids", "attention_mask", "mm_token_type_ids"):
        if key in feats:
            feats[key] = feats[key][0]
    return feats


@register("qwen3_vl")
def _family() -> ModelFamily:
    return ModelFamily(
        name="qwen3_vl",
        native_video=True,
        assistant_header="<|im_start|>assistant\n",
        turn_end="<|im_end|>",
        build_tiny=build_tiny,
        encode=encode,
        prompt_text=released_video_layout,
        min_video_frames=MIN_VIDEO_FRAMES,
    )
