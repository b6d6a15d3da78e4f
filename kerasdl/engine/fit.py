"""Train a model from a RunConfig: data -> model -> compile -> callbacks -> fit -> evaluate.

``train(config)`` is what ``kerasdl train`` calls; it writes one run directory (see
:mod:`kerasdl.runs`) and returns a :class:`TrainResult`.

Repeatability: the seed fixes Python, NumPy and backend RNGs, and TensorFlow's op determinism is
switched on, so the same seed, data and command give the same metrics on CPU. On GPU, op
determinism makes TF pick deterministic kernels too (slower for some ops); XLA-compiled and
multi-worker runs are not covered by that guarantee.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from dataclasses import dataclass

import numpy as np

from kerasdl.engine import callbacks as cb
from kerasdl import plots, runs
from kerasdl.runs.load import load_run
from kerasdl.config import RunConfig
from kerasdl.errors import KerasdlUsageError, first_line

SPLITS = ("train", "validation", "test")


class TrainingFailed(RuntimeError):
    """Training could not produce a usable model (e.g. the loss was NaN from the first epoch)."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: its metrics.json says ``interrupted`` and its backup is kept.

    ``str()`` is the one line the CLI prints (how to resume); ``run_dir`` is the run.
    """

    def __init__(self, run_dir: str):
        super().__init__(f"interrupted; resume with: kerasdl train --resume {run_dir}")
        self.run_dir = run_dir


@dataclass
class TrainResult:
    run_dir: str
    config: RunConfig
    metrics: dict
    stop_reason: str  # "completed" | "early_stopping" | "nan_loss"
    export_path: str | None = None


def set_seed(seed: int, *, deterministic: bool = True) -> None:
    """Seed Python, NumPy and the backend; ``deterministic`` also switches on TF op determinism.

    XLA-compiled runs (``jit``) leave op determinism off: TF refuses some XLA kernels under it.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    else:  # process-wide: an earlier run in this process may have switched it on
        from tensorflow.python.framework import config as tf_config

        tf_config.disable_op_determinism()


# Builder options that set a residual net's stochastic-depth rate (the last block's; linear rule).
STOCHASTIC_DEPTH_OPTIONS = ("drop_path_rate", "drop_connect_rate")


def with_default_options(config: RunConfig) -> RunConfig:
    """Fill model options whose default depends on the run: GoogLeNet-style auxiliary classifiers
    are switched on when training from scratch (the paper's recipe) and off for transfer;
    ``stochastic_depth`` becomes the builder's drop-path option (residual nets only)."""
    from kerasdl.models import model_info

    overrides = model_info(config.model).overrides
    options = dict(config.model_options)
    if "aux_logits" in overrides and "aux_logits" not in options:
        options["aux_logits"] = not config.init_from
    if config.stochastic_depth is not None:
        key = next((k for k in STOCHASTIC_DEPTH_OPTIONS if k in overrides), None)
        if key is None:
            raise KerasdlUsageError(
                f"stochastic_depth needs a residual model with a drop-path option "
                f"({' / '.join(STOCHASTIC_DEPTH_OPTIONS)}); {config.model!r} has none"
            )
        if key in options and options[key] != config.stochastic_depth:
            raise KerasdlUsageError(
                f"stochastic_depth={config.stochastic_depth} contradicts the model option "
                f"{key}={options[key]}; give one of them"
            )
        options[key] = config.stochastic_depth
    return config if options == config.model_options else config.replace(model_options=options)


def apply_regularisers(model, config: RunConfig) -> dict:
    """Re-initialise kernels and attach weight penalties / max-norm constraints, as ``config`` asks.

    Penalties and constraints go on the variables, not into the layers' configs, so the saved
    ``model.keras`` still loads with plain keras. Returns what was done (for metrics.json).
    """
    done = {}
    if not (config.init or config.l1 or config.l2 or config.max_norm):
        return done
    from kerasdl.engine import regularize

    if config.init:
        done["reinitialised_kernels"] = regularize.apply_initializer(model, config.init, seed=config.seed)
    if config.l1 or config.l2:
        done["penalised_kernels"] = regularize.add_weight_penalty(model, l1=config.l1, l2=config.l2)
    if config.max_norm:
        done["max_norm_kernels"] = regularize.add_max_norm(model, config.max_norm)
    return done


