"""Offline checks for the cluster definitions under `clusters/`.

Owns: validating Ray autoscaler YAMLs (`ray up` files) against the JSON schema shipped inside the
installed Ray package, KubeRay RayCluster/RayJob manifests against the fields the operator needs,
and `clusters/runtime_env.yaml` against Ray's RuntimeEnv; plus the project-level rules that tie them
together: one Ray version everywhere (the pin in pyproject.toml), entrypoints that name real job
scripts, no plaintext credentials, no publicly exposed dashboard, GPU groups that scale from zero,
and an `output_dir` that is a shared filesystem mounted at the same path on every node / pod.

Why the last rule: the run directory (trial summaries, predictions, reports, Ray Tune/Train state)
is written with pathlib, so it must be a path every node can reach: a network filesystem (EFS,
Filestore, a ReadWriteMany PVC) mounted identically everywhere. Object storage is for data.root,
model.path and data.cache_root only; `videosft.config` rejects a URI output_dir at load time.

Every check is pure file inspection: nothing here contacts a cloud, a Kubernetes API server or a
Ray cluster. `ray up --dry-run`-style checks (AMI/quota/VPC lookups) need cloud credentials and
are out of scope. Ray is imported only to locate its bundled schema and reuse its offline config
preparation. Functions return lists of human-readable problems (empty means clean), except
`validate_autoscaler_yaml`, which raises like `jsonschema.validate` does.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

RAY_IMAGE_REPOS = {"ray", "ray-ml", "ray-llm"}
KUBERAY_API_VERSION = "ray.io/v1"
EXPOSED_SERVICE_TYPES = {"LoadBalancer", "NodePort"}
# Env vars the job driver passes to its own ray.init(runtime_env=...) (videosft.ray_runtime's
# ensure_ray). A job runtime env that sets any of them makes Ray refuse to start the driver
# ("Failed to merge the Job's runtime env ... because of a conflict").
DRIVER_ENV_VARS = frozenset({"TOKENIZERS_PARALLELISM", "DS_ACCELERATOR"})

# Name parts that mark a credential (after camelCase and punctuation are split into words);
# *_PATH / *_FILE / *_DIR / *_REF / *_ARN name a location or reference, not the secret itself.
_SECRET_WORDS = {"SECRET", "PASSWORD", "PASSWD", "TOKEN", "CREDENTIAL", "CREDENTIALS", "APIKEY"}
_SECRET_PAIRS = {("ACCESS", "KEY"), ("PRIVATE", "KEY"), ("API", "KEY"), ("SECRET", "KEY")}
_LOCATION_WORDS = {"PATH", "FILE", "DIR", "REF", "ARN"}
# NAME=value inside free text (setup commands, entrypoints); the name is then judged as above.
_ASSIGNMENT = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*=\s*['\"]?([^\s'\"]+)")
_AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
_PEM_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_RAY_PIN = re.compile(r"^\s*ray\s*(\[[^\]]*\])?\s*==\s*([0-9][^\s,;]*)\s*(;.*)?$")
_JOB_SCRIPT = re.compile(r"^jobs/[A-Za-z0-9_]+\.py$")
# `output_dir=VALUE` in a job command line, in an entrypoint or in a file's comments.
_OUTPUT_DIR = re.compile(r"(?<![\w.])output_dir=([^\s'\"`,;)]+)")
# Filesystems that are the same tree on every node (a `mount -t <type>` in the setup commands).
NETWORK_FS_TYPES = frozenset({"nfs", "nfs4", "efs", "lustre"})
# Pod volume kinds that are the same storage in every pod; emptyDir / hostPath are per node.
SHARED_VOLUME_KINDS = ("persistentVolumeClaim", "nfs", "csi")


class ClusterConfigError(ValueError):
    """A cluster definition that `ray up` / the KubeRay operator would reject or misrun."""


# ---------------------------------------------------------------------------------------- versions
def pinned_ray_version(pyproject_path: str | Path) -> str:
    """The exact Ray version pinned (`ray[...]==X`) in pyproject.toml's project.dependencies."""
    with open(pyproject_path, "rb") as f:
        data = tomllib.load(f)
    for dep in data.get("project", {}).get("dependencies", []):
        match = _RAY_PIN.match(dep)
        if match:
            return match.group(2)
    raise ClusterConfigError(f"{pyproject_path}: no exact `ray==X` pin in project.dependencies")


def find_repo_root(start: str | Path) -> Path:
    """The nearest ancestor of `start` holding pyproject.toml."""
    here = Path(start).resolve()
    for candidate in [here, *here.parents]:
        if (candidate / "pyproject.toml").is_file():
            return candidate
    raise ClusterConfigError(f"no pyproject.toml above {start}")


