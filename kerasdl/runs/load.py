"""Reading a run back: its config, dataset info and model with the best weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kerasdl.config import RunConfig
from kerasdl.errors import KerasdlUsageError, first_line
from kerasdl.runs.layout import BEST_WEIGHTS, DATASET, check_run_dir, output_units, path, read_config, read_json


@dataclass
class LoadedRun:
    run_dir: str
    config: RunConfig
    info: Any  # kerasdl.data.DatasetInfo
    model: Any  # keras.Model with the best weights loaded


def load_run(run_dir: str) -> LoadedRun:
    """Rebuild the run's model from its config and load the best checkpoint into it."""
    from kerasdl.data import DatasetInfo
    from kerasdl.models import build_model

    check_run_dir(run_dir, need_weights=False)
    config = read_config(run_dir)
    info = DatasetInfo.from_dict(read_json(path(run_dir, DATASET)))
    if config.ensemble > 1:  # one model made of the members' runs
        from kerasdl.engine.ensemble import load_ensemble

        return LoadedRun(run_dir, config, info, load_ensemble(run_dir, config.ensemble, info.input_shape))
    check_run_dir(run_dir)
    model = build_model(
        config.model, input_shape=tuple(info.input_shape), num_classes=output_units(config, info),
        **config.model_options,
    )
    weights = path(run_dir, BEST_WEIGHTS)
    try:
        model.load_weights(weights)
    except Exception as exc:  # h5py / keras raise many types for a torn or foreign file
        raise KerasdlUsageError(f"corrupt checkpoint {weights}: {first_line(exc)}") from None
    from kerasdl.engine.fit import main_output

    return LoadedRun(run_dir, config, info, main_output(model))
