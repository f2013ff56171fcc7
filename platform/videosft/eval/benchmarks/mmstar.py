"""MMStar: 1,500 vision-indispensable single-choice questions, 6 categories x 3 sub-categories.

Layouts: the HF ``Lin-Chen/MMStar`` parquet (index, question, image {bytes}, answer, category,
l2_category, meta_info) or VLMEvalKit's ``MMStar.tsv`` (same fields, base64 image, l2-category,
possibly A-D columns). The released question already lists its options ("Options: A: ..., B:
..."); option texts are parsed from it (or read from A-D columns) so text answers can be matched.

Prompt: question + "\\nAnswer with the option's letter from the given choices directly."
(lmms-eval's MMStar template).

Scores (answers via ``answers.extract_choice``; unparseable -> wrong, kept in the denominator):
  ``overall``        micro accuracy over all questions: VLMEvalKit's "Overall" and the MMStar
                     paper's average (categories are balanced, 250 each, so this equals the
                     macro mean over the 6 categories on the full set);
  ``macro_category`` mean of the 6 category accuracies;
  ``macro_l2``       mean of the l2-category accuracies: lmms-eval's ``average`` metric, which
                     differs from the above because l2 sizes are unequal;
  ``category/<c>`` and ``l2_category/<c>`` breakdowns.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from videosft.eval.answers import (LETTER_INSTRUCTION, corrects, format_options, group_accuracy, is_option_letter, judge_choice,
                                  mean, pct)
from videosft.eval.benchmarks import _io
from videosft.eval.benchmarks.base import Benchmark, EvalItem

_OPTION_SPLIT = re.compile(r"(?:^|,\s+|\n)([A-F])[:.]\s+")


def parse_options(question: str) -> list[str]:
    """Option texts from MMStar's inline "Options: A: x, B: y, ..." block ([] if absent)."""
    pos = question.rfind("Options:")
    if pos < 0:
        return []
    parts = _OPTION_SPLIT.split(question[pos + len("Options:"):].strip())
    # parts = ['', 'A', text, 'B', text, ...]; keep only a contiguous A, B, C... run
    letters, texts = parts[1::2], [t.strip() for t in parts[2::2]]
    out = []
    for i, (letter, text) in enumerate(zip(letters, texts)):
        if letter != "ABCDEF"[i]:
            break
        out.append(text)
    return out


def _field(row: Mapping[str, Any], *names: str) -> str:
    for n in names:
        v = row.get(n)
        if v is not None and not (isinstance(v, float) and v != v) and str(v).strip():
            return str(v).strip()
    return ""


def load(root: str, cache_dir: str | None = None, **_: Any) -> list[EvalItem]:
    """MMStar items; ``root`` is a .parquet/.tsv file or a folder holding one."""
    files = [root] if root.endswith((".tsv", ".parquet")) else _io.find_tables(root, suffixes=(".tsv", ".parquet"))
    if not files:
        raise _io.BenchmarkDataError(f"{root}: no MMStar .parquet or .tsv file found")
    cache_dir = cache_dir or _io.default_cache_dir("mmstar")
    items: list[EvalItem] = []
    for f in files:
        for i, row in enumerate(_io.read_table(f)):
            idx = str(_io.require(row, "index", f, f"row {i}"))
            where = f"index {idx}"
            question = str(_io.require(row, "question", f, where)).strip()
            column_opts = [_field(row, c) for c in "ABCD" if _field(row, c)]
            options = parse_options(question) or column_opts
            if not options:
                raise _io.BenchmarkDataError(f"{f} ({where}): no options in field 'question' nor columns A-D")
            if "Options:" not in question:
                question = f"{question}\n{format_options(options)}"
            answer = str(_io.require(row, "answer", f, where)).strip().upper()
            if not is_option_letter(answer, len(options)):
                raise _io.BenchmarkDataError(f"{f} ({where}): field 'answer' {answer!r} is not an option letter")
            image = _io.cache_image_cell(_io.require(row, "image", f, where), cache_dir, f"mmstar_{idx}", f)
            items.append(
                {
                    "id": idx,
                    "media_type": "image",
                    "media_path": image,
                    "question": f"{question}\n{LETTER_INSTRUCTION}",
                    "answer": answer,
                    "options": options,
                    "cluster": idx,
                    "category": _field(row, "category"),
                    "l2_category": _field(row, "l2_category", "l2-category", "L2-category"),
                }
            )
    return items


judge = judge_choice  # per row: the extracted option letter (None if no rule decides), right or not


def score(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    correct = corrects(judge(r) for r in rows)
    by_cat = group_accuracy(rows, correct, lambda r: str(r.get("category", "")))
    by_l2 = group_accuracy(rows, correct, lambda r: str(r.get("l2_category", "")))
    out: dict[str, Any] = {
        "overall": pct(sum(correct), len(rows)),
        "macro_category": mean(by_cat.values()),
        "macro_l2": mean(by_l2.values()),
        "n": len(rows),
    }
    out.update({f"category/{k}": v for k, v in sorted(by_cat.items())})
    out.update({f"l2_category/{k}": v for k, v in sorted(by_l2.items())})
    return out


MMSTAR = Benchmark(name="mmstar", modality="image", load=load, score=score, judge=judge)