def image_tag_problem(image: str, ray_version: str, where: str) -> str | None:
    """Ray images must be tagged `<ray_version>[-pyXY][-cpu|-gpu|-cuXY]`; custom images must carry
    the Ray version somewhere in their tag (e.g. `videosft:ray2.60.0-py311-gpu`)."""
    name = image.split("@", 1)[0]  # drop a digest; the tag still has to say which Ray it is
    repo, tag = name.rsplit(":", 1) if ":" in name.rsplit("/", 1)[-1] else (name, "")
    if not tag:
        return f"{where}: image {image!r} has no tag; pin it to Ray {ray_version}"
    if repo.rsplit("/", 1)[-1] in RAY_IMAGE_REPOS:
        if tag != ray_version and not tag.startswith(ray_version + "-"):
            return f"{where}: image {image!r} is not Ray {ray_version} (tag {tag!r})"
    elif ray_version not in tag:
        return f"{where}: custom image {image!r} must name Ray {ray_version} in its tag"
    return None


# ----------------------------------------------------------------------------------------- secrets
def _walk(obj: Any, where: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Yield (location, key, value) for every mapping entry and list item, depth first."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            loc = f"{where}.{key}" if where else str(key)
            yield loc, key, value
            yield from _walk(value, loc)
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            loc = f"{where}[{i}]"
            yield loc, None, value
            yield from _walk(value, loc)


def _is_secret_name(name: str) -> bool:
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).upper()
    parts = [w for w in re.split(r"[^A-Z0-9]+", words) if w]
    if not parts or parts[-1] in _LOCATION_WORDS:
        return False
    return bool(_SECRET_WORDS.intersection(parts)) or any(p in _SECRET_PAIRS for p in zip(parts, parts[1:]))


def _is_literal(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, (int, float)):
        return True
    # A file path or an unexpanded $VAR reference is a pointer to a secret, not the secret.
    return isinstance(value, str) and value.strip() != "" and not value.startswith(("/", "~", "./", "$"))


def find_plaintext_secrets(obj: Any, where: str = "") -> list[str]:
    """Credentials written into a config: secret-named keys or env entries with literal values,
    NAME=literal assignments in strings, AWS key ids, PEM private keys, GCP credential blobs."""
    problems = []
    for loc, key, value in _walk(obj, where):
        if isinstance(value, dict) and isinstance(value.get("name"), str) and "value" in value:
            if _is_secret_name(value["name"]) and _is_literal(value["value"]):
                problems.append(f"{loc}: env {value['name']} has a literal value; use valueFrom.secretKeyRef")
        if key == "gcp_credentials":
            problems.append(f"{loc}: credentials in the config; attach a service account instead")
        elif isinstance(key, str) and _is_secret_name(key) and _is_literal(value):
            problems.append(f"{loc}: literal credential; use an instance role / workload identity")
        if isinstance(value, str):
            for name, literal in _ASSIGNMENT.findall(value):
                if _is_secret_name(name) and _is_literal(literal):
                    problems.append(f"{loc}: {name}=<literal> in plain text")
            for pattern, what in ((_AWS_KEY_ID, "AWS access key id"), (_PEM_KEY, "PEM private key")):
                if pattern.search(value):
                    problems.append(f"{loc}: {what} in plain text")
    return problems


# ---------------------------------------------------------------------------------- shared storage
def documented_output_dirs(text: str) -> list[str]:
    """Every distinct `output_dir=VALUE` in a file's text, comments included: the output_dir of the
    job command lines it runs (a RayJob entrypoint) or documents (a `ray job submit` comment)."""
    return list(dict.fromkeys(_OUTPUT_DIR.findall(text)))


def output_dir_problem(value: str, where: str) -> str | None:
    """A cluster output_dir must be an absolute path (then checked against the mounts)."""
    if "://" in value:
        return (
            f"{where}: output_dir={value} is a URI; the run directory is written as files, so it "
            "must be a shared filesystem path (object storage is for data.root, model.path, data.cache_root)"
        )
    if not value.startswith("/"):
        return (
            f"{where}: output_dir={value} is node-local on a cluster; use an absolute path on the "
            "shared mount (e.g. /mnt/shared/runs/<name>)"
        )
    return None


def _under(path: str, mount: str) -> bool:
    p, m = PurePosixPath(path), PurePosixPath(mount)
    return p == m or m in p.parents


