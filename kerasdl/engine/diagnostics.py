"""Diagnostics a learner needs: gradient norms per layer, activation statistics, dead and saturated units.

Three symptoms explain most deep networks that will not train:

* **Vanishing gradients.** Back-propagation multiplies one Jacobian per layer; with saturating
  sigmoids (derivative at most 1/4) the gradient reaching the first layers shrinks geometrically
  with depth, so they barely learn (Glorot & Bengio 2010, "Understanding the difficulty of
  training deep feedforward neural networks", AISTATS). ReLU with He initialisation, batch
  normalisation and residual connections keep the per-layer gain near 1.
* **Exploding gradients.** The same product grows geometrically when the per-layer gain exceeds 1
  (too large an initialisation or learning rate); the loss becomes NaN soon after.
* **Dead ReLUs.** A ReLU unit whose pre-activation is negative for every input outputs 0 and gets
  gradient 0, so it never recovers (Lu, Shin, Su & Karniadakis 2019, "Dying ReLU and
  Initialization: Theory and Numerical Examples", arXiv:1903.06733). Saturated sigmoid/tanh units
  (output pinned near 0/1 or -1/1) have the same problem in a milder form.

:func:`gradient_norms` and :func:`activation_stats` measure these on one fixed batch;
:class:`Diagnostics` is a callback that records them every few epochs to TensorBoard and a CSV and
warns once per layer when something looks wrong; :func:`plot_gradient_norms` and
:func:`plot_depth_profile` draw the numbers.
"""

from __future__ import annotations

import csv
import math
import os
import weakref
from typing import Any, Callable, Iterable, Mapping, Sequence

import keras
import numpy as np

from kerasdl import plots
from kerasdl.engine.callbacks import ResumeAware

CSV_FIELDS = ("epoch", "layer", "quantity", "value")

# Activation names (function __name__ or our name for an activation layer) by family.
_DEAD_KINDS = {"relu", "relu6"}  # exact zeros for every negative input: units can die
_SIGMOID_KINDS = {"sigmoid", "hard_sigmoid"}
_TANH_KINDS = {"tanh", "hard_tanh"}
_SATURATION = 0.99  # |tanh| > 0.99, sigmoid < 0.01 or > 0.99

_PROBES: "weakref.WeakKeyDictionary[keras.Model, tuple]" = weakref.WeakKeyDictionary()


# ----------------------------------------------------------------------------------------------
# gradient norms


def gradient_norms(model: keras.Model, x: Any, y: Any, loss_fn: Callable) -> dict[str, float]:
    """L2 norm of the loss gradient for every trainable kernel, keyed by variable path.

    One forward/backward pass in training mode on the batch ``(x, y)``. Only the data loss
    ``loss_fn(y_true, y_pred)`` is differentiated (per-example losses are averaged); the model's
    regularisation losses (``model.losses``) are left out, so the numbers show what the data
    back-propagates. For a multi-output model the first output (and the first target, when ``y``
    is a list/tuple/dict) is used. Keys are variable paths without the model's name, e.g.
    ``"dense_1/kernel"``, in the model's variable order (input to output for Sequential and
    functional models). TensorFlow backend only (it uses ``tf.GradientTape``). State that a
    training-mode call changes (batch-norm moving statistics, dropout seeds) is put back afterwards.
    """
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"gradient_norms needs the tensorflow backend, not {keras.backend.backend()}")
    kernels = [v for v in model.trainable_variables if v.name.endswith("kernel")]
    if not kernels:
        return {}
    saved = [v.numpy() for v in model.non_trainable_variables]
    try:
        with tf.GradientTape() as tape:
            y_pred = _first(model(x, training=True))
            loss = tf.reduce_mean(tf.cast(loss_fn(_first(y), y_pred), tf.float32))
        grads = tape.gradient(loss, kernels)
    finally:
        for v, value in zip(model.non_trainable_variables, saved):
            v.assign(value)
    names = _variable_names(model, kernels)
    return {name: (float(tf.norm(tf.cast(g, tf.float32))) if g is not None else 0.0)
            for name, g in zip(names, grads)}


def _first(value: Any) -> Any:
    """The first output/target of a multi-output model (a single one passes through)."""
    if isinstance(value, Mapping):
        return next(iter(value.values()))
    if isinstance(value, (list, tuple)):
        return value[0]
    return value


def _variable_names(model: keras.Model, variables: Sequence) -> list[str]:
    """Readable, unique names: the variable path without the leading model name."""
    prefix = f"{model.name}/"
    names: list[str] = []
    for v in variables:
        name = v.path[len(prefix):] if v.path.startswith(prefix) else v.path
        base, n = name, 1
        while name in names:
            n += 1
            name = f"{base}#{n}"
        names.append(name)
    return names


