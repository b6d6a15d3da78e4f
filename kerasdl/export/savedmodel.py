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
from kerasdl.errors import KerasdlUsageError

METADATA = "kerasdl.json"  # next to saved_model.pb; TF Serving ignores it
# The metadata keys that make two exports versions of one model (the serving contract).
LINEAGE_KEYS = ("model", "dataset", "task", "input_shape", "input_dtype", "class_names")


def versions(model_dir: str) -> list[int]:
    """The finished versions under ``model_dir`` (numeric folder names), ascending."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(d) for d in os.listdir(model_dir) if re.fullmatch(r"\d+", d))


def class_logits(outputs):
    """TF twin of :func:`kerasdl.evaluation.metrics.class_logits`: a sigmoid logit z -> softmax logits (0, z)."""
    import tensorflow as tf

    if outputs.shape[-1] == 1:
        return tf.concat([tf.zeros_like(outputs), outputs], axis=-1)
    return outputs


def calibrated_logits(logits, calibrator=None):
    """TF twin of :meth:`kerasdl.evaluation.calibration.Calibrator.apply` (float32 constants in the graph)."""
    import tensorflow as tf

    if calibrator is None:
        return logits
    params = {k: tf.constant(v, tf.float32) for k, v in calibrator.params.items()}
    if calibrator.kind == "temperature":
        return logits / params["temperature"]
    if calibrator.kind == "vector":
        return logits * params["w"] + params["b"]
    return tf.matmul(logits, params["W"]) + params["b"]


def serving_module(model, info, calibrator=None, conformal=None):
    """A keras ExportArchive whose serving_default wraps preprocessing + model + softmax.

    With a ``calibrator`` the probabilities are the calibrated ones (``uncalibrated_probabilities``
    keeps the raw softmax); with a LAC ``conformal`` predictor a boolean ``prediction_set`` (N, K)
    holds the classes whose calibrated probability is >= 1 - qhat.
    """
    import keras
    import tensorflow as tf

    from kerasdl.data import normalize

    archive = keras.export.ExportArchive()
    archive.track(model)
    # Any rank: serve() checks the shape itself (a fixed-rank spec is not enforced when a client
    # calls the signature, and a wrong rank reaching oneDNN kernels aborts the process).
    spec = tf.TensorSpec(None, tf.as_dtype(info.raw_dtype), name="inputs")

    def serve(inputs):
        outputs = model(normalize(checked_inputs(inputs, info.input_shape), info), training=False)
        if info.task == "regression":
            return {"predictions": outputs[:, 0]}
        logits = class_logits(outputs)
        probabilities = tf.nn.softmax(calibrated_logits(logits, calibrator), axis=-1)
        out = {"probabilities": probabilities, "class": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}
        if calibrator is not None:
            out["uncalibrated_probabilities"] = tf.nn.softmax(logits, axis=-1)
        if conformal is not None:
            out["prediction_set"] = 1.0 - probabilities <= tf.constant(conformal.qhat, tf.float32)
        return out

    archive.add_endpoint("serving_default", serve, input_signature=[spec])
    return archive


def checked_inputs(inputs, input_shape):
    """``inputs`` as a (N, *input_shape) tensor, or an ``InvalidArgumentError`` naming the shape.

    A grayscale image batch without its channel axis, (N, H, W) for input_shape (H, W, 1), gets
    the axis added; any other rank or size fails ``tf.ensure_shape`` with the expected shape.
    """
    import tensorflow as tf

    n = len(input_shape)
    wanted = "(N, " + ", ".join(map(str, input_shape)) + ")"
    if n == 3 and input_shape[-1] == 1:
        wanted += " or (N, " + ", ".join(map(str, input_shape[:2])) + ")"
        inputs = tf.cond(tf.equal(tf.rank(inputs), n), lambda: tf.expand_dims(inputs, -1), lambda: inputs)
    shape = tf.shape(inputs)
    fits = tf.cond(tf.equal(tf.size(shape), n + 1),
                   lambda: tf.reduce_all(tf.equal(shape[1:], tf.constant(list(input_shape), tf.int32))),
                   lambda: tf.constant(False))
    check = tf.debugging.Assert(fits, [f"inputs must have shape {wanted}; received shape", shape], summarize=8)
    with tf.control_dependencies([check]):
        return tf.ensure_shape(tf.identity(inputs), [None, *input_shape])


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
    return lineage({"model": config.model, "dataset": config.dataset, "task": info.get("task"),
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
    run = runs.load_run(run_dir)
    os.makedirs(model_dir, exist_ok=True)
    _remove_stale_temporaries(model_dir)

    from kerasdl.evaluation import posthoc

    fitted = posthoc.load(run_dir) if posthoc.calibratable(run.info) else None
    calibrator = fitted.calibrator if fitted else None
    conformal = fitted.conformal.get("lac") if fitted else None
    tmp = tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=model_dir)
    try:
        archive = serving_module(run.model, run.info, calibrator, conformal)
        archive.write_out(tmp, verbose=False)
        outputs = ["probabilities", "class"] + (["uncalibrated_probabilities"] if calibrator else []) \
            + (["prediction_set"] if conformal else [])
        from kerasdl.predict import STATS_KEY, run_input_stats

        metadata = {
            "name": os.path.basename(model_dir),
            "model": run.config.model,
            "dataset": run.config.dataset,
            "run_dir": os.path.abspath(run_dir),
            "task": run.info.task,
            "input_shape": list(run.info.input_shape),
            "input_dtype": run.info.raw_dtype,
            "class_names": list(run.info.class_names),
            "dataset_info": run.info.to_dict(),
            STATS_KEY: run_input_stats(run_dir, run.config),  # kerasdl predict warns on inputs far from these
            "outputs": ["predictions"] if run.info.task == "regression" else outputs,
            "test_metrics": {k: v for k, v in (runs.read_json(runs.path(run_dir, runs.METRICS), {})
                                               .get("test", {})).items()
                             if isinstance(v, (int, float))},
        }
        if calibrator is not None:  # T (or the map) and the test figures before/after
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
