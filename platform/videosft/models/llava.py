"""LLaVA-NeXT-Video and LLaVA-1.5: tiny random checkpoints and sample encoding.

Both use a CLIP vision tower, a two-layer MLP projector and a Llama language model, with the
Vicuna-v1 conversation layout ("USER: <image>\\n... ASSISTANT: answer</s>").

- `llava_next_video` has native video: one `<video>` placeholder expands to T x (pooled patches)
  tokens; images go through LLaVA-NeXT's any-resolution tiling (`pixel_values` is (1, P, C, H, W)
  with `image_sizes`).
- `llava_1_5` has no video path. We feed a video as **one image per sampled frame**: the video part
  of the first user turn becomes T `<image>` placeholders, each frame is encoded exactly like a
  still image (`frames_as_images`). This keeps per-frame resolution and token cost identical to
  image training (T x tokens-per-image), so a frame budget moves the visual-token count linearly,
  as it does for the native-video families; a pooled grid image would instead hide the budget
  inside a fixed resolution.

The tokenizer is the family's own `LlamaTokenizer` (Metaspace BPE with byte fallback), trained
locally on a small corpus; CLIP towers need `num_additional_image_tokens=1` (the CLS token) in the
processor so placeholder counts match the features the model produces.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from videosft.models.chat_templates import LLAVA_CHAT_TEMPLATE
from videosft.models.registry import ModelFamily, register, to_numpy_features
from videosft.models.tokenizer import corpus_lines

ASSISTANT_HEADER = "ASSISTANT:"
EOS = "</s>"
PAD = "<pad>"
# Words of the Vicuna layout, so headers tokenize to a few tokens instead of byte fallbacks.
FAMILY_CORPUS = (
    "USER: ASSISTANT: USER ASSISTANT",
    "A chat between a curious human and an artificial intelligence assistant.",
)
TINY_NEXT_VIDEO_IMAGE_SIZE = 56  # 4x4 patches of 14 -> 2x2 pooled video tokens per frame
TINY_LLAVA_1_5_IMAGE_SIZE = 28  # 2x2 patches of 14 -> 4 tokens per image (CLS dropped)


def train_metaspace_bpe(corpus: Sequence[str], vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a Llama-style BPE (Metaspace words, byte fallback) -> (vocab, merges) for LlamaTokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    # Llama's first ids: unk, bos, eos, then the 256 byte-fallback tokens.
    specials = ["<unk>", "<s>", EOS] + [f"<0x{i:02X}>" for i in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(list(corpus), trainer=trainer)
    merges_raw = json.loads(tok.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in merges_raw]
    return tok.get_vocab(), merges


def _tokenizer(extra_corpus: Sequence[str], vocab_size: int, specials: Sequence[str]) -> Any:
    from transformers import LlamaTokenizer

    vocab, merges = train_metaspace_bpe(corpus_lines([*FAMILY_CORPUS, *extra_corpus]), vocab_size)
    tok = LlamaTokenizer(vocab=vocab, merges=merges, pad_token=PAD, add_bos_token=True, add_eos_token=False)
    tok.add_special_tokens({"additional_special_tokens": list(specials)})
    return tok


def _tiny_configs(tok: Any, image_size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(text_config, vision_config) dicts: a 2-layer Llama and a 2-layer CLIP tower."""
    text = dict(
        model_type="llama",
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        # head_dim 32 (64 / 2 heads): vLLM's CPU attention rejects head_dim 16.
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=8192,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    vision = dict(
        model_type="clip_vision_model",
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=14,
        projection_dim=32,
    )
    return text, vision


def _save(model: Any, processor: Any, tok: Any, out: Path) -> Path:
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)  # safetensors by default
    processor.save_pretrained(out)
    released_clip_layout(out)
    return out


def released_clip_layout(out: Path) -> None:
    """Rename saved CLIP-tower weights to the released llava-hf layout (`vision_tower.vision_model.*`).

    transformers >= 5 flattens CLIPVisionModel (it drops `vision_model` on load) but does not put
    the prefix back on save, so its checkpoints read `vision_tower.embeddings.*`. Released
    checkpoints, and vLLM's loader, expect `vision_tower.vision_model.*`; transformers loads either.
    """
    from safetensors.torch import load_file, save_file

    for path in sorted(out.glob("*.safetensors")):
        tensors = load_file(str(path))
        renamed = {
            (
                f"vision_tower.vision_model.{k[len('vision_tower.') :]}"
                if k.startswith("vision_tower.") and not k.startswith("vision_tower.vision_model.")
                else k
            ): v
            for k, v in tensors.items()
        }
        if renamed.keys() != tensors.keys():
            save_file(renamed, str(path), metadata={"format": "pt"})


