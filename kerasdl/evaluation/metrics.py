"""Evaluation metrics with their textbook definitions, in NumPy (float64 throughout).

All classification metrics take **logits** or **probabilities** explicitly (never guess):
``probs = softmax(logits)`` first, then the metric.

* NLL  = mean_i  -log p_i[y_i]
* ECE  = sum_m |B_m|/n * |acc(B_m) - conf(B_m)| over equal-width confidence bins
  (Guo et al. 2017; 15 bins), conf = max softmax probability; bins are (lo, hi] with the
  first bin closed at 0 so that every confidence in [0, 1] falls in exactly one bin.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)  # stable: exp never overflows
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(probs, axis=-1) == np.asarray(labels)))


def top_k_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of examples whose label is among the k highest scores."""
    labels = np.asarray(labels)
    top = np.argsort(-np.asarray(probs), axis=-1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=-1)))


def nll_from_logits(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class (stable: from logits)."""
    lsm = log_softmax(logits)
    return float(-np.mean(lsm[np.arange(len(lsm)), np.asarray(labels)]))


def nll(probs: np.ndarray, labels: np.ndarray, eps: float = 1e-12) -> float:
    p = np.asarray(probs, dtype=np.float64)[np.arange(len(probs)), np.asarray(labels)]
    return float(-np.mean(np.log(np.clip(p, eps, 1.0))))


def calibration_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15):
    """Per-bin (count, accuracy, mean confidence) over equal-width confidence bins."""
    probs = np.asarray(probs, dtype=np.float64)
    conf = probs.max(axis=-1)
    correct = (probs.argmax(axis=-1) == np.asarray(labels)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin m holds conf in (edges[m], edges[m+1]]; conf == 0 goes to bin 0.
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins).astype(np.int64)
    acc = np.bincount(idx, weights=correct, minlength=n_bins) / np.maximum(counts, 1)
    mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / np.maximum(counts, 1)
    return edges, counts, acc, mean_conf


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE = sum_m |B_m|/n |acc(B_m) - conf(B_m)| (Guo et al. 2017), as a fraction (not %)."""
    _, counts, acc, conf = calibration_bins(probs, labels, n_bins)
    n = counts.sum()
    return float(np.sum(counts / n * np.abs(acc - conf))) if n else 0.0


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """cm[i, j] = number of examples of true class i predicted as class j."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels), np.asarray(preds)), 1)
    return cm


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall of each class (diagonal over row sums); NaN for a class absent from the labels."""
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    ss_res = np.sum((y_true - y_pred) ** 2)
    ss_tot = np.sum((y_true - y_true.mean()) ** 2)
    return float(1.0 - ss_res / ss_tot) if ss_tot > 0 else float("nan")


def classification_report(logits: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> dict:
    """Every classification figure kerasdl reports, from logits and integer labels."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64).ravel()
    num_classes = logits.shape[-1]
    probs = softmax(logits)
    preds = probs.argmax(axis=-1)
    cm = confusion_matrix(labels, preds, num_classes)
    report = {
        "n": int(len(labels)),
        "accuracy": accuracy(probs, labels),
        "nll": nll_from_logits(logits, labels),
        "ece": expected_calibration_error(probs, labels, n_bins),
        "ece_bins": n_bins,
    }
    if num_classes > 5:
        report["top5_accuracy"] = top_k_accuracy(probs, labels, 5)
    report["per_class_accuracy"] = [None if np.isnan(a) else float(a) for a in per_class_accuracy(cm)]
    report["confusion_matrix"] = cm.tolist()
    return report


def regression_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    err = y_pred - y_true
    return {
        "n": int(len(y_true)),
        "mse": float(np.mean(err**2)),
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "r2": r2_score(y_true, y_pred),
    }


def segmentation_report(logits: np.ndarray, masks: np.ndarray) -> dict:
    """Per-pixel figures: pixel accuracy, IoU per class, mean IoU (classes present in truth or
    prediction), NLL per pixel and the pixel confusion matrix."""
    logits = np.asarray(logits, dtype=np.float64)
    k = logits.shape[-1]
    flat_logits = logits.reshape(-1, k)
    labels = np.asarray(masks).astype(np.int64).ravel()
    preds = flat_logits.argmax(axis=-1)
    cm = confusion_matrix(labels, preds, k)
    inter = np.diag(cm).astype(np.float64)
    union = cm.sum(axis=0) + cm.sum(axis=1) - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return {
        "n": int(len(masks)),
        "pixels": int(len(labels)),
        "accuracy": float(np.mean(preds == labels)),
        "mean_iou": float(np.nanmean(iou)),
        "per_class_iou": [None if np.isnan(v) else float(v) for v in iou],
        "nll": nll_from_logits(flat_logits, labels),
        "per_class_accuracy": [None if np.isnan(a) else float(a) for a in per_class_accuracy(cm)],
        "confusion_matrix": cm.tolist(),
    }


def class_logits(outputs: np.ndarray) -> np.ndarray:
    """Logits over classes: a single sigmoid logit z becomes the two softmax logits (0, z)."""
    outputs = np.asarray(outputs)
    if outputs.shape[-1] == 1:
        return np.concatenate([np.zeros_like(outputs), outputs], axis=-1)
    return outputs
