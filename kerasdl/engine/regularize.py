"""Weight initialisation, penalties, constraints and training-time regularisers for keras models.

* :func:`apply_initializer` -- re-initialise every kernel with a named scheme: He et al. 2015
  ("Delving Deep into Rectifiers"), Glorot & Bengio 2010, LeCun et al. 1998 ("Efficient
  BackProp"), Saxe et al. 2014 (orthogonal, "Exact solutions to the nonlinear dynamics of
  learning in deep linear neural networks"), or zeros (the symmetry-breaking counter-example).
* :func:`add_weight_penalty` -- L1 / L2 penalties on the kernels, added to the training loss
  (coupled weight decay; see Loshchilov & Hutter 2019 for the decoupled kind, ``weight_decay``).
* :func:`add_max_norm` -- max-norm constraint on each unit's incoming weights (Srivastava et al.
  2014, "Dropout: A Simple Way to Prevent Neural Networks from Overfitting", section 5.1).
* :class:`DropoutSchedule` -- early / late dropout (Liu et al. 2023, "Dropout Reduces
  Underfitting"). Stochastic depth built from ``Dropout(noise_shape=...)`` (``drop_path`` in the
  zoo) is scheduled too, as in the paper's "early stochastic depth".
* :func:`adaptive_clip` / :func:`with_gradient_transform` -- unit-wise adaptive gradient clipping
  (Brock et al. 2021, "High-Performance Large-Scale Image Recognition Without Normalization",
  section 4.1).
* :class:`EmaSwap` / :func:`ema_callbacks` -- evaluate and checkpoint the exponential moving
  average of the weights that a keras optimizer keeps with ``use_ema=True`` (Polyak & Juditsky
  1992, "Acceleration of Stochastic Approximation by Averaging").

"Kernel" means a variable named ``kernel``, ``depthwise_kernel`` or ``pointwise_kernel`` of rank
>= 2 (Dense, Conv*, DepthwiseConv*, SeparableConv*, EinsumDense). Recurrent kernels, embeddings and
normalisation parameters are never touched.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import keras
from keras import ops

from kerasdl.errors import KerasdlUsageError, UnknownNameError

INITIALIZERS = ("he", "glorot", "lecun", "orthogonal", "zeros")
DROPOUT_SCHEDULES = ("constant", "early", "late")
KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel")
DROPOUT_TYPES = (keras.layers.Dropout, keras.layers.GaussianDropout, keras.layers.AlphaDropout)


# --------------------------------------------------------------------------------------------
# Finding kernels


def _layers(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The model and every layer inside it, nested models included, each once."""
    return list(model._flatten_layers(include_self=True, recursive=True))


def _own_variables(layer: keras.layers.Layer) -> list:
    """The variables a layer creates itself (not those of its sub-layers)."""
    return list(getattr(layer, "_trainable_variables", [])) + list(
        getattr(layer, "_non_trainable_variables", [])
    )


def kernels(model: keras.layers.Layer) -> list[tuple]:
    """``(kernel, bias or None)`` for every kernel of ``model``, in layer order, each once."""
    found, seen = [], set()
    for layer in _layers(model):
        own = _own_variables(layer)
        bias = next((v for v in own if v.name == "bias"), None)
        for v in own:
            if v.name in KERNEL_NAMES and len(v.shape) >= 2 and id(v) not in seen:
                seen.add(id(v))
                found.append((v, bias))
    return found


# --------------------------------------------------------------------------------------------
# Initialisation


def initializer(name: str, seed: int | None = None) -> keras.initializers.Initializer:
    """The keras initializer called ``name`` (one of :data:`INITIALIZERS`), seeded."""
    if name == "he":
        return keras.initializers.HeNormal(seed=seed)
    if name == "glorot":
        return keras.initializers.GlorotUniform(seed=seed)
    if name == "lecun":
        return keras.initializers.LecunNormal(seed=seed)
    if name == "orthogonal":
        return keras.initializers.Orthogonal(seed=seed)
    if name == "zeros":
        return keras.initializers.Zeros()
    raise UnknownNameError("initializer", str(name), INITIALIZERS)


