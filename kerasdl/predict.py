"""Predict with a run directory or an exported SavedModel on image files, ``.npz`` or ``.csv``.

Both paths compute the same thing -- normalise the raw input, run the network in inference mode,
softmax -- so a run and its export agree to float32 rounding.

Inputs are compared with the training data's statistics (:func:`input_stats`, stored in the run's
dataset.json and the export's kerasdl.json): inputs scaled to [0, 1] where raw 0..255 values were
trained on, or images of inverted polarity (white background), give confident but meaningless
answers, so each such problem yields one warning line (:attr:`Predictions.warnings`) that says
what the model expects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kerasdl import runs
from kerasdl.runs.load import load_run
from kerasdl.errors import KerasdlUsageError, UnknownNameError
from kerasdl.evaluation.uncertainty import SCORES


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
    # One line per problem found with the inputs (far outside the training data); the CLI prints them.
    warnings: list = field(default_factory=list)

    @property
    def classes(self) -> np.ndarray:
        return np.argmax(self.outputs, axis=-1)


from kerasdl.runs.inputs import STATS_KEY, STATS_EXAMPLES, input_stats, run_input_stats, store_input_stats, training_input_stats  # noqa: F401,E501


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def expected_inputs(info, stats: dict | None) -> str:
    """What the model takes, in words: dtype, shape and the training data's value range."""
    shape = ", ".join(map(str, ("N", *info.input_shape)))
    text = f"the model expects {info.raw_dtype} inputs of shape ({shape})"
    if stats:
        text += f" with values {_fmt(stats['min'])}..{_fmt(stats['max'])} (training mean {_fmt(stats['mean'])})"
    return text + ", as the dataset stores them"


def input_warnings(x: np.ndarray, names: list[str], info, stats: dict | None) -> list[str]:
    """One line per way the raw inputs ``x`` sit far outside the training data described by
    ``stats`` (:func:`input_stats`); [] when they look like it or there are no statistics.

    * **scale**: inputs that span less than a tenth of the training range from its minimum (e.g.
      images scaled to [0, 1] where uint8 0..255 was trained on);
    * **range**: inputs with values beyond the training range by more than half its width;
    * **mean**: inputs whose mean value lies outside the training examples' central 99%, widened
      by half its width on each side (e.g. inverted polarity: dark digits on white).
    Each input is counted under the first problem it has (a scale problem explains the others).
    """
    if not stats or not len(x):
        return []
    low, high = stats["min"], stats["max"]
    span = high - low
    if span <= 0:
        return []
    expects = expected_inputs(info, stats)
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    scaled = flat.max(axis=1) < low + 0.1 * span
    outside = ((flat < low - 0.5 * span) | (flat > high + 0.5 * span)).any(axis=1) & ~scaled
    lo, hi = stats["example_mean"]
    margin = 0.5 * max(hi - lo, 1e-3 * span)
    means = flat.mean(axis=1)
    far = ((means < lo - margin) | (means > hi + margin)) & ~scaled & ~outside

    def which(mask) -> str:
        picked = np.flatnonzero(mask)
        shown = ", ".join(names[i] for i in picked[:3]) + (", ..." if len(picked) > 3 else "")
        return f"{len(picked)} of {len(x)} inputs ({shown})"

    out = []
    if scaled.any():
        out.append(f"{which(scaled)} span only {_fmt(flat[scaled].min())}..{_fmt(flat[scaled].max())} (were "
                   f"they scaled to [0, 1]?); {expects}")
    if outside.any():
        out.append(f"{which(outside)} have values far outside the training range (seen {_fmt(flat[outside].min())}"
                   f"..{_fmt(flat[outside].max())}); {expects}")
    if far.any():
        hint = " (inverted polarity, a light background?)" if info.is_image and means[far].mean() > hi else ""
        out.append(f"{which(far)} have a mean value of {_fmt(float(means[far].mean()))} where 99% of training "
                   f"examples have {_fmt(lo)}..{_fmt(hi)}{hint}; {expects}")
    return out


def resolve_source(source: str) -> tuple[str, str]:
    """('run', dir) for a run directory, ('savedmodel', dir) for an export (latest version)."""
    from kerasdl.export.savedmodel import versions

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


def expand_names(paths: list[str], counts: list[int]) -> list[str]:
    names = []
    for p, n in zip(paths, counts):
        names += [p] if n == 1 and not p.endswith((".npz", ".csv")) else [f"{p}[{i}]" for i in range(n)]
    return names


