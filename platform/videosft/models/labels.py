"""Assistant-only loss masks: find assistant turns in token ids and label only those tokens.

The mask is computed on the final token ids (after the processor expanded vision placeholders),
by matching the family's assistant-header token sequence and the turn-end token, so it holds for
multi-turn conversations and for any number of visual tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IGNORE_INDEX = -100


def assistant_labels(input_ids: Sequence[int], header_ids: Sequence[int], end_id: int) -> np.ndarray:
    """Labels equal to input_ids inside assistant turns (content + turn end), IGNORE_INDEX elsewhere."""
    ids = np.asarray(input_ids, dtype=np.int64)
    labels = np.full_like(ids, IGNORE_INDEX)
    header = np.asarray(header_ids, dtype=np.int64)
    h = len(header)
    if h == 0:
        raise ValueError("assistant header tokenized to nothing; check the family's assistant_header")
    i = 0
    while i <= len(ids) - h:
        if np.array_equal(ids[i : i + h], header):
            start = i + h
            end = start
            while end < len(ids) and ids[end] != end_id:
                end += 1
            stop = min(end + 1, len(ids))  # include the turn-end token: the model must learn to stop
            labels[start:stop] = ids[start:stop]
            i = stop
        else:
            i += 1
    return labels
