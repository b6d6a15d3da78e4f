"""The GAN toy sets (kerasdl/data/builders.py): ``coinflip`` (a biased coin, P(heads) = 0.3) and
``ring8`` (8 Gaussians on a circle, Metz et al. 2017), loaded offline through the tfds builders."""

from __future__ import annotations

import numpy as np
import pytest

from kerasdl.data import OFFLINE_DATASETS, dataset_info, list_datasets, load_dataset
from kerasdl.data.builders import COIN_P_HEADS, RING8_CENTRES, RING8_STD, SPECS

SPLITS = ("train", "validation", "test")


def _arrays(name, split, **kwargs):
    ds, info = load_dataset(name, split, batch_size=512, shuffle=False, **kwargs)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys), info


def test_both_sets_are_listed():
    assert {"coinflip", "ring8"} <= set(OFFLINE_DATASETS)
    rows = {r["name"]: r for r in list_datasets()}
    assert rows["coinflip"]["input_shape"] == [1] and rows["coinflip"]["num_classes"] == 2
    assert rows["ring8"]["input_shape"] == [2] and rows["ring8"]["num_classes"] == 8
    assert sum(rows["coinflip"]["sizes"].values()) == sum(rows["ring8"]["sizes"].values()) == 2000
    assert "P(heads)=0.3" in SPECS["coinflip"].description


def test_coinflip(data_dir):
    info = dataset_info("coinflip", data_dir=data_dir)
    assert (info.input_shape, info.raw_dtype, info.num_classes) == ((1,), "float32", 2)
    assert list(info.class_names) == ["tails", "heads"] and sum(info.splits.values()) == 2000
    total = 0
    for split in SPLITS:
        x, y, _ = _arrays("coinflip", split, data_dir=data_dir, normalize=False)
        assert x.shape == (info.splits[split], 1) and x.dtype == np.float32
        assert set(np.unique(x)) <= {0.0, 1.0}
        np.testing.assert_array_equal(x[:, 0], y)  # the label is the outcome
        total += len(x)
        if split == "train":
            assert abs(x.mean() - COIN_P_HEADS) < 0.03, x.mean()
    assert total == 2000
    # The pipeline standardises the feature with the train split's statistics.
    x, _, info = _arrays("coinflip", "train", data_dir=data_dir)
    assert abs(x.mean()) < 1e-5 and x.std() == pytest.approx(1.0, abs=1e-3)
    assert np.ravel(info.mean)[0] == pytest.approx(COIN_P_HEADS, abs=0.03)


def test_ring8(data_dir):
    assert RING8_CENTRES.shape == (8, 2) and RING8_STD == 0.02
    np.testing.assert_allclose(np.hypot(*RING8_CENTRES.T), 2.0)
    gaps = np.hypot(*(RING8_CENTRES - np.roll(RING8_CENTRES, 1, axis=0)).T)
    np.testing.assert_allclose(gaps, 2 * 2.0 * np.sin(np.pi / 8))  # equally spaced
    info = dataset_info("ring8", data_dir=data_dir)
    assert (info.input_shape, info.raw_dtype, info.num_classes) == ((2,), "float32", 8)
    assert list(info.class_names) == [f"mode{k}" for k in range(8)]
    for split in SPLITS:
        x, y, _ = _arrays("ring8", split, data_dir=data_dir, normalize=False)
        assert x.shape == (info.splits[split], 2) and x.dtype == np.float32
        dist = np.linalg.norm(x[:, None, :] - RING8_CENTRES[None], axis=-1)  # (N, 8)
        np.testing.assert_array_equal(dist.argmin(axis=1), y)  # label = nearest mode
        assert dist.min(axis=1).max() < 6 * RING8_STD  # every point near its centre
        if split == "train":
            counts = np.bincount(y, minlength=8)
            assert counts.min() > 0.8 * counts.mean()  # every mode populated, about equally
            spread = (x - RING8_CENTRES[y]).std()
            assert spread == pytest.approx(RING8_STD, rel=0.1)
