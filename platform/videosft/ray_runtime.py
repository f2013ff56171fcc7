"""Ray start-up in one place: every verb, job, sweep and study starts (or joins) Ray through here.

The same code runs locally, under `ray job submit` and in a RayJob: `ensure_ray` joins the cluster
the environment names (RAY_ADDRESS, or the job's) and otherwise starts a local one. Worker output
always streams to the driver (`log_to_driver`): the console (videosft/console.py) decides where
the driver's output goes, so a quiet console still keeps every Ray, Ray Data, Tune and Train line
in its log file. Quiet mode also switches off what only makes sense on a terminal that shows it:
Ray Data's per-operator progress bars (Ray's own switch, `RAY_DATA_DISABLE_PROGRESS_BARS`, read
by every Ray process at import, so it travels to the workers in the runtime env). A cluster started
here also gets `local_cluster_env` (what only a multi-node cloud cluster needs, switched off).
"""

from __future__ import annotations

import logging
import os

_QUIET = {"enabled": False}
_STARTED = {"here": False}  # whether ensure_ray started Ray (then the console shuts it down)


def set_quiet(quiet: bool) -> None:
    """Called by the console before Ray starts: quiet drops Ray Data's progress bars everywhere."""
    _QUIET["enabled"] = bool(quiet)


def is_quiet() -> bool:
    return _QUIET["enabled"]


def worker_env() -> dict[str, str]:
    """Env vars every Ray worker of this driver gets (its runtime env). A job's runtime env must not
    set the default ones (Ray refuses a conflicting merge): clusters_check.DRIVER_ENV_VARS lists them."""
    env = {"TOKENIZERS_PARALLELISM": "false"}
    if "DS_ACCELERATOR" in os.environ:
        env["DS_ACCELERATOR"] = os.environ["DS_ACCELERATOR"]
    if is_quiet():
        env["RAY_DATA_DISABLE_PROGRESS_BARS"] = "1"
    return env


def local_cluster_env() -> dict[str, str]:
    """Settings for a Ray cluster this process starts itself (one machine, nobody else's nodes).

    Ray Train's preemption watcher is one more actor process per training run (~2.5 CPU-s of
    imports on these CPUs, 13 of them in the CI study) that polls for cloud node drains, which a
    local cluster never has; a cluster we join keeps Ray's default.
    """
    return {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0"}


def apply_local_cluster_env() -> None:
    """Before `ray.init` starts a local cluster: its raylet, hence every worker, inherits these
    (a value the user set wins)."""
    for key, value in local_cluster_env().items():
        os.environ.setdefault(key, value)


def ensure_ray() -> None:
    """Start or join Ray once per process (a no-op when Ray is already initialized)."""
    import ray

    if ray.is_initialized():
        return
    if not os.environ.get("RAY_ADDRESS"):  # ray.init will start a local cluster
        apply_local_cluster_env()
    if is_quiet():
        from ray.data import DataContext

        DataContext.get_current().enable_progress_bars = False  # the driver's own Datasets
    ray.init(
        runtime_env={"env_vars": worker_env()},
        log_to_driver=True,
        logging_level=logging.WARNING if is_quiet() else logging.INFO,
    )
    _STARTED["here"] = True


def shutdown_if_started() -> None:
    """Shut Ray down if ensure_ray started it in this process (never a cluster someone else began)."""
    if _STARTED["here"]:
        import ray

        ray.shutdown()
        _STARTED["here"] = False
