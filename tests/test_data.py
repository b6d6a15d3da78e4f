"""Tests for kerasdl.data: offline tfds builders, the tf.data pipeline, user files, errors.

Everything runs offline against a session-scoped temporary data dir (KERASDL_DATA_DIR) with
KERASDL_OFFLINE=1, so nothing is downloaded and ~/tensorflow_datasets is never touched.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import socket
import time
from collections import Counter

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from kerasdl.data import (
    OFFLINE_DATASETS,
    DatasetInfo,
    dataset_info,
    default_data_dir,
    list_datasets,
    load_arrays,
    load_dataset,
    normalize,
    read_inputs,
)
from kerasdl.data.builders import SPECS
from kerasdl.errors import KerasdlUsageError, UnknownNameError

# name: (input_shape, raw_dtype, num_classes, total examples)
EXPECTED = {
    "mnist5k": ((28, 28, 1), "uint8", 10, 5000),
    "digits": ((8, 8, 1), "uint8", 10, 1797),
    "iris": ((4,), "float32", 3, 150),
    "wine": ((13,), "float32", 3, 178),
    "breast_cancer": ((30,), "float32", 2, 569),
    "diabetes": ((10,), "float32", 1, 442),
    "xor": ((2,), "float32", 2, 2000),
    "spirals": ((2,), "float32", 2, 2000),
    "moons": ((2,), "float32", 2, 2000),
    "circles": ((2,), "float32", 2, 2000),
    "coinflip": ((1,), "float32", 2, 2000),
    "ring8": ((2,), "float32", 8, 2000),
}
SPLITS = ("train", "validation", "test")


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory):
    """One prepared-data dir for the whole session; downloads are disabled."""
    path = tmp_path_factory.mktemp("tfds_data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERASDL_DATA_DIR", str(path))
        mp.setenv("KERASDL_OFFLINE", "1")
        yield str(path)


def assert_one_line(error: BaseException) -> str:
    message = str(error)
    assert message and "\n" not in message and "Traceback" not in message
    return message


def row_hashes(x: np.ndarray) -> list[str]:
    return [hashlib.sha1(np.ascontiguousarray(row).tobytes()).hexdigest() for row in x]


def all_splits(name: str, **kwargs) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {s: load_arrays(name, s, **kwargs)[:2] for s in SPLITS}


def collect(ds: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


# ----------------------------------------------------------------------------- offline sets


def test_offline_names_and_listing():
    assert set(OFFLINE_DATASETS) == set(EXPECTED) | {"shapes"}  # shapes: see its own tests
    rows = {r["name"]: r for r in list_datasets()}
    assert set(rows) == set(OFFLINE_DATASETS)
    for name, (shape, _, num_classes, total) in EXPECTED.items():
        assert tuple(rows[name]["input_shape"]) == shape
        assert rows[name]["num_classes"] == num_classes
        assert sum(rows[name]["sizes"].values()) == total
    json.dumps(list_datasets())  # serialisable for `kerasdl datasets --json`


def test_default_data_dir_follows_env(data_dir):
    assert default_data_dir() == data_dir


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_offline_set_builds_with_right_shapes_and_splits(name):
    shape, raw_dtype, num_classes, total = EXPECTED[name]
    info = dataset_info(name)
    assert (info.name, info.source, info.input_shape, info.raw_dtype) == (
        name, "kerasdl", shape, raw_dtype,
    )  # fmt: skip
    assert info.num_classes == num_classes
    assert sum(info.splits.values()) == total
    assert info.splits == next(r["sizes"] for r in list_datasets() if r["name"] == name)
    # ~70/15/15 (mnist5k: 70/10/20)
    assert abs(info.splits["train"] / total - 0.70) < 0.02

    splits = all_splits(name)
    for split, (x, y) in splits.items():
        assert x.shape == (info.splits[split], *shape) and x.dtype == np.dtype(raw_dtype)
        assert y.shape == (info.splits[split],)
    source = SPECS[name].load()
    # The splits partition the source: same multiset of examples, nothing lost or invented.
    union = Counter(h for x, _ in splits.values() for h in row_hashes(x))
    assert union == Counter(row_hashes(source.x))
    # Disjoint, except for examples the source itself contains more than once.
    duplicated = {h for h, c in union.items() if c > 1}
    seen = [set(row_hashes(x)) for x, _ in splits.values()]
    for i in range(3):
        for j in range(i + 1, 3):
            assert seen[i] & seen[j] <= duplicated

    if info.task == "classification":
        assert len(info.class_names) == num_classes
        for split, (_, y) in splits.items():
            assert y.dtype == np.int32 and y.min() >= 0 and y.max() < num_classes
        # Stratified: each class's share of every split matches its share of the whole set.
        counts = Counter(source.y.tolist())
        for split, (_, y) in splits.items():
            fraction = info.splits[split] / total
            for c, n_c in counts.items():
                assert abs(np.sum(y == c) - n_c * fraction) <= 1.5
    else:
        assert info.task == "regression" and info.class_names == []
        assert all(y.dtype == np.float32 for _, y in splits.values())


def test_mnist5k_exact_stratified_splits():
    info = dataset_info("mnist5k")
    assert info.splits == {"train": 3500, "validation": 500, "test": 1000}
    assert info.class_names == [str(d) for d in range(10)]
    for split, per_class in (("train", 350), ("validation", 50), ("test", 100)):
        x, y, _ = load_arrays("mnist5k", split)
        assert np.bincount(y, minlength=10).tolist() == [per_class] * 10
        assert x.max() == 255 and x.min() == 0


def test_digits_are_uint8_0_to_16_and_scaled_by_16():
    x, _, info = load_arrays("digits", "train")
    assert x.max() == 16 and info.mean == 0.0 and info.std == 16.0
    xb, _ = collect(load_dataset("digits", "train", batch_size=500)[0])
    assert xb.dtype == np.float32 and xb.min() == 0.0 and xb.max() == 1.0


def test_class_names_match_scikit_learn():
    import sklearn.datasets as skd

    for name, loader in (("iris", skd.load_iris), ("wine", skd.load_wine),
                         ("breast_cancer", skd.load_breast_cancer)):  # fmt: skip
        assert dataset_info(name).class_names == list(loader().target_names)
        assert dataset_info(name).feature_names == list(loader().feature_names)


def test_offline_builders_are_real_tfds_builders(data_dir):
    dataset_info("mnist5k")  # first use prepares it
    builder = tfds.builder("kerasdl_mnist5k", data_dir=data_dir)
    assert isinstance(builder, tfds.core.GeneratorBasedBuilder)
    assert builder.is_prepared()
    assert builder.info.supervised_keys == ("image", "label")
    assert builder.info.features["label"].num_classes == 10
    assert {s: builder.info.splits[s].num_examples for s in SPLITS} == {
        "train": 3500, "validation": 500, "test": 1000,
    }  # fmt: skip
    assert any(f.endswith(tuple(f"-of-{n:05d}" for n in range(1, 9)))
               for f in os.listdir(builder.data_dir) if ".tfrecord-" in f)  # fmt: skip
    # Plain tfds reads it too.
    ds = tfds.load("kerasdl_iris", split="test", data_dir=data_dir, as_supervised=True)
    assert sum(1 for _ in ds) == dataset_info("iris").splits["test"]


def test_prepared_data_is_reused_not_rebuilt(data_dir):
    dataset_info("wine")
    marker = os.path.join(tfds.builder("kerasdl_wine", data_dir=data_dir).data_dir,
                          "dataset_info.json")  # fmt: skip
    before = os.stat(marker).st_mtime_ns
    load_dataset("wine", "train")
    assert os.stat(marker).st_mtime_ns == before


# ---------------------------------------------------------------------- shapes: segmentation

SHAPE_CLASSES = ["background", "circle", "square", "triangle"]


def pair_hashes(x: np.ndarray, y: np.ndarray) -> Counter:
    """Multiset of (image, mask) pairs: a mask must stay with its own image."""
    return Counter(h + g for h, g in zip(row_hashes(x), row_hashes(np.asarray(y, np.uint8))))


def colour_ids(images: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> (...) int64 r*65536 + g*256 + b: one id per exact colour."""
    rgb = images.astype(np.int64)
    return rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]


