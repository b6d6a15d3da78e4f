"""``kerasdl runs``: list and compare the runs in a folder (kerasdl/runs/listing.py, cli/runs.py).

The run folders here are written by hand with the files training leaves (config.yaml,
metrics.json, history.csv, TensorBoard event files), so the listing is tested in milliseconds;
tests/test_plots.py lists a real (ensemble) run.
"""

from __future__ import annotations

import io
import json
import os
import sys

import pytest
import yaml
from rich.console import Console


def make_run(folder, name, *, model="mlp", dataset="digits", epochs=20, history_rows=0, record=None,
             started=None, ensemble=1):
    """A run directory as training leaves it; ``started`` names a TensorBoard event file's time."""
    run = folder / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"model": model, "dataset": dataset, "epochs": epochs,
                                                     "ensemble": ensemble, "seed": 0}))
    (run / "dataset.json").write_text("{}")
    if history_rows:
        lines = ["epoch,loss,val_loss"] + [f"{i},1.0,1.0" for i in range(history_rows)]
        (run / "history.csv").write_text("\n".join(lines) + "\n")
    if record is not None:
        (run / "metrics.json").write_text(json.dumps(record))
    if started is not None:
        (run / "logs" / "train").mkdir(parents=True)
        (run / "logs" / "train" / f"events.out.tfevents.{started}.host.123.0.v2").write_bytes(b"")
    return run


@pytest.fixture
def runs_folder(tmp_path):
    folder = tmp_path / "runs"
    make_run(folder, "mlp-a", epochs=20, history_rows=20, started=1_700_000_300,
             record={"status": "completed", "epochs_run": 20, "test": {"accuracy": 0.90, "loss": 0.35, "n": 269}})
    make_run(folder, "mlp-b", epochs=30, history_rows=12, started=1_700_000_100,
             record={"status": "completed", "epochs_run": 12, "test": {"accuracy": 0.95, "loss": 0.21, "n": 269}})
    make_run(folder, "reg", dataset="diabetes", epochs=200, history_rows=61, started=1_700_000_200,
             record={"status": "completed", "epochs_run": 61, "test": {"r2": 0.4653, "mse": 2325.2, "loss": 2325.2}})
    make_run(folder, "live", epochs=20, history_rows=2, started=1_700_000_400, record={"status": "running"})
    make_run(folder, "ens", epochs=5, started=1_700_000_500, ensemble=3,
             record={"status": "completed", "test": {"accuracy": 0.97, "loss": 0.1}})
    make_run(folder / "ens" / "members", "member1", epochs=5, history_rows=4)
    (folder / "not-a-run").mkdir()  # no config.yaml: not listed
    return folder


def rows_of(stdout: str) -> list[list[str]]:
    return [line.split("\t") for line in stdout.strip().splitlines()]


def test_runs_piped_lists_every_run_oldest_first_as_tab_separated_lines(cli_inprocess, runs_folder):
    proc = cli_inprocess("runs", runs_folder, cwd=runs_folder.parent)
    assert proc.returncode == 0, proc.stderr
    header, *rows = rows_of(proc.stdout)
    assert header == ["name", "status", "dataset", "model", "epochs", "accuracy", "loss", "r2", "mean_iou",
                      "rel_l2", "created"]
    assert [r[0] for r in rows] == ["mlp-b", "reg", "mlp-a", "live", "ens"]  # by the first event file's time
    by_name = {r[0]: dict(zip(header, r)) for r in rows}
    assert by_name["mlp-b"] == {**by_name["mlp-b"], "status": "completed", "dataset": "digits", "model": "mlp",
                                "epochs": "12/30", "accuracy": "95.00%", "loss": "0.21", "r2": "-"}
    assert by_name["reg"]["r2"] == "0.4653" and by_name["reg"]["accuracy"] == "-"
    assert by_name["live"]["status"] == "running" and by_name["live"]["epochs"] == "2/20"  # from history.csv
    assert by_name["ens"]["model"] == "3 x mlp" and by_name["ens"]["epochs"] == "4/5"  # its members' epochs
    assert by_name["mlp-b"]["created"].startswith("2023-11-1")  # 1_700_000_100 s, in local time


