"""GoogLeNet (Inception v1): inception modules built from the paper's Table 1.

Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke & Rabinovich 2015, "Going
Deeper with Convolutions", CVPR 2015 (arXiv:1409.4842). Batch norm: Ioffe & Szegedy 2015.

Each inception module has four parallel branches, concatenated on the channel axis; the
columns of :data:`INCEPTION_TABLE` are the paper's Table 1 columns::

    x -> 1x1 (#1x1)                                  -+
    x -> 1x1 (#3x3 reduce) -> 3x3 (#3x3)              +-> concat: #1x1 + #3x3 + #5x5 + pool proj
    x -> 1x1 (#5x5 reduce) -> "5x5" (#5x5)            |   channels
    x -> max-pool 3x3/1 -> 1x1 (pool proj)           -+

The whole network at 224x224x3 (every conv is conv -> BN -> ReLU by default)::

    conv1 7x7/2 64 -> max-pool 3/2      (B, 112, 112, 64) -> (B, 56, 56, 64)
    conv2 1x1 64 -> conv3 3x3 192 -> max-pool 3/2                (B, 28, 28, 192)
    inception 3a, 3b -> max-pool 3/2                              (B, 14, 14, 480)
    inception 4a .. 4e -> max-pool 2/2                            (B, 7, 7, 832)
    inception 5a, 5b -> global avg-pool -> dropout -> logits      (B, 1024) -> (B, K)

**Which GoogLeNet.** The default reproduces torchvision's ``googlenet`` exactly: **6,624,904
trainable parameters** without aux heads at 224x224x3 / 1000 classes (checked in
``tests/test_zoo_classic.py``; ``count_params()`` adds 14,560 non-trainable BN moving
statistics, which PyTorch keeps as buffers). torchvision differs from the paper in four ways,
all followed here by default: every conv is conv (no bias) -> BN (eps 1e-3) -> ReLU; the
"5x5" branch uses a **3x3** conv (a known torchvision quirk kept for its pretrained weights);
the pool after 4e is 2x2/2 (the paper's is 3x3/2; same 7x7 output at 224, and it lets
32x32 inputs through); and dropout before the classifier is 0.2 (paper: 0.4). The paper's
network is ``batch_norm=False, kernel_5x5=5, dropout=0.4``: 6,998,552 parameters. (Summing
the "params" column of the paper's Table 1 gives ~6.8M; its entries undercount the layers it
lists by ~3%, e.g. 2.7K for the 9,408 weights of the 7x7x3x64 conv1.) Neither variant has
the paper's local response normalisation (torchvision drops it).

Max-pools use PyTorch's ``ceil_mode=True`` (as torchvision): the map is zero-padded at the
bottom/right to the next whole window, which is exact because the pools follow ReLUs (>= 0).
Spatial sizes therefore equal torchvision's at every input size (Keras' 'same' pooling
differs on odd sides). Inputs must be at least 32x32, the network's total stride: 32x32
(CIFAR) gives a 1x1 map at 5b. (Ceil-mode pools would take smaller inputs, but only by
pooling windows that hang off a 1x1 map; they are rejected, like keras.applications' VGG
and ResNet reject inputs under 32x32.)

**Auxiliary classifiers** (``aux_logits=True``): the paper's two side heads on 4a and 4d
(torchvision's ``InceptionAux``): adaptive avg-pool to 4x4 (the paper's 5x5/3 average pool
also gives 4x4 at 224) -> 1x1 conv 128 -> fc 1024 -> ReLU -> dropout 0.7 -> logits.
torchvision switches them on when training from scratch; here they are off by default so
the model has one output, the logits. With them on, the model has three outputs
``[head_logits, aux1_logits, aux2_logits]`` (13,004,888 trainable parameters at 224,
torchvision's figure). Train with the paper's 0.3 weight on the side losses, then keep
only the main output for inference (the aux layers are then dropped)::

    model = build_model("googlenet", input_shape=(224, 224, 3), num_classes=1000,
                        aux_logits=True)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("sgd", loss=[ce, ce, ce], loss_weights=[1.0, 0.3, 0.3])
    model.fit(x, (y, y, y))
    inference = keras.Model(model.input, model.outputs[0])  # shares the trained weights

Layer names: ``conv{i}_conv`` / ``_bn`` / ``_act``, ``pool{i}_pad`` / ``_pool``, and per
module ``inception3a_1x1_conv``, ``inception3a_3x3_reduce_conv``, ``inception3a_3x3_conv``,
``inception3a_5x5_reduce_conv``, ``inception3a_5x5_conv``, ``inception3a_pool``,
``inception3a_pool_proj_conv`` (each conv with ``_bn``, ``_act``), ``inception3a_concat``;
``aux1_*``; ``head_avgpool``, ``head_dropout``, ``head_logits``.
"""

