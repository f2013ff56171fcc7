"""Optional differential check of the ``vlmevalkit`` variants against VLMEvalKit's own source.

VLMEvalKit is not on PyPI; where the bare mirror of its repository is present (commit e8e78f0 as
pinned by ``eval.protocols``) the pure scoring functions are read out of its files with ``ast``
(only the named functions and constants; its torch/decord imports are never executed) and run on
the same rows as ours: ``MVBench.evaluate`` itself (its I/O stubbed: ``load`` returns the predictions
table after a pandas TSV round trip, which turns the same strings into NaN as its default xlsx
does), ``check_ans_with_model``, ``can_infer``, ``get_dimension_rating``; and TempCompass's
``evaluate_tempcompass_mcq`` / ``evaluate_tempcompass_YorN`` / ``get_dimension_rating``.
Skipped where the mirror is absent. Our code is a transcription, not this source.
"""

import ast
import copy
import io
import os
import random
import re
import string
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[2]))
sys.path.insert(0, str(Path(__file__).parent))

from videosft.benchmarks import get_benchmark  # noqa: E402

MIRROR = Path("/work/.mirror/open-compass+VLMEvalKit/repo")
COMMIT = "e8e78f0"


def _show(path: str) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(MIRROR), "show", f"{COMMIT}:{path}"], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"VLMEvalKit mirror at {COMMIT} not available")


def _pick(path: str, names: set[str], ns: dict, cls: str | None = None) -> dict:
    """exec only the named top-level functions / assignments (or one class's methods) of a file."""
    tree = ast.parse(_show(path))
    body = tree.body
    if cls:
        body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls).body
    keep = []
    for node in body:
        if isinstance(node, ast.FunctionDef) and node.name in names:
            node.decorator_list = []
            keep.append(node)
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) in names for t in node.targets):
            keep.append(node)
    exec(compile(ast.Module(body=keep, type_ignores=[]), path, "exec"), ns)
    return ns


class _Log:
    def __getattr__(self, name):
        return lambda *a, **k: None


@pytest.fixture(scope="module")
def vlm():
    if not MIRROR.exists():
        pytest.skip("VLMEvalKit mirror not available")
    ns = {
        "cp": copy,
        "os": os,
        "re": re,
        "string": string,
        "pd": pd,
        "rd": random,
        "logger": _Log(),
        "warnings": warnings,
        "osp": os.path,
        "FAIL_MSG": "Failed to obtain answer via API.",
    }
    _pick(
        "vlmeval/utils/matching_util.py", {"_VERBOSE_ANSWER_RE", "can_infer_option", "can_infer_text", "can_infer"}, ns
    )
    _pick("vlmeval/smp/misc.py", {"cn_string"}, ns)
    _pick("vlmeval/smp/vlm.py", {"build_option_str"}, ns)
    _pick("vlmeval/dataset/utils/multiple_choice.py", {"build_choices", "extract_answer_from_item", "build_prompt"}, ns)
    _pick("vlmeval/dataset/utils/mvbench.py", {"check_ans_with_model", "get_dimension_rating"}, ns)
    _pick("vlmeval/dataset/mvbench.py", {"evaluate"}, ns, cls="MVBench")
    tc = {"load": None}
    _pick(
        "vlmeval/dataset/utils/tempcompass.py",
        {
            "sys_prompt",
            "system_prompt_multi_choice",
            "system_prompt_caption_matching",
            "system_prompt_YorN",
            "eval_rule_caption_matching",
            "eval_rule_multi_choice",
            "eval_rule_YorN",
            "llm_output_to_rating",
            "evaluate_tempcompass_mcq",
            "evaluate_tempcompass_YorN",
            "get_dimension_rating",
        },
        tc,
    )
    ns["tempcompass"] = tc
    return ns


def _roundtrip(df: pd.DataFrame) -> pd.DataFrame:
    """A pandas text round trip with string cells: the default NA strings come back NaN."""
    buf = io.StringIO()
    df.to_csv(buf, sep="\t", index=False)
    return pd.read_csv(io.StringIO(buf.getvalue()), sep="\t", dtype=str).assign(index=lambda d: d["index"].astype(int))


