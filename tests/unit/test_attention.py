"""Attention probe: exact token masks on hand-built grids, consistent shares, a forced-attention case
on a tiny Qwen2.5-VL, user boxes, the report pieces and the CLI verb."""

import json
import math

import numpy as np
import pytest
import torch

from videosft.analysis.attention import (
    METRICS,
    AttentionSettings,
    attention_markdown,
    attention_modules,
    attention_stats,
    check_family,
    layer_groups,
    load_items,
    measure_item,
    read_attention,
    read_boxes,
    run_attention,
    target_token_mask,
    write_attention_report,
)
from videosft.data.sampling import SamplingContract
from videosft.models.registry import get_family


# ----------------------------------------------------------------------------- pure pieces
def test_mask_on_hand_built_image_grids():
    # 56x56 source, 4x4 patches of 14 px, merge 2 -> 2x2 tokens of 28x28 source px, raster order
    grid = (1, 4, 4)
    assert target_token_mask(grid, 2, 2, [[[0, 0, 10, 10]]], (56, 56)).tolist() == [True, False, False, False]
    assert target_token_mask(grid, 2, 2, [[[27, 27, 29, 29]]], (56, 56)).tolist() == [True] * 4
    # half-open: a box starting exactly on a cell edge does not touch the cell before it
    assert target_token_mask(grid, 2, 2, [[[28, 0, 56, 28]]], (56, 56)).tolist() == [False, True, False, False]
    assert target_token_mask(grid, 2, 2, [[]], (56, 56)).tolist() == [False] * 4
    # non-square source 100 (h) x 200 (w), grid 4x8 patches -> 2 rows x 4 cols of 50x50 px cells
    m = target_token_mask((1, 4, 8), 2, 2, [[[120, 60, 160, 90]]], (100, 200)).reshape(2, 4)
    assert np.argwhere(m).tolist() == [[1, 2], [1, 3]]
    # the resize does not matter, only fractions: the same box at 2x source size gives the same mask
    m2 = target_token_mask((1, 4, 8), 2, 2, [[[240, 120, 320, 180]]], (200, 400)).reshape(2, 4)
    assert (m == m2).all()


def test_mask_on_hand_built_video_grids():
    # 3 sampled frames, temporal patch 2 -> 2 slots; the processor repeats frame 2 to fill slot 1
    boxes = [[[0, 0, 10, 10]], [], [[40, 40, 50, 50]]]
    m = target_token_mask((2, 4, 4), 2, 2, boxes, (56, 56)).reshape(2, 2, 2)
    assert np.argwhere(m).tolist() == [[0, 0, 0], [1, 1, 1]]
    # a slot's target is the union over its frames
    m = target_token_mask((1, 4, 4), 2, 2, [[[0, 0, 10, 10]], [[40, 40, 50, 50]]], (56, 56))
    assert m.tolist() == [True, False, False, True]


def test_layer_groups():
    assert layer_groups(9, 3) == {"layers 0-2": [0, 1, 2], "layers 3-5": [3, 4, 5], "layers 6-8": [6, 7, 8]}
    assert layer_groups(2, 3) == {"layers 0": [0], "layers 1": [1]}
    assert list(layer_groups(28, 3).values())[0] == list(range(10))


def test_stats_uniform_one_hot_and_ranges():
    visual = np.arange(2, 10)  # 8 visual tokens at key positions 2..9, 12 keys
    target = np.zeros(8, dtype=bool)
    target[[1, 2]] = True
    w = np.full((2, 12), 1 / 12)  # uniform over every key, two heads
    s = attention_stats(w, visual, target)
    assert s["visual_share"] == pytest.approx(8 / 12) and s["target_share"] == pytest.approx(2 / 12)
    assert s["target_of_visual"] == pytest.approx(s["area"]) == pytest.approx(0.25)
    assert s["concentration"] == pytest.approx(0.0, abs=1e-12)
    one = np.zeros((2, 12))
    one[:, visual[1]] = 1.0  # every head on one target token
    s = attention_stats(one, visual, target)
    assert s["target_share"] == pytest.approx(1.0) and s["concentration"] == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        w = rng.dirichlet(np.ones(12), size=3)
        s = attention_stats(w, visual, target)
        assert 0.0 <= s["target_share"] <= s["visual_share"] <= 1.0 + 1e-12
        assert 0.0 <= s["concentration"] <= 1.0 and 0.0 <= s["target_of_visual"] <= 1.0


