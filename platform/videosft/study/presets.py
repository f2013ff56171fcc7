"""Study presets: how big the miniature study is (data, steps, budgets, seeds), chosen by name.

`laptop` is sized by power, not by habit: 5 seeds and 384 held-out items per split. With the seed
spread earlier runs showed (sd ~7.4 points: 28.1 vs 38.5 at 16 frames) and a third of the items
flipping, `paired.planned_mde` gives a paired interval of about ±10 points and a minimum
detectable effect of ~14 points, against ±20 and ~28 for the old 2 seeds x 96 items, whose
intervals could not separate a 13-point cost from none.
`replicate_seeds` is a disjoint set for `study --replicate`. Trials reserve half a core each
(one torch thread), so a sweep runs two trials at once on two cores. `smoke` runs in CI in a few
minutes and checks the pipeline and determinism, not the verdict. The learning rates are not arbitrary:
on the tiny Qwen2.5-VL the spatial tasks are learnt at 3e-4 (image accuracy ~2x chance after 2500
steps) while 1e-3 and the demo's 3e-3 only learn the answer prior (accuracy stays at chance).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class StudyPreset(BaseModel):
    """The knobs of a miniature study run (everything else comes from the experiment defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    n_train_image: int = Field(ge=1)
    n_train_video: int = Field(ge=1)
    n_eval_image: int = Field(ge=1)
    n_eval_video: int = Field(ge=1)
    base_steps: int = Field(ge=1)  # stage 1: image SFT from random weights
    # "ray": stage 1 trains in this run through Ray Train (the platform's path; ~1-3 s per step on 2
    # cores). "local": the same recipe run in one process (stage1_local), shipped with the package for
    # the laptop recipe, else cached, else built once (base_model.ensure_base), then scored here.
    stage1_trainer: Literal["ray", "local"] = "ray"
    base_lr: float = Field(gt=0)
    video_steps: int = Field(ge=1)  # stage 2: Video-SFT from the base, same steps for every trial
    video_lr: float = Field(gt=0)
    micro_batch_size: int = Field(8, ge=1)
    budgets: list[int]  # training frame budgets of the fixed variant
    hybrid: bool = True  # add a Hybrid-Frame trial (per-sample budgets from `hybrid_predictor`)
    hybrid_predictor: str = "oracle"  # oracle: the known minimal budgets (the study's upper bound)
    replay_ratio: float = Field(0.0, ge=0.0, lt=1.0)  # >0: an image-replay trial at the largest budget
    seeds: list[int] = [0]
    replicate_seeds: list[int] = []  # `study --replicate`: a disjoint seed set that must agree
    eval_budget: int = Field(8, ge=1)  # the fixed evaluation budget (trials are also scored at their own)
    eval_limit: int | None = None
    alignment_batches: int = Field(2, ge=1)
    # CPUs one Train worker / eval actor reserves (torch gets int(max(1, cpus)) threads): 0.5 lets a
    # sweep run two trials side by side on two cores, each on one thread.
    worker_cpus: float = Field(0.5, gt=0)
    # Table 1 in miniature (study/table1.py): Hybrid-Frame trials with these learned predictors
    # (similarity, text_classifier, instruction) beside the oracle and the fixed budgets.
    table1_predictors: list[str] = []
    predictor_steps: int = Field(200, ge=1)  # SFT steps that teach the base to be the instruction predictor
    predictor_thumbnails: int = Field(4, ge=1)
    report_name: str = "study_report"  # <output_dir>/<report_name>.md / .json

    def experiment_overrides(self) -> dict[str, Any]:
        """The experiment-config values every stage of this preset shares."""
        return {
            # Decoders at half a worker: two trials' actor pools (0.25 each) always leave the one CPU a
            # Ray Data read/filter task asks for; at 0.5 each, two trials waiting on their reads deadlocked.
            "data": {
                "synthetic": {
                    "n_train_image": self.n_train_image,
                    "n_train_video": self.n_train_video,
                    "n_eval_image": self.n_eval_image,
                    "n_eval_video": self.n_eval_video,
                },
                "cpus_per_decoder": self.worker_cpus / 2,
            },
            "train": {
                "num_workers": 1,
                "cpus_per_worker": self.worker_cpus,
                "micro_batch_size": self.micro_batch_size,
                "log_every": 50,
            },
            "eval": {"limit": self.eval_limit, "batch_size": 16, "cpus_per_actor": self.worker_cpus},
        }


PRESETS: dict[str, StudyPreset] = {
    "laptop": StudyPreset(
        name="laptop",
        n_train_image=512,
        n_train_video=256,
        n_eval_image=384,
        n_eval_video=384,
        base_steps=2500,
        base_lr=3e-4,
        stage1_trainer="local",
        video_steps=300,
        video_lr=3e-4,
        budgets=[1, 4, 16],
        replay_ratio=0.5,
        seeds=[0, 1, 2, 3, 4],
        replicate_seeds=[5, 6, 7, 8, 9],
        eval_budget=8,
    ),
    "smoke": StudyPreset(
        name="smoke",
        n_train_image=16,
        n_train_video=16,
        n_eval_image=8,
        n_eval_video=8,
        base_steps=8,
        base_lr=3e-4,
        video_steps=4,
        video_lr=3e-4,
        micro_batch_size=4,
        budgets=[1, 4],
        replay_ratio=0.5,
        seeds=[0],
        replicate_seeds=[1],
        eval_budget=4,
        eval_limit=8,
        alignment_batches=1,
    ),
}


# Table 1 in miniature: the laptop study's data, base and sweeps (run it in the laptop preset's output
# dir to reuse them) on its first 3 seeds, plus a Hybrid-Frame trial per learned predictor.
PRESETS["table1"] = PRESETS["laptop"].model_copy(
    update={
        "name": "table1",
        "seeds": [0, 1, 2],
        "replicate_seeds": [],
        "table1_predictors": ["similarity", "text_classifier", "instruction"],
        "report_name": "table1_report",
    }
)

# Table 1's pipeline at smoke size (every predictor, a 4-step instruction predictor): checks code, not science.
PRESETS["smoke-table1"] = PRESETS["smoke"].model_copy(
    update={
        "name": "smoke-table1",
        "table1_predictors": ["similarity", "text_classifier", "instruction"],
        "predictor_steps": 4,
        "report_name": "table1_report",
    }
)


def get_preset(name: str) -> StudyPreset:
    if name not in PRESETS:
        raise ValueError(f"study --preset: unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name]
