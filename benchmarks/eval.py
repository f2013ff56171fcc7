# Run: python benchmarks/eval.py [--items 96] [--batch-size 8] [--max-new-tokens 32] [--repeats 3]
"""Evaluation throughput on CPU: 1 vs 2 engine actors, and batched vs per-sample generation.

Everything is built in a temp dir: the synthetic image + video evaluation splits and a tiny random
Qwen2.5-VL. Random weights make the answers meaningless (the model never stops early, so every
sample costs exactly max_new_tokens decoding steps), but the cost is real, which is what is
measured. Both comparisons run in one process, back to back:

- actors: the runner's engine actor pool (`runner.engine_dataset`) over rows decoded once, with a
  1-actor and a 2-actor pool (1 CPU each), then the whole Ray Data pass (decode pool -> engine
  pool, 0.75 CPU per actor so the 0.5-CPU decode actor still fits on 2 CPUs); wall time includes
  actor start-up, steady samples/s counts blocks after each actor's first one;
- batching: one in-process TransformersEngine (1 torch thread) on the same decoded rows with
  batch_size 1 vs --batch-size, best of --repeats.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def build(tmp: Path, n_items: int) -> tuple[str, str, list[dict]]:
    from videosft.data.synthetic import corpus, make_synthetic
    from videosft.eval.benchmarks import get_benchmark
    from videosft.models.registry import get_family

    half = n_items // 2
    syn = make_synthetic(tmp / "data", n_train_video=0, n_train_image=0, n_eval_video=half, n_eval_image=n_items - half)
    model = get_family("qwen2_5_vl").build_tiny(tmp / "vlm", seed=0, extra_corpus=corpus())
    items = [{**i, "id": f"{name}::{i['id']}"} for name in ("synthetic_image", "synthetic_video")
             for i in get_benchmark(name).load(str(syn.root))]
    return str(model), str(syn.root), items


def _timed(blocks: object, n_items: int, actors: int) -> tuple[float, float]:
    """(wall seconds, steady rows/s) of streamed prediction blocks; steady skips each actor's first."""
    t0 = time.perf_counter()
    arrivals = [(time.perf_counter(), len(block)) for block in blocks]
    wall = time.perf_counter() - t0
    assert sum(n for _, n in arrivals) == n_items
    rows = sum(n for _, n in arrivals[actors:])
    span = arrivals[-1][0] - arrivals[actors - 1][0] if len(arrivals) > actors else 0.0
    return wall, rows / span if span > 0 else float("nan")


def _cfg(actors: int, cpus: float, args: argparse.Namespace) -> object:
    from videosft.config import ExperimentConfig

    return ExperimentConfig().with_overrides([
        f"eval.num_actors={actors}", f"eval.cpus_per_actor={cpus}", f"eval.batch_size={args.batch_size}",
        f"eval.max_new_tokens={args.max_new_tokens}", "data.cpus_per_decoder=0.5"])


def actor_scaling(model: str, items: list[dict], args: argparse.Namespace) -> dict[str, float]:
    """Engine pool over rows decoded once (1 CPU per actor), then the whole pass (decode included)."""
    import ray

    from videosft.data.pipeline import decoded_dataset
    from videosft.data.sampling import SamplingContract
    from videosft.eval.runner import engine_dataset, ray_predictor, stream_predictions

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        decoded = decoded_dataset(items, SamplingContract(), args.budget, 60.0, 1, 0.5).materialize()
        out = {}
        for actors in (1, 2):
            blocks = stream_predictions(engine_dataset(_cfg(actors, 1.0, args), model, decoded))
            out[f"engine_{actors}_wall_s"], out[f"engine_{actors}_steady"] = _timed(blocks, len(items), actors)
        for actors in (1, 2):  # 0.75 CPU per actor so the 0.5-CPU decode actor still fits on 2 CPUs
            blocks = ray_predictor(_cfg(actors, 0.75, args), model, args.budget)(items)
            out[f"pass_{actors}_wall_s"], out[f"pass_{actors}_steady"] = _timed(blocks, len(items), actors)
        return out
    finally:
        ray.shutdown()


def decode_items(items: list[dict], budget: int) -> list[dict]:
    from videosft.data.pipeline import DecodeStage
    from videosft.data.sampling import SamplingContract

    stage = DecodeStage(SamplingContract().model_dump(), budget, 60.0)
    try:
        rows = [stage(dict(i)) for i in items]
    finally:
        stage.decoder.close()
    assert not any(r["error"] for r in rows), [r["error"] for r in rows if r["error"]]
    return rows


def batching(model: str, rows: list[dict], args: argparse.Namespace) -> dict[str, float]:
    from videosft.eval.engines import TransformersEngine

    engine = TransformersEngine(model, "qwen2_5_vl", args.max_new_tokens, "cpu", batch_size=1)
    out = {}
    for bs in (1, args.batch_size):
        engine.batch_size = bs
        engine.generate(rows[:2])  # warm-up
        best = min(_seconds(engine, rows) for _ in range(args.repeats))
        out[bs] = len(rows) / best
    same = engine.generate(rows)
    engine.batch_size = 1
    out["identical"] = float(same == engine.generate(rows))
    return out


def _seconds(engine: object, rows: list[dict]) -> float:
    t0 = time.perf_counter()
    engine.generate(rows)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=96, help="synthetic eval items (half image, half video)")
    parser.add_argument("--batch-size", type=int, default=8, help="eval.batch_size for the batched engine")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--budget", type=int, default=4, help="frames per video")
    parser.add_argument("--repeats", type=int, default=3, help="timing runs per engine setting (best kept)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # in-process rates per CPU, comparable to one actor
    with tempfile.TemporaryDirectory() as name:
        model, _, items = build(Path(name), args.items)
        scaling = actor_scaling(model, items, args)
        rates = batching(model, decode_items(items, args.budget), args)

    print(f"\n== engine actors over pre-decoded rows, {len(items)} items, {args.budget} frames/video, "
          f"batch {args.batch_size}, {args.max_new_tokens} new tokens, 1 CPU per actor ==")
    for kind, label in (("engine", "engine pool"), ("pass", "whole pass (decode pool 0.5 CPU + actors 0.75 CPU)")):
        if kind == "pass":
            print(f"\n== {label} ==")
        for a in (1, 2):
            print(f"{a} actor(s): {scaling[f'{kind}_{a}_wall_s']:6.1f} s wall (start-up included), "
                  f"{scaling[f'{kind}_{a}_steady']:.2f} samples/s steady")
        print(f"ratio 2 vs 1 actors: {scaling[f'{kind}_1_wall_s'] / scaling[f'{kind}_2_wall_s']:.2f}x wall, "
              f"{scaling[f'{kind}_2_steady'] / scaling[f'{kind}_1_steady']:.2f}x steady")
    print(f"\n== TransformersEngine in-process, 1 thread, best of {args.repeats} ==")
    print(f"per-sample (batch 1): {rates[1]:.2f} samples/s")
    print(f"batched (batch {args.batch_size}):   {rates[args.batch_size]:.2f} samples/s")
    print(f"ratio batched vs per-sample: {rates[args.batch_size] / rates[1]:.2f}x "
          f"(outputs identical: {bool(rates['identical'])})")


if __name__ == "__main__":  # the isolated decoder's forkserver re-imports this module
    main()
