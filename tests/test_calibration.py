"""Calibration maps and metrics against independent loop-based implementations of the formulas."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from kerasdl.evaluation import calibration

from kerasdl.evaluation import metrics
from kerasdl.errors import UnknownNameError

TOL = 1e-6  # issue #5 acceptance: metrics agree with the plain implementations to 1e-6


# --------------------------------------------------------------------------------------------
# Plain references: bin m is (m/n_bins, (m+1)/n_bins], the first bin also holds 0.


def ref_bin(c, n_bins):
    for m in range(n_bins):
        if (m / n_bins < c <= (m + 1) / n_bins) or (m == 0 and c == 0):
            return m
    raise AssertionError(f"confidence {c} outside [0, 1]")


def ref_gaps(scores, hits, n_bins):
    """[(count, |mean hit - mean score|)] of each non-empty bin."""
    out = []
    for m in range(n_bins):
        members = [i for i in range(len(scores)) if ref_bin(scores[i], n_bins) == m]
        if members:
            out.append((len(members), abs(sum(hits[i] for i in members) / len(members)
                                          - sum(scores[i] for i in members) / len(members))))
    return out


def top_label(probs, labels):
    conf = [max(row) for row in probs]
    hits = [1.0 if int(np.argmax(row)) == int(y) else 0.0 for row, y in zip(probs, labels)]
    return conf, hits


def ref_ece(probs, labels, n_bins=15):
    conf, hits = top_label(probs, labels)
    return sum(c / len(conf) * g for c, g in ref_gaps(conf, hits, n_bins))


def ref_mce(probs, labels, n_bins=15):
    conf, hits = top_label(probs, labels)
    return max(g for _, g in ref_gaps(conf, hits, n_bins))


def ref_adaptive_ece(probs, labels, n_bins=15):
    conf, hits = top_label(probs, labels)
    n = len(conf)
    order = sorted(range(n), key=lambda i: conf[i])  # Python's sort is stable: ties keep input order
    total, start = 0.0, 0
    for m in range(n_bins):
        size = n // n_bins + (1 if m < n % n_bins else 0)  # the first n % n_bins groups are one larger
        group = order[start:start + size]
        start += size
        if group:
            total += len(group) / n * abs(sum(hits[i] for i in group) / len(group)
                                          - sum(conf[i] for i in group) / len(group))
    return total


def ref_classwise_ece(probs, labels, n_bins=15):
    n, k = len(probs), len(probs[0])
    per_class = []
    for c in range(k):
        scores = [probs[i][c] for i in range(n)]
        hits = [1.0 if labels[i] == c else 0.0 for i in range(n)]
        per_class.append(sum(cnt / n * g for cnt, g in ref_gaps(scores, hits, n_bins)))
    return sum(per_class) / k


def ref_brier(probs, labels):
    total = 0.0
    for row, y in zip(probs, labels):
        total += sum((row[k] - (1.0 if k == y else 0.0)) ** 2 for k in range(len(row)))
    return total / len(probs)


def ref_nll(probs, labels):
    return -sum(math.log(row[y]) for row, y in zip(probs, labels)) / len(probs)


METRICS = [
    (calibration.ece, ref_ece),
    (calibration.mce, ref_mce),
    (calibration.adaptive_ece, ref_adaptive_ece),
    (calibration.classwise_ece, ref_classwise_ece),
]


def check_all(probs, labels, n_bins=15):
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    for ours, ref in METRICS:
        expected = ref(probs, labels, n_bins)
        assert ours(probs, labels, n_bins) == pytest.approx(expected, abs=TOL), ours.__name__
    assert calibration.brier_score(probs, labels) == pytest.approx(ref_brier(probs, labels), abs=TOL)
    if np.all(probs[np.arange(len(labels)), labels] > 0):
        assert calibration.nll(probs, labels) == pytest.approx(ref_nll(probs, labels), abs=TOL)


# --------------------------------------------------------------------------------------------
# Metrics


@pytest.mark.parametrize("seed,n,k,n_bins", [(0, 400, 7, 15), (1, 333, 2, 15), (2, 250, 10, 10),
                                             (3, 97, 4, 20), (4, 10, 3, 15)])
def test_metrics_match_reference_on_random_inputs(seed, n, k, n_bins):
    rng = np.random.default_rng(seed)
    probs = metrics.softmax(rng.normal(scale=2.5, size=(n, k)))
    labels = rng.integers(0, k, size=n)
    check_all(probs, labels, n_bins)


def test_all_correct_and_all_wrong():
    probs = np.eye(4)[[0, 1, 2, 3, 0, 1]]
    right, wrong = np.array([0, 1, 2, 3, 0, 1]), np.array([1, 2, 3, 0, 1, 2])
    check_all(probs, right)
    check_all(probs, wrong)
    assert calibration.ece(probs, right) == 0.0 and calibration.mce(probs, right) == 0.0
    assert calibration.classwise_ece(probs, right) == 0.0 and calibration.brier_score(probs, right) == 0.0
    assert calibration.ece(probs, wrong) == pytest.approx(1.0)
    assert calibration.mce(probs, wrong) == pytest.approx(1.0)
    assert calibration.adaptive_ece(probs, wrong) == pytest.approx(1.0)
    assert calibration.brier_score(probs, wrong) == pytest.approx(2.0)  # the worst possible


def test_single_populated_bin_and_all_confidences_tied():
    probs = np.array([[0.7, 0.2, 0.1]] * 5)
    labels = np.array([0, 0, 0, 1, 2])  # accuracy 0.6 at confidence 0.7
    check_all(probs, labels)
    assert calibration.ece(probs, labels) == pytest.approx(0.1)
    assert calibration.mce(probs, labels) == pytest.approx(0.1)
    # Uniform predictions: every confidence is 1/K and every argmax is class 0 (the first maximum).
    rng = np.random.default_rng(5)
    uniform, labels = np.full((23, 4), 0.25), rng.integers(0, 4, size=23)
    check_all(uniform, labels)
    check_all(uniform, labels, n_bins=4)  # 1/4 lies exactly on the first edge: bin 0
    # Many ties among a few confidence levels: equal-mass groups split them in input order.
    levels = np.array([[0.5, 0.5], [0.6, 0.4], [0.55, 0.45]])  # group accuracies fall either side
    probs, labels = levels[rng.integers(0, 3, size=400)], rng.integers(0, 2, size=400)
    check_all(probs, labels)
    check_all(probs, labels, n_bins=7)


@pytest.mark.parametrize("n_bins", [4, 8, 15])
def test_confidences_exactly_on_bin_edges(n_bins):
    # A confidence equal to an edge m/n_bins goes to the bin below ((lo, hi]); 1.0 to the last bin.
    # Each bin gets one right answer at its upper edge and one wrong answer at its middle, so the
    # figures change if an edge is put in the bin above.
    k = 2 * n_bins + 1  # any confidence c > 1/k is the top-label one in [c, (1 - c)/(k - 1), ...]
    rows, labels = [], []
    for m in range(1, n_bins + 1):
        for c, label in ((m / n_bins, 0), ((m - 0.5) / n_bins, 1)):
            rows.append([c] + [(1 - c) / (k - 1)] * (k - 1))
            labels.append(label)
    probs, labels = np.array(rows), np.array(labels)
    check_all(probs, labels, n_bins)
    _, counts, _, _ = metrics.calibration_bins(probs, labels, n_bins)
    assert counts.tolist() == [2] * n_bins
    # K = 2: edges and midpoints of the upper half, against the class-1 probability too.
    c = np.array([x / n_bins for m in range(n_bins + 1) for x in (m, m - 0.5) if x / n_bins >= 0.5])
    two = np.stack([c, 1 - c], axis=1)
    check_all(two, np.arange(len(c)) % 2, n_bins)
    check_all(two[:, ::-1], np.arange(len(c)) % 2, n_bins)


def test_two_classes():
    rng = np.random.default_rng(6)
    p1 = rng.uniform(size=300)
    probs = np.stack([1 - p1, p1], axis=1)
    labels = (rng.uniform(size=300) < p1 ** 1.5).astype(int)
    check_all(probs, labels)
    check_all(probs, labels, n_bins=5)


def test_ece_delegates_to_metrics_and_report_fields():
    rng = np.random.default_rng(7)
    logits, labels = rng.normal(scale=2, size=(200, 5)), rng.integers(0, 5, size=200)
    probs = metrics.softmax(logits)
    assert calibration.ece(probs, labels) == metrics.expected_calibration_error(probs, labels)
    report = calibration.calibration_report(logits, labels, n_bins=10)
    assert report == pytest.approx({
        "accuracy": metrics.accuracy(probs, labels),
        "nll": ref_nll(probs, labels),
        "brier": ref_brier(probs, labels),
        "ece": ref_ece(probs, labels, 10),
        "mce": ref_mce(probs, labels, 10),
        "adaptive_ece": ref_adaptive_ece(probs, labels, 10),
        "classwise_ece": ref_classwise_ece(probs, labels, 10),
        "n_bins": 10,
    }, abs=TOL)
    json.dumps(report)


# --------------------------------------------------------------------------------------------
# Calibration maps


def synthetic(seed, n=20000, k=10, scale=3.0, bias=None):
    """True logits z, labels ~ softmax(z); the model reports scale * z (+ a per-class bias)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.5, size=(n, k))
    p = metrics.softmax(z)
    labels = (rng.uniform(size=(n, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    model = scale * z + (0.0 if bias is None else bias)
    return model, labels


def test_temperature_recovers_overconfidence_and_keeps_argmax():
    logits, labels = synthetic(0)
    t = calibration.fit_temperature(logits, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    scaled = logits / t
    assert np.array_equal(scaled.argmax(1), logits.argmax(1))
    assert metrics.nll_from_logits(scaled, labels) < metrics.nll_from_logits(logits, labels)
    before, after = metrics.softmax(logits), metrics.softmax(scaled)
    assert calibration.ece(after, labels) < 0.5 * calibration.ece(before, labels)
    # The optimum: the NLL is no lower a little either side of T.
    best = metrics.nll_from_logits(scaled, labels)
    for factor in (0.99, 1.01):
        assert metrics.nll_from_logits(logits / (t * factor), labels) >= best


def test_temperature_is_about_one_on_calibrated_logits():
    logits, labels = synthetic(1, scale=1.0)
    assert calibration.fit_temperature(logits, labels) == pytest.approx(1.0, rel=0.05)


def vector_objective(w, b, z, y, l2):
    return metrics.nll_from_logits(z * w + b, y) + l2 * (np.sum((w - 1) ** 2) + np.sum(b**2))


def matrix_objective(w, b, z, y, l2):
    return metrics.nll_from_logits(z @ w + b, y) + l2 * (np.sum((w - np.eye(len(b))) ** 2) + np.sum(b**2))


def test_vector_and_matrix_scaling_fix_a_per_class_bias():
    bias = np.array([2.0, 0.0, -1.0, 1.0, 0.0])
    logits, labels = synthetic(2, n=8000, k=5, scale=1.0, bias=bias)
    fit, test = slice(0, 4000), slice(4000, None)
    t = calibration.fit_temperature(logits[fit], labels[fit])
    nll_temp = metrics.nll_from_logits(logits[test] / t, labels[test])
    for kind in ("vector", "matrix"):
        cal = calibration.fit_calibrator(kind, logits[fit], labels[fit])
        nll_cal = metrics.nll_from_logits(cal.apply(logits[test]), labels[test])
        assert nll_cal < nll_temp - 0.05, kind
        b = np.asarray(cal.params["b"])
        assert b == pytest.approx(-(bias - bias.mean()), abs=0.2)  # the bias, up to a constant, undone
        assert abs(b.sum()) < 1e-4  # the L2 pull picks the zero-sum representative


@pytest.mark.parametrize("kind", ["vector", "matrix"])
def test_scaling_fits_are_stationary_points_of_the_documented_objective(kind):
    rng = np.random.default_rng(3)
    z, y = rng.normal(scale=2, size=(300, 3)), rng.integers(0, 3, size=300)
    l2 = 0.01
    fit = calibration.fit_vector_scaling if kind == "vector" else calibration.fit_matrix_scaling
    objective = vector_objective if kind == "vector" else matrix_objective
    w, b = fit(z, y, l2=l2)
    best = objective(w, b, z, y, l2)
    eps = 1e-4
    for which, arr in (("w", w), ("b", b)):
        for j in np.ndindex(arr.shape):
            for step in (eps, -eps):
                moved = arr.copy()
                moved[j] += step
                args = (moved, b) if which == "w" else (w, moved)
                assert objective(*args, z, y, l2) >= best - 1e-10


@pytest.mark.parametrize("kind", calibration.KINDS)
def test_calibrator_round_trips_through_json(kind):
    logits, labels = synthetic(4, n=2000, k=4, scale=2.0, bias=np.array([0.5, 0.0, -0.5, 0.0]))
    cal = calibration.fit_calibrator(kind, logits, labels)
    again = calibration.Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again.kind == kind
    np.testing.assert_allclose(again.apply(logits), cal.apply(logits), rtol=0, atol=1e-12)
    assert metrics.nll_from_logits(cal.apply(logits), labels) < metrics.nll_from_logits(logits, labels)


def test_unknown_calibration_kind():
    with pytest.raises(UnknownNameError, match="unknown calibration 'platt'"):
        calibration.fit_calibrator("platt", np.zeros((2, 2)), [0, 1])
    with pytest.raises(UnknownNameError, match="did you mean 'vector'"):
        calibration.Calibrator("vectr", {})


def test_reliability_diagram_writes_png(tmp_path):
    logits, labels = synthetic(5, n=1000, k=5)
    cal = calibration.fit_calibrator("temperature", logits, labels)
    before, after = metrics.softmax(logits), metrics.softmax(cal.apply(logits))
    for path, kwargs in ((tmp_path / "one.png", {}), (tmp_path / "sub" / "two.png", {"probs_after": after})):
        out = calibration.reliability_diagram(before, labels, str(path), title="test", **kwargs)
        assert out == str(path)
        with open(out, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
