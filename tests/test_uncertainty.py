"""MC dropout, ensembles and split conformal prediction against plain implementations of the formulas."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from kerasdl.evaluation import metrics

from kerasdl.evaluation import uncertainty
from kerasdl.errors import KerasdlUsageError, UnknownNameError

TOL = 1e-9


def ref_softmax(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    return [v / sum(e) for v in e]


def ref_entropy(p):
    return -sum(v * math.log(v) for v in p if v > 0)


def sample_labels(rng, probs):
    return (rng.uniform(size=(len(probs), 1)) > np.cumsum(probs, axis=1)).sum(axis=1)


# --------------------------------------------------------------------------------------------
# Predictive statistics and ensembles


def test_predictive_stats_match_the_formulas():
    rng = np.random.default_rng(0)
    s, n, k = 6, 20, 4
    samples = np.array([[ref_softmax(rng.normal(scale=2, size=k)) for _ in range(n)] for _ in range(s)])
    samples[0, 0] = [1.0, 0.0, 0.0, 0.0]  # a zero probability: 0 log 0 = 0
    stats = uncertainty.predictive_stats(samples)
    for i in range(n):
        mean = [sum(samples[t, i, c] for t in range(s)) / s for c in range(k)]
        pred = int(np.argmax(mean))
        ps = [samples[t, i, pred] for t in range(s)]
        std = math.sqrt(sum((v - sum(ps) / s) ** 2 for v in ps) / s)
        h = ref_entropy(mean)
        eh = sum(ref_entropy(samples[t, i]) for t in range(s)) / s
        assert stats["mean"][i] == pytest.approx(mean, abs=TOL)
        assert stats["pred"][i] == pred
        assert stats["std"][i] == pytest.approx(std, abs=TOL)
        assert stats["predictive_entropy"][i] == pytest.approx(h, abs=TOL)
        assert stats["expected_entropy"][i] == pytest.approx(eh, abs=TOL)
        assert stats["mutual_information"][i] == pytest.approx(h - eh, abs=TOL)
    assert np.all(stats["mutual_information"] >= 0)  # Jensen: entropy is concave


def test_mutual_information_is_zero_when_samples_agree():
    rng = np.random.default_rng(1)
    p = np.array([ref_softmax(rng.normal(size=5)) for _ in range(10)])
    stats = uncertainty.predictive_stats(np.repeat(p[None], 7, axis=0))
    assert np.all(stats["mutual_information"] >= 0)
    np.testing.assert_allclose(stats["mutual_information"], 0.0, atol=1e-12)
    np.testing.assert_allclose(stats["std"], 0.0, atol=1e-12)
    np.testing.assert_allclose(stats["predictive_entropy"], [ref_entropy(row) for row in p], atol=TOL)


def test_ensemble_probs_is_the_mean_of_softmaxes():
    rng = np.random.default_rng(2)
    members = [rng.normal(scale=3, size=(15, 3)) for _ in range(4)]
    probs = uncertainty.ensemble_probs(members)
    for i in range(15):
        expected = [sum(ref_softmax(z[i])[c] for z in members) / 4 for c in range(3)]
        assert probs[i] == pytest.approx(expected, abs=TOL)
    with pytest.raises(KerasdlUsageError):
        uncertainty.ensemble_probs([])


# --------------------------------------------------------------------------------------------
# MC dropout


def tiny_model(rate):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dropout(rate)(x)
    inner = keras.Sequential([keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(rate)],
                             name="inner")  # a nested model: its dropout must be found too
    outputs = keras.layers.Dense(3)(inner(x))
    model = keras.Model(inputs, outputs)
    bn = model.layers[2]
    # Moving statistics far from any batch's, so that batch statistics would show.
    bn.moving_mean.assign(np.full(16, 2.0, dtype="float32"))
    bn.moving_variance.assign(np.full(16, 9.0, dtype="float32"))
    return model, bn


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(3).normal(size=(37, 4)).astype("float32")


def test_mc_dropout_keeps_batchnorm_in_inference_mode(inputs):
    import keras

    model, _ = tiny_model(rate=1e-7)
    deterministic = metrics.softmax(keras.ops.convert_to_numpy(model(inputs, training=False)))
    samples = uncertainty.mc_dropout_predict(model, inputs, samples=3, batch_size=16)
    assert samples.shape == (3, 37, 3)
    np.testing.assert_allclose(samples.sum(-1), 1.0, atol=1e-9)
    np.testing.assert_allclose(samples.mean(0), deterministic, atol=1e-5)
    # The test can tell: with training=True everywhere, BatchNorm would use batch statistics.
    batch_stats = metrics.softmax(keras.ops.convert_to_numpy(model(inputs[:16], training=True)))
    assert np.abs(batch_stats - deterministic[:16]).max() > 0.05


def test_mc_dropout_is_seeded_and_leaves_the_model_unchanged(inputs):
    import keras

    model, bn = tiny_model(rate=0.5)
    before = [keras.ops.convert_to_numpy(v).copy() for v in model.variables]  # seed states included
    plain = keras.ops.convert_to_numpy(model(inputs, training=False))
    a = uncertainty.mc_dropout_predict(model, inputs, samples=5, batch_size=16, seed=1)
    b = uncertainty.mc_dropout_predict(model, inputs, samples=5, batch_size=16, seed=1)
    c = uncertainty.mc_dropout_predict(model, inputs, samples=5, batch_size=16, seed=2)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.01
    assert np.abs(a[0] - a[1]).max() > 0.01  # the passes differ: dropout is on
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(bn.moving_mean), 2.0)  # never updated
    after = [keras.ops.convert_to_numpy(v) for v in model.variables]
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(inputs, training=False)), plain)
    assert all("call" not in layer.__dict__ for layer in model._flatten_layers())
    stats = uncertainty.predictive_stats(a)
    assert np.all(stats["mutual_information"] >= 0) and stats["mutual_information"].max() > 0


def test_mc_dropout_needs_a_dropout_layer(inputs):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    with pytest.raises(KerasdlUsageError, match="no dropout layer"):
        uncertainty.mc_dropout_predict(model, inputs)
    with pytest.raises(KerasdlUsageError, match="rate > 0"):
        uncertainty.mc_dropout_predict(tiny_model(rate=0.0)[0], inputs)


# --------------------------------------------------------------------------------------------
# Conformal prediction


def ref_scores(probs, labels, score):
    out = []
    for row, y in zip(probs, labels):
        if score == "lac":
            out.append(1 - row[y])
        else:
            ranked = sorted(range(len(row)), key=lambda k: -row[k])  # stable: ties in class order
            out.append(sum(row[k] for k in ranked[: ranked.index(y) + 1]))
    return out


def ref_qhat(scores, alpha):
    n = len(scores)
    rank = 1
    while rank < (n + 1) * (1 - alpha) - 1e-9:  # the smallest integer >= (n + 1)(1 - alpha)
        rank += 1
    return sorted(scores)[rank - 1] if rank <= n else math.inf


def ref_sets(probs, qhat, score):
    k = len(probs[0])
    return np.array([[ref_scores([row], [c], score)[0] <= qhat for c in range(k)] for row in probs])


def test_conformal_quantile_by_hand():
    scores = [0.5, 0.1, 0.4, 0.3, 0.2]
    assert uncertainty.conformal_quantile(scores, 0.2) == 0.5  # ceil(6 * 0.8) = 5: the 5th smallest
    assert uncertainty.conformal_quantile(scores, 0.4) == 0.4  # ceil(6 * 0.6) = 4
    assert uncertainty.conformal_quantile(scores, 0.5) == 0.3  # ceil(6 * 0.5) = 3
    assert uncertainty.conformal_quantile(scores, 0.1) == math.inf  # ceil(5.4) = 6 > 5: every class
    # (9 + 1) * (1 - 0.7) is 3.0000000000000004 in floating point: still rank 3, not 4.
    assert uncertainty.conformal_quantile(np.arange(1, 10) / 10, 0.7) == 0.3
    hundred = np.arange(1.0, 101.0)  # ceil(101 * 0.9) = 91: the 91st smallest, where
    assert uncertainty.conformal_quantile(hundred, 0.1) == 91.0  # np.quantile(method="higher") gives 92
    assert np.quantile(hundred, 0.91, method="higher") == 92.0
    rng = np.random.default_rng(4)
    for n in (1, 7, 50, 333):
        s = rng.uniform(size=n)
        for alpha in (0.01, 0.05, 0.1, 0.25, 0.5, 0.9):
            assert uncertainty.conformal_quantile(s, alpha) == ref_qhat(list(s), alpha)
    with pytest.raises(KerasdlUsageError):
        uncertainty.conformal_quantile(scores, 1.0)


@pytest.mark.parametrize("score", uncertainty.SCORES)
def test_scores_and_sets_match_reference(score):
    rng = np.random.default_rng(5)
    probs = np.array([ref_softmax(rng.normal(scale=2, size=5)) for _ in range(60)])
    probs[:5] = [0.4, 0.2, 0.2, 0.1, 0.1]  # ties in probability
    labels = rng.integers(0, 5, size=60)
    np.testing.assert_allclose(uncertainty.conformity_scores(probs, labels, score),
                               ref_scores(probs, labels, score), atol=1e-12)
    conf = uncertainty.fit_conformal(probs[:40], labels[:40], 0.2, score)
    assert conf.qhat == pytest.approx(ref_qhat(ref_scores(probs[:40], labels[:40], score), 0.2), abs=1e-12)
    sets = conf.predict_sets(probs[40:])
    np.testing.assert_array_equal(sets, ref_sets(probs[40:], conf.qhat, score))
    test = labels[40:]
    expected = np.mean([sets[i, y] for i, y in enumerate(test)])
    assert uncertainty.coverage(sets, test) == pytest.approx(expected)
    assert uncertainty.mean_set_size(sets) == pytest.approx(np.mean([sum(r) for r in sets]))


def test_aps_ties_rank_in_class_order():
    rng = np.random.default_rng(6)
    levels = rng.integers(1, 4, size=(30, 40)).astype(np.float64)  # many ties among 40 classes
    probs = levels / levels.sum(axis=1, keepdims=True)
    labels = rng.integers(0, 40, size=30)
    np.testing.assert_allclose(uncertainty.conformity_scores(probs, labels, "aps"),
                               ref_scores(probs, labels, "aps"), atol=1e-12)
    conf = uncertainty.Conformal("aps", 0.1, qhat=0.5)
    np.testing.assert_array_equal(conf.predict_sets(probs), ref_sets(probs, 0.5, "aps"))


def test_aps_by_hand_and_empty_sets():
    probs = np.array([[0.5, 0.3, 0.2], [0.9, 0.05, 0.05]])
    np.testing.assert_allclose(uncertainty.conformity_scores(probs, [1, 2], "aps"), [0.8, 1.0])
    conf = uncertainty.Conformal("aps", 0.1, qhat=0.8)
    assert conf.predict_sets(probs).tolist() == [[True, True, False], [False, False, False]]
    # The second set is empty (0.9 > qhat); nonempty=True adds its top class and touches nothing else.
    assert conf.predict_sets(probs, nonempty=True).tolist() == [[True, True, False], [True, False, False]]
    lac = uncertainty.Conformal("lac", 0.1, qhat=0.4)  # p_k >= 0.6
    assert lac.predict_sets(probs).tolist() == [[False, False, False], [True, False, False]]


def synthetic(seed, n=7000, k=10):
    """Labels ~ softmax(z); the model is over-confident, softmax(1.5 z): exchangeable but miscalibrated."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=(n, k))
    labels = sample_labels(rng, metrics.softmax(z))
    return metrics.softmax(1.5 * z), labels


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("score,randomized", [("lac", False), ("aps", False), ("aps", True)])
def test_coverage_on_exchangeable_data(seed, score, randomized):
    probs, labels = synthetic(seed)
    cal, test = slice(0, 2000), slice(2000, None)
    for alpha in (0.05, 0.1, 0.2):
        conf = uncertainty.fit_conformal(probs[cal], labels[cal], alpha, score, randomized=randomized,
                                         seed=seed)
        cover = uncertainty.coverage(conf.predict_sets(probs[test]), labels[test])
        assert 1 - alpha - 0.03 <= cover <= 1 - alpha + 0.05, (alpha, cover)
        padded = uncertainty.coverage(conf.predict_sets(probs[test], nonempty=True), labels[test])
        assert padded >= cover


