"""Text datasets for language models, as NumPy token ids (:class:`TextCorpus`).

Sources (:func:`load_text` and :func:`load_corpus` take any of these names):

- ``"pydoc"``: the offline default, CPython's own reference text (``pydoc_data.topics``), present
  on every machine with Python (:mod:`.sources`);
- ``"tiny_shakespeare"`` / ``"tfds:tiny_shakespeare"``: Tiny Shakespeare from the tfds catalog,
  where it can be downloaded (not under ``KERASDL_OFFLINE=1``); offline, give the file instead;
- ``"path/to/input.txt"``: any UTF-8 text file (:func:`~.sources.read_text_file` documents
  the rules and the one-line refusals).

A corpus is encoded at character level (nanoGPT's sorted distinct characters) or word level
(:mod:`.corpus` documents the pattern and ``<unk>``) and split contiguously, by default the
first 90% train and the last 10% validation (nanoGPT's ``prepare.py``; a test split is an
option). :mod:`.pipeline` turns the splits into ``tf.data`` batches (TensorFlow is imported
there only).

    >>> from kerasdl.data.text import load_corpus
    >>> c = load_corpus("../shared/data/tinyshakespeare/input.txt")
    >>> c.vocab_size, c.split_sizes()
    (65, {'train': 1003854, 'validation': 111540, 'test': 0})
"""

from __future__ import annotations

import os
from pathlib import Path

from kerasdl.data.text.corpus import (
    LEVELS,
    UNK,
    WORD_PATTERN,
    TextCorpus,
    Vocabulary,
    build_corpus,
    split_ids,
    split_sizes,
)
from kerasdl.data.text.sources import TextSource
from kerasdl.errors import KerasdlUsageError, UnknownNameError

__all__ = [
    "DEFAULT_TEXT_DATASET",
    "LEVELS",
    "TEXT_DATASETS",
    "TEXT_SUFFIXES",
    "UNK",
    "WORD_PATTERN",
    "TextCorpus",
    "TextSource",
    "Vocabulary",
    "build_corpus",
    "is_text_dataset",
    "load_corpus",
    "load_text",
    "split_ids",
    "split_sizes",
    "text_names",
]

TEXT_DATASETS = {
    "pydoc": "CPython's reference text (pydoc_data.topics, offline; hash and Python version recorded)",
    "tiny_shakespeare": "Tiny Shakespeare, 1.1 M characters (tfds catalog: needs a download once)",
}
DEFAULT_TEXT_DATASET = "pydoc"
# Suffixes that make a file a text dataset without --task (any file works with a text task).
TEXT_SUFFIXES = (".txt", ".text", ".md", ".rst")
TFDS_PREFIX = "tfds:"


def text_names() -> list[str]:
    """The built-in text dataset names (descriptions in :data:`TEXT_DATASETS`)."""
    return sorted(TEXT_DATASETS)


def _tfds_name(name: str) -> str | None:
    """``"tiny_shakespeare"`` for the names of the tfds source, else None."""
    low = name.lower()
    if low.startswith(TFDS_PREFIX):
        low = low[len(TFDS_PREFIX):]
    return "tiny_shakespeare" if low == "tiny_shakespeare" else None


def is_text_dataset(name) -> bool:
    """Whether ``name`` is a text dataset: a built-in name, ``tfds:tiny_shakespeare``, or an
    existing file ending in one of :data:`TEXT_SUFFIXES`. Cheap: one stat call, nothing read."""
    if not name:
        return False
    name = str(name)
    if name in TEXT_DATASETS or _tfds_name(name):
        return True
    path = Path(name).expanduser()
    try:
        return path.suffix.lower() in TEXT_SUFFIXES and path.is_file()
    except OSError:
        return False


def load_text(name: str, *, data_dir: str | None = None, download: bool | None = None) -> TextSource:
    """The raw text and description of the text dataset ``name`` (module docstring)."""
    from kerasdl.data.text import sources

    if not isinstance(name, (str, os.PathLike)) or not str(name).strip():
        raise KerasdlUsageError(f"text dataset name must be a non-empty string; received {name!r}")
    name = str(name).strip()
    if name == "pydoc":
        return sources.pydoc_text()
    if _tfds_name(name):
        return sources.tiny_shakespeare(name, data_dir=data_dir, download=download)
    path = Path(name).expanduser()
    if path.exists() or "/" in name or os.sep in name or path.suffix:
        return sources.read_text_file(path, display_name=name)
    raise UnknownNameError("text dataset", name, text_names(), extra="or give a UTF-8 text file")


def load_corpus(name: str, *, level: str = "char", min_count: int | None = None,
                validation_fraction: float = 0.1, test_fraction: float = 0.0,
                block_size: int | None = None, vocab: Vocabulary | None = None,
                data_dir: str | None = None, download: bool | None = None) -> TextCorpus:
    """Read, encode and split the text dataset ``name``.

    ``level``: ``"char"`` (nanoGPT) or ``"word"``; ``min_count``: word level only, rarer tokens
    become ``<unk>`` (default 2). ``vocab``: a stored vocabulary to encode with (a run's
    ``vocab.json``) instead of one built from the text. ``block_size``: when given, a split too
    short for one window is a one-line error here.
    """
    text = load_text(name, data_dir=data_dir, download=download)
    corpus = build_corpus(text.name, text.source, text.text, text.description, level=level,
                          min_count=min_count, validation_fraction=validation_fraction,
                          test_fraction=test_fraction, vocab=vocab)
    if block_size is not None:
        corpus.check_block_size(block_size, splits=("train", "validation", "test"))
    return corpus
