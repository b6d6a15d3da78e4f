"""Wide residual networks (WRN-d-k) for CIFAR-sized images.

Zagoruyko & Komodakis 2016, "Wide Residual Networks", BMVC.

A WRN is the pre-activation CIFAR ResNet (He et al. 2016b) made shallower and k times wider::

    (B, 32, 32, 3)
    stem: 3x3 conv 16                                      (B, 32, 32, 16)
    stage1 / stage2 / stage3: n = (d - 4) / 6 blocks, 16k / 32k / 64k filters,
        stride 2 in the first block of stages 2 and 3       (B, 8, 8, 64k)
    BN -> ReLU ("post") -> global average pool -> head_logits   (B, 10)

    block: BN -> ReLU -> 3x3 conv -> BN -> ReLU -> (dropout) -> 3x3 conv  (+ shortcut)

The shortcut is the identity, or a 1x1 conv on the pre-activated input where the shape changes
(the first block of every stage when k > 1), as in the authors' code. Dropout between the two
convs is the paper's regulariser (0.3 for its best CIFAR results); off by default. Convs have
no biases. BN momentum 0.9 / epsilon 1e-5, He-normal kernels (the authors' Torch settings).

Parameter counts checked against the paper (tests/test_zoo_resnet.py; trainable parameters, as
the paper counts them): WRN-28-10 36,479,194 (paper 36.5M), WRN-16-8 10,961,370 (11.0M),
WRN-40-4 8,949,210 (8.9M), all on 32x32x3 with 10 classes.

Layer names follow :mod:`kerasdl.models.resnet`: ``stem_conv``,
``stage{s}_block{b}_{preact_bn,preact_relu,conv1,bn1,relu1,dropout,conv2,shortcut_conv,add}``,
``post_bn``, ``post_relu``, ``head_avgpool``, ``head_logits``.
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
    drop_path_rates,
    initializer,
    l2_regularizer,
)
from .registry import register_presets
from .resnet import CIFAR_FILTERS, bn_relu, conv_factory, pooled_classifier, residual_block

MIN_SIDE = 4  # total stride 4


def WideResNet(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    depth: int = 28,
    widen_factor: int = 10,
    dropout: float = 0.0,
    drop_path_rate: float = 0.0,
    kernel_initializer: Any = "he_normal",
    l2: float = 0.0,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "wide_resnet",
) -> keras.Model:
    """Build WRN-``depth``-``widen_factor`` with logits output.

    Args:
        input_shape: ``(height, width, channels)``, sides >= 4 (32x32x3 for CIFAR).
        num_classes: logits size; 1 gives a single linear output (regression).
        depth: 6n + 4 (10, 16, 22, 28, 40, ...): n blocks per stage.
        widen_factor: k, the width multiplier of the 16/32/64 filters of a CIFAR ResNet.
        dropout: dropout rate between the two convs of every block (paper: 0.3).
        drop_path_rate: stochastic depth rate of the last block (linear rule); 0 disables.
        kernel_initializer: Keras initializer for every conv.
        l2: L2 penalty on every kernel (the paper's weight decay 5e-4 is ``l2=2.5e-4``).
        include_top: False returns the post-activated feature map ``(B, H/4, W/4, 64k)``.
        pooling: with ``include_top=False``: None, ``"avg"`` or ``"max"`` -> ``(B, 64k)``.
        name: the model's name.
    """
    input_shape = check_image_shape(name, input_shape, min_side=MIN_SIDE)
    check_top(name, include_top, pooling)
    check_int(name, "depth", depth, minimum=10)
    if (depth - 4) % 6:
        raise KerasdlUsageError(
            f"{name}: depth must be 6n + 4 (10, 16, 22, 28, 40, ...). Received: depth={depth}"
        )
    check_int(name, "widen_factor", widen_factor, minimum=1)
    rate = check_rate(name, "dropout", dropout)
    n = (depth - 4) // 6
    rates = drop_path_rates(name, drop_path_rate, 3 * n)
    reg = l2_regularizer(name, l2)
    conv = conv_factory(initializer(name, kernel_initializer), reg)

    inputs = keras.Input(shape=input_shape, name="input")  # (B, H, W, C)
    # No BN after the stem: the first block's pre-activation normalises it.
    x = conv(inputs, CIFAR_FILTERS[0], 3, name="stem_conv")  # (B, H, W, 16)
    for stage, filters in enumerate(CIFAR_FILTERS, start=1):
        for b in range(n):
            x = residual_block(
                x,
                conv,
                filters=filters * widen_factor,
                stride=2 if stage > 1 and b == 0 else 1,
                preact=True,
                dropout=rate,
                drop_rate=rates[(stage - 1) * n + b],
                name=f"stage{stage}_block{b + 1}",
            )
    # x: (B, H/4, W/4, 64k)
    x = bn_relu(x, "post")
    return pooled_classifier(inputs, x, num_classes, include_top=include_top, pooling=pooling,
                             kernel_regularizer=reg, name=name)


# Registered presets: one table row per variant (the builder keywords it binds in ``preset``).
_WRN = dict(
    family="wide_resnet",
    task="classification",
    paper="Zagoruyko & Komodakis 2016",
    default_input_shape=(32, 32, 3),
    default_num_classes=10,
    smoke_input_shape=(32, 32, 3),
)
PRESETS = {
    "wide_resnet": dict(preset={},
                        notes="Generic WRN-d-k: pass depth (6n+4) and widen_factor; defaults to "
                        "WRN-28-10. dropout=0.3 between the convs as in the paper's best runs."),
    "wide_resnet28_10": dict(preset=dict(depth=28, widen_factor=10),
                             notes="WRN-28-10: 36.5M parameters (paper); dropout=0.3 for the "
                             "paper's best CIFAR results."),
    "wide_resnet16_8": dict(preset=dict(depth=16, widen_factor=8),
                            notes="WRN-16-8: 11.0M parameters (paper)."),
    "wide_resnet40_4": dict(preset=dict(depth=40, widen_factor=4),
                            notes="WRN-40-4: 8.9M parameters (paper)."),
}
globals().update(register_presets(WideResNet, PRESETS, **_WRN))
