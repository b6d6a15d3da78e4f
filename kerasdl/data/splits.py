"""Seeded, stratified train/validation/test splitting of in-memory arrays.

Shared by the offline tfds builders (which write the splits once) and by the folder/npz/csv
readers (which split on every read, so the split seed is fixed and never the shuffle seed:
the same file always gives the same, disjoint splits).
"""

from __future__ import annotations

import numpy as np

from kerasdl.data.info import SPLITS

# Split seed for user files (folders, .npz, .csv); independent of load_dataset(seed=...).
FILE_SPLIT_SEED = 1234
DEFAULT_FRACTIONS = (0.70, 0.15, 0.15)


def split_indices(
    y: np.ndarray,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    *,
    seed: int,
    stratify: bool = True,
) -> dict[str, np.ndarray]:
    """Indices of a seeded train/validation/test split, stratified by ``y`` when asked.

    Each class (or the whole set when not stratified) is permuted and cut into
    ``fractions``; a class with at least 3 examples puts at least one into every split that
    has a non-zero fraction, so tiny image folders still get a validation and a test example.
    Indices come back sorted (source order); the input pipeline does the shuffling.
    """
    _, f_val, f_test = fractions
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for idx in groups:
        idx = rng.permutation(idx)
        n = len(idx)
        n_val, n_test = _count(n, f_val), _count(n, f_test)
        parts["validation"].append(idx[:n_val])
        parts["test"].append(idx[n_val : n_val + n_test])
        parts["train"].append(idx[n_val + n_test :])
    return {s: np.sort(np.concatenate(p)).astype(np.int64) for s, p in parts.items()}


def _count(n: int, fraction: float) -> int:
    """Round half up (Python's round() is banker's rounding), at least 1 of >= 3 examples."""
    if fraction <= 0:
        return 0
    k = int(n * fraction + 0.5)
    return max(k, 1) if n >= 3 else k