def mask_matches_colours(image: np.ndarray, mask: np.ndarray) -> bool:
    """Shapes are flat colours that never occur in the background, so for every class the
    mask must be *exactly* the pixels showing that class's (at most 3) shape colours."""
    ids = colour_ids(image)
    for c in (1, 2, 3):
        colours = np.unique(ids[mask == c])
        if len(colours) > 3 or not np.array_equal(np.isin(ids, colours), mask == c):
            return False
    return True


def test_shapes_is_a_segmentation_set_with_seeded_unstratified_splits():
    from kerasdl.data.builders import split_arrays
    from kerasdl.data.info import TASKS
    from kerasdl.data.splits import split_indices

    assert "segmentation" in TASKS
    info = dataset_info("shapes")
    assert (info.source, info.task, info.input_shape, info.raw_dtype) == (
        "kerasdl", "segmentation", (64, 64, 3), "uint8",
    )  # fmt: skip
    assert (info.num_classes, info.class_names) == (4, SHAPE_CLASSES)
    assert (info.mean, info.std) == (0.0, 255.0)
    assert info.splits == {"train": 1400, "validation": 300, "test": 300}
    row = next(r for r in list_datasets() if r["name"] == "shapes")
    assert (row["task"], row["num_classes"], row["sizes"]) == ("segmentation", 4, info.splits)
    assert DatasetInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info

    source = SPECS["shapes"].load()
    assert source.x.shape == (2000, 64, 64, 3) and source.y.shape == (2000, 64, 64)
    # A plain seeded permutation of all examples (masks have no class to stratify by) ...
    keys = {s: k for s, (k, _, _) in split_arrays(SPECS["shapes"]).items()}
    expected = split_indices(np.zeros(2000), (0.70, 0.15, 0.15), seed=0, stratify=False)
    for split in SPLITS:
        np.testing.assert_array_equal(keys[split], expected[split])
    # ... and the prepared tfds splits hold exactly those (image, mask) pairs.
    for split, (x, y) in all_splits("shapes").items():
        n = info.splits[split]
        assert x.shape == (n, 64, 64, 3) and x.dtype == np.uint8
        assert y.shape == (n, 64, 64) and y.dtype == np.int32
        assert pair_hashes(x, y) == pair_hashes(source.x[keys[split]], source.y[keys[split]])


