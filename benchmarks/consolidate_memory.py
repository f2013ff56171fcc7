# Run: python benchmarks/consolidate_memory.py [--depths 8,32] [--hidden 512] [--json out.json]
"""Host memory of consolidating a ZeRO-3 model: all at once (the old path) vs unit by unit (train/consolidate.py).

For each depth, two gloo ranks (fresh processes, DS_ACCELERATOR=cpu) build the same random-weight
Qwen2.5-VL-shaped bf16 model (untied lm_head), wrap it in DeepSpeed ZeRO-3 with every parameter
partitioned (the repo's ds_config and engine seam), then consolidate twice into a temp dir:

  new  consolidate(): GatheredParameters over one unit (<= --unit-mb, a larger tensor alone),
       rank 0 streams it into safetensors shards of --shard-mb, the next unit after
  old  the removed engine.consolidated_state_dict: GatheredParameters over every parameter, rank 0
       copies the state dict to CPU and `save_pretrained`s it (what train/loop.py did)

(new first: memory the old path frees stays in the allocator and would hide the new path's;
imports and a first gather are warmed up before either.)
A thread samples each rank's RSS (/proc/self/statm) every ms during each consolidation, plus a
sample at each unit's gather; the figure is the peak minus the RSS just before (after
malloc_trim). Under ZeRO-3 on GPUs the gathered units live in GPU memory; on CPU they are host
memory, so these peaks are each rank's gather footprint and rank 0's write buffer together.
The ranks run with a fixed glibc mmap threshold (see MMAP_THRESHOLD).
Expectation: old grows with the model (a full gathered copy per rank, two on rank 0); new stays
at the largest unit whatever the depth. The two checkpoints are compared tensor for tensor.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PAGE = os.sysconf("SC_PAGE_SIZE")
# Fixed glibc mmap threshold in the ranks: every buffer >= 128 KiB is its own mapping, returned to
# the OS when freed, so RSS follows live memory. With glibc's default the threshold rises to the
# largest chunk freed so far (up to 32 MiB), later gather buffers come from its arenas, and freed
# ones stay resident there: RSS then grows with the number of gathers, not with what is live
# (`--glibc-default` shows it). Tensors above 32 MiB (a 72B model's) are always mmapped.
MMAP_THRESHOLD = 128 * 1024


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


def trim() -> None:
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


class PeakRSS:
    """RSS sampled every `interval` s in a thread (and on `sample()`); `.increase` = peak - start."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def sample(self, *_: object) -> None:
        self.peak = max(self.peak, rss())

    def __enter__(self) -> PeakRSS:
        trim()
        self.start = rss()
        self.peak = self.start
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
        trim()
        self.kept = rss() - self.start  # still resident after malloc_trim: live (or leaked) memory

    @property
    def increase(self) -> int:
        return self.peak - self.start


# --------------------------------------------------------------------------- one rank
def build_model(layers: int, hidden: int):
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=8192,
            hidden_size=hidden,
            intermediate_size=3 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=8,
            num_key_value_heads=2,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=2,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 1e4,
                "mrope_section": [8, 12, 12] if hidden // 8 == 64 else [4, 6, 6],
            },
        ),
        vision_config=dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=2, out_hidden_size=hidden),
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    with torch.device("cpu"):
        model = Qwen2_5_VLForConditionalGeneration(config).to(torch.bfloat16)
    return model


def old_consolidate(engine, rank: int, out: str) -> None:
    """The removed engine.consolidated_state_dict + the loop's save_pretrained, verbatim."""
    import deepspeed

    module = engine.module
    with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None):
        state = (
            None
            if rank != 0
            else {k: v.detach().to("cpu", copy=True).contiguous() for k, v in module.state_dict().items()}
        )
    if rank == 0:
        module.save_pretrained(out, state_dict=state)


