"""Tiny Qwen2.5-VL checkpoints load like downloaded ones; labels cover exactly the answers."""

import json

import numpy as np
import pytest
import torch

from videosft import schema as S
from videosft.data.preprocess import encode_sample, load_features
from videosft.models.collate import collate
from videosft.models.labels import IGNORE_INDEX
from videosft.models.registry import get_family


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
    turns = [
        {"from": "human", "value": "What colour is the shape?"},
        {"from": "gpt", "value": "red"},
        {"from": "human", "value": "Which way does the shape move?"},
        {"from": "gpt", "value": "left"},
    ]
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
    img_row = {
        S.MEDIA_TYPE: "image",
        S.FRAMES: np.full((1, 56, 56, 3), 200, np.uint8),
        S.CONVERSATIONS: json.dumps(turns),
    }
    image = load_features(encode_sample(img_row, fam, processor, False)["features"])
    text_row = {S.MEDIA_TYPE: "text", S.CONVERSATIONS: json.dumps(turns)}
    text = load_features(encode_sample(text_row, fam, processor, False)["features"])
    batch = collate([video, image, text], processor.tokenizer.pad_token_id)
    loss = model(**batch).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert model.model.visual.patch_embed.proj.weight.grad is not None


def test_released_rope_rule_text_after_a_video_follows_its_last_moment(tiny):
    """Our rope index (installed in transformers) = the released rule; transformers 5.x differs after video."""
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as M

    from videosft.data.preprocess import build_messages
    from videosft.models.positions import install_released_rope_index, rope_index

    _, processor, model = tiny
    install_released_rope_index()
    fam = get_family("qwen2_5_vl")
    frames = np.random.default_rng(0).integers(0, 255, (8, 56, 56, 3), dtype=np.uint8)
    msgs = build_messages([{"from": "human", "value": "Which way?"}], "video", for_generation=True)
    feats = fam.encode(processor, msgs, frames, "video", sampled_fps=1.0, add_generation_prompt=True)
    args = [
        torch.from_numpy(feats["input_ids"])[None],
        torch.from_numpy(feats["mm_token_type_ids"])[None],
        None,
        torch.from_numpy(feats["video_grid_thw"]),
        torch.from_numpy(feats["second_per_grid_ts"]),
        torch.from_numpy(feats["attention_mask"])[None],
    ]
    pos, delta = rope_index(*args, spatial_merge_size=2, tokens_per_second=2)
    video = feats["mm_token_type_ids"] == 2
    first_after = int(np.flatnonzero(video)[-1]) + 1
    # 4 temporal steps 4 positions apart (2 tokens/s x 2 s per step): last moment start + 12
    start = int(pos[0, 0, np.flatnonzero(video)[0]])
    assert int(pos[0, 0, video].max()) == start + 12
    assert pos[:, 0, first_after].tolist() == [start + 13] * 3  # largest earlier position + 1
    assert int(delta) == int(pos.max()) + 1 - len(feats["input_ids"])
    assert model.model.get_rope_index(*args)[0].tolist() == pos.tolist()  # installed in transformers
    theirs = M.Qwen2_5_VLModel.get_rope_index.transformers_rule(model.model, *args)[0]
    assert theirs[:, 0, first_after].tolist() == [start + 2] * 3  # transformers 5.x: start + max(h, w) / 2
    # stills and text: the two rules agree
    img = fam.encode(
        processor,
        build_messages([{"from": "human", "value": "Colour?"}], "image", True),
        frames[:1],
        "image",
        add_generation_prompt=True,
    )
    iargs = [
        torch.from_numpy(img["input_ids"])[None],
        torch.from_numpy(img["mm_token_type_ids"])[None],
        torch.from_numpy(img["image_grid_thw"]),
        None,
        None,
        torch.from_numpy(img["attention_mask"])[None],
    ]
    assert (rope_index(*iargs)[0] == M.Qwen2_5_VLModel.get_rope_index.transformers_rule(model.model, *iargs)[0]).all()
