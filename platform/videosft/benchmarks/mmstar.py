"""MMStar: 1,500 vision-indispensable single-choice questions, 6 categories x 3 sub-categories.

Layouts read (one file, never two; ``eval.benchmark_options.mmstar.layout`` picks when both exist):
  ``hf``          the ``Lin-Chen/MMStar`` repo's ``mmstar.parquet`` (index, question, image
                  {bytes, path}, answer, category, l2_category, meta_info): what lmms-eval reads;
  ``vlmevalkit``  VLMEvalKit's ``MMStar.tsv`` (base64 ``image``; ``l2_category`` or
                  ``l2-category``; A-D option columns when present). The HF repo holds both files
                  with the same 1,500 questions, so a downloaded repo is read once, not twice.
  ``auto``        (default) the protocol's own file when present (lmms_eval: the parquet,
                  vlmevalkit: the TSV), else the other one.
``root`` may also name the file itself. The released question already lists its options
("Options: A: ..., B: ..."); option texts are parsed from it (or read from A-D columns).

Protocols (each a ``Benchmark`` in ``MMSTAR``):
  ``lmms_eval`` (0.7.3, ``tasks/mmstar``): prompt = ``mmstar_doc_to_text`` with the template's
      default kwargs (question stripped + "\\nAnswer with the option's letter from the given
      choices directly", no final period: upstream's text); the YAML sets no generation length, so
      lmms-eval's model default (1024) applies; parsing = ``_task_utils.mcq_extract.
      extract_mcq_answer(pred, choices=A-D)`` against ``answer.strip().upper()``; an empty or
      unparseable answer scores 0 and stays in the denominator; headline ``overall`` = the
      ``average`` metric: the mean of the 18 l2-category accuracies (``category/<c>`` = mean of
      that category's l2 accuracies, each upstream metric). ``micro`` is the plain accuracy.
  ``vlmevalkit`` (0.2rc1@e8e78f0, ``ImageMCQDataset``, vanilla MCQ eval, ``exact_matching``):
      prompt = ``ImageMCQDataset.build_prompt`` ("Question: ...\\nOptions:\\nA. ...\\nPlease select
      the correct answer from the options above. \\n"); parsing = ``matching_util.can_infer``;
      a row no rule resolves is wrong (``exact_matching``: 'Z') and flagged ``needs_judge``;
      headline ``overall`` = ``report_acc``'s Overall (plain accuracy); category and l2 means.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from videosft.benchmarks import _io
from videosft.benchmarks.answers import NO_ANSWER, extract_choice, is_option_letter, pct
from videosft.benchmarks.base import Benchmark, EvalItem
from videosft.benchmarks.lmms_eval_rules import extract_mcq_answer
from videosft.benchmarks.mmbench import vlmeval_is_na, vlmeval_prompt
from videosft.benchmarks.vlmevalkit_rules import can_infer as vlmeval_can_infer
from videosft.schema import CORRECT, EXTRACTED

_OPTION_SPLIT = re.compile(r"(?:^|,\s+|\n)([A-F])[:.]\s+")
HF_FILE = "mmstar.parquet"
TSV_FILE = "MMStar.tsv"
LAYOUTS = ("auto", "hf", "vlmevalkit")

# lmms-eval tasks/mmstar/_default_template_yaml, lmms_eval_specific_kwargs.default
LMMS_PRE_PROMPT = ""
LMMS_POST_PROMPT = "\nAnswer with the option's letter from the given choices directly"
_LMMS_REPLACE_PROMPT = " Please answer yes or no."


def parse_options(question: str) -> list[str]:
    """Option texts from MMStar's inline "Options: A: x, B: y, ..." block ([] if absent)."""
    pos = question.rfind("Options:")
    if pos < 0:
        return []
    parts = _OPTION_SPLIT.split(question[pos + len("Options:") :].strip())
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


# ---- lmms-eval 0.7.3 rules ----


def lmms_doc_to_text(question: str, pre_prompt: str = LMMS_PRE_PROMPT, post_prompt: str = LMMS_POST_PROMPT) -> str:
    """lmms-eval ``mmstar_doc_to_text``: the stripped question, kwargs' pre/post prompt added."""
    q = question.strip()
    if pre_prompt != "":
        q = f"{pre_prompt}{q.replace(_LMMS_REPLACE_PROMPT, '')}"
    if post_prompt != "":
        q = f"{q.replace(_LMMS_REPLACE_PROMPT, '')}{post_prompt}"
    return q


