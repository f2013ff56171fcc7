"""MME: 14 yes/no subtasks, two questions per image, scored as acc + acc+ per subtask.

One loader for every published layout, one judge + scorer per evaluation protocol
(``eval.protocol``). Both protocols are reproduced with their quirks, not fixed.

Layouts read (under ``root``, first match wins):
  * Hugging Face ``lmms-lab/MME`` (lmms-eval's ``dataset_path``) parquet shards, as downloaded:
    ``data/test-0000N-of-00004-<hash>.parquet`` (or ``*.parquet`` directly under root); columns
    question_id (the image, e.g. "code_reasoning/0020.png"), image ({bytes, path}), question,
    answer ("Yes"/"No"), category;
  * VLMEvalKit's ``MME.tsv`` (``ImageYORNDataset``): index, image (base64, or a short string naming
    the ``index`` of the row whose image it reuses), question, answer, category, image_path;
  * the original release ``MME_Benchmark_release_version/<category>/``: image + ``.txt`` side by
    side, or ``images/`` + ``questions_answers_YN/``; every txt line is ``question<TAB>Yes|No``.
A file without answers (test split without ground truth) loads; its score says "no ground truth".

Protocol ``lmms_eval`` (lmms-eval 0.7.3, ``tasks/mme``):
  prompt ``mme_doc_to_text`` with the YAML's default kwargs: the question stripped, MME's
  " Please answer yes or no." removed, "\\nAnswer the question using a single word or phrase."
  appended; ``max_new_tokens`` 16 (mme.yaml); parse ``parse_pred_ans`` (lower, strip, drop every
  ".", exact yes/no, single "y"/"n", else "yes" / "no" anywhere in the first 4 characters, so
  "Nope" / "None" / "eyes" count; anything else is "other", wrong); aggregation
  ``mme_aggregate_results``: per category the mean over images of (acc + acc+) of that image,
  ``mme_perception_score`` / ``mme_cognition_score`` the sums over the categories present.
Protocol ``vlmevalkit`` (0.2rc1@e8e78f0, ``ImageYORNDataset`` + ``utils/yorn.py``):
  prompt the question as released (``ImageBaseDataset.build_prompt``; MME keeps its own
  " Please answer yes or no."); ``max_new_tokens`` 2048 (the default of VLMEvalKit's Qwen2-VL and
  LLaVA wrappers; the dataset sets none); parse ``YOrN_Extraction`` (lower,
  ``process_punctuation``, split on whitespace: "yes" among the words and "no" not -> Yes, the
  reverse -> No, else Unknown, which VLMEvalKit sends to its LLM judge: here it stays wrong and the
  row is flagged ``needs_judge``); score = extracted == answer; aggregation ``MME_rating``: per
  category acc + acc+ (acc+ over the product of an image's first two scores), ``perception`` and
  ``reasoning`` sums.
``overall`` (0..100, the trade-off headline) = (perception + cognition) / (2 x #categories present).
Every verdict also carries ``lenient`` (our ``answers.extract_yes_no``), never used for a score.
"""

from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from videosft.benchmarks import _io
from videosft.benchmarks.answers import extract_yes_no, pct
from videosft.benchmarks.base import Benchmark, EvalItem

PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork", "OCR")
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")
CATEGORIES = PERCEPTION + COGNITION
_MME_SUFFIX = " Please answer yes or no."  # lmms-eval utils.replace_prompt
LMMS_POST_PROMPT = "\nAnswer the question using a single word or phrase."  # mme.yaml default post_prompt
LMMS_MAX_NEW_TOKENS = 16  # mme.yaml generation_kwargs.max_new_tokens
VLMEVALKIT_MAX_NEW_TOKENS = 2048  # Qwen2VLChat / LLaVA wrappers' default; ImageYORNDataset sets none
_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
NO_GROUND_TRUTH = "no ground truth: the loaded split has no answers; nothing can be scored"


# ---------------------------------------------------------------- prompts (per protocol)


