"""Shared fixtures: an offline, isolated data dir and a helper to run the installed CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

# Helpers shared by test modules (tests/clihelpers.py): importable by name, asserts rewritten.
# Only this folder goes on sys.path, never the repository root (tests import the installed kerasdl).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
pytest.register_assert_rewrite("clihelpers")

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
    """A short real lenet5 run on mnist5k, shared by the evaluate/export/predict tests; calibrated
    (the default) with conformal sets, so the export tests see every calibrated output."""
    proc = run_cli("train", "--epochs", "3", "--schedule", "constant", "--augment", "none", "--name", "lenet",
                   "--seed", "1", "--conformal-alpha", "0.1", cwd=workdir, check=0)
    return workdir / "runs" / "lenet", proc


class InProcess:
    """What a finished ``kerasdl`` invocation left: returncode, stdout, stderr (as subprocess's)."""

    def __init__(self, result):
        self.returncode, self.stdout, self.stderr = result.exit_code, result.stdout, result.stderr


@pytest.fixture
def cli_inprocess(data_dir, monkeypatch):
    """Run the same ``kerasdl`` command group in this process (click's CliRunner, which turns the
    group's sys.exit into an exit code): for the many bad-input cases, where a subprocess per case
    would mostly measure TensorFlow's import time. The real installed entry point is exercised by
    ``run_cli`` and test_install.py."""
    from click.testing import CliRunner

    from kerasdl.cli.main import cli

    def run(*args, cwd):
        monkeypatch.chdir(cwd)
        env = {"KERASDL_DATA_DIR": data_dir, "KERASDL_OFFLINE": "1", "COLUMNS": "200"}
        return InProcess(CliRunner().invoke(cli, [str(a) for a in args], env=env, prog_name="kerasdl",
                                           catch_exceptions=False))

    return run
