"""Clustered bootstrap: deterministic by seed, resamples clusters, accepts scorer dicts."""

import pytest

from videosft.benchmarks import get_benchmark
from videosft.eval.bootstrap import clustered_bootstrap_ci


def acc(rows):
    return 100.0 * sum(r["ok"] for r in rows) / len(rows)


def _rows(n_clusters=10, per=10):
    # half the clusters all right, half all wrong: strongly correlated within a cluster
    return [{"cluster": f"c{c}", "ok": c % 2 == 0} for c in range(n_clusters) for _ in range(per)]


def test_deterministic_by_seed():
    rows = _rows()
    a = clustered_bootstrap_ci(rows, acc, n_boot=200, seed=3)
    assert a == clustered_bootstrap_ci(rows, acc, n_boot=200, seed=3)
    assert a != clustered_bootstrap_ci(rows, acc, n_boot=200, seed=4)
    lo, hi = a
    assert 0.0 <= lo < 50.0 < hi <= 100.0


def test_clusters_widen_the_interval():
    rows = _rows()
    lo_c, hi_c = clustered_bootstrap_ci(rows, acc, n_boot=400, seed=0)
    per_row = [dict(r, row_id=i) for i, r in enumerate(rows)]
    lo_r, hi_r = clustered_bootstrap_ci(per_row, acc, cluster_key="row_id", n_boot=400, seed=0)
    assert (hi_c - lo_c) > 2 * (hi_r - lo_r)  # 10 effective samples, not 100


def test_constant_metric_gives_a_point():
    rows = [{"cluster": str(i % 3), "ok": True} for i in range(9)]
    assert clustered_bootstrap_ci(rows, acc, n_boot=50) == (100.0, 100.0)


def test_accepts_benchmark_scorer_dicts():
    # MME rows: two questions per image; acc+ must treat a twice-drawn image as two images
    rows = []
    for img in range(6):
        for k in range(2):
            rows.append(
                {
                    "id": f"{img}#{k}",
                    "cluster": f"existence/{img}.jpg",
                    "category": "existence",
                    "answer": "yes",
                    "prediction": "yes" if img < 3 else ("yes" if k == 0 else "no"),
                }
            )
    point = get_benchmark("mme").score(rows)["overall"]
    lo, hi = clustered_bootstrap_ci(rows, get_benchmark("mme").score, n_boot=200, seed=1)
    assert lo <= point <= hi and hi <= 100.0


def test_bad_arguments():
    with pytest.raises(ValueError):
        clustered_bootstrap_ci([], acc)
    with pytest.raises(ValueError):
        clustered_bootstrap_ci(_rows(), acc, alpha=1.5)
    with pytest.raises(KeyError, match="cluster"):
        clustered_bootstrap_ci([{"ok": True}], acc)


def test_headline_ci_block():
    from videosft.eval.bootstrap import headline_ci

    score = get_benchmark("synthetic_video").score
    rows = [
        {
            "id": f"q{i}",
            "cluster": f"v{i % 5}",
            "answer": "red",
            "prediction": "red" if i % 3 else "blue",
            "task": "colour",
            "min_frames": 1,
            "options": ["red", "blue"],
        }
        for i in range(20)
    ]
    ci = headline_ci(rows, score, n_boot=300, seed=7)
    assert ci == headline_ci(rows, score, n_boot=300, seed=7)
    assert ci["low"] <= score(rows)["overall"] <= ci["high"]
    assert (ci["level"], ci["n_clusters"], ci["resamples"], ci["seed"], ci["metric"]) == (0.95, 5, 300, 7, "overall")
    narrow = headline_ci(rows, score, n_boot=300, seed=7, level=0.5)
    assert ci["low"] <= narrow["low"] <= narrow["high"] <= ci["high"]
    no_cluster = [{k: v for k, v in r.items() if k != "cluster"} for r in rows]  # each row its own cluster
    assert headline_ci(no_cluster, score, n_boot=50)["n_clusters"] == 20
    assert headline_ci([], score) is None and headline_ci(rows, score, n_boot=0) is None
