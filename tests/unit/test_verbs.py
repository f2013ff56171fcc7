"""Every job is a thin wrapper over a CLI verb's library function, called with the same arguments.

Statically (each job's AST): its only videosft import is one function from videosft.verbs, the
registry maps the job's verb to that very function, and main() calls it with
`**_args.kwargs(_args.parse("<verb>"))`. Dynamically: the job and `videosft <verb>`, given the
same command line, hand the function the same keyword arguments (the function is replaced by a
recorder, so nothing runs). And every verb's CLI arguments are its function's parameters.
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib.util
import inspect
import os
import sys
from pathlib import Path

import pytest

from videosft import cli, verbs

JOBS = Path(__file__).resolve().parents[2] / "jobs"
JOB_FILES = sorted(p for p in JOBS.glob("*.py") if not p.name.startswith("_"))
# A command line per verb that parses and validates without touching data or Ray.
ARGV = {
    "train": ["--frame-budget", "2", "train.max_steps=3"],
    "alignment": ["--model", "/tmp/ckpt-a", "--model", "/tmp/ckpt-b", "--budgets", "1,4"],
    "attention": ["--model", "/tmp/ckpt-a", "--data-root", "/tmp/data", "--budgets", "4", "--items", "3"],
    "evaluate": ["--model", "/tmp/ckpt", "--benchmarks", "synthetic_image", "--frame-budget", "4"],
    "report": ["/tmp/some-run"],
    "predict-budgets": ["budget.predictor=similarity"],
    "prepare": ["output_dir=/tmp/prep"],
    "sweep": ["sweep.frame_budgets=[1]"],
    "curate": ["--data-root", "/tmp/llava", "--out", "/tmp/curated", "--num-videos", "3", "--seed", "1"],
}


def _verb_of(job: Path) -> str:
    return job.stem.replace("_", "-")


def _job_calls(tree: ast.Module) -> tuple[list[tuple[str, str]], list[ast.Call]]:
    imports = [(n.module or "", a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names]
    imports += [(a.name, "") for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    return imports, calls


def test_every_job_has_a_verb_and_argv():
    assert JOB_FILES, "no jobs found"
    for job in JOB_FILES:
        assert _verb_of(job) in verbs.VERBS, f"{job.name}: no videosft verb {_verb_of(job)!r} in verbs.VERBS"
        assert _verb_of(job) in ARGV, f"{job.name}: add a sample command line to ARGV"


@pytest.mark.parametrize("job", JOB_FILES, ids=lambda p: p.name)
def test_job_is_a_thin_wrapper_statically(job):
    verb = _verb_of(job)
    tree = ast.parse(job.read_text())
    imports, calls = _job_calls(tree)
    ours = [(mod, name) for mod, name in imports if mod.split(".")[0] == "videosft"]
    assert len(ours) == 1 and ours[0][0] == "videosft.verbs", (
        f"{job.name}: imports {ours}; want one videosft.verbs function"
    )
    fn_name = ours[0][1]
    assert getattr(verbs, fn_name) is verbs.VERBS[verb], f"{job.name}: {fn_name} is not the `videosft {verb}` function"
    parse = [c for c in calls if isinstance(c.func, ast.Attribute) and c.func.attr == "parse"]
    assert [ast.literal_eval(c.args[0]) for c in parse] == [verb], f"{job.name}: must parse as _args.parse({verb!r})"
    target = [c for c in calls if isinstance(c.func, ast.Name) and c.func.id == fn_name]
    assert len(target) == 1, f"{job.name}: calls {fn_name} {len(target)} times"
    (call,) = target
    assert not call.args and len(call.keywords) == 1 and call.keywords[0].arg is None, (
        f"{job.name}: call {fn_name}(**_args.kwargs(args)) and nothing else"
    )
    inner = call.keywords[0].value
    assert isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and inner.func.attr == "kwargs"


class _Called(Exception):
    pass


def _recorder(kind: str, seen: dict, like):
    @functools.wraps(like)  # cli.verb_kwargs reads the function's signature
    def record(**kwargs):
        seen[kind] = kwargs
        raise _Called

    return record


def _comparable(kwargs: dict) -> dict:
    return {k: v.model_dump(mode="json") if hasattr(v, "model_dump") else v for k, v in kwargs.items()}


def _load_job(job: Path):
    sys.path.insert(0, str(JOBS))
    try:
        spec = importlib.util.spec_from_file_location(f"job_{job.stem}", job)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(JOBS))
    return module


@pytest.mark.parametrize("job", JOB_FILES, ids=lambda p: p.name)
def test_job_and_cli_pass_the_same_arguments(job, monkeypatch):
    verb, seen = _verb_of(job), {}
    module = _load_job(job)
    fn_name = next(name for name, value in vars(module).items() if value is verbs.VERBS[verb])
    monkeypatch.setattr(module, fn_name, _recorder("job", seen, verbs.VERBS[verb]))
    monkeypatch.setattr(sys, "argv", [str(job), *ARGV[verb]])
    with pytest.raises(_Called):
        module.main()
    assert cli.VERBS is verbs.VERBS  # one registry: patching it patches what the CLI calls
    monkeypatch.setitem(verbs.VERBS, verb, _recorder("cli", seen, verbs.VERBS[verb]))
    with pytest.raises(_Called):
        cli.main([verb, *ARGV[verb]])
    assert seen["job"] and _comparable(seen["job"]) == _comparable(seen["cli"])


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("verb", sorted(verbs.VERBS))
def test_cli_arguments_are_the_functions_parameters(verb):
    sub = _subparsers()[verb]
    dests = {a.dest for a in sub._actions} - {"help", "verbose", "config", "overrides"}
    params = set(inspect.signature(verbs.VERBS[verb]).parameters)
    if "settings" in params:  # curate: the flags are CurateConfig's fields, built into one `settings`
        from videosft.data.curate import CurateConfig

        assert dests - {"settings"} <= set(CurateConfig.model_fields), sorted(dests)
        dests = (dests - set(CurateConfig.model_fields)) | {"settings"}
    assert dests == params - {"cfg"}, f"videosft {verb}: CLI {sorted(dests)} vs function {sorted(params)}"
    assert ("cfg" in params) == ("config" in {a.dest for a in sub._actions})
    assert sub.get_default("fn").__module__ == "videosft.cli"


def _starts_ray(path: Path) -> bool:
    return any(
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == "init"
        and isinstance(n.func.value, ast.Name)
        and n.func.value.id == "ray"
        for n in ast.walk(ast.parse(path.read_text()))
    )


def test_one_module_starts_ray():
    root = Path(verbs.__file__).parent
    starters = sorted(str(p.relative_to(root)) for p in [*root.rglob("*.py"), *JOBS.glob("*.py")] if _starts_ray(p))
    assert starters == ["ray_runtime.py"], starters


def _fake_init(monkeypatch):
    """ensure_ray's ray.init replaced: records what the cluster it would start inherits."""
    import ray

    from videosft import ray_runtime

    seen = {}
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: seen.update(env=dict(os.environ), kw=kw))
    monkeypatch.setattr(ray_runtime, "_STARTED", {"here": False})
    return ray_runtime, seen


def test_a_local_cluster_has_no_preemption_watcher_and_a_joined_one_keeps_rays_default(monkeypatch):
    key = "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"
    monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray_runtime, seen = _fake_init(monkeypatch)
    ray_runtime.ensure_ray()
    assert seen["env"][key] == "0"  # started here: its raylet and workers inherit it

    monkeypatch.delenv(key)
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    ray_runtime, seen = _fake_init(monkeypatch)
    ray_runtime.ensure_ray()
    assert key not in seen["env"]  # someone else's cluster: Ray's default (watch for drains)

    monkeypatch.delenv("RAY_ADDRESS")
    monkeypatch.setenv(key, "1")  # the user's choice wins
    ray_runtime, seen = _fake_init(monkeypatch)
    ray_runtime.ensure_ray()
    assert seen["env"][key] == "1"
