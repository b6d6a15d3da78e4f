"""Listing and comparing run directories (what ``kerasdl runs`` shows).

Reads only the small files a run leaves (``config.yaml``, ``metrics.json``, ``history.csv``),
never TensorFlow, so a listing prints at once. A run that cannot be read is still listed, with
the status ``unreadable``, so one torn file does not hide the others.
"""

from __future__ import annotations

import datetime as _dt
import glob
import math
import os
from dataclasses import dataclass, field

import yaml

from kerasdl import runs
from kerasdl.errors import KerasdlUsageError, UnknownNameError

# Test figures a listing shows, with their direction (True: higher is better).
METRICS = {"accuracy": True, "loss": False, "r2": True, "mean_iou": True, "rel_l2": False}
SORT_KEYS = ("created", "name", "status", "dataset", "model", "epochs", *METRICS)


@dataclass
class RunSummary:
    """One run as a listing shows it."""

    name: str
    path: str
    status: str  # metrics.json's status (running, completed, failed, ...), "unknown" or "unreadable"
    dataset: str = "?"
    model: str = "?"
    ensemble: int = 1
    epochs_run: int | None = None  # finished epochs (the most of any member, for an ensemble)
    epochs: int | None = None  # the configured maximum
    created: float | None = None  # seconds since the epoch: when training first started
    test: dict = field(default_factory=dict)  # the METRICS the run has, as floats

    @property
    def model_label(self) -> str:
        return f"{self.ensemble} x {self.model}" if self.ensemble > 1 else self.model

    @property
    def epochs_label(self) -> str:
        if self.epochs_run is None and self.epochs is None:
            return "-"
        return f"{'-' if self.epochs_run is None else self.epochs_run}/{'-' if self.epochs is None else self.epochs}"

    @property
    def created_label(self) -> str:
        if self.created is None:
            return "-"
        return _dt.datetime.fromtimestamp(self.created).strftime("%Y-%m-%d %H:%M")


def is_run_dir(folder: str) -> bool:
    return os.path.isfile(runs.path(folder, runs.CONFIG))


def list_runs(folder: str, *, sort: str = "created", reverse: bool = False, model: str | None = None,
              dataset: str | None = None) -> list[RunSummary]:
    """The runs directly inside ``folder`` (or ``folder`` itself when it is a run), sorted by ``sort``.

    Figures sort best first (accuracy, r2 and mean_iou high, loss low), runs without the figure
    last; ``created`` sorts oldest first, so the newest run is printed nearest the prompt.
    ``model`` / ``dataset`` keep only runs of that model / dataset.
    """
    if sort not in SORT_KEYS:
        raise UnknownNameError("sort key", sort, SORT_KEYS)
    if not os.path.exists(folder):
        raise KerasdlUsageError(f"runs folder not found: {folder}")
    if not os.path.isdir(folder):
        raise KerasdlUsageError(f"not a folder: {folder} (give the folder that holds the run directories)")
    if is_run_dir(folder):
        candidates = [folder]
    else:
        try:
            names = sorted(os.listdir(folder))
        except OSError as exc:
            raise KerasdlUsageError(f"cannot read {folder}: {exc.strerror}") from None
        candidates = [os.path.join(folder, n) for n in names if is_run_dir(os.path.join(folder, n))]
    found = [summarise(c) for c in candidates]
    found = [r for r in found if (model is None or r.model == model) and (dataset is None or r.dataset == dataset)]
    return sorted(found, key=_sort_key(sort), reverse=reverse)


def summarise(run_dir: str) -> RunSummary:
    """What the listing shows of one run directory."""
    name = os.path.basename(os.path.normpath(run_dir))
    try:
        config = _read_yaml(runs.path(run_dir, runs.CONFIG))
        record = runs.read_json(runs.path(run_dir, runs.METRICS), default=None)
    except (KerasdlUsageError, OSError, yaml.YAMLError):
        return RunSummary(name, run_dir, "unreadable", created=_mtime(runs.path(run_dir, runs.CONFIG)))
    if not isinstance(config, dict) or not (record is None or isinstance(record, dict)):
        return RunSummary(name, run_dir, "unreadable", created=_mtime(runs.path(run_dir, runs.CONFIG)))
    record = record or {}
    ensemble = _int(config.get("ensemble")) or 1
    members = sorted(glob.glob(os.path.join(run_dir, "members", "member*"))) if ensemble > 1 else []
    epochs_run = _int(record.get("epochs_run"))
    if epochs_run is None:
        counts = [c for c in (_history_rows(d) for d in members or [run_dir]) if c is not None]
        epochs_run = max(counts) if counts else None
    test = record.get("test") if isinstance(record.get("test"), dict) else {}
    figures = {k: float(test[k]) for k in METRICS if isinstance(test.get(k), (int, float))}
    return RunSummary(
        name=name, path=run_dir, status=str(record.get("status", "unknown")),
        dataset=str(config.get("dataset", "?")), model=str(config.get("model", "?")), ensemble=ensemble,
        epochs_run=epochs_run, epochs=_int(config.get("epochs")),
        created=_started(run_dir, members), test=figures,
    )


def format_figure(key: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if key == "accuracy":
        return f"{value:.2%}"
    if key == "rel_l2":  # a PINN's relative L2 error: 1e-3 and below
        return f"{value:.2e}"
    return f"{value:.4g}" if key == "loss" else f"{value:.4f}"  # an MSE loss can be in the thousands


def _sort_key(sort: str):
    if sort in METRICS:
        sign = -1.0 if METRICS[sort] else 1.0

        def by_figure(r: RunSummary):
            value = r.test.get(sort)
            missing = value is None or math.isnan(value)
            return (missing, 0.0 if missing else sign * value, r.name)

        return by_figure
    if sort == "created":
        return lambda r: (r.created is None, r.created or 0.0, r.name)
    if sort == "epochs":
        return lambda r: (r.epochs_run is None, -(r.epochs_run or 0), r.name)
    if sort == "model":
        return lambda r: (r.model_label, r.name)
    return lambda r: (str(getattr(r, sort)), r.name)


def _read_yaml(file: str):
    with open(file, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _int(value) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _history_rows(run_dir: str) -> int | None:
    """Finished epochs of a run: the data rows of its history.csv (None before the first epoch)."""
    try:
        with open(runs.path(run_dir, runs.HISTORY), encoding="utf-8") as f:
            return max(sum(1 for line in f if line.strip()) - 1, 0)
    except OSError:
        return None


def _mtime(file: str) -> float | None:
    try:
        return os.path.getmtime(file)
    except OSError:
        return None


def _started(run_dir: str, members: list[str]) -> float | None:
    """When training first started: the earliest TensorBoard event file's timestamp (its name holds
    the creation time, and a resume adds new files rather than renaming old ones), else the time
    config.yaml was written (rewritten by a resume)."""
    times = []
    for folder in [run_dir, *members]:
        for file in glob.glob(os.path.join(folder, runs.LOGS, "*", "events.out.tfevents.*")):
            stamp = os.path.basename(file).split(".")[3]
            if stamp.isdigit():
                times.append(float(stamp))
    config_time = _mtime(runs.path(run_dir, runs.CONFIG))
    if config_time is not None:
        times.append(config_time)
    return min(times) if times else None
