"""Assertions shared by the CLI test modules (conftest puts this folder on sys.path)."""

from __future__ import annotations


def assert_one_line_error(proc, *needles):
    """Exit code 2, no traceback, and one line starting with 'Error:' that names the problem."""
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