def test_read_boxes_and_bad_input(tmp_path):
    p = tmp_path / "boxes.jsonl"
    p.write_text(
        '{"id": "a", "frame_index": 3, "box": [1, 2, 5, 6]}\n\n{"id": "a", "frame_index": 3, "box": [0, 0, 1, 1]}\n'
        '{"id": "b", "box": [0, 0, 2, 2]}\n'
    )
    assert read_boxes(p) == {"a": {3: [[1, 2, 5, 6], [0, 0, 1, 1]]}, "b": {0: [[0, 0, 2, 2]]}}
    for bad, msg in (
        ('{"id": "a", "box": [1, 2, 0, 6]}', "x1 > x0"),
        ('{"id": "a", "box": [1, 2]}', r"\[x0, y0"),
        ('{"id": "a", "frame_index": -1, "box": [0, 0, 1, 1]}', "frame_index"),
        ("nope", "not JSON"),
        ('{"box": [0, 0, 1, 1]}', "'id'"),
    ):
        p.write_text(bad + "\n")
        with pytest.raises(ValueError, match=msg):
            read_boxes(p)


def test_settings_and_family_validation():
    assert AttentionSettings(budgets=(8, 2, 2)).budgets == (2, 8)
    with pytest.raises(ValueError, match="attention.items"):
        AttentionSettings(items=0)
    with pytest.raises(ValueError, match="attention.budgets"):
        AttentionSettings(budgets=(0,))
    with pytest.raises(ValueError, match="both empty"):
        AttentionSettings(image_manifest="", video_manifest="")
    with pytest.raises(ValueError, match="llava_1_5.*not supported"):
        check_family("llava_1_5")


# ----------------------------------------------------------------------------- on a tiny model
@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    from videosft.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("syn_attn")  # 112 px: 4x4 tokens per image / temporal slot
    make_synthetic(root, n_train_video=0, n_train_image=0, n_eval_video=4, n_eval_image=4, size=112, num_frames=8)
    return root


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    from videosft.data.synthetic import corpus

    return get_family("qwen2_5_vl").build_tiny(tmp_path_factory.mktemp("qwen_attn"), seed=0, extra_corpus=corpus())


SETTINGS = AttentionSettings(budgets=(4,), items=2)


@pytest.fixture(scope="module")
def result(qwen, syn):
    return run_attention(qwen, syn, SETTINGS)


def test_result_shares_consistent(result, qwen):
    assert result["family"] == "qwen2_5_vl" and result["layers"] == 2
    assert result["modalities"] == ["image", "video@4"] and result["items"] == {"image": 2, "video@4": 2}
    assert list(result["layer_groups"]) == ["layers 0", "layers 1"]
    for item in result["per_item"]:
        assert item["visual_tokens"] == (16 if item["modality"] == "image" else 32)  # 4 frames -> 2 slots
        assert 0 < item["target_tokens"] <= item["visual_tokens"]
        for g in item["groups"].values():
            assert 0.0 <= g["target_share"] <= g["visual_share"] <= 1.0 + 1e-9
            assert 0.0 <= g["concentration"] <= 1.0
            assert g["area"] == pytest.approx(item["target_tokens"] / item["visual_tokens"])
    for per_group in result["summary"].values():
        for stats in per_group.values():
            assert set(stats) == set(METRICS) and all(s["n"] == 2 for s in stats.values())
    assert {(e["modality"]) for e in result["examples"]} == {"image", "video@4"}
    json.dumps(result, allow_nan=False)


