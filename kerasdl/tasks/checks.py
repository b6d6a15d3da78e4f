"""Checks of a run's model against its dataset, made before any run folder exists.

:func:`check_task` compares the registry's task of the model with the dataset's task before the
model is built; :func:`check_built_model` compares the built model's output with the dataset's
labels and the run's ``monitor`` with the metric names the compiled model will log. Both raise
:class:`~kerasdl.errors.KerasdlUsageError` (one line, exit code 2). ``kerasdl.engine.fit`` calls them
from ``build_for_dataset``, the one place where a model meets a dataset, so single runs,
ensembles and tuning trials are all covered.

Nothing here imports TensorFlow at module level.
"""

from __future__ import annotations

from typing import Sequence

from kerasdl.errors import KerasdlUsageError, UnknownNameError

# Dataset tasks each registry task can train on: a classifier's head also fits a regression
# target (one linear unit), a segmenter needs per-pixel masks.
FITS = {"classification": ("classification", "regression"), "segmentation": ("segmentation",)}
LABELS = {
    "classification": "one class per example",
    "regression": "one number per example",
    "segmentation": "one class per pixel",
}
SHORT_LIST = 6  # name the fitting models when there are at most this many


def check_task(model: str, dataset: str, dataset_task: str, requested: str = "auto") -> None:
    """Refuse a model whose registry task cannot train on a ``dataset_task`` set (e.g. a classifier
    on segmentation masks, a segmenter on class labels), and a ``--task`` other than ``auto`` that
    is not the dataset's task (the current tasks are fixed by the data)."""
    from kerasdl.models import list_models, model_info

    if requested not in ("auto", dataset_task):
        raise KerasdlUsageError(
            f"task {requested!r} does not fit dataset {dataset!r}, a {dataset_task} set "
            f"({LABELS.get(dataset_task, dataset_task)}); use --task {dataset_task} or --task auto"
        )
    task = model_info(model).task
    if dataset_task in FITS.get(task, (task,)):
        return
    fitting = [m for m in list_models() if dataset_task in FITS.get(model_info(m).task, (model_info(m).task,))]
    hint = (", ".join(fitting) if 0 < len(fitting) <= SHORT_LIST
            else "see 'kerasdl models'" if fitting else "no registered model does")
    raise KerasdlUsageError(
        f"model {model!r} is a {task} model, but dataset {dataset!r} is a {dataset_task} set "
        f"({LABELS.get(dataset_task, dataset_task)}); pick a model for {dataset_task} ({hint})"
    )


def expected_output(info, units: int) -> tuple:
    """The per-example output shape the dataset's labels need: ``(units,)`` or ``(H, W, units)``."""
    if info.task == "segmentation":
        return (*tuple(info.input_shape)[:2], units)
    return (units,)


def metric_names(output_names: Sequence[str], metrics: Sequence) -> list[str]:
    """Every name keras logs for a model compiled with ``metrics`` on its first output (and only
    losses on any further, auxiliary outputs): ``loss``, the metrics, and their ``val_`` twins.

    With several outputs keras also logs each output's loss and prefixes the metrics with the
    first output's name (``logits_accuracy``).
    """
    names = [m if isinstance(m, str) else m.name for m in metrics]
    if len(output_names) > 1:
        names = [f"{out}_loss" for out in output_names] + [f"{output_names[0]}_{n}" for n in names]
    names = ["loss", *names]
    return names + [f"val_{n}" for n in names]


def check_monitor(monitor: str, names: Sequence[str]) -> None:
    """Refuse a ``monitor`` the run will never log (it would train to the end for nothing)."""
    if monitor not in names:
        raise UnknownNameError("monitor metric", str(monitor), names,
                               extra=f"(this run logs {', '.join(names)})")


def check_built_model(model, config, info, units: int, metrics: Sequence) -> None:
    """The built model's output fits the dataset's labels and the run's monitor is a logged name."""
    output = tuple(model.outputs[0].shape)[1:]
    expected = expected_output(info, units)
    if output != expected:
        described = "x".join(str(d) for d in output)
        raise KerasdlUsageError(
            f"model {config.model!r} outputs {described} per example, but dataset {config.dataset!r} "
            f"({LABELS.get(info.task, info.task)}) needs {'x'.join(str(d) for d in expected)}"
            + ("; check the model options (e.g. padding='same')" if config.model_options else "")
        )
    check_monitor(config.monitor, metric_names(model.output_names, metrics))
