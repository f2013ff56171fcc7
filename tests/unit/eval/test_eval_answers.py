"""answers.py: the fixed extraction rules, and properties that must hold for any text."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videosft.benchmarks.answers import extract_choice, extract_yes_no, format_options, is_option_letter, option_letters

OPTS = ["red", "dark red", "blue", "green"]


@pytest.mark.parametrize(
    "pred, want",
    [
        ("B", "B"),
        ("(C)", "C"),
        ("B.", "B"),
        ("C) blue", "C"),
        ("D: green", "D"),
        ("[A]", "A"),
        ("The answer is D", "D"),
        ("Answer: (A)", "A"),
        ("The best answer is: B", "B"),
        ("**C**", "C"),
        ("I think the answer is C.", "C"),
        ("I pick (B) because it is darker.", "B"),
        ("Option C", "C"),
        ("It looks like B to me", "B"),
        ("dark red", "B"),
        ("It is blue.", "C"),
        ("Red", "A"),  # option text; "red" inside "dark red" resolved
        ("A. red", "A"),
        ("A", "A"),
        ("A man is holding it", ""),  # the article is not an answer
        ("", ""),
        ("   ", ""),
        ("Neither of them", ""),
        ("ABCD", ""),
        ("B or C", ""),
        ("E", ""),  # E is no option
        ("Optional extras", ""),
        ("a", "A"),
        ("(c)", "C"),
        ("e", ""),
    ],
)
def test_extract_choice_rules(pred, want):
    assert extract_choice(pred, OPTS) == want


@pytest.mark.parametrize(
    "pred, want",
    [
        ("Yes", "yes"),
        ("No.", "no"),
        ("yes, there is a dog", "yes"),
        ("There is no dog.", "no"),
        ("Answer: no", "no"),
        ("I cannot tell", ""),
        ("", ""),
        ("Not sure", ""),
        ("**Yes**", "yes"),
        ("nothing", ""),
    ],
)
def test_extract_yes_no_rules(pred, want):
    assert extract_yes_no(pred) == want


def test_ten_options_pronoun_i():
    opts = [f"o{i}" for i in range(10)]  # Video-MMMU perception has options up to J
    assert extract_choice("I think B", opts) == "B" and extract_choice("I", opts) == "I"
    assert extract_choice("I am not sure", opts) == ""


def test_none_and_no_options():
    assert extract_choice(None, OPTS) == "" and extract_choice("A", []) == "" and extract_yes_no(None) == ""


def test_is_option_letter():
    assert is_option_letter("B", 2) and not is_option_letter("C", 2)
    assert not is_option_letter("", 4) and not is_option_letter("AB", 4)


def test_format_options():
    assert format_options(["x", "y"]) == "A. x\nB. y"
    assert format_options(["x"], "({letter}) {text}") == "(A) x"
    with pytest.raises(ValueError):
        option_letters(27)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60), n=st.integers(min_value=1, max_value=8))
def test_extract_choice_total_and_deterministic(text, n):
    opts = [f"option {i}" for i in range(n)]
    got = extract_choice(text, opts)
    assert got == "" or got in option_letters(n)
    assert extract_choice(text, opts) == got  # no randomness, ever


@settings(max_examples=200, deadline=None)
@given(
    idx=st.integers(min_value=0, max_value=3),
    style=st.sampled_from(["{L}", "({L})", "{L}.", "{L})", "{L}:"]),
    tail=st.text(alphabet=st.characters(whitelist_categories=("Ll", "Zs")), max_size=30),
)
def test_leading_letter_always_wins(idx, style, tail):
    letter = "ABCD"[idx]
    pred = style.format(L=letter) + (" " + tail if tail and style != "{L}" else "")
    assert extract_choice(pred, OPTS) == letter


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=60))
def test_extract_yes_no_total(text):
    assert extract_yes_no(text) in ("yes", "no", "")


@given(
    word=st.sampled_from(["Yes", "yes", "No", "no", "YES"]),
    punct=st.sampled_from(["", ".", ",", "!"]),
    tail=st.text(alphabet="abcdefghijklmopqrstuvwxz ", max_size=30),
)
def test_leading_yes_no_wins(word, punct, tail):
    assert extract_yes_no(f"{word}{punct} {tail}") == word.lower()


def test_verdicts_of_the_shared_judges():
    from videosft.benchmarks.answers import judge_choice, judge_yes_no, judged, verdict

    mc = {"options": ["red", "green", "blue"], "answer": "B", "error": ""}
    assert judge_choice(dict(mc, prediction="(B)")) == {"extracted": "B", "correct": True}
    assert judge_choice(dict(mc, prediction="I think the ball is blue.")) == {"extracted": "C", "correct": False}
    assert judge_choice(dict(mc, prediction="no idea")) == {"extracted": None, "correct": False}
    assert judge_choice(dict(mc, prediction="  ")) == {"extracted": None, "correct": False}
    # a failed row is wrong even if some text came back with it
    assert judge_choice(dict(mc, prediction="B", error="decode: timeout")) == {"extracted": None, "correct": False}
    yn = {"answer": "yes"}
    assert judge_yes_no(dict(yn, prediction="Yes, there is.")) == {"extracted": "yes", "correct": True}
    assert judge_yes_no(dict(yn, prediction="No")) == {"extracted": "no", "correct": False}
    assert judge_yes_no(dict(yn, prediction=None)) == {"extracted": None, "correct": False}
    # "" from a rule is "nothing extracted", and nothing extracted is never right
    assert verdict("", True) == {"extracted": None, "correct": False}
    always = judged(lambda row: verdict("x", True))
    assert always({"prediction": "x"})["correct"] and not always({"prediction": ""})["correct"]


def test_every_registered_benchmark_has_a_judge():
    from videosft.benchmarks import BENCHMARKS, get_benchmark

    for name in BENCHMARKS:
        assert callable(get_benchmark(name).judge), name
