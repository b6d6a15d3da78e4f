"""Options shared by several commands, defined once."""

from __future__ import annotations

import click

data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False), default=None,
    help="Where tfds datasets are prepared/read (default: $KERASDL_DATA_DIR or ~/tensorflow_datasets).",
)
run_dir_argument = click.argument("run_dir", type=click.Path())
export_dir_option = click.option(
    "--export-dir", default="saved_models", show_default=True, type=click.Path(file_okay=False),
    help="Export root; SavedModels go to <export-dir>/<name>/<version>/.",
)