def test_runs_sort_by_figures_best_first_missing_last_and_filters(cli_inprocess, runs_folder):
    proc = cli_inprocess("runs", runs_folder, "--sort", "accuracy", cwd=runs_folder.parent)
    assert [r[0] for r in rows_of(proc.stdout)[1:]] == ["ens", "mlp-b", "mlp-a", "live", "reg"]
    proc = cli_inprocess("runs", runs_folder, "--sort", "loss", cwd=runs_folder.parent)
    assert [r[0] for r in rows_of(proc.stdout)[1:3]] == ["ens", "mlp-b"]  # lowest loss first
    proc = cli_inprocess("runs", runs_folder, "--sort", "accuracy", "--reverse", "--dataset", "digits",
                         cwd=runs_folder.parent)
    assert [r[0] for r in rows_of(proc.stdout)[1:]] == ["live", "mlp-a", "mlp-b", "ens"]


def test_runs_default_folder_and_a_single_run(cli_inprocess, runs_folder):
    proc = cli_inprocess("runs", cwd=runs_folder.parent)  # DIR defaults to ./runs
    assert proc.returncode == 0 and len(rows_of(proc.stdout)) == 6
    proc = cli_inprocess("runs", runs_folder / "reg", cwd=runs_folder.parent)  # a run folder lists itself
    assert [r[0] for r in rows_of(proc.stdout)[1:]] == ["reg"]


def test_runs_keeps_listing_when_one_run_is_torn(cli_inprocess, runs_folder):
    (runs_folder / "mlp-a" / "metrics.json").write_text('{"status": "compl')
    proc = cli_inprocess("runs", runs_folder, cwd=runs_folder.parent)
    assert proc.returncode == 0, proc.stderr
    statuses = {r[0]: r[1] for r in rows_of(proc.stdout)[1:]}
    assert statuses["mlp-a"] == "unreadable" and statuses["mlp-b"] == "completed"


@pytest.mark.parametrize("case", ["missing", "file", "sort"])
def test_runs_bad_input_is_one_line_and_exit_2(cli_inprocess, tmp_path, case):
    (tmp_path / "a-file").write_text("x")
    args, needle = {"missing": (["runs", tmp_path / "nope"], "not found"),
                    "file": (["runs", tmp_path / "a-file"], "not a folder"),
                    "sort": (["runs", tmp_path, "--sort", "acuracy"], "'accuracy'")}[case]
    proc = cli_inprocess(*args, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], proc.stderr


def test_runs_empty_folder_says_so(cli_inprocess, tmp_path):
    proc = cli_inprocess("runs", tmp_path, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == ""
    assert "no kerasdl runs in" in proc.stderr


def test_runs_on_a_terminal_is_a_table_of_the_figures_present(cli_inprocess, runs_folder, monkeypatch):
    from kerasdl.cli import render

    out = io.StringIO()
    monkeypatch.setattr(render, "console", Console(file=out, width=160, force_terminal=True, color_system=None))
    proc = cli_inprocess("runs", runs_folder, "--model", "mlp", cwd=runs_folder.parent)
    assert proc.returncode == 0, proc.stderr
    text = out.getvalue()
    assert "┃ name" in text and "95.00%" in text and "0.4653" in text and "3 x mlp" in text
    assert "mean_iou" not in text  # no run has it: the table leaves the column out
    assert "\t" not in text


def test_runs_help_has_examples_and_needs_no_tensorflow(cli_inprocess, tmp_path):
    proc = cli_inprocess("runs", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "Examples:" in proc.stdout and "kerasdl runs" in proc.stdout
    import subprocess

    code = ("import sys; from kerasdl.runs.listing import list_runs; list_runs('.'); "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env=dict(os.environ), check=True).stdout
    assert out.strip() == "False"
