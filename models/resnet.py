"""Residual networks: ResNet v1 and v2, ResNeXt, and the CIFAR ResNets with their plain twins.

He, Zhang, Ren & Sun 2016a, "Deep Residual Learning for Image Recognition", CVPR (v1, the
ImageNet table and the CIFAR nets of Sec. 4.2). He, Zhang, Ren & Sun 2016b, "Identity Mappings
in Deep Residual Networks", ECCV (v2, pre-activation). Xie, Girshick, Dollar, Tu & He 2017,
"Aggregated Residual Transformations for Deep Neural Networks", CVPR (ResNeXt). Huang, Sun,
Liu, Sedra & Weinberger 2016, "Deep Networks with Stochastic Depth", ECCV (``drop_path_rate``).

ImageNet ResNets, :func:`ResNet` (stage names follow the paper's conv2_x .. conv5_x)::

    (B, H, W, C)
    stem: 7x7/2 conv 64 -> BN -> ReLU -> 3x3/2 max-pool       (B, H/4, W/4, 64)
    stage2 .. stage5: residual blocks from IMAGENET_DEPTHS,
        64/128/256/512 filters, stride 2 in stages 3-5        (B, H/32, W/32, 512 or 2048)
    global average pool -> head_logits                        (B, K)

    basic block (18, 34):    3x3 -> BN -> ReLU -> 3x3 -> BN        (+ shortcut) -> ReLU
    bottleneck (50+):        1x1 -> BN -> ReLU -> 3x3 -> BN -> ReLU -> 1x1 (4x) -> BN (+) -> ReLU
    v2 (pre-activation):     BN -> ReLU -> conv ... -> conv        (+ shortcut), no ReLU after
                             the add; one BN -> ReLU after the last stage ("post")
    ResNeXt:                 bottleneck whose 3x3 is a grouped conv (groups=32, 4 ch / group)

CIFAR ResNets, :func:`CifarResNet` (Sec. 4.2, depth = 6n + 2)::

    (B, 32, 32, 3)
    stem: 3x3 conv 16 -> BN -> ReLU                           (B, 32, 32, 16)
    stage1 / stage2 / stage3: n basic blocks, 16 / 32 / 64 filters,
        stride 2 in the first block of stages 2 and 3          (B, 8, 8, 64)
    global average pool -> head_logits                        (B, 10)

Parameter counts checked (tests/test_zoo_resnet.py). Keras' ``count_params()`` includes the
BatchNorm moving mean/variance; the keras.applications figures are that total, while
torchvision's and the papers' figures count trainable parameters only:

    resnet18 / resnet34     trainable 11,689,512 / 21,797,672   = torchvision, exact
    resnet50 / 101 / 152    total 25,636,712 / 44,707,176 / 60,419,944 = keras.applications
                            ResNet50/101/152, exact (conv biases, see below); with
                            conv_bias=False, trainable 25,557,032 = torchvision resnet50
    resnet50v2 / 101v2 / 152v2  total 25,613,800 / 44,675,560 / 60,380,648
                            = keras.applications ResNet50V2/101V2/152V2, exact
    resnext50_32x4d         trainable 25,028,904 = torchvision, exact
    resnet20 / 32 / 44 / 56 / 110  trainable 0.27M / 0.46M / 0.66M / 0.85M / 1.7M with
                            option A = He et al. 2016a, Table 6 (to the paper's rounding)

Conventions, and where the references differ:

* ``conv_bias``: keras.applications gives every v1 conv a bias (redundant before BN, but it is
  how ResNet50's 25,636,712 arises), so the resnet50/101/152 presets set ``conv_bias=True``;
  torchvision has no conv biases, so resnet18/34 and resnext50_32x4d set ``False`` (also the
  builder's default). In v2, keras.applications biases only the convs not followed by a BN
  (the stem, the projection shortcuts and each block's last conv); ``conv_bias=True`` does the
  same there.
* Downsampling stride. A name shared with keras.applications means its function: resnet50 /
  101 / 152 stride in the first 1x1 conv of a stage's first block (the original Caffe ResNet,
  ``stride_in="1x1"``), resnet50v2 / 101v2 / 152v2 in the 3x3 conv of the *last* block of
  stages 2-4 (TF-slim, ``stride_block="last"``, the shortcut subsampling with a 1x1 max-pool).
  With the same weights they give keras.applications' logits (tests/test_zoo_applications.py),
  so its ImageNet weights load (``build_model(..., weights="imagenet")``). The other
  conventions keep their own names: resnet50_v1_5 / 101_v1_5 / 152_v1_5 stride in the 3x3 conv
  ("ResNet v1.5", torchvision, the builder's default, also resnet18 / 34 and ResNeXt), and
  preact_resnet50 / 101 / 152 in the first block of stages 3-5 (He et al.'s pre-activation
  code). Parameter counts are identical across conventions.
* Strided convs and the stem max-pool pad explicitly (k // 2 on every side, as torchvision and
  keras.applications), not Keras' asymmetric 'same' padding.
* BatchNorm momentum 0.9 (Torch's default, used to train the papers' nets; Keras' 0.99 is
  slow to settle in short runs) and epsilon 1.001e-5 (keras.applications', with which its
  ImageNet weights were trained); He-normal kernels (the papers' init).
* CIFAR shortcuts: option A (the paper's default for Table 6: identity, subsampled and
  zero-padded with new channels where the shape changes; parameter-free, layer
  :class:`ZeroPadShortcut`), option B (1x1 conv + BN projection there), or None for the
  plain nets of the degradation experiment (plain20, plain56).
* ``drop_path_rate``: stochastic depth with Huang et al.'s linear rule, block l of L drops
  its residual branch with probability ``drop_path_rate * l / L`` (training only).
* Weight decay: the papers' SGD weight decay 1e-4 (5e-4 for WRN) is ``l2=5e-5`` here,
  because Keras adds ``l2 * sum(w**2)`` to the loss, whose gradient is ``2 * l2 * w``.

Layer names: ``stem_conv``, ``stem_bn``, ``stem_relu``, ``stem_pool``, then per block
``stage{s}_block{b}_{conv,bn,relu}{i}``, ``..._preact_bn``, ``..._shortcut_conv``,
``..._shortcut_bn``, ``..._shortcut_pad``, ``..._dropout``, ``..._drop_path``, ``..._add``,
``..._out``; ``post_bn``, ``post_relu`` (v2), ``head_avgpool``, ``head_logits``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import keras
from keras import ops

from kerasdl.errors import KerasdlUsageError

from ._common import (
    check_bool,
    check_choice,
    check_image_shape,
    check_int,
    check_top,
    drop_path,
    drop_path_rates,
    global_pool,
    initializer,
    l2_regularizer,
    logits_head,
)
from .registry import register_presets

# depth -> (block type, blocks per stage conv2_x .. conv5_x); He et al. 2016a, Table 1.
IMAGENET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
IMAGENET_FILTERS = (64, 128, 256, 512)  # per stage; a bottleneck block outputs 4x this
EXPANSION = 4  # bottleneck output channels / inner filters
CIFAR_FILTERS = (16, 32, 64)
IMAGENET_MIN_SIDE = 32  # total stride 32: smaller inputs would vanish before the head
CIFAR_MIN_SIDE = 4  # total stride 4
SHORTCUTS = ("A", "B", None)
STRIDE_IN = ("3x3", "1x1")  # where a bottleneck block downsamples
STRIDE_BLOCKS = ("first", "last")  # which block of a stage downsamples

BN_MOMENTUM = 0.9
BN_EPSILON = 1.001e-5  # keras.applications' value (their ImageNet weights were trained with it)


# --------------------------------------------------------------------------- building blocks


@keras.saving.register_keras_serializable(package="kerasdl")
class ZeroPadShortcut(keras.layers.Layer):
    """He et al.'s option A shortcut: subsample by ``strides``, then zero-pad the channels.

    ``(B, H, W, C) -> (B, ceil(H / s), ceil(W / s), channels)``, no parameters. Picking every
    s-th pixel matches the spatial grid of a stride-s conv with k // 2 padding; the new
    channels (``channels - C`` of them) are zeros appended after the input's.
    """

    def __init__(self, strides: int = 2, channels: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.strides = int(strides)
        self.channels = int(channels)

    def call(self, x):
        s = self.strides
        x = x[:, ::s, ::s, :]  # (B, ceil(H/s), ceil(W/s), C)
        extra = self.channels - x.shape[-1]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])  # (B, h, w, channels)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        side = lambda d: None if d is None else math.ceil(d / self.strides)  # noqa: E731
        return (b, side(h), side(w), self.channels)

    def get_config(self):
        return {**super().get_config(), "strides": self.strides, "channels": self.channels}


def batch_norm(name: str):
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def bn_relu(x, prefix: str):
    """``{prefix}_bn`` -> ``{prefix}_relu``."""
    x = batch_norm(f"{prefix}_bn")(x)
    return keras.layers.ReLU(name=f"{prefix}_relu")(x)


def conv_factory(kernel_initializer, kernel_regularizer):
    """A ``conv(x, filters, kernel, *, name, stride, groups, use_bias)`` sharing init and L2.

    Stride-1 convs use 'same' padding; strided ones pad k // 2 on every side first
    (``{name}_pad``) and convolve 'valid', so 224 -> 112 -> 56 exactly as in torchvision
    and keras.applications (Keras 'same' would pad only the bottom/right).
    """

    def conv(x, filters, kernel, *, name, stride=1, groups=1, use_bias=False):
        if stride > 1 and kernel > 1:
            x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        return keras.layers.Conv2D(
            filters,
            kernel,
            strides=stride,
            padding="same" if stride == 1 else "valid",
            groups=groups,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=kernel_regularizer,
            name=name,
        )(x)

    return conv


def imagenet_stem(inputs, conv, filters: int = 64, *, use_bias: bool = False,
                  normalize: bool = True):
    """7x7/2 conv -> (BN -> ReLU) -> 3x3/2 max-pool: ``(B, H, W, C) -> (B, H/4, W/4, filters)``.

    ``normalize=False`` (ResNet v2) leaves the BN -> ReLU to the first block's pre-activation.
    """
    x = conv(inputs, filters, 7, stride=2, use_bias=use_bias, name="stem_conv")  # (B, H/2, W/2, F)
    if normalize:
        x = bn_relu(x, "stem")
    x = keras.layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)  # (B, H/4, W/4, F)


def residual_block(
    x,
    conv,
    *,
    filters: int,
    stride: int,
    name: str,
    bottleneck: bool = False,
    preact: bool = False,
    shortcut: str | None = "B",
    groups: int = 1,
    width: int | None = None,
    conv_bias: bool = False,
    dropout: float = 0.0,
    drop_rate: float = 0.0,
    stride_in: str = "3x3",
):
    """One residual block ``(B, H, W, C_in) -> (B, H/stride, W/stride, C_out)``.

    ``C_out`` is ``filters`` (basic) or ``4 * filters`` (bottleneck, whose inner convs are
    ``width`` wide, ``groups`` groups in the 3x3). ``preact`` selects v2 ordering. The
    shortcut is the identity unless the shape changes; then ``"B"`` projects (1x1 conv, with a
    BN in v1) where the channels change, or subsamples (``{name}_shortcut_pool``, a 1x1
    stride-s max-pool, as keras.applications' ResNetV2) where only the resolution does;
    ``"A"`` zero-pads; ``None`` drops the shortcut (a plain block). ``dropout`` sits before
    the last conv (WRN); ``drop_rate`` is the stochastic-depth rate. ``stride_in`` places a
    bottleneck's stride: ``"3x3"`` ("v1.5", torchvision) or ``"1x1"`` (the first 1x1 conv,
    the original Caffe ResNet and keras.applications' ResNet50/101/152).
    """
    out_channels = filters * EXPANSION if bottleneck else filters
    changes_shape = stride != 1 or x.shape[-1] != out_channels
    # v1: every conv carries conv_bias; v2: only those whose output is not normalised.
    bias_inner = conv_bias and not preact
    inner = bn_relu(x, f"{name}_preact") if preact else x  # (B, H, W, C_in)

    residual = x
    if shortcut == "B" and changes_shape and x.shape[-1] == out_channels:
        residual = keras.layers.MaxPooling2D(1, strides=stride, name=f"{name}_shortcut_pool")(x)
    elif shortcut == "B" and changes_shape:
        residual = conv(inner, out_channels, 1, stride=stride, use_bias=conv_bias,
                        name=f"{name}_shortcut_conv")  # (B, H/s, W/s, C_out)
        if not preact:
            residual = batch_norm(f"{name}_shortcut_bn")(residual)
    elif shortcut == "A" and changes_shape:
        residual = ZeroPadShortcut(stride, out_channels, name=f"{name}_shortcut_pad")(x)

    if bottleneck:  # (filters, kernel, stride, groups) per conv
        s1, s3 = (stride, 1) if stride_in == "1x1" else (1, stride)
        convs = [(width, 1, s1, 1), (width, 3, s3, groups), (out_channels, 1, 1, 1)]
    else:
        convs = [(filters, 3, stride, 1), (filters, 3, 1, 1)]
    y = inner
    for i, (f, k, s, g) in enumerate(convs, start=1):
        last = i == len(convs)
        if last and dropout:
            y = keras.layers.Dropout(dropout, name=f"{name}_dropout")(y)
        y = conv(y, f, k, stride=s, groups=g, use_bias=bias_inner or (last and conv_bias),
                 name=f"{name}_conv{i}")
        if last and preact:
            break  # v2: the branch ends on a conv
        y = batch_norm(f"{name}_bn{i}")(y)
        if not last:
            y = keras.layers.ReLU(name=f"{name}_relu{i}")(y)
    # y: (B, H/s, W/s, C_out)

    if shortcut is None:
        return keras.layers.ReLU(name=f"{name}_out")(y)
    if drop_rate:
        y = drop_path(drop_rate, name=f"{name}_drop_path")(y)
    x = keras.layers.Add(name=f"{name}_add")([residual, y])
    return x if preact else keras.layers.ReLU(name=f"{name}_out")(x)


def pooled_classifier(inputs, x, num_classes, *, include_top, pooling, kernel_regularizer, name):
    """Finish a conv net: ``(B, h, w, C)`` -> global average pool -> ``head_logits``, or
    with ``include_top=False`` the feature map (optionally globally pooled)."""
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="head_avgpool")(x)  # (B, C)
        x = logits_head(x, num_classes, kernel_regularizer=kernel_regularizer)  # (B, K)
    else:
        x = global_pool(x, pooling)  # (B, h, w, C) or (B, C)
    return keras.Model(inputs, x, name=name)


# --------------------------------------------------------------------------- ImageNet ResNets


def ResNet(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    depth: int = 50,
    version: int = 1,
    groups: int = 1,
    width_per_group: int = 64,
    conv_bias: bool = False,
    stride_in: str = "3x3",
    stride_block: str = "first",
    drop_path_rate: float = 0.0,
    kernel_initializer: Any = "he_normal",
    l2: float = 0.0,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "resnet",
) -> keras.Model:
    """Build an ImageNet-style ResNet / ResNet v2 / ResNeXt with logits output.

    Args:
        input_shape: ``(height, width, channels)``, sides >= 32 (224x224x3 for ImageNet).
        num_classes: logits size; 1 gives a single linear output (regression).
        depth: 18 or 34 (basic blocks), 50, 101 or 152 (bottleneck blocks).
        version: 1 (post-activation, He et al. 2016a) or 2 (pre-activation, 2016b).
        groups: groups of the bottleneck's 3x3 conv (32 for ResNeXt-50 32x4d).
        width_per_group: channels per group at the first stage (4 for 32x4d); the
            bottleneck's inner width is ``filters * width_per_group / 64 * groups``. Only
            bottleneck depths take ``groups`` / ``width_per_group`` other than 1 / 64.
        conv_bias: biases on the convs (keras.applications' convention, see the module
            docstring); False is torchvision's.
        stride_in: where a bottleneck block downsamples: ``"3x3"`` (its 3x3 conv, "ResNet
            v1.5", torchvision) or ``"1x1"`` (its first 1x1 conv, the original ResNet and
            keras.applications' ResNet50/101/152). Basic blocks always stride in the first 3x3.
        stride_block: which block of a stage downsamples: ``"first"`` (of stages 3-5, the
            papers and torchvision) or ``"last"`` (of stages 2-4, keras.applications'
            ResNet50V2/101V2/152V2, from TF-slim; the shortcut then subsamples the input).
        drop_path_rate: stochastic depth rate of the last block (linear rule); 0 disables.
        kernel_initializer: Keras initializer for every conv (He normal, as in the paper).
        l2: L2 penalty on every kernel; 0 disables it.
        include_top: False returns the last feature map ``(B, H/32, W/32, C)``.
        pooling: with ``include_top=False``: None, ``"avg"`` or ``"max"`` -> ``(B, C)``.
        name: the model's name.
    """
    input_shape = check_image_shape(name, input_shape, min_side=IMAGENET_MIN_SIDE)
    check_top(name, include_top, pooling)
    check_choice(name, "depth", depth, tuple(IMAGENET_DEPTHS))
    check_choice(name, "version", version, (1, 2))
    check_int(name, "groups", groups, minimum=1)
    check_int(name, "width_per_group", width_per_group, minimum=1)
    check_bool(name, "conv_bias", conv_bias)
    check_choice(name, "stride_in", stride_in, STRIDE_IN)
    check_choice(name, "stride_block", stride_block, STRIDE_BLOCKS)
    block, blocks_per_stage = IMAGENET_DEPTHS[depth]
    bottleneck = block == "bottleneck"
    if not bottleneck and (groups, width_per_group) != (1, 64):
        raise KerasdlUsageError(
            f"{name}: groups and width_per_group need bottleneck blocks (depth 50, 101 or 152). "
            f"Received: groups={groups!r}, width_per_group={width_per_group!r}, depth={depth!r}"
        )
    rates = drop_path_rates(name, drop_path_rate, sum(blocks_per_stage))
    reg = l2_regularizer(name, l2)
    conv = conv_factory(initializer(name, kernel_initializer), reg)
    preact = version == 2

    inputs = keras.Input(shape=input_shape, name="input")  # (B, H, W, C)
    # v2 normalises the stem's output in the first block's pre-activation.
    x = imagenet_stem(inputs, conv, IMAGENET_FILTERS[0], use_bias=conv_bias, normalize=not preact)
    # x: (B, H/4, W/4, 64)

    index = 0
    for stage, (filters, num_blocks) in enumerate(zip(IMAGENET_FILTERS, blocks_per_stage), 2):
        for b in range(num_blocks):
            if stride_block == "first":  # first block of stages 3-5
                stride = 2 if stage > 2 and b == 0 else 1
            else:  # last block of stages 2-4
                stride = 2 if stage < 5 and b == num_blocks - 1 else 1
            x = residual_block(
                x,
                conv,
                filters=filters,
                stride=stride,
                stride_in=stride_in,
                bottleneck=bottleneck,
                preact=preact,
                groups=groups,
                width=filters * width_per_group // 64 * groups,
                conv_bias=conv_bias,
                drop_rate=rates[index],
                name=f"stage{stage}_block{b + 1}",
            )
            index += 1
    # x: (B, H/32, W/32, 512 or 2048)
    if preact:
        x = bn_relu(x, "post")
    return pooled_classifier(inputs, x, num_classes, include_top=include_top, pooling=pooling,
                             kernel_regularizer=reg, name=name)


# Registered presets: one table row per variant (registry fields + the builder keywords it
# binds, ``preset``), registered in a loop; user overrides win over the preset.
_IMAGENET = dict(
    task="classification",
    default_input_shape=(224, 224, 3),
    default_num_classes=1000,
    smoke_input_shape=(32, 32, 3),
)
_V1 = "He, Zhang, Ren & Sun 2016 (Deep Residual Learning)"
_V2 = "He, Zhang, Ren & Sun 2016 (Identity Mappings in Deep Residual Networks)"
_KERAS_COUNTS = {50: "25,636,712", 101: "44,707,176", 152: "60,419,944"}  # v1, conv biases
_KERAS_V2_COUNTS = {50: "25,613,800", 101: "44,675,560", 152: "60,380,648"}


def _v1_row(depth: int) -> dict:
    """resnet50 / 101 / 152: keras.applications' ResNet layer for layer (conv biases, stride in
    the first 1x1 conv of a block)."""
    torchvision = ("; conv_bias=False gives torchvision's 25,557,032 trainable" if depth == 50
                   else "")
    return dict(paper=_V1, preset=dict(depth=depth, conv_bias=True, stride_in="1x1"),
                notes=f"ResNet-{depth}, bottleneck blocks with conv biases: "
                f"{_KERAS_COUNTS[depth]} parameters (keras.applications ResNet{depth})"
                f"{torchvision}. Inputs >= 32x32.")


def _v1_5_row(depth: int) -> dict:
    """resnet{depth}_v1_5: stride in the 3x3 conv, keras.applications' conv biases."""
    return dict(paper=_V1 + "; v1.5 (torchvision)",
                preset=dict(depth=depth, conv_bias=True, stride_in="3x3"),
                notes=f"ResNet-{depth} v1.5: resnet{depth} with each downsampling block's stride "
                "in its 3x3 conv instead of its first 1x1 (torchvision, the ResNeXt paper); same "
                f"{_KERAS_COUNTS[depth]} parameters. Inputs >= 32x32.")


def _v2_row(depth: int) -> dict:
    """resnet{depth}v2: keras.applications' ResNetV2 layer for layer (stride in the last block
    of stages 2-4)."""
    return dict(paper=_V2, preset=dict(depth=depth, version=2, conv_bias=True, stride_block="last"),
                notes=f"Pre-activation ResNet-{depth}: {_KERAS_V2_COUNTS[depth]} parameters "
                f"(keras.applications ResNet{depth}V2). Inputs >= 32x32.")


def _preact_row(depth: int) -> dict:
    """preact_resnet{depth}: stride in the first block of stages 3-5 (He et al.'s code)."""
    return dict(paper=_V2, preset=dict(depth=depth, version=2, conv_bias=True,
                                       stride_block="first"),
                notes=f"Pre-activation ResNet-{depth} with the paper's downsampling (stride in "
                f"the first block of stages 3-5, He et al.'s code) instead of resnet{depth}v2's "
                f"(last block of stages 2-4, keras.applications); same {_KERAS_V2_COUNTS[depth]} "
                "parameters. Inputs >= 32x32.")


IMAGENET_PRESETS = {
    "resnet18": dict(paper=_V1, preset=dict(depth=18),
                     notes="ResNet-18, basic blocks, no conv biases: 11,689,512 trainable "
                     "parameters (torchvision). Inputs >= 32x32."),
    "resnet34": dict(paper=_V1, preset=dict(depth=34),
                     notes="ResNet-34, basic blocks, no conv biases: 21,797,672 trainable "
                     "parameters (torchvision). Inputs >= 32x32."),
    **{name: row for depth in (50, 101, 152) for name, row in (
        (f"resnet{depth}", _v1_row(depth)),
        (f"resnet{depth}_v1_5", _v1_5_row(depth)),
        (f"resnet{depth}v2", _v2_row(depth)),
        (f"preact_resnet{depth}", _preact_row(depth)),
    )},
    "resnext50_32x4d": dict(
        family="resnext", paper="Xie, Girshick, Dollar, Tu & He 2017",
        preset=dict(depth=50, groups=32, width_per_group=4),
        notes="ResNeXt-50 32x4d: bottleneck 3x3 convs in 32 groups (4 channels each in the first "
        "stage): 25,028,904 trainable parameters (torchvision). Inputs >= 32x32."),
}
globals().update(register_presets(ResNet, IMAGENET_PRESETS, family="resnet", **_IMAGENET))


# --------------------------------------------------------------------------- CIFAR ResNets


def CifarResNet(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    depth: int = 20,
    shortcut: str | None = "A",
    drop_path_rate: float = 0.0,
    kernel_initializer: Any = "he_normal",
    l2: float = 0.0,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "resnet_cifar",
) -> keras.Model:
    """Build a CIFAR ResNet (He et al. 2016a, Sec. 4.2) with logits output.

    Args:
        input_shape: ``(height, width, channels)``, sides >= 4 (32x32x3 for CIFAR).
        num_classes: logits size; 1 gives a single linear output (regression).
        depth: 6n + 2 (20, 32, 44, 56, 110, 1202): n basic blocks per stage.
        shortcut: ``"A"`` (zero-padded identity, parameter-free: the paper's Table 6),
            ``"B"`` (1x1 projection where the shape changes) or None (plain net, no skips).
        drop_path_rate: stochastic depth rate of the last block (linear rule); 0 disables.
        kernel_initializer: Keras initializer for every conv (He normal, as in the paper).
        l2: L2 penalty on every kernel (the paper's weight decay 1e-4 is ``l2=5e-5``).
        include_top: False returns the last feature map ``(B, H/4, W/4, 64)``.
        pooling: with ``include_top=False``: None, ``"avg"`` or ``"max"`` -> ``(B, 64)``.
        name: the model's name.
    """
    input_shape = check_image_shape(name, input_shape, min_side=CIFAR_MIN_SIDE)
    check_top(name, include_top, pooling)
    check_int(name, "depth", depth, minimum=8)
    if (depth - 2) % 6:
        raise KerasdlUsageError(
            f"{name}: depth must be 6n + 2 (20, 32, 44, 56, 110, ...). Received: depth={depth}"
        )
    check_choice(name, "shortcut", shortcut, SHORTCUTS)
    n = (depth - 2) // 6
    rates = drop_path_rates(name, drop_path_rate, 3 * n)
    if shortcut is None and drop_path_rate:
        raise KerasdlUsageError(
            f"{name}: a plain network (shortcut=None) has no residual branch to drop. "
            f"Received: drop_path_rate={drop_path_rate!r}"
        )
    reg = l2_regularizer(name, l2)
    conv = conv_factory(initializer(name, kernel_initializer), reg)

    inputs = keras.Input(shape=input_shape, name="input")  # (B, H, W, C)
    x = conv(inputs, CIFAR_FILTERS[0], 3, name="stem_conv")
    x = bn_relu(x, "stem")  # (B, H, W, 16)
    for stage, filters in enumerate(CIFAR_FILTERS, start=1):
        for b in range(n):
            x = residual_block(
                x,
                conv,
                filters=filters,
                stride=2 if stage > 1 and b == 0 else 1,
                shortcut=shortcut,
                drop_rate=rates[(stage - 1) * n + b],
                name=f"stage{stage}_block{b + 1}",
            )
    # x: (B, H/4, W/4, 64)
    return pooled_classifier(inputs, x, num_classes, include_top=include_top, pooling=pooling,
                             kernel_regularizer=reg, name=name)


_CIFAR = dict(
    family="resnet_cifar",
    task="classification",
    paper=_V1 + ", Sec. 4.2",
    default_input_shape=(32, 32, 3),
    default_num_classes=10,
    smoke_input_shape=(32, 32, 3),
)
CIFAR_PRESETS = {
    "resnet20": dict(preset=dict(depth=20),
                     notes="CIFAR ResNet-20 (n=3), option-A shortcuts: 0.27M parameters (paper, "
                     "Table 6); 91.25% on CIFAR-10 in the paper. shortcut='B' projects instead."),
    "resnet32": dict(preset=dict(depth=32),
                     notes="CIFAR ResNet-32 (n=5), option-A shortcuts: 0.46M parameters (paper, "
                     "Table 6)."),
    "resnet44": dict(preset=dict(depth=44),
                     notes="CIFAR ResNet-44 (n=7), option-A shortcuts: 0.66M parameters (paper, "
                     "Table 6)."),
    "resnet56": dict(preset=dict(depth=56),
                     notes="CIFAR ResNet-56 (n=9), option-A shortcuts: 0.85M parameters (paper, "
                     "Table 6); 93.03% on CIFAR-10 in the paper."),
    "resnet110": dict(preset=dict(depth=110),
                      notes="CIFAR ResNet-110 (n=18), option-A shortcuts: 1.7M parameters (paper, "
                      "Table 6)."),
    "plain20": dict(family="plain_cifar", preset=dict(depth=20, shortcut=None),
                    notes="ResNet-20 without shortcuts (shortcut=None), for the degradation "
                    "experiment (He et al. 2016a, Fig. 6): same 0.27M parameters."),
    "plain56": dict(family="plain_cifar", preset=dict(depth=56, shortcut=None),
                    notes="ResNet-56 without shortcuts (shortcut=None): 0.85M parameters; it ends "
                    "at a higher training error than plain20, the degradation problem (He et al. "
                    "2016a, Fig. 6)."),
}
globals().update(register_presets(CifarResNet, CIFAR_PRESETS, **_CIFAR))
