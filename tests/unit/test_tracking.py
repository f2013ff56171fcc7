"""Tracking callbacks chosen in the config; what a trial reports to them."""

import pytest

from videosft.config import ConfigError, from_dict, load_config
from videosft.tune.tracking import check_tracking, tracking_callbacks, trial_metrics


def test_tensorboard_callback_from_config():
    from ray.tune.logger import TBXLoggerCallback

    cfg = from_dict({"tracking": {"backends": ["tensorboard"]}})
    assert [type(c) for c in tracking_callbacks(cfg)] == [TBXLoggerCallback]
    assert tracking_callbacks(from_dict({})) == []


def test_unknown_backend_is_a_config_error_and_missing_package_fails_fast(monkeypatch):
    with pytest.raises(ConfigError, match="tracking"):
        load_config(None, ["tracking.backends=[neptune]"])
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(ValueError, match="tracking.backends: 'mlflow' needs the 'mlflow' package"):
        check_tracking(from_dict({"tracking": {"backends": ["mlflow"]}}))


def test_trial_metrics_are_the_curve_then_numeric_scores():
    summary = {
        "frame_budget": "hybrid",
        "mean_frames": 5.5,
        "scores": {"synthetic_image": {"overall": 40.0, "ci": {"low": 1}}, "mme": {"overall": None}},
    }
    history = [{"step": 5, "loss": 2.0, "note": "x"}, {"step": 10, "loss": 1.5}]
    rows = trial_metrics(summary, history)
    assert rows[:2] == [{"train/step": 5.0, "train/loss": 2.0}, {"train/step": 10.0, "train/loss": 1.5}]
    assert rows[-1] == {"frames": 5.5, "synthetic_image/overall": 40.0}
    assert trial_metrics({"frame_budget": 4, "scores": {}}, [])[-1] == {"frames": 4.0}
