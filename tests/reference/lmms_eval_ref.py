"""Import lmms-eval's own task functions (``lmms_eval/tasks/<task>/utils.py``) for parity tests.

lmms-eval 0.7.3 is installed from PyPI with ``--no-deps`` (its declared dependencies pin an old
PyAV and pull accelerate, wandb, timm, ...). Its ``lmms_eval.tasks`` package ``__init__`` imports
the whole evaluation API; the task utils themselves need only loguru, pandas, yaml, PIL, cv2 and
datasets. So the ``lmms_eval.tasks`` package object is registered without running its
``__init__`` and each task's module is then imported by the normal machinery from the installed
files: the code under test is lmms-eval's, byte for byte.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import tempfile
import types
from pathlib import Path

VERSION = "0.7.3"


def _tasks_dir() -> Path:
    spec = importlib.util.find_spec("lmms_eval")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("lmms-eval is not installed: pip install --no-deps lmms-eval==" + VERSION)
    return Path(list(spec.submodule_search_locations)[0]) / "tasks"


def _register_tasks_package() -> None:
    if "lmms_eval.tasks" in sys.modules:
        return
    importlib.import_module("lmms_eval")  # its __init__ is empty in 0.7.3
    pkg = types.ModuleType("lmms_eval.tasks")
    pkg.__path__ = [str(_tasks_dir())]  # a namespace-like package: submodules import normally
    pkg.__package__ = "lmms_eval.tasks"
    sys.modules["lmms_eval.tasks"] = pkg


def task_module(task: str, module: str = "utils") -> types.ModuleType:
    """lmms-eval's ``lmms_eval.tasks.<task>.<module>``, e.g. ``task_module("mme")``."""
    import importlib.metadata as md

    installed = md.version("lmms_eval")
    if installed != VERSION:
        raise ImportError(f"parity tests pin lmms-eval {VERSION}, found {installed}")
    # Video task utils read HF_HOME at import (their cache dir for videos); the parity tests pass
    # full paths, so any directory does.
    os.environ.setdefault("HF_HOME", tempfile.gettempdir())
    _register_tasks_package()
    return importlib.import_module(f"lmms_eval.tasks.{task}.{module}")
