"""Attention probe (the study's Figure 3): how much of the answer position's attention lands on the target?

For one checkpoint and held-out items whose target region is known (the synthetic set's
``target_boxes`` per frame, or a user's JSONL of ``{"id", "frame_index", "box"}`` for real data),
one forward pass per item measures, at the *answer position* (the last prompt token, the one whose
logits predict the answer's first token), for every language-model layer, averaged over heads:

- ``target_share``: attention mass on the visual tokens covering the target (in [0, 1]);
- ``visual_share``: attention mass on all visual tokens (>= target_share, <= 1);
- ``target_of_visual``: target_share / visual_share, the share of the *visual* attention on the target;
- ``area``: target tokens / visual tokens, what target_of_visual would be under uniform visual attention;
- ``concentration``: 1 - the normalised entropy of the attention renormalised over the visual tokens
  (per head, then averaged over heads): 0 = uniform over every visual token, 1 = one token.

Layers are reported in ``layer_groups`` contiguous groups (thirds by default; fewer when the model has
fewer layers), each the mean over its layers; items give mean ± std (ddof=0) per modality and budget.

Visual tokens are mapped to pixels exactly. Qwen2.5-VL: the processor resizes a frame as a whole (no
crop) to ``grid_h x grid_w`` patches of ``patch_size`` px, merges ``merge_size x merge_size`` patches
into one token and, for video, ``temporal_patch_size`` consecutive sampled frames into one temporal
slot (the last frame repeated to fill the final slot); tokens are in (slot, row, column) raster order.
A token covers the target when its cell overlaps a target box of any frame of its slot with positive
area; on a coarse grid (the tiny model's 64 px frames are 2 x 2 tokens) that is most tokens, so read
``target_of_visual`` against ``area``, its uniform baseline. Other families (LLaVA's CLIP crop and pooling grids) are refused with a clear error.

sdpa returns no attention weights, so the probe loads its own copy of the checkpoint with
``attn_implementation="eager"`` and reads the weights with forward hooks on the decoder layers'
``self_attn`` (keeping only the answer row); training is untouched.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from videosft import schema as S
from videosft.analysis.alignment import decoded_images, decoded_videos, infer_family
from videosft.analysis.compute import human_params
from videosft.analysis.figures import pyplot, save_figure
from videosft.data.manifest import join_path, read_manifest
from videosft.data.preprocess import encode_sample, load_features
from videosft.data.sampling import SamplingContract
from videosft.models.registry import get_family

if TYPE_CHECKING:
    from torch import nn

METRICS = ("target_share", "visual_share", "target_of_visual", "area", "concentration")
SUPPORTED_FAMILIES = ("qwen2_5_vl",)
TARGET_BOXES = "target_boxes"  # manifest field: per frame, a list of [x0, y0, x1, y1] pixel boxes
_SELF_ATTN = re.compile(r"(?:^|\.)language_model\.(?:model\.)?layers\.(\d+)\.self_attn$")


@dataclass(frozen=True)
class AttentionSettings:
    """What one probe measures; validated here so a bad value fails before any model loads."""

    budgets: tuple[int, ...] = (8,)  # video frame budgets the clips are shown at
    items: int = 24  # held-out items per modality (the first that decode and have a target)
    layer_groups: int = 3
    image_manifest: str = "eval_image.json"  # under the data root ("" = no images)
    video_manifest: str = "eval_video.json"  # under the data root ("" = no videos)
    boxes: str | None = None  # JSONL of {"id", "frame_index", "box": [x0, y0, x1, y1]}; replaces rows' boxes
    examples: int = 1  # heat-map examples kept per modality and budget
    decode_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        budgets = tuple(sorted({int(b) for b in self.budgets}))
        if self.video_manifest and (not budgets or budgets[0] < 1):
            raise ValueError(f"attention.budgets: need positive frame budgets, got {list(self.budgets)}")
        object.__setattr__(self, "budgets", budgets)
        for name in ("items", "layer_groups"):
            if getattr(self, name) < 1:
                raise ValueError(f"attention.{name}: must be >= 1, got {getattr(self, name)}")
        if self.examples < 0:
            raise ValueError(f"attention.examples: must be >= 0, got {self.examples}")
        if not self.image_manifest and not self.video_manifest:
            raise ValueError("attention: image_manifest and video_manifest are both empty; nothing to probe")
        if not self.decode_timeout_s > 0:
            raise ValueError(f"attention.decode_timeout_s: must be > 0, got {self.decode_timeout_s}")


# --------------------------------------------------------------------------- boxes and the token grid
Box = Sequence[float]  # [x0, y0, x1, y1], pixels of the source media, half-open


def _check_box(box: Any, where: str) -> list[float]:
    if (
        not isinstance(box, (list, tuple))
        or len(box) != 4
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
    ):
        raise ValueError(f"{where}: box must be [x0, y0, x1, y1] numbers, got {box!r}")
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"{where}: box needs x1 > x0 and y1 > y0, got {box!r}")
    return [x0, y0, x1, y1]


def read_boxes(path: str | Path) -> dict[str, dict[int, list[list[float]]]]:
    """User boxes: JSONL lines {"id", "frame_index", "box"} -> {id: {frame_index: [box, ...]}}."""
    out: dict[str, dict[int, list[list[float]]]] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not JSON ({exc})") from None
        if not isinstance(rec, dict) or "id" not in rec or "box" not in rec:
            raise ValueError(f"{where}: need an object with 'id', 'frame_index' and 'box'")
        idx = rec.get("frame_index", 0)
        if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
            raise ValueError(f"{where}: frame_index must be an integer >= 0, got {idx!r}")
        out.setdefault(str(rec["id"]), {}).setdefault(idx, []).append(_check_box(rec["box"], where))
    return out


def row_boxes(row: Mapping[str, Any]) -> dict[int, list[list[float]]] | None:
    """{frame_index: boxes} from a manifest row's ``target_boxes`` (None when the row has none)."""
    raw = row.get(TARGET_BOXES)
    if raw is None:
        return None
    if not isinstance(raw, (list, tuple)) and not hasattr(raw, "__len__"):
        raise ValueError(f"row {row.get(S.ID)!r}: {TARGET_BOXES} must be a list (per frame) of box lists")
    return {
        i: [_check_box(list(b), f"row {row.get(S.ID)!r} {TARGET_BOXES}[{i}]") for b in frame]
        for i, frame in enumerate(raw)
        if len(frame)
    }


