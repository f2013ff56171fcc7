"""Preprocess: a decoded sample -> model inputs + assistant-only labels, serialized for Ray Data.

Features differ per family and per sample (image rows carry pixel_values, video rows
pixel_values_videos, text rows neither), so each sample's tensors travel as one safetensors
blob (no pickle, schema-free) next to a few scalar columns used for metrics and bucketing.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from videosft import schema as S
from videosft.models.labels import assistant_labels
from videosft.models.registry import ModelFamily, get_family

FEATURES = "features"  # bytes: safetensors blob of one sample's model inputs (+ labels when training)
N_TEXT_TOKENS = "n_text_tokens"
N_VISUAL_TOKENS = "n_visual_tokens"


def build_messages(conversations: list[dict[str, str]], media_type: str, for_generation: bool) -> list[dict[str, Any]]:
    """LLaVA-style turns -> chat messages; the media part goes into the first user turn.

    For generation only the first human turn is kept and the template adds the assistant header.
    """
    turns = conversations[:1] if for_generation else conversations
    messages: list[dict[str, Any]] = []
    for i, turn in enumerate(turns):
        role = "user" if turn["from"] == "human" else "assistant"
        content: list[dict[str, Any]] = []
        if i == 0 and media_type in (S.MEDIA_IMAGE, S.MEDIA_VIDEO):
            content.append({"type": media_type})
        content.append({"type": "text", "text": turn["value"]})
        messages.append({"role": role, "content": content})
    return messages


def encode_sample(row: dict[str, Any], family: ModelFamily, processor: Any, for_generation: bool) -> dict[str, Any]:
    """Encode one decoded row; returns FEATURES bytes and token counts (labels when training)."""
    convs = json.loads(row[S.CONVERSATIONS])
    media_type = row[S.MEDIA_TYPE]
    frames = row.get(S.FRAMES) if media_type != S.MEDIA_TEXT else None
    messages = build_messages(convs, media_type, for_generation)
    feats = family.encode(
        processor,
        messages,
        None if frames is None else np.asarray(frames, dtype=np.uint8),
        media_type,
        sampled_fps=float(row.get(S.SAMPLED_FPS) or 0.0),
        add_generation_prompt=for_generation,
    )
    tok = processor.tokenizer
    ids = feats["input_ids"]
    if not for_generation:
        header = tok.encode(family.assistant_header, add_special_tokens=False)
        end_id = tok.convert_tokens_to_ids(family.turn_end)
        feats["labels"] = assistant_labels(ids, header, end_id)
    n_visual = int(np.isin(ids, _placeholder_ids(processor)).sum())
    return {
        FEATURES: st_save({k: np.ascontiguousarray(v) for k, v in feats.items()}),
        N_TEXT_TOKENS: int(len(ids) - n_visual),
        N_VISUAL_TOKENS: n_visual,
    }


def _placeholder_ids(processor: Any) -> list[int]:
    ids = []
    for attr in ("image_token_id", "video_token_id"):
        value = getattr(processor, attr, None)
        if value is not None:
            ids.append(int(value))
    return ids


def load_features(blob: bytes) -> dict[str, np.ndarray]:
    """Inverse of the FEATURES column."""
    return st_load(bytes(blob))


class EncodeStage:
    """Ray Data callable class: loads the processor once per actor, encodes rows, drops failed rows."""

    def __init__(self, family: str, model_path: str, for_generation: bool = False) -> None:
        from transformers import AutoProcessor

        self.family = get_family(family)
        self.processor = AutoProcessor.from_pretrained(model_path)
        self.for_generation = for_generation

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in row.items() if k != S.FRAMES}
        if row.get(S.ERROR):
            out.update({FEATURES: b"", N_TEXT_TOKENS: 0, N_VISUAL_TOKENS: 0})
            return out
        try:
            out.update(encode_sample(row, self.family, self.processor, self.for_generation))
        except Exception as exc:  # errors are data: a bad sample is rejected, not fatal
            out.update({FEATURES: b"", N_TEXT_TOKENS: 0, N_VISUAL_TOKENS: 0})
            out[S.ERROR] = f"preprocess: {type(exc).__name__}: {exc}"
        return out
