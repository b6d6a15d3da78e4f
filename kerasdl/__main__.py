"""``python -m kerasdl`` is the same as the ``kerasdl`` command."""

from kerasdl.cli.main import cli

cli()
