"""``kerasdl encode``: the codes of input files under a run's encoder."""

from __future__ import annotations

import csv
import sys

import click

from kerasdl.tfquiet import import_tensorflow

from .options import run_dir_argument

EPILOG = """\b
Examples:
  kerasdl encode runs/vae-mnist5k-20261127-101500-3fa2c1 digit0.png digit1.png   # tab-separated
  kerasdl encode runs/<vae-run> batch.npz --output codes.npz        # arrays: codes, names
  kerasdl encode runs/<autoencoder-run> table.csv --output codes.csv

\b
Inputs are read as `kerasdl predict` reads them: image files, .npz/.npy (the x array) or .csv.
A VAE's code is its posterior mean z_mean, as the export's encode signature returns.
"""


@click.command("encode", epilog=EPILOG)
@run_dir_argument
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the codes to a .npz (arrays codes and names) or a .csv (input, z0, z1, ...); "
                   "default: tab-separated lines on stdout.")
def encode_command(run_dir, inputs, output):
    """Encode image files, .npz or .csv inputs with a run's encoder (tasks autoencoder, vae).

    RUN_DIR is a run directory of a task with an encoder; other runs are refused in one line
    before anything is loaded or written. Inputs far outside the training data are answered
    with one warning line each on stderr.
    """
    from kerasdl import api

    api.check_encode(run_dir)  # a refused run: before TensorFlow loads
    if output and not output.lower().endswith((".npz", ".csv")):
        raise click.BadParameter(f"codes are written as .npz or .csv. Received: {output}", param_hint="--output")
    import_tensorflow()  # quietly, before anything else loads it
    import numpy as np

    codes, names, problems = api.encode_inputs(run_dir, list(inputs))
    for problem in problems:
        click.echo(f"Warning: {problem}", err=True)
    header = [f"z{i}" for i in range(codes.shape[1])]
    if output and output.lower().endswith(".npz"):
        np.savez_compressed(output, codes=codes, names=np.asarray(names))
    elif output:
        with open(output, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["input", *header])
            writer.writerows([name, *(f"{v:.8g}" for v in row)] for name, row in zip(names, codes))
    else:
        out = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n")
        for name, row in zip(names, codes):
            out.writerow([name, *(f"{v:.6g}" for v in row)])
        return
    click.echo(f"wrote {len(names)} codes of size {codes.shape[1]} to {output}", err=True)
