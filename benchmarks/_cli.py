"""Shared by the benchmark scripts: run the kerasdl CLI as a subprocess, offline, and fail loudly."""

from __future__ import annotations

import os
import subprocess
import sys


def kerasdl(args: list[str], cwd: str) -> str:
    """``python -m kerasdl ARGS`` in ``cwd``; its stdout, or exit with its stderr on failure."""
    env = dict(os.environ, KERASDL_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-m", "kerasdl", *args], cwd=cwd, env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"kerasdl {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout
