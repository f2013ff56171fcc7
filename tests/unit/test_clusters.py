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
KUBERAY = sorted((CLUSTERS / "kuberay").glob("*.yaml"))


def _is_autoscaler(path: Path) -> bool:
    return isinstance(doc := yaml.safe_load(path.read_text()), dict) and "provider" in doc


AUTOSCALER = sorted(p for p in CLUSTERS.glob("*.yaml") if _is_autoscaler(p))


# ------------------------------------------------------------------------------ shipped files
def test_expected_cluster_files_exist():
    assert {p.name for p in AUTOSCALER} >= {"aws.yaml", "gcp.yaml"}
    assert {p.name for p in KUBERAY} >= {"raycluster.yaml", "rayjob-sweep.yaml", "rayjob-evaluate.yaml"}
    # every clusters/*.yaml is either a `ray up` file or the job runtime env, and is checked below
    assert {p.name for p in CLUSTERS.glob("*.yaml")} == {p.name for p in AUTOSCALER} | {"runtime_env.yaml"}


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
    from videosft.tune import sweep

    monkeypatch.setenv("DS_ACCELERATOR", "cpu")
    assert set(sweep._worker_env()) <= cc.DRIVER_ENV_VARS


def test_no_cluster_file_forces_cpu_deepspeed():
    docs = [d for p in [*AUTOSCALER, *KUBERAY, CLUSTERS / "runtime_env.yaml"] for d in cc.load_yaml_documents(p)]
    docs += [yaml.safe_load(v) for d in docs for _, k, v in cc._walk(d) if k == "runtimeEnvYAML"]
    for doc in docs:
        for where, key, value in cc._walk(doc):
            assert key != "DS_ACCELERATOR", where
            assert not (isinstance(value, dict) and value.get("name") == "DS_ACCELERATOR"), where
            assert not (isinstance(value, str) and "DS_ACCELERATOR=" in value), where


# ------------------------------------------------------------------------------------ versions
@pytest.mark.parametrize(
    "dep, expected",
    [("ray[default,train,data,tune]==2.60.0", "2.60.0"), ("ray==2.9.3", "2.9.3"),
     ("ray [data] == 2.60.0 ; python_version >= '3.10'", "2.60.0")],
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
    job["spec"]["entrypoint"] = "python jobs/sweep.py --config jobs/configs/demo.yaml output_dir=s3://b/r"
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
        "rayproject/ray:2.59.0-py311-gpu")
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
    [("python jobs/nope.py --config jobs/configs/demo.yaml", "jobs/nope.py does not exist"),
     ("python jobs/sweep.py --config jobs/configs/nope.yaml", "jobs/configs/nope.yaml does not exist"),
     ("python /home/ray/train.py", "not a jobs/<name>.py"),
     ("echo hello", "runs no jobs/*.py")],
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
    [("TOKENIZERS_PARALLELISM=false python x.py", False), ("HF_TOKEN=$HF_TOKEN python x.py", False),
     ("export HF_TOKEN=hf_abcdef", True), ("key AKIAIOSFODNN7EXAMPLE", True),
     ("-----BEGIN RSA PRIVATE KEY-----", True)],
)
def test_secret_scan_in_free_text(text, flagged):
    assert bool(cc.find_plaintext_secrets({"cmd": text})) is flagged
