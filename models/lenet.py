"""LeNet-5: the convolutional network of LeCun et al. 1998.

LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to document
recognition", Proc. IEEE 86(11), 2278-2324.

This is the widely used modern variant (61,706 parameters on 28x28x1 with 10 classes)::

    (B, 28, 28, 1)
    conv1: 6 @ 5x5 'same' -> ReLU -> max-pool 2     (B, 28, 28, 6) -> (B, 14, 14, 6)
    conv2: 16 @ 5x5 'valid' -> ReLU -> max-pool 2   (B, 10, 10, 16) -> (B, 5, 5, 16)
    flatten -> dense 120 -> ReLU -> dense 84 -> ReLU -> dense 10 (logits)

It differs from the paper in ways that are standard today: the paper pads the 28x28 digits
to 32x32 and uses a 'valid' first conv (same 28x28 output, hence 'same' here); tanh-like
squashing and trainable average-pooling "subsampling" layers instead of ReLU and max-pooling
(``activation="tanh", pool_type="avg"`` gives the paper's flavour); a sparse C3 connection
table instead of a full conv2; and Euclidean RBF output units instead of a linear layer.

Other input sizes work: 32x32x3 (CIFAR-10) gives a 6x6x16 map before the flatten. The second
conv is 'valid' (the paper's C3, 14x14 -> 10x10) when the first pooled map is at least 10x10
on both sides; smaller inputs, such as the 8x8 scikit-learn digits, use 'same' there so the
network still fits (8x8 -> 4x4 -> 4x4 -> 2x2). Inputs under 8x8 are rejected.

Layer names: ``conv{i}_conv``, ``conv{i}_act``, ``conv{i}_pool``, ``head_flatten``,
``dense{i}_linear``, ``dense{i}_act``, ``dense{i}_dropout``, ``head_logits``.
"""

from __future__ import annotations

from typing import Sequence

import keras

from kerasdl.errors import KerasdlUsageError

from ._common import check_choice, check_rate, check_top, global_pool, l2_regularizer, logits_head
from .activations import ActivationSpec, activation_layer, units_multiplier
from .registry import register_model

# (filters, kernel size, padding) per conv stage; "auto" = 'valid' when the stage's input is
# at least _VALID_MIN on both sides, else 'same' (see the module docstring).
CONV_STAGES = ((6, 5, "same"), (16, 5, "auto"))
DENSE_UNITS = (120, 84)
_VALID_MIN = 10
MIN_SIDE = 8

_POOL_LAYERS = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}


def LeNet(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    activation: ActivationSpec = "relu",
    pool_type: str = "max",
    dropout: float = 0.0,
    l2: float = 0.0,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "lenet5",
) -> keras.Model:
    """Build LeNet-5 as a functional ``keras.Model`` with logits output.

    Args:
        input_shape: ``(height, width, channels)`` with height and width >= 8.
        num_classes: logits size; 1 gives a single linear output (regression).
        activation: activation after every conv and hidden dense layer (a name from
            :data:`kerasdl.models.activations.ACTIVATIONS` or a dict with options);
            ``"tanh"`` for the paper's squashing function. Maxout widens the layer before it.
        pool_type: ``"max"`` (modern) or ``"avg"`` (the paper's subsampling) for conv1/conv2.
        dropout: dropout rate after each hidden dense layer (120 and 84).
        l2: L2 penalty on every kernel; 0 disables it.
        include_top: False drops flatten/dense/logits and returns the conv2 feature map
            ``(B, h, w, 16)`` (5x5 for 28x28 inputs), as ``keras.applications`` do.
        pooling: with ``include_top=False``: None (the map), ``"avg"`` or ``"max"`` (global
            pooling to ``(B, 16)``).
        name: the model's name (also used in error messages).
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or min(input_shape[:2]) < MIN_SIDE:
        raise KerasdlUsageError(
            f"{name} needs an image input of shape (height, width, channels) with height and "
            f"width >= {MIN_SIDE}. Received: input_shape={input_shape}"
        )
    check_top(name, include_top, pooling)
    check_choice(name, "pool_type", pool_type, tuple(_POOL_LAYERS))
    rate = check_rate(name, "dropout", dropout)
    pieces = units_multiplier(activation)  # k for maxout, else 1; validates the activation
    reg = l2_regularizer(name, l2)

    inputs = keras.Input(shape=input_shape, name="input")  # (B, H, W, C)
    x = inputs
    for i, (filters, kernel, padding) in enumerate(CONV_STAGES, start=1):
        block = f"conv{i}"
        if padding == "auto":
            padding = "valid" if min(x.shape[1:3]) >= _VALID_MIN else "same"
        x = keras.layers.Conv2D(
            filters * pieces, kernel, padding=padding, kernel_regularizer=reg, name=f"{block}_conv"
        )(x)  # (B, H', W', k * filters)
        x = activation_layer(activation, name_prefix=block, spatial_dims=2)(x)  # (B, H', W', F)
        x = _POOL_LAYERS[pool_type](2, name=f"{block}_pool")(x)  # (B, H'/2, W'/2, F)

    if not include_top:
        return keras.Model(inputs, global_pool(x, pooling), name=name)

    x = keras.layers.Flatten(name="head_flatten")(x)  # (B, h * w * 16)
    for i, units in enumerate(DENSE_UNITS, start=1):
        block = f"dense{i}"
        x = keras.layers.Dense(units * pieces, kernel_regularizer=reg, name=f"{block}_linear")(x)
        x = activation_layer(activation, name_prefix=block)(x)  # (B, units)
        if rate:
            x = keras.layers.Dropout(rate, name=f"{block}_dropout")(x)
    x = logits_head(x, num_classes, kernel_regularizer=reg)  # (B, K)
    return keras.Model(inputs, x, name=name)


@register_model(
    "lenet5",
    builder=LeNet,
    family="lenet",
    task="classification",
    paper="LeCun, Bottou, Bengio & Haffner 1998",
    default_input_shape=(28, 28, 1),
    default_num_classes=10,
    notes="Modern LeNet-5: conv 6@5x5 'same' -> max-pool -> conv 16@5x5 -> max-pool -> "
    "120 -> 84 -> logits, ReLU; 61,706 parameters on 28x28x1 / 10 classes. "
    "activation='tanh', pool_type='avg' for the paper's flavour. Images >= 8x8.",
)
def lenet5(input_shape, num_classes, **overrides):
    """LeNet-5 (modern ReLU / max-pool variant)."""
    return LeNet(input_shape, num_classes, **{"name": "lenet5", **overrides})