from __future__ import annotations

import math
from typing import Sequence

import keras

from kerasdl.errors import KerasdlUsageError

from ._common import (
    AdaptiveAvgPool2D,
    check_bool,
    check_choice,
    check_image_shape,
    check_rate,
    check_top,
    global_pool,
    logits_head,
)
from .registry import register_model

# The paper's Table 1: module, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION_TABLE = (
    ("3a", 64, 96, 128, 16, 32, 32),
    ("3b", 128, 128, 192, 32, 96, 64),
    ("4a", 192, 96, 208, 16, 48, 64),
    ("4b", 160, 112, 224, 24, 64, 64),
    ("4c", 128, 128, 256, 24, 64, 64),
    ("4d", 112, 144, 288, 32, 64, 64),
    ("4e", 256, 160, 320, 32, 128, 128),
    ("5a", 256, 160, 320, 32, 128, 128),
    ("5b", 384, 192, 384, 48, 128, 128),
)
# Max-pool (name, size, stride) after a module; torchvision's 2x2 after 4e (paper: 3x3/2).
POOL_AFTER = {"3b": ("pool3", 3, 2), "4e": ("pool4", 2, 2)}
AUX_AFTER = {"4a": "aux1", "4d": "aux2"}  # side classifiers (aux_logits=True)
AUX_POOLED_SIDE, AUX_FILTERS, AUX_UNITS, AUX_DROPOUT = 4, 128, 1024, 0.7
MIN_SIDE = 32  # the total stride (see the module docstring)


def _conv(x, filters: int, kernel: int, *, name: str, batch_norm: bool, strides: int = 1):
    """conv -> (BN) -> ReLU, 'same' padding for stride 1 (torchvision's BasicConv2d with BN)."""
    x = keras.layers.Conv2D(
        filters, kernel, strides=strides, padding="same" if strides == 1 else "valid",
        use_bias=not batch_norm,  # BN's beta replaces the bias
        name=f"{name}_conv",
    )(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_act")(x)


def _max_pool_ceil(x, size: int, stride: int, *, name: str):
    """Max-pool with PyTorch's ``ceil_mode=True``: a partial last window counts.

    Zero-padding the bottom/right edge to complete that window is exact here because every
    pool follows a ReLU, so the zeros never exceed the real maximum.
    """

    def extra(side: int) -> int:
        windows = math.ceil((side - size) / stride) + 1
        return (windows - 1) * stride + size - side

    h, w = x.shape[1:3]
    x = keras.layers.ZeroPadding2D(((0, extra(h)), (0, extra(w))), name=f"{name}_pad")(x)
    return keras.layers.MaxPooling2D(size, strides=stride, name=f"{name}_pool")(x)


def _inception(x, row, *, kernel_5x5: int, batch_norm: bool):
    """One inception module from a :data:`INCEPTION_TABLE` row: ``(B, H, W, C) -> (B, H, W, C')``
    with ``C' = #1x1 + #3x3 + #5x5 + pool proj``."""
    module, n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj = row
    p = f"inception{module}"
    b1 = _conv(x, n1x1, 1, name=f"{p}_1x1", batch_norm=batch_norm)
    b2 = _conv(x, n3x3_reduce, 1, name=f"{p}_3x3_reduce", batch_norm=batch_norm)
    b2 = _conv(b2, n3x3, 3, name=f"{p}_3x3", batch_norm=batch_norm)
    b3 = _conv(x, n5x5_reduce, 1, name=f"{p}_5x5_reduce", batch_norm=batch_norm)
    b3 = _conv(b3, n5x5, kernel_5x5, name=f"{p}_5x5", batch_norm=batch_norm)
    b4 = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{p}_pool")(x)
    b4 = _conv(b4, pool_proj, 1, name=f"{p}_pool_proj", batch_norm=batch_norm)
    return keras.layers.Concatenate(name=f"{p}_concat")([b1, b2, b3, b4])


def _aux_head(x, num_classes: int, *, name: str, batch_norm: bool):
    """Side classifier (torchvision's InceptionAux): ``(B, 14, 14, C) -> (B, K)`` logits."""
    x = AdaptiveAvgPool2D(AUX_POOLED_SIDE, name=f"{name}_avgpool")(x)
    x = _conv(x, AUX_FILTERS, 1, name=f"{name}_proj", batch_norm=batch_norm)  # (B, 4, 4, 128)
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)  # (B, 2048)
    x = keras.layers.Dense(AUX_UNITS, name=f"{name}_fc_dense")(x)
    x = keras.layers.ReLU(name=f"{name}_fc_act")(x)
    x = keras.layers.Dropout(AUX_DROPOUT, name=f"{name}_dropout")(x)
    return logits_head(x, num_classes, name=f"{name}_logits")  # (B, K)


