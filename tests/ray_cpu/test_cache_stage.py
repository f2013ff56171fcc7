"""Decode-once cache on a real local Ray cluster: written once, resumable, exact at every budget."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from videosft import schema as S
from videosft.data import media_fixtures as mf
from videosft.data.cache import CacheMismatch, prepare_cache, read_cached
from videosft.data.pipeline import DecodeStage
from videosft.data.sampling import SamplingContract

pytestmark = pytest.mark.ray

CONTRACT = SamplingContract()
LENGTHS = {"v24": 24, "v5": 5, "v40": 40}


def _row(ident: str, path: str, media: str = S.MEDIA_VIDEO) -> dict:
    return {S.ID: ident, S.MEDIA_TYPE: media, S.MEDIA_PATH: path, S.QUESTION: "q", S.ANSWER: "a", S.CONVERSATIONS: "[]"}


@pytest.fixture(scope="module")
def built(local_ray, tmp_path_factory):
    """A cache built in two runs (the second resumes), then a third run that must do nothing."""
    media = tmp_path_factory.mktemp("media")
    rows = [_row(k, mf.write_video(str(media / f"{k}.mp4"), n, gop=6)) for k, n in LENGTHS.items()]
    rows += [
        _row("img", mf.write_image(str(media / "i.png"), 7), S.MEDIA_IMAGE),
        _row("txt", "", S.MEDIA_TEXT),
        _row("html", mf.write_text_as_video(str(media / "html.mp4"))),
        _row("empty", mf.write_empty(str(media / "empty.mp4"))),
    ]
    root = str(tmp_path_factory.mktemp("cache"))
    opts = {"concurrency": 1, "cpus": 0.5, "timeout_s": 30, "max_failure_ratio": 0.5}
    held_back = [r for r in rows if r[S.ID] != "img"]  # an image: the resume run starts no decoder child
    first = prepare_cache(held_back, CONTRACT, [2, 4, 8], root, **opts)
    second = prepare_cache(rows, CONTRACT, [8, 4, 2], root, **opts)
    stamps = {
        f: os.stat(os.path.join(d, f)).st_mtime_ns
        for d, _, fs in os.walk(second.path)
        for f in fs
        if f.endswith(".parquet")
    }
    third = prepare_cache(rows, CONTRACT, [2, 4, 8], root, **opts)
    return {"rows": rows, "root": root, "runs": (first, second, third), "stamps": stamps}


def test_each_video_is_decoded_once_and_resumes(built):
    first, second, third = built["runs"]
    assert (first.decoded, second.decoded, third.decoded) == (6, 1, 0)
    assert third.parts == ("part-00000", "part-00001") and third.total == 7 and third.max_budget == 8
    after = {
        f: os.stat(os.path.join(d, f)).st_mtime_ns
        for d, _, fs in os.walk(third.path)
        for f in fs
        if f.endswith(".parquet")
    }
    assert after == built["stamps"] and after  # nothing rewritten


def test_corrupt_media_land_in_rejects_and_nothing_else_is_lost(built):
    info = built["runs"][2]
    rejects = {r["id"]: r for r in map(json.loads, open(info.rejects_path).read().splitlines())}
    assert set(rejects) == {"html", "empty"} and info.rejected == 2
    assert "text" in rejects["html"]["reason"] and "empty" in rejects["empty"]["reason"]
    assert rejects["html"]["path"].endswith("html.mp4") and rejects["html"]["stage"] == "prepare-cache"
    ids = {r[S.ID] for r in read_cached(built["root"], CONTRACT, 8).select_columns([S.ID]).take_all()}
    assert ids == {r[S.ID] for r in built["rows"]}


def test_ids_select_one_manifest_and_unknown_ids_are_refused(built):
    got = read_cached(built["root"], CONTRACT, 4, ids=["v5", "txt"]).select_columns([S.ID]).take_all()
    assert sorted(r[S.ID] for r in got) == ["txt", "v5"]
    with pytest.raises(CacheMismatch, match="1 ids are not in the cache"):
        read_cached(built["root"], CONTRACT, 4, ids=["v5", "not-prepared"])


def _same(value, expected) -> bool:
    if isinstance(expected, np.ndarray):
        return value.dtype == expected.dtype and np.array_equal(value, expected)
    return value == expected


@pytest.fixture(scope="module")
def stage():
    """The callable decoded_dataset runs on its actors, run in-process as the reference."""
    decode = DecodeStage(CONTRACT.model_dump(), None, timeout_s=30)
    yield decode
    decode.decoder.close()


@pytest.mark.parametrize("budget", [2, 4, 8])
def test_read_cached_equals_a_direct_decode_at_that_budget(built, stage, budget):
    cached = {r[S.ID]: r for r in read_cached(built["root"], CONTRACT, budget).take_all()}
    stage.budget = budget
    direct = {r[S.ID]: stage(r) for r in built["rows"]}
    for ident, want in direct.items():
        got = cached[ident]
        assert {k for k, v in got.items() if v is not None} == set(want), ident
        bad = [k for k in want if not _same(got[k], want[k])]
        assert not bad, f"{ident}: columns differ: {bad}"
    for ident, total in LENGTHS.items():
        frames = cached[ident][S.FRAMES]
        assert [mf.read_index(f) for f in frames] == CONTRACT.frame_indices(total, 8.0, budget).tolist()


def test_interrupted_prepare_redoes_only_unfinished_parts(local_ray, tmp_path, monkeypatch):
    """A run killed after writing a part but before committing it: the re-run keeps the committed
    part untouched, drops the orphan, and decodes only the rows no committed part holds."""
    from videosft.data import cache as cache_module
    from videosft.data.cache import MANIFEST, plan_cache

    clips = [mf.write_video(str(tmp_path / f"c{i}.mp4"), 8, gop=4) for i in range(2)]
    rows = [_row(f"r{i}", clips[i // 4]) if i % 4 == 0 else _row(f"r{i}", "", S.MEDIA_TEXT) for i in range(6)]
    root, opts = str(tmp_path / "cache"), {"concurrency": 1, "cpus": 0.5, "timeout_s": 30, "commit_every": 3}
    real, written = cache_module._write_part, []

    def dies_before_the_second_commit(chunk, *args, **kwargs):
        written.append([r[S.ID] for r in chunk])
        real(chunk, *args, **kwargs)  # the part's parquet files exist ...
        if len(written) == 2:
            raise KeyboardInterrupt  # ... but the run is killed before listing it

    monkeypatch.setattr(cache_module, "_write_part", dies_before_the_second_commit)
    with pytest.raises(KeyboardInterrupt):
        prepare_cache(iter(rows), CONTRACT, [4], root, **opts)  # streamed, as `videosft prepare` does
    path = cache_module.cache_dir(root, CONTRACT, 4)
    assert [p["name"] for p in json.load(open(os.path.join(path, MANIFEST)))["parts"]] == ["part-00000"]
    assert os.path.isdir(os.path.join(path, "part-00001"))  # the orphan
    kept = {
        f: os.stat(os.path.join(d, f)).st_mtime_ns for d, _, fs in os.walk(os.path.join(path, "part-00000")) for f in fs
    }
    plan = plan_cache(iter(rows), CONTRACT, [4], root, commit_every=3)
    assert (plan.total, plan.cached, plan.parts) == (6, 3, (3,))

    monkeypatch.setattr(
        cache_module,
        "_write_part",
        lambda chunk, *a, **k: (written.append([r[S.ID] for r in chunk]), real(chunk, *a, **k)),
    )
    info = prepare_cache(iter(rows), CONTRACT, [4], root, **opts)
    assert written[2:] == [["r3", "r4", "r5"]]  # only the unfinished rows
    assert (info.total, info.decoded, info.parts) == (6, 3, ("part-00000", "part-00001"))
    assert {
        f: os.stat(os.path.join(d, f)).st_mtime_ns for d, _, fs in os.walk(os.path.join(path, "part-00000")) for f in fs
    } == kept
    ids = sorted(r[S.ID] for r in read_cached(root, CONTRACT, 4).select_columns([S.ID]).take_all())
    assert ids == sorted(r[S.ID] for r in rows)  # every row once: the orphan's rows were not doubled