def network_mounts(commands: Sequence[Any]) -> dict[str, str]:
    """Mount point -> filesystem type for every `mount -t <type> SOURCE DIR` in shell commands
    (`sudo`, `&&`, `||`, `;` chains included; `mountpoint` and option values are skipped)."""
    found: dict[str, str] = {}
    for command in commands:
        for part in re.split(r"&&|\|\||;|\n", str(command)):
            try:
                tokens = shlex.split(part)
            except ValueError:
                continue
            if "mount" not in tokens:
                continue
            args = iter(tokens[tokens.index("mount") + 1 :])
            fstype, positional = "", []
            for tok in args:
                if tok in ("-t", "--types"):
                    fstype = next(args, "")
                elif tok.startswith("--types="):
                    fstype = tok.split("=", 1)[1]
                elif tok in ("-o", "-O", "--options"):
                    next(args, None)
                elif not tok.startswith("-"):
                    positional.append(tok)
            if len(positional) == 2:
                found[str(PurePosixPath(positional[1]))] = fstype
    return found


def docker_binds(run_options: Sequence[Any]) -> dict[str, str]:
    """Container path -> host path for every bind mount in docker run options
    (`-v H:C[:opts]`, `--volume[=]H:C`, `--mount type=bind,source=H,target=C`)."""
    try:
        tokens = shlex.split(" ".join(map(str, run_options)))
    except ValueError:
        return {}
    binds: dict[str, str] = {}
    for tok, nxt in zip(tokens, [*tokens[1:], ""]):
        spec = nxt if tok in ("-v", "--volume") else tok.split("=", 1)[1] if tok.startswith("--volume=") else ""
        if spec.count(":") >= 1 and spec.startswith("/"):
            host, container = spec.split(":")[:2]
            binds[str(PurePosixPath(container))] = host
        mount = nxt if tok == "--mount" else tok.split("=", 1)[1] if tok.startswith("--mount=") else ""
        fields = dict(f.split("=", 1) for f in mount.split(",") if "=" in f)
        if fields.get("type") == "bind":
            source = fields.get("source") or fields.get("src")
            target = fields.get("target") or fields.get("destination") or fields.get("dst")
            if source and target:
                binds[str(PurePosixPath(target))] = source
    return binds


# ------------------------------------------------------------------------------ autoscaler (ray up)
def ray_schema_path() -> Path:
    """Where the installed Ray keeps the autoscaler config schema (ray/autoscaler/ray-schema.json)."""
    import ray.autoscaler

    return Path(ray.autoscaler.__file__).parent / "ray-schema.json"


def load_yaml_documents(path: str | Path) -> list[Any]:
    with open(path) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def validate_autoscaler_yaml(path: str | Path) -> dict[str, Any]:
    """Validate a `ray up` YAML against Ray's bundled JSON schema, then run the offline part of
    `ray up` (merge the provider's defaults.yaml, re-validate, check head type and worker counts).
    Returns the prepared config; raises ClusterConfigError listing every problem found."""
    import jsonschema

    config = yaml.safe_load(Path(path).read_text())
    if not isinstance(config, dict):
        raise ClusterConfigError(f"{path}: expected a mapping at the top level")
    schema = json.loads(ray_schema_path().read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in errors]
        raise ClusterConfigError(f"{path}: does not match {ray_schema_path()}:\n" + "\n".join(lines))
    try:  # private but offline: exactly what `ray up` runs before it talks to the cloud
        from ray.autoscaler._private.util import prepare_config, validate_config
    except ImportError:
        return config
    try:
        prepared = prepare_config(json.loads(json.dumps(config)))
        validate_config(prepared)
    except Exception as exc:  # noqa: BLE001 - Ray raises ValueError/AssertionError/ValidationError
        raise ClusterConfigError(f"{path}: rejected by Ray's config preparation: {exc}") from exc
    return prepared


PROJECT_IMAGE_NAME = "videosft"  # the Dockerfile's image: YOUR_REGISTRY/videosft:ray<ray>-py311-cu128
BASE_IMAGE_FLAVOUR = "py311-cu128"  # rayproject/ray:<ray>-py311-cu128, the Dockerfile's FROM
_INSTALLERS = re.compile(r"\b(pip3?|uv|conda|mamba|apt-get|apt)\s+(install|sync|add)\b")
_SETUP_KEYS = ("setup_commands", "head_setup_commands", "worker_setup_commands")


def project_image(ray_version: str, registry: str = "YOUR_REGISTRY") -> str:
    """The one image every cluster file names (built from the Dockerfile)."""
    return f"{registry}/{PROJECT_IMAGE_NAME}:ray{ray_version}-{BASE_IMAGE_FLAVOUR}"


