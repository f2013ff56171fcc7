"""Tiny LLaVA-NeXT-Video and LLaVA-1.5 checkpoints load like downloaded ones; labels cover exactly the answers."""

import json

import numpy as np
import pytest
import torch

from videosft import schema as S
from videosft.data.preprocess import encode_sample, load_features
from videosft.models.collate import collate
from videosft.models.labels import IGNORE_INDEX
from videosft.models.llava import frames_as_images
from videosft.models.registry import family_names, get_family

FAMILIES = ("llava_next_video", "llava_1_5")
TURNS = [
    {"from": "human", "value": "What colour is the shape?"},
    {"from": "gpt", "value": "red"},
    {"from": "human", "value": "Which way does the shape move?"},
    {"from": "gpt", "value": "left"},
]


@pytest.fixture(scope="module", params=FAMILIES)
def tiny(request, tmp_path_factory):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    fam = get_family(request.param)
    path = fam.build_tiny(tmp_path_factory.mktemp(request.param), seed=0)
    return fam, path, AutoProcessor.from_pretrained(path), AutoModelForImageTextToText.from_pretrained(path)


def _video_features(model, pixels):
    """Per-frame video features; transformers 5.19 returns a tuple, later versions an output object."""
    out = model.get_video_features(pixels)
    out = getattr(out, "pooler_output", out)
    return torch.cat(list(out)) if isinstance(out, (tuple, list)) else out.flatten(0, 1)


def _row(media_type, turns, n_frames=4, shape=(56, 56)):
    row = {S.MEDIA_TYPE: media_type, S.CONVERSATIONS: json.dumps(turns), S.SAMPLED_FPS: 2.5}
    if media_type != "text":
        row[S.FRAMES] = np.random.default_rng(n_frames).integers(0, 255, (n_frames, *shape, 3), dtype=np.uint8)
    return row


def _encode(tiny, media_type, turns=TURNS, **kw):
    fam, _, processor, _ = tiny
    enc = encode_sample(_row(media_type, turns, **kw), fam, processor, for_generation=False)
    return enc, load_features(enc["features"])


def test_families_are_registered():
    assert set(FAMILIES) <= set(family_names())
    assert get_family("llava_next_video").native_video and not get_family("llava_1_5").native_video


def test_checkpoint_is_a_real_hf_directory(tiny):
    fam, path, processor, model = tiny
    assert (path / "model.safetensors").exists() and not list(path.glob("*.bin"))
    expected = {
        "llava_next_video": "LlavaNextVideoForConditionalGeneration",
        "llava_1_5": "LlavaForConditionalGeneration",
    }
    assert type(model).__name__ == expected[fam.name]
    tok = processor.tokenizer
    specials = ("<image>", "<video>", "<pad>", "</s>") if fam.native_video else ("<image>", "<pad>", "</s>")
    for special in specials:
        assert tok.convert_tokens_to_ids(special) != tok.unk_token_id
        assert len(tok.encode(special, add_special_tokens=False)) == 1
    assert tok.eos_token == fam.turn_end and tok.pad_token == "<pad>"
    assert model.config.image_token_id == processor.image_token_id == tok.convert_tokens_to_ids("<image>")
    assert processor.num_additional_image_tokens == 1  # CLIP's CLS token
    assert tok("hi").input_ids[0] == tok.bos_token_id  # Llama prompts start with <s>


def test_same_seed_same_weights(tmp_path):
    fam = get_family("llava_1_5")
    a = (fam.build_tiny(tmp_path / "a", seed=3) / "model.safetensors").read_bytes()
    b = (fam.build_tiny(tmp_path / "b", seed=3) / "model.safetensors").read_bytes()
    assert a == b


def _answer_spans(labels):
    """Contiguous runs of supervised labels (one per assistant turn)."""
    spans, current = [], []
    for value in labels:
        if value == IGNORE_INDEX:
            if current:
                spans.append(current)
            current = []
        else:
            current.append(int(value))
    return spans + ([current] if current else [])


