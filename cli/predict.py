"""``kerasdl predict``: run a run directory or a SavedModel on files."""

from __future__ import annotations

import csv
import sys

import click

from kerasdl.tfquiet import import_tensorflow

EPILOG = """\b
Examples:
  kerasdl predict runs/lenet5-mnist5k-20261123-101500-3fa2c1 digit0.png digit1.png
  kerasdl predict saved_models/lenet5-mnist5k-20261123-101500-3fa2c1 batch.npz --output predictions.csv
  kerasdl predict runs/iris-run flowers.csv --top 2
  kerasdl predict runs/mlp-run batch.npz --mc-samples 30      # + std, entropy, mutual information
  kerasdl predict runs/mlp-run batch.npz --sets lac           # + conformal prediction set
"""


@click.command("predict", epilog=EPILOG)
@click.argument("source", type=click.Path())
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write every probability to this CSV (one row per input).")
@click.option("--top", type=click.IntRange(min=1), default=1, show_default=True, help="Classes shown per input.")
@click.option("--calibrated/--uncalibrated", default=True, show_default=True,
              help="A run's probabilities through its calibration map (as its export does), or raw.")
@click.option("--mc-samples", type=click.IntRange(min=0), default=0, metavar="N",
              help="Runs only: MC dropout, the mean of N stochastic passes, with per-input std of the top "
                   "class, predictive entropy and mutual information (nats).")
@click.option("--sets", type=click.Choice(["lac", "aps"]), default=None,
              help="Runs only: the run's conformal prediction sets (fitted with --conformal-alpha).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the MC-dropout masks.")
def predict_command(source, inputs, output, top, calibrated, mc_samples, sets, seed):
    """Predict classes (with probabilities) or values for image files, .npz or .csv inputs.

    SOURCE is a run directory, a SavedModel version folder, or a model folder of versions (the
    latest is used). A calibrated run's probabilities are the calibrated ones. Inputs far outside
    the training data (e.g. scaled to [0, 1], inverted polarity) are answered with one warning
    line each on stderr saying what the model expects.
    """
    import_tensorflow()  # quietly, before anything else loads it
    from kerasdl.predict import predict

    result = predict(source, list(inputs), calibrated=calibrated, mc_samples=mc_samples, sets=sets, seed=seed)
    for problem in result.warnings:  # inputs far outside the training data: answered, but flagged
        click.echo(f"Warning: {problem}", err=True)
    if result.task == "segmentation":
        _segmentation_output(result, output)
        return
    if output:
        with open(output, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if result.task == "regression":
                writer.writerow(["input", "prediction"])
                writer.writerows([n, f"{v:.8g}"] for n, v in zip(result.names, result.outputs))
            else:
                extras = _extra_columns(result)
                writer.writerow(["input", "class", *result.class_names, *extras])
                for i, (n, p) in enumerate(zip(result.names, result.outputs)):
                    writer.writerow([n, result.class_names[int(p.argmax())], *(f"{v:.8g}" for v in p),
                                     *(f(i) for f in extras.values())])
        click.echo(f"wrote {len(result.names)} predictions to {output}", err=True)
        return
    out = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n")
    extras = _extra_columns(result)
    for row, (n, p) in enumerate(zip(result.names, result.outputs)):
        if result.task == "regression":
            out.writerow([n, f"{float(p):.6g}"])
            continue
        best = p.argsort()[::-1][:top]
        out.writerow([n, *(f"{result.class_names[i]} {p[i]:.4f}" for i in best),
                      *(f"{name}={f(row)}" for name, f in extras.items())])


def _extra_columns(result) -> dict:
    """Per-input uncertainty columns: name -> (row index -> text)."""
    cols = {}
    for key in ("std", "predictive_entropy", "mutual_information"):
        if key in result.extra:
            cols[key] = lambda i, v=result.extra[key]: f"{v[i]:.6g}"
    if "prediction_set" in result.extra:
        names = result.class_names
        cols["prediction_set"] = lambda i, s=result.extra["prediction_set"]: "{" + ",".join(
            str(names[k]) for k in range(len(names)) if s[i, k]) + "}"
    return cols


def _segmentation_output(result, output) -> None:
    """Masks go to an .npz (probabilities and class maps); the terminal gets pixel shares."""
    import numpy as np

    if output:
        if not output.endswith(".npz"):
            raise click.BadParameter("segmentation predictions are written as .npz", param_hint="--output")
        np.savez_compressed(output, probabilities=result.outputs, classes=result.outputs.argmax(-1))
        click.echo(f"wrote {len(result.names)} masks to {output}", err=True)
        return
    out = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n")
    for name, probs in zip(result.names, result.outputs):
        share = np.bincount(probs.argmax(-1).ravel(), minlength=probs.shape[-1]) / probs[..., 0].size
        out.writerow([name, *(f"{c} {s:.3f}" for c, s in zip(result.class_names, share))])
