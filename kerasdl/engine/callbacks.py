"""Callbacks kerasdl adds around ``model.fit``.

They follow the keras callback idiom: reset state in ``on_train_begin``, act in
``on_epoch_end`` / ``on_train_batch_end``, publish values into ``logs``. All of them are
resume-aware: the first ``on_epoch_begin`` tells them the epoch ``fit`` starts from (0, or where
``BackupAndRestore`` restored a run), and they continue from the saved ``history.csv`` instead of
starting over. Order matters and training.py keeps it: these callbacks come *before*
BackupAndRestore, so an epoch's history row is written before its backup. A kill between the two
makes the resumed run redo that epoch and drop its row first: no gaps, no duplicates.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from typing import Any

import keras
import numpy as np


def current_learning_rate(model: keras.Model) -> float:
    """The optimizer's learning rate now (a schedule is evaluated at the current step)."""
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def read_history(path: str) -> list[dict]:
    """Rows of ``history.csv`` as floats (``epoch`` is 0-based, as in keras)."""
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: float(v) if v != "" else float("nan") for k, v in row.items()} for row in csv.DictReader(f)]


def write_history(path: str, rows: list[dict]) -> None:
    """Rewrite the whole CSV atomically (it is small; a kill never leaves a torn file)."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(row.get(k, "")) for k in keys})
    os.replace(tmp, path)


def _fmt(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return int(v)
    return v


def cache_keras_saving_skipsets() -> None:
    """Make Keras's weight saving and loading look up its attribute skip-sets once per type.

    ``keras.src.saving.saving_lib.get_attr_skipset`` is meant to cache, per object type, the
    attribute names of a fresh Layer / Metric / Optimizer ... that the weights walk skips, but
    Keras 3.15 reads the cache under ``saving_attr_skiplist_<type>`` and writes it under
    ``saving_attr_skipset_<type>``: every save built those reference objects again, about 200 times
    for LeNet-5, which was most of a ``save_weights`` call (the best checkpoint and the backup, every
    epoch). The sets depend only on the type, so a per-type cache returns exactly what Keras
    computes. Idempotent; does nothing on a Keras without that function.
    """
    try:
        from keras.src.saving import saving_lib
    except ImportError:  # pragma: no cover - another keras layout
        return
    original = getattr(saving_lib, "get_attr_skipset", None)
    if original is None or getattr(original, "kerasdl_cached", False):
        return
    cache: dict[str, set] = {}

    def get_attr_skipset(obj_type):
        if obj_type not in cache:
            cache[obj_type] = original(obj_type)
        return cache[obj_type]

    get_attr_skipset.kerasdl_cached = True
    saving_lib.get_attr_skipset = get_attr_skipset


cache_keras_saving_skipsets()


def save_weights_atomically(model: keras.Model, path: str) -> None:
    """``model.save_weights(path)`` through a temporary file and a rename: a kill never leaves a torn file."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path.replace(".weights.h5", f".tmp-{os.getpid()}.weights.h5")
    model.save_weights(tmp, overwrite=True)
    os.replace(tmp, path)


