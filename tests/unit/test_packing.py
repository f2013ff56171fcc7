"""Sequence packing: a packed micro-batch trains exactly like the same samples padded.

For every registered family, image, video and text samples mixed: loss and every parameter's
gradient of one packed row equal those of the padded batch (float64 model; transformers' loss
runs in float32, so to float32 rounding; sdpa and eager); attention
stays inside each sample; packs respect the token budget.
"""

import json

import numpy as np
import pytest
import torch

from videosft import schema as S
from videosft.data.preprocess import encode_sample, load_features
from videosft.models.collate import collate, to_device
from videosft.models.labels import IGNORE_INDEX
from videosft.models.packing import (
    FORWARD_KWARGS,
    pack,
    pack_lengths,
    plan_packs,
    position_fn,
    split_packs,
    use_packed_sdpa,
)
from videosft.models.registry import family_names, get_family

TURNS = [
    {"from": "human", "value": "What colour is the shape?"},
    {"from": "gpt", "value": "red"},
    {"from": "human", "value": "Which way does it move?"},
    {"from": "gpt", "value": "left, then up"},
]
# (media type, frames): long video, text, image, short video: every kind, unequal lengths
MIX = (("video", 4), ("text", 0), ("image", 1), ("video", 2))


@pytest.fixture(scope="module", params=family_names())
def tiny(request, tmp_path_factory):
    from transformers import AutoProcessor

    fam = get_family(request.param)
    path = fam.build_tiny(tmp_path_factory.mktemp(request.param), seed=0)
    processor = AutoProcessor.from_pretrained(path)
    samples = [_encode(fam, processor, kind, n, seed=i) for i, (kind, n) in enumerate(MIX)]
    return fam, path, processor, samples


def _encode(fam, processor, kind, n_frames, seed, turns=TURNS):
    row = {S.MEDIA_TYPE: kind, S.CONVERSATIONS: json.dumps(turns), S.SAMPLED_FPS: 2.5}
    if kind != "text":
        row[S.FRAMES] = np.random.default_rng(seed).integers(0, 255, (n_frames, 56, 56, 3), dtype=np.uint8)
    return load_features(encode_sample(row, fam, processor, for_generation=False)["features"])


def _model(path, attn):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(
        path, dtype=torch.float64, attn_implementation="sdpa" if attn == "sdpa_packed" else attn
    )
    assert attn != "sdpa_packed" or use_packed_sdpa(model)
    return model.train()


def _loss_and_grads(model, inputs):
    model.zero_grad(set_to_none=True)
    loss = model(**to_device(inputs, "cpu", torch.float64), **FORWARD_KWARGS).loss
    loss.backward()
    return loss.detach(), {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}


class _CausalSdpaCalls:
    """Counts sdpa calls that take the per-sample causal path (is_causal=True, no mask)."""

    def __init__(self, monkeypatch):
        self.n, real = 0, torch.nn.functional.scaled_dot_product_attention

        def spy(*args, **kwargs):
            self.n += bool(kwargs.get("is_causal")) and kwargs.get("attn_mask") is None and len(args) == 3
            return real(*args, **kwargs)

        monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)


@pytest.mark.parametrize("attn", ["sdpa", "eager", "sdpa_packed"])
def test_packed_loss_and_gradients_equal_padded(tiny, attn, monkeypatch):
    fam, path, processor, samples = tiny
    model = _model(path, attn)
    padded = collate(samples, processor.tokenizer.pad_token_id)
    packed = pack(samples, position_fn(model))
    assert packed["input_ids"].shape == (1, sum(len(s["input_ids"]) for s in samples))
    assert "attention_mask" not in packed and pack_lengths(packed) == [len(s["input_ids"]) for s in samples]
    assert int(padded["attention_mask"].eq(0).sum()) > 0  # the padded batch really pads
    loss_a, grads_a = _loss_and_grads(model, padded)
    calls = _CausalSdpaCalls(monkeypatch)
    loss_b, grads_b = _loss_and_grads(model, packed)
    layers = getattr(model.config, "text_config", model.config).num_hidden_layers
    assert calls.n == (layers * len(samples) if attn == "sdpa_packed" else 0)  # one causal call per sample and layer
    # transformers' loss upcasts the logits to float32: agreement is to float32 rounding (a few ulps)
    torch.testing.assert_close(loss_b, loss_a, rtol=1e-6, atol=0)
    assert {n for n, g in grads_a.items() if g is None} == {n for n, g in grads_b.items() if g is None}
    checked = 0
    for name, grad in grads_a.items():
        if grad is not None:
            torch.testing.assert_close(
                grads_b[name], grad, rtol=1e-5, atol=1e-9, msg=lambda m, name=name: f"{name}: {m}"
            )
            checked += 1
    assert checked > 10 and any(
        k in n for n, g in grads_a.items() for k in ("vision", "visual") if g is not None and g.abs().sum() > 0
    )