def lmms_prompt(question: str, pre_prompt: str = "", post_prompt: str = LMMS_POST_PROMPT) -> str:
    """lmms-eval ``mme_doc_to_text`` (the suffix is only removed when a pre/post prompt is set)."""
    q = str(question).strip()
    if pre_prompt != "":
        q = pre_prompt + q.replace(_MME_SUFFIX, "")
    if post_prompt != "":
        q = q.replace(_MME_SUFFIX, "") + post_prompt
    return q


def vlmevalkit_prompt(question: str) -> str:
    """VLMEvalKit ``ImageBaseDataset.build_prompt``: the question text as the TSV holds it."""
    return str(question)


# ---------------------------------------------------------------- VLMEvalKit's yes/no rules (shared with POPE)

_VLMEVAL_PUNCT = (
    ";",
    "/",
    "[",
    "]",
    '"',
    "{",
    "}",
    "(",
    ")",
    "=",
    "+",
    "\\",
    "_",
    "-",
    ">",
    "<",
    "@",
    "`",
    ",",
    "?",
    "!",
)
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
_PERIOD_STRIP = re.compile(r"(?<!\d)\.(?!\d)")


def vlmeval_process_punctuation(text: str) -> str:
    """``vlmeval.smp.misc.process_punctuation``, quirks included.

    A punctuation mark next to a space anywhere in the input (or any digit,digit in it) is deleted
    everywhere, otherwise replaced by a space; then periods not between digits are deleted, but at
    most 32 of them (upstream passes ``re.UNICODE`` as ``sub``'s count argument).
    """
    out = text
    has_comma_number = _COMMA_STRIP.search(text) is not None
    for p in _VLMEVAL_PUNCT:
        if (p + " " in text or " " + p in text) or has_comma_number:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, count=int(re.UNICODE))


def yorn_extraction(output: Any) -> str:
    """VLMEvalKit ``YOrN_Extraction``: "Yes", "No" or "Unknown"."""
    return _yorn(str(output))  # VLMEvalKit str()s every prediction first


@lru_cache(maxsize=1 << 16)  # bootstrap resamples re-judge the same texts
def _yorn(output: str) -> str:
    words = vlmeval_process_punctuation(output.lower()).split()
    if "yes" in words and "no" not in words:
        return "Yes"
    if "yes" not in words and "no" in words:
        return "No"
    return "Unknown"


def yes_no_cap(answer: str) -> str:
    """Our canonical "yes"/"no" in VLMEvalKit's TSV form ("Yes"/"No")."""
    return {"yes": "Yes", "no": "No"}.get(answer, answer)


# ---------------------------------------------------------------- lmms-eval's parse


def parse_pred_ans(prediction: Any) -> str:
    """lmms-eval ``mme/utils.parse_pred_ans`` ("from Otter Eval"): "yes", "no" or "other"."""
    p = str(prediction).lower().strip().replace(".", "")
    if p in ("yes", "no"):
        return p
    if len(p) == 1:
        return {"y": "yes", "n": "no"}.get(p, "other")
    head = p[:4]
    return "yes" if "yes" in head else "no" if "no" in head else "other"


official_parse = parse_pred_ans  # the name the old tests and notes used


# ---------------------------------------------------------------- loading


def _answer(value: Any, source: str, where: str) -> str | None:
    if value is None or (isinstance(value, float) and value != value) or str(value).strip() == "":
        return None  # a split published without ground truth
    ans = str(value).lower().strip().replace(".", "")  # lmms-eval's normalisation of doc["answer"]
    if ans not in ("yes", "no"):
        raise _io.BenchmarkDataError(f"{source} ({where}): field 'answer' must be Yes/No, got {value!r}")
    return ans


def _category(value: Any, source: str, where: str) -> str:
    cat = str(value).strip()
    if cat not in CATEGORIES:
        raise _io.BenchmarkDataError(f"{source} ({where}): field 'category' {cat!r} is not an MME category")
    return cat


