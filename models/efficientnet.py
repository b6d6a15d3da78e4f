"""EfficientNet-B0 ... B7: one mobile inverted-bottleneck network, scaled by compound scaling.

Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
ICML 2019. Blocks: MBConv (Sandler et al. 2018, MobileNetV2) with squeeze-and-excitation
(Hu et al. 2018); swish activation (Ramachandran et al. 2017); stochastic depth (Huang et al.
2016), called "drop connect" in the reference code.

B0 (the paper's Table 1, ``BLOCKS`` below) at 224x224::

    stem      conv 3x3 /2, 32                                          (B, 112, 112, 32)
    stage 1   MBConv1 k3x3, 16,  x1                                    (B, 112, 112, 16)
    stage 2   MBConv6 k3x3, 24,  x2, /2                                (B, 56, 56, 24)
    stage 3   MBConv6 k5x5, 40,  x2, /2                                (B, 28, 28, 40)
    stage 4   MBConv6 k3x3, 80,  x3, /2                                (B, 14, 14, 80)
    stage 5   MBConv6 k5x5, 112, x3                                    (B, 14, 14, 112)
    stage 6   MBConv6 k5x5, 192, x4, /2                                (B, 7, 7, 192)
    stage 7   MBConv6 k3x3, 320, x1                                    (B, 7, 7, 320)
    top       conv 1x1, 1280 -> global average pool -> dropout -> logits

    MBConv{e} block, C_in -> C_out:
        expand   1x1 conv to e * C_in, BN, swish                       (skipped when e = 1)
        depthwise k x k conv (stride s), BN, swish
        SE       global pool -> 1x1 conv to C_in / 4, swish -> 1x1 conv, sigmoid -> rescale
        project  1x1 conv to C_out, BN (linear: no activation)
        residual + stochastic depth, when s = 1 and C_in = C_out

Compound scaling (``COMPOUND_SCALING``, the reference implementation's table): B_n multiplies
every width by ``width_coefficient`` (rounded to a multiple of 8, never more than 10% down),
every stage's repeats by ``depth_coefficient`` (rounded up), and is meant for the listed input
resolution; bigger models also get a bigger head dropout. The stochastic-depth rate grows
linearly from 0 (first block) to ``drop_connect_rate`` (0.2) over the blocks.

Parameter counts checked against ``keras.applications`` (1000 classes, default resolutions),
whose layers, conv initialisers, padding (explicit asymmetric padding before stride-2
depthwise convs) and batch norm settings we follow; the classifier's initialiser scales by
fan-in rather than fan-out (see ``DENSE_INITIALIZER``; BN momentum 0.9 as across kerasdl's
zoo). keras.applications puts an input rescaling and a
``Normalization`` layer with 7 non-trainable parameters (3 channel means, 3 variances and a
sample count) into the model; kerasdl's data pipeline already normalises, so by default we
leave them out and count exactly 7 fewer. ``include_preprocessing=True`` adds the equivalent
layers (``x / 255`` then ImageNet mean/std per RGB channel, for raw 0..255 RGB input) and
gives the keras.applications count exactly::

              default    include_preprocessing=True (= keras.applications)
    B0 224    5,330,564   5,330,571        B4 380   19,466,816  19,466,823
    B1 240    7,856,232   7,856,239        B5 456   30,562,520  30,562,527
    B2 260    9,177,562   9,177,569        B6 528   43,265,136  43,265,143
    B3 300   12,320,528  12,320,535        B7 600   66,658,680  66,658,687

(The parameter count does not depend on the input resolution; the paper's Table 2 rounds
B0 to 5.3M.) Inputs must be at least 32x32 (the network downsamples by 32).

Layer names follow keras.applications, with ``_act`` for activations:
``stem_conv_pad``, ``stem_conv``, ``stem_bn``, ``stem_act``, ``block{s}{r}_expand_conv``,
``block{s}{r}_expand_bn``, ``block{s}{r}_expand_act``, ``block{s}{r}_dwconv_pad``,
``block{s}{r}_dwconv``, ``block{s}{r}_dwconv_bn``, ``block{s}{r}_dwconv_act``,
``block{s}{r}_se_squeeze``, ``block{s}{r}_se_reduce``, ``block{s}{r}_se_reduce_act``,
``block{s}{r}_se_expand``, ``block{s}{r}_se_excite``, ``block{s}{r}_project_conv``,
``block{s}{r}_project_bn``, ``block{s}{r}_drop``, ``block{s}{r}_add`` (stage ``s`` = 1..7,
repeat ``r`` = a, b, c, ...), ``top_conv``, ``top_bn``, ``top_act``, ``head_avgpool``,
``head_dropout``, ``head_logits``; with preprocessing ``preprocess_rescale`` and
``preprocess_normalize`` first.
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
import numpy as np
from keras import ops

from kerasdl.errors import KerasdlUsageError

from ._common import check_bool, check_rate, check_top, global_pool, logits_head
from .activations import ActivationSpec, activation_layer, units_multiplier
from .registry import register_model

MIN_SIDE = 32

# B0's MBConv stages (the paper's Table 1, stages 2-8):
# (expand_ratio, kernel_size, strides, filters_in, filters_out, repeats)
BLOCKS = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
STEM_FILTERS = 32
TOP_FILTERS = 1280
SE_RATIO = 0.25  # squeeze to a quarter of the block's *input* channels

# variant: (width_coefficient, depth_coefficient, resolution, dropout)
COMPOUND_SCALING = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}
# keras.applications' counts (1000 classes; they include 7 preprocessing parameters).
KERAS_APPLICATIONS_PARAMS = {
    "b0": 5_330_571,
    "b1": 7_856_239,
    "b2": 9_177_569,
    "b3": 12_320_535,
    "b4": 19_466_823,
    "b5": 30_562_527,
    "b6": 43_265_143,
    "b7": 66_658_687,
}

# He-style init for convs (fan_out, as in the reference code). The head: the reference's
# VarianceScaling(1/3, fan_out, uniform) was tuned for 1000 classes; with 10 classes it gives
# initial logits of std ~5 (loss ~6 instead of ln 10 ~ 2.3), which stalls short runs at chance.
# We scale by fan_in instead, so initial logits have std ~0.5 whatever the class count (the
# parameter count is unchanged; see the module docstring).
CONV_INITIALIZER = {"class_name": "VarianceScaling",
                    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"}}
DENSE_INITIALIZER = {"class_name": "VarianceScaling",
                     "config": {"scale": 1.0 / 3.0, "mode": "fan_in", "distribution": "uniform"}}
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="kerasdl")
class StochasticDepth(keras.layers.Layer):
    """Drop a residual branch for whole examples (Huang et al. 2016; "drop connect").

    Training: each example's branch is zeroed with probability ``rate`` and otherwise scaled
    by ``1 / (1 - rate)``, so its expected value is unchanged. Inference: the identity.
    ``(B, ...) -> (B, ...)``; put it on the branch, before the residual addition.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise KerasdlUsageError(
                f"StochasticDepth rate must be in [0, 1). Received: rate={rate!r}"
            )
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.rate == 0:
            return x
        keep = 1.0 - self.rate
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)  # one draw per example
        mask = ops.floor(keep + keras.random.uniform(shape, seed=self.seed_generator,
                                                      dtype=x.dtype))  # 1 w.p. keep, else 0
        return x * mask / keep

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def round_filters(filters: int, width_coefficient: float, divisor: int = 8) -> int:
    """Scale a channel count by ``width_coefficient``, rounded to a multiple of ``divisor``
    (to the nearest, but never more than 10% below the scaled value)."""
    filters *= width_coefficient
    rounded = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * filters:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth_coefficient: float) -> int:
    """Scale a stage's block count by ``depth_coefficient``, rounded up."""
    return int(math.ceil(depth_coefficient * repeats))


