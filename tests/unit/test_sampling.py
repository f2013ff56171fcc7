"""Sampling contract: nested uniform indices, qwen-vl-utils 0.0.14 parity, hashing, validation."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from videosft.data.sampling import (
    SamplingContract,
    linspace_indices,
    pad_indices,
    smart_nframes,
    smart_resize,
    uniform_indices,
)

PARITY = settings(max_examples=400, deadline=None)


@pytest.fixture(scope="module")
def qwen():
    """qwen_vl_utils.vision_process (imports torch + torchvision; slow once)."""
    return pytest.importorskip("qwen_vl_utils.vision_process")


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@contextmanager
def qwen_frame_factor(qwen, factor: int):
    """qwen hard-codes FRAME_FACTOR as a module global; patch it to test other factors."""
    old = qwen.FRAME_FACTOR
    qwen.FRAME_FACTOR = factor
    try:
        yield
    finally:
        qwen.FRAME_FACTOR = old


# ----------------------------------------------------------------------------- uniform_indices
@given(total=st.integers(1, 5000), n=st.integers(1, 300), k=st.integers(1, 16))
def test_uniform_nested_when_n_divides_m(total, n, k):
    small, big = uniform_indices(total, n), uniform_indices(total, k * n)
    assert set(small.tolist()) <= set(big.tolist())


@given(total=st.integers(1, 100_000), n=st.integers(1, 2000))
def test_uniform_bounds_sorted_unique(total, n):
    idx = uniform_indices(total, n)
    assert idx.dtype == np.int64
    assert len(idx) == min(n, total)
    assert idx.min() >= 0 and idx.max() <= total - 1
    assert np.all(np.diff(idx) > 0)


@given(total=st.integers(1, 10_000), n=st.integers(1, 500))
def test_uniform_grid_even_left_anchored_odd_centred(total, n):
    assume(n < total)
    j = np.arange(n)
    expected = (total * j) // n if n % 2 == 0 else (total * (2 * j + 1)) // (2 * n)
    np.testing.assert_array_equal(uniform_indices(total, n), expected)


def test_uniform_examples_and_determinism():
    np.testing.assert_array_equal(uniform_indices(32, 1), [16])
    np.testing.assert_array_equal(uniform_indices(32, 2), [0, 16])
    np.testing.assert_array_equal(uniform_indices(32, 4), [0, 8, 16, 24])
    np.testing.assert_array_equal(uniform_indices(30, 3), [5, 15, 25])
    np.testing.assert_array_equal(uniform_indices(5, 9), np.arange(5))  # n > total: every frame once
    np.testing.assert_array_equal(uniform_indices(1000, 64), uniform_indices(1000, 64))


@pytest.mark.parametrize("total,n", [(0, 4), (10, 0), (-3, 2)])
def test_uniform_rejects_bad_args(total, n):
    with pytest.raises(ValueError, match="uniform_indices"):
        uniform_indices(total, n)


def test_pad_indices_repeats_last():
    np.testing.assert_array_equal(pad_indices(np.array([3]), 2), [3, 3])
    np.testing.assert_array_equal(pad_indices(np.array([1, 5, 9]), 2), [1, 5, 9, 9])
    np.testing.assert_array_equal(pad_indices(np.array([1, 5]), 2), [1, 5])


# ----------------------------------------------------------------------------- qwen parity
@st.composite
def resize_args(draw):
    factor = draw(st.sampled_from([14, 28, 32]))
    h = draw(st.integers(1, 8000))
    w = draw(st.integers(max(1, -(-h // 200)), min(8000, h * 200)))
    lo = draw(st.integers(1, 4096 * factor))
    hi = draw(st.integers(lo, lo + 20000 * factor))
    return h, w, factor, lo, hi


@PARITY
@given(args=resize_args())
def test_smart_resize_matches_qwen(qwen, args):
    assert smart_resize(*args) == qwen.smart_resize(*args)


@given(h=st.integers(1, 4000), w=st.integers(1, 4000))
def test_smart_resize_defaults_match_qwen(qwen, h, w):
    assume(max(h, w) / min(h, w) <= 200)
    assert smart_resize(h, w, 28) == qwen.smart_resize(h, w, 28)


def test_smart_resize_ratio_error(qwen):
    with pytest.raises(ValueError):
        qwen.smart_resize(10, 2100, 28)
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 2100, 28)


def _both(fn_a, fn_b):
    """Call both; they must agree on the value or both raise ValueError."""
    try:
        a = fn_a()
    except ValueError:
        with pytest.raises(ValueError):
            fn_b()
        return None
    assert a == fn_b()
    return a


@PARITY
@given(
    total=st.integers(1, 200_000),
    video_fps=st.floats(0.5, 120.0),
    fps=st.floats(0.1, 10.0),
    min_frames=st.integers(1, 64),
    max_frames=st.one_of(st.none(), st.integers(1, 1024)),
    factor=st.sampled_from([1, 2, 4]),
)
def test_smart_nframes_fps_path_matches_qwen(qwen, total, video_fps, fps, min_frames, max_frames, factor):
    ele = {"fps": fps, "min_frames": min_frames}
    if max_frames is not None:
        ele["max_frames"] = max_frames
    with qwen_frame_factor(qwen, factor):
        _both(
            lambda: qwen.smart_nframes(ele, total_frames=total, video_fps=video_fps),
            lambda: smart_nframes(
                total, video_fps, fps=fps, min_frames=min_frames, max_frames=max_frames, frame_factor=factor
            ),
        )


@given(total=st.integers(1, 5000), nframes=st.integers(0, 5000), factor=st.sampled_from([1, 2, 4]))
def test_smart_nframes_explicit_path_matches_qwen(qwen, total, nframes, factor):
    with qwen_frame_factor(qwen, factor):
        _both(
            lambda: qwen.smart_nframes({"nframes": nframes}, total_frames=total, video_fps=30.0),
            lambda: smart_nframes(total, 30.0, nframes=nframes, frame_factor=factor),
        )


@PARITY
@given(total=st.integers(1, 300_000), data=st.data())
def test_linspace_round_matches_torch(torch, total, data):
    n = data.draw(st.integers(1, min(total, 2048)))
    ref = torch.linspace(0, total - 1, n).round().long().numpy()  # qwen's index line
    np.testing.assert_array_equal(linspace_indices(total, n), ref)


@PARITY
@given(
    total=st.integers(2, 50_000),
    video_fps=st.floats(1.0, 60.0),
    fps=st.floats(0.25, 8.0),
    min_frames=st.integers(1, 32),
    max_frames=st.integers(32, 768),
)
def test_fps_mode_frame_indices_match_qwen_pipeline(qwen, torch, total, video_fps, fps, min_frames, max_frames):
    contract = SamplingContract(mode="fps", fps=fps, min_frames=min_frames, max_frames=max_frames)
    ele = {"fps": fps, "min_frames": min_frames, "max_frames": max_frames}
    try:
        n = qwen.smart_nframes(ele, total_frames=total, video_fps=video_fps)
    except ValueError:
        with pytest.raises(ValueError):
            contract.frame_indices(total, video_fps)
        return
    ref = torch.linspace(0, total - 1, n).round().long().numpy()  # as qwen's decord reader (no start/end)
    np.testing.assert_array_equal(contract.frame_indices(total, video_fps), ref)


# ----------------------------------------------------------------------------- the contract
def test_fixed_mode_budget_and_default():
    c = SamplingContract(num_frames=8)
    np.testing.assert_array_equal(c.frame_indices(64, 30.0), uniform_indices(64, 8))
    np.testing.assert_array_equal(c.frame_indices(64, 30.0, budget=3), uniform_indices(64, 3))
    np.testing.assert_array_equal(c.frame_indices(1, 30.0), [0])  # a still: one frame


def test_fps_mode_budget_caps_to_even_count():
    c = SamplingContract(mode="fps", fps=2.0)
    assert len(c.frame_indices(300, 30.0)) == 20
    assert len(c.frame_indices(300, 30.0, budget=7)) == 6
    assert len(c.frame_indices(300, 30.0, budget=1)) == 2  # Qwen needs >= frame_factor frames
    assert len(c.frame_indices(300, 30.0, budget=64)) == 20  # a cap, never a raise
    with pytest.raises(ValueError, match="nframes"):
        c.frame_indices(1, 30.0)  # qwen rejects 1-frame videos; the decode stage records it


@pytest.mark.parametrize("bad", [dict(total_frames=0, video_fps=1.0), dict(total_frames=5, video_fps=1.0, budget=0)])
def test_frame_indices_rejects_bad_args(bad):
    with pytest.raises(ValueError, match="frame_indices"):
        SamplingContract().frame_indices(**bad)


def test_sampled_fps_rules():
    qwen_rule, span = SamplingContract(), SamplingContract(fps_rule="span")
    idx = uniform_indices(300, 30)  # every 10th frame of a 30 fps clip
    assert qwen_rule.sampled_fps(idx, 30.0, 300) == 30 / 300 * 30.0  # qwen-vl-utils: n / total * fps
    rate = span.sampled_fps(idx, 30.0, 300)
    assert isinstance(rate, float) and rate == pytest.approx(3.0)  # span: the real spacing
    assert 2 / rate == pytest.approx(2 / 3)  # second_per_grid_ts stays fractional
    assert span.sampled_fps(np.array([0, 3]), 25.0, 4) == pytest.approx(25.0 / 3)
    assert qwen_rule.sampled_fps(np.array([0, 3]), 25.0, 4) == pytest.approx(12.5)
    assert span.sampled_fps(np.array([7]), 24.0, 8) == 24.0  # no spacing: the source rate
    assert qwen_rule.sampled_fps(np.array([7]), 24.0, 8) == 3.0
    assert qwen_rule.contract_id() != span.contract_id()  # the rule is part of the contract
    np.testing.assert_allclose(qwen_rule.timestamps(np.array([0, 15, 30]), 30.0), [0.0, 0.5, 1.0])


class _FakeVideoReader:
    """Stands in for decord.VideoReader so qwen-vl-utils' own reader runs without a file."""

    total, fps = 1, 1.0

    def __init__(self, path, *args, **kwargs):
        pass

    def __len__(self):
        return self.total

    def get_avg_fps(self):
        return self.fps

    def get_batch(self, idx):
        class _Batch:
            def asnumpy(inner):
                return np.zeros((len(idx), 2, 2, 3), np.uint8)

        return _Batch()


