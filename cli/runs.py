"""``kerasdl runs``: list and compare the runs in a folder."""

from __future__ import annotations

import click

from . import render

EPILOG = """\b
Examples:
  kerasdl runs                                  # the runs in ./runs, oldest first
  kerasdl runs /tmp/sweep --sort accuracy       # best test accuracy first
  kerasdl runs --dataset diabetes --sort r2     # compare the regression runs on one dataset
  kerasdl runs | cut -f1,2,6                    # piped: tab-separated lines, header first
"""


@click.command("runs", epilog=EPILOG)
@click.argument("folder", default="runs", required=False, metavar="[DIR]")
@click.option("--sort", "sort_key", default="created", show_default=True, metavar="KEY",
              help="created, name, status, dataset, model, epochs, accuracy, loss, r2 or mean_iou; "
                   "figures sort best first.")
@click.option("--reverse", is_flag=True, help="Reverse the order.")
@click.option("--model", default=None, help="Only runs of this model.")
@click.option("--dataset", default=None, help="Only runs on this dataset.")
def runs_command(folder, sort_key, reverse, model, dataset):
    """List the runs in DIR (default: runs) with their status, dataset, model, epochs and test figures.

    Reads each run's config.yaml and metrics.json only (no TensorFlow), so it prints at once.
    Epochs are finished / configured; an ensemble shows "N x model" and its members' most epochs.
    Test figures are the ones training recorded: accuracy (pixel accuracy for segmentation), loss
    (NLL for classifiers, MSE for regression), r2, mean_iou and rel_l2 (PINNs) where the task has them.
    """
    from kerasdl.runs.listing import METRICS, format_figure, list_runs

    found = list_runs(folder, sort=sort_key, reverse=reverse, model=model, dataset=dataset)
    if not found:
        click.echo(f"no kerasdl runs in {folder}", err=True)
        return
    figures = list(METRICS)
    if render.console.is_terminal:  # a table shows only the figures some run has; piped lines keep every column
        figures = [k for k in figures if any(k in r.test for r in found)]
    columns = ("name", "status", "dataset", "model", "epochs", *figures, "created")
    rows = [(r.name, r.status, r.dataset, r.model_label, r.epochs_label,
             *(format_figure(k, r.test.get(k)) for k in figures), r.created_label) for r in found]
    render.print_rows(f"kerasdl runs in {folder}", columns, rows, right=("epochs", *figures))