def test_shapes_masks_hold_classes_and_match_the_drawn_shapes():
    x = np.concatenate([load_arrays("shapes", s)[0] for s in SPLITS])
    y = np.concatenate([load_arrays("shapes", s)[1] for s in SPLITS])
    assert set(np.unique(y).tolist()) == {0, 1, 2, 3}
    assert (y.reshape(len(y), -1) > 0).any(axis=1).all()  # every image shows a shape
    assert 0.05 < (y > 0).mean() < 0.30  # shapes are neither specks nor the whole image
    shares = np.bincount(y[y > 0], minlength=4)[1:] / (y > 0).sum()
    assert shares.min() > 0.2  # the three shape classes are roughly balanced
    # Exact image/mask agreement, after the PNG round trip through tfds.
    assert all(mask_matches_colours(image, mask) for image, mask in zip(x, y))
    # The check can fail: a mask one pixel off, or another image's mask, does not match.
    assert not any(mask_matches_colours(x[i], np.roll(y[i], 1, axis=1)) for i in range(20))
    assert not any(mask_matches_colours(x[i], y[i + 1]) for i in range(20))

    # Labels name the right geometry: a region of one shape colour fills its bounding box
    # completely for a square, ~pi/4 for a circle, <= 1/2 for a triangle.
    fills = {1: [], 2: [], 3: []}
    ids = colour_ids(x[:300])
    for image_ids, mask in zip(ids, y[:300]):
        for c in (1, 2, 3):
            for colour in np.unique(image_ids[mask == c]):
                rows, cols = np.nonzero(image_ids == colour)
                box = (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
                fills[c].append(len(rows) / box)
    circle, square, triangle = (np.median(fills[c]) for c in (1, 2, 3))
    assert 0.70 < circle < 0.85 and square == 1.0 and triangle < 0.6


def test_shapes_generation_is_deterministic():
    from kerasdl.data.builders import _shapes

    first, again = _shapes.__wrapped__(), _shapes.__wrapped__()  # bypass the cache: regenerate
    np.testing.assert_array_equal(first.x, again.x)
    np.testing.assert_array_equal(first.y, again.y)
    other = _shapes.__wrapped__(seed=1)
    assert not np.array_equal(first.y, other.y)  # the seed matters
    # What tfds prepared is that same fixed-seed data.
    loaded = [load_arrays("shapes", s)[:2] for s in SPLITS]
    x, y = (np.concatenate(parts) for parts in zip(*loaded))
    assert pair_hashes(x, y) == pair_hashes(first.x, first.y)


def test_shapes_is_a_real_tfds_builder(data_dir):
    dataset_info("shapes")
    builder = tfds.builder("kerasdl_shapes", data_dir=data_dir)
    assert isinstance(builder, tfds.core.GeneratorBasedBuilder) and builder.is_prepared()
    assert builder.info.supervised_keys == ("image", "segmentation_mask")
    mask_feature = builder.info.features["segmentation_mask"]
    assert isinstance(mask_feature, tfds.features.LabeledImage)
    assert (mask_feature.names, mask_feature.shape) == (SHAPE_CLASSES, (64, 64, 1))
    assert {s: builder.info.splits[s].num_examples for s in SPLITS} == {
        "train": 1400, "validation": 300, "test": 300,
    }  # fmt: skip
    ds = tfds.load("kerasdl_shapes", split="validation", data_dir=data_dir, as_supervised=True)
    image, mask = next(iter(tfds.as_numpy(ds)))
    assert image.shape == (64, 64, 3) and mask.shape == (64, 64, 1) and mask.dtype == np.uint8
    assert sum(1 for _ in ds) == 300


def test_shapes_pipeline_yields_normalised_images_and_int_masks():
    ds, info = load_dataset("shapes", "train", batch_size=500)
    sizes = []
    for x, y in ds:
        assert x.dtype == tf.float32 and y.dtype == tf.int32
        assert x.shape[1:] == (64, 64, 3) and y.shape == (x.shape[0], 64, 64)
        assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0
        sizes.append(int(x.shape[0]))
    assert sizes == [500, 500, 400] and info.task == "segmentation"
    # Unshuffled and unnormalised, the pipeline gives exactly load_arrays.
    x, y = collect(load_dataset("shapes", "test", batch_size=128, normalize=False)[0])
    xa, ya, _ = load_arrays("shapes", "test")
    assert x.dtype == np.uint8
    np.testing.assert_array_equal(x, xa)
    np.testing.assert_array_equal(y, ya)
    # image_size resizes the masks with nearest neighbour: still class indices, never blends.
    ds, small = load_dataset("shapes", "test", batch_size=300, image_size=(32, 32),
                             shuffle=False)  # fmt: skip
    xs, ys = next(iter(ds))
    assert small.input_shape == (32, 32, 3) and xs.shape == (300, 32, 32, 3)
    assert ys.shape == (300, 32, 32) and ys.dtype == tf.int32
    np.testing.assert_array_equal(ys.numpy(), ya[:, 1::2, 1::2])  # tf's half-pixel nearest


def test_read_inputs_for_shapes(tmp_path):
    info = dataset_info("shapes")
    png = str(tmp_path / "photo.png")
    write_png(png, size=(100, 80), mode="L")  # grayscale and the wrong size: converted
    npz = str(tmp_path / "batch.npz")
    raw = load_arrays("shapes", "test")[0][:3]
    np.savez(npz, x=raw)
    x = read_inputs([png, npz], info)
    assert x.shape == (4, 64, 64, 3) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[1:], raw)
    with pytest.raises(KerasdlUsageError, match="shape"):
        read_inputs([str(tmp_path / "batch.npz")], dataset_info("mnist5k"))


