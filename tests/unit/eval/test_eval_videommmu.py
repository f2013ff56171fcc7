"""Video-MMMU: published layouts (HF lmms-lab/VideoMMMU per-track folders, VLMEvalKit's VideoMMMU.tsv), both
protocols' prompts, parsing, empties and aggregation by hand (lmms-eval parity at scale: test_parity_videommmu.py)."""

import json

import pytest

from videosft.benchmarks import get_benchmark
from videosft.benchmarks._io import BenchmarkDataError
from videosft.benchmarks.videommmu import OPTIONS, eval_open, parse_open_response, subject_of, vlm_parse_multi_choice

PERCEPTION = [
    {
        "id": "Perception_Art_Theory_1",
        "question": "Which painter?",
        "options": ["A. Monet", "B. Manet"],
        "answer": "B",
        "question_type": "multiple-choice",
    },
    {
        "id": "Perception_Physics_2",
        "question": "What unit?",
        "options": ["N", "J", "W"],
        "answer": "A",
        "question_type": "multiple-choice",
    },
]
COMPREHENSION = [
    {
        "id": "Comprehension_Physics_2",
        "question": "Which law?",
        "options": ["first", "second", "third"],
        "answer": "C",
        "question_type": "multiple-choice",
    }
]
ADAPTATION = [
    {
        "id": "Adaptation_Art_Theory_1",
        "question": "Which style?",
        "options": ["cubism", "fauvism"],
        "answer": "B",
        "question_type": "multiple-choice",
    },
    {
        "id": "Adaptation_Physics_2",
        "question": "What is g in m/s^2?",
        "options": [],
        "answer": "9.8",
        "question_type": "open",
    },
]
TAIL = "\nPlease ignore the Quiz question in last frame of the video."
ADAPT = "You should watch and learn the video content. Then apply what you learned to "


@pytest.fixture
def vm_root(tmp_path, write_parquet):
    """lmms-lab/VideoMMMU as downloaded: <Track>/test-00000-of-00001.parquet, videos unpacked from
    Art.zip / Science.zip / ... into <Discipline>/<id>.mp4."""
    for track, rows in (("Perception", PERCEPTION), ("Comprehension", COMPREHENSION), ("Adaptation", ADAPTATION)):
        write_parquet(tmp_path / track / "test-00000-of-00001.parquet", rows)
        for r in rows:
            disc = "Art" if "_Art_" in r["id"] else "Science"
            (tmp_path / disc).mkdir(exist_ok=True)
            (tmp_path / disc / f"{r['id']}.mp4").touch()
    return tmp_path


def _rows(items, preds):
    return [dict(it, prediction=p, error="") for it, p in zip(items, preds)]


def test_registry_protocols_options_and_lengths():
    lm, vk = get_benchmark("videommmu"), get_benchmark("videommmu", "vlmevalkit")
    assert (lm.protocol, vk.protocol, lm.max_new_tokens, vk.max_new_tokens) == ("lmms_eval", "vlmevalkit", 1024, 1024)
    assert lm.options == vk.options == OPTIONS and {"layout", "video_dir", "tracks", "splits"} <= set(OPTIONS)
    assert subject_of("Perception_Art_Theory_12") == "Art_Theory"


def test_hf_layout_items_and_lmms_prompts(vm_root):
    items = get_benchmark("videommmu").load(str(vm_root))
    assert [i["id"] for i in items] == [
        "Perception/Perception_Art_Theory_1",
        "Perception/Perception_Physics_2",
        "Comprehension/Comprehension_Physics_2",
        "Adaptation/Adaptation_Art_Theory_1",
        "Adaptation/Adaptation_Physics_2",
    ]
    assert items[0]["media_path"] == str(vm_root / "Art" / "Perception_Art_Theory_1.mp4")
    # videommmu_doc_to_text_perception_comprehension: lettered options kept, others lettered
    assert items[0]["question"] == "Which painter?\nA. Monet\nB. Manet" + TAIL
    assert items[1]["question"] == "What unit?\nA. N\nB. J\nC. W" + TAIL
    assert items[3]["question"] == (
        ADAPT + "answer the following multi-choice question. The image for this question "
        "is at the end of the video.\nWhich style?\nA. cubism\nB. fauvism"
    )
    assert items[4]["question"] == (
        ADAPT + "answer the following open-ended question. The image for this question is "
        "at the end of the video.\nWhat is g in m/s^2?"
    )
    assert [i["id"] for i in get_benchmark("videommmu").load(str(vm_root), splits=["adaptation"])] == [
        "Adaptation/Adaptation_Art_Theory_1",
        "Adaptation/Adaptation_Physics_2",
    ]


