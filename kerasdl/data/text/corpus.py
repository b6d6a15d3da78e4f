"""Vocabularies, the deterministic split and :class:`TextCorpus` (a text encoded as token ids).

**Character level** (the default): the vocabulary is the sorted list of the distinct characters
of the corpus and a character's id is its index in that list -- exactly nanoGPT's
``data/shakespeare_char/prepare.py`` (Karpathy 2022), so Tiny Shakespeare gives the same 65
tokens and the same ids. ``decode(encode(s)) == s`` for every text made of known characters.

**Word level** (``level="word"``): the text is cut by the regular expression :data:`WORD_PATTERN`,

    `` ?\\w+`` | `` ?[^\\w\\s]`` | ``\\s``

i.e. a run of word characters (Unicode letters, digits, ``_``) or a single punctuation mark, each
with at most one leading space attached (as GPT-2's pre-tokenizer does, Radford et al. 2019), and
every other whitespace character (newline, tab, a second space) as a token of its own. The tokens
therefore join back to the text exactly: ``decode(encode(s)) == s`` when every token is known.
Tokens seen fewer than ``min_count`` times (default 2) become ``<unk>`` (id 0, always present);
``<unk>`` decodes as the literal text ``<unk>``. The vocabulary lists ``<unk>`` first, then the
tokens by descending count (ties in code-point order).

The vocabulary is built from the whole corpus, as nanoGPT does (so no validation token is out of
vocabulary), and is stored with a run as ``vocab.json`` (:meth:`Vocabulary.to_json`:
level and tokens). **Split** (:func:`split_ids`): the first 90% of the token ids train, the last
10% validate (nanoGPT), the fractions an option; ``test_fraction > 0`` carves a test split off the
end (e.g. 90/5/5: train, validation, test in that order, contiguous, never shuffled).

Plain Python and NumPy: nothing here imports TensorFlow.
"""

from __future__ import annotations

import collections
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kerasdl.errors import KerasdlUsageError, UnknownNameError

__all__ = [
    "LEVELS",
    "UNK",
    "WORD_PATTERN",
    "TextCorpus",
    "Vocabulary",
    "build_corpus",
    "split_ids",
    "split_sizes",
]

LEVELS = ("char", "word")
UNK = "<unk>"
WORD_PATTERN = r" ?\w+| ?[^\w\s]|\s"
WORD_MIN_COUNT = 2  # default min_count of a word vocabulary
VOCAB_FORMAT = "kerasdl-vocabulary"
VOCAB_VERSION = 1
SHOW_UNKNOWN = 10  # an out-of-vocabulary error names at most this many tokens
_WORD_RE = re.compile(WORD_PATTERN)


def _show(token: str) -> str:
    """A token as an error names it: its repr, and the code point of a single character."""
    if len(token) == 1:
        return f"{token!r} (U+{ord(token):04X})"
    return repr(token)


