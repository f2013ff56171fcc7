"""Hybrid-Frame's instruction predictor with `budget.engine: vllm`, in the budget stage's Ray actors.

The trained tiny Qwen2.5-VL learnt the predictor's question (budget prompt -> oracle budget), so
it answers candidates; the vLLM stage must give the same budgets and raw answers as the
transformers stage, fall back on rows without thumbnails, and reuse its cached manifest.
"""

from __future__ import annotations

import json

import pytest

from videosft import schema as S
from videosft.budget import BudgetConfig
from videosft.budget.stage import budget_manifest
from videosft.data.manifest import read_manifest
from videosft.data.sampling import SamplingContract


def _cfg(engine, model, cache):
    return BudgetConfig(
        predictor="instruction",
        engine=engine,
        model_path=model,
        candidates=[2, 4, 8],
        default=4,
        num_thumbnails=4,
        concurrency=1,
        cpus_per_actor=1,
        batch_size=8,
        cache_dir=str(cache),
        vllm={"kv_cache_gib": 1, "max_model_len": 2048},
    )


@pytest.fixture(scope="module")
def manifest(synthetic, tmp_path_factory):
    """The synthetic train manifest plus one clip whose file is missing (no thumbnails: a fallback)."""
    rows = json.loads(synthetic.train.read_text())
    video = next(r for r in rows if "video" in r)
    broken = {**video, "id": "broken", "video": str(tmp_path_factory.mktemp("gone") / "missing.mp4")}
    path = synthetic.root / "train_with_broken.json"
    path.write_text(json.dumps(rows + [broken]))
    return path


def test_vllm_budget_manifest_matches_transformers_falls_back_and_is_reused(
    ray_cluster, trained_qwen, manifest, tmp_path, capsys
):
    contract = SamplingContract()
    out = {
        e: budget_manifest(str(manifest), _cfg(e, trained_qwen, tmp_path / e), contract)
        for e in ("vllm", "transformers")
    }
    got = {e: json.loads(p.read_text()) for e, p in out.items()}
    videos = [r for r in got["vllm"] if r["conversations"][0]["value"].startswith("<video>") and r["id"] != "broken"]
    assert videos and all(r["frame_budget"] in (2, 4, 8) for r in got["vllm"])
    assert sum(not r["budget_fell_back"] for r in videos) >= len(videos) // 2  # it answers candidates
    assert [(r["id"], r["frame_budget"], r["budget_raw"]) for r in got["vllm"]] == [
        (r["id"], r["frame_budget"], r["budget_raw"]) for r in got["transformers"]
    ]
    broken = next(r for r in got["vllm"] if r["id"] == "broken")
    assert broken["frame_budget"] == 4 and broken["budget_fell_back"]
    assert "instruction: no thumbnails" in broken["budget_raw"]
    assert all(r[S.FRAME_BUDGET] in (2, 4, 8) for r in read_manifest(str(out["vllm"])))

    mtime = out["vllm"].stat().st_mtime_ns
    capsys.readouterr()
    again = budget_manifest(str(manifest), _cfg("vllm", trained_qwen, tmp_path / "vllm"), contract)
    assert again == out["vllm"] and again.stat().st_mtime_ns == mtime and "reusing" in capsys.readouterr().out
