"""The synthetic spatial/temporal study set: stills and clips whose minimal frame budget is known.

Owns rendering (numpy), writing (Pillow PNG stills, PyAV H.264 mp4 clips) and the manifests in the
LLaVA-Video-178K layout: ``train.json`` (stills and clips mixed), ``eval_image.json``,
``eval_video.json``, plus ``meta.json`` (id -> ground-truth generation parameters, for tests and
audits; not part of the manifest rows).

Spatial tasks live on stills (colour, shape, count, position); temporal tasks on clips
(video_colour, direction, colour_end, flash_order). Every answer is one lowercase word listed in the
question, so exact match is fair and chance is 1/len(options). A clip's ``min_frames`` is computed
by construction: the smallest budget in ``budgets`` from which on every listed budget's
`uniform_indices` make the answer determinable (``num_frames`` = all frames when none does).
Rows are generated from per-row seeds, so a row does not change when the split sizes do.

Every row also records where its target is: ``target_boxes``, one entry per frame of the media (one
for a still, ``num_frames`` for a clip), each a list of ``[x0, y0, x1, y1]`` boxes in the written
image's pixel coordinates (x right, y down; half-open: the shape's pixels are x0 <= x < x1,
y0 <= y < y1), the tight bounds of every drawn shape's mask. A frame with no shape (between
flash_order's flashes) has an empty list. The attention probe (analysis/attention.py) reads them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from videosft.data.sampling import uniform_indices

COLOURS: dict[str, tuple[int, int, int]] = {  # saturated and far apart, so yuv420p keeps them apart
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 60, 230),
    "yellow": (235, 220, 30),
}
BACKGROUND = (24, 24, 24)
SHAPES = ("circle", "square", "triangle")
COLOUR_NAMES = tuple(COLOURS)


@dataclass(frozen=True)
class TaskSpec:
    """What a task is asked on and which one-word answers it allows."""

    modality: str  # "image" | "video"
    options: tuple[str, ...]
    question: str


TASKS: dict[str, TaskSpec] = {
    "colour": TaskSpec("image", COLOUR_NAMES, "What colour is the shape?"),
    "shape": TaskSpec("image", SHAPES, "What shape is shown?"),
    "count": TaskSpec("image", ("one", "two", "three"), "How many shapes are there?"),
    "position": TaskSpec("image", ("left", "right", "top", "bottom"), "Where is the shape?"),
    "video_colour": TaskSpec("video", COLOUR_NAMES, "What colour is the shape?"),
    "direction": TaskSpec("video", ("left", "right", "up", "down"), "Which way does the shape move?"),
    "colour_end": TaskSpec("video", COLOUR_NAMES, "What colour is the shape at the end?"),
    "flash_order": TaskSpec("video", COLOUR_NAMES, "Which colour flashed first?"),
}
IMAGE_TASKS = tuple(t for t, s in TASKS.items() if s.modality == "image")
VIDEO_TASKS = tuple(t for t, s in TASKS.items() if s.modality == "video")
FLASH_LEN = 2  # frames per flash: only dense sampling lands inside both
DEFAULT_BUDGETS = (1, 2, 4, 8, 16, 32)

Obj = tuple[str, str, float, float, float]  # (shape, colour, centre y, centre x, radius), pixels


def chance_accuracy(task: str) -> float:
    """Expected exact-match accuracy of a uniform random guess among the listed options."""
    return 1.0 / len(TASKS[task].options)


def question_text(task: str) -> str:
    """The question with its options spelled out, e.g. '... Answer with one word: a, b or c.'"""
    spec = TASKS[task]
    listed = ", ".join(spec.options[:-1]) + " or " + spec.options[-1]
    return f"{spec.question} Answer with one word: {listed}."


def corpus() -> list[str]:
    """Every question and answer string (for building a tiny tokenizer that covers the set)."""
    return [question_text(t) for t in TASKS] + sorted({o for s in TASKS.values() for o in s.options})


@dataclass(frozen=True)
class SyntheticSet:
    """Where make_synthetic wrote things, and how many rows of each kind."""

    root: Path
    train: Path
    eval_image: Path
    eval_video: Path
    meta: Path
    n_train_video: int
    n_train_image: int
    n_eval_video: int
    n_eval_image: int
    num_frames: int
    fps: float
    budgets: tuple[int, ...]


@dataclass(frozen=True)
class _Ctx:
    size: int
    num_frames: int
    budgets: tuple[int, ...]


@dataclass(frozen=True)
class _Sample:
    frames: list[list[Obj]]  # objects drawn in each frame (one frame for a still)
    min_frames: int
    meta: dict[str, Any]


# --------------------------------------------------------------------------- rendering
def shape_mask(shape: str, cy: float, cx: float, r: float, size: int) -> np.ndarray:
    """Boolean (size, size) mask of one shape, sampled at pixel centres."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    dy, dx = yy - cy, xx - cx
    if shape == "circle":
        return dy * dy + dx * dx <= r * r
    if shape == "square":
        return (np.abs(dy) <= 0.85 * r) & (np.abs(dx) <= 0.85 * r)
    if shape == "triangle":  # apex up, base of width 2r at cy + r
        return (dy >= -r) & (dy <= r) & (np.abs(dx) <= (dy + r) / 2)
    raise ValueError(f"shape_mask: unknown shape {shape!r}")


