"""Tiny Qwen2.5-VL checkpoints load like downloaded ones; labels cover exactly the answers."""

import json

import numpy as np
import pytest
import torch

from videosft import schema as S
from videosft.data.preprocess import encode_sample, load_features
from videosft.models.labels import IGNORE_INDEX
from videosft.models.registry import get_family
from videosft.train.collate import collate


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = get_family("qwen2_5_vl").build_tiny(tmp_path_factory.mktemp("qwen"), seed=0)
    return path, AutoProcessor.from_pretrained(path), AutoModelForImageTextToText.from_pretrained(path)


def test_checkpoint_is_a_real_hf_directory(tiny):
    path, processor, model = tiny
    assert (path / "model.safetensors").exists() and not list(path.glob("*.bin"))
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    tok = processor.tokenizer
    for special in ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|video_pad|>", "<|image_pad|>"):
        assert tok.convert_tokens_to_ids(special) != tok.unk_token_id
        assert len(tok.encode(special, add_special_tokens=False)) == 1
    assert model.config.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")


def test_same_seed_same_weights(tmp_path):
    fam = get_family("qwen2_5_vl")
    a = (fam.build_tiny(tmp_path / "a", seed=3) / "model.safetensors").read_bytes()
    b = (fam.build_tiny(tmp_path / "b", seed=3) / "model.safetensors").read_bytes()
    assert a == b


def _video_row(turns):
    frames = np.random.default_rng(0).integers(0, 255, (4, 56, 56, 3), dtype=np.uint8)
    return {S.MEDIA_TYPE: "video", S.FRAMES: frames, S.SAMPLED_FPS: 2.5, S.CONVERSATIONS: json.dumps(turns)}


def test_unmasked_labels_decode_to_exactly_the_answers(tiny):
    _, processor, _ = tiny
    turns = [{"from": "human", "value": "What colour is the shape?"}, {"from": "gpt", "value": "red"},
             {"from": "human", "value": "Which way does the shape move?"}, {"from": "gpt", "value": "left"}]
    enc = encode_sample(_video_row(turns), get_family("qwen2_5_vl"), processor, for_generation=False)
    feats = load_features(enc["features"])
    kept = feats["labels"][feats["labels"] != IGNORE_INDEX]
    assert processor.tokenizer.decode(kept) == "red<|im_end|>left<|im_end|>"
    assert enc["n_visual_tokens"] == 2 * 2 * 2  # 4 frames -> 2 temporal x (4x4 patches / 2x2 merge)
    # temporal spacing from the contract's real sampled fps, kept as a float
    assert feats["second_per_grid_ts"].dtype == np.float32
    assert feats["second_per_grid_ts"][0] == pytest.approx(2 / 2.5)


def test_forward_and_backward_on_a_mixed_batch(tiny):
    _, processor, model = tiny
    fam = get_family("qwen2_5_vl")
    turns = [{"from": "human", "value": "What colour?"}, {"from": "gpt", "value": "red"}]
    video = load_features(encode_sample(_video_row(turns), fam, processor, False)["features"])
    img_row = {S.MEDIA_TYPE: "image", S.FRAMES: np.full((1, 56, 56, 3), 200, np.uint8), S.CONVERSATIONS: json.dumps(turns)}
    image = load_features(encode_sample(img_row, fam, processor, False)["features"])
    text_row = {S.MEDIA_TYPE: "text", S.CONVERSATIONS: json.dumps(turns)}
    text = load_features(encode_sample(text_row, fam, processor, False)["features"])
    batch = collate([video, image, text], processor.tokenizer.pad_token_id)
    loss = model(**batch).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert model.model.visual.patch_embed.proj.weight.grad is not None
