"""Deterministic answer extraction: raw model output -> option letter / yes-no / "".

Why this module exists: evaluation tools in the field fell back to a *random* option when they
could not parse an answer (VLMEvalKit's and lmms-eval's MCQ fallbacks), which makes scores
nondeterministic and inflates a broken model to chance level. Here extraction is a fixed,
ordered list of rules; anything no rule accepts becomes "" which every scorer counts wrong and
keeps in its denominator.

Multiple-choice rules (first that fires wins; letters are limited to the item's options):
  1. strip answer prefixes ("The best answer is", "Answer:", "Option", markdown '*'); if what
     is left is a single letter in any case ("b", "(c)"), that is the answer,
  2. a leading letter: "(B)", "B.", "B)", "B:", "B" alone, "B " + text; but "A " / "I " before
     a lowercase word are the article / pronoun (unless the rest is that option's text), and
     "B or C", naming another option letter, is a hedge, not an answer,
  3. "answer is X" / "answer: X" / "option X" anywhere,
  4. exactly one distinct letter in parentheses anywhere, e.g. "I pick (C) because...",
  5. exactly one distinct standalone capital letter token (VLMEvalKit ``can_infer_option``:
     a lone "A" in a longer sentence is treated as a quantifier and "I" as the pronoun),
  6. the prediction equals one option's text, or exactly one option's text occurs in it
     (VLMEvalKit ``can_infer_text``; options contained in a longer matched option are dropped),
  7. otherwise "".
Yes/no rules: the first word is yes/no; else VLMEvalKit ``YOrN_Extraction`` (the word "yes"
without "no", or "no" without "yes"); else "".

Per-row verdicts: every benchmark's ``judge(row)`` returns ``{"extracted": str | None, "correct":
bool}`` built with ``verdict``; ``judged`` wraps a rule so an empty or failed prediction (blank
text, or a row ``error``) is ``{"extracted": None, "correct": False}`` before the rule runs.
Scorers aggregate those verdicts, so the predictions file and the scores cannot disagree.
"""

from __future__ import annotations

import re
import string
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from videosft.schema import CORRECT, EXTRACTED

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# The LLaVA / lmms-eval instruction for letter answers, used by the image MCQ benchmarks.
LETTER_INSTRUCTION = "Answer with the option's letter from the given choices directly."
# The LLaVA / lmms-eval instruction for short answers (MME, POPE).
SHORT_INSTRUCTION = "Answer the question using a single word or phrase."

# Longest first so "the best answer is" is stripped before "answer is" could be.
_PREFIXES = (
    "the best answer is",
    "the correct answer is",
    "the best option is",
    "the correct option is",
    "the answer is",
    "best answer:",
    "best option:",
    "correct answer:",
    "final answer:",
    "the answer:",
    "answer:",
    "option:",
    "option",
    "answer",
)
_PUNCT_TO_SPACE = str.maketrans({c: " " for c in ".()[]{},:;!?*#\"'`<>/\\|"})


def option_letters(n: int) -> str:
    """The letters of an n-option question: A, B, C, ..."""
    if not 0 <= n <= len(LETTERS):
        raise ValueError(f"option count {n} out of range 0..{len(LETTERS)}")
    return LETTERS[:n]


def is_option_letter(answer: str, n_options: int) -> bool:
    """True when ``answer`` is exactly one of the first n option letters ("" and "AB" are not)."""
    return len(answer) == 1 and answer in option_letters(n_options)


def format_options(options: Sequence[str], style: str = "{letter}. {text}") -> str:
    """One option per line, lettered A, B, C... in the given style."""
    letters = option_letters(len(options))
    return "\n".join(style.format(letter=l, text=t) for l, t in zip(letters, options))


def _norm_text(s: str) -> str:
    s = " ".join(str(s).lower().split())
    return s.strip(string.punctuation + " ")


