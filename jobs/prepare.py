# ray job submit --working-dir . --runtime-env clusters/runtime_env.yaml -- python jobs/prepare.py --config jobs/configs/demo.yaml
"""`videosft prepare` as a job: resolve inputs (building the synthetic set / tiny model when the
config asks for them) and decode the training set once into the frame cache (resumable)."""

import _args
from videosft.verbs import prepare


def main() -> None:
    args = _args.parse("prepare")
    prepared = prepare(**_args.kwargs(args))
    print(f"model: {prepared.inputs.model_path}\ndata: {prepared.inputs.data_root}\nframe cache: {prepared.cache}")


if __name__ == "__main__":
    main()
