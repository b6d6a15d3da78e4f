"""Token ids as a language model trains on them: ``tf.data`` datasets of ``(x, y)`` int32 (B, T).

**Training** (:func:`train_dataset`) draws batches as nanoGPT's ``get_batch`` does (Karpathy
2022, ``train.py``): ``batch_size`` random offsets ``i`` in ``[0, n - T)``, ``x = ids[i:i+T]``,
``y = ids[i+1:i+T+1]`` (the next token of every position). The offsets of step ``s`` come from
NumPy's generator seeded with ``(seed, s)`` (:func:`batch_offsets`), so a run is repeatable, a
resumed run continues the same sequence (``start_step``), and a NumPy or PyTorch loop can draw
exactly the same batches (:func:`get_batch`, e.g. for ``benchmarks/peer_nanogpt.py``). The
dataset is infinite unless ``steps`` is given: train with ``steps_per_epoch``.

**Validation** (:func:`eval_windows`, :func:`eval_dataset`) is a fixed set of windows: by
default ALL the non-overlapping windows ``x = ids[kT:kT+T]``, ``y = ids[kT+1:kT+T+1]`` in order,
so every validation token is scored exactly once and the loss is the split's exact per-token
mean: deterministic, comparable between runs and models, and with no sampling noise (nanoGPT
averages ``eval_iters`` = 200 random batches, whose mean has the same expectation: each window
position 0..T-1 is equally represented in both). Tiny Shakespeare at T = 64 gives 1,742 windows
(111,488 of the 111,540 tokens). ``max_windows`` keeps that many windows evenly spaced among
them (still deterministic, no seed), for a cheaper evaluation of a big model.

TensorFlow is imported inside the functions that build datasets only; the NumPy helpers need none.
"""

from __future__ import annotations

import numpy as np

from kerasdl.errors import KerasdlUsageError

__all__ = [
    "TEXT_TASK",
    "batch_offsets",
    "eval_dataset",
    "eval_windows",
    "get_batch",
    "lm_datasets",
    "text_info",
    "train_dataset",
]

TEXT_TASK = "lm"  # the DatasetInfo task of a text corpus


def _positive(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise KerasdlUsageError(f"{name} must be a positive integer; received {value!r}")
    return int(value)


def _ids(ids) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise KerasdlUsageError(f"token ids must be a 1-D integer array; received {ids.dtype} {ids.shape}")
    return ids.astype(np.int32, copy=False)


def _check_length(n: int, block_size: int, what: str = "the split") -> None:
    if n < block_size + 1:
        raise KerasdlUsageError(
            f"{what} has {n} tokens, too short for block size {block_size} (needs at least "
            f"{block_size + 1}); use a smaller block size or a longer text"
        )


def _seed_sequence(seed: int, step: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed) % 2**63, int(step) % 2**63])