def warm_up(engine) -> None:
    """Imports and first-call allocations both paths share, outside the measured windows: the
    planner's and writer's modules (transformers, huggingface_hub, pyarrow.fs) and one gather."""
    import deepspeed
    from pyarrow import fs

    from videosft.train.consolidate import plan_shards

    fs.LocalFileSystem()
    plan_shards(engine.module)
    first = next(engine.module.parameters())
    with deepspeed.zero.GatheredParameters([first], modifier_rank=None):
        first.data.sum()


def rank_main(args: argparse.Namespace) -> None:
    import torch.distributed as dist

    from videosft.train.consolidate import consolidate
    from videosft.train.ds_config import ZeroSettings, build_ds_config
    from videosft.train.engine import init_engine

    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo")
    model = build_model(args.layers, args.hidden)
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    largest_tensor = max(p.numel() * p.element_size() for p in model.parameters())
    zero = ZeroSettings(stage=3, stage3_param_persistence_threshold=0)
    ds = build_ds_config(
        zero=zero, micro_batch_per_gpu=1, grad_accum=1, world_size=2, precision="bf16", lr=1e-4, torch_adam=True
    )
    engine = init_engine(model, ds)
    del model
    out = {"rank": rank, "layers": args.layers, "model_bytes": model_bytes, "largest_tensor_bytes": largest_tensor}
    new_dir, old_dir = os.path.join(args.work, "new"), os.path.join(args.work, "old")
    warm_up(engine)
    dist.barrier()
    with PeakRSS() as peak:
        t0 = time.perf_counter()
        plan = consolidate(
            engine.module,
            new_dir if rank == 0 else None,
            rank,
            max_shard_size=f"{args.shard_mb}MB",
            max_unit_bytes=args.unit_mb * 10**6,
            on_unit=peak.sample,
        )
        out["new_s"] = time.perf_counter() - t0
    out.update(
        new_rss_start=peak.start, new_rss_increase=peak.increase, new_rss_kept=peak.kept, shards=len(plan.shards)
    )
    from videosft.train.consolidate import units

    out["largest_unit_bytes"] = max(sum(t.nbytes for t in u) for u in units(plan, args.unit_mb * 10**6))
    dist.barrier()
    with PeakRSS() as peak:
        t0 = time.perf_counter()
        old_consolidate(engine, rank, old_dir)
        out["old_s"] = time.perf_counter() - t0
    out.update(old_rss_start=peak.start, old_rss_increase=peak.increase, old_rss_kept=peak.kept)
    dist.barrier()
    if rank == 0:
        out["equal_tensors"] = compare(new_dir, old_dir)
    with open(os.path.join(args.work, f"rank{rank}.json"), "w") as fh:
        json.dump(out, fh)


def compare(a: str, b: str) -> int:
    """Number of tensors, after checking both checkpoints hold the same keys and equal tensors."""
    import torch
    from safetensors import safe_open

    def index(d: str) -> dict[str, str]:
        path = os.path.join(d, "model.safetensors.index.json")
        if os.path.exists(path):
            with open(path) as fh:
                return json.load(fh)["weight_map"]
        with safe_open(os.path.join(d, "model.safetensors"), "pt") as fh:
            return {k: "model.safetensors" for k in fh.keys()}

    ia, ib = index(a), index(b)
    if ia.keys() != ib.keys():
        raise SystemExit(f"key sets differ: {sorted(set(ia) ^ set(ib))[:5]}")
    for key in ia:
        with safe_open(os.path.join(a, ia[key]), "pt") as fa, safe_open(os.path.join(b, ib[key]), "pt") as fb:
            if not torch.equal(fa.get_tensor(key), fb.get_tensor(key)):
                raise SystemExit(f"tensor {key} differs between the two checkpoints")
    return len(ia)


