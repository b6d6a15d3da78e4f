"""Activation functions by name, as Keras layers the builders can drop in.

Every activation of the lectures, selectable by a string (the CLI and configs use strings)::

    identity / linear   f(x) = x
    binary_step         Heaviside step, f(x) = 1 if x >= 0 else 0 (Rosenblatt 1958)
    sigmoid             1 / (1 + exp(-x))
    tanh                tanh(x)
    arctan              arctan(x)
    relu                max(0, x)                                  (Nair & Hinton 2010)
    leaky_relu          x if x >= 0 else alpha * x, alpha=0.01     (Maas et al. 2013)
    prelu               leaky ReLU with a *learned* alpha           (He et al. 2015)
    elu                 x if x > 0 else alpha * (exp(x) - 1)        (Clevert et al. 2016)
    softplus            log(1 + exp(x))
    maxout              max over k affine pieces, k=2               (Goodfellow et al. 2013)
    gelu, swish / silu, selu, softsign, hard_sigmoid               (extras)

An activation is given as a name (``"leaky_relu"``) or, to set its options, a dict
(``{"name": "leaky_relu", "alpha": 0.2}``). Options: ``leaky_relu`` and ``elu`` take
``alpha``; ``prelu`` takes ``alpha_init`` (the slope's initial value, 0.25 as in He et al.);
``maxout`` takes ``k`` (pieces per unit).

**binary_step** has a zero gradient almost everywhere (and none at 0), so backpropagation
cannot train the layers below it. It is here for the perceptron lesson; use it in the last
hidden layer, or expect the layers before it to stay at their initial weights.

**maxout** (Goodfellow et al. 2013) is an affine map into ``k * units`` values followed by a max
over each unit's ``k`` pieces. The affine part is the preceding Dense/Conv layer, so a builder
widens that layer by :func:`units_multiplier` (``k`` for maxout, 1 otherwise) and the
:class:`Maxout` layer returned here does the max: ``(B, ..., k * units) -> (B, ..., units)``.

``hard_sigmoid`` is Keras 3's ``relu6(x + 3) / 6`` (slope 1/6), not Keras 2's ``0.2 x + 0.5``.

All layers are built from ``keras.layers`` / ``keras.ops`` (any backend) and serialise with
``model.save`` (the two custom functions and :class:`Maxout` are registered under ``kerasdl>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

import keras
from keras import ops

from kerasdl.errors import KerasdlUsageError, UnknownNameError

__all__ = [
    "ACTIVATIONS",
    "ActivationSpec",
    "Maxout",
    "activation_layer",
    "resolve_activation",
    "units_multiplier",
]

ActivationSpec = Union[str, Mapping[str, Any]]

_ALIASES = {"linear": "identity", "swish": "silu"}

# Canonical name -> its options with their defaults.
_OPTIONS: dict[str, dict[str, Any]] = {
    "identity": {},
    "binary_step": {},
    "sigmoid": {},
    "tanh": {},
    "arctan": {},
    "relu": {},
    "leaky_relu": {"alpha": 0.01},
    "prelu": {"alpha_init": 0.25},
    "elu": {"alpha": 1.0},
    "softplus": {},
    "maxout": {"k": 2},
    "gelu": {},
    "silu": {},
    "selu": {},
    "softsign": {},
    "hard_sigmoid": {},
}

#: Every accepted activation name (aliases included), sorted.
ACTIVATIONS: tuple[str, ...] = tuple(sorted([*_OPTIONS, *_ALIASES]))

# Element-wise activations that Keras ships under the same name.
_KERAS_BUILTIN = {
    "identity": "linear",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "softplus": "softplus",
    "gelu": "gelu",
    "silu": "silu",
    "selu": "selu",
    "softsign": "softsign",
    "hard_sigmoid": "hard_sigmoid",
}


@keras.saving.register_keras_serializable(package="kerasdl")
def binary_step(x):
    """Heaviside step: 1 where x >= 0, else 0. Its gradient is zero (almost everywhere)."""
    step = ops.where(ops.greater_equal(x, 0), ops.ones_like(x), ops.zeros_like(x))
    # `+ 0 * x` keeps x in the graph so the gradient is an explicit zero, not "no gradient"
    # (which Keras optimizers warn about and drop).
    return step + 0.0 * x


@keras.saving.register_keras_serializable(package="kerasdl")
def arctan(x):
    """arctan(x): a sigmoid-shaped squashing function with range (-pi/2, pi/2)."""
    return ops.arctan(x)


_CUSTOM = {"binary_step": binary_step, "arctan": arctan}


@keras.saving.register_keras_serializable(package="kerasdl")
class Maxout(keras.layers.Layer):
    """Max over groups of ``k`` consecutive features on the last axis (Goodfellow et al. 2013).

    ``(B, ..., k * units) -> (B, ..., units)``; output unit ``i`` is
    ``max(x[..., i*k], ..., x[..., i*k + k - 1])``. Put it after a Dense/Conv layer of
    ``k * units`` outputs to get a maxout layer of ``units`` units.
    """

    def __init__(self, k: int = 2, **kwargs):
        super().__init__(**kwargs)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise KerasdlUsageError(f"maxout needs an integer k >= 1. Received: k={k!r}")
        self.k = k

    def _check(self, input_shape):
        width = input_shape[-1]
        if width is None or width % self.k:
            raise KerasdlUsageError(
                f"maxout with k={self.k} needs a last axis divisible by {self.k}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        return width // self.k

    def build(self, input_shape):
        self._check(input_shape)

    def call(self, x):  # (B, ..., k * units)
        units = self._check(x.shape)
        pieces = ops.reshape(x, (-1, *x.shape[1:-1], units, self.k))  # (B, ..., units, k)
        return ops.max(pieces, axis=-1)  # (B, ..., units)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self._check(input_shape))

    def get_config(self):
        return {**super().get_config(), "k": self.k}


def resolve_activation(activation: ActivationSpec) -> tuple[str, dict[str, Any]]:
    """``"swish"`` -> ``("silu", {})``; ``{"name": "leaky_relu", "alpha": 0.2}`` ->
    ``("leaky_relu", {"alpha": 0.2})``. Options not given take their defaults.

    Unknown name -> ``UnknownNameError("activation", ...)``; unknown option -> also
    ``UnknownNameError`` (kind ``"<name> option"``); a bad value -> ``KerasdlUsageError``.
    """
    if isinstance(activation, Mapping):
        if "name" not in activation:
            raise KerasdlUsageError(
                "an activation given as a dict needs a 'name' key, e.g. "
                f"{{'name': 'leaky_relu', 'alpha': 0.2}}. Received: activation={dict(activation)!r}"
            )
        given = {k: v for k, v in activation.items() if k != "name"}
        raw = activation["name"]
    elif isinstance(activation, str):
        given, raw = {}, activation
    else:
        raise KerasdlUsageError(
            f"activation must be a name such as 'relu' (one of {', '.join(ACTIVATIONS)}) or a "
            f"dict with a 'name' key. Received: activation={activation!r}"
        )
    key = str(raw).strip().lower().replace("-", "_")
    name = _ALIASES.get(key, key)
    if name not in _OPTIONS:
        raise UnknownNameError("activation", str(raw), ACTIVATIONS)
    defaults = _OPTIONS[name]
    for option in given:
        if option not in defaults:
            valid = ", ".join(defaults) or "none"
            raise UnknownNameError(
                f"{name} option", option, defaults, extra=f"(valid options: {valid})"
            )
    options = {**defaults, **given}
    for option, value in options.items():
        if option == "k":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise KerasdlUsageError(f"maxout needs an integer k >= 1. Received: k={value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise KerasdlUsageError(
                f"{name} option {option} must be a number. Received: {option}={value!r}"
            )
    return name, options


def units_multiplier(activation: ActivationSpec) -> int:
    """How much wider the layer before this activation must be: ``k`` for maxout, else 1."""
    name, options = resolve_activation(activation)
    return options["k"] if name == "maxout" else 1


def activation_layer(
    activation: ActivationSpec, *, name_prefix: str, spatial_dims: int = 0
) -> keras.layers.Layer:
    """A new Keras layer named ``f"{name_prefix}_act"`` applying ``activation``.

    Args:
        activation: a name from :data:`ACTIVATIONS` or a dict ``{"name": ..., **options}``.
        name_prefix: the block's name, e.g. ``"dense1"`` -> layer ``"dense1_act"``.
        spatial_dims: spatial axes of the input (0 for ``(B, C)``, 2 for ``(B, H, W, C)``).
            PReLU shares its learned slope across them (one slope per channel, as in
            He et al. 2015) instead of learning one per pixel.
    """
    name, options = resolve_activation(activation)
    layer_name = f"{name_prefix}_act"
    if name in _KERAS_BUILTIN:
        return keras.layers.Activation(_KERAS_BUILTIN[name], name=layer_name)
    if name in _CUSTOM:
        return keras.layers.Activation(_CUSTOM[name], name=layer_name)
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=float(options["alpha"]), name=layer_name)
    if name == "elu":
        return keras.layers.ELU(alpha=float(options["alpha"]), name=layer_name)
    if name == "prelu":
        return keras.layers.PReLU(
            alpha_initializer=keras.initializers.Constant(float(options["alpha_init"])),
            shared_axes=list(range(1, spatial_dims + 1)) or None,
            name=layer_name,
        )
    if name == "maxout":
        return Maxout(k=options["k"], name=layer_name)
    raise AssertionError(f"activation {name!r} is listed but has no layer")  # pragma: no cover
