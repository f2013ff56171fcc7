"""Gradient-alignment probe on a tiny Qwen2.5-VL (and LLaVA-1.5) and a tiny synthetic set."""

import json
import math

import numpy as np
import pytest
import torch

from videosft import schema as S
from videosft.analysis.alignment import (
    OVERALL,
    AlignmentSettings,
    _decoded_videos,
    alignment_markdown,
    batch_gradient,
    checkpoint_labels,
    first_nonpositive_budget,
    group_layout,
    infer_family,
    load_probe_batches,
    pairwise_cosines,
    plot_alignment,
    read_alignment,
    run_alignment,
    summarize,
    write_alignment,
    write_alignment_report,
)
from videosft.data.sampling import SamplingContract
from videosft.models.registry import get_family

BUDGETS = (1, 2, 4, 8)
SETTINGS = AlignmentSettings(budgets=BUDGETS, batches=2, batch_size=2)
KEYS = {
    "checkpoint",
    "family",
    "budgets",
    "overall",
    "groups",
    "first_nonpositive_budget",
    "image_batches",
    "video_batches",
    "batch_size",
    "contract_id",
}


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    from videosft.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("syn")
    make_synthetic(root, n_train_video=4, n_train_image=4, n_eval_video=0, n_eval_image=0, size=32, num_frames=8)
    return root


def _tiny(tmp_path_factory, name):
    from videosft.data.synthetic import corpus

    return get_family(name).build_tiny(tmp_path_factory.mktemp(name), seed=0, extra_corpus=corpus())


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    return _tiny(tmp_path_factory, "qwen2_5_vl")


@pytest.fixture(scope="module")
def result(qwen, syn):
    return run_alignment(qwen, syn, SETTINGS)


def _means(series):
    return {int(t): s["mean"] for t, s in series.items()}


def test_result_schema_and_ranges(result, qwen):
    assert KEYS <= set(result)
    assert result["checkpoint"] == str(qwen) and result["family"] == "qwen2_5_vl"
    assert result["budgets"] == list(BUDGETS)
    assert (result["image_batches"], result["video_batches"], result["batch_size"]) == (2, 2, 2)
    assert result["contract_id"] == SamplingContract().contract_id()
    assert {"vision", "projector", "llm"} <= set(result["groups"])
    assert {"llm_lower", "llm_upper"} <= set(result["groups"])  # the tiny LLM has 2 decoder blocks
    for series in [result["overall"], *result["groups"].values()]:
        assert set(series) == {str(t) for t in BUDGETS}
        for stats in series.values():
            assert stats["n"] == 4  # 2 image x 2 video batches
            assert -1.0 <= stats["mean"] <= 1.0 and 0.0 <= stats["std"] <= 1.0
    assert result["first_nonpositive_budget"] == first_nonpositive_budget(result["overall"])
    assert result["rejected"] == [] and math.isfinite(result["image_loss"])
    print("overall cosine by T:", _means(result["overall"]))


def test_json_round_trips(result, tmp_path):
    path = write_alignment(result, tmp_path / "a.json")
    assert read_alignment(path) == result
    assert json.loads(path.read_text())["overall"]["1"]["n"] == 4


@pytest.fixture(scope="module")
def probe_inputs(qwen, syn):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    fam = get_family("qwen2_5_vl")
    processor = AutoProcessor.from_pretrained(qwen)
    model = AutoModelForImageTextToText.from_pretrained(qwen).eval()
    images, videos, rejected = load_probe_batches(syn, fam, processor, SamplingContract(), SETTINGS)
    assert rejected == []
    return model, group_layout(model, fam), images, videos


def test_a_batch_against_itself_has_cosine_one(probe_inputs):
    model, layout, images, videos = probe_inputs
    g, loss = batch_gradient(model, images[0], layout)
    h, _ = batch_gradient(model, videos[4][0], layout)
    assert math.isfinite(loss)
    same = pairwise_cosines([g], [g], layout.slices)
    assert set(same) == {OVERALL, *layout.slices}
    for group, values in same.items():
        assert values == pytest.approx([1.0], abs=1e-6), group
    flipped = pairwise_cosines([g], [{k: -v for k, v in g.items()}], layout.slices)
    assert flipped[OVERALL] == pytest.approx([-1.0], abs=1e-6)
    mixed = pairwise_cosines([g, h], [h], layout.slices)
    assert all(-1.0 <= c <= 1.0 for values in mixed.values() for c in values)
    assert mixed[OVERALL][1] == pytest.approx(1.0, abs=1e-6)


def test_layout_partitions_the_parameters(probe_inputs):
    model, layout, _, _ = probe_inputs
    flat = [p for params in layout.params.values() for p in params]
    assert {id(p) for p in flat} == {id(p) for p in model.parameters()} and len(flat) == len(set(map(id, flat)))
    sizes = layout.sizes()
    assert sizes["vision"] + sizes["projector"] + sizes["llm"] == sum(p.numel() for p in model.parameters())
    lower, upper = layout.slices["llm_lower"][1], layout.slices["llm_upper"][1]
    assert lower.stop == upper.start and lower.stop - lower.start == upper.stop - upper.start  # equal blocks


