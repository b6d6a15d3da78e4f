"""``kerasdl calibrate``: fit temperature (or vector / matrix) scaling on a run's validation split."""

from __future__ import annotations

import click

from kerasdl.evaluation.calibration import KINDS
from kerasdl.tfquiet import import_tensorflow

from .options import data_dir_option, run_dir_argument
from .render import print_calibration

EPILOG = """\b
Examples:
  kerasdl calibrate runs/mlp-mnist5k-20261123-101500-3fa2c1                  # temperature scaling
  kerasdl calibrate runs/my-run --method vector --bins 10
  kerasdl calibrate runs/my-run --conformal-alpha 0.1                 # + prediction sets, 90% coverage
"""


@click.command("calibrate", epilog=EPILOG)
@run_dir_argument
@click.option("--method", type=click.Choice(KINDS), default="temperature", show_default=True,
              help="temperature: one T (Guo et al. 2017, never changes the argmax); vector: per-class "
                   "scale and bias; matrix: a full K x K map.")
@click.option("--bins", "n_bins", type=click.IntRange(min=1), default=15, show_default=True,
              help="Equal-width confidence bins of ECE / MCE and the reliability diagram.")
@click.option("--conformal-alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Also calibrate split-conformal prediction sets (LAC and APS) with coverage 1 - ALPHA.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Default: the run's batch size.")
@data_dir_option
def calibrate_command(run_dir, method, n_bins, conformal_alpha, batch_size, data_dir):
    """Fit a calibration map on the validation split; report test NLL, ECE, Brier before and after.

    Writes calibration.json and plots/reliability_test.png into the run directory; evaluate,
    predict and export then use the calibrated probabilities. (kerasdl train does this by itself
    for classifiers unless --no-calibrate.)
    """
    import_tensorflow()  # quietly, before anything else loads it
    from kerasdl.api import calibrate_run

    record = calibrate_run(run_dir, method=method, n_bins=n_bins, conformal_alpha=conformal_alpha,
                           batch_size=batch_size, data_dir=data_dir)
    print_calibration(record)
    for file in record.get("plots", []):
        click.echo(f"plot: {file}")
