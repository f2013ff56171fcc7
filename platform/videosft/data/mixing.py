"""Image replay for Video-SFT: a video manifest with an exact share of image rows mixed in.

Runs over plain manifest rows, before decode, so training can number the result for its data
cursor. Which image rows join is decided by a per-row hash of (seed, source, id), so a mix is
the same on every run and whatever the manifest order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from videosft import schema as S

MIX_SOURCE = "mix_source"  # str: which side of the mix the row came from ("video" or "image")


def _unit_hash(seed: int, source: str, ids: Iterable[Any]) -> np.ndarray:
    """Uniform [0, 1) per row from (seed, source, id): same rows kept on every run and layout."""
    prefix = f"{seed}\x00{source}\x00".encode()
    words = [int.from_bytes(hashlib.blake2b(prefix + str(i).encode(), digest_size=8).digest(), "little") for i in ids]
    return (np.asarray(words, np.uint64) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _take_exact(rows: Sequence[dict[str, Any]], k: int, seed: int, source: str) -> list[dict[str, Any]]:
    """Exactly k rows: whole copies of `rows`, then the remainder with the smallest per-row hashes."""
    full, rest = divmod(k, len(rows)) if rows else (0, 0)
    order = np.argsort(_unit_hash(seed, source, [r[S.ID] for r in rows]), kind="stable")
    return list(rows) * full + [rows[i] for i in sorted(order[:rest])]


def replay_mix(rows: Sequence[dict[str, Any]], image_ratio: float, seed: int = 0) -> list[dict[str, Any]]:
    """Every non-image row (videos, text) plus image rows making `image_ratio` of the result.

    Image replay for Video-SFT: the video stream stays whole and round(n_video * r / (1 - r))
    image rows join it, chosen by a per-row hash of (seed, id) (the same rows on every run and
    manifest order; whole copies first when the manifest has too few images), then the mix is
    interleaved by a seeded permutation. Plain rows in, plain rows out: runs before decode, so
    the result can be numbered for the data cursor. MIX_SOURCE says "video" or "image".
    """
    if not 0.0 <= image_ratio < 1.0:
        raise ValueError(f"replay_mix: image_ratio must be in [0, 1), got {image_ratio}")
    videos = [r for r in rows if r[S.MEDIA_TYPE] != S.MEDIA_IMAGE]
    images = [r for r in rows if r[S.MEDIA_TYPE] == S.MEDIA_IMAGE]
    if not videos:
        raise ValueError("replay_mix: the manifest has no video (or text) rows to mix images into")
    n_images = round(len(videos) * image_ratio / (1.0 - image_ratio))
    if n_images and not images:
        raise ValueError(f"replay_mix: image_ratio={image_ratio} but the manifest has no image rows")
    out = [{**r, MIX_SOURCE: "video"} for r in videos]
    out += [{**r, MIX_SOURCE: "image"} for r in _take_exact(images, n_images, seed, "image")]
    # Interleave: a stream of all videos then all images would train one modality per half epoch.
    order = np.random.default_rng([seed, 7]).permutation(len(out))
    return [out[i] for i in order]