def test_item_masks_follow_the_rows_boxes(qwen, syn):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(qwen)
    items, _ = load_items(syn, get_family("qwen2_5_vl"), processor, SamplingContract(), SETTINGS)
    rows = {r["id"]: r for name in ("eval_image.json", "eval_video.json") for r in json.loads((syn / name).read_text())}
    for item in items:
        boxes = rows[item.id]["target_boxes"]
        if item.modality == "image":
            assert item.frame_boxes == [boxes[0]]
        want = target_token_mask((item.grid[0], item.grid[1] * 2, item.grid[2] * 2), 2, 2, item.frame_boxes, (112, 112))
        assert (item.target == want).all()
        if item.modality == "image":  # every 28 px cell holding a shape pixel is a target token (PNG: exact pixels)
            from videosft.data.synthetic import BACKGROUND

            frame = item.frames[0].astype(int)
            assert frame.shape[:2] == (112, 112)
            lit = (np.abs(frame - np.asarray(BACKGROUND)).max(axis=2) > 0).reshape(4, 28, 4, 28).any(axis=(1, 3))
            assert lit.any() and not (lit.reshape(-1) & ~item.target).any()


def _force(modules, keep):
    """Pre-hooks that leave the answer row only the key positions in `keep` (the rest at -inf)."""

    def hook(_mod, args, kwargs):
        mask = kwargs.get("attention_mask")
        s = kwargs["hidden_states"].shape[1]
        if mask is None:
            mask = torch.triu(torch.full((s, s), float("-inf")), 1)[None, None]
        mask = mask.clone()
        row = torch.full((s,), float("-inf"))
        row[torch.as_tensor(keep)] = 0.0
        mask[..., -1, :] = row
        kwargs["attention_mask"] = mask
        return args, kwargs

    return [m.register_forward_pre_hook(hook, with_kwargs=True) for m in modules.values()]


def test_forced_attention_on_the_target(qwen, syn):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(qwen)
    model = AutoModelForImageTextToText.from_pretrained(qwen, attn_implementation="eager").eval()
    modules = attention_modules(model)
    items, _ = load_items(syn, get_family("qwen2_5_vl"), processor, SamplingContract(), SETTINGS)
    ids = (processor.image_token_id, processor.video_token_id)
    for item in items[:3]:
        visual = np.nonzero(np.isin(item.features["input_ids"], ids))[0]
        on_target = visual[item.target]
        handles = _force(modules, on_target)
        try:
            stats = measure_item(model, item, modules, *ids)
        finally:
            for h in handles:
                h.remove()
        n_t, n = int(item.target.sum()), len(visual)
        for s in stats.values():
            assert s["target_share"] == pytest.approx(1.0, abs=1e-6)
            assert s["visual_share"] == pytest.approx(1.0, abs=1e-6)
            assert s["concentration"] >= 1 - math.log(n_t) / math.log(n) - 1e-9  # entropy <= log(n_target)
        handles = _force(modules, on_target[:1])  # onto one target token: fully concentrated
        try:
            stats = measure_item(model, item, modules, *ids)
        finally:
            for h in handles:
                h.remove()
        assert all(
            s["target_share"] == pytest.approx(1.0) and s["concentration"] == pytest.approx(1.0, abs=1e-6)
            for s in stats.values()
        )
    free = measure_item(model, items[0], modules, *ids)  # hooks removed: the unforced model spreads out
    assert all(s["concentration"] < 0.5 for s in free.values())


def test_user_boxes_override_and_report(qwen, syn, tmp_path, result):
    boxes = tmp_path / "boxes.jsonl"
    boxes.write_text(json.dumps({"id": "eval_image_00000", "frame_index": 0, "box": [0, 0, 10, 10]}) + "\n")
    res = run_attention(qwen, syn, AttentionSettings(items=2, video_manifest="", boxes=str(boxes)), label="user")
    assert res["items"] == {"image": 1} and res["per_item"][0]["target_tokens"] == 1
    assert any("no target boxes" in s for s in res["skipped"])
    paths = write_attention_report([result, res], tmp_path / "out")
    assert read_attention(paths["user"])["label"] == "user" and paths["plot"].stat().st_size > 0
    md = paths["markdown"].read_text()
    assert "| user | image (n=1) | layers 1 |" in md and "uniform baseline" in md
    assert attention_markdown([result]).count("\n| ") == 2 * 2 + 1  # 2 modalities x 2 groups + header


