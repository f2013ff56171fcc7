# ray job submit --working-dir . --runtime-env clusters/runtime_env.yaml -- python jobs/predict_budgets.py --config jobs/configs/demo.yaml budget.predictor=similarity
"""Annotate the training manifest with a per-sample frame_budget (Hybrid-Frame); prints the new manifest."""

import _args  # noqa: F401  (puts platform/ on sys.path when run from a checkout)

from videosft.config import load_config
from videosft.data.budget.stage import budget_manifest
from videosft.tune.sweep import ensure_ray
from videosft.workspace import resolve_models, anchored, output_dir, prepare_inputs, train_manifest


def main() -> None:
    args = _args.parse(__doc__)
    cfg = resolve_models(anchored(load_config(args.config, args.overrides)), budget=True)  # fails before any cluster work
    ensure_ray()
    inputs = prepare_inputs(cfg)
    manifest = train_manifest(cfg, inputs)
    budget_cfg = cfg.budget
    if budget_cfg.model_path is None and budget_cfg.needs_model_path():
        # the instruction predictor defaults to the experiment's own model (the study used a small VLM)
        budget_cfg = budget_cfg.model_copy(update={"model_path": inputs.model_path, "family": cfg.model.family})
    out = budget_manifest(manifest, budget_cfg, cfg.sampling, str(output_dir(cfg) / "budgets"))
    print(f"budget manifest: {out}")


if __name__ == "__main__":
    main()
