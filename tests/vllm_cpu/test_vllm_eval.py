"""`eval.engine: vllm` through the Ray Data evaluation actors, end to end to scores files.

Real decode pool, real vLLM engine actor (in-process engine core inside the actor; settings from
`eval.vllm`), the trained tiny Qwen2.5-VL, the demo's synthetic benchmarks plus an MME fixture in
its published HF parquet layout with real PNGs. The same run with `eval.engine: transformers`
must produce the same predictions, row for row, and the same scores.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from vllm_fixtures import decode_rows

from videosft import schema as S
from videosft.config import ExperimentConfig
from videosft.eval import predictions as P
from videosft.eval.runner import engine_dataset, evaluate_model, stream_predictions

BENCHES = ["synthetic_image", "synthetic_video", "mme"]


@pytest.fixture(scope="module")
def mme_root(tmp_path_factory, synthetic):
    """lmms-lab/MME as downloaded (data/test-*.parquet), images taken from the synthetic stills."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    root = tmp_path_factory.mktemp("mme")
    stills = json.loads((synthetic.root / "eval_image.json").read_text())[:3]
    rows = []
    for k, item in enumerate(stills):
        buf = io.BytesIO()
        Image.open(synthetic.root / item["image"]).convert("RGB").save(buf, format="PNG")
        for q, ans in (("Is there a shape?", "Yes"), ("Is there a dog?", "No")):
            rows.append(
                {
                    "question_id": f"existence/s{k}.png",
                    "image": {"bytes": buf.getvalue(), "path": f"s{k}.png"},
                    "question": f"{q} Please answer yes or no.",
                    "answer": ans,
                    "category": "existence",
                }
            )
    (root / "data").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), root / "data" / "test-00000-of-00001-0123456789abcdef.parquet")
    return root


def _cfg(engine, mme_root, tmp_path):
    return ExperimentConfig().with_overrides(
        [
            f"eval.engine={engine}",
            "eval.batch_size=4",
            "eval.bootstrap_resamples=50",
            "eval.cpus_per_actor=1",
            "data.cpus_per_decoder=0.5",
            f"eval.roots={{mme: {mme_root}}}",
            f"eval.benchmark_options={{mme: {{cache_dir: {tmp_path / 'mme_cache'}}}}}",
            "eval.vllm.kv_cache_gib=1",
            "eval.vllm.max_model_len=2048",
        ]
    )


def test_vllm_evaluation_end_to_end_matches_transformers(ray_cluster, trained_qwen, synthetic, mme_root, tmp_path):
    scores = {}
    for engine in ("vllm", "transformers"):
        cfg = _cfg(engine, mme_root, tmp_path)
        scores[engine] = evaluate_model(cfg, trained_qwen, 4, tmp_path / engine, str(synthetic.root), BENCHES)
    for name in BENCHES:
        v, t = scores["vllm"][name], scores["transformers"][name]
        assert v["engine"] == "vllm" and v["n_items"] == t["n_items"] > 0 and v["decode_errors"] == 0
        assert (tmp_path / "vllm" / f"{name}.scores.json").exists()
        preds = {
            e: {r[S.ID]: r[S.PREDICTION] for r in P.read_rows(P.predictions_path(tmp_path / e, name))[0]}
            for e in ("vllm", "transformers")
        }
        assert preds["vllm"] == preds["transformers"], name
        assert any(preds["vllm"].values())  # the trained model answers
        assert {k: x for k, x in v.items() if k != "engine"} == {k: x for k, x in t.items() if k != "engine"}


def test_image_video_and_text_rows_through_the_vllm_actor_pool(ray_cluster, trained_qwen, synthetic, tmp_path):
    import ray.data

    from videosft.benchmarks import get_benchmark
    from videosft.engines import TransformersEngine

    items = (
        get_benchmark("synthetic_image").load(str(synthetic.root))[:3]
        + get_benchmark("synthetic_video").load(str(synthetic.root))[:3]
        + [
            {
                S.ID: f"t{i}",
                S.MEDIA_TYPE: S.MEDIA_TEXT,
                S.MEDIA_PATH: "",
                S.QUESTION: f"Say {w}. What colour?",
                S.ANSWER: w,
            }
            for i, w in enumerate(("blue", "red"))
        ]
    )
    rows = decode_rows(items, 4)
    keys = [S.ID, S.MEDIA_TYPE, S.QUESTION, S.FRAMES, S.SAMPLED_FPS, S.ERROR]
    ds = ray.data.from_items([{k: r[k] for k in keys} for r in rows])
    cfg = ExperimentConfig().with_overrides(["eval.engine=vllm", "eval.batch_size=3", "eval.max_new_tokens=6"])
    got = {
        p[S.ID]: p[S.PREDICTION] for block in stream_predictions(engine_dataset(cfg, trained_qwen, ds)) for p in block
    }
    want = TransformersEngine(trained_qwen, "qwen2_5_vl", 6, batch_size=3).generate(rows)
    assert got == {r[S.ID]: w for r, w in zip(rows, want)}
    assert {r[S.MEDIA_TYPE] for r in rows} == {"image", "video", "text"}
    assert np.all([len(v) > 0 for v in got.values()])
