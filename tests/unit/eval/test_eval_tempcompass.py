"""TempCompass: three formats from the original questions/*.json; per format and dimension."""

import pytest

from videosft.eval.benchmarks import get_benchmark
from videosft.eval.benchmarks.tempcompass import caption_choice


@pytest.fixture
def tc_items(tmp_path, write_json):
    q = tmp_path / "questions"
    write_json(q / "multi-choice.json", {
        "v1": {"speed": [{"question": "What is the speed of the car?\nA. slow\nB. fast", "answer": "B. fast"}],
               "direction": [{"question": "Where does it go?\nA. left\nB. right\nC. up", "answer": "C. up"}]},
        "v2_reverse": {"speed": [{"question": "How fast is the video?\nA. slow\nB. fast", "answer": "A. slow"}]},
    })
    write_json(q / "yes_no.json", {"v1": {"speed": [{"question": "Is the car fast?", "answer": "yes"},
                                                    {"question": "Is the car slow?", "answer": "no"}]}})
    write_json(q / "caption_matching.json", {"v1": {"direction": [
        {"question": "Which caption matches the video better?\nCaption A: moving left\nCaption B: moving up",
         "answer": "Caption B: moving up"},
        {"question": "Which description is a more suitable match for the video?\nOption 1: moving up\nOption 2: moving left",
         "answer": "Option 1: moving up"}]}})
    return get_benchmark("tempcompass").load(str(tmp_path))


def test_tempcompass_items(tc_items, tmp_path):
    assert len(tc_items) == 7
    mc = tc_items[0]
    assert mc["id"] == "multi-choice/v1/speed/0" and mc["answer"] == "B" and mc["options"] == ["slow", "fast"]
    assert mc["question"].endswith("B. fast\nPlease directly give the best option:")
    assert mc["media_path"] == str(tmp_path / "videos" / "v1.mp4") and mc["cluster"] == "v1"
    yn = [i for i in tc_items if i["format"] == "yes_no"]
    assert yn[0]["question"] == "Is the car fast?\nPlease answer yes or no:" and yn[1]["answer"] == "no"
    cm = [i for i in tc_items if i["format"] == "caption_matching"]
    assert cm[0]["answer"] == "B" and cm[0]["option_labels"] == ["Caption A", "Caption B"]
    assert cm[1]["answer"] == "A" and cm[1]["options"] == ["moving up", "moving left"]


def test_tempcompass_scores_by_hand(tc_items, predict):
    preds = {
        "multi-choice/v1/speed/0": "B", "multi-choice/v1/direction/0": "A. left", "multi-choice/v2_reverse/speed/0": "slow",
        "yes_no/v1/speed/0": "Yes, it is.", "yes_no/v1/speed/1": "I am unsure",
        "caption_matching/v1/direction/0": "Caption B", "caption_matching/v1/direction/1": "Option 2",
    }
    s = get_benchmark("tempcompass").score(predict(tc_items, preds))
    assert s["multi-choice/overall"] == pytest.approx(200 / 3)
    assert s["multi-choice/speed"] == 100.0 and s["multi-choice/direction"] == 0.0
    assert s["yes_no/overall"] == pytest.approx(50.0) and s["caption_matching/overall"] == pytest.approx(50.0)
    assert s["overall"] == pytest.approx(400 / 7)
    assert s["format_mean"] == pytest.approx((200 / 3 + 50 + 50) / 3)
    assert s["dim/speed"] == pytest.approx(75.0) and s["dim/direction"] == pytest.approx(100 / 3)


def test_caption_choice_rules():
    sents, labels = ["moving up", "moving left"], ["Option 1", "Option 2"]
    assert caption_choice("Option 1: moving up", sents, labels) == "A"
    assert caption_choice("2", sents, labels) == "B"
    assert caption_choice("The video shows it moving left.", sents, labels) == "B"
    assert caption_choice("", sents, labels) == ""
    abl = ["Caption A", "Caption B"]
    assert caption_choice("A man walks", sents, abl) == ""  # article, not label
    assert caption_choice("B.", ["x", "y"], abl) == "B"


def test_tempcompass_captioning_needs_judge(tmp_path, write_json):
    write_json(tmp_path / "questions" / "captioning.json", {"v1": {"speed": [
        {"question": "Describe the speed.\nGenerated Caption:", "answer": "x", "mc_question": "Speed?\nA. slow\nB. fast",
         "mc_answer": "A. slow"}]}})
    items = get_benchmark("tempcompass").load(str(tmp_path), formats=("captioning",))
    assert items[0]["answer"] == "A. slow" and items[0]["mc_question"].startswith("Speed?")
    with pytest.raises(ValueError, match="judge"):
        get_benchmark("tempcompass").score([dict(items[0], prediction="slowly")])
    assert get_benchmark("tempcompass").score([dict(items[0], prediction="slowly", judge_rating=1)])["overall"] == 100.0


def test_tempcompass_judged_rows_reproduce_the_scores(tc_items, predict, judge_rows, acc):
    bench = get_benchmark("tempcompass")
    rows = predict(tc_items, {
        "multi-choice/v1/speed/0": "B", "multi-choice/v1/direction/0": "A. left", "multi-choice/v2_reverse/speed/0": "slow",
        "yes_no/v1/speed/0": "Yes, it is.", "yes_no/v1/speed/1": "I am unsure",
        "caption_matching/v1/direction/0": "Caption B", "caption_matching/v1/direction/1": "Option 2",
    })
    extracted, correct = judge_rows(bench, rows)
    assert extracted == ["B", "A", "A", "yes", None, "B", "B"]
    assert correct == [True, False, True, True, False, True, False]
    s = bench.score(rows)
    assert s["overall"] == pytest.approx(acc(correct))
    assert s["multi-choice/overall"] == pytest.approx(acc(correct[:3]))
    hand = [dict(tc_items[0], prediction="(B)"), dict(tc_items[0], prediction="The car is moving fast."),
            dict(tc_items[5], prediction="The second caption, moving up."), dict(tc_items[3], prediction="")]
    assert judge_rows(bench, hand) == (["B", "B", "B", None], [True, True, True, False])


def test_tempcompass_captioning_verdict_is_the_judges(tmp_path, write_json, judge_rows):
    write_json(tmp_path / "questions" / "captioning.json", {"v1": {"speed": [
        {"question": "Describe the speed.\nGenerated Caption:", "answer": "x", "mc_question": "Speed?\nA. slow\nB. fast",
         "mc_answer": "A. slow"}]}})
    item = get_benchmark("tempcompass").load(str(tmp_path), formats=("captioning",))[0]
    rows = [dict(item, prediction=" A slow car. ", judge_rating=1), dict(item, prediction="fast", judge_rating=0),
            dict(item, prediction="", judge_rating=1)]
    assert judge_rows(get_benchmark("tempcompass"), rows) == (["A slow car.", "fast", None], [True, False, False])
