"""`curate` on a generated LLaVA-Video-178K in the published layout (10 subsets, tar.gz archives)."""

from __future__ import annotations

import json
import os
import shutil
import tarfile

import pytest
import yaml
from pydantic import ValidationError

from local_services import moto_s3
from videosft import schema as S
from videosft.config import load_config
from videosft.data import llava_video as lv
from videosft.data.curate import CurateConfig, CurateError, allocate, allocate_cells, curate
from videosft.data.llava_video_fixture import FIXTURE_SUBSETS, make_llava_video_fixture
from videosft.data.manifest import ManifestError, read_manifests
from videosft.workspace import Inputs, train_manifest


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    root = tmp_path_factory.mktemp("llava178k")
    cases = make_llava_video_fixture(root)
    return str(root), cases


def _cfg(root, out, **kw):
    kw.setdefault("probe_engine", "local")
    return CurateConfig(data_root=root, out_dir=str(out), **kw)


def _manifest(result):
    return json.loads(open(result["manifest"]).read())


def test_layout_names_match_the_dataset_card():
    assert lv.annotation_format("0_30_s_academic_v0_1", "0_30_s_academic_v0_1_cap_processed.json") == lv.CAPTION
    assert lv.annotation_format("0_30_s_academic_v0_1", "0_30_s_academic_oe_v0_1_qa_processed.json") == lv.OPEN_ENDED
    assert lv.annotation_format("0_30_s_academic_v0_1", "0_30_s_academic_mc_v0_1_qa_processed.json") == lv.MULTI_CHOICE
    assert lv.annotation_format("30_60_s_nextqa", "30_60_s_nextqa_oe_qa_processed.json") == lv.OPEN_ENDED
    assert lv.annotation_format("30_60_s_nextqa", "30_60_s_nextqa_mc_qa_processed.json") == lv.MULTI_CHOICE
    # other subsets' files, parquet copies and the archives are not annotations of this subset
    assert lv.annotation_format("0_30_s_academic_v0_1", "0_30_s_youtube_v0_1_cap_processed.json") is None
    assert lv.annotation_format("0_30_s_academic_v0_1", "0_30_s_academic_v0_1_cap-00000-of-00001.parquet") is None
    assert lv.annotation_format("30_60_s_nextqa", "30_60_s_nextqa_videos_1.tar.gz") is None
    assert len(lv.PUBLISHED_SUBSETS) == 18 and "2_3_m_perceptiontest" not in lv.PUBLISHED_SUBSETS
    assert set(FIXTURE_SUBSETS) <= set(lv.PUBLISHED_SUBSETS)


def test_discover_finds_the_fixture_layout(fixture):
    root, _ = fixture
    subsets = lv.discover(root)
    assert sorted(subsets) == sorted(FIXTURE_SUBSETS)
    assert sorted(subsets["0_30_s_academic_v0_1"].annotations) == sorted(lv.FORMATS)
    assert list(subsets["0_30_s_activitynet"].annotations) == [lv.OPEN_ENDED]
    assert list(subsets["0_30_s_perceptiontest"].annotations) == [lv.MULTI_CHOICE]
    assert [os.path.basename(a) for a in subsets["0_30_s_academic_v0_1"].archives] == [
        "0_30_s_academic_v0_1_videos_1.tar.gz",
        "0_30_s_academic_v0_1_videos_2.tar.gz",
    ]


def test_allocation_is_proportional_capped_and_fair():
    assert allocate(10, {"a": 1, "b": 1}, {"a": 3, "b": 100}) == {"a": 3, "b": 7}
    assert sum(allocate(7, {"a": 1, "b": 1, "c": 1}, {"a": 9, "b": 9, "c": 9}).values()) == 7
    cells = {("s1", "caption"): 0.25, ("s1", "open_ended"): 0.25, ("s2", "open_ended"): 0.5}
    got = allocate_cells(8, cells, {c: 100 for c in cells}, {"s1": 100, "s2": 100})
    assert got == {("s1", "caption"): 2, ("s1", "open_ended"): 2, ("s2", "open_ended"): 4}
    # s2 holds 1 video: the rest of its share goes to s1
    got = allocate_cells(8, cells, {c: 100 for c in cells}, {"s1": 100, "s2": 1})
    assert got[("s2", "open_ended")] == 1 and sum(got.values()) == 8


