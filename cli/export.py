"""``kerasdl export``: write a run as a SavedModel in the TF Serving layout."""

from __future__ import annotations

import click

from kerasdl.tfquiet import import_tensorflow

from .options import export_dir_option, run_dir_argument

EPILOG = """\b
Examples:
  kerasdl export runs/lenet5-mnist5k-20261123-101500-3fa2c1  # -> saved_models/lenet5-mnist5k-20261123-101500-3fa2c1/1/
  kerasdl export runs/my-run --export-dir /srv/models --name digits

\b
A name's versions share model, dataset and input signature: re-exports of a run, or retrained runs
of the same setup under one --name, count up; another model exported to a taken name is refused.

\b
Load it anywhere with plain TensorFlow:
  m = tf.saved_model.load("saved_models/<run-name>/1")
  m.signatures["serving_default"](inputs=tf.constant(uint8_images))   # {'probabilities', 'class'}
"""


@click.command("export", epilog=EPILOG)
@run_dir_argument
@export_dir_option
@click.option("--name", default=None,
              help="Model name in the export root (default: the run's name); its versions must share model, "
                   "dataset and input signature.")
def export_command(run_dir, export_dir, name):
    """Export the run's best checkpoint as <export-dir>/<name>/<version>/ (atomic, versions count up;
    <name> is the run's name unless --name is given).

    The serving_default signature takes raw inputs as the dataset stores them (e.g. uint8 images),
    does the preprocessing itself, and returns class probabilities and the predicted class.
    """
    from kerasdl.export.savedmodel import export_target

    export_target(run_dir, export_root=export_dir, name=name)  # a refused name: before TensorFlow loads
    import_tensorflow()  # quietly, before anything else loads it
    from kerasdl.export.savedmodel import export_run

    path = export_run(run_dir, export_root=export_dir, name=name)
    click.echo(f"exported SavedModel: {path}")
