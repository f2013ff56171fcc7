"""MMBench: single-choice questions scored with CircularEval, as lmms-eval or VLMEvalKit score them.

Layouts read (``eval.benchmark_options.mmbench``: ``lang`` en|cn|cc, ``split`` dev|test,
``version`` v10|v11 (TSV only), ``layout`` auto|hf|tsv):
  ``hf``   the ``lmms-lab/MMBench`` repo lmms-eval reads: ``<lang>/<split>-0000N-of-0000M.parquet``
           shards (``en/dev-00000-of-00001.parquet``, ``en/test-...``, ``cn/...``, ``cc/test-...``)
           with columns index, question, hint, answer, A-D, category, image {bytes, path},
           source, L2-category, comment, split. ``root`` may be the repo or the ``<lang>`` folder.
  ``tsv``  VLMEvalKit's ``MMBench_DEV_EN.tsv``, ``MMBench_DEV_EN_V11.tsv``, ``MMBench_TEST_EN.tsv``
           (``..._CN...``, ``MMBench_CC.tsv`` likewise): base64 ``image``; a short image cell names
           another row's ``index`` whose image it reuses.
  ``auto`` the protocol's own layout when present (lmms_eval: hf, vlmevalkit: tsv), else the other.
  ``root`` may also name one .parquet/.tsv file.
The published dev files already hold every CircularEval rotation (``index`` + k * 1e6, group =
``index % 1e6``); rows are used as published (neither tool generates rotations). A test split
carries no answers: it loads, and scores as "no ground truth" with a message.

Protocols (each a ``Benchmark`` in ``MMBENCH``):
  ``lmms_eval`` (0.7.3, ``tasks/mmbench`` en_utils / mmbench_evals, task ``mmbench_en_dev``):
      prompt = ``mmbench_doc_to_text``: "{hint} {question} There are several options:\\nA. ..\\nB. .."
      + "\\n" + post_prompt ("\\nAnswer with the option's letter ..."; hint dropped when None/"nan");
      ``max_new_tokens`` 1024 (YAML ``generation_kwargs``); parsing = ``MMBench_Evaluator.can_infer``
      (``can_infer_option`` over A-E whatever the option count, then ``can_infer_text`` over the A-D
      cells that are not NA: a missing option stored as the string "nan" is a choice text "nan",
      as upstream); the prediction is stripped first (``mmbench_process_results``). Where no rule
      fires upstream asks GPT (``extract_answer_from_item``); here the rule outcome stands (wrong)
      and the row is flagged ``needs_judge``. Headline ``overall`` = ``eval_result``'s
      overall_acc: a question (``index`` < 1e6) is right iff every row of its group is.
  ``vlmevalkit`` (0.2rc1@e8e78f0, ``ImageMCQDataset``, ``mcq_circular_eval``, ``exact_matching``):
      prompt = ``ImageMCQDataset.build_prompt`` ("Hint: ..\\nQuestion: ..\\nOptions:\\nA. ..\\n"
      "Please select the correct answer from the options above. \\n"; pandas' default NA strings
      drop a hint/option); parsing = ``matching_util.can_infer``; unresolved -> wrong, flagged
      ``needs_judge``; headline ``overall`` = ``report_acc`` Overall (circular).
Both also report ``vanilla`` (rotation-0 rows), ``all_rotations``, ``category/<c>``,
``l2_category/<c>`` (circular) and ``questions_needing_judge`` (groups whose outcome upstream
would hand to the LLM judge: no rule-read row wrong, at least one row unread).
"""

from __future__ import annotations

import math
import os
import re
import string
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from videosft.benchmarks import _io
from videosft.benchmarks.answers import NO_ANSWER, extract_choice, pct
from videosft.benchmarks.base import Benchmark, EvalItem
from videosft.benchmarks.vlmevalkit_rules import PANDAS_NA
from videosft.benchmarks.vlmevalkit_rules import can_infer as vlmeval_can_infer
from videosft.schema import CORRECT, EXTRACTED

_ROT = 1_000_000
LAYOUTS = ("auto", "hf", "tsv")
LANGS = ("en", "cn", "cc")
SPLITS = ("dev", "test")

