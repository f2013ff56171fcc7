# ray job submit --working-dir . --runtime-env clusters/runtime_env.yaml -- python jobs/predict_budgets.py --config jobs/configs/demo.yaml budget.predictor=similarity
"""`videosft predict-budgets` as a job: the training manifest with a per-sample frame_budget (Hybrid-Frame)."""

import _args
from videosft.verbs import predict_budgets


def main() -> None:
    args = _args.parse("predict-budgets")
    print(f"budget manifest: {predict_budgets(**_args.kwargs(args))}")


if __name__ == "__main__":
    main()
