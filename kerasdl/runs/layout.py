"""The run directory: what a training run leaves behind, and how later commands read it back.

::

    runs/<name>/
      config.yaml              the fully resolved RunConfig (replayable with --config)
      dataset.json             DatasetInfo: shapes, classes, normalisation (used by export/predict)
      history.csv              one row per finished epoch (losses, metrics, learning rate, time)
      metrics.json             status, stop reason, best epoch, test metrics, timings
      checkpoints/best.weights.h5   weights of the best epoch (by the monitored metric)
      model.keras              the final model (best weights), loadable with keras.saving.load_model
      backup/                  BackupAndRestore state while a run is unfinished (enables --resume)
      logs/                    TensorBoard event files
      plots/*.png              learning curves, confusion matrix, reliability diagram
      calibration.json         the calibration map fitted on validation, test figures before/after
      members/member<k>/       an ensemble's members, each a complete run (see kerasdl.engine.ensemble)
"""

from __future__ import annotations

import json
import os
from typing import Any

from kerasdl.config import RunConfig, read_yaml
from kerasdl.errors import KerasdlUsageError, first_line

__all__ = ["CONFIG", "DATASET", "HISTORY", "METRICS", "BEST_WEIGHTS", "MODEL", "BACKUP", "LOGS", "PLOTS",
           "path", "read_json", "write_json", "check_run_dir", "read_config", "output_units"]

CONFIG = "config.yaml"
DATASET = "dataset.json"
HISTORY = "history.csv"
METRICS = "metrics.json"
BEST_WEIGHTS = os.path.join("checkpoints", "best.weights.h5")
MODEL = "model.keras"
BACKUP = "backup"
LOGS = "logs"
PLOTS = "plots"


def path(run_dir: str, name: str) -> str:
    return os.path.join(run_dir, name)


def read_json(file: str, default: Any = None) -> Any:
    if not os.path.exists(file):
        return default
    try:
        with open(file, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise KerasdlUsageError(f"corrupt file {file}: {exc}") from None


def write_json(file: str, value: Any) -> None:
    """Write JSON atomically: a crash leaves either the old file or the new one."""
    tmp = f"{file}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, allow_nan=True)
        f.write("\n")
    os.replace(tmp, file)


def check_run_dir(run_dir: str, *, need_weights: bool = True) -> None:
    """A clear usage error unless ``run_dir`` is a kerasdl run (with trained weights)."""
    if not os.path.isdir(run_dir):
        raise KerasdlUsageError(f"run directory not found: {run_dir}")
    for name in (CONFIG, DATASET):
        if not os.path.isfile(path(run_dir, name)):
            raise KerasdlUsageError(f"{run_dir} is not a kerasdl run directory (no {name})")
    if need_weights and not os.path.isfile(path(run_dir, BEST_WEIGHTS)):
        raise KerasdlUsageError(f"{run_dir} has no checkpoint yet ({BEST_WEIGHTS} is missing)")


def read_config(run_dir: str) -> RunConfig:
    values = read_yaml(path(run_dir, CONFIG))
    try:
        return RunConfig.from_mapping(values, source=path(run_dir, CONFIG))
    except (TypeError, KerasdlUsageError) as exc:
        raise KerasdlUsageError(f"corrupt run config {path(run_dir, CONFIG)}: {exc}") from None


def output_units(config: RunConfig, info) -> int:
    """Width of the model's last layer: one sigmoid logit for binary cross-entropy, else the classes."""
    return 1 if config.loss == "binary_crossentropy" else info.num_classes
