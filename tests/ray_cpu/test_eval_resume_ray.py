"""Resume through the real Ray Data pass: a run killed after its first block resumes where it stopped.

Real decode pool, real transformers engine actor (tiny random Qwen2.5-VL), real synthetic media.
"""

import json

import pytest

from videosft.config import ExperimentConfig
from videosft.eval import predictions as P
from videosft.eval.runner import evaluate_model, ray_predictor

pytestmark = pytest.mark.ray
BENCHES = ["synthetic_image", "synthetic_video"]


class Killed(BaseException):
    pass


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from videosft.data.synthetic import corpus, make_synthetic
    from videosft.models.registry import get_family

    tmp = tmp_path_factory.mktemp("evalresume")
    syn = make_synthetic(tmp / "data", n_train_video=0, n_train_image=0, n_eval_video=6, n_eval_image=4)
    model = get_family("qwen2_5_vl").build_tiny(tmp / "vlm", seed=0, extra_corpus=corpus())
    cfg = ExperimentConfig().with_overrides(["eval.batch_size=2", "eval.bootstrap_resamples=100"])
    return cfg, str(model), str(syn.root)


def test_killed_ray_evaluation_resumes(local_ray, setup, tmp_path):
    cfg, model, root = setup

    def dies_after_first_block(items):
        for block in ray_predictor(cfg, model, 2)(items):
            yield block
            raise Killed

    with pytest.raises(Killed):
        evaluate_model(cfg, model, 2, tmp_path, root, BENCHES, predictor=dies_after_first_block)
    kept = sum(len(P.read_rows(P.predictions_path(tmp_path, n))[0]) for n in BENCHES)
    assert 0 < kept < 10  # the first block reached disk before the kill

    scores = evaluate_model(cfg, model, 2, tmp_path, root, BENCHES)
    assert sum(s["resumed"] for s in scores.values()) == kept
    assert sum(s["predicted"] for s in scores.values()) == 10 - kept
    for name, n in (("synthetic_image", 4), ("synthetic_video", 6)):
        rows = [json.loads(x) for x in P.predictions_path(tmp_path, name).read_text().splitlines()]
        assert len(rows) == n and not any(r["error"] for r in rows)
        s = scores[name]
        assert s["n_items"] == n and s["ci"]["low"] <= s["overall"] <= s["ci"]["high"]
        assert s["contract_id"] == cfg.sampling.contract_id() and s["frame_budget"] == 2

    again = evaluate_model(cfg, model, 2, tmp_path, root, BENCHES)  # all done: no engine pass at all
    assert all(s["predicted"] == 0 for s in again.values())
    assert {n: again[n]["overall"] for n in BENCHES} == {n: scores[n]["overall"] for n in BENCHES}
