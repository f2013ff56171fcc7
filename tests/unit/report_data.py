"""Fake-but-realistic sweep outputs for the report tests: the shapes run_trial and evaluate_model write."""

from __future__ import annotations

from typing import Any

CONTRACT = "84d8ff962cb5"
MODALITY = {"synthetic_image": "image", "mme": "image", "synthetic_video": "video", "mvbench": "video"}


def bench_scores(
    name: str,
    overall: float | None,
    budget: int | str | None,
    ci: tuple[float, float] | None = None,
    model_path: str = "/runs/demo/base_model",
) -> dict[str, Any]:
    """One benchmark's scores dict as evaluate_model writes it (plus the bootstrap interval when given)."""
    s: dict[str, Any] = {
        "overall": overall,
        "n": 32,
        "chance": 25.0 if name.startswith("synthetic") else None,
        "task/colour": overall,
        "benchmark": name,
        "modality": MODALITY[name],
        "n_items": 32,
        "decode_errors": 0,
        "contract_id": CONTRACT,
        "frame_budget": budget,
        "model_path": model_path,
    }
    if ci is not None:
        s["ci"] = {
            "low": ci[0],
            "high": ci[1],
            "level": 0.95,
            "n_clusters": 32,
            "resamples": 1000,
            "seed": 0,
            "metric": "overall",
            "cluster_key": "cluster",
        }  # as eval/runner.py writes it
    return s


def scores(values: dict[str, float | None], budget: int | str | None, ci: bool = False) -> dict[str, dict[str, Any]]:
    return {
        name: bench_scores(name, v, budget, (v - 4.0, v + 4.0) if ci and v is not None else None)
        for name, v in values.items()
    }


def trial(
    budget: int | str,
    values: dict[str, float | None],
    *,
    model: str = "tiny-qwen2_5_vl",
    params: int | None = 1_234_567,
    rejected: int = 0,
    loss: float = 2.0,
    ci: bool = False,
    mean_frames: float | None = None,
    use_gpu: bool = False,
) -> dict[str, Any]:
    """A trial summary.json as tune/sweep.run_trial writes it."""
    frames = mean_frames if mean_frames is not None else float(budget)  # type: ignore[arg-type]
    vis = 20.0 * frames
    out: dict[str, Any] = {
        "frame_budget": budget,
        "checkpoint": f"/runs/demo/train/train_budget_{budget}/checkpoint_000000",
        "model": {"family": "qwen2_5_vl", "name": model, "path": f"/models/{model}", "params": params},
        "train": {
            "step": 100,
            "loss": loss,
            "samples_per_s": 4.0,
            "tokens_per_s": 400.0,
            "visual_tokens_per_s": 4.0 * vis,
            "final": 1,
        },
        "scores": scores(values, budget, ci),
        "data": {"rows": 80, "rejected": rejected, "rejects_path": f"/runs/demo/trials/budget_{budget}/rejects.jsonl"},
        "compute": {
            "unit": "GPU-h" if use_gpu else "CPU-h",
            "num_workers": 2,
            "use_gpu": use_gpu,
            "train_devices": 2 if use_gpu else 1.0,
            "train_wall_s": 360.0,
            "eval_wall_s": 36.0,
            "train_device_hours": 0.1,
            "eval_device_hours": 0.01,
            "device_hours": 0.11,
            "samples_seen": 800,
            "device_seconds_per_sample": 0.45,
            "visual_tokens_per_sample": vis,
            "tokens_per_sample": 100.0,
            "visual_tokens_total": vis * 800,
        },
        "contract_id": CONTRACT,
        "config_hash": "0123456789ab",
        "finished_at": "2026-01-01T00:00:00+0000",
    }
    if mean_frames is not None:
        out["mean_frames"] = mean_frames
    return out
