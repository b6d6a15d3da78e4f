"""VGG: very deep networks of stacked 3x3 convolutions.

Simonyan & Zisserman 2015, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015 (arXiv:1409.1556). Batch-norm variants: Ioffe & Szegedy 2015.

The configurations of the paper's Table 1 are the data table :data:`CONFIGS`: five blocks of
3x3 'same' convs + ReLU, each followed by a 2x2/2 max-pool, then the classifier::

    (B, 224, 224, 3)
    block1..block5: convs (64, 128, 256, 512, 512 filters) + max-pool   (B, 7, 7, 512)
    flatten -> fc1 4096 -> ReLU -> dropout -> fc2 4096 -> ReLU -> dropout -> logits

    config  A (vgg11)  B (vgg13)  C                D (vgg16)  E (vgg19)
    convs   1,1,2,2,2  2,2,2,2,2  2,2,3,3,3 (last   2,2,3,3,3  2,2,4,4,4
                                  of blocks 3-5 1x1)

Checked (``tests/test_zoo_classic.py``), 224x224x3 / 1000 classes: vgg16 = **138,357,544**
and vgg19 = **143,667,240** parameters, exactly keras.applications' ``VGG16`` / ``VGG19``
(same layers and order; conv biases; no dropout there, which has no parameters); vgg11 /
vgg13 = 132,863,336 / 133,047,848 as torchvision; config C = 133,638,952 (paper: 134M).

**Batch norm** (``vgg11_bn`` ... ``vgg19_bn``): conv -> BN -> ReLU. The convs keep their bias,
as torchvision's ``vgg*_bn`` do, so the *trainable* count equals torchvision's (vgg16_bn:
138,365,992); ``count_params()`` also counts BN's moving mean and variance (+2 per channel).

**Heads.** ``head="fc"`` (default) is the paper's 4096-4096 classifier with dropout 0.5 after
the ReLUs of fc1 and fc2 (the paper's placement; keras.applications has no dropout). Like
keras.applications it flattens whatever map block5 gives, so fc1's size follows the input:
7x7x512 = 25,088 inputs at 224, 1x1x512 = 512 at 32x32 (torchvision instead adaptive-pools to
7x7 first, which would keep a 102.8M-parameter fc1 even for CIFAR). ``fc_units`` narrows the
two hidden layers (e.g. 512 for CIFAR-sized data). ``head="gap"`` is the small head used for
CIFAR: global average pooling -> logits, no hidden layer (so no dropout); vgg16_bn with it on
32x32x3 / 10 classes has 14,728,266 trainable parameters, the figure of the common PyTorch
CIFAR VGG16 (BN, flatten of the 1x1x512 map, one linear layer).

Inputs must be at least 32x32 (five 2x2 pools); non-square inputs are fine. The default
Glorot-uniform initialisation is what the paper reports training the deep nets from scratch
with (section 3.1, Glorot & Bengio 2010); plain (non-BN) vgg16/19 still train slowly from
scratch, the BN variants much faster.

Layer names follow keras.applications: ``block{b}_conv{i}`` (+ ``_bn``, ``_act``),
``block{b}_pool``; then ``head_flatten``, ``fc{i}_dense``, ``fc{i}_act``, ``fc{i}_dropout``
(or ``head_avgpool``), ``head_logits``.
"""

from __future__ import annotations

from typing import Sequence

import keras

from ._common import (
    check_bool,
    check_choice,
    check_image_shape,
    check_int,
    check_rate,
    check_top,
    global_pool,
    logits_head,
)
from .registry import register_model

# Paper Table 1: per block, (filters, kernel size of each conv). C is D with a 1x1 conv last in
# blocks 3-5; the paper's A-LRN (A plus one LRN) is left out (the paper found LRN does not help).
CONFIGS = {
    "A": ((64, (3,)), (128, (3,)), (256, (3, 3)), (512, (3, 3)), (512, (3, 3))),
    "B": ((64, (3, 3)), (128, (3, 3)), (256, (3, 3)), (512, (3, 3)), (512, (3, 3))),
    "C": ((64, (3, 3)), (128, (3, 3)), (256, (3, 3, 1)), (512, (3, 3, 1)), (512, (3, 3, 1))),
    "D": ((64, (3, 3)), (128, (3, 3)), (256, (3, 3, 3)), (512, (3, 3, 3)), (512, (3, 3, 3))),
    "E": ((64, (3, 3)), (128, (3, 3)), (256, (3,) * 4), (512, (3,) * 4), (512, (3,) * 4)),
}
DEPTH_CONFIG = {11: "A", 13: "B", 16: "D", 19: "E"}  # weight layers -> config
HEADS = ("fc", "gap")
MIN_SIDE = 32


