"""Predict with a run directory or an exported SavedModel on image files, ``.npz`` or ``.csv``.

Both paths compute the same thing -- normalise the raw input, run the network in inference mode,
softmax -- so a run and its export agree to float32 rounding.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from kerasdl import runs
from kerasdl.errors import KerasdlUsageError


@dataclass
class Predictions:
    names: list[str]  # one per example: the file, or file[row] for .npz/.csv
    outputs: np.ndarray  # probabilities (N, C) for classification; predictions (N,) for regression
    task: str
    class_names: list[str]

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


def predict(source: str, paths: list[str], *, batch_size: int = 256) -> Predictions:
    import tensorflow as tf

    from kerasdl.data import DatasetInfo, normalize, read_inputs
    from kerasdl.export import class_logits

    kind, where = resolve_source(source)
    if kind == "run":
        run = runs.load_run(where)
        info, model = run.info, run.model

        @tf.function(reduce_retracing=True)
        def forward(x):
            logits = model(normalize(x, info), training=False)
            return logits[:, 0] if info.task == "regression" else tf.nn.softmax(class_logits(logits), axis=-1)
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
    outputs = [np.asarray(forward(tf.constant(x[i:i + batch_size]))) for i in range(0, len(x), batch_size)]
    return Predictions(_expand_names(paths, counts), np.concatenate(outputs), info.task, list(info.class_names))