def _item(
    qid: str,
    k: int,
    cat: str,
    path: str,
    question: str,
    answer: str | None,
    prompt: Callable[[str], str],
    item_id: str | None = None,
) -> EvalItem:
    return {
        "id": item_id or f"{qid}#{k}",
        "media_type": "image",
        "media_path": path,
        "question": prompt(question),
        "answer": answer,
        "options": [],
        "cluster": qid,  # the image: acc+ groups by it (lmms-eval question_id, VLMEvalKit image_path)
        "question_id": qid,
        "category": cat,
        "group": "perception" if cat in PERCEPTION else "cognition",
    }


def _load_parquet(files: list[str], cache_dir: str, prompt: Callable[[str], str]) -> list[EvalItem]:
    items: list[EvalItem] = []
    seen: dict[str, int] = defaultdict(int)
    for f in files:
        for i, row in enumerate(_io.read_table(f)):
            where = f"row {i}"
            qid = str(_io.require(row, "question_id", f, where))
            cat = _category(_io.require(row, "category", f, where), f, where)
            path = _io.cache_image_cell(_io.require(row, "image", f, where), cache_dir, qid, f)
            ans = _answer(row.get("answer"), f, where)
            items.append(_item(qid, seen[qid], cat, path, str(_io.require(row, "question", f, where)), ans, prompt))
            seen[qid] += 1
    return items


def tsv_images(rows: Sequence[Mapping[str, Any]], source: str) -> dict[str, tuple[str, str]]:
    """VLMEvalKit TSV image cells -> {index: (owner index, base64)}.

    As ``ImageBaseDataset.__init__``: a cell of at most 64 characters names the ``index`` of the row
    whose (longer) cell holds the image; rows without an image cell are skipped (``skip_noimg``).
    """
    cells = {str(_io.require(r, "index", source, f"row {i}")): str(r.get("image") or "") for i, r in enumerate(rows)}
    out = {}
    for idx, cell in cells.items():
        if not cell:
            continue
        owner = idx
        if len(cell) <= 64:
            owner = cell
            if owner not in cells or len(cells[owner]) <= 64:
                raise _io.BenchmarkDataError(f"{source} (index {idx}): image cell {cell!r} names no row with an image")
        out[idx] = (owner, cells[owner])
    return out


def _load_tsv(path: str, cache_dir: str, prompt: Callable[[str], str]) -> list[EvalItem]:
    rows = _io.read_table(path)
    images = tsv_images(rows, path)
    items = []
    for row in rows:
        idx = str(row.get("index"))
        if idx not in images:
            continue
        where = f"index {idx}"
        owner, b64 = images[idx]
        media = _io.cache_b64_image(b64, cache_dir, owner, path)
        cat = _category(_io.require(row, "category", path, where), path, where)
        # MME_rating groups an image's questions by image_path; without one, by the image's own row.
        image = str(row.get("image_path") or "") or f"{cat}/{owner}"
        ans = _answer(row.get("answer"), path, where)
        items.append(
            _item(image, 0, cat, media, str(_io.require(row, "question", path, where)), ans, prompt, item_id=idx)
        )
    return items


def _load_release(root: str, prompt: Callable[[str], str]) -> list[EvalItem]:
    items: list[EvalItem] = []
    for cat in CATEGORIES:
        cat_dir = _io.join(root, cat)
        if not _io.is_dir(cat_dir):
            continue
        split = _io.is_dir(_io.join(cat_dir, "questions_answers_YN"))
        txt_dir = _io.join(cat_dir, "questions_answers_YN") if split else cat_dir
        img_dir = _io.join(cat_dir, "images") if split else cat_dir
        images = {
            os.path.splitext(p.rsplit("/", 1)[-1])[0]: p
            for p in _io.list_files(img_dir)
            if p.lower().endswith(_IMAGE_EXT)
        }
        for txt in _io.list_files(txt_dir, ".txt"):
            stem = os.path.splitext(txt.rsplit("/", 1)[-1])[0]
            if stem not in images:
                raise _io.BenchmarkDataError(f"{txt}: no image named {stem}.* in {img_dir}")
            qid = f"{cat}/{images[stem].rsplit('/', 1)[-1]}"
            lines = [ln for ln in _io.read_text(txt).splitlines() if ln.strip()]
            for k, line in enumerate(lines):
                parts = line.split("\t")
                if len(parts) < 2:
                    raise _io.BenchmarkDataError(f"{txt} (line {k + 1}): want 'question<TAB>answer'")
                ans = _answer(parts[1], txt, f"line {k + 1}")
                items.append(_item(qid, k, cat, images[stem], parts[0], ans, prompt))
    return items