def target_token_mask(
    grid_thw: Sequence[int],
    merge_size: int,
    temporal_patch_size: int,
    frame_boxes: Sequence[Sequence[Box]],
    source_hw: tuple[int, int],
) -> np.ndarray:
    """Bool (slots * rows * cols,) in token order: which Qwen2.5-VL visual tokens cover a target box.

    ``grid_thw``: the processor's (t, h, w) in patches; ``frame_boxes``: per *sampled* frame (in the
    order the frames were given), boxes in source pixels; ``source_hw``: the source (height, width).
    """
    t, h, w = (int(v) for v in grid_thw)
    if h % merge_size or w % merge_size:
        raise ValueError(f"target_token_mask: grid {h}x{w} not divisible by merge_size {merge_size}")
    rows, cols = h // merge_size, w // merge_size
    height, width = source_hw
    ys, xs = np.arange(rows + 1) * height / rows, np.arange(cols + 1) * width / cols  # cell edges, source px
    mask = np.zeros((t, rows, cols), dtype=bool)
    for slot in range(t):
        frames = range(slot * temporal_patch_size, (slot + 1) * temporal_patch_size)
        for f in frames:
            for x0, y0, x1, y1 in frame_boxes[min(f, len(frame_boxes) - 1)] if frame_boxes else ():
                r = (ys[:-1] < y1) & (ys[1:] > y0)
                c = (xs[:-1] < x1) & (xs[1:] > x0)
                mask[slot] |= r[:, None] & c[None, :]
    return mask.reshape(-1)


def layer_groups(n_layers: int, n_groups: int) -> dict[str, list[int]]:
    """Contiguous groups of layer indices ("layers a-b"), at most one group per layer."""
    parts = [p for p in np.array_split(np.arange(n_layers), min(n_groups, n_layers)) if len(p)]
    return {(f"layers {p[0]}" if len(p) == 1 else f"layers {p[0]}-{p[-1]}"): [int(i) for i in p] for p in parts}