def resolve_loss(model: keras.Model) -> Callable:
    """The model's compiled loss for its first output, as a ``(y_true, y_pred)`` callable.

    Falls back to ``SparseCategoricalCrossentropy(from_logits=True)`` (kerasdl's models emit
    logits) when the model is not compiled. Loss weights and regularisation are not included.
    """
    loss = getattr(model, "loss", None)
    if isinstance(loss, Mapping):
        loss = next(iter(loss.values()), None)
    elif isinstance(loss, (list, tuple)):
        loss = loss[0] if loss else None
    if loss is None:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return keras.losses.get(loss)


# ----------------------------------------------------------------------------------------------
# activation statistics


def activation_kind(layer: keras.layers.Layer) -> str | None:
    """The activation a layer applies (``"relu"``, ``"sigmoid"``, ...), or None for none/linear."""
    if isinstance(layer, keras.layers.ReLU):
        slope = float(getattr(layer, "negative_slope", 0.0) or 0.0)
        return "relu" if slope == 0 else "leaky_relu"
    for cls, kind in ((keras.layers.LeakyReLU, "leaky_relu"), (keras.layers.PReLU, "prelu"),
                      (keras.layers.ELU, "elu"), (keras.layers.Softmax, "softmax")):
        if isinstance(layer, cls):
            return kind
    fn = getattr(layer, "activation", None)
    if fn is None or not callable(fn):
        return None
    name = getattr(fn, "__name__", type(fn).__name__)
    return None if name == "linear" else name


def _probe(model: keras.Model) -> tuple[keras.Model, list[tuple[str, str]]]:
    """A cached model from ``model.inputs`` to every activating layer's output, then the first output."""
    cached = _PROBES.get(model)
    if cached is not None:
        return cached
    if not getattr(model, "inputs", None):
        raise ValueError("activation_stats needs a built Sequential or functional model (with model.inputs)")
    layers: list[tuple[str, str]] = []
    outputs = []
    for layer in model.layers:
        kind = activation_kind(layer)
        if kind is None:
            continue
        try:
            out = layer.output  # raises for a layer called more than once
        except (AttributeError, ValueError):
            continue
        if not isinstance(out, keras.KerasTensor):
            continue  # several outputs: not a single activation map
        layers.append((layer.name, kind))
        outputs.append(out)
    outputs.append(model.outputs[0])
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # called with a bare tensor
    probe = keras.Model(inputs, outputs, name=f"{model.name}_diagnostics_probe")
    _PROBES[model] = (probe, layers)
    return probe, layers


def _probe_run(model: keras.Model, x: Any) -> tuple[dict[str, dict], np.ndarray]:
    """Activation statistics and the model's first output, from one inference-mode pass."""
    probe, layers = _probe(model)
    values = probe(x, training=False)
    values = values if isinstance(values, (list, tuple)) else [values]
    values = [keras.ops.convert_to_numpy(v) for v in values]
    stats = {name: _stats(value, kind) for (name, kind), value in zip(layers, values)}
    return stats, values[-1]


def _stats(a: np.ndarray, kind: str) -> dict[str, float]:
    a = np.asarray(a, dtype=np.float32)
    out = {"mean": float(a.mean()), "std": float(a.std()), "zero_fraction": float(np.mean(a == 0))}
    if kind in _DEAD_KINDS:
        channels = a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a.reshape(-1, 1)
        out["dead_fraction"] = float(np.mean(np.all(channels == 0, axis=0)))
    elif kind in _SIGMOID_KINDS:
        out["saturated_fraction"] = float(np.mean((a < 1 - _SATURATION) | (a > _SATURATION)))
    elif kind in _TANH_KINDS:
        out["saturated_fraction"] = float(np.mean(np.abs(a) > _SATURATION))
    return out


def activation_stats(model: keras.Model, x: Any) -> dict[str, dict]:
    """Statistics of every activating layer's output on ``x``, in inference mode.

    A layer counts when it applies a non-linear activation and has a single output: Dense/Conv
    with ``activation != "linear"``, ``Activation``, ``ReLU``, ``LeakyReLU``, ``PReLU``, ``ELU``,
    ``Softmax`` (top-level layers of a Sequential or functional model; a nested model's insides
    are not probed). Returns ``{layer: {"mean", "std", "zero_fraction", ...}}`` with
    ``dead_fraction`` for ReLU/ReLU6 (fraction of units, i.e. last-axis channels, that are 0 for
    every example and position) and ``saturated_fraction`` for sigmoid/tanh (output < 0.01 or >
    0.99; |output| > 0.99). The probe model is built once per model and cached.
    """
    return _probe_run(model, x)[0]


