"""Read plans for sparse frame access: where to seek, and where to simply keep decoding.

PURE (no decoder import), so the planning is unit-tested exhaustively on its own.

A decoder can only start at a keyframe, so reaching frame i costs decoding every frame from the
keyframe at or before i. Samplers that seek once per wanted frame (or per small cluster of them)
pay that again for every wanted frame in the same GOP: on web video with a keyframe every 250
frames that is most of the decode time. A plan seeks only when the keyframe before the next wanted
frame lies ahead of where decoding already is, by more than `min_skip` frames; otherwise it keeps
decoding forward. So every GOP is decoded at most once, and a dense request is one sequential pass.

Without a keyframe list (a container with no index) the plan falls back to a gap rule: wanted
frames more than `gap` apart are reached by seeking, nearer ones by decoding through.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SEEK_GAP = 48  # no keyframe list: frames further apart than this are reached by seeking
MIN_SKIP = 8  # seek only to skip more than this many frames (a seek flushes the decoder)


@dataclass(frozen=True)
class Read:
    """One forward decode yielding `indices` (ascending), after a seek if `seek` is set.

    `start` is the first frame the read decodes: the keyframe the seek reaches, 0 for a read from
    the stream start, or None where no keyframe list says (gap rule).
    """

    seek: bool
    start: int | None
    indices: tuple[int, ...]


def keyframe_at_or_before(keyframes: Sequence[int], index: int) -> int:
    """The last keyframe <= index in sorted `keyframes` (0, the stream start, if none)."""
    at = bisect.bisect_right(keyframes, index)
    return keyframes[at - 1] if at else 0


def _sorted_wanted(wanted: Iterable[int]) -> list[int]:
    out = sorted({int(i) for i in wanted})
    if out and out[0] < 0:
        raise ValueError(f"negative frame index {out[0]}")
    return out


def plan_reads(
    wanted: Iterable[int], keyframes: Sequence[int] | None, *, min_skip: int = MIN_SKIP, gap: int = SEEK_GAP
) -> list[Read]:
    """Reads that together yield every wanted frame, in ascending order.

    keyframes: presentation indices of the keyframes (any order), or None when unknown.
    Consecutive reads are always separated by a seek: a read without one continues the previous.
    """
    indices = _sorted_wanted(wanted)
    if keyframes is None:
        return _plan_by_gap(indices, gap)
    keys = sorted({int(k) for k in keyframes if int(k) >= 0})
    reads: list[tuple[bool, int, list[int]]] = []
    position = -1  # last frame decoded; -1: at the stream start, before frame 0
    for index in indices:
        key = keyframe_at_or_before(keys, index)
        if key - (position + 1) > min_skip:  # decoding on would waste frames a seek skips
            reads.append((True, key, [index]))
        elif reads:
            reads[-1][2].append(index)
        else:
            reads.append((False, 0, [index]))
        position = index
    return [Read(seek, start, tuple(run)) for seek, start, run in reads]


def _plan_by_gap(indices: list[int], gap: int) -> list[Read]:
    reads: list[tuple[bool, list[int]]] = []
    position = 0
    for index in indices:
        if index - position > gap:
            reads.append((True, [index]))
        elif reads:
            reads[-1][1].append(index)
        else:
            reads.append((False, [index]))
        position = index
    return [Read(seek, None if seek else 0, tuple(run)) for seek, run in reads]


def frames_decoded(plan: Sequence[Read]) -> int | None:
    """Frames the plan decodes (None when a read's start is unknown): the cost it minimises."""
    starts = [read.start for read in plan]
    if any(start is None for start in starts):
        return None
    return sum(read.indices[-1] - start + 1 for read, start in zip(plan, starts) if start is not None)


def earlier_start(keyframes: Sequence[int] | None, start: int) -> int:
    """Where to seek when a seek toward `start` landed past it: the keyframe before, else halfway."""
    if start <= 0:
        return 0
    if keyframes:
        return keyframe_at_or_before(sorted(keyframes), start - 1)
    return start // 2