def attention_stats(weights: np.ndarray, visual: np.ndarray, target: np.ndarray) -> dict[str, float | None]:
    """The METRICS of one layer's answer row. weights (heads, keys); visual: key positions of the
    visual tokens in token order; target: bool per visual token."""
    w = np.asarray(weights, dtype=np.float64)
    vis = w[:, visual]
    vis_mass = vis.sum(axis=1)
    tgt_mass = vis[:, target].sum(axis=1)
    n = vis.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = vis / vis_mass[:, None]
        ent = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    conc = (1.0 - ent / math.log(n)) if n > 1 else np.full_like(ent, np.nan)
    ok = vis_mass > 0
    return {
        "target_share": float(tgt_mass.mean()),
        "visual_share": float(vis_mass.mean()),
        "target_of_visual": float(tgt_mass.sum() / vis_mass.sum()) if vis_mass.sum() > 0 else None,
        "area": float(target.mean()) if n else None,
        "concentration": float(np.clip(conc[ok], 0.0, 1.0).mean()) if ok.any() and n > 1 else None,
    }


# --------------------------------------------------------------------------- items
@dataclass
class ProbeItem:
    """One held-out item ready for a forward pass."""

    id: str
    modality: str  # "image" | "video@T"
    features: dict[str, np.ndarray]
    target: np.ndarray  # bool per visual token
    grid: tuple[int, int, int]  # (slots, rows, cols) of merged tokens
    frame_boxes: list[list[list[float]]]  # per sampled frame, source px
    source_hw: tuple[int, int]
    frames: np.ndarray = field(repr=False)  # decoded (T, h, w, 3) frames, for the heat map


def _grid_key(features: Mapping[str, np.ndarray], video: bool) -> tuple[int, int, int]:
    key = "video_grid_thw" if video else "image_grid_thw"
    if key not in features:
        raise ValueError(f"attention: the processor gave no {key}; is this a Qwen2.5-VL checkpoint?")
    return tuple(int(v) for v in np.asarray(features[key]).reshape(-1, 3)[0])  # type: ignore[return-value]