def project_image_problem(image: str, ray_version: str, where: str) -> str | None:
    """Ray containers run the project image (any registry), tagged for the pinned Ray and CUDA."""
    name = image.split("@", 1)[0]
    repo, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "")
    want = project_image(ray_version).rsplit(":", 1)[1]
    if repo.rsplit("/", 1)[-1] != PROJECT_IMAGE_NAME or tag != want:
        return (
            f"{where}: image {image!r} is not the project image <registry>/{PROJECT_IMAGE_NAME}:{want} "
            "(Dockerfile): every node must run the one pinned environment"
        )
    return None


def per_node_install_problems(cfg: dict) -> list[str]:
    """`ray up` YAMLs install nothing per node at start-up: the image carries everything (the host's
    initialization_commands may still install the NFS client, outside the Ray container)."""
    problems = []
    for key in _SETUP_KEYS:
        for i, cmd in enumerate(cfg.get(key) or []):
            if _INSTALLERS.search(str(cmd)):
                problems.append(f"{key}[{i}]: installs at node start-up ({cmd!r}); bake it into the image")
    for name, node in (cfg.get("available_node_types") or {}).items():
        for key in ("worker_setup_commands",):
            for i, cmd in enumerate(node.get(key) or []):
                if _INSTALLERS.search(str(cmd)):
                    problems.append(f"available_node_types.{name}.{key}[{i}]: installs at node start-up")
    return problems


def _autoscaler_image_problems(cfg: dict, ray_version: str) -> list[str]:
    docker = cfg.get("docker") or {}
    if not docker.get("image") and not docker.get("head_image"):
        return ["docker.image: not set; nodes would run whatever Ray the machine image has"]
    images = [(f"docker.{k}", docker.get(k)) for k in ("image", "head_image", "worker_image")]
    images += [
        (f"available_node_types.{n}.docker.worker_image", (t.get("docker") or {}).get("worker_image"))
        for n, t in (cfg.get("available_node_types") or {}).items()
    ]
    found = [
        image_tag_problem(image, ray_version, where) or project_image_problem(image, ray_version, where)
        for where, image in images
        if image
    ]
    return [p for p in found if p]


def _autoscaler_node_problems(cfg: dict) -> list[str]:
    node_types = cfg.get("available_node_types") or {}
    resources = (node_types.get(cfg.get("head_node_type")) or {}).get("resources") or {}
    problems = [
        f"head node resources.{r} must be 0 so trials and GPU work never land on the head"
        for r in ("CPU", "GPU")
        if resources.get(r) != 0
    ]
    gpu_types = [n for n, t in node_types.items() if (t.get("resources") or {}).get("GPU", 0) > 0]
    if not gpu_types:
        problems.append("available_node_types: no GPU node type (resources.GPU > 0)")
    problems += [
        f"available_node_types.{n}.min_workers must be 0 (GPU nodes scale from zero)"
        for n in gpu_types
        if node_types[n].get("min_workers", 0) != 0
    ]
    return problems


def autoscaler_node_views(cfg: dict) -> dict[str, tuple[list, list | None]]:
    """Per node type, what `ray up` / the autoscaler runs there: the host's initialization_commands
    (the head always runs the global list; a worker type's own list replaces it) and the docker run
    options its Ray container starts with (run_options + head_/worker_run_options, a node type's
    docker section overriding the global one), or None when the cluster runs without docker."""
    docker = cfg.get("docker") or {}
    in_docker = bool(docker.get("image") or docker.get("head_image") or docker.get("worker_image"))
    views: dict[str, tuple[list, list | None]] = {}
    for name, node_type in (cfg.get("available_node_types") or {}).items():
        node_type = node_type or {}
        if name == cfg.get("head_node_type"):
            init = cfg.get("initialization_commands") or []
            options = [*(docker.get("run_options") or []), *(docker.get("head_run_options") or [])]
        else:
            init = node_type.get("initialization_commands", cfg.get("initialization_commands")) or []
            merged = {**docker, **(node_type.get("docker") or {})}
            options = [*(merged.get("run_options") or []), *(merged.get("worker_run_options") or [])]
        views[name] = (list(init), options if in_docker else None)
    return views


def _shared_path_on_node(path: str, init: list, options: list | None) -> str | None:
    """Why `path` (as the Ray process sees it) is not on a network filesystem on one node, or None."""
    mounts = {m: t for m, t in network_mounts(init).items() if t.split(".")[-1] in NETWORK_FS_TYPES}
    host_path = path
    if options is not None:  # inside the Ray container: the path must be bind-mounted from the host
        binds = [c for c in docker_binds(options) if _under(path, c)]
        if not binds:
            return f"{path} is not bind-mounted into the Ray container (add `-v <mount>:<mount>` to docker.run_options)"
        container = max(binds, key=len)
        host_path = str(PurePosixPath(docker_binds(options)[container]) / PurePosixPath(path).relative_to(container))
    if not any(_under(host_path, m) for m in mounts):
        return (
            f"{host_path} is not on a network filesystem mounted by initialization_commands "
            f"(`mount -t {{{'|'.join(sorted(NETWORK_FS_TYPES))}}} SOURCE DIR`)"
        )
    return None


