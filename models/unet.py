"""U-Net: an encoder-decoder with skip connections for per-pixel classification.

Ronneberger, Fischer & Brox 2015, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI (arXiv:1505.04597).

The paper's network (``depth=4`` poolings, ``base_filters=64``, ``padding="valid"``)::

    (B, 572, 572, 1)
    encoder1: [conv 3x3 -> ReLU] x 2, 64 filters     (B, 568, 568, 64)    -> skip1
    encoder2: max-pool 2x2, [conv -> ReLU] x 2, 128   (B, 280, 280, 128)   -> skip2
    encoder3: ... 256                                 (B, 136, 136, 256)   -> skip3
    encoder4: ... 512                                 (B, 64, 64, 512)     -> skip4
    bottleneck: max-pool, [conv -> ReLU] x 2, 1024    (B, 28, 28, 1024)
    decoder4: up-conv 2x2 to 512 (B, 56, 56, 512), concat with skip4 cropped to 56x56,
              [conv -> ReLU] x 2, 512                 (B, 52, 52, 512)
    decoder3: ... 256                                 (B, 100, 100, 256)
    decoder2: ... 128                                 (B, 196, 196, 128)
    decoder1: ... 64                                  (B, 388, 388, 64)
    head: 1x1 conv to num_classes                     (B, 388, 388, K)  per-pixel logits

"valid" convs lose a border at each conv, so each skip map is center-cropped to the
up-sampled map before the concatenation, and the output (388x388) is the center of the
input tile (the paper's overlap-tile strategy). ``padding="same"`` (the default) keeps the
sizes: the output has the input's height and width. There any height and width >= 2**depth
work: when a pooling floors an odd side, the up-sampled map is zero-padded back to its skip's
size (as in the common PyTorch implementation, milesial/Pytorch-UNet).

Parameter count, checked in the tests: 31,030,658 for 572x572x1 and 2 classes, the paper's
architecture (convs with biases, no batch norm, transposed-conv "up-convolutions", a 1x1
conv to the classes). The widely quoted 31,031,685 is the popular Keras implementation
(zhixuhao/unet, ``model.py``; 256x256x1, 'same'): the same body (its up-sample + 2x2 conv has
the transposed conv's parameters) but a different head, a 3x3 conv to 2 channels and a 1x1
conv to 1 sigmoid channel, instead of the 1x1 conv to 2 classes: +1,154 + 3 - 130 = +1,027,
0.003% (within the 1% tolerance). Parameters do not depend on the padding or input size.

Choices beyond the paper, off by default: ``batch_norm`` (conv -> BN -> act, the conv then
has no bias); ``dropout`` after the bottleneck (the paper's "drop-out layers at the end of
the contracting path" for augmentation). Kernels start He-normal, the paper's Gaussian with
std sqrt(2 / N), N = fan-in. The head ``head_logits`` is a Dense on the channel axis, which
is exactly the paper's 1x1 convolution (same weights, same result).

``num_classes=1`` gives a single-channel map (binary segmentation with a sigmoid loss, or
per-pixel regression). ``include_top=False`` returns the last decoder map
``(B, H', W', base_filters)``; ``pooling="avg"|"max"`` pools it to ``(B, base_filters)``.

Layer names: ``encoder{i}_conv{j}``, ``encoder{i}_conv{j}_bn``, ``encoder{i}_conv{j}_act``,
``encoder{i}_pool``, ``bottleneck_conv{j}*``, ``bottleneck_dropout``, ``decoder{i}_upconv``,
``decoder{i}_crop`` / ``decoder{i}_pad``, ``decoder{i}_concat``, ``decoder{i}_conv{j}*``,
``head_logits`` (decoder ``i`` joins encoder ``i``'s skip).
"""

from __future__ import annotations

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

PADDINGS = ("same", "valid")
CONVS_PER_LEVEL = 2  # [conv 3x3 -> act] x 2 at every level
_KERNEL_INIT = "he_normal"  # the paper's Gaussian, std sqrt(2 / fan_in) (Keras truncates at 2 std)


def _output_side(side: int, depth: int, padding: str) -> int:
    """The output's side for an input side (0 or less: too small), following the layers."""
    trim = 2 * CONVS_PER_LEVEL if padding == "valid" else 0  # pixels lost per level
    skips = []
    for _ in range(depth):
        side -= trim
        if side < 2:  # a 2x2 pool needs at least 2 pixels
            return 0
        skips.append(side)
        side //= 2
    side -= trim  # bottleneck
    for skip in reversed(skips):
        if side < 1:
            return 0
        side = 2 * side if padding == "valid" else skip  # skip cropped | up-sample padded
        side -= trim
    return side


def _match(x, skip, block: str, *, crop: bool):
    """Center-crop ``skip`` to ``x`` (``crop``, 'valid') or zero-pad ``x`` to ``skip`` ('same')."""
    dh, dw = skip.shape[1] - x.shape[1], skip.shape[2] - x.shape[2]  # >= 0 in both modes
    if dh or dw:
        # Odd differences put the extra row/column at the bottom/right.
        amounts = ((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2))
        if crop:
            skip = keras.layers.Cropping2D(amounts, name=f"{block}_crop")(skip)
        else:
            x = keras.layers.ZeroPadding2D(amounts, name=f"{block}_pad")(x)
    return x, skip