def test_cli_verb_end_to_end(qwen, syn, tmp_path, capsys):
    from videosft.cli import main

    out = tmp_path / "cli"
    assert (
        main(
            [
                "attention",
                "--model",
                str(qwen),
                "--data-root",
                str(syn),
                "--budgets",
                "2",
                "--items",
                "1",
                "--layer-groups",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    res = read_attention(out / f"attention-{qwen.name}.json")
    assert res["items"] == {"image": 1, "video@2": 1} and list(res["layer_groups"]) == ["layers 0-1"]
    assert (out / "attention.md").exists() and (out / "attention.png").exists()
    assert "target share" in capsys.readouterr().out
    assert main(["attention", "--model", str(qwen), "--data-root", str(syn), "--items", "0"]) == 2


def test_sweep_report_has_the_attention_and_second_moment_tables(result, tmp_path):
    from report_data import scores, trial

    from videosft.analysis.report import report_from_run_dir, write_report
    from videosft.config import load_config

    cfg = load_config(None, ["sweep.frame_budgets=[4]", 'eval.benchmarks=["synthetic_image", "synthetic_video"]'])
    base = {4: scores({"synthetic_image": 60.0, "synthetic_video": 24.0}, 4)}
    trials = [trial(4, {"synthetic_image": 55.0, "synthetic_video": 35.0})]
    stats = {"mean": 2.0, "std": 0.5, "n": 2}
    moment = {
        "groups": {
            "overall": {
                "all": stats,
                "at_or_below": stats,
                "above": {"mean": None, "std": None, "n": 0},
                "mean_grad_sq": 1.5,
                "variance": 0.5,
            }
        },
        "n": 2,
        "unknown_min_frames": 0,
        "loss": 3.0,
        "dot_image": 0.25,
        "bound": {"step_size": 0.01, "first_term": -0.0025, "second_term_per_L": 1e-4, "critical_L": 25.0},
    }
    alignment = [
        {
            "checkpoint": "/x/base",
            "label": "base",
            "budgets": [4],
            "overall": {"4": stats},
            "groups": {},
            "first_nonpositive_budget": None,
            "second_moment": {"4": moment},
        }
    ]
    md = write_report(
        cfg, base, trials, tmp_path, alignment=alignment, attention=[result, {**result, "label": "t4"}]
    ).read_text()
    assert "Attention on the target (Figure 3)" in md and "| t4 | video@4 (n=2) | layers 1 |" in md
    assert "Second moment of the video gradient" in md and "| base | 4 | 2 ± 0.5 (n=2) |" in md and "| 25 |" in md
    html = (tmp_path / "report.html").read_text()
    assert 'id="attention"' in html and "critical L" in html
    assert report_from_run_dir(tmp_path).read_text() == md


def test_study_rederives_boxes_for_a_set_written_before_rows_had_them(tmp_path):
    from videosft.analysis.attention import row_boxes
    from videosft.config import load_config
    from videosft.data.synthetic import make_synthetic
    from videosft.study.run import _target_boxes_file

    cfg = load_config(None, ["data.synthetic.seed=3", "data.synthetic.num_frames=8", "data.synthetic.size=32"])
    root = tmp_path / "syn"
    make_synthetic(
        root, seed=3, n_train_video=0, n_train_image=0, n_eval_video=4, n_eval_image=4, size=32, num_frames=8
    )
    assert _target_boxes_file(cfg, str(root), tmp_path) is None  # rows carry their boxes
    want = {}
    for name in ("eval_image.json", "eval_video.json"):
        rows = json.loads((root / name).read_text())
        want.update({r["id"]: row_boxes(r) for r in rows})
        (root / name).write_text(json.dumps([{k: v for k, v in r.items() if k != "target_boxes"} for r in rows]))
    path = _target_boxes_file(cfg, str(root), tmp_path)
    assert read_boxes(path) == {k: v for k, v in want.items() if v}