# lmms-eval tasks/mmbench: mmbench.yaml metadata.sys_prompt and the en template's default kwargs
LMMS_SYS_PROMPT = "There are several options:"
LMMS_POST_PROMPT = "\nAnswer with the option's letter from the given choices directly."
LMMS_POST_PROMPT_CN = "\n请直接使用所提供的选项字母作为答案回答。"


def _isna(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def vlmeval_is_na(v: Any) -> bool:
    """A cell VLMEvalKit sees as NaN: None/NaN, or a string pandas' read_csv turns into NaN."""
    return _isna(v) or (isinstance(v, str) and v in PANDAS_NA)


# ---- VLMEvalKit 0.2rc1@e8e78f0 rules (image_mcq.py; matching in videosft/benchmarks/vlmevalkit_rules.py) ----


def vlmeval_prompt(question: str, choices: Mapping[str, Any], hint: str | None) -> str:
    """``ImageMCQDataset.build_prompt``'s text (``choices``: letter -> text, NA already dropped)."""
    prompt = f"Hint: {hint}\n" if hint is not None else ""
    prompt += f"Question: {question}\n"
    if choices:
        prompt += "Options:\n" + "".join(f"{k}. {v}\n" for k, v in choices.items())
        prompt += "Please select the correct answer from the options above. \n"
    return prompt


# ---- lmms-eval 0.7.3 rules (tasks/mmbench/en_utils.py, mmbench_evals.py) ----


def lmms_doc_to_text(
    doc: Mapping[str, Any],
    post_prompt: str | None = LMMS_POST_PROMPT,
    sys_prompt: str = LMMS_SYS_PROMPT,
    lang: str = "en",
) -> str:
    """``mmbench_doc_to_text`` with ``MMBench_Evaluator.create_options_prompt``.

    en_utils drops a None/"nan" hint; cn_utils drops only a None hint (a "nan" string stays);
    cc_utils (``mmbench_cn_cc_doc_to_text``) has no hint. All three read ``mmbench.yaml``'s
    English sys_prompt, the Chinese tasks included (upstream quirk, reproduced).
    """
    opts = {c: doc[c] for c in sorted(set(doc) & set("ABCDE")) if doc[c]}
    options_prompt = f"{sys_prompt}\n" + "".join(f"{k}. {v}\n" for k, v in opts.items() if not _isna(v) and v != "nan")
    options_prompt = options_prompt.rstrip("\n")
    hint = doc.get("hint") if lang != "cc" else None
    if not _isna(hint) and (hint != "nan" or lang == "cn"):
        query = f"{hint} {doc['question']} {options_prompt}"
    else:
        query = f"{doc['question']} {options_prompt}"
    return f"{query}\n{post_prompt}" if post_prompt else query


_LMMS_TUPS = (
    ("", "."),
    ("", ","),
    ("", ":"),
    ("", ")"),
    ("", ")."),
    ("(", ")"),
    ("(", ")."),
    (":", ""),
    (":", ","),
    (":", "."),
    (":", ")"),
    (":", ")."),
)


def lmms_can_infer_option(answer: str) -> str | bool:
    """``MMBench_Evaluator.can_infer_option`` (num_choice=5: letters A-E for every question)."""
    choices = "ABCDE"
    if "Failed to obtain answer via API" in answer:
        return False
    splits = [x.strip() for x in answer.split()]

    def count(prefix: str = "", suffix: str = "") -> int:
        return sum(1 for c in choices if prefix + c + suffix in splits)

    if count() == 1 and not ("A" in splits and len(splits) > 3):
        for ch in choices:
            if ch in splits:
                return ch
    for pre, suf in _LMMS_TUPS:
        if count(pre, suf) == 1:
            for ch in choices:
                if pre + ch + suf in splits:
                    return ch
    return False


def lmms_can_infer_text(answer: str, choices: Mapping[str, Any]) -> str | bool:
    answer = answer.lower()
    cands = [k for k, v in choices.items() if str(v).lower() in answer]
    return cands[0] if len(cands) == 1 else False


def lmms_choices(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``MMBench_Evaluator.build_choices`` over the row ``mmbench_process_results`` made from doc."""
    out = {}
    for ch in "ABCD":
        v = doc.get(ch, "nan")  # process_results: doc.get(c, "nan")
        if not _isna(v):
            out[ch] = v
    return out


def lmms_can_infer(answer: str, choices: Mapping[str, Any]) -> str | bool:
    return lmms_can_infer_option(answer) or lmms_can_infer_text(answer, choices)


# ---- per-row judges ----


def _lenient(row: Mapping[str, Any]) -> str | None:
    return extract_choice(str(row.get("prediction") or ""), row.get("options") or []) or None


def _verdict(got: str | bool, row: Mapping[str, Any]) -> dict[str, Any]:
    extracted = None if got is False else str(got)
    answer = str(row.get("answer") or "")
    return {
        EXTRACTED: extracted,
        CORRECT: extracted is not None and answer != "" and extracted == answer,
        "needs_judge": got is False,
        "lenient": _lenient(row),
    }


def judge_lmms(row: Mapping[str, Any]) -> dict[str, Any]:
    """One row (one rotation) by lmms-eval's rules: ``can_infer`` on the stripped prediction."""
    if row.get("error"):
        return {**NO_ANSWER, "needs_judge": False, "lenient": None}
    pred = str(str(row.get("prediction") or "").strip())
    return _verdict(lmms_can_infer(pred, lmms_choices(row.get("doc") or {})), row)


def judge_vlmeval(row: Mapping[str, Any]) -> dict[str, Any]:
    """One row by VLMEvalKit's rules: ``can_infer`` on ``str(prediction)``, choices A-Z not NA."""
    if row.get("error"):
        return {**NO_ANSWER, "needs_judge": False, "lenient": None}
    pred = row.get("prediction")
    choices = {k: v for k, v in (row.get("choices") or {}).items() if v is not None}  # Arrow may pad keys
    return _verdict(vlmeval_can_infer("" if pred is None else pred, choices), row)


# ---- CircularEval aggregation (identical under both tools' rule paths) ----


def _circular(rows: Sequence[Mapping[str, Any]], judge) -> dict[str, Any]:
    if rows and all(not str(r.get("answer") or "") for r in rows):
        return {
            "overall": float("nan"),
            "n_items": len(rows),
            "no_ground_truth": True,
            "message": "mmbench: this split carries no answers (test split: submit the predictions to "
            "the MMBench server); nothing can be scored here",
        }
    verdicts = [judge(r) for r in rows]
    by_group: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r, v in zip(rows, verdicts):
        by_group[int(r["index"]) % _ROT].append(v)
    mains = [r for r in rows if int(r["index"]) < _ROT]
    hits, needs_q = [], 0
    for r in mains:
        vs = by_group[int(r["index"])]
        wrong_read = any(v[EXTRACTED] is not None and not v[CORRECT] for v in vs)
        hits.append(all(v[CORRECT] for v in vs))
        needs_q += int(not wrong_read and any(v["needs_judge"] for v in vs))
    out: dict[str, Any] = {
        "overall": pct(sum(hits), len(hits)),
        "vanilla": pct(sum(v[CORRECT] for r, v in zip(rows, verdicts) if int(r["index"]) < _ROT), len(mains)),
        "all_rotations": pct(sum(v[CORRECT] for v in verdicts), len(verdicts)),
        "n_questions": len(mains),
        "n_items": len(rows),
        "questions_needing_judge": needs_q,
    }
    for level in ("category", "l2_category"):
        hit: dict[str, list[bool]] = defaultdict(list)
        for r, h in zip(mains, hits):
            hit[str(r.get(level, ""))].append(h)
        for key in sorted(hit):
            out[f"{level}/{key}"] = pct(sum(hit[key]), len(hit[key]))
    return out


def score_lmms(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``MMBench_Evaluator.eval_result`` (rules only): overall, category and l2-category hit rates."""
    return _circular(rows, judge_lmms)


def score_vlmeval(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``mcq_circular_eval`` + ``report_acc`` under ``exact_matching``."""
    return _circular(rows, judge_vlmeval)


# ---- loading ----


def _hf_shards(d: str, split: str) -> list[str]:
    if not _io.is_dir(d):
        return []
    return [
        f
        for f in _io.list_files(d, ".parquet")
        if re.fullmatch(rf"{split}-\d+-of-\d+(-[0-9a-f]+)?\.parquet", os.path.basename(f.rstrip("/")))
    ]


def tsv_name(lang: str, split: str, version: str) -> str:
    if lang == "cc":
        return "MMBench_CC.tsv"
    return f"MMBench_{split.upper()}_{lang.upper()}{'_V11' if version == 'v11' else ''}.tsv"


def find_files(
    root: str, lang: str = "en", split: str = "dev", layout: str = "auto", version: str = "v10", prefer: str = "hf"
) -> tuple[str, list[str]]:
    """(layout, files) of one published MMBench split under ``root`` (a folder or one file)."""
    for name, value, allowed in (
        ("lang", lang, LANGS),
        ("split", split, SPLITS),
        ("layout", layout, LAYOUTS),
        ("version", version, ("v10", "v11")),
    ):
        if value not in allowed:
            raise _io.BenchmarkDataError(f"mmbench: {name} {value!r} unknown; expected one of {allowed}")
    if root.endswith(".parquet"):
        return "hf", [root]
    if root.endswith(".tsv"):
        return "tsv", [root]
    if lang == "cc" and split != "test":
        raise _io.BenchmarkDataError("mmbench: lang 'cc' has only the test split (CCBench)")
    order = [layout] if layout != "auto" else [prefer, "tsv" if prefer == "hf" else "hf"]
    for lay in order:
        if lay == "hf":
            shards = _hf_shards(_io.join(root, lang), split) or _hf_shards(root, split)
            if shards:
                return "hf", shards
        else:
            for sub in ("", "data"):
                path = (
                    _io.join(root, sub, tsv_name(lang, split, version))
                    if sub
                    else _io.join(root, tsv_name(lang, split, version))
                )
                if _io.exists(path):
                    return "tsv", [path]
    raise _io.BenchmarkDataError(
        f"{root}: no MMBench {lang}/{split} found (looked for {lang}/{split}-0000N-of-0000M.parquet and "
        f"{tsv_name(lang, split, version)})"
    )


def _tsv_doc_cell(v: Any) -> Any:
    # A TSV cell pandas reads as NaN is a null in the HF layout lmms-eval reads.
    return None if vlmeval_is_na(v) else v


def load(
    root: str,
    cache_dir: str | None = None,
    lang: str = "en",
    split: str = "dev",
    layout: str = "auto",
    version: str = "v10",
    *,
    protocol: str = "lmms_eval",
    **_: Any,
) -> list[EvalItem]:
    """MMBench items for one published split, with ``protocol``'s prompt text."""
    lay, files = find_files(root, lang, split, layout, version, "hf" if protocol == "lmms_eval" else "tsv")
    cache_dir = cache_dir or _io.default_cache_dir("mmbench")
    post = LMMS_POST_PROMPT if lang == "en" else LMMS_POST_PROMPT_CN
    rows: list[dict[str, Any]] = []
    sources: list[str] = []
    for f in files:
        got = _io.read_table(f)
        rows += got
        sources += [f] * len(got)
    images = {}
    for i, (r, f) in enumerate(zip(rows, sources)):
        images[int(float(_io.require(r, "index", f, f"row {i}")))] = r.get("image")
    items: list[EvalItem] = []
    for row, f in zip(rows, sources):
        idx = int(float(row["index"]))
        where = f"index {idx}"
        letters = [c for c in string.ascii_uppercase if c in row]
        # The fields lmms-eval's doc_to_text / process_results read (TSV NA cells become nulls).
        keep = ("index", "question", "hint", "A", "B", "C", "D", "E")
        doc = {k: (_tsv_doc_cell(row[k]) if lay == "tsv" else row[k]) for k in keep if k in row}
        doc.setdefault("hint", None)
        question = doc.get("question")
        if _isna(question) or not str(question).strip():
            raise _io.BenchmarkDataError(f"{f} ({where}): missing required field 'question'")
        vlm_choices = {c: row[c] for c in letters if not vlmeval_is_na(row[c])}
        # Option texts as shown (for the lenient column): non-null cells, "nan" and "" being absent.
        options = [str(row[c]) for c in letters if not _isna(row[c]) and str(row[c]) not in ("", "nan")]
        if len(options) < 2:
            raise _io.BenchmarkDataError(f"{f} ({where}): fewer than two options in columns A, B, ...")
        ans = row.get("answer")
        answer = "" if vlmeval_is_na(ans) else str(ans).strip()
        if answer and (answer not in letters or _isna(row[answer])):
            raise _io.BenchmarkDataError(f"{f} ({where}): field 'answer' {answer!r} is not an option letter")
        cell, seen = images.get(idx), set()
        # VLMEvalKit dedup: a short cell names the row whose image this question shares.
        while isinstance(cell, str) and 0 < len(cell) <= 64 and cell.strip().isdigit() and cell not in seen:
            seen.add(cell)
            if int(cell) not in images:
                raise _io.BenchmarkDataError(f"{f} ({where}): image refers to a missing row {cell}")
            cell = images[int(cell)]
        if cell in (None, "") and idx >= _ROT:
            cell = images.get(idx % _ROT)  # a rotation row may leave its image to the original
        group = idx % _ROT
        path = _io.cache_image_cell(cell, cache_dir, f"mmbench_{group}", f)
        if protocol == "lmms_eval":
            prompt = lmms_doc_to_text(doc, post, lang=lang)
        else:
            hint = row.get("hint")
            prompt = vlmeval_prompt(str(question), vlm_choices, None if vlmeval_is_na(hint) else str(hint))
        items.append(
            {
                # lmms-eval's cn/cc task YAMLs generate 256 tokens, en 1024 (the Benchmark's default).
                **({"max_new_tokens": 256} if protocol == "lmms_eval" and lang != "en" else {}),
                "id": str(idx),
                "index": idx,
                "media_type": "image",
                "media_path": path,
                "cluster": str(group),
                "circular_group": str(group),
                "rotation": idx // _ROT,
                "question": prompt,
                "answer": answer,
                "options": options,
                "choices": {c: str(v) for c, v in vlm_choices.items()},
                "category": "" if vlmeval_is_na(row.get("category")) else str(row.get("category")),
                "l2_category": next(
                    (
                        str(row[k])
                        for k in ("L2-category", "l2-category", "l2_category")
                        if k in row and not vlmeval_is_na(row[k])
                    ),
                    "",
                ),
                "split": "" if vlmeval_is_na(row.get("split")) else str(row.get("split")),
                "doc": doc,  # the row as lmms-eval's task functions see it (HF layout, no image)
            }
        )
    missing = sum(1 for it in items if not it["answer"])
    if 0 < missing < len(items):
        raise _io.BenchmarkDataError(
            f"{files[0]}: {missing} of {len(items)} rows have no 'answer' (a dev split has "
            "every answer, a test split none)"
        )
    return items


def rotate(options: Sequence[str], answer: str) -> list[tuple[int, list[str], str]]:
    """CircularEval rotations: (k, options shifted left by k, the answer's new letter)."""
    n, a = len(options), "ABCDEFGHI".index(answer)
    return [(k, list(options[k:]) + list(options[:k]), "ABCDEFGHI"[(a - k) % n]) for k in range(n)]


_OPTIONS = ("lang", "split", "layout", "version")
MMBENCH = {
    # lmms-eval: _default_template_mmbench_en_yaml generation_kwargs.max_new_tokens = 1024 (cn/cc: 256)
    "lmms_eval": Benchmark(
        name="mmbench",
        modality="image",
        load=partial(load, protocol="lmms_eval"),
        score=score_lmms,
        judge=judge_lmms,
        protocol="lmms_eval",
        max_new_tokens=1024,
        options=_OPTIONS,
    ),
    # VLMEvalKit sets no per-benchmark length; its model wrappers default to 2048 (vlm/llava/llava.py).
    "vlmevalkit": Benchmark(
        name="mmbench",
        modality="image",
        load=partial(load, protocol="vlmevalkit"),
        score=score_vlmeval,
        judge=judge_vlmeval,
        protocol="vlmevalkit",
        max_new_tokens=2048,
        options=_OPTIONS,
    ),
}
