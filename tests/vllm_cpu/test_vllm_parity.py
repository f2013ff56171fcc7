"""One Qwen2.5-VL checkpoint, two engines, the same answers: TransformersEngine vs VLLMEngine.

The checkpoint is the tiny model trained briefly on the synthetic set (it answers, and its answers
depend on the input). Compared per row: prompt token ids (identical), greedy tokens (identical), and
the first step's top-5 log-probabilities. Tolerance 1e-4: both engines run float32; what remains is
kernel accumulation order (vLLM's CPU attention and GEMMs vs torch SDPA), measured at <= ~1e-6,
while using the transformers-5 rule for text after a video moves them by >= ~5e-3 on this model
(`test_the_transformers_5_rule_would_drift`): the bound is ~100x the noise and ~50x below a drift.

Text after a video resumes at (largest earlier position + 1), the released Qwen2.5-VL rule that
vLLM implements; transformers 5.x resumes at start + max(h, w) / merge. `models.positions`
installs the released rule in transformers, so training, TransformersEngine and vLLM agree; a
drift in either engine fails `test_greedy_tokens_and_first_logprobs_agree`.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from vllm_fixtures import max_logprob_gap, parity_rows

from videosft import schema as S

TOL = 1e-4
TOP = 5


@pytest.fixture(scope="module")
def engines(trained_qwen):
    from videosft.engines import TransformersEngine, VLLMEngine

    hf = TransformersEngine(trained_qwen, "qwen2_5_vl", max_new_tokens=6, batch_size=4)
    vl = VLLMEngine(trained_qwen, "qwen2_5_vl", max_new_tokens=6)
    yield hf, vl
    del vl


@pytest.fixture(scope="module")
def compared(engines, synthetic):
    hf, vl = engines
    rows = parity_rows(synthetic.root)
    return rows, hf.greedy(rows, top_logprobs=TOP), vl.greedy(rows, top_logprobs=TOP)


def _label(row):
    if row[S.MEDIA_TYPE] != S.MEDIA_VIDEO:
        return row[S.MEDIA_TYPE]
    return f"video {len(row[S.FRAMES])}f@{float(row[S.SAMPLED_FPS]):g}fps"


def test_prompt_token_ids_are_identical(engines, compared):
    hf, _ = engines
    rows, _, vl = compared
    for row, v in zip(rows, vl):
        assert hf.encode(row)["input_ids"].tolist() == v["prompt_token_ids"], _label(row)


def test_greedy_tokens_and_first_logprobs_agree(compared, capsys):
    rows, hf, vl = compared
    table = defaultdict(lambda: {"rows": 0, "tokens_equal": 0, "max_abs_dlogprob": 0.0})
    for row, a, b in zip(rows, hf, vl):
        t = table[_label(row)]
        t["rows"] += 1
        t["tokens_equal"] += a["token_ids"] == b["token_ids"]
        t["max_abs_dlogprob"] = max(t["max_abs_dlogprob"], max_logprob_gap(a["first_logprobs"], b["first_logprobs"]))
    with capsys.disabled():
        print("\n[vllm parity] " + json.dumps(table, indent=None))
    for label, t in table.items():
        assert t["tokens_equal"] == t["rows"], (label, t)
        assert t["max_abs_dlogprob"] < TOL, (label, t)


def test_the_checkpoint_really_answers(compared):
    rows, hf, _ = compared
    texts = [a["text"] for a in hf]
    assert len(set(texts)) >= 2 and all(t.strip() for t in texts), texts  # not "\n" for everything


def test_the_transformers_5_rule_would_drift(engines, compared, monkeypatch):
    """With transformers' own rule the video rows with >1 temporal step move far past TOL."""
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as M

    hf, _ = engines
    rows, _, vl = compared
    vision = hf.model.config.vision_config
    differ, same = [], []
    for i, r in enumerate(rows):
        if r[S.MEDIA_TYPE] != S.MEDIA_VIDEO:
            continue
        enc = hf.encode(r)
        t, h, w = (int(x) for x in enc["video_grid_thw"][0])
        last_t = int((t - 1) * vision.tokens_per_second * float(enc["second_per_grid_ts"][0]))
        # the rules part when the video's last moment lies beyond its spatial extent
        (differ if last_t >= max(h, w) // vision.spatial_merge_size else same).append(i)
    assert len(differ) >= 6, differ
    monkeypatch.setattr(M.Qwen2_5_VLModel, "get_rope_index", M.Qwen2_5_VLModel.get_rope_index.transformers_rule)
    drifted = hf.greedy([rows[i] for i in differ + same], top_logprobs=TOP)
    gaps = [max_logprob_gap(d["first_logprobs"], vl[i]["first_logprobs"]) for d, i in zip(drifted, differ + same)]
    assert min(gaps[: len(differ)]) > 10 * TOL, gaps
    assert max(gaps[len(differ) :], default=0.0) < TOL, gaps


def test_a_row_max_new_tokens_is_honoured_by_vllm(engines, compared):
    hf, vl = engines
    rows, full, _ = compared
    limited = [{**r, "max_new_tokens": 1} for r in rows[:3]] + [{**rows[8], "max_new_tokens": 2}]
    got = vl.greedy(limited)
    assert [len(g["token_ids"]) for g in got] == [1, 1, 1, min(2, len(full[8]["token_ids"]))]
    assert [g["token_ids"] for g in got] == [g["token_ids"] for g in hf.greedy(limited)]