# ----------------------------------------------------------------------------- pipeline


def test_image_batches_are_normalised_to_unit_range():
    ds, info = load_dataset("mnist5k", "test", batch_size=256)
    sizes, lo, hi = [], np.inf, -np.inf
    for x, y in ds:
        assert x.dtype == tf.float32 and y.dtype == tf.int32
        assert x.shape[1:] == (28, 28, 1) and y.shape == (x.shape[0],)
        sizes.append(int(x.shape[0]))
        lo, hi = min(lo, float(tf.reduce_min(x))), max(hi, float(tf.reduce_max(x)))
    assert sizes == [256, 256, 256, 232]
    assert (lo, hi) == (0.0, 1.0)
    dropped, _ = load_dataset("mnist5k", "test", batch_size=256, drop_remainder=True)
    assert [int(x.shape[0]) for x, _ in dropped] == [256, 256, 256]


def test_unnormalised_unshuffled_test_split_matches_load_arrays():
    ds, _ = load_dataset("mnist5k", "test", batch_size=1000, normalize=False)
    x, y = collect(ds)
    xa, ya, _ = load_arrays("mnist5k", "test")
    assert x.dtype == np.uint8
    np.testing.assert_array_equal(x, xa)
    np.testing.assert_array_equal(y, ya)


def test_tabular_train_features_are_standardised_from_train():
    ds, info = load_dataset("iris", "train", batch_size=32)
    x, _ = collect(ds)
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=1e-4)
    # Validation uses the TRAIN statistics, not its own.
    xv, _ = collect(load_dataset("iris", "validation", batch_size=32)[0])
    raw, _, _ = load_arrays("iris", "validation")
    np.testing.assert_allclose(xv, (raw - np.array(info.mean)) / np.array(info.std), rtol=1e-5)


