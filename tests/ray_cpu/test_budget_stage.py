"""The budget stage on a real local Ray cluster: columns, the written manifest, and cache reuse."""

import json

import pytest

from videosft import schema as S
from videosft.data.budget import BUDGET_FELL_BACK, BudgetConfig, snap_up
from videosft.data.budget.stage import budget_manifest, predict_budgets_dataset
from videosft.data.manifest import read_manifest
from videosft.data.sampling import SamplingContract
from videosft.data.synthetic import make_synthetic

pytestmark = pytest.mark.ray
CANDS = [1, 2, 4, 8, 16]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("syn"), n_train_video=4, n_train_image=1,
                          n_eval_video=1, n_eval_image=1)


def test_stage_adds_budget_columns_and_keeps_the_rest(local_ray, synthetic):
    import ray.data

    rows = read_manifest(str(synthetic.train))
    items = [{k: r[k] for k in (S.ID, S.MEDIA_TYPE, S.MEDIA_PATH, S.QUESTION, S.MIN_FRAMES)} for r in rows]
    cfg = BudgetConfig(predictor="oracle", concurrency=1, cpus_per_actor=0.5, batch_size=2)
    got = predict_budgets_dataset(ray.data.from_items(items), cfg, SamplingContract()).take_all()
    assert sorted(g[S.ID] for g in got) == sorted(r[S.ID] for r in rows)
    for g in got:  # min_frames oracle: the input column survives and decides the budget
        assert isinstance(g[S.BUDGET_RAW], str) and not g[BUDGET_FELL_BACK]
        want = snap_up(g[S.MIN_FRAMES], CANDS) if g[S.MEDIA_TYPE] == S.MEDIA_VIDEO else 1
        assert g[S.FRAME_BUDGET] == want


def test_budget_manifest_is_written_once_and_reused(local_ray, synthetic, tmp_path, capsys):
    # similarity decodes thumbnails inside the actor (isolated decoder under Ray) without paying a
    # torch import there; the instruction predictor runs in actors in benchmarks/budget.py.
    cfg = BudgetConfig(predictor="similarity", num_thumbnails=8, concurrency=1, cpus_per_actor=1,
                       batch_size=4, cache_dir=str(tmp_path / "cache"))
    contract = SamplingContract()
    out = budget_manifest(str(synthetic.train), cfg, contract)
    raw = json.loads(out.read_text())
    assert len(raw) == 5 and sum("segments (pixels)" in r["budget_raw"] for r in raw) == 4  # + 1 still
    assert all(r["frame_budget"] in CANDS and r["budget_raw"] and not r["budget_fell_back"] for r in raw)
    assert all(r["conversations"][0]["value"].startswith(("<video>\n", "<image>\n")) for r in raw)
    rows = read_manifest(str(out))  # what training reads: frame_budget survives as a column
    assert all(r[S.FRAME_BUDGET] in CANDS for r in rows)
    assert [r[S.FRAME_BUDGET] for r in rows if r[S.MEDIA_TYPE] == S.MEDIA_IMAGE] == [1]
    meta = json.loads(out.with_suffix(".meta.json").read_text())
    assert meta["rows"] == 5 and meta["fell_back"] == sum(r["budget_fell_back"] for r in raw)

    mtime = out.stat().st_mtime_ns
    capsys.readouterr()
    again = budget_manifest(str(synthetic.train), cfg.model_copy(update={"concurrency": 2}), contract)
    assert again == out and out.stat().st_mtime_ns == mtime and "reusing" in capsys.readouterr().out
