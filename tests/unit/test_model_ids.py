"""Models by id or path: a Hugging Face repo id resolves through the HF cache, offline too.

The cache is laid out the way huggingface_hub lays it out (models--Org--Name/{refs/main,
snapshots/<rev>/...}), and HF_HUB_OFFLINE=1 keeps everything off the network, so these tests
exercise huggingface_hub's own resolution rather than a mock of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from videosft.config import ConfigError, load_config
from videosft.workspace import anchored, model_kind, prepare_inputs, resolve_model, resolve_models

REPO = "Qwen/Qwen2.5-VL-7B-Instruct"
REV = "cc594898137f460bfe9f0759e9844b3ce807cfb5"
ROOT = Path(__file__).resolve().parents[2]


def _fake_cache(home: Path, repo: str = REPO, rev: str = REV) -> Path:
    """A huggingface_hub cache under HF_HOME=home holding `repo` at `rev` (refs/main -> rev)."""
    base = home / "hub" / ("models--" + repo.replace("/", "--"))
    snap = base / "snapshots" / rev
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(rev)
    return snap


@pytest.fixture
def offline(tmp_path, monkeypatch):
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return home


def test_kinds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert model_kind(REPO) == "hf"
    assert model_kind("hf://" + REPO) == "hf"
    assert model_kind(REPO + "@main") == "hf"
    assert model_kind("s3://bucket/models/qwen") == "uri"
    assert model_kind("gs://bucket/models/qwen") == "uri"
    for path in (
        "/mnt/shared/models/Qwen2.5-VL-7B-Instruct",
        "./Qwen/Qwen2.5-VL-7B-Instruct",
        "runs/demo/base_model",
        "~/models/x",
        "base_model",
    ):
        assert model_kind(path) == "path", path
    (tmp_path / "Qwen" / "Qwen2.5-VL-7B-Instruct").mkdir(parents=True)
    assert model_kind(REPO) == "path"  # a local directory of that name wins, as in from_pretrained


def test_repo_id_resolves_from_cache_offline(offline):
    snap = _fake_cache(offline)
    assert Path(resolve_model(REPO, "model.path")) == snap
    assert Path(resolve_model("hf://" + REPO, "model.path")) == snap
    assert Path(resolve_model(f"{REPO}@{REV}", "model.path")) == snap


def test_repo_id_is_not_anchored_and_reaches_inputs(offline):
    snap = _fake_cache(offline)
    cfg = anchored(load_config(ROOT / "jobs/configs/demo.yaml", [f"model.path={REPO}", "output_dir=out"]))
    assert cfg.model.path == REPO  # not <cwd>/Qwen/...
    assert Path(prepare_inputs(resolve_models(cfg)).model_path) == snap


def test_uncached_id_offline_fails_naming_key_and_id(offline):
    _fake_cache(offline, repo="Qwen/Qwen2.5-VL-3B-Instruct")
    with pytest.raises(ConfigError) as err:
        resolve_models(anchored(load_config(None, [f"model.path={REPO}"])))
    msg = str(err.value)
    assert "model.path" in msg and REPO in msg and "HF_HUB_OFFLINE" in msg and str(offline / "hub") in msg


def test_budget_model_path_id_is_resolved_for_hybrid(offline):
    snap3 = _fake_cache(offline, repo="Qwen/Qwen2.5-VL-3B-Instruct")
    cfg = load_config(
        None,
        [
            "sweep.frame_budgets=[2,hybrid]",
            "budget.predictor=instruction",
            "budget.model_path=Qwen/Qwen2.5-VL-3B-Instruct",
        ],
    )
    assert Path(resolve_models(anchored(cfg)).budget.model_path) == snap3
    bad = load_config(
        None,
        ["sweep.frame_budgets=[2,hybrid]", "budget.predictor=instruction", "budget.model_path=Qwen/Qwen2.5-VL-999B"],
    )
    with pytest.raises(ConfigError, match=r"budget\.model_path=.*Qwen/Qwen2\.5-VL-999B"):
        resolve_models(anchored(bad))


def test_missing_local_path_fails_naming_key(offline):
    with pytest.raises(ConfigError, match=r"model\.path='/nonexistent/model'"):
        resolve_model("/nonexistent/model", "model.path")


def test_job_fails_before_any_ray_work(offline):
    """`jobs/evaluate.py` with an uncached id exits non-zero with the key and the id, before ray.init."""
    env = {k: v for k, v in __import__("os").environ.items() if k != "RAY_ADDRESS"}
    env.update(HF_HOME=str(offline), HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "jobs/evaluate.py"),
            "--config",
            str(ROOT / "jobs/configs/demo.yaml"),
            f"model.path={REPO}",
            "output_dir=out",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "model.path" in proc.stderr and REPO in proc.stderr
    assert "Started a local Ray instance" not in proc.stderr + proc.stdout
