"""Hyperparameter search on Keras Tuner: ``kerasdl tune``.

Every trial is an ordinary kerasdl training run (:func:`kerasdl.engine.fit.train`) in
``<tune dir>/trials/<trial id>/``: the same data pipeline, augmentation, losses, optimisers,
schedules, NaN guard and checkpoints as ``kerasdl train``. Keras Tuner's oracles
(Li et al. 2018 Hyperband; Snoek et al. 2012-style Bayesian optimisation with a Gaussian process;
random and grid search) propose the hyperparameters and keep the search state on disk, which is
what makes ``--resume`` and the chief/worker distributed search work.

The search space is declared per model family and task (:func:`default_space`): learning rate,
optimiser, batch size and augmentation strength for every model (augmentation fixed to ``none``
outside classification), the builder options the family's builder accepts (width, depth, dropout,
activation, ...) as ``model_opt.<name>``, and what the run's task adds (``Task.tune_space``) as
``task_opt.<key>`` -- e.g. the VAE's latent size and beta (Higgins et al. 2017). A YAML file
overrides or extends it::

    learning_rate: {type: float, min: 1.0e-4, max: 1.0e-2, log: true}
    optimizer: {type: choice, values: [adam, nesterov]}
    model_opt.width: {type: int, min: 32, max: 512, step: 32}
    model_opt.dropout: {type: fixed, value: 0.1}
    task_opt.beta: {type: choice, values: [0.5, 1.0, 4.0]}

The task owns its objectives and their directions (``Task.tune_objectives``: name -> "min" |
"max"); ``--objective`` must be one of them. They are measured on the **validation** split, never
the test split. Supervised tasks evaluate the trial's best checkpoint after the trial: ``val_loss``,
``val_accuracy``, ``val_nll``, ``val_ece`` (15 bins). Other tasks (autoencoder, VAE) take their
objectives from the trial's history at the best epoch of the task's monitor, as the model logged
them on the validation split (e.g. the VAE's ``val_elbo``, Kingma & Welling 2014).
A trial that fails -- the loss turns NaN before any epoch finished, a builder refuses a
combination, the data cannot be loaded -- is recorded as failed with its reason and the search
goes on (up to ``max_consecutive_failed_trials``).

Hyperband gives each trial a number of epochs (``tuner/epochs``); a trial that continues an
earlier one (``tuner/trial_id``) starts from that trial's best weights, like Keras Tuner's own
Hyperband tuner does.

Each trial runs in a fresh Python process by default (``trial_process="fresh"``,
:mod:`kerasdl.tuning.trial_worker`): the search process only holds the oracle and never builds a model,
and everything TensorFlow and Keras keep of a trial's model (several MiB per model, even after
``clear_session``) goes back to the operating system when the trial ends, so a long search stays
flat in memory. The child's output goes to ``<tune dir>/trial_logs/<trial id>/output.log``; a
child that crashes or is killed (a segfault, the kernel's out-of-memory killer) becomes a failed
trial with the exit status as its reason. ``trial_process="shared"`` runs the trials in the search
process itself (no start-up cost per trial, but memory grows by several MiB per trial).
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from kerasdl import runs
from kerasdl.runs.load import load_run
from kerasdl.engine.callbacks import read_history
from kerasdl.config import RunConfig, read_yaml
from kerasdl.errors import KerasdlUsageError, UnknownNameError

TUNERS = ("random", "grid", "bayesian", "hyperband")
# The supervised tasks' objectives (SupervisedTask.tune_objectives); other tasks declare their own.
OBJECTIVES = ("val_loss", "val_accuracy", "val_nll", "val_ece")
SETTINGS = "tune.yaml"  # the search's own settings (resume reads them back)
RESULTS_CSV = "tune_results.csv"
BEST_YAML = "best.yaml"
PLOT = "tune_objective.png"
TRIALS = "trials"
PROJECT = "oracle"  # Keras Tuner's project folder inside the tune directory
TRIAL_LOGS = "trial_logs"  # per trial: the child process's request.json, result.json and output.log
TRIAL_PROCESSES = ("fresh", "shared")  # a new process per trial, or every trial in the search process
TRIAL_FIGURES = ("trial_seconds", "startup_seconds", "peak_rss_mib")  # recorded besides the objectives

# Builder options worth searching, by name, when the family's builder accepts them.
FAMILY_OPTIONS = {
    "width": {"type": "choice", "values": [64, 128, 256, 512]},
    "depth": {"type": "int", "min": 1, "max": 4},
    "dropout": {"type": "choice", "values": [0.0, 0.1, 0.25, 0.5]},
    "activation": {"type": "choice", "values": ["relu", "tanh", "gelu"]},
    "base_filters": {"type": "choice", "values": [8, 16, 32]},
}
COMMON_SPACE = {
    "learning_rate": {"type": "float", "min": 1e-4, "max": 1e-2, "log": True},
    "optimizer": {"type": "choice", "values": ["adam", "nesterov", "rmsprop"]},
    "batch_size": {"type": "choice", "values": [32, 64, 128]},
    "augment": {"type": "choice", "values": ["none", "auto", "light"]},
}
SPEC_TYPES = ("choice", "float", "int", "fixed", "boolean")


def default_space(model: str, task: str = "classification", task_space: dict | None = None) -> dict[str, dict]:
    """The search space of ``model``: the common hyperparameters, the builder options
    (``model_opt.<name>``) the family's builder accepts, and ``task_space`` (a task's
    ``tune_space()``, see :func:`space_entries`). Augmentation is searched for classification only."""
    from kerasdl.models import model_info

    overrides = set(model_info(model).overrides)
    space = dict(COMMON_SPACE)
    if task != "classification":
        space["augment"] = {"type": "fixed", "value": "none"}
    for name, spec in FAMILY_OPTIONS.items():
        if name in overrides:
            space[f"model_opt.{name}"] = spec
    space.update(space_entries(task_space or {}))
    return space


def space_entries(extra: dict) -> dict[str, dict]:
    """A task's ``tune_space()`` as search-space entries: a list is a choice, a mapping a full
    spec; a bare key (``latent_dim``) that is no RunConfig field is a task option (``task_opt.latent_dim``)."""
    out = {}
    for name, spec in extra.items():
        name = str(name)
        if "." not in name and name not in RunConfig.__dataclass_fields__:
            name = f"task_opt.{name}"
        out[name] = {"type": "choice", "values": list(spec)} if isinstance(spec, (list, tuple)) else dict(spec)
    return out


def run_task(base: RunConfig):
    """The task instance of the trials' base config (``auto`` resolved from the dataset); a task
    that makes its own data (a graph task) is asked for its info itself."""
    from kerasdl.data import dataset_info
    from kerasdl.tasks import resolve_task
    from kerasdl.tasks.base import OWN_DATA, load_task_data, task_class

    resolved = base.resolved()
    if resolved.task not in ("auto", None) and task_class(resolved.task).data_kind in OWN_DATA:
        return load_task_data(resolved, ())[2]
    return resolve_task(base, dataset_info(base.dataset))


def task_space(base: RunConfig) -> dict[str, dict]:
    """The default search space of ``base``'s model and task."""
    task = run_task(base)
    return default_space(base.model_name, task.name, task.tune_space())


