"""Name resolution and the tf.data input pipeline.

A dataset name resolves, in this order, to:

1. ``tfds:NAME`` -> the tfds catalog, always (``tfds:iris`` is the catalog's iris);
2. one of :data:`OFFLINE_DATASETS` -> our offline tfds builders (``iris`` is ours);
3. an existing path (or anything that looks like one) -> image folder / ``.npz`` / ``.csv``;
4. a tfds catalog name (``cifar10``, ``mnist``, ``svhn_cropped``) -> ``tfds.builder``.

Each resolves to a *source* with one :class:`DatasetInfo` and two ways to read a split: an
unbatched ``tf.data.Dataset`` of raw ``(x, y)`` and numpy arrays. ``load_dataset`` then applies
the usual tf.data recipe: cache -> shuffle -> batch -> map(normalize) -> prefetch.

Offline by design: catalog datasets are only downloaded when allowed (``download=None`` means
allowed unless ``KERASDL_OFFLINE=1``) and only after a 3-second reachability probe, because
tfds's downloader retries an unreachable host for minutes before giving up.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import logging
import os
import socket
import sys
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlparse

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from kerasdl.data.builders import OFFLINE_DATASETS, SPECS
from kerasdl.data.files import load_file_dataset
from kerasdl.data.info import (CLASS_TASKS, SPLITS, DatasetInfo, default_data_dir, download_allowed, feature_stats,
                               input_norm_stats, normalize)
from kerasdl.errors import KerasdlUsageError, UnknownNameError, closest

TFDS_PREFIX = "tfds:"
FILE_SUFFIXES = (".npz", ".csv")
# Shuffle buffers hold at most ~256 MiB of raw examples (full shuffle for every small set).
SHUFFLE_BUFFER_BYTES = 256 * 2**20
PROBE_HOST = ("storage.googleapis.com", 443)  # where most tfds datasets download from
PROBE_TIMEOUT_S = 3.0


_download_allowed = download_allowed  # the policy lives in kerasdl.data.info (no TensorFlow there)


# ----------------------------------------------------------------------------- sources


@dataclass
class _ArraySource:
    """A dataset held in numpy (image folders, .npz, .csv)."""

    info: DatasetInfo
    arrays: dict[str, tuple[np.ndarray, np.ndarray]]
    cacheable = False  # already in memory: tf.data cache() would only copy it

    def dataset(self, split: str) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices(self.arrays[split])

    def numpy(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.arrays[split]
        return x.copy(), y.copy()


@dataclass
class _TfdsSource:
    """A prepared tfds builder (ours or the catalog's) read ``as_supervised``."""

    builder: tfds.core.DatasetBuilder
    split_exprs: dict[str, str]  # our split -> tfds split expression, e.g. "train[90%:]"
    resize_to: tuple[int, int] | None
    y_dtype: tf.DType  # int32 class index / mask, or float32 target
    info: DatasetInfo | None = None  # set once the train statistics are known
    cacheable = True
    y_is_mask: bool = False  # segmentation: y is an (H, W, 1) LabeledImage

    def _prepare(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Raw example -> (x in its raw dtype, resized if asked; y int32/float32, masks (H, W))."""
        if self.resize_to is not None:
            resized = tf.image.resize(x, self.resize_to, antialias=True)
            x = tf.saturate_cast(tf.round(resized), x.dtype)
            if self.y_is_mask:  # class indices must not be blended: nearest neighbour
                y = tf.image.resize(y, self.resize_to, method="nearest")
        if self.y_is_mask:
            y = tf.squeeze(y, axis=-1)  # (H, W, 1) -> (H, W)
        return x, tf.cast(y, self.y_dtype)

    def dataset(self, split: str) -> tf.data.Dataset:
        ds = self.builder.as_dataset(
            split=self.split_exprs[split], as_supervised=True, shuffle_files=False
        )
        return ds.map(self._prepare, num_parallel_calls=tf.data.AUTOTUNE)

    def numpy(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        # Batching after _prepare also copes with variable-size images resized to image_size.
        parts = list(tfds.as_numpy(self.dataset(split).batch(4096)))
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(2))


def _resolve(
    name: str,
    *,
    data_dir: str | None,
    download: bool | None,
    image_size,
    label_column: str | None,
):
    """Name -> source (see the module docstring for the order)."""
    if not isinstance(name, str) or not name.strip():
        raise KerasdlUsageError(f"dataset name must be a non-empty string; received {name!r}")
    name = name.strip()
    image_size = _check_image_size(image_size)
    data_dir = os.path.abspath(os.path.expanduser(data_dir)) if data_dir else default_data_dir()
    tfds_kwargs = dict(image_size=image_size, label_column=label_column)
    if name.lower().startswith(TFDS_PREFIX):
        return _catalog_source(name[len(TFDS_PREFIX):], name, data_dir, download, **tfds_kwargs)
    if name.lower() in SPECS:
        spec = SPECS[name.lower()]
        builder = _prepared_builder(spec.tfds_name, name, data_dir, allow_download=True)
        return _tfds_source(builder, spec.name, "kerasdl", **tfds_kwargs)
    path = os.path.expanduser(name)
    if os.path.exists(path):
        data = load_file_dataset(path, image_size=image_size, label_column=label_column)
        return _ArraySource(data.info, data.arrays)
    # "imagenette/160px" is a tfds name with a config, not a path: ask the catalog first.
    if not _surely_a_path(name) and _in_catalog(name):
        return _catalog_source(name, name, data_dir, download, **tfds_kwargs)
    if _surely_a_path(name) or os.sep in name:
        raise KerasdlUsageError(f"dataset path {name!r} does not exist")
    raise _unknown_dataset(name)


def _surely_a_path(name: str) -> bool:
    return name.lower().endswith(FILE_SUFFIXES) or name.startswith(("~", ".", os.sep))


def _check_image_size(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    try:
        size = tuple(int(v) for v in image_size)
    except (TypeError, ValueError):
        size = ()
    if len(size) != 2 or min(size) < 1 or any(float(v) != int(v) for v in image_size):
        raise KerasdlUsageError(
            f"image_size must be (height, width) with positive integers; received "
            f"image_size={image_size!r}"
        )
    return size


# ----------------------------------------------------------------------------- tfds


def _in_catalog(name: str) -> bool:
    try:
        tfds.builder_cls(name.split(":")[0].split("/")[0])
        return True
    except Exception:  # DatasetNotFoundError, or a builder module that fails to import
        return False


@functools.lru_cache(maxsize=1)
def _catalog_names() -> tuple[str, ...]:
    # Community datasets are left out: listing them needs the network.
    return tuple(tfds.list_builders(with_community_datasets=False))


def _unknown_dataset(name: str) -> UnknownNameError:
    catalog = [n for n in _catalog_names() if not n.startswith("kerasdl_")]
    extra = (
        f"Offline datasets: {', '.join(OFFLINE_DATASETS)}; also any tfds catalog name "
        "(tfds:NAME forces the catalog), an image folder, a .npz or a .csv file."
    )
    error = UnknownNameError("dataset", name, list(OFFLINE_DATASETS) + catalog, extra=extra)
    # Prefer our offline names: the closest one comes first even when some of the ~400
    # catalog names are as close ("breast" -> breast_cancer before beans).
    preferred = closest(name, OFFLINE_DATASETS, n=1) + error.suggestions
    preferred = list(dict.fromkeys(preferred))[:3]
    if error.suggestions and preferred != error.suggestions:
        quoted = lambda names: ", ".join(repr(n) for n in names)  # noqa: E731
        message = str(error).replace(quoted(error.suggestions), quoted(preferred), 1)
        error.suggestions, error.args = preferred, (message,)
    return error


def _catalog_source(tfds_name: str, user_name: str, data_dir: str, download, **kwargs):
    head, _, tail = tfds_name.partition(":")
    if not head or (tail and not tail[0].isdigit()):
        # "namespace:dataset" names are tfds community datasets, which need the network
        # ("name:1.2.0" is a version and fine).
        raise KerasdlUsageError(f"unsupported tfds dataset name {user_name!r}")
    if not _in_catalog(tfds_name):
        raise _unknown_dataset(user_name)
    allow = _download_allowed(download)
    builder = _prepared_builder(tfds_name, user_name, data_dir, allow_download=allow)
    return _tfds_source(builder, user_name, "tfds", **kwargs)


def _make_builder(tfds_name: str, user_name: str, data_dir: str) -> tfds.core.DatasetBuilder:
    try:
        # Silences "Variant folder ... has no dataset_info.json" for not-yet-prepared sets.
        with _absl_level(logging.ERROR):
            return tfds.builder(tfds_name, data_dir=data_dir)
    except ImportError as e:
        raise KerasdlUsageError(
            f"tfds dataset {user_name!r} needs an extra package: {_one_line(e)}"
        ) from None
    except (ValueError, AssertionError) as e:  # bad version/config
        raise KerasdlUsageError(f"cannot open tfds dataset {user_name!r}: {_one_line(e)}") from None


def _prepared_builder(
    tfds_name: str, user_name: str, data_dir: str, *, allow_download: bool
) -> tfds.core.DatasetBuilder:
    """A builder whose data is prepared under ``data_dir``, preparing it first if needed."""
    builder = _make_builder(tfds_name, user_name, data_dir)
    if _is_prepared(builder):
        return builder
    ours = tfds_name.startswith("kerasdl_")
    if not ours and not (allow_download and _network_reachable()):
        reason = "downloads disabled" if not allow_download else "no network"
        raise _not_prepared(user_name, data_dir, reason)
    os.makedirs(data_dir, exist_ok=True)
    with _file_lock(os.path.join(data_dir, f".{builder.name}.lock")):
        # Re-check under the lock: another process (a second worker) may have just built it.
        builder = _make_builder(tfds_name, user_name, data_dir)
        if not _is_prepared(builder):
            try:
                with _quiet_tfds(show_progress=not ours):
                    builder.download_and_prepare()
            except Exception as e:
                if ours:
                    raise  # a bug in our builders, not a user error
                raise _not_prepared(user_name, data_dir, _one_line(e)) from None
    # A fresh builder reads the DatasetInfo (split sizes, ...) that preparation wrote.
    return _make_builder(tfds_name, user_name, data_dir)


def _is_prepared(builder: tfds.core.DatasetBuilder) -> bool:
    with _absl_level(logging.ERROR):  # "Variant folder ... has no dataset_info.json"
        return builder.is_prepared()


def _not_prepared(name: str, data_dir: str, reason: str) -> KerasdlUsageError:
    return KerasdlUsageError(
        f"dataset {name!r} is not prepared under {data_dir} and could not be downloaded "
        f"(offline? {reason[:200]}); use an offline dataset ({', '.join(OFFLINE_DATASETS)}) "
        f"or prepare it on a machine with network and copy it into {data_dir}"
    )


def _network_reachable() -> bool:
    """Can we open a TCP connection to the download host (or the HTTPS proxy) within 3 s?"""
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    host, port = PROBE_HOST
    if proxy:
        parsed = urlparse(proxy if "://" in proxy else "http://" + proxy)
        host, port = parsed.hostname or host, parsed.port or 80
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
    """An exclusive inter-process lock (POSIX flock; a no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _absl_level(level: int) -> Iterator[None]:
    """Temporarily raise the level of absl's Python logger (tfds logs through absl)."""
    absl_logger = logging.getLogger("absl")
    old_level = absl_logger.level
    absl_logger.setLevel(max(level, absl_logger.getEffectiveLevel()))
    try:
        yield
    finally:
        absl_logger.setLevel(old_level)


@contextlib.contextmanager
def _quiet_tfds(show_progress: bool) -> Iterator[None]:
    """Keep stdout clean while tfds prepares a dataset.

    tfds prints "Downloading and preparing ..." to stdout and logs through absl. Our offline
    builds are silent; a real catalog download keeps its progress bar and messages on stderr.
    """
    tfds.display_progress_bar(show_progress)
    sink = sys.stderr if show_progress else io.StringIO()
    with _absl_level(logging.WARNING if show_progress else logging.ERROR):
        with contextlib.redirect_stdout(sink):
            yield


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _split_exprs(builder: tfds.core.DatasetBuilder, name: str) -> dict[str, str]:
    """Map train/validation/test to tfds split expressions, carving what the source lacks.

    Missing splits are cut deterministically from the END of train (tfds percent slicing), so
    they never overlap what we call train.
    """
    available = set(builder.info.splits.keys())
    if "train" not in available:
        raise KerasdlUsageError(
            f"dataset {name!r} has no 'train' split (it has {sorted(available)})"
        )
    missing = [s for s in ("validation", "test") if s not in available]
    exprs = {s: s for s in SPLITS}
    if len(missing) == 1:
        exprs.update({"train": "train[:90%]", missing[0]: "train[90%:]"})
    elif len(missing) == 2:
        exprs.update(
            {"train": "train[:80%]", "validation": "train[80%:90%]", "test": "train[90%:]"}
        )
    return exprs


def _tfds_source(
    builder: tfds.core.DatasetBuilder,
    name: str,
    source: str,
    *,
    image_size: tuple[int, int] | None,
    label_column: str | None,
) -> _TfdsSource:
    if label_column is not None:
        raise KerasdlUsageError(
            f"label_column only applies to .csv files; received label_column={label_column!r} "
            f"for dataset {name!r}"
        )
    info = builder.info
    keys = info.supervised_keys
    if not keys or not isinstance(keys[0], str) or not isinstance(keys[1], str):
        raise KerasdlUsageError(
            f"dataset {name!r} has no single (input, label) pair of features "
            f"(supervised_keys={keys}); kerasdl needs one input tensor and one label"
        )
    x_feature, y_feature = info.features[keys[0]], info.features[keys[1]]
    shape = tuple(x_feature.shape)
    dtype = np.dtype(x_feature.np_dtype).name
    task, class_names = _label_kind(y_feature, name)
    is_image = len(shape) == 3
    if image_size is not None and not is_image:
        raise KerasdlUsageError(
            f"image_size only applies to image datasets; dataset {name!r} has inputs of "
            f"shape {shape}; received image_size={image_size}"
        )
    if is_image and image_size is not None:
        shape = (*image_size, shape[2])
    if None in shape:
        raise KerasdlUsageError(
            f"dataset {name!r} has inputs of variable shape {shape}; pass image_size=(H, W)"
        )
    exprs = _split_exprs(builder, name)
    y_dtype = tf.int32 if task in CLASS_TASKS else tf.float32
    src = _TfdsSource(builder, exprs, image_size, y_dtype, y_is_mask=task == "segmentation")
    if is_image and dtype == "uint8":
        # Images: divide by the value range (255, or 16 for our 8x8 digits).
        mean, std = 0.0, float(SPECS[name].image_std) if source == "kerasdl" else 255.0
    else:
        mean, std = _train_stats(src)
    src.info = DatasetInfo(
        name=name,
        source=source,
        task=task,
        input_shape=shape,
        raw_dtype=dtype,
        num_classes=len(class_names) if task in CLASS_TASKS else 1,
        class_names=class_names,
        splits={s: int(info.splits[e].num_examples) for s, e in exprs.items()},
        mean=mean,
        std=std,
        description=(info.description or "").strip().split("\n")[0],
        feature_names=_feature_names(name, source, is_image),
    )
    return src


def _feature_names(name: str, source: str, is_image: bool) -> list[str]:
    # Only our tabular sets know their column names (cheap: sklearn tables / generated points).
    return [] if source != "kerasdl" or is_image else list(SPECS[name].load().feature_names)


def _label_kind(feature, name: str) -> tuple[str, list[str]]:
    if isinstance(feature, tfds.features.ClassLabel):
        return "classification", [str(n) for n in feature.names]
    if isinstance(feature, tfds.features.LabeledImage) and feature.num_classes:
        return "segmentation", [str(n) for n in feature.names]  # a per-pixel class mask
    if np.issubdtype(feature.np_dtype, np.floating) and tuple(feature.shape) == ():
        return "regression", []
    raise KerasdlUsageError(
        f"dataset {name!r}: the label must be a tfds ClassLabel, a LabeledImage mask with class "
        f"names or a float scalar target; received {type(feature).__name__} of shape "
        f"{feature.shape}"
    )


_STATS_CACHE: dict[tuple[str, str], tuple] = {}


def _train_stats(src: _TfdsSource) -> tuple[list | float, list | float]:
    """Per-feature mean/std of the TRAIN split (cached per prepared dataset and split)."""
    key = (os.fspath(src.builder.data_dir), src.split_exprs["train"])
    if key not in _STATS_CACHE:
        _STATS_CACHE[key] = feature_stats(src.numpy("train")[0])
    return _STATS_CACHE[key]


# ----------------------------------------------------------------------------- public API


def dataset_info(
    name: str,
    *,
    data_dir: str | None = None,
    download: bool | None = None,
    image_size: tuple | None = None,
    label_column: str | None = None,
) -> DatasetInfo:
    """Prepare ``name`` if needed and return its metadata, without building a pipeline."""
    return _resolve(
        name, data_dir=data_dir, download=download, image_size=image_size,
        label_column=label_column,
    ).info  # fmt: skip


def load_arrays(
    name: str,
    split: str,
    *,
    data_dir: str | None = None,
    download: bool | None = None,
    image_size: tuple | None = None,
    label_column: str | None = None,
) -> tuple[np.ndarray, np.ndarray, DatasetInfo]:
    """The raw (un-normalised, ``raw_dtype``) ``x`` and ``y`` of a split as numpy arrays."""
    _check_split(split)
    src = _resolve(
        name, data_dir=data_dir, download=download, image_size=image_size,
        label_column=label_column,
    )  # fmt: skip
    x, y = src.numpy(split)
    return x, y, src.info


def load_dataset(
    name: str,
    split: str = "train",
    *,
    batch_size: int = 64,
    data_dir: str | None = None,
    shuffle: bool | None = None,
    seed: int = 0,
    download: bool | None = None,
    normalize: bool = True,
    cache: bool = True,
    drop_remainder: bool = False,
    image_size: tuple | None = None,
    label_column: str | None = None,
    input_norm: str = "auto",
) -> tuple[tf.data.Dataset, DatasetInfo]:
    """A batched, prefetched ``tf.data.Dataset`` of ``(x, y)`` for one split ("train"), and its info.

    ``x`` is float32 and normalised (raw dtype with ``normalize=False``); ``y`` is an int32
    class index, a float32 target of shape ``(batch,)`` for regression, or an int32 mask of
    shape ``(batch, H, W)`` for segmentation (resized nearest-neighbour with ``image_size``).
    ``shuffle`` defaults to True for "train" only; the shuffle is seeded and reshuffles every
    epoch, so the same ``seed`` gives the same sequence of epoch orders. ``input_norm`` picks the
    normalisation rule (:func:`kerasdl.data.info.input_norm_stats`; statistics from the train
    split); the returned info's ``mean`` / ``std`` are the ones applied.
    """
    _check_split(split)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or (
        batch_size < 1
    ):
        raise KerasdlUsageError(f"batch_size must be a positive integer; received {batch_size!r}")
    src = _resolve(
        name, data_dir=data_dir, download=download, image_size=image_size,
        label_column=label_column,
    )  # fmt: skip
    info = with_input_norm(src, input_norm)
    n = info.splits[split]
    if n == 0:
        raise KerasdlUsageError(
            f"the {split!r} split of dataset {name!r} is empty (splits: {info.splits}); "
            "add more examples per class"
        )
    ds = src.dataset(split)
    if cache and src.cacheable:
        ds = ds.cache()  # decode/parse once; later epochs read memory
    if shuffle is None:
        shuffle = split == "train"
    if shuffle:
        ds = ds.shuffle(_shuffle_buffer(info, n), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    if normalize:
        # Batched map: one vectorised op per batch instead of one per example.
        ds = ds.map(lambda x, y: (_normalize(x, info), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_pipeline_options()), info


def _pipeline_options() -> tf.data.Options:
    """Deterministic element order (the seeded shuffle decides it), and sharding by data for
    multi-worker runs: each worker reads the same pipeline and keeps its share of every global
    batch (file sharding cannot split cached or in-memory sources)."""
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


_NORM_CACHE: dict[tuple, tuple] = {}


def with_input_norm(src, mode: str) -> DatasetInfo:
    """``src.info`` with ``mean`` / ``std`` for the input normalisation ``mode`` (cached per source)."""
    if mode == "auto":
        return src.info
    info = src.info
    builder = getattr(src, "builder", None)  # tfds sources: the prepared dataset's directory
    key = (mode, info.name, info.source, tuple(info.input_shape), builder and os.fspath(builder.data_dir))
    if key not in _NORM_CACHE:
        _NORM_CACHE[key] = input_norm_stats(mode, info, lambda: src.numpy("train")[0])
    mean, std = _NORM_CACHE[key]
    return dataclasses.replace(info, mean=mean, std=std)


def input_normalized_info(name: str, mode: str, *, data_dir=None, download=None, image_size=None,
                          label_column=None) -> DatasetInfo:
    """The dataset's info with ``mean`` / ``std`` for the input normalisation ``mode``."""
    src = _resolve(name, data_dir=data_dir, download=download, image_size=image_size, label_column=label_column)
    return with_input_norm(src, mode)


_normalize = normalize  # load_dataset's `normalize` argument shadows the function


def _shuffle_buffer(info: DatasetInfo, n: int) -> int:
    example_bytes = int(np.prod(info.input_shape)) * np.dtype(info.raw_dtype).itemsize
    return int(min(n, max(1024, SHUFFLE_BUFFER_BYTES // max(example_bytes, 1))))


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise UnknownNameError("split", str(split), SPLITS)
