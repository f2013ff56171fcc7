"""Synthetic study set: deterministic, LLaVA-Video layout, decodable, min_frames correct by construction."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from videosft.data.sampling import uniform_indices
from videosft.data.synthetic import (
    BACKGROUND,
    COLOURS,
    IMAGE_TASKS,
    TASKS,
    VIDEO_TASKS,
    chance_accuracy,
    make_synthetic,
    minimal_budget,
    render,
    shape_mask,
)

KW = dict(n_train_video=8, n_train_image=8, n_eval_video=16, n_eval_image=8)
ROW_KEYS = {"id", "conversations", "task", "min_frames", "data_source", "options", "target_boxes"}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("syn"), seed=0, **KW)


def _load(path: Path) -> list[dict]:
    return json.loads(path.read_text())


def _meta(synth) -> dict:
    return json.loads(synth.meta.read_text())


def _rows(synth) -> list[dict]:
    return _load(synth.train) + _load(synth.eval_image) + _load(synth.eval_video)


def _decode(path: Path) -> tuple[np.ndarray, float]:
    decord = pytest.importorskip("decord")
    vr = decord.VideoReader(str(path))
    return vr.get_batch(list(range(len(vr)))).asnumpy(), vr.get_avg_fps()


def _mean_in(frame: np.ndarray, shape: str, cy: float, cx: float, r: float) -> np.ndarray:
    """Mean colour of the shape's interior (shrunk, so chroma bleed at edges does not count)."""
    return frame[shape_mask(shape, cy, cx, 0.6 * r, frame.shape[0])].mean(axis=0)


def _close(measured: np.ndarray, colour: str | tuple, tol: float = 30.0) -> bool:
    ref = COLOURS[colour] if isinstance(colour, str) else colour
    return bool(np.abs(measured - np.asarray(ref, dtype=float)).max() <= tol)


# ----------------------------------------------------------------------------- determinism + layout
def test_same_seed_byte_identical_other_seed_differs(synth, tmp_path):
    again = make_synthetic(tmp_path / "a", seed=0, **KW)
    for name in ("train", "eval_image", "eval_video", "meta"):
        assert getattr(again, name).read_bytes() == getattr(synth, name).read_bytes(), name
    other = make_synthetic(tmp_path / "b", seed=1, **KW)
    assert other.meta.read_bytes() != synth.meta.read_bytes()


def test_row_layout_exactly_llava_video(synth):
    for split, rows in (
        ("train", _load(synth.train)),
        ("eval_image", _load(synth.eval_image)),
        ("eval_video", _load(synth.eval_video)),
    ):
        for row in rows:
            key = "video" if "video" in row else "image"
            assert set(row) == ROW_KEYS | {key}, row
            assert (synth.root / row[key]).is_file()
            human, gpt = row["conversations"]
            assert human["from"] == "human" and gpt["from"] == "gpt"
            assert human["value"].startswith(f"<{key}>\n")
            answer = gpt["value"]
            assert answer.islower() and answer.isalpha() and answer in row["options"]
            assert row["options"] == list(TASKS[row["task"]].options)
            assert all(o in human["value"] for o in row["options"]) and "Answer with one word:" in human["value"]
            assert TASKS[row["task"]].modality == key and row["data_source"] == "synthetic"
            assert isinstance(row["min_frames"], int)
            if split == "eval_image":
                assert key == "image"
            if split == "eval_video":
                assert key == "video"
    train = _load(synth.train)
    assert {("video" in r) for r in train} == {True, False}  # stills and clips mixed
    ids = [r["id"] for r in _rows(synth)]
    assert len(ids) == len(set(ids)) == sum(KW.values())


def test_classes_balanced_and_min_frames_spread(synth):
    rows = _load(synth.eval_video)
    assert Counter(r["task"] for r in rows) == {t: 4 for t in VIDEO_TASKS}
    for task in VIDEO_TASKS:
        answers = Counter(r["conversations"][1]["value"] for r in rows if r["task"] == task)
        assert max(answers.values()) - min(answers.values()) <= 1
    assert {r["min_frames"] for r in rows} >= {1, 2, 4, 8}
    assert {r["task"] for r in _load(synth.eval_image)} == set(IMAGE_TASKS)