@PARITY
@given(
    total=st.integers(2, 50_000),
    video_fps=st.floats(1.0, 60.0),
    fps=st.floats(0.25, 8.0),
    min_frames=st.integers(1, 32),
    max_frames=st.integers(32, 768),
)
def test_fps_mode_matches_qwen_reader_count_indices_fps_and_grid_seconds(
    qwen, total, video_fps, fps, min_frames, max_frames
):
    """qwen-vl-utils' own decord reader (on a stand-in VideoReader) vs the contract: frame count,
    indices, sampled fps (bit-equal float) and second_per_grid_ts = temporal_patch_size / fps."""
    import decord

    contract = SamplingContract(mode="fps", fps=fps, min_frames=min_frames, max_frames=max_frames)
    ele = {"video": "clip.mp4", "fps": fps, "min_frames": min_frames, "max_frames": max_frames}
    _FakeVideoReader.total, _FakeVideoReader.fps = total, video_fps
    real = decord.VideoReader
    decord.VideoReader = _FakeVideoReader
    try:
        video, meta, ref_fps = qwen._read_video_decord(ele)
    except ValueError:
        with pytest.raises(ValueError):
            contract.frame_indices(total, video_fps)
        return
    finally:
        decord.VideoReader = real
    idx = contract.frame_indices(total, video_fps)
    assert len(idx) == video.shape[0]
    assert idx.tolist() == list(meta["frames_indices"])
    ours = contract.sampled_fps(idx, video_fps, total)
    assert ours == ref_fps
    assert 2 / ours == 2 / ref_fps  # Qwen2.5-VL's processor: temporal_patch_size / fps