def strip_answer_prefixes(s: str) -> str:
    s = s.strip().strip("*").strip()
    changed = True
    while changed:
        changed = False
        low = s.lower()
        for p in _PREFIXES:
            # Word boundary: "Optional" and "Answering" are not prefixes.
            if low.startswith(p) and not low[len(p) : len(p) + 1].isalnum():
                s = s[len(p) :].lstrip(" :").strip().strip("*").strip()
                changed = True
                break
    return s


def _leading_letter(s: str, letters: str, options: Sequence[str]) -> str:
    m = re.match(r"^[\(\[]?([A-Z])(?:[\)\]\.:,]|\s|$)(.*)$", s, flags=re.S)
    if not m or m.group(1) not in letters:
        return ""
    letter, rest = m.group(1), m.group(2).strip()
    bare_space = len(s) > 1 and s[1].isspace()
    if bare_space and any(t in letters and t != letter for t in rest.translate(_PUNCT_TO_SPACE).split()):
        return ""  # "B or C": a hedge between options, not an answer
    if letter in "AI" and bare_space and rest[:1].islower():
        # "A man is ..." / "I think ..." are words; accept only when the rest is that option's text.
        pos = letters.index(letter)
        return letter if _norm_text(rest) == _norm_text(options[pos]) else ""
    return letter


def _phrase_letter(s: str, letters: str) -> str:
    pat = r"(?i:answer\s+is|answer\s*:|option|choice)\s*[\(\[]?([A-Z])(?![A-Za-z])"
    for m in re.finditer(pat, s):
        if m.group(1) in letters:
            return m.group(1)
    return ""


def _unique(found: Iterable[str]) -> str:
    distinct = set(found)
    return distinct.pop() if len(distinct) == 1 else ""


def _token_letter(s: str, letters: str) -> str:
    tokens = s.translate(_PUNCT_TO_SPACE).split()
    # "I" in a sentence is the pronoun (10-option questions have an option I).
    found = [t for t in tokens if len(t) == 1 and t in letters and not (t == "I" and len(tokens) > 1)]
    letter = _unique(found)
    if letter == "A" and len(tokens) > 3:
        return ""  # VLMEvalKit: "A" in a sentence is more likely a quantifier than an answer
    return letter


def _text_letter(s: str, letters: str, options: Sequence[str]) -> str:
    pred = _norm_text(s)
    norms = [_norm_text(o) for o in options]
    exact = [l for l, o in zip(letters, norms) if o and o == pred]
    if len(exact) == 1:
        return exact[0]
    hits = {l: o for l, o in zip(letters, norms) if o and re.search(rf"(?<!\w){re.escape(o)}(?!\w)", pred)}
    # "red" inside "dark red" must not make the answer ambiguous when "dark red" matched.
    keep = [l for l, o in hits.items() if not any(o != p and o in p for p in hits.values())]
    return keep[0] if len(keep) == 1 else ""


def extract_choice(prediction: str, options: Sequence[str]) -> str:
    """The option letter a free-form prediction chose, or "" when no fixed rule decides."""
    if prediction is None or not options:
        return ""
    return _extract_choice(str(prediction), tuple(str(o) for o in options))


@lru_cache(maxsize=1 << 16)  # bootstrap re-scores the same rows a thousand times
def _extract_choice(prediction: str, options: tuple[str, ...]) -> str:
    letters = option_letters(len(options))
    s = strip_answer_prefixes(prediction)
    if not s:
        return ""
    bare = s.strip(" .:)(][*")
    if len(bare) == 1 and bare.upper() in letters:
        return bare.upper()  # the whole answer is one letter, whatever its case ("b", "(c)")
    for rule in (
        lambda: _leading_letter(s, letters, options),
        lambda: _phrase_letter(s, letters),
        lambda: _unique(m for m in re.findall(r"\(([A-Z])\)", s) if m in letters),
        lambda: _token_letter(s, letters),
        lambda: _text_letter(s, letters, options),
    ):
        got = rule()
        if got:
            return got
    return ""