def test_mvbench_evaluate_itself_agrees_row_for_row(vlm, tmp_path, write_json):
    from test_eval_mvbench import _build
    from test_parity_mvbench import awkward

    root = _build(tmp_path / "m", write_json, "main")
    bench = get_benchmark("mvbench", "vlmevalkit")
    items = bench.load(str(root), tasks=("action_count", "moving_direction", "action_sequence", "fine_grained_action"))
    rng = random.Random(7)
    rows = [
        dict(it, prediction=awkward(rng, it["options"], it["answer"]), error="") for _ in range(250) for it in items
    ]
    rows = [r for r in rows if "\t" not in r["prediction"]]  # keep the TSV proxy honest
    table = pd.DataFrame(
        {
            "index": range(len(rows)),
            "task_type": [r["task"] for r in rows],
            "question": [r["raw_question"] for r in rows],
            "answer": [r["answer_text"] for r in rows],
            "candidates": [str(list(r["options"])) for r in rows],
            "prediction": [r["prediction"] for r in rows],
        }
    )
    data = _roundtrip(table)
    store = {}

    def load(path):
        return store[path] if path in store else data

    def dump(df, path):
        store[path] = df

    vlm.update(
        load=load,
        dump=dump,
        get_file_extension=lambda f: "xlsx",
        get_intermediate_file_path=lambda f, suffix, ext=None: f"{f}{suffix}",
        build_judge=lambda **k: pytest.fail("no judge may be built under exact_matching"),
    )
    vlm["osp"] = type("osp", (), {"exists": staticmethod(lambda p: p in store)})
    rating = vlm["evaluate"](None, "preds.xlsx", model="exact_matching")
    scored = store["preds.xlsx_score"]["score"].tolist()

    ours = [bench.judge(r) for r in rows]
    bad = [
        (r["prediction"], r["answer"], s, o)
        for r, s, o in zip(rows, scored, ours)
        if (True if pd.isna(s) else bool(s)) != o["correct"]
    ]
    assert not bad, f"{len(bad)} of {len(rows)} rows disagree, e.g. {bad[:5]}"
    assert sum(pd.isna(s) for s in scored) == sum(1 for o in ours if o.get("unscored_nan")) > 10

    s = bench.score(rows)
    for task in ("action_count", "moving_direction", "action_sequence", "fine_grained_action"):
        assert rating[task][:2] == s[f"task_count/{task}"], task
        assert rating[task][2] == f"{s[f'task/{task}']:.2f}%"
    assert rating["overall"][2] == f"{s['overall']:.2f}%"


def test_tempcompass_rules_agree_row_for_row(vlm, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from test_parity_tempcompass import awkward, make_rows

    tc = vlm["tempcompass"]
    rng = random.Random(21)
    (tmp_path / "videos").mkdir()
    for tt in ("multi-choice", "yes_no", "caption_matching"):
        recs = make_rows(rng, tt, 150)
        (tmp_path / tt).mkdir()
        pq.write_table(pa.Table.from_pylist(recs), tmp_path / tt / "test-00000-of-00001.parquet")
        for r in recs:
            (tmp_path / "videos" / f"{r['video_id']}.mp4").write_bytes(b"")
    bench = get_benchmark("tempcompass", "vlmevalkit")
    items = bench.load(str(tmp_path))
    rows = [dict(it, prediction=awkward(rng, it), error="") for _ in range(4) for it in items]
    rows = [r for r in rows if "\t" not in r["prediction"]]
    preds = _roundtrip(pd.DataFrame({"index": range(len(rows)), "prediction": [r["prediction"] for r in rows]}))[
        "prediction"
    ]
    theirs, scored_rows = [], []
    for r, p in zip(rows, preds):
        ours = bench.judge(r)
        if pd.isna(p):  # upstream cannot score it
            assert ours.get("unscorable_nan") and not ours["correct"]
            if r["task_type"] == "multi-choice":
                with pytest.raises(AttributeError):
                    tc["eval_rule_multi_choice"]({"prediction": p, "answer": r["answer"]})
            continue
        line = {
            "question": r["raw_question"].split("\n")[0],
            "answer": r["answer"],
            "prediction": p,
            "task_type": r["task_type"],
            "candidates": str(r["raw_question"].split("\n")[1:]),
        }
        res = (tc["evaluate_tempcompass_YorN"] if r["task_type"] == "yes_no" else tc["evaluate_tempcompass_mcq"])(
            None, line
        )
        theirs.append(res["rating"])
        scored_rows.append(r)
        assert (res["rating"] == 1) == ours["correct"], (r["task_type"], p, r["answer"], res, ours)
        assert (not res["match_success"]) == bool(ours.get("needs_judge")), (p, res, ours)
    assert len(scored_rows) > 1000

    frame = pd.DataFrame(
        {"dim": [r["dim"] for r in scored_rows], "task_type": [r["task_type"] for r in scored_rows], "score": theirs}
    )
    tc["load"] = lambda path: frame
    board = tc["get_dimension_rating"]("score.xlsx")
    s = bench.score(scored_rows)
    for key, (success, total) in board.items():
        dim, tt = key.split(". ")
        assert s[f"{tt}/{dim}"] == pytest.approx(100 * success / total), key
    assert s["overall"] == pytest.approx(100 * sum(v[0] for v in board.values()) / sum(v[1] for v in board.values()))
