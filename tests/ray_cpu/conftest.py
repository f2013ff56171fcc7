"""Local Ray cluster for the ray_cpu tier: one per module, always shut down."""

import os

import pytest


@pytest.fixture(scope="module")
def local_ray():
    import ray

    from videosft.ray_runtime import apply_local_cluster_env

    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    apply_local_cluster_env()  # as ensure_ray does for a cluster it starts
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
