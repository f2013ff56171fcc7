# ray job submit --working-dir . --runtime-env clusters/runtime_env.yaml -- python jobs/prepare.py --config jobs/configs/demo.yaml
"""Resolve an experiment's inputs: build the synthetic set / tiny model when the config asks for them."""

import _args  # noqa: F401  (puts platform/ on sys.path when run from a checkout)

from videosft.config import load_config
from videosft.workspace import anchored, prepare_inputs, resolve_models


def main() -> None:
    args = _args.parse(__doc__)
    inputs = prepare_inputs(resolve_models(anchored(load_config(args.config, args.overrides))))
    print(f"model: {inputs.model_path}\ndata: {inputs.data_root}")


if __name__ == "__main__":
    main()