def _autoscaler_storage_problems(cfg: dict, output_dirs: Sequence[str]) -> list[str]:
    if not output_dirs:
        return [
            "no documented `output_dir=` in the job command line (comments included): say where "
            "results go, on the shared mount"
        ]
    problems = []
    for value in output_dirs:
        problem = output_dir_problem(value, "job command")
        if problem:
            problems.append(problem)
            continue
        for name, (init, options) in autoscaler_node_views(cfg).items():
            why = _shared_path_on_node(value, init, options)
            if why:
                problems.append(f"available_node_types.{name}: output_dir={value}: {why}")
    return problems


def check_autoscaler_yaml(
    path: str | Path, ray_version: str | None = None, output_dirs: Sequence[str] | None = None
) -> list[str]:
    """Project rules for a `ray up` YAML beyond the schema: pinned image, a head that takes no
    trial/GPU work, GPU groups that scale from zero, the project image and no per-node installs, no world-open ingress
    rules, no credentials, and the output_dir of its job command lines (by default those documented
    in the file, comments included) on a network filesystem that every node type mounts and binds
    into its Ray container at that same path."""
    path = Path(path)
    text = path.read_text()
    cfg = yaml.safe_load(text) or {}
    ray_version = ray_version or pinned_ray_version(find_repo_root(path) / "pyproject.toml")
    problems = _autoscaler_image_problems(cfg, ray_version) + _autoscaler_node_problems(cfg)
    output_dirs = documented_output_dirs(text) if output_dirs is None else list(output_dirs)
    problems += _autoscaler_storage_problems(cfg, output_dirs)
    problems += per_node_install_problems(cfg)
    rules = ((cfg.get("provider") or {}).get("security_group") or {}).get("IpPermissions", [])
    problems += [
        f"provider.security_group.IpPermissions[{i}]: open to 0.0.0.0/0"
        for i, rule in enumerate(rules)
        if any(r.get("CidrIp") == "0.0.0.0/0" for r in rule.get("IpRanges", []))
    ]
    return problems + find_plaintext_secrets(cfg)


# ----------------------------------------------------------------------------------------- KubeRay
def _check_group(group: Any, where: str, ray_version: str) -> list[str]:
    """Fields every head/worker group needs: rayStartParams and a Ray container on the pinned Ray."""
    if not isinstance(group, dict):
        return [f"{where}: missing"]
    problems = []
    if not isinstance(group.get("rayStartParams"), dict):
        problems.append(f"{where}.rayStartParams: missing (use {{}} for the defaults)")
    containers = ((group.get("template") or {}).get("spec") or {}).get("containers") or []
    if not containers or not isinstance(containers[0], dict) or not containers[0].get("image"):
        return problems + [f"{where}.template.spec.containers[0]: missing Ray container or image"]
    # KubeRay treats the first container as the Ray container; sidecars keep their own tags.
    problem = image_tag_problem(containers[0]["image"], ray_version, f"{where}.containers[0]") or project_image_problem(
        containers[0]["image"], ray_version, f"{where}.containers[0]"
    )
    return problems + ([problem] if problem else [])


def _check_worker_sizes(group: dict, where: str, autoscaling: bool) -> list[str]:
    problems = [
        f"{where}.{f}: missing" for f in ("groupName", "minReplicas", "maxReplicas", "replicas") if f not in group
    ]
    lo, n, hi = (group.get(k) for k in ("minReplicas", "replicas", "maxReplicas"))
    if all(isinstance(v, int) for v in (lo, n, hi)) and not lo <= n <= hi:
        problems.append(f"{where}: need minReplicas <= replicas <= maxReplicas, got {lo}, {n}, {hi}")
    if isinstance(lo, int) and isinstance(hi, int) and lo < hi and not autoscaling:
        problems.append(f"{where}: minReplicas < maxReplicas but enableInTreeAutoscaling is not true")
    return problems


