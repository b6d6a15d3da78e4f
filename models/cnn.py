"""Plain convolutional nets: a 1-D net for signals and a 2-D net described by a spec string.

LeCun, Boser, Denker et al. 1989, "Backpropagation applied to handwritten zip code
recognition", Neural Computation 1(4) (convolution + subsampling + fully connected), with
the modern parts: ReLU (Nair & Hinton 2010), max-pooling, batch normalisation (Ioffe &
Szegedy 2015), dropout (Srivastava et al. 2014).

**cnn1d** -- for sequences / signals of shape ``(length, channels)``::

    (B, L, C)
    [conv1d k -> (batch norm) -> act -> max-pool] x blocks     block{i}_*   (B, L / 2**blocks, F)
    global avg | global max | flatten                          top_*        (B, F')
    (dense -> act -> (dropout))                                dense1_*     (B, dense_units)
    dense -> logits                                            head_logits  (B, K)

Convs are 'same' padded, so only the pools shorten the sequence; ``filters`` doubles after
each block (32, 64, 128 by default) unless given as a list. With ``batch_norm`` the conv
drops its bias (BN's beta replaces it).

**cnn** -- a 2-D net from a spec string, one letter per layer, read left to right:

    ====  =====================================================================================
    c     conv ``kernel_size`` x ``kernel_size`` with the current filter count, then activation
    p     max-pool 2x2, stride 2; the filter count doubles for the convs after it
    n     batch norm. Right after ``c`` or ``f`` it goes between the linear map and its
          activation (conv/dense -> BN -> act, Ioffe & Szegedy 2015) and the map drops its
          bias; anywhere else it normalises what comes before it.
    d     dropout with rate ``dropout`` (left out when ``dropout=0``)
    f     fully connected layer of ``dense_units``, then activation; the first ``f``
          flattens the feature map
    g     global average pooling of the feature map (instead of flattening)
    ====  =====================================================================================

The classifier head ``head_logits`` is always appended (after a flatten, ``head_flatten``,
if the spec left a feature map). ``c``, ``p`` and ``g`` need a feature map, so they cannot
come after ``f`` or ``g``. Everything before the first ``f``/``g`` is the convolutional
body (what ``include_top=False`` returns, like ``keras.applications``); the rest is the top.

The defaults, ``spec="cpcpd"``, ``filters=32``, ``padding="valid"``, ``dropout=0.5``,
build exactly the keras.io "Simple MNIST convnet" (conv 32 -> pool -> conv 64 -> pool ->
flatten -> dropout 0.5 -> dense 10; 34,826 parameters on 28x28x1, checked in the tests;
dropout before or after the flatten is the same operation). Another example:
``spec="cncnpdcncnpdfd", padding="same"`` is a VGG-style CIFAR net
(2 x conv32-BN-ReLU, pool, dropout, 2 x conv64-BN-ReLU, pool, dropout, dense, dropout).

Layer names (``s`` = stage: the layers up to and including a pool, and the ``n``/``d`` right
after it; ``j`` = count within the stage):
``stage{s}_conv{j}``, ``stage{s}_conv{j}_bn``, ``stage{s}_conv{j}_act``, ``stage{s}_bn{j}``,
``stage{s}_dropout{j}``, ``stage{s}_pool``; then ``top_flatten`` or ``top_avgpool``,
``top_dense{j}``, ``top_dense{j}_bn``, ``top_dense{j}_act``, ``top_bn{j}``, ``top_dropout{j}``;
then ``head_flatten``, ``head_logits``.
"""

from __future__ import annotations

import collections
from typing import Sequence

import keras

from kerasdl.errors import KerasdlUsageError

from ._common import (
    check_bool,
    check_choice,
    check_int,
    check_rate,
    check_top,
    global_pool,
    l2_regularizer,
    logits_head,
)
from .activations import ActivationSpec, activation_layer, units_multiplier
from .registry import register_model

# --------------------------------------------------------------------------- cnn1d

REDUCTIONS = ("avg", "max", "flatten")
_REDUCE_1D = {
    "avg": lambda: keras.layers.GlobalAveragePooling1D(name="top_avgpool"),
    "max": lambda: keras.layers.GlobalMaxPooling1D(name="top_maxpool"),
    "flatten": lambda: keras.layers.Flatten(name="top_flatten"),
}


