"""The training loop as a user feels it: Ctrl-C, run names, the resume line and the progress bar."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from kerasdl.config import RunConfig
from kerasdl.errors import KerasdlUsageError

TINY = dict(model="mlp", dataset="digits", epochs=3, patience=0, calibrate=False, augment="none",
            model_options={"width": 16, "depth": 1})


# ---- Ctrl-C ------------------------------------------------------------------------------------
def test_sigint_mid_training_exits_130_marks_interrupted_and_keeps_backup(kerasdl_cmd, data_dir, tmp_path):
    env = dict(os.environ, KERASDL_DATA_DIR=data_dir, KERASDL_OFFLINE="1", PYTHONUNBUFFERED="1")
    args = kerasdl_cmd + ["train", "--model", "mlp", "--dataset", "digits", "--epochs", "500", "--patience", "0",
                          "--augment", "none", "--name", "r", "--output-dir", str(tmp_path / "runs")]
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    try:
        for line in proc.stdout:  # plain progress lines (not a terminal): one per epoch
            if line.startswith("epoch 2/500"):  # epoch 1's backup is on disk (it is written before)
                break
            assert time.time() < deadline, "training never finished two epochs"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    run = tmp_path / "runs" / "r"
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "aborted" not in err.lower(), err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [f"interrupted; resume with: kerasdl train --resume {run}"], err
    assert err.startswith("\n")  # closes the terminal's ^C echo / the progress line first
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "interrupted", metrics
    assert (run / "backup").is_dir() and any((run / "backup").iterdir())


def _interrupt_after(epoch_to_stop: int):
    """A Progress.on_epoch_end that raises KeyboardInterrupt (as Ctrl-C would) after an epoch."""
    from kerasdl.engine import callbacks as cb

    original = cb.Progress.on_epoch_end

    def on_epoch_end(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch + 1 == epoch_to_stop:
            raise KeyboardInterrupt

    return on_epoch_end


def test_interrupt_then_resume_says_where_it_continues(tmp_path, data_dir, monkeypatch):
    from kerasdl.engine import callbacks as cb
    from kerasdl.training import resume_config, train

    config = RunConfig(**TINY, name="r", output_dir=str(tmp_path))
    with monkeypatch.context() as m:
        m.setattr(cb.Progress, "on_epoch_end", _interrupt_after(2))
        with pytest.raises(KeyboardInterrupt):
            train(config, rich_progress=False, echo=lambda *_: None)
    run = tmp_path / "r"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and str(run) in metrics["resume_with"]

    lines = []
    result = train(resume_config(str(run)), resume=True, rich_progress=False, echo=lines.append)
    # Ctrl-C came after epoch 2's progress line but before its backup: epoch 2 is run again.
    assert "resuming from epoch 2/3 (1 epoch done)" in lines, lines
    assert result.metrics["status"] == "completed" and result.metrics["epochs_run"] == 3


# ---- run names -----------------------------------------------------------------------------------
def test_default_run_names_started_in_the_same_second_do_not_collide(tmp_path):
    from kerasdl.engine.fit import _prepare_run_dir

    base = RunConfig(model="mlp", dataset="digits", output_dir=str(tmp_path))
    names = {base.resolved().name for _ in range(50)}  # well inside one second
    assert len(names) == 50
    first, second = base.resolved(), base.resolved()
    _prepare_run_dir(first.run_dir, resume=False, overwrite=False)
    _prepare_run_dir(second.run_dir, resume=False, overwrite=False)
    assert os.path.isdir(first.run_dir) and os.path.isdir(second.run_dir)
    assert first.name.startswith("mlp-digits-")


def test_existing_run_dir_is_claimed_exclusively(tmp_path):
    """Two processes that race for one name: exactly one gets it (mkdir is the claim)."""
    from kerasdl.engine.fit import _prepare_run_dir

    run = str(tmp_path / "same")
    _prepare_run_dir(run, resume=False, overwrite=False)
    with pytest.raises(KerasdlUsageError, match="already exists"):
        _prepare_run_dir(run, resume=False, overwrite=False)


def _write_metrics(run, **record):
    os.makedirs(run, exist_ok=True)
    with open(os.path.join(run, "metrics.json"), "w") as f:
        json.dump(record, f)


def test_a_live_run_is_never_overwritten_nor_is_overwrite_advised(tmp_path):
    from kerasdl.engine.fit import _prepare_run_dir

    run = str(tmp_path / "live")
    _write_metrics(run, status="running", pid=os.getpid(), host=os.uname().nodename)  # this very process: alive
    with pytest.raises(KerasdlUsageError) as refused:
        _prepare_run_dir(run, resume=False, overwrite=False)
    assert "--overwrite" not in str(refused.value) and "running" in str(refused.value)
    with pytest.raises(KerasdlUsageError, match="running"):
        _prepare_run_dir(run, resume=False, overwrite=True)
    assert os.path.exists(os.path.join(run, "metrics.json"))  # untouched
    with pytest.raises(KerasdlUsageError, match="running"):
        _prepare_run_dir(run, resume=True, overwrite=False)


def test_a_dead_running_run_suggests_resume_not_overwrite(tmp_path):
    from kerasdl.engine.fit import _prepare_run_dir

    run = str(tmp_path / "killed")
    dead = subprocess.Popen(["true"])
    dead.wait()
    _write_metrics(run, status="running", pid=dead.pid, host=os.uname().nodename)
    with pytest.raises(KerasdlUsageError) as refused:
        _prepare_run_dir(run, resume=False, overwrite=False)
    message = str(refused.value)
    assert "already exists" in message and f"--resume {run}" in message and "--overwrite" not in message
    _prepare_run_dir(run, resume=False, overwrite=True)  # the user asked explicitly: nobody is using it
    assert not os.path.exists(os.path.join(run, "metrics.json"))


# ---- the progress bar ------------------------------------------------------------------------------
class _Bar:
    """Records what Progress shows (the rich Progress interface it uses)."""

    def __init__(self):
        self.tasks, self.updates, self.printed = {}, [], []
        self.console = self

    def print(self, line, **kw):
        self.printed.append(line)

    def add_task(self, description, total, **fields):
        self.tasks[len(self.tasks)] = total
        return len(self.tasks) - 1

    def update(self, task, completed, **fields):
        self.updates.append((task, completed))

    def remove_task(self, task):
        pass


def test_progress_counts_steps_with_steps_per_execution(monkeypatch):
    """Keras calls on_train_batch_end once per execution with the execution's last step index,
    which runs past the epoch's end on the last (partial) execution: 55 steps in runs of 32 gave
    '64/55'."""
    import io

    from kerasdl.engine import callbacks as cb

    progress = cb.Progress(3, 55, rich_bar=True, stream=io.StringIO())
    progress._progress = bar = _Bar()
    progress.on_epoch_begin(0)
    for end_step in (31, 63):  # what keras passes with steps_per_execution=32
        progress.on_train_batch_end(end_step, {"loss": 1.0})
    progress.on_epoch_end(0, {"loss": 1.0})
    shown = [done for _, done in bar.updates]
    assert shown == [32, 55] and bar.tasks[0] == 55
    assert bar.printed[0].startswith("epoch 1/3")


def test_progress_bar_has_an_eta_column(monkeypatch):
    import io

    from rich.progress import TimeRemainingColumn

    from kerasdl.engine import callbacks as cb

    progress = cb.Progress(3, 55, rich_bar=True, stream=io.StringIO())
    progress.on_train_begin()
    try:
        assert any(isinstance(c, TimeRemainingColumn) for c in progress._progress.columns)
    finally:
        progress.on_train_end()


# ---- speed: the first epoch and the work between epochs -------------------------------------------
def test_train_step_is_traced_once(tmp_path, data_dir, monkeypatch):
    """The metrics' and optimizer's variables exist before fit, so tf.function does not trace the
    (multi-step) train function a second time after the first trace created them."""
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    from kerasdl.training import train

    traces = []
    original = TensorFlowTrainer.train_step

    def train_step(self, data):
        traces.append(1)  # Python runs only while tracing
        return original(self, data)

    monkeypatch.setattr(TensorFlowTrainer, "train_step", train_step)
    result = train(RunConfig(**{**TINY, "epochs": 2}, name="t", output_dir=str(tmp_path)), rich_progress=False,
                   echo=lambda *_: None, progress=False)
    assert result.metrics["status"] == "completed"
    assert len(traces) == 1


def test_keras_weight_saving_skipsets_are_cached():
    import kerasdl.engine.callbacks  # noqa: F401  (installs the cache)
    from keras.src.saving import saving_lib

    assert saving_lib.get_attr_skipset("Layer") is saving_lib.get_attr_skipset("Layer")
    assert "trainable_weights" in saving_lib.get_attr_skipset("Layer")  # the same sets as keras's own


class _StopAfter(__import__("keras").callbacks.Callback):
    """Ctrl-C at the end of an epoch, after the backup (it goes last)."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt


def test_backup_links_the_best_checkpoint_of_the_same_epoch_and_restores_exactly(tmp_path):
    import keras
    import numpy as np

    from kerasdl.engine import callbacks as cb

    def model():
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
        m.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return m

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0)
    trained = model()
    best = cb.BestCheckpoint(str(tmp_path / "best.weights.h5"), str(tmp_path / "history.csv"), "loss")
    backup = cb.RunBackup(str(tmp_path / "backup"), best=best)
    with pytest.raises(KeyboardInterrupt):
        trained.fit(x, y, epochs=5, batch_size=16, verbose=0, callbacks=[best, backup, _StopAfter(2)])
    latest = tmp_path / "backup" / "latest.weights.h5"
    assert best.saved_epoch == 1  # the loss fell in epoch 2: one serialisation, two names
    assert os.path.samefile(latest, tmp_path / "best.weights.h5") or latest.read_bytes() == (
        tmp_path / "best.weights.h5").read_bytes()
    restored = model()
    restored.optimizer.build(restored.trainable_variables)
    restored.load_weights(str(latest))
    for a, b in zip(trained.variables + trained.optimizer.variables,
                    restored.variables + restored.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(restored.optimizer.iterations) == 8  # 2 epochs x 4 batches: the optimizer state too