def test_regression_targets_are_float_vectors():
    ds, info = load_dataset("diabetes", "train", batch_size=50)
    x, y = next(iter(ds))
    assert info.task == "regression" and info.num_classes == 1
    assert y.dtype == tf.float32 and y.shape == (50,) and x.shape == (50, 10)
    assert float(tf.reduce_max(y)) > 25.0  # raw disease-progression values, not scaled


def test_same_seed_same_order_sequence():
    def epochs(seed: int, n: int = 2) -> list[np.ndarray]:
        ds, _ = load_dataset("digits", "train", batch_size=100, seed=seed)
        return [collect(ds)[0].reshape(-1, 64).sum(axis=1) for _ in range(n)]

    first, again, other = epochs(7), epochs(7), epochs(8, n=1)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], first[1])  # reshuffled each epoch
    assert not np.array_equal(first[0], other[0])  # the seed matters
    raw, _, _ = load_arrays("digits", "train")
    assert sorted(first[0] * 16) == pytest.approx(sorted(raw.reshape(-1, 64).sum(axis=1)))


def test_image_size_resizes_offline_images():
    ds, info = load_dataset("mnist5k", "test", batch_size=10, image_size=(14, 14),
                            normalize=False)  # fmt: skip
    x, _ = next(iter(ds))
    assert info.input_shape == (14, 14, 1) and x.shape == (10, 14, 14, 1) and x.dtype == tf.uint8


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(name="iris", split="train", image_size=(8, 8)), "image_size"),
        (dict(name="mnist5k", split="train", label_column="y"), "label_column"),
        (dict(name="iris", split="train", batch_size=0), "batch_size"),
        (dict(name="mnist5k", split="train", image_size=(0, 3)), "image_size"),
    ],
)
def test_bad_options_are_one_line_usage_errors(kwargs, fragment):
    with pytest.raises(KerasdlUsageError) as err:
        load_dataset(**kwargs)
    assert fragment in assert_one_line(err.value)


def test_unknown_split_suggests_the_right_one():
    with pytest.raises(UnknownNameError) as err:
        load_dataset("iris", "valid")
    assert err.value.suggestions[0] == "validation"


# ----------------------------------------------------------------------------- names, catalog


def test_unprepared_catalog_dataset_offline_error_without_network(monkeypatch, data_dir):
    def no_network(*args, **kwargs):
        raise AssertionError("kerasdl.data touched the network with downloads disabled")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    start = time.monotonic()
    with pytest.raises(KerasdlUsageError) as err:
        load_dataset("cifar10", "train", download=False)
    message = assert_one_line(err.value)
    assert "'cifar10'" in message and "not prepared" in message and "offline" in message
    assert data_dir in message and "mnist5k" in message and "circles" in message
    # KERASDL_OFFLINE=1 (set for the session) means download=None is "not allowed" too.
    with pytest.raises(KerasdlUsageError, match="could not be downloaded"):
        dataset_info("svhn_cropped")
    assert time.monotonic() - start < 30
    assert not os.path.exists(os.path.join(data_dir, "cifar10"))


def test_tfds_prefix_forces_the_catalog():
    assert dataset_info("iris").source == "kerasdl"
    with pytest.raises(KerasdlUsageError) as err:
        dataset_info("tfds:iris", download=False)
    assert "'tfds:iris'" in assert_one_line(err.value)