def test_same_seed_same_subset_other_seed_differs(fixture, tmp_path):
    root, _ = fixture
    first = _manifest(curate(_cfg(root, tmp_path / "a", num_videos=20, seed=3)))
    again = _manifest(curate(_cfg(root, tmp_path / "b", num_videos=20, seed=3)))
    other = _manifest(curate(_cfg(root, tmp_path / "c", num_videos=20, seed=4)))
    key = [(r["id"], r["data_source"], r["format"], r["conversations"]) for r in first]
    assert key == [(r["id"], r["data_source"], r["format"], r["conversations"]) for r in again]
    assert {r["id"] for r in first} != {r["id"] for r in other}


def test_stratified_rows_merged_and_readable_by_the_sweep(fixture, tmp_path):
    root, cases = fixture
    result = curate(_cfg(root, tmp_path, num_videos=40))
    rows = _manifest(result)
    assert len(rows) == 40 and len({r["id"] for r in rows}) == 40  # one row per video id
    per_source = {s: sum(r["data_source"] == s for r in rows) for s in FIXTURE_SUBSETS}
    assert set(per_source.values()) == {4}  # equal source weights: 40 / 10
    assert {r["format"] for r in rows if r["data_source"] == "0_30_s_perceptiontest"} == {"multi_choice"}
    for row in rows:
        assert os.path.isfile(row["video"]) and row["video"].startswith(str(tmp_path / "videos"))
        turns = row["conversations"]
        assert turns[0]["value"].startswith("<image>\n")
        assert all("<image>" not in t["value"] for t in turns[1:])
        if row["format"] == "open_ended":  # the fixture's two open-ended rows of a video, merged
            assert len(turns) == 4 and [t["from"] for t in turns] == ["human", "gpt"] * 2
    assert cases["missing_member"] not in {r["id"] for r in rows}
    parsed = read_manifests([result["manifest"]])
    assert len(parsed) == 40 and all(p[S.MEDIA_TYPE] == S.MEDIA_VIDEO for p in parsed)
    cfg = load_config(
        None, ["data.train_sources=" + json.dumps([{"manifest": result["manifest"]}]), f"output_dir={tmp_path / 'run'}"]
    )
    combined = train_manifest(cfg, Inputs(model_path="unused", data_root=str(tmp_path)))  # what the sweep reads
    assert [r["id"] for r in json.loads(open(combined).read())] == [r["id"] for r in rows]
    stats = result["stats"]
    assert stats["videos"] == 40 and sum(stats["by_format"].values()) == 40
    assert stats["draw"]["missing_media"] + stats["draw"]["short"] >= 0
    md = open(result["stats_md"]).read()
    assert "| 0_30_s_perceptiontest | 0-30 | 0 | 0 | 4 | 4 |" in md and "**all**" in md


def test_everything_drawn_dedupes_ids_and_counts_the_awkward_cases(fixture, tmp_path):
    root, cases = fixture
    result = curate(
        _cfg(
            root,
            tmp_path,
            num_videos=10_000,
            decodable=True,
            format_weights={"caption": 1, "open_ended": 2, "multi_choice": 1},
        )
    )
    rows, draw = _manifest(result), result["stats"]["draw"]
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    assert ids.count(cases["cross_source_duplicate"]) == 1  # in two subsets, one row
    assert cases["missing_member"] not in ids and cases["corrupt"] not in ids
    assert draw["missing_media"] == 1
    assert sum(draw["rejected"].values()) == 1 and any("probe" in k for k in draw["rejected"])
    # 6 videos in each of 10 subsets + the shared one, less the missing and the corrupt video
    assert len(rows) == 10 * 6 + 1 - 2 and draw["short"] == 10_000 - len(rows)
    assert not (tmp_path / "escaped.mp4").exists()