def batch_offsets(num_tokens: int, block_size: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """The ``batch_size`` window offsets of training step ``step`` (int64, each in ``[0, n - T)``)."""
    rng = np.random.default_rng(_seed_sequence(seed, step))
    return rng.integers(0, num_tokens - block_size, size=batch_size, dtype=np.int64)


def get_batch(ids, block_size: int, batch_size: int, seed: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Training batch ``step`` as NumPy: ``x = ids[i:i+T]``, ``y = ids[i+1:i+T+1]``, int32 (B, T)."""
    ids = _ids(ids)
    block_size, batch_size = _positive(block_size, "block_size"), _positive(batch_size, "batch_size")
    _check_length(len(ids), block_size, "the train split")
    return _windows(ids, batch_offsets(len(ids), block_size, batch_size, seed, step), block_size)


def _windows(ids: np.ndarray, offsets: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    idx = offsets[:, None] + np.arange(block_size + 1, dtype=np.int64)[None, :]
    w = ids[idx]
    return np.ascontiguousarray(w[:, :-1]), np.ascontiguousarray(w[:, 1:])


def eval_windows(ids, block_size: int, max_windows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The fixed validation windows as NumPy int32 (N, T) ``x`` and ``y`` (module docstring)."""
    ids = _ids(ids)
    block_size = _positive(block_size, "block_size")
    _check_length(len(ids), block_size)
    count = (len(ids) - 1) // block_size
    picks = np.arange(count, dtype=np.int64)
    if max_windows is not None:
        max_windows = _positive(max_windows, "max_windows")
        if max_windows < count:
            picks = np.unique(np.linspace(0, count - 1, max_windows).round().astype(np.int64))
    return _windows(ids, picks * block_size, block_size)


def train_dataset(ids, *, block_size: int, batch_size: int, seed: int = 0, start_step: int = 0,
                  steps: int | None = None):
    """The training ``tf.data.Dataset`` of ``(x, y)`` int32 (B, T) batches (module docstring)."""
    import tensorflow as tf

    ids = _ids(ids)
    block_size, batch_size = _positive(block_size, "block_size"), _positive(batch_size, "batch_size")
    _check_length(len(ids), block_size, "the train split")
    n = len(ids)

    def draw(step):
        return _windows(ids, batch_offsets(n, block_size, batch_size, seed, int(step)), block_size)

    def to_batch(step):
        x, y = tf.numpy_function(draw, [step], (tf.int32, tf.int32), stateful=False)
        x.set_shape((batch_size, block_size))
        y.set_shape((batch_size, block_size))
        return x, y

    ds = tf.data.Dataset.counter(start=int(start_step), dtype=tf.int64)
    if steps is not None:
        ds = ds.take(_positive(steps, "steps"))
    ds = ds.map(to_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())


def eval_dataset(ids, *, block_size: int, batch_size: int, max_windows: int | None = None):
    """The fixed validation windows as a batched ``tf.data.Dataset`` of ``(x, y)`` int32 (<=B, T)."""
    import tensorflow as tf

    x, y = eval_windows(ids, block_size, max_windows)
    batch_size = _positive(batch_size, "batch_size")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())


def _options():
    import tensorflow as tf

    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


def lm_datasets(corpus, *, block_size: int, batch_size: int, seed: int = 0, splits=("train", "validation"),
                eval_batch_size: int | None = None, max_eval_windows: int | None = None,
                start_step: int = 0) -> dict:
    """Split -> ``tf.data`` dataset of a :class:`~kerasdl.data.text.TextCorpus`: ``train`` the
    infinite random batches, ``validation`` / ``test`` the fixed windows. One-line error when a
    split asked for is too short for ``block_size``."""
    corpus.check_block_size(block_size, splits=tuple(splits))
    out = {}
    for split in splits:
        ids = corpus.splits[split]
        if split == "train":
            out[split] = train_dataset(ids, block_size=block_size, batch_size=batch_size, seed=seed,
                                       start_step=start_step)
        elif len(ids):
            out[split] = eval_dataset(ids, block_size=block_size, batch_size=eval_batch_size or batch_size,
                                      max_windows=max_eval_windows)
    return out


def text_info(corpus, block_size: int):
    """The :class:`~kerasdl.data.DatasetInfo` of a text corpus: inputs (T,) int32 token ids,
    ``num_classes`` the vocabulary size, ``splits`` in tokens; the tokens themselves go to the
    run's ``vocab.json`` (:meth:`~kerasdl.data.text.Vocabulary.save`), the corpus description
    (``corpus.description``) to ``dataset.json``."""
    from kerasdl.data.info import DatasetInfo

    block_size = corpus.check_block_size(block_size)
    d = corpus.description
    what = d.get("file_name") or d.get("corpus") or d.get("tfds_name") or corpus.name
    sizes = corpus.split_sizes()
    summary = (f"{corpus.level}-level text from {what}: {d.get('chars', '?')} characters, "
               f"{sizes['train'] + sizes['validation'] + sizes['test']} tokens, vocabulary "
               f"{corpus.vocab_size}; {d.get('split_rule', '')}; sha256 {d.get('sha256', '?')}")
    return DatasetInfo(
        name=corpus.name, source=corpus.source, task=TEXT_TASK, input_shape=(block_size,), raw_dtype="int32",
        num_classes=corpus.vocab_size, class_names=[], splits=sizes, mean=0.0, std=1.0,
        description=summary,
    )