DIAGNOSTICS_CSV = "diagnostics.csv"


def _diagnostics_sample(val_ds):
    """One fixed validation batch as numpy, so diagnostics compare like with like across epochs."""
    x, y = next(iter(val_ds))
    return np.asarray(x), np.asarray(y)


def _technique_callbacks(callbacks: list, model, config: RunConfig, run_dir: str, sample) -> list:
    """Insert the callbacks of the optional techniques into the run's list (unchanged when all are off).

    Order (see :mod:`kerasdl.engine.callbacks`): the dropout schedule first (it acts at epoch begin); the
    EMA swap-in before the history / best-checkpoint callbacks and the swap-out after them, so
    validation, history and checkpoints see the averaged weights while training continues on the
    raw ones; diagnostics after the swap-out (they look at the weights being trained); and
    BackupAndRestore stays last.
    """
    import sys

    from kerasdl.engine import regularize

    out = list(callbacks)
    if config.dropout_schedule != "constant":
        out.insert(0, regularize.DropoutSchedule(config.dropout_schedule, config.dropout_epochs))
    if config.ema:
        swap_in, swap_out = regularize.ema_callbacks(model.optimizer)
        first = next(i for i, c in enumerate(out) if isinstance(c, cb.HistoryLog))
        out.insert(first, swap_in)
        out.insert(len(out) - 1, swap_out)
    if config.diagnostics:
        from kerasdl.engine.diagnostics import Diagnostics

        out.insert(len(out) - 1, Diagnostics(
            sample, log_dir=runs.path(run_dir, runs.LOGS), csv_path=runs.path(run_dir, DIAGNOSTICS_CSV),
            warn=lambda message: print(f"warning: {message}", file=sys.stderr, flush=True),
        ))
    return out


def _host() -> str:
    import socket

    return socket.gethostname()


