"""Options shared by several commands, defined once (those that set a RunConfig field come from
the field: cli/config_options.py)."""

from __future__ import annotations

import click

from .config_options import config_option

data_dir_option = config_option("data_dir")
run_dir_argument = click.argument("run_dir", type=click.Path())
export_dir_option = config_option("export_dir")