def test_lmms_judge_empties_and_scores_by_hand(vm_root):
    bench = get_benchmark("videommmu")
    items = bench.load(str(vm_root))
    # MC: extract_mcq_answer over the row's letters; open: MMMU parse_open_response / eval_open
    preds = ["B", "", "The answer is (C).", "I pick fauvism", ""]
    v = [bench.judge(r) for r in _rows(items, preds)]
    assert [x["extracted"] for x in v] == ["B", None, "C", None, None]
    assert [x["correct"] for x in v] == [True, False, True, False, False]
    assert [x.get("excluded", False) for x in v] == [False, False, False, False, True]  # only the empty open answer
    assert v[3]["lenient"] == "B"  # our extractor reads the option text; an extra column, never the headline
    s = bench.score(_rows(items, preds))
    assert s["track/Perception"] == 50.0 and s["track/Comprehension"] == 100.0
    assert s["track/Adaptation"] == 0.0 and s["excluded/Adaptation"] == 1  # denominator 1: the open row dropped
    assert s["mmmu_acc/Perception"] == 0.5 and s["overall"] == pytest.approx(50.0)
    assert s["table/Perception"]["Overall"] == {"num": 2, "acc": 0.5}
    assert s["table/Perception"]["Overall-Science"] == {"num": 1, "acc": 0.0}
    assert s["table/Perception"]["Art_Theory"] == {"num": 1, "acc": 1.0}
    # open answers: the number after "=" / "is", rounded to 2 places
    open_row = dict(items[4], error="")
    assert bench.judge(dict(open_row, prediction="So g = 9.80 m/s^2"))["correct"]
    assert not bench.judge(dict(open_row, prediction="roughly ten"))["correct"]
    assert parse_open_response("The answer is 12\nso total = 7") == [12.0, 7.0]
    assert eval_open("1,000", parse_open_response("it is 1000")) and not eval_open("a", ["banana"])
    # question_type "perception": parsed as open, compared as multiple-choice -> never right (upstream)
    assert not bench.judge(dict(items[0], question_type="perception", prediction="B"))["correct"]


def test_vlmevalkit_prompts_parse_and_scores_by_hand(vm_root):
    """VLMEvalKit e8e78f0 vlmeval/dataset/videommmu.py: build_prompt, process_results (text after the last
    "Answer:"), parse_multi_choice_response, parse_open_response, aggregate_results."""
    bench = get_benchmark("videommmu", "vlmevalkit")
    items = bench.load(str(vm_root))
    assert (
        items[0]["question"]
        == "Which painter?\nA. Monet\nB. Manet" + TAIL + "\nAdd `Answer: {Your final answer}` at the end of your reply."
    )
    assert items[4]["question"].endswith(
        "What is g in m/s^2?\nAdd `Answer: {Your final answer}` at the end of your reply."
    )
    # "X." and "X:" candidates first; several -> the latest by the *period* pattern (rfind("B.") = -1): A
    assert vlm_parse_multi_choice(" A. Monet is wrong; B: Manet", ["A", "B"], {"A": "A. Monet", "B": "B. Manet"}) == "A"
    # >5 words and no letter: option text
    assert (
        vlm_parse_multi_choice(
            "The style here is clearly fauvism because of colors", ["A", "B"], {"A": "cubism", "B": "fauvism"}
        )
        == "B"
    )
    assert vlm_parse_multi_choice("dunno", ["A", "B"], {"A": "x", "B": "y"}) == "No Answere Found"  # sic
    preds = [
        "Reasoning ... Answer: B",
        "Answer:",
        "(C) third",
        "The style here is clearly fauvism because of colors",
        "g is 9.8 here. Answer: 9.8",
    ]
    v = [bench.judge(r) for r in _rows(items, preds)]
    assert [x["extracted"] for x in v] == ["B", None, "C", "B", "9.8"]
    assert [x["correct"] for x in v] == [True, False, True, True, True]
    assert [x.get("excluded", False) for x in v] == [False, True, False, False, False]  # MC empties drop here too
    assert not any(x.get("needs_judge") for x in v)  # VideoMMMU has no LLM judge in VLMEvalKit
    s = bench.score(_rows(items, preds))
    assert s["overall"] == 100.0 and s["total"] == 4 and s["hit"] == 4 and s["excluded"] == 1
    assert s["track/Perception"] == 100.0 and s["total/Perception"] == 1


