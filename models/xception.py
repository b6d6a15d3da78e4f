"""Xception: Inception's idea taken to the limit with depthwise separable convolutions.

Chollet 2017, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017.

A depthwise separable convolution (``keras.layers.SeparableConv2D``) is a 3x3 depthwise
convolution (one filter per input channel, spatial mixing only) followed by a 1x1 pointwise
convolution (channel mixing only): ``9 C_in + C_in C_out`` weights instead of
``9 C_in C_out``. Xception is a linear stack of such convs with residual connections, in three
flows (the paper's Figure 5)::

    entry flow   block1: conv 32 3x3 /2 -> conv 64 3x3 (both 'valid')      (B, 147, 147, 64)
                 block2..4: [ReLU] sep 128 -> ReLU -> sep 128 -> max-pool 3x3 /2,
                            + shortcut 1x1 conv /2; then 256, 728               (B, 19, 19, 728)
    middle flow  block5..12: ReLU -> sep 728, three times, + identity            (B, 19, 19, 728)
    exit flow    block13: ReLU -> sep 728 -> ReLU -> sep 1024 -> max-pool /2,
                          + shortcut 1x1 conv /2                                 (B, 10, 10, 1024)
                 block14: sep 1536 -> ReLU -> sep 2048 -> ReLU                   (B, 10, 10, 2048)
    head         global average pool -> dense num_classes (logits)

(shapes for 299x299 inputs). Every conv is followed by batch norm; no conv has a bias (batch
norm's beta replaces it). Block2 has no ReLU before its first separable conv: block1 ended
with one. The flows are the data table ``BLOCKS``.

Parameter count checked: 22,910,480 at 299x299x3 with 1000 classes, exactly
``keras.applications.Xception`` (the paper reports 22,855,952 in its Table 3; we match the
Keras reference, whose layer names we also keep so its layout is easy to compare). The paper
also uses dropout 0.5 before the classifier for ImageNet (``dropout=0.5``; default 0, as
in keras.applications). The smallest input is 71x71 (the input to block14 is then 3x3).

Layer names: ``block1_conv1``, ``block1_conv1_bn``, ``block1_conv1_act``, ...,
``block{b}_sepconv{j}_act``, ``block{b}_sepconv{j}``, ``block{b}_sepconv{j}_bn``,
``block{b}_pool``, ``block{b}_shortcut_conv``, ``block{b}_shortcut_bn``, ``block{b}_add``,
``head_avgpool``, ``head_dropout``, ``head_logits``.
"""

from __future__ import annotations

from typing import Sequence

import keras

from kerasdl.errors import KerasdlUsageError

from ._common import check_rate, check_top, global_pool, logits_head
from .registry import register_model

MIN_SIDE = 71

# Entry-flow stem (block1): (filters, stride) of two plain 3x3 'valid' convs.
STEM = ((32, 2), (64, 1))
# Residual blocks 2..13: (separable conv filters, ReLU before the first conv, downsample).
# downsample: 3x3 stride-2 max-pool at the end and a 1x1 stride-2 conv + BN shortcut;
# otherwise the shortcut is the identity.
BLOCKS = (
    ((128, 128), False, True),  # entry flow (block2)
    ((256, 256), True, True),  # entry flow (block3)
    ((728, 728), True, True),  # entry flow (block4)
    *[((728, 728, 728), True, False)] * 8,  # middle flow (blocks 5-12)
    ((728, 1024), True, True),  # exit flow (block13)
)
# Exit flow, block14: separable convs each followed by BN and ReLU, no shortcut.
EXIT_CONVS = (1536, 2048)


def _bn(name: str):
    return keras.layers.BatchNormalization(momentum=0.9, name=name)


