"""Dataset metadata (:class:`DatasetInfo`) and the one normalisation rule every consumer shares.

``normalize`` is used by the tf.data pipeline *and* by the SavedModel export signature, so the
rule lives in exactly one place: ``x = (float32(raw) - mean) / std``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
# The input normalisation modes (RunConfig's and the CLI's list; see input_norm_stats).
INPUT_NORMS = ("auto", "scale", "standardize", "channel_mean", "none")

SPLITS: tuple[str, ...] = ("train", "validation", "test")
TASKS: tuple[str, ...] = ("classification", "regression", "segmentation")
# Tasks whose labels are class indices into ``class_names``: one per example (classification) or
# one per pixel, an (H, W) mask (segmentation). Regression has a float target and no classes.
CLASS_TASKS: tuple[str, ...] = ("classification", "segmentation")

# Constant features (std == 0) would divide by zero; they are left centred instead of scaled.
STD_FLOOR = 1e-7


@dataclass
class DatasetInfo:
    """Everything a model, a trainer or an exporter needs to know about a dataset."""

    name: str  # user-facing name: "mnist5k", "cifar10", "tfds:iris" or the path given
    source: str  # "kerasdl" | "tfds" | "folder" | "npz" | "csv"
    task: str  # "classification" | "regression" | "segmentation" (y: an (H, W) class mask)
    input_shape: tuple  # per-example shape, e.g. (28, 28, 1) or (4,)
    raw_dtype: str  # dtype as stored: "uint8" for images, "float32" for tabular
    num_classes: int  # 1 for regression; segmentation counts the background class
    class_names: list  # list[str]; [] for regression; segmentation: names[k] for mask value k
    splits: dict  # {"train": n, "validation": n, "test": n}
    mean: list | float  # x = (float32(raw) - mean) / std, broadcastable to input_shape
    std: list | float
    description: str = ""
    # Tabular only: the feature columns in order, and the label column of a CSV. read_inputs uses
    # them to pick the right columns out of a prediction CSV.
    feature_names: list = field(default_factory=list)
    label_column: str | None = None
    # Graph datasets only (kerasdl.data.graphs.pipeline.graph_info): level ("node" | "graph"),
    # feature_norm (the node-feature rule the export applies too), nodes, edges, graphs.
    graph: dict = field(default_factory=dict)

    @property
    def is_image(self) -> bool:
        """True for (H, W, C) inputs."""
        return len(self.input_shape) == 3

    def to_dict(self) -> dict[str, Any]:
        """A JSON/YAML-serialisable dict (tuples become lists, numpy scalars become floats)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DatasetInfo":
        """Inverse of :meth:`to_dict`; unknown keys (from newer versions) are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        kwargs["input_shape"] = tuple(kwargs["input_shape"])
        return cls(**kwargs)


def _plain(value: Any) -> Any:
    """Recursively turn tuples/numpy values into plain JSON types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def normalize(x: Any, info: DatasetInfo):
    """``(float32(x) - mean) / std`` with TF ops; works eagerly and on symbolic tensors."""
    import tensorflow as tf

    mean = tf.constant(np.asarray(info.mean, dtype=np.float32))
    std = tf.constant(np.asarray(info.std, dtype=np.float32))
    return (tf.cast(x, tf.float32) - mean) / std


def feature_stats(x: np.ndarray) -> tuple[list | float, list | float]:
    """Per-feature mean/std of a TRAIN split: per column for (N, F), per channel for (N, H, W, C).

    Per-channel (not per-pixel) statistics for float images keep the metadata small and are the
    usual choice for images; for vectors it is the classic per-feature standardisation.
    """
    x = np.asarray(x, dtype=np.float64)
    axes = tuple(range(x.ndim - 1)) if x.ndim >= 2 else (0,)
    mean = x.mean(axis=axes) if len(x) else np.zeros(x.shape[-1])
    std = x.std(axis=axes) if len(x) else np.ones(x.shape[-1])
    std = np.where(std < STD_FLOOR, 1.0, std)
    return [float(v) for v in np.atleast_1d(mean)], [float(v) for v in np.atleast_1d(std)]


def input_norm_stats(mode: str, info: DatasetInfo, train_x) -> tuple[list | float, list | float]:
    """``(mean, std)`` for :func:`normalize` under an input normalisation ``mode``.

    * ``auto``         -- the dataset's own rule (``info.mean`` / ``info.std``): uint8 images
      divided by their value range, everything else standardised per channel / feature;
    * ``scale``        -- uint8 images divided by the value range (``[0, 1]``); other inputs
      min-max scaled per channel / feature to ``[0, 1]``;
    * ``standardize``  -- per-channel (images) / per-feature (tables) mean and std of the train split;
    * ``channel_mean`` -- subtract the per-channel train mean, then divide by the value range
      (uint8 images) or by 1: the classic per-channel mean subtraction (Krizhevsky et al. 2012;
      the SVHN lesson: un-centred inputs slow training);
    * ``none``         -- raw values as float32.

    ``train_x`` is a zero-argument callable giving the raw train inputs (only called when needed).
    The rule is stored in the run's dataset.json, so exports apply the same transform.
    """
    if mode not in INPUT_NORMS:
        from kerasdl.errors import UnknownNameError

        raise UnknownNameError("input normalisation", str(mode), INPUT_NORMS)
    if mode == "auto":
        return info.mean, info.std
    if mode == "none":
        return 0.0, 1.0
    value_range = float(info.std) if len(info.input_shape) == 3 and info.raw_dtype == "uint8" else None
    if mode == "scale" and value_range:
        return 0.0, value_range
    x = np.asarray(train_x())
    axes = tuple(range(x.ndim - 1)) if x.ndim >= 2 else (0,)
    if mode == "scale":
        low, high = x.min(axis=axes).astype(np.float64), x.max(axis=axes).astype(np.float64)
        span = np.where(high - low < STD_FLOOR, 1.0, high - low)
        return [float(v) for v in np.atleast_1d(low)], [float(v) for v in np.atleast_1d(span)]
    if mode == "standardize":
        return feature_stats(x)
    mean = x.mean(axis=axes, dtype=np.float64)  # channel_mean
    return [float(v) for v in np.atleast_1d(mean)], value_range or 1.0


def default_data_dir() -> str:
    """``$KERASDL_DATA_DIR`` if set, else tfds's default ($TFDS_DATA_DIR, ~/tensorflow_datasets)."""
    env = os.environ.get("KERASDL_DATA_DIR")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    return os.path.expanduser(os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets")


def download_allowed(download: bool | None) -> bool:
    """kerasdl's download policy (datasets, pretrained weights): explicit wins, else not under
    ``KERASDL_OFFLINE=1``. Here, not in :mod:`kerasdl.data.loading`, so it needs no TensorFlow."""
    if download is not None:
        return bool(download)
    return os.environ.get("KERASDL_OFFLINE", "").strip().lower() not in ("1", "true", "yes", "on")