def read_space(path: str, base: dict[str, dict]) -> dict[str, dict]:
    """``base`` updated with the YAML file's entries (each checked)."""
    values = read_yaml(path)
    space = dict(base)
    for name, spec in values.items():
        space[str(name)] = check_spec(str(name), spec, source=path)
    return space


def check_spec(name: str, spec: Any, source: str = "search space") -> dict:
    """A clear usage error for a malformed search-space entry."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise KerasdlUsageError(f"{source}: {name} must be a mapping with a 'type'. Received: {spec!r}")
    kind = spec["type"]
    if kind not in SPEC_TYPES:
        raise UnknownNameError(f"search-space type (in {source}, {name})", str(kind), SPEC_TYPES)
    need = {"choice": ("values",), "float": ("min", "max"), "int": ("min", "max"), "fixed": ("value",),
            "boolean": ()}[kind]
    missing = [k for k in need if k not in spec]
    if missing:
        raise KerasdlUsageError(f"{source}: {name} ({kind}) needs {', '.join(missing)}. Received: {spec!r}")
    if kind == "choice" and (not isinstance(spec["values"], list) or not spec["values"]):
        raise KerasdlUsageError(f"{source}: {name} needs a non-empty list of values. Received: {spec!r}")
    if kind in ("float", "int") and not spec["min"] < spec["max"]:
        raise KerasdlUsageError(f"{source}: {name} needs min < max. Received: {spec!r}")
    field_name = name.split(".", 1)[0]
    if name.startswith("task_opt."):
        from kerasdl.tasks.options import OPTIONS

        keys = {f for cls in OPTIONS.values() for f in getattr(cls, "__dataclass_fields__", {})}
        if name.split(".", 1)[1] not in keys:
            raise UnknownNameError(f"task option (in {source}, {name})", name.split(".", 1)[1], keys)
    elif field_name not in RunConfig.__dataclass_fields__ and not name.startswith("model_opt."):
        raise UnknownNameError(f"hyperparameter (in {source})", name, list(RunConfig.__dataclass_fields__))
    return dict(spec)


def hyperparameters(space: dict[str, dict], grid: bool = False):
    """A keras_tuner.HyperParameters holding the whole space (so the first trial samples it too).

    Grid search needs a finite grid: floats get 3 log-spaced (or linear) points and ints their
    ``step`` (default 1).
    """
    import keras_tuner as kt

    hp = kt.HyperParameters()
    for name, spec in space.items():
        kind = spec["type"]
        if kind == "choice":
            hp.Choice(name, spec["values"], ordered=False if isinstance(spec["values"][0], str) else None)
        elif kind == "float":
            sampling = "log" if spec.get("log") else "linear"
            if grid and "step" not in spec:
                lo, hi = float(spec["min"]), float(spec["max"])
                points = ([lo * (hi / lo) ** (i / 2) for i in range(3)] if sampling == "log"
                          else [lo + (hi - lo) * i / 2 for i in range(3)])
                hp.Choice(name, [float(f"{p:.3g}") for p in points])
            else:
                hp.Float(name, float(spec["min"]), float(spec["max"]), step=spec.get("step"), sampling=sampling)
        elif kind == "int":
            hp.Int(name, int(spec["min"]), int(spec["max"]), step=int(spec.get("step", 1)))
        elif kind == "boolean":
            hp.Boolean(name)
        else:
            hp.Fixed(name, spec["value"])
    return hp


def trial_monitor(objective: str) -> str:
    """The quantity a trial's best checkpoint (and its retrain's) is chosen by, for ``objective``."""
    return "val_accuracy" if objective == "val_accuracy" else "val_loss"


def apply_values(base: RunConfig, values: dict[str, Any]) -> RunConfig:
    """``base`` with a trial's hyperparameter values (``tuner/*`` bookkeeping left out)."""
    changes, options, task_options = {}, dict(base.model_options), dict(base.task_options or {})
    for name, value in values.items():
        if name.startswith("tuner/"):
            continue
        if name.startswith("model_opt."):
            options[name.split(".", 1)[1]] = value
        elif name.startswith("task_opt."):
            task_options[name.split(".", 1)[1]] = value
        else:
            changes[name] = value
    return base.replace(model_options=options, task_options=task_options, **changes)


