"""Sample-quality figures (kerasdl/evaluation/quality.py) against independent computations, and the
pinned feature network (kerasdl/evaluation/feature_net.py): trained once, cached, not trusted when
its file is corrupted."""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest

from kerasdl.evaluation import quality as q


def random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def sym_sqrt(s):
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def fid_by_eigh(mu1, s1, mu2, s2):
    """Closed form another way: Tr((S1 S2)^1/2) = Tr((S1^1/2 S2 S1^1/2)^1/2), symmetric roots by eigh."""
    r1 = sym_sqrt(s1)
    inner = np.linalg.eigvalsh(r1 @ s2 @ r1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(np.clip(inner, 0, None))))


# --------------------------------------------------------------------------- FID


@pytest.mark.parametrize("d", [2, 7, 30])
def test_frechet_distance_matches_the_eigh_closed_form(d):
    rng = np.random.default_rng(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = random_spd(rng, d), random_spd(rng, d)
    assert np.count_nonzero(s1 - np.diag(np.diag(s1))) > 0  # non-diagonal
    expected = fid_by_eigh(mu1, s1, mu2, s2)
    assert q.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)
    assert q.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_commuting_diagonal_covariances():
    a, b = np.array([1.0, 4.0, 0.25, 9.0]), np.array([2.0, 1.0, 0.5, 16.0])
    mu1, mu2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.5])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert q.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_fid_of_a_set_with_itself_and_of_gaussian_samples():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8)) @ rng.normal(size=(8, 8))
    assert abs(q.fid(x, x)) < 1e-6
    mu, sigma = q.gaussian_stats(x)
    np.testing.assert_allclose(mu, x.mean(axis=0))
    np.testing.assert_allclose(sigma, np.cov(x.T))
    assert q.fid(x, x + 2.0) == pytest.approx(8 * 4.0, rel=1e-6)  # a shift moves only the means


def test_fid_with_singular_covariances_stays_finite():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 50))  # rank <= 19 in 50 dimensions
    value = q.fid(x, x + 0.1)
    assert np.isfinite(value) and value == pytest.approx(50 * 0.01, rel=1e-3)


# --------------------------------------------------------------------------- KID


def brute_mmd2(a, b):
    k = lambda x, y: (np.dot(x, y) / len(x) + 1.0) ** 3  # noqa: E731
    m, n = len(a), len(b)
    saa = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    sbb = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    sab = sum(k(a[i], b[j]) for i in range(m) for j in range(n)) / (m * n)
    return saa + sbb - 2 * sab


def test_mmd2_unbiased_equals_the_double_loop():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(7, 4)), rng.normal(size=(9, 4)) + 0.5
    assert q.mmd2_unbiased(a, b) == pytest.approx(brute_mmd2(a, b), rel=1e-9)


def test_kid_is_about_zero_for_one_distribution_and_positive_for_shifted_ones():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    mean, std = q.kid(a, b, subsets=5, subset_size=200)
    assert abs(mean) < 0.05 and std < 0.05
    shifted, shifted_std = q.kid(a, b + 1.0, subsets=5, subset_size=200)
    assert shifted > 0.5 and shifted > 10 * shifted_std
    assert q.kid(a, b, subsets=5, subset_size=200) == (mean, std)  # seeded
    assert q.kid(a[:30], b, subsets=2)[0] == pytest.approx(q.kid(a[:30], b, subsets=2, subset_size=30)[0])  # capped


# --------------------------------------------------------------------------- precision / recall


def test_precision_recall_of_a_set_with_itself_and_of_far_apart_sets():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 5))
    assert q.precision_recall(x, x) == (1.0, 1.0)
    assert q.precision_recall(x, x + 100.0) == (0.0, 0.0)
    with pytest.raises(ValueError, match="k must be"):
        q.precision_recall(x[:3], x, k=3)