def test_vlmevalkit_tsv_layout(tmp_path, write_tsv, png):
    """What VLMEvalKit's prepare_dataset leaves: VideoMMMU.tsv (options as JSON, category = track folder),
    videos/<Discipline>/<id>.mp4, images/<name>."""
    rows = []
    for track, docs in (("Perception", PERCEPTION), ("Comprehension", COMPREHENSION), ("Adaptation", ADAPTATION)):
        for d in docs:
            disc = "Art" if "_Art_" in d["id"] else "Science"
            rows.append(
                {
                    "index": len(rows),
                    "id": d["id"],
                    "category": track,
                    "question": d["question"],
                    "options": json.dumps(d["options"]),
                    "answer": d["answer"],
                    "question_type": d["question_type"],
                    "video": f"videos/{disc}/{d['id']}.mp4",
                    "image": f"images/{d['id']}.png" if track == "Adaptation" else "",
                }
            )
            (tmp_path / "videos" / disc).mkdir(parents=True, exist_ok=True)
            (tmp_path / "videos" / disc / f"{d['id']}.mp4").touch()
    write_tsv(tmp_path / "VideoMMMU.tsv", rows)
    items = get_benchmark("videommmu", "vlmevalkit").load(str(tmp_path))
    assert len(items) == 5 and items[0]["media_path"] == str(
        tmp_path / "videos" / "Art" / "Perception_Art_Theory_1.mp4"
    )
    assert items[1]["question"].startswith("What unit?\nA. N\nB. J\nC. W")
    assert items[3]["question_image_path"] == str(tmp_path / "images" / "Adaptation_Art_Theory_1.png")
    assert items[4]["raw_options"] == [] and items[4]["question_type"] == "open"
    lm = get_benchmark("videommmu").load(str(tmp_path), tracks=["Perception"])
    assert len(lm) == 2 and "question_image_path" not in lm[0]


def test_missing_videos_and_bad_rows_fail_at_load(tmp_path, write_parquet):
    write_parquet(tmp_path / "Perception" / "test-00000-of-00001.parquet", PERCEPTION)
    with pytest.raises(BenchmarkDataError, match=r"videommmu: 2 of 2 referenced media file\(s\) are missing"):
        get_benchmark("videommmu").load(str(tmp_path), tracks=["Perception"])
    write_parquet(
        tmp_path / "Perception" / "test-00000-of-00001.parquet", [dict(PERCEPTION[0], id="Perception_Cooking_1")]
    )
    with pytest.raises(BenchmarkDataError, match="Cooking"):
        get_benchmark("videommmu").load(str(tmp_path), tracks=["Perception"])
    with pytest.raises(BenchmarkDataError, match="Comprehension"):
        get_benchmark("videommmu").load(str(tmp_path))
    with pytest.raises(ValueError, match="track"):
        get_benchmark("videommmu").load(str(tmp_path), tracks=["Listening"])
