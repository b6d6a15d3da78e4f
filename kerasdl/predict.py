"""Predict with a run directory or an exported SavedModel on image files, ``.npz`` or ``.csv``.

Both paths compute the same thing -- normalise the raw input, run the network in inference mode,
softmax -- so a run and its export agree to float32 rounding.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from kerasdl import runs
from kerasdl.errors import KerasdlUsageError, UnknownNameError
from kerasdl.uncertainty import SCORES


@dataclass
class Predictions:
    names: list[str]  # one per example: the file, or file[row] for .npz/.csv
    outputs: np.ndarray  # probabilities (N, C) for classification; predictions (N,) for regression
    task: str
    class_names: list[str]
    # Per-example extras, each (N,) or (N, K): MC-dropout "std", "predictive_entropy",
    # "mutual_information"; conformal "prediction_set" (bool (N, K)).
    extra: dict = field(default_factory=dict)
    calibrated: bool = False  # the probabilities went through the run's calibration map

    @property
    def classes(self) -> np.ndarray:
        return np.argmax(self.outputs, axis=-1)


def resolve_source(source: str) -> tuple[str, str]:
    """('run', dir) for a run directory, ('savedmodel', dir) for an export (latest version)."""
    from kerasdl.export import versions

    if os.path.isfile(os.path.join(source, runs.CONFIG)):
        return "run", source
    if os.path.isfile(os.path.join(source, "saved_model.pb")):
        return "savedmodel", source
    found = versions(source)
    if found:
        return "savedmodel", os.path.join(source, str(found[-1]))
    raise KerasdlUsageError(
        f"{source} is neither a run directory (no {runs.CONFIG}) nor a SavedModel (no saved_model.pb)"
    )


def _expand_names(paths: list[str], counts: list[int]) -> list[str]:
    names = []
    for p, n in zip(paths, counts):
        names += [p] if n == 1 and not p.endswith((".npz", ".csv")) else [f"{p}[{i}]" for i in range(n)]
    return names


def predict(source: str, paths: list[str], *, batch_size: int = 256, calibrated: bool = True,
            mc_samples: int = 0, sets: str | None = None, seed: int = 0) -> Predictions:
    """Predict ``paths`` with a run or a SavedModel.

    A run's probabilities go through its calibration map (calibration.json) unless
    ``calibrated=False``, exactly as its export does. ``mc_samples`` > 0 (runs only) returns the
    MC-dropout predictive mean instead, with per-example std / entropy / mutual information;
    ``sets`` ("lac" or "aps", runs only) adds the run's conformal prediction sets.
    """
    import tensorflow as tf

    from kerasdl.data import DatasetInfo, normalize, read_inputs
    from kerasdl.export import calibrated_logits, class_logits

    kind, where = resolve_source(source)
    calibrator = conformal = None
    if sets is not None and sets not in SCORES:
        raise UnknownNameError("conformal score", str(sets), SCORES)
    if mc_samples and sets:
        raise KerasdlUsageError("conformal sets were calibrated on the run's deterministic probabilities; "
                                "use them without MC dropout")
    if kind != "run" and (mc_samples or sets):
        raise KerasdlUsageError("MC dropout and conformal sets need a run directory, not a SavedModel "
                                "(the export's prediction_set output holds the LAC sets)")
    if kind == "run":
        from kerasdl import posthoc

        run = runs.load_run(where)
        info, model = run.info, run.model
        if (mc_samples or sets) and not posthoc.calibratable(info):
            raise KerasdlUsageError(f"MC dropout and conformal sets are for classifiers; {where} is a {info.task} run")
        fitted = posthoc.load(where) if posthoc.calibratable(info) else None
        if calibrated and fitted:
            calibrator = fitted.calibrator
        if sets:
            conformal = fitted.conformal.get(sets) if fitted and calibrator else None
            if conformal is None:
                raise KerasdlUsageError(f"{where} has no conformal sets; fit them with: kerasdl calibrate "
                                        f"{where} --conformal-alpha 0.1")

        @tf.function(reduce_retracing=True)
        def forward(x):
            logits = model(normalize(x, info), training=False)
            if info.task == "regression":
                return logits[:, 0]
            return tf.nn.softmax(calibrated_logits(class_logits(logits), calibrator), axis=-1)
    else:
        meta = runs.read_json(os.path.join(where, "kerasdl.json"))
        if not meta:
            raise KerasdlUsageError(f"{where} has no kerasdl.json metadata; was it exported by kerasdl?")
        info = DatasetInfo.from_dict(meta["dataset_info"])
        serving = tf.saved_model.load(where).signatures["serving_default"]
        key = "predictions" if info.task == "regression" else "probabilities"

        def forward(x):
            return serving(inputs=x)[key]

    arrays, counts = [], []
    for p in paths:
        a = read_inputs([p], info)
        arrays.append(a)
        counts.append(len(a))
    if not arrays:
        raise KerasdlUsageError("no inputs given to predict")
    x = np.concatenate(arrays)
    names, extra = _expand_names(paths, counts), {}
    if mc_samples:
        from kerasdl import uncertainty

        inputs = np.concatenate([np.asarray(normalize(tf.constant(x[i:i + batch_size]), info))
                                 for i in range(0, len(x), batch_size)])
        stats = uncertainty.predictive_stats(
            uncertainty.mc_dropout_predict(model, inputs, samples=mc_samples, batch_size=batch_size, seed=seed))
        probabilities = stats["mean"]
        extra = {k: stats[k] for k in ("std", "predictive_entropy", "mutual_information")}
    else:
        outputs = [np.asarray(forward(tf.constant(x[i:i + batch_size]))) for i in range(0, len(x), batch_size)]
        probabilities = np.concatenate(outputs)
    if conformal is not None:
        extra["prediction_set"] = conformal.predict_sets(probabilities)
    was_calibrated = calibrator is not None and not mc_samples if kind == "run" else "calibration" in meta
    return Predictions(names, probabilities, info.task, list(info.class_names), extra, calibrated=was_calibrated)
