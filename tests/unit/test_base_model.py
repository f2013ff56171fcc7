"""The demo's stage-1 base: found shipped or cached by its recipe digest, verified by hashes, rebuilt when not.

The builder here writes a small real safetensors checkpoint instead of running stage 1 (that is
what scripts/build_demo_base.py and the ray_cpu demo test exercise); what is under test is the
lookup, verification and atomic rebuild of the cache.
"""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from videosft.study import base_model as bm
from videosft.study.presets import PRESETS

PRESET = PRESETS["smoke"]


class Builder:
    """Writes a checkpoint through write_base (as build_base does) and counts its calls."""

    def __init__(self, tmp_path, fail=False):
        self.calls, self.tmp, self.fail = 0, tmp_path, fail

    def __call__(self, preset, dest):
        self.calls += 1
        ckpt = self.tmp / f"ckpt{self.calls}"
        ckpt.mkdir()
        save_file({"w": np.arange(6, dtype=np.float32)}, str(ckpt / "model.safetensors"))
        (ckpt / "config.json").write_text("{}")
        if self.fail:
            raise RuntimeError("stage 1 died")
        return bm.write_base(ckpt, {"accuracy": 50.0, "chance": 29.2}, preset, dest)


def test_digest_follows_the_recipe_not_unrelated_settings():
    d = bm.recipe_digest(PRESET)
    assert d == bm.recipe_digest(PRESET.model_copy(update={"name": "renamed", "video_steps": 99}))
    assert d != bm.recipe_digest(PRESET.model_copy(update={"base_lr": 1e-3}))
    assert d != bm.recipe_digest(PRESET.model_copy(update={"base_steps": PRESET.base_steps + 1}))
    assert d != bm.recipe_digest(PRESET, trainer="ray")


def test_built_once_then_cached(tmp_path):
    build = Builder(tmp_path)
    first = bm.ensure_base(PRESET, shipped=None, cache=tmp_path / "cache", builder=build)
    assert first.source == "built" and first.path == tmp_path / "cache" / bm.recipe_digest(PRESET)
    assert first.info["accuracy"] == 50.0 and set(first.info["files"]) == {"config.json", "model.safetensors"}
    again = bm.ensure_base(PRESET, shipped=None, cache=tmp_path / "cache", builder=build)
    assert (again.source, again.path, build.calls) == ("cache", first.path, 1)
    # a shipped copy that verifies wins over the cache
    shipped = bm.ensure_base(PRESET, shipped=first.path, cache=tmp_path / "other", builder=build)
    assert (shipped.source, build.calls) == ("shipped", 1)


@pytest.mark.parametrize("damage", ["truncate", "drop_manifest", "other_digest", "bad_json"])
def test_damaged_cache_is_rebuilt_not_trusted(tmp_path, damage):
    build = Builder(tmp_path)
    base = bm.ensure_base(PRESET, shipped=None, cache=tmp_path / "cache", builder=build)
    manifest = base.path / bm.MANIFEST
    if damage == "truncate":  # an interrupted copy: the weights are short
        weights = base.path / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:20])
    elif damage == "drop_manifest":
        manifest.unlink()
    elif damage == "other_digest":
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "digest": "0" * 16}))
    else:
        manifest.write_text("{not json")
    assert bm.verify(base.path, bm.recipe_digest(PRESET)) is None
    rebuilt = bm.ensure_base(PRESET, shipped=None, cache=tmp_path / "cache", builder=build)
    assert (rebuilt.source, build.calls) == ("built", 2)
    assert bm.verify(rebuilt.path, bm.recipe_digest(PRESET)) is not None


def test_failed_build_leaves_no_partial_base(tmp_path):
    with pytest.raises(RuntimeError, match="stage 1 died"):
        bm.ensure_base(PRESET, shipped=None, cache=tmp_path / "cache", builder=Builder(tmp_path, fail=True))
    assert list((tmp_path / "cache").iterdir()) == []


def test_shipped_base_is_current_and_intact():
    """The artifact in the package verifies against today's recipe (rebuild it with scripts/build_demo_base.py)."""
    info = bm.verify(bm.SHIPPED, bm.recipe_digest(bm.DEMO_BASE))
    assert info is not None, f"{bm.SHIPPED}: missing, stale or damaged; run scripts/build_demo_base.py"
    assert info["accuracy"] > info["chance"] + 10  # stage 1 left it clearly above chance on held-out stills
    assert sum((bm.SHIPPED / f).stat().st_size for f in info["files"]) < 2_000_000
    assert (bm.SHIPPED / "model.safetensors").exists() and not list(bm.SHIPPED.glob("*.bin"))


def test_laptop_study_stage1_is_the_shipped_base():
    """The laptop and table1 presets take stage 1 from the shipped base: same stills, steps, rate, batch."""
    for name in ("laptop", "table1"):
        preset = PRESETS[name]
        assert preset.stage1_trainer == "local"
        recipe = bm.base_preset(preset)
        assert bm.recipe_digest(recipe) == bm.recipe_digest(bm.DEMO_BASE)
        assert bm.verify(bm.SHIPPED, bm.recipe_digest(recipe)) is not None
    # a preset whose stage-1 fields differ gets a base of its own recipe, never the shipped one
    other = bm.base_preset(PRESETS["laptop"].model_copy(update={"base_steps": 100}))
    assert bm.recipe_digest(other) != bm.recipe_digest(bm.DEMO_BASE)
    assert bm.verify(bm.SHIPPED, bm.recipe_digest(other)) is None


def test_study_base_stills_are_the_shipped_base_training_stills(tmp_path):
    """Rows come from per-row seeds: the study set's training stills are the ones the base learnt,
    whatever its other split sizes (the reason the laptop study may reuse the shipped base)."""
    from videosft.data.synthetic import make_synthetic

    laptop, base = PRESETS["laptop"], bm.DEMO_BASE
    a = make_synthetic(
        tmp_path / "a", n_train_video=8, n_train_image=laptop.n_train_image, n_eval_image=8, n_eval_video=8
    )
    b = make_synthetic(
        tmp_path / "b",
        n_train_video=base.n_train_video,
        n_train_image=base.n_train_image,
        n_eval_image=4,
        n_eval_video=4,
    )
    stills = [
        sorted((r for r in json.loads(s.train.read_text()) if "image" in r), key=lambda r: r["id"]) for s in (a, b)
    ]
    assert len(stills[0]) == len(stills[1]) == 512
    assert [(r["id"], r["conversations"]) for r in stills[0]] == [(r["id"], r["conversations"]) for r in stills[1]]
    assert [(tmp_path / "a" / r["image"]).read_bytes() for r in stills[0][:16]] == [
        (tmp_path / "b" / r["image"]).read_bytes() for r in stills[1][:16]
    ]
