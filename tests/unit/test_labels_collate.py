"""Assistant-only label masks and batch collation (pure)."""

import numpy as np
import torch

from videosft.models.collate import collate, count_tokens
from videosft.models.labels import IGNORE_INDEX, assistant_labels


def test_assistant_labels_cover_every_assistant_turn_and_its_end_token():
    header, end = [7, 8], 9
    #        sys/user ....  hdr  a1  a2 end  user  hdr  b1 end
    ids = [1, 2, 9, 3, 4, 9, 7, 8, 20, 21, 9, 5, 9, 7, 8, 30, 9]
    labels = assistant_labels(ids, header, end)
    kept = [int(t) for t, l in zip(ids, labels) if l != IGNORE_INDEX]
    assert kept == [20, 21, 9, 30, 9]


def test_assistant_labels_without_assistant_turn_are_all_ignored():
    assert (assistant_labels([1, 2, 3], [7, 8], 9) == IGNORE_INDEX).all()


def test_collate_pads_text_and_concatenates_vision():
    a = {
        "input_ids": np.array([1, 2, 3]),
        "attention_mask": np.ones(3, int),
        "labels": np.array([-100, 2, 3]),
        "pixel_values": np.ones((4, 6), np.float32),
        "image_grid_thw": np.array([[1, 2, 2]]),
    }
    b = {
        "input_ids": np.array([5]),
        "attention_mask": np.ones(1, int),
        "labels": np.array([5]),
        "pixel_values_videos": np.zeros((8, 6), np.float32),
        "video_grid_thw": np.array([[2, 2, 2]]),
        "second_per_grid_ts": np.array([0.5], np.float32),
    }
    batch = collate([a, b], pad_token_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [5, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 2, 3], [5, -100, -100]]
    assert batch["pixel_values"].shape == (4, 6) and batch["pixel_values_videos"].shape == (8, 6)
    assert batch["pixel_values"].dtype == torch.float32
    assert batch["second_per_grid_ts"].tolist() == [0.5]
    assert count_tokens(batch) == (3, 4)