def make_item(
    row: Mapping[str, Any], boxes: Mapping[int, list], modality: str, family: Any, processor: Any
) -> ProbeItem:
    """Encode a decoded row for generation (the prompt ends where the answer starts) and map its boxes."""

    video = row[S.MEDIA_TYPE] == S.MEDIA_VIDEO
    feats = load_features(encode_sample(dict(row), family, processor, for_generation=True)["features"])
    indices = [int(i) for i in row[S.FRAME_INDICES]] if video else [0]
    frame_boxes = [list(boxes.get(i, [])) for i in indices]
    sub = processor.video_processor if video else processor.image_processor
    grid = _grid_key(feats, video)
    merge, tps = int(sub.merge_size), int(getattr(sub, "temporal_patch_size", 1) or 1) if video else 1
    target = target_token_mask(grid, merge, tps, frame_boxes, (int(row[S.HEIGHT]), int(row[S.WIDTH])))
    return ProbeItem(
        str(row[S.ID]),
        modality,
        feats,
        target,
        (grid[0], grid[1] // merge, grid[2] // merge),
        frame_boxes,
        (int(row[S.HEIGHT]), int(row[S.WIDTH])),
        np.asarray(row[S.FRAMES]),
    )


def load_items(
    data_root: str | Path, family: Any, processor: Any, contract: SamplingContract, settings: AttentionSettings
) -> tuple[list[ProbeItem], list[str]]:
    """Items per modality (images, then clips at every budget), and skipped rows as "id: reason"."""
    from videosft.data.decode import IsolatedDecoder

    user = read_boxes(settings.boxes) if settings.boxes else {}
    skipped: list[str] = []

    def with_boxes(manifest: str, media: str) -> list[tuple[dict, dict]]:
        out = []
        for row in read_manifest(join_path(str(data_root), manifest)):
            if row[S.MEDIA_TYPE] != media:
                continue
            boxes = user.get(str(row[S.ID])) if settings.boxes else row_boxes(row)
            if not boxes:
                skipped.append(f"{row[S.ID]}: no target boxes")
                continue
            out.append((row, boxes))
        return out

    items: list[ProbeItem] = []
    with IsolatedDecoder(timeout_s=settings.decode_timeout_s) as decoder:
        if settings.image_manifest:
            rows = with_boxes(settings.image_manifest, S.MEDIA_IMAGE)
            decoded, bad = decoded_images([r for r, _ in rows], contract, settings.items, decoder)
            skipped += bad
            boxes = {str(r[S.ID]): b for r, b in rows}
            items += [make_item(r, boxes[str(r[S.ID])], "image", family, processor) for r in decoded]
        if settings.video_manifest:
            rows = with_boxes(settings.video_manifest, S.MEDIA_VIDEO)
            decoded, bad = decoded_videos([r for r, _ in rows], contract, settings.budgets, settings.items, decoder)
            skipped += bad
            boxes = {str(r[S.ID]): b for r, b in rows}
            for t in settings.budgets:
                items += [make_item(v[t], boxes[str(v[t][S.ID])], f"video@{t}", family, processor) for v in decoded]
    if not items:
        raise ValueError(
            f"attention: no item under {data_root} decodes and has target boxes"
            + (f"; first skip: {skipped[0]}" if skipped else "")
        )
    return items, skipped


# --------------------------------------------------------------------------- the model side
def attention_modules(model: nn.Module) -> dict[int, nn.Module]:
    """Language-model decoder layer index -> its self_attn module."""
    found = {int(m.group(1)): mod for name, mod in model.named_modules() if (m := _SELF_ATTN.search(name))}
    if not found:
        raise ValueError("attention: found no language_model.layers.N.self_attn modules in the model")
    return dict(sorted(found.items()))


class AnswerRowRecorder:
    """Forward hooks keeping, per decoder layer, the answer position's attention row (heads, keys).

    Needs eager attention (sdpa and flash return no weights; then the hook raises, naming the fix).
    """

    def __init__(self, modules: Mapping[int, nn.Module]):
        self.rows: dict[int, np.ndarray] = {}
        self._handles = [mod.register_forward_hook(self._hook(i)) for i, mod in modules.items()]

    def _hook(self, layer: int) -> Any:
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            import torch

            weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
            if weights is None:
                raise RuntimeError(
                    "attention: the attention layer returned no weights; load the model with "
                    "attn_implementation='eager'"
                )
            self.rows[layer] = weights[0, :, -1, :].detach().to("cpu", torch.float64).numpy()

        return hook

    def close(self) -> None:
        for h in self._handles:
            h.remove()


def measure_item(
    model: nn.Module,
    item: ProbeItem,
    modules: Mapping[int, nn.Module],
    image_token_id: int,
    video_token_id: int,
    device: str = "cpu",
) -> dict[int, dict[str, Any]]:
    """{layer: METRICS + "visual_attention" (heads-mean attention per visual token)} for one item."""
    import torch

    from videosft.models.collate import collate, to_device

    ids = np.asarray(item.features["input_ids"]).reshape(-1)
    visual = np.nonzero(np.isin(ids, [image_token_id, video_token_id]))[0]
    if len(visual) != len(item.target):
        raise ValueError(
            f"attention: item {item.id} has {len(visual)} visual tokens but its grid "
            f"{item.grid} gives {len(item.target)}"
        )
    batch = to_device(collate([item.features], pad_token_id=0), device, torch.float32)
    recorder = AnswerRowRecorder(modules)
    try:
        with torch.no_grad():
            model(**batch, use_cache=False)
    finally:
        recorder.close()
    out = {}
    for layer, w in recorder.rows.items():
        stats: dict[str, Any] = attention_stats(w, visual, item.target)
        stats["visual_attention"] = w[:, visual].mean(axis=0)
        out[layer] = stats
    return out


def _group_means(per_layer: Mapping[int, Mapping[str, Any]], groups: Mapping[str, Sequence[int]]) -> dict[str, dict]:
    out = {}
    for name, layers in groups.items():
        out[name] = {m: _mean([per_layer[i][m] for i in layers]) for m in METRICS}
    return out


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def summarize(values: Sequence[float | None]) -> dict[str, Any]:
    vals = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if not len(vals):
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(vals.mean()), "std": float(vals.std()), "n": int(len(vals))}


def _png_b64(frame: np.ndarray, max_side: int = 128) -> str:
    from PIL import Image

    img = Image.fromarray(np.asarray(frame, dtype=np.uint8))
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _example(
    item: ProbeItem, per_layer: Mapping[int, Mapping[str, Any]], group: str, layers: Sequence[int], tps: int
) -> dict[str, Any]:
    """The heat map of one item: the slot with the most target tokens, last layer group, heads-mean,
    renormalised over that slot's visual tokens."""
    slots, rows, cols = item.grid
    att = np.mean([per_layer[i]["visual_attention"] for i in layers], axis=0).reshape(slots, rows, cols)
    tgt = item.target.reshape(slots, rows, cols)
    slot = int(np.argmax(tgt.sum(axis=(1, 2))))
    frame = min(slot * tps, len(item.frames) - 1)
    total = float(att[slot].sum())
    grid = att[slot] / total if total > 0 else att[slot]
    return {
        "id": item.id,
        "modality": item.modality,
        "slot": slot,
        "layer_group": group,
        "grid": [[round(float(v), 6) for v in r] for r in grid],
        "target": tgt[slot].astype(int).tolist(),
        "boxes": item.frame_boxes[frame],
        "source_hw": list(item.source_hw),
        "frame_png": _png_b64(item.frames[frame]),
    }


