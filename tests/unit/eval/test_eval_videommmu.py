"""Video-MMMU: three track folders; multiple-choice and open answers; per-track by hand."""

import pytest

from videosft.eval.benchmarks import get_benchmark
from videosft.eval.benchmarks.videommmu import open_correct


@pytest.fixture
def vm_items(tmp_path, write_json, write_parquet, png):
    write_json(tmp_path / "Perception" / "test.json", [
        {"id": "validation_Art_Theory_1", "question": "Which painter?", "options": ["A. Monet", "B. Manet"], "answer": "B",
         "question_type": "multiple-choice"},
        {"id": "validation_Physics_2", "question": "What unit?", "options": ["N", "J", "W"], "answer": "A",
         "question_type": "multiple-choice"},
    ])
    write_json(tmp_path / "Comprehension" / "test.json", [
        {"id": "validation_Physics_2", "question": "Which law?", "options": ["first", "second", "third"], "answer": "C",
         "question_type": "multiple-choice"}])
    write_parquet(tmp_path / "Adaptation" / "test-00000-of-00001.parquet", [
        {"id": "validation_Art_Theory_1", "question": "Which style?", "options": ["cubism", "fauvism"], "answer": "A",
         "question_type": "multiple-choice", "image": {"bytes": png("art"), "path": None}},
        {"id": "validation_Physics_2", "question": "What is g in m/s^2?", "options": [], "answer": "9.8",
         "question_type": "open", "image": {"bytes": None, "path": None}},
    ])
    return get_benchmark("videommmu").load(str(tmp_path), cache_dir=str(tmp_path / "cache"))


def test_videommmu_items(vm_items, tmp_path):
    assert [i["id"] for i in vm_items] == ["Perception/validation_Art_Theory_1", "Perception/validation_Physics_2",
                                           "Comprehension/validation_Physics_2", "Adaptation/validation_Art_Theory_1",
                                           "Adaptation/validation_Physics_2"]
    p = vm_items[0]
    assert p["media_path"] == str(tmp_path / "Art" / "validation_Art_Theory_1.mp4") and p["discipline"] == "Art"
    assert p["question"] == "Which painter?\nA. Monet\nB. Manet\nPlease directly output the option letter/data as the answer."
    a = vm_items[3]
    assert a["question"].startswith("Please directly output the option letter/data as the answer. You should watch")
    assert "multi-choice question. The image for this question is at the end of the video.\nWhich style?\nA. cubism" in a["question"]
    assert a["question_image_path"].startswith(str(tmp_path / "cache"))
    assert vm_items[4]["question_type"] == "open" and "question_image_path" not in vm_items[4]
    assert vm_items[2]["cluster"] == vm_items[4]["cluster"] == "validation_Physics_2"


def test_videommmu_scores_by_hand(vm_items, predict):
    preds = {"Perception/validation_Art_Theory_1": "B", "Perception/validation_Physics_2": "",
             "Comprehension/validation_Physics_2": "C.", "Adaptation/validation_Art_Theory_1": "The answer is B",
             "Adaptation/validation_Physics_2": "Therefore, g is 9.80 m/s^2"}
    s = get_benchmark("videommmu").score(predict(vm_items, preds))
    assert s["track/Perception"] == 50.0 and s["track/Comprehension"] == 100.0 and s["track/Adaptation"] == 50.0
    assert s["overall"] == pytest.approx(60.0) and s["track_mean"] == pytest.approx(200 / 3)
    assert s["discipline/Art"] == 50.0 and s["discipline/Science"] == pytest.approx(200 / 3)


def test_open_answer_rule():
    assert open_correct("The total is 1,200 dollars", "1200")
    assert open_correct("x = 3.14159", "3.14")
    assert not open_correct("", "9.8") and not open_correct("It is 10", "9.8")
    assert open_correct("The answer is photosynthesis.", "Photosynthesis")


def test_videommmu_judged_rows_reproduce_the_scores(vm_items, predict, judge_rows, acc):
    bench = get_benchmark("videommmu")
    rows = predict(vm_items, {"Perception/validation_Art_Theory_1": "B", "Perception/validation_Physics_2": "",
                              "Comprehension/validation_Physics_2": "C.",
                              "Adaptation/validation_Art_Theory_1": "The answer is B",
                              "Adaptation/validation_Physics_2": "Therefore, g is 9.80 m/s^2"})
    extracted, correct = judge_rows(bench, rows)
    assert extracted == ["B", None, "C", "B", "9.8"] and correct == [True, False, True, False, True]
    s = bench.score(rows)
    assert s["overall"] == pytest.approx(acc(correct))
    assert s["track/Adaptation"] == pytest.approx(acc(correct[3:]))
    # Perception/validation_Art_Theory_1: Monet / Manet, answer B; the open question's answer is 9.8
    hand = [dict(vm_items[0], prediction="(B)"), dict(vm_items[0], prediction="It was painted by Monet."),
            dict(vm_items[4], prediction="It is 10"), dict(vm_items[4], prediction="")]
    assert judge_rows(bench, hand) == (["B", "A", "10", None], [True, False, False, False])