@dataclass
class TuneSettings:
    """What a search needs to start or resume; saved as ``tune.yaml`` in the tune directory."""

    base: dict  # RunConfig fields shared by every trial
    tuner: str = "random"
    objective: str = "val_loss"
    max_trials: int = 10
    seed: int = 0
    space: dict = field(default_factory=dict)
    hyperband_factor: int = 3
    max_consecutive_failed_trials: int = 3
    trial_process: str = "fresh"  # one of TRIAL_PROCESSES
    # Bayesian search: random trials before the Gaussian process proposes any; None is Keras Tuner's
    # default, 3 per hyperparameter (24 for the MLP's 8), so a shorter search is a random one.
    bayesian_initial_points: int | None = None

    def objectives(self) -> dict[str, str]:
        """The run's task's objectives: name -> "min" | "max" (``Task.tune_objectives``)."""
        cached = self.__dict__.get("_objectives")
        if cached is None:
            base = RunConfig.from_mapping(self.base, source="tune base config")
            task = run_task(base)
            cached = (task.name, dict(task.tune_objectives()))
            self.__dict__["_objectives"] = cached
        return cached[1]

    def direction(self) -> str:
        """"min" or "max": how the task ranks the search's objective."""
        return self.objectives()[self.objective]

    def check(self) -> None:
        for what, value, known in (("tuner", self.tuner, TUNERS), ("trial process", self.trial_process, TRIAL_PROCESSES)):
            if value not in known:
                raise UnknownNameError(what, str(value), known)
        offered = self.objectives()
        if not offered:
            task = self.__dict__["_objectives"][0]
            raise KerasdlUsageError(f"task {task!r} has no tuning objective: kerasdl tune does not search it "
                                    f"(train runs and score them with kerasdl evaluate instead)")
        if self.objective not in offered:
            task = self.__dict__["_objectives"][0]
            from kerasdl.errors import closest

            near = closest(str(self.objective), offered)
            raise UnknownNameError(f"{task} objective", str(self.objective), offered,
                                   extra=f"(task {task!r} offers {', '.join(offered)})" if near else "")
        if not isinstance(self.max_trials, int) or self.max_trials < 1:
            raise KerasdlUsageError(f"max_trials must be a positive integer. Received: {self.max_trials!r}")
        for name, spec in self.space.items():
            check_spec(name, spec)

    def save(self, tune_dir: str) -> None:
        from dataclasses import asdict

        from kerasdl.config import write_yaml

        write_yaml(os.path.join(tune_dir, SETTINGS), {k: v for k, v in asdict(self).items() if not k.startswith("_")})

    @classmethod
    def load(cls, tune_dir: str) -> "TuneSettings":
        path = os.path.join(tune_dir, SETTINGS)
        if not os.path.isfile(path):
            raise KerasdlUsageError(f"{tune_dir} is not a kerasdl tune directory (no {SETTINGS})")
        values = read_yaml(path)
        try:
            settings = cls(**values)
        except TypeError as exc:
            raise KerasdlUsageError(f"corrupt {path}: {exc}") from None
        settings.check()
        return settings


