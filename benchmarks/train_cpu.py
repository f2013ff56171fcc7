"""What our training path costs on CPU compared with a plain torch loop, same model, same batches.

A compute-bound Qwen2.5-VL-shaped model (random weights, tens of millions of parameters: the tiny
builder's config made wider and deeper) trains on a fixed synthetic stream of video samples,
encoded once through the real processor and chat template. Three set-ups, same thread count
(`torch.set_num_threads(--threads)`; Ray's worker sets it from `train.cpus_per_worker`, which is
`--threads` here), same micro-batches, fp32:
  (a) bare torch: model(**batch).loss.backward(), clip_grad_norm_, torch AdamW, zero_grad;
      batches collated once, up front;
  (b) our DeepSpeed ZeRO-2 engine outside Ray: loop.prepare_model, loop._ds_config, engine.init_engine,
      and the loop's per-step work (load_features + collate + to_device, engine forward/backward/step,
      the metric window);
  (c) the full path inside Ray Train: trainer.fit -> TorchTrainer (1 gloo worker) -> loop.py's
      train_loop_per_worker, reading the encoded rows from a materialized Ray Dataset through
      run.py's MaterializedData + ResumableStream factories (`iter_batches` streaming split, as a
      real run); decode/encode are not in (c) (other benchmarks measure them), nor in (a).
Steady state: the first `--log-every` steps are warm-up; the next `--windows` x `--log-every` steps
are timed. (c)'s time is the sum of the loop's own metric windows (`window_s` in the history the
final checkpoint carries), so Ray start-up, consolidation and checkpoint upload are not counted;
(a) and (b) are timed the same way. Repetitions run a, b, c, a, b, c, ... so the shared machine's
load falls on all three. Prints (b)/(a) and (c)/(a) of the medians over repetitions, for two clocks:
process CPU seconds per step (the loop's `window_cpu_s` in (c): the worker process, Ray's threads
included) and wall seconds. With one thread and a compute-bound step the two agree on an idle
machine; on a shared one the load stretches wall time by whatever the scheduler hands out, so the
CPU-time ratio is the overhead figure and the wall ratio is reported beside it.

    python benchmarks/train_cpu.py --reps 3 --out benchmarks/results/train_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "platform"))
os.environ.setdefault("DS_ACCELERATOR", "cpu")

from videosft import schema as S  # noqa: E402
from videosft.config import load_config  # noqa: E402
from videosft.data.preprocess import FEATURES, N_TEXT_TOKENS, N_VISUAL_TOKENS, encode_sample, load_features  # noqa: E402
from videosft.models.registry import get_family  # noqa: E402
from videosft.train.checkpoint import SAMPLE_INDEX  # noqa: E402

TURNS = [
    {"from": "human", "value": "In which order did the two shapes flash, and what colour was the last one?"},
    {"from": "gpt", "value": "First the red square, then the blue circle; the last one was blue."},
]
# Wider and deeper than the tiny builder (hidden 64 x 2 layers): ~30M parameters, compute-bound on CPU.
TEXT = dict(
    hidden_size=512,
    intermediate_size=1536,
    num_hidden_layers=8,
    num_attention_heads=8,
    num_key_value_heads=2,
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [8, 12, 12]},
)
VISION = dict(
    depth=4, hidden_size=256, intermediate_size=768, num_heads=4, out_hidden_size=512, fullatt_block_indexes=[3]
)


def build_model_dir(root: Path) -> Path:
    """The tiny checkpoint's tokenizer/processor with a wider, deeper random model, saved as safetensors."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tiny = get_family("qwen2_5_vl").build_tiny(root / "tiny")
    cfg = Qwen2_5_VLConfig.from_pretrained(tiny)
    for key, value in TEXT.items():
        setattr(cfg.text_config, key, value)
    cfg.text_config.layer_types = ["full_attention"] * cfg.text_config.num_hidden_layers
    for key, value in VISION.items():
        setattr(cfg.vision_config, key, value)
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(cfg)
    out = root / "model"
    model.save_pretrained(out)
    for f in tiny.iterdir():  # tokenizer + processor files
        if not (out / f.name).exists():
            (out / f.name).write_bytes(f.read_bytes())
    return out


def encoded_rows(model_dir: Path, n: int, frames: int, side: int) -> list[dict]:
    """`n` encoded video samples (same shape, different pixels): the rows run.py's datasets hold."""
    from transformers import AutoProcessor

    fam = get_family("qwen2_5_vl")
    processor = AutoProcessor.from_pretrained(model_dir)
    rows = []
    for i in range(n):
        media = np.random.default_rng(i).integers(0, 255, (frames, side, side, 3), dtype=np.uint8)
        row = {S.MEDIA_TYPE: "video", S.CONVERSATIONS: json.dumps(TURNS), S.SAMPLED_FPS: 2.0, S.FRAMES: media}
        enc = encode_sample(row, fam, processor, for_generation=False)
        rows.append(
            {
                S.ID: f"s{i}",
                S.MEDIA_TYPE: "video",
                FEATURES: enc[FEATURES],
                N_TEXT_TOKENS: enc[N_TEXT_TOKENS],
                N_VISUAL_TOKENS: enc[N_VISUAL_TOKENS],
                SAMPLE_INDEX: i,
            }
        )
    return rows