def _check_head_exposure(head: dict, where: str) -> list[str]:
    """The dashboard / Jobs API runs arbitrary code: it must stay ClusterIP (port-forward only)."""
    service_types = [head.get("serviceType"), ((head.get("headService") or {}).get("spec") or {}).get("type")]
    problems = []
    if any(t in EXPOSED_SERVICE_TYPES for t in service_types):
        problems.append(f"{where}: head service exposed as {service_types}; use ClusterIP + port-forward")
    if head.get("enableIngress") is True:
        problems.append(f"{where}.enableIngress: exposes the dashboard / Jobs API")
    return problems


def _check_ray_cluster_spec(spec: Any, where: str, ray_version: str) -> list[str]:
    if not isinstance(spec, dict):
        return [f"{where}: missing"]
    problems = []
    if str(spec.get("rayVersion", "")) != ray_version:
        problems.append(f"{where}.rayVersion: {spec.get('rayVersion')!r} != pinned Ray {ray_version!r}")
    head = spec.get("headGroupSpec")
    problems += _check_group(head, f"{where}.headGroupSpec", ray_version)
    problems += _check_head_exposure(head, f"{where}.headGroupSpec") if isinstance(head, dict) else []
    workers = spec.get("workerGroupSpecs")
    if not isinstance(workers, list) or not workers:
        return problems + [f"{where}.workerGroupSpecs: missing or empty"]
    names = [g.get("groupName") for g in workers if isinstance(g, dict)]
    problems += [
        f"{where}.workerGroupSpecs: duplicate groupName {n!r}"
        for n in sorted({n for n in names if names.count(n) > 1}, key=str)
    ]
    for i, group in enumerate(workers):
        gwhere = f"{where}.workerGroupSpecs[{i}]"
        problems += _check_group(group, gwhere, ray_version)
        if isinstance(group, dict):
            problems += _check_worker_sizes(group, gwhere, spec.get("enableInTreeAutoscaling") is True)
    return problems


def _check_entrypoint(entrypoint: Any, where: str, repo_root: Path) -> list[str]:
    if not isinstance(entrypoint, str) or not entrypoint.strip():
        return [f"{where}: missing"]
    tokens = shlex.split(entrypoint)
    scripts = [t for t in tokens if t.endswith(".py")]
    if not scripts:
        return [f"{where}: runs no jobs/*.py script: {entrypoint!r}"]
    problems = []
    for script in scripts:
        if not _JOB_SCRIPT.match(script):
            problems.append(f"{where}: {script!r} is not a jobs/<name>.py entry point")
        elif not (repo_root / script).is_file():
            problems.append(f"{where}: {script} does not exist in {repo_root}")
    for flag, value in zip(tokens, tokens[1:]):
        if flag == "--config" and not (repo_root / value).is_file():
            problems.append(f"{where}: config {value} does not exist in {repo_root}")
    return problems


def _check_runtime_env_dict(env: Any, where: str) -> list[str]:
    if not isinstance(env, dict):
        return [f"{where}: expected a mapping"]
    problems = []
    env_vars = env.get("env_vars") or {}
    if "DS_ACCELERATOR" in env_vars:
        problems.append(f"{where}.env_vars.DS_ACCELERATOR: must not be forced on clusters (CI config only)")
    for key in sorted(DRIVER_ENV_VARS.intersection(env_vars) - {"DS_ACCELERATOR"}):
        problems.append(f"{where}.env_vars.{key}: the driver's ray.init sets it; Ray rejects the duplicate")
    # Ray resolves local py_modules/working_dir against the current directory; the caller checks
    # those from the repository root (where `ray job submit` runs). Remote URIs are checked here.
    local = dict(env)
    if "://" not in str(local.get("working_dir", "://")):
        del local["working_dir"]
    remote_modules = [m for m in local.pop("py_modules", None) or [] if "://" in str(m)]
    if remote_modules:
        local["py_modules"] = remote_modules
    try:
        from ray.runtime_env import RuntimeEnv

        RuntimeEnv(**local)
    except Exception as exc:  # noqa: BLE001 - Ray raises TypeError/ValueError for bad fields
        problems.append(f"{where}: rejected by ray.runtime_env.RuntimeEnv: {exc}")
    return problems