# --------------------------------------------------------------------------- the probe
def check_family(name: str) -> None:
    if name not in SUPPORTED_FAMILIES:
        raise ValueError(
            f"attention: family {name!r} is not supported yet (its visual-token grid is not mapped "
            f"to pixels); supported: {list(SUPPORTED_FAMILIES)}"
        )


def run_attention(
    model_path: str | Path,
    data_root: str | Path,
    settings: AttentionSettings = AttentionSettings(),
    *,
    family: str | None = None,
    contract: SamplingContract | None = None,
    device: str = "cpu",
    label: str | None = None,
) -> dict[str, Any]:
    """Probe one checkpoint. Returns (JSON-ready)::

    {"checkpoint", "label", "family", "params", "layers", "layer_groups": {group: [layer...]},
     "modalities": ["image", "video@T", ...], "items": {modality: n},
     "summary": {modality: {group: {metric: {"mean", "std", "n"}}}},
     "per_item": [{"id", "modality", "groups": {group: {metric: value}}}],
     "examples": [heat map dicts], "skipped": ["id: reason"], "contract_id", "device", "elapsed_s", "settings"}
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    t0 = time.perf_counter()
    name = family or infer_family(model_path)
    check_family(name)
    fam = get_family(name)
    contract = contract or SamplingContract()
    processor = AutoProcessor.from_pretrained(str(model_path))
    model = (
        AutoModelForImageTextToText.from_pretrained(str(model_path), dtype=torch.float32, attn_implementation="eager")
        .to(device)
        .eval()
    )
    modules = attention_modules(model)
    groups = layer_groups(len(modules), settings.layer_groups)
    items, skipped = load_items(data_root, fam, processor, contract, settings)
    tps = int(processor.video_processor.temporal_patch_size)
    image_id, video_id = int(processor.image_token_id), int(processor.video_token_id)
    per_item, examples, shown = [], [], {}
    last_group, last_layers = list(groups.items())[-1]
    for item in items:
        per_layer = measure_item(model, item, modules, image_id, video_id, device)
        per_item.append(
            {
                "id": item.id,
                "modality": item.modality,
                "target_tokens": int(item.target.sum()),
                "visual_tokens": int(len(item.target)),
                "groups": _group_means(per_layer, groups),
            }
        )
        if shown.get(item.modality, 0) < settings.examples:
            shown[item.modality] = shown.get(item.modality, 0) + 1
            examples.append(_example(item, per_layer, last_group, last_layers, tps if item.modality != "image" else 1))
    modalities = list(dict.fromkeys(r["modality"] for r in per_item))
    summary = {
        mod: {
            g: {m: summarize([r["groups"][g][m] for r in per_item if r["modality"] == mod]) for m in METRICS}
            for g in groups
        }
        for mod in modalities
    }
    return {
        "checkpoint": str(model_path),
        "label": label or Path(model_path).name,
        "family": fam.name,
        "params": int(sum(p.numel() for p in model.parameters())),
        "layers": len(modules),
        "layer_groups": groups,
        "modalities": modalities,
        "items": {m: sum(r["modality"] == m for r in per_item) for m in modalities},
        "summary": summary,
        "per_item": per_item,
        "examples": examples,
        "skipped": skipped,
        "contract_id": contract.contract_id(),
        "device": str(device),
        "elapsed_s": round(time.perf_counter() - t0, 2),
        "settings": {**asdict(settings), "budgets": list(settings.budgets)},
    }


def write_attention(result: Mapping[str, Any], path: str | Path) -> Path:
    """Write one probe's JSON (strict: NaN is never written, missing values are null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    return path


