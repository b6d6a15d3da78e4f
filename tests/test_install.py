"""Packaging: kerasdl installs as one namespace, the script works, README and CI agree."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sysconfig
import sys
import tomllib
from importlib import metadata

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def quickstart_lines() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_readme_quickstart_has_two_commands_and_ci_runs_line_two():
    lines = quickstart_lines()
    assert len(lines) == 2
    assert "kerasdl train" in lines[0] and "pytest" in lines[1]
    ci = (REPO / ".ci" / "run").read_text()
    # .ci/run reads line 2 from the README (so the two cannot drift); check it really does.
    out = subprocess.run(["bash", str(REPO / ".ci" / "run"), "--print-command"], capture_output=True,
                         text=True, cwd=REPO, check=True).stdout.strip()
    assert out == lines[1] and "README.md" in ci


def test_installed_script_help_works():
    # The console script sits beside the interpreter that runs the tests (a venv's bin/, or the
    # system scripts folder). A login shell (`bash -lc`) resets PATH and drops an active venv, so
    # it must not be used to find it (issue #13: the suite failed in a fresh venv that way).
    scripts = pathlib.Path(sysconfig.get_path("scripts"))
    exe = next((str(p) for p in (scripts / "kerasdl", scripts / "kerasdl.exe") if p.exists()), None)
    assert exe, f"the kerasdl console script is not in {scripts}"
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, cwd="/")
    assert proc.returncode == 0 and "train" in proc.stdout


def test_cli_and_models_live_inside_the_kerasdl_namespace():
    import kerasdl.cli
    import kerasdl.models

    for module in (kerasdl.cli, kerasdl.models):
        assert module.__name__.startswith("kerasdl.")
    # The installed dist-info (a stray kerasdl.egg-info in the repo may also be on sys.path).
    dists = [d for d in metadata.distributions() if d.metadata["Name"] == "kerasdl" and d.read_text("RECORD")]
    assert dists, "kerasdl is not pip-installed"
    dist = dists[0]
    top_level = (dist.read_text("top_level.txt") or "").split()
    assert "cli" not in top_level and "models" not in top_level
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    if not direct.get("dir_info", {}).get("editable"):
        # A regular install: the files really sit under site-packages/kerasdl/.
        assert kerasdl.models.__file__.endswith(os.path.join("kerasdl", "models", "__init__.py"))
        assert kerasdl.cli.__file__.endswith(os.path.join("kerasdl", "cli", "__init__.py"))
        assert not any(str(f).startswith(("cli/", "models/")) for f in dist.files or [])
    # From a neutral directory, no top-level `cli` or `models` package of ours is importable.
    probe = "import importlib.util as u; print([str(getattr(u.find_spec(n), 'origin', None)) for n in ('cli', 'models')])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd="/", check=True).stdout
    assert str(REPO) not in out, out


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    found = set()
    for package, folder in mapping.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([package, *rel.parts]) if rel.parts else package)
    missing = {p for p in found if not any(p == m for m in listed)}
    # sub-packages of mapped folders that are themselves mapped count once
    assert not missing, f"add to [tool.setuptools] packages: {sorted(missing)}"


@pytest.mark.parametrize("path", ["saved_models/.gitkeep"])
def test_layout(path):
    assert (REPO / path).exists()
    for folder in ("kerasdl", "cli", "models", "tests", "saved_models"):
        assert (REPO / folder).is_dir()


def test_ci_runs_the_suite_in_a_fresh_venv():
    """CI must test as a newcomer does: in a new virtual environment, never the system site-packages."""
    ci = (REPO / ".ci" / "run").read_text()
    assert "-m venv" in ci and "bin/activate" in ci
    assert "--system-site-packages" not in ci


def _script_imports(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the installed console script; return the process and the top-level modules it imported."""
    scripts = pathlib.Path(sysconfig.get_path("scripts"))
    exe = next((str(p) for p in (scripts / "kerasdl", scripts / "kerasdl.exe") if p.exists()), None)
    assert exe, f"the kerasdl console script is not in {scripts}"
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1", KERASDL_OFFLINE="1")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, cwd="/", env=env, timeout=600)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    return proc, imported


@pytest.mark.parametrize("args", [("--help",), ("models",), ("models", "--help")])
def test_listing_commands_start_without_tensorflow(args):
    """Issue #13: `kerasdl models` built every model (65-77 s); --help must stay under a second."""
    proc, imported = _script_imports(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "click" in imported  # the import log was captured
    assert not imported & {"tensorflow", "keras", "scipy"}, sorted(imported & {"tensorflow", "keras", "scipy"})


def test_an_unknown_model_is_refused_before_tensorflow_loads(tmp_path):
    """Issue #13: `kerasdl train --model nope` imported TensorFlow (5.9 s) before checking the name."""
    proc, imported = _script_imports("train", "--model", "nope", "--output-dir", str(tmp_path))
    assert proc.returncode == 2 and "unknown model 'nope'" in proc.stderr, proc.stderr[-2000:]
    assert "tensorflow" not in imported and "keras" not in imported
    assert not any(tmp_path.iterdir())
