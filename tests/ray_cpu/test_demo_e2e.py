"""The walking skeleton end to end on local Ray: synthetic data -> Ray Data -> Ray Train + DeepSpeed
ZeRO -> HF checkpoint -> evaluation actors -> Tune sweep -> report, at the CI config's scale."""

import json
from pathlib import Path

import pytest

from videosft.config import load_config
from videosft.tune.sweep import run_sweep
from videosft.workspace import prepare_inputs

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_ci_sweep_end_to_end(local_ray, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    cfg = load_config(REPO / "jobs/configs/ci.yaml", [f"output_dir={tmp_path}", "data.max_failure_ratio=0.2"])
    inputs = prepare_inputs(cfg)
    # one corrupt training video: it must be rejected and counted, and lose nothing else
    train = json.loads((Path(inputs.data_root) / "train.json").read_text())
    victim = next(r for r in train if "video" in r)
    (Path(inputs.data_root) / victim["video"]).write_bytes(b"")
    # train from two sources, as LLaVA-Video-178K ships: videos next to their manifest, images
    # in a manifest elsewhere whose media_root points back at the data
    (Path(inputs.data_root) / "videos.json").write_text(json.dumps([r for r in train if "image" not in r]))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "images.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train if "image" in r))
    sources = [
        {"manifest": str(Path(inputs.data_root) / "videos.json")},
        {"manifest": str(tmp_path / "src" / "images.jsonl"), "media_root": inputs.data_root},
    ]
    cfg = cfg.with_overrides([f"data.train_sources={json.dumps(sources)}"])

    report = run_sweep(cfg)

    assert report.exists() and (tmp_path / "tradeoff.png").stat().st_size > 10_000
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["frame_budget"] for r in results["rows"]] == cfg.sweep.frame_budgets
    text = report.read_text()
    for budget in cfg.sweep.frame_budgets:
        assert f"\n| {budget} |" in text
    for trial in results["trials"]:
        assert trial["data"]["rejected"] == 1 and trial["data"]["rows"] == len(train)
        assert victim["id"] in Path(trial["data"]["rejects_path"]).read_text()
        ckpt = Path(trial["checkpoint"])
        model = AutoModelForImageTextToText.from_pretrained(ckpt)
        AutoProcessor.from_pretrained(ckpt)
        assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
        assert list(ckpt.glob("*.safetensors")) and not list(ckpt.glob("*.bin"))
        meta = json.loads((ckpt / "videosft_meta.json").read_text())
        assert meta["frame_budget"] == trial["frame_budget"] and meta["steps"] == cfg.train.max_steps
        assert meta["contract_id"] == cfg.sampling.contract_id()
        for name in cfg.eval.benchmarks:
            scores = trial["scores"][name]
            assert scores["n_items"] == 6 and 0.0 <= scores["overall"] <= 100.0
            assert scores["contract_id"] == cfg.sampling.contract_id()
            preds = tmp_path / "trials" / f"budget_{trial['frame_budget']}" / "eval" / f"{name}.predictions.jsonl"
            assert len(preds.read_text().splitlines()) == 6
    # the gradient-alignment probe ran on the base and every trial, and the report draws it
    assert [a["label"] for a in results["alignment"]] == ["base"] + [f"budget_{b}" for b in cfg.sweep.frame_budgets]
    for probe in results["alignment"]:
        assert set(probe["overall"]) == {str(b) for b in cfg.sweep.frame_budgets}
        assert all(-1.0 <= cell["mean"] <= 1.0 for cell in probe["overall"].values())
    assert "Gradient alignment" in text and (tmp_path / "alignment.png").stat().st_size > 5_000
    assert "data:image/png;base64" in (tmp_path / "report.html").read_text()
    # tracking: Ray's TensorBoard callback wrote each trial's curve and scores
    events = list((tmp_path / "tune").rglob("events.out.tfevents*"))
    assert len(events) >= len(cfg.sweep.frame_budgets) and all(e.stat().st_size > 0 for e in events)
    # training changed the weights: the tuned checkpoint differs from the base
    base = AutoModelForImageTextToText.from_pretrained(inputs.model_path)
    tuned = AutoModelForImageTextToText.from_pretrained(results["trials"][0]["checkpoint"])
    diff = sum(float((a - b).abs().sum()) for a, b in zip(base.parameters(), tuned.parameters()))
    assert diff > 0


def test_demo_starts_from_the_spatial_base(local_ray, tmp_path):
    """`videosft demo` at CI size: Video-SFT from the shipped stage-1 base, which is above chance on
    held-out stills, and a report whose rows measure each trial against that base."""
    from videosft.study.base_model import SHIPPED
    from videosft.study.demo import run_demo

    cfg = load_config(
        REPO / "jobs/configs/ci.yaml",
        [
            f"output_dir={tmp_path}",
            "data.synthetic.n_eval_image=24",
            "data.image_replay_ratio=0.0",
            "sweep.frame_budgets=[2]",
            "eval.frame_budget=null",
            "tracking.backends=[]",
            "alignment.enabled=false",
            "attention.enabled=false",
        ],
    )
    assert cfg.model.path is None
    report = run_demo(cfg)

    base = json.loads((tmp_path / "base_model.json").read_text())
    assert (
        base["source"] == "shipped" and Path(base["from"]) == SHIPPED and Path(base["path"]) == tmp_path / "base_model"
    )
    results = json.loads((tmp_path / "results.json").read_text())
    image = results["base"]["2"]["synthetic_image"]
    assert image["n_items"] == 24
    # the base's own score in this run, on items stage 1 never trained on: clearly above chance
    assert image["overall"] > image["chance"] + 10, image
    (row,) = results["rows"]
    assert row["base_image"] == image["overall"] and row["image"] is not None
    assert abs(row["delta_image"] - (row["image"] - row["base_image"])) < 1e-6
    trial = results["trials"][0]
    assert trial["data"]["rows"] == cfg.data.synthetic.n_train_video  # Video-SFT: clips only
    assert json.loads((Path(trial["checkpoint"]) / "videosft_meta.json").read_text())["frame_budget"] == 2
    text = report.read_text()
    assert "\n| 2 |" in text and (tmp_path / "report.html").exists()