def running_record() -> dict:
    """metrics.json while a run trains: who trains it, so another command can tell a live run."""
    import datetime

    return {"status": "running", "pid": os.getpid(), "host": _host(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def live_owner(run_dir: str) -> str | None:
    """'pid N' (or 'pid N on HOST') when a process is training ``run_dir`` now, else None.

    A run whose metrics.json says ``running`` is live while its process exists; a run written on
    another host cannot be checked from here and counts as live. A run killed outright (SIGKILL,
    power loss) keeps ``running`` with a dead pid: not live, so --resume or --overwrite may take it.
    """
    record = runs.read_json(runs.path(run_dir, runs.METRICS), default={}) or {}
    pid, host = record.get("pid"), record.get("host")
    if record.get("status") != "running" or not isinstance(pid, int):
        return None
    if host and host != _host():
        return f"pid {pid} on {host}"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # another user's process: it exists
        pass
    return f"pid {pid}"


def _prepare_run_dir(run_dir: str, *, resume: bool, overwrite: bool) -> None:
    """Claim ``run_dir`` for this run: create it exclusively (two runs never share a folder).

    A run directory that another process is training is never resumed, replaced, nor is
    replacing it suggested; an unfinished one points at --resume.
    """
    owner = live_owner(run_dir) if os.path.isdir(run_dir) else None
    if owner:
        raise KerasdlUsageError(
            f"run directory {run_dir} is in use: its run is still running ({owner}); "
            + ("wait for it to finish or stop it first" if resume else "choose another --name")
        )
    if resume:
        return
    if os.path.exists(run_dir):
        if not overwrite:
            raise KerasdlUsageError(_exists_message(run_dir))
        shutil.rmtree(run_dir)
    try:
        os.makedirs(run_dir)  # exclusive: fails if another process claimed the name meanwhile
    except FileExistsError:
        raise KerasdlUsageError(_exists_message(run_dir)) from None


def _exists_message(run_dir: str) -> str:
    status = (runs.read_json(runs.path(run_dir, runs.METRICS), default={}) or {}).get("status")
    if status in ("running", "interrupted", "failed"):
        return (f"run directory {run_dir} already exists (an unfinished run, status {status}); "
                f"continue it with --resume {run_dir} or choose another --name")
    return f"run directory {run_dir} already exists; choose another --name, or pass --overwrite to replace it"


@contextlib.contextmanager
def _marks_stopped(run_dir: str):
    """Around a run whose folder is claimed: Ctrl-C leaves metrics.json ``interrupted`` and raises
    :class:`RunInterrupted`; any other error leaves it ``failed`` (a ``TrainingFailed`` run has
    usually written why already: then its record is kept)."""
    try:
        yield
    except TrainingFailed as exc:
        record = runs.read_json(runs.path(run_dir, runs.METRICS), default={}) or {}
        if record.get("status") == "running":  # e.g. an ensemble member failed: say so at the top too
            _mark_stopped(run_dir, exc)
        raise
    except KeyboardInterrupt as exc:
        _mark_stopped(run_dir, exc)
        raise RunInterrupted(run_dir) from None
    except Exception as exc:
        _mark_stopped(run_dir, exc)
        raise


def _mark_stopped(run_dir: str, exc: BaseException) -> None:
    """metrics.json of a run that stopped on an exception: ``interrupted`` (Ctrl-C) or ``failed``.

    The backup stays, so ``kerasdl train --resume`` continues from the last finished epoch.
    """
    record = runs.read_json(runs.path(run_dir, runs.METRICS), default={}) or {}
    if record.get("status") == "completed":  # stopped during the export: the run itself is complete
        return
    if isinstance(exc, KeyboardInterrupt):
        record = {"status": "interrupted", "resume_with": f"kerasdl train --resume {run_dir}"}
    else:
        record = {"status": "failed", "error": f"{type(exc).__name__}: {first_line(exc)}"}
    record["epochs_done"] = len(cb.read_history(runs.path(run_dir, runs.HISTORY)))
    runs.write_json(runs.path(run_dir, runs.METRICS), record)


def resume_config(run_dir: str, **overrides) -> RunConfig:
    """The config of an unfinished run, so ``train(config, resume=True)`` continues it."""
    runs.check_run_dir(run_dir, need_weights=False)
    status = (runs.read_json(runs.path(run_dir, runs.METRICS), default={}) or {}).get("status")
    if status == "completed":
        raise KerasdlUsageError(f"run {run_dir} already finished; nothing to resume")
    config = runs.read_config(run_dir)
    output_dir, name = os.path.split(os.path.normpath(run_dir))
    return config.replace(output_dir=output_dir or ".", name=name, **overrides)


def train(config: RunConfig, *, resume: bool = False, overwrite: bool = False,
          rich_progress: bool | None = None, echo=print, progress: bool = True) -> TrainResult:
    """Run one training job end to end and write its run directory.

    ``rich_progress``: None picks a rich bar on a terminal and plain lines otherwise;
    ``progress=False`` prints nothing per epoch (``echo`` still gets the one-line summary).
    Ctrl-C raises :class:`RunInterrupted` once metrics.json says ``interrupted`` (backup kept).
    """
    config = with_default_options(config.resolved())
    config.validate()
    if config.ensemble > 1:
        return _train_ensemble(config, resume=resume, overwrite=overwrite, rich_progress=rich_progress,
                               echo=echo, progress=progress)
    from kerasdl.engine import distribute

    # The strategy comes first: a CPU split or a multi-worker cluster must be set up before
    # TensorFlow runs anything else in this process.
    role = distribute.cluster_role()
    strategy = distribute.make_strategy(config.strategy, config.cpu_devices)
    replicas = int(strategy.num_replicas_in_sync)
    distribute.check_global_batch(config.batch_size, replicas)
    steps_per_execution = distribute.resolved_steps_per_execution(config, strategy)  # refused: before any folder
    set_seed(config.seed, deterministic=not config.jit)
    run_dir = config.run_dir
    if not role.is_chief:  # a non-chief worker trains alongside and keeps nothing
        return _train_worker(config, role, strategy, steps_per_execution, echo=echo)

    # Everything that can be refused is checked before the run directory is touched.
    setup = _setup(config, strategy, steps_per_execution)
    _prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
    with _marks_stopped(run_dir):
        return _train_chief(config, setup, strategy, replicas, role, steps_per_execution, resume=resume,
                            rich_progress=rich_progress, echo=echo, progress=progress)


def _train_chief(config: RunConfig, setup, strategy, replicas: int, role, steps_per_execution: int, *,
                 resume: bool, rich_progress, echo, progress: bool) -> TrainResult:
    """The chief's run once its folder is claimed: fit with the run's callbacks, then evaluate and write."""
    run_dir = config.run_dir
    info, model, steps, train_ds, val_ds = setup.info, setup.model, setup.steps, setup.train_ds, setup.val_ds
    task = setup.task
    monitor, mode = task.monitor()
    plain_val_ds, test_ds = setup.data["validation"], setup.data["test"]  # unmapped: calibration and test
    sample = _diagnostics_sample(plain_val_ds) if config.diagnostics else None
    config.save(runs.path(run_dir, runs.CONFIG))
    runs.write_json(runs.path(run_dir, runs.DATASET), info.to_dict())
    runs.write_json(runs.path(run_dir, runs.METRICS), running_record())

    history_path = runs.path(run_dir, runs.HISTORY)
    best_path = runs.path(run_dir, runs.BEST_WEIGHTS)
    nan_guard = cb.NanGuard()
    early = cb.ResumableEarlyStopping(history_path, monitor, config.patience, mode) if config.patience else None
    best = cb.BestCheckpoint(best_path, history_path, monitor, mode)
    import keras

    progress_bar = cb.Progress(config.epochs, steps, rich_bar=rich_progress) if progress else None
    callbacks = [
        *([cb.ResumeNote(config.epochs, echo)] if resume else []),
        nan_guard,
        cb.HistoryLog(history_path),
        best,
        keras.callbacks.TensorBoard(runs.path(run_dir, runs.LOGS), write_graph=False, profile_batch=0),
        *([progress_bar] if progress_bar else []),
        # Last: an epoch's history row and best checkpoint are on disk before its backup is. With
        # EMA the backup holds the raw weights and the checkpoint the averaged ones: no sharing.
        cb.RunBackup(runs.path(run_dir, runs.BACKUP), best=None if config.ema else best),
    ]
    if early:
        callbacks.insert(callbacks.index(best) + 2, early)  # after TensorBoard, as before
    for extra in task.callbacks(run_dir):  # e.g. a generative task's sample grids: before the backup
        callbacks.insert(len(callbacks) - 1, extra)
    callbacks = _technique_callbacks(callbacks, model, config, run_dir, sample)
    callbacks = _plateau_callbacks(config, steps, monitor, mode) + callbacks

    n_trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)  # as `kerasdl models`
    echo(f"training {config.model} ({model.count_params():,} parameters, {n_trainable:,} trainable) on "
         f"{config.dataset} "
         f"({info.splits['train']} train / {info.splits['validation']} validation) -> {run_dir}"
         + _scale_note(config, strategy, replicas))
    t0 = time.perf_counter()
    try:
        # shuffle=False: the tf.data pipeline already shuffles (seeded); keras would only warn.
        model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=callbacks, verbose=0,
                  shuffle=False)
    finally:
        if progress_bar is not None:
            progress_bar.close()  # an interrupted fit never calls on_train_end: take the bar off the screen
    train_seconds = time.perf_counter() - t0

    stop_reason = "completed"
    if nan_guard.stopped_at is not None:
        stop_reason = "nan_loss"
    elif early is not None and early.stopped_epoch is not None and early.stopped_epoch + 1 < config.epochs:
        stop_reason = "early_stopping"
    history = cb.read_history(history_path)
    if not os.path.exists(best_path):
        runs.write_json(runs.path(run_dir, runs.METRICS), {"status": "failed", "stop_reason": stop_reason})
        raise TrainingFailed(
            f"training stopped ({stop_reason.replace('_', ' ')}) before any epoch gave a finite "
            f"{monitor}; no checkpoint to keep (try a lower --lr)"
        )
    model.load_weights(best_path)
    jit = model.jit_compile
    trainable = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    model = _plain_copy(model, task, config, strategy)
    if config.diagnostics:
        from kerasdl.engine.diagnostics import plot_gradient_norms

        plot_gradient_norms(runs.path(run_dir, DIAGNOSTICS_CSV),
                            runs.path(run_dir, os.path.join(runs.PLOTS, "gradient_norms.png")),
                            title=f"{config.model} on {config.dataset}: gradient norm per layer")
    model = task.inference_model(model)  # e.g. auxiliary heads only help training
    model.save(runs.path(run_dir, runs.MODEL))

    test = task.evaluate(model, test_ds)
    test["plots"] = task.plots(test, model, test_ds, run_dir, "test")
    plots.learning_curves(history, runs.path(run_dir, os.path.join(runs.PLOTS, "learning_curves.png")),
                          title=f"{config.model} on {config.dataset}")
    images = sum(1 for r in history if r["epoch"] >= 0) * info.splits["train"]
    record = {
        "status": "completed",
        "stop_reason": stop_reason,
        "epochs_run": len(history),
        "best_epoch": None if best.best_epoch is None else best.best_epoch + 1,
        "monitor": monitor,
        "best_monitor_value": best.best,
        "parameters": int(model.count_params()),
        "trainable_parameters": trainable,
        "train_seconds_this_session": round(train_seconds, 2),
        "train_examples_per_second": round(images / max(sum(r.get("epoch_time_s", 0) for r in history), 1e-9), 1),
        "test": test,
    }
    record["scale"] = _scale_record(config, strategy, replicas, role, jit, steps_per_execution)
    if setup.transfer:
        record["transfer"] = setup.transfer
    if setup.regularised:
        record["regularisers"] = setup.regularised
    if stop_reason == "nan_loss":
        epoch, batch = nan_guard.stopped_at
        record["nan_at"] = {"epoch": epoch + 1, "batch": batch + 1}
    export_path = _finish(model, task, config, plain_val_ds, test_ds, record, f"{config.model} on {config.dataset}")
    return TrainResult(run_dir, config, record, stop_reason, export_path)