ORACLE_SEED_FOR_ZERO = 104_729  # any fixed non-zero seed (the 10,000th prime)


def _oracle(settings: TuneSettings, hp):
    import keras_tuner as kt

    objective = kt.Objective(settings.objective, direction=settings.direction())
    # Keras Tuner reads seed 0 as "no seed" (``seed or random.randint(...)``): kerasdl's default
    # seed 0 would sample other configurations on every run. Other seeds go through unchanged.
    seed = settings.seed if settings.seed else ORACLE_SEED_FOR_ZERO
    common = dict(objective=objective, hyperparameters=hp, seed=seed,
                  max_consecutive_failed_trials=settings.max_consecutive_failed_trials)
    if settings.tuner == "random":
        return kt.oracles.RandomSearchOracle(max_trials=settings.max_trials, **common)
    if settings.tuner == "grid":
        return kt.oracles.GridSearchOracle(max_trials=settings.max_trials, **common)
    if settings.tuner == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(max_trials=settings.max_trials,
                                                     num_initial_points=settings.bayesian_initial_points, **common)
    # Hyperband: max_trials is read as the largest epoch budget of a trial.
    base_epochs = int(settings.base.get("epochs", 20))
    return kt.oracles.HyperbandOracle(max_epochs=base_epochs, factor=settings.hyperband_factor,
                                      hyperband_iterations=1, **common)