def link_atomically(source: str, path: str) -> None:
    """Put the file ``source`` at ``path`` too (a hard link, a copy where links are not possible),
    through a temporary name and a rename. Files here are only ever replaced by a rename, never
    written in place, so the two names never see each other's later changes."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    if os.path.lexists(tmp):
        os.remove(tmp)
    try:
        os.link(source, tmp)
    except OSError:
        import shutil

        shutil.copyfile(source, tmp)
    os.replace(tmp, path)


class ResumeAware(keras.callbacks.Callback):
    """Calls ``resume_from(epoch)`` once, at the first epoch that ``fit`` runs."""

    def on_train_begin(self, logs=None):
        self._started = False

    def on_epoch_begin(self, epoch, logs=None):
        if not self._started:
            self._started = True
            self.resume_from(epoch)

    def resume_from(self, epoch: int) -> None:
        raise NotImplementedError


class HistoryLog(ResumeAware):
    """Keeps ``history.csv`` with one row per finished epoch, plus the learning rate and time.

    On resume it drops rows of epochs that BackupAndRestore did not keep (an epoch killed after
    this callback wrote its row but before the backup was saved is re-run, not duplicated).
    """

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.rows: list[dict] = []

    def resume_from(self, epoch):
        self.rows = [r for r in read_history(self.path) if r["epoch"] < epoch]
        write_history(self.path, self.rows)

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = current_learning_rate(self.model)
        row = {"epoch": epoch, **{k: float(v) for k, v in logs.items()}}
        row["epoch_time_s"] = time.perf_counter() - self._t0
        self.rows.append(row)
        write_history(self.path, self.rows)


class NanGuard(keras.callbacks.Callback):
    """Stops training the moment the loss is NaN or infinite, and says where.

    Unlike ``keras.callbacks.TerminateOnNaN`` it records the epoch and batch, so the run can tell
    the user why it stopped; the best checkpoint (saved by ModelCheckpoint before the blow-up)
    is what the run keeps.
    """

    def on_train_begin(self, logs=None):
        self.stopped_at: tuple[int, int] | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        # "loss", and a model's other losses (a GAN logs d_loss and g_loss, no "loss").
        for key, value in (logs or {}).items():
            if (key == "loss" or key.endswith("_loss")) and not math.isfinite(float(value)):
                self.stopped_at = (self._epoch, batch)
                self.model.stop_training = True
                return


def monitor_mode(monitor: str) -> str:
    """'max' for accuracy-like monitors, 'min' for losses and errors."""
    return "max" if "acc" in monitor or monitor.endswith("auc") or "r2" in monitor else "min"


# The monitor that keeps the last epoch (with mode "max"): its value is the epoch index, as in
# history.csv (a task whose losses do not measure quality, e.g. a GAN, monitors it).
LAST_EPOCH = "epoch"


def monitored(monitor: str, epoch: int, logs) -> float | None:
    """The value of ``monitor`` at the end of ``epoch`` (``LAST_EPOCH``: the epoch itself)."""
    if monitor == LAST_EPOCH:  # an epoch whose losses blew up is never the one kept
        bad = any((k == "loss" or k.endswith("_loss")) and not math.isfinite(float(v)) for k, v in (logs or {}).items())
        return None if bad else float(epoch)
    return (logs or {}).get(monitor)


def _better(value: float, best: float | None, mode: str) -> bool:
    if not math.isfinite(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


class BestCheckpoint(ResumeAware):
    """Saves the weights of the best epoch so far, atomically (tmp file, then rename).

    ``keras.callbacks.ModelCheckpoint`` writes in place, so a kill during a save can leave a torn
    file; here the previous best survives until the new one is complete. On resume the best value
    is recovered from ``history.csv``. A non-finite monitor value never counts as best.
    """

    def __init__(self, path: str, history_path: str, monitor: str = "val_loss", mode: str | None = None):
        super().__init__()
        self.path, self.history_path, self.monitor = path, history_path, monitor
        self.mode = mode or monitor_mode(monitor)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.best, self.best_epoch = None, None
        self.saved_epoch: int | None = None  # the epoch whose end state best.weights.h5 holds

    def resume_from(self, epoch):
        for row in read_history(self.history_path):
            if row["epoch"] < epoch and _better(row.get(self.monitor, math.nan), self.best, self.mode):
                self.best, self.best_epoch = row[self.monitor], int(row["epoch"])

    def on_epoch_end(self, epoch, logs=None):
        value = monitored(self.monitor, epoch, logs)
        if value is None or not _better(float(value), self.best, self.mode):
            return
        self.best, self.best_epoch = float(value), epoch
        save_weights_atomically(self.model, self.path)
        self.saved_epoch = epoch


class ResumableEarlyStopping(ResumeAware):
    """Early stopping on ``monitor`` with ``patience`` epochs, continuing its count on resume.

    The weights are not restored here: the run reloads the best checkpoint when fit returns.
    """

    def __init__(self, history_path: str, monitor: str = "val_loss", patience: int = 5, mode: str | None = None):
        super().__init__()
        self.history_path, self.monitor, self.patience = history_path, monitor, patience
        self.mode = mode or monitor_mode(monitor)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.best, self.wait, self.stopped_epoch = None, 0, None

    def resume_from(self, epoch):
        for row in read_history(self.history_path):  # replay the interrupted run's decisions
            if row["epoch"] < epoch:
                self._update(row.get(self.monitor, math.nan))

    def _update(self, value: float) -> None:
        if _better(value, self.best, self.mode):
            self.best, self.wait = value, 0
        else:
            self.wait += 1

    def on_epoch_end(self, epoch, logs=None):
        value = monitored(self.monitor, epoch, logs)
        if value is None:
            return
        self._update(float(value))
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True


class RunBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose saves are atomic and that multi-worker runs can share.

    Keras writes ``latest.weights.h5`` in place, so a kill during the write leaves a torn file;
    here the weights and the epoch record each go to a temporary file first and are renamed into
    place (weights first: a kill between the two renames re-runs one epoch, it never skips one).

    ``writer=False`` is a non-chief worker of a multi-worker run: it restores from the chief's
    backup (all workers must resume from the same epoch, so there is one backup, like Keras's own
    multi-worker rule, which needs the run directory on storage every worker can read) and
    never writes or deletes it.
    """

    def __init__(self, backup_dir: str, *, writer: bool = True, best: BestCheckpoint | None = None):
        super().__init__(backup_dir)
        self.writer = writer
        self.best = best

    def _save_model(self):
        if not self.writer:
            return
        # weights first (see above). ``best``: a BestCheckpoint whose save of this very epoch holds
        # the same state (model and optimizer; nothing between the two callbacks changes weights),
        # so that file is linked instead of serialising the model a second time.
        best = self.best
        if best is not None and best.saved_epoch == self._current_epoch - 1 and os.path.exists(best.path):
            link_atomically(best.path, self._weights_path)
        else:
            save_weights_atomically(self.model, self._weights_path)
        tmp_meta = f"{self._training_metadata_path}.tmp-{os.getpid()}"
        with open(tmp_meta, "w") as f:
            f.write(json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen}))
        os.replace(tmp_meta, self._training_metadata_path)

    def on_train_end(self, logs=None):
        if self.writer:
            super().on_train_end(logs)


