"""Serving functions shared by the tasks' export signatures (TF ops, traced by the export):
shape checks on raw inputs, and the supervised ``serving_default`` (preprocessing + model +
softmax, calibrated when the run was)."""

from __future__ import annotations

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


def _fitted(run_dir: str | None, info):
    """The run's calibration map and LAC conformal predictor (None, None when it has none)."""
    if run_dir is None:
        return None, None
    from kerasdl.evaluation import posthoc

    fitted = posthoc.load(run_dir) if posthoc.calibratable(info) else None
    return (fitted.calibrator if fitted else None), (fitted.conformal.get("lac") if fitted else None)


def raw_input_spec(info):
    """The serving input: raw values of the dataset's dtype, any rank (see :func:`checked_inputs`)."""
    import tensorflow as tf

    # Any rank: serve() checks the shape itself (a fixed-rank spec is not enforced when a client
    # calls the signature, and a wrong rank reaching oneDNN kernels aborts the process).
    return tf.TensorSpec(None, tf.as_dtype(info.raw_dtype), name="inputs")


def supervised_serving(model, info, run_dir: str | None = None, calibrator=None, conformal=None):
    """``(serve, input_spec, outputs)``: preprocessing + model + softmax on raw inputs.

    With a ``calibrator`` (the run's, when ``run_dir`` has one) the probabilities are the
    calibrated ones (``uncalibrated_probabilities`` keeps the raw softmax); with a LAC ``conformal``
    predictor a boolean ``prediction_set`` (N, K) holds the classes whose calibrated probability is
    >= 1 - qhat. A regressor returns ``predictions``.
    """
    import tensorflow as tf

    from kerasdl.data import normalize

    if run_dir is not None:
        calibrator, conformal = _fitted(run_dir, info)

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

    if info.task == "regression":
        outputs = ["predictions"]
    else:
        outputs = ["probabilities", "class"] + (["uncalibrated_probabilities"] if calibrator else []) \
            + (["prediction_set"] if conformal else [])
    return serve, raw_input_spec(info), outputs


def supervised_outputs(info, run_dir: str) -> list[str]:
    """The ``serving_default`` output names of a supervised run's export."""
    if info.task == "regression":
        return ["predictions"]
    calibrator, conformal = _fitted(run_dir, info)
    return ["probabilities", "class"] + (["uncalibrated_probabilities"] if calibrator else []) \
        + (["prediction_set"] if conformal else [])


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
