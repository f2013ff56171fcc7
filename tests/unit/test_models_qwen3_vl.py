"""Tiny Qwen3-VL: a real HF checkpoint, the released prompt layout with timestamps, assistant-only
labels, and positions held to transformers' own `get_rope_index` on many generated inputs."""

import json

import numpy as np
import pytest
import torch

from videosft import schema as S
from videosft.data.preprocess import build_messages, encode_sample, load_features
from videosft.engines import left_pad
from videosft.models.collate import collate
from videosft.models.labels import IGNORE_INDEX
from videosft.models.qwen3_vl import clip_metadata, released_video_layout
from videosft.models.qwen3_vl_positions import rope_index, timestamp_text, timestamps
from videosft.models.registry import get_family

TURNS = [
    {"from": "human", "value": "What colour is the shape?"},
    {"from": "gpt", "value": "red"},
    {"from": "human", "value": "Which way does the shape move?"},
    {"from": "gpt", "value": "left"},
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = get_family("qwen3_vl").build_tiny(tmp_path_factory.mktemp("qwen3"), seed=0)
    return path, AutoProcessor.from_pretrained(path), AutoModelForImageTextToText.from_pretrained(path)


def _row(media_type, n_frames=4, fps=2.0, side=56, seed=0, turns=TURNS):
    row = {S.MEDIA_TYPE: media_type, S.CONVERSATIONS: json.dumps(turns), S.SAMPLED_FPS: fps}
    if media_type != "text":
        n = n_frames if media_type == "video" else 1
        row[S.FRAMES] = np.random.default_rng(seed).integers(0, 255, (n, side, side, 3), dtype=np.uint8)
    return row


def test_checkpoint_is_a_real_hf_directory(tiny):
    path, processor, model = tiny
    assert (path / "model.safetensors").exists() and not list(path.glob("*.bin"))
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen3VLProcessor"
    text = model.config.text_config
    assert text.head_dim == 32  # vLLM's CPU attention rejects 16
    assert text.rope_parameters["mrope_interleaved"] and sum(text.rope_parameters["mrope_section"]) == 16
    assert list(model.config.vision_config.deepstack_visual_indexes) == [0, 1]
    # one normalization for both (released config; vLLM normalizes both with the image processor's)
    for proc in (processor.image_processor, processor.video_processor):
        assert list(proc.image_mean) == [0.5] * 3 and list(proc.image_std) == [0.5] * 3
    tok = processor.tokenizer
    for special in (
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|video_pad|>",
        "<|image_pad|>",
    ):
        assert tok.convert_tokens_to_ids(special) != tok.unk_token_id
        assert len(tok.encode(special, add_special_tokens=False)) == 1
    assert model.config.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    # "<", "0", ".", "2", " seconds", ">": Qwen's pre-tokenizer splits digits, as in the released vocab
    assert len(tok.encode("<0.2 seconds>", add_special_tokens=False)) == 6


def test_chat_template_has_no_default_system_prompt(tiny):
    processor = tiny[1]
    msgs = build_messages(TURNS[:1], "image", for_generation=True)
    text = processor.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What colour is the shape?"
        "<|im_end|>\n<|im_start|>assistant\n"
    )
    with_system = [{"role": "system", "content": "Be brief."}, *msgs]
    assert processor.apply_chat_template(with_system, tokenize=False).startswith(
        "<|im_start|>system\nBe brief.<|im_end|>\n"
    )


