"""Build a family's tokenizer locally (no model hub): a small byte-level BPE with the family's specials.

Tiny test models need a real tokenizer class with the real special tokens and chat template so the
processor, label masking and generation paths are the ones real checkpoints use. We train a
byte-level BPE on a small corpus (the synthetic task vocabulary plus common English) and wrap it in
the family's own transformers tokenizer class, so `AutoTokenizer.from_pretrained` round-trips it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

# Words every synthetic question/answer and chat header uses; keeps sequences short for tiny models.
BASE_CORPUS = """
system user assistant You are a helpful assistant.
What colour is the shape? What shape is it? How many shapes are there? Where is the shape?
Which colour flashed first? Which way does the shape move? What colour is the shape at the end?
Answer with one word: red, green, blue, yellow, white, purple, orange, cyan or magenta.
circle square triangle one two three four left right top bottom up down yes no first second
the a an of in on at to is are was be with for from by and or not this that it its frames frame
How many frames does this question need? Answer with a number: 1 2 4 8 16 32 64 128
A B C D E F option options choice choices letter directly given Answer the following question
video image picture clip move moves moving change changes colour color end start begin before after
0 1 2 3 4 5 6 7 8 9 10 ( ) . , : ; ? ! ' " - _ / \n
"""


def train_byte_level_bpe(corpus: Sequence[str], vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a byte-level BPE and return (vocab, merges) in the layout Qwen2Tokenizer takes."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    vocab = tok.get_vocab()
    # tokenizers exposes merges only through the serialized model; read them from there.
    merges_raw = json.loads(tok.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in merges_raw]
    return vocab, merges


def corpus_lines(extra: Sequence[str] = ()) -> list[str]:
    """The training corpus: base lines plus caller-provided text (e.g. the synthetic set's questions)."""
    return [line for line in BASE_CORPUS.splitlines() if line.strip()] + list(extra)