def test_output_size_video_and_image_bounds():
    c = SamplingContract(video_max_pixels=3136 * 4, max_pixels=3136 * 64)
    assert c.output_size(64, 64) == (56, 56)
    assert c.output_size(480, 640) == smart_resize(480, 640, 28, 3136, 3136 * 4)
    assert c.output_size(480, 640, media="image") == smart_resize(480, 640, 28, 3136, 3136 * 64)
    with pytest.raises(ValueError, match="media"):
        c.output_size(64, 64, media="audio")


def test_contract_id_stable_and_equal_for_equal_contracts():
    a, b = SamplingContract(), SamplingContract(**SamplingContract().model_dump())
    assert a == b and a.contract_id() == b.contract_id()
    assert len(a.contract_id()) == 12 and int(a.contract_id(), 16) >= 0
    assert SamplingContract(fps=2).contract_id() == a.contract_id()  # int vs float spelling
    # Pinned: changing this changes every recorded checkpoint's contract id (bump deliberately).
    assert a.contract_id() == "44a5c8ba01b5"  # sampling-v2 (qwen-vl-utils sampled fps)


CHANGES = {
    "mode": "fps",
    "num_frames": 16,
    "fps": 1.0,
    "min_frames": 2,
    "max_frames": 64,
    "frame_factor": 4,
    "image_factor": 32,
    "min_pixels": 784,
    "max_pixels": 3136 * 32,
    "video_min_pixels": 784,
    "video_max_pixels": 3136 * 8,
    "fps_rule": "span",
}


def test_every_field_changes_contract_id():
    assert set(CHANGES) == set(SamplingContract.model_fields)
    base = SamplingContract().contract_id()
    ids = {SamplingContract(**{k: v}).contract_id() for k, v in CHANGES.items()}
    assert base not in ids and len(ids) == len(CHANGES)


@pytest.mark.parametrize(
    "field,value",
    [
        ("num_frames", 0),
        ("min_frames", -1),
        ("max_frames", 0),
        ("frame_factor", 0),
        ("image_factor", 0),
        ("min_pixels", 0),
        ("video_max_pixels", -5),
        ("fps", 0.0),
        ("fps", float("nan")),
        ("mode", "dense"),
    ],
)
def test_validation_errors_name_the_field(field, value):
    with pytest.raises(ValidationError, match=field):
        SamplingContract(**{field: value})


@pytest.mark.parametrize(
    "kwargs,names",
    [
        (dict(min_frames=10, max_frames=8), "min_frames.*max_frames"),
        (dict(min_pixels=10**6), "min_pixels.*max_pixels"),
        (dict(video_min_pixels=10**6), "video_min_pixels.*video_max_pixels"),
    ],
)
def test_ordering_errors_name_both_fields(kwargs, names):
    with pytest.raises(ValidationError, match=names):
        SamplingContract(**kwargs)


def test_frozen_and_extra_forbidden():
    c = SamplingContract()
    with pytest.raises(ValidationError):
        c.num_frames = 4
    with pytest.raises(ValidationError, match="num_frame"):
        SamplingContract(num_frame=4)
    assert SamplingContract.model_validate({"mode": "fps", "fps": 1}).fps == 1.0