class TwoSplitToy(tfds.core.GeneratorBasedBuilder):
    """A tiny catalog-style tfds dataset with only train and test splits (no validation)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self) -> tfds.core.DatasetInfo:
        features = {"image": tfds.features.Image(shape=(4, 4, 1)),
                    "label": tfds.features.ClassLabel(names=["even", "odd"])}  # fmt: skip
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict(features),
            supervised_keys=("image", "label"),
        )  # fmt: skip

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 50), "test": self._generate_examples(50, 60)}

    def _generate_examples(self, start, stop):
        for i in range(start, stop):
            yield i, {"image": np.full((4, 4, 1), i, np.uint8), "label": i % 2}


def test_catalog_dataset_without_validation_gets_one_carved_from_train(data_dir):
    tfds.builder("two_split_toy", data_dir=data_dir).download_and_prepare()  # local data only
    info = dataset_info("two_split_toy", download=False)
    assert (info.source, info.class_names, info.input_shape) == ("tfds", ["even", "odd"],
                                                                 (4, 4, 1))  # fmt: skip
    assert info.splits == {"train": 45, "validation": 5, "test": 10}
    assert (info.mean, info.std) == (0.0, 255.0)
    ids = {s: load_arrays("two_split_toy", s)[0][:, 0, 0, 0].tolist() for s in SPLITS}
    assert sorted(ids["train"] + ids["validation"]) == list(range(50))
    assert sorted(ids["test"]) == list(range(50, 60))
    assert ids["validation"] == load_arrays("two_split_toy", "validation")[0][:, 0, 0, 0].tolist()
    x, y = next(iter(load_dataset("two_split_toy", "validation", batch_size=5)[0]))
    assert x.dtype == tf.float32 and y.dtype == tf.int32
    np.testing.assert_allclose(x.numpy()[:, 0, 0, 0], np.array(ids["validation"]) / 255.0)


def test_catalog_path_reads_any_prepared_builder():
    ours = dataset_info("iris")
    via_catalog = dataset_info("tfds:kerasdl_iris")
    assert (via_catalog.source, via_catalog.name) == ("tfds", "tfds:kerasdl_iris")
    assert via_catalog.splits == ours.splits and via_catalog.class_names == ours.class_names
    assert via_catalog.mean == pytest.approx(ours.mean)


@pytest.mark.parametrize("typo, best", [("mnist5", "mnist5k"), ("breast", "breast_cancer"),
                                        ("spiral", "spirals")])  # fmt: skip
def test_unknown_name_suggests_offline_names_first(typo, best):
    with pytest.raises(UnknownNameError) as err:
        load_dataset(typo, "train")
    assert err.value.suggestions[0] == best
    message = assert_one_line(err.value)
    assert f"did you mean '{best}'" in message and "mnist5k" in message


def test_missing_path_is_a_usage_error(tmp_path):
    with pytest.raises(KerasdlUsageError, match="does not exist"):
        dataset_info(str(tmp_path / "nope.csv"))


# ----------------------------------------------------------------------------- image folders


def write_png(path, size=(10, 12), mode="RGB", seed=0) -> None:
    """A small random image; size is (W, H) as PIL has it."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)


def make_folder(root, classes=("emu", "cat", "dog"), per_class=10, mode="RGB", seed=0):
    for c, name in enumerate(classes):
        for i in range(per_class):
            write_png(os.path.join(root, name, f"{i:03d}.png"), mode=mode, seed=seed + 100 * c + i)
    return str(root)


