"""Densely connected convolutional networks (DenseNet-BC, ImageNet layout).

Huang, Liu, van der Maaten & Weinberger 2017, "Densely Connected Convolutional Networks", CVPR.

Every layer of a dense block sees the concatenation of all earlier feature maps of the block
and adds ``growth_rate`` new channels; transitions between blocks halve the channels
(``compression``) and the resolution::

    (B, H, W, C)
    stem: 7x7/2 conv 64 -> BN -> ReLU -> 3x3/2 max-pool        (B, H/4, W/4, 64)
    block1: 6 dense layers                                     (B, H/4, W/4, 64 + 6k)
    transition1: BN -> ReLU -> 1x1 conv (x compression) -> 2x2/2 avg-pool
    ... blocks 2-4 (DENSENET_BLOCKS), transitions 2-3          (B, H/32, W/32, 1024)
    BN -> ReLU ("post") -> global average pool -> head_logits   (B, K)

    dense layer: BN -> ReLU -> 1x1 conv (bottleneck_width * k) -> BN -> ReLU -> 3x3 conv (k)
                 -> (dropout) -> concatenate with its input

This is keras.applications' DenseNet layer for layer (no conv biases; BN momentum 0.9 here,
epsilon 1.001e-5 as there): the same function given the same weights
(tests/test_zoo_applications.py). Parameter counts checked (tests/test_zoo_resnet.py):
densenet121 / 169 / 201 have 8,062,504 / 14,307,880 / 20,242,984 parameters in total, exactly
keras.applications DenseNet121/169/201 (trainable 7,978,856 for DenseNet-121 = torchvision).

A new depth is one line: a row of :data:`DENSENET_BLOCKS` (``depth = 2 * sum(blocks) + 5``)
and an entry point. DenseNet-161 is ``blocks=(6, 12, 36, 24), growth_rate=48,
stem_filters=96``.

Layer names: ``stem_conv``, ``stem_bn``, ``stem_relu``, ``stem_pool``,
``block{i}_layer{j}_{bn1,relu1,conv1,bn2,relu2,conv2,dropout,concat}``,
``transition{i}_{bn,relu,conv,pool}``, ``post_bn``, ``post_relu``, ``head_avgpool``,
``head_logits``.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras

from kerasdl.errors import KerasdlUsageError

from ._common import (
    check_image_shape,
    check_int,
    check_rate,
    check_top,
    initializer,
    l2_regularizer,
)
from .registry import register_model
from .resnet import batch_norm, bn_relu, conv_factory, imagenet_stem, pooled_classifier

# depth -> dense layers per block (Huang et al. 2017, Table 1; growth rate 32).
DENSENET_BLOCKS = {
    121: (6, 12, 24, 16),
    169: (6, 12, 32, 32),
    201: (6, 12, 48, 32),
}


def DenseNet(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    blocks: Sequence[int] = DENSENET_BLOCKS[121],
    growth_rate: int = 32,
    stem_filters: int = 64,
    bottleneck_width: int = 4,
    compression: float = 0.5,
    dropout: float = 0.0,
    kernel_initializer: Any = "he_normal",
    l2: float = 0.0,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "densenet",
) -> keras.Model:
    """Build a DenseNet-BC with logits output.

    Args:
        input_shape: ``(height, width, channels)``; sides >= the total stride,
            ``4 * 2 ** (len(blocks) - 1)`` (32 for four blocks).
        num_classes: logits size; 1 gives a single linear output (regression).
        blocks: dense layers per dense block, e.g. ``(6, 12, 24, 16)`` for DenseNet-121.
        growth_rate: k, the channels each dense layer adds.
        stem_filters: channels of the 7x7 stem conv (64; 96 for DenseNet-161).
        bottleneck_width: the 1x1 bottleneck conv has ``bottleneck_width * k`` channels (the
            "B" in DenseNet-BC; torchvision's ``bn_size``).
        compression: fraction of channels a transition keeps (the "C"; 0.5), in (0, 1].
        dropout: dropout rate on each dense layer's new features (paper: 0.2 without data
            augmentation); 0 disables.
        kernel_initializer: Keras initializer for every conv.
        l2: L2 penalty on every kernel; 0 disables it.
        include_top: False returns the post-activated feature map ``(B, H/32, W/32, C)``.
        pooling: with ``include_top=False``: None, ``"avg"`` or ``"max"`` -> ``(B, C)``.
        name: the model's name.
    """
    if (
        not isinstance(blocks, (list, tuple))
        or not blocks
        or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in blocks)
    ):
        raise KerasdlUsageError(
            f"{name}: blocks must be a non-empty list of positive integers (dense layers per "
            f"block), e.g. (6, 12, 24, 16). Received: blocks={blocks!r}"
        )
    input_shape = check_image_shape(name, input_shape, min_side=4 * 2 ** (len(blocks) - 1))
    check_top(name, include_top, pooling)
    check_int(name, "growth_rate", growth_rate, minimum=1)
    check_int(name, "stem_filters", stem_filters, minimum=1)
    check_int(name, "bottleneck_width", bottleneck_width, minimum=1)
    if isinstance(compression, bool) or not isinstance(compression, (int, float)) or not (
        0 < compression <= 1
    ):
        raise KerasdlUsageError(
            f"{name}: compression must be a number in (0, 1]. Received: compression={compression!r}"
        )
    rate = check_rate(name, "dropout", dropout)
    reg = l2_regularizer(name, l2)
    conv = conv_factory(initializer(name, kernel_initializer), reg)

    inputs = keras.Input(shape=input_shape, name="input")  # (B, H, W, C)
    x = imagenet_stem(inputs, conv, stem_filters)  # (B, H/4, W/4, 64)

    for i, num_layers in enumerate(blocks, start=1):
        for j in range(1, num_layers + 1):
            prefix = f"block{i}_layer{j}"
            y = batch_norm(f"{prefix}_bn1")(x)
            y = keras.layers.ReLU(name=f"{prefix}_relu1")(y)
            y = conv(y, bottleneck_width * growth_rate, 1, name=f"{prefix}_conv1")  # (.., 4k)
            y = batch_norm(f"{prefix}_bn2")(y)
            y = keras.layers.ReLU(name=f"{prefix}_relu2")(y)
            y = conv(y, growth_rate, 3, name=f"{prefix}_conv2")  # (B, h, w, k)
            if rate:
                y = keras.layers.Dropout(rate, name=f"{prefix}_dropout")(y)
            x = keras.layers.Concatenate(name=f"{prefix}_concat")([x, y])  # (B, h, w, C + k)
        if i < len(blocks):
            prefix = f"transition{i}"
            x = bn_relu(x, prefix)
            x = conv(x, int(x.shape[-1] * compression), 1, name=f"{prefix}_conv")
            x = keras.layers.AveragePooling2D(2, strides=2, name=f"{prefix}_pool")(x)  # (h/2, w/2)
    # x: (B, H/32, W/32, C), C = 1024 for DenseNet-121
    x = bn_relu(x, "post")
    return pooled_classifier(inputs, x, num_classes, include_top=include_top, pooling=pooling,
                             kernel_regularizer=reg, name=name)


_DENSENET = dict(
    builder=DenseNet,
    family="densenet",
    task="classification",
    paper="Huang, Liu, van der Maaten & Weinberger 2017",
    default_input_shape=(224, 224, 3),
    default_num_classes=1000,
    smoke_input_shape=(32, 32, 3),
)


def _densenet(input_shape, num_classes, overrides, **preset):
    return DenseNet(input_shape, num_classes, **{**preset, **overrides})


@register_model("densenet121", **_DENSENET,
                notes="DenseNet-121 (k=32, blocks 6-12-24-16): 8,062,504 parameters "
                "(keras.applications DenseNet121). Inputs >= 32x32.")
def densenet121(input_shape, num_classes, **overrides):
    """DenseNet-121."""
    return _densenet(input_shape, num_classes, overrides, blocks=DENSENET_BLOCKS[121],
                     name="densenet121")


@register_model("densenet169", **_DENSENET,
                notes="DenseNet-169 (k=32, blocks 6-12-32-32): 14,307,880 parameters "
                "(keras.applications DenseNet169). Inputs >= 32x32.")
def densenet169(input_shape, num_classes, **overrides):
    """DenseNet-169."""
    return _densenet(input_shape, num_classes, overrides, blocks=DENSENET_BLOCKS[169],
                     name="densenet169")


@register_model("densenet201", **_DENSENET,
                notes="DenseNet-201 (k=32, blocks 6-12-48-32): 20,242,984 parameters "
                "(keras.applications DenseNet201). Inputs >= 32x32.")
def densenet201(input_shape, num_classes, **overrides):
    """DenseNet-201."""
    return _densenet(input_shape, num_classes, overrides, blocks=DENSENET_BLOCKS[201],
                     name="densenet201")