def apply_initializer(model: keras.layers.Layer, name: str, seed: int = 0) -> int:
    """Re-initialise every kernel with initializer ``name`` and zero those layers' biases.

    Kernel ``i`` gets seed ``seed + i``, so two kernels of one shape still differ. Returns the
    number of kernels re-initialised.
    """
    initializer(name, seed)  # unknown names fail before any variable is touched
    found = kernels(model)
    for i, (kernel, bias) in enumerate(found):
        init = initializer(name, seed + i)
        kernel.assign(init(tuple(kernel.shape), dtype=kernel.dtype))
        if bias is not None:
            bias.assign(ops.zeros(tuple(bias.shape), dtype=bias.dtype))
    return len(found)


# --------------------------------------------------------------------------------------------
# Penalties and constraints


def add_weight_penalty(model: keras.layers.Layer, l1: float = 0.0, l2: float = 0.0) -> int:
    """Add ``l1 * sum|W| + l2 * sum W**2`` of every kernel to the training loss.

    Sets ``variable.regularizer``, which keras reads into ``model.losses`` (and so into the loss
    that ``fit`` minimises). It is not stored in ``model.keras``. ``l1 = l2 = 0`` removes the
    penalty and returns 0; otherwise returns the number of kernels penalised.
    """
    l1, l2 = float(l1), float(l2)
    if l1 < 0 or l2 < 0:
        raise KerasdlUsageError(f"weight penalties must be >= 0. Received: l1={l1}, l2={l2}")
    regularizer = keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None
    found = kernels(model)
    for kernel, _ in found:
        kernel.regularizer = regularizer
    return len(found) if regularizer is not None else 0


def add_max_norm(model: keras.layers.Layer, max_value: float) -> int:
    """Constrain each unit's incoming weight vector (all kernel axes but the last) to norm <= ``max_value``.

    Sets ``variable.constraint``; keras optimizers project the variable after every update.
    Returns the number of kernels constrained.
    """
    if not max_value or max_value <= 0:
        raise KerasdlUsageError(f"max_norm must be > 0. Received: {max_value!r}")
    found = kernels(model)
    for kernel, _ in found:
        axes = tuple(range(len(kernel.shape) - 1))
        kernel.constraint = keras.constraints.MaxNorm(max_value=float(max_value), axis=axes)
    return len(found)


# --------------------------------------------------------------------------------------------
# Dropout schedules


def scheduled_rate(mode: str, base: float, epochs: int, epoch: int) -> float:
    """The dropout rate at ``epoch`` (0-based) of a layer configured with rate ``base``.

    ``early``: ``base`` before epoch ``epochs``, 0 from then on; ``late``: 0 before, ``base`` from
    then on; ``constant``: always ``base``.
    """
    if mode == "constant":
        return base
    if mode == "early":
        return base if epoch < epochs else 0.0
    if mode == "late":
        return 0.0 if epoch < epochs else base
    raise UnknownNameError("dropout schedule", str(mode), DROPOUT_SCHEDULES)


