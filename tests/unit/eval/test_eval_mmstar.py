"""MMStar: the Lin-Chen/MMStar repo (mmstar.parquet + MMStar.tsv, read once), both protocols by hand.
Parity with lmms-eval's own code: test_parity_mmstar.py."""

import pytest

from videosft.benchmarks import get_benchmark
from videosft.benchmarks._io import BenchmarkDataError
from videosft.benchmarks.lmms_eval_rules import extract_mcq_answer
from videosft.benchmarks.mmstar import parse_options


def lmms_extract_mcq_answer(s):
    return extract_mcq_answer(s, ("A", "B", "C", "D"))  # MMStar's choices


LMMS_POST = "\nAnswer with the option's letter from the given choices directly"
VLM_POST = "Please select the correct answer from the options above. \n"
OPTS = ["3 cm", "4 cm", "5 cm", "6 cm"]


def test_parse_inline_options():
    q = "Which option describe the object?\nOptions: A: The suitcase is on the book., B: It is beneath the cat., C: x, D: y"
    assert parse_options(q) == ["The suitcase is on the book.", "It is beneath the cat.", "x", "y"]
    assert parse_options("No options here") == []


SPEC = [
    (0, "coarse perception", "image emotion", "A"),
    (1, "coarse perception", "image emotion", "B"),
    (2, "coarse perception", "image scene and topic", "C"),
    (3, "math", "geometry", "B"),
    (4, "math", "statistical reasoning", "D"),
]


@pytest.fixture
def mmstar_repo(tmp_path, png, b64png, write_parquet, write_tsv):
    """The downloaded Lin-Chen/MMStar repo: mmstar.parquet and MMStar.tsv, the same questions."""

    def q(i):
        return f"Q{i}?\nOptions: A: 3 cm, B: 4 cm, C: 5 cm, D: 6 cm"

    write_parquet(
        tmp_path / "mmstar.parquet",
        [
            {
                "index": i,
                "question": q(i),
                "image": {"bytes": png(str(i)), "path": None},
                "answer": a,
                "category": c,
                "l2_category": l2,
                "meta_info": {"source": "MathVista", "split": "val", "image_path": f"{i}.jpg"},
            }
            for i, c, l2, a in SPEC
        ],
    )
    write_tsv(
        tmp_path / "MMStar.tsv",
        [
            {
                "index": i,
                "question": q(i),
                "A": "3 cm",
                "B": "4 cm",
                "C": "5 cm",
                "D": "6 cm",
                "answer": a,
                "category": c,
                "l2-category": l2,
                "image": b64png(str(i)) if i != 1 else "0",
            }  # row 1 reuses row 0's image
            for i, c, l2, a in SPEC
        ],
    )
    return tmp_path


def test_one_file_of_two_and_prompts(mmstar_repo):
    lm = get_benchmark("mmstar", "lmms_eval").load(str(mmstar_repo), cache_dir=str(mmstar_repo / "c"))
    vk = get_benchmark("mmstar", "vlmevalkit").load(str(mmstar_repo), cache_dir=str(mmstar_repo / "c"))
    assert [i["id"] for i in lm] == [i["id"] for i in vk] == ["0", "1", "2", "3", "4"]  # never read twice
    assert lm[0]["question"] == f"Q0?\nOptions: A: 3 cm, B: 4 cm, C: 5 cm, D: 6 cm{LMMS_POST}"
    assert vk[0]["question"] == (
        "Question: Q0?\nOptions: A: 3 cm, B: 4 cm, C: 5 cm, D: 6 cm\nOptions:\nA. 3 cm\n"
        f"B. 4 cm\nC. 5 cm\nD. 6 cm\n{VLM_POST}"
    )
    assert lm[0]["options"] == OPTS and vk[0]["l2_category"] == "image emotion"
    assert vk[1]["media_path"] == vk[0]["media_path"]
    forced = get_benchmark("mmstar", "lmms_eval").load(
        str(mmstar_repo), cache_dir=str(mmstar_repo / "c"), layout="vlmevalkit"
    )
    assert [i["question"] for i in forced] == [i["question"] for i in lm]
    assert get_benchmark("mmstar", "lmms_eval").max_new_tokens == 1024
    assert get_benchmark("mmstar", "vlmevalkit").options == ("layout",)
    with pytest.raises(BenchmarkDataError, match="layout 'x' unknown"):
        get_benchmark("mmstar").load(str(mmstar_repo), layout="x")


