"""Local Ray cluster for the ray_cpu tier: one per module, always shut down."""

import os

import pytest


@pytest.fixture(scope="module")
def local_ray():
    import ray

    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"DS_ACCELERATOR": "cpu", "TOKENIZERS_PARALLELISM": "false"}},
    )
    try:
        yield ray
    finally:
        ray.shutdown()
