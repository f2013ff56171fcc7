"""The small streamed ZeRO-2 training run that the fault tests kill and resume.

One definition for test_train_resume (a worker process dies) and test_autoscale (a whole node
dies), so both exercise the same run and differ only in what they say they differ in.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CI_CONFIG = REPO / "jobs/configs/ci.yaml"


def resumable_run_overrides(output_dir: Path, *, steps: int, every: int, extra: list[str] = ()) -> list[str]:
    """ci.yaml overrides: 12 videos + 4 images at 8 frames, streamed (no frame cache, so every
    trained sample is decoded in the stream), 2 ZeRO-2 workers at micro-batch 2, a resumable
    checkpoint every ``every`` steps, 2 restarts allowed; ``extra`` comes last and wins."""
    return [
        f"output_dir={output_dir}",
        "data.synthetic.n_train_video=12",
        "data.synthetic.n_train_image=4",
        "data.synthetic.num_frames=8",
        "data.frame_cache=false",
        "data.stream_train=true",
        f"train.max_steps={steps}",
        "train.micro_batch_size=2",
        "train.num_workers=2",
        f"train.checkpoint_every={every}",
        "train.max_failures=2",
        "train.log_every=1",
        "train.zero_stage=2",
        "sweep.frame_budgets=[2]",
        *extra,
    ]