def dropout_layers(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    """Every dropout layer (Dropout, SpatialDropout*, GaussianDropout, AlphaDropout) in ``model``."""
    return [
        layer for layer in _layers(model)
        if isinstance(layer, DROPOUT_TYPES) and isinstance(getattr(layer, "rate", None), (int, float))
    ]


class DropoutSchedule(keras.callbacks.Callback):
    """Early / late dropout (Liu et al. 2023): change every dropout layer's rate at epoch ``epochs``.

    The configured rates are read at ``on_train_begin`` and restored at ``on_train_end`` (a saved
    model keeps them). Keras layers read ``rate`` as a Python number while the train step is
    traced, so a compiled ``train_function`` keeps the rate it was traced with: whenever a rate
    changes the callback rebuilds it with ``model.make_train_function(force=True)``.
    """

    def __init__(self, mode: str, epochs: int):
        super().__init__()
        scheduled_rate(mode, 0.0, 0, 0)  # validates the name
        if int(epochs) < 0:
            raise KerasdlUsageError(f"dropout schedule epochs must be >= 0. Received: {epochs!r}")
        self.mode, self.epochs = mode, int(epochs)
        self._base: list[tuple[keras.layers.Layer, float]] = []

    def rate_at(self, base: float, epoch: int) -> float:
        """The rate of a layer configured with ``base`` during ``epoch``."""
        return scheduled_rate(self.mode, base, self.epochs, epoch)

    def _set_rates(self, rates: Iterable[float]) -> bool:
        changed = False
        for (layer, _), rate in zip(self._base, rates):
            if layer.rate != rate:
                layer.rate = rate
                changed = True
        if changed:
            self.model.make_train_function(force=True)
        return changed

    def on_train_begin(self, logs=None):
        self._base = [(layer, float(layer.rate)) for layer in dropout_layers(self.model)]

    def on_epoch_begin(self, epoch, logs=None):
        self._set_rates([self.rate_at(base, epoch) for _, base in self._base])

    def on_train_end(self, logs=None):
        self._set_rates([base for _, base in self._base])


# --------------------------------------------------------------------------------------------
# Adaptive gradient clipping


def unitwise_norm(x: Any) -> Any:
    """L2 norm of each unit of ``x``: over all axes but the last (kept, size 1) for rank >= 2.

    A Dense kernel ``(in, out)`` gives ``(1, out)``, a conv kernel ``(h, w, in, out)`` gives
    ``(1, 1, 1, out)``. Biases, gains and scalars (rank <= 1) are one unit: their norm is
    broadcast to the shape of ``x``.
    """
    x = ops.convert_to_tensor(x)
    rank = len(x.shape)
    if rank <= 1:
        return ops.broadcast_to(ops.sqrt(ops.sum(ops.square(x))), ops.shape(x))
    return ops.sqrt(ops.sum(ops.square(x), axis=tuple(range(rank - 1)), keepdims=True))


def adaptive_clip(grads: Sequence, variables: Sequence, clip_factor: float, eps: float = 1e-3) -> list:
    """Brock et al.'s unit-wise AGC: shrink ``G_i`` to norm ``clip_factor * max(||W_i||, eps)`` if above it.

    Units under the bound pass through unchanged (bit for bit); ``None`` gradients stay ``None``.
    Pure ``keras.ops``, so it runs inside a compiled train step.
    """
    clipped = []
    for grad, variable in zip(grads, variables):
        if grad is None:
            clipped.append(None)
            continue
        grad = ops.convert_to_tensor(grad)
        weight = ops.cast(ops.convert_to_tensor(variable), grad.dtype)
        max_norm = clip_factor * ops.maximum(unitwise_norm(weight), eps)
        grad_norm = unitwise_norm(grad)
        scaled = grad * (max_norm / ops.maximum(grad_norm, 1e-6))
        clipped.append(ops.where(grad_norm > max_norm, scaled, grad))
    return clipped


class _AdaptiveClipMixin:
    """Adds AGC to a keras optimizer class at the point where keras applies its own clipping.

    Keras' ``apply`` unscales the gradients (``loss_scale_factor``), then
    ``_backend_apply_gradients`` averages accumulated gradients (``gradient_accumulation_steps``)
    and calls ``_clip_gradients`` just before the update. AGC runs first inside that call, so it
    sees the unscaled, accumulated gradient, before any clipnorm / clipvalue.
    """

    def __init__(self, *args, agc_clip_factor: float = 0.01, agc_eps: float = 1e-3, **kwargs):
        super().__init__(*args, **kwargs)
        self.agc_clip_factor = float(agc_clip_factor)
        self.agc_eps = float(agc_eps)

    def _backend_apply_gradients(self, grads, trainable_variables):
        # object.__setattr__: the optimizer's own __setattr__ would track the model's variables
        # as optimizer state.
        object.__setattr__(self, "_agc_variables", list(trainable_variables))
        try:
            return super()._backend_apply_gradients(grads, trainable_variables)
        finally:
            object.__setattr__(self, "_agc_variables", None)

    def _clip_gradients(self, grads):
        variables = getattr(self, "_agc_variables", None)
        if variables is None or len(variables) != len(grads):
            raise RuntimeError("adaptive gradient clipping: the gradients' variables are unknown")
        grads = adaptive_clip(grads, variables, self.agc_clip_factor, self.agc_eps)
        return super()._clip_gradients(grads)

    def get_config(self):
        config = super().get_config()
        config.update(agc_clip_factor=self.agc_clip_factor, agc_eps=self.agc_eps)
        return config


_AGC_CLASSES: dict[type, type] = {}
_WRAPPERS = tuple(
    cls for cls in (getattr(keras.optimizers, n, None) for n in ("LossScaleOptimizer", "MultiOptimizer"))
    if cls is not None
)


def _agc_class(base: type) -> type:
    """The AGC subclass of optimizer class ``base``, registered as ``kerasdl>AdaptiveClipped<Base>``."""
    if issubclass(base, _AdaptiveClipMixin):
        return base
    if issubclass(base, _WRAPPERS):
        raise TypeError(f"{base.__name__} delegates its updates: give AGC to the optimizers it wraps")
    if base not in _AGC_CLASSES:
        for hook in ("_backend_apply_gradients", "_clip_gradients"):
            if not hasattr(base, hook):
                raise TypeError(f"{base.__name__} has no {hook}: this keras cannot do AGC")
        name = f"AdaptiveClipped{base.__name__}"
        cls = type(name, (_AdaptiveClipMixin, base), {
            "__module__": __name__, "__qualname__": name,
            "__doc__": f"{base.__name__} with adaptive gradient clipping (Brock et al. 2021).",
        })
        _AGC_CLASSES[base] = keras.saving.register_keras_serializable(package="kerasdl", name=name)(cls)
    return _AGC_CLASSES[base]


def with_gradient_transform(optimizer: keras.optimizers.Optimizer, agc: float, eps: float = 1e-3):
    """``optimizer`` itself, switched to a subclass that applies AGC with factor ``agc`` in every step.

    The subclass (``AdaptiveClippedSGD``, ...) is registered with keras serialization and its config
    carries ``agc_clip_factor`` / ``agc_eps``, so a checkpoint with the optimizer loads back with
    AGC in any process that imported this module. A ``LossScaleOptimizer`` gets AGC on its inner
    optimizer (which sees unscaled gradients), a ``MultiOptimizer`` on each of its optimizers.
    """
    agc, eps = float(agc), float(eps)
    if not agc > 0 or not eps > 0:
        raise KerasdlUsageError(f"agc and its eps must be > 0. Received: agc={agc}, eps={eps}")
    targets = _wrapped(optimizer)
    for target in targets:
        target.__class__ = _agc_class(type(target))
        target.agc_clip_factor, target.agc_eps = agc, eps
    return optimizer


def _wrapped(optimizer: keras.optimizers.Optimizer) -> list:
    """The optimizers that really update variables: a LossScale / Multi optimizer's inner ones."""
    if hasattr(optimizer, "inner_optimizer"):
        return _wrapped(optimizer.inner_optimizer)
    if isinstance(getattr(optimizer, "optimizers", None), (list, tuple)):
        return [leaf for sub in optimizer.optimizers for leaf in _wrapped(sub)]
    return [optimizer]


def _register_builtin_agc_classes() -> None:
    for value in vars(keras.optimizers).values():
        if (isinstance(value, type) and issubclass(value, keras.optimizers.Optimizer)
                and value is not keras.optimizers.Optimizer and not issubclass(value, _WRAPPERS)):
            _agc_class(value)


_register_builtin_agc_classes()


# --------------------------------------------------------------------------------------------
# Exponential moving average of the weights


class EmaSwap:
    """Shows the optimizer's EMA weights to validation, checkpoints and the final model.

    Keras (``use_ema=True``) updates, after every optimizer step (iteration ``t`` counted from 0,
    ``W`` the freshly updated variable, before constraints are applied)::

        average = W                                    if t == 0
        average = m * average + (1 - m) * W            otherwise

    and ``fit`` copies the averages into the model once, after the last epoch
    (``finalize_variable_values``). Within ``fit`` the hooks run in this order, per epoch::

        train steps (raw weights)
        on_test_begin    swap_in: save the raw weights, load the averages   (validation runs)
        on_test_end      (nothing: the averages stay in for the checkpoint)
        on_epoch_end     swap_in (again if no validation ran) ... checkpoint ... swap_out: restore raw

    so put ``swap_in`` before the checkpoint callbacks (ModelCheckpoint, EarlyStopping with
    restore_best_weights) and ``swap_out`` after them. Training continues from the raw weights.
    Non-trainable state (batch-norm statistics) is not averaged by keras and stays as trained.
    """

    def __init__(self, optimizer: keras.optimizers.Optimizer):
        self.optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        if not getattr(self.optimizer, "use_ema", False):
            raise KerasdlUsageError("EMA callbacks need an optimizer built with use_ema=True")
        self.swap_in, self.swap_out = _EmaSwapIn(self), _EmaSwapOut(self)
        self.training = False
        self._raw: list | None = None

    def _pairs(self) -> list[tuple]:
        if not self.optimizer.built:
            return []
        return [
            (variable, average)
            for variable, average in zip(
                self.optimizer._trainable_variables, self.optimizer._model_variables_moving_average
            )
            if average is not None
        ]

    def load_average(self) -> None:
        """Put the averages into the model variables, keeping the raw values (no-op if already in)."""
        if self._raw is not None:
            return
        pairs = self._pairs()
        self._raw = [(variable, ops.convert_to_numpy(variable)) for variable, _ in pairs]
        for variable, average in pairs:
            variable.assign(average)

    def restore_raw(self) -> None:
        """Put the raw training values back (no-op if the averages are not in)."""
        if self._raw is None:
            return
        for variable, value in self._raw:
            variable.assign(value)
        self._raw = None


class _EmaSwapIn(keras.callbacks.Callback):
    """Loads the EMA weights at ``on_test_begin`` (validation inside fit) and ``on_epoch_end``."""

    def __init__(self, swap: EmaSwap):
        super().__init__()
        self.swap = swap

    def on_train_begin(self, logs=None):
        self.swap.training = True

    def on_test_begin(self, logs=None):
        if self.swap.training:
            self.swap.load_average()

    def on_epoch_end(self, epoch, logs=None):
        self.swap.load_average()

    def on_train_end(self, logs=None):
        # fit has already put the averages in for good (finalize_variable_values).
        self.swap.training = False
        self.swap._raw = None


class _EmaSwapOut(keras.callbacks.Callback):
    """Restores the raw training weights at ``on_epoch_end``, after the checkpoint callbacks."""

    def __init__(self, swap: EmaSwap):
        super().__init__()
        self.swap = swap

    def on_epoch_end(self, epoch, logs=None):
        self.swap.restore_raw()


def ema_callbacks(
    optimizer: keras.optimizers.Optimizer,
) -> tuple[keras.callbacks.Callback, keras.callbacks.Callback]:
    """``(swap_in, swap_out)`` for ``optimizer`` (built with ``use_ema=True``); see :class:`EmaSwap`."""
    swap = EmaSwap(optimizer)
    return swap.swap_in, swap.swap_out
