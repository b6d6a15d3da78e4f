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

__all__ = ["evaluate_run", "calibrate_run", "sample", "encode", "encode_inputs", "check_sample", "check_encode"]


def evaluate_run(run_dir: str, split: str = "test", *, batch_size: int | None = None,
                 data_dir: str | None = None, n_bins: int | None = None, mc_samples: int = 0) -> dict:
    """Evaluate a finished (or interrupted) run's best checkpoint; record it in the run dir.

    A calibrated run (calibration.json) is reported before and after calibration, with its
    conformal sets when it has them; ``mc_samples`` > 0 adds MC-dropout figures (Gal &
    Ghahramani 2016) from that many stochastic passes. Other tasks report their own figures.
    """
    from kerasdl.evaluation import posthoc
    from kerasdl.evaluation.report import evaluate_model, predict_logits, write_plots
    from kerasdl.tasks.base import CLASSIFYING

    run = load_run(run_dir)
    config = run.config.replace(batch_size=batch_size or run.config.batch_size,
                                data_dir=data_dir or run.config.data_dir)
    n_bins = n_bins or config.ece_bins
    dataset = _split_of(run, config, split)
    if mc_samples and run.task.data_kind == "graph":
        raise KerasdlUsageError(f"MC dropout figures are for image and tabular classifiers; {run_dir} is a "
                                f"{run.task.name} run")
    if run.task.data_kind not in CLASSIFYING:
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


def _split_of(run, config, split: str):
    """The dataset of ``split`` for a loaded run: the task's own (a PDE's reference grid, a graph's
    split mask) or the run's dataset's."""
    from kerasdl.data import load_splits
    from kerasdl.tasks.base import OWN_DATA

    if run.task.data_kind in OWN_DATA:
        task = run.task  # the loaded run's own (a PINN's problem comes from the run's copy of its file)
        if config.batch_size != run.config.batch_size:  # batches of graphs of the size asked for
            task = type(run.task)(config, run.info)
            task.run_dir = run.task.run_dir
        return task.make_data((split,))[0][split]
    return load_splits(config, (split,), shuffle_train=False)[0][split]


def calibrate_run(run_dir: str, *, method: str = "temperature", n_bins: int = 15,
                  conformal_alpha: float | None = None, batch_size: int | None = None,
                  data_dir: str | None = None) -> dict:
    """``kerasdl calibrate``: (re)fit the run's calibration on its validation split."""
    from kerasdl.evaluation.posthoc import calibratable, calibrate, summary

    from kerasdl.tasks.base import CLASSIFYING

    run = load_run(run_dir)
    if not calibratable(run.info) or run.task.data_kind not in CLASSIFYING:
        raise KerasdlUsageError(f"calibration is for classifiers; {run_dir} is a {run.task.name} run")
    config = run.config.replace(batch_size=batch_size or run.config.batch_size,
                                data_dir=data_dir or run.config.data_dir)
    data = {split: _split_of(run, config, split) for split in ("validation", "test")}
    record = calibrate(run.model, run.info, data["validation"], data["test"], run_dir, method=method,
                       n_bins=n_bins, conformal_alpha=conformal_alpha, seed=config.seed,
                       title=f"{config.model} on {config.dataset}")
    file = runs.path(run_dir, runs.METRICS)
    metrics_record = runs.read_json(file, default={})
    metrics_record["calibration"] = summary(record)
    runs.write_json(file, metrics_record)
    return record


def _require(run_dir: str, command: str):
    """Nothing when ``kerasdl <command>`` ("sample" | "encode") works on the run; else one line. Reads config.yaml and dataset.json only: nothing is loaded or written before it passes."""
    from kerasdl.tasks.base import CAPABILITIES, refusal, task_attribute, task_name

    runs.check_run_dir(run_dir, need_weights=False)
    dataset_task = (runs.read_json(runs.path(run_dir, runs.DATASET), {}) or {}).get("task", "classification")
    name = task_name(runs.read_config(run_dir), dataset_task)
    if not task_attribute(name, CAPABILITIES[command][0]):
        raise KerasdlUsageError(refusal(name, command, run_dir))


