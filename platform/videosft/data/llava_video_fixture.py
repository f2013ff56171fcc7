"""A tiny LLaVA-Video-178K in exactly the published layout, for tests and the curation demo.

Ten subsets covering every naming pattern the dataset card uses (academic / youtube with `_v0_1`
and three formats; activitynet open-ended only; perceptiontest multiple-choice only; nextqa
open-ended + multiple-choice without `_v0_1`), annotation JSON lists with the published fields
(`id`, `conversations` with `<image>\\n` in the first human turn, `data_source`, `video`), and
videos in `<subset>_videos_<N>.tar.gz` archives of tiny real mp4s named by the rows' `video` paths.

Awkward cases a curator must survive are built in and returned by name: every video's id appears
in its subset's caption and QA files; open-ended files hold two rows per video; one annotated video
is in no archive; one archived video is corrupt; one id (same video) appears in two subsets; and
one archive carries a `../` member and a symlink that must never be written.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from videosft.data import media_fixtures as mf
from videosft.data.llava_video import subset_source

FIXTURE_SUBSETS = (
    "0_30_s_academic_v0_1",
    "0_30_s_youtube_v0_1",
    "0_30_s_activitynet",
    "0_30_s_perceptiontest",
    "0_30_s_nextqa",
    "30_60_s_academic_v0_1",
    "30_60_s_youtube_v0_1",
    "1_2_m_nextqa",
    "2_3_m_academic_v0_1",
    "2_3_m_activitynet",
)
_FORMATS = {
    "academic_v0_1": ("cap", "oe", "mc"),
    "youtube_v0_1": ("cap", "oe", "mc"),
    "activitynet": ("oe",),
    "perceptiontest": ("mc",),
    "nextqa": ("oe", "mc"),
}
# Folder prefixes inside the archives, after the published rows' `video` paths (illustrative: the
# curator only ever matches a row's `video` against the archive's member names).
_PREFIX = {
    "academic_v0_1": "academic_source/Charades",
    "youtube_v0_1": "liwei_youtube_videos/videos/youtube_video_2024",
    "activitynet": "ActivityNet-QA/all_test",
    "perceptiontest": "perception_test/videos",
    "nextqa": "NextQA/NExTVideo",
}
DURATIONS_S = (1.0, 2.0, 4.0)  # the tiny videos' real durations (8 frames at 8, 4, 2 fps)
_WORDS = "person table door red blue opens walks holds cup slowly then quickly left right box ball".split()


def _file_name(subset: str, kind: str) -> str:
    stem = subset.removesuffix("_v0_1")
    ver = "_v0_1" if subset.endswith("_v0_1") else ""
    return f"{stem}{ver}_cap_processed.json" if kind == "cap" else f"{stem}_{kind}{ver}_qa_processed.json"


def _sentence(k: int, n: int) -> str:
    return " ".join(_WORDS[(k * 7 + i * 3) % len(_WORDS)] for i in range(n))


def _rows(subset: str, kind: str, vid: str, video: str, k: int) -> list[dict[str, Any]]:
    def row(question: str, answer: str) -> dict[str, Any]:
        return {
            "id": vid,
            "conversations": [{"from": "human", "value": "<image>\n" + question}, {"from": "gpt", "value": answer}],
            "data_source": subset,
            "video": video,
        }

    if kind == "cap":
        return [row("Please describe this video in detail.", _sentence(k, 12 + k % 5))]
    if kind == "oe":
        return [
            row(f"What does the {_WORDS[k % 5]} do?", _sentence(k, 4 + k % 3)),
            row("What happens after that?", _sentence(k + 1, 3 + k % 4)),
        ]
    return [
        row(
            f"Which object moves first?\nA. {_WORDS[k % 7]}\nB. {_WORDS[(k + 1) % 7]}\nC. ball\nD. box\n"
            "Please respond with only the letter of the correct answer.",
            "AB"[k % 2] + ".",
        )
    ]


def make_llava_video_fixture(root: str | Path, *, videos_per_subset: int = 6) -> dict[str, Any]:
    """Write the fixture under `root`; returns the awkward cases' ids and the subsets written."""
    root = Path(root)
    scratch = Path(tempfile.mkdtemp(prefix="llava_fixture_"))
    try:
        clips = {
            d: mf.write_video(str(scratch / f"clip{d:g}.mp4"), 8, (32, 24), fps=8.0 / d, gop=4) for d in DURATIONS_S
        }
        corrupt = mf.write_truncated_mp4(str(scratch / "corrupt.mp4"), 16, keep_fraction=0.3)
        cases: dict[str, Any] = {
            "missing_member": "",
            "corrupt": "",
            "cross_source_duplicate": "dup_activitynet_0001",
            "unsafe_archive": "",
            "subsets": list(FIXTURE_SUBSETS),
        }
        for s_index, subset in enumerate(FIXTURE_SUBSETS):
            source = subset_source(subset)
            folder = root / subset
            folder.mkdir(parents=True, exist_ok=True)
            videos = []
            for k in range(videos_per_subset):
                vid = f"{source.split('_')[0]}_{subset.split('_')[0]}{subset.split('_')[1]}_{k:04d}"
                videos.append((vid, f"{_PREFIX[source]}/{vid}.mp4", k))
            if source == "activitynet":  # one video in two subsets, same id and file
                videos.append(
                    (cases["cross_source_duplicate"], f"{_PREFIX[source]}/{cases['cross_source_duplicate']}.mp4", 99)
                )
            members = {video: clips[DURATIONS_S[(k + s_index) % len(DURATIONS_S)]] for _, video, k in videos}
            if subset == "0_30_s_youtube_v0_1":  # annotated, never archived
                cases["missing_member"] = videos[-1][0]
                members.pop(videos[-1][1])
            if subset == "0_30_s_academic_v0_1":  # archived, cannot be decoded
                cases["corrupt"] = videos[0][0]
                members[videos[0][1]] = corrupt
            for kind in _FORMATS[source]:
                rows = [r for vid, video, k in videos for r in _rows(subset, kind, vid, video, k)]
                (folder / _file_name(subset, kind)).write_text(json.dumps(rows, indent=1))
            names = sorted(members)
            parts = [names[: len(names) // 2], names[len(names) // 2 :]] if source == "academic_v0_1" else [names]
            for n, part in enumerate(parts, start=1):
                archive = folder / f"{subset}_videos_{n}.tar.gz"
                unsafe = subset == "30_60_s_youtube_v0_1"
                _write_archive(archive, {m: members[m] for m in part}, unsafe=unsafe)
                if unsafe:
                    cases["unsafe_archive"] = str(archive)
        (root / "README.md").write_text("Tiny LLaVA-Video-178K layout fixture (videosft.data.llava_video_fixture).\n")
        return cases
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_archive(path: Path, members: dict[str, str], *, unsafe: bool = False) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, source in sorted(members.items()):
            tar.add(source, arcname=name)
        if unsafe:  # what safe extraction must refuse: a traversal and a link out of the root
            data = b"not a video"
            info = tarfile.TarInfo("../escaped.mp4")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            link = tarfile.TarInfo("liwei_youtube_videos/link.mp4")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(link)