@pytest.mark.parametrize("score,randomized", [("lac", False), ("aps", False), ("aps", True)])
def test_larger_alpha_never_gives_larger_sets(score, randomized):
    probs, labels = synthetic(7, n=3000)
    previous = None
    for alpha in (0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8):
        conf = uncertainty.fit_conformal(probs[:1000], labels[:1000], alpha, score, randomized=randomized)
        sets = conf.predict_sets(probs[1000:])
        if previous is not None:
            assert not np.any(sets & ~previous)  # every set is inside the one for the smaller alpha
        previous = sets


def test_conformal_round_trips_through_json_and_rejects_bad_input():
    probs, labels = synthetic(8, n=300)
    for conf in (uncertainty.fit_conformal(probs, labels, 0.1, "aps", randomized=True, seed=3),
                 uncertainty.fit_conformal(probs[:5], labels[:5], 0.1, "lac")):  # n = 5: qhat = inf
        again = uncertainty.Conformal.from_dict(json.loads(json.dumps(conf.to_dict(), allow_nan=False)))
        assert again == conf
        np.testing.assert_array_equal(again.predict_sets(probs), conf.predict_sets(probs))
    assert uncertainty.fit_conformal(probs[:5], labels[:5], 0.1, "lac").predict_sets(probs).all()
    with pytest.raises(UnknownNameError, match="did you mean 'aps'"):
        uncertainty.fit_conformal(probs, labels, 0.1, "apss")
    with pytest.raises(KerasdlUsageError, match="alpha"):
        uncertainty.fit_conformal(probs, labels, 0.0)
