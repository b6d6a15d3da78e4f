"""Export a run as a TensorFlow SavedModel in the TF Serving layout: ``<root>/<model>/<version>/``.

The ``serving_default`` signature takes raw inputs as the dataset stores them (e.g. uint8 images
of shape (N, 28, 28, 1)), applies the dataset's normalisation, runs the network in inference mode
and returns ``probabilities`` (softmax of the logits, after the run's calibration map when it has
one -- see :mod:`kerasdl.posthoc`) and ``class`` (argmax) -- or ``predictions`` for regression.
Loading needs plain TensorFlow only::

    m = tf.saved_model.load("saved_models/lenet5/1")
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

METADATA = "kerasdl.json"  # next to saved_model.pb; TF Serving ignores it


def versions(model_dir: str) -> list[int]:
    """The finished versions under ``model_dir`` (numeric folder names), ascending."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(d) for d in os.listdir(model_dir) if re.fullmatch(r"\d+", d))


def class_logits(outputs):
    """TF twin of :func:`kerasdl.metrics.class_logits`: a sigmoid logit z -> softmax logits (0, z)."""
    import tensorflow as tf

    if outputs.shape[-1] == 1:
        return tf.concat([tf.zeros_like(outputs), outputs], axis=-1)
    return outputs


def calibrated_logits(logits, calibrator=None):
    """TF twin of :meth:`kerasdl.calibration.Calibrator.apply` (float32 constants in the graph)."""
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
    spec = tf.TensorSpec([None, *info.input_shape], tf.as_dtype(info.raw_dtype), name="inputs")

    def serve(inputs):
        outputs = model(normalize(inputs, info), training=False)
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


def export_run(run_dir: str, export_root: str = "saved_models", name: str | None = None) -> str:
    """Export the run's best checkpoint as the next version of ``<export_root>/<name>``.

    Returns the path of the new version folder.
    """
    run = runs.load_run(run_dir)
    name = name or run.config.model
    model_dir = os.path.join(export_root, name)
    os.makedirs(model_dir, exist_ok=True)
    _remove_stale_temporaries(model_dir)

    from kerasdl import posthoc

    fitted = posthoc.load(run_dir) if posthoc.calibratable(run.info) else None
    calibrator = fitted.calibrator if fitted else None
    conformal = fitted.conformal.get("lac") if fitted else None
    tmp = tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=model_dir)
    try:
        archive = serving_module(run.model, run.info, calibrator, conformal)
        archive.write_out(tmp, verbose=False)
        outputs = ["probabilities", "class"] + (["uncalibrated_probabilities"] if calibrator else []) \
            + (["prediction_set"] if conformal else [])
        metadata = {
            "model": run.config.model,
            "dataset": run.config.dataset,
            "run_dir": os.path.abspath(run_dir),
            "task": run.info.task,
            "input_shape": list(run.info.input_shape),
            "input_dtype": run.info.raw_dtype,
            "class_names": list(run.info.class_names),
            "dataset_info": run.info.to_dict(),
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