def test_packed_mrope_positions_are_each_samples_own(tiny):
    fam, path, processor, samples = tiny
    model = _model(path, "sdpa")
    packed = pack(samples, position_fn(model))
    pos = packed["position_ids"]
    inner = getattr(model, "model", model)
    if not hasattr(inner, "get_rope_index"):
        assert pos.shape == (1, packed["input_ids"].shape[1])
        return
    padded = collate(samples, processor.tokenizer.pad_token_id)
    keys = ("image_grid_thw", "video_grid_thw", "second_per_grid_ts")
    want, _ = inner.get_rope_index(
        padded["input_ids"],
        mm_token_type_ids=padded["mm_token_type_ids"],
        attention_mask=padded["attention_mask"],
        **{k: padded[k] for k in keys if k in padded},
    )
    mask = padded["attention_mask"].bool()
    assert pos.shape == (4, 1, int(mask.sum()))
    assert torch.equal(pos[1:, 0], torch.cat([want[:, b, mask[b]] for b in range(len(samples))], dim=1))
    assert len(set(pos[1:, 0, :].max(dim=1).values.tolist())) >= 1 and pos[0, 0, 0] == 0


@pytest.mark.parametrize("attn", ["sdpa", "sdpa_packed"])
def test_attention_stays_inside_each_sample(tiny, attn):
    """Changing one sample's tokens leaves another's logits alone; a row without restarts would not."""
    fam, path, processor, samples = tiny
    model = _model(path, attn).eval()
    changed = {k: v.copy() for k, v in samples[1].items()}  # the text sample, packed first
    labels = changed["labels"]
    answer = np.nonzero(labels != IGNORE_INDEX)[0]
    changed["input_ids"][answer[:2]] = changed["input_ids"][answer[:2]][::-1] + 1  # other answer tokens
    positions = position_fn(model)
    order = [1, 0, 2, 3]
    a = pack([samples[i] for i in order], positions)
    b = pack([changed] + [samples[i] for i in order[1:]], positions)
    n0 = len(samples[1]["input_ids"])

    def logits(batch):
        with torch.no_grad():
            return model(**to_device(batch, "cpu", torch.float64), **FORWARD_KWARGS).logits[0]

    la, lb = logits(a), logits(b)
    assert not torch.allclose(la[:n0], lb[:n0])  # the changed sample's own logits do move
    torch.testing.assert_close(lb[n0:], la[n0:], rtol=0, atol=1e-12)
    leaky = {**b, "position_ids": _no_restarts(b["position_ids"])}
    assert not torch.allclose(logits(leaky)[n0:], la[n0:], atol=1e-6)  # the test can fail


def _no_restarts(pos):
    flat = pos.clone()
    n = flat.shape[-1]
    flat[0 if flat.ndim == 2 else slice(0, 1)] = torch.arange(n)  # one long sample: causal only
    return flat


def test_plan_packs_respects_budget_and_keeps_every_sample():
    lengths = [700, 120, 90, 400, 30, 610, 50, 1000]
    packs = plan_packs(lengths, 1000)
    assert sorted(i for p in packs for i in p) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in p) <= 1000 for p in packs)
    assert [7] in packs  # exactly the budget: its own pack
    assert len(packs) == 4  # 3000 tokens, first-fit decreasing fills 1000-token packs
    assert all(p == sorted(p) for p in packs) and [p[0] for p in packs] == sorted(p[0] for p in packs)


def test_sample_longer_than_budget_is_a_clear_error():
    with pytest.raises(ValueError, match=r"train.max_tokens_per_micro_batch=512 .* sample 1's 513 tokens"):
        plan_packs([10, 513], 512)


