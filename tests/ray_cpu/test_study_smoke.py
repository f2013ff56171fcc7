"""`videosft study --preset smoke`: the whole miniature study on local Ray, checking the pipeline
(stage-1 base, fixed + hybrid + replay sweeps, fixed-budget scoring, probe, report), not the verdict."""

import json

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_smoke_study_runs_end_to_end_and_continues(local_ray, tmp_path):
    from videosft.study.presets import get_preset
    from videosft.study.run import run_study

    preset = get_preset("smoke")
    report = run_study(preset, str(tmp_path / "study"))
    text = report.read_text()
    data = json.loads((tmp_path / "study" / "study_report.json").read_text())
    assert "Stage 1: the spatial base" in text and "### Verdict" in text
    assert data["verdict"]["label"] in ("trade-off present", "trade-off absent", "not significant")
    got = {(t["variant"], str(t["budget"])) for t in data["trials"]}
    want = {("fixed", str(b)) for b in preset.budgets} | {("hybrid", "hybrid"), ("replay", str(max(preset.budgets)))}
    assert got == want
    hybrid = json.loads(next((tmp_path / "study" / "stage2").glob("seed_0/trials/budget_hybrid/summary.json")).read_text())
    assert hybrid["budget_predictor"] == "oracle" and hybrid["mean_frames"] >= 1
    largest = json.loads(next((tmp_path / "study" / "stage2").glob(
        f"seed_0/trials/budget_{max(preset.budgets)}/summary.json")).read_text())
    if hybrid["mean_frames"] < max(preset.budgets):  # trained at its per-sample budgets, not the largest
        assert hybrid["compute"]["visual_tokens_per_sample"] < largest["compute"]["visual_tokens_per_sample"]
    assert set(data["alignment"]["overall"]) == {str(b) for b in preset.budgets}
    assert "base" in data["fixed_budget"] and len(data["fixed_budget"]) == len(want) + 1
    mtime = report.stat().st_mtime_ns
    stamp = (tmp_path / "study" / "stage1" / "base.json").stat().st_mtime_ns
    run_study(preset, str(tmp_path / "study"))  # continues: nothing retrains, the report is rewritten
    assert (tmp_path / "study" / "stage1" / "base.json").stat().st_mtime_ns == stamp
    assert report.stat().st_mtime_ns >= mtime
