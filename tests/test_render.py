"""Terminal output (cli/render.py): what a user reads after a run."""

from __future__ import annotations

import io

from rich.console import Console


def test_metrics_title_never_folds_the_run_path(monkeypatch):
    """A narrow terminal must not break the run path of 'test metrics (<run>)' in the middle of a
    name: the path is what a user copies into the next command."""
    from kerasdl.cli import render

    out = io.StringIO()
    monkeypatch.setattr(render, "console", Console(file=out, width=32, force_terminal=True, color_system=None))
    run_dir = "/tmp/somewhere/runs/lenet5-mnist5k-20261127-172501-3f9a"
    render.print_metrics({"accuracy": 0.9876, "loss": 0.0412, "n": 1500}, title=f"test metrics ({run_dir})")
    text = out.getvalue()
    assert any(run_dir in line for line in text.splitlines()), text
    assert "98.76%" in text and "1,500" in text  # the table itself still prints
