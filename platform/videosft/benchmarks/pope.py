"""POPE: object-hallucination yes/no probes on COCO, in random / popular / adversarial splits.

One loader for every published layout, one judge + scorer per evaluation protocol
(``eval.protocol``). Both protocols are reproduced with their quirks, not fixed.

Layouts read (under ``root``):
  * Hugging Face ``lmms-lab/POPE`` default config (lmms-eval task ``pope``):
    ``data/test-0000N-of-00003.parquet`` (or ``*.parquet`` directly under root); columns id,
    question_id, question, answer ("yes"/"no"), image_source, image ({bytes, path}), category
    (the split: adversarial / popular / random);
  * its ``Full`` config (lmms-eval tasks ``pope_adv`` / ``pope_pop`` / ``pope_random``):
    ``Full/<split>-0000N-of-0000M.parquet`` (or the converter's ``Full/<split>/0000.parquet``),
    the split named by the file; read when there is no default config (or ``config="Full"``);
  * VLMEvalKit's ``POPE.tsv``: index, image (base64, or a short string naming the ``index`` of
    the row whose image it reuses), question, answer ("Yes"/"No"), category (one split, or several
    joined by "," for a question shared by splits);
  * the original repo's ``coco_pope_<split>.json`` (JSON lines, also under ``output/coco/``):
    question_id, image (COCO file name), text, label; images from ``image_dir``
    (default ``root/val2014``), every one checked at load.
A row belonging to several splits is asked once and counted in each of its splits and once per
split in the pooled numbers (VLMEvalKit explodes ``category``; lmms-eval's default config holds
such a question once per split).

Protocol ``lmms_eval`` (lmms-eval 0.7.3, ``tasks/pope``): prompt ``pope_doc_to_text`` with the
YAML default kwargs (question stripped + "\\nAnswer the question using a single word or phrase.");
``max_new_tokens`` 128 (pope*.yaml); parse ``pope_process_results``: the prediction lowercased
and stripped must *equal* "yes" / "no" ("Yes." or "Yes, there is" is wrong); the verdict's
``extracted`` is that lowered text, what lmms-eval records as ``prediction``. Aggregation
``pope_aggregate_*``, in 0..1: accuracy (mean score), precision (TP / (TP + FP)), recall
(TP / (TP + FN), where FN counts only an exact "no" on a yes label: an unparsed answer leaves
recall's denominator), F1, and ``pope_yes_ratio``, which upstream computes from the *labels*
(always 0.5 on POPE); the share of predictions saying yes is reported beside it as
``predicted_yes_ratio``. Per split (``<split>/pope_f1_score`` ..., = the Full-config tasks) and
pooled over the loaded rows (= task ``pope``). ``overall`` = 100 x pooled ``pope_f1_score``.
Protocol ``vlmevalkit`` (0.2rc1@e8e78f0): prompt the question as the TSV holds it
(``ImageBaseDataset.build_prompt``; ``prompt="qwen2_vl"`` adds the " Please answer yes or no."
that VLMEvalKit's Qwen2-VL wrapper appends for POPE); ``max_new_tokens`` 2048 (its Qwen2-VL /
LLaVA wrappers' default); parse ``YOrN_Extraction`` ("Unknown" is wrong, counted as a predicted
no, and flagged ``needs_judge``); aggregation ``POPE_rating``: ``Overall`` (F1 x 100), ``acc``,
``precision``, ``recall`` (0..100), pooled and per split. ``overall`` = ``Overall``.
Every verdict also carries ``lenient`` (our ``answers.extract_yes_no``), never used for a score.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from videosft.benchmarks import _io
from videosft.benchmarks.base import Benchmark, EvalItem

# The VLMEvalKit yes/no verdict (YOrN_Extraction; Unknown -> wrong, needs_judge) is MME's, unchanged.
from videosft.benchmarks.mme import (
    _lenient,
    _no_truth,
    _no_truth_scores,
    _unanswered,
    judge_vlmevalkit,
    tsv_images,
    yes_no_cap,
)

SPLITS = ("random", "popular", "adversarial")
LMMS_POST_PROMPT = "\nAnswer the question using a single word or phrase."  # pope*.yaml default post_prompt
LMMS_MAX_NEW_TOKENS = 128  # pope*.yaml generation_kwargs.max_new_tokens
VLMEVALKIT_MAX_NEW_TOKENS = 2048  # Qwen2VLChat / LLaVA wrappers' default; ImageYORNDataset sets none
QWEN2_VL_YORN_PROMPT = " Please answer yes or no."  # vlmeval/vlm/qwen2_vl/prompt.py _build_yorn_prompt
_LMMS_FIELDS = ("pope_accuracy", "pope_precision", "pope_recall", "pope_f1_score", "pope_yes_ratio")


# ---------------------------------------------------------------- prompts


def lmms_prompt(question: str, pre_prompt: str = "", post_prompt: str = LMMS_POST_PROMPT) -> str:
    """lmms-eval ``pope_doc_to_text``."""
    return f"{pre_prompt}{str(question).strip()}{post_prompt}"


def vlmevalkit_prompt(question: str, mode: str = "dataset") -> str:
    """VLMEvalKit: ``ImageBaseDataset.build_prompt`` (the question as is), or Qwen2-VL's Y/N prompt."""
    if mode == "dataset":
        return str(question)
    if mode == "qwen2_vl":
        return str(question) + QWEN2_VL_YORN_PROMPT
    raise ValueError(f"POPE prompt must be 'dataset' or 'qwen2_vl', got {mode!r}")