def _find_tsv(root: str) -> str | None:
    if not _io.is_dir(root):
        return None
    tsvs = [f for f in _io.list_files(root, ".tsv") if f.rsplit("/", 1)[-1].upper().startswith("MME")]
    return tsvs[0] if tsvs else None


def _loader(prompt: Callable[[str], str]):
    def load(root: str, cache_dir: str | None = None, **_: Any) -> list[EvalItem]:
        """MME items from the HF parquet, VLMEvalKit's MME.tsv or the original per-category release."""
        cache = cache_dir or _io.default_cache_dir("mme")
        files = _io.find_tables(root)
        tsv = None if files else _find_tsv(root)
        if files:
            items = _load_parquet(files, cache, prompt)
        elif tsv:
            items = _load_tsv(tsv, cache, prompt)
        else:
            release = _io.join(root, "MME_Benchmark_release_version")
            items = _load_release(release if _io.is_dir(release) else root, prompt) if _io.is_dir(root) else []
        if not items:
            raise _io.BenchmarkDataError(f"{root}: no MME parquet files, no MME.tsv and no MME category folders found")
        _io.check_media_exist("mme", items)
        return items

    return load


# ---------------------------------------------------------------- judges


def _unanswered(row: Mapping[str, Any]) -> bool:
    return bool(row.get("error")) or not str(row.get("prediction") or "").strip()


def _no_truth(row: Mapping[str, Any]) -> bool:
    return row.get("answer") in (None, "")


def _lenient(row: Mapping[str, Any]) -> str | None:
    return extract_yes_no(row.get("prediction") or "") or None


def judge_lmms(row: Mapping[str, Any]) -> dict[str, Any]:
    """lmms-eval: ``parse_pred_ans`` -> "yes"/"no" (None for "other"), right when it equals the answer."""
    if _unanswered(row):
        return {"extracted": None, "correct": False, "lenient": None}
    got = parse_pred_ans(row.get("prediction") or "")
    got = None if got == "other" else got
    ok = got is not None and not _no_truth(row) and got == str(row["answer"]).lower().strip().replace(".", "")
    return {"extracted": got, "correct": ok, "lenient": _lenient(row)}


def judge_vlmevalkit(row: Mapping[str, Any]) -> dict[str, Any]:
    """VLMEvalKit: ``YOrN_Extraction`` -> "Yes"/"No"; "Unknown" is None, wrong, and ``needs_judge``."""
    pred = "" if row.get("error") else str(row.get("prediction") or "")
    got = yorn_extraction(pred)
    if got == "Unknown":
        return {
            "extracted": None,
            "correct": False,
            "needs_judge": True,
            "lenient": _lenient(row) if pred.strip() else None,
        }
    ok = not _no_truth(row) and got == yes_no_cap(str(row["answer"]))
    return {"extracted": got, "correct": ok, "needs_judge": False, "lenient": _lenient(row)}


# ---------------------------------------------------------------- scoring


def _per_image(rows: Sequence[Mapping[str, Any]], correct: Sequence[bool]) -> dict[str, dict[str, list[float]]]:
    per: dict[str, dict[str, list[float]]] = defaultdict(dict)
    for r, ok in zip(rows, correct):
        per[str(r["category"])].setdefault(str(r["cluster"]), []).append(1.0 if ok else 0.0)
    return per