class Vocabulary:
    """Tokens <-> int32 ids at character or word level (see the module docstring).

    ``Vocabulary.build(text, level="char")`` makes one from a corpus; ``Vocabulary(tokens, level)``
    restores one (a word vocabulary's ``tokens[0]`` must be ``<unk>``).
    """

    def __init__(self, tokens, level: str = "char"):
        if level not in LEVELS:
            raise UnknownNameError("vocabulary level", str(level), LEVELS)
        tokens = [str(t) for t in tokens]
        if not tokens:
            raise KerasdlUsageError("a vocabulary needs at least one token")
        if len(set(tokens)) != len(tokens):
            dup = next(t for t, n in collections.Counter(tokens).items() if n > 1)
            raise KerasdlUsageError(f"the vocabulary lists the token {dup!r} twice")
        if level == "char":
            bad = next((t for t in tokens if len(t) != 1), None)
            if bad is not None:
                raise KerasdlUsageError(
                    f"a character vocabulary holds single characters, not {bad!r}"
                )
        elif tokens[0] != UNK:
            raise KerasdlUsageError(f"a word vocabulary starts with {UNK!r}, not {tokens[0]!r}")
        self.level = level
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}
        if level == "char":
            # Code points sorted, with the id of each: encode is one searchsorted over the text.
            cps = np.array([ord(t) for t in tokens], dtype=np.int64)
            self._order = np.argsort(cps, kind="stable")
            self._cps = cps[self._order]
            self._cp_of_id = cps.astype(np.uint32)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, text: str, level: str = "char", min_count: int | None = None) -> "Vocabulary":
        """The vocabulary of ``text``: its sorted distinct characters (``char``), or its word-level
        tokens seen at least ``min_count`` times (default 2) after ``<unk>`` (``word``)."""
        if level not in LEVELS:
            raise UnknownNameError("vocabulary level", str(level), LEVELS)
        if level == "char":
            if min_count not in (None, 1):
                raise KerasdlUsageError(
                    f"min_count applies to word-level vocabularies only; received min_count={min_count} "
                    "with level='char' (every character of the corpus is kept, as nanoGPT does)"
                )
            return cls(sorted(set(text)), "char")
        min_count = WORD_MIN_COUNT if min_count is None else min_count
        if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) or min_count < 1:
            raise KerasdlUsageError(f"min_count must be a positive integer; received {min_count!r}")
        counts = collections.Counter(tokenize(text, "word"))
        kept = sorted((t for t, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t))
        if not kept:
            raise KerasdlUsageError(
                f"no word occurs at least min_count={min_count} times; lower min_count or use "
                "level='char'"
            )
        return cls([UNK] + kept, "word")

    # ------------------------------------------------------------------ basics
    @property
    def size(self) -> int:
        """The number of tokens (the model's input and output dimension)."""
        return len(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and (self.level, self.tokens) == (other.level, other.tokens)

    def __repr__(self) -> str:
        return f"Vocabulary(level={self.level!r}, size={self.size})"

    @property
    def unk_id(self) -> int | None:
        """The id of ``<unk>`` (0) at word level; None at character level (no unknown token)."""
        return 0 if self.level == "word" else None

    def tokenize(self, text: str) -> list[str]:
        """``text`` cut into tokens (characters, or :data:`WORD_PATTERN` matches)."""
        return tokenize(text, self.level)

    # ------------------------------------------------------------------ checks
    def unknown(self, text: str) -> list[str]:
        """The distinct tokens of ``text`` outside the vocabulary, in order of first appearance."""
        seen = dict.fromkeys(self.tokenize(text))
        return [t for t in seen if t not in self.index]

    def check_text(self, text: str, what: str = "prompt") -> None:
        """Raise a one-line :class:`KerasdlUsageError` naming the characters (or words) of
        ``text`` that are not in the vocabulary."""
        if not isinstance(text, str):
            raise KerasdlUsageError(f"the {what} must be text; received {type(text).__name__}")
        bad = self.unknown(text)
        if not bad:
            return
        kind = "character" if self.level == "char" else "word"
        shown = ", ".join(_show(t) for t in bad[:SHOW_UNKNOWN])
        more = f" and {len(bad) - SHOW_UNKNOWN} more" if len(bad) > SHOW_UNKNOWN else ""
        raise KerasdlUsageError(
            f"the {what} holds {len(bad)} {kind}{'s' if len(bad) != 1 else ''} not in the "
            f"vocabulary ({self.size} {self.level} tokens): {shown}{more}"
        )

    # ------------------------------------------------------------------ encode / decode
    def encode(self, text: str, *, what: str = "text") -> np.ndarray:
        """``text`` as an int32 array of ids. Character level: an unknown character is an error
        (:meth:`check_text`); word level: an unknown token becomes ``<unk>`` (id 0) -- call
        :meth:`check_text` first to refuse it instead."""
        if not isinstance(text, str):
            raise KerasdlUsageError(f"the {what} must be text; received {type(text).__name__}")
        if self.level == "word":
            index = self.index
            tokens = tokenize(text, "word")
            return np.fromiter((index.get(t, 0) for t in tokens), dtype=np.int32, count=len(tokens))
        if not text:
            return np.zeros(0, np.int32)
        cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
        pos = np.searchsorted(self._cps, cps)
        pos_c = np.minimum(pos, len(self._cps) - 1)
        if not np.array_equal(self._cps[pos_c], cps):
            self.check_text(text, what)  # names the characters
            raise KerasdlUsageError(f"the {what} holds characters not in the vocabulary")
        return self._order[pos_c].astype(np.int32)

    def decode(self, ids) -> str:
        """The text of a sequence of ids (``<unk>`` decodes as the literal ``<unk>``)."""
        ids = np.asarray(ids)
        if ids.size == 0:
            return ""
        if ids.dtype.kind not in "iu":
            if ids.dtype.kind == "f" and np.all(ids == np.round(ids)):
                ids = ids.astype(np.int64)
            else:
                raise KerasdlUsageError(f"token ids must be integers; received dtype {ids.dtype}")
        ids = ids.reshape(-1).astype(np.int64)
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= self.size:
            bad = lo if lo < 0 else hi
            raise KerasdlUsageError(
                f"token id {bad} is outside the vocabulary (ids 0..{self.size - 1})"
            )
        if self.level == "char":
            return self._cp_of_id[ids].tobytes().decode("utf-32-le", "surrogatepass")
        tokens = self.tokens
        return "".join(tokens[i] for i in ids.tolist())

    # ------------------------------------------------------------------ storage (vocab.json)
    def to_dict(self) -> dict:
        """The JSON-serialisable form stored with a run (level, tokens; the word pattern)."""
        d = {"format": VOCAB_FORMAT, "version": VOCAB_VERSION, "level": self.level, "size": self.size,
             "tokens": list(self.tokens)}
        if self.level == "word":
            d.update(pattern=WORD_PATTERN, unk=UNK)
        return d

    @classmethod
    def from_dict(cls, d, source: str = "vocabulary") -> "Vocabulary":
        """Inverse of :meth:`to_dict`; one-line errors for a malformed dict."""
        if not isinstance(d, dict) or "tokens" not in d or "level" not in d:
            raise KerasdlUsageError(f"{source} is not a kerasdl vocabulary (needs 'level' and 'tokens')")
        tokens = d["tokens"]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise KerasdlUsageError(f"{source}: 'tokens' must be a list of strings")
        if d.get("level") == "word" and d.get("pattern", WORD_PATTERN) != WORD_PATTERN:
            raise KerasdlUsageError(
                f"{source} was written with another word pattern ({d.get('pattern')!r}); "
                f"this kerasdl cuts words by {WORD_PATTERN!r}"
            )
        try:
            return cls(tokens, d["level"])
        except KerasdlUsageError as exc:
            raise KerasdlUsageError(f"{source}: {exc}") from None

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text (``vocab.json``)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str, source: str = "vocab.json") -> "Vocabulary":
        """Inverse of :meth:`to_json`."""
        try:
            d = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise KerasdlUsageError(f"{source} is not valid JSON ({str(exc).splitlines()[0]})") from None
        return cls.from_dict(d, source)

    def save(self, path) -> Path:
        """Write :meth:`to_json` to ``path`` (UTF-8); returns the path."""
        path = Path(path)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path) -> "Vocabulary":
        """Read a ``vocab.json`` written by :meth:`save`."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KerasdlUsageError(f"no such file: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise KerasdlUsageError(f"cannot read {path}: {type(exc).__name__}") from None
        return cls.from_json(text, source=str(path))


def tokenize(text: str, level: str = "char") -> list[str]:
    """``text`` cut into tokens: its characters, or the matches of :data:`WORD_PATTERN`."""
    if level == "char":
        return list(text)
    return _WORD_RE.findall(text)


# ---------------------------------------------------------------------------------- split


def _fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise KerasdlUsageError(f"{name} must be a number in [0, 1); received {value!r}")
    value = float(value)
    if not 0.0 <= value < 1.0 or math.isnan(value):
        raise KerasdlUsageError(f"{name} must be in [0, 1); received {value}")
    return value


def split_sizes(n: int, validation_fraction: float = 0.1, test_fraction: float = 0.0) -> dict[str, int]:
    """Token counts of the contiguous train / validation / test splits of ``n`` tokens.

    train = ``int(n * (1 - validation - test))`` (nanoGPT's ``int(n * 0.9)``), test =
    ``int(n * test)`` taken from the end, validation the tokens between.
    """
    v = _fraction(validation_fraction, "validation_fraction")
    t = _fraction(test_fraction, "test_fraction")
    if v + t >= 1.0:
        raise KerasdlUsageError(
            f"validation_fraction + test_fraction must be below 1; received {v} + {t}"
        )
    if v == 0.0:
        raise KerasdlUsageError("validation_fraction must be above 0 (the validation loss is the monitor)")
    # A tiny epsilon keeps 1 - 0.05 - 0.05 (0.8999...) from losing a token to floating point.
    train = min(n, int(n * (1.0 - v - t) + 1e-7))
    test = min(n - train, int(n * t + 1e-7))
    return {"train": train, "validation": n - train - test, "test": test}


def split_ids(ids: np.ndarray, validation_fraction: float = 0.1,
              test_fraction: float = 0.0) -> dict[str, np.ndarray]:
    """``{"train", "validation", "test"}`` -> contiguous slices of ``ids`` (see :func:`split_sizes`);
    the test slice is empty when ``test_fraction`` is 0."""
    sizes = split_sizes(len(ids), validation_fraction, test_fraction)
    a = sizes["train"]
    b = a + sizes["validation"]
    return {"train": ids[:a], "validation": ids[a:b], "test": ids[b:]}


# ---------------------------------------------------------------------------------- corpus


@dataclass
class TextCorpus:
    """A text dataset ready for a language model: its vocabulary and the id arrays of its splits.

    ``description`` is the dict for the run's ``dataset.json``: the source's own fields (path or
    corpus, characters, sha256, Python version, ...) plus the vocabulary level and size and the
    split rule and sizes.
    """

    name: str
    source: str  # "file" | "cpython" | "tfds"
    vocab: Vocabulary
    splits: dict  # "train" / "validation" / "test" -> int32 ids (test may be empty)
    description: dict = field(default_factory=dict)

    @property
    def level(self) -> str:
        return self.vocab.level

    @property
    def vocab_size(self) -> int:
        return self.vocab.size

    def split_sizes(self) -> dict[str, int]:
        """Tokens per split."""
        return {k: int(len(v)) for k, v in self.splits.items()}

    def check_block_size(self, block_size, splits=("train", "validation")) -> int:
        """``block_size`` as an int; a one-line error when it is not a positive integer or when a
        split (of ``splits``; the test split only when it is not empty) is too short for one
        window (``block_size + 1`` tokens: inputs and the targets shifted by one)."""
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
            raise KerasdlUsageError(f"block size must be a positive integer; received {block_size!r}")
        block_size = int(block_size)
        for split in splits:
            n = len(self.splits.get(split, ()))
            if split == "test" and n == 0:
                continue
            if n < block_size + 1:
                raise KerasdlUsageError(
                    f"{self.name} is too short for block size {block_size}: its {split} split has "
                    f"{n} tokens and needs at least {block_size + 1}; use a smaller block size or "
                    "a longer text"
                )
        return block_size


def build_corpus(name: str, source: str, text: str, description: dict | None = None, *,
                 level: str = "char", min_count: int | None = None, validation_fraction: float = 0.1,
                 test_fraction: float = 0.0, vocab: Vocabulary | None = None) -> TextCorpus:
    """Encode ``text`` with ``vocab`` (default: built from the whole text) and split it.

    A given ``vocab`` (a run's stored vocabulary) must hold every character of ``text`` at
    character level; at word level unknown tokens become ``<unk>``.
    """
    if vocab is None:
        vocab = Vocabulary.build(text, level, min_count)
    elif vocab.level != level:
        raise KerasdlUsageError(f"the vocabulary is {vocab.level}-level, not {level}-level")
    split_sizes(0, validation_fraction, test_fraction)  # validates the fractions before encoding
    ids = vocab.encode(text, what=f"text of {name}")
    splits = split_ids(ids, validation_fraction, test_fraction)
    sizes = {k: int(len(v)) for k, v in splits.items()}
    v, t = float(validation_fraction), float(test_fraction)
    rule = (f"contiguous: first {1 - v - t:.0%} train, then {v:.0%} validation"
            + (f", last {t:.0%} test" if t else "") + " (nanoGPT's rule)")
    desc = dict(description or {})
    desc.update(
        level=level,
        vocab_size=vocab.size,
        tokens=int(len(ids)),
        split_rule=rule,
        validation_fraction=v,
        test_fraction=t,
        split_tokens=sizes,
    )
    if level == "word":
        desc.update(word_pattern=WORD_PATTERN,
                    min_count=WORD_MIN_COUNT if min_count is None else int(min_count),
                    unk_tokens=int(np.count_nonzero(ids == 0)))
    return TextCorpus(name=name, source=source, vocab=vocab, splits=splits, description=desc)
