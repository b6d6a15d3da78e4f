"""``kerasdl predict``: run a run directory or a SavedModel on files."""

from __future__ import annotations

import csv
import sys

import click

from kerasdl.tfquiet import import_tensorflow

EPILOG = """\b
Examples:
  kerasdl predict runs/lenet5-mnist5k-20261123-101500 digit0.png digit1.png
  kerasdl predict saved_models/lenet5 batch.npz --output predictions.csv
  kerasdl predict runs/iris-run flowers.csv --top 2
"""


@click.command("predict", epilog=EPILOG)
@click.argument("source", type=click.Path())
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write every probability to this CSV (one row per input).")
@click.option("--top", type=click.IntRange(min=1), default=1, show_default=True, help="Classes shown per input.")
def predict_command(source, inputs, output, top):
    """Predict classes (with probabilities) or values for image files, .npz or .csv inputs.

    SOURCE is a run directory, a SavedModel version folder, or a model folder of versions (the
    latest is used).
    """
    import_tensorflow()  # quietly, before anything else loads it
    from kerasdl.predict import predict

    result = predict(source, list(inputs))
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
                writer.writerow(["input", "class", *result.class_names])
                for n, p in zip(result.names, result.outputs):
                    writer.writerow([n, result.class_names[int(p.argmax())], *(f"{v:.8g}" for v in p)])
        click.echo(f"wrote {len(result.names)} predictions to {output}", err=True)
        return
    out = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n")
    for n, p in zip(result.names, result.outputs):
        if result.task == "regression":
            out.writerow([n, f"{float(p):.6g}"])
            continue
        best = p.argsort()[::-1][:top]
        out.writerow([n, *(f"{result.class_names[i]} {p[i]:.4f}" for i in best)])


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