def experiment(args, tmp: Path, model_dir: Path):
    steps = args.log_every * (1 + args.windows)
    return load_config(
        REPO / "jobs/configs/ci.yaml",
        [
            f"output_dir={tmp / 'runs'}",
            f"model.path={model_dir}",
            "train.num_workers=1",
            f"train.cpus_per_worker={args.threads}",
            f"train.max_steps={steps}",
            f"train.micro_batch_size={args.micro}",
            f"train.log_every={args.log_every}",
            "train.zero_stage=2",
            "train.precision=fp32",
            "train.checkpoint_every=0",
            "train.lr=1e-4",
            "train.grad_clip=1.0",
            "train.max_failures=0",
            "data.bucket_by_cost=false",
            "data.shuffle_buffer=0",
        ],
    )


def _batches(rows: list[dict], micro: int, pad_id: int) -> list[dict]:
    from videosft.models.collate import collate

    return [
        collate([load_features(r[FEATURES]) for r in rows[i : i + micro]], pad_id)
        for i in range(0, len(rows) - micro + 1, micro)
    ]


def _timed(step, n_warm: int, n_timed: int) -> dict[str, float]:
    """Wall and process-CPU seconds per step over `n_timed` steps after `n_warm` warm-up steps."""
    for i in range(n_warm):
        step(i)
    t0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(n_warm, n_warm + n_timed):
        step(i)
    return {"wall": (time.perf_counter() - t0) / n_timed, "cpu": (time.process_time() - cpu0) / n_timed}


def run_bare(args, cfg, model_dir: Path, rows: list[dict], pad_id: int) -> dict[str, float]:
    """(a): the plain torch loop, batches collated up front."""
    import torch
    from transformers import AutoModelForImageTextToText

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(False)  # (b)'s seed_everything turns it on in this process
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    batches = _batches(rows, args.micro, pad_id)

    def step(i: int) -> None:
        model(**batches[i % len(batches)]).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return _timed(step, args.log_every, args.log_every * args.windows)


def run_engine(args, cfg, model_dir: Path, rows: list[dict], pad_id: int) -> dict[str, float]:
    """(b): our engine wrapper and the loop's per-step work, outside Ray (one gloo rank)."""
    import torch
    from transformers import AutoModelForImageTextToText

    from videosft.models.collate import collate, to_device
    from videosft.models.param_groups import install_visual_keepalive
    from videosft.train import loop
    from videosft.train.engine import init_engine
    from videosft.train.metrics import StepWindow, batch_flops, count_patches
    from videosft.train.single_rank import init_single_rank

    init_single_rank("gloo")
    loop.seed_everything(cfg.train.seed, cfg.train.cpus_per_worker, False)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    model.train()
    family = get_family(cfg.model.family)
    groups, shape = loop.prepare_model(model, family, cfg.train)
    keepalive = install_visual_keepalive(model, family)
    ds = loop._ds_config(cfg, 1, model)
    for item in args.ds_set:  # profiling: "zero_optimization.contiguous_gradients=false" and the like
        key, value = item.split("=", 1)
        *parents, leaf = key.split(".")
        node = ds
        for part in parents:
            node = node[part]
        node[leaf] = json.loads(value)
    engine = init_engine(model, ds, groups)
    window = StepWindow()

    def step(i: int) -> None:
        nonlocal window
        start = (i * args.micro) % (len(rows) - args.micro + 1)
        batch = rows[start : start + args.micro]
        inputs = collate([load_features(r[FEATURES]) for r in batch], pad_id)
        loss = engine(**to_device(inputs, engine.device, loop._float_dtype(engine))).loss
        engine.backward(loss)
        engine.step()
        tokens, patches = int(inputs["attention_mask"].sum()), count_patches(inputs, shape.patch_size)
        window.add(
            samples=len(batch),
            tokens=tokens,
            visual=sum(r[N_VISUAL_TOKENS] for r in batch),
            patches=patches,
            loss=loss.detach(),
            flops=batch_flops(shape, tokens, int(inputs["input_ids"].shape[1]), patches),
        )
        if engine.global_steps % cfg.train.log_every == 0:
            window.row(engine.global_steps, None)
            window = StepWindow()

    try:
        return _timed(step, args.log_every, args.log_every * args.windows)
    finally:
        keepalive.remove()
        engine.destroy()


