"""The raw-input statistics stored with a run (dataset.json) and its export (kerasdl.json), so
``kerasdl predict`` and the SavedModel's users are warned about inputs far from the training data."""

from __future__ import annotations

from typing import Any

import numpy as np

from kerasdl.runs import layout as runs

STATS_KEY = "input_stats"  # in dataset.json and the export's kerasdl.json
STATS_EXAMPLES = 10_000  # the training examples the statistics are computed on (the first ones)


def input_stats(x: np.ndarray) -> dict[str, Any]:
    """Summary of raw inputs (N, ...): value range, mean and std over every value, and the central
    99% (0.5th to 99.5th percentile) of the per-example mean value."""
    x = np.asarray(x, dtype=np.float64)
    per_example = x.reshape(len(x), -1).mean(axis=1)
    low, high = np.percentile(per_example, [0.5, 99.5])
    return {"examples": int(len(x)), "min": float(x.min()), "max": float(x.max()), "mean": float(x.mean()),
            "std": float(x.std()), "example_mean": [float(low), float(high)]}


def training_input_stats(config) -> dict[str, Any] | None:
    """:func:`input_stats` of (up to :data:`STATS_EXAMPLES` of) the run's raw train split, read
    offline; None when the data cannot be read (the checks are advisory)."""
    from kerasdl.data import load_dataset

    try:
        ds, _ = load_dataset(config.dataset, "train", batch_size=1000, data_dir=config.data_dir, shuffle=False,
                             download=False, normalize=False, cache=False, label_column=config.label_column,
                             image_size=tuple(config.image_size) if config.image_size else None)
        xs = [np.asarray(x) for x, _ in ds.take(-(-STATS_EXAMPLES // 1000))]
    except Exception:  # noqa: BLE001 -- moved or missing data: no statistics, no warnings
        return None
    return input_stats(np.concatenate(xs)) if xs and len(xs[0]) else None


def store_input_stats(run_dir: str, config) -> None:
    """Add the train split's :func:`input_stats` to the run's dataset.json (once)."""
    path = runs.path(run_dir, runs.DATASET)
    data = runs.read_json(path, {}) or {}
    if data and STATS_KEY not in data:
        stats = training_input_stats(config)
        if stats:
            runs.write_json(path, {**data, STATS_KEY: stats})


def run_input_stats(run_dir: str, config) -> dict[str, Any] | None:
    """The statistics stored with a run, or (older runs) computed now from its dataset."""
    stored = (runs.read_json(runs.path(run_dir, runs.DATASET), {}) or {}).get(STATS_KEY)
    return stored or training_input_stats(config)
