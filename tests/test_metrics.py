"""Metric definitions against independent, loop-based implementations of the textbook formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kerasdl.evaluation import metrics


def ece_reference(probs, labels, n_bins=15):
    """Guo et al. 2017, written the slow obvious way: bins (lo, hi], the first one closed at 0."""
    n, total = len(labels), 0.0
    for m in range(n_bins):
        lo, hi = m / n_bins, (m + 1) / n_bins
        members = [i for i in range(n) if (lo < probs[i].max() <= hi) or (m == 0 and probs[i].max() == 0)]
        if members:
            acc = np.mean([probs[i].argmax() == labels[i] for i in members])
            conf = np.mean([probs[i].max() for i in members])
            total += len(members) / n * abs(acc - conf)
    return total


@pytest.mark.parametrize("seed", range(5))
def test_ece_matches_reference_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(500, 7))
    labels = rng.integers(0, 7, size=500)
    probs = metrics.softmax(logits)
    assert metrics.expected_calibration_error(probs, labels) == pytest.approx(ece_reference(probs, labels), abs=1e-12)


def test_ece_edge_cases():
    # All correct at confidence 1: perfectly calibrated.
    probs = np.eye(4)[[0, 1, 2, 3]]
    assert metrics.expected_calibration_error(probs, [0, 1, 2, 3]) == 0.0
    # All wrong at confidence 1: ECE is 1.
    assert metrics.expected_calibration_error(probs, [1, 2, 3, 0]) == pytest.approx(1.0)
    # One populated bin: |acc - conf| of that bin. conf 0.7, half right -> 0.2.
    p = np.array([[0.7, 0.3], [0.7, 0.3]])
    assert metrics.expected_calibration_error(p, [0, 1]) == pytest.approx(0.2)
    # A confidence exactly on a bin edge (2/15 can't be max of 2 classes; use 8/15 in 2 classes).
    edge = 8 / 15
    p = np.array([[edge, 1 - edge]])
    assert metrics.expected_calibration_error(p, [0]) == pytest.approx(ece_reference(p, [0]))


def test_nll_from_logits_is_stable_and_correct():
    logits = np.array([[1000.0, 0.0], [0.0, -1000.0], [2.0, 1.0]])
    labels = np.array([0, 1, 1])
    expected = (0.0 + 1000.0 + (math.log(math.exp(2) + math.exp(1)) - 1.0)) / 3
    assert metrics.nll_from_logits(logits, labels) == pytest.approx(expected)
    assert np.all(np.isfinite(metrics.softmax(logits)))


def test_top_k_confusion_and_per_class():
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    labels = np.array([1, 2, 0, 0])
    assert metrics.top_k_accuracy(probs, labels, 1) == 0.5
    assert metrics.top_k_accuracy(probs, labels, 2) == 0.75
    cm = metrics.confusion_matrix(labels, probs.argmax(1), 3)
    assert cm.tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 1]]
    assert metrics.per_class_accuracy(cm).tolist() == [0.5, 0.0, 1.0]


def test_classification_report_fields_and_r2():
    rng = np.random.default_rng(0)
    report = metrics.classification_report(rng.normal(size=(50, 10)), rng.integers(0, 10, 50))
    assert {"accuracy", "nll", "ece", "top5_accuracy", "per_class_accuracy", "confusion_matrix"} <= set(report)
    y = rng.normal(size=100)
    assert metrics.r2_score(y, y) == 1.0
    assert metrics.r2_score(y, np.full_like(y, y.mean())) == pytest.approx(0.0)