def test_image_folder_loads_with_sorted_classes_and_stratified_splits(tmp_path):
    root = make_folder(tmp_path / "pets")
    (tmp_path / "pets" / "cat" / "notes.txt").write_text("not an image")  # ignored
    info = dataset_info(root)
    assert (info.source, info.task, info.class_names) == ("folder", "classification",
                                                           ["cat", "dog", "emu"])  # fmt: skip
    assert info.input_shape == (12, 10, 3) and info.raw_dtype == "uint8"
    assert info.splits == {"train": 18, "validation": 6, "test": 6}
    assert (info.mean, info.std) == (0.0, 255.0)
    for split in SPLITS:
        _, y, _ = load_arrays(root, split)
        assert np.bincount(y, minlength=3).tolist() == [info.splits[split] // 3] * 3
    # Pixels survive the round trip: the 'cat' class is exactly the cat files.
    x = np.concatenate([load_arrays(root, s)[0] for s in SPLITS])
    y = np.concatenate([load_arrays(root, s)[1] for s in SPLITS])
    cat_files = [np.asarray(Image.open(tmp_path / "pets" / "cat" / f"{i:03d}.png"))
                 for i in range(10)]  # fmt: skip
    assert Counter(row_hashes(x[y == 0])) == Counter(row_hashes(np.stack(cat_files)))
    xb, yb = next(iter(load_dataset(root, "train", batch_size=4)[0]))
    assert xb.shape == (4, 12, 10, 3) and xb.dtype == tf.float32 and float(tf.reduce_max(xb)) <= 1


def test_grayscale_folder_gets_one_channel_and_image_size(tmp_path):
    root = make_folder(tmp_path / "gray", classes=("a", "b"), per_class=4, mode="L")
    write_png(os.path.join(root, "b", "big.png"), size=(40, 30), mode="L", seed=99)
    assert dataset_info(root).input_shape == (12, 10, 1)  # the first image's size
    info = dataset_info(root, image_size=(6, 5))
    assert info.input_shape == (6, 5, 1)
    x, _, _ = load_arrays(root, "train", image_size=(6, 5))
    assert x.shape[1:] == (6, 5, 1) and x.dtype == np.uint8


def test_folder_with_split_subfolders_keeps_them(tmp_path):
    for split, n in (("train", 5), ("validation", 2), ("test", 3)):
        make_folder(tmp_path / "ds" / split, classes=("x", "y"), per_class=n, seed=n * 1000)
    info = dataset_info(str(tmp_path / "ds"))
    assert info.class_names == ["x", "y"]
    assert info.splits == {"train": 10, "validation": 4, "test": 6}


def test_folder_errors_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(KerasdlUsageError, match="no class sub-folders") as err:
        dataset_info(str(tmp_path / "empty"))
    assert_one_line(err.value)

    root = make_folder(tmp_path / "holes", classes=("a", "b"), per_class=3)
    os.makedirs(os.path.join(root, "c"))
    with pytest.raises(KerasdlUsageError, match="has no images") as err:
        dataset_info(root)
    assert os.path.join(root, "c") in assert_one_line(err.value)

    root = make_folder(tmp_path / "corrupt", classes=("a", "b"), per_class=3)
    bad = os.path.join(root, "b", "broken.png")
    with open(bad, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n this is not really a png")
    with pytest.raises(KerasdlUsageError, match="cannot read image") as err:
        dataset_info(root)
    assert bad in assert_one_line(err.value)


# ----------------------------------------------------------------------------- .npz and .csv


def test_npz_images_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (60, 8, 8, 1), dtype=np.uint8)
    y = np.repeat(np.arange(3), 20)
    path = str(tmp_path / "imgs.npz")
    np.savez(path, x=x, y=y)
    info = dataset_info(path)
    assert (info.source, info.task, info.num_classes) == ("npz", "classification", 3)
    assert (info.input_shape, info.raw_dtype, info.mean, info.std) == ((8, 8, 1), "uint8", 0.0,
                                                                       255.0)  # fmt: skip
    assert sum(info.splits.values()) == 60
    splits = all_splits(path)
    pairs = Counter((h, int(label)) for xs, ys in splits.values()
                    for h, label in zip(row_hashes(xs), ys))  # fmt: skip
    assert pairs == Counter(zip(row_hashes(x), y.tolist()))  # labels stay with their images


def test_npz_train_test_regression_standardises_from_train(tmp_path):
    rng = np.random.default_rng(1)
    xtr, xte = rng.normal(5.0, 3.0, (100, 5)), rng.normal(5.0, 3.0, (20, 5))
    path = str(tmp_path / "reg.npz")
    np.savez(path, x_train=xtr, y_train=xtr.sum(1), x_test=xte, y_test=xte.sum(1))
    info = dataset_info(path)
    assert (info.task, info.raw_dtype, info.num_classes) == ("regression", "float32", 1)
    assert info.splits == {"train": 90, "validation": 10, "test": 20}  # 10% carved from train
    x_train, y_train, _ = load_arrays(path, "train")
    np.testing.assert_allclose(info.mean, x_train.mean(0), rtol=1e-5)
    x_test, y_test, _ = load_arrays(path, "test")
    np.testing.assert_allclose(x_test, xte.astype(np.float32))
    _, yb = next(iter(load_dataset(path, "train", batch_size=8)[0]))
    assert yb.dtype == tf.float32 and yb.shape == (8,)


def write_csv(path, header, rows) -> str:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return str(path)


def test_csv_round_trip_with_string_labels(tmp_path):
    rng = np.random.default_rng(2)
    features = rng.normal(size=(40, 3)).round(4)
    labels = np.array(["zebra", "ant", "moth", "ant"] * 10)
    path = write_csv(tmp_path / "t.csv", ["f1", "f2", "species", "f3"],
                     [[a, b, s, c] for (a, b, c), s in zip(features, labels)])  # fmt: skip
    with pytest.raises(KerasdlUsageError) as err:
        dataset_info(path)
    message = assert_one_line(err.value)
    assert "label" in message and "f1, f2, species, f3" in message
    info = dataset_info(path, label_column="species")
    assert info.class_names == ["ant", "moth", "zebra"] and info.feature_names == ["f1", "f2", "f3"]
    assert (info.input_shape, info.raw_dtype, info.label_column) == ((3,), "float32", "species")
    rows = Counter()
    for split in SPLITS:
        x, y, _ = load_arrays(path, split, label_column="species")
        rows.update((tuple(r.tolist()), info.class_names[k]) for r, k in zip(x, y))
    expected = Counter((tuple(r.astype(np.float32).tolist()), s) for r, s in zip(features, labels))
    assert rows == expected


def test_csv_numeric_label_column_is_found_automatically(tmp_path):
    path = write_csv(tmp_path / "n.csv", ["a", "b", "Target"],
                     [[i, i * 2.5, i % 2] for i in range(30)])  # fmt: skip
    info = dataset_info(path)
    assert (info.task, info.class_names, info.label_column) == ("classification", ["0", "1"],
                                                                "Target")  # fmt: skip


def test_csv_integer_labels_without_zero_map_to_sorted_classes(tmp_path):
    path = write_csv(tmp_path / "w.csv", ["a", "class"], [[i * 0.5, 1 + i % 3] for i in range(30)])
    info = dataset_info(path)
    assert info.class_names == ["1", "2", "3"] and info.num_classes == 3
    x, y, _ = load_arrays(path, "train")
    np.testing.assert_array_equal(y, (x[:, 0] * 2).astype(int) % 3)


@pytest.mark.parametrize(
    "rows, fragments",
    [
        ([[1, 2, 0], [3, "", 1], [5, 6, 0]], ["row 2", "'b'"]),
        ([[1, 2, 0], [3, 4, 1], ["nan", 6, 0]], ["row 3", "'a'"]),
        ([[1, 2, 0], [3, "red", 1], [5, 6, 0]], ["non-numeric", "'b'", "'red'"]),
    ],
)
def test_csv_bad_cells_name_row_and_column(tmp_path, rows, fragments):
    path = write_csv(tmp_path / "bad.csv", ["a", "b", "label"], rows)
    with pytest.raises(KerasdlUsageError) as err:
        dataset_info(path)
    message = assert_one_line(err.value)
    assert all(f in message for f in fragments), message


# ----------------------------------------------------------------------------- read_inputs


def test_read_inputs_png_npz_and_csv(tmp_path):
    mnist = dataset_info("mnist5k")
    png = str(tmp_path / "seven.png")
    write_png(png, size=(30, 30), mode="RGB")  # colour and the wrong size: converted
    npz = str(tmp_path / "three.npz")
    np.savez(npz, x=np.zeros((3, 28, 28), np.uint8))  # (N, H, W) without a channel axis
    single = str(tmp_path / "single.npz")
    np.savez(single, images=np.full((2, 28, 28, 1), 7, np.uint8))
    x = read_inputs([png, npz, single], mnist)
    assert x.shape == (6, 28, 28, 1) and x.dtype == np.uint8 and x[-1].max() == 7

    iris = dataset_info("iris")
    named = write_csv(tmp_path / "named.csv", ["id", "label", *iris.feature_names],
                      [[i, 0, 5.1, 3.5, 1.4, 0.2] for i in range(4)])  # fmt: skip
    plain = write_csv(tmp_path / "plain.csv", ["a", "b", "c", "d", "target"],
                      [[5.1, 3.5, 1.4, 0.2, 1]])  # fmt: skip
    x = read_inputs([named, plain], iris)
    assert x.shape == (5, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], [5.1, 3.5, 1.4, 0.2], rtol=1e-6)