def shape_box(shape: str, cy: float, cx: float, r: float, size: int) -> list[int] | None:
    """Tight half-open pixel box [x0, y0, x1, y1] of one shape's mask (None if it covers no pixel)."""
    ys, xs = np.nonzero(shape_mask(shape, cy, cx, r, size))
    if not len(ys):
        return None
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def target_boxes(frames: Sequence[Sequence[Obj]], size: int) -> list[list[list[int]]]:
    """Per frame, the boxes of every drawn shape (the manifest's ``target_boxes`` field)."""
    cache: dict[Obj, list[int] | None] = {}
    out = []
    for objs in frames:
        boxes = []
        for obj in objs:
            if obj not in cache:
                cache[obj] = shape_box(obj[0], obj[2], obj[3], obj[4], size)
            if cache[obj] is not None:
                boxes.append(cache[obj])
        out.append(boxes)
    return out


def render(objs: Sequence[Obj], size: int) -> np.ndarray:
    """One uint8 RGB frame: background, then objects painted in order."""
    img = np.empty((size, size, 3), dtype=np.uint8)
    img[:] = BACKGROUND
    for shape, colour, cy, cx, r in objs:
        img[shape_mask(shape, cy, cx, r, size)] = COLOURS[colour]
    return img


def write_mp4(path: Path, frames: np.ndarray, fps: float, crf: int = 10) -> None:
    """H.264 yuv420p; low crf and a short GOP so 2-frame flashes and colours survive and seek fast."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        # threads=1 keeps the bytes identical run to run.
        stream.options = {"crf": str(crf), "x264-params": "keyint=8:min-keyint=1:bframes=0:scenecut=0:threads=1"}
        for arr in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")))
        container.mux(stream.encode())


def write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(image).save(path, format="PNG")


# --------------------------------------------------------------------------- minimal budgets
def minimal_budget(determinable: Callable[[np.ndarray], bool], num_frames: int, budgets: Sequence[int]) -> int:
    """Smallest budget b in budgets such that every listed budget >= b makes the answer determinable.

    With nested budgets (e.g. powers of two) that is simply the smallest sufficient one; requiring
    all larger listed budgets too keeps "give it at least min_frames" safe for non-nested lists.
    Falls back to num_frames (all frames), which must be sufficient.
    """
    if not determinable(np.arange(num_frames)):
        raise AssertionError("minimal_budget: answer not determinable even from all frames")
    best = num_frames
    for b in sorted(set(budgets), reverse=True):
        if not determinable(uniform_indices(num_frames, b)):
            break
        best = b
    return best


def _hits(idx: np.ndarray, start: int, length: int) -> bool:
    return bool(np.any((idx >= start) & (idx < start + length)))


def _colour_end_ok(c: int) -> Callable[[np.ndarray], bool]:
    return lambda idx: bool(idx.max() >= c)  # some sampled frame shows the final colour


def _flash_ok(s1: int, s2: int) -> Callable[[np.ndarray], bool]:
    return lambda idx: _hits(idx, s1, FLASH_LEN) and _hits(idx, s2, FLASH_LEN)


@lru_cache(maxsize=32)
def _event_groups(kind: str, num_frames: int, budgets: tuple[int, ...]) -> dict[int, tuple]:
    """Every admissible event placement grouped by its min_frames (used to spread min_frames)."""
    t = num_frames
    if kind == "colour_end":  # change frame in the middle half
        cands = [(c, _colour_end_ok(c)) for c in range(t // 4, (3 * t) // 4)]
    else:  # two non-overlapping flashes with at least one plain frame between them
        cands = [
            ((s1, s2), _flash_ok(s1, s2))
            for s1 in range(t - FLASH_LEN)
            for s2 in range(s1 + FLASH_LEN + 1, t - FLASH_LEN + 1)
        ]
    groups: dict[int, list] = {}
    for params, pred in cands:
        groups.setdefault(minimal_budget(pred, t, budgets), []).append(params)
    return {k: tuple(v) for k, v in sorted(groups.items())}


def _pick_event(rng: np.random.Generator, kind: str, k: int, n_opts: int, ctx: _Ctx) -> Any:
    """Cycle target min_frames across rows (offset per answer cycle so answer and budget decorrelate)."""
    groups = _event_groups(kind, ctx.num_frames, ctx.budgets)
    keys = list(groups)
    members = groups[keys[(k + k // n_opts) % len(keys)]]
    return members[int(rng.integers(len(members)))]


# --------------------------------------------------------------------------- generators
def _pick(rng: np.random.Generator, seq: Sequence[str]) -> str:
    return seq[int(rng.integers(len(seq)))]


def _centre(rng: np.random.Generator, r: float, size: int) -> tuple[float, float]:
    lo, hi = r + 2, size - r - 2
    return round(float(rng.uniform(lo, hi)), 2), round(float(rng.uniform(lo, hi)), 2)


def _still(objs: list[Obj], **meta: Any) -> _Sample:
    return _Sample([objs], 1, {"objects": [list(o) for o in objs], **meta})


def _gen_colour(rng: np.random.Generator, answer: str, k: int, ctx: _Ctx) -> _Sample:
    r = round(0.2 * ctx.size, 2)
    return _still([(_pick(rng, SHAPES), answer, *_centre(rng, r, ctx.size), r)])


def _gen_shape(rng: np.random.Generator, answer: str, k: int, ctx: _Ctx) -> _Sample:
    r = round(0.2 * ctx.size, 2)
    return _still([(answer, _pick(rng, COLOUR_NAMES), *_centre(rng, r, ctx.size), r)])


def _gen_count(rng: np.random.Generator, answer: str, k: int, ctx: _Ctx) -> _Sample:
    cell, r = ctx.size / 3, round(ctx.size / 9, 2)
    objs = []
    for c in rng.permutation(9)[: TASKS["count"].options.index(answer) + 1]:
        jy, jx = rng.uniform(-cell / 10, cell / 10, size=2)
        cy, cx = round(float((c // 3 + 0.5) * cell + jy), 2), round(float((c % 3 + 0.5) * cell + jx), 2)
        objs.append((_pick(rng, SHAPES), _pick(rng, COLOUR_NAMES), cy, cx, r))
    return _still(objs)


def _gen_position(rng: np.random.Generator, answer: str, k: int, ctx: _Ctx) -> _Sample:
    s, r = ctx.size, round(0.14 * ctx.size, 2)
    near, far, mid = 0.22 * s, 0.78 * s, s / 2 + float(rng.uniform(-0.1 * s, 0.1 * s))
    cy, cx = {"left": (mid, near), "right": (mid, far), "top": (near, mid), "bottom": (far, mid)}[answer]
    return _still([(_pick(rng, SHAPES), _pick(rng, COLOUR_NAMES), round(cy, 2), round(cx, 2), r)])


def _clip(frames: list[list[Obj]], ok: Callable[[np.ndarray], bool], ctx: _Ctx, **meta: Any) -> _Sample:
    return _Sample(frames, minimal_budget(ok, ctx.num_frames, ctx.budgets), meta)


def _gen_video_colour(rng: np.random.Generator, answer: str, k: int, ctx: _Ctx) -> _Sample:
    r = round(0.2 * ctx.size, 2)
    obj = (_pick(rng, SHAPES), answer, *_centre(rng, r, ctx.size), r)
    return _clip([[obj]] * ctx.num_frames, lambda idx: len(idx) >= 1, ctx, object=list(obj))


def _gen_direction(rng: np.random.Generator, answer: str, k: int, ctx: _Ctx) -> _Sample:
    s, t, r = ctx.size, ctx.num_frames, round(0.14 * ctx.size, 2)
    a, b, off = 0.2 * s, 0.8 * s, float(rng.uniform(0.3 * s, 0.7 * s))
    start, end = {
        "right": ((off, a), (off, b)),
        "left": ((off, b), (off, a)),
        "down": ((a, off), (b, off)),
        "up": ((b, off), (a, off)),
    }[answer]
    shape, colour = _pick(rng, SHAPES), _pick(rng, COLOUR_NAMES)
    path = [
        (round(start[0] + (end[0] - start[0]) * i / (t - 1), 2), round(start[1] + (end[1] - start[1]) * i / (t - 1), 2))
        for i in range(t)
    ]
    frames = [[(shape, colour, cy, cx, r)] for cy, cx in path]
    ok = lambda idx: bool(idx.max() > idx.min())  # noqa: E731 - two distinct frames show the motion
    return _clip(frames, ok, ctx, shape=shape, colour=colour, start=list(path[0]), end=list(path[-1]), r=r)


def _gen_colour_end(rng: np.random.Generator, answer: str, k: int, ctx: _Ctx) -> _Sample:
    c = _pick_event(rng, "colour_end", k, len(COLOUR_NAMES), ctx)
    first = _pick(rng, [x for x in COLOUR_NAMES if x != answer])
    r = round(0.2 * ctx.size, 2)
    shape, (cy, cx) = _pick(rng, SHAPES), _centre(rng, r, ctx.size)
    frames = [[(shape, first if i < c else answer, cy, cx, r)] for i in range(ctx.num_frames)]
    return _clip(
        frames, _colour_end_ok(c), ctx, change_frame=c, colours=[first, answer], object=[shape, answer, cy, cx, r]
    )


def _gen_flash_order(rng: np.random.Generator, answer: str, k: int, ctx: _Ctx) -> _Sample:
    s1, s2 = _pick_event(rng, "flash_order", k, len(COLOUR_NAMES), ctx)
    second = _pick(rng, [x for x in COLOUR_NAMES if x != answer])
    r, mid = round(0.42 * ctx.size, 2), ctx.size / 2
    frames: list[list[Obj]] = [[] for _ in range(ctx.num_frames)]
    for start, colour in ((s1, answer), (s2, second)):
        for i in range(start, start + FLASH_LEN):
            frames[i] = [("square", colour, mid, mid, r)]
    return _clip(
        frames, _flash_ok(s1, s2), ctx, flashes=[[s1, answer], [s2, second]], flash_len=FLASH_LEN, region=[mid, mid, r]
    )


_GENERATORS: dict[str, Callable[[np.random.Generator, str, int, _Ctx], _Sample]] = {
    "colour": _gen_colour,
    "shape": _gen_shape,
    "count": _gen_count,
    "position": _gen_position,
    "video_colour": _gen_video_colour,
    "direction": _gen_direction,
    "colour_end": _gen_colour_end,
    "flash_order": _gen_flash_order,
}


# --------------------------------------------------------------------------- manifests
def _row(
    rid: str, key: str, rel: str, task: str, answer: str, min_frames: int, boxes: list[list[list[int]]]
) -> dict[str, Any]:
    tag = "<video>" if key == "video" else "<image>"
    return {
        "id": rid,
        key: rel,
        "conversations": [
            {"from": "human", "value": f"{tag}\n{question_text(task)}"},
            {"from": "gpt", "value": answer},
        ],
        "task": task,
        "min_frames": min_frames,
        "data_source": "synthetic",
        "options": list(TASKS[task].options),
        "target_boxes": boxes,
    }


def _make_rows(
    out: Path, split: str, modality: str, n: int, seed: int, ctx: _Ctx, fps: float, metas: dict[str, Any]
) -> list[dict[str, Any]]:
    """Render, write and describe n rows, tasks round-robin and answers balanced per task."""
    tasks = VIDEO_TASKS if modality == "video" else IMAGE_TASKS
    codes = (["train", "eval"].index(split), ["image", "video"].index(modality))
    rows = []
    for i in range(n):
        task, k = tasks[i % len(tasks)], i // len(tasks)
        answer = TASKS[task].options[k % len(TASKS[task].options)]
        sample = _GENERATORS[task](np.random.default_rng([seed, *codes, i]), answer, k, ctx)
        rid = f"{split}_{modality}_{i:05d}"
        if modality == "video":
            rel = f"videos/{rid}.mp4"
            write_mp4(out / rel, np.stack([render(o, ctx.size) for o in sample.frames]), fps)
        else:
            rel = f"images/{rid}.png"
            write_png(out / rel, render(sample.frames[0], ctx.size))
        rows.append(_row(rid, modality, rel, task, answer, sample.min_frames, target_boxes(sample.frames, ctx.size)))
        metas[rid] = {"task": task, "answer": answer, **sample.meta}
    return rows


def regenerate_target_boxes(
    row_id: str,
    task: str,
    answer: str,
    *,
    seed: int,
    size: int,
    num_frames: int,
    budgets: Sequence[int] = DEFAULT_BUDGETS,
) -> list[list[list[int]]]:
    """The ``target_boxes`` of a row that `make_synthetic` wrote before rows carried them, re-derived
    from the row's own generation seed (its id is ``<split>_<modality>_<index>``; same arguments)."""
    split, modality, index = row_id.rsplit("_", 2)
    tasks = VIDEO_TASKS if modality == "video" else IMAGE_TASKS
    i = int(index)
    if split not in ("train", "eval") or tasks[i % len(tasks)] != task:
        raise ValueError(f"regenerate_target_boxes: {row_id!r} ({task}) is not a make_synthetic row")
    ctx = _Ctx(size, num_frames, tuple(sorted(set(int(b) for b in budgets))))
    codes = (["train", "eval"].index(split), ["image", "video"].index(modality))
    sample = _GENERATORS[task](np.random.default_rng([seed, *codes, i]), answer, i // len(tasks), ctx)
    return target_boxes(sample.frames, size)


def _dump(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
    return path


def _check_args(size: int, num_frames: int, fps: float, budgets: Sequence[int], counts: Sequence[int]) -> None:
    if size < 32 or size % 2:
        raise ValueError(f"make_synthetic: size must be an even number >= 32 (yuv420p), got {size}")
    if num_frames < 8:
        raise ValueError(f"make_synthetic: num_frames must be >= 8 (two flashes need room), got {num_frames}")
    if not fps > 0:
        raise ValueError(f"make_synthetic: fps must be > 0, got {fps}")
    if not budgets or min(budgets) < 1:
        raise ValueError(f"make_synthetic: budgets must be non-empty positive ints, got {budgets}")
    if min(counts) < 0:
        raise ValueError(f"make_synthetic: row counts must be >= 0, got {counts}")


def make_synthetic(
    out_dir: str | Path,
    *,
    seed: int = 0,
    n_train_video: int,
    n_train_image: int,
    n_eval_video: int,
    n_eval_image: int,
    size: int = 64,
    num_frames: int = 32,
    fps: float = 8.0,
    budgets: Sequence[int] = DEFAULT_BUDGETS,
) -> SyntheticSet:
    """Write the study set under out_dir; same seed and arguments give byte-identical JSON."""
    counts = (n_train_video, n_train_image, n_eval_video, n_eval_image)
    _check_args(size, num_frames, fps, budgets, counts)
    out = Path(out_dir)
    for sub in ("videos", "images"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    ctx, metas = _Ctx(size, num_frames, tuple(sorted(set(int(b) for b in budgets)))), {}
    train = _make_rows(out, "train", "video", n_train_video, seed, ctx, fps, metas) + _make_rows(
        out, "train", "image", n_train_image, seed, ctx, fps, metas
    )
    order = np.random.default_rng([seed, 99]).permutation(len(train))  # mix stills and clips
    paths = {
        "train": _dump(out / "train.json", [train[j] for j in order]),
        "eval_image": _dump(
            out / "eval_image.json", _make_rows(out, "eval", "image", n_eval_image, seed, ctx, fps, metas)
        ),
        "eval_video": _dump(
            out / "eval_video.json", _make_rows(out, "eval", "video", n_eval_video, seed, ctx, fps, metas)
        ),
    }
    meta = _dump(out / "meta.json", metas)
    return SyntheticSet(
        out,
        paths["train"],
        paths["eval_image"],
        paths["eval_video"],
        meta,
        *counts,
        num_frames=num_frames,
        fps=float(fps),
        budgets=ctx.budgets,
    )
