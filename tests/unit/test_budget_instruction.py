"""`instruction` (Hybrid-Frame) and the probing `oracle`, through the eval engine seam.

A random tiny Qwen2.5-VL answers nonsense: the predictor must still return candidates and count
its fallbacks. Where a test needs a model that answers on cue, a scripted engine stands in; it
implements the same `generate(rows) -> list[str]` seam as the transformers engine.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videosft import schema as S
from videosft.budget import BudgetConfig, get_predictor, parse_budget_answer, predictor_from_config
from videosft.budget.stage import RowPreparer
from videosft.data.sampling import SamplingContract
from videosft.data.synthetic import corpus, make_synthetic

CANDS = [1, 2, 4, 8, 16]


class ScriptedEngine:
    """Answers from a script (or a function of the row); records what it was shown."""

    def __init__(self, answer):
        self.answer, self.seen = answer, []

    def generate(self, rows):
        self.seen.extend(rows)
        return [self.answer(r) if callable(self.answer) else self.answer for r in rows]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from videosft.data.manifest import read_manifest

    root = tmp_path_factory.mktemp("syn")
    s = make_synthetic(root, n_train_video=0, n_train_image=0, n_eval_video=4, n_eval_image=1)
    return read_manifest(str(s.eval_video)) + read_manifest(str(s.eval_image))


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    from videosft.models.registry import get_family

    return str(get_family("qwen2_5_vl").build_tiny(tmp_path_factory.mktemp("vlm"), seed=0, extra_corpus=corpus()))


@pytest.fixture(scope="module")
def thumbs(data):
    cfg = BudgetConfig(predictor="similarity", num_thumbnails=4)
    prepare = RowPreparer(predictor_from_config(cfg), cfg)
    rows = prepare(data)
    prepare.decoder.decoder.close()
    return rows


def test_random_tiny_vlm_still_yields_candidates_and_counts_fallbacks(tiny_vlm, thumbs):
    cfg = BudgetConfig(predictor="instruction", model_path=tiny_vlm, max_new_tokens=3)
    rows = thumbs[:2] + thumbs[-1:]  # two clips and the still
    got = predictor_from_config(cfg).predict(rows)
    assert len(got) == len(rows) and all(g.budget in CANDS for g in got)
    videos = [g for g, r in zip(got, rows) if r[S.MEDIA_TYPE] == S.MEDIA_VIDEO]
    assert len(videos) == 2
    for g in videos:  # fell_back exactly when the raw answer does not parse, and then it is the default
        assert g.fell_back == (parse_budget_answer(g.raw, CANDS) is None)
        assert not g.fell_back or g.budget == cfg.default
    assert got[-1].budget == 1 and got[-1].raw.startswith("non-video")


def test_qwen3_vl_predictor_reads_timestamped_thumbnails_and_yields_candidates(tmp_path, thumbs):
    """`budget.family: qwen3_vl`: the predictor is a Qwen3-VL (the study's best, Qwen3-VL-8B);
    its thumbnails reach it as a video with the released timestamps, answers become candidates."""
    from videosft.engines import TransformersEngine
    from videosft.models.qwen3_vl_positions import timestamp_text, timestamps
    from videosft.models.registry import get_family

    path = str(get_family("qwen3_vl").build_tiny(tmp_path / "q3", seed=0, extra_corpus=corpus()))
    cfg = BudgetConfig(predictor="instruction", model_path=path, family="qwen3_vl", max_new_tokens=3)
    predictor = predictor_from_config(cfg)
    assert isinstance(predictor.engine, TransformersEngine) and predictor.engine.family.name == "qwen3_vl"
    rows = thumbs[:2] + thumbs[-1:]
    got = predictor.predict(rows)
    assert len(got) == 3 and all(g.budget in CANDS for g in got) and got[-1].raw.startswith("non-video")
    for g in got[:2]:
        assert g.fell_back == (parse_budget_answer(g.raw, CANDS) is None)
    row = rows[0]
    enc = predictor.engine.encode({**row, S.QUESTION: predictor.question(row)})
    text = predictor.engine.processor.tokenizer.decode(enc["input_ids"])
    stamps = timestamps(range(len(row[S.FRAMES])), float(row[S.SAMPLED_FPS]))
    assert all(timestamp_text(t) in text for t in stamps) and "How many frames" in text
    with pytest.raises(ValueError, match="unknown family 'qwen9'"):
        BudgetConfig(predictor="instruction", family="qwen9")


def test_engine_sees_the_instruction_the_prompt_and_the_thumbnails(thumbs):
    engine = ScriptedEngine("8")
    p = get_predictor("instruction", candidates=CANDS, default=4, engine=engine)
    got = p.predict(thumbs)
    assert [g.budget for g in got] == [8, 8, 8, 8, 1] and not any(g.fell_back for g in got)
    shown = engine.seen[0]
    assert shown[S.QUESTION].startswith("Question: " + thumbs[0][S.QUESTION])
    assert shown[S.QUESTION].endswith("Answer with one of: 1, 2, 4, 8, 16.")
    assert shown[S.FRAMES].shape == (4, 56, 56, 3) and shown[S.SAMPLED_FPS] > 0


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=30))
def test_any_answer_becomes_a_candidate_or_a_counted_fallback(answer):
    row = {S.MEDIA_TYPE: S.MEDIA_VIDEO, S.QUESTION: "q", S.FRAMES: np.zeros((2, 28, 28, 3), np.uint8)}
    got = get_predictor("instruction", candidates=CANDS, default=4, engine=ScriptedEngine(answer)).predict([row])[0]
    assert got.budget in CANDS and got.raw == answer
    assert got.fell_back == (parse_budget_answer(answer, CANDS) is None)


def test_engine_errors_and_missing_thumbnails_fall_back():
    class Failing:
        def generate(self, rows):
            raise RuntimeError("index 8 out of range")

    rows = [
        {S.MEDIA_TYPE: S.MEDIA_VIDEO, S.FRAMES: np.zeros((1, 28, 28, 3), np.uint8)},
        {S.MEDIA_TYPE: S.MEDIA_VIDEO, S.FRAMES: np.zeros((0, 1, 1, 3), np.uint8), S.ERROR: "decode: bad"},
    ]
    got = get_predictor("instruction", candidates=CANDS, default=4, engine=Failing()).predict(rows)
    assert [(g.budget, g.fell_back) for g in got] == [(4, True), (4, True)]
    assert "engine error" in got[0].raw and "decode: bad" in got[1].raw


def test_probe_oracle_finds_the_smallest_sufficient_budget(data):
    video = data[0]
    engine = ScriptedEngine(lambda r: video[S.ANSWER] if len(r[S.FRAMES]) >= 4 else "purple")
    p = get_predictor(
        "oracle",
        candidates=[1, 2, 4, 8],
        default=2,
        mode="probe",
        engine=engine,
        contract=SamplingContract(num_frames=8),
    )
    got = p.predict([video])[0]
    assert (got.budget, got.fell_back) == (4, False)
    shown = [len(r[S.FRAMES]) for r in engine.seen]
    assert shown == [1, 2, 4]  # ascending, stops at the first correct answer
    idx = [r[S.FRAME_INDICES].tolist() for r in engine.seen]
    assert set(idx[0]) <= set(idx[1]) <= set(idx[2])  # nested subsets of one decode
    never = get_predictor("oracle", candidates=[1, 2], default=2, mode="probe", engine=ScriptedEngine("no"))
    assert never.predict([video])[0].fell_back


def test_probe_oracle_with_the_tiny_vlm_never_crashes(tiny_vlm, data):
    cfg = BudgetConfig(
        predictor="oracle", oracle="probe", model_path=tiny_vlm, candidates=[1, 2], default=2, max_new_tokens=2
    )
    got = predictor_from_config(cfg, SamplingContract()).predict(data[:1])
    assert got[0].budget in (1, 2) and (got[0].fell_back or got[0].raw.startswith("correct at"))