# ---------------------------------------------------------------- loading


def _answer(value: Any, src: str, where: str) -> str | None:
    if value is None or (isinstance(value, float) and value != value) or str(value).strip() == "":
        return None  # published without ground truth
    ans = str(value).lower().strip()
    if ans not in ("yes", "no"):
        raise _io.BenchmarkDataError(f"{src} ({where}): answer/label must be yes/no, got {value!r}")
    return ans


def _item(
    categories: list[str],
    qid: Any,
    image_id: str,
    path: str,
    question: str,
    answer: str | None,
    prompt: Callable[[str], str],
    item_id: str | None = None,
) -> EvalItem:
    return {
        "id": item_id or f"{categories[0]}/{qid}",
        "media_type": "image",
        "media_path": path,
        "question": prompt(question),
        "answer": answer,
        "options": [],
        "cluster": image_id,
        "question_id": str(qid),
        "split": categories[0],
        "categories": list(categories),
    }


def _split_of(value: Any, src: str, where: str) -> list[str]:
    cats = [c.strip().lower() for c in str(value).split(",") if c.strip()]
    bad = [c for c in cats if c not in SPLITS]
    if not cats or bad:
        raise _io.BenchmarkDataError(f"{src} ({where}): field 'category' {value!r} is not a POPE split {SPLITS}")
    return cats


def _load_parquet(
    files: list[tuple[str, str | None]], splits: Sequence[str], cache_dir: str, prompt: Callable[[str], str]
) -> list[EvalItem]:
    items = []
    for f, file_split in files:
        if file_split is not None and file_split not in splits:
            continue
        for i, row in enumerate(_io.read_table(f)):
            where = f"row {i}"
            split = file_split or _split_of(_io.require(row, "category", f, where), f, where)[0]
            if split not in splits:
                continue
            qid = _io.require(row, "question_id", f, where)
            image_id = str(row.get("image_source") or qid)
            path = _io.cache_image_cell(_io.require(row, "image", f, where), cache_dir, image_id, f)
            question = _io.require(row, "question", f, where)
            items.append(_item([split], qid, image_id, path, question, _answer(row.get("answer"), f, where), prompt))
    return items


def _full_config_files(root: str) -> list[tuple[str, str | None]]:
    full = _io.join(root, "Full")
    if not _io.is_dir(full):
        return []
    out: list[tuple[str, str | None]] = []
    for f in _io.list_files(full, ".parquet"):  # Full/<split>-00000-of-00001.parquet
        split = f.rsplit("/", 1)[-1].split("-", 1)[0].lower()
        if split not in SPLITS:
            raise _io.BenchmarkDataError(f"{f}: a Full-config shard must be named <split>-NNNNN-of-NNNNN.parquet")
        out.append((f, split))
    for split in SPLITS:  # the parquet converter's Full/<split>/0000.parquet
        d = _io.join(full, split)
        if _io.is_dir(d):
            out += [(f, split) for f in _io.list_files(d, ".parquet")]
    return out


def _load_tsv(path: str, splits: Sequence[str], cache_dir: str, prompt: Callable[[str], str]) -> list[EvalItem]:
    rows = _io.read_table(path)
    images = tsv_images(rows, path)
    items = []
    for row in rows:
        idx = str(row.get("index"))
        if idx not in images:
            continue  # VLMEvalKit skip_noimg
        where = f"index {idx}"
        cats = [c for c in _split_of(_io.require(row, "category", path, where), path, where) if c in splits]
        if not cats:
            continue
        owner, b64 = images[idx]
        media = _io.cache_b64_image(b64, cache_dir, owner, path)
        image_id = str(row.get("image_path") or "") or owner
        question = _io.require(row, "question", path, where)
        items.append(
            _item(cats, idx, image_id, media, question, _answer(row.get("answer"), path, where), prompt, item_id=idx)
        )
    return items