def validation_figures(run_dir: str, config: RunConfig) -> dict:
    """Validation loss, accuracy, NLL and ECE of a finished trial's best checkpoint."""
    from kerasdl.evaluation.report import evaluate_model
    from kerasdl.data import load_splits

    run = load_run(run_dir)
    data, _ = load_splits(config, ("validation",), shuffle_train=False)
    report = evaluate_model(run.model, data["validation"], run.info)
    out = {"val_loss": float(report["loss"])}
    for key in ("accuracy", "nll", "ece"):
        if key in report:
            out[f"val_{key}"] = float(report[key])
    return out


def history_figures(run_dir: str, task) -> dict:
    """The task's objectives at the best epoch of its monitor, as the model logged them on the
    validation split (``history.csv``): what the best checkpoint scored. For tasks whose figures
    are not the supervised ones (the VAE's ``val_elbo``, ...)."""
    from kerasdl.engine.fit import TrainingFailed

    monitor, mode = task.monitor()
    rows = [r for r in read_history(runs.path(run_dir, runs.HISTORY))
            if math.isfinite(r.get(monitor, float("nan")))]
    if not rows:
        raise TrainingFailed(f"no epoch with a finite {monitor} in {runs.path(run_dir, runs.HISTORY)}")
    best = (max if mode == "max" else min)(rows, key=lambda r: r[monitor])
    return {name: float(best[name]) for name in task.tune_objectives() if name in best}


def train_trial(config: RunConfig) -> tuple[dict, str]:
    """Train one trial's config and measure its best checkpoint on the validation split.

    Supervised tasks are evaluated on the validation split (:func:`validation_figures`); other
    tasks report their objectives from the history (:func:`history_figures`).
    Returns the validation figures and the run's stop reason. Raises ``TrainingFailed`` (also for
    non-finite validation figures) or ``KerasdlUsageError`` for a trial that failed.
    """
    from kerasdl.engine.fit import TrainingFailed, train

    result = train(config, overwrite=True, echo=lambda *_: None, progress=False)
    task = run_task(config)
    if task.data_kind == "supervised":
        figures = validation_figures(result.run_dir, config)
    else:
        figures = history_figures(result.run_dir, task)
    if not all(math.isfinite(v) for v in figures.values()):
        raise TrainingFailed(f"non-finite validation figures {figures}")
    return figures, result.stop_reason


def train_trial_here(config: RunConfig) -> tuple[dict, str]:
    """:func:`train_trial` in this process, after dropping what Keras keeps of the last trial."""
    import gc

    import keras

    keras.backend.clear_session()  # the last trial's graphs and layer-name counters
    gc.collect()
    return train_trial(config)


# The child keeps the search's working directory (relative paths in the config mean the same there)
# but takes it off sys.path first, so it never imports a source checkout's kerasdl/ from it (the
# repository root has one without cli/ and models/, which only installing maps in).
CHILD_MAIN = """import sys
if sys.path[:1] == [""]:
    del sys.path[0]
from kerasdl.tuning.trial_worker import run_and_exit
run_and_exit(sys.argv[1:])"""


def trial_command(request_path: str, result_path: str) -> list[str]:
    """The argv of a trial's child process (:func:`kerasdl.tuning.trial_worker.run_and_exit`)."""
    return [sys.executable, "-c", CHILD_MAIN, request_path, result_path]


