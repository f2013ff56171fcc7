"""`text_classifier`: hashed bag of words + numpy logistic regression, trained on oracle labels."""

import numpy as np
import pytest

from videosft import schema as S
from videosft.budget import BudgetConfig, predictor_from_config
from videosft.budget.text_classifier import HashedTextClassifier, tokens, train_text_classifier

TOY = {  # a separable mapping: the wording says how many frames are needed
    1: ["what colour is the ball", "what colour is the car", "which colour is the shape"],
    2: ["which way does the ball move", "which way does the car go", "which direction does it move"],
    16: ["which light flashed first", "what flashed first in the clip", "which flash came first"],
}


def _toy():
    texts = [t for ts in TOY.values() for t in ts]
    labels = [b for b, ts in TOY.items() for _ in ts]
    return texts, labels


def test_tokens_are_words_and_bigrams():
    assert tokens("Which WAY, now?") == ["which", "way", "now", "which way", "way now"]


def test_learns_a_separable_mapping_and_generalises_by_words():
    texts, labels = _toy()
    model = HashedTextClassifier([1, 2, 4, 8, 16], n_features=256).fit(texts, labels)
    assert model.predict(texts).tolist() == labels
    unseen = ["what colour is the hat", "which way does the dog move", "what flashed first"]
    assert model.predict(unseen).tolist() == [1, 2, 16]
    probs = model.predict_proba(texts)
    assert np.allclose(probs.sum(axis=1), 1.0) and probs.max(axis=1).min() > 0.5


def test_save_load_round_trip_without_pickle(tmp_path):
    texts, labels = _toy()
    path = train_text_classifier(texts, labels, [1, 2, 4, 8, 16], tmp_path / "clf", n_features=128)
    assert path == tmp_path / "clf"  # no silent ".npz" suffix: the config names this exact file
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == {"format", "classes", "weights", "bias", "n_features"}
    back = HashedTextClassifier.load(path)
    assert back.predict(texts).tolist() == labels
    bad = tmp_path / "bad.npz"
    np.savez(bad, format=np.asarray("something-else"))
    with pytest.raises(ValueError, match="not a videosft-text-budget"):
        HashedTextClassifier.load(bad)


def test_rejects_labels_outside_classes():
    with pytest.raises(ValueError, match=r"labels \[3\]"):
        HashedTextClassifier([1, 2]).fit(["a"], [3])


def test_predictor_from_config(tmp_path):
    texts, labels = _toy()
    path = train_text_classifier(texts, labels, [1, 2, 4, 8, 16], tmp_path / "clf.npz")
    cfg = BudgetConfig(predictor="text_classifier", model_path=str(path))
    rows = [{S.MEDIA_TYPE: S.MEDIA_VIDEO, S.QUESTION: t} for t in texts] + [{S.MEDIA_TYPE: S.MEDIA_IMAGE}]
    got = predictor_from_config(cfg).predict(rows)
    assert [g.budget for g in got] == labels + [1] and not any(g.fell_back for g in got)
    assert got[0].raw.startswith("p=")
    with pytest.raises(ValueError, match="not candidates"):
        cfg = BudgetConfig(predictor="text_classifier", model_path=str(path), candidates=[1, 2], default=2)
        predictor_from_config(cfg)
    with pytest.raises(ValueError, match="budget.model_path"):
        predictor_from_config(BudgetConfig(predictor="text_classifier"))
