"""Config: defaults, YAML loading, dotted overrides, and errors that name the key."""

from pathlib import Path

import pydantic
import pytest
import yaml

from videosft.config import ConfigError, ExperimentConfig, apply_overrides, from_dict, load_config

REPO = Path(__file__).resolve().parents[2]


def test_jobs_demo_yaml_is_the_embedded_demo():
    """jobs/configs/demo.yaml is a copy of the demo's packaged config (study/demo.yaml), which is the
    defaults plus Video-SFT on clips only at the study's learning rate, with more held-out items."""
    from videosft.study.demo import DEMO_CONFIG

    assert (REPO / "jobs/configs/demo.yaml").read_text() == DEMO_CONFIG.read_text()
    demo, defaults = load_config(DEMO_CONFIG), load_config(None)
    assert demo.data.image_replay_ratio == 0.0 and demo.model.path is None
    assert demo.sweep.frame_budgets == [2, 4, 8] and demo.sampling == defaults.sampling
    from videosft.tune.sweep import derive_max_concurrent

    # two trials side by side on the README's 2 cores, each stepping on the same 8 samples as before
    assert derive_max_concurrent(demo, {"CPU": 2.0}) == 2
    assert demo.train.num_workers * demo.train.micro_batch_size == 8


@pytest.mark.parametrize("path", sorted((REPO / "jobs/configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_yaml_validates(path):
    cfg = load_config(path)
    assert isinstance(cfg, ExperimentConfig)
    assert len(cfg.sampling.contract_id()) == 12


def test_overrides_are_typed_by_yaml():
    cfg = load_config(None, ["train.max_steps=50", "sweep.frame_budgets=[4, 8, 16]", "train.lr=2e-4"])
    assert cfg.train.max_steps == 50
    assert cfg.sweep.frame_budgets == [4, 8, 16]
    assert cfg.train.lr == pytest.approx(2e-4)


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"train\.max_stepz: unknown key"):
        load_config(None, ["train.max_stepz=3"])


def test_bad_value_is_named_with_expectation():
    with pytest.raises(ConfigError, match=r"train\.max_steps: .*integer.*'abc'"):
        load_config(None, ["train.max_steps=abc"])


def test_unknown_family_and_benchmark_rejected():
    with pytest.raises(ConfigError, match=r"model\.family"):
        load_config(None, ["model.family=gpt5"])
    with pytest.raises(ConfigError, match=r"eval\.benchmarks"):
        load_config(None, ["eval.benchmarks=[nope]"])


def test_bf16_on_cpu_rejected():
    with pytest.raises(ConfigError, match="bf16"):
        load_config(None, ["train.precision=bf16"])


def test_override_into_a_value_is_an_error():
    with pytest.raises(ConfigError, match="is a value"):
        apply_overrides({"name": "x"}, ["name.sub=1"])
    with pytest.raises(ConfigError, match="dotted.key=value"):
        apply_overrides({}, ["novalue"])


def test_top_level_must_be_mapping(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(p)


def test_frozen_and_round_trips_through_plain_dict():
    cfg = load_config(None, ["train.max_steps=7"])
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        cfg.train.max_steps = 9  # type: ignore[misc]
    raw = yaml.safe_load(yaml.safe_dump(cfg.model_dump(mode="json")))  # what crosses Ray
    assert from_dict(raw) == cfg


@pytest.mark.parametrize("uri", ["s3://bucket/runs/x", "gs://bucket/runs/x", "file:///tmp/runs/x"])
def test_output_dir_uri_rejected_with_shared_mount_advice(uri):
    # The run directory is written with pathlib; a URI would become a local "s3:" folder.
    with pytest.raises(ConfigError) as info:
        load_config(None, [f"output_dir={uri}"])
    msg = str(info.value)
    assert "output_dir" in msg and uri in msg
    for needle in (
        "filesystem path every node can reach",
        "EFS",
        "Filestore",
        "ReadWriteMany",
        "data.root",
        "model.path",
        "data.cache_root",
    ):
        assert needle in msg, needle
    # object storage stays fine where it is supported, and shared-mount paths are fine for output_dir
    cfg = load_config(
        None,
        [
            "output_dir=/mnt/shared/runs/x",
            "data.root=s3://bucket/data",
            "model.path=gs://bucket/model",
            "data.cache_root=s3://bucket/cache",
        ],
    )
    assert cfg.output_dir == "/mnt/shared/runs/x"


def test_train_sources_are_typed_anchored_and_combined(tmp_path, monkeypatch):
    import json

    from videosft.workspace import Inputs, anchored, train_manifest

    with pytest.raises(ConfigError, match=r"data\.train_sources\.0\.root: unknown key"):
        load_config(None, ["data.train_sources=[{manifest: a.json, root: /x}]"])
    (tmp_path / "src").mkdir()
    turns = [{"from": "human", "value": "<video>\nq"}, {"from": "gpt", "value": "a"}]
    (tmp_path / "src" / "a.json").write_text(json.dumps([{"id": "1", "video": "v/1.mp4", "conversations": turns}]))
    monkeypatch.chdir(tmp_path)
    cfg = anchored(
        from_dict(
            {
                "output_dir": "out",
                "data": {
                    "root": "s3://bucket/data",
                    "train_sources": [{"manifest": "src/a.json", "media_root": "s3://bucket/videos"}],
                },
            }
        )
    )
    source = cfg.data.train_sources[0]
    assert source.manifest == str(tmp_path / "src" / "a.json") and source.media_root == "s3://bucket/videos"
    path = train_manifest(cfg, Inputs(model_path="m", data_root=cfg.data.root))
    assert path.startswith(str(tmp_path / "out" / "manifests"))
    assert json.loads(Path(path).read_text())[0]["video"] == "s3://bucket/videos/v/1.mp4"
    plain = cfg.model_copy(update={"data": cfg.data.model_copy(update={"train_sources": []})})
    assert train_manifest(plain, Inputs(model_path="m", data_root="s3://bucket/data")) == "s3://bucket/data/train.json"