def test_precision_recall_chunked_equals_one_block(monkeypatch):
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(300, 6)), rng.normal(size=(250, 6)) * 0.7 + 0.8
    whole = q.precision_recall(real, fake, k=3)
    assert 0.0 < whole[0] < 1.0 and 0.0 < whole[1] < 1.0
    monkeypatch.setattr(q, "CHUNK_VALUES", 1000)  # 3-4 rows per chunk
    assert q.precision_recall(real, fake, k=3) == whole
    # a brute-force check of the definition
    def inside(query, ref):
        d_ref = np.linalg.norm(ref[:, None] - ref[None], axis=-1)
        np.fill_diagonal(d_ref, np.inf)
        radius = np.sort(d_ref, axis=1)[:, 2]  # k = 3
        return np.mean(np.any(np.linalg.norm(query[:, None] - ref[None], axis=-1) <= radius[None], axis=1))

    assert whole == pytest.approx((inside(fake, real), inside(real, fake)))


# --------------------------------------------------------------------------- labels and the report


def test_label_stats_of_known_labels():
    s = q.label_stats([0, 0, 1, 2, 2, 2, 2, 2, 2, 2], 4)
    assert s["counts"] == [2, 1, 7, 0] and s["n"] == 10
    assert s["fractions"] == pytest.approx([0.2, 0.1, 0.7, 0.0])
    assert s["entropy"] == pytest.approx(-(0.2 * np.log(0.2) + 0.1 * np.log(0.1) + 0.7 * np.log(0.7)))
    assert s["max_entropy"] == pytest.approx(np.log(4)) and s["classes_covered"] == 3
    assert q.label_stats(np.arange(10), 10)["entropy"] == pytest.approx(np.log(10))
    # default threshold 1 / (10 K): one stray label in 2000 does not cover a class
    assert q.label_stats([0] * 1999 + [1], 2)["classes_covered"] == 1
    with pytest.raises(ValueError, match="labels must be in"):
        q.label_stats([0, 3], 3)


def test_quality_report_rows_are_ordered_and_use_the_same_n():
    rng = np.random.default_rng(6)
    real_test, real_train = rng.normal(size=(300, 4)), rng.normal(size=(900, 4))
    gen = rng.normal(size=(200, 4)) * 1.3 + 0.4
    noise = rng.uniform(-6, 6, size=(500, 4))
    r = q.quality_report(gen, real_test, real_train, noise, kid_subsets=3, kid_subset_size=100)
    keys = {"fid", "kid", "kid_std", "precision", "recall", "n_generated", "n_real"}
    assert keys <= set(r) and set(r["floor"]) == keys and set(r["ceiling"]) == keys
    for row in (r, r["floor"], r["ceiling"]):
        assert row["n_generated"] == 200 and row["n_real"] == 300
    assert r["floor"]["fid"] < r["fid"] < r["ceiling"]["fid"]
    assert r["floor"]["kid"] < r["kid"] < r["ceiling"]["kid"]
    assert r["ceiling"]["precision"] < r["precision"]
    assert "floor" not in q.quality_report(gen, real_test, kid_subsets=2, kid_subset_size=50)
    json.dumps(r)


# --------------------------------------------------------------------------- the feature net


def small_info(**changes):
    from kerasdl.data.info import DatasetInfo

    values = dict(name="points", source="npz", task="classification", input_shape=(2,), raw_dtype="float32",
                  num_classes=2, class_names=["a", "b"], splits={"train": 10, "validation": 2, "test": 2},
                  mean=0.0, std=1.0)
    values.update(changes)
    return DatasetInfo(**values)