def test_gradients_are_deterministic(probe_inputs):
    model, layout, images, _ = probe_inputs
    a, _ = batch_gradient(model, images[1], layout)
    b, _ = batch_gradient(model, images[1], layout)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_every_budget_sees_nested_frames_from_one_decode(syn):
    from videosft.data.decode import IsolatedDecoder
    from videosft.data.manifest import read_manifest

    rows = [r for r in read_manifest(str(syn / "train.json")) if r[S.MEDIA_TYPE] == S.MEDIA_VIDEO]
    with IsolatedDecoder() as decoder:
        videos, rejected = _decoded_videos(rows, SamplingContract(), BUDGETS, 2, decoder)
    assert len(videos) == 2 and not rejected
    for per_t in videos:
        full = per_t[8]
        for t in BUDGETS:
            idx = per_t[t][S.FRAME_INDICES]
            assert len(idx) == t and set(idx) <= set(full[S.FRAME_INDICES])
            pos = np.searchsorted(full[S.FRAME_INDICES], idx)
            assert np.array_equal(per_t[t][S.FRAMES], full[S.FRAMES][pos])


def test_first_nonpositive_budget_on_hand_made_numbers():
    def series(**means):
        return {k.lstrip("t"): {"mean": v, "std": 0.0, "n": 1} for k, v in means.items()}

    assert first_nonpositive_budget(series(t1=0.3, t2=0.1, t4=-0.05, t8=0.02)) == 4
    assert first_nonpositive_budget(series(t16=-0.5, t4=0.0, t8=0.2)) == 4  # numeric order; 0 counts
    assert first_nonpositive_budget(series(t1=0.3, t2=0.2)) is None
    assert first_nonpositive_budget(series(t1=None, t2=-0.1)) == 2  # no mean: skipped
    assert first_nonpositive_budget({}) is None


def test_summarize_skips_undefined_cosines():
    assert summarize([0.5, float("nan"), -0.5]) == {"mean": 0.0, "std": 0.5, "n": 2}
    assert summarize([float("nan")]) == {"mean": None, "std": None, "n": 0}


def test_settings_validate_and_sort():
    assert AlignmentSettings(budgets=(8, 2, 2)).budgets == (2, 8)
    with pytest.raises(ValueError, match="alignment.batches"):
        AlignmentSettings(batches=0)
    with pytest.raises(ValueError, match="alignment.budgets"):
        AlignmentSettings(budgets=(0, 2))


