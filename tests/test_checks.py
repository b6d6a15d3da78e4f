"""Bad combinations are refused before any run folder is made, and config files take the flag names (#13).

Most cases run the CLI in-process (``cli_inprocess``): a refusal must leave no ``runs/`` folder behind.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

from kerasdl.config import RunConfig
from kerasdl.errors import KerasdlUsageError

from clihelpers import assert_one_line_error


def refused(cli_inprocess, tmp_path, *args):
    """Run ``kerasdl train ARGS`` in-process; assert a one-line exit-2 error and no run folder."""
    proc = cli_inprocess("train", *args, "--epochs", "1", cwd=tmp_path)
    assert_one_line_error(proc)
    assert not (tmp_path / "runs").exists(), os.listdir(tmp_path / "runs")
    return proc.stderr.strip()


# ---- 1. gradient clipping: one of value / norm ----------------------------------------------------
def test_clip_norm_with_clip_value_is_refused(cli_inprocess, tmp_path):
    message = refused(cli_inprocess, tmp_path, "--model", "mlp", "--dataset", "digits",
                      "--clip-norm", "1.0", "--clip-value", "0.5")
    assert "clip_norm" in message and "clip_value" in message
    with pytest.raises(KerasdlUsageError, match="one of"):
        RunConfig(clip_norm=1.0, clip_value=0.5).validate()


# ---- 2. the model's task and outputs against the dataset ------------------------------------------
@pytest.mark.parametrize("model,dataset,needles", [
    ("cnn", "shapes", ["'cnn'", "classification", "segmentation", "unet"]),
    ("unet", "mnist5k", ["'unet'", "segmentation", "classification"]),
    ("unet", "diabetes", ["'unet'", "segmentation", "regression"]),
])
def test_model_task_must_match_the_dataset_task(cli_inprocess, tmp_path, model, dataset, needles):
    message = refused(cli_inprocess, tmp_path, "--model", model, "--dataset", dataset)
    for needle in needles:
        assert needle in message, message


def test_a_task_that_does_not_fit_the_dataset_is_refused(cli_inprocess, tmp_path):
    message = refused(cli_inprocess, tmp_path, "--model", "mlp", "--dataset", "digits", "--task", "regression")
    assert "regression" in message and "classification" in message, message


def test_segmentation_output_must_match_the_mask_size(cli_inprocess, tmp_path):
    # padding='valid' shrinks U-Net's output (64 -> 48 with one level): the masks are 64x64.
    message = refused(cli_inprocess, tmp_path, "--model", "unet", "--dataset", "shapes", "--model-opt", "depth=1",
                      "--model-opt", "padding=valid", "--model-opt", "base_filters=4")
    assert "48" in message and "64" in message, message


def test_ensemble_refuses_a_task_mismatch_before_its_folder(cli_inprocess, tmp_path):
    refused(cli_inprocess, tmp_path, "--model", "cnn", "--dataset", "shapes", "--ensemble", "2")


# ---- 3. the monitor is one of the run's metrics ----------------------------------------------------
def test_unknown_monitor_is_refused_before_training(cli_inprocess, tmp_path):
    message = refused(cli_inprocess, tmp_path, "--model", "mlp", "--dataset", "digits", "--monitor", "val_acc")
    assert "val_acc" in message and "val_accuracy" in message, message
    message = refused(cli_inprocess, tmp_path, "--model", "mlp", "--dataset", "diabetes", "--monitor", "val_accuracy")
    assert "val_mae" in message or "val_loss" in message, message


def test_metric_names_match_what_keras_logs():
    """The names computed without training are the keys keras's fit logs, for one output and for
    a model with an auxiliary head (keras then prefixes each metric with the output's name)."""
    import keras

    from kerasdl.tasks.checks import metric_names

    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8)(inputs)
    main, aux = keras.layers.Dense(3, name="logits")(hidden), keras.layers.Dense(3, name="aux1")(hidden)
    x, y = np.zeros((8, 4), "float32"), np.zeros((8,), "int32")
    for outputs in ([main], [main, aux]):
        model = keras.Model(inputs, outputs if len(outputs) > 1 else outputs[0])
        metrics = ["accuracy", keras.metrics.MeanIoU(3, sparse_y_pred=False, name="mean_iou")]
        if len(outputs) == 1:
            model.compile("sgd", loss="sparse_categorical_crossentropy", metrics=metrics)
            targets = y
        else:  # as training.py compiles auxiliary heads: the metrics on the first output only
            model.compile("sgd", loss=["sparse_categorical_crossentropy"] * 2, metrics=[metrics, []])
            targets = (y, y)
        history = model.fit(x, targets, validation_data=(x, targets), epochs=1, verbose=0).history
        assert sorted(metric_names(model.output_names, metrics)) == sorted(history)


