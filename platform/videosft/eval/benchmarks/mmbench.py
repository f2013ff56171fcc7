"""MMBench: single-choice questions scored with CircularEval.

Layout: the OpenCompass / VLMEvalKit TSV (``MMBench_DEV_EN.tsv`` ...) or the HF
``lmms-lab/MMBench`` parquet, with columns index, question, hint, A, B, C, D (E), answer,
category, l2-category (HF: L2-category), image (base64). VLMEvalKit TSVs store a repeated image
once and put the index of the row holding it in later rows' ``image`` cell; that is resolved.

CircularEval: every question with n options is asked n times with its options rotated
(rotation k shows options k, k+1, ... in positions A, B, ...), and counts as right only if every
rotation is right. Published files that already hold the rotations (``index`` >= 1e6, the
group being ``index % 1e6``) are used as they are; otherwise rotations are generated here.
Each item carries ``circular_group`` (the original index) and ``rotation``.

Scores: ``overall`` = CircularEval accuracy over question groups (the official MMBench metric;
lmms-eval's and VLMEvalKit's MMBench numbers are both circular); ``vanilla`` = plain accuracy on
the unrotated questions (VLMEvalKit's non-circular MCQ eval); ``all_rotations`` = accuracy over
every asked item. Breakdowns ``category/<c>`` and ``l2_category/<c>`` are circular. Answers go
through ``answers.extract_choice``; where both tools fall back to a GPT judge and then to a
*random* option, an unparseable answer here is simply wrong.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping, Sequence

from videosft.eval.answers import LETTER_INSTRUCTION, format_options, is_option_letter, judge_choice, pct
from videosft.eval.benchmarks import _io
from videosft.eval.benchmarks.base import Benchmark, EvalItem

_ROT = 1_000_000


def _cell(row: Mapping[str, Any], *names: str) -> str:
    """A text cell by any of its spellings; NaN / "nan" / None are empty (VLMEvalKit convention)."""
    lower = {str(k).lower(): v for k, v in row.items()}
    for n in names:
        v = lower.get(n.lower())
        if v is None or (isinstance(v, float) and v != v):
            continue
        s = str(v).strip()
        if s and s.lower() != "nan":
            return s
    return ""


def _options(row: Mapping[str, Any]) -> list[str]:
    opts = []
    for letter in "ABCDEFGHI":
        text = _cell(row, letter)
        if not text:
            break  # options are contiguous from A
        opts.append(text)
    return opts


def build_prompt(question: str, hint: str, options: Sequence[str]) -> str:
    """LLaVA's MMBench prompt: hint, question, lettered options, letter instruction."""
    head = f"{hint}\n{question}" if hint else question
    return f"{head}\n{format_options(options)}\n{LETTER_INSTRUCTION}"


def rotate(options: Sequence[str], answer: str) -> list[tuple[int, list[str], str]]:
    """CircularEval rotations: (k, options shifted left by k, the answer's new letter)."""
    n, a = len(options), "ABCDEFGHI".index(answer)
    return [(k, list(options[k:]) + list(options[:k]), "ABCDEFGHI"[(a - k) % n]) for k in range(n)]


def _resolve_images(rows: list[dict[str, Any]], source: str) -> dict[int, Any]:
    by_index = {}
    for i, r in enumerate(rows):
        by_index[int(float(_io.require(r, "index", source, f"row {i}")))] = r.get("image")
    return by_index


def _image_cell(idx: int, images: dict[int, Any], source: str) -> Any:
    cell = images.get(idx)
    # VLMEvalKit dedup: a short numeric cell names the row whose image this question shares.
    seen = set()
    while isinstance(cell, str) and len(cell) <= 64 and cell.strip().isdigit() and idx not in seen:
        seen.add(idx)
        idx = int(cell)
        if idx not in images:
            raise _io.BenchmarkDataError(f"{source} (index {idx}): image refers to a missing row")
        cell = images[idx]
    return cell


def load(root: str, cache_dir: str | None = None, circular: bool = True, **_: Any) -> list[EvalItem]:
    """MMBench items; ``root`` is a .tsv/.parquet file or a folder holding one."""
    files = [root] if root.endswith((".tsv", ".parquet")) else _io.find_tables(root, suffixes=(".tsv", ".parquet"))
    if not files:
        raise _io.BenchmarkDataError(f"{root}: no MMBench .tsv or .parquet file found")
    cache_dir = cache_dir or _io.default_cache_dir("mmbench")
    items: list[EvalItem] = []
    for f in files:
        rows = _io.read_table(f)
        images = _resolve_images(rows, f)
        has_rotations = any(idx >= _ROT for idx in images)
        for i, row in enumerate(rows):
            idx = int(float(row["index"]))
            if not circular and idx >= _ROT:
                continue
            where = f"index {idx}"
            opts = _options(row)
            if len(opts) < 2:
                raise _io.BenchmarkDataError(f"{f} ({where}): fewer than two options in columns A, B, ...")
            answer = _cell(row, "answer").upper()
            if not is_option_letter(answer, len(opts)):
                raise _io.BenchmarkDataError(f"{f} ({where}): field 'answer' {answer!r} is not an option letter")
            group = idx % _ROT
            cell = _image_cell(idx, images, f)
            if cell in (None, "") and idx >= _ROT:
                cell = _image_cell(group, images, f)  # a rotation row may leave its image to the original
            path = _io.cache_image_cell(cell, cache_dir, f"mmbench_{group}", f)
            base = {
                "media_type": "image",
                "media_path": path,
                "cluster": str(group),
                "circular_group": str(group),
                "category": _cell(row, "category"),
                "l2_category": _cell(row, "l2-category", "l2_category"),
            }
            question, hint = _cell(row, "question"), _cell(row, "hint")
            if not question:
                raise _io.BenchmarkDataError(f"{f} ({where}): missing required field 'question'")
            rotations = [(idx // _ROT, opts, answer)] if has_rotations or not circular else rotate(opts, answer)
            for k, rot_opts, rot_answer in rotations:
                items.append(
                    dict(base, id=str(group + k * _ROT), rotation=k, options=list(rot_opts), answer=rot_answer,
                         question=build_prompt(question, hint, rot_opts))
                )
    return items


# Per row (one rotation): its own extracted option letter and whether that rotation is right; the
# circular "every rotation right" rule is applied by ``score`` over these verdicts.
judge = judge_choice


def score(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    groups: dict[str, bool] = {}
    meta: dict[str, tuple[str, str]] = {}
    vanilla: list[bool] = []
    every: list[bool] = []
    for r in rows:
        ok = judge(r)["correct"]
        g = str(r["circular_group"])
        groups[g] = groups.get(g, True) and ok
        meta.setdefault(g, (str(r.get("category", "")), str(r.get("l2_category", ""))))
        every.append(ok)
        if int(r.get("rotation", 0)) == 0:
            vanilla.append(ok)
    out: dict[str, Any] = {
        "overall": pct(sum(groups.values()), len(groups)),
        "vanilla": pct(sum(vanilla), len(vanilla)),
        "all_rotations": pct(sum(every), len(every)),
        "n_questions": len(groups),
        "n_items": len(rows),
    }
    for level, pos in (("category", 0), ("l2_category", 1)):
        hit: dict[str, int] = defaultdict(int)
        tot: dict[str, int] = defaultdict(int)
        for g, ok in groups.items():
            key = meta[g][pos]
            tot[key] += 1
            hit[key] += ok
        for key in sorted(tot):
            out[f"{level}/{key}"] = pct(hit[key], tot[key])
    return out


MMBENCH = Benchmark(name="mmbench", modality="image", load=load, score=score, judge=judge)
