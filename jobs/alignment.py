# ray job submit --working-dir . --runtime-env clusters/runtime_env.yaml -- python jobs/alignment.py --config jobs/configs/demo.yaml --model /path/to/base --model /path/to/trial_checkpoint
"""`videosft alignment` as a job: the gradient-alignment probe (image vs video loss gradients per
frame budget) of each --model (default: the base model), one Ray task each (a GPU each when
train.use_gpu); JSON per checkpoint, alignment.md and alignment.png under <output_dir>/alignment."""

import _args
from videosft.verbs import alignment


def main() -> None:
    args = _args.parse("alignment")
    aligned = alignment(**_args.kwargs(args))
    print(aligned.paths["markdown"].read_text())
    print(f"alignment: {', '.join(str(p) for p in aligned.paths.values())}")


if __name__ == "__main__":
    main()
