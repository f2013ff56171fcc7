"""The cluster definitions under clusters/ are checked offline: Ray's own autoscaler schema, the
KubeRay fields the operator needs, one Ray version everywhere, no credentials in files.

What cannot be checked here: anything `ray up` or `kubectl apply` learns from a live cloud or API
server (AMI and image existence, quotas, VPC/subnet/firewall lookups, CRD admission). There is no
offline `ray up --dry-run`; these tests stop at the config Ray builds before contacting the cloud.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from videosft import clusters_check as cc

REPO = Path(__file__).resolve().parents[2]
CLUSTERS = REPO / "clusters"
PYPROJECT = REPO / "pyproject.toml"
SHARED_PVC = CLUSTERS / "kuberay" / "shared-pvc.yaml"
SERVICE_ACCOUNT = CLUSTERS / "kuberay" / "serviceaccount.yaml"
SHARED_MOUNT = "/mnt/shared"  # where every node / pod mounts the shared filesystem for output_dir


def _is_autoscaler(path: Path) -> bool:
    return isinstance(doc := yaml.safe_load(path.read_text()), dict) and "provider" in doc


def _is_ray_manifest(path: Path) -> bool:
    return any(str(d.get("apiVersion", "")).startswith("ray.io") for d in cc.load_yaml_documents(path))


AUTOSCALER = sorted(p for p in CLUSTERS.glob("*.yaml") if _is_autoscaler(p))
KUBERAY = sorted(p for p in (CLUSTERS / "kuberay").glob("*.yaml") if _is_ray_manifest(p))


# ------------------------------------------------------------------------------ shipped files
def test_expected_cluster_files_exist():
    assert {p.name for p in AUTOSCALER} >= {"aws.yaml", "gcp.yaml"}
    assert {p.name for p in KUBERAY} >= {"raycluster.yaml", "rayjob-sweep.yaml", "rayjob-evaluate.yaml"}
    # every clusters/*.yaml is either a `ray up` file or the job runtime env, and is checked below
    assert {p.name for p in CLUSTERS.glob("*.yaml")} == {p.name for p in AUTOSCALER} | {"runtime_env.yaml"}
    # every kuberay/*.yaml is a Ray manifest, the shared volume they mount, or the service account they run as
    assert {p.name for p in (CLUSTERS / "kuberay").glob("*.yaml")} == {p.name for p in KUBERAY} | {
        SHARED_PVC.name,
        SERVICE_ACCOUNT.name,
    }


def test_service_account_lives_in_its_own_manifest_only():
    """`kubectl delete -f raycluster.yaml` must not delete the account under running RayJobs, and
    re-applying a manifest must not drop the cloud-identity annotation bound to it."""
    docs = cc.load_yaml_documents(SERVICE_ACCOUNT)
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [("ServiceAccount", "videosft-ray")]
    for path in [*KUBERAY, SHARED_PVC]:
        kinds = [d.get("kind") for d in cc.load_yaml_documents(path) if isinstance(d, dict)]
        assert "ServiceAccount" not in kinds, path.name
    for path in KUBERAY:
        for doc in cc.load_yaml_documents(path):
            found = cc._cluster_spec_of(doc)
            for where, group in cc._pod_groups(found[1], path.name) if found else []:
                assert group["template"]["spec"]["serviceAccountName"] == "videosft-ray", where


def test_decode_pods_stay_off_gpu_nodes_and_gpu_pods_on_h100():
    for path in KUBERAY:
        for doc in cc.load_yaml_documents(path):
            found = cc._cluster_spec_of(doc)
            for group in found[1]["workerGroupSpecs"] if found else []:
                pod = group["template"]["spec"]
                terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
                    "nodeSelectorTerms"
                ]
                if group["groupName"] == "cpu-decode":
                    assert not pod.get("tolerations")  # GPU pools' nvidia.com/gpu taint keeps them out
                    assert terms == [
                        {
                            "matchExpressions": [
                                {"key": "cloud.google.com/gke-accelerator", "operator": "DoesNotExist"},
                                {"key": "nvidia.com/gpu.present", "operator": "DoesNotExist"},
                            ]
                        }
                    ]
                else:
                    assert {e["key"] for t in terms for e in t["matchExpressions"]} == {
                        "cloud.google.com/gke-accelerator",
                        "node.kubernetes.io/instance-type",
                    }


def test_ray_schema_is_the_one_bundled_with_ray():
    import ray

    path = cc.ray_schema_path()
    assert path.is_file() and path.name == "ray-schema.json"
    assert Path(ray.__file__).parent in path.parents


@pytest.mark.parametrize("path", AUTOSCALER, ids=lambda p: p.name)
def test_autoscaler_yaml_matches_ray_schema(path):
    prepared = cc.validate_autoscaler_yaml(path)
    assert prepared["head_node_type"] in prepared["available_node_types"]


@pytest.mark.parametrize("path", AUTOSCALER, ids=lambda p: p.name)
def test_autoscaler_yaml_project_rules(path):
    assert cc.check_autoscaler_yaml(path) == []


@pytest.mark.parametrize("path", KUBERAY, ids=lambda p: p.name)
def test_kuberay_manifest_has_no_problems(path):
    assert cc.check_kuberay_manifest(path) == []


def test_runtime_env_has_no_problems():
    assert cc.check_runtime_env_yaml(CLUSTERS / "runtime_env.yaml") == []


def test_versions_agree_with_pyproject_and_installed_ray():
    import ray

    pinned = cc.pinned_ray_version(PYPROJECT)
    assert pinned == ray.__version__
    texts = {p.name: p.read_text() for p in [*AUTOSCALER, *KUBERAY, CLUSTERS / "README.md"]}
    for name, text in texts.items():  # comments and the guide included
        for tag in re.findall(r"rayproject/ray:([\w.\-]+)", text):
            assert tag.startswith(pinned), f"{name}: rayproject/ray:{tag}"
        for version in re.findall(r"rayVersion:\s*['\"]?([\w.]+)", text):
            assert version == pinned, f"{name}: rayVersion {version}"


def test_driver_env_vars_list_matches_what_the_driver_sets(monkeypatch):
    # The job runtime env must not repeat what ensure_ray passes to ray.init: Ray refuses to merge.
    from videosft import ray_runtime

    monkeypatch.setenv("DS_ACCELERATOR", "cpu")
    assert set(ray_runtime.worker_env()) <= cc.DRIVER_ENV_VARS


def test_no_cluster_file_forces_cpu_deepspeed():
    docs = [d for p in [*AUTOSCALER, *KUBERAY, CLUSTERS / "runtime_env.yaml"] for d in cc.load_yaml_documents(p)]
    docs += [yaml.safe_load(v) for d in docs for _, k, v in cc._walk(d) if k == "runtimeEnvYAML"]
    for doc in docs:
        for where, key, value in cc._walk(doc):
            assert key != "DS_ACCELERATOR", where
            assert not (isinstance(value, dict) and value.get("name") == "DS_ACCELERATOR"), where
            assert not (isinstance(value, str) and "DS_ACCELERATOR=" in value), where


# ----------------------------------------------------------------------- shared output_dir mount
def _documented_output_dirs() -> dict[str, list[str]]:
    files = [*AUTOSCALER, *KUBERAY, SHARED_PVC, CLUSTERS / "runtime_env.yaml", CLUSTERS / "README.md"]
    # "output_dir=..." and the README's "rejects `output_dir=s3://...`" are prose, not examples
    return {p.name: [v for v in cc.documented_output_dirs(p.read_text()) if not v.endswith("...")] for p in files}


def test_every_documented_output_dir_is_on_the_shared_mount_and_loads():
    # output_dir is written with pathlib; an s3:// / gs:// one would become a local "s3:" folder.
    from videosft.config import load_config

    found = _documented_output_dirs()
    for name in ("aws.yaml", "gcp.yaml", "raycluster.yaml", "rayjob-sweep.yaml", "rayjob-evaluate.yaml", "README.md"):
        assert found[name], f"{name}: documents no output_dir="
    for name, values in found.items():
        for value in values:
            assert "://" not in value and value.startswith(SHARED_MOUNT + "/"), f"{name}: output_dir={value}"
            assert load_config(None, [f"output_dir={value}"]).output_dir == value
    text = "\n".join(p.read_text() for p in CLUSTERS.rglob("*") if p.is_file())
    assert not re.search(r"output_dir=(s3|gs)://[A-Za-z]", text)


@pytest.mark.parametrize("path", AUTOSCALER, ids=lambda p: p.name)
def test_autoscaler_output_dir_is_mounted_on_every_node_type(path):
    cfg = yaml.safe_load(path.read_text())
    views = cc.autoscaler_node_views(cfg)
    assert set(views) == set(cfg["available_node_types"]) and cfg["head_node_type"] in views
    output_dirs = cc.documented_output_dirs(path.read_text())
    assert output_dirs
    for name, (init, options) in views.items():
        mounts = cc.network_mounts(init)
        assert mounts.get(SHARED_MOUNT) in cc.NETWORK_FS_TYPES, name  # on the host, a network filesystem
        assert options is not None and cc.docker_binds(options).get(SHARED_MOUNT) == SHARED_MOUNT, name
        for value in output_dirs:
            assert value.startswith(SHARED_MOUNT + "/")
    assert cc.check_autoscaler_yaml(path) == []


@pytest.mark.parametrize("path", KUBERAY, ids=lambda p: p.name)
def test_kuberay_output_dir_is_on_the_shared_pvc_in_every_pod_group(path):
    output_dirs = cc.documented_output_dirs(path.read_text())
    assert output_dirs and all(v.startswith(SHARED_MOUNT + "/") for v in output_dirs)
    specs = [s for s in map(cc._cluster_spec_of, cc.load_yaml_documents(path)) if s]
    assert specs
    for _, spec in specs:
        groups = list(cc._pod_groups(spec, ""))
        assert len(groups) == 1 + len(spec["workerGroupSpecs"])
        for where, group in groups:
            for value in output_dirs:
                assert cc.shared_volume_for(group, value) == (
                    SHARED_MOUNT,
                    {"persistentVolumeClaim": {"claimName": "videosft-shared"}},
                ), where


def test_shared_pvc_defines_every_claim_the_ray_pods_mount():
    assert cc.check_shared_pvc_manifest(SHARED_PVC) == []
    pvcs = {
        d["metadata"]["name"]: d for d in cc.load_yaml_documents(SHARED_PVC) if d["kind"] == "PersistentVolumeClaim"
    }
    claims = cc.claim_names([d for p in KUBERAY for d in cc.load_yaml_documents(p)])
    assert claims == {"videosft-shared"} <= set(pvcs)
    assert "ReadWriteMany" in pvcs["videosft-shared"]["spec"]["accessModes"]


def test_shared_pvc_check_catches_single_node_access_mode(tmp_path):
    docs = cc.load_yaml_documents(SHARED_PVC)
    next(d for d in docs if d["kind"] == "PersistentVolumeClaim")["spec"]["accessModes"] = ["ReadWriteOnce"]
    path = tmp_path / "pvc.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    assert any("ReadWriteMany" in p for p in cc.check_shared_pvc_manifest(path))


@pytest.mark.parametrize(
    "commands, expected",
    [
        (
            [
                "mountpoint -q /mnt/shared || sudo mount -t nfs4 -o nfsvers=4.1,hard fs-1.efs.x.amazonaws.com:/ /mnt/shared"
            ],
            {"/mnt/shared": "nfs4"},
        ),
        (["sudo mkdir -p /data && sudo mount -t efs -o tls fs-1:/ /data/"], {"/data": "efs"}),
        (["mount 10.0.0.2:/share /mnt/x; echo ok"], {"/mnt/x": ""}),
        (["mountpoint -q /mnt/shared", "sudo mount -a"], {}),
    ],
)
def test_network_mounts_parses_mount_commands(commands, expected):
    assert cc.network_mounts(commands) == expected


def test_docker_binds_parses_run_options():
    options = [
        "--ulimit nofile=65536:65536",
        "-v /mnt/shared:/mnt/shared",
        "--volume=/a:/b:ro",
        "--mount type=bind,source=/c,target=/d",
        "-v named:/e",
    ]
    assert cc.docker_binds(options) == {"/mnt/shared": "/mnt/shared", "/b": "/a", "/d": "/c"}


def _autoscaler_storage(tmp_path, cfg, output_dirs=("/mnt/shared/runs/x",)) -> list[str]:
    return [p for p in cc.check_autoscaler_yaml(_write(tmp_path, cfg), output_dirs=output_dirs) if "output_dir" in p]


def test_autoscaler_storage_catches_missing_bind_mount_and_nfs_mount(tmp_path):
    cfg = yaml.safe_load((CLUSTERS / "aws.yaml").read_text())
    assert _autoscaler_storage(tmp_path, cfg) == []
    no_bind = copy.deepcopy(cfg)
    no_bind["docker"]["run_options"] = [o for o in cfg["docker"]["run_options"] if "/mnt/shared" not in o]
    problems = _autoscaler_storage(tmp_path, no_bind)
    assert {p.split(":")[0] for p in problems} == {f"available_node_types.{n}" for n in cfg["available_node_types"]}
    assert all("bind-mounted" in p for p in problems)
    no_mount = copy.deepcopy(cfg)
    no_mount["initialization_commands"] = []
    problems = _autoscaler_storage(tmp_path, no_mount)
    assert len(problems) == len(cfg["available_node_types"])
    assert all("network filesystem" in p for p in problems)


def test_autoscaler_storage_catches_node_type_that_overrides_the_mount(tmp_path):
    cfg = yaml.safe_load((CLUSTERS / "gcp.yaml").read_text())
    cfg["available_node_types"]["gpu_h100"]["initialization_commands"] = ["echo no mount here"]
    problems = _autoscaler_storage(tmp_path, cfg)
    assert len(problems) == 1 and problems[0].startswith("available_node_types.gpu_h100:")


@pytest.mark.parametrize(
    "value, needle",
    [
        ("s3://bucket/runs/x", "is a URI"),
        ("gs://b/r", "is a URI"),
        ("runs/x", "node-local"),
        ("/tmp/runs/x", "not bind-mounted"),
    ],
)
def test_autoscaler_storage_catches_unshared_output_dir(tmp_path, value, needle):
    cfg = yaml.safe_load((CLUSTERS / "aws.yaml").read_text())
    problems = _autoscaler_storage(tmp_path, cfg, output_dirs=[value])
    assert problems and all(needle in p for p in problems)


def test_autoscaler_storage_requires_a_documented_output_dir(tmp_path):
    cfg = yaml.safe_load((CLUSTERS / "aws.yaml").read_text())
    problems = cc.check_autoscaler_yaml(_write(tmp_path, cfg))  # safe_dump drops the comments
    assert any("no documented `output_dir=`" in p for p in problems)


# ------------------------------------------------------------------------------------ versions
@pytest.mark.parametrize(
    "dep, expected",
    [
        ("ray[default,train,data,tune]==2.60.0", "2.60.0"),
        ("ray==2.9.3", "2.9.3"),
        ("ray [data] == 2.60.0 ; python_version >= '3.10'", "2.60.0"),
    ],
)
def test_pinned_ray_version_parses_pins(tmp_path, dep, expected):
    deps = ", ".join(json.dumps(d) for d in ["numpy", dep])  # a JSON string is a TOML string
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "x"\ndependencies = [{deps}]\n')
    assert cc.pinned_ray_version(tmp_path / "pyproject.toml") == expected


def test_pinned_ray_version_rejects_ranges(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["ray>=2.0"]\n')
    with pytest.raises(cc.ClusterConfigError, match="ray==X"):
        cc.pinned_ray_version(tmp_path / "pyproject.toml")


# ------------------------------------------------------------------ negative: KubeRay manifests
@pytest.fixture
def fake_repo(tmp_path):
    """A checkout with the real Ray pin, one job and one config, so the checks see known files."""
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.read_text())
    (tmp_path / "jobs" / "configs").mkdir(parents=True)
    (tmp_path / "jobs" / "sweep.py").write_text("print('sweep')\n")
    (tmp_path / "jobs" / "configs" / "demo.yaml").write_text("name: demo\n")
    return tmp_path


def _sweep_docs() -> list[dict]:
    docs = list(yaml.safe_load_all((CLUSTERS / "kuberay" / "rayjob-sweep.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "RayJob")
    job["spec"]["entrypoint"] = "python jobs/sweep.py --config jobs/configs/demo.yaml output_dir=/mnt/shared/runs/r"
    return docs


def _check(repo: Path, docs: list[dict]) -> list[str]:
    path = repo / "clusters" / "kuberay" / "m.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs))
    return cc.check_kuberay_manifest(path)


def _job_spec(docs: list[dict]) -> dict:
    return next(d for d in docs if d["kind"] == "RayJob")["spec"]


def test_baseline_manifest_in_fake_repo_is_clean(fake_repo):
    assert _check(fake_repo, _sweep_docs()) == []


def test_catches_wrong_ray_version(fake_repo):
    docs = _sweep_docs()
    _job_spec(docs)["rayClusterSpec"]["rayVersion"] = "2.59.0"
    assert any("rayVersion" in p and "2.59.0" in p for p in _check(fake_repo, docs))


def test_catches_image_for_another_ray(fake_repo):
    docs = _sweep_docs()
    _job_spec(docs)["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["image"] = (
        "rayproject/ray:2.59.0-py311-gpu"
    )
    assert any("2.59.0-py311-gpu" in p for p in _check(fake_repo, docs))


@pytest.mark.parametrize("field", ["groupName", "minReplicas", "maxReplicas", "replicas", "rayStartParams"])
def test_catches_missing_worker_group_field(fake_repo, field):
    docs = _sweep_docs()
    del _job_spec(docs)["rayClusterSpec"]["workerGroupSpecs"][0][field]
    assert any(f"workerGroupSpecs[0].{field}" in p for p in _check(fake_repo, docs))


def test_catches_missing_worker_groups_and_head_container(fake_repo):
    docs = _sweep_docs()
    spec = _job_spec(docs)["rayClusterSpec"]
    del spec["workerGroupSpecs"]
    spec["headGroupSpec"]["template"]["spec"]["containers"] = []
    problems = _check(fake_repo, docs)
    assert any("workerGroupSpecs: missing" in p for p in problems)
    assert any("headGroupSpec.template.spec.containers[0]" in p for p in problems)


def test_catches_plaintext_secret_but_allows_secret_refs(fake_repo):
    docs = _sweep_docs()
    head = _job_spec(docs)["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    head["env"] = [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}]
    assert _check(fake_repo, docs) == []
    head["env"].append({"name": "AWS_SECRET_ACCESS_KEY", "value": "wJalrXUtnFEMI/K7MDENG"})
    assert any("AWS_SECRET_ACCESS_KEY" in p for p in _check(fake_repo, docs))


def test_catches_secret_in_runtime_env_and_inline_secret_object(fake_repo):
    docs = _sweep_docs()
    _job_spec(docs)["runtimeEnvYAML"] = "env_vars:\n  WANDB_API_KEY: abc123\n"
    docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}})
    problems = _check(fake_repo, docs)
    assert any("WANDB_API_KEY" in p for p in problems)
    assert any("Secret with inline data" in p for p in problems)


@pytest.mark.parametrize(
    "entrypoint, needle",
    [
        ("python jobs/nope.py --config jobs/configs/demo.yaml", "jobs/nope.py does not exist"),
        ("python jobs/sweep.py --config jobs/configs/nope.yaml", "jobs/configs/nope.yaml does not exist"),
        ("python /home/ray/train.py", "not a jobs/<name>.py"),
        ("echo hello", "runs no jobs/*.py"),
    ],
)
def test_catches_bad_entrypoint(fake_repo, entrypoint, needle):
    docs = _sweep_docs()
    _job_spec(docs)["entrypoint"] = entrypoint
    assert any(needle in p for p in _check(fake_repo, docs))


@pytest.mark.parametrize("service_type", ["LoadBalancer", "NodePort"])
def test_catches_publicly_exposed_dashboard(fake_repo, service_type):
    docs = _sweep_docs()
    _job_spec(docs)["rayClusterSpec"]["headGroupSpec"]["serviceType"] = service_type
    assert any("ClusterIP" in p for p in _check(fake_repo, docs))


def test_catches_rayjob_that_leaves_its_cluster_running(fake_repo):
    docs = _sweep_docs()
    spec = _job_spec(docs)
    spec["shutdownAfterJobFinishes"] = False
    del spec["ttlSecondsAfterFinished"]
    problems = _check(fake_repo, docs)
    assert any("shutdownAfterJobFinishes" in p for p in problems)
    assert any("ttlSecondsAfterFinished" in p for p in problems)


def test_catches_wrong_api_version_and_missing_name(fake_repo):
    docs = _sweep_docs()
    job = next(d for d in docs if d["kind"] == "RayJob")
    job["apiVersion"] = "ray.io/v1alpha1"
    del job["metadata"]["name"]
    problems = _check(fake_repo, docs)
    assert any("apiVersion" in p for p in problems) and any("metadata.name" in p for p in problems)


def _groups(docs: list[dict]) -> list[dict]:
    spec = _job_spec(docs)["rayClusterSpec"]
    return [spec["headGroupSpec"], *spec["workerGroupSpecs"]]


def test_catches_worker_group_without_the_shared_mount(fake_repo):
    docs = _sweep_docs()
    container = _groups(docs)[2]["template"]["spec"]["containers"][0]
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] != "shared"]
    problems = _check(fake_repo, docs)
    assert len(problems) == 1 and "workerGroupSpecs[1]: output_dir=/mnt/shared/runs/r" in problems[0]


def test_catches_shared_path_on_a_per_node_volume(fake_repo):
    docs = _sweep_docs()
    head = _groups(docs)[0]["template"]["spec"]
    head["volumes"] = [v if v["name"] != "shared" else {"name": "shared", "emptyDir": {}} for v in head["volumes"]]
    problems = _check(fake_repo, docs)
    assert any("headGroupSpec" in p and "ReadWriteMany" in p for p in problems)


def test_catches_groups_on_different_claims(fake_repo):
    docs = _sweep_docs()
    worker = _groups(docs)[1]["template"]["spec"]
    next(v for v in worker["volumes"] if v["name"] == "shared")["persistentVolumeClaim"]["claimName"] = "other"
    assert any("different volumes" in p for p in _check(fake_repo, docs))


@pytest.mark.parametrize(
    "override, needle",
    [("output_dir=s3://b/r", "is a URI"), ("output_dir=runs/r", "node-local"), ("", "no `output_dir=`")],
)
def test_catches_entrypoint_output_dir_off_the_shared_volume(fake_repo, override, needle):
    docs = _sweep_docs()
    _job_spec(docs)["entrypoint"] = f"python jobs/sweep.py --config jobs/configs/demo.yaml {override}".strip()
    assert any(needle in p for p in _check(fake_repo, docs))


# ----------------------------------------------------------------- negative: autoscaler / runtime
def _write(tmp_path: Path, cfg: dict, name: str = "c.yaml") -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.read_text())
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_schema_rejects_unknown_and_mistyped_fields(tmp_path):
    cfg = yaml.safe_load((CLUSTERS / "aws.yaml").read_text())
    cfg["max_wrokers"] = 3
    cfg["available_node_types"]["head"]["resources"]["CPU"] = "zero"
    with pytest.raises(cc.ClusterConfigError) as info:
        cc.validate_autoscaler_yaml(_write(tmp_path, cfg))
    assert "max_wrokers" in str(info.value) and "available_node_types.head.resources.CPU" in str(info.value)


def test_ray_preparation_rejects_unknown_head_type(tmp_path):
    cfg = yaml.safe_load((CLUSTERS / "gcp.yaml").read_text())
    cfg["head_node_type"] = "nope"
    with pytest.raises(cc.ClusterConfigError, match="head_node_type"):
        cc.validate_autoscaler_yaml(_write(tmp_path, cfg))


def test_autoscaler_rules_catch_gpu_head_stale_image_and_keys(tmp_path):
    cfg = copy.deepcopy(yaml.safe_load((CLUSTERS / "aws.yaml").read_text()))
    cfg["available_node_types"]["head"]["resources"] = {"CPU": 8, "GPU": 1}
    cfg["available_node_types"]["gpu_h100"]["min_workers"] = 1
    cfg["docker"]["image"] = "rayproject/ray:2.59.0-py311-gpu"
    cfg["setup_commands"].append("export AWS_SECRET_ACCESS_KEY=abc123def")
    problems = cc.check_autoscaler_yaml(_write(tmp_path, cfg))
    for needle in ("resources.CPU", "resources.GPU", "min_workers", "2.59.0", "AWS_SECRET_ACCESS_KEY"):
        assert any(needle in p for p in problems), needle


def test_runtime_env_rules_catch_pip_driver_env_and_missing_modules(tmp_path):
    env = yaml.safe_load((CLUSTERS / "runtime_env.yaml").read_text())
    env["pip"] = ["torch"]
    env["env_vars"]["DS_ACCELERATOR"] = "cpu"
    env["env_vars"]["TOKENIZERS_PARALLELISM"] = "false"
    env["py_modules"] = ["platform/nope"]
    (tmp_path / "platform").mkdir()
    problems = cc.check_runtime_env_yaml(_write(tmp_path, env, "runtime_env.yaml"))
    for needle in ("pip", "DS_ACCELERATOR", "TOKENIZERS_PARALLELISM", "platform/nope"):
        assert any(needle in p for p in problems), needle


@pytest.mark.parametrize(
    "text, flagged",
    [
        ("TOKENIZERS_PARALLELISM=false python x.py", False),
        ("HF_TOKEN=$HF_TOKEN python x.py", False),
        ("export HF_TOKEN=hf_abcdef", True),
        ("key AKIAIOSFODNN7EXAMPLE", True),
        ("-----BEGIN RSA PRIVATE KEY-----", True),
    ],
)
def test_secret_scan_in_free_text(text, flagged):
    assert bool(cc.find_plaintext_secrets({"cmd": text})) is flagged
