"""Hyperparameter search on Keras Tuner: ``kerasdl tune``.

Every trial is an ordinary kerasdl training run (:func:`kerasdl.training.train`) in
``<tune dir>/trials/<trial id>/``: the same data pipeline, augmentation, losses, optimisers,
schedules, NaN guard and checkpoints as ``kerasdl train``. Keras Tuner's oracles
(Li et al. 2018 Hyperband; Snoek et al. 2012-style Bayesian optimisation with a Gaussian process;
random and grid search) propose the hyperparameters and keep the search state on disk, which is
what makes ``--resume`` and the chief/worker distributed search work.

The search space is declared per model family (:func:`default_space`): learning rate, optimiser,
batch size and augmentation strength for every model, plus the builder options the family's
builder accepts (width, depth, dropout, activation, ...). A YAML file overrides or extends it::

    learning_rate: {type: float, min: 1.0e-4, max: 1.0e-2, log: true}
    optimizer: {type: choice, values: [adam, nesterov]}
    model_opt.width: {type: int, min: 32, max: 512, step: 32}
    model_opt.dropout: {type: fixed, value: 0.1}

Objectives are measured on the **validation** split after the trial (its best checkpoint):
``val_loss``, ``val_accuracy``, ``val_nll``, ``val_ece`` (15 bins). The test split is never seen.
A trial that fails -- the loss turns NaN before any epoch finished, a builder refuses a
combination, the data cannot be loaded -- is recorded as failed with its reason and the search
goes on (up to ``max_consecutive_failed_trials``).

Hyperband gives each trial a number of epochs (``tuner/epochs``); a trial that continues an
earlier one (``tuner/trial_id``) starts from that trial's best weights, like Keras Tuner's own
Hyperband tuner does.
"""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from kerasdl import runs
from kerasdl.callbacks import monitor_mode
from kerasdl.config import RunConfig, read_yaml
from kerasdl.errors import KerasdlUsageError, UnknownNameError

TUNERS = ("random", "grid", "bayesian", "hyperband")
OBJECTIVES = ("val_loss", "val_accuracy", "val_nll", "val_ece")  # direction: callbacks.monitor_mode
SETTINGS = "tune.yaml"  # the search's own settings (resume reads them back)
RESULTS_CSV = "tune_results.csv"
BEST_YAML = "best.yaml"
PLOT = "tune_objective.png"
TRIALS = "trials"
PROJECT = "oracle"  # Keras Tuner's project folder inside the tune directory

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


def default_space(model: str, task: str = "classification") -> dict[str, dict]:
    """The search space of ``model``: the common hyperparameters plus the builder options
    (``model_opt.<name>``) the family's builder accepts."""
    from kerasdl.models import model_info

    overrides = set(model_info(model).overrides)
    space = dict(COMMON_SPACE)
    if task != "classification":
        space["augment"] = {"type": "fixed", "value": "none"}
    for name, spec in FAMILY_OPTIONS.items():
        if name in overrides:
            space[f"model_opt.{name}"] = spec
    return space


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
    if field_name not in RunConfig.__dataclass_fields__ and not name.startswith("model_opt."):
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


def apply_values(base: RunConfig, values: dict[str, Any]) -> RunConfig:
    """``base`` with a trial's hyperparameter values (``tuner/*`` bookkeeping left out)."""
    changes, options = {}, dict(base.model_options)
    for name, value in values.items():
        if name.startswith("tuner/"):
            continue
        if name.startswith("model_opt."):
            options[name.split(".", 1)[1]] = value
        else:
            changes[name] = value
    return base.replace(model_options=options, **changes)


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

    def check(self) -> None:
        if self.tuner not in TUNERS:
            raise UnknownNameError("tuner", str(self.tuner), TUNERS)
        if self.objective not in OBJECTIVES:
            raise UnknownNameError("objective", str(self.objective), OBJECTIVES)
        if not isinstance(self.max_trials, int) or self.max_trials < 1:
            raise KerasdlUsageError(f"max_trials must be a positive integer. Received: {self.max_trials!r}")
        for name, spec in self.space.items():
            check_spec(name, spec)

    def save(self, tune_dir: str) -> None:
        from dataclasses import asdict

        from kerasdl.config import write_yaml

        write_yaml(os.path.join(tune_dir, SETTINGS), asdict(self))

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


def _oracle(settings: TuneSettings, hp):
    import keras_tuner as kt

    objective = kt.Objective(settings.objective, direction=monitor_mode(settings.objective))
    common = dict(objective=objective, hyperparameters=hp, seed=settings.seed,
                  max_consecutive_failed_trials=settings.max_consecutive_failed_trials)
    if settings.tuner == "random":
        return kt.oracles.RandomSearchOracle(max_trials=settings.max_trials, **common)
    if settings.tuner == "grid":
        return kt.oracles.GridSearchOracle(max_trials=settings.max_trials, **common)
    if settings.tuner == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(max_trials=settings.max_trials, **common)
    # Hyperband: max_trials is read as the largest epoch budget of a trial.
    base_epochs = int(settings.base.get("epochs", 20))
    return kt.oracles.HyperbandOracle(max_epochs=base_epochs, factor=settings.hyperband_factor,
                                      hyperband_iterations=1, **common)


