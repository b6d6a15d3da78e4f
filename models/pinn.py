"""Field networks: ``u(inputs)`` for physics-informed training.

A physics-informed neural network (Raissi, Perdikaris & Karniadakis 2019, "Physics-informed neural
networks", J. Comput. Phys. 378) is a plain smooth network from the coordinates ``(x, t, ...)`` to
the solution ``u``; the physics is in the loss (the ``pinn`` task, :mod:`kerasdl.tasks.pinn`), which
differentiates ``u`` with respect to its inputs. So the network must be smooth (``tanh``, ``sin``,
``swish``; never ReLU: its second derivative is zero) and pointwise (no batch statistics: a point's
``u`` must not depend on its neighbours in the batch).

* ``pinn_mlp`` -- Raissi et al.'s network: the inputs rescaled to [-1, 1] from the domain's box
  (``low`` / ``high``, a fixed ``Normalization``), ``depth`` hidden ``tanh`` layers of ``width``
  units with Glorot-normal kernels, and a linear output. The Burgers example's "9 layers x 20" is
  8 hidden layers and the output layer: the defaults.
* ``fourier_mlp`` -- the same with a random Fourier-feature embedding first, ``[cos(2 pi x B),
  sin(2 pi x B)]`` with fixed ``B ~ N(0, fourier_scale^2)`` of ``fourier_features`` columns
  (Tancik et al. 2020; Wang, Wang & Perdikaris 2021, for PINNs): it counters the spectral bias of
  MLPs on high-frequency solutions (Helmholtz).

Layer names: ``input``, ``input_scale``, (``fourier``), ``hidden{i}`` and ``output``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import keras
from keras import ops

from kerasdl.errors import KerasdlUsageError

from ._common import check_int, check_shape
from .registry import register_model

ACTIVATIONS = ("tanh", "sin", "swish", "sigmoid", "gelu", "softplus")


@keras.saving.register_keras_serializable(package="kerasdl")
class FourierFeatures(keras.layers.Layer):
    """``x (N, d) -> [cos(2 pi x B), sin(2 pi x B)] (N, 2m)`` with a fixed ``B (d, m) ~ N(0, scale^2)``
    (Tancik et al. 2020, "Fourier features let networks learn high frequency functions")."""

    def __init__(self, features: int, scale: float = 1.0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.features, self.scale, self.seed = int(features), float(scale), int(seed)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(int(input_shape[-1]), self.features), trainable=False,
            initializer=keras.initializers.RandomNormal(stddev=self.scale, seed=self.seed))

    def call(self, x):
        z = 2.0 * math.pi * ops.matmul(x, ops.cast(self.kernel, x.dtype))
        return ops.concatenate([ops.cos(z), ops.sin(z)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2 * self.features)

    def get_config(self):
        return {**super().get_config(), "features": self.features, "scale": self.scale, "seed": self.seed}


def _activation(name: str):
    return ops.sin if name == "sin" else name


def FieldMLP(input_shape: Sequence[int], outputs: int = 1, *, depth: int = 8, width: int = 20,
             activation: str = "tanh", low: Any = None, high: Any = None, fourier_features: int = 0,
             fourier_scale: float = 1.0, seed: int = 0, name: str = "pinn_mlp") -> keras.Model:
    """A smooth MLP ``u(inputs)`` (Raissi et al. 2019): ``depth`` hidden layers of ``width`` units.

    ``low`` / ``high``: the domain's box per input; the inputs are mapped to [-1, 1] first (as
    Raissi's code does). ``fourier_features`` > 0 puts a Fourier-feature embedding of that many
    frequencies (std ``fourier_scale``) after the rescaling.
    """
    shape = check_shape(name, "input_shape", input_shape)
    if len(shape) != 1:
        raise KerasdlUsageError(f"{name} takes coordinate vectors (d,). Received: input_shape={shape}")
    d = shape[0]
    depth = check_int(name, "depth", depth, minimum=1)
    width = check_int(name, "width", width, minimum=1)
    outputs = check_int(name, "outputs", outputs, minimum=1)
    fourier_features = check_int(name, "fourier_features", fourier_features, minimum=0)
    if activation not in ACTIVATIONS:
        raise KerasdlUsageError(f"{name}: activation must be one of {', '.join(ACTIVATIONS)} (smooth: the PDE "
                                f"needs its derivatives). Received: activation={activation!r}")
    low = [-1.0] * d if low is None else [float(v) for v in low]
    high = [1.0] * d if high is None else [float(v) for v in high]
    if len(low) != d or len(high) != d or not all(h > l for l, h in zip(low, high)):
        raise KerasdlUsageError(f"{name}: low/high must give {d} intervals with high > low. "
                                f"Received: low={low}, high={high}")
    # The input in the weights' dtype: a float64 run must not round its coordinates to float32 first.
    x_in = keras.Input(shape, name="input", dtype=keras.config.dtype_policy().variable_dtype)
    centre = [(l + h) / 2.0 for l, h in zip(low, high)]
    half2 = [((h - l) / 2.0) ** 2 for l, h in zip(low, high)]
    h = keras.layers.Normalization(mean=centre, variance=half2, name="input_scale")(x_in)
    if fourier_features:
        h = FourierFeatures(fourier_features, fourier_scale, seed, name="fourier")(h)
    act = _activation(activation)
    for i in range(1, depth + 1):
        h = keras.layers.Dense(width, activation=act, kernel_initializer=keras.initializers.GlorotNormal(seed + i),
                               name=f"hidden{i}")(h)
    u = keras.layers.Dense(outputs, kernel_initializer=keras.initializers.GlorotNormal(seed), name="output")(h)
    return keras.Model(x_in, u, name=name)


_RAISSI = "Raissi, Perdikaris & Karniadakis 2019"
_FIELD = dict(family="pinn", task="pinn", role="field", required=("input_shape",), default_input_shape=(2,))


@register_model("pinn_mlp", builder=FieldMLP, paper=_RAISSI,
                notes="coordinates -> u: inputs rescaled to [-1, 1], 8 tanh layers of 20 (Raissi's Burgers "
                      "network, '9 layers'), linear output.", **_FIELD)
def pinn_mlp(input_shape, **overrides):
    """Raissi et al.'s smooth MLP for physics-informed training."""
    return FieldMLP(input_shape, **{"name": "pinn_mlp", **overrides})


@register_model("fourier_mlp", builder=FieldMLP, paper=_RAISSI + "; Fourier features: Tancik et al. 2020, "
                "Wang, Wang & Perdikaris 2021",
                notes="coordinates -> u: [-1, 1] rescaling, 64 random Fourier features (std 1), 4 tanh layers "
                      "of 64, linear output: for oscillatory solutions.", **_FIELD)
def fourier_mlp(input_shape, **overrides):
    """The field MLP behind a random Fourier-feature embedding."""
    return FieldMLP(input_shape, **{"name": "fourier_mlp", "depth": 4, "width": 64, "fourier_features": 64,
                                    **overrides})
