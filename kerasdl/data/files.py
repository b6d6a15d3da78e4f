"""User files as datasets: a folder of images, an ``.npz`` or a ``.csv``; and prediction inputs.

These sets are small-data friendly: they are read fully into numpy, split with a fixed seed
(:data:`~kerasdl.data.splits.FILE_SPLIT_SEED`, so splits never change between calls) and kept in
a small cache keyed by the files' sizes and modification times.

Every user-facing problem (missing column, NaN cell, corrupt image, ...) raises
:class:`~kerasdl.errors.KerasdlUsageError` with a one-line message naming the culprit.
"""

from __future__ import annotations

import csv
import functools
import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from kerasdl.data.info import CLASS_TASKS, SPLITS, DatasetInfo, feature_stats
from kerasdl.data.splits import DEFAULT_FRACTIONS, FILE_SPLIT_SEED, split_indices
from kerasdl.errors import KerasdlUsageError, closest

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
LABEL_COLUMNS = ("label", "target", "y", "class")  # tried in order, case-insensitively
SPLIT_FOLDERS = {"train": ("train",), "validation": ("validation", "val"), "test": ("test",)}
_GRAYSCALE_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"}
_MISSING = {"", "nan", "na", "n/a", "null", "none"}
# A validation split carved from a given train split (npz x_train, folder train/) takes 10%.
CARVE_FRACTIONS = (0.90, 0.10, 0.0)


@dataclass
class FileData:
    """A file-backed dataset in memory: ``{split: (x, y)}`` plus its metadata."""

    arrays: dict[str, tuple[np.ndarray, np.ndarray]]
    info: DatasetInfo


def load_file_dataset(
    path: str, *, image_size: tuple[int, int] | None, label_column: str | None
) -> FileData:
    """Read a folder / .npz / .csv (cached while the files are unchanged)."""
    path = os.path.abspath(os.path.expanduser(path))
    return _load_cached(path, image_size, label_column, _signature(path))


@functools.lru_cache(maxsize=8)
def _load_cached(path, image_size, label_column, signature) -> FileData:
    del signature  # only part of the cache key
    if os.path.isdir(path):
        _reject(label_column, "label_column", "a .csv file", path)
        return _load_folder(path, image_size)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        _reject(label_column, "label_column", "a .csv file", path)
        _reject(image_size, "image_size", "image datasets", path)
        return _load_npz(path)
    if ext == ".csv":
        _reject(image_size, "image_size", "image datasets", path)
        return _load_csv(path, label_column)
    raise KerasdlUsageError(
        f"unsupported dataset file {path!r}: expected an image folder, a .npz or a .csv file"
    )


def _reject(value, option: str, applies_to: str, path: str) -> None:
    if value is not None:
        raise KerasdlUsageError(
            f"{option} only applies to {applies_to}; received {option}={value!r} for {path!r}"
        )


def _signature(path: str) -> tuple:
    """(name, size, mtime) of every file involved, so edits invalidate the cache."""
    if not os.path.isdir(path):
        st = os.stat(path)
        return ((path, st.st_size, st.st_mtime_ns),)
    entries = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for f in sorted(files):
            st = os.stat(os.path.join(root, f))
            entries.append((os.path.join(root, f), st.st_size, st.st_mtime_ns))
    return tuple(entries)


# ----------------------------------------------------------------------------- shared helpers


def _split(x: np.ndarray, y: np.ndarray, stratify: bool, fractions=DEFAULT_FRACTIONS) -> dict:
    idx = split_indices(y, fractions, seed=FILE_SPLIT_SEED, stratify=stratify)
    return {s: (x[i], y[i]) for s, i in idx.items()}


def _carve_validation(train: tuple, stratify: bool) -> tuple[tuple, tuple]:
    """Split a given train set into (train, validation) 90/10, seeded and stratified."""
    parts = _split(*train, stratify=stratify, fractions=CARVE_FRACTIONS)
    return parts["train"], parts["validation"]