# ----------------------------------------------------------------------------------------------
# the callback

_HINTS = {
    "vanishing": "vanishing gradient at {layer}: norm {value:.2g} "
                 "(try ReLU, He initialisation, batch norm or residual connections)",
    "exploding": "exploding gradient at {layer}: norm {value:.2g} "
                 "(try a lower learning rate, gradient clipping or batch norm)",
    "no_probe": "no activation statistics for {layer}: {value}",
    "dead": "dead ReLUs in {layer}: {value:.0%} of units output 0 for every sample "
            "(try a lower learning rate, LeakyReLU, He initialisation or a small positive bias)",
}


class Diagnostics(ResumeAware):
    """Records gradient norms and activation statistics on a fixed batch every ``every`` epochs.

    Computed at the end of epochs ``every, 2 * every, ...`` (1-based) and at the last epoch of
    ``fit`` (so the final state is always recorded): with ``every=2`` and 3 epochs, after epochs
    2 and 3. Writes TensorBoard scalars (tags ``grad_norm/<var>``, ``activation_mean/<layer>``,
    ``activation_std/<layer>``, ``zero_fraction/<layer>``, ``dead_fraction/<layer>``,
    ``saturated_fraction/<layer>``; step = 1-based epoch) and a histogram ``logits`` of the model's
    first output on the sample to ``log_dir/diagnostics``; appends rows ``epoch,layer,quantity,value``
    (same quantity names, 1-based epoch) to ``csv_path`` and to ``self.records``. On resume, rows
    of epochs after the one ``fit`` restarts from are dropped first (no duplicates). Warns through
    ``warn`` once per layer and kind: gradient norm below ``vanishing`` or above ``exploding``, or
    ``dead_fraction >= dead_fraction``. ``loss_fn`` defaults to the model's compiled loss
    (:func:`resolve_loss`). Gradient norms need the TensorFlow backend.
    """

    def __init__(self, sample: tuple[Any, Any], log_dir: str | None = None, csv_path: str | None = None,
                 every: int = 1, loss_fn: Callable | None = None, warn: Callable[[str], Any] = print,
                 vanishing: float = 1e-7, exploding: float = 1e3, dead_fraction: float = 0.5):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.x, self.y = sample
        self.log_dir = log_dir
        self.csv_path = csv_path
        self.every = int(every)
        self.loss_fn = loss_fn
        self.warn = warn
        self.vanishing = vanishing
        self.exploding = exploding
        self.dead_threshold = dead_fraction
        self.records: list[dict] = []
        self.warned: set[tuple[str, str]] = set()
        self._writer = None

    # keras hooks (ResumeAware calls resume_from at the first epoch fit runs)
    def resume_from(self, epoch: int) -> None:
        self._resume_from(epoch)

    def on_epoch_end(self, epoch, logs=None):
        last = (self.params or {}).get("epochs")
        if (epoch + 1) % self.every == 0 or (last is not None and epoch + 1 == last):
            self.record(epoch + 1)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # work
    def record(self, step: int) -> list[dict]:
        """Compute, log, write and check everything for (1-based) epoch ``step``; returns the new rows."""
        loss_fn = resolve_loss(self.model) if self.loss_fn is None else self.loss_fn
        grads = gradient_norms(self.model, self.x, self.y, loss_fn)
        try:
            stats, logits = _probe_run(self.model, self.x)
        except ValueError as e:  # a subclassed model: no graph to probe, gradients still work
            self._warn_once("no_probe", self.model.name, str(e))
            stats, logits = {}, keras.ops.convert_to_numpy(_first(self.model(self.x, training=False)))
        rows = [{"epoch": step, "layer": name, "quantity": "grad_norm", "value": value}
                for name, value in grads.items()]
        for layer, quantities in stats.items():
            for q, value in quantities.items():
                rows.append({"epoch": step, "layer": layer, "quantity": _quantity(q), "value": value})
        self.records += rows
        self._write_csv(rows)
        self._write_summaries(step, rows, logits)
        self._check(grads, stats)
        return rows

    def _check(self, grads: Mapping[str, float], stats: Mapping[str, Mapping[str, float]]) -> None:
        for layer, norm in grads.items():
            if norm < self.vanishing:
                self._warn_once("vanishing", layer, norm)
            elif norm > self.exploding or not math.isfinite(norm):
                self._warn_once("exploding", layer, norm)
        for layer, quantities in stats.items():
            dead = quantities.get("dead_fraction")
            if dead is not None and dead >= self.dead_threshold:
                self._warn_once("dead", layer, dead)

    def _warn_once(self, kind: str, layer: str, value: float) -> None:
        if (kind, layer) not in self.warned:
            self.warned.add((kind, layer))
            self.warn(_HINTS[kind].format(layer=layer, value=value))

    def _write_summaries(self, step: int, rows: Iterable[dict], logits: np.ndarray) -> None:
        if not self.log_dir:
            return
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "diagnostics"))
        with self._writer.as_default(step=step):
            for row in rows:
                tf.summary.scalar(f"{row['quantity']}/{row['layer']}", row["value"])
            tf.summary.histogram("logits", np.asarray(logits, dtype=np.float32))
        self._writer.flush()

    def _write_csv(self, rows: Sequence[dict]) -> None:
        if not self.csv_path:
            return
        os.makedirs(os.path.dirname(self.csv_path) or ".", exist_ok=True)
        new = not os.path.exists(self.csv_path) or os.path.getsize(self.csv_path) == 0
        with open(self.csv_path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            if new:
                writer.writeheader()
            writer.writerows({**row, "value": repr(float(row["value"]))} for row in rows)

    def _resume_from(self, epoch: int) -> None:
        """Keep the rows of epochs 1..``epoch`` (those already finished) and drop any later ones."""
        if self.csv_path and os.path.exists(self.csv_path):
            rows = read_records(self.csv_path)
            kept = [r for r in rows if r["epoch"] <= epoch]
            if len(kept) < len(rows):
                tmp = f"{self.csv_path}.tmp-{os.getpid()}"
                with open(tmp, "w", newline="", encoding="utf-8") as f:
                    writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
                    writer.writeheader()
                    writer.writerows({**r, "value": repr(r["value"])} for r in kept)
                os.replace(tmp, self.csv_path)
            self.records = kept
        else:
            self.records = [r for r in self.records if r["epoch"] <= epoch]


def _quantity(stat: str) -> str:
    return f"activation_{stat}" if stat in ("mean", "std") else stat


def read_records(path: str) -> list[dict]:
    """Rows of a diagnostics CSV with ``epoch`` as int and ``value`` as float."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{"epoch": int(r["epoch"]), "layer": r["layer"], "quantity": r["quantity"],
                 "value": float(r["value"])} for r in csv.DictReader(f)]


# ----------------------------------------------------------------------------------------------
# plots


def plot_gradient_norms(csv_path_or_records: str | Iterable[Mapping], out_png: str,
                        title: str | None = None) -> str:
    """One line per layer: gradient norm (log scale) against epoch; colours run input -> output."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = (read_records(csv_path_or_records) if isinstance(csv_path_or_records, (str, os.PathLike))
            else list(csv_path_or_records))
    series: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        if r["quantity"] == "grad_norm":
            series.setdefault(r["layer"], []).append((int(r["epoch"]), float(r["value"])))
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    cmap = plt.get_cmap("viridis")
    n = len(series)
    for i, (layer, points) in enumerate(series.items()):  # first-seen order = input to output
        points.sort()
        epochs, norms = zip(*points)
        ax.plot(epochs, np.maximum(norms, 1e-30), "o-", ms=3, color=cmap(i / max(n - 1, 1)), label=layer)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("gradient L2 norm")
    ax.grid(alpha=0.3, which="both")
    if n:
        ax.legend(fontsize=7, ncol=1 + n // 12, loc="best")
    ax.set_title(title or "gradient norm per layer (input = dark, output = light)")
    fig.tight_layout()
    return plots.save(fig, out_png)


def plot_depth_profile(norms: Mapping[str, float] | Mapping[str, Mapping[str, float]], out_png: str,
                       title: str = "") -> str:
    """Gradient norm (log scale) against layer depth at one moment.

    ``norms`` is one ``{layer: norm}`` dict in input-to-output order (as :func:`gradient_norms`
    returns), or ``{label: {layer: norm}}`` to compare several models on one chart (e.g. sigmoid
    vs ReLU). Returns ``out_png``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    first = next(iter(norms.values()), None)
    profiles = dict(norms) if isinstance(first, Mapping) else {"": norms}
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for label, profile in profiles.items():
        values = np.maximum(np.asarray(list(profile.values()), dtype=float), 1e-30)
        ax.plot(np.arange(1, len(values) + 1), values, "o-", ms=4, label=label or None)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer depth (1 = next to the input)")
    ax.set_ylabel("gradient L2 norm")
    ax.grid(alpha=0.3, which="both")
    if len(profiles) > 1 or "" not in profiles:
        ax.legend()
    ax.set_title(title or "gradient norm vs depth")
    fig.tight_layout()
    return plots.save(fig, out_png)