def check_sample(run_dir: str, n: int = 64, *, label: int | None = None, steps: int | None = None) -> None:
    """Refuse ``sample`` before anything loads: a bad ``n``, ``label`` or ``steps``, or a run that is
    not generative (reads config.yaml and dataset.json only)."""
    from kerasdl.tasks.base import task_name
    from kerasdl.tasks.options import parse_options

    if int(n) < 1:
        raise KerasdlUsageError(f"n must be >= 1. Received: n={n}")
    if steps is not None and int(steps) < 1:
        raise KerasdlUsageError(f"steps must be >= 1. Received: steps={steps}")
    _require(run_dir, "sample")
    config = runs.read_config(run_dir)
    dataset = runs.read_json(runs.path(run_dir, runs.DATASET), {}) or {}
    name = task_name(config, dataset.get("task", "classification"))
    opts = parse_options(name, config.task_options or {})
    if steps is not None and not hasattr(opts, "timesteps"):
        raise KerasdlUsageError(f"--steps is for diffusion runs; {run_dir} is a {name} run (it draws in one pass)")
    if steps is not None and int(steps) > int(opts.timesteps):
        raise KerasdlUsageError(f"steps must be <= the run's timesteps ({opts.timesteps}). Received: steps={steps}")
    if label is not None:
        if not getattr(opts, "conditional", False):
            raise KerasdlUsageError(f"--class needs a conditional model; {run_dir} is an unconditional {name} run "
                                    f"(train with --task-opt conditional=true)")
        k = int(dataset.get("num_classes", 0))
        if not 0 <= int(label) < k:
            names = [str(c) for c in dataset.get("class_names", [])][:12]
            raise KerasdlUsageError(f"class {label} is out of range: {run_dir} has {k} classes, 0..{k - 1}"
                                    + (f" ({', '.join(names)})" if names else ""))


def sample(run_dir: str, n: int = 64, seed: int = 0, out: str | None = None, *, npz: str | None = None,
           cols: int = 8, label: int | None = None, steps: int | None = None) -> tuple[np.ndarray, str | None]:
    """``kerasdl sample``: ``n`` examples from a generative run, drawn with ``seed``.

    ``label``: the class a conditional model draws (default: the classes in turn); ``steps``: a
    diffusion run's sampling steps (default: its ``sample_steps``). The same ``seed`` draws what
    the export's ``sample`` signature draws. Writes a PNG (default
    ``<run>/plots/samples_seed<seed>.png``; ``out=""`` writes none: an image grid, or for vectors
    the samples over the real data) and, with ``npz``, the arrays (``images`` in [0, 1] or the
    vectors in the data's units, and a VAE's ``z``). Returns ``(samples, png path)``.
    """
    check_sample(run_dir, n, label=label, steps=steps)
    if out is None:
        out = runs.path(run_dir, os.path.join(runs.PLOTS, f"samples_seed{int(seed)}.png"))
    if out and not out.lower().endswith(".png"):
        raise KerasdlUsageError(f"the sample grid is a PNG: give an output path ending in .png. Received: {out}")
    if npz and not npz.lower().endswith(".npz"):
        raise KerasdlUsageError(f"the sample arrays go to an .npz file. Received: {npz}")
    run = load_run(run_dir)
    kw = {k: v for k, v in (("label", label), ("steps", steps)) if v is not None}
    images = run.task.sample(run.model, int(n), int(seed), **kw)
    if out:
        from kerasdl.plots import generative as figs

        title = (f"{run.config.name or os.path.basename(os.path.normpath(run_dir))}: {n} samples, seed {seed}"
                 + (f", class {label}" if label is not None else "") + (f", {steps} steps" if steps else ""))
        if run.info.is_image or images.ndim > 2:
            figs.image_grid(images, out, cols=max(1, min(int(cols), int(n))), title=title)
        else:
            figs.sample_scatter(images, run.task._real_raw("test"), out, title=title,
                                feature_names=run.info.feature_names)
    if npz:
        arrays = {"images" if run.info.is_image else "samples": images}
        if hasattr(run.task, "prior"):
            arrays["z"] = run.task.prior(int(n), int(seed))
        os.makedirs(os.path.dirname(os.path.abspath(npz)), exist_ok=True)
        np.savez_compressed(npz, **arrays)
    return images, out or None


def check_encode(run_dir: str) -> None:
    """Refuse ``encode`` before anything loads: a run whose task has no encoder."""
    _require(run_dir, "encode")


def encode_inputs(run_dir: str, paths: list[str], *, batch_size: int = 256
                  ) -> tuple[np.ndarray, list[str], list[str]]:
    """``(codes (N, k), names, warnings)`` of the input files ``paths`` (images, .npz, .npy,
    .csv, read as ``kerasdl predict`` reads them); names are ``file`` or ``file[row]``, warnings
    one line per way the inputs sit far outside the training data."""
    from kerasdl.predict import read_batch
    from kerasdl.runs.inputs import run_input_stats

    check_encode(run_dir)
    if not paths:
        raise KerasdlUsageError("no inputs given to encode")
    run = load_run(run_dir)
    x, names, problems = read_batch(paths, run.info, run_input_stats(run_dir, run.config), "encode")
    codes = np.concatenate([run.task.encode(run.model, x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    return codes.astype(np.float32), names, problems


def encode(run_dir: str, paths: list[str], *, batch_size: int = 256) -> np.ndarray:
    """``kerasdl encode``: the codes (N, k) of the input files ``paths`` (a VAE: ``z_mean``), as
    the run's export ``encode`` signature computes them."""
    return encode_inputs(run_dir, paths, batch_size=batch_size)[0]
