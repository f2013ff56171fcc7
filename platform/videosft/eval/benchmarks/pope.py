"""POPE: object-hallucination yes/no probes on COCO, in random / popular / adversarial splits.

Layouts read (under ``root``):
  * Hugging Face ``lmms-lab/POPE`` parquet (``*.parquet`` or ``data/*.parquet``): question_id,
    question, answer (yes/no), image ({bytes}), image_source, category (= split);
  * the original repo's ``coco_pope_<split>.json`` files (JSON lines; also found under
    ``output/coco/``): question_id, image (COCO file name), text, label; images are read from
    ``image_dir`` (default ``root/val2014``).

Scoring, per split and pooled over the loaded splits. Predictions go through
``answers.extract_yes_no``; an unparseable answer is a prediction of neither yes nor no: wrong
for accuracy, a false negative when the label is yes, never a positive.
  accuracy = (TP + TN) / N, precision = TP / (TP + FP), recall = TP / (TP + FN),
  F1, and yes_ratio = predicted-yes / N, the share of *predictions* that say yes (lmms-eval's
  ``pope_aggregate_yes_ratio`` counts the labels instead, which is always 50% and hides a
  yes-biased model).
Conventions: ``overall`` is the F1 pooled over the loaded splits (VLMEvalKit "Overall" and
lmms-eval ``pope_f1_score`` both pool); ``f1_mean_splits`` is the mean of per-split F1 (how the
LLaVA papers report POPE). ``f1_pope_parse`` uses the original POPE rule (first sentence; "no"
or "not" among its words -> no, anything else -> yes), which turns unparseable text into "yes".
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Sequence

from videosft.eval.answers import EXTRACTED, SHORT_INSTRUCTION, judge_yes_no, mean
from videosft.eval.benchmarks import _io
from videosft.eval.benchmarks.base import Benchmark, EvalItem

SPLITS = ("random", "popular", "adversarial")


def _item(split: str, qid: Any, image_id: str, path: str, question: str, answer: Any, src: str) -> EvalItem:
    ans = str(answer).strip().lower()
    if ans not in ("yes", "no"):
        raise _io.BenchmarkDataError(f"{src} (question_id={qid}): answer/label must be yes/no, got {answer!r}")
    return {
        "id": f"{split}/{qid}",
        "media_type": "image",
        "media_path": path,
        "question": f"{str(question).strip()}\n{SHORT_INSTRUCTION}",
        "answer": ans,
        "options": [],
        "cluster": image_id,
        "split": split,
    }


def _load_parquet(files: list[str], splits: Sequence[str], cache_dir: str) -> list[EvalItem]:
    items = []
    for f in files:
        for i, row in enumerate(_io.read_table(f)):
            where = f"row {i}"
            split = str(_io.require(row, "category", f, where)).strip().lower()
            if split not in splits:
                continue
            qid = _io.require(row, "question_id", f, where)
            image_id = str(row.get("image_source") or qid)
            path = _io.cache_image_cell(_io.require(row, "image", f, where), cache_dir, image_id, f)
            question = _io.require(row, "question", f, where)
            items.append(_item(split, qid, image_id, path, question, _io.require(row, "answer", f, where), f))
    return items


def _load_original(root: str, splits: Sequence[str], image_dir: str) -> list[EvalItem]:
    items = []
    for split in splits:
        name = f"coco_pope_{split}.json"
        cands = [_io.join(root, name), _io.join(root, "output", "coco", name)]
        path = next((c for c in cands if _io.exists(c)), None)
        if path is None:
            raise _io.BenchmarkDataError(f"{cands[0]}: POPE split file not found (also tried output/coco/)")
        text = _io.read_text(path)
        if text.lstrip().startswith("["):  # some re-releases store a JSON list, not JSON lines
            records = list(enumerate(_io.read_json(path)))
        else:
            records = []
            for i, line in enumerate(text.splitlines()):
                if not line.strip():
                    continue
                try:
                    records.append((i, json.loads(line)))
                except ValueError as e:
                    raise _io.BenchmarkDataError(f"{path} (line {i + 1}): malformed JSON ({e})") from e
        for i, row in records:
            where = f"line {i + 1}"
            qid = _io.require(row, "question_id", path, where)
            image = str(_io.require(row, "image", path, where))
            question = _io.first_present(row, ("text", "question"), path, where)
            label = _io.first_present(row, ("label", "answer"), path, where)
            items.append(_item(split, qid, image, _io.media_ref(image_dir, image), question, label, path))
    return items


def load(
    root: str,
    splits: Sequence[str] = SPLITS,
    cache_dir: str | None = None,
    image_dir: str | None = None,
    **_: Any,
) -> list[EvalItem]:
    """POPE items for the requested splits, from the HF parquet or the original JSON-lines files."""
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ValueError(f"unknown POPE split(s) {bad}; known: {SPLITS}")
    files = _io.find_tables(root)
    if files:
        items = _load_parquet(files, splits, cache_dir or _io.default_cache_dir("pope"))
    else:
        items = _load_original(root, splits, image_dir or _io.join(root, "val2014"))
    if not items:
        raise _io.BenchmarkDataError(f"{root}: no POPE items for splits {list(splits)}")
    return items


def pope_rule(prediction: Any) -> str:
    """The original POPE ``evaluate.py`` rule: first sentence has no/not -> "no", else "yes"."""
    text = str(prediction or "")
    if "." in text:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if ("No" in words or "not" in words or "no" in words) else "yes"


# Per row: the extracted "yes"/"no" (None if unparsed) and whether it equals the label; the
# confusion counts below are built from these extracted answers.
judge = judge_yes_no


def confusion(rows: Sequence[Mapping[str, Any]], parse: Callable[[Any], str] | None = None) -> dict[str, float]:
    """accuracy, precision, recall, f1, yes_ratio (0..100) and the raw counts.

    The predicted label of a row is its ``judge`` verdict's extracted answer, or ``parse(prediction)``
    when another convention is asked for (``pope_rule``).
    """
    tp = fp = tn = fn = unparsed = 0
    for r in rows:
        pred = judge(r)[EXTRACTED] if parse is None else parse(r.get("prediction", ""))
        label = str(r["answer"]).lower()
        if pred not in ("yes", "no"):
            unparsed += 1
        if label == "yes":
            tp, fn = tp + (pred == "yes"), fn + (pred != "yes")
        else:
            fp, tn = fp + (pred == "yes"), tn + (pred == "no")
    n = len(rows)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": 100.0 * (tp + tn) / n if n else 0.0,
        "precision": 100.0 * precision,
        "recall": 100.0 * recall,
        "f1": 100.0 * f1,
        "yes_ratio": 100.0 * (tp + fp) / n if n else 0.0,
        "n": n,
        "unparsed": unparsed,
    }


def score(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    pooled = confusion(rows)
    out: dict[str, Any] = {"overall": pooled["f1"], **pooled}
    split_f1 = []
    for split in SPLITS:
        sub = [r for r in rows if r.get("split") == split]
        if sub:
            for k, v in confusion(sub).items():
                out[f"{split}/{k}"] = v
            split_f1.append(out[f"{split}/f1"])
    out["f1_mean_splits"] = mean(split_f1)
    out["f1_pope_parse"] = confusion(rows, pope_rule)["f1"]
    return out


POPE = Benchmark(name="pope", modality="image", load=load, score=score, judge=judge)
