"""The budget stage on a real local Ray cluster: columns, the written manifest, and cache reuse."""

import json

import pytest

from videosft import schema as S
from videosft.budget import BUDGET_FELL_BACK, BudgetConfig, snap_up
from videosft.budget.stage import budget_manifest, predict_budgets_dataset
from videosft.data.manifest import read_manifest
from videosft.data.sampling import SamplingContract
from videosft.data.synthetic import make_synthetic

pytestmark = pytest.mark.ray
CANDS = [1, 2, 4, 8, 16]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return make_synthetic(
        tmp_path_factory.mktemp("syn"), n_train_video=4, n_train_image=1, n_eval_video=1, n_eval_image=1
    )


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
    cfg = BudgetConfig(
        predictor="similarity",
        num_thumbnails=8,
        concurrency=1,
        cpus_per_actor=1,
        batch_size=4,
        cache_dir=str(tmp_path / "cache"),
    )
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


def test_hybrid_trial_inputs_train_and_eval_on_predicted_budgets(local_ray, synthetic, tmp_path):
    """`sweep.frame_budgets: [..., hybrid]`: the training manifest and the eval items carry each
    sample's predicted budget (the decode stage honours it), and the summary records the mix."""
    from videosft.benchmarks.synthetic import load_video
    from videosft.config import from_dict
    from videosft.eval.runner import hybrid_budgets
    from videosft.tune.sweep import hybrid_training
    from videosft.workspace import Inputs

    cfg = from_dict(
        {
            "output_dir": str(tmp_path),
            "data": {"root": str(synthetic.root)},
            "sweep": {"frame_budgets": [2, "hybrid"]},
            "budget": {"predictor": "oracle", "candidates": CANDS, "cpus_per_actor": 0.5},
        }
    )
    assert cfg.sweep.fixed_budgets() == [2] and cfg.sweep.decode_budgets(CANDS) == CANDS
    train_cfg, default, record = hybrid_training(cfg, Inputs(model_path="unused", data_root=str(synthetic.root)))
    assert default == 16 and record["budget_predictor"] == "oracle" and record["budget_fell_back"] == 0
    rows = read_manifest(train_cfg.data.train_manifest)
    videos = [r for r in rows if r[S.MEDIA_TYPE] == S.MEDIA_VIDEO]
    assert [r[S.FRAME_BUDGET] for r in videos] == [snap_up(r[S.MIN_FRAMES], CANDS) for r in videos]
    assert record["mean_frames"] == pytest.approx(sum(r[S.FRAME_BUDGET] for r in videos) / len(videos))
    items = load_video(str(synthetic.root))
    got = hybrid_budgets(cfg, items)
    assert [g[S.FRAME_BUDGET] for g in got] == [snap_up(i["min_frames"], CANDS) for i in items]
    cached = list((tmp_path / "budgets").glob("items.budget-oracle-*.json"))
    assert len(cached) == 1  # the next trial's (or the base's) evaluation asks no predictor
    assert hybrid_budgets(cfg, items) == got and list((tmp_path / "budgets").glob("items.budget-*")) == cached


def test_hybrid_needs_a_usable_predictor_before_any_cluster_work():
    from videosft.config import ConfigError, from_dict

    with pytest.raises((ConfigError, ValueError), match="budget.model_path"):
        from_dict({"sweep": {"frame_budgets": [4, "hybrid"]}, "budget": {"predictor": "instruction"}})