def test_plot_markdown_and_report_files(result, tmp_path):
    other = json.loads(json.dumps(result))
    other["label"] = "trial_8"
    for stats in other["overall"].values():
        stats["mean"] -= 0.5
    other["first_nonpositive_budget"] = first_nonpositive_budget(other["overall"])
    png = plot_alignment([result, other], tmp_path / "a.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = alignment_markdown([result, other])
    assert "| checkpoint | T=1 | T=2 | T=4 | T=8 | first T with cos ≤ 0 |" in md
    assert f"| {result['label']} |" in md and "| trial_8 |" in md and "llm_upper" in md
    paths = write_alignment_report([result, other], tmp_path / "rep")
    assert {p.name for p in paths.values()} == {
        f"alignment-{result['label']}.json",
        "alignment-trial_8.json",
        "alignment.md",
        "alignment.png",
    }


def test_labels_and_family_inference(qwen, tmp_path):
    assert checkpoint_labels(["/r/base_model", "/r/t1/ckpt"]) == ["base_model", "ckpt"]
    assert checkpoint_labels(["/r/t1/ckpt", "/r/t2/ckpt"]) == ["t1/ckpt", "t2/ckpt"]
    assert infer_family(qwen) == "qwen2_5_vl"
    for model_type, family in [
        ("qwen3_vl", "qwen3_vl"),
        ("llava", "llava_1_5"),
        ("llava_next_video", "llava_next_video"),
    ]:
        (tmp_path / "config.json").write_text(f'{{"model_type": "{model_type}"}}')
        assert infer_family(tmp_path) == family
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(ValueError, match="cannot infer the family"):
        infer_family(tmp_path)


def test_cli_verb_end_to_end(qwen, syn, tmp_path, capsys):
    from videosft.cli import main

    out = tmp_path / "out"
    assert (
        main(
            [
                "alignment",
                "--model",
                str(qwen),
                "--data-root",
                str(syn),
                "--budgets",
                "2,4",
                "--batches",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    res = read_alignment(out / f"alignment-{qwen.name}.json")
    assert res["budgets"] == [2, 4] and res["image_batches"] == 1 and res["overall"]["2"]["n"] == 1
    assert (out / "alignment.md").exists() and (out / "alignment.png").exists()
    assert "overall cosine by T" in capsys.readouterr().out
    assert main(["alignment", "--model", str(qwen), "--data-root", str(syn), "--budgets", "0,2"]) == 2


def test_llava_1_5_smoke(tmp_path_factory, syn):
    path = _tiny(tmp_path_factory, "llava_1_5")
    res = run_alignment(path, syn, AlignmentSettings(budgets=(1, 4), batches=1, batch_size=2))
    assert res["family"] == "llava_1_5" and {"vision", "projector", "llm"} <= set(res["groups"])
    assert all(-1.0 <= s["mean"] <= 1.0 for s in res["overall"].values())
    print("llava_1_5 overall cosine by T:", _means(res["overall"]))


# ----------------------------------------------------------------------------- the second moment (Proposition 3)
def test_second_moment_in_the_result(result):
    sm = result["second_moment"]
    assert set(sm) == {str(t) for t in BUDGETS}
    for m in sm.values():
        assert m["n"] == 4 and m["unknown_min_frames"] == 0  # batches x batch_size video rows, each alone
        g = m["groups"][OVERALL]
        assert g["all"]["n"] == 4 and g["at_or_below"]["n"] + g["above"]["n"] == 4
        assert g["all"]["mean"] > 0 and 0 <= g["mean_grad_sq"] <= g["all"]["mean"] * (1 + 1e-9)
        assert g["variance"] >= -1e-9 * g["all"]["mean"]
        parts = sum(m["groups"][k]["all"]["mean"] for k in ("vision", "projector", "llm"))
        assert parts == pytest.approx(g["all"]["mean"], rel=1e-9)  # the partition's norms add up
        b = m["bound"]
        assert b["second_term_per_L"] == pytest.approx(0.5 * g["all"]["mean"])  # no step size: eta = 1
        assert b["first_term"] == pytest.approx(-m["dot_image"])
    md = alignment_markdown([result])
    assert "Second moment of the video gradient" in md and "critical L" in md


def test_second_moment_equals_independent_per_sample_norms(qwen, syn):
    """The reported E||g||^2 is the mean of per-sample squared gradient norms computed here from scratch,
    and the split counts follow each row's min_frames."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from videosft.analysis.alignment import _batches, budget_split, probe_rows, video_second_moment

    fam = get_family("qwen2_5_vl")
    processor = AutoProcessor.from_pretrained(qwen)
    model = AutoModelForImageTextToText.from_pretrained(qwen, dtype=torch.float32).eval()
    settings = AlignmentSettings(budgets=(1, 4), batches=1, batch_size=3)
    _, videos, _ = probe_rows(syn, SamplingContract(), settings)
    mins = [int(v[1][S.MIN_FRAMES]) for v in videos]
    layout = group_layout(model, fam)
    for t in settings.budgets:
        singles = _batches([v[t] for v in videos], fam, processor, len(videos), 1)
        res = video_second_moment(model, singles, mins, t, layout, None, "cpu", step_size=0.01)
        norms = []
        for batch in singles:  # independently: plain autograd, every parameter's .grad
            model.zero_grad(set_to_none=True)
            model(**{k: v.float() if v.is_floating_point() else v for k, v in batch.items()}).loss.backward()
            norms.append(sum(float((p.grad.double() ** 2).sum()) for p in model.parameters() if p.grad is not None))
        model.zero_grad(set_to_none=True)
        g = res["groups"][OVERALL]
        assert g["all"]["mean"] == pytest.approx(float(np.mean(norms)), rel=1e-5)
        assert g["all"]["std"] == pytest.approx(float(np.std(norms)), rel=1e-4, abs=1e-12)
        below = [n for n, m in zip(norms, mins) if t <= m]
        assert g["at_or_below"]["n"] == len(below) == sum(budget_split(t, m) == "at_or_below" for m in mins)
        assert g["above"]["n"] == sum(t > m for m in mins)
        if below:
            assert g["at_or_below"]["mean"] == pytest.approx(float(np.mean(below)), rel=1e-5)
        assert "bound" not in res  # no image mean given


def test_budget_split_and_smoothness_bound():
    from videosft.analysis.alignment import budget_split, smoothness_bound

    assert [budget_split(b, 4) for b in (1, 4, 8)] == ["at_or_below", "at_or_below", "above"]
    assert budget_split(2, -1) is None
    b = smoothness_bound(dot=2.0, second_moment=8.0, step_size=0.1)
    assert b["first_term"] == pytest.approx(-0.2) and b["second_term_per_L"] == pytest.approx(0.5 * 0.01 * 8.0)
    assert b["critical_L"] == pytest.approx(2 * 2.0 / (0.1 * 8.0))  # -eta*dot + L*eta^2/2*m = 0 there
    assert smoothness_bound(-1.0, 8.0, 0.1)["critical_L"] is None
    with pytest.raises(ValueError, match="step_size"):
        AlignmentSettings(step_size=0.0)