# ---- 4. config-file keys: field names and flag names ----------------------------------------------
def test_yaml_takes_the_flag_names(tmp_path):
    (tmp_path / "run.yaml").write_text("lr: 0.01\nmin_lr: 0.0001\nmodel_opt: {width: 16}\nbatch-size: 32\n")
    config = RunConfig.from_yaml(str(tmp_path / "run.yaml"))
    assert (config.learning_rate, config.min_learning_rate, config.model_options, config.batch_size) == (
        0.01, 0.0001, {"width": 16}, 32)
    # The command line (field names, as cli/train.py passes them) still wins over the file's flag names.
    assert RunConfig.from_yaml(str(tmp_path / "run.yaml"), {"learning_rate": 0.5}).learning_rate == 0.5


def test_yaml_unknown_or_doubled_keys(tmp_path):
    (tmp_path / "typo.yaml").write_text("learnin_rate: 0.01\n")
    with pytest.raises(KerasdlUsageError, match="learning_rate"):
        RunConfig.from_yaml(str(tmp_path / "typo.yaml"))
    (tmp_path / "both.yaml").write_text("lr: 0.01\nlearning_rate: 0.1\n")
    with pytest.raises(KerasdlUsageError, match="lr.*learning_rate"):
        RunConfig.from_yaml(str(tmp_path / "both.yaml"))


def test_every_train_option_is_a_config_key_and_the_help_lists_them(cli_inprocess, tmp_path):
    from kerasdl.cli.train import train_command
    from kerasdl.config import KEY_ALIASES

    fields = set(RunConfig.__dataclass_fields__)
    cli_only = {"config_file", "resume_dir", "overwrite"}
    for param in train_command.params:
        if param.name not in cli_only:
            assert KEY_ALIASES.get(param.name, param.name) in fields, param.name
    text = " ".join(cli_inprocess("train", "--help", cwd=tmp_path).stdout.split())
    keys = text.split("Config-file keys")[1]
    for name in fields:
        assert re.search(rf"[ (]{name}[,)]", keys) or keys.endswith(f" {name}"), name
    assert "lr (learning_rate)" in text


# ---- 5. --label-column for CSV files ----------------------------------------------------------------
def test_label_column_picks_the_csv_label(cli_inprocess, tmp_path):
    rng = np.random.default_rng(0)
    rows = ["a,b,species"] + [f"{x:.3f},{-x:.3f},{'cat' if x > 0 else 'dog'}" for x in rng.normal(size=60)]
    (tmp_path / "pets.csv").write_text("\n".join(rows) + "\n")
    # Without the flag: the message names it.
    assert_one_line_error(cli_inprocess("train", "--model", "mlp", "--dataset", "pets.csv", cwd=tmp_path),
                          "--label-column")
    proc = cli_inprocess("train", "--model", "mlp", "--dataset", "pets.csv", "--label-column", "species",
                         "--epochs", "1", "--name", "pets", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    saved = yaml.safe_load((tmp_path / "runs" / "pets" / "config.yaml").read_text())
    assert saved["label_column"] == "species"
    info = json.loads((tmp_path / "runs" / "pets" / "dataset.json").read_text())
    assert info["label_column"] == "species" and info["class_names"] == ["cat", "dog"]
    assert_one_line_error(cli_inprocess("train", "--model", "mlp", "--dataset", "pets.csv", "--label-column",
                                        "specie", "--epochs", "1", cwd=tmp_path), "specie", "species")


# ---- 6. replay a run from its config.yaml --------------------------------------------------------------
def test_replay_a_run_from_its_config(cli_inprocess, tmp_path):
    first = cli_inprocess("train", "--model", "mlp", "--dataset", "digits", "--epochs", "1", "--name", "base",
                          cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    stored = os.path.join("runs", "base", "config.yaml")
    replay = cli_inprocess("train", "--config", stored, cwd=tmp_path)
    assert replay.returncode == 0, replay.stderr
    assert "runs/base-replay" in replay.stdout
    again = json.loads((tmp_path / "runs" / "base-replay" / "metrics.json").read_text())
    assert again["status"] == "completed"
    original = json.loads((tmp_path / "runs" / "base" / "metrics.json").read_text())
    assert again["test"]["accuracy"] == original["test"]["accuracy"]  # same config, same seed: same run
    saved = yaml.safe_load((tmp_path / "runs" / "base-replay" / "config.yaml").read_text())
    assert saved["name"] == "base-replay"
    # A second replay gets the next free name; an explicit --name wins.
    assert cli_inprocess("train", "--config", stored, "--epochs", "1", "--patience", "0", "--no-calibrate",
                         cwd=tmp_path).returncode == 0
    assert (tmp_path / "runs" / "base-replay2" / "metrics.json").exists()
    assert_one_line_error(cli_inprocess("train", "--config", stored, "--name", "base", cwd=tmp_path),
                          "already exists")


# ---- 7. value errors before TensorFlow ------------------------------------------------------------------
@pytest.mark.parametrize("args", [["--optimizer", "nope"], ["--clip-norm", "1", "--clip-value", "1"],
                                  ["--lr", "-1"]])
def test_value_errors_come_before_tensorflow(args, tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from click.testing import CliRunner
        from kerasdl.cli.main import cli
        result = CliRunner().invoke(cli, ["train", *{args!r}])
        assert result.exit_code == 2, result.output
        assert "tensorflow" not in sys.modules, "TensorFlow was imported before the value check"
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