@pytest.mark.parametrize("n_frames,fps", [(1, 1.0), (2, 2.0), (3, 0.5), (4, 2.5), (5, 3.0), (8, 1.0), (7, 4.0)])
def test_video_prompt_is_the_released_timestamped_layout(tiny, n_frames, fps):
    """`<t seconds><|vision_start|>tokens<|vision_end|>` per temporal group, no outer markers, t from
    the contract's real sampled fps."""
    processor = tiny[1]
    feats = get_family("qwen3_vl").encode(
        processor,
        build_messages(TURNS[:1], "video", True),
        _row("video", n_frames, fps)[S.FRAMES],
        "video",
        sampled_fps=fps,
        add_generation_prompt=True,
    )
    t, h, w = (int(x) for x in feats["video_grid_thw"][0])
    assert t == (n_frames + 1) // 2 and (h, w) == (4, 4)  # 56 px -> 64 px -> 4x4 patches of 16
    groups = "".join(
        timestamp_text(s) + "<|vision_start|>" + "<|video_pad|>" * (h * w // 4) + "<|vision_end|>"
        for s in timestamps(range(n_frames), fps, 2)
    )
    expected = f"<|im_start|>user\n{groups}What colour is the shape?<|im_end|>\n<|im_start|>assistant\n"
    assert processor.tokenizer.decode(feats["input_ids"]) == expected
    # group k's time: mean of its first and last frame (the last frame repeated to fill the group)
    assert timestamps(range(n_frames), fps, 2)[0] == pytest.approx((0 + min(1, n_frames - 1)) / fps / 2)
    video_id = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert set(feats["mm_token_type_ids"][feats["input_ids"] == video_id].tolist()) == {2}


def test_transformers_without_the_fix_doubles_the_markers(tiny):
    """What released_video_layout guards against: 5.x keeps the template's outer markers."""
    processor = tiny[1]
    text = processor.apply_chat_template(
        build_messages(TURNS[:1], "video", True), tokenize=False, add_generation_prompt=True
    )
    frames = _row("video", 2)[S.FRAMES]
    kwargs = {"do_sample_frames": False, "cap_pixels_per_frame": False, "video_metadata": [clip_metadata(2, 2.0)]}
    raw = processor.tokenizer.decode(processor(text=[text], videos=[frames], videos_kwargs=kwargs)["input_ids"][0])
    assert raw.startswith("<|im_start|>user\n<|vision_start|><0.2 seconds><|vision_start|>")
    fixed = processor(text=[released_video_layout(text)], videos=[frames], videos_kwargs=kwargs)["input_ids"][0]
    assert processor.tokenizer.decode(fixed).startswith("<|im_start|>user\n<0.2 seconds><|vision_start|>")


def test_timestamps_equal_the_processors_on_many_inputs(tiny):
    processor = tiny[1]
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        indices = sorted(rng.choice(400, size=n, replace=False).tolist())
        fps = float(rng.choice([0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 24.0, 29.97, 30.0]))
        tp = int(rng.choice([1, 2, 3]))
        assert timestamps(indices, fps, tp) == processor._calculate_timestamps(list(indices), fps, tp)


def test_unmasked_labels_decode_to_exactly_the_answers(tiny):
    processor = tiny[1]
    fam = get_family("qwen3_vl")
    for media in ("video", "image", "text"):
        enc = encode_sample(_row(media, 5, 2.5), fam, processor, for_generation=False)
        feats = load_features(enc["features"])
        kept = feats["labels"][feats["labels"] != IGNORE_INDEX]
        assert processor.tokenizer.decode(kept) == "red<|im_end|>left<|im_end|>", media
    assert enc["n_visual_tokens"] == 0
    enc = encode_sample(_row("video", 5, 2.5), fam, processor, for_generation=False)
    assert enc["n_visual_tokens"] == 3 * 4  # 5 frames -> 3 groups x (4x4 patches / 2x2 merge)


def _synthetic_batch(rng, cfg):
    """Left-padded rows of random text runs, images and videos (ids, types, grids, mask)."""
    rows, images, videos = [], [], []
    merge = cfg.vision_config.spatial_merge_size
    for _ in range(int(rng.integers(1, 4))):
        ids, types = [], []

        def text(n, ids=ids, types=types):
            ids.extend(rng.integers(0, 100, n).tolist())
            types.extend([0] * n)

        text(int(rng.integers(1, 6)))
        for _ in range(int(rng.integers(0, 4))):
            h, w = (int(rng.integers(1, 5)) * merge for _ in range(2))
            if rng.random() < 0.5:
                images.append([1, h, w])
                ids.extend([cfg.image_token_id] * (h * w // merge**2))
                types.extend([1] * (h * w // merge**2))
            else:
                t = int(rng.integers(1, 5))
                videos.append([t, h, w])
                for _ in range(t):  # groups are separated by timestamp text and markers
                    text(int(rng.integers(1, 5)))
                    ids.extend([cfg.video_token_id] * (h * w // merge**2))
                    types.extend([2] * (h * w // merge**2))
            text(int(rng.integers(1, 6)))
        rows.append((ids, types))
    longest = max(len(r[0]) for r in rows)
    ids = torch.zeros(len(rows), longest, dtype=torch.long)
    types, mask = torch.zeros_like(ids), torch.zeros_like(ids)
    for b, (i, t) in enumerate(rows):
        ids[b, longest - len(i) :], types[b, longest - len(t) :], mask[b, longest - len(i) :] = (
            torch.tensor(i),
            torch.tensor(t),
            1,
        )
    grid = lambda g: torch.tensor(g, dtype=torch.long) if g else None  # noqa: E731
    return ids, types, grid(images), grid(videos), mask


def test_rope_index_equals_transformers_on_many_generated_inputs(tiny):
    model = tiny[2]
    rng = np.random.default_rng(1)
    merge = model.config.vision_config.spatial_merge_size
    for _ in range(150):
        ids, types, img, vid, mask = _synthetic_batch(rng, model.config)
        ours, ours_d = rope_index(ids, types, img, vid, mask, merge)
        ref, ref_d = model.model.get_rope_index(ids, types, img, None if vid is None else vid.clone(), mask)
        for axis in range(3):  # field by field: temporal, height, width
            assert torch.equal(ours[axis], ref[axis]), axis
        assert torch.equal(ours_d, ref_d)


def test_rope_index_equals_transformers_on_processor_batches(tiny):
    _, processor, model = tiny
    fam = get_family("qwen3_vl")
    rows = [_row("video", 5, 2.5, seed=1), _row("image", seed=2), _row("text"), _row("video", 2, 1.0, 84, seed=3)]
    feats = [load_features(encode_sample(r, fam, processor, for_generation=True)["features"]) for r in rows]
    for batch in (left_pad(feats, processor.tokenizer.pad_token_id), collate(feats, processor.tokenizer.pad_token_id)):
        args = (batch["input_ids"], batch["mm_token_type_ids"], batch.get("image_grid_thw"))
        ours, ours_d = rope_index(*args, batch["video_grid_thw"], batch["attention_mask"])
        ref, ref_d = model.model.get_rope_index(*args, batch["video_grid_thw"].clone(), batch["attention_mask"])
        assert torch.equal(ours, ref) and torch.equal(ours_d, ref_d)
    # text after the video resumes after the last group's largest position, and each group has one
    # temporal position
    ids = feats[0]["input_ids"]
    pos, _ = rope_index(
        torch.as_tensor(ids)[None],
        torch.as_tensor(feats[0]["mm_token_type_ids"])[None],
        video_grid_thw=torch.as_tensor(feats[0]["video_grid_thw"]),
    )
    video = ids == model.config.video_token_id
    group_t = pos[0, 0, torch.as_tensor(video)].reshape(3, -1)
    assert all(len(set(g.tolist())) == 1 for g in group_t)
    assert pos[0, 0, int(np.nonzero(video)[0][-1]) + 1] == pos[:, 0, torch.as_tensor(video)].max() + 1


def test_forward_and_backward_on_a_mixed_batch_reach_the_deepstack_mergers(tiny):
    _, processor, model = tiny
    fam = get_family("qwen3_vl")
    rows = [_row("video", 4, seed=1), _row("image", seed=2), _row("text")]
    batch = collate(
        [load_features(encode_sample(r, fam, processor, False)["features"]) for r in rows],
        processor.tokenizer.pad_token_id,
    )
    model.zero_grad(set_to_none=True)
    loss = model(**batch).loss
    assert torch.isfinite(loss)
    loss.backward()
    for name, param in model.named_parameters():
        if "deepstack_merger_list" in name and name.endswith("weight"):
            assert param.grad is not None and param.grad.abs().sum() > 0, name
    model.zero_grad(set_to_none=True)


def test_same_seed_same_weights(tmp_path, tiny):
    again = get_family("qwen3_vl").build_tiny(tmp_path / "b", seed=0)
    assert (again / "model.safetensors").read_bytes() == (tiny[0] / "model.safetensors").read_bytes()