def test_duration_filter_prunes_buckets_and_probes(fixture, tmp_path):
    root, _ = fixture
    result = curate(
        _cfg(
            root,
            tmp_path,
            num_videos=12,
            duration_s=(1.5, 30.0),
            source_weights={"0_30_s_nextqa": 1, "1_2_m_nextqa": 1},
        )
    )
    rows = _manifest(result)
    assert rows and {r["data_source"] for r in rows} == {"0_30_s_nextqa"}  # 1_2_m cannot hold <= 30 s
    assert all(1.5 <= r["duration"] <= 30.0 for r in rows)
    assert any("duration" in k for k in result["stats"]["draw"]["rejected"])


def test_videos_root_reads_user_extracted_videos(fixture, tmp_path):
    root, _ = fixture
    extracted = tmp_path / "extracted" / "0_30_s_activitynet"
    extracted.mkdir(parents=True)
    with tarfile.open(os.path.join(root, "0_30_s_activitynet", "0_30_s_activitynet_videos_1.tar.gz")) as tar:
        tar.extractall(extracted, filter="data")
    os.remove(next(p for p in extracted.rglob("*.mp4")))  # one the user lost
    result = curate(
        _cfg(
            root,
            tmp_path / "out",
            num_videos=50,
            source_weights={"0_30_s_activitynet": 1},
            videos_root=str(tmp_path / "extracted" / "{subset}"),
        )
    )
    rows = _manifest(result)
    assert len(rows) == 6 and all(r["video"].startswith(str(extracted)) for r in rows)
    assert result["stats"]["draw"]["missing_media"] == 1 and result["stats"]["draw"]["rejected"] == {}
    assert not (tmp_path / "out" / "videos").exists()  # nothing extracted


def test_safe_extraction_refuses_traversal_and_links(fixture, tmp_path):
    _, cases = fixture
    members = lv.list_archive(cases["unsafe_archive"])
    assert "../escaped.mp4" not in members and "liwei_youtube_videos/link.mp4" not in members
    assert lv.member_name("../x.mp4") is None and lv.member_name("/abs.mp4") is None
    assert lv.member_name("./a/b.mp4") == "a/b.mp4"
    got = lv.extract_members(
        cases["unsafe_archive"], ["../escaped.mp4", "liwei_youtube_videos/link.mp4"], tmp_path / "x"
    )
    assert got == {} and not (tmp_path / "escaped.mp4").exists() and not (tmp_path / "x").exists()


def test_settings_are_validated_before_work(fixture, tmp_path):
    root, _ = fixture
    with pytest.raises(ValidationError, match="source_weights"):
        CurateConfig(data_root=root, out_dir=str(tmp_path), source_weights={"academic": 1})
    with pytest.raises(ValidationError, match="duration_s"):
        CurateConfig(data_root=root, out_dir=str(tmp_path), duration_s=(30, 10))
    with pytest.raises(ValidationError, match="format_weights"):
        CurateConfig(data_root=root, out_dir=str(tmp_path), format_weights={"caption": 0})
    with pytest.raises(ValidationError, match="num_videos"):
        CurateConfig(data_root=root, out_dir=str(tmp_path), num_videos=0)
    with pytest.raises(CurateError, match="2_3_m_youtube_v0_1"):
        curate(_cfg(root, tmp_path, source_weights={"2_3_m_youtube_v0_1": 1}))


def test_malformed_annotation_names_file_row_and_field(fixture, tmp_path):
    root, _ = fixture
    copy = tmp_path / "root"
    shutil.copytree(os.path.join(root, "0_30_s_perceptiontest"), copy / "0_30_s_perceptiontest")
    path = copy / "0_30_s_perceptiontest" / "0_30_s_perceptiontest_mc_qa_processed.json"
    rows = json.loads(path.read_text())
    del rows[2]["video"]
    path.write_text(json.dumps(rows))
    with pytest.raises(ManifestError, match=r"perceptiontest_mc_qa_processed.json: row 2 .*field 'video'"):
        curate(_cfg(str(copy), tmp_path / "out", num_videos=3))


