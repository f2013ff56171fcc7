# ray job submit --working-dir . --runtime-env clusters/runtime_env.yaml -- python jobs/attention.py --config jobs/configs/demo.yaml --model /path/to/base --model /path/to/trial_checkpoint
"""`videosft attention` as a job: the attention probe (the answer position's attention on the target's
visual tokens, per layer group) of each --model (default: the base model), one Ray task each (a GPU
each when train.use_gpu); JSON per checkpoint, attention.md and attention.png under <output_dir>/attention."""

import _args
from videosft.verbs import attention


def main() -> None:
    args = _args.parse("attention")
    attended = attention(**_args.kwargs(args))
    print(attended.paths["markdown"].read_text())
    print(f"attention: {', '.join(str(p) for p in attended.paths.values())}")


if __name__ == "__main__":
    main()
