"""What the command line calls: one function per command that works on a run, above the engine,
the tasks and the export (``kerasdl.training.train`` is the training entry point).

    from kerasdl import api
    api.evaluate_run("runs/lenet5-mnist5k-...", "test")
    api.sample("runs/vae-...", n=64, seed=0, out="grid.png")
"""

from __future__ import annotations

import os

import numpy as np

from kerasdl import runs
from kerasdl.errors import KerasdlUsageError
from kerasdl.runs.load import load_run

__all__ = ["evaluate_run", "calibrate_run", "sample", "encode"]


def evaluate_run(run_dir: str, split: str = "test", *, batch_size: int | None = None,
                 data_dir: str | None = None, n_bins: int | None = None, mc_samples: int = 0) -> dict:
    """Evaluate a finished (or interrupted) run's best checkpoint; record it in the run dir.

    A calibrated run (calibration.json) is reported before and after calibration, with its
    conformal sets when it has them; ``mc_samples`` > 0 adds MC-dropout figures (Gal &
    Ghahramani 2016) from that many stochastic passes. Other tasks report their own figures.
    """
    from kerasdl.data import load_splits
    from kerasdl.evaluation import posthoc
    from kerasdl.evaluation.report import evaluate_model, predict_logits, write_plots

    run = load_run(run_dir)
    config = run.config.replace(batch_size=batch_size or run.config.batch_size,
                                data_dir=data_dir or run.config.data_dir)
    n_bins = n_bins or config.ece_bins
    dataset = load_splits(config, (split,), shuffle_train=False)[0][split]
    if run.task.data_kind != "supervised":
        if mc_samples:
            raise KerasdlUsageError(f"MC dropout figures are for classifiers; {run_dir} is a {run.task.name} run")
        report = run.task.evaluate(run.model, dataset)
        report["plots"] = run.task.plots(report, run.model, dataset, run_dir, split)
    else:
        fitted = posthoc.load(run_dir) if posthoc.calibratable(run.info) else None
        predicted = predict_logits(run.model, dataset)
        report = evaluate_model(run.model, dataset, run.info, n_bins=n_bins, predicted=predicted,
                                calibrator=fitted and fitted.calibrator, conformal=fitted and fitted.conformal)
        if mc_samples:
            if not posthoc.calibratable(run.info):
                raise KerasdlUsageError(f"MC dropout figures are for classifiers; {run_dir} is a {run.info.task} run")
            report["mc_dropout"] = posthoc.mc_dropout_report(run.model, dataset, samples=mc_samples,
                                                             seed=config.seed, n_bins=n_bins)
        report["plots"] = write_plots(report, run.info, run_dir, split, dataset=dataset, predicted=predicted)
    file = runs.path(run_dir, runs.METRICS)
    record = runs.read_json(file, default={})
    record.setdefault("evaluation", {})[split] = report
    runs.write_json(file, record)
    return report


def calibrate_run(run_dir: str, *, method: str = "temperature", n_bins: int = 15,
                  conformal_alpha: float | None = None, batch_size: int | None = None,
                  data_dir: str | None = None) -> dict:
    """``kerasdl calibrate``: (re)fit the run's calibration on its validation split."""
    from kerasdl.data import load_splits
    from kerasdl.evaluation.posthoc import calibratable, calibrate, summary

    run = load_run(run_dir)
    if not calibratable(run.info) or run.task.data_kind != "supervised":
        raise KerasdlUsageError(f"calibration is for classifiers; {run_dir} is a {run.task.name} run")
    config = run.config.replace(batch_size=batch_size or run.config.batch_size,
                                data_dir=data_dir or run.config.data_dir)
    data, _ = load_splits(config, ("validation", "test"), shuffle_train=False)
    record = calibrate(run.model, run.info, data["validation"], data["test"], run_dir, method=method,
                       n_bins=n_bins, conformal_alpha=conformal_alpha, seed=config.seed,
                       title=f"{config.model} on {config.dataset}")
    file = runs.path(run_dir, runs.METRICS)
    metrics_record = runs.read_json(file, default={})
    metrics_record["calibration"] = summary(record)
    runs.write_json(file, metrics_record)
    return record