def _task_of(kind: str, where: str) -> str:
    """The task of a run directory or an export (from its config or kerasdl.json)."""
    from kerasdl.tasks.base import task_name

    if kind == "run":
        dataset_task = (runs.read_json(runs.path(where, runs.DATASET), {}) or {}).get("task", "classification")
        return task_name(runs.read_config(where), dataset_task)
    return (runs.read_json(os.path.join(where, "kerasdl.json"), {}) or {}).get("task", "classification")


def _predict_field(kind: str, where: str, paths: list[str], *, mc_samples: int = 0, sets=None) -> Predictions:
    """A physics-informed run's u at the points of ``paths`` (.csv with a column per input, or
    .npz / .npy arrays (N, d)), from the run or from its SavedModel (serving_default -> "u")."""
    import tensorflow as tf

    from kerasdl.data import DatasetInfo

    if mc_samples or sets:
        raise KerasdlUsageError(f"{where} is a pinn run: MC dropout and conformal sets are for classifiers")
    if kind == "run":
        run = load_run(where)
        info = run.info
        forward = lambda x: run.task.predict_points(run.model, x)  # noqa: E731
    else:
        meta = runs.read_json(os.path.join(where, "kerasdl.json")) or {}
        info = DatasetInfo.from_dict(meta["dataset_info"])
        serving = tf.saved_model.load(where).signatures["serving_default"]
        dtype = serving.structured_input_signature[1]["inputs"].dtype

        def forward(x):
            return np.concatenate([np.asarray(serving(inputs=tf.constant(x[i:i + 8192], dtype))["u"])
                                   for i in range(0, len(x), 8192)])
    x, names, _ = read_batch(paths, info, None, "predict")
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if x.shape[1] != info.input_shape[0]:
        raise KerasdlUsageError(f"points must have {info.input_shape[0]} columns ({', '.join(info.feature_names)}). "
                                f"Received: {x.shape[1]}")
    return Predictions(names, forward(x)[:, 0], "regression", [], {})


def _predict_graph(kind: str, where: str, paths: list[str], *, mc_samples: int = 0, sets=None) -> Predictions:
    """A graph run's class probabilities for every node (node classification) or every graph (graph
    classification) of the graph files ``paths`` (any graph dataset kerasdl reads: an .npz, a folder of
    nodes.csv + edges.csv, Planetoid files), from the run or its SavedModel."""
    import tensorflow as tf

    from kerasdl.data import DatasetInfo
    from kerasdl.data.graphs import load_graph

    if mc_samples or sets:
        raise KerasdlUsageError(f"{where} is a graph run: MC dropout and conformal sets are for image and "
                                "tabular classifiers")
    if not paths:
        raise KerasdlUsageError("no graph given to predict")
    if kind == "run":
        from kerasdl.evaluation import posthoc

        run = load_run(where)
        info = run.info
        fitted = posthoc.load(where)
        calibrator = fitted.calibrator if fitted else None

        def forward(graph):
            return run.task.predict_graph(run.model, graph, calibrator)
    else:
        meta = runs.read_json(os.path.join(where, "kerasdl.json")) or {}
        info = DatasetInfo.from_dict(meta["dataset_info"])
        serving = tf.saved_model.load(where).signatures["serving_default"]
        calibrator = "calibration" in meta

        def forward(graph):
            args = {"x": tf.constant(graph.x, tf.float32), "edge_index": tf.constant(graph.edge_index, tf.int64)}
            if graph.node_graph is not None:
                args["graph_ids"] = tf.constant(graph.node_graph, tf.int64)
            if "edge_attr" in serving.structured_input_signature[1]:
                if graph.edge_attr is None:
                    raise KerasdlUsageError(f"{where} takes edge features (edge_attr); the graph has none")
                args["edge_attr"] = tf.constant(graph.edge_attr, tf.float32)
            return np.asarray(serving(**args)["probabilities"])
    level = (info.graph or {}).get("level", "node")
    names, outputs = [], []
    for path in paths:
        graph = load_graph(path, labels=False)
        if graph.level != level:
            raise KerasdlUsageError(f"{path} is a {graph.level}-level graph set; {where} labels "
                                    f"{'nodes' if level == 'node' else 'graphs'}")
        if graph.x.shape[1] != info.input_shape[0]:
            raise KerasdlUsageError(f"{path}: nodes have {graph.x.shape[1]} features; the model takes "
                                    f"{info.input_shape[0]}")
        out = forward(graph)
        names += [f"{path}[{'node' if level == 'node' else 'graph'} {i}]" for i in range(len(out))]
        outputs.append(out)
    return Predictions(names, np.concatenate(outputs), "classification", list(info.class_names), {},
                       calibrated=bool(calibrator))


