"""Logistic regression / the single-layer perceptron: one affine map to the logits.

    x (any shape) -> flatten -> Dense(num_classes) -> logits

With a softmax (in the loss) this is multinomial logistic regression (Cox 1958, "The regression
analysis of binary sequences", J. R. Stat. Soc. B 20(2)); with a step function on the output
it is Rosenblatt's perceptron (Rosenblatt 1958, "The perceptron: a probabilistic model for
information storage and organization in the brain", Psychological Review 65(6)). On 28x28x1
images with 10 classes it has 784 * 10 + 10 = 7,850 parameters.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras

from ._common import check_top, initializer, l2_regularizer, logits_head
from .registry import register_model


def Logistic(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    l2: float = 0.0,
    kernel_initializer: Any = "zeros",
    include_top: bool = True,
    pooling: None = None,
    name: str = "logistic",
) -> keras.Model:
    """Build logistic regression as a functional ``keras.Model`` with logits output.

    Args:
        input_shape: one example's shape, e.g. ``(28, 28, 1)`` or ``(n_features,)``.
        num_classes: logits size; 1 gives linear regression.
        l2: L2 penalty on the weights (ridge / weight decay); 0 disables it.
        kernel_initializer: zeros by default: the loss is convex, so a symmetric start is
            fine and makes runs deterministic (the classic textbook setting).
        include_top: False returns the flattened input (the "features" of a linear model).
        pooling: not applicable (accepted for a uniform builder signature; must be None).
        name: the model's name.
    """
    check_top(name, include_top, pooling, allow_pooling=False)
    reg = l2_regularizer(name, l2)
    init = initializer(name, kernel_initializer)

    inputs = keras.Input(shape=tuple(input_shape), name="input")  # (B, *input_shape)
    x = keras.layers.Flatten(name="input_flatten")(inputs)  # (B, F), F = prod(input_shape)
    if include_top:
        x = logits_head(x, num_classes, kernel_regularizer=reg, kernel_initializer=init)  # (B, K)
    return keras.Model(inputs, x, name=name)


@register_model(
    "logistic",
    builder=Logistic,
    family="linear",
    task="classification",
    paper="Rosenblatt 1958 (perceptron); Cox 1958 (logistic regression)",
    default_input_shape=(28, 28, 1),
    default_num_classes=10,
    notes="Flatten -> one Dense to the logits; 7,850 parameters on 28x28x1 / 10 classes. "
    "num_classes=1 gives linear regression.",
)
def logistic(input_shape, num_classes, **overrides):
    """Logistic regression / single-layer perceptron."""
    return Logistic(input_shape, num_classes, **{"name": "logistic", **overrides})

