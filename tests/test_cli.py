"""The CLI end to end, as a user runs it: real subprocesses of the installed ``kerasdl``."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from clihelpers import assert_one_line_error


# ---- help and version ------------------------------------------------------------------------
def test_root_help_through_the_installed_entry_point(run_cli, workdir):
    proc = run_cli("--help", cwd=workdir, check=0)
    assert "Usage: kerasdl" in proc.stdout and "Examples:" in proc.stdout
    for command in ("train", "evaluate", "calibrate", "predict", "export", "models", "datasets"):
        assert command in proc.stdout


@pytest.mark.parametrize("command", ["train", "evaluate", "calibrate", "predict", "export", "models", "datasets",
                                     "augment-preview"])
def test_help_everywhere_has_examples(cli_inprocess, workdir, command):
    proc = cli_inprocess(command, "--help", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert f"Usage: kerasdl {command}" in proc.stdout and "Examples:" in proc.stdout


def test_version(run_cli, workdir):
    import kerasdl

    assert run_cli("--version", cwd=workdir, check=0).stdout.strip() == f"kerasdl, version {kerasdl.__version__}"


# ---- a real training run and what it leaves --------------------------------------------------
def test_train_writes_complete_run_dir(trained_run):
    run, proc = trained_run
    for name in ("config.yaml", "dataset.json", "history.csv", "metrics.json", "model.keras",
                 "checkpoints/best.weights.h5", "plots/learning_curves.png", "plots/confusion_matrix_test.png"):
        assert (run / name).is_file(), name
    assert any((run / "logs").rglob("events.out.tfevents.*")), "no TensorBoard events"
    assert not (run / "backup").exists(), "BackupAndRestore state must be gone after a finished run"
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(rows[0])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["test"]["n"] == 1000
    assert metrics["test"]["accuracy"] > 0.88  # three epochs of LeNet-5 on 3,500 real digits
    assert "epoch 3/3" in proc.stdout  # plain progress lines when not a terminal
    import yaml

    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"] == "lenet5" and config["dataset"] == "mnist5k" and config["epochs"] == 3


def test_evaluate_reports_and_records(trained_run, run_cli, workdir):
    run, _ = trained_run
    proc = run_cli("evaluate", run, cwd=workdir, check=0)
    for word in ("accuracy", "nll", "ece (15 bins)", "top5_accuracy", "per-class accuracy"):
        assert word in proc.stdout, word
    metrics = json.loads((run / "metrics.json").read_text())
    ev = metrics["evaluation"]["test"]
    assert ev["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-9)  # same numbers as train
    assert np.array(ev["confusion_matrix"]).sum() == 1000
    assert (run / "plots" / "confusion_matrix_test.png").stat().st_size > 5000


def test_export_reloads_in_fresh_tf_process_and_matches_predict(trained_run, run_cli, workdir, tmp_path):
    """The SavedModel, loaded by plain TensorFlow in a fresh process, gives the run's calibrated
    probabilities (as ``kerasdl predict`` computes them), the raw ones, and the LAC sets (#5)."""
    run, _ = trained_run
    root = tmp_path / "exports"
    for expected in ("1", "2"):  # versions count up
        proc = run_cli("export", run, "--export-dir", root, cwd=workdir, check=0)
        assert proc.stdout.strip().endswith(os.path.join(str(root), "lenet", expected))  # the run's name
    assert sorted(os.listdir(root / "lenet")) == ["1", "2"]  # no temporaries left behind
    cal = json.loads((run / "calibration.json").read_text())
    meta = json.loads((root / "lenet" / "2" / "kerasdl.json").read_text())
    assert meta["calibration"]["temperature"] == pytest.approx(cal["temperature"])
    assert meta["calibration"]["test_ece_after"] == pytest.approx(cal["test_after"]["ece"])

    from kerasdl.data import load_arrays

    x, y, _ = load_arrays("mnist5k", "test")
    np.savez(tmp_path / "batch.npz", x=x[:64])

    def predicted(*extra):
        out = tmp_path / "pred.csv"
        run_cli("predict", run, tmp_path / "batch.npz", "--output", out, *extra, cwd=workdir, check=0)
        with open(out) as f:
            rows = list(csv.reader(f))
        return rows[0], np.array([[float(v) for v in r[2:12]] for r in rows[1:]]), [r[12:] for r in rows[1:]]

    header, probs_cli, sets_cli = predicted("--sets", "lac")
    assert header[-1] == "prediction_set"
    _, raw_cli, _ = predicted("--uncalibrated")
    assert np.array_equal(probs_cli.argmax(1), raw_cli.argmax(1))  # temperature never moves the argmax
    assert np.max(np.abs(probs_cli - raw_cli)) > 1e-4  # but it did change the probabilities

    # A fresh interpreter that never imports kerasdl: plain TensorFlow only.
    script = textwrap.dedent(f"""
        import sys, numpy as np, tensorflow as tf
        m = tf.saved_model.load({str(root / "lenet" / "2")!r})
        x = np.load({str(tmp_path / "batch.npz")!r})["x"]
        out = m.signatures["serving_default"](inputs=tf.constant(x))
        np.savez({str(tmp_path / "sm.npz")!r}, **{{k: v.numpy() for k, v in out.items()}})
        assert "kerasdl" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, capture_output=True)
    sm = np.load(tmp_path / "sm.npz")
    probs_sm = sm["probabilities"]
    assert probs_sm.shape == (64, 10)
    assert np.max(np.abs(probs_sm - probs_cli)) <= 1e-5
    assert np.max(np.abs(sm["uncalibrated_probabilities"] - raw_cli)) <= 1e-5
    assert (probs_sm.argmax(1) == y[:64]).mean() > 0.8
    sets_sm = ["{" + ",".join(str(k) for k in range(10) if row[k]) + "}" for row in sm["prediction_set"]]
    assert sets_sm == [s[0] for s in sets_cli]

    # predict also takes the export itself (latest version) and image files.
    from PIL import Image

    Image.fromarray(x[0, :, :, 0]).save(tmp_path / "digit.png")
    proc = run_cli("predict", root / "lenet", tmp_path / "digit.png", "--top", "2", cwd=workdir, check=0)
    assert proc.stdout.split("\t")[0].endswith("digit.png") and proc.stdout.count(" 0.") + proc.stdout.count(" 1.") == 2


# ---- resume after SIGKILL -----------------------------------------------------------------------
def test_sigkill_mid_epoch_then_resume_has_no_gaps_or_duplicates(run_cli, kerasdl_cmd, data_dir, tmp_path):
    env = dict(os.environ, KERASDL_DATA_DIR=data_dir, KERASDL_OFFLINE="1")
    args = kerasdl_cmd + ["train", "--epochs", "5", "--patience", "0", "--name", "r"]
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    history = tmp_path / "runs" / "r" / "history.csv"
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if history.exists() and len(history.read_text().strip().splitlines()) >= 3:  # 2 epochs done
                break
            time.sleep(0.05)
        else:
            pytest.fail("training never finished two epochs")
        time.sleep(0.4)  # well inside epoch 3
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert (tmp_path / "runs" / "r" / "backup").exists()

    # Without --resume the run name is taken: refuse, and leave the run alone.
    again = run_cli("train", "--epochs", "5", "--name", "r", cwd=tmp_path)
    assert_one_line_error(again, "already exists", "--resume")

    done = run_cli("train", "--resume", tmp_path / "runs" / "r", cwd=tmp_path, check=0)
    with open(history) as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f)]
    assert epochs == [0, 1, 2, 3, 4], epochs
    metrics = json.loads((tmp_path / "runs" / "r" / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 5
    assert "epoch 1/5" not in done.stdout and "epoch 5/5" in done.stdout  # resumed, not restarted
    assert_one_line_error(run_cli("train", "--resume", tmp_path / "runs" / "r", cwd=tmp_path), "already finished")


# ---- NaN loss ---------------------------------------------------------------------------------
def test_nan_loss_stops_and_keeps_best_checkpoint(run_cli, tmp_path):
    # Epoch 1 trains normally; the step schedule then multiplies the rate by 1e12: NaN in epoch 2.
    proc = run_cli("train", "--model", "mlp", "--dataset", "digits", "--epochs", "4", "--optimizer", "sgd",
                   "--lr", "0.05", "--schedule", "step", "--lr-decay-epochs", "1", "--lr-decay-factor", "1e12",
                   "--name", "nan", cwd=tmp_path, check=0)
    assert "loss became NaN in epoch 2" in proc.stderr and "best checkpoint from epoch 1" in proc.stderr
    metrics = json.loads((tmp_path / "runs" / "nan" / "metrics.json").read_text())
    assert metrics["stop_reason"] == "nan_loss" and metrics["best_epoch"] == 1
    assert metrics["test"]["accuracy"] > 0.5  # the kept weights are the sane epoch-1 weights


# ---- repeatability ------------------------------------------------------------------------------
def test_same_seed_same_metrics(run_cli, tmp_path):
    results = []
    for name in ("a", "b"):
        run_cli("train", "--model", "mlp", "--dataset", "digits", "--epochs", "2", "--seed", "7",
                "--name", name, cwd=tmp_path, check=0)
        results.append(json.loads((tmp_path / "runs" / name / "metrics.json").read_text())["test"])
    assert results[0]["nll"] == results[1]["nll"] and results[0]["accuracy"] == results[1]["accuracy"]


def test_config_file_with_command_line_override(run_cli, tmp_path):
    (tmp_path / "run.yaml").write_text("model: mlp\ndataset: iris\nepochs: 30\nmodel_options: {width: 16}\n")
    run_cli("train", "--config", "run.yaml", "--epochs", "3", "--name", "cfg", cwd=tmp_path, check=0)
    import yaml

    saved = yaml.safe_load((tmp_path / "runs" / "cfg" / "config.yaml").read_text())
    assert (saved["model"], saved["dataset"], saved["epochs"], saved["model_options"]) == ("mlp", "iris", 3, {"width": 16})
    assert saved["name"] == "cfg" and saved["optimizer"] == "adam"  # defaults resolved and saved


def test_regression_run_reports_r2(run_cli, tmp_path):
    run_cli("train", "--model", "mlp", "--dataset", "diabetes", "--epochs", "40", "--lr", "0.01",
            "--name", "reg", cwd=tmp_path, check=0)
    test = json.loads((tmp_path / "runs" / "reg" / "metrics.json").read_text())["test"]
    assert {"mse", "mae", "r2"} <= set(test) and test["r2"] > 0.2
    # predict from a CSV with the training columns (and an extra id column, ignored).
    from kerasdl.data import load_arrays

    x, y, info = load_arrays("diabetes", "test")
    header = ",".join(["id", *info.feature_names])
    rows = "\n".join(",".join([str(i), *map(str, r)]) for i, r in enumerate(x[:5]))
    (tmp_path / "patients.csv").write_text(header + "\n" + rows + "\n")
    out = run_cli("predict", tmp_path / "runs" / "reg", tmp_path / "patients.csv", cwd=tmp_path, check=0).stdout
    values = [float(line.split("\t")[1]) for line in out.strip().splitlines()]
    assert len(values) == 5 and all(25 < v < 346 for v in values)  # the target's range in the data


# ---- bad input: exit 2, one line, nothing damaged --------------------------------------------------
BAD = [
    (["train", "--model", "lenet", "--epochs", "1"], ["unknown model 'lenet'", "lenet5"]),
    (["train", "--dataset", "mnist5", "--epochs", "1"], ["unknown dataset 'mnist5'", "mnist5k"]),
    (["train", "--model", "lenet5", "--dataset", "iris", "--epochs", "1"], ["lenet5", "(4,)"]),
    (["train", "--epochs", "0"], ["--epochs", "0"]),
    (["train", "--epochs", "-3"], ["--epochs"]),
    (["train", "--batch-size", "0"], ["--batch-size"]),
    (["train", "--optimizer", "adamm"], ["unknown optimizer 'adamm'", "adam"]),
    (["train", "--schedule", "cosin"], ["cosine"]),
    (["train", "--dataset", "mnist", "--no-download"], ["mnist", "mnist5k"]),
    (["train", "--config", "missing.yaml"], ["missing.yaml"]),
    (["evaluate", "runs/nope"], ["run directory not found"]),
    (["export", "runs/nope"], ["run directory not found"]),
    (["predict", "runs/nope", "x.png"], ["runs/nope"]),
    (["trian"], ["No such command", "train"]),
]


@pytest.mark.parametrize("args,needles", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2(cli_inprocess, tmp_path, args, needles):
    assert_one_line_error(cli_inprocess(*args, cwd=tmp_path), *needles)


@pytest.mark.parametrize("args,needles", [BAD[0], BAD[-1]], ids=["bad model", "bad command"])
def test_bad_input_through_the_installed_entry_point(run_cli, tmp_path, args, needles):
    assert_one_line_error(run_cli(*args, cwd=tmp_path), *needles)


def test_bad_files_and_run_dirs(cli_inprocess, trained_run, tmp_path):
    run_cli = cli_inprocess
    # An image folder with no class sub-folders, and one with an unreadable image.
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_cli("train", "--dataset", tmp_path / "empty", cwd=tmp_path), "empty")
    bad = tmp_path / "imgs" / "cat"
    bad.mkdir(parents=True)
    (bad / "broken.png").write_bytes(b"not a png")
    (tmp_path / "imgs" / "dog").mkdir()
    assert_one_line_error(run_cli("train", "--dataset", tmp_path / "imgs", cwd=tmp_path))
    # CSVs: a NaN cell, and no label column.
    (tmp_path / "nan.csv").write_text("a,b,label\n1,2,0\n3,,1\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(20)))
    assert_one_line_error(run_cli("train", "--model", "mlp", "--dataset", tmp_path / "nan.csv", cwd=tmp_path))
    (tmp_path / "nolabel.csv").write_text("a,b\n1,2\n3,4\n")
    assert_one_line_error(run_cli("train", "--model", "mlp", "--dataset", tmp_path / "nolabel.csv", cwd=tmp_path))
    # A corrupt checkpoint and a corrupt config: exit 2, and the files are left as they were.
    import shutil

    broken = tmp_path / "broken-run"
    shutil.copytree(trained_run[0], broken)
    (broken / "checkpoints" / "best.weights.h5").write_bytes(b"garbage")
    assert_one_line_error(run_cli("evaluate", broken, cwd=tmp_path), "corrupt checkpoint")
    assert (broken / "checkpoints" / "best.weights.h5").read_bytes() == b"garbage"
    (broken / "config.yaml").write_text("model: [unclosed\n")
    assert_one_line_error(run_cli("export", broken, cwd=tmp_path), "config")
    assert not (tmp_path / "saved_models").exists()


def test_existing_run_is_not_damaged_by_a_refused_or_failed_overwrite(cli_inprocess, trained_run, tmp_path):
    run_cli = cli_inprocess
    import shutil

    run = tmp_path / "runs" / "keep"
    shutil.copytree(trained_run[0], run)
    before = {p.name: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    assert_one_line_error(run_cli("train", "--epochs", "1", "--name", "keep", cwd=tmp_path), "already exists")
    # --overwrite with a bad model fails validation *before* the old run is touched.
    assert_one_line_error(run_cli("train", "--model", "nope", "--name", "keep", "--overwrite", cwd=tmp_path))
    assert {p.name: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == before


def test_models_and_datasets_listings(run_cli, tmp_path):
    proc = run_cli("models", "--family", "lenet", cwd=tmp_path, check=0)
    # Not a terminal: tab-separated lines, header first, one line per model.
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split("\t")[:7] == ["name", "family", "task", "default input", "classes", "trainable", "total"]
    assert ["lenet5", "lenet", "classification", "28x28x1", "10", "61,706", "61,706"] in [l.split("\t")[:7] for l in lines]
    assert "resnet20" in run_cli("models", "--no-params", cwd=tmp_path, check=0).stdout
    proc = run_cli("datasets", cwd=tmp_path, check=0)
    for name in ("mnist5k", "digits", "iris", "diabetes", "spirals", "shapes"):
        assert name in proc.stdout
    assert "3500/500/1000" in proc.stdout
