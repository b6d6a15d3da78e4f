"""Export a run as a TensorFlow SavedModel in the TF Serving layout: ``<root>/<name>/<version>/``.

``<name>`` is the run's name unless one is given, and a name holds one *lineage*: versions 1, 2,
... are re-exports of runs that share the serving contract -- the same model, dataset, task,
input shape and dtype, and classes (:func:`lineage`). Re-exporting a run, or exporting a retrained
run of the same setup under the same ``--name``, adds a version; anything else exported to a taken
name is refused, so a server never swaps an mnist classifier for a CSV one.

The ``serving_default`` signature takes raw inputs as the dataset stores them (e.g. uint8 images
of shape (N, 28, 28, 1)), applies the dataset's normalisation, runs the network in inference mode
and returns ``probabilities`` (softmax of the logits, after the run's calibration map when it has
one -- see :mod:`kerasdl.evaluation.posthoc`) and ``class`` (argmax) -- or ``predictions`` for regression.
It checks its input: a grayscale batch without its channel axis, (N, H, W), gets the axis added;
any other shape raises ``InvalidArgumentError`` naming the expected shape (instead of reaching the
kernels, where a wrong rank can abort the process). Loading needs plain TensorFlow only::

    m = tf.saved_model.load("saved_models/<run-name>/1")
    out = m.signatures["serving_default"](inputs=tf.constant(images))

Writing is atomic: the SavedModel is written into a hidden temporary folder next to the versions
and renamed to the next free version number only once it is complete, so an interrupted export
never leaves a half-written version for a server to pick up.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile

from kerasdl import runs
from kerasdl.runs.load import load_run
from kerasdl.tasks.base import task_name
from kerasdl.tasks.serving import (  # noqa: F401 (the export's serving pieces, importable from here)
    calibrated_logits, checked_inputs, class_logits, raw_input_spec, supervised_outputs, supervised_serving)
from kerasdl.errors import KerasdlUsageError

METADATA = "kerasdl.json"  # next to saved_model.pb; TF Serving ignores it
# The metadata keys that make two exports versions of one model (the serving contract).
LINEAGE_KEYS = ("model", "dataset", "task", "input_shape", "input_dtype", "class_names")


def versions(model_dir: str) -> list[int]:
    """The finished versions under ``model_dir`` (numeric folder names), ascending."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(d) for d in os.listdir(model_dir) if re.fullmatch(r"\d+", d))


def serving_module(model, info, calibrator=None, conformal=None):
    """A keras ExportArchive whose serving_default wraps preprocessing + model + softmax."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    serve, spec, _ = supervised_serving(model, info, None, calibrator, conformal)
    archive.add_endpoint("serving_default", serve, input_signature=[spec])
    return archive


def task_archive(model, endpoints: dict):
    """A keras ExportArchive with the task's endpoints (``serving_default`` first)."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, endpoint in endpoints.items():
        archive.add_endpoint(name, endpoint.fn, input_signature=list(endpoint.input_signature))
    return archive


def lineage(metadata: dict) -> dict:
    """The part of an export's metadata that two versions of one model must share."""
    out = {k: metadata.get(k) for k in LINEAGE_KEYS}
    out["input_shape"] = list(out["input_shape"] or [])
    out["class_names"] = [str(c) for c in out["class_names"] or []]
    return out


def _run_lineage(run_dir: str) -> dict:
    """A run's lineage from its config and dataset.json (nothing built, no TensorFlow)."""
    config = runs.read_config(run_dir)
    info = runs.read_json(runs.path(run_dir, runs.DATASET), {}) or {}
    return lineage({"model": config.model, "dataset": config.dataset, "task": task_name(config, info.get("task")),
                    "input_shape": info.get("input_shape"), "input_dtype": info.get("raw_dtype"),
                    "class_names": info.get("class_names")})


def default_name(run_dir: str) -> str:
    """The export name of a run: its folder name (``runs/lenet5-mnist5k-...`` -> ``lenet5-mnist5k-...``)."""
    return os.path.basename(os.path.normpath(os.path.abspath(run_dir)))


def check_name(name: str) -> None:
    """A name is one folder: refuse empty, dotted or nested ones before anything is written."""
    if not name or name in (".", "..") or name.startswith(".") or "/" in name or os.sep in name:
        raise KerasdlUsageError(f"export name {name!r} must be a plain folder name (no '/', not starting with '.')")


