"""Budget predictor seam: config validation, candidate rules, strict parsing, rule predictors, manifest."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from videosft import schema as S
from videosft.budget import (
    BudgetConfig,
    BudgetPrediction,
    get_predictor,
    parse_budget_answer,
    predictor_from_config,
    predictor_names,
    snap_up,
)
from videosft.budget.stage import budget_cache_key, predict_rows, write_budget_manifest
from videosft.data.manifest import read_manifest
from videosft.data.sampling import SamplingContract

CANDS = [1, 2, 4, 8, 16]


def test_registry_has_every_builtin():
    assert predictor_names() == sorted(["fixed", "fps", "similarity", "instruction", "text_classifier", "oracle"])
    with pytest.raises(ValueError, match="unknown predictor 'nope'"):
        get_predictor("nope")


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"predictor": "magic"}, "unknown predictor"),
        ({"candidates": [4, 2]}, "strictly ascending"),
        ({"candidates": [0, 2]}, "strictly ascending"),
        ({"candidates": [1, 2], "default": 8}, "default"),
        ({"segment_thresholds": [1, 2]}, "segment_thresholds"),
        ({"segment_thresholds": [3, 2, 4, 5]}, "segment_thresholds"),
        ({"concurrency": 0}, "concurrency"),
        ({"typo_field": 1}, "typo_field"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(fields, message):
    with pytest.raises(ValidationError, match=message):
        BudgetConfig(**fields)


def test_config_defaults_and_prompt():
    cfg = BudgetConfig(candidates=[8, 16, 32, 64], default=16)
    assert cfg.prompt_text().endswith("Answer with one of: 8, 16, 32, 64.")
    assert BudgetConfig.model_validate(cfg.model_dump()) == cfg  # crosses Ray as a dict


@pytest.mark.parametrize("frames, want", [(1, 1), (3, 4), (4, 4), (5, 8), (16, 16), (40, 16), (0, 1)])
def test_snap_up_never_gives_fewer_frames_than_needed_unless_none_is_big_enough(frames, want):
    assert snap_up(frames, CANDS) == want


@pytest.mark.parametrize(
    "text, want",
    [
        ("8", 8),
        ("8 frames.", 8),
        ("I need 16", 16),
        ("16x", 16),
        (" 2\n", 2),
        ("08", 8),
        ("1, 2, 4, 8, 16", None),
        ("5", None),
        ("", None),
        ("2.5", None),
        ("eight", None),
        ("4 or 8", None),
        ("4 then 4", 4),
        ("9" * 5000, None),
        ("٨", None),
    ],
)
def test_parser_is_strict(text, want):
    assert parse_budget_answer(text, CANDS) == want


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40), st.lists(st.integers(1, 64), min_size=1, max_size=6, unique=True))
def test_parser_only_ever_yields_a_candidate_it_read(text, candidates):
    got = parse_budget_answer(text, candidates)
    assert got is None or (got in candidates and str(got) in text)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 16).map(str) | st.text(max_size=12))
def test_parser_round_trips_its_own_numbers(text):
    got = parse_budget_answer(text, CANDS)
    if text.strip().isascii() and text.strip().isdigit() and int(text) in CANDS:
        assert got == int(text)


def _video(i=0, **kw):
    return {S.ID: f"v{i}", S.MEDIA_TYPE: S.MEDIA_VIDEO, S.MEDIA_PATH: "/x.mp4", S.QUESTION: "q", **kw}


def test_fixed_gives_videos_its_budget_and_images_one_frame():
    p = get_predictor("fixed", candidates=CANDS, default=8)
    got = p.predict([_video(), {S.MEDIA_TYPE: S.MEDIA_IMAGE}, {S.MEDIA_TYPE: S.MEDIA_TEXT}])
    assert [g.budget for g in got] == [8, 1, 1] and not any(g.fell_back for g in got)
    with pytest.raises(ValueError, match="not one of candidates"):
        get_predictor("fixed", candidates=CANDS, default=8, budget=3)


def test_fps_follows_the_contract_rule_snapped_up():
    contract = SamplingContract(mode="fps", fps=2.0, min_frames=4)
    p = predictor_from_config(BudgetConfig(predictor="fps"), contract)
    rows = [
        _video(0, num_frames=80, fps=8.0),  # 10 s at 2 fps -> 20 frames -> largest candidate
        _video(1, num_frames=24, fps=8.0),  # 3 s -> 6 -> 8
        _video(2, num_frames=8, fps=8.0),  # 1 s -> min_frames 4 -> 4
        _video(3, num_frames=1, fps=8.0),  # too short for qwen: all frames -> 1
        _video(4),
    ]  # never probed -> fallback
    got = p.predict(rows)
    assert [g.budget for g in got] == [16, 8, 4, 1, 8]
    assert [g.fell_back for g in got] == [False] * 4 + [True]


def test_min_frames_oracle_snaps_up_and_falls_back_when_unknown():
    p = get_predictor("oracle", candidates=[8, 16, 32], default=16)
    got = p.predict([_video(0, min_frames=2), _video(1, min_frames=17), _video(2, min_frames=-1), _video(3)])
    assert [(g.budget, g.fell_back) for g in got] == [(8, False), (32, False), (16, True), (16, True)]


class _Broken:
    name, needs_frames, needs_probe = "broken", False, False

    def __init__(self, result):
        self.result = result

    def predict(self, rows):
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.mark.parametrize("result", [RuntimeError("boom"), [], [BudgetPrediction(3, "three")]])
def test_stage_guarantees_a_candidate_per_row_whatever_the_predictor_does(result):
    got = predict_rows(_Broken(result), [_video()], CANDS, 4)
    assert len(got) == 1 and got[0].budget == 4 and got[0].fell_back


def test_budget_manifest_round_trips_through_read_manifest(tmp_path):
    src = tmp_path / "m.json"
    src.write_text(
        json.dumps(
            [
                {
                    "id": "a",
                    "video": "v/a.mp4",
                    "task": "direction",
                    "min_frames": 2,
                    "options": ["left", "right"],
                    "conversations": [
                        {"from": "human", "value": "<video>\nWhich way?"},
                        {"from": "gpt", "value": "left"},
                    ],
                },
                {
                    "id": "b",
                    "image": "i/b.png",
                    "conversations": [{"from": "human", "value": "<image>\nColour?"}, {"from": "gpt", "value": "red"}],
                },
            ]
        )
    )
    rows = read_manifest(str(src))
    budgets = {"a": (4, "4", False), "b": (1, "non-video (image)", False)}
    merged = [{**r, S.FRAME_BUDGET: budgets[r[S.ID]][0], S.BUDGET_RAW: budgets[r[S.ID]][1]} for r in rows]
    out = write_budget_manifest(merged, tmp_path / "out" / "m.budget.json")
    raw = json.loads(out.read_text())
    assert raw[0]["conversations"][0]["value"] == "<video>\nWhich way?" and raw[0]["options"] == ["left", "right"]
    back = read_manifest(str(out))
    assert [r[S.FRAME_BUDGET] for r in back] == [4, 1]
    assert [r[S.MEDIA_PATH] for r in back] == [r[S.MEDIA_PATH] for r in rows]
    keys = (S.QUESTION, S.MIN_FRAMES, S.TASK)
    assert [[r[k] for k in keys] for r in back] == [[r[k] for k in keys] for r in rows]


def test_cache_key_changes_with_what_decides_budgets_only(tmp_path):
    m = tmp_path / "m.json"
    m.write_text("[]")
    c = SamplingContract()
    base = budget_cache_key(BudgetConfig(), c, str(m))
    assert base == budget_cache_key(BudgetConfig(concurrency=4, cpus_per_actor=2, cache_dir="/x"), c, str(m))
    assert base != budget_cache_key(BudgetConfig(candidates=[1, 2, 4, 8]), c, str(m))
    assert base != budget_cache_key(BudgetConfig(model_path="/other"), c, str(m))
    assert base != budget_cache_key(BudgetConfig(prompt="Frames? {candidates}"), c, str(m))
    assert base != budget_cache_key(BudgetConfig(), SamplingContract(num_frames=4), str(m))
    m.write_text("[ ]")
    assert base != budget_cache_key(BudgetConfig(), c, str(m))


def test_budget_manifest_marks_completion_last(tmp_path, monkeypatch):
    """Pooled trials of several seeds may share one budget cache: the manifest (what they look for)
    is written only after its meta, so whoever finds the manifest can read the meta, and a crash
    between the two leaves no manifest, so the next caller recomputes instead of trusting half."""
    from videosft.budget import stage

    m = tmp_path / "train.json"
    m.write_text(json.dumps([{"id": "v0", "video": "v0.mp4", "conversations": []}]))
    rows = [{S.ID: "v0", S.FRAME_BUDGET: 4, S.BUDGET_RAW: "4", stage.BUDGET_FELL_BACK: False}]
    monkeypatch.setattr(stage, "read_manifest", lambda path, root=None: [{S.ID: "v0"}])
    monkeypatch.setattr(stage, "budget_rows", lambda r, cfg, contract: rows)
    written = []

    def fake_write(merged, out):
        written.append(Path(out).with_suffix(".meta.json").exists())  # the meta is already whole
        if len(written) == 1:
            raise OSError("disk full")  # the first attempt dies before the manifest lands
        Path(out).write_text("[]")
        return Path(out)

    monkeypatch.setattr(stage, "write_budget_manifest", fake_write)
    cfg = BudgetConfig(predictor="oracle", cache_dir=str(tmp_path / "cache"))
    with pytest.raises(OSError):
        stage.budget_manifest(str(m), cfg, SamplingContract())
    left = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(left) == 1 and left[0].endswith(".meta.json")  # the meta, but no manifest to trust
    out = stage.budget_manifest(str(m), cfg, SamplingContract())  # recomputed, not reused
    assert written == [True, True] and out.exists()
    assert json.loads(out.with_suffix(".meta.json").read_text())["histogram"] == {"4": 1}
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_missing_model_path_fails_before_any_ray_work():
    from videosft.budget.stage import predict_budgets_dataset

    for fields in (
        {"predictor": "instruction"},
        {"predictor": "text_classifier"},
        {"predictor": "similarity", "embedding": "dinov2"},
        {"predictor": "oracle", "oracle": "probe"},
    ):
        with pytest.raises(ValueError, match="budget.model_path"):
            predict_budgets_dataset(None, BudgetConfig(**fields), SamplingContract())
    assert not BudgetConfig(predictor="similarity").needs_model_path()


def test_predictor_sft_manifest_asks_exactly_what_the_instruction_predictor_asks(tmp_path):
    from videosft.budget.stage import write_predictor_sft_manifest

    rows = [_video(0, **{S.QUESTION: "Which colour flashed first?"}), {S.ID: "i", S.MEDIA_TYPE: S.MEDIA_IMAGE}]
    cfg = BudgetConfig(num_thumbnails=4)
    out = write_predictor_sft_manifest(rows, [16, 1], cfg, tmp_path / "sft.json")
    (back,) = read_manifest(str(out))
    assert back[S.QUESTION] == "Question: Which colour flashed first?\n" + cfg.prompt_text()
    assert back[S.ANSWER] == "16" and back[S.FRAME_BUDGET] == 4 and back[S.MEDIA_PATH] == "/x.mp4"


def test_item_budgets_are_predicted_once_per_predictor_and_content(tmp_path, monkeypatch):
    """Evaluation items of a Hybrid-Frame sweep: the base and every trial ask for the same budgets;
    the predictor answers once, and anything that could change an answer is a new key."""
    from videosft.budget import stage
    from videosft.data.sampling import SamplingContract

    calls = []

    def fake_rows(rows, cfg, contract):
        calls.append([r[S.ID] for r in rows])
        return [
            {**r, S.FRAME_BUDGET: 2 + i, S.BUDGET_RAW: str(2 + i), stage.BUDGET_FELL_BACK: False}
            for i, r in enumerate(rows)
        ]

    monkeypatch.setattr(stage, "budget_rows", fake_rows)
    rows = [
        {S.ID: f"v{i}", S.MEDIA_TYPE: "video", S.MEDIA_PATH: f"/d/v{i}.mp4", S.QUESTION: "q?", "options": ["a"]}
        for i in range(3)
    ]
    cfg, contract = BudgetConfig(predictor="oracle"), SamplingContract()
    first = stage.cached_budget_rows(rows, cfg, contract, tmp_path)
    again = stage.cached_budget_rows([dict(r) for r in rows], cfg, contract, tmp_path)
    assert again == first and len(calls) == 1 and [r[S.FRAME_BUDGET] for r in again] == [2, 3, 4]
    assert again[0]["options"] == ["a"]  # the rows' other keys come back untouched
    asked = [{**rows[0], S.QUESTION: "another?"}, *rows[1:]]
    stage.cached_budget_rows(asked, cfg, contract, tmp_path)  # another question: asked again
    stage.cached_budget_rows(rows, cfg.model_copy(update={"candidates": [1, 2, 4]}), contract, tmp_path)
    stage.cached_budget_rows(rows, cfg, contract, tmp_path / "elsewhere")
    assert len(calls) == 4
    stage.cached_budget_rows(rows, cfg.model_copy(update={"concurrency": 3}), contract, tmp_path)
    assert len(calls) == 4  # scheduling knobs decide nothing