@dataclass
class _Setup:
    """A run's data and compiled model, the same on the chief and on every other worker."""

    info: object
    data: dict  # the loaded splits, as load_splits gives them
    model: object
    steps: int  # training batches per epoch
    train_ds: object  # augmented; for auxiliary heads, one label per head
    val_ds: object  # for auxiliary heads, one label per head
    regularised: dict
    transfer: dict | None
    task: object  # the run's kerasdl.tasks.Task


def _setup(config: RunConfig, strategy, steps_per_execution: int, splits=SPLITS) -> _Setup:
    """Load the data, build, regularise, transfer and compile the model inside ``strategy``'s scope
    and the run's precision policy. Touches no run directory, so anything refused here loses nothing."""
    from kerasdl.data import augment
    from kerasdl.engine import distribute

    from kerasdl.tasks.base import load_task_data

    data, info, task = load_task_data(config, splits)
    task.check()  # the task refuses what cannot work on this data, before any folder is made
    train_ds = task.prepare(data["train"], "train")
    # Again: preparing a dataset the first time draws random numbers, and the weights must not
    # depend on whether this run was the one that prepared it.
    set_seed(config.seed, deterministic=not config.jit)
    steps = task.steps_per_epoch() or math.ceil(info.splits["train"] / config.batch_size)
    with strategy.scope(), distribute.precision_policy(config.precision):
        model = task.build()
        regularised = apply_regularisers(model, config)  # before transfer: loaded weights win
        transfer = None
        if config.init_from:
            from kerasdl.engine.transfer import freeze_backbone, transfer_weights

            transfer = transfer_weights(model, config.init_from, info.class_names)
            if config.freeze == "backbone":
                transfer.update(freeze_backbone(model, transfer["reinitialised"], config.unfreeze_last))
        elif config.pretrained:
            from kerasdl.engine.pretrained import load_imagenet_weights
            from kerasdl.engine.transfer import freeze_backbone

            transfer = load_imagenet_weights(model, config.model,
                                             include_top=config.model_options.get("include_top", True),
                                             download=config.download)
            if config.freeze == "backbone":
                transfer.update(freeze_backbone(model, transfer["reinitialised"], config.unfreeze_last))
        train_ds, val_ds = _compile(model, task, config, steps, steps_per_execution, train_ds,
                                    task.prepare(data["validation"], "validation"))
    return _Setup(info, data, model, steps, train_ds, val_ds, regularised, transfer, task)