def _encode_labels(values: np.ndarray, what: str) -> tuple[np.ndarray, list[str], str]:
    """Labels -> (y, class_names, task).

    Integer labels are classes: when they are exactly 0..K-1 they are the class indices
    already; otherwise (1..3, -1/1, ...) they map, like strings, to sorted class names, so no
    phantom empty class appears. Floats are a regression target.
    """
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise KerasdlUsageError(
            f"{what}: labels must be one value per example; received shape {values.shape}"
        )
    if values.dtype.kind == "f":
        return values.astype(np.float32), [], "regression"
    if values.dtype.kind in "iub":
        values = values.astype(np.int64)
        classes = np.unique(values)
        y = np.searchsorted(classes, values).astype(np.int32)  # identity for 0..K-1
        return y, [str(c) for c in classes], "classification"
    if values.dtype.kind in "US":
        classes = np.unique(values.astype(str))
        y = np.searchsorted(classes, values.astype(str)).astype(np.int32)
        return y, [str(c) for c in classes], "classification"
    raise KerasdlUsageError(f"{what}: unsupported label dtype {values.dtype}")


def _make_info(path: str, source: str, arrays: dict, class_names: list, task: str, **extra):
    """DatasetInfo for in-memory splits; normalisation statistics come from train only."""
    x_train = arrays["train"][0]
    raw_dtype = str(x_train.dtype)
    if raw_dtype == "uint8" and x_train.ndim >= 3:
        mean, std = 0.0, 255.0  # uint8 images
    else:
        mean, std = feature_stats(x_train)
    return DatasetInfo(
        name=path,
        source=source,
        task=task,
        input_shape=tuple(int(d) for d in x_train.shape[1:]),
        raw_dtype=raw_dtype,
        num_classes=len(class_names) if task in CLASS_TASKS else 1,
        class_names=class_names,
        splits={s: int(len(arrays[s][1])) for s in SPLITS},
        mean=mean,
        std=std,
        **extra,
    )


# ----------------------------------------------------------------------------- image folders


def _visible(entries: list[str]) -> list[str]:
    return sorted(e for e in entries if not e.startswith("."))


def _subdirs(path: str) -> list[str]:
    return [d for d in _visible(os.listdir(path)) if os.path.isdir(os.path.join(path, d))]


def _image_files(path: str) -> list[str]:
    return [
        os.path.join(path, f)
        for f in _visible(os.listdir(path))
        if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(path, f))
    ]