def check_lineage(run_dir: str, model_dir: str) -> None:
    """Refuse to add ``run_dir`` as a version of ``model_dir`` when the latest version there is
    another model (different model, dataset, task, input signature or classes) or not kerasdl's."""
    found = versions(model_dir)
    if not found:
        return
    latest = os.path.join(model_dir, str(found[-1]))
    meta = runs.read_json(os.path.join(latest, METADATA), None)
    mine = _run_lineage(run_dir)
    if not meta:
        raise KerasdlUsageError(f"{model_dir} holds versions not exported by kerasdl (no {METADATA} in "
                                f"{latest}); choose another --name")
    theirs = lineage(meta)
    differ = [k for k in LINEAGE_KEYS if theirs[k] != mine[k]]
    if differ:
        what = ", ".join(f"{k} {theirs[k]!r} there vs {mine[k]!r}" for k in differ[:2] if k != "class_names")
        what = what or "its classes differ"
        raise KerasdlUsageError(f"{model_dir} holds another model ({what}); a name's versions share model, "
                                f"dataset and input signature; choose another --name (the default is the run's "
                                f"name, {default_name(run_dir)})")


def export_target(run_dir: str, export_root: str = "saved_models", name: str | None = None) -> str:
    """``<export_root>/<name>`` for the run (``name`` defaults to the run's name), or a usage error
    when the run is not one or the name holds another lineage. Writes nothing, imports no TensorFlow."""
    runs.check_run_dir(run_dir, need_weights=False)
    name = name or default_name(run_dir)
    check_name(name)
    model_dir = os.path.join(export_root, name)
    check_lineage(run_dir, model_dir)
    return model_dir


def export_run(run_dir: str, export_root: str = "saved_models", name: str | None = None) -> str:
    """Export the run's best checkpoint as the next version of ``<export_root>/<name>``.

    ``name`` defaults to the run's name. A name whose versions came from another lineage (see
    :func:`check_lineage`) is refused before anything is written. Returns the new version folder.
    """
    model_dir = export_target(run_dir, export_root, name)
    run = load_run(run_dir)
    os.makedirs(model_dir, exist_ok=True)
    _remove_stale_temporaries(model_dir)

    from kerasdl.evaluation import posthoc

    task = run.task
    from kerasdl.tasks.base import CLASSIFYING

    fitted = posthoc.load(run_dir) if posthoc.calibratable(run.info) and task.data_kind in CLASSIFYING else None
    tmp = tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=model_dir)
    try:
        endpoints = task.endpoints(run.model, run_dir)
        archive = task_archive(run.model, endpoints)
        archive.write_out(tmp, verbose=False)
        outputs = task.export_outputs(run_dir)
        from kerasdl.runs.inputs import STATS_KEY, run_input_stats

        metadata = {
            "name": os.path.basename(model_dir),
            "model": run.config.model,
            "dataset": run.config.dataset,
            "run_dir": os.path.abspath(run_dir),
            "task": task.name,
            "input_shape": list(run.info.input_shape),
            "input_dtype": run.info.raw_dtype,
            "class_names": list(run.info.class_names),
            "dataset_info": run.info.to_dict(),
            STATS_KEY: run_input_stats(run_dir, run.config),  # kerasdl predict warns on inputs far from these
            "outputs": outputs,
            "signatures": list(endpoints),
            "test_metrics": {k: v for k, v in (runs.read_json(runs.path(run_dir, runs.METRICS), {})
                                               .get("test", {})).items()
                             if isinstance(v, (int, float))},
        }
        if fitted is not None and fitted.calibrator is not None:  # T (or the map) and the test figures
            metadata["calibration"] = posthoc.summary(fitted.record)
        runs.write_json(os.path.join(tmp, METADATA), metadata)
        return _publish(tmp, model_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _publish(tmp: str, model_dir: str) -> str:
    """Rename the finished temporary folder to the next free version (atomic on one filesystem)."""
    while True:
        version = (versions(model_dir) or [0])[-1] + 1
        target = os.path.join(model_dir, str(version))
        try:
            os.rename(tmp, target)  # fails if another exporter took this number first
            return target
        except OSError:
            if not os.path.exists(target):
                raise


def _remove_stale_temporaries(model_dir: str) -> None:
    """Delete temporaries left by exports that were killed (their process is gone)."""
    for entry in os.listdir(model_dir):
        match = re.fullmatch(r"\.tmp-(\d+)-.*", entry)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(os.path.join(model_dir, entry), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