def UNet(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    depth: int = 4,
    base_filters: int = 64,
    padding: str = "same",
    activation: ActivationSpec = "relu",
    batch_norm: bool = False,
    dropout: float = 0.0,
    l2: float = 0.0,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "unet",
) -> keras.Model:
    """Build a U-Net as a functional ``keras.Model`` with per-pixel logits output.

    Args:
        input_shape: ``(height, width, channels)``. With ``padding="same"`` any size with
            sides >= ``2**depth`` (the output has the same size; a multiple of ``2**depth``
            avoids zero-padding inside the net). With ``"valid"`` the output is smaller:
            572 -> 388 for the paper's net; the sides should make every pooled map even.
        num_classes: channels of the per-pixel logits; 1 gives a single-channel map.
        depth: number of poolings (the paper: 4); the bottleneck has
            ``base_filters * 2**depth`` filters.
        base_filters: filters of the first level (the paper: 64), doubled at each level.
        padding: ``"same"`` (output size == input size) or ``"valid"`` (the paper).
        activation: a name from :data:`kerasdl.models.activations.ACTIVATIONS` or a dict
            with options, after every 3x3 conv. Maxout widens the conv before it.
        batch_norm: BN between each 3x3 conv and its activation (not in the paper).
        dropout: dropout rate after the bottleneck (0 leaves it out).
        l2: L2 penalty on every kernel; 0 disables it.
        include_top: False returns the last decoder map ``(B, H', W', base_filters)``.
        pooling: with ``include_top=False``: None (the map), ``"avg"`` or ``"max"``.
        name: the model's name.
    """
    input_shape = tuple(input_shape)
    check_top(name, include_top, pooling)
    depth = check_int(name, "depth", depth, minimum=1)
    base_filters = check_int(name, "base_filters", base_filters, minimum=1)
    check_choice(name, "padding", padding, PADDINGS)
    check_bool(name, "batch_norm", batch_norm)
    rate = check_rate(name, "dropout", dropout)
    pieces = units_multiplier(activation)  # k for maxout, else 1; validates the activation
    reg = l2_regularizer(name, l2)
    if len(input_shape) != 3 or min(_output_side(s, depth, padding) for s in input_shape[:2]) < 1:
        raise KerasdlUsageError(
            f"{name} needs an image input of shape (height, width, channels) large enough for "
            f"depth={depth} with padding={padding!r} (the smallest is "
            f"{_min_side(depth, padding)}x{_min_side(depth, padding)}). "
            f"Received: input_shape={input_shape}"
        )

    def conv_block(x, filters: int, block: str):
        for j in range(1, CONVS_PER_LEVEL + 1):
            unit = f"{block}_conv{j}"
            x = keras.layers.Conv2D(
                filters * pieces,
                3,
                padding=padding,
                use_bias=not batch_norm,
                kernel_initializer=_KERNEL_INIT,
                kernel_regularizer=reg,
                name=unit,
            )(x)  # (B, h, w, k * F)
            if batch_norm:
                x = keras.layers.BatchNormalization(momentum=0.9, name=f"{unit}_bn")(x)
            x = activation_layer(activation, name_prefix=unit, spatial_dims=2)(x)  # (B,h,w,F)
        return x

    inputs = keras.Input(shape=input_shape, name="input")  # (B, H, W, C)
    x, skips = inputs, []
    for i in range(1, depth + 1):  # contracting path
        x = conv_block(x, base_filters * 2 ** (i - 1), f"encoder{i}")  # (B, h, w, F_i)
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"encoder{i}_pool")(x)  # (B, h/2, w/2, F_i)
    x = conv_block(x, base_filters * 2**depth, "bottleneck")  # (B, h, w, F_bottom)
    if rate:
        x = keras.layers.Dropout(rate, name="bottleneck_dropout")(x)
    for i in range(depth, 0, -1):  # expanding path
        block, filters = f"decoder{i}", base_filters * 2 ** (i - 1)
        x = keras.layers.Conv2DTranspose(
            filters, 2, strides=2, kernel_initializer=_KERNEL_INIT, kernel_regularizer=reg,
            name=f"{block}_upconv",
        )(x)  # (B, 2h, 2w, F_i): the "up-convolution" halves the channels
        x, skip = _match(x, skips[i - 1], block, crop=padding == "valid")
        x = keras.layers.Concatenate(name=f"{block}_concat")([skip, x])  # (B, 2h, 2w, 2 F_i)
        x = conv_block(x, filters, block)  # (B, h', w', F_i)

    if not include_top:
        return keras.Model(inputs, global_pool(x, pooling), name=name)
    x = logits_head(x, num_classes, kernel_regularizer=reg)  # (B, H', W', K): 1x1 conv
    return keras.Model(inputs, x, name=name)


def _min_side(depth: int, padding: str) -> int:
    side = 1
    while _output_side(side, depth, padding) < 1:
        side += 1
    return side


@register_model(
    "unet",
    builder=UNet,
    family="unet",
    task="segmentation",
    paper="Ronneberger, Fischer & Brox 2015",
    default_input_shape=(256, 256, 1),
    default_num_classes=2,
    smoke_input_shape=(32, 32, 1),
    notes="U-Net: 4-level encoder/decoder (64..1024 filters), up-convs, skip concatenations; "
    "per-pixel logits (B, H', W', num_classes). padding='same' (default) keeps the input "
    "size; padding='valid' is the paper's 572x572 -> 388x388 (31,030,658 parameters with 2 "
    "classes). Small nets: base_filters=16, depth=3.",
)
def unet(input_shape, num_classes, **overrides):
    """U-Net (Ronneberger et al. 2015), 'same' padding by default."""
    return UNet(input_shape, num_classes, **{"name": "unet", **overrides})
