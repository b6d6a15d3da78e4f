"""Highway networks: fully connected layers with learned gates around an identity carry.

Srivastava, Greff & Schmidhuber 2015, "Highway Networks", arXiv:1505.00387, and
"Training Very Deep Networks", NeurIPS 28 (arXiv:1507.06228).

A highway layer mixes a plain layer ``H`` with its own input, under a transform gate ``T``::

    y = H(x) * T(x) + x * (1 - T(x))        H(x) = act(x W_H + b_H)
                                            T(x) = sigmoid(x W_T + b_T)

(the paper's coupled carry gate ``C = 1 - T``). With ``T`` near 0 the layer passes ``x``
through almost unchanged, so gradients reach the first layers of nets that are tens of
layers deep. The paper initialises ``b_T`` negative, "e.g. -1, -3" (more negative for deeper
nets), which biases every layer towards carrying at the start; ``gate_bias=-2`` here.
A highway layer cannot change the width, so a plain projection layer comes first (as in
the paper's networks)::

    x -> flatten -> dense(width) -> act                     proj_*        (B, width)
      -> [highway layer -> (dropout)] x depth               highway{i}_*  (B, width)
      -> dense -> logits                                    head_logits   (B, K)

Parameters: the projection has ``F * width + width``; each highway layer has two
``width x width`` affine maps, ``2 * (width**2 + width)`` (checked by hand in the tests;
the paper gives no per-model counts to match). Computed as ``x + T * (H - x)``, the same
value with one multiply fewer.

Layer names: ``input``, ``input_flatten``, ``proj_linear``, ``proj_act``, then per layer
``highway{i}_h_linear``, ``highway{i}_h_act``, ``highway{i}_gate`` (the sigmoid ``T``),
``highway{i}_delta`` (``H - x``), ``highway{i}_gated`` (``T * (H - x)``), ``highway{i}_out``
(``x + T * (H - x)``), ``highway{i}_dropout``; then ``head_logits``.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras

from kerasdl.errors import KerasdlUsageError

from ._common import (
    check_int,
    check_rate,
    check_top,
    initializer,
    l2_regularizer,
    logits_head,
)
from .activations import ActivationSpec, activation_layer, units_multiplier
from .registry import register_model


def Highway(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    depth: int = 10,
    width: int = 64,
    activation: ActivationSpec = "relu",
    gate_bias: float = -2.0,
    dropout: float = 0.0,
    kernel_initializer: Any = "glorot_uniform",
    l2: float = 0.0,
    include_top: bool = True,
    pooling: None = None,
    name: str = "highway",
) -> keras.Model:
    """Build a highway MLP as a functional ``keras.Model`` with logits output.

    Args:
        input_shape: one example's shape; it is flattened, e.g. ``(28, 28, 1)`` -> 784.
        num_classes: logits size; 1 gives a single linear output (regression).
        depth: number of highway layers after the projection (0: projection only).
        width: units of the projection and of every highway layer (a highway layer keeps
            its width, so there is one).
        activation: activation of the projection and of every ``H`` (a name from
            :data:`kerasdl.models.activations.ACTIVATIONS` or a dict with options); the
            gate is always a sigmoid. Maxout widens the layer before it.
        gate_bias: initial bias of every transform gate ``T``. Negative values start each
            layer close to the identity (``T = sigmoid(-2) = 0.12`` for a zero input).
        dropout: dropout rate after each highway layer.
        kernel_initializer: Keras initializer name or object for every kernel.
        l2: L2 penalty on every kernel; 0 disables it.
        include_top: False returns the last highway layer's output ``(B, width)``.
        pooling: not applicable (the features are already a vector; must be None).
        name: the model's name.
    """
    check_top(name, include_top, pooling, allow_pooling=False)
    depth = check_int(name, "depth", depth, minimum=0)
    width = check_int(name, "width", width, minimum=1)
    rate = check_rate(name, "dropout", dropout)
    if isinstance(gate_bias, bool) or not isinstance(gate_bias, (int, float)):
        raise KerasdlUsageError(
            f"{name}: gate_bias must be a number (negative starts near the identity). "
            f"Received: gate_bias={gate_bias!r}"
        )
    pieces = units_multiplier(activation)  # k for maxout, else 1; validates the activation
    reg = l2_regularizer(name, l2)
    init = initializer(name, kernel_initializer)

    def dense(units, layer_name, **kw):
        return keras.layers.Dense(
            units, kernel_initializer=init, kernel_regularizer=reg, name=layer_name, **kw
        )

    inputs = keras.Input(shape=tuple(input_shape), name="input")  # (B, *input_shape)
    x = keras.layers.Flatten(name="input_flatten")(inputs)  # (B, F)
    x = dense(width * pieces, "proj_linear")(x)  # (B, k * width)
    x = activation_layer(activation, name_prefix="proj")(x)  # (B, width)
    for i in range(1, depth + 1):
        block = f"highway{i}"
        h = dense(width * pieces, f"{block}_h_linear")(x)  # (B, k * width)
        h = activation_layer(activation, name_prefix=f"{block}_h")(h)  # (B, width): H(x)
        t = dense(
            width,
            f"{block}_gate",
            activation="sigmoid",
            bias_initializer=keras.initializers.Constant(float(gate_bias)),
        )(x)  # (B, width): T(x) in (0, 1)
        delta = keras.layers.Subtract(name=f"{block}_delta")([h, x])  # H - x
        gated = keras.layers.Multiply(name=f"{block}_gated")([t, delta])  # T * (H - x)
        x = keras.layers.Add(name=f"{block}_out")([x, gated])  # H*T + x*(1-T)  (B, width)
        if rate:
            x = keras.layers.Dropout(rate, name=f"{block}_dropout")(x)
    if include_top:
        x = logits_head(x, num_classes, kernel_regularizer=reg, kernel_initializer=init)  # (B, K)
    return keras.Model(inputs, x, name=name)


@register_model(
    "highway",
    builder=Highway,
    family="highway",
    task="classification",
    paper="Srivastava, Greff & Schmidhuber 2015",
    default_input_shape=(28, 28, 1),
    default_num_classes=10,
    smoke_input_shape=(16,),
    notes="Flatten -> dense(width) -> [y = H(x)*T(x) + x*(1-T(x))] x depth -> logits; "
    "default 10 highway layers of 64 ReLU units, transform-gate bias -2 (starts near the "
    "identity). Any input shape; num_classes=1 gives regression.",
)
def highway(input_shape, num_classes, **overrides):
    """Highway MLP (10 x 64 ReLU highway layers, gate bias -2)."""
    return Highway(input_shape, num_classes, **{"name": "highway", **overrides})