def CNN1D(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    blocks: int | None = None,
    filters: int | Sequence[int] = 32,
    kernel_size: int = 5,
    pool_size: int = 2,
    batch_norm: bool = True,
    activation: ActivationSpec = "relu",
    reduction: str = "avg",
    dense_units: int = 64,
    dropout: float = 0.0,
    l2: float = 0.0,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "cnn1d",
) -> keras.Model:
    """Build a 1-D conv net as a functional ``keras.Model`` with logits output.

    Args:
        input_shape: ``(length, channels)``, e.g. ``(128, 1)`` for a mono signal, or an image
            ``(height, width, channels)``, read as a sequence of ``height`` rows; the
            length must be at least ``pool_size ** blocks``.
        num_classes: logits size; 1 gives a single linear output (regression).
        blocks: number of conv blocks. Default: ``len(filters)`` for a list, else 3.
        filters: filters of the first block, doubled after each block; or a list, one per
            block.
        kernel_size: conv kernel length ('same' padding).
        pool_size: max-pool size and stride after each block.
        batch_norm: BN between each conv and its activation (the conv then has no bias).
        activation: a name from :data:`kerasdl.models.activations.ACTIVATIONS` or a dict
            with options, after every conv and the hidden dense layer.
        reduction: how the top turns the final map into a vector: ``"avg"`` / ``"max"``
            (global pooling over the length, any input length) or ``"flatten"``.
        dense_units: units of the hidden dense layer before the logits; 0 leaves it out.
        dropout: dropout rate after the hidden dense layer.
        l2: L2 penalty on every kernel; 0 disables it.
        include_top: False returns the last block's map ``(B, L', F)``.
        pooling: with ``include_top=False``: None (the map), ``"avg"`` or ``"max"``
            (global pooling to ``(B, F)``).
        name: the model's name.
    """
    input_shape = tuple(input_shape)
    check_top(name, include_top, pooling)
    if blocks is None:
        blocks = len(filters) if isinstance(filters, (list, tuple)) else 3
    blocks = check_int(name, "blocks", blocks, minimum=1)
    if isinstance(filters, (list, tuple)):
        if len(filters) != blocks:
            raise KerasdlUsageError(
                f"{name}: filters has {len(filters)} entries but blocks={blocks}; give one "
                f"value or one per block. Received: filters={list(filters)!r}"
            )
        widths = [check_int(name, "filters", f, minimum=1) for f in filters]
    else:
        widths = [check_int(name, "filters", filters, minimum=1) * 2**i for i in range(blocks)]
    kernel_size = check_int(name, "kernel_size", kernel_size, minimum=1)
    pool_size = check_int(name, "pool_size", pool_size, minimum=1)
    check_bool(name, "batch_norm", batch_norm)
    check_choice(name, "reduction", reduction, REDUCTIONS)
    dense_units = check_int(name, "dense_units", dense_units, minimum=0)
    rate = check_rate(name, "dropout", dropout)
    pieces = units_multiplier(activation)  # k for maxout, else 1; validates the activation
    reg = l2_regularizer(name, l2)
    min_length = pool_size**blocks
    if len(input_shape) not in (2, 3) or input_shape[0] < min_length:
        raise KerasdlUsageError(
            f"{name} needs a sequence input of shape (length, channels) (or an image, read row by "
            f"row) with length >= {min_length} (pool_size={pool_size} ** blocks={blocks}). "
            f"Received: input_shape={input_shape}"
        )

    inputs = keras.Input(shape=input_shape, name="input")  # (B, L, C) or (B, H, W, C)
    x = inputs
    if len(input_shape) == 3:
        # An image is read as a sequence of rows ("row-sequential MNIST"): (B, H, W * C).
        x = keras.layers.Reshape((input_shape[0], input_shape[1] * input_shape[2]), name="input_rows")(x)
    for i, width in enumerate(widths, start=1):
        block = f"block{i}"
        x = keras.layers.Conv1D(
            width * pieces,
            kernel_size,
            padding="same",
            use_bias=not batch_norm,
            kernel_regularizer=reg,
            name=f"{block}_conv",
        )(x)  # (B, L, k * F)
        if batch_norm:
            x = keras.layers.BatchNormalization(momentum=0.9, name=f"{block}_bn")(x)
        x = activation_layer(activation, name_prefix=block, spatial_dims=1)(x)  # (B, L, F)
        x = keras.layers.MaxPooling1D(pool_size, name=f"{block}_pool")(x)  # (B, L / p, F)

    if not include_top:
        if pooling == "avg":
            x = keras.layers.GlobalAveragePooling1D(name="features_avgpool")(x)  # (B, F)
        elif pooling == "max":
            x = keras.layers.GlobalMaxPooling1D(name="features_maxpool")(x)  # (B, F)
        return keras.Model(inputs, x, name=name)

    x = _REDUCE_1D[reduction]()(x)  # (B, F) or (B, L' * F)
    if dense_units:
        x = keras.layers.Dense(dense_units * pieces, kernel_regularizer=reg,
                               name="dense1_linear")(x)
        x = activation_layer(activation, name_prefix="dense1")(x)  # (B, dense_units)
        if rate:
            x = keras.layers.Dropout(rate, name="dense1_dropout")(x)
    x = logits_head(x, num_classes, kernel_regularizer=reg)  # (B, K)
    return keras.Model(inputs, x, name=name)


