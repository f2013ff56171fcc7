"""The decode pipeline warns when the object store is too small for its decoded rows."""

import logging

from videosft import schema as S
from videosft.data.pipeline import check_object_store, largest_row_bytes
from videosft.data.sampling import SamplingContract

MIB = 2**20


def test_largest_row_bytes_takes_the_largest_budget_at_the_largest_frame():
    contract = SamplingContract(video_max_pixels=448 * 448)
    rows = [{S.ID: "a"}, {S.ID: "b", S.FRAME_BUDGET: 64}, {S.ID: "c", S.FRAME_BUDGET: None}]
    assert largest_row_bytes(rows, contract, 16) == 64 * 448 * 448 * 3  # a row's own budget wins
    assert largest_row_bytes(rows[:1], contract, 16) == 16 * 448 * 448 * 3
    assert largest_row_bytes(rows[:1], contract, None) == contract.num_frames * 448 * 448 * 3
    fps = SamplingContract(mode="fps", max_frames=32)
    assert largest_row_bytes(rows, fps, None) == 32 * fps.video_max_pixels * 3  # capped by max_frames


def test_warns_below_two_rows_per_actor_and_names_the_fix(caplog):
    row = 19 * MIB  # 32 frames of 336x588, the benchmark's failing case
    with caplog.at_level(logging.WARNING, logger="videosft.data.pipeline"):
        message = check_object_store(row, actors=2, store_bytes=100 * MIB)
    assert "50 MiB of 100" in message and "object_store_memory >= 152 MiB" in message
    assert caplog.records and caplog.records[0].getMessage() == message
    assert check_object_store(row, actors=2, store_bytes=200 * MIB) == ""  # 100 MiB share >= 4 rows
    assert check_object_store(row, actors=4, store_bytes=200 * MIB) != ""  # more actors need more room


def test_no_cluster_no_warning():
    assert check_object_store(10**12, actors=8, store_bytes=0) == ""
