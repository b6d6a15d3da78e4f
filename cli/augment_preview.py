"""``kerasdl augment-preview``: a PNG grid of training examples before and after augmentation."""

from __future__ import annotations

import click

from kerasdl.data.augment import HELP as AUGMENT_HELP
from kerasdl.tfquiet import import_tensorflow

from .options import data_dir_option

EPILOG = """\b
Examples:
  kerasdl augment-preview --dataset mnist5k --augment rotate,cutout --out preview.png
  kerasdl augment-preview --augment light                  # translate,rotate (digits)
  kerasdl augment-preview --dataset cifar10 --augment standard,jitter -n 32 --seed 3
"""


@click.command("augment-preview", epilog=EPILOG)
@click.option("--dataset", "-d", default="mnist5k", show_default=True, help="An image dataset (see 'kerasdl datasets').")
@click.option("--augment", "-a", default="auto", show_default=True, help=AUGMENT_HELP)
@click.option("--out", "-o", default="augmentation.png", show_default=True, type=click.Path(dir_okay=False),
              help="PNG file to write.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample order and the transforms.")
@click.option("-n", "--num", "n", type=click.IntRange(1, 256), default=16, show_default=True,
              help="How many training examples.")
@data_dir_option
@click.option("--download/--no-download", default=None,
              help="Allow downloading tfds catalog datasets (default: yes unless KERASDL_OFFLINE=1).")
def augment_preview_command(dataset, augment, out, seed, n, data_dir, download):
    """Save a grid of training examples, each original above its augmented version.

    The transforms are the training pipeline's own (same names, parameters and order as
    'kerasdl train --augment ...'), applied to the first N examples of the seeded training order.
    """
    from kerasdl.data import augment as aug

    aug.parse(augment)  # a bad name fails before TensorFlow starts
    import_tensorflow()  # quietly, before anything else loads it
    path = aug.preview(dataset, augment, out, seed=seed, n=n, data_dir=data_dir, download=download)
    click.echo(f"wrote {path}")