def _load_original(root: str, splits: Sequence[str], image_dir: str, prompt: Callable[[str], str]) -> list[EvalItem]:
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
            items.append(
                _item(
                    [split], qid, image, _io.media_ref(image_dir, image), question, _answer(label, path, where), prompt
                )
            )
    return items


def _find_tsv(root: str) -> str | None:
    if not _io.is_dir(root):
        return None
    tsvs = [f for f in _io.list_files(root, ".tsv") if f.rsplit("/", 1)[-1].upper().startswith("POPE")]
    return tsvs[0] if tsvs else None


def _unique_ids(items: list[EvalItem]) -> list[EvalItem]:
    seen: dict[str, int] = {}
    for it in items:
        k = seen.get(it["id"], 0)
        seen[it["id"]] = k + 1
        if k:
            it["id"] = f"{it['id']}#{k}"
    return items


def _loader(protocol: str):
    def load(
        root: str,
        splits: Sequence[str] = SPLITS,
        cache_dir: str | None = None,
        image_dir: str | None = None,
        config: str | None = None,
        prompt: str = "dataset",
        **_: Any,
    ) -> list[EvalItem]:
        """POPE items for the requested splits from the HF parquet (default or Full config),
        VLMEvalKit's POPE.tsv or the original JSON-lines files."""
        if isinstance(splits, str):
            splits = (splits,)
        bad = [s for s in splits if s not in SPLITS]
        if bad:
            raise ValueError(f"unknown POPE split(s) {bad}; known: {SPLITS}")
        if config not in (None, "default", "Full"):
            raise ValueError(f"POPE config must be 'default' or 'Full', got {config!r}")
        if protocol == "lmms_eval":
            make = lmms_prompt
        else:
            vlmevalkit_prompt("", prompt)  # validate before reading anything
            make = lambda q: vlmevalkit_prompt(q, prompt)  # noqa: E731
        cache = cache_dir or _io.default_cache_dir("pope")
        default = [(f, None) for f in _io.find_tables(root)] if _io.is_dir(root) and config != "Full" else []
        full = _full_config_files(root) if _io.is_dir(root) and not default and config != "default" else []
        tsv = _find_tsv(root) if not (default or full) else None
        if default or full:
            items = _load_parquet(default or full, splits, cache, make)
        elif tsv:
            items = _load_tsv(tsv, splits, cache, make)
        else:
            items = _load_original(root, splits, image_dir or _io.join(root, "val2014"), make)
        if not items:
            raise _io.BenchmarkDataError(f"{root}: no POPE items for splits {list(splits)}")
        _io.check_media_exist("pope", items)
        return _unique_ids(items)

    return load


# ---------------------------------------------------------------- judges


def judge_lmms(row: Mapping[str, Any]) -> dict[str, Any]:
    """lmms-eval ``pope_process_results``: lowered, stripped prediction == answer, nothing else."""
    if _unanswered(row):
        return {"extracted": None, "correct": False, "lenient": None}
    got = str(row.get("prediction") or "").lower().strip()
    ok = not _no_truth(row) and got == str(row["answer"]).lower().strip()
    return {"extracted": got or None, "correct": ok, "lenient": _lenient(row)}


def _exploded(rows: Sequence[Mapping[str, Any]], verdicts: Sequence[Mapping[str, Any]]):
    """(split, row, verdict) once per split a row belongs to."""
    for r, v in zip(rows, verdicts):
        for split in r.get("categories") or [r.get("split")]:
            yield split, r, v


