"""lmms-eval 0.7.3 answer rules shared by several benchmarks (``_task_utils/mcq_extract.py``).

``extract_mcq_answer`` is what lmms-eval's MMStar, Video-MME and Video-MMMU tasks parse multiple-
choice answers with; one transcription here serves all three, checked against lmms-eval's own
function by each benchmark's parity test. Benchmark-specific rules stay in their modules.
"""

from __future__ import annotations

from collections.abc import Sequence

_PHRASES = (
    "the answer is",
    "answer is",
    "the correct answer is",
    "correct answer is",
    "the best answer is",
    "best answer is",
    "the correct option is",
    "correct option is",
    "the best option is",
    "best option is",
    "the choice is",
    "choice is",
    "the correct choice is",
    "correct choice is",
    "i choose",
    "i select",
    "i pick",
    "my answer is",
    "my choice is",
    "옵션",
    "정답은",
    "답은",
    "답:",
    "答案是",
    "答案为",
    "选",
    "答えは",
)
# Higher wins; ties go to the later position (upstream sorts by (priority, position), reversed).
_PRIORITY = {
    "start": 10,
    "end": 9,
    "phrase": 7,
    "parentheses": 6,
    "period": 5,
    "colon": 4,
    "right_paren": 3,
    "space": 2,
    "fallback": 0,
}
_FORMATS = (("parentheses", "({})"), ("period", "{}."), ("colon", "{}:"), ("right_paren", "{})"), ("space", "{} "))
DEFAULT_LETTERS = ("A", "B", "C", "D", "E", "F", "G", "H")


def extract_mcq_answer(response: str, choices: Sequence[str] | None = None) -> str:
    """The option letter lmms-eval reads from ``response``, or "" when no letter occurs at all.

    Candidates in each format ("(B)", "B.", "B:", "B)", "B "), after an answer phrase, a leading
    or a trailing standalone letter; a bare occurrence anywhere only when nothing else matched.
    The highest-priority format wins, then the later position. No ``choices``: A-H, as upstream.
    """
    if not response or not response.strip():
        return ""
    letters = list(choices) if choices else list(DEFAULT_LETTERS)
    text = response.strip()
    for ch in ",.!?;:'\"":  # one character at a time, as upstream strips
        text = text.strip(ch)
    text = f" {text} "
    cands: list[tuple[str, int, str]] = []
    for fmt, pattern in _FORMATS:
        for ch in letters:
            pos = text.rfind(pattern.format(ch))
            if pos != -1:
                cands.append((ch, pos, fmt))
    low = text.lower()
    for phrase in _PHRASES:
        at = low.find(phrase)
        if at != -1:
            for ch in letters:
                pos = text.find(ch, at + len(phrase))
                if pos != -1:
                    cands.append((ch, pos, "phrase"))
    stripped = text.strip()
    for ch in letters:
        if stripped.startswith(ch) and (len(stripped) == 1 or not stripped[1].isalpha()):
            cands.append((ch, 0, "start"))
    for ch in letters:
        if stripped.endswith(ch) and (len(stripped) == 1 or not stripped[-2].isalpha()):
            cands.append((ch, len(text) - 1, "end"))
    if not cands:
        cands = [(ch, text.rfind(ch), "fallback") for ch in letters if ch in text]
    if not cands:
        return ""
    cands.sort(key=lambda c: (_PRIORITY[c[2]], c[1]), reverse=True)  # stable, as upstream's sort
    return cands[0][0]