def _residual_block(x, filters: Sequence[int], pre_relu: bool, downsample: bool, block: str):
    """``[ReLU] -> sep -> BN -> (ReLU -> sep -> BN) ... [-> max-pool /2] + shortcut``."""
    if downsample:
        shortcut = keras.layers.Conv2D(filters[-1], 1, strides=2, padding="same",
                                       use_bias=False, name=f"{block}_shortcut_conv")(x)
        shortcut = _bn(f"{block}_shortcut_bn")(shortcut)  # (B, H/2, W/2, F)
    else:
        shortcut = x
    for j, f in enumerate(filters, start=1):
        conv = f"{block}_sepconv{j}"
        if j > 1 or pre_relu:
            x = keras.layers.Activation("relu", name=f"{conv}_act")(x)
        x = keras.layers.SeparableConv2D(f, 3, padding="same", use_bias=False, name=conv)(x)
        x = _bn(f"{conv}_bn")(x)  # (B, H, W, f)
    if downsample:
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"{block}_pool")(x)
    return keras.layers.Add(name=f"{block}_add")([x, shortcut])


def Xception(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    dropout: float = 0.0,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "xception",
) -> keras.Model:
    """Build Xception as a functional ``keras.Model`` with logits output.

    Args:
        input_shape: ``(height, width, channels)`` with height and width >= 71 (299x299x3 for
            ImageNet).
        num_classes: logits size; 1 gives a single linear output (regression).
        dropout: dropout rate before the classifier (the paper uses 0.5 on ImageNet).
        include_top: False drops the head and returns block14's ``(B, h, w, 2048)`` map.
        pooling: with ``include_top=False``: None (the map), ``"avg"`` or ``"max"``.
        name: the model's name (also used in error messages).
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or min(input_shape[:2]) < MIN_SIDE:
        raise KerasdlUsageError(
            f"{name} needs an image input of shape (height, width, channels) with height and "
            f"width >= {MIN_SIDE}. Received: input_shape={input_shape}"
        )
    check_top(name, include_top, pooling)
    rate = check_rate(name, "dropout", dropout)

    inputs = keras.Input(shape=input_shape, name="input")  # (B, H, W, C)
    x = inputs
    for j, (filters, strides) in enumerate(STEM, start=1):
        conv = f"block1_conv{j}"
        x = keras.layers.Conv2D(filters, 3, strides=strides, use_bias=False, name=conv)(x)
        x = _bn(f"{conv}_bn")(x)
        x = keras.layers.Activation("relu", name=f"{conv}_act")(x)  # (B, H', W', filters)

    for b, (filters, pre_relu, downsample) in enumerate(BLOCKS, start=2):
        x = _residual_block(x, filters, pre_relu, downsample, f"block{b}")

    block = f"block{len(BLOCKS) + 2}"  # block14
    for j, filters in enumerate(EXIT_CONVS, start=1):
        conv = f"{block}_sepconv{j}"
        x = keras.layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                                         name=conv)(x)
        x = _bn(f"{conv}_bn")(x)
        x = keras.layers.Activation("relu", name=f"{conv}_act")(x)  # (B, h, w, filters)

    if not include_top:
        return keras.Model(inputs, global_pool(x, pooling), name=name)
    x = keras.layers.GlobalAveragePooling2D(name="head_avgpool")(x)  # (B, 2048)
    if rate:
        x = keras.layers.Dropout(rate, name="head_dropout")(x)
    x = logits_head(x, num_classes)  # (B, K)
    return keras.Model(inputs, x, name=name)


@register_model(
    "xception",
    builder=Xception,
    family="xception",
    task="classification",
    paper="Chollet 2017",
    default_input_shape=(299, 299, 3),
    default_num_classes=1000,
    smoke_input_shape=(71, 71, 3),
    notes="Entry/middle/exit flows of depthwise separable convs with residual connections; "
    "22,910,480 parameters at 299x299x3 / 1000 classes (keras.applications.Xception, exact). "
    "Images >= 71x71.",
)
def xception(input_shape, num_classes, **overrides):
    """Xception (Chollet 2017)."""
    return Xception(input_shape, num_classes, **{"name": "xception", **overrides})
