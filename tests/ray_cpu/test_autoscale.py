"""Autoscaled sweeps on Ray's local autoscaling simulation: from zero worker nodes to one per
concurrent trial, and back to zero when idle.

The cluster: a head with no CPUs (as on the real clusters: trials never land there) and one worker
node type of 2 CPUs, max 3, started by the autoscaler through Ray's FakeMultiNodeProvider (every
"node" is a raylet on this machine). `ray.cluster_utils.AutoscalingCluster` is not usable from the
2.60 wheel (its example YAML is not shipped, and its stop runs `ray stop --force`, which would kill
every Ray cluster on a shared machine), so the head is started here with its own port and temp dir
and an autoscaling config written by the test (provider `external`: the subclass below, which gives
every fake node its own temp dir), and only this cluster's processes are stopped afterwards.

The sweep is planned the way `run_sweep` plans it (`plan_concurrency` from `sweep.cluster_file`,
the simulated cluster's own YAML, then `scale_for`); each of its 3 trials is a Tune
trial reserving the driver's token CPU that runs a one-worker Ray Train run (1.5 CPUs, so one
trial per node) whose training loop waits at a barrier until every trial's loop has started: it
passes only if the three really run at once. Asserted: concurrency 3 planned on an empty cluster,
3 training loops running at once, 3 worker nodes at the peak, and idle scale-down afterwards to
zero worker nodes (which needs Ray's autoscaling coordinator on the head: see the assertion).

The same simulation also runs one Ray Train run whose 2 workers sit on 2 nodes, with its storage on
s3:// (moto's server): one node is killed mid-run and the run resumes from the bucket on a node
the autoscaler brings up (`test_two_node_train_run_survives_losing_a_node`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import yaml
from resume_config import CI_CONFIG, resumable_run_overrides

from local_services import free_port, kill_cluster, moto_s3

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.ray, pytest.mark.slow]
WORKER_CPUS, TRAIN_CPUS, MAX_WORKERS, N_TRIALS, BARRIER_S = 2, 1.5, 3, 3, 240.0
BUCKET = "videosft-runs"
OBJECT_STORE = 100 * 1024**2  # per fake node: the simulation needs no real object store

try:
    from ray.autoscaler._private.fake_multi_node.node_provider import FakeMultiNodeProvider
except ImportError:  # pragma: no cover - the module is imported by the autoscaler process only
    FakeMultiNodeProvider = object


class IsolatedFakeProvider(FakeMultiNodeProvider):
    """FakeMultiNodeProvider whose nodes each get their own Ray temp dir (under `temp_root`)."""

    def _create_node_with_resources_and_labels(self, node_config, tags, count, resources, labels):
        import ray._private.parameter as parameter

        original = parameter.RayParams
        temp_dir = tempfile.mkdtemp(prefix="n", dir=self.provider_config["temp_root"])

        def params(**kwargs):
            kwargs.setdefault("temp_dir", temp_dir)
            return original(**kwargs)

        parameter.RayParams = params
        try:
            return super()._create_node_with_resources_and_labels(node_config, tags, count, resources, labels)
        finally:
            parameter.RayParams = original


def _autoscaling_config(gcs_address: str, temp_root: str) -> dict:
    return {
        "cluster_name": "videosft-autoscale-test",
        "max_workers": MAX_WORKERS,
        "upscaling_speed": 10.0,
        "idle_timeout_minutes": 0.1,
        "provider": {
            "type": "external",
            "module": "test_autoscale.IsolatedFakeProvider",
            "gcs_address": gcs_address,
            "temp_root": temp_root,
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
        },
        "auth": {},
        "docker": {},
        "head_node_type": "ray.head.default",
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            "cpu_worker": {
                "resources": {"CPU": WORKER_CPUS, "object_store_memory": OBJECT_STORE},
                "node_config": {},
                "min_workers": 0,
                "max_workers": MAX_WORKERS,
            },
        },
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


@pytest.fixture()
def s3_bucket(monkeypatch):
    """moto's S3 server over HTTP and a bucket; the endpoint and dummy keys reach pyarrow (and every
    Ray worker, through autoscaling_head's runtime env) the way an instance role's would."""
    with moto_s3(monkeypatch, BUCKET) as client:
        yield client


@pytest.fixture()
def autoscaling_head(monkeypatch):
    import ray

    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    temp_dir = tempfile.mkdtemp(prefix="vsft-as-", dir="/tmp")  # short: unix socket paths are capped
    port = free_port()
    ip = ray._private.services.get_node_ip_address()
    config = Path(temp_dir) / "autoscaling.yaml"
    config.write_text(yaml.safe_dump(_autoscaling_config(f"{ip}:{port}", temp_dir)))
    # the autoscaler imports this module (the provider) and what it imports: tests/ray_cpu, tests, platform
    here = Path(__file__).parent
    pythonpath = os.pathsep.join(
        [str(here), str(here.parent), str(REPO / "platform"), os.environ.get("PYTHONPATH", "")]
    )
    env = {
        **os.environ,
        "RAY_FAKE_CLUSTER": "1",
        "AUTOSCALER_UPDATE_INTERVAL_S": "1",
        "RAY_AUTH_MODE": "disabled",
        "RAY_raylet_start_wait_time_s": "180",  # a loaded shared machine registers raylets slowly
        "PYTHONPATH": pythonpath,
    }
    env.pop("RAY_ADDRESS", None)
    try:
        # Every port of its own: other engineers' Ray clusters may hold the defaults (10001, 52365).
        started = subprocess.run(
            [
                ray_bin,
                "start",
                "--head",
                f"--port={port}",
                "--num-cpus=0",
                "--num-gpus=0",
                f"--object-store-memory={OBJECT_STORE}",
                f"--autoscaling-config={config}",
                f"--temp-dir={temp_dir}",
                "--include-dashboard=false",
                f"--ray-client-server-port={free_port()}",
                f"--dashboard-agent-listen-port={free_port()}",
                "--disable-usage-stats",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a cluster private to this test
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
        aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}  # set by s3_bucket, when used
        ray.init(
            address=f"{ip}:{port}",
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": pythonpath, "DS_ACCELERATOR": "cpu", **aws}},
        )
        yield config
    finally:
        ray.shutdown()
        kill_cluster(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _worker_nodes() -> int:
    import ray

    return sum(1 for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0)


def _what_holds_the_workers() -> str:
    """Alive actors (GCS actor table: the state API needs the dashboard, which this head lacks) and
    placement groups on the worker nodes still up: what keeps one from idling. Never raises."""
    try:
        import ray
        from ray._private import state

        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0}
        actors = [
            (a.get("ActorClassName") or a.get("Name"), a.get("State"), a.get("RequiredResources"))
            for a in state.actors().values()
            if a.get("State") == "ALIVE" and (a.get("Address") or {}).get("NodeID") in nodes
        ]
        groups = [
            (g["strategy"], g["bundles"], g["bundles_to_node_id"])
            for g in ray.util.placement_group_table().values()
            if g["state"] == "CREATED" and set(g.get("bundles_to_node_id", {}).values()) & nodes
        ]
        return f"nodes {sorted(nodes)}: actors {actors}; placement groups {groups}"
    except Exception as exc:  # noqa: BLE001 - a diagnostic, never the test's outcome
        return f"(could not list: {exc!r})"


def _trial(params: dict) -> None:
    """One sweep trial: a one-worker Ray Train run that records when it ran."""
    import ray.train
    from ray import tune
    from ray.train.torch import TorchTrainer

    from videosft.train.trainer import WORKER_START_TIMEOUT_ENV

    os.environ[WORKER_START_TIMEOUT_ENV] = "300"  # what fit() sets from train.worker_start_timeout_s

    def loop(config: dict) -> None:
        start = time.time()
        log, n = config["log"], config["n"]
        Path(log, f"started_{config['i']}").touch()
        deadline = start + config["barrier_s"]  # every trial's loop must start while this one waits
        while len(list(Path(log).glob("started_*"))) < n and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        with open(os.path.join(log, f"trial_{config['i']}.json"), "w") as fh:
            json.dump({"start": start, "end": time.time(), "node": ray.get_runtime_context().get_node_id()}, fh)

    trainer = TorchTrainer(
        loop,
        train_loop_config={"i": params["i"], "n": N_TRIALS, "barrier_s": BARRIER_S, "log": params["log"]},
        scaling_config=ray.train.ScalingConfig(num_workers=1, resources_per_worker={"CPU": TRAIN_CPUS}),
        run_config=ray.train.RunConfig(name=f"t{params['i']}", storage_path=params["storage"]),
    )
    trainer.fit()
    tune.report({"done": 1})


def test_sweep_scales_out_from_zero_and_back(autoscaling_head, tmp_path):
    import ray
    from ray import tune

    from videosft.config import load_config
    from videosft.tune.sweep import (
        TRIAL_DRIVER_CPU,
        _clear_resource_request,
        plan_concurrency,
        scale_for,
    )

    t0 = time.time()
    cfg = load_config(
        None,
        [
            f"sweep.frame_budgets={list(range(1, N_TRIALS + 1))}",
            "train.num_workers=1",
            f"train.cpus_per_worker={TRAIN_CPUS}",
            "data.decode_concurrency=1",
            "data.cpus_per_decoder=0.25",
            "eval.cpus_per_actor=1",
            f"sweep.cluster_file={autoscaling_head}",
        ],
    )
    assert _worker_nodes() == 0
    concurrent, source, autoscaling = plan_concurrency(cfg)
    assert (concurrent, autoscaling) == (MAX_WORKERS, True), source  # not 1: the cluster is empty now
    asked = scale_for(cfg, concurrent, autoscaling)  # as run_sweep: Ray's coordinator on the head, then the request
    assert len(asked) == 2 * concurrent  # a Train worker and a decoder per trial

    peak, stop = [0], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _worker_nodes())
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    log = tmp_path / "log"
    log.mkdir()
    try:
        tuner = tune.Tuner(
            tune.with_resources(_trial, {"CPU": TRIAL_DRIVER_CPU}),
            param_space={
                "i": tune.grid_search(list(range(N_TRIALS))),
                "log": str(log),
                "storage": str(tmp_path / "train"),
            },
            tune_config=tune.TuneConfig(max_concurrent_trials=concurrent),
            run_config=tune.RunConfig(name="autoscale", storage_path=str(tmp_path / "tune")),
        )
        results = tuner.fit()
    finally:
        _clear_resource_request()
    t_sweep = time.time() - t0
    assert not [r.error for r in results if r.error]

    runs = [json.loads((log / f"trial_{i}.json").read_text()) for i in range(N_TRIALS)]
    events = sorted([(r["start"], 1) for r in runs] + [(r["end"], -1) for r in runs])
    running = overlap = 0
    for _, step in events:
        running += step
        overlap = max(overlap, running)
    # Idle scale-down. Placement groups a job leaves behind (here: one trial's token-CPU bundle that
    # Tune/Train v2 has not removed when fit() returns) keep a node busy until the job ends; a
    # sweep job ends after its report, so scale-down is measured after this driver disconnects,
    # from a second, empty job, as the cluster sees it after `ray job submit` returns.
    deadline = time.time() + 60
    while _worker_nodes() and time.time() < deadline:
        time.sleep(1)
    stop.set()
    watcher.join(timeout=5)
    left_in_job = _worker_nodes()
    held = [
        (pg["strategy"], pg["bundles"]) for pg in ray.util.placement_group_table().values() if pg["state"] == "CREATED"
    ]
    address = ray.get_runtime_context().gcs_address
    ray.shutdown()
    ray.init(address=address, log_to_driver=False)
    deadline = time.time() + 120
    while _worker_nodes() and time.time() < deadline:
        time.sleep(1)
    left, t_total = _worker_nodes(), time.time() - t0
    if left:  # what the autoscaler saw last, and what Ray still has on the node
        print(f"\nstill on the worker nodes: {_what_holds_the_workers()}")
        monitor = (Path(autoscaling_head).parent / "session_latest" / "logs" / "monitor.log").read_text()
        print(monitor[monitor.rfind("======== Autoscaler status") :][:3000])
    print(
        f"\nautoscale: planned {concurrent} at once ({source}); peak worker nodes {peak[0]}, "
        f"trials at once {overlap}, nodes used {len({r['node'] for r in runs})}; sweep {t_sweep:.0f} s; "
        f"{left_in_job} node(s) left while the sweep's job was connected (placement groups still held: "
        f"{held}), {left} when checked {t_total:.0f} s after the test began"
    )
    assert peak[0] == MAX_WORKERS
    assert overlap == MAX_WORKERS
    # Idle nodes go, all of them. Before pin_autoscaling_coordinator one node always stayed up at
    # 0.0/2.0 CPU with no demands: it held Ray's detached AutoscalingCoordinator actor, created
    # there by the first trial's Train run (_what_holds_the_workers found it).
    assert left == 0, _what_holds_the_workers()


def _node_temp_dir(node_id: str) -> str:
    """The temp dir IsolatedFakeProvider gave this fake node (its raylet socket lives under it)."""
    import ray

    node = next(n for n in ray.nodes() if n["NodeID"] == node_id)
    return str(Path(node["RayletSocketName"]).parents[2]) + os.sep  # <dir>/session_*/sockets/raylet


def _train_worker_nodes() -> list[str]:
    """Nodes of the alive Ray Train workers (GCS actor table)."""
    from ray._private import state

    return sorted(
        (a.get("Address") or {}).get("NodeID")
        for a in state.actors().values()
        if a.get("State") == "ALIVE" and a.get("ActorClassName") == "RayTrainWorker"
    )


KILL_STEPS, KILL_EVERY, KILL_AT = 4, 2, 3


def _keys(client, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def test_two_node_train_run_survives_losing_a_node(s3_bucket, autoscaling_head, tmp_path, monkeypatch):
    """One Ray Train run of 2 ZeRO-2 workers on 2 fake nodes (1.5 of each node's 2 CPUs apiece),
    storage on s3:// (moto over HTTP: what the nodes share). At step 3 rank 1 waits and its whole node
    is killed (raylet, workers, object store: a preemption). Ray Train restarts the worker group from
    the step-2 checkpoint it reads back from the bucket, on a node the autoscaler brings up; the run
    ends with every step and the pre-kill history, the ZeRO shards are dropped from the bucket
    (train.keep_zero_checkpoints=false) and the safetensors checkpoint is copied next to the trial."""
    import ray

    from videosft.config import load_config
    from videosft.train.checkpoint import CURSOR_FILE, DS_DIR
    from videosft.train.run import train_at_budget
    from videosft.train.trainer import FAULT_ENV
    from videosft.tune.sweep import pin_autoscaling_coordinator
    from videosft.workspace import prepare_inputs

    t0 = time.time()
    cfg = load_config(
        CI_CONFIG,
        resumable_run_overrides(
            tmp_path,
            steps=KILL_STEPS,
            every=KILL_EVERY,
            extra=[
                "data.decode_concurrency=1",
                "data.cpus_per_decoder=0.25",
                f"train.cpus_per_worker={TRAIN_CPUS}",  # one worker per 2-CPU node
                "train.keep_zero_checkpoints=false",  # (ci.yaml keeps them for the local resume test)
                "train.worker_start_timeout_s=300",
                f"train.storage_path=s3://{BUCKET}/train",
            ],
        ),
    )
    assert _worker_nodes() == 0
    inputs = prepare_inputs(cfg)
    pin_autoscaling_coordinator()  # as a sweep does: on the head, not on the node about to die
    marker = tmp_path / "held.json"
    monkeypatch.setenv(FAULT_ENV, f"hold:1:{KILL_AT}:{marker}")
    seen, killed, stop = {}, {}, threading.Event()

    def kill_rank1_node() -> None:
        while not stop.is_set():
            for n in ray.nodes():
                if n["Alive"] and n["Resources"].get("CPU", 0) > 0:
                    seen.setdefault(n["NodeID"], time.time())
            if marker.exists() and not killed:
                held = json.loads(marker.read_text())
                killed.update(held, workers=_train_worker_nodes(), temp_dir=_node_temp_dir(held["node"]))
                killed["zero_bytes"] = sum(
                    o["Size"]
                    for page in s3_bucket.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="train/")
                    for o in page.get("Contents", [])
                    if f"/{DS_DIR}/" in o["Key"]
                )
                kill_cluster(killed["temp_dir"])
                killed["at"] = time.time()
            time.sleep(0.5)

    watcher = threading.Thread(target=kill_rank1_node, daemon=True)
    watcher.start()
    try:
        outcome, stats = train_at_budget(cfg, inputs, 2, tmp_path / "run")
    finally:
        stop.set()
        watcher.join(timeout=10)
    t_done = time.time()

    # two workers on two nodes; rank 1's node went, and a node brought up after it ran the restart
    assert killed, "rank 1 never reached the step it was to be killed at"
    assert killed["rank"] == 1 and killed["step"] == KILL_AT
    assert len(set(killed["workers"])) == 2 and killed["node"] in killed["workers"]
    assert killed["node"] not in {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    replacements = [n for n, t in seen.items() if t > killed["at"]]
    assert replacements, "the restarted worker group ran without a node brought up after the kill"
    # every step, resumed from the checkpoint in the bucket, the history before the kill kept
    local = Path(outcome.checkpoint_path)
    assert local == tmp_path / "run" / "checkpoint" and (local / "model.safetensors").stat().st_size > 0
    meta = json.loads((local / "videosft_meta.json").read_text())
    assert meta["steps"] == KILL_STEPS and outcome.metrics["step"] == KILL_STEPS
    assert meta["resumed_from_step"] == KILL_AT - KILL_AT % KILL_EVERY == 2
    assert [h["step"] for h in meta["history"]] == list(range(1, KILL_STEPS + 1))
    assert stats.total == 16 and stats.rejected == 0
    # the bucket: the resumable checkpoint keeps its cursor (what the restart read), not its ZeRO
    # shards; the final one holds the very safetensors copied next to the trial
    keys = _keys(s3_bucket, "train/train_run/")
    checkpoints = {k.split("/")[2] for k in keys if k.split("/")[2].startswith("checkpoint_2")}
    assert len(checkpoints) == 2, keys
    assert len([k for k in keys if k.endswith(CURSOR_FILE)]) == 1
    assert killed["zero_bytes"] > 0 and not [k for k in keys if f"/{DS_DIR}/" in k]
    (remote,) = [k for k in keys if k.endswith("model.safetensors")]
    assert s3_bucket.get_object(Bucket=BUCKET, Key=remote)["Body"].read() == (local / "model.safetensors").read_bytes()
    left = sum(o["Size"] for o in s3_bucket.list_objects_v2(Bucket=BUCKET, Prefix="train/")["Contents"])
    print(
        f"\ntwo-node resume: workers on {len(set(killed['workers']))} nodes; rank 1's node killed at step "
        f"{KILL_AT} ({killed['at'] - t0:.0f} s in); resumed from step {meta['resumed_from_step']} on "
        f"{len(replacements)} new node(s); finished {t_done - killed['at']:.0f} s after the kill, "
        f"{t_done - t0:.0f} s in all; worker nodes seen {len(seen)}. Bucket: ZeRO shards "
        f"{killed['zero_bytes'] / 1e6:.1f} MB at the kill, dropped after; {left / 1e6:.1f} MB left"
    )