def test_tasks_and_chance():
    assert chance_accuracy("colour") == pytest.approx(0.25)
    assert chance_accuracy("shape") == pytest.approx(1 / 3)
    assert set(IMAGE_TASKS) == {"colour", "shape", "count", "position"}
    assert set(VIDEO_TASKS) == {"video_colour", "direction", "colour_end", "flash_order"}


# ----------------------------------------------------------------------------- min_frames by construction
def _smaller(budgets: tuple[int, ...], mf: int) -> int | None:
    below = [b for b in budgets if b < mf]
    return max(below) if below else None


def _hits(idx: np.ndarray, start: int, length: int) -> bool:
    return bool(np.any((idx >= start) & (idx < start + length)))


def test_min_frames_rechecked_against_uniform_indices(synth):
    meta, t = _meta(synth), synth.num_frames
    for row in _rows(synth):
        mf, m = row["min_frames"], meta[row["id"]]
        assert mf in synth.budgets or mf == t
        if "image" in row or row["task"] == "video_colour":
            assert mf == 1
            continue
        idx, prev = uniform_indices(t, mf), _smaller(synth.budgets, mf)
        prev_idx = uniform_indices(t, prev) if prev else None
        if row["task"] == "direction":
            assert mf == 2
        elif row["task"] == "colour_end":
            c = m["change_frame"]
            assert t // 4 <= c < 3 * t // 4 and idx.max() >= c
            assert prev_idx is None or prev_idx.max() < c
        elif row["task"] == "flash_order":
            (s1, _), (s2, _) = m["flashes"]
            assert s2 >= s1 + 3 and _hits(idx, s1, 2) and _hits(idx, s2, 2)
            assert prev_idx is None or not (_hits(prev_idx, s1, 2) and _hits(prev_idx, s2, 2))


def test_budgets_too_small_fall_back_to_all_frames(tmp_path):
    syn = make_synthetic(
        tmp_path,
        seed=3,
        n_train_video=0,
        n_train_image=0,
        n_eval_video=8,
        n_eval_image=0,
        num_frames=16,
        budgets=(1, 2),
    )
    rows, meta = _load(syn.eval_video), _meta(syn)
    assert {r["min_frames"] for r in rows} <= {1, 2, 16}
    fallback = [r for r in rows if r["min_frames"] == 16]
    assert {r["task"] for r in fallback} == {"colour_end", "flash_order"}
    two = uniform_indices(16, 2)
    for row in fallback:  # the largest listed budget is not enough; all 16 frames are
        m = meta[row["id"]]
        if row["task"] == "flash_order":
            (s1, _), (s2, _) = m["flashes"]
            assert not (_hits(two, s1, 2) and _hits(two, s2, 2))
        else:
            assert two.max() < m["change_frame"]


def test_minimal_budget_requires_every_larger_listed_budget():
    t = 12
    # Sufficient at 3 (centred: 2, 6, 10) but not at 4 (0, 3, 6, 9): 3 must not be reported.
    ok = lambda idx: bool(np.isin(10, idx))  # noqa: E731
    assert ok(uniform_indices(t, 3)) and not ok(uniform_indices(t, 4))
    assert minimal_budget(ok, t, (3, 4)) == t
    assert minimal_budget(ok, t, (1, 3, 12)) == 3


# ----------------------------------------------------------------------------- pixels survive encoding
def test_video_colour_and_colour_end_recoverable(synth):
    meta = _meta(synth)
    for row in _load(synth.eval_video):
        m = meta[row["id"]]
        if row["task"] not in ("video_colour", "colour_end"):
            continue
        frames, fps = _decode(synth.root / row["video"])
        assert frames.shape == (synth.num_frames, 64, 64, 3) and fps == pytest.approx(synth.fps)
        shape, _, cy, cx, r = m["object"]
        answer = row["conversations"][1]["value"]
        assert _close(_mean_in(frames[-1], shape, cy, cx, r), answer)
        if row["task"] == "colour_end":
            c, (first, final) = m["change_frame"], m["colours"]
            assert _close(_mean_in(frames[c - 1], shape, cy, cx, r), first)
            assert _close(_mean_in(frames[c], shape, cy, cx, r), final)