class WarmupLearningRate(keras.callbacks.Callback):
    """Linear warmup for optimizers with a plain float rate (the ``plateau`` schedule)."""

    def __init__(self, base_lr: float, warmup_steps: int):
        super().__init__()
        self.base_lr, self.warmup_steps = float(base_lr), int(warmup_steps)

    def on_train_batch_begin(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if step < self.warmup_steps:
            self.model.optimizer.learning_rate = self.base_lr * (step + 1) / self.warmup_steps
        elif step == self.warmup_steps:
            self.model.optimizer.learning_rate = self.base_lr


class Progress(keras.callbacks.Callback):
    """Progress per epoch: a live rich bar on a terminal, one plain line per epoch otherwise.

    On a terminal the bar shows the steps done, the epoch's elapsed and remaining time, the run's
    remaining time (from the epochs timed so far) and the running loss/accuracy; when an epoch ends
    the bar is replaced by the same summary line a log file gets, so the scroll-back reads like a log.

    With ``steps_per_execution`` > 1 keras calls ``on_train_batch_end`` once per execution with that
    execution's last step index, which overshoots the epoch's end on a partial last execution
    (55 steps in runs of 32 report step 63): the count shown is capped at the epoch's steps.
    """

    def __init__(self, epochs: int, steps_per_epoch: int, *, rich_bar: bool | None = None, stream=None):
        super().__init__()
        self.epochs, self.steps = epochs, steps_per_epoch
        self.stream = stream or sys.stdout
        self.rich_bar = self.stream.isatty() if rich_bar is None else rich_bar
        self._progress = None
        self._epoch_seconds: list[float] = []

    def on_train_begin(self, logs=None):
        self._epoch_seconds = []
        if self.rich_bar:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress
            from rich.progress import TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._progress = RichProgress(
                TextColumn("[bold]epoch {task.fields[epoch]}"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[run_eta]}"),
                TextColumn("{task.fields[metrics]}"),
                transient=True,
            )
            self._progress.start()

    def run_eta(self, epoch: int) -> str:
        """The time the epochs after ``epoch`` will take, at the recent epochs' pace ('' before one is timed)."""
        left = self.epochs - epoch - 1
        if not self._epoch_seconds or left <= 0:
            return ""
        recent = self._epoch_seconds[-3:]
        return f"(run {_duration(left * sum(recent) / len(recent))} left)"

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        if self._progress is not None:
            self._task = self._progress.add_task(
                "train", total=self.steps, epoch=f"{epoch + 1}/{self.epochs}", metrics="",
                run_eta=self.run_eta(epoch),
            )

    def on_train_batch_end(self, batch, logs=None):
        if self._progress is not None:
            self._progress.update(self._task, completed=min(batch + 1, self.steps), metrics=_short(logs))

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._t0
        self._epoch_seconds.append(seconds)
        line = f"epoch {epoch + 1}/{self.epochs}  {_short(logs, val=True)}  ({seconds:.1f}s)"
        if self._progress is not None:
            self._progress.remove_task(self._task)
            self._progress.console.print(line, highlight=False, soft_wrap=True)
        else:
            print(line, file=self.stream, flush=True)

    def on_train_end(self, logs=None):
        self.close()

    def close(self) -> None:
        """Take the live bar off the terminal (also when training is interrupted)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class ResumeNote(ResumeAware):
    """Says where a resumed run continues: ``echo`` gets one line at the first epoch ``fit`` runs."""

    def __init__(self, epochs: int, echo=print):
        super().__init__()
        self.epochs, self.echo = epochs, echo

    def resume_from(self, epoch):
        if epoch == 0:
            self.echo("resuming: no finished epoch was backed up; starting again at epoch 1")
        else:
            self.echo(f"resuming from epoch {epoch + 1}/{self.epochs} ({epoch} epoch{'s' * (epoch != 1)} done)")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _short(logs: dict | None, val: bool = False) -> str:
    parts = []
    for key, value in (logs or {}).items():
        if key.startswith("val_") and not val:
            continue
        number = float(np.asarray(value))
        if key == "learning_rate":
            parts.append(f"lr {number:.2e}")
        elif number.is_integer() and abs(number) >= 1:  # counts (iterations, evaluations): no decimals
            parts.append(f"{key} {int(number)}")
        elif number != 0 and abs(number) < 1e-3:  # small losses (a PINN's): significant digits, not 0.0000
            parts.append(f"{key} {number:.3e}")
        else:
            parts.append(f"{key} {number:.4f}")
    return "  ".join(parts)