def extract_yes_no(prediction: str) -> str:
    """ "yes", "no", or "" for a free-form answer to a yes/no question."""
    if prediction is None:
        return ""
    return _extract_yes_no(str(prediction))


@lru_cache(maxsize=1 << 16)
def _extract_yes_no(prediction: str) -> str:
    s = strip_answer_prefixes(prediction).lower()
    words = s.translate(_PUNCT_TO_SPACE).split()
    if not words:
        return ""
    if words[0] in ("yes", "no"):
        return words[0]
    has_yes, has_no = "yes" in words, "no" in words
    if has_yes != has_no:
        return "yes" if has_yes else "no"
    return ""


# ---- small scoring helpers shared by the benchmark scorers ----


def pct(num: float, den: float) -> float:
    """100 * num / den; an empty group scores 0.0 rather than raising mid-report."""
    return 100.0 * num / den if den else 0.0


def mean(values: Iterable[float]) -> float:
    vals = list(values)
    return sum(vals) / len(vals) if vals else 0.0


def group_accuracy(
    rows: Sequence[Mapping[str, Any]],
    correct: Sequence[bool],
    key: Callable[[Mapping[str, Any]], Hashable],
) -> dict[Hashable, float]:
    """Accuracy (0..100) per group, in first-seen group order."""
    hit: dict[Hashable, int] = defaultdict(int)
    tot: dict[Hashable, int] = defaultdict(int)
    for row, ok in zip(rows, correct):
        k = key(row)
        tot[k] += 1
        hit[k] += int(bool(ok))
    return {k: pct(hit[k], tot[k]) for k in tot}


# ---- per-row verdicts: what every Benchmark.judge returns ----

Verdict = dict[str, Any]  # {"extracted": str | None, "correct": bool}


def verdict(extracted: Any, correct: bool) -> Verdict:
    """A judge's answer for one row; "" (no rule decided) is recorded as None and is never correct."""
    got = None if extracted is None or str(extracted) == "" else str(extracted)
    return {EXTRACTED: got, CORRECT: bool(correct) and got is not None}


NO_ANSWER: Verdict = {EXTRACTED: None, CORRECT: False}


def unanswered(row: Mapping[str, Any]) -> bool:
    """An empty or failed prediction: blank text, or the row carries an error (decode, timeout)."""
    return bool(row.get("error")) or not str(row.get("prediction") or "").strip()


def judged(rule: Callable[[Mapping[str, Any]], Verdict]) -> Callable[[Mapping[str, Any]], Verdict]:
    """Wrap a per-row rule: an unanswered row is {None, False} whatever the rule would say."""

    def judge(row: Mapping[str, Any]) -> Verdict:
        return dict(NO_ANSWER) if unanswered(row) else rule(row)

    judge.__name__ = getattr(rule, "__name__", "judge")
    judge.__doc__ = rule.__doc__
    return judge


def _choice_verdict(row: Mapping[str, Any]) -> Verdict:
    """Multiple-choice: the extracted option letter, right when it equals the reference letter."""
    got = extract_choice(row.get("prediction", ""), row.get("options") or [])
    return verdict(got, got == str(row["answer"]).strip().upper())


def _yes_no_verdict(row: Mapping[str, Any]) -> Verdict:
    """Yes/no: the extracted "yes"/"no", right when it equals the (lowercased) reference."""
    got = extract_yes_no(row.get("prediction", ""))
    return verdict(got, got == str(row["answer"]).strip().lower())


judge_choice = judged(_choice_verdict)
judge_yes_no = judged(_yes_no_verdict)


def corrects(verdicts: Iterable[Verdict]) -> list[bool]:
    """The correct flags of judged rows, in order: what every scorer aggregates."""
    return [bool(v[CORRECT]) for v in verdicts]


def choice_correct(row: Mapping[str, Any]) -> bool:
    """Multiple-choice row correct: extracted letter equals the reference letter."""
    return judge_choice(row)[CORRECT]