def train_trial_in_child(config: RunConfig, trial_dir: str) -> tuple[dict, str]:
    """:func:`train_trial` in a fresh Python process; its files go to ``trial_dir``.

    Returns what :func:`train_trial` returns, the figures extended with the child's
    ``startup_seconds`` and ``peak_rss_mib``. A trial the child reports as failed, and a child that
    ends without a result (an exception, a crash, a kill), raise ``TrainingFailed`` with a one-line
    reason. Ctrl-C (or any exception here) stops the child before it propagates.
    """
    from kerasdl.engine.fit import TrainingFailed

    os.makedirs(trial_dir, exist_ok=True)
    request_path, result_path, log_path = (os.path.join(trial_dir, name)
                                           for name in ("request.json", "result.json", "output.log"))
    if os.path.exists(result_path):  # a stale result of an interrupted attempt of this trial
        os.remove(result_path)
    with open(request_path, "w", encoding="utf-8") as f:
        json.dump({"config": config.to_dict(), "spawned_at": time.time()}, f, indent=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}  # no member of a search
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with open(log_path, "w", encoding="utf-8") as log:
        child = subprocess.Popen(trial_command(request_path, result_path), env=env,
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            code = child.wait()
        except BaseException:  # Ctrl-C: the child got SIGINT too; make sure it is gone
            _stop(child)
            raise
    if not os.path.isfile(result_path):
        raise TrainingFailed(f"{_exit_reason(code, log_path)}; log: {log_path}")
    with open(result_path, encoding="utf-8") as f:
        result = json.load(f)
    if result["status"] != "completed":
        raise TrainingFailed(result["reason"])
    figures = dict(result["figures"], startup_seconds=result["startup_seconds"], peak_rss_mib=result["peak_rss_mib"])
    return figures, result["stop_reason"]


def _stop(child: subprocess.Popen, grace_seconds: float = 10.0) -> None:
    """Terminate ``child`` (then kill it if it lingers) and reap it."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _exit_reason(code: int, log_path: str) -> str:
    """One line saying how a trial's child process ended without a result."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:  # a real-time signal has no name
            name = f"signal {-code}"
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"trial process killed by {name}{hint}"
    with open(log_path, encoding="utf-8", errors="replace") as f:
        lines = [line.strip() for line in f if line.strip()]
    return f"trial process exited with code {code}" + (f": {lines[-1]}" if lines else " and no output")


def make_tuner(settings: TuneSettings, tune_dir: str, *, overwrite: bool, echo=print):
    """The Keras Tuner ``Tuner`` whose trials are kerasdl training runs, each in a fresh process
    (or in this one, for ``trial_process="shared"``)."""
    import keras_tuner as kt

    from kerasdl.engine.fit import TrainingFailed

    hp = hyperparameters(settings.space, grid=settings.tuner == "grid")
    base = RunConfig.from_mapping(settings.base, source=SETTINGS)
    objective = settings.objective

    class KerasdlTuner(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            values = dict(trial.hyperparameters.values)
            config = apply_values(base, values)
            parent = values.get("tuner/trial_id")
            epochs = int(values.get("tuner/epochs", config.epochs))
            config = config.replace(
                name=trial.trial_id, output_dir=os.path.join(tune_dir, TRIALS), epochs=epochs,
                monitor=trial_monitor(objective),
                calibrate=False, export=False, ensemble=1,
                init_from=os.path.join(tune_dir, TRIALS, parent) if parent else config.init_from,
            )
            shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in values.items() if not k.startswith("tuner/") or k == "tuner/epochs")
            echo(f"trial {trial.trial_id}: {shown}")
            t0 = time.perf_counter()
            try:
                if settings.trial_process == "fresh":
                    figures, stop_reason = train_trial_in_child(
                        config, os.path.join(tune_dir, TRIAL_LOGS, trial.trial_id))
                else:
                    figures, stop_reason = train_trial_here(config)
            except (TrainingFailed, KerasdlUsageError) as exc:
                echo(f"trial {trial.trial_id} failed: {exc}")
                raise kt.errors.FailedTrialError(str(exc)) from None
            figures["trial_seconds"] = round(time.perf_counter() - t0, 2)
            if objective not in figures:
                reason = f"the trial reported no {objective} (it reported {', '.join(sorted(figures))})"
                echo(f"trial {trial.trial_id} failed: {reason}")
                raise kt.errors.FailedTrialError(reason)
            echo(f"trial {trial.trial_id}: {objective} {figures[objective]:.4f} "
                 f"({stop_reason.replace('_', ' ')}, {figures['trial_seconds']:.0f}s)")
            return figures

        def save_model(self, trial_id, model, step=0):  # the trial's run directory holds it
            pass

        def load_model(self, trial):
            return load_run(os.path.join(tune_dir, TRIALS, trial.trial_id)).model

    return KerasdlTuner(oracle=_oracle(settings, hp), directory=tune_dir, project_name=PROJECT,
                        overwrite=overwrite)


@dataclass
class TuneResult:
    tune_dir: str
    rows: list[dict]  # every trial, best first (failed ones last)
    best_config: str | None  # path of best.yaml
    plot: str | None


def collect(tuner, settings: TuneSettings, tune_dir: str) -> TuneResult:
    """Write tune_results.csv, best.yaml and the objective plot from the oracle's trials."""
    rows = []
    for trial_id, trial in sorted(tuner.oracle.trials.items()):
        metrics = {name: float(trial.metrics.get_last_value(name))
                   for name in (*settings.objectives(), *TRIAL_FIGURES) if trial.metrics.exists(name)}
        last_line = (trial.message or "").strip().splitlines()[-1:]  # a failure's reason
        rows.append({"trial": trial_id, "status": str(trial.status).split(".")[-1].lower(), **metrics,
                     **trial.hyperparameters.values, "message": last_line[0] if last_line else ""})
    done = [r for r in rows if r.get(settings.objective) is not None and r["status"] == "completed"]
    done.sort(key=lambda r: r[settings.objective], reverse=settings.direction() == "max")
    ranked = done + [r for r in rows if r not in done]
    keys = []
    for r in ranked:
        keys += [k for k in r if k not in keys]
    with open(os.path.join(tune_dir, RESULTS_CSV), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(ranked)
    best_path = None
    if done:
        best = done[0]
        base = RunConfig.from_mapping(settings.base, source=SETTINGS)
        values = {k: v for k, v in best.items() if k in settings.space}
        config = apply_values(base, values).replace(monitor=trial_monitor(settings.objective))  # as in the trial
        if "tuner/epochs" in best:  # hyperband: retrain the best for the full budget
            config = config.replace(epochs=int(settings.base.get("epochs", config.epochs)))
        best_path = os.path.join(tune_dir, BEST_YAML)
        data = config.to_dict()
        data.pop("name", None)
        with open(best_path, "w", encoding="utf-8") as f:
            f.write(f"# best of {len(rows)} trials ({settings.tuner} search): trial {best['trial']}, "
                    f"{settings.objective} {best[settings.objective]:.6g}\n")
            f.write(f"# retrain: kerasdl train --config {best_path}\n")
            yaml.safe_dump(data, f, sort_keys=False)
    plot = _plot(rows, settings, tune_dir) if done else None
    return TuneResult(tune_dir, ranked, best_path, plot)


def _plot(rows: list[dict], settings: TuneSettings, tune_dir: str) -> str:
    from kerasdl.plots import save, plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    xs = [i + 1 for i, r in enumerate(rows) if r.get(settings.objective) is not None]
    ys = [r[settings.objective] for r in rows if r.get(settings.objective) is not None]
    ax.plot(xs, ys, "o", color="tab:blue", label="trial")
    best, running = [], None
    for y in ys:
        running = y if running is None else (max(running, y) if settings.direction() == "max"
                                             else min(running, y))
        best.append(running)
    ax.step(xs, best, where="post", color="tab:red", label="best so far")
    failed = [i + 1 for i, r in enumerate(rows) if r["status"] != "completed"]
    for x in failed:
        ax.axvline(x, color="gray", ls=":", lw=1)
    ax.set(xlabel="trial (in order of creation)", ylabel=settings.objective,
           title=f"{settings.tuner} search: {settings.objective} per trial" + (" (dotted: failed)" if failed else ""))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save(fig, os.path.join(tune_dir, PLOT))


def prepare(settings: TuneSettings, tune_dir: str, *, resume: bool = False, overwrite: bool = False) -> None:
    """Check the settings and create (or check, to resume) the tune directory with tune.yaml."""
    settings.check()
    RunConfig.from_mapping(settings.base, source="tune base config")  # bad base values: refused now
    if resume:
        if not os.path.isdir(os.path.join(tune_dir, PROJECT)):
            raise KerasdlUsageError(f"nothing to resume in {tune_dir} (no {PROJECT}/ search state)")
    elif os.path.exists(tune_dir):
        if not overwrite:
            raise KerasdlUsageError(f"tune directory {tune_dir} already exists; pass --overwrite to replace it "
                                    f"or --resume {tune_dir} to continue it")
        import shutil

        shutil.rmtree(tune_dir)
    os.makedirs(tune_dir, exist_ok=True)
    settings.save(tune_dir)


def tune(settings: TuneSettings, tune_dir: str, *, resume: bool = False, overwrite: bool = False,
         echo=print, workers: int = 0) -> TuneResult:
    """Run (or continue) a search; returns the ranked trials and the best config's path.

    ``workers`` > 0 runs the search distributed on this machine: a chief process serving the
    oracle on a free localhost port and ``workers`` processes running trials (:func:`run_distributed`).
    """
    prepare(settings, tune_dir, resume=resume, overwrite=overwrite)
    if workers:
        return run_distributed(settings, tune_dir, workers, echo=echo)
    return search(settings, tune_dir, echo=echo)


def search(settings: TuneSettings, tune_dir: str, *, echo=print) -> TuneResult:
    """Run the search in this process. Under the KERASTUNER_* environment variables of a
    distributed search this process is the chief (it serves the oracle, then writes the results)
    or a worker (it runs the trials the chief hands out)."""
    tuner = make_tuner(settings, tune_dir, overwrite=False, echo=echo)
    if is_worker():
        tuner.search(verbose=0)  # until the chief's oracle says stop; the chief writes the results
        return TuneResult(tune_dir, [], None, None)
    try:
        tuner.search(verbose=0)
    except RuntimeError as exc:  # Keras Tuner: too many consecutive failed trials
        if "consecutive" not in str(exc):
            raise
        from kerasdl.engine.fit import TrainingFailed

        collect(tuner, settings, tune_dir)  # what did finish is still written down
        raise TrainingFailed(f"search stopped: {settings.max_consecutive_failed_trials} trials in a row failed; "
                             f"see {os.path.join(tune_dir, RESULTS_CSV)}") from None
    return collect(tuner, settings, tune_dir)


CHIEF_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def is_worker() -> bool:
    """True in a worker process of a distributed search (it must not write the results)."""
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in os.environ.get("KERASTUNER_TUNER_ID", "")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_distributed(settings: TuneSettings, tune_dir: str, workers: int, *, echo=print) -> TuneResult:
    """Keras Tuner's own distributed search on localhost: ``kerasdl tune --join DIR`` as the chief
    (KERASTUNER_TUNER_ID=chief) and as ``workers`` workers (tuner0, tuner1, ...), all pointed at
    one oracle port. Each process's output goes to ``<tune dir>/logs/<tuner id>.log``."""
    port = _free_port()
    logs = os.path.join(tune_dir, "logs")
    os.makedirs(logs, exist_ok=True)
    procs = []
    try:
        for tuner_id in ["chief", *(f"tuner{i}" for i in range(workers))]:
            env = dict(os.environ, KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1",
                       KERASTUNER_ORACLE_PORT=str(port))
            log = open(os.path.join(logs, f"{tuner_id}.log"), "w", encoding="utf-8")
            # cwd: the tune directory, so `-m kerasdl` never picks up a source checkout's kerasdl/
            # (the repo root has one without cli/ and models/, which only installing maps in).
            procs.append((tuner_id, log, subprocess.Popen(
                [sys.executable, "-m", "kerasdl", "tune", "--join", os.path.abspath(tune_dir)], env=env,
                stdout=log, stderr=subprocess.STDOUT, cwd=os.path.abspath(tune_dir))))
            if tuner_id == "chief":
                time.sleep(1.0)  # the chief's gRPC server first
        echo(f"chief and {workers} workers on 127.0.0.1:{port}; logs in {logs}")
        codes = {tuner_id: proc.wait() for tuner_id, _, proc in procs}
    finally:
        for _, log, proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
            log.close()
    failed = {k: v for k, v in codes.items() if v != 0}
    if failed:
        from kerasdl.engine.fit import TrainingFailed

        raise TrainingFailed(f"distributed search processes failed: {failed}; see {logs}")
    tuner = make_tuner(settings, tune_dir, overwrite=False, echo=echo)  # reloads the chief's saved oracle
    return collect(tuner, settings, tune_dir)