@register_model(
    "cnn1d",
    builder=CNN1D,
    family="cnn1d",
    task="classification",
    paper="LeCun et al. 1989 (convolutional nets); Ioffe & Szegedy 2015 (batch norm)",
    default_input_shape=(128, 1),
    default_num_classes=2,
    smoke_input_shape=(64, 1),
    notes="1-D conv net for (length, channels) signals: [conv1d 5 -> BN -> ReLU -> max-pool 2] "
    "x 3 (32, 64, 128 filters) -> global avg pool -> dense 64 -> logits. "
    "reduction='flatten' for a flattened top; length >= pool_size ** blocks.",
)
def cnn1d(input_shape, num_classes, **overrides):
    """1-D convolutional net (3 conv blocks, global average pooling)."""
    return CNN1D(input_shape, num_classes, **{"name": "cnn1d", **overrides})


# --------------------------------------------------------------------------- cnn (spec)

SPEC_LETTERS = "cpndfg"
GRAMMAR = (
    "c=conv+activation, p=max-pool 2x2 (filters double after it), n=batch norm, d=dropout, "
    "f=dense(dense_units)+activation (flattens first), g=global average pool"
)
PADDINGS = ("valid", "same")


def _parse_spec(model: str, spec, input_shape, kernel_size: int, padding: str) -> int:
    """Check ``spec`` letter by letter; returns the index where the top starts (first f/g).

    Tracks the feature map's side so that a spec the input is too small for fails here,
    with one line, rather than deep inside Keras.
    """
    if not isinstance(spec, str):
        raise KerasdlUsageError(
            f"{model}: spec must be a string of the letters {SPEC_LETTERS!r} ({GRAMMAR}). "
            f"Received: spec={spec!r}"
        )
    top = len(spec)
    height, width = input_shape[0], input_shape[1]
    for i, letter in enumerate(spec):
        if letter not in SPEC_LETTERS:
            raise KerasdlUsageError(
                f"{model}: unknown letter {letter!r} at position {i} of the spec; the grammar "
                f"is {GRAMMAR}. Received: spec={spec!r}"
            )
        if letter in "cpg" and i > top:
            raise KerasdlUsageError(
                f"{model}: {letter!r} at position {i} needs a feature map, but the spec "
                f"already flattened it at position {top} ({spec[top]!r}). Received: spec={spec!r}"
            )
        if letter in "fg":
            top = min(top, i)
        elif letter == "c" and padding == "valid":
            height, width = height - kernel_size + 1, width - kernel_size + 1
        elif letter == "p":
            height, width = height // 2, width // 2
        if min(height, width) < 1:
            raise KerasdlUsageError(
                f"{model}: the input is too small for spec={spec!r} (padding={padding!r}): the "
                f"feature map vanishes at {letter!r}, position {i}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
    return top


def CNN(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    spec: str = "cpcpd",
    filters: int = 32,
    kernel_size: int = 3,
    padding: str = "valid",
    dense_units: int = 128,
    dropout: float = 0.5,
    activation: ActivationSpec = "relu",
    l2: float = 0.0,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "cnn",
) -> keras.Model:
    """Build a 2-D conv net from a spec string (grammar in the module docstring).

    Args:
        input_shape: ``(height, width, channels)``, large enough for the spec's convs
            and pools.
        num_classes: logits size; 1 gives a single linear output (regression).
        spec: the layers, one letter each: ``c`` conv, ``p`` pool, ``n`` batch norm, ``d``
            dropout, ``f`` dense, ``g`` global average pool; the logits head is appended.
        filters: filters of the convs before the first ``p``; doubled after each ``p``.
        kernel_size: conv kernel side.
        padding: ``"valid"`` (each conv trims ``kernel_size - 1`` pixels, as in the keras.io
            MNIST convnet) or ``"same"`` (only pools shrink the map; suits long specs).
        dense_units: units of each ``f`` layer.
        dropout: rate of each ``d`` layer (0 leaves them out).
        activation: a name from :data:`kerasdl.models.activations.ACTIVATIONS` or a dict
            with options, after every ``c`` and ``f``. Maxout widens the layer before it.
        l2: L2 penalty on every kernel; 0 disables it.
        include_top: False returns the body (the spec before its first ``f``/``g``): a
            feature map ``(B, h, w, F)``.
        pooling: with ``include_top=False``: None (the map), ``"avg"`` or ``"max"``.
        name: the model's name.
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise KerasdlUsageError(
            f"{name} needs an image input of shape (height, width, channels). "
            f"Received: input_shape={input_shape}"
        )
    check_top(name, include_top, pooling)
    filters = check_int(name, "filters", filters, minimum=1)
    kernel_size = check_int(name, "kernel_size", kernel_size, minimum=1)
    check_choice(name, "padding", padding, PADDINGS)
    dense_units = check_int(name, "dense_units", dense_units, minimum=1)
    rate = check_rate(name, "dropout", dropout)
    pieces = units_multiplier(activation)  # k for maxout, else 1; validates the activation
    reg = l2_regularizer(name, l2)
    top = _parse_spec(name, spec, input_shape, kernel_size, padding)
    letters = spec if include_top else spec[:top]

    inputs = keras.Input(shape=input_shape, name="input")  # (B, H, W, C)
    x = inputs
    # A stage is the run of layers up to and including a pool, plus any n/d right after the
    # pool ("cpd": the dropout belongs to stage 1); the next c or p opens the next stage.
    pools, stage = 0, 1
    flat = False  # has the map become a vector (f or g)?
    seen = collections.Counter()  # (block, letter) -> how many so far, for the names
    i = 0
    while i < len(letters):
        letter = letters[i]
        if letter in "cp":
            stage = pools + 1
        block = "top" if flat or letter in "fg" else f"stage{stage}"
        seen[block, letter] += 1
        j = seen[block, letter]
        fold_bn = i + 1 < len(letters) and letters[i + 1] == "n" and letter in "cf"
        if letter == "c":
            unit = f"{block}_conv{j}"
            x = keras.layers.Conv2D(
                filters * 2**pools * pieces,
                kernel_size,
                padding=padding,
                use_bias=not fold_bn,
                kernel_regularizer=reg,
                name=unit,
            )(x)  # (B, h, w, k * F)
            if fold_bn:
                x = keras.layers.BatchNormalization(momentum=0.9, name=f"{unit}_bn")(x)
                i += 1  # the "n" is consumed here
            x = activation_layer(activation, name_prefix=unit, spatial_dims=2)(x)  # (B,h,w,F)
        elif letter == "p":
            x = keras.layers.MaxPooling2D(2, name=f"{block}_pool")(x)  # (B, h/2, w/2, F)
            pools += 1
        elif letter == "n":
            x = keras.layers.BatchNormalization(momentum=0.9, name=f"{block}_bn{j}")(x)
        elif letter == "d":
            if rate:
                x = keras.layers.Dropout(rate, name=f"{block}_dropout{j}")(x)
        elif letter == "g":
            x = keras.layers.GlobalAveragePooling2D(name="top_avgpool")(x)  # (B, F)
            flat = True
        elif letter == "f":
            if not flat:
                x = keras.layers.Flatten(name="top_flatten")(x)  # (B, h * w * F)
                flat = True
            unit = f"top_dense{j}"
            x = keras.layers.Dense(
                dense_units * pieces, use_bias=not fold_bn, kernel_regularizer=reg, name=unit
            )(x)  # (B, k * dense_units)
            if fold_bn:
                x = keras.layers.BatchNormalization(momentum=0.9, name=f"{unit}_bn")(x)
                i += 1
            x = activation_layer(activation, name_prefix=unit)(x)  # (B, dense_units)
        i += 1

    if not include_top:
        return keras.Model(inputs, global_pool(x, pooling), name=name)
    if not flat:
        x = keras.layers.Flatten(name="head_flatten")(x)  # (B, h * w * F)
    x = logits_head(x, num_classes, kernel_regularizer=reg)  # (B, K)
    return keras.Model(inputs, x, name=name)


@register_model(
    "cnn",
    builder=CNN,
    family="cnn",
    task="classification",
    paper="LeCun et al. 1989; keras.io 'Simple MNIST convnet' (the default spec)",
    default_input_shape=(28, 28, 1),
    default_num_classes=10,
    smoke_input_shape=(32, 32, 3),
    notes="2-D conv net from a spec string: c=conv+act, p=max-pool 2x2 (filters double), "
    "n=batch norm, d=dropout, f=dense+act, g=global avg pool; logits head appended. Default "
    "spec='cpcpd', padding='valid' is the keras.io Simple MNIST convnet (34,826 parameters).",
)
def cnn(input_shape, num_classes, **overrides):
    """2-D conv net from a spec string (default: the keras.io Simple MNIST convnet)."""
    return CNN(input_shape, num_classes, **{"name": "cnn", **overrides})