def test_curate_from_s3(fixture, tmp_path, monkeypatch):
    """Annotations listed and streamed, archives listed and extracted, over a live S3 endpoint."""
    root, _ = fixture
    with moto_s3(monkeypatch, "bucket") as client:
        for subset in ("0_30_s_academic_v0_1", "1_2_m_nextqa"):
            for name in os.listdir(os.path.join(root, subset)):
                client.upload_file(os.path.join(root, subset, name), "bucket", f"llava/{subset}/{name}")
        result = curate(_cfg("s3://bucket/llava", tmp_path, num_videos=8, decodable=True))
    rows = _manifest(result)
    assert len(rows) == 8 and {r["data_source"] for r in rows} == {"0_30_s_academic_v0_1", "1_2_m_nextqa"}
    assert all(os.path.isfile(r["video"]) for r in rows)
    assert result["stats"]["draw"]["rejected"] in ({}, {"probe: no moov atom / not a video container": 1})


def test_cli_verb_and_job_share_settings(fixture, tmp_path, capsys):
    from videosft.cli import main

    root, _ = fixture
    assert (
        main(
            [
                "curate",
                "--data-root",
                root,
                "--out",
                str(tmp_path),
                "--num-videos",
                "10",
                "--source-weights",
                '{"0_30_s_nextqa": 1}',
                "--probe-engine",
                "local",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| 0_30_s_nextqa | 0-30 |" in out and "curated.json" in out
    assert main(["curate", "--data-root", root, "--out", str(tmp_path), "--duration", "9,3"]) == 2
    assert "duration_s" in capsys.readouterr().err


def test_cut_archive_keeps_the_members_before_the_damage(fixture, tmp_path):
    root, _ = fixture
    copy = tmp_path / "root" / "0_30_s_activitynet"
    shutil.copytree(os.path.join(root, "0_30_s_activitynet"), copy)
    archive = copy / "0_30_s_activitynet_videos_1.tar.gz"
    whole = len(lv.list_archive(str(archive)))
    data = archive.read_bytes()
    archive.write_bytes(data[: int(len(data) * 0.6)])  # a download cut at 60%
    with pytest.raises(ManifestError, match="cannot read video archive"):
        lv.list_archive(str(archive))
    result = curate(_cfg(str(tmp_path / "root"), tmp_path / "out", num_videos=50, decodable=True))
    rows, draw = _manifest(result), result["stats"]["draw"]
    assert 0 < len(rows) < whole and all(os.path.isfile(r["video"]) for r in rows)
    assert list(draw["archive_errors"]) == [str(archive)] and draw["missing_media"] == whole - len(rows)
    assert "not readable to their end" in open(result["stats_md"]).read()


def test_merge_formats_and_settings_yaml(fixture, tmp_path, capsys):
    from videosft.cli import main

    root, _ = fixture
    settings = tmp_path / "curate.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "data_root": root,
                "out_dir": str(tmp_path / "out"),
                "num_videos": 3,
                "probe_engine": "local",
                "merge_formats": True,
                "source_weights": {"2_3_m_academic_v0_1": 1},
                "format_weights": {"caption": 1, "open_ended": 0, "multi_choice": 0},
            }
        )
    )
    assert main(["curate", "--settings", str(settings), "--seed", "5"]) == 0
    rows = json.loads((tmp_path / "out" / "curated.json").read_text())
    assert json.loads((tmp_path / "out" / "curate_config.json").read_text())["seed"] == 5  # flags win
    assert len(rows) == 3 and {r["format"] for r in rows} == {"caption"}
    for row in rows:  # caption (1 turn) + its two open-ended rows + its multiple-choice row
        turns = row["conversations"]
        assert len(turns) == 8 and turns[0]["value"].startswith("<image>\nPlease describe")
        assert sum("<image>" in t["value"] for t in turns) == 1
