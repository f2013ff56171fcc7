"""GPU tier: real CUDA DeepSpeed runs, skipped on machines without CUDA (CI, laptops).

DeepSpeed picks its accelerator when first imported; the root conftest pins "cpu" by default, so
this tier re-pins "cuda" before any test imports deepspeed. Run it on its own:
`DS_ACCELERATOR=cuda python -m pytest -q tests/gpu`.
"""

import os

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
if HAS_CUDA:
    os.environ["DS_ACCELERATOR"] = "cuda"


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "tests/gpu/" in str(item.fspath).replace(os.sep, "/") and not HAS_CUDA:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def single_rank_nccl():
    """A one-rank NCCL process group, as Ray Train would make for one GPU worker."""
    from videosft.train.single_rank import init_single_rank

    init_single_rank("nccl")
    yield