def test_lmms_headline_is_the_l2_average(mmstar_repo):
    bench = get_benchmark("mmstar", "lmms_eval")
    items = bench.load(str(mmstar_repo), cache_dir=str(mmstar_repo / "c"))
    preds = ["A", "", "(C)", "4 cm", "A"]  # right, empty, right, no letter (-> wrong), wrong
    rows = [dict(i, prediction=p, error="") for i, p in zip(items, preds)]
    assert [bench.judge(r)["extracted"] for r in rows] == ["A", None, "C", None, "A"]
    assert [bench.judge(r)["lenient"] for r in rows] == ["A", None, "C", "B", "A"]  # extra column only
    s = bench.score(rows)
    assert s["micro"] == pytest.approx(40.0)
    assert s["l2_category/image emotion"] == 50.0 and s["l2_category/geometry"] == 0.0
    assert s["overall"] == pytest.approx((50 + 100 + 0 + 0) / 4)  # lmms-eval "average" over l2 categories
    assert s["category/coarse perception"] == pytest.approx(75.0)  # its l2 means (50, 100) averaged
    assert bench.judge(dict(rows[0], error="decode: timeout"))["correct"] is False


def test_lmms_extract_mcq_answer_by_hand():
    """lmms_eval/tasks/_task_utils/mcq_extract.py extract_mcq_answer, worked by hand."""
    assert lmms_extract_mcq_answer("A") == "A" and lmms_extract_mcq_answer("(B) dog") == "B"
    assert lmms_extract_mcq_answer("The answer is C") == "C"  # trailing standalone letter ("end")
    assert lmms_extract_mcq_answer("A man is walking") == "A"  # leading letter + space ("start")
    assert lmms_extract_mcq_answer("b") == "" and lmms_extract_mcq_answer("Not sure.") == ""
    assert lmms_extract_mcq_answer("B or C") == "B"  # start (10) beats end (9)
    # every choice letter found after "i pick" is a phrase candidate (7); the later one wins: upstream quirk
    assert lmms_extract_mcq_answer("I pick (D), not (A), hmm") == "A"
    assert lmms_extract_mcq_answer("Dogs") == "D"  # fallback: any capital letter of the choices
    assert lmms_extract_mcq_answer("") == "" and lmms_extract_mcq_answer(" \n") == ""


def test_vlmevalkit_plain_accuracy_and_judge_flags(mmstar_repo):
    bench = get_benchmark("mmstar", "vlmevalkit")
    items = bench.load(str(mmstar_repo), cache_dir=str(mmstar_repo / "c"))
    preds = ["A", "", "5 cm", "I cannot tell which one it is from this picture at all", "Z"]
    rows = [dict(i, prediction=p, error="") for i, p in zip(items, preds)]
    vs = [bench.judge(r) for r in rows]
    assert [v["extracted"] for v in vs] == ["A", None, "C", None, "Z"]
    assert [v["needs_judge"] for v in vs] == [False, True, False, True, False]  # exact_matching: wrong
    s = bench.score(rows)
    assert s["overall"] == pytest.approx(40.0) and s["category/math"] == 0.0
    assert s["l2_category/image emotion"] == 50.0 and bench.max_new_tokens == 2048


def test_mmstar_errors_and_no_ground_truth(tmp_path, png, write_parquet):
    row = {
        "index": 0,
        "question": "Q?\nOptions: A: x, B: y",
        "image": {"bytes": png("0"), "path": None},
        "answer": "C",
        "category": "math",
        "l2_category": "geometry",
        "meta_info": None,
    }
    write_parquet(tmp_path / "mmstar.parquet", [row])
    with pytest.raises(BenchmarkDataError, match=r"mmstar\.parquet \(index 0\).*'answer'"):
        get_benchmark("mmstar").load(str(tmp_path), cache_dir=str(tmp_path / "c"))
    write_parquet(tmp_path / "mmstar.parquet", [dict(row, answer="")])
    items = get_benchmark("mmstar").load(str(tmp_path), cache_dir=str(tmp_path / "c"))
    s = get_benchmark("mmstar").score([dict(items[0], prediction="A", error="")])
    assert s["no_ground_truth"] is True and "no reference answers" in s["message"]
    with pytest.raises(BenchmarkDataError, match="no MMStar"):
        get_benchmark("mmstar").load(str(tmp_path / "c"))