def _check_rayjob(spec: dict, where: str, root: Path, ray_version: str) -> list[str]:
    problems = []
    if "rayClusterSpec" in spec or not spec.get("clusterSelector"):
        problems += _check_ray_cluster_spec(spec.get("rayClusterSpec"), f"{where}.rayClusterSpec", ray_version)
    problems += _check_entrypoint(spec.get("entrypoint"), f"{where}.entrypoint", root)
    if spec.get("shutdownAfterJobFinishes") is not True:
        problems.append(f"{where}.shutdownAfterJobFinishes: must be true (idle GPU clusters cost money)")
    if not isinstance(spec.get("ttlSecondsAfterFinished"), int):
        problems.append(f"{where}.ttlSecondsAfterFinished: missing")
    if "runtimeEnvYAML" in spec:
        try:
            env = yaml.safe_load(spec["runtimeEnvYAML"])
        except yaml.YAMLError as exc:
            return problems + [f"{where}.runtimeEnvYAML: not YAML: {exc}"]
        problems += _check_runtime_env_dict(env, f"{where}.runtimeEnvYAML")
        problems += [
            f"{where}.runtimeEnvYAML.{k}: installs per job on every node; the image has it"
            for k in ("pip", "conda", "uv")
            if isinstance(env, dict) and k in env
        ]
        problems += find_plaintext_secrets(env, f"{where}.runtimeEnvYAML")
    return problems


def _check_document(doc: Any, where: str, root: Path, ray_version: str) -> list[str]:
    if not isinstance(doc, dict):
        return [f"{where}: not a mapping"]
    problems = find_plaintext_secrets(doc, where)
    kind = doc.get("kind")
    if kind == "Secret" and (doc.get("data") or doc.get("stringData")):
        problems.append(f"{where}: Secret with inline data; create it out of band (or use workload identity)")
    if not str(doc.get("apiVersion", "")).startswith("ray.io"):
        return problems
    if doc.get("apiVersion") != KUBERAY_API_VERSION:
        problems.append(f"{where}.apiVersion: {doc.get('apiVersion')!r}, expected {KUBERAY_API_VERSION}")
    if not (doc.get("metadata") or {}).get("name"):
        problems.append(f"{where}.metadata.name: missing")
    spec = doc.get("spec") or {}
    if kind == "RayCluster":
        return problems + _check_ray_cluster_spec(spec, f"{where}.spec", ray_version)
    if kind == "RayJob":
        return problems + _check_rayjob(spec, f"{where}.spec", root, ray_version)
    return problems + [f"{where}.kind: {kind!r}, expected RayCluster or RayJob"]


def _cluster_spec_of(doc: Any) -> tuple[str, dict] | None:
    """(location, Ray cluster spec) of a RayCluster, or of a RayJob that creates its own cluster."""
    if not isinstance(doc, dict) or not str(doc.get("apiVersion", "")).startswith("ray.io"):
        return None
    spec = doc.get("spec") or {}
    if doc.get("kind") == "RayCluster" and isinstance(spec, dict):
        return "spec", spec
    if doc.get("kind") == "RayJob" and isinstance(spec.get("rayClusterSpec"), dict):
        return "spec.rayClusterSpec", spec["rayClusterSpec"]
    return None


def _pod_groups(spec: dict, where: str) -> Iterator[tuple[str, dict]]:
    if isinstance(spec.get("headGroupSpec"), dict):
        yield f"{where}.headGroupSpec", spec["headGroupSpec"]
    for i, group in enumerate(spec.get("workerGroupSpecs") or []):
        if isinstance(group, dict):
            yield f"{where}.workerGroupSpecs[{i}]", group


def shared_volume_for(group: dict, path: str) -> tuple[str, dict] | str:
    """(mountPath, volume source) of the shared volume holding `path` in a group's Ray container
    (the first container), or a string saying why there is none."""
    pod = (group.get("template") or {}).get("spec") or {}
    containers = pod.get("containers") or [{}]
    mounts = [
        m
        for m in (containers[0] or {}).get("volumeMounts") or []
        if isinstance(m, dict) and m.get("mountPath") and _under(path, m["mountPath"])
    ]
    if not mounts:
        return f"{path} is not under any volumeMount of the Ray container"
    mount = max(mounts, key=lambda m: len(str(m["mountPath"])))
    volume = next(
        (v for v in pod.get("volumes") or [] if isinstance(v, dict) and v.get("name") == mount.get("name")), None
    )
    if volume is None:
        return f"volumeMount {mount.get('name')!r} ({mount['mountPath']}) has no matching volume"
    source = {k: v for k, v in volume.items() if k != "name"}
    if not any(k in source for k in SHARED_VOLUME_KINDS):
        return (
            f"{path} is on volume {mount.get('name')!r} ({', '.join(source) or 'no source'}), which is "
            f"per pod/node; use a ReadWriteMany persistentVolumeClaim"
        )
    return str(mount["mountPath"]), source