def _correct_pad(x, kernel_size: int):
    """Padding that makes a stride-2 'valid' conv centre its windows like the reference
    implementation: ``k // 2`` after, one less before on even-sized sides."""
    pads = []
    for size in x.shape[1:3]:
        adjust = 1 if size is None else 1 - size % 2
        pads.append((kernel_size // 2 - adjust, kernel_size // 2))
    return tuple(pads)


def _conv_bn_act(x, filters, activation, name, *, kernel_size=1, strides=1, padding="same"):
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding,
                            use_bias=False, kernel_initializer=CONV_INITIALIZER,
                            name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    if activation is None:
        return x
    return activation_layer(activation, name_prefix=name, spatial_dims=2)(x)


def mbconv_block(x, *, filters_in, filters_out, expand_ratio, kernel_size, strides,
                 drop_rate, activation, name):
    """MBConv with squeeze-and-excitation: ``(B, H, W, C_in) -> (B, H/s, W/s, C_out)``."""
    inputs = x
    filters = filters_in * expand_ratio
    if expand_ratio != 1:
        x = _conv_bn_act(x, filters, activation, f"{name}_expand")  # (B, H, W, e C_in)

    if strides == 2:
        x = keras.layers.ZeroPadding2D(_correct_pad(x, kernel_size), name=f"{name}_dwconv_pad")(x)
    x = keras.layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding="valid" if strides == 2 else "same",
        use_bias=False, depthwise_initializer=CONV_INITIALIZER, name=f"{name}_dwconv",
    )(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_dwconv_bn")(x)
    x = activation_layer(activation, name_prefix=f"{name}_dwconv", spatial_dims=2)(x)

    # Squeeze-and-excitation: per-channel gates in (0, 1) computed from the global context.
    filters_se = max(1, int(filters_in * SE_RATIO))
    se = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_se_squeeze")(x)
    se = keras.layers.Conv2D(filters_se, 1, kernel_initializer=CONV_INITIALIZER,
                             name=f"{name}_se_reduce")(se)  # (B, 1, 1, C_in / 4)
    se = activation_layer(activation, name_prefix=f"{name}_se_reduce", spatial_dims=2)(se)
    se = keras.layers.Conv2D(filters, 1, activation="sigmoid",
                             kernel_initializer=CONV_INITIALIZER,
                             name=f"{name}_se_expand")(se)  # (B, 1, 1, e C_in)
    x = keras.layers.Multiply(name=f"{name}_se_excite")([x, se])

    x = _conv_bn_act(x, filters_out, None, f"{name}_project")  # (B, H', W', C_out), linear
    if strides == 1 and filters_in == filters_out:
        if drop_rate > 0:
            x = StochasticDepth(drop_rate, name=f"{name}_drop")(x)
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


def EfficientNet(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    width_coefficient: float = 1.0,
    depth_coefficient: float = 1.0,
    dropout: float = 0.2,
    drop_connect_rate: float = 0.2,
    activation: ActivationSpec = "swish",
    include_preprocessing: bool = False,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "efficientnet",
) -> keras.Model:
    """Build an EfficientNet as a functional ``keras.Model`` with logits output.

    Args:
        input_shape: ``(height, width, channels)`` with height and width >= 32.
        num_classes: logits size; 1 gives a single linear output (regression).
        width_coefficient: channel multiplier of compound scaling (1.0 for B0).
        depth_coefficient: repeats multiplier of compound scaling (1.0 for B0).
        dropout: dropout rate before the classifier.
        drop_connect_rate: stochastic-depth rate of the last block (linearly less before).
        activation: activation name or dict (``"swish"`` as in the paper); maxout is not
            supported (it would change channel counts).
        include_preprocessing: True adds ``x / 255`` and per-channel ImageNet mean/std
            normalisation (as keras.applications does) for raw 0..255 RGB input; needs 3
            channels. Default False: kerasdl's data pipeline normalises the inputs.
        include_top: False drops the head and returns the top conv's ``(B, h, w, 1280 w)``
            map (as keras.applications does).
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
    for key, value in (("width_coefficient", width_coefficient),
                       ("depth_coefficient", depth_coefficient)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise KerasdlUsageError(
                f"{name}: {key} must be a positive number. Received: {key}={value!r}"
            )
    rate = check_rate(name, "dropout", dropout)
    drop_connect_rate = check_rate(name, "drop_connect_rate", drop_connect_rate)
    if units_multiplier(activation) != 1:  # also validates the activation name
        raise KerasdlUsageError(
            f"{name} cannot use maxout (it changes channel counts). "
            f"Received: activation={activation!r}"
        )
    check_bool(name, "include_preprocessing", include_preprocessing)
    if include_preprocessing and input_shape[-1] != 3:
        raise KerasdlUsageError(
            f"{name}: include_preprocessing=True normalises with ImageNet RGB statistics and "
            f"needs 3 channels. Received: input_shape={input_shape}"
        )

    inputs = keras.Input(shape=input_shape, name="input")  # (B, H, W, C)
    x = inputs
    if include_preprocessing:
        x = keras.layers.Rescaling(1.0 / 255.0, name="preprocess_rescale")(x)  # [0, 1]
        x = _imagenet_normalization(x)

    x = keras.layers.ZeroPadding2D(_correct_pad(x, 3), name="stem_conv_pad")(x)
    x = _conv_bn_act(x, round_filters(STEM_FILTERS, width_coefficient), activation, "stem",
                     kernel_size=3, strides=2, padding="valid")  # (B, H/2, W/2, 32 w)

    stages = [(*row[:5], round_repeats(row[5], depth_coefficient)) for row in BLOCKS]
    total = float(sum(row[5] for row in stages))
    b = 0  # block index over the whole network, for the stochastic-depth schedule
    for s, (expand, kernel, strides, filters_in, filters_out, repeats) in enumerate(stages, 1):
        filters_in = round_filters(filters_in, width_coefficient)
        filters_out = round_filters(filters_out, width_coefficient)
        for r in range(repeats):
            x = mbconv_block(
                x,
                filters_in=filters_in if r == 0 else filters_out,
                filters_out=filters_out,
                expand_ratio=expand,
                kernel_size=kernel,
                strides=strides if r == 0 else 1,  # only a stage's first block downsamples
                drop_rate=drop_connect_rate * b / total,
                activation=activation,
                name=f"block{s}{chr(ord('a') + r)}",
            )
            b += 1

    x = _conv_bn_act(x, round_filters(TOP_FILTERS, width_coefficient), activation, "top")
    if not include_top:
        return keras.Model(inputs, global_pool(x, pooling), name=name)
    x = keras.layers.GlobalAveragePooling2D(name="head_avgpool")(x)  # (B, 1280 w)
    if rate:
        x = keras.layers.Dropout(rate, name="head_dropout")(x)
    x = logits_head(x, num_classes, kernel_initializer=DENSE_INITIALIZER)  # (B, K)
    return keras.Model(inputs, x, name=name)


def _imagenet_normalization(x):
    """keras.applications' ``Normalization`` layer (7 non-trainable weights: mean, variance,
    count), holding the ImageNet RGB statistics: ``(x - mean) / std`` per channel."""
    layer = keras.layers.Normalization(axis=-1, name="preprocess_normalize")
    layer.build(x.shape)
    layer.set_weights([
        np.asarray(IMAGENET_MEAN_RGB, "float32"),
        np.square(np.asarray(IMAGENET_STD_RGB, "float32")),
        np.asarray(0, "int64"),
    ])
    layer.finalize_state()  # the layer reads its (now set) mean and variance from here on
    return layer(x)


def _register(variant: str):
    width, depth, resolution, dropout = COMPOUND_SCALING[variant]
    name = f"efficientnet_{variant}"

    @register_model(
        name,
        builder=EfficientNet,
        family="efficientnet",
        task="classification",
        paper="Tan & Le 2019",
        default_input_shape=(resolution, resolution, 3),
        default_num_classes=1000,
        smoke_input_shape=(32, 32, 3),
        notes=f"EfficientNet-{variant.upper()}: width x{width}, depth x{depth}, "
        f"{resolution}x{resolution}, dropout {dropout}; "
        f"{KERAS_APPLICATIONS_PARAMS[variant] - 7:,} parameters at 1000 classes "
        f"(keras.applications: {KERAS_APPLICATIONS_PARAMS[variant]:,}, which include 7 "
        "preprocessing parameters; include_preprocessing=True adds them). Images >= 32x32.",
    )
    def entry(input_shape, num_classes, **overrides):
        preset = dict(width_coefficient=width, depth_coefficient=depth, dropout=dropout,
                      name=name)
        return EfficientNet(input_shape, num_classes, **{**preset, **overrides})

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = f"EfficientNet-{variant.upper()} (Tan & Le 2019)."
    return entry


efficientnet_b0 = _register("b0")
efficientnet_b1 = _register("b1")
efficientnet_b2 = _register("b2")
efficientnet_b3 = _register("b3")
efficientnet_b4 = _register("b4")
efficientnet_b5 = _register("b5")
efficientnet_b6 = _register("b6")
efficientnet_b7 = _register("b7")
