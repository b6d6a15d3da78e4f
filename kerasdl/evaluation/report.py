"""Evaluate a model on a split: loss, accuracy, top-k, NLL, ECE, per-class accuracy, confusion matrix.

The figures are computed once from the model's logits with the NumPy definitions in
:mod:`kerasdl.evaluation.metrics`, so ``train`` and ``evaluate`` report exactly the same numbers.
"""

from __future__ import annotations

import os

import numpy as np

from kerasdl import plots, runs

from kerasdl.evaluation import metrics

from kerasdl.evaluation import uncertainty
from kerasdl.errors import KerasdlUsageError


def predict_logits(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` (inference mode) over a batched ``(x, y)`` dataset; return logits and labels.

    A dataset of ``(x, y, weights)`` batches (a node-classification split: the whole graph with the
    split's mask as weights) keeps only the examples of weight > 0."""
    outputs, labels = [], []
    for batch in dataset:
        x, y = batch[0], batch[1]
        out, y = np.asarray(model.predict_on_batch(x)), np.asarray(y)
        if len(batch) > 2:
            keep = np.asarray(batch[2]) > 0
            out, y = out[keep], y[keep]
        outputs.append(out)
        labels.append(y)
    return np.concatenate(outputs), np.concatenate(labels)


def evaluate_model(model, dataset, info, *, n_bins: int = 15, calibrator=None, conformal: dict | None = None,
                   predicted: tuple | None = None) -> dict:
    """Every figure for ``info.task`` on ``dataset``; ``loss`` is the training loss's value.

    Classifiers also get Brier, MCE, adaptive and classwise ECE; with a fitted ``calibrator``
    (:class:`kerasdl.evaluation.calibration.Calibrator`) the same figures after calibration go under
    ``"calibrated"``, and with ``conformal`` ({score: Conformal}) the sets' coverage and size.
    ``predicted``: :func:`predict_logits` of ``model`` on ``dataset`` when the caller already has it.
    """
    logits, labels = predicted if predicted is not None else predict_logits(model, dataset)
    if info.task == "regression":
        report = metrics.regression_report(labels, logits[:, 0])
        report["loss"] = report["mse"]
        return report
    if info.task == "segmentation":
        report = metrics.segmentation_report(logits, labels)
        report["loss"] = report["nll"]
        return report
    # softmax over (0, z) is (1 - sigmoid(z), sigmoid(z)): one code path for both heads.
    z = metrics.class_logits(logits)
    report = metrics.classification_report(z, labels, n_bins=n_bins)
    report["loss"] = report["nll"]  # sparse categorical cross-entropy == NLL of the softmax
    from kerasdl.evaluation import calibration

    full = calibration.calibration_report(z, labels, n_bins)
    report.update({k: full[k] for k in ("brier", "mce", "adaptive_ece", "classwise_ece")})
    if calibrator is not None:
        after = calibration.calibration_report(calibrator.apply(z), labels, n_bins)
        report["calibrated"] = {"method": calibrator.kind, **after}
        if conformal:
            p = metrics.softmax(calibrator.apply(z))
            report["conformal"] = {}
            for score, predictor in conformal.items():
                sets = predictor.predict_sets(p)
                report["conformal"][score] = {"alpha": predictor.alpha, "coverage": uncertainty.coverage(sets, labels),
                                              "mean_set_size": uncertainty.mean_set_size(sets)}
    return report


SEGMENTATION_EXAMPLES = 4  # predicted-mask examples per figure


def write_plots(report: dict, info, run_dir: str, split: str, *, dataset=None, predicted=None) -> list[str]:
    """The run's figures for ``split`` under ``run_dir``/plots; returns their paths.

    From ``report``: the confusion matrix (classifiers, and segmenters per pixel). With the
    batched, unshuffled ``dataset`` that was evaluated and its :func:`predict_logits` ``predicted``
    (outputs, labels): a regressor's predicted-vs-true scatter (``regression_scatter_<split>.png``,
    every example) and a segmenter's predicted masks (``segmentation_examples_<split>.png``: input,
    true and predicted mask of the first examples).
    """
    out = []
    if "confusion_matrix" in report:
        file = os.path.join(run_dir, runs.PLOTS, f"confusion_matrix_{split}.png")
        what = "pixel accuracy" if info.task == "segmentation" else "accuracy"
        out.append(plots.confusion_matrix(
            np.array(report["confusion_matrix"]), info.class_names, file,
            title=f"confusion matrix ({split}, {what} {report['accuracy']:.2%})",
        ))
    if dataset is None or predicted is None:
        return out
    outputs, labels = predicted
    if info.task == "regression":
        out.append(plots.regression_scatter(
            labels, outputs[:, 0], os.path.join(run_dir, runs.PLOTS, f"regression_scatter_{split}.png"),
            title=f"predicted vs true ({split})",
        ))
    elif info.task == "segmentation":
        images, masks = _first_examples(dataset, SEGMENTATION_EXAMPLES)
        out.append(plots.segmentation_examples(
            images, masks, np.argmax(outputs[:len(images)], axis=-1),
            os.path.join(run_dir, runs.PLOTS, f"segmentation_examples_{split}.png"),
            class_names=info.class_names, title=f"predicted masks ({split}, first {len(images)} examples)",
        ))
    return out


def _first_examples(dataset, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` examples of a batched ``(x, y)`` dataset, as NumPy arrays."""
    xs, ys, have = [], [], 0
    for x, y in dataset:
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
        have += len(xs[-1])
        if have >= n:
            break
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]