def test_read_inputs_bad_files_are_one_line_errors(tmp_path):
    mnist = dataset_info("mnist5k")
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"definitely not an image")
    wrong = str(tmp_path / "wrong.npz")
    np.savez(wrong, x=np.zeros((2, 5, 5), np.uint8))
    for path, fragment in ((str(fake), "cannot read image"), (wrong, "shape"),
                           (str(tmp_path / "missing.png"), "not found"),
                           (str(tmp_path / "notes.txt"), "not found")):  # fmt: skip
        with pytest.raises(KerasdlUsageError) as err:
            read_inputs([path], mnist)
        message = assert_one_line(err.value)
        assert fragment in message and os.path.basename(path) in message


# ----------------------------------------------------------------------------- normalize, info


def test_normalize_works_on_symbolic_tensors_in_tf_function():
    mnist, iris = dataset_info("mnist5k"), dataset_info("iris")

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.uint8)])
    def images(x):
        return normalize(x, mnist)

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def table(x):
        return normalize(x, iris)

    out = images(tf.fill([2, 28, 28, 1], tf.constant(255, tf.uint8)))
    assert out.dtype == tf.float32 and np.allclose(out.numpy(), 1.0)
    centred = table(tf.constant([iris.mean], tf.float32))
    np.testing.assert_allclose(centred.numpy(), 0.0, atol=1e-6)


def test_dataset_info_round_trips_through_json():
    for name in ("mnist5k", "diabetes"):
        info = dataset_info(name)
        again = DatasetInfo.from_dict(json.loads(json.dumps(info.to_dict())))
        assert again == info and isinstance(again.input_shape, tuple)
