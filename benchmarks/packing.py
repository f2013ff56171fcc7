# Run: python benchmarks/packing.py [--n 48] [--micro 4] [--budgets 2304 4096] [--reps 2] [--threads 1]
"""Training tokens/s with and without sequence packing (`train.packing`), one run, CPU.

Model: the repo's tiny random Qwen2.5-VL (`qwen2_5_vl.build_tiny`, float32, sdpa), the same
weights in every mode; one training step per micro-batch (forward, backward, AdamW step).

Length mix (LLaVA-Video-like, scaled to the tiny model): samples encoded by the real processor
from random frames; per 16 samples 6 text-only (1-4 turns, ~40-300 tokens), 5 single images
(112-336 px, ~30-170 tokens), 5 videos (16-64 frames at 224 px, ~550-2100 tokens: 64 merged
visual tokens per 2 frames). Short text/image samples and long videos, as in LLaVA-Video-178K
mixed with LLaVA-OneVision's image/text data, where a 64-frame video is 10-40x a text sample.

Modes, each over the same samples: (a) padded micro-batches of `--micro` samples in stream order,
(b) padded and cost-grouped (`bucket_order`, the repo's default `data.bucket_by_cost`), (c) packed
(`plan_packs` over the window) at each of `--budgets` tokens per micro-batch, with transformers' sdpa
(dense block-diagonal mask) and with `sdpa_packed` (causal sdpa per sample, what the training loop
switches packed runs to; models/packing.py). Throughput counts real
(non-pad) tokens. Rep 0 of every mode is warm-up and excluded; modes are interleaved per rep, the
median of the timed reps is reported. Prints the ratios packed/padded and packed/cost-grouped.

On CPU the pack's block-diagonal mask goes to sdpa as a dense (L, L) mask, so attention costs the
pack's length squared, not the sum of its samples' squares as flash-attention's varlen kernel on a
GPU does; with the tiny model's hidden size of 64 attention dominates a token's FLOPs, so there the
budget trades padding against attention span (hence two budgets: near the longest sample and 2x).
`sdpa_packed` removes that trade-off.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "packing.log"
WORDS = (
    "the red square moves left then up while a blue circle waits near the top edge of the frame and "
    "a small green triangle turns slowly"
).split()


def length_mix(n: int, seed: int) -> list[dict]:
    """Raw rows (schema keys) of the mix described in the module docstring, in a shuffled order."""
    from videosft import schema as S

    rng = np.random.default_rng(seed)
    kinds = (["text"] * 6 + ["image"] * 5 + ["video"] * 5) * (n // 16 + 1)
    rows = []
    for kind in rng.permutation(kinds[:n]):
        turns = []
        for _ in range(int(rng.integers(1, 5)) if kind == "text" else int(rng.integers(1, 3))):
            words = lambda k: " ".join(rng.choice(WORDS, k))  # noqa: E731
            turns += [
                {"from": "human", "value": words(int(rng.integers(8, 30))) + "?"},
                {"from": "gpt", "value": words(int(rng.integers(3, 40)))},
            ]
        row = {S.MEDIA_TYPE: str(kind), S.CONVERSATIONS: json.dumps(turns), S.SAMPLED_FPS: 2.0}
        if kind == "image":
            side = int(rng.choice([112, 168, 224, 336]))
            row[S.FRAMES] = rng.integers(0, 255, (1, side, side, 3), dtype=np.uint8)
        elif kind == "video":
            frames = int(rng.choice([16, 32, 48, 64]))
            row[S.FRAMES] = rng.integers(0, 255, (frames, 224, 224, 3), dtype=np.uint8)
        rows.append(row)
    return rows


def encode_all(rows: list[dict], path: Path) -> list[dict]:
    from transformers import AutoProcessor

    from videosft.data.preprocess import encode_sample, load_features
    from videosft.models.registry import get_family

    family = get_family("qwen2_5_vl")
    processor = AutoProcessor.from_pretrained(path)
    return [load_features(encode_sample(r, family, processor, for_generation=False)["features"]) for r in rows]


def micro_batches(samples: list[dict], mode: str, micro: int, budget: int, pad_id: int, positions) -> list:
    """(inputs, forward kwargs, real tokens) per micro-batch, built before timing."""
    from videosft.data.batching import bucket_order
    from videosft.models.collate import collate
    from videosft.models.packing import FORWARD_KWARGS, pack, plan_packs

    lengths = np.array([len(s["input_ids"]) for s in samples])
    if mode.startswith("packed"):
        return [
            (pack([samples[i] for i in p], positions), FORWARD_KWARGS, int(lengths[p].sum()))
            for p in plan_packs(lengths, budget)
        ]
    order = np.arange(len(samples)) if mode == "padded" else bucket_order(lengths, micro, len(samples), [0, 0])
    out = []
    for start in range(0, len(order), micro):
        idx = order[start : start + micro]
        out.append((collate([samples[i] for i in idx], pad_id), {}, int(lengths[idx].sum())))
    return out


def run_mode(model, optim, batches, attn: str) -> tuple[float, int, float]:
    import torch

    from videosft.models.collate import to_device

    model.set_attn_implementation(attn)
    real = sum(b[2] for b in batches)
    rows = sum(int(b[0]["input_ids"].numel()) for b in batches)
    t0 = time.perf_counter()
    for inputs, kwargs, _ in batches:
        loss = model(**to_device(inputs, "cpu", torch.float32), **kwargs).loss
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
    return time.perf_counter() - t0, real, 1 - real / rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--micro", type=int, default=4)
    ap.add_argument("--budgets", type=int, nargs="+", default=[2304, 4096])
    ap.add_argument("--reps", type=int, default=2, help="timed reps per mode (plus one warm-up rep)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForImageTextToText

    from videosft.models.packing import PACKED_SDPA, position_fn, register_packed_sdpa
    from videosft.models.registry import get_family

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        path = get_family("qwen2_5_vl").build_tiny(Path(tmp) / "tiny", seed=args.seed)
        samples = encode_all(length_mix(args.n, args.seed), path)
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")
    model.train()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
    pad_id = int(model.config.text_config.pad_token_id)
    positions = position_fn(model)
    register_packed_sdpa()
    modes = (
        "padded",
        "cost_grouped",
        *(f"packed@{b}" for b in args.budgets),
        *(f"packed_sdpa@{b}" for b in args.budgets),
    )
    batches = {
        m: micro_batches(samples, m, args.micro, int(m.split("@")[1]) if "@" in m else 0, pad_id, positions)
        for m in modes
    }
    lengths = [len(s["input_ids"]) for s in samples]
    times: dict[str, list[float]] = {m: [] for m in modes}
    stats: dict[str, tuple[int, float]] = {}
    for rep in range(args.reps + 1):
        for m in modes:
            seconds, real, pad = run_mode(model, optim, batches[m], PACKED_SDPA if "sdpa@" in m else "sdpa")
            stats[m] = (real, pad)
            if rep:  # rep 0: warm-up
                times[m].append(seconds)
    load_after = os.getloadavg()
    tps = {m: stats[m][0] / statistics.median(times[m]) for m in modes}
    lines = [
        f"benchmarks/packing.py {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}  "
        f"torch threads {args.threads}, machine load (1/5/15 min) before {load_before[0]:.1f}/{load_before[1]:.1f}/"
        f"{load_before[2]:.1f}, after {load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f} on {os.cpu_count()} CPUs",
        f"model: tiny Qwen2.5-VL (float32), AdamW step per micro-batch; {args.n} samples, "
        f"tokens min/median/max {min(lengths)}/{int(np.median(lengths))}/{max(lengths)}, total {sum(lengths)}",
        f"micro-batch: {args.micro} samples padded; packed budgets {args.budgets} tokens; "
        f"{args.reps} timed reps after 1 warm-up, median",
    ]
    for m in modes:
        lines.append(
            f"  {m:16s} micro-batches {len(batches[m]):3d}  padding {stats[m][1]:.3f}  "
            f"pass time median {statistics.median(times[m]):7.2f} s (reps {', '.join(f'{t:.2f}' for t in times[m])})"
            f"  tokens/s {tps[m]:8.1f}"
        )
    for m in modes[2:]:
        lines.append(
            f"ratio {m}/padded tokens/s = {tps[m] / tps['padded']:.2f}; "
            f"{m}/cost_grouped = {tps[m] / tps['cost_grouped']:.2f}"
        )
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a") as fh:
        fh.write(text + "\n\n")


if __name__ == "__main__":
    main()