def _no_truth_scores(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"overall": math.nan, "n": len(rows), "no_ground_truth": True, "message": NO_GROUND_TRUTH}


def _finish(
    out: dict[str, Any], cats: Mapping[str, Mapping[str, float]], perception: float, cognition: float
) -> dict[str, Any]:
    out["total"] = perception + cognition
    out["overall"] = out["total"] / (2 * len(cats)) if cats else 0.0
    for cat in CATEGORIES:
        for k, v in cats.get(cat, {}).items():
            out[f"{cat}/{k}"] = v
    return out


def score_lmms(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """lmms-eval ``mme_aggregate_results``, once per metric key (perception, cognition)."""
    if any(_no_truth(r) for r in rows):
        return _no_truth_scores(rows)
    verdicts = [judge_lmms(r) for r in rows]
    per = _per_image(rows, [v["correct"] for v in verdicts])
    cats: dict[str, dict[str, float]] = {}
    for cat, images in per.items():
        scores = list(images.values())
        # upstream: mean over images of (acc of the image + 100 if every question right)
        total = 0.0
        for s in scores:
            total += (sum(s) == len(s)) * 100.0 + sum(s) / len(s) * 100.0
        n_q = sum(len(s) for s in scores)
        cats[cat] = {
            "score": total / len(scores),
            "acc": pct(sum(map(sum, scores)), n_q),
            "acc_plus": pct(sum(sum(s) == len(s) for s in scores), len(scores)),
        }
    perception = sum(cats[c]["score"] for c in cats if c in PERCEPTION)
    cognition = sum(cats[c]["score"] for c in cats if c not in PERCEPTION)
    out: dict[str, Any] = {
        "n": len(rows),
        "mme_perception_score": perception,
        "mme_cognition_score": cognition,
        "perception": perception,
        "cognition": cognition,
        "unparsed": sum(1 for v in verdicts if v["extracted"] is None),
    }
    return _finish(out, cats, perception, cognition)


def score_vlmevalkit(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """VLMEvalKit ``MME_rating``: acc + acc+ per category; perception and reasoning sums."""
    if any(_no_truth(r) for r in rows):
        return _no_truth_scores(rows)
    verdicts = [judge_vlmevalkit(r) for r in rows]
    per = _per_image(rows, [v["correct"] for v in verdicts])
    cats: dict[str, dict[str, float]] = {}
    for cat, images in per.items():
        scores = list(images.values())
        acc = 100.0 * sum(map(sum, scores)) / sum(len(s) for s in scores)
        # upstream: val[0] * val[1] (an image with a single question would raise there; here it counts alone)
        plus = 100.0 * sum(s[0] * s[1] if len(s) > 1 else s[0] for s in scores) / len(scores)
        cats[cat] = {"score": acc + plus, "acc": acc, "acc_plus": plus}
    perception = sum(cats[c]["score"] for c in cats if c in PERCEPTION)
    reasoning = sum(cats[c]["score"] for c in cats if c not in PERCEPTION)
    out: dict[str, Any] = {
        "n": len(rows),
        "perception": perception,
        "reasoning": reasoning,
        "cognition": reasoning,
        "unparsed": sum(1 for v in verdicts if v["extracted"] is None),
    }
    return _finish(out, cats, perception, reasoning)


MME = {
    "lmms_eval": Benchmark(
        name="mme",
        modality="image",
        load=_loader(lmms_prompt),
        score=score_lmms,
        judge=judge_lmms,
        protocol="lmms_eval",
        max_new_tokens=LMMS_MAX_NEW_TOKENS,
        options=("cache_dir",),
    ),
    "vlmevalkit": Benchmark(
        name="mme",
        modality="image",
        load=_loader(vlmevalkit_prompt),
        score=score_vlmevalkit,
        judge=judge_vlmevalkit,
        protocol="vlmevalkit",
        max_new_tokens=VLMEVALKIT_MAX_NEW_TOKENS,
        options=("cache_dir",),
    ),
}
