"""The repo's habits, checked where CI checks everything else: ruff (lint + format), mypy on the
pure modules pyproject lists, and the import layers (import-linter contracts in pyproject).

Each runs the installed tool exactly as a developer (or pre-commit) would, from the repo root, so
a failure here prints the same report the tool prints locally.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY_DIRS = ["platform", "tests", "jobs", "benchmarks", "scripts"]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    if shutil.which(cmd[0]) is None:
        pytest.fail(f"{cmd[0]} is not installed: it is in pyproject's [test] extra (pip install -e '.[test]')")
    return subprocess.run(list(cmd), cwd=ROOT, capture_output=True, text=True, timeout=600)


def _check(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"{' '.join(map(str, proc.args))} failed:\n{proc.stdout}\n{proc.stderr}"


def test_ruff_lint() -> None:
    _check(_run("ruff", "check", *PY_DIRS))


def test_ruff_format() -> None:
    _check(_run("ruff", "format", "--check", *PY_DIRS))


def test_mypy_pure_modules() -> None:
    _check(_run(sys.executable, "-m", "mypy"))


def test_import_layers() -> None:
    proc = _run("lint-imports")
    _check(proc)
    assert "0 broken" in proc.stdout, proc.stdout


def test_layer_contract_covers_every_top_level_module() -> None:
    """A new top-level module or package must be placed in a layer, or the rule silently skips it."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layered = {
        name.strip()
        for c in contracts
        if c["type"] == "layers"
        for layer in c["layers"]
        for name in layer.replace(":", "|").split("|")
    }
    package = ROOT / "platform" / "videosft"
    modules = {f"videosft.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__"}
    modules |= {f"videosft.{p.name}" for p in package.iterdir() if (p / "__init__.py").exists()}
    assert sorted(modules - layered) == [], "place these in [tool.importlinter] layers in pyproject.toml"