def run_ray(args, cfg, model_dir: Path, dataset, rep: int, tmp: Path) -> dict[str, float]:
    """(c): trainer.fit over run.py's dataset factories; steady state from the loop's metric windows."""
    from videosft.train.checkpoint import ResumableStream
    from videosft.train.run import MaterializedData
    from videosft.train.trainer import fit

    storage = str(tmp / "train")
    name = f"bench_{rep}"
    build = MaterializedData(dataset)
    datasets = {
        "train": ResumableStream(build, f"{storage}/{name}", resume=False),
        "train_resume": ResumableStream(build, f"{storage}/{name}", resume=True),
    }
    outcome = fit(cfg, datasets, str(model_dir), 8, run_name=name, storage_path=storage)
    history = json.loads((Path(outcome.checkpoint_path) / "videosft_meta.json").read_text())["history"]
    timed = [h for h in history if h["step"] > args.log_every]
    if len(timed) != args.windows:
        raise RuntimeError(f"(c) logged {len(timed)} timed windows, expected {args.windows}: {history}")
    n = args.log_every * args.windows
    return {"wall": sum(h["window_s"] for h in timed) / n, "cpu": sum(h["window_cpu_s"] for h in timed) / n}


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--micro", type=int, default=2)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--side", type=int, default=112)
    ap.add_argument("--log-every", type=int, default=5, help="warm-up steps, and steps per timed window")
    ap.add_argument("--windows", type=int, default=2, help="timed windows per repetition")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="abc", help="which set-ups to run (profiling)")
    ap.add_argument("--out", default=None, help="JSON results path")
    ap.add_argument(
        "--ds-set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override a key of (b)'s DeepSpeed config (profiling; (c) keeps the loop's)",
    )
    args = ap.parse_args()

    import ray
    import torch
    from transformers import AutoProcessor

    tmp = Path(tempfile.mkdtemp(prefix="train_cpu_"))
    model_dir = build_model_dir(tmp)
    n_steps = args.log_every * (1 + args.windows)
    rows = encoded_rows(model_dir, args.micro * n_steps, args.frames, args.side)  # one epoch = the run
    pad_id = AutoProcessor.from_pretrained(model_dir).tokenizer.pad_token_id
    cfg = experiment(args, tmp, model_dir)
    n_params = sum(
        t.numel()
        for t in __import__("safetensors.torch", fromlist=["load_file"])
        .load_file(str(model_dir / "model.safetensors"))
        .values()
    )
    seq = [len(load_features(r[FEATURES])["input_ids"]) for r in rows[:1]][0]
    print(
        f"model: {n_params / 1e6:.1f}M parameters; micro-batch {args.micro} x {seq} tokens "
        f"({rows[0][N_VISUAL_TOKENS]} visual), {args.frames} frames {args.side}px; threads {args.threads}; "
        f"{args.log_every} warm-up + {args.windows}x{args.log_every} timed steps per repetition",
        flush=True,
    )
    start_uptime = _uptime()
    print(f"start: {start_uptime}", flush=True)

    dataset = None
    if "c" in args.only:
        ray.init(
            num_cpus=args.threads + 1,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"DS_ACCELERATOR": "cpu", "TOKENIZERS_PARALLELISM": "false"}},
        )
        dataset = ray.data.from_items(rows).materialize()
    times: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in args.only}
    run = {
        "a": lambda rep: run_bare(args, cfg, model_dir, rows, pad_id),
        "b": lambda rep: run_engine(args, cfg, model_dir, rows, pad_id),
        "c": lambda rep: run_ray(args, cfg, model_dir, dataset, rep, tmp),
    }
    try:
        for rep in range(args.reps):
            for k in args.only:
                for clock, value in run[k](rep).items():
                    times[k][clock].append(value)
            print(
                f"rep {rep}: "
                + ", ".join(f"({k}) {v['wall'][-1]:.3f} s/step wall, {v['cpu'][-1]:.3f} CPU" for k, v in times.items())
                + f"; {_uptime()}",
                flush=True,
            )
    finally:
        if ray.is_initialized():
            ray.shutdown()
    result = {
        "params": n_params,
        "seq_len": seq,
        "args": vars(args),
        "step_s": times,
        "torch": torch.__version__,
        "start_uptime": start_uptime,
        "end_uptime": _uptime(),
    }
    for clock in ("cpu", "wall"):
        # medians over repetitions: a shared machine's load comes in bursts that hit one set-up's run
        med = {k: statistics.median(v[clock]) for k, v in times.items()}
        result[f"median_{clock}_s"] = med
        for k in "bc":
            if k in med and "a" in med:
                result[f"ratio_{k}_over_a_{clock}"] = med[k] / med["a"]
    print(json.dumps(result, indent=1), flush=True)
    for clock in ("cpu", "wall"):
        med = result[f"median_{clock}_s"]
        ratios = ", ".join(
            f"({k})/(a) = {result[f'ratio_{k}_over_a_{clock}']:.3f}"
            for k in "bc"
            if f"ratio_{k}_over_a_{clock}" in result
        )
        print(
            f"median {clock} s/step: " + ", ".join(f"({k}) {v:.3f}" for k, v in med.items()) + f"; {ratios}", flush=True
        )
    print(f"end: {result['end_uptime']}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
