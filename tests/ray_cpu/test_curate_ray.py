"""`curate`'s decodable filter on Ray Data tasks: the corrupt archive member is probed, dropped,
counted and replaced from its cell, exactly as the in-process probe does."""

from __future__ import annotations

import json

from videosft.data.curate import CurateConfig, curate
from videosft.data.llava_video_fixture import make_llava_video_fixture


def test_decodable_filter_on_ray_matches_local(local_ray, tmp_path):
    root = tmp_path / "root"
    cases = make_llava_video_fixture(root, videos_per_subset=4)
    common = dict(
        data_root=str(root),
        num_videos=8,
        decodable=True,
        source_weights={"0_30_s_academic_v0_1": 1, "0_30_s_activitynet": 1},
    )
    on_ray = curate(CurateConfig(out_dir=str(tmp_path / "ray"), probe_engine="ray", probe_concurrency=2, **common))
    local = curate(CurateConfig(out_dir=str(tmp_path / "local"), probe_engine="local", **common))
    rows = json.loads(open(on_ray["manifest"]).read())
    assert len(rows) == 8 and cases["corrupt"] not in {r["id"] for r in rows}
    assert sum(on_ray["stats"]["draw"]["rejected"].values()) == 1

    def strip(res):
        return [(r["id"], r["format"], r["duration"]) for r in json.loads(open(res["manifest"]).read())]

    assert strip(on_ray) == strip(local)
