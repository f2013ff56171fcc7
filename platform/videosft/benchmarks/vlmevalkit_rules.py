"""VLMEvalKit 0.2rc1@e8e78f0 matching rules shared by several benchmarks (``vlmeval/utils/matching_util.py``).

``can_infer`` (``can_infer_option`` then ``can_infer_text``) is how VLMEvalKit's ``exact_matching``
path reads a multiple-choice answer for MMBench, MMStar, Video-MME and MVBench: an option letter,
"Z" for a refusal, or False where VLMEvalKit would ask its LLM judge. Transcribed from the source
(not copied) and tested on hand-worked cases; the 'A is a quantifier' check runs upstream only
with the env var VERBOSE set, so it is off here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_REJECT = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
_VERBOSE_ANSWER = re.compile(r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**")
_SPLIT_CHARS = ".()[],:;!*#{}"
API_FAILURE = "Failed to obtain answer via API"
# pandas.read_csv's default NA strings: VLMEvalKit reads its TSVs and prediction sheets with pandas
# defaults, so an option cell or a prediction spelled like these becomes NaN upstream.
PANDAS_NA = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)


def can_infer_option(answer: str, choices: Mapping[str, Any] | list[str]) -> str | bool:
    """The one option letter standing alone among the last five tokens, "Z", or False."""
    if API_FAILURE in answer:
        return False
    if any(err in answer for err in _REJECT):
        return "Z"
    mod = answer
    for c in _SPLIT_CHARS:
        mod = mod.replace(c, " ")
    splits = [x.strip() for x in mod.split()]
    count = sum(1 for c in choices if c in splits)
    if count == 1:
        for ch in choices:
            if ch in splits and splits.index(ch) > len(splits) - 5:
                return ch
    elif count == 0 and "Z" in splits:  # upstream counts {'Z', ''}; '' is never a token
        return "Z"
    m = _VERBOSE_ANSWER.search(answer or "")
    if m and m.group(1).upper() in choices:
        return m.group(1).upper()
    return False


def can_infer_text(answer: str, choices: Mapping[str, Any]) -> str | bool:
    """The one option whose text occurs in a not-too-long answer (case-insensitive), or False."""
    answer = answer.lower()
    if len(answer) > 2 * sum(len(str(v)) for v in choices.values()):
        return False
    cands = [k for k, v in choices.items() if str(v).lower() in answer]
    return cands[0] if len(cands) == 1 else False


def can_infer(answer: Any, choices: Mapping[str, Any]) -> str | bool:
    """``matching_util.can_infer``: an option letter, 'Z' (refusal), or False (LLM judge needed)."""
    answer = str(answer)
    return can_infer_option(answer, choices) or can_infer_text(answer, choices)