@pytest.mark.parametrize("media_type", ["video", "image", "text"])
def test_unmasked_labels_decode_to_exactly_the_answers(tiny, media_type):
    fam, _, processor, _ = tiny
    for turns, answers in ((TURNS[:2], ["red"]), (TURNS, ["red", "left"])):
        _, feats = _encode(tiny, media_type, turns)
        spans = _answer_spans(feats["labels"])
        decoded = [processor.tokenizer.decode(span) for span in spans]
        assert [d.strip() for d in decoded] == [a + fam.turn_end for a in answers]
        assert all(span[-1] == processor.tokenizer.eos_token_id for span in spans)


def test_video_token_counts_follow_the_frame_budget(tiny):
    fam, _, processor, _ = tiny
    enc4, feats4 = _encode(tiny, "video", n_frames=4)
    enc8, _ = _encode(tiny, "video", n_frames=8)
    assert enc8["n_visual_tokens"] == 2 * enc4["n_visual_tokens"] > 0
    if fam.name == "llava_next_video":  # native video: 4x4 patches pooled 2x2 -> 4 tokens per frame
        assert feats4["pixel_values_videos"].shape == (1, 4, 3, 56, 56)
        assert enc4["n_visual_tokens"] == 4 * 4
    else:  # each frame is its own 28x28 image: 2x2 patches, CLS dropped -> 4 tokens per frame
        assert feats4["pixel_values"].shape == (4, 3, 28, 28)
        assert enc4["n_visual_tokens"] == 4 * 4
        assert int((feats4["input_ids"] == processor.image_token_id).sum()) == 16


def test_frames_as_images_replaces_only_the_video_part():
    messages = [
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "q"}]},
        {"role": "assistant", "content": "a"},
    ]
    out = frames_as_images(messages, 3)
    assert out[0]["content"] == [{"type": "image"}] * 3 + [{"type": "text", "text": "q"}]
    assert out[1] == messages[1] and messages[0]["content"][0] == {"type": "video"}  # input untouched


def test_forward_and_backward_on_a_mixed_batch(tiny):
    fam, _, processor, model = tiny
    # videos of different lengths and a wide image (LLaVA-NeXT: 3 any-res tiles vs 2) in one batch
    samples = [
        _encode(tiny, "video", TURNS[:2], n_frames=4)[1],
        _encode(tiny, "video", TURNS, n_frames=2)[1],
        _encode(tiny, "image", TURNS[:2], shape=(40, 90))[1],
        _encode(tiny, "image", TURNS)[1],
        _encode(tiny, "text", TURNS)[1],
    ]
    batch = collate(samples, processor.tokenizer.pad_token_id)
    model.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert model.model.vision_tower.embeddings.patch_embedding.weight.grad is not None
    assert model.model.multi_modal_projector.linear_1.weight.grad is not None


def test_collate_joins_llava_next_videos_and_pads_tiles(tiny):
    fam, _, processor, model = tiny
    if fam.name != "llava_next_video":
        pytest.skip("LLaVA-NeXT layouts only")
    a, b = _encode(tiny, "video", n_frames=4)[1], _encode(tiny, "video", n_frames=2)[1]
    batch = collate([a, b], processor.tokenizer.pad_token_id)
    assert batch["pixel_values_videos"].shape == (1, 6, 3, 56, 56)
    # joining clips equals encoding them one by one: per-frame features, in frame order
    with torch.no_grad():
        joined = _video_features(model, batch["pixel_values_videos"])
        alone = [_video_features(model, torch.from_numpy(x["pixel_values_videos"])) for x in (a, b)]
    torch.testing.assert_close(joined, torch.cat(alone))
    wide, square = _encode(tiny, "image", shape=(40, 90))[1], _encode(tiny, "image")[1]
    images = collate([square, wide], processor.tokenizer.pad_token_id)
    assert images["pixel_values"].shape[:2] == (2, 3) and images["image_sizes"].tolist() == [[56, 56], [40, 90]]


def test_make_tiny_model_builds_each_family(tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from videosft.cli import main

    for name in FAMILIES:
        path = tmp_path / name
        assert main(["make-tiny-model", name, str(path), "--seed", "1"]) == 0
        processor = AutoProcessor.from_pretrained(path)
        model = AutoModelForImageTextToText.from_pretrained(path)
        assert model.config.text_config.vocab_size == len(processor.tokenizer)
        messages = [{"role": "user", "content": "hi"}]
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert prompt.endswith(get_family(name).assistant_header)
