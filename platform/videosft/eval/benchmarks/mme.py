"""MME: 14 yes/no subtasks, two questions per image, scored as acc + acc+ per subtask.

Layouts read (under ``root``):
  * Hugging Face ``lmms-lab/MME`` parquet (``*.parquet`` or ``data/*.parquet``): question_id
    (e.g. "code_reasoning/0020.png"), image ({bytes}), question, answer (Yes/No), category;
  * the original release ``MME_Benchmark_release_version/<category>/``: either image + ``.txt``
    side by side, or ``images/`` + ``questions_answers_YN/``; every txt line is
    ``question<TAB>Yes|No``, two lines per image.

Scoring (official MME ``calculation.py``, lmms-eval ``mme_aggregate_results``): per category,
acc = % questions right, acc+ = % images with *both* questions right, score = acc + acc+
(0..200); perception = sum over the 10 perception categories (0..2000), cognition = sum over
the 4 cognition categories (0..800). ``overall`` = (perception + cognition) / (2 x #categories
present), i.e. the same number rescaled to 0..100 so it sits beside the other benchmarks.

Answer extraction: ``answers.extract_yes_no`` (unparseable -> wrong); ``judge`` gives each question
its own extracted yes/no and correctness, and acc / acc+ are aggregated from those verdicts. MME's own prefix rule
(lmms-eval ``parse_pred_ans``: "yes"/"no" within the first 4 characters) is reported alongside
as ``perception_official_parse`` / ``cognition_official_parse``; the two agree whenever the
model starts its answer with Yes/No, which the short-answer instruction asks for.

Prompt: ``prompt="lmms"`` (default; LLaVA / lmms-eval) replaces MME's " Please answer yes or
no." with "\\nAnswer the question using a single word or phrase."; ``prompt="official"`` keeps
the question as released.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any, Mapping, Sequence

from videosft.eval.answers import SHORT_INSTRUCTION, corrects, judge_yes_no, pct
from videosft.eval.benchmarks import _io
from videosft.eval.benchmarks.base import Benchmark, EvalItem

PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork", "OCR")
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")
CATEGORIES = PERCEPTION + COGNITION
_MME_SUFFIX = " Please answer yes or no."
_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def _prompt(question: str, mode: str) -> str:
    q = question.strip()
    if mode == "official":
        return q
    if mode != "lmms":
        raise ValueError(f"MME prompt must be 'lmms' or 'official', got {mode!r}")
    return q.replace(_MME_SUFFIX, "").strip() + "\n" + SHORT_INSTRUCTION


def _answer(value: Any, source: str, where: str) -> str:
    ans = str(value).strip().lower().rstrip(".")
    if ans not in ("yes", "no"):
        raise _io.BenchmarkDataError(f"{source} ({where}): field 'answer' must be Yes/No, got {value!r}")
    return ans


def _category(value: Any, source: str, where: str) -> str:
    cat = str(value).strip()
    if cat not in CATEGORIES:
        raise _io.BenchmarkDataError(f"{source} ({where}): field 'category' {cat!r} is not an MME category")
    return cat


def _item(qid: str, k: int, cat: str, path: str, question: str, answer: str, mode: str) -> EvalItem:
    return {
        "id": f"{qid}#{k}",
        "media_type": "image",
        "media_path": path,
        "question": _prompt(question, mode),
        "answer": answer,
        "options": [],
        "cluster": qid,
        "category": cat,
        "group": "perception" if cat in PERCEPTION else "cognition",
    }


def _load_parquet(files: list[str], cache_dir: str, mode: str) -> list[EvalItem]:
    items: list[EvalItem] = []
    seen: dict[str, int] = defaultdict(int)
    for f in files:
        for i, row in enumerate(_io.read_table(f)):
            where = f"row {i}"
            qid = str(_io.require(row, "question_id", f, where))
            cat = _category(_io.require(row, "category", f, where), f, where)
            path = _io.cache_image_cell(_io.require(row, "image", f, where), cache_dir, qid, f)
            ans = _answer(_io.require(row, "answer", f, where), f, where)
            items.append(_item(qid, seen[qid], cat, path, str(_io.require(row, "question", f, where)), ans, mode))
            seen[qid] += 1
    return items


def _load_release(root: str, mode: str) -> list[EvalItem]:
    items: list[EvalItem] = []
    for cat in CATEGORIES:
        cat_dir = _io.join(root, cat)
        if not _io.is_dir(cat_dir):
            continue
        split = _io.is_dir(_io.join(cat_dir, "questions_answers_YN"))
        txt_dir = _io.join(cat_dir, "questions_answers_YN") if split else cat_dir
        img_dir = _io.join(cat_dir, "images") if split else cat_dir
        images = {os.path.splitext(p.rsplit("/", 1)[-1])[0]: p for p in _io.list_files(img_dir) if p.lower().endswith(_IMAGE_EXT)}
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
                items.append(_item(qid, k, cat, images[stem], parts[0], ans, mode))
    return items


def load(root: str, cache_dir: str | None = None, prompt: str = "lmms", **_: Any) -> list[EvalItem]:
    """MME items from the HF parquet layout or the original per-category release."""
    _prompt("", prompt)  # validate the mode before reading anything
    files = _io.find_tables(root)
    if files:
        items = _load_parquet(files, cache_dir or _io.default_cache_dir("mme"), prompt)
    else:
        release = _io.join(root, "MME_Benchmark_release_version")
        items = _load_release(release if _io.is_dir(release) else root, prompt)
    if not items:
        raise _io.BenchmarkDataError(f"{root}: no MME parquet files and no MME category folders found")
    return items


def official_parse(prediction: Any) -> str:
    """MME / lmms-eval ``parse_pred_ans``: exact yes/no, y/n, else yes/no in the first 4 chars."""
    p = str(prediction or "").lower().strip().replace(".", "")
    if p in ("yes", "no"):
        return p
    if len(p) == 1:
        return {"y": "yes", "n": "no"}.get(p, "other")
    head = p[:4]
    return "yes" if "yes" in head else "no" if "no" in head else "other"


judge = judge_yes_no  # per row: extracted "yes"/"no" (None if unparsed), right or not


def _category_scores(rows: Sequence[Mapping[str, Any]], correct: Sequence[bool]) -> dict[str, dict[str, float]]:
    per_q: dict[str, list[bool]] = defaultdict(list)
    per_img: dict[str, dict[str, bool]] = defaultdict(dict)
    for r, ok in zip(rows, correct):
        cat = str(r["category"])
        per_q[cat].append(ok)
        img = per_img[cat]
        img[r["cluster"]] = img.get(r["cluster"], True) and ok  # acc+: every question of the image
    out = {}
    for cat, oks in per_q.items():
        acc = pct(sum(oks), len(oks))
        acc_plus = pct(sum(per_img[cat].values()), len(per_img[cat]))
        out[cat] = {"acc": acc, "acc_plus": acc_plus, "score": acc + acc_plus}
    return out


def score(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    cats = _category_scores(rows, corrects(judge(r) for r in rows))
    official_ok = [official_parse(r.get("prediction", "")) == str(r["answer"]).strip().lower() for r in rows]
    official = _category_scores(rows, official_ok)
    out: dict[str, Any] = {"n": len(rows)}
    for name, members in (("perception", PERCEPTION), ("cognition", COGNITION)):
        out[name] = sum(cats[c]["score"] for c in members if c in cats)
        out[f"{name}_official_parse"] = sum(official[c]["score"] for c in members if c in official)
    out["total"] = out["perception"] + out["cognition"]
    out["overall"] = out["total"] / (2 * len(cats)) if cats else 0.0
    for cat in CATEGORIES:
        if cat in cats:
            for k, v in cats[cat].items():
                out[f"{cat}/{k}"] = v
    return out


MME = Benchmark(name="mme", modality="image", load=load, score=score, judge=judge)