def _check_supervised(kind: str, where: str) -> None:
    """predict answers classes, values or masks: a run or export of another task (an autoencoder,
    a VAE) is refused in one line, pointing at its own commands."""
    from kerasdl.tasks.base import task_class

    name = _task_of(kind, where)
    if task_class(name).data_kind != "supervised":
        raise KerasdlUsageError(f"{where} is a {name} run; predict is for classification, regression and "
                                f"segmentation runs (use kerasdl encode, or kerasdl sample)")


def read_batch(paths: list[str], info, stats: dict | None, command: str = "predict"
               ) -> tuple[np.ndarray, list[str], list[str]]:
    """``(x, names, warnings)``: the raw inputs of the files ``paths`` as one batch (images, .npz,
    .npy, .csv; checked against ``info``), their names (``file`` or ``file[row]``) and one warning
    line per way they sit far outside the training data (``stats``)."""
    from kerasdl.data import read_inputs

    arrays = [read_inputs([p], info) for p in paths]
    if not arrays:
        raise KerasdlUsageError(f"no inputs given to {command}")
    x = np.concatenate(arrays)
    names = expand_names(list(paths), [len(a) for a in arrays])
    return x, names, input_warnings(x, names, info, stats)


def predict(source: str, paths: list[str], *, batch_size: int = 256, calibrated: bool = True,
            mc_samples: int = 0, sets: str | None = None, seed: int = 0) -> Predictions:
    """Predict ``paths`` with a run or a SavedModel.

    A run's probabilities go through its calibration map (calibration.json) unless
    ``calibrated=False``, exactly as its export does. ``mc_samples`` > 0 (runs only) returns the
    MC-dropout predictive mean instead, with per-example std / entropy / mutual information;
    ``sets`` ("lac" or "aps", runs only) adds the run's conformal prediction sets.
    """
    import tensorflow as tf

    from kerasdl.data import DatasetInfo, normalize
    from kerasdl.export.savedmodel import calibrated_logits, class_logits

    kind, where = resolve_source(source)
    from kerasdl.tasks.base import task_class

    data_kind = task_class(_task_of(kind, where)).data_kind
    if data_kind == "collocation":  # a field u(points): its own reader
        return _predict_field(kind, where, paths, mc_samples=mc_samples, sets=sets)
    if data_kind == "graph":  # nodes or graphs of a graph file
        return _predict_graph(kind, where, paths, mc_samples=mc_samples, sets=sets)
    _check_supervised(kind, where)
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
        from kerasdl.evaluation import posthoc

        run = load_run(where)
        info, model = run.info, run.model
        stats = run_input_stats(where, run.config)
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
        stats = meta.get(STATS_KEY)
        serving = tf.saved_model.load(where).signatures["serving_default"]
        key = "predictions" if info.task == "regression" else "probabilities"

        def forward(x):
            return serving(inputs=x)[key]

    x, names, problems = read_batch(paths, info, stats, "predict")
    extra = {}
    if mc_samples:
        from kerasdl.evaluation import uncertainty

        inputs = np.concatenate([np.asarray(normalize(tf.constant(x[i:i + batch_size]), info))
                                 for i in range(0, len(x), batch_size)])
        mc = uncertainty.predictive_stats(
            uncertainty.mc_dropout_predict(model, inputs, samples=mc_samples, batch_size=batch_size, seed=seed))
        probabilities = mc["mean"]
        extra = {k: mc[k] for k in ("std", "predictive_entropy", "mutual_information")}
    else:
        outputs = [np.asarray(forward(tf.constant(x[i:i + batch_size]))) for i in range(0, len(x), batch_size)]
        probabilities = np.concatenate(outputs)
    if conformal is not None:
        extra["prediction_set"] = conformal.predict_sets(probabilities)
    was_calibrated = calibrator is not None and not mc_samples if kind == "run" else "calibration" in meta
    return Predictions(names, probabilities, info.task, list(info.class_names), extra, calibrated=was_calibrated,
                       warnings=problems)
