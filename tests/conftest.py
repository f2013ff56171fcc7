"""Shared fixtures: CPU-only environment defaults for every test tier."""

import os

# DeepSpeed picks its accelerator at import; pin CPU unless a GPU test tier overrides it.
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