def open_image(path: str) -> Image.Image:
    """Open and fully decode an image, or raise a one-line error naming the file."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise KerasdlUsageError(f"cannot read image {path!r}: {reason}") from None


def image_to_array(img: Image.Image, channels: int, size: tuple[int, int]) -> np.ndarray:
    """PIL image -> uint8 (H, W, channels), resized (bilinear) to ``size`` = (H, W)."""
    img = img.convert("L" if channels == 1 else "RGB")
    if img.size != (size[1], size[0]):  # PIL sizes are (W, H)
        img = img.resize((size[1], size[0]), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[..., None] if channels == 1 else arr


def _class_files(root: str) -> dict[str, list[str]]:
    """{class name: image files} for a folder with one sub-folder per class."""
    classes = _subdirs(root)
    if not classes:
        raise KerasdlUsageError(
            f"image folder {root!r} has no class sub-folders "
            f"(expected one sub-folder of images per class, e.g. {root}/cat/001.png)"
        )
    files = {c: _image_files(os.path.join(root, c)) for c in classes}
    for c, fs in files.items():
        if not fs:
            raise KerasdlUsageError(
                f"class folder {os.path.join(root, c)!r} has no images "
                f"({', '.join(IMAGE_EXTENSIONS)})"
            )
    return files


def _split_layout(root: str) -> dict[str, str] | None:
    """{split: folder} when ``root`` holds train/ (+ validation/ or val/) + test/ folders."""
    present = set(_subdirs(root))
    found = {}
    for split, names in SPLIT_FOLDERS.items():
        for n in names:
            if n in present:
                found[split] = os.path.join(root, n)
                break
    return found if {"train", "test"} <= set(found) else None


def _load_folder(root: str, image_size: tuple[int, int] | None) -> FileData:
    layout = _split_layout(root)
    per_split = {s: _class_files(d) for s, d in (layout or {"all": root}).items()}
    class_names = sorted(per_split.get("train", per_split.get("all")))
    for split, files in per_split.items():
        extra = sorted(set(files) - set(class_names))
        if extra:
            raise KerasdlUsageError(
                f"{split} folder of {root!r} has classes {extra} that train/ does not have"
            )
    listing = {
        s: [(f, class_names.index(c)) for c, fs in files.items() for f in fs]
        for s, files in per_split.items()
    }
    images = {s: [open_image(f) for f, _ in items] for s, items in listing.items()}
    everything = [img for imgs in images.values() for img in imgs]
    channels = 1 if all(img.mode in _GRAYSCALE_MODES for img in everything) else 3
    if image_size is None:
        first = everything[0]
        image_size = (first.size[1], first.size[0])
    arrays = {
        s: (
            np.stack([image_to_array(img, channels, image_size) for img in imgs]),
            np.array([label for _, label in listing[s]], dtype=np.int32),
        )
        for s, imgs in images.items()
    }
    if layout is None:
        arrays = _split(*arrays["all"], stratify=True)
    elif "validation" not in arrays:
        arrays["train"], arrays["validation"] = _carve_validation(arrays["train"], True)
    return FileData(arrays, _make_info(root, "folder", arrays, class_names, "classification"))


# ----------------------------------------------------------------------------- .npz


def _read_npz(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError) as e:
        reason = " ".join(str(e).split())
        raise KerasdlUsageError(f"cannot read .npz file {path!r}: {reason}") from None


def _npz_x(x: np.ndarray, path: str) -> np.ndarray:
    """uint8 stays uint8 (images or counts); everything numeric else becomes float32."""
    if x.dtype.kind not in "biuf":
        raise KerasdlUsageError(f"{path}: x must be numeric; received dtype {x.dtype}")
    if x.ndim == 1:
        x = x[:, None]  # one feature per example
    return x if x.dtype == np.uint8 else x.astype(np.float32)


def _load_npz(path: str) -> FileData:
    data = _read_npz(path)
    if {"x", "y"} <= set(data):
        pairs = {"all": ("x", "y")}
    elif {"x_train", "y_train", "x_test", "y_test"} <= set(data):
        pairs = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
        for v in ("val", "validation", "valid"):
            if {f"x_{v}", f"y_{v}"} <= set(data):
                pairs["validation"] = (f"x_{v}", f"y_{v}")
                break
    else:
        raise KerasdlUsageError(
            f".npz file {path!r} needs arrays x and y, or x_train, y_train, x_test, y_test "
            f"(+ optional x_val, y_val); it has {sorted(data)}"
        )
    # Encode labels of all splits together so class indices agree across splits.
    order = list(pairs)
    ys = [np.asarray(data[pairs[s][1]]) for s in order]
    y_all, class_names, task = _encode_labels(np.concatenate(ys), path)
    if "class_names" in data and task == "classification":
        class_names = [str(c) for c in data["class_names"]]
    arrays, start = {}, 0
    for s, y in zip(order, ys):
        x = _npz_x(np.asarray(data[pairs[s][0]]), path)
        if len(x) != len(y):
            raise KerasdlUsageError(
                f"{path}: {pairs[s][0]} has {len(x)} examples but {pairs[s][1]} has {len(y)}"
            )
        arrays[s] = (x, y_all[start : start + len(y)])
        start += len(y)
    stratify = task == "classification"
    if "all" in arrays:
        arrays = _split(*arrays["all"], stratify=stratify)
    elif "validation" not in arrays:
        arrays["train"], arrays["validation"] = _carve_validation(arrays["train"], stratify)
    if len({a[0].shape[1:] for a in arrays.values()}) > 1:
        raise KerasdlUsageError(f"{path}: the x arrays of the splits have different shapes")
    return FileData(arrays, _make_info(path, "npz", arrays, class_names, task))


# ----------------------------------------------------------------------------- .csv


def _read_csv_rows(path: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, cells) of every non-blank row."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [(i, r) for i, r in enumerate(csv.reader(f), 1) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        reason = " ".join(str(e).split())
        raise KerasdlUsageError(f"cannot read .csv file {path!r}: {reason}") from None
    if not rows:
        raise KerasdlUsageError(f".csv file {path!r} is empty; expected a header row")
    header = [c.strip() for c in rows[0][1]]
    for line, cells in rows[1:]:
        if len(cells) != len(header):
            raise KerasdlUsageError(
                f"{path}: line {line} has {len(cells)} cells but the header has {len(header)}"
            )
    return header, rows[1:]


def find_label_column(header: list[str], wanted: str | None, path: str) -> str | None:
    """``wanted`` if given (must exist), else the first of LABEL_COLUMNS present, else None."""
    if wanted is not None:
        if wanted not in header:
            near = closest(wanted, header)
            hint = f" (did you mean {', '.join(map(repr, near))}?)" if near else ""
            raise KerasdlUsageError(
                f"{path}: no column {wanted!r}{hint}; columns are: {', '.join(header)}"
            )
        return wanted
    lowered = {c.lower(): c for c in header}
    return next((lowered[n] for n in LABEL_COLUMNS if n in lowered), None)


def _parse_features(rows, header: list[str], columns: list[str], path: str, dtype=np.float32) -> np.ndarray:
    """Numeric matrix of ``columns``; empty/NaN and non-numeric cells are one-line errors."""
    col_idx = [header.index(c) for c in columns]
    out = np.empty((len(rows), len(columns)), dtype=dtype)
    bad: dict[str, tuple[int, int, str]] = {}  # column -> first (row, line, value)
    for r, (line, cells) in enumerate(rows, start=1):
        for j, (c, k) in enumerate(zip(columns, col_idx)):
            cell = cells[k].strip()
            value = _number(cell)
            if value is None or not math.isfinite(value):
                if cell.lower() in _MISSING or value is not None:
                    raise KerasdlUsageError(
                        f"{path}: empty, NaN or infinite value {cell!r} at row {r} "
                        f"(line {line}), column {c!r}"
                    )
                bad.setdefault(c, (r, line, cell))
                continue
            out[r - 1, j] = value
    if bad:
        c, (r, line, cell) = next(iter(bad.items()))
        raise KerasdlUsageError(
            f"{path}: non-numeric values in feature column(s) {', '.join(map(repr, bad))} "
            f"(e.g. {cell!r} at row {r}, line {line}, column {c!r}); features must be numbers"
        )
    return out


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _parse_labels(rows, header, column: str, path: str) -> np.ndarray:
    """Label cells as int64 (integer literals), float32 (numbers) or str (anything else)."""
    k = header.index(column)
    cells = [(r, line, cells[k].strip()) for r, (line, cells) in enumerate(rows, start=1)]
    for r, line, cell in cells:
        if cell.lower() in _MISSING:
            raise KerasdlUsageError(
                f"{path}: empty or NaN label {cell!r} at row {r} (line {line}), column {column!r}"
            )
    values = [c for _, _, c in cells]
    if all(_is_int(v) for v in values):
        return np.array([int(v) for v in values], dtype=np.int64)
    if all(_number(v) is not None for v in values):
        return np.array([float(v) for v in values], dtype=np.float32)
    return np.array(values, dtype=str)


def _is_int(cell: str) -> bool:
    try:
        int(cell)
        return True
    except ValueError:
        return False


def _load_csv(path: str, label_column: str | None) -> FileData:
    header, rows = _read_csv_rows(path)
    column = find_label_column(header, label_column, path)
    if column is None:
        raise KerasdlUsageError(
            f"{path}: no label column (looked for {', '.join(LABEL_COLUMNS)}); pass --label-column "
            f"(label_column in a config file or the Python API) to pick one of: {', '.join(header)}"
        )
    if not rows:
        raise KerasdlUsageError(f".csv file {path!r} has a header but no data rows")
    features = [c for c in header if c != column]
    if not features:
        raise KerasdlUsageError(f"{path}: no feature columns besides the label {column!r}")
    x = _parse_features(rows, header, features, path)
    y, class_names, task = _encode_labels(_parse_labels(rows, header, column, path), path)
    arrays = _split(x, y, stratify=task == "classification")
    info = _make_info(
        path, "csv", arrays, class_names, task, feature_names=features, label_column=column
    )
    return FileData(arrays, info)


# ----------------------------------------------------------------------------- prediction inputs


def read_inputs(paths: list[str] | str, info: DatasetInfo) -> np.ndarray:
    """Raw inputs for prediction, shaped ``(N, *info.input_shape)`` with ``info.raw_dtype``.

    Image files are converted to the dataset's channels and resized to its input size; an
    ``.npz`` / ``.npy`` gives its ``x`` array (or its only array); a ``.csv`` gives its numeric
    feature columns (the label column is dropped when present).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise KerasdlUsageError("no input files given")
    parts = [_read_input(os.fspath(p), info) for p in paths]
    return np.concatenate(parts).astype(info.raw_dtype, copy=False)


