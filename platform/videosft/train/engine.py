"""The DeepSpeed seam: the only module that imports deepspeed (lazily, public APIs only).

On CPU machines DS_ACCELERATOR must be "cpu" before deepspeed is imported; the training loop sets
it from the config. ZeRO-2 and ZeRO-3 both run on CPU with the gloo process group Ray Train makes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch


def init_engine(model: torch.nn.Module, ds_config: dict[str, Any], param_groups: Iterable[Any] | None = None) -> Any:
    """Wrap `model` in a DeepSpeed engine using the already-initialized torch process group."""
    os.environ.setdefault("DS_ACCELERATOR", "cpu" if not torch.cuda.is_available() else "cuda")
    import deepspeed

    params = list(param_groups) if param_groups is not None else [p for p in model.parameters() if p.requires_grad]
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=params, config=ds_config)
    return engine