def _kuberay_storage_problems(spec: dict, where: str, output_dirs: Sequence[str]) -> list[str]:
    """Every output_dir must be on one shared volume, mounted at the same path in every pod group."""
    if not output_dirs:
        return [
            f"{where}: no `output_dir=` in the entrypoint or the documented job command line; "
            "say where results go, on the shared volume"
        ]
    problems = []
    for value in output_dirs:
        problem = output_dir_problem(value, where)
        if problem:
            problems.append(problem)
            continue
        seen: dict[str, tuple[str, dict]] = {}
        for gwhere, group in _pod_groups(spec, where):
            found = shared_volume_for(group, value)
            if isinstance(found, str):
                problems.append(f"{gwhere}: output_dir={value}: {found}")
            else:
                seen[gwhere] = found
        if len({json.dumps(v, sort_keys=True) for v in seen.values()}) > 1:
            problems.append(f"{where}: output_dir={value} is on different volumes/paths across groups: {seen}")
    return problems


def claim_names(docs: Sequence[Any]) -> set[str]:
    """persistentVolumeClaim names the Ray pods of these documents mount."""
    names = set()
    for doc in docs:
        found = _cluster_spec_of(doc)
        for _, group in _pod_groups(found[1], "") if found else ():
            for volume in ((group.get("template") or {}).get("spec") or {}).get("volumes") or []:
                claim = (volume or {}).get("persistentVolumeClaim") or {}
                if claim.get("claimName"):
                    names.add(claim["claimName"])
    return names


def check_shared_pvc_manifest(path: str | Path) -> list[str]:
    """Problems in the shared-volume manifest: each PersistentVolumeClaim must be ReadWriteMany
    (every pod of a multi-node cluster mounts it) with a storage request; no credentials."""
    docs = load_yaml_documents(path)
    pvcs = [d for d in docs if isinstance(d, dict) and d.get("kind") == "PersistentVolumeClaim"]
    problems = [] if pvcs else [f"{Path(path).name}: no PersistentVolumeClaim"]
    for i, doc in enumerate(docs):
        problems += find_plaintext_secrets(doc, f"doc[{i}]")
        if doc in pvcs:
            spec = doc.get("spec") or {}
            if "ReadWriteMany" not in (spec.get("accessModes") or []):
                problems.append(f"doc[{i}].spec.accessModes: must include ReadWriteMany (mounted by every pod)")
            if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
                problems.append(f"doc[{i}].spec.resources.requests.storage: missing")
            if not (doc.get("metadata") or {}).get("name"):
                problems.append(f"doc[{i}].metadata.name: missing")
    return problems


def check_kuberay_manifest(
    path: str | Path, repo_root: str | Path | None = None, ray_version: str | None = None
) -> list[str]:
    """Problems in a KubeRay manifest (every document in the file): RayCluster/RayJob required
    fields, Ray version and image tags equal to the pin, existing jobs/*.py entrypoints, a valid
    runtimeEnvYAML, cleanup settings on RayJobs, no plaintext secrets, no exposed dashboard, and
    the output_dir of its job command lines (RayJob entrypoints and those documented in comments)
    on a shared volume that the head and every worker group mount at that same path."""
    path = Path(path)
    root = Path(repo_root) if repo_root else find_repo_root(path)
    ray_version = ray_version or pinned_ray_version(root / "pyproject.toml")
    docs = load_yaml_documents(path)
    has_ray = any(isinstance(d, dict) and str(d.get("apiVersion", "")).startswith("ray.io") for d in docs)
    problems = [] if has_ray else [f"{path.name}: no ray.io resource"]
    output_dirs = documented_output_dirs(path.read_text())
    for i, doc in enumerate(docs):
        problems += _check_document(doc, f"doc[{i}]", root, ray_version)
        found = _cluster_spec_of(doc)
        if found:
            problems += _kuberay_storage_problems(found[1], f"doc[{i}].{found[0]}", output_dirs)
    return problems


# ------------------------------------------------------------------------------------ runtime env
def check_runtime_env_yaml(path: str | Path, repo_root: str | Path | None = None) -> list[str]:
    """Problems in clusters/runtime_env.yaml: Ray must accept it, local py_modules must exist
    (paths resolve from the repository root, where `ray job submit` runs), and it must stay
    usable offline (no pip/conda/uv: dependencies are installed per node, not per job)."""
    path = Path(path)
    root = Path(repo_root) if repo_root else find_repo_root(path)
    env = yaml.safe_load(path.read_text())
    problems = _check_runtime_env_dict(env, path.name)
    if not isinstance(env, dict):
        return problems
    for field in ("pip", "conda", "uv"):
        if field in env:
            problems.append(f"{path.name}.{field}: per-job installs break offline submission; the image has them")
    for module in env.get("py_modules") or []:
        if "://" not in str(module) and not (root / str(module)).exists():
            problems.append(f"{path.name}.py_modules: {module} does not exist under {root}")
    return problems + find_plaintext_secrets(env, path.name)
