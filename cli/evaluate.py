"""``kerasdl evaluate``: metrics and plots for a run's best checkpoint."""

from __future__ import annotations

import click

from kerasdl.tfquiet import import_tensorflow

from .options import data_dir_option, run_dir_argument
from .render import print_metrics, print_uncertainty

EPILOG = """\b
Examples:
  kerasdl evaluate runs/lenet5-mnist5k-20261123-101500-3fa2c1
  kerasdl evaluate runs/my-run --split validation
  kerasdl evaluate runs/my-run --mc-samples 30          # + MC dropout figures
"""


@click.command("evaluate", epilog=EPILOG)
@run_dir_argument
@click.option("--split", type=click.Choice(["test", "validation", "train"]), default="test", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Default: the run's batch size.")
@click.option("--bins", "n_bins", type=click.IntRange(min=1), default=None,
              help="Equal-width bins of ECE / MCE.  [default: the run's, 15]")
@click.option("--mc-samples", type=click.IntRange(min=0), default=0, metavar="N",
              help="Also report MC dropout (Gal & Ghahramani 2016): the mean of N stochastic passes, with "
                   "dropout on and batch norm in inference mode.")
@data_dir_option
def evaluate_command(run_dir, split, batch_size, n_bins, mc_samples, data_dir):
    """Report loss, accuracy, top-5, NLL, ECE, Brier, per-class accuracy and a confusion matrix.

    A calibrated run is reported before and after calibration (and with its conformal sets'
    coverage); results go to the terminal and into the run directory (metrics.json, plots/).
    """
    import_tensorflow()  # quietly, before anything else loads it
    from kerasdl.api import evaluate_run
    from kerasdl.runs import DATASET, path, read_json

    report = evaluate_run(run_dir, split, batch_size=batch_size, data_dir=data_dir, n_bins=n_bins,
                          mc_samples=mc_samples)
    class_names = read_json(path(run_dir, DATASET), {}).get("class_names")
    print_metrics(report, title=f"{split} metrics ({run_dir})", class_names=class_names)
    print_uncertainty(report, split)
    for file in report.get("plots", []):
        click.echo(f"plot: {file}")