def build_tiny_next_video(
    out_dir: str | Path,
    seed: int = 0,
    extra_corpus: Sequence[str] = (),
    vocab_size: int = 600,
    image_size: int = TINY_NEXT_VIDEO_IMAGE_SIZE,
) -> Path:
    """Write a random-weight LLaVA-NeXT-Video checkpoint (config, safetensors, tokenizer, processor)."""
    import torch
    from transformers import LlavaNextVideoConfig, LlavaNextVideoForConditionalGeneration, LlavaNextVideoProcessor
    from transformers.models.llava_next.image_processing_llava_next import LlavaNextImageProcessor
    from transformers.models.llava_next_video.video_processing_llava_next_video import LlavaNextVideoVideoProcessor

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer(extra_corpus, vocab_size, ("<image>", "<video>"))
    # A few any-resolution tilings (square, wide, tall) so images carry 2 or 3 tiles, as real ones vary.
    pinpoints = [[image_size, image_size], [image_size, 2 * image_size], [2 * image_size, image_size]]
    sizes = dict(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    processor = LlavaNextVideoProcessor(
        video_processor=LlavaNextVideoVideoProcessor(**sizes),
        image_processor=LlavaNextImageProcessor(image_grid_pinpoints=pinpoints, **sizes),
        tokenizer=tok,
        chat_template=LLAVA_CHAT_TEMPLATE,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    text, vision = _tiny_configs(tok, image_size)
    patches = (image_size // 14) ** 2
    config = LlavaNextVideoConfig(
        text_config=text,
        vision_config=vision,
        image_grid_pinpoints=pinpoints,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        video_token_index=tok.convert_tokens_to_ids("<video>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        spatial_pool_stride=2,
        image_seq_length=patches,
        video_seq_length=patches // 4,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    return _save(LlavaNextVideoForConditionalGeneration(config), processor, tok, out)


def build_tiny_1_5(
    out_dir: str | Path,
    seed: int = 0,
    extra_corpus: Sequence[str] = (),
    vocab_size: int = 600,
    image_size: int = TINY_LLAVA_1_5_IMAGE_SIZE,
) -> Path:
    """Write a random-weight LLaVA-1.5 checkpoint (config, safetensors, tokenizer, processor)."""
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.llava.image_processing_llava import LlavaImageProcessor

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer(extra_corpus, vocab_size, ("<image>",))
    processor = LlavaProcessor(
        image_processor=LlavaImageProcessor(
            size={"shortest_edge": image_size},
            crop_size={"height": image_size, "width": image_size},
        ),
        tokenizer=tok,
        chat_template=LLAVA_CHAT_TEMPLATE,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    text, vision = _tiny_configs(tok, image_size)
    config = LlavaConfig(
        text_config=text,
        vision_config=vision,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_seq_length=(image_size // 14) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    return _save(LlavaForConditionalGeneration(config), processor, tok, out)


def _squeeze_text(feats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    for key in ("input_ids", "attention_mask"):
        feats[key] = feats[key][0]
    return feats


def encode_next_video(
    processor: Any,
    messages: list[dict[str, Any]],
    media: np.ndarray | None,
    media_type: str,
    sampled_fps: float = 0.0,
    add_generation_prompt: bool = False,
) -> dict[str, np.ndarray]:
    """One sample -> LLaVA-NeXT-Video inputs (numpy, unbatched token arrays).

    Images: pixel_values (1, P, C, H, W) + image_sizes (1, 2); videos: pixel_values_videos
    (1, T, C, H, W). LLaVA-NeXT-Video has no time encoding, so `sampled_fps` is not used.
    """
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    kwargs: dict[str, Any] = {}
    if media_type == "image" and media is not None:
        kwargs["images"] = [media[0]]
    elif media_type == "video" and media is not None:
        kwargs["videos"] = [media]
        kwargs["videos_kwargs"] = {"do_sample_frames": False}  # frames were chosen by the sampling contract
    return _squeeze_text(to_numpy_features(processor(text=[text], return_tensors="pt", **kwargs)))


def frames_as_images(messages: list[dict[str, Any]], num_frames: int) -> list[dict[str, Any]]:
    """LLaVA-1.5's video strategy: replace each `{"type": "video"}` part by `num_frames` image parts.

    Every sampled frame becomes its own `<image>` placeholder (in time order) and is encoded like a
    still image, so the model sees T x tokens-per-image visual tokens for a T-frame budget.
    """
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            parts: list[dict[str, Any]] = []
            for part in content:
                parts.extend([{"type": "image"}] * num_frames if part.get("type") == "video" else [part])
            message = {**message, "content": parts}
        out.append(message)
    return out


def encode_1_5(
    processor: Any,
    messages: list[dict[str, Any]],
    media: np.ndarray | None,
    media_type: str,
    sampled_fps: float = 0.0,
    add_generation_prompt: bool = False,
) -> dict[str, np.ndarray]:
    """One sample -> LLaVA-1.5 inputs; a video's T frames become T images (`frames_as_images`).

    pixel_values is (N, C, H, W) with N = 1 for an image, T for a video. LLaVA-1.5 has no time
    encoding, so `sampled_fps` is not used.
    """
    kwargs: dict[str, Any] = {}
    if media_type == "video" and media is not None:
        messages = frames_as_images(messages, len(media))
        kwargs["images"] = list(media)
    elif media_type == "image" and media is not None:
        kwargs["images"] = [media[0]]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    return _squeeze_text(to_numpy_features(processor(text=[text], return_tensors="pt", **kwargs)))


@register("llava_next_video")
def _next_video_family() -> ModelFamily:
    return ModelFamily(
        name="llava_next_video",
        native_video=True,
        assistant_header=ASSISTANT_HEADER,
        turn_end=EOS,
        build_tiny=build_tiny_next_video,
        encode=encode_next_video,
    )


@register("llava_1_5")
def _llava_1_5_family() -> ModelFamily:
    return ModelFamily(
        name="llava_1_5",
        native_video=False,
        assistant_header=ASSISTANT_HEADER,
        turn_end=EOS,
        build_tiny=build_tiny_1_5,
        encode=encode_1_5,
    )