def test_split_packs_reaches_the_agreed_count_within_budget():
    lengths = [300, 300, 300, 100, 100]
    packs = plan_packs(lengths, 1000)
    assert len(packs) == 2
    split = split_packs(packs, 4, lengths)
    assert len(split) == 4 and sorted(i for p in split for i in p) == list(range(5))
    with pytest.raises(ValueError, match="cannot fill"):
        split_packs(packs, 6, lengths)


def test_pack_rejects_padded_samples():
    s = {"input_ids": np.array([1, 2, 0]), "attention_mask": np.array([1, 1, 0]), "labels": np.array([1, 2, -100])}
    with pytest.raises(ValueError, match="padded"):
        pack([s], lambda f: np.arange(len(f["input_ids"]))[None])


def test_config_requires_a_budget_with_packing():
    from videosft.config import ConfigError, load_config

    cfg = load_config(None, ["train.packing=true", "train.max_tokens_per_micro_batch=4096"])
    assert cfg.train.packing and cfg.train.max_tokens_per_micro_batch == 4096
    assert load_config(None).train.packing is False
    with pytest.raises(ConfigError, match=r"max_tokens_per_micro_batch"):
        load_config(None, ["train.packing=true"])


class _Shard:
    """The `iter_batches` seam of Ray's DataIterator over in-memory columns."""

    def __init__(self, columns):
        self.columns = columns

    def iter_batches(self, *, batch_size, batch_format, drop_last=False, **shuffle):
        n = len(next(iter(self.columns.values())))
        for start in range(0, n - n % batch_size if drop_last else n, batch_size):
            yield {k: v[start : start + batch_size] for k, v in self.columns.items()}


def _columns(seed, n=50):
    from videosft.data.preprocess import N_TEXT_TOKENS, N_VISUAL_TOKENS
    from videosft.train.checkpoint import SAMPLE_INDEX

    rng = np.random.default_rng(seed)
    visual = np.where(rng.random(n) < 0.3, rng.integers(400, 900, n), rng.integers(0, 80, n))
    return {SAMPLE_INDEX: np.arange(n), N_VISUAL_TOKENS: visual, N_TEXT_TOKENS: rng.integers(20, 60, n)}


def test_loop_micro_batches_are_packs_of_every_sample_within_budget():
    from videosft.config import load_config
    from videosft.data.preprocess import N_TEXT_TOKENS, N_VISUAL_TOKENS
    from videosft.train.checkpoint import SAMPLE_INDEX
    from videosft.train.loop import micro_batches

    cfg = load_config(None, ["train.packing=true", "train.max_tokens_per_micro_batch=1024", "data.bucket_window=16"])
    out = list(micro_batches(_Shard(_columns(0)), cfg, epoch=0))
    sizes = [int(np.sum(b[N_TEXT_TOKENS] + b[N_VISUAL_TOKENS])) for b in out]
    assert sorted(int(i) for b in out for i in b[SAMPLE_INDEX]) == list(range(50))
    assert max(sizes) <= 1024 and len(out) < 50 and np.mean(sizes) > 0.6 * 1024


def test_ranks_agree_on_the_pack_count_of_every_window():
    """Two ranks with different length mixes run the same number of micro-batches (ZeRO needs it)."""
    import threading

    from videosft.data.preprocess import N_TEXT_TOKENS, N_VISUAL_TOKENS
    from videosft.models.packing import iter_packs

    barrier, counts, out = threading.Barrier(2), {}, {}

    def agree(rank):
        def fn(n):
            counts[rank] = n
            barrier.wait()
            agreed = max(counts.values())
            barrier.wait()
            return agreed

        return fn

    def run(rank):
        windows = _Shard(_columns(rank + 1)).iter_batches(batch_size=16, batch_format="numpy")
        out[rank] = list(iter_packs(windows, 1024, lambda r: r[N_TEXT_TOKENS] + r[N_VISUAL_TOKENS], agree(rank)))

    threads = [threading.Thread(target=run, args=(r,)) for r in (0, 1)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    alone = [
        [
            len(plan_packs(w[N_TEXT_TOKENS] + w[N_VISUAL_TOKENS], 1024))
            for w in _Shard(_columns(r + 1)).iter_batches(batch_size=16, batch_format="numpy")
        ]
        for r in (0, 1)
    ]
    assert alone[0] != alone[1]  # unagreed, the ranks would run different micro-batch counts per window
    assert len(out[0]) == len(out[1]) == sum(max(a, b) for a, b in zip(*alone))