# --------------------------------------------------------------------------- driver
def run_depth(layers: int, args: argparse.Namespace) -> list[dict]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as work:
        procs = []
        for rank in range(2):
            env = {
                **os.environ,
                "RANK": str(rank),
                "LOCAL_RANK": str(rank),
                "WORLD_SIZE": "2",
                "DS_ACCELERATOR": "cpu",
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
                **({} if args.glibc_default else {"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}),
                "OMP_NUM_THREADS": "1",
                "PYTHONPATH": os.pathsep.join([os.path.join(ROOT, "platform"), os.environ.get("PYTHONPATH", "")]),
            }
            cmd = [
                sys.executable,
                os.path.abspath(__file__),
                "--rank-main",
                "--layers",
                str(layers),
                "--work",
                work,
                "--hidden",
                str(args.hidden),
                "--unit-mb",
                str(args.unit_mb),
                "--shard-mb",
                str(args.shard_mb),
            ]
            procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        logs = [p.communicate(timeout=1800)[0] for p in procs]
        for p, log in zip(procs, logs):
            if p.returncode != 0:
                raise SystemExit(f"rank failed:\n{log[-4000:]}")
        return [json.load(open(os.path.join(work, f"rank{r}.json"))) for r in range(2)]


def report(rows: list[dict]) -> None:
    mb = 1e6
    print(
        f"{'layers':>6} {'rank':>4} {'model MB':>9} {'unit MB':>8} {'old +MB':>8} {'new +MB':>8} {'old/new':>8} "
        f"{'new/unit':>8} {'old s':>6} {'new s':>6} {'old kept':>8} {'new kept':>8}"
    )
    for r in rows:
        print(
            f"{r['layers']:>6} {r['rank']:>4} {r['model_bytes'] / mb:>9.1f} {r['largest_unit_bytes'] / mb:>8.1f} "
            f"{r['old_rss_increase'] / mb:>8.1f} {r['new_rss_increase'] / mb:>8.1f} "
            f"{r['old_rss_increase'] / max(r['new_rss_increase'], 1):>8.1f} "
            f"{r['new_rss_increase'] / r['largest_unit_bytes']:>8.2f} {r['old_s']:>6.1f} {r['new_s']:>6.1f} "
            f"{r['old_rss_kept'] / mb:>8.1f} {r['new_rss_kept'] / mb:>8.1f}"
        )
    by = {(r["layers"], r["rank"]): r for r in rows}
    depths = sorted({r["layers"] for r in rows})
    if len(depths) >= 2:
        lo, hi = depths[0], depths[-1]
        for rank in (0, 1):
            a, b = by[(lo, rank)], by[(hi, rank)]
            print(
                f"rank {rank}, {lo} -> {hi} layers: model x{b['model_bytes'] / a['model_bytes']:.2f}, "
                f"old peak x{b['old_rss_increase'] / max(a['old_rss_increase'], 1):.2f}, "
                f"new peak x{b['new_rss_increase'] / max(a['new_rss_increase'], 1):.2f}"
            )
    for r in rows:
        if r["rank"] == 0:
            print(
                f"{r['layers']} layers: new and old checkpoints equal over {r['equal_tensors']} tensors "
                f"({r['shards']} new shards)"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depths", default="8,32")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--unit-mb", type=int, default=4, help="max_unit_bytes of the new path, MB")
    ap.add_argument("--shard-mb", type=int, default=50, help="max_shard_size of the new path, MB")
    ap.add_argument(
        "--glibc-default",
        action="store_true",
        help="keep glibc's dynamic mmap threshold (freed gather buffers stay resident in its arenas)",
    )
    ap.add_argument("--json")
    ap.add_argument("--rank-main", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--layers", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rank_main:
        rank_main(args)
        return
    print(
        f"[consolidate_memory] {time.strftime('%Y-%m-%d %H:%M:%S')}  load: {os.getloadavg()}  "
        f"cpus: {os.cpu_count()}  hidden {args.hidden}, unit <= {args.unit_mb} MB, shards <= {args.shard_mb} MB, "
        f"ranks' malloc: {'glibc default' if args.glibc_default else f'MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}'}",
        flush=True,
    )
    rows = []
    for layers in [int(d) for d in args.depths.split(",")]:
        rows += run_depth(layers, args)
        print(json.dumps(rows[-2:]), flush=True)
    report(rows)
    print(f"[consolidate_memory] done, load: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(ROOT, "platform"))
    main()
