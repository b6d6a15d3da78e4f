"""Reading a run back: its config, dataset info and model with the best weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kerasdl.config import RunConfig
from kerasdl.errors import KerasdlUsageError, first_line
from kerasdl.runs.layout import BEST_WEIGHTS, DATASET, check_run_dir, path, read_config, read_json


@dataclass
class LoadedRun:
    run_dir: str
    config: RunConfig
    info: Any  # kerasdl.data.DatasetInfo
    model: Any  # the task's inference keras.Model with the best weights loaded
    task: Any = None  # kerasdl.tasks.Task of the run


def load_run(run_dir: str) -> LoadedRun:
    """Rebuild the run's model (its task's inference model) from its config and load the best
    checkpoint into it."""
    from kerasdl.data import DatasetInfo
    from kerasdl.tasks import resolve_task

    check_run_dir(run_dir, need_weights=False)
    config = read_config(run_dir)
    info = DatasetInfo.from_dict(read_json(path(run_dir, DATASET)))
    task = resolve_task(config, info)
    task.run_dir = run_dir  # where a task finds what it stored beside the weights (e.g. a VQ-VAE's prior)
    if config.ensemble > 1:  # one model made of the members' runs
        from kerasdl.engine.ensemble import load_ensemble

        return LoadedRun(run_dir, config, info, load_ensemble(run_dir, config.ensemble, info.input_shape,
                                                                 lambda where: load_run(where).model), task)
    check_run_dir(run_dir)
    model = task.rebuild()
    weights = path(run_dir, BEST_WEIGHTS)
    try:
        model.load_weights(weights)
    except Exception as exc:  # h5py / keras raise many types for a torn or foreign file
        raise KerasdlUsageError(f"corrupt checkpoint {weights}: {first_line(exc)}") from None
    return LoadedRun(run_dir, config, info, task.inference_model(model), task)
