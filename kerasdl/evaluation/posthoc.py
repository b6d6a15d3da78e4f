"""Post-hoc calibration and uncertainty for a run: what ``train`` does after fitting, and what
``kerasdl calibrate`` / ``evaluate`` / ``predict`` / ``export`` read back.

The maths lives in :mod:`kerasdl.evaluation.calibration` (temperature / vector / matrix scaling, ECE and
friends) and :mod:`kerasdl.evaluation.uncertainty` (MC dropout, ensembles, split conformal); this module ties
them to a run directory:

* the calibration map is fitted on the **validation** split's logits (never on train, never on
  test) and written to ``runs/<run>/calibration.json`` with the test figures before and after;
* the optional split-conformal predictors (LAC and randomized APS, both, so their difference is
  on record) are calibrated on the same validation examples, on the *calibrated* probabilities,
  and their coverage and mean set size measured on test;
* ``plots/reliability_test.png`` (before/after, with bin counts) and
  ``plots/confidence_histogram.png`` show it.

Calibration applies to classifiers (``info.task == "classification"``); a one-logit sigmoid head
is read as the two softmax logits (0, z) first, as everywhere else in kerasdl.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from kerasdl import runs

from kerasdl.evaluation import calibration

from kerasdl.evaluation import metrics

from kerasdl.evaluation import uncertainty
from kerasdl.errors import KerasdlUsageError

CALIBRATION = "calibration.json"
RELIABILITY_PNG = os.path.join(runs.PLOTS, "reliability_test.png")
CONFIDENCE_PNG = os.path.join(runs.PLOTS, "confidence_histogram.png")
SHOWN_FIGURES = ("accuracy", "nll", "brier", "ece", "mce", "adaptive_ece", "classwise_ece")


def calibratable(info) -> bool:
    """Post-hoc calibration is for classifiers (not regression, not per-pixel segmentation)."""
    return info.task in ("classification", "node_classification", "graph_classification")


def class_logits_of(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """Softmax logits (N, K) and labels (N,) of ``model`` over a batched ``(x, y)`` dataset."""
    from kerasdl.evaluation.report import predict_logits

    logits, labels = predict_logits(model, dataset)
    return metrics.class_logits(logits).astype(np.float64), labels.astype(np.int64).ravel()


def conformal_record(p_val: np.ndarray, y_val: np.ndarray, p_test: np.ndarray, y_test: np.ndarray,
                     alpha: float, seed: int = 0) -> dict:
    """LAC and randomized APS split-conformal predictors fitted on (p_val, y_val), measured on test."""
    out = {"alpha": float(alpha), "target_coverage": 1.0 - float(alpha), "calibration_examples": int(len(y_val))}
    for score in uncertainty.SCORES:
        conformal = uncertainty.fit_conformal(p_val, y_val, alpha, score=score, randomized=score == "aps",
                                              seed=seed)
        sets = conformal.predict_sets(p_test)
        out[score] = {
            **conformal.to_dict(),
            "coverage": uncertainty.coverage(sets, y_test),
            "mean_set_size": uncertainty.mean_set_size(sets),
            "empty_sets": float(np.mean(~sets.any(axis=-1))),
            "singletons": float(np.mean(sets.sum(axis=-1) == 1)),
        }
    return out


def confidence_histogram(probs_before: np.ndarray, probs_after: np.ndarray, labels: np.ndarray,
                         out_png: str, title: str = "") -> str:
    """Histogram of the top-label confidence before and after calibration, with both accuracies."""
    from kerasdl.plots import save, plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    bins = np.linspace(0, 1, 31)
    for name, p, color in (("before", probs_before, "tab:red"), ("after", probs_after, "tab:blue")):
        conf = p.max(axis=-1)
        ax.hist(conf, bins=bins, alpha=0.5, color=color,
                label=f"{name}: mean confidence {conf.mean():.3f}")
    acc = float(np.mean(probs_before.argmax(-1) == labels))
    ax.axvline(acc, color="black", ls="--", label=f"accuracy {acc:.3f}")
    ax.set(xlabel="confidence (max probability)", ylabel="test examples", title=title or "confidence")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, out_png)


def calibrate(model, info, val_ds, test_ds, run_dir: str, *, method: str = "temperature", n_bins: int = 15,
              conformal_alpha: float | None = None, seed: int = 0, title: str = "") -> dict:
    """Fit ``method`` on the validation logits, measure test before/after, write calibration.json
    and the plots; returns the record written."""
    if not calibratable(info):
        raise KerasdlUsageError(f"calibration is for classifiers; this run's task is {info.task!r}")
    z_val, y_val = class_logits_of(model, val_ds)
    z_test, y_test = class_logits_of(model, test_ds)
    calibrator = calibration.fit_calibrator(method, z_val, y_val)
    z_val_after, z_test_after = calibrator.apply(z_val), calibrator.apply(z_test)
    before = calibration.calibration_report(z_test, y_test, n_bins)
    after = calibration.calibration_report(z_test_after, y_test, n_bins)
    record = {
        "method": method,
        "calibrator": calibrator.to_dict(),
        "fitted_on": "validation",
        "validation_examples": int(len(y_val)),
        "test_examples": int(len(y_test)),
        "n_bins": int(n_bins),
        "validation_nll_before": metrics.nll_from_logits(z_val, y_val),
        "validation_nll_after": metrics.nll_from_logits(z_val_after, y_val),
        "test_before": before,
        "test_after": after,
    }
    if method == "temperature":
        record["temperature"] = float(calibrator.params["temperature"])
    p_test_before, p_test_after = metrics.softmax(z_test), metrics.softmax(z_test_after)
    if conformal_alpha is not None:
        record["conformal"] = conformal_record(metrics.softmax(z_val_after), y_val, p_test_after, y_test,
                                               conformal_alpha, seed=seed)
    plots = [
        calibration.reliability_diagram(p_test_before, y_test, runs.path(run_dir, RELIABILITY_PNG),
                                        probs_after=p_test_after, n_bins=n_bins,
                                        title=f"{title} (test, {method} scaling)".strip()),
        confidence_histogram(p_test_before, p_test_after, y_test, runs.path(run_dir, CONFIDENCE_PNG),
                             title=f"{title}: test confidence".strip(": ")),
    ]
    record["plots"] = plots
    runs.write_json(runs.path(run_dir, CALIBRATION), record)
    return record


def summary(record: dict) -> dict:
    """The figures of a calibration record that go into metrics.json (and export metadata)."""
    out = {"method": record["method"], "calibrator": record["calibrator"]}
    if "temperature" in record:
        out["temperature"] = record["temperature"]
    for key in ("nll", "ece", "brier", "accuracy"):
        out[f"test_{key}_before"] = record["test_before"][key]
        out[f"test_{key}_after"] = record["test_after"][key]
    if "conformal" in record:
        c = record["conformal"]
        out["conformal"] = {"alpha": c["alpha"], **{s: {k: c[s][k] for k in ("qhat", "coverage", "mean_set_size")}
                                                     for s in uncertainty.SCORES}}
    return out


@dataclass
class Fitted:
    """What calibration.json holds, read once: the map, the conformal predictors by score (empty
    when none were fitted) and the whole record."""

    calibrator: calibration.Calibrator
    conformal: dict
    record: dict


def load(run_dir: str) -> Fitted | None:
    """The run's fitted calibration (and conformal sets), or None when it was never calibrated."""
    record = runs.read_json(runs.path(run_dir, CALIBRATION))
    if not record:
        return None
    try:
        calibrator = calibration.Calibrator.from_dict(record["calibrator"])
        conformal = {score: uncertainty.Conformal.from_dict(record["conformal"][score])
                     for score in uncertainty.SCORES} if "conformal" in record else {}
    except (KeyError, TypeError, ValueError) as exc:
        raise KerasdlUsageError(f"corrupt {runs.path(run_dir, CALIBRATION)}: {exc}") from None
    return Fitted(calibrator, conformal, record)


def load_calibrator(run_dir: str) -> calibration.Calibrator | None:
    """The run's fitted calibration map, or None when it was never calibrated."""
    fitted = load(run_dir)
    return fitted.calibrator if fitted else None


def mc_dropout_report(model, dataset, *, samples: int, seed: int = 0, n_bins: int = 15) -> dict:
    """Accuracy, NLL, ECE and Brier of the MC-dropout predictive mean over ``dataset``, and the
    mean predictive entropy / mutual information (nats)."""
    xs, ys = [], []
    for x, y in dataset:
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
    x, y = np.concatenate(xs), np.concatenate(ys).astype(np.int64).ravel()
    stats = uncertainty.predictive_stats(uncertainty.mc_dropout_predict(model, x, samples=samples, seed=seed))
    p = stats["mean"]
    return {
        "samples": int(samples),
        "accuracy": metrics.accuracy(p, y),
        "nll": metrics.nll(p, y),
        "ece": metrics.expected_calibration_error(p, y, n_bins),
        "brier": calibration.brier_score(p, y),
        "mean_predictive_entropy": float(stats["predictive_entropy"].mean()),
        "mean_mutual_information": float(stats["mutual_information"].mean()),
    }