def test_flash_colours_recoverable_at_known_frames(synth):
    meta = _meta(synth)
    for row in (r for r in _load(synth.eval_video) if r["task"] == "flash_order"):
        m = meta[row["id"]]
        frames, _ = _decode(synth.root / row["video"])
        cy, cx, r = m["region"]
        lit = set()
        for start, colour in m["flashes"]:
            for i in range(start, start + m["flash_len"]):
                assert _close(_mean_in(frames[i], "square", cy, cx, r), colour), (row["id"], i)
                lit.add(i)
        dark = [i for i in range(len(frames)) if i not in lit]
        assert all(_close(_mean_in(frames[i], "square", cy, cx, r), BACKGROUND) for i in dark)
        assert m["flashes"][0][1] == row["conversations"][1]["value"]


def test_direction_clips_move_as_answered(synth):
    sign = {"right": (1, 1), "left": (1, -1), "down": (0, 1), "up": (0, -1)}  # (axis of (y, x), sign)
    for row in (r for r in _load(synth.eval_video) if r["task"] == "direction"):
        frames, _ = _decode(synth.root / row["video"])

        def centroid(frame: np.ndarray) -> np.ndarray:
            fg = np.abs(frame.astype(int) - np.asarray(BACKGROUND)).max(axis=-1) > 60
            return np.argwhere(fg).mean(axis=0)

        axis, direction = sign[row["conversations"][1]["value"]]
        step = centroid(frames[len(frames) // 2]) - centroid(frames[0])
        assert step[axis] * direction > 10 and abs(step[1 - axis]) < 2


def test_images_lossless_and_answerable(synth):
    from PIL import Image

    meta = _meta(synth)
    for row in _load(synth.eval_image):
        m, answer = meta[row["id"]], row["conversations"][1]["value"]
        img = np.asarray(Image.open(synth.root / row["image"]).convert("RGB"))
        np.testing.assert_array_equal(img, render([tuple(o) for o in m["objects"]], 64))
        objs = m["objects"]
        if row["task"] == "colour":
            assert objs[0][1] == answer
        elif row["task"] == "shape":
            assert objs[0][0] == answer
        elif row["task"] == "count":
            assert len(objs) == ["one", "two", "three"].index(answer) + 1
        elif row["task"] == "position":
            cy, cx = objs[0][2], objs[0][3]
            want = {"left": cx < 24, "right": cx > 40, "top": cy < 24, "bottom": cy > 40}
            assert want[answer] and 20 < (cx if answer in ("top", "bottom") else cy) < 44


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(size=63), "size"),
        (dict(num_frames=4), "num_frames"),
        (dict(budgets=()), "budgets"),
        (dict(fps=0.0), "fps"),
        (dict(n_eval_video=-1), "counts"),
    ],
)
def test_bad_arguments_raise(tmp_path, kwargs, match):
    args = dict(n_train_video=0, n_train_image=0, n_eval_video=0, n_eval_image=0) | kwargs
    with pytest.raises(ValueError, match=match):
        make_synthetic(tmp_path, **args)


def test_target_boxes_are_the_shapes_pixels_and_regenerate(synth):
    from videosft.data.synthetic import regenerate_target_boxes, shape_box

    meta = _meta(synth)
    for row in _rows(synth):
        boxes = row["target_boxes"]
        assert len(boxes) == (1 if "image" in row else synth.num_frames)
        m = meta[row["id"]]
        if "objects" in m:  # stills: one box per drawn shape, the tight bounds of its mask
            assert boxes[0] == [shape_box(o[0], o[2], o[3], o[4], 64) for o in m["objects"]]
        if row["task"] == "flash_order":  # only the flash frames show the target
            lit = {s + j for s, _ in m["flashes"] for j in range(m["flash_len"])}
            assert {i for i, b in enumerate(boxes) if b} == lit
        assert (
            regenerate_target_boxes(
                row["id"], row["task"], row["conversations"][1]["value"], seed=0, size=64, num_frames=synth.num_frames
            )
            == boxes
        )
    # a square of half-side 0.85 r = 8.5 at (32, 32): pixel centres 23.5 .. 40.5, so pixels 23 .. 40
    assert shape_box("square", 32.0, 32.0, 10.0, 64) == [23, 23, 41, 41]