def GoogLeNet(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    aux_logits: bool = False,
    batch_norm: bool = True,
    kernel_5x5: int = 3,
    dropout: float = 0.2,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "googlenet",
) -> keras.Model:
    """Build GoogLeNet (Inception v1) as a functional ``keras.Model`` with logits output.

    Args:
        input_shape: ``(height, width, channels)`` with height and width >= 32.
        num_classes: logits size; 1 gives a single linear output (regression).
        aux_logits: add the two auxiliary classifiers as extra outputs (training from
            scratch only; see the module docstring). Needs ``include_top=True``.
        batch_norm: conv -> BN -> ReLU without conv bias (torchvision); False gives the
            paper's conv (with bias) -> ReLU.
        kernel_5x5: kernel of the "5x5" branch: 3 (torchvision) or 5 (the paper).
        dropout: rate of the dropout before the logits (torchvision 0.2, paper 0.4).
        include_top: False returns the 5b map ``(B, h, w, 1024)`` (7x7 at 224).
        pooling: with ``include_top=False``: None (the map), ``"avg"`` or ``"max"``
            (global pooling to ``(B, 1024)``).
        name: the model's name (also used in error messages).
    """
    input_shape = check_image_shape(name, input_shape, min_side=MIN_SIDE)
    check_top(name, include_top, pooling)
    check_bool(name, "aux_logits", aux_logits)
    check_bool(name, "batch_norm", batch_norm)
    check_choice(name, "kernel_5x5", kernel_5x5, (3, 5))
    rate = check_rate(name, "dropout", dropout)
    if aux_logits and not include_top:
        raise KerasdlUsageError(
            f"{name}: the auxiliary classifiers are heads; they need include_top=True. "
            "Received: aux_logits=True, include_top=False"
        )

    inputs = keras.Input(shape=input_shape, name="input")  # (B, H, W, C)
    # Stem: conv1 pads 3 explicitly (torchvision); Keras' 'same' at stride 2 pads 2 + 3
    # on even sides, which shifts the windows.
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = _conv(x, 64, 7, strides=2, name="conv1", batch_norm=batch_norm)  # (B, H/2, W/2, 64)
    x = _max_pool_ceil(x, 3, 2, name="pool1")  # (B, H/4, W/4, 64)
    x = _conv(x, 64, 1, name="conv2", batch_norm=batch_norm)
    x = _conv(x, 192, 3, name="conv3", batch_norm=batch_norm)  # (B, H/4, W/4, 192)
    x = _max_pool_ceil(x, 3, 2, name="pool2")  # (B, H/8, W/8, 192)

    aux_outputs = []
    for row in INCEPTION_TABLE:
        module = row[0]
        x = _inception(x, row, kernel_5x5=kernel_5x5, batch_norm=batch_norm)  # (B, h, w, C')
        if aux_logits and module in AUX_AFTER:
            aux_outputs.append(
                _aux_head(x, num_classes, name=AUX_AFTER[module], batch_norm=batch_norm)
            )
        if module in POOL_AFTER:
            pool, size, stride = POOL_AFTER[module]
            x = _max_pool_ceil(x, size, stride, name=pool)  # halves h, w (rounding up)

    if not include_top:
        return keras.Model(inputs, global_pool(x, pooling), name=name)  # (B, H/32, W/32, 1024)

    x = keras.layers.GlobalAveragePooling2D(name="head_avgpool")(x)  # (B, 1024)
    if rate:
        x = keras.layers.Dropout(rate, name="head_dropout")(x)
    x = logits_head(x, num_classes)  # (B, K)
    return keras.Model(inputs, [x, *aux_outputs] if aux_outputs else x, name=name)


@register_model(
    "googlenet",
    builder=GoogLeNet,
    family="inception",
    task="classification",
    paper="Szegedy et al. 2015 (Going Deeper with Convolutions)",
    default_input_shape=(224, 224, 3),
    default_num_classes=1000,
    smoke_input_shape=(32, 32, 3),
    notes="Inception v1 as torchvision's googlenet: conv-BN-ReLU, 9 inception modules from "
    "the paper's Table 1 (3x3 conv in the '5x5' branch), global avg-pool -> dropout 0.2 -> "
    "logits; 6,624,904 trainable parameters at 224x224x3 / 1000 classes. aux_logits=True "
    "adds the two side classifiers as extra outputs; batch_norm=False, kernel_5x5=5, "
    "dropout=0.4 gives the paper's network. Images >= 32x32.",
)
def googlenet(input_shape, num_classes, **overrides):
    """GoogLeNet / Inception v1 (torchvision's)."""
    return GoogLeNet(input_shape, num_classes, **{"name": "googlenet", **overrides})