def _lenient(row: Mapping[str, Any]) -> str | None:
    return extract_choice(str(row.get("prediction") or ""), row.get("options") or []) or None


def judge_lmms(row: Mapping[str, Any]) -> dict[str, Any]:
    """lmms-eval ``mmstar_process_results``' score for one row, plus the lenient reading."""
    if row.get("error"):
        return {**NO_ANSWER, "lenient": None}
    got = extract_mcq_answer(str(row.get("prediction") or ""), ("A", "B", "C", "D"))
    ok = got != "" and got == str(row.get("answer") or "").strip().upper()
    return {EXTRACTED: got or None, CORRECT: ok, "lenient": _lenient(row)}


def _no_ground_truth(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    if rows and all(not str(r.get("answer") or "").strip() for r in rows):
        return {
            "overall": float("nan"),
            "n": len(rows),
            "no_ground_truth": True,
            "message": "mmstar: these rows carry no reference answers; nothing can be scored",
        }
    return None


def score_lmms(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """lmms-eval ``mmstar_aggregate_results`` for ``average`` and for each category metric."""
    empty = _no_ground_truth(rows)
    if empty:
        return empty
    by_l2: dict[str, list[float]] = defaultdict(list)
    l2_of_cat: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    hits = []
    for r in rows:
        s = 1.0 if judge_lmms(r)[CORRECT] else 0.0
        l2, cat = str(r.get("l2_category", "")), str(r.get("category", ""))
        by_l2[l2].append(s)
        l2_of_cat[cat][l2].append(s)
        hits.append(s)

    def agg(groups: Mapping[str, list[float]]) -> float:
        means = [sum(v) / len(v) for v in groups.values()]
        return 100.0 * sum(means) / len(means) if means else 0.0

    out: dict[str, Any] = {
        "overall": agg(by_l2),
        "micro": pct(sum(hits), len(hits)),
        "n": len(rows),
        "n_l2_categories": len(by_l2),
    }
    out.update({f"category/{c}": agg(g) for c, g in sorted(l2_of_cat.items())})
    out.update({f"l2_category/{k}": 100.0 * sum(v) / len(v) for k, v in sorted(by_l2.items())})
    return out


# ---- VLMEvalKit 0.2rc1 rules ----


def judge_vlmeval(row: Mapping[str, Any]) -> dict[str, Any]:
    """VLMEvalKit ``extract_answer_from_item`` under ``exact_matching``: ``can_infer`` or 'Z'."""
    if row.get("error"):
        return {**NO_ANSWER, "needs_judge": False, "lenient": None}
    choices = {k: v for k, v in (row.get("choices") or {}).items() if v is not None}  # Arrow may pad keys
    got = vlmeval_can_infer(str(row.get("prediction") if row.get("prediction") is not None else ""), choices)
    needs = got is False
    got = None if got is False else str(got)
    return {
        EXTRACTED: got,
        CORRECT: got is not None and got == str(row.get("answer") or ""),
        "needs_judge": needs,
        "lenient": _lenient(row),
    }


def score_vlmeval(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """VLMEvalKit ``report_acc``: Overall, then each l2-category and category mean of ``hit``."""
    empty = _no_ground_truth(rows)
    if empty:
        return empty
    hit: dict[tuple[str, str], list[int]] = defaultdict(list)
    allhits = []
    for r in rows:
        v = judge_vlmeval(r)
        h = int(v[CORRECT])
        allhits.append(h)
        hit[("category", str(r.get("category", "")))].append(h)
        hit[("l2_category", str(r.get("l2_category", "")))].append(h)
    out: dict[str, Any] = {"overall": pct(sum(allhits), len(allhits)), "n": len(rows)}
    for (level, key), hs in sorted(hit.items()):
        out[f"{level}/{key}"] = pct(sum(hs), len(hs))
    return out


# ---- loading ----


def _pick_file(root: str, layout: str, prefer: str) -> str:
    if layout not in LAYOUTS:
        raise _io.BenchmarkDataError(f"mmstar: layout {layout!r} unknown; expected one of {LAYOUTS}")
    if root.endswith((".tsv", ".parquet")):
        return root
    names = {"hf": HF_FILE, "vlmevalkit": TSV_FILE}
    order = [layout] if layout != "auto" else [prefer, "vlmevalkit" if prefer == "hf" else "hf"]
    for sub in ("", "data"):
        base = _io.join(root, sub) if sub else root
        for lay in order:
            path = _io.join(base, names[lay])
            if _io.exists(path):
                return path
    tables = _io.find_tables(root, suffixes=(".tsv", ".parquet"))
    if len(tables) == 1 and layout == "auto":
        return tables[0]
    wanted = " or ".join(names[l] for l in order)
    raise _io.BenchmarkDataError(
        f"{root}: no MMStar {wanted} found" + (f" (found {len(tables)} other tables; name the file)" if tables else "")
    )


def load(
    root: str, cache_dir: str | None = None, layout: str = "auto", *, protocol: str = "lmms_eval", **_: Any
) -> list[EvalItem]:
    """MMStar items with ``protocol``'s prompt; ``root`` is the file or the downloaded folder."""
    f = _pick_file(root, layout, "hf" if protocol == "lmms_eval" else "vlmevalkit")
    cache_dir = cache_dir or _io.default_cache_dir("mmstar")
    rows = _io.read_table(f)
    images = {str(_io.require(r, "index", f, f"row {i}")).strip(): r.get("image") for i, r in enumerate(rows)}
    items: list[EvalItem] = []
    for row in rows:
        idx = str(row["index"]).strip()
        where = f"index {idx}"
        raw_question = str(_io.require(row, "question", f, where))
        column_choices = {c: row[c] for c in "ABCDEFGHIJ" if c in row and not vlmeval_is_na(row[c])}
        options = parse_options(raw_question.strip()) or [str(v).strip() for v in column_choices.values()]
        if not options:
            raise _io.BenchmarkDataError(f"{f} ({where}): no options in field 'question' nor columns A-D")
        answer = _field(row, "answer").upper()
        if answer and not is_option_letter(answer, len(options)):
            raise _io.BenchmarkDataError(f"{f} ({where}): field 'answer' {answer!r} is not an option letter")
        cell = row.get("image")
        if isinstance(cell, str) and 0 < len(cell) <= 64 and cell.strip() in images:
            cell = images[cell.strip()]  # VLMEvalKit: a short cell names the row holding the image
        image = _io.cache_image_cell(_io.require({"image": cell}, "image", f, where), cache_dir, f"mmstar_{idx}", f)
        if protocol == "lmms_eval":
            question = lmms_doc_to_text(raw_question)
            choices = dict(zip("ABCD", options))
        else:
            # VLMEvalKit's TSV carries A-D columns; a parquet without them gets the inline options.
            choices = {k: str(v) for k, v in column_choices.items()} or dict(zip("ABCDEFGHIJ", options))
            hint = row.get("hint")
            question = vlmeval_prompt(raw_question, choices, None if vlmeval_is_na(hint) else str(hint))
        items.append(
            {
                "id": idx,
                "media_type": "image",
                "media_path": image,
                "question": question,
                "answer": answer,
                "options": options,
                "choices": choices,
                "cluster": idx,
                "category": _field(row, "category"),
                "l2_category": _field(row, "l2_category", "l2-category", "L2-category"),
            }
        )
    return items


_OPTIONS = ("layout",)
MMSTAR = {
    "lmms_eval": Benchmark(
        name="mmstar",
        modality="image",
        load=partial(load, protocol="lmms_eval"),
        score=score_lmms,
        judge=judge_lmms,
        protocol="lmms_eval",
        max_new_tokens=1024,
        options=_OPTIONS,
    ),
    "vlmevalkit": Benchmark(
        name="mmstar",
        modality="image",
        load=partial(load, protocol="vlmevalkit"),
        score=score_vlmeval,
        judge=judge_vlmeval,
        protocol="vlmevalkit",
        max_new_tokens=2048,
        options=_OPTIONS,
    ),
}