def lmms_metrics(pairs: Sequence[tuple[str, str, bool]]) -> dict[str, float]:
    """``pope_aggregate_*`` over (prediction, ground_truth, correct) triples, 0..1 as upstream."""
    n = len(pairs)
    tp = sum(1 for p, g, _ in pairs if g == "yes" and p == "yes")
    fp = sum(1 for p, g, _ in pairs if g == "no" and p == "yes")
    fn = sum(1 for p, g, _ in pairs if g == "yes" and p == "no")
    precision = tp / (tp + fp) if (tp + fp) > 0 else 0
    recall = tp / (tp + fn) if (tp + fn) > 0 else 0
    f1 = 2 * (precision * recall) / (precision + recall) if (precision + recall) > 0 else 0
    yes = sum(1 for _, g, _ in pairs if g == "yes")
    no = sum(1 for _, g, _ in pairs if g == "no")
    total = 0
    for _, _, ok in pairs:
        total += 1.0 if ok else 0.0
    return {
        "pope_accuracy": total / n if n else 0.0,
        "pope_precision": precision,
        "pope_recall": recall,
        "pope_f1_score": f1,
        "pope_yes_ratio": yes / (yes + no) if (yes + no) > 0 else 0,  # of the labels, as upstream
        "predicted_yes_ratio": sum(1 for p, _, _ in pairs if p == "yes") / n if n else 0.0,
        "unparsed": sum(1 for p, _, _ in pairs if p not in ("yes", "no")),
        "n": n,
    }


def score_lmms(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    if any(_no_truth(r) for r in rows):
        return _no_truth_scores(rows)
    verdicts = [judge_lmms(r) for r in rows]
    triples = [
        (s, v["extracted"] or "", str(r["answer"]).lower().strip(), v["correct"])
        for s, r, v in _exploded(rows, verdicts)
    ]
    out: dict[str, Any] = dict(lmms_metrics([t[1:] for t in triples]))
    out["overall"] = 100.0 * out["pope_f1_score"]
    split_f1 = []
    for split in SPLITS:
        sub = [t[1:] for t in triples if t[0] == split]
        if sub:
            for k, v in lmms_metrics(sub).items():
                out[f"{split}/{k}"] = v
            split_f1.append(out[f"{split}/pope_f1_score"])
    out["pope_f1_score_mean_splits"] = sum(split_f1) / len(split_f1) if split_f1 else 0.0
    out["rows"] = len(rows)
    return out


def vlmevalkit_metrics(pairs: Sequence[tuple[str | None, str, bool]]) -> dict[str, float]:
    """``POPE_rating`` over (extracted, answer, score): Overall (F1), acc, precision, recall, 0..100."""
    y_true = [1 if yes_no_cap(a) == "Yes" else 0 for _, a, _ in pairs]
    y_pred = [1 if e == "Yes" else 0 for e, _, _ in pairs]
    tp = sum(1 for t, p in zip(y_true, y_pred) if t == 1 and p == 1)
    fp = sum(1 for t, p in zip(y_true, y_pred) if t == 0 and p == 1)
    fn = sum(1 for t, p in zip(y_true, y_pred) if t == 1 and p == 0)
    precision = tp / (tp + fp) if (tp + fp) != 0 else 0
    recall = tp / (tp + fn) if (tp + fn) != 0 else 0
    f1 = 2 * (precision * recall) / (precision + recall) if (precision + recall) != 0 else 0
    n = len(pairs)
    return {
        "Overall": f1 * 100,
        "acc": 100.0 * sum(ok for _, _, ok in pairs) / n if n else 0.0,
        "precision": precision * 100,
        "recall": recall * 100,
        "n": n,
    }


def score_vlmevalkit(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    if any(_no_truth(r) for r in rows):
        return _no_truth_scores(rows)
    verdicts = [judge_vlmevalkit(r) for r in rows]
    triples = [(s, v["extracted"], str(r["answer"]), v["correct"]) for s, r, v in _exploded(rows, verdicts)]
    out: dict[str, Any] = dict(vlmevalkit_metrics([t[1:] for t in triples]))
    out["overall"] = out["Overall"]
    for split in SPLITS:
        sub = [t[1:] for t in triples if t[0] == split]
        if sub:
            for k, v in vlmevalkit_metrics(sub).items():
                out[f"{split}/{k}"] = v
    out["rows"] = len(rows)
    out["unknown"] = sum(1 for v in verdicts if v["extracted"] is None)
    return out


POPE = {
    "lmms_eval": Benchmark(
        name="pope",
        modality="image",
        load=_loader("lmms_eval"),
        score=score_lmms,
        judge=judge_lmms,
        protocol="lmms_eval",
        max_new_tokens=LMMS_MAX_NEW_TOKENS,
        options=("splits", "cache_dir", "image_dir", "config"),
    ),
    "vlmevalkit": Benchmark(
        name="pope",
        modality="image",
        load=_loader("vlmevalkit"),
        score=score_vlmevalkit,
        judge=judge_vlmevalkit,
        protocol="vlmevalkit",
        max_new_tokens=VLMEVALKIT_MAX_NEW_TOKENS,
        options=("splits", "cache_dir", "image_dir", "config", "prompt"),
    ),
}