def test_identity_and_pixel_feature_nets_need_no_training():
    from kerasdl.config import RunConfig
    from kerasdl.evaluation.feature_net import feature_net

    net = feature_net(RunConfig(dataset="points.npz"), small_info())
    assert net.name == "identity" and net.sha256 is None and net.feature_dim == 2
    x = np.random.default_rng(0).normal(size=(5, 2))
    np.testing.assert_array_equal(net.features(x), x)
    assert net.predict(x) is None
    pixels = feature_net(RunConfig(dataset="faces.npz"), small_info(task="regression", input_shape=(4, 4, 1)))
    assert pixels.name == "pixels" and pixels.features(np.zeros((3, 4, 4, 1), np.float32)).shape == (3, 16)
    json.dumps(pixels.describe())


def test_feature_net_trains_caches_and_distrusts_a_corrupted_cache(data_dir, monkeypatch):
    from kerasdl.config import RunConfig
    from kerasdl.data import dataset_info, load_arrays
    from kerasdl.errors import KerasdlUsageError
    from kerasdl.evaluation import feature_net as fn

    config = RunConfig(dataset="digits", data_dir=data_dir)
    info = dataset_info("digits", data_dir=data_dir)
    for old in glob.glob(os.path.join(data_dir, "feature_nets", "digits-*")):  # another test's cache
        os.remove(old)
    net = fn.feature_net(config, info)
    assert net.name == "cnn" and not net.from_cache and net.num_classes == 10
    assert net.test_accuracy > 0.8 and net.feature_dim == 128
    assert net.path.startswith(os.path.join(data_dir, "feature_nets", "digits-")) and net.path.endswith(".weights.h5")
    x, y, _ = load_arrays("digits", "test", data_dir=data_dir)
    x01 = x.astype(np.float32) / 16.0  # the 'scale' normalisation of the 0..16 digits
    feats = net.features(x01[:50])
    assert feats.shape == (50, 128) and feats.dtype == np.float64
    assert np.mean(net.predict(x01) == y) == pytest.approx(net.test_accuracy)
    assert json.loads(json.dumps(net.describe()))["sha256"] == net.sha256
    with pytest.raises(KerasdlUsageError, match=r"\[0, 1\]"):
        net.features(x[:2])
    with pytest.raises(KerasdlUsageError, match="shape"):
        net.features(np.zeros((2, 9, 9, 1), np.float32))

    def no_training(*args, **kwargs):
        raise AssertionError("the cached net was retrained")

    with monkeypatch.context() as m:
        m.setattr(fn, "_train", no_training)
        again = fn.feature_net(config, info)
    assert again.from_cache and again.sha256 == net.sha256 and again.path == net.path
    np.testing.assert_array_equal(again.features(x01[:50]), feats)

    blob = bytearray(open(net.path, "rb").read())
    blob[-64:] = bytes(64)  # flip the tail (weights data): still a readable HDF5 file, wrong sha256
    with open(net.path, "wb") as f:
        f.write(blob)
    with pytest.warns(UserWarning, match="not trusted"):
        retrained = fn.feature_net(config, info)
    assert not retrained.from_cache
    assert retrained.sha256 == fn._sha256_file(net.path) == net.sha256  # deterministic training


def test_a_cached_file_with_a_matching_sidecar_is_still_checked(tmp_path):
    import h5py

    from kerasdl.evaluation import feature_net as fn

    model = fn.build_feature_cnn((8, 8, 1), 10)
    path, sidecar = str(tmp_path / "d-k.weights.h5"), str(tmp_path / "d-k.json")
    fn._save(model, path, sidecar, {})
    loaded, sha = fn._load_cached(path, sidecar, (8, 8, 1), 10)
    assert loaded is not None and sha == fn._sha256_file(path)
    with h5py.File(path, "a") as h:  # wrong shape, then a sidecar that matches the tampered file
        del h["features:0"]
        h.create_dataset("features:0", data=np.zeros((3, 3), np.float32))
    with open(sidecar, "w") as f:
        json.dump({"sha256": fn._sha256_file(path)}, f)
    loaded, reason = fn._load_cached(path, sidecar, (8, 8, 1), 10)
    assert loaded is None and "features:0" in reason