def _read_input(path: str, info: DatasetInfo) -> np.ndarray:
    if not os.path.isfile(path):
        what = "is a directory, not a file" if os.path.isdir(path) else "not found"
        raise KerasdlUsageError(f"input file {path!r} {what}")
    ext = os.path.splitext(path)[1].lower()
    shape = tuple(info.input_shape)
    if ext in IMAGE_EXTENSIONS:
        if not info.is_image:
            raise KerasdlUsageError(
                f"{path} is an image but dataset {info.name!r} takes inputs of shape {shape}"
            )
        return image_to_array(open_image(path), shape[2], shape[:2])[None].astype(info.raw_dtype)
    if ext in (".npz", ".npy"):
        return _array_input(path, info)
    if ext == ".csv":
        return _csv_input(path, info)
    raise KerasdlUsageError(
        f"unsupported input file {path!r}: expected an image ({', '.join(IMAGE_EXTENSIONS)}), "
        ".npz, .npy or .csv"
    )


def _array_input(path: str, info: DatasetInfo) -> np.ndarray:
    if path.lower().endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise KerasdlUsageError(f"cannot read {path!r}: {' '.join(str(e).split())}") from None
    else:
        data = _read_npz(path)
        if "x" in data:
            arr = data["x"]
        elif len(data) == 1:
            arr = next(iter(data.values()))
        else:
            raise KerasdlUsageError(
                f"{path}: expected an array named 'x' or a single array; it has {sorted(data)}"
            )
    shape = tuple(info.input_shape)
    if arr.shape == shape:
        arr = arr[None]  # a single example
    elif info.is_image and shape[-1] == 1 and arr.shape[1:] == shape[:-1]:
        arr = arr[..., None]  # grayscale (N, H, W) -> (N, H, W, 1)
    if arr.shape[1:] != shape or arr.dtype.kind not in "biuf":
        raise KerasdlUsageError(
            f"{path}: expected inputs of shape (N, {', '.join(map(str, shape))}) for dataset "
            f"{info.name!r}; received shape {arr.shape} dtype {arr.dtype}"
        )
    if info.raw_dtype == "uint8" and arr.dtype != np.uint8:
        if arr.size and (np.nanmin(arr) < 0 or np.nanmax(arr) > 255 or np.isnan(arr).any()):
            raise KerasdlUsageError(
                f"{path}: dataset {info.name!r} takes raw uint8 values 0..255; received values "
                f"from {np.nanmin(arr)} to {np.nanmax(arr)}"
            )
        arr = np.rint(arr)
    return arr.astype(info.raw_dtype)


def _csv_input(path: str, info: DatasetInfo) -> np.ndarray:
    if len(info.input_shape) != 1:
        raise KerasdlUsageError(
            f"{path} is a .csv but dataset {info.name!r} takes inputs of shape {info.input_shape}"
        )
    header, rows = _read_csv_rows(path)
    lowered = {c.lower(): c for c in header}
    names = (info.label_column, "label", "target")
    drop = {lowered[n.lower()] for n in names if n and n.lower() in lowered}
    if info.feature_names and set(info.feature_names) <= set(header):
        columns = list(info.feature_names)  # pick by name: extra columns (ids, ...) are ignored
    else:
        columns = [c for c in header if c not in drop]
    if len(columns) != info.input_shape[0]:
        raise KerasdlUsageError(
            f"{path}: dataset {info.name!r} takes {info.input_shape[0]} features; the csv has "
            f"{len(columns)} feature columns ({', '.join(columns)})"
        )
    # float64 datasets (a PDE's coordinates) are parsed in float64: no rounding through float32
    return _parse_features(rows, header, columns, path, np.float64 if info.raw_dtype == "float64" else np.float32)