def validation_figures(run_dir: str, config: RunConfig) -> dict:
    """Validation loss, accuracy, NLL and ECE of a finished trial's best checkpoint."""
    from kerasdl.evaluation import evaluate_model
    from kerasdl.training import load_splits

    run = runs.load_run(run_dir)
    data, _ = load_splits(config, ("validation",), shuffle_train=False)
    report = evaluate_model(run.model, data["validation"], run.info)
    out = {"val_loss": float(report["loss"])}
    for key in ("accuracy", "nll", "ece"):
        if key in report:
            out[f"val_{key}"] = float(report[key])
    return out


def make_tuner(settings: TuneSettings, tune_dir: str, *, overwrite: bool, echo=print):
    """The Keras Tuner ``Tuner`` whose trials are kerasdl training runs."""
    import keras_tuner as kt

    from kerasdl.training import TrainingFailed, train

    hp = hyperparameters(settings.space, grid=settings.tuner == "grid")
    base = RunConfig.from_mapping(settings.base, source=SETTINGS)
    objective = settings.objective

    class KerasdlTuner(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            import gc

            import keras

            keras.backend.clear_session()  # drop the last trial's graphs and layer-name counters
            gc.collect()
            values = dict(trial.hyperparameters.values)
            config = apply_values(base, values)
            parent = values.get("tuner/trial_id")
            epochs = int(values.get("tuner/epochs", config.epochs))
            config = config.replace(
                name=trial.trial_id, output_dir=os.path.join(tune_dir, TRIALS), epochs=epochs,
                monitor="val_accuracy" if objective == "val_accuracy" else "val_loss",
                calibrate=False, export=False, ensemble=1,
                init_from=os.path.join(tune_dir, TRIALS, parent) if parent else config.init_from,
            )
            shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in values.items() if not k.startswith("tuner/") or k == "tuner/epochs")
            echo(f"trial {trial.trial_id}: {shown}")
            t0 = time.perf_counter()
            try:
                result = train(config, overwrite=True, echo=lambda *_: None, progress=False)
            except (TrainingFailed, KerasdlUsageError) as exc:
                echo(f"trial {trial.trial_id} failed: {exc}")
                raise kt.errors.FailedTrialError(str(exc)) from None
            figures = validation_figures(result.run_dir, config)
            if not all(math.isfinite(v) for v in figures.values()):
                raise kt.errors.FailedTrialError(f"non-finite validation figures {figures}")
            figures["trial_seconds"] = round(time.perf_counter() - t0, 2)
            echo(f"trial {trial.trial_id}: {objective} {figures[objective]:.4f} "
                 f"({result.stop_reason.replace('_', ' ')}, {figures['trial_seconds']:.0f}s)")
            return figures

        def save_model(self, trial_id, model, step=0):  # the trial's run directory holds it
            pass

        def load_model(self, trial):
            return runs.load_run(os.path.join(tune_dir, TRIALS, trial.trial_id)).model

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
                   for name in (*OBJECTIVES, "trial_seconds") if trial.metrics.exists(name)}
        last_line = (trial.message or "").strip().splitlines()[-1:]  # a failure's reason
        rows.append({"trial": trial_id, "status": str(trial.status).split(".")[-1].lower(), **metrics,
                     **trial.hyperparameters.values, "message": last_line[0] if last_line else ""})
    done = [r for r in rows if r.get(settings.objective) is not None and r["status"] == "completed"]
    done.sort(key=lambda r: r[settings.objective], reverse=monitor_mode(settings.objective) == "max")
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
        config = apply_values(base, values)
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
    from kerasdl.plots import _save, plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    xs = [i + 1 for i, r in enumerate(rows) if r.get(settings.objective) is not None]
    ys = [r[settings.objective] for r in rows if r.get(settings.objective) is not None]
    ax.plot(xs, ys, "o", color="tab:blue", label="trial")
    best, running = [], None
    for y in ys:
        running = y if running is None else (max(running, y) if monitor_mode(settings.objective) == "max"
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
    return _save(fig, os.path.join(tune_dir, PLOT))


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
        from kerasdl.training import TrainingFailed

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
    import subprocess
    import sys

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
        from kerasdl.training import TrainingFailed

        raise TrainingFailed(f"distributed search processes failed: {failed}; see {logs}")
    tuner = make_tuner(settings, tune_dir, overwrite=False, echo=echo)  # reloads the chief's saved oracle
    return collect(tuner, settings, tune_dir)
