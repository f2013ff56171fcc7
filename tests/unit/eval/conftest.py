"""Fixture builders for benchmark tests: tiny files in the published layouts, made in tmp_path."""

import base64
import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def _png(tag: str) -> bytes:
    # Loaders never decode images (engines do), so a PNG signature plus a tag is enough.
    return b"\x89PNG\r\n\x1a\n" + tag.encode()


@pytest.fixture
def png():
    return _png


@pytest.fixture
def b64png():
    return lambda tag: base64.b64encode(_png(tag)).decode()


@pytest.fixture
def write_parquet():
    def write(path, rows):
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), path)
        return path

    return write


@pytest.fixture
def write_tsv():
    def write(path, rows):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
            w.writeheader()
            w.writerows(rows)
        return path

    return write


@pytest.fixture
def write_json():
    def write(path, obj):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj))
        return path

    return write


@pytest.fixture
def predict():
    """Attach predictions (by item id) to loaded items, as the runner does."""

    def attach(items, by_id):
        missing = set(by_id) - {i["id"] for i in items}
        assert not missing, f"predictions for unknown ids {missing}"
        return [dict(i, prediction=by_id.get(i["id"], "")) for i in items]

    return attach


@pytest.fixture
def judge_rows():
    """(extracted, correct) lists from a benchmark's per-row judge, each verdict checked for shape:
    {"extracted": non-empty str | None, "correct": bool}; correct implies something was extracted;
    an empty or failed prediction is {None, False}."""

    def run(bench, rows):
        verdicts = [bench.judge(r) for r in rows]
        for r, v in zip(rows, verdicts):
            assert set(v) == {"extracted", "correct"} and isinstance(v["correct"], bool), v
            assert v["extracted"] is None or (isinstance(v["extracted"], str) and v["extracted"]), v
            assert not v["correct"] or v["extracted"] is not None, v
            if r.get("error") or not str(r.get("prediction") or "").strip():
                assert v == {"extracted": None, "correct": False}, (r.get("id"), v)
        return [v["extracted"] for v in verdicts], [v["correct"] for v in verdicts]

    return run


@pytest.fixture
def acc():
    """Accuracy (0..100) of a list of per-row correct flags."""
    return lambda oks: 100.0 * sum(oks) / len(oks)