def read_attention(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


# --------------------------------------------------------------------------- report pieces
def _label(result: Mapping[str, Any]) -> str:
    return str(result.get("label") or Path(str(result["checkpoint"])).name)


def _cell(stats: Mapping[str, Any] | None, digits: int = 3) -> str:
    if not stats or stats.get("mean") is None:
        return "–"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def attention_rows(results: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells: one row per checkpoint x modality x layer group (for Markdown and HTML)."""
    headers = [
        "checkpoint",
        "items",
        "layers",
        "target share",
        "visual share",
        "target / visual",
        "uniform baseline",
        "concentration",
    ]
    rows = []
    scales = len({r.get("params") for r in results}) > 1  # several model sizes: name each checkpoint's
    for r in results:
        name = f"{_label(r)} ({human_params(r.get('params'))})" if scales else _label(r)
        for mod, per_group in r["summary"].items():
            for g, stats in per_group.items():
                rows.append([name, f"{mod} (n={r['items'][mod]})", g, *(_cell(stats[m]) for m in METRICS)])
    return headers, rows


ATTENTION_NOTE = (
    "Attention of the answer position (last prompt token), mean over heads, then over the group's "
    "layers; mean ± std over items. Target share: mass on the visual tokens covering the target; "
    "target / visual: its share of the visual mass; uniform baseline: target tokens / visual tokens "
    "(target / visual under uniform visual attention); concentration: 1 − normalised entropy over "
    "the visual tokens (0 uniform, 1 one token)."
)


def attention_markdown(results: Sequence[Mapping[str, Any]], figure: str | None = None) -> str:
    headers, rows = attention_rows(results)
    lines = [
        "## Attention on the target (Figure 3)",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", ATTENTION_NOTE]
    if figure:
        lines += ["", f"![attention over the frame, base vs trained]({figure})"]
    return "\n".join(lines) + "\n"


def plot_attention(results: Sequence[Mapping[str, Any]], out_png: str | Path) -> Path:
    """Figure-3-style panel: per example item (rows) and checkpoint (columns), the frame with the
    answer position's attention over its visual tokens (last layer group) and the target boxes."""
    from PIL import Image

    plt = pyplot()
    ids = [(e["id"], e["modality"]) for e in (results[0]["examples"] if results else [])]
    nrows, ncols = max(len(ids), 1), max(len(results), 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.6 * nrows), squeeze=False)
    for i, (item_id, modality) in enumerate(ids):
        for j, res in enumerate(results):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            ex = next((e for e in res["examples"] if e["id"] == item_id and e["modality"] == modality), None)
            if j == 0:
                ax.set_ylabel(f"{modality}\n{item_id}", fontsize=7)
            if i == 0:
                ax.set_title(_label(res), fontsize=8)
            if ex is None:
                ax.text(0.5, 0.5, "no example", ha="center", va="center", transform=ax.transAxes, fontsize=7)
                continue
            frame = np.asarray(Image.open(io.BytesIO(base64.b64decode(ex["frame_png"]))).convert("RGB"))
            h, w = frame.shape[:2]
            ax.imshow(frame, extent=(0, w, h, 0))
            grid = np.asarray(ex["grid"], dtype=float)
            grid = grid / grid.sum() if grid.sum() > 0 else grid  # shares within the shown slot
            ax.imshow(
                grid,
                extent=(0, w, h, 0),
                cmap="inferno",
                alpha=0.55,
                interpolation="nearest",
                vmin=0.0,
                vmax=max(float(grid.max()), 1e-12),
            )
            sy, sx = h / ex["source_hw"][0], w / ex["source_hw"][1]
            for x0, y0, x1, y1 in ex["boxes"]:
                ax.add_patch(
                    plt.Rectangle(
                        (x0 * sx, y0 * sy), (x1 - x0) * sx, (y1 - y0) * sy, fill=False, edgecolor="cyan", linewidth=1.2
                    )
                )
            rows_, cols_ = grid.shape
            for k in range(1, rows_):  # the visual-token grid
                ax.axhline(k * h / rows_, color="white", linewidth=0.4, alpha=0.6)
            for k in range(1, cols_):
                ax.axvline(k * w / cols_, color="white", linewidth=0.4, alpha=0.6)
            tgt = np.asarray(ex["target"], dtype=float)
            share = float(np.sum(grid * tgt))
            ax.set_xlabel(f"{ex['layer_group']}: target/visual {share:.2f} (uniform {tgt.mean():.2f})", fontsize=7)
    fig.suptitle("Answer-position attention over the frame (boxes: target)", fontsize=9)
    return save_figure(fig, out_png)


def write_attention_report(results: Sequence[Mapping[str, Any]], out_dir: str | Path) -> dict[str, Path]:
    """Into out_dir: `attention-<label>.json` per probe, `attention.md` and `attention.png` for all."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {_label(r): write_attention(r, out / f"attention-{_label(r).replace('/', '_')}.json") for r in results}
    paths["plot"] = plot_attention(results, out / "attention.png")
    paths["markdown"] = out / "attention.md"
    paths["markdown"].write_text(attention_markdown(results, figure="attention.png"))
    return paths
