"""A one-rank process group outside Ray Train (GPU tests, benchmarks, debugging a training step).

Ray Train makes the process group for its workers; code that drives the DeepSpeed engine by hand
needs the same environment a rank sees (RANK, WORLD_SIZE, MASTER_ADDR/PORT) and a group.
"""

from __future__ import annotations

import os
import socket


def init_single_rank(backend: str = "nccl") -> None:
    """Initialize a world of one on a free local port (no-op if a group exists); GPU 0 for nccl."""
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(
        {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    )
    device = None
    if backend == "nccl":
        torch.cuda.set_device(0)
        device = torch.device("cuda", 0)
    dist.init_process_group(backend, rank=0, world_size=1, device_id=device)
