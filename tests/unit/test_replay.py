"""Image replay (`data.image_replay_ratio`): the mixed training rows have the requested share of
images, keep every video once, are deterministic, and are numbered for the data cursor."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videosft import schema as S
from videosft.config import ConfigError, load_config
from videosft.data.mixing import MIX_SOURCE, replay_mix
from videosft.train.checkpoint import SAMPLE_INDEX
from videosft.train.run import training_rows


def _manifest(n_video: int, n_image: int, n_text: int = 0) -> list[dict]:
    rows = [{S.ID: f"v{i}", S.MEDIA_TYPE: S.MEDIA_VIDEO} for i in range(n_video)]
    rows += [{S.ID: f"i{i}", S.MEDIA_TYPE: S.MEDIA_IMAGE} for i in range(n_image)]
    rows += [{S.ID: f"t{i}", S.MEDIA_TYPE: S.MEDIA_TEXT} for i in range(n_text)]
    return rows


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.25, 0.4, 0.5, 0.75])
def test_mixed_stream_has_the_requested_ratio(ratio):
    mixed = replay_mix(_manifest(48, 32), ratio, seed=0)
    images = sum(r[S.MEDIA_TYPE] == S.MEDIA_IMAGE for r in mixed)
    assert images == round(48 * ratio / (1 - ratio))
    assert images / len(mixed) == pytest.approx(ratio, abs=0.5 / len(mixed) + 1e-9)
    videos = Counter(r[S.ID] for r in mixed if r[S.MEDIA_TYPE] == S.MEDIA_VIDEO)
    assert videos == Counter(f"v{i}" for i in range(48))  # every video exactly once
    assert {r[MIX_SOURCE] for r in mixed} <= {"video", "image"}


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.integers(1, 40), st.integers(0, 5), st.floats(0.0, 0.9))
def test_ratio_holds_for_any_sizes(n_video, n_image, n_text, ratio):
    mixed = replay_mix(_manifest(n_video, n_image, n_text), ratio, seed=3)
    images = sum(r[S.MEDIA_TYPE] == S.MEDIA_IMAGE for r in mixed)
    base = n_video + n_text  # text rows ride with the video stream
    assert len(mixed) - images == base
    assert images == round(base * ratio / (1 - ratio))


def test_short_image_pool_repeats_whole_copies_first():
    mixed = replay_mix(_manifest(10, 4), 0.6, seed=0)  # 15 images wanted from 4: 3 full copies + 3
    counts = Counter(r[S.ID] for r in mixed if r[S.MEDIA_TYPE] == S.MEDIA_IMAGE)
    assert sum(counts.values()) == 15 and sorted(counts.values()) == [3, 4, 4, 4]


def test_deterministic_and_interleaved():
    rows = _manifest(48, 32)
    a, b = replay_mix(rows, 0.25, seed=1), replay_mix(list(reversed(rows)), 0.25, seed=1)
    assert sorted(r[S.ID] for r in a) == sorted(r[S.ID] for r in b)  # same rows whatever the order
    assert a == replay_mix(rows, 0.25, seed=1)
    first_half = a[: len(a) // 2]
    assert any(r[S.MEDIA_TYPE] == S.MEDIA_IMAGE for r in first_half)  # not all images at the end


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="no image rows"):
        replay_mix(_manifest(4, 0), 0.5)
    with pytest.raises(ValueError, match="no video"):
        replay_mix(_manifest(0, 4), 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        replay_mix(_manifest(4, 4), 1.0)


def test_training_rows_follow_the_config_and_are_numbered():
    rows = _manifest(8, 8)
    plain = training_rows(load_config(None), rows)
    assert [r[S.ID] for r in plain] == [r[S.ID] for r in rows]  # default: the manifest's own mix
    assert [r[SAMPLE_INDEX] for r in plain] == list(range(16))
    video_only = training_rows(load_config(None, ["data.image_replay_ratio=0.0"]), rows)
    assert {r[S.MEDIA_TYPE] for r in video_only} == {S.MEDIA_VIDEO}
    quarter = training_rows(load_config(None, ["data.image_replay_ratio=0.2"]), rows)
    assert sum(r[S.MEDIA_TYPE] == S.MEDIA_IMAGE for r in quarter) == 2
    assert [r[SAMPLE_INDEX] for r in quarter] == list(range(len(quarter)))


def test_config_validates_the_ratio():
    assert load_config(None).data.image_replay_ratio is None
    with pytest.raises(ConfigError, match=r"data\.image_replay_ratio"):
        load_config(None, ["data.image_replay_ratio=1.0"])
    with pytest.raises(ConfigError, match=r"data\.image_replay_ratio"):
        load_config(None, ["data.image_replay_ratio=-0.1"])
