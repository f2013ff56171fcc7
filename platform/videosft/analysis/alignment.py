"""Gradient-alignment probe: does the video-loss gradient at T frames point where the image one does?

The study behind this project argues, in theory only, that Video-SFT costs image accuracy because
image and video gradients align less, and eventually negatively, as the training frame budget T
grows. This module measures it for one checkpoint: k image batches and k video batches (the same
video rows at every T), one backward pass each on the same weights (no optimizer step, fp32,
``model.eval()`` so dropout is off, every parameter requiring grad), and the cosine between every
(image batch, video batch) pair: mean, std over the k x k pairs (ddof=0) and n, overall and per
module group. Groups: ``vision``, ``projector``, ``llm`` (a partition, from
`param_groups.named_module_groups`) plus ``llm_lower`` / ``llm_upper``, the lower and upper halves
of the language model's decoder blocks (slices of ``llm``, so no extra gradient copy).

Frames come from the project's own code: `read_manifest`, `probe_video`, the sampling contract's
`frame_indices` per T, one isolated decode of the union of every T's indices (fixed-mode indices
are nested, so each T sees a subset of the next T's frames), `encode_sample` and `collate`.

Memory: the k image gradients are kept on the host in fp32 (k x 4 bytes x parameters), plus one
video gradient at a time; the second moment adds two more parameter-sized vectors (the mean image
gradient and the running sum of per-sample video gradients). A pair whose group gradient is zero has
no cosine (NaN, left out of n).

The theory's second quantity (Proposition 3: frames beyond a sample's minimal sufficient budget raise
the video gradient's second moment without improving alignment): with ``second_moment`` on, every
video row is also run alone (one sample per batch) at every T, giving E||grad L_video||^2 over the
samples, split at budget b into those with b <= min_frames ("at_or_below") and b > min_frames
("above": redundant frames), per group; plus the smoothness-bound terms it implies
(`smoothness_bound`: for an L-smooth image loss and step eta, E[delta L_img] <= -eta <grad L_img,
grad L_vid> + (L eta^2 / 2) E||grad L_vid||^2; L is not estimated, the second term is reported per
unit L, with the critical L at which the bound stops promising descent).

Outputs: `run_alignment` returns the JSON dict (schema in its docstring); `plot_alignment` and
`alignment_markdown` draw several of them for the report (`second_moment_markdown` the moment table).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from videosft import schema as S
from videosft.analysis.figures import pyplot, save_figure
from videosft.data.manifest import join_path, read_manifest
from videosft.data.preprocess import encode_sample, load_features
from videosft.data.sampling import SamplingContract
from videosft.models.param_groups import LLM, named_module_groups
from videosft.models.registry import get_family

if TYPE_CHECKING:
    import torch
    from torch import nn

OVERALL = "overall"
LLM_LOWER, LLM_UPPER = "llm_lower", "llm_upper"
_BLOCK = re.compile(r"(?:^|\.)language_model\.(?:model\.)?layers\.(\d+)\.")
_MODEL_TYPES = {
    "qwen2_5_vl": "qwen2_5_vl",
    "qwen3_vl": "qwen3_vl",
    "llava": "llava_1_5",
    "llava_next_video": "llava_next_video",
}
_DOT_CHUNK = 1 << 22  # elements per float64 chunk: exact-enough dots without doubling host memory


@dataclass(frozen=True)
class AlignmentSettings:
    """What one probe measures; validated here so a bad value fails before any model loads."""

    budgets: tuple[int, ...] = (1, 2, 4, 8)
    batches: int = 2  # k: image batches and video batches (k x k pairs per budget)
    batch_size: int = 2
    manifest: str = "train.json"  # under the data root; image and video rows are taken from it
    seed: int = 0
    decode_timeout_s: float = 60.0
    second_moment: bool = True  # also E||per-sample video grad||^2 per budget, split by min_frames
    step_size: float | None = None  # eta of the smoothness bound (the training lr); None: terms per unit eta

    def __post_init__(self) -> None:
        budgets = tuple(sorted({int(b) for b in self.budgets}))
        if not budgets or budgets[0] < 1:
            raise ValueError(f"alignment.budgets: need positive frame budgets, got {list(self.budgets)}")
        if self.step_size is not None and not self.step_size > 0:
            raise ValueError(f"alignment.step_size: must be > 0 (the learning rate), got {self.step_size}")
        object.__setattr__(self, "budgets", budgets)
        for name in ("batches", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"alignment.{name}: must be >= 1, got {getattr(self, name)}")
        if not self.decode_timeout_s > 0:
            raise ValueError(f"alignment.decode_timeout_s: must be > 0, got {self.decode_timeout_s}")


# --------------------------------------------------------------------------- module groups
@dataclass(frozen=True)
class GroupLayout:
    """Gradient partition (vision / projector / llm params, in flattening order) and reported groups.

    ``slices[group] = (partition key, slice of that partition's flat gradient)``; ``llm`` is ordered
    lower blocks, upper blocks, then the rest, so both halves are contiguous views.
    """

    params: dict[str, list[Any]]
    slices: dict[str, tuple[str, slice]]

    def sizes(self) -> dict[str, int]:
        """Parameters (elements) per reported group."""
        total = {k: sum(p.numel() for p in params) for k, params in self.params.items()}
        return {g: len(range(*sl.indices(total[k]))) for g, (k, sl) in self.slices.items()}


def group_layout(model: nn.Module, family: Any) -> GroupLayout:
    """Partition the model's unique parameters by module group; split the decoder blocks in halves."""

    named = named_module_groups(model, family)
    blocks = {n: int(m.group(1)) for n, _ in named[LLM] if (m := _BLOCK.search(n))}
    half = (max(blocks.values()) + 1) // 2 if blocks else 0
    lower = [p for n, p in named[LLM] if n in blocks and blocks[n] < half]
    upper = [p for n, p in named[LLM] if n in blocks and blocks[n] >= half]
    rest = [p for n, p in named[LLM] if n not in blocks]
    params = {g: [p for _, p in v] for g, v in named.items() if v and g != LLM}
    params[LLM] = lower + upper + rest
    slices = {g: (g, slice(None)) for g in params}
    if lower and upper:
        a, b = sum(p.numel() for p in lower), sum(p.numel() for p in lower + upper)
        slices[LLM_LOWER], slices[LLM_UPPER] = (LLM, slice(0, a)), (LLM, slice(a, b))
    return GroupLayout(params, slices)


def batch_gradient(
    model: nn.Module, batch: Mapping[str, torch.Tensor], layout: GroupLayout
) -> tuple[dict[str, torch.Tensor], float]:
    """Flat fp32 host gradient of the batch's loss per partition key (unreached params: zeros), and the loss."""
    import torch

    model.zero_grad(set_to_none=True)
    loss = model(**batch).loss
    loss.backward()
    grads = {}
    for key, params in layout.params.items():
        parts = [(p.grad if p.grad is not None else torch.zeros_like(p)).detach().reshape(-1) for p in params]
        grads[key] = torch.cat(parts).to("cpu", torch.float32)
    model.zero_grad(set_to_none=True)
    return grads, float(loss.detach())


def _dot(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(
        sum(
            float(a[i : i + _DOT_CHUNK].double() @ b[i : i + _DOT_CHUNK].double())
            for i in range(0, a.numel(), _DOT_CHUNK)
        )
    )


def _cos(dot: float, na: float, nb: float) -> float:
    if na <= 0 or nb <= 0:
        return float("nan")
    return max(-1.0, min(1.0, dot / math.sqrt(na * nb)))


def pairwise_cosines(
    image_grads: Sequence[Mapping[str, torch.Tensor]],
    video_grads: Sequence[Mapping[str, torch.Tensor]],
    slices: Mapping[str, tuple[str, slice]],
) -> dict[str, list[float]]:
    """Cosine of every (image, video) gradient pair, per group and OVERALL (all partition keys)."""

    def stats(g: Mapping[str, torch.Tensor], h: Mapping[str, torch.Tensor]) -> dict[str, tuple[float, float, float]]:
        return {
            grp: (_dot(g[k][sl], h[k][sl]), _dot(g[k][sl], g[k][sl]), _dot(h[k][sl], h[k][sl]))
            for grp, (k, sl) in slices.items()
        }

    partition = [grp for grp, (k, sl) in slices.items() if grp == k and sl == slice(None)]
    out: dict[str, list[float]] = {OVERALL: [], **{grp: [] for grp in slices}}
    for g in image_grads:
        for h in video_grads:
            per = stats(g, h)
            for grp, (d, na, nb) in per.items():
                out[grp].append(_cos(d, na, nb))
            total = [sum(per[grp][i] for grp in partition) for i in range(3)]
            out[OVERALL].append(_cos(*total))
    return out


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """{"mean", "std" (ddof=0), "n"} over the finite values; mean/std None when there are none."""
    vals = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if not len(vals):
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(vals.mean()), "std": float(vals.std()), "n": int(len(vals))}


def first_nonpositive_budget(overall: Mapping[Any, Mapping[str, Any]]) -> int | None:
    """Smallest budget T whose mean overall cosine is <= 0 (None if none is, or no mean exists)."""
    for t in sorted(overall, key=int):
        mean = overall[t].get("mean")
        if mean is not None and mean <= 0:
            return int(t)
    return None


# --------------------------------------------------------------------------- the second moment
AT_OR_BELOW, ABOVE = "at_or_below", "above"


def budget_split(budget: int, min_frames: int) -> str | None:
    """At budget b a sample is "at_or_below" its minimal sufficient budget when b <= min_frames and
    "above" (redundant frames) when b > min_frames; None when min_frames is unknown (< 1)."""
    if min_frames < 1:
        return None
    return AT_OR_BELOW if budget <= min_frames else ABOVE


def squared_norms(grad: Mapping[str, torch.Tensor], slices: Mapping[str, tuple[str, slice]]) -> dict[str, float]:
    """||g||^2 per reported group and OVERALL (the sum over the partition keys)."""
    out = {grp: _dot(grad[k][sl], grad[k][sl]) for grp, (k, sl) in slices.items()}
    out[OVERALL] = sum(out[grp] for grp, (k, sl) in slices.items() if grp == k and sl == slice(None))
    return out


def smoothness_bound(dot: float, second_moment: float, step_size: float | None) -> dict[str, Any]:
    """The two terms of the L-smooth descent bound on the image loss after one video step of size eta:

        E[L_img(w - eta g_vid)] - L_img(w) <= -eta <grad L_img, E g_vid> + (L eta^2 / 2) E||g_vid||^2

    ``first_term`` = -eta <., .>, ``second_term_per_L`` = eta^2/2 E||g||^2 (multiply by the smoothness
    constant L, which the probe does not estimate), and ``critical_L`` = 2 <., .> / (eta E||g||^2): the
    L above which the bound no longer promises the image loss falls (None when <., .> <= 0: never).
    Without a step size, eta = 1 (the terms are then per unit eta and eta^2).
    """
    eta = 1.0 if step_size is None else float(step_size)
    return {
        "step_size": step_size,
        "first_term": -eta * dot,
        "second_term_per_L": 0.5 * eta * eta * second_moment,
        "critical_L": (2.0 * dot / (eta * second_moment)) if dot > 0 and second_moment > 0 else None,
    }


def video_second_moment(
    model: nn.Module,
    samples: Sequence[Mapping[str, torch.Tensor]],
    min_frames: Sequence[int],
    budget: int,
    layout: GroupLayout,
    image_mean: Mapping[str, torch.Tensor] | None,
    device: str,
    step_size: float | None = None,
) -> dict[str, Any]:
    """E||grad L_video||^2 over per-sample gradients (one sample per batch) at one budget, split by
    `budget_split`; plus ||mean grad||^2 (so the variance is the difference), <mean image grad,
    mean video grad> and the smoothness-bound terms they imply (`smoothness_bound`)."""
    per: dict[str, list[float]] = {}
    split: dict[str, dict[str, list[float]]] = {AT_OR_BELOW: {}, ABOVE: {}}
    total: dict[str, torch.Tensor] = {}
    losses = []
    for batch, mf in zip(samples, min_frames):
        grad, loss = batch_gradient(model, _to(batch, device), layout)
        losses.append(loss)
        norms = squared_norms(grad, layout.slices)
        side = budget_split(budget, int(mf))
        for grp, v in norms.items():
            per.setdefault(grp, []).append(v)
            if side:
                split[side].setdefault(grp, []).append(v)
        for k, g in grad.items():
            total[k] = g.clone() if k not in total else total[k].add_(g)
    n = len(samples)
    mean = {k: v / n for k, v in total.items()}
    mean_sq = squared_norms(mean, layout.slices)
    out: dict[str, Any] = {
        "groups": {},
        "n": n,
        "unknown_min_frames": sum(int(m) < 1 for m in min_frames),
        "loss": float(np.mean(losses)),
    }
    for grp in [OVERALL, *layout.slices]:
        out["groups"][grp] = {
            "all": summarize(per[grp]),
            AT_OR_BELOW: summarize(split[AT_OR_BELOW].get(grp, [])),
            ABOVE: summarize(split[ABOVE].get(grp, [])),
            "mean_grad_sq": mean_sq[grp],
            "variance": float(np.mean(per[grp])) - mean_sq[grp],
        }
    if image_mean is not None:
        dot = sum(_dot(image_mean[k], mean[k]) for k in mean)
        out["dot_image"] = dot
        out["bound"] = smoothness_bound(dot, float(np.mean(per[OVERALL])), step_size)
    return out


# --------------------------------------------------------------------------- data
def infer_family(model_path: str | Path) -> str:
    """Family name from the checkpoint's config.json model_type."""
    model_type = json.loads((Path(model_path) / "config.json").read_text()).get("model_type")
    if model_type not in _MODEL_TYPES:
        raise ValueError(
            f"alignment: cannot infer the family of {model_path} (model_type {model_type!r}); "
            f"pass family= one of {sorted(set(_MODEL_TYPES.values()))}"
        )
    return _MODEL_TYPES[model_type]


def decoded_images(
    rows: Sequence[dict[str, Any]], contract: SamplingContract, n: int, decoder: Any
) -> tuple[list[dict], list[str]]:
    from videosft.data.probe import probe_image

    out, rejected = [], []
    for row in rows:
        if len(out) == n:
            break
        meta = probe_image(row[S.MEDIA_PATH])
        res = (
            None
            if meta[S.ERROR]
            else decoder.decode_image(
                row[S.MEDIA_PATH], contract.output_size(int(meta[S.HEIGHT]), int(meta[S.WIDTH]), "image")
            )
        )
        if res is None or res.error:
            rejected.append(f"{row[S.ID]}: {meta[S.ERROR] or res.error}")
            continue
        out.append(
            {
                **row,
                S.FRAMES: res.frames,
                S.SAMPLED_FPS: 0.0,
                S.HEIGHT: int(meta[S.HEIGHT]),
                S.WIDTH: int(meta[S.WIDTH]),
            }
        )  # source size (boxes' frame)
    return out, rejected


def decoded_videos(
    rows: Sequence[dict[str, Any]], contract: SamplingContract, budgets: Sequence[int], n: int, decoder: Any
) -> tuple[list[dict[int, dict]], list[str]]:
    """Per video row {T: row with that budget's frames}; one decode of the union of the budgets' indices."""
    from videosft.data.probe import probe_video

    out, rejected = [], []
    for row in rows:
        if len(out) == n:
            break
        meta = probe_video(row[S.MEDIA_PATH])
        if meta[S.ERROR]:
            rejected.append(f"{row[S.ID]}: {meta[S.ERROR]}")
            continue
        total, fps = int(meta[S.NUM_FRAMES]), float(meta[S.FPS])
        per = {t: contract.frame_indices(total, fps, t) for t in budgets}
        union = np.unique(np.concatenate(list(per.values())))
        res = decoder.decode(
            row[S.MEDIA_PATH], union, contract.output_size(int(meta[S.HEIGHT]), int(meta[S.WIDTH]), "video")
        )
        if res.error:
            rejected.append(f"{row[S.ID]}: {res.error}")
            continue
        out.append(
            {
                t: {
                    **row,
                    S.FRAMES: res.frames[np.searchsorted(union, idx)],
                    S.FRAME_INDICES: idx,
                    S.SAMPLED_FPS: contract.sampled_fps(idx, fps, total),
                    S.HEIGHT: int(meta[S.HEIGHT]),
                    S.WIDTH: int(meta[S.WIDTH]),
                }
                for t, idx in per.items()
            }
        )
    return out, rejected


def _batches(
    rows: Sequence[dict[str, Any]], family: Any, processor: Any, k: int, size: int
) -> list[dict[str, torch.Tensor]]:
    from videosft.models.collate import collate

    feats = [load_features(encode_sample(r, family, processor, for_generation=False)["features"]) for r in rows]
    return [collate(feats[i * size : (i + 1) * size], processor.tokenizer.pad_token_id) for i in range(k)]


_decoded_images, _decoded_videos = decoded_images, decoded_videos  # earlier names


def load_probe_batches(
    data_root: str | Path, family: Any, processor: Any, contract: SamplingContract, settings: AlignmentSettings
) -> tuple[list[dict], dict[int, list[dict]], list[str]]:
    """(k image batches, {T: k video batches}, rejected rows as "id: reason") from the data root's manifest.

    Rows are taken in manifest order, skipping any that fail to probe or decode.
    """
    images, videos, rejected = probe_rows(data_root, contract, settings)
    image_batches = _batches(images, family, processor, settings.batches, settings.batch_size)
    video_batches = {
        t: _batches([v[t] for v in videos], family, processor, settings.batches, settings.batch_size)
        for t in settings.budgets
    }
    return image_batches, video_batches, rejected


def probe_rows(
    data_root: str | Path, contract: SamplingContract, settings: AlignmentSettings
) -> tuple[list[dict], list[dict[int, dict]], list[str]]:
    """The decoded rows behind `load_probe_batches`: (image rows, per video {T: row}, rejected)."""
    from videosft.data.decode import IsolatedDecoder

    rows = read_manifest(join_path(str(data_root), settings.manifest))
    n = settings.batches * settings.batch_size
    with IsolatedDecoder(timeout_s=settings.decode_timeout_s) as decoder:
        images, bad_i = decoded_images([r for r in rows if r[S.MEDIA_TYPE] == S.MEDIA_IMAGE], contract, n, decoder)
        videos, bad_v = decoded_videos(
            [r for r in rows if r[S.MEDIA_TYPE] == S.MEDIA_VIDEO], contract, settings.budgets, n, decoder
        )
    if len(images) < n or len(videos) < n:
        raise ValueError(
            f"alignment: {settings.manifest} under {data_root} gave {len(images)} image and "
            f"{len(videos)} video rows that decode; need {n} of each (batches x batch_size)"
            + (f"; first reject: {(bad_i + bad_v)[0]}" if bad_i + bad_v else "")
        )
    return images, videos, bad_i + bad_v


# --------------------------------------------------------------------------- the probe
def run_alignment(
    model_path: str | Path,
    data_root: str | Path,
    settings: AlignmentSettings = AlignmentSettings(),
    *,
    family: str | None = None,
    contract: SamplingContract | None = None,
    device: str = "cpu",
    label: str | None = None,
) -> dict[str, Any]:
    """Measure one checkpoint. Returns (JSON-ready; budgets as string keys)::

    {"checkpoint", "label", "family", "budgets": [T...], "overall": {"T": {"mean", "std", "n"}},
     "groups": {group: {"T": {...}}}, "first_nonpositive_budget": int | None, "image_batches",
     "video_batches", "batch_size", "contract_id", "image_loss", "video_loss": {"T": float},
     "group_params": {group: int}, "rejected": ["id: reason"], "device", "elapsed_s", "settings",
     "second_moment": {"T": {"n", "unknown_min_frames", "loss", "dot_image", "bound": {...},
                             "groups": {group: {"all" | "at_or_below" | "above": {"mean", "std", "n"},
                                                "mean_grad_sq", "variance"}}}}}  ({} when off)
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    t0 = time.perf_counter()
    fam = get_family(family or infer_family(model_path))
    contract = contract or SamplingContract()
    torch.manual_seed(settings.seed)
    processor = AutoProcessor.from_pretrained(str(model_path))
    model = AutoModelForImageTextToText.from_pretrained(str(model_path), dtype=torch.float32).to(device)
    model.eval()  # dropout off: the gradients are a function of the weights and the batch only
    for param in model.parameters():
        param.requires_grad_(True)
    layout = group_layout(model, fam)
    image_rows, video_rows, rejected = probe_rows(data_root, contract, settings)
    images = _batches(image_rows, fam, processor, settings.batches, settings.batch_size)
    videos = {
        t: _batches([v[t] for v in video_rows], fam, processor, settings.batches, settings.batch_size)
        for t in settings.budgets
    }
    image_grads, image_losses = zip(*(batch_gradient(model, _to(b, device), layout) for b in images))
    per_t, video_loss, moments = {}, {}, {}
    for t in settings.budgets:  # one video gradient held at a time, against every image gradient
        per_t[str(t)], losses = {}, []
        for batch in videos[t]:
            grad, loss = batch_gradient(model, _to(batch, device), layout)
            for group, values in pairwise_cosines(image_grads, [grad], layout.slices).items():
                per_t[str(t)].setdefault(group, []).extend(values)
            losses.append(loss)
        video_loss[str(t)] = float(np.mean(losses))
    if settings.second_moment:
        image_mean = {k: sum(g[k] for g in image_grads) / len(image_grads) for k in image_grads[0]}
        mins = [int(v[settings.budgets[0]].get(S.MIN_FRAMES, -1)) for v in video_rows]
        for t in settings.budgets:  # per-sample gradients: one sample per batch
            singles = _batches([v[t] for v in video_rows], fam, processor, len(video_rows), 1)
            moments[str(t)] = video_second_moment(
                model, singles, mins, t, layout, image_mean, device, settings.step_size
            )
    overall = {t: summarize(c[OVERALL]) for t, c in per_t.items()}
    return {
        "checkpoint": str(model_path),
        "label": label or Path(model_path).name,
        "family": fam.name,
        "budgets": list(settings.budgets),
        "overall": overall,
        "groups": {g: {t: summarize(c[g]) for t, c in per_t.items()} for g in layout.slices},
        "first_nonpositive_budget": first_nonpositive_budget(overall),
        "image_batches": settings.batches,
        "video_batches": settings.batches,
        "batch_size": settings.batch_size,
        "contract_id": contract.contract_id(),
        "image_loss": float(np.mean(image_losses)),
        "video_loss": video_loss,
        "group_params": layout.sizes(),
        "rejected": rejected,
        "device": str(device),
        "second_moment": moments,
        "elapsed_s": round(time.perf_counter() - t0, 2),
        "settings": {**asdict(settings), "budgets": list(settings.budgets)},
    }


def _to(batch: Mapping[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
    import torch

    from videosft.models.collate import to_device

    return to_device(batch, device, torch.float32)


def write_alignment(result: Mapping[str, Any], path: str | Path) -> Path:
    """Write one probe's JSON (strict: NaN is never written, missing values are null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    return path


def read_alignment(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


# --------------------------------------------------------------------------- report pieces
def _label(result: Mapping[str, Any]) -> str:
    return str(result.get("label") or Path(str(result["checkpoint"])).name)


def _budget_axis(ax: Any, budgets: Sequence[int]) -> None:
    if budgets:
        ax.set_xscale("log", base=2)  # budgets are usually powers of two
        ax.set_xticks(budgets, [str(t) for t in budgets])
        ax.minorticks_off()
    ax.set_xlabel("video frame budget T")


def plot_alignment(results: Sequence[Mapping[str, Any]], out_png: str | Path, group: str = OVERALL) -> Path:
    """Cosine against frame budget T, one line per checkpoint, error bars = std, a zero line; with
    second-moment data, E||grad L_video||^2 (all / at or below / above min_frames) in a panel beside it."""

    moments = [r for r in results if r.get("second_moment")]
    if moments:
        fig, (ax, ax2) = pyplot().subplots(1, 2, figsize=(11, 4))
        plot_second_moment(moments, ax2, group)
    else:
        fig, ax = pyplot().subplots(figsize=(6, 4))
    for res in results:
        series = res["overall"] if group == OVERALL else res["groups"].get(group, {})
        ts = [int(t) for t in sorted(series, key=int) if series[t]["mean"] is not None]
        ax.errorbar(
            ts,
            [series[str(t)]["mean"] for t in ts],
            yerr=[series[str(t)]["std"] for t in ts],
            marker="o",
            capsize=3,
            label=_label(res),
        )
    ax.axhline(0.0, color="grey", linewidth=1, linestyle="--")
    _budget_axis(ax, sorted({int(t) for r in results for t in r["budgets"]}))
    ax.set_ylabel(f"cos(image grad, video grad) [{group}]")
    ax.set_title("Gradient alignment: image vs video loss")
    if results:
        ax.legend(fontsize="small")
    return save_figure(fig, out_png)


def _cell(stats: Mapping[str, Any] | None) -> str:
    if not stats or stats.get("mean") is None:
        return "–"
    return f"{stats['mean']:+.3f} ± {stats['std']:.3f} (n={stats['n']})"


def alignment_markdown(results: Sequence[Mapping[str, Any]]) -> str:
    """Markdown tables: checkpoint x T (overall) with the first non-positive budget, then per group."""
    budgets = sorted({int(t) for r in results for t in r["budgets"]})
    head = "| checkpoint | " + " | ".join(f"T={t}" for t in budgets)
    sep = "|---|" + "---|" * len(budgets)
    lines = [
        "## Gradient alignment (cosine of image-loss and video-loss gradients)",
        "",
        head + " | first T with cos ≤ 0 |",
        sep + "---|",
    ]
    for r in results:
        nonpos = r.get("first_nonpositive_budget")
        lines.append(
            f"| {_label(r)} | "
            + " | ".join(_cell(r["overall"].get(str(t))) for t in budgets)
            + f" | {'never' if nonpos is None else nonpos} |"
        )
    lines += [
        "",
        "By module group:",
        "",
        "| checkpoint | group | " + " | ".join(f"T={t}" for t in budgets) + " |",
        "|---|---|" + "---|" * len(budgets),
    ]
    for r in results:
        for group, series in r["groups"].items():
            lines.append(f"| {_label(r)} | {group} | " + " | ".join(_cell(series.get(str(t))) for t in budgets) + " |")
    if results:
        r = results[0]
        lines += [
            "",
            f"{r['image_batches']} image batches x {r['video_batches']} video batches of {r['batch_size']} "
            f"samples per budget (mean ± std over the pairs); sampling contract `{r['contract_id']}`.",
        ]
    moment = second_moment_markdown(results)
    return "\n".join(lines) + "\n" + (f"\n{moment}" if moment else "")


_SPLIT_STYLE = {"all": ("o-", "all samples"), AT_OR_BELOW: ("v--", "T ≤ min_frames"), ABOVE: ("^:", "T > min_frames")}


def plot_second_moment(results: Sequence[Mapping[str, Any]], ax: Any, group: str = OVERALL) -> None:
    """E||grad L_video||^2 against T on `ax` (log y): per checkpoint, all samples and the two splits."""
    from videosft.analysis.figures import pyplot

    cmap = pyplot().get_cmap("tab10")
    for i, res in enumerate(results):
        sm = res["second_moment"]
        for split, (style, name) in _SPLIT_STYLE.items():
            ts = [int(t) for t in sorted(sm, key=int) if sm[t]["groups"][group][split]["mean"] is not None]
            if ts:
                ax.plot(
                    ts,
                    [sm[str(t)]["groups"][group][split]["mean"] for t in ts],
                    style,
                    color=cmap(i % 10),
                    label=f"{_label(res)}: {name}",
                )
    _budget_axis(ax, sorted({int(t) for r in results for t in r["second_moment"]}))
    ax.set_yscale("log")
    ax.set_ylabel(f"E‖∇L_video‖² per sample [{group}]")
    ax.set_title("Second moment of the video gradient")
    ax.legend(fontsize="x-small")


def _num(v: Any) -> str:
    return "–" if v is None else f"{v:.3g}"


def _mcell(stats: Mapping[str, Any]) -> str:
    return "–" if stats.get("mean") is None else f"{stats['mean']:.3g} ± {stats['std']:.2g} (n={stats['n']})"


def second_moment_rows(results: Sequence[Mapping[str, Any]], group: str = OVERALL) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of the second-moment table: one row per checkpoint and budget."""
    headers = [
        "checkpoint",
        "T",
        "E‖g‖² all",
        "E‖g‖² T ≤ min_frames",
        "E‖g‖² T > min_frames",
        "‖E g‖²",
        "⟨ḡ_img, ḡ_vid⟩",
        "η²/2·E‖g‖² (per L)",
        "critical L",
    ]
    rows = []
    for r in results:
        for t in sorted(r.get("second_moment") or {}, key=int):
            m = r["second_moment"][t]
            g, b = m["groups"][group], m.get("bound") or {}
            rows.append(
                [
                    _label(r),
                    t,
                    _mcell(g["all"]),
                    _mcell(g[AT_OR_BELOW]),
                    _mcell(g[ABOVE]),
                    _num(g["mean_grad_sq"]),
                    _num(m.get("dot_image")),
                    _num(b.get("second_term_per_L")),
                    _num(b.get("critical_L")),
                ]
            )
    return headers, rows


def second_moment_note(results: Sequence[Mapping[str, Any]]) -> str:
    eta = next(
        (
            r["second_moment"][t].get("bound", {}).get("step_size")
            for r in results
            for t in r.get("second_moment") or {}
        ),
        None,
    )
    return (
        "Per-sample gradients (one video per backward pass, mean-token loss), overall (all parameters). "
        "At budget T a sample is 'T ≤ min_frames' when its known minimal sufficient budget is at least T and "
        "'T > min_frames' when T exceeds it (redundant frames). For an L-smooth image loss a video step of "
        "size η changes it by at most −η⟨∇L_img, ∇L_vid⟩ + (L η²/2) E‖∇L_vid‖²; the table gives ⟨ḡ_img, ḡ_vid⟩ "
        "(mean image-batch gradient · mean per-sample video gradient), the second term per unit L, and the "
        "critical L = 2⟨ḡ_img, ḡ_vid⟩/(η E‖g‖²) above which the bound no longer promises that the image loss "
        "falls (– when the inner product is ≤ 0). "
        + (f"η = {eta} (the training learning rate)." if eta else "η = 1 (terms per unit η and η²).")
    )


def second_moment_markdown(results: Sequence[Mapping[str, Any]]) -> str:
    """The second-moment table (Proposition 3's quantity) as Markdown ('' when no result has it)."""
    headers, rows = second_moment_rows(results)
    if not rows:
        return ""
    lines = [
        "## Second moment of the video gradient (per budget, split by minimal budget)",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines + ["", second_moment_note(results)]) + "\n"


def checkpoint_labels(paths: Sequence[str | Path]) -> list[str]:
    """Short unique labels: the directory name, else its last two parts, else with an index."""
    labels = [Path(p).name for p in paths]
    if len(set(labels)) < len(labels):
        labels = ["/".join(Path(p).parts[-2:]) for p in paths]
    if len(set(labels)) < len(labels):
        labels = [f"{i}:{lab}" for i, lab in enumerate(labels)]
    return labels


def write_alignment_report(results: Sequence[Mapping[str, Any]], out_dir: str | Path) -> dict[str, Path]:
    """Into out_dir: `alignment-<label>.json` per probe, `alignment.md` and `alignment.png` for all.

    Returns {label: json path, "markdown": ..., "plot": ...}.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {_label(r): write_alignment(r, out / f"alignment-{_label(r).replace('/', '_')}.json") for r in results}
    paths["markdown"] = out / "alignment.md"
    paths["markdown"].write_text(alignment_markdown(results))
    paths["plot"] = plot_alignment(results, out / "alignment.png")
    return paths