def _compile(model, task, config: RunConfig, steps: int, steps_per_execution: int, train_ds, val_ds):
    """Compile ``model`` for the run (inside the strategy scope) with the run's optimizer; the task
    picks the loss and metrics and may remap the datasets (e.g. one label per auxiliary head)."""
    from kerasdl.engine import distribute
    from kerasdl.engine.optim import make_optimizer

    lr = distribute.run_learning_rate(config)
    optimizer = make_optimizer(config if lr == config.learning_rate else config.replace(learning_rate=lr), steps)
    speed = dict(jit_compile=config.jit, steps_per_execution=steps_per_execution)
    train_ds, val_ds = task.compile(model, optimizer, train_ds, val_ds, **speed)
    distribute.build_before_fit(model, train_ds)  # the train function is then traced once, not twice
    return train_ds, val_ds


def _plateau_callbacks(config: RunConfig, steps: int, monitor: str, mode: str) -> list:
    """ReduceLROnPlateau (and its warmup) for the ``plateau`` schedule; they go first."""
    if config.schedule != "plateau":
        return []
    import keras

    from kerasdl.engine import distribute

    out = [keras.callbacks.ReduceLROnPlateau(
        monitor=monitor, mode=mode, factor=config.lr_decay_factor, patience=max(config.patience // 2, 2),
        min_lr=config.min_learning_rate,
    )]
    if config.warmup_epochs:
        out.insert(0, cb.WarmupLearningRate(distribute.run_learning_rate(config), round(config.warmup_epochs * steps)))
    return out


def _plain_copy(model, task, config: RunConfig, strategy):
    """The trained model as an ordinary float32 keras model outside any strategy.

    Evaluation, calibration, ``model.keras`` and the export must not depend on how training was
    distributed or on its precision; the variables are float32 in every policy, so the weights
    carry over as they are. Runs on one device in float32 keep their model.
    """
    from kerasdl.engine import distribute

    if config.precision == "float32" and distribute.is_default(strategy):
        return model
    plain = task.build()
    plain.set_weights(model.get_weights())
    return plain


def _scale_note(config: RunConfig, strategy, replicas: int) -> str:
    """The start-up line's note on the strategy / precision, when they are not the defaults."""
    from kerasdl.engine import distribute

    parts = []
    if not distribute.is_default(strategy) or replicas > 1:
        parts.append(f"{type(strategy).__name__}, {replicas} replica{'s' * (replicas > 1)}, "
                     f"{config.batch_size // replicas} per replica")
    if config.precision != "float32":
        parts.append(config.precision)
    if config.jit:
        parts.append("XLA")
    return f" [{'; '.join(parts)}]" if parts else ""


def _scale_record(config: RunConfig, strategy, replicas: int, role, jit: bool, steps_per_execution: int) -> dict:
    from kerasdl.engine import distribute

    return {
        "strategy": type(strategy).__name__,
        "replicas": replicas,
        "workers": role.num_workers,
        "global_batch_size": config.batch_size,
        "per_replica_batch_size": config.batch_size // replicas,
        "learning_rate": distribute.run_learning_rate(config),
        "lr_scaling": config.lr_scaling,
        "precision": config.precision,
        "jit": bool(jit),  # what keras compiled, not only what was asked
        "steps_per_execution": steps_per_execution,
    }


def _train_worker(config: RunConfig, role, strategy, steps_per_execution: int, *, echo) -> TrainResult:
    """A non-chief worker of a multi-worker run: the same model, data and callbacks that decide
    anything (NaN guard, early stopping, the learning-rate schedule), restored from the chief's
    backup; its own files go to a temporary folder that is removed at the end."""
    import tempfile

    run_dir = config.run_dir
    setup = _setup(config, strategy, steps_per_execution, ("train", "validation"))
    model, steps = setup.model, setup.steps
    monitor, mode = setup.task.monitor()
    scratch = tempfile.mkdtemp(prefix=f"kerasdl-{role.label}-")
    try:
        nan_guard = cb.NanGuard()
        chief_history = runs.path(run_dir, runs.HISTORY)  # read only: early stopping replays it on resume
        callbacks = [nan_guard, cb.HistoryLog(os.path.join(scratch, runs.HISTORY))]  # (the EMA swap goes around it)
        if config.patience:
            callbacks.append(cb.ResumableEarlyStopping(chief_history, monitor, config.patience, mode))
        callbacks.append(cb.RunBackup(runs.path(run_dir, runs.BACKUP), writer=False))
        techniques = _technique_callbacks(callbacks, model, config.replace(diagnostics=False), scratch, None)
        callbacks = _plateau_callbacks(config, steps, monitor, mode) + techniques
        echo(f"{role.label}: training {config.model} with the chief -> {run_dir}")
        model.fit(setup.train_ds, validation_data=setup.val_ds, epochs=config.epochs, callbacks=callbacks,
                  verbose=0, shuffle=False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    stop = "nan_loss" if nan_guard.stopped_at is not None else "completed"
    return TrainResult(run_dir, config, {"status": "completed", "role": role.label}, stop)


def _finish(model, task, config: RunConfig, val_ds, test_ds, record: dict, title: str) -> str | None:
    """The end of every run (single or ensemble): the task's steps after fitting (a classifier's
    calibration on validation), metrics.json, the export when asked; returns the export path."""
    run_dir = config.run_dir
    task.after_fit(model, val_ds, test_ds, run_dir, record, title=title)
    from kerasdl.runs.inputs import store_input_stats

    store_input_stats(run_dir, config)  # predict and the export warn on inputs far from the train split
    runs.write_json(runs.path(run_dir, runs.METRICS), record)
    if not config.export:
        return None
    from kerasdl.export.savedmodel import export_run

    return export_run(run_dir, export_root=config.export_dir)


def _train_ensemble(config: RunConfig, *, resume: bool, overwrite: bool, rich_progress, echo,
                    progress: bool) -> TrainResult:
    """Train ``config.ensemble`` members (seeds seed, seed + 1, ...) as runs inside the run
    directory, then evaluate, calibrate and (optionally) export them as one model."""
    run_dir = config.run_dir
    from kerasdl.tasks.base import load_task_data

    data, info, task = load_task_data(config, ("validation", "test"), shuffle_train=False)  # bad data: refused now
    if task.data_kind != "supervised":
        raise KerasdlUsageError(f"ensemble needs a supervised task; task {task.name!r} has no ensemble")
    task.check()
    task.build()  # a shape the model cannot take: refused before any folder is made
    _prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
    with _marks_stopped(run_dir):
        return _train_members(config, data, rich_progress=rich_progress, echo=echo, progress=progress)


def _train_members(config: RunConfig, data: dict, *, rich_progress, echo, progress: bool) -> TrainResult:
    """The ensemble's run once its folder is claimed: the members not yet trained, then the ensemble."""
    from kerasdl.engine import ensemble

    run_dir = config.run_dir
    config.save(runs.path(run_dir, runs.CONFIG))
    runs.write_json(runs.path(run_dir, runs.METRICS), running_record())
    t0 = time.perf_counter()
    members, stop_reasons = ensemble.member_configs(config), []
    for k, member in enumerate(members, start=1):
        done = runs.read_json(runs.path(member.run_dir, runs.METRICS), default={}) or {}
        if done.get("status") == "completed":
            echo(f"ensemble member {k}/{len(members)} (seed {member.seed}): already trained")
            stop_reasons.append(done.get("stop_reason"))
            continue
        echo(f"ensemble member {k}/{len(members)} (seed {member.seed})")
        started = os.path.exists(runs.path(member.run_dir, runs.CONFIG))
        result = train(member, resume=started, rich_progress=rich_progress, echo=echo, progress=progress)
        stop_reasons.append(result.stop_reason)
    shutil.copyfile(runs.path(members[0].run_dir, runs.DATASET), runs.path(run_dir, runs.DATASET))
    run = load_run(run_dir)
    model, task = run.model, run.task
    test = task.evaluate(model, data["test"])
    test["plots"] = task.plots(test, model, data["test"], run_dir, "test")
    ensemble.plot_member_curves(run_dir, members, f"{config.ensemble} x {config.model} on {config.dataset}")
    member_figures = []
    for member in members:
        figures = (runs.read_json(runs.path(member.run_dir, runs.METRICS), default={}) or {}).get("test", {})
        member_figures.append({"run_dir": member.run_dir, "seed": member.seed,
                               **{k: figures[k] for k in ("accuracy", "nll", "ece", "r2", "mse", "mean_iou")
                                  if k in figures}})
    record = {
        "status": "completed",
        "stop_reason": "completed",
        "ensemble": config.ensemble,
        "member_stop_reasons": stop_reasons,
        "members": member_figures,
        "parameters": int(model.count_params()),
        "train_seconds_this_session": round(time.perf_counter() - t0, 2),
        "test": test,
    }
    export_path = _finish(model, task, config, data["validation"], data["test"], record,
                          f"{config.ensemble} x {config.model} on {config.dataset}")
    return TrainResult(run_dir, config, record, "completed", export_path)
