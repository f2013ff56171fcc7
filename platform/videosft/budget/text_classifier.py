"""`text_classifier`: a budget from the instruction text alone, by a model that costs microseconds.

Hashed bag of words (unigrams + bigrams, a stable blake2b hash, not Python's salted `hash`) feeds a
multinomial logistic regression trained by full-batch gradient descent in numpy (no scikit-learn
dependency). It learns from oracle labels (`oracle` predictor: min_frames or model probing), so it
is the cheap student of the expensive probe; it never sees pixels. Weights are saved as ``.npz``
read with ``allow_pickle=False``: a checkpoint is data, never code.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from videosft import schema as S
from videosft.budget.base import BudgetConfig, BudgetPrediction, fallback, non_video_prediction, register

FORMAT = "videosft-text-budget-v1"
_WORD = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    """Lowercased words and word bigrams ("which colour" tells more than "which" and "colour")."""
    words = _WORD.findall(str(text).lower())
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def _bucket(token: str, n_features: int) -> int:
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n_features


class HashedTextClassifier:
    """Multinomial logistic regression on L2-normalised hashed word counts."""

    def __init__(self, classes: Sequence[int], n_features: int = 1024) -> None:
        if len(set(classes)) != len(classes) or not classes:
            raise ValueError(f"text_classifier: classes must be unique and non-empty, got {list(classes)}")
        self.classes = np.asarray(sorted(int(c) for c in classes), np.int64)
        self.n_features = int(n_features)
        self.weights = np.zeros((self.n_features, len(self.classes)), np.float64)
        self.bias = np.zeros(len(self.classes), np.float64)

    def features(self, texts: Sequence[str]) -> np.ndarray:
        x = np.zeros((len(texts), self.n_features), np.float64)
        for i, text in enumerate(texts):
            for tok in tokens(text):
                x[i, _bucket(tok, self.n_features)] += 1.0
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.maximum(norms, 1e-12)

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], epochs: int = 300, lr: float = 2.0, l2: float = 1e-4
    ) -> HashedTextClassifier:
        """Full-batch gradient descent on mean cross-entropy (+ L2); labels must be classes."""
        unknown = sorted(set(int(y) for y in labels) - set(self.classes.tolist()))
        if unknown:
            raise ValueError(f"text_classifier: labels {unknown} are not classes {self.classes.tolist()}")
        x = self.features(texts)
        y = np.zeros((len(texts), len(self.classes)))
        y[np.arange(len(texts)), np.searchsorted(self.classes, np.asarray(labels, np.int64))] = 1.0
        for _ in range(epochs):
            grad = (self._softmax(x) - y) / max(len(texts), 1)
            self.weights -= lr * (x.T @ grad + l2 * self.weights)
            self.bias -= lr * grad.sum(axis=0)
        return self

    def _softmax(self, x: np.ndarray) -> np.ndarray:
        z = x @ self.weights + self.bias
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self._softmax(self.features(texts))

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.classes[self.predict_proba(texts).argmax(axis=1)]

    def save(self, path: str | Path) -> Path:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as fh:  # a file handle: np.savez would append ".npz" to a bare name
            np.savez(
                fh,
                format=np.asarray(FORMAT),
                classes=self.classes,
                weights=self.weights,
                bias=self.bias,
                n_features=np.asarray(self.n_features),
            )
        return out

    @classmethod
    def load(cls, path: str | Path) -> HashedTextClassifier:
        with np.load(str(path), allow_pickle=False) as data:
            if str(data["format"]) != FORMAT:
                raise ValueError(f"{path}: not a {FORMAT} file (format={str(data['format'])!r})")
            model = cls(data["classes"].tolist(), int(data["n_features"]))
            model.weights, model.bias = data["weights"].copy(), data["bias"].copy()
        return model


def train_text_classifier(
    questions: Sequence[str],
    budgets: Sequence[int],
    candidates: Sequence[int],
    out_path: str | Path,
    n_features: int = 1024,
) -> Path:
    """Fit on (question, oracle budget) pairs and save; the path is what `budget.model_path` takes."""
    return HashedTextClassifier(candidates, n_features).fit(questions, budgets).save(out_path)


@register("text_classifier")
class TextClassifierPredictor:
    """Budget = the classifier's most likely candidate for the row's question."""

    name = "text_classifier"
    needs_frames = False
    needs_probe = False

    def __init__(
        self,
        candidates: Sequence[int],
        default: int,
        model_path: str | None = None,
        model: HashedTextClassifier | None = None,
    ) -> None:
        if model is None and not model_path:
            raise ValueError("budget.model_path: text_classifier needs a trained .npz (train_text_classifier)")
        self.model = model or HashedTextClassifier.load(str(model_path))
        self.candidates, self.default = list(candidates), int(default)
        extra = sorted(set(self.model.classes.tolist()) - set(self.candidates))
        if extra:
            raise ValueError(f"text_classifier: model classes {extra} are not candidates {self.candidates}")

    @classmethod
    def from_config(cls, cfg: BudgetConfig, contract: Any = None) -> TextClassifierPredictor:
        return cls(cfg.candidates, cfg.default, cfg.model_path)

    def predict(self, rows: list[dict[str, Any]]) -> list[BudgetPrediction]:
        asked = [i for i, r in enumerate(rows) if non_video_prediction(r, self.candidates) is None]
        probs = self.model.predict_proba([str(rows[i].get(S.QUESTION, "")) for i in asked]) if asked else []
        out = [non_video_prediction(r, self.candidates) for r in rows]
        for j, i in enumerate(asked):
            k = int(np.argmax(probs[j]))
            ok = bool(np.isfinite(probs[j]).all())
            out[i] = (
                BudgetPrediction(int(self.model.classes[k]), f"p={probs[j][k]:.3f}")
                if ok
                else fallback(self.default, "text_classifier: non-finite scores")
            )
        return [p for p in out if p is not None]