def VGG(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    config: str = "D",
    batch_norm: bool = False,
    head: str = "fc",
    fc_units: int = 4096,
    dropout: float = 0.5,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "vgg16",
) -> keras.Model:
    """Build a VGG network as a functional ``keras.Model`` with logits output.

    Args:
        input_shape: ``(height, width, channels)`` with height and width >= 32.
        num_classes: logits size; 1 gives a single linear output (regression).
        config: a column of the paper's Table 1: ``"A"`` (11 weight layers), ``"B"`` (13),
            ``"C"`` (16, with 1x1 convs), ``"D"`` (16) or ``"E"`` (19).
        batch_norm: conv -> batch norm -> ReLU in every conv layer (torchvision's ``vgg*_bn``).
        head: ``"fc"`` (flatten -> fc_units -> fc_units -> logits, the paper's) or ``"gap"``
            (global average pooling -> logits, for small inputs such as CIFAR).
        fc_units: width of fc1 and fc2 in the ``"fc"`` head (4096 in the paper).
        dropout: rate of the dropout after fc1 and fc2 (0.5 in the paper).
        include_top: False returns the block5 pooled map ``(B, H/32, W/32, 512)``.
        pooling: with ``include_top=False``: None (the map), ``"avg"`` or ``"max"``
            (global pooling to ``(B, 512)``).
        name: the model's name (also used in error messages).
    """
    input_shape = check_image_shape(name, input_shape, min_side=MIN_SIDE)
    check_top(name, include_top, pooling)
    check_choice(name, "config", config, tuple(CONFIGS))
    check_bool(name, "batch_norm", batch_norm)
    check_choice(name, "head", head, HEADS)
    check_int(name, "fc_units", fc_units, minimum=1)
    rate = check_rate(name, "dropout", dropout)

    inputs = keras.Input(shape=input_shape, name="input")  # (B, H, W, C)
    x = inputs
    for b, (filters, kernels) in enumerate(CONFIGS[config], start=1):
        for i, kernel in enumerate(kernels, start=1):
            layer = f"block{b}_conv{i}"
            x = keras.layers.Conv2D(filters, kernel, padding="same", name=layer)(x)
            if batch_norm:
                x = keras.layers.BatchNormalization(momentum=0.9, name=f"{layer}_bn")(x)
            x = keras.layers.ReLU(name=f"{layer}_act")(x)  # (B, H_b, W_b, filters)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(x)  # halves H, W

    if not include_top:
        return keras.Model(inputs, global_pool(x, pooling), name=name)  # (B, H/32, W/32, 512)

    if head == "gap":
        x = keras.layers.GlobalAveragePooling2D(name="head_avgpool")(x)  # (B, 512)
    else:
        x = keras.layers.Flatten(name="head_flatten")(x)  # (B, H/32 * W/32 * 512)
        for i in (1, 2):
            x = keras.layers.Dense(fc_units, name=f"fc{i}_dense")(x)  # (B, fc_units)
            x = keras.layers.ReLU(name=f"fc{i}_act")(x)
            if rate:
                x = keras.layers.Dropout(rate, name=f"fc{i}_dropout")(x)
    x = logits_head(x, num_classes)  # (B, K)
    return keras.Model(inputs, x, name=name)


def _register(depth: int, batch_norm: bool) -> None:
    """Register ``vgg{depth}`` / ``vgg{depth}_bn``: thin entry points binding the config."""
    config = DEPTH_CONFIG[depth]
    name = f"vgg{depth}_bn" if batch_norm else f"vgg{depth}"
    bn_note = " with batch norm after every conv" if batch_norm else ""

    @register_model(
        name,
        builder=VGG,
        family="vgg",
        task="classification",
        paper="Simonyan & Zisserman 2015" + ("; Ioffe & Szegedy 2015" if batch_norm else ""),
        default_input_shape=(224, 224, 3),
        default_num_classes=1000,
        smoke_input_shape=(32, 32, 3),
        notes=f"VGG config {config} ({depth} weight layers){bn_note}: 3x3 convs in 5 blocks "
        "-> flatten -> 4096 -> 4096 -> logits, dropout 0.5 (vgg16 138,357,544 / vgg19 "
        "143,667,240 parameters at 224x224x3, as keras.applications). head='gap' (global "
        "average pooling -> logits) suits CIFAR-sized inputs. Images >= 32x32.",
    )
    def entry(input_shape, num_classes, **overrides):
        return VGG(input_shape, num_classes,
                   **{"config": config, "batch_norm": batch_norm, "name": name, **overrides})

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = f"VGG-{depth} (config {config}){bn_note}."
    globals()[name] = entry  # kerasdl.models.vgg.vgg16 etc., like a hand-written entry point


for _depth in DEPTH_CONFIG:
    for _bn in (False, True):
        _register(_depth, _bn)
