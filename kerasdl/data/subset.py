"""Class subsets and label budgets: "digits 5-9 only, 20 labelled examples per class".

Transfer-learning and few-label experiments need a dataset restricted to some classes
(relabelled 0..k-1 in the order given) and, on the training split, at most ``per_class``
examples of each class (a seeded choice, so the same seed picks the same examples). The split
is materialised in memory from :func:`load_arrays` -- right for the offline sets and for
catalog sets up to CIFAR size -- and then goes through the usual batch/normalise/prefetch recipe.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np
import tensorflow as tf

from kerasdl.data.info import SPLITS, DatasetInfo, normalize
from kerasdl.data.loading import input_normalized_info, load_arrays, load_dataset
from kerasdl.errors import KerasdlUsageError


def _resolve_classes(classes: Sequence, info: DatasetInfo) -> list[int]:
    """Class indices from indices or class names; each must exist, none twice."""
    out = []
    for c in classes:
        if isinstance(c, str) and c in info.class_names:
            idx = info.class_names.index(c)
        else:
            try:
                idx = int(c)
            except (TypeError, ValueError):
                idx = -1
        if not 0 <= idx < info.num_classes:
            raise KerasdlUsageError(
                f"class {c!r} is not in {info.name} (classes 0..{info.num_classes - 1}: "
                f"{', '.join(info.class_names[:12])}{', ...' if info.num_classes > 12 else ''})"
            )
        if idx in out:
            raise KerasdlUsageError(f"class {c!r} is listed twice. Received: classes={list(classes)!r}")
        out.append(idx)
    if len(out) < 2:
        raise KerasdlUsageError(f"a class subset needs at least two classes. Received: classes={list(classes)!r}")
    return out


def subset_arrays(x, y, info: DatasetInfo, *, classes=None, per_class=None, seed=0):
    """Select (and relabel) examples; returns x, y and the subset's DatasetInfo (sizes not set)."""
    if info.task != "classification":
        raise KerasdlUsageError(f"class subsets need a classification dataset; {info.name} is {info.task}")
    keep = list(range(info.num_classes)) if classes is None else _resolve_classes(classes, info)
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    index = []
    for new, old in enumerate(keep):
        members = np.flatnonzero(y == old)
        if per_class is not None:
            if per_class < 1:
                raise KerasdlUsageError(f"per-class label budget must be >= 1. Received: {per_class}")
            members = rng.permutation(members)[:per_class]
        index.append(members)
    index = np.sort(np.concatenate(index))
    relabel = np.full(info.num_classes, -1, dtype=np.int64)
    relabel[keep] = np.arange(len(keep))
    new_info = replace(info, num_classes=len(keep), class_names=[info.class_names[k] for k in keep])
    return x[index], relabel[y[index]].astype(np.int32), new_info


def load_subset(name: str, split: str, *, classes=None, per_class=None, batch_size=64, seed=0,
                shuffle=None, data_dir=None, download=None, input_norm="auto",
                **kwargs) -> tuple[tf.data.Dataset, DatasetInfo]:
    """Like :func:`load_dataset`, restricted to ``classes``; ``per_class`` limits the split.

    ``input_norm`` statistics come from the whole train split (as for :func:`load_dataset`).
    """
    x, y, info = load_arrays(name, split, data_dir=data_dir, download=download, **kwargs)
    if input_norm != "auto":
        norm = input_normalized_info(name, input_norm, data_dir=data_dir, download=download, **kwargs)
        info = replace(info, mean=norm.mean, std=norm.std)
    x, y, sub = subset_arrays(x, y, info, classes=classes, per_class=per_class, seed=seed)
    splits = dict(info.splits)
    splits[split] = int(len(y))
    sub = replace(sub, splits=splits)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle if shuffle is not None else split == "train":
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda a, b: (normalize(a, sub), b), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE), sub


def load_splits(config, splits=SPLITS, *, shuffle_train: bool = True):
    """A run's datasets by split (honouring ``classes`` / ``train_per_class``) and their info.

    ``config`` is a :class:`kerasdl.config.RunConfig` (read by attribute: the data layer sits below
    the config layer and does not import it)."""
    from dataclasses import replace

    kw = dict(batch_size=config.batch_size, data_dir=config.data_dir, download=config.download, seed=config.seed,
              image_size=tuple(config.image_size) if config.image_size else None, input_norm=config.input_norm,
              label_column=config.label_column)
    out, info, sizes = {}, None, {}
    for split in splits:
        shuffle = split == "train" and shuffle_train
        if config.classes is None and config.train_per_class is None:
            out[split], info = load_dataset(config.dataset, split, shuffle=shuffle, **kw)
            continue
        per_class = config.train_per_class if split == "train" else None
        out[split], info = load_subset(config.dataset, split, classes=config.classes, per_class=per_class,
                                       shuffle=shuffle, **kw)
        sizes[split] = info.splits[split]
    return out, replace(info, splits={**info.splits, **sizes})
