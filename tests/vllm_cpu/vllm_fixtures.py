"""A tiny Qwen2.5-VL that actually answers: built, then trained briefly in plain torch.

Random tiny weights answer a newline to everything, which would make any two engines agree. This
trains the tiny model (head_dim 32, servable by vLLM's CPU backend) for a few dozen AdamW steps on
the synthetic set's stills and clips, plus text-only rows and Hybrid-Frame predictor rows (the
budget question -> the clip's oracle budget), so its answers depend on the image, the video, the
video's positions and the text. Loss on assistant tokens only, exactly as training encodes them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from videosft import schema as S


def decode_rows(items: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """Rows decoded by the evaluation/training DecodeStage (same sampling contract)."""
    from videosft.data.pipeline import DecodeStage
    from videosft.data.sampling import SamplingContract

    stage = DecodeStage(SamplingContract().model_dump(), budget, 60.0)
    try:
        rows = [stage(dict(i)) for i in items]
    finally:
        stage.decoder.close()
    assert not any(r[S.ERROR] for r in rows), [r[S.ERROR] for r in rows if r[S.ERROR]]
    return rows


def _text_rows(n: int) -> list[dict[str, Any]]:
    from videosft.data.synthetic import TASKS, question_text

    rows = []
    for i in range(n):
        task = sorted(TASKS)[i % len(TASKS)]
        answer = TASKS[task].options[(i // len(TASKS)) % len(TASKS[task].options)]
        # "Say <word>." teaches the text path to read its prompt.
        turns = [{"from": "human", "value": f"Say {answer}. {question_text(task)}"}, {"from": "gpt", "value": answer}]
        rows.append(
            {
                S.ID: f"text-{i}",
                S.MEDIA_TYPE: S.MEDIA_TEXT,
                S.CONVERSATIONS: json.dumps(turns),
                S.FRAMES: np.zeros((0, 1, 1, 3), np.uint8),
                S.SAMPLED_FPS: 0.0,
            }
        )
    return rows


def _budget_rows(videos: list[dict[str, Any]], cfg: Any) -> list[dict[str, Any]]:
    from videosft.budget.base import budget_question

    out = []
    for r in videos:
        label = int(r.get(S.MIN_FRAMES) or cfg.default)
        label = min((c for c in cfg.candidates if c >= label), default=cfg.candidates[-1])
        turns = [
            {"from": "human", "value": budget_question(str(r[S.QUESTION]), cfg.prompt_text())},
            {"from": "gpt", "value": str(label)},
        ]
        out.append({**r, S.ID: f"{r[S.ID]}-budget", S.CONVERSATIONS: json.dumps(turns)})
    return out


def train_answering_qwen(out: Path, data_root: Path, steps: int = 60, seed: int = 0) -> Path:
    """Build the tiny Qwen2.5-VL at `out`, train it on `data_root`'s train split, save it in place."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from videosft.budget.base import BudgetConfig
    from videosft.data.manifest import read_manifest
    from videosft.data.preprocess import encode_sample, load_features
    from videosft.data.synthetic import corpus
    from videosft.models.collate import collate
    from videosft.models.registry import get_family

    fam = get_family("qwen2_5_vl")
    cfg = BudgetConfig(predictor="instruction", candidates=[2, 4, 8], default=4, num_thumbnails=4)
    path = fam.build_tiny(out, seed=seed, extra_corpus=[*corpus(), cfg.prompt_text(), "Say"])
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
    rows = read_manifest(str(data_root / "train.json"))
    videos = [r for r in rows if r[S.MEDIA_TYPE] == S.MEDIA_VIDEO]
    decoded = decode_rows(rows, 4) + decode_rows(videos, 8)  # two frame counts, two sampled fps
    decoded += _budget_rows(decode_rows(videos, cfg.num_thumbnails), cfg) + _text_rows(16)
    feats = [load_features(encode_sample(r, fam, processor, for_generation=False)["features"]) for r in decoded]
    pad = processor.tokenizer.pad_token_id
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(steps):
        batch = collate([feats[i] for i in rng.choice(len(feats), size=8, replace=False)], pad)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
    model.eval()
    model.save_pretrained(path)
    (path / "train_loss.txt").write_text(f"{float(loss):.4f}\n")
    return path


def parity_rows(data_root: Path) -> list[dict[str, Any]]:
    """Image, video (2-16 frames, 0.5-6.4 fps) and text rows from the synthetic evaluation splits."""
    from videosft.benchmarks import get_benchmark

    rows = decode_rows(get_benchmark("synthetic_image").load(str(data_root))[:4], 4)
    clips = get_benchmark("synthetic_video").load(str(data_root))[:2]
    for budget in (2, 4, 8, 16):  # 8 fps clips of 32 frames: sampled fps 0.5, 1, 2, 4
        rows += decode_rows(clips, budget)
    # the same 8 frames declared at other rates: only the temporal positions change
    rows += [{**rows[8], S.ID: f"{rows[8][S.ID]}@{fps}", S.SAMPLED_FPS: fps} for fps in (0.5, 3.0, 6.4)]
    rows += [
        {S.ID: f"text-{w}", S.MEDIA_TYPE: S.MEDIA_TEXT, S.QUESTION: f"Say {w}. What colour is the shape?"}
        for w in ("blue", "red")
    ]
    return rows


def max_logprob_gap(a: dict[int, float], b: dict[int, float]) -> float:
    """Largest |Δ logprob| over the top tokens both engines returned (the top-1 is always shared)."""
    common = set(a) & set(b)
    assert common, (a, b)
    return max(abs(a[t] - b[t]) for t in common)


def rescale_weights(path: str, family: str, seed: int = 0) -> str:
    """Re-draw a random checkpoint's weights at a larger scale so its greedy answers depend on the input."""
    import torch
    from transformers import AutoModelForImageTextToText

    from videosft.models.llava import released_clip_layout

    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale, shift = (0.5 if p.dim() > 1 else 0.1), (1.0 if "norm" in name else 0.0)
            p.copy_(torch.randn(p.shape, generator=gen) * scale + shift)
    model.save_pretrained(path)
    if family != "qwen2_5_vl":
        released_clip_layout(Path(path))
    return path
