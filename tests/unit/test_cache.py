"""Frame cache without Ray: subset math, row round trips, storage; the batching cost of decoded rows."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videosft import schema as S
from videosft.data import batching as T
from videosft.data import cache as C
from videosft.data import media_fixtures as mf
from videosft.data.decode import decode_video
from videosft.data.sampling import SamplingContract

FIXED = SamplingContract()


def _cached_row(total: int, fps: float, indices: np.ndarray, frames: np.ndarray, **extra) -> dict:
    """A row as it comes back from the parquet shards (plain Python values, frames as bytes)."""
    decoded = {
        S.ID: "v",
        S.MEDIA_TYPE: S.MEDIA_VIDEO,
        S.MEDIA_PATH: "/v.mp4",
        S.ERROR: "",
        S.NUM_FRAMES: total,
        S.FPS: fps,
        S.FRAMES: frames,
        S.FRAME_INDICES: indices,
        S.TIMESTAMPS: indices / fps,
        S.SAMPLED_FPS: 0.0,
        S.CONTRACT_ID: FIXED.contract_id(),
        C._ORIG_BUDGET: None,
        **extra,
    }
    return C._to_cache_row(decoded)


def _index_frames(indices: np.ndarray) -> np.ndarray:
    """Tiny frames whose pixels spell their own index (two bytes), for exact subset checks."""
    frames = np.zeros((len(indices), 1, 1, 3), np.uint8)
    frames[:, 0, 0, 0], frames[:, 0, 0, 1] = indices % 256, indices // 256
    return frames


@settings(max_examples=100, deadline=None)
@given(total=st.integers(1, 5000), small=st.integers(1, 64), factor=st.integers(1, 8), fps=st.floats(1.0, 60.0))
def test_any_divisor_budget_is_served_exactly_from_the_max_decode(total, small, factor, fps):
    big = small * factor
    cached = FIXED.frame_indices(total, fps, big)
    row = C._from_cache_row(
        _cached_row(total, fps, cached, _index_frames(cached)), FIXED.model_dump(mode="json"), small
    )
    want = FIXED.frame_indices(total, fps, small)
    pixels = row[S.FRAMES][:, 0, 0, :2].astype(np.int64)
    got = pixels[:, 0] + 256 * pixels[:, 1]
    assert got.tolist() == want.tolist() == row[S.FRAME_INDICES].tolist()
    assert row[S.SAMPLED_FPS] == FIXED.sampled_fps(want, fps, total)
    assert np.array_equal(row[S.TIMESTAMPS], want / fps)
    assert C.FRAMES_SHAPE not in row


def test_real_frames_subset_is_pixel_identical_to_a_direct_decode(tmp_path):
    path = mf.write_video(str(tmp_path / "v.mp4"), 40, gop=7)
    out_hw = FIXED.output_size(48, 64, "video")
    cached = FIXED.frame_indices(40, 8.0, 8)
    row = _cached_row(40, 8.0, cached, decode_video(path, cached, out_hw))
    for budget in (1, 2, 4, 8):
        got = C._from_cache_row(row, FIXED.model_dump(mode="json"), budget)[S.FRAMES]
        direct = decode_video(path, FIXED.frame_indices(40, 8.0, budget), out_hw)
        assert got.dtype == np.uint8 and np.array_equal(got, direct)
        assert [mf.read_index(f) for f in got] == FIXED.frame_indices(40, 8.0, budget).tolist()


def test_a_missing_frame_is_a_clear_error_not_a_wrong_frame():
    cached = FIXED.frame_indices(100, 10.0, 8)
    row = _cached_row(100, 10.0, cached, _index_frames(cached))
    with pytest.raises(C.CacheMismatch, match="budget 3 are not in the cache"):
        C._from_cache_row(row, FIXED.model_dump(mode="json"), 3)


def test_error_image_and_text_rows_pass_through_unchanged():
    image = {
        S.ID: "i",
        S.MEDIA_TYPE: S.MEDIA_IMAGE,
        S.ERROR: "",
        S.FRAMES: np.full((1, 4, 4, 3), 7, np.uint8),
        S.FRAME_INDICES: np.zeros(0, np.int64),
        S.TIMESTAMPS: np.zeros(0),
        S.SAMPLED_FPS: 0.0,
        S.NUM_FRAMES: 1,
        C._ORIG_BUDGET: None,
    }
    bad = {
        **image,
        S.ID: "b",
        S.MEDIA_TYPE: S.MEDIA_VIDEO,
        S.ERROR: "probe: file is empty (0 bytes)",
        S.FRAMES: np.zeros((0, 1, 1, 3), np.uint8),
    }
    for decoded in (image, bad):
        row = C._from_cache_row(C._to_cache_row(decoded), FIXED.model_dump(mode="json"), 2)
        assert np.array_equal(row[S.FRAMES], decoded[S.FRAMES]) and row[S.FRAMES].shape == decoded[S.FRAMES].shape
        assert row[S.ERROR] == decoded[S.ERROR] and row[S.FPS] is None


def test_pinned_budget_decodes_the_max_and_keeps_the_rows_own_budget():
    pinned = C._pin_budget({S.ID: "a", S.FRAME_BUDGET: 2}, 8)
    assert pinned[S.FRAME_BUDGET] == 8 and pinned[C._ORIG_BUDGET] == 2
    assert C._pin_budget({S.ID: "b", S.FRAME_BUDGET: 16}, 8)[S.FRAME_BUDGET] == 16
    assert C._pin_budget({S.ID: "c"}, 8)[C._ORIG_BUDGET] is None


def test_cast_gives_every_shard_one_schema():
    table = pa.table({S.FRAME_INDICES: pa.array([[]]), S.FPS: pa.array([None]), S.ID: ["x"]})
    out = C._cast_cache_block(table)
    assert out.schema.field(S.FRAME_INDICES).type == pa.list_(pa.int64())
    assert out.schema.field(S.FPS).type == pa.float64()


@pytest.mark.parametrize(
    ("contract", "budgets", "match"),
    [
        (SamplingContract(mode="fps"), [4, 8], "fps-mode frame indices are not nested"),
        (FIXED, [3, 8], r"budgets \[3\] do not divide the largest budget 8.*add 24"),
        (FIXED, [], "non-empty"),
    ],
)
def test_requests_one_decode_cannot_serve_are_refused_before_any_work(tmp_path, contract, budgets, match):
    with pytest.raises(ValueError, match=match):
        C.prepare_cache([{S.ID: "a"}], contract, budgets, str(tmp_path))
    assert not list(tmp_path.iterdir())


def test_duplicate_ids_are_refused(tmp_path):
    with pytest.raises(ValueError, match="'a' repeats"):
        C.prepare_cache([{S.ID: "a"}, {S.ID: "a"}], FIXED, [4], str(tmp_path))


def test_state_uncommitted_parts_and_contract_mismatch(tmp_path):
    path = C.cache_dir(str(tmp_path), FIXED, 8)
    assert path.endswith(f"{FIXED.contract_id()}/max8")
    state = C._load_state(path, FIXED, 8)
    assert state["parts"] == [] and C._index(path, state).num_rows == 0
    (tmp_path / FIXED.contract_id() / "max8" / "part-00003").mkdir(parents=True)  # a killed run
    C._drop_uncommitted(path, state)
    assert not (tmp_path / FIXED.contract_id() / "max8" / "part-00003").exists()
    C._write_text(C._join(path, C.MANIFEST), json.dumps(state))
    with pytest.raises(C.CacheMismatch, match="not frame-cache-v1 / "):
        C._load_state(path, SamplingContract(num_frames=4), 8)


def test_read_cached_refuses_budgets_the_cache_cannot_serve(tmp_path):
    fps_contract = SamplingContract(mode="fps")
    with pytest.raises(C.CacheMismatch, match="run prepare_cache"):
        C.read_cached(str(tmp_path), FIXED, 4)
    path = C.cache_dir(str(tmp_path), fps_contract, 8)
    C._write_text(C._join(path, C.MANIFEST), json.dumps(C._load_state(path, fps_contract, 8)))
    with pytest.raises(C.CacheMismatch, match="multiple of 3"):
        C.read_cached(str(tmp_path), fps_contract, 3)
    with pytest.raises(C.CacheMismatch, match="fps-mode indices are not nested"):
        C.read_cached(str(tmp_path), fps_contract, 4)


# --------------------------------------------------------------------------- batching cost
def test_visual_cost_prefers_token_counts_then_frame_pixels():
    frames = np.empty(2, object)
    frames[:] = [np.zeros((4, 28, 56, 3), np.uint8), np.zeros((1, 28, 28, 3), np.uint8)]
    assert T.visual_cost({S.FRAMES: frames}).tolist() == [4 * 28 * 56, 28 * 28]
    assert T.visual_cost({"n_visual_tokens": np.array([5, 9]), S.FRAMES: frames}).tolist() == [5, 9]
    with pytest.raises(KeyError, match="neither"):
        T.visual_cost({S.ID: np.array(["a"])})


def test_rows_take_the_callers_budget_over_the_cache_default():
    """Hybrid-Frame: the cache was filled from train.json (no budgets); the trial's manifest gives
    each row its own, and a cached row must come back with that many frames, not the trial default."""
    import numpy as np

    from videosft import schema as S
    from videosft.data.cache import FRAMES_SHAPE, _from_cache_row
    from videosft.data.sampling import SamplingContract

    contract = SamplingContract()
    cached = contract.frame_indices(64, 8.0, 16)
    frames = np.arange(len(cached), dtype=np.uint8).repeat(2 * 2 * 3).reshape(len(cached), 2, 2, 3)
    row = {
        S.ID: "v1",
        S.MEDIA_TYPE: S.MEDIA_VIDEO,
        S.ERROR: "",
        S.NUM_FRAMES: 64,
        S.FPS: 8.0,
        S.FRAMES: frames.tobytes(),
        FRAMES_SHAPE: list(frames.shape),
        S.FRAME_INDICES: list(cached),
        S.TIMESTAMPS: [0.0] * len(cached),
        S.FRAME_BUDGET: None,
    }
    plain = _from_cache_row(row, contract.model_dump(mode="json"), 16)
    own = _from_cache_row(row, contract.model_dump(mode="json"), 16, {"v1": 4})
    assert len(plain[S.FRAMES]) == 16 and plain[S.FRAME_BUDGET] is None
    assert len(own[S.FRAMES]) == 4 and own[S.FRAME_BUDGET] == 4
    assert list(own[S.FRAME_INDICES]) == list(contract.frame_indices(64, 8.0, 4))
    assert set(own[S.FRAME_INDICES]) <= set(cached)  # nested: served from the one decode
