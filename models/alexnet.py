"""AlexNet: the single-tower network of torchvision, with the paper's LRN as an option.

Krizhevsky, Sutskever & Hinton 2012, "ImageNet Classification with Deep Convolutional Neural
Networks", NeurIPS 25. The paper splits the network over two GPUs (96-256-384-384-256 channels,
grouped convs, ~60M parameters). Like torchvision's ``alexnet`` we build the single-tower
version of Krizhevsky 2014 ("One weird trick for parallelizing convolutional neural networks",
arXiv:1404.5997) with torchvision's channel widths 64-192-384-256-256, and match torchvision
layer for layer: **61,100,840 parameters** at 224x224x3 / 1000 classes (checked in
``tests/test_zoo_classic.py``)::

    (B, 224, 224, 3)
    conv1: 64 @ 11x11/4, pad 2 -> ReLU -> (LRN) -> max-pool 3/2  (B, 55, 55, 64) -> (B, 27, 27, 64)
    conv2: 192 @ 5x5 -> ReLU -> (LRN) -> max-pool 3/2         (B, 27, 27, 192) -> (B, 13, 13, 192)
    conv3: 384 @ 3x3 -> ReLU                                   (B, 13, 13, 384)
    conv4: 256 @ 3x3 -> ReLU                                   (B, 13, 13, 256)
    conv5: 256 @ 3x3 -> ReLU -> max-pool 3/2                   (B, 6, 6, 256)
    adaptive avg-pool to 6x6 -> flatten                        (B, 9216)
    dropout -> fc1 4096 -> ReLU -> dropout -> fc2 4096 -> ReLU -> logits

**Other input sizes.** The conv stack gives a ``floor``-size map (pools are 'valid', as
torchvision's floor-mode pools): 6x6 at 224, 3x3 at 127, 1x1 at 63-94. As in torchvision, an
adaptive average pooling (:class:`~kerasdl.models._common.AdaptiveAvgPool2D`, the bins of
PyTorch's ``adaptive_avg_pool2d``: ``floor(i*h/6) .. ceil((i+1)*h/6)``) maps any map to 6x6 -- a
no-op at 224, an average over overlapping windows for bigger maps, a replication of cells for
smaller ones -- so fc1 always has 9216 inputs and the parameter count is the same at every
input size. The smallest input is 63x63 (three 3/2 pools need the 15x15 map conv1 gives at 63);
smaller ones raise ``KerasdlUsageError``. Non-square inputs are fine.

**LRN** (``lrn=True``): the paper's local response normalisation after the ReLU of conv1 and
conv2 (before their pools), ``b_c = a_c / (k + alpha * sum_{|c'-c| <= n/2} a_c'^2) ** beta``
with n=5, k=2, alpha=1e-4, beta=0.75 (paper section 3.3). It adds no parameters.
:class:`LocalResponseNormalization` implements the paper's formula with ``keras.ops``; it
equals ``tf.nn.local_response_normalization(depth_radius=2, bias=2, alpha=1e-4, beta=0.75)``.
(PyTorch's ``nn.LocalResponseNorm`` divides alpha by n, i.e. averages instead of sums.)

Layer names: ``conv1_pad``, ``conv{i}_conv``, ``conv{i}_act``, ``conv{i}_lrn``,
``conv{i}_pool``, ``head_avgpool``, ``head_flatten``, ``fc{i}_dropout``, ``fc{i}_dense``,
``fc{i}_act``, ``head_logits``.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from kerasdl.errors import KerasdlUsageError

from ._common import (
    AdaptiveAvgPool2D,
    check_bool,
    check_image_shape,
    check_rate,
    check_top,
    global_pool,
    logits_head,
)
from .registry import register_model

# (filters, kernel, stride, padding, max-pool 3/2 after, LRN after (when lrn=True)).
# Stride-1 convs use 'same' (= symmetric padding (k - 1) / 2); conv1 pads 2 explicitly, as
# torchvision does, because Keras' 'same' with stride 4 would give 56x56 instead of 55x55 at 224.
FEATURES = (
    (64, 11, 4, 2, True, True),
    (192, 5, 1, 2, True, True),
    (384, 3, 1, 1, False, False),
    (256, 3, 1, 1, False, False),
    (256, 3, 1, 1, True, False),
)
FC_UNITS = (4096, 4096)
POOLED_SIDE = 6  # adaptive average pooling target before the classifier (torchvision)
MIN_SIDE = 63


@keras.saving.register_keras_serializable(package="kerasdl")
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalisation across channels (Krizhevsky et al. 2012, section 3.3).

    ``b_c = a_c / (k + alpha * sum_{c' = c - size//2}^{c + size//2} a_c'^2) ** beta`` over the
    last (channel) axis, with channels outside ``[0, C)`` left out of the sum. Defaults are
    the paper's (``size=5, k=2, alpha=1e-4, beta=0.75``). No weights; any rank.
    """

    def __init__(self, size: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
            raise KerasdlUsageError(
                "LocalResponseNormalization needs an odd integer size >= 1. "
                f"Received: size={size!r}"
            )
        self.size, self.k, self.alpha, self.beta = size, float(k), float(alpha), float(beta)

    def call(self, x):  # (B, ..., C)
        radius, channels = self.size // 2, x.shape[-1]
        # float32 inside: under mixed precision the squares of activations > 256 overflow fp16.
        a = ops.cast(x, "float32")
        squared = ops.pad(ops.square(a), [(0, 0)] * (len(x.shape) - 1) + [(radius, radius)])
        # Sum of squares over the window around each channel: `size` shifted slices.
        window = sum(squared[..., i : i + channels] for i in range(self.size))  # (B, ..., C)
        return ops.cast(a / ops.power(self.k + self.alpha * window, self.beta), x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "k": self.k, "alpha": self.alpha,
                "beta": self.beta}


def AlexNet(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    lrn: bool = False,
    dropout: float = 0.5,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "alexnet",
) -> keras.Model:
    """Build single-tower AlexNet (torchvision's) as a functional ``keras.Model`` with logits.

    Args:
        input_shape: ``(height, width, channels)`` with height and width >= 63.
        num_classes: logits size; 1 gives a single linear output (regression).
        lrn: add the paper's local response normalisation after conv1 and conv2.
        dropout: rate of the dropout before fc1 and before fc2 (0.5 in the paper).
        include_top: False drops the adaptive pool and classifier and returns the conv5
            pooled map ``(B, h, w, 256)`` (6x6 at 224), like torchvision's ``features``.
        pooling: with ``include_top=False``: None (the map), ``"avg"`` or ``"max"``
            (global pooling to ``(B, 256)``).
        name: the model's name (also used in error messages).
    """
    input_shape = check_image_shape(name, input_shape, min_side=MIN_SIDE)
    check_top(name, include_top, pooling)
    check_bool(name, "lrn", lrn)
    rate = check_rate(name, "dropout", dropout)

    inputs = keras.Input(shape=input_shape, name="input")  # (B, H, W, C)
    x = inputs
    for i, (filters, kernel, stride, pad, pool, norm) in enumerate(FEATURES, start=1):
        block = f"conv{i}"
        if stride > 1:
            x = keras.layers.ZeroPadding2D(pad, name=f"{block}_pad")(x)
        x = keras.layers.Conv2D(
            filters, kernel, strides=stride, padding="same" if stride == 1 else "valid",
            name=f"{block}_conv",
        )(x)  # (B, H', W', filters)
        x = keras.layers.ReLU(name=f"{block}_act")(x)
        if norm and lrn:
            x = LocalResponseNormalization(name=f"{block}_lrn")(x)
        if pool:  # overlapping max-pool 3/2, 'valid' (floor) as in the paper and torchvision
            x = keras.layers.MaxPooling2D(3, strides=2, name=f"{block}_pool")(x)

    if not include_top:
        return keras.Model(inputs, global_pool(x, pooling), name=name)  # (B, h, w, 256)

    x = AdaptiveAvgPool2D(POOLED_SIDE, name="head_avgpool")(x)  # (B, 6, 6, 256)
    x = keras.layers.Flatten(name="head_flatten")(x)  # (B, 9216)
    for i, units in enumerate(FC_UNITS, start=1):
        block = f"fc{i}"
        if rate:  # torchvision order: dropout -> linear -> ReLU
            x = keras.layers.Dropout(rate, name=f"{block}_dropout")(x)
        x = keras.layers.Dense(units, name=f"{block}_dense")(x)  # (B, 4096)
        x = keras.layers.ReLU(name=f"{block}_act")(x)
    x = logits_head(x, num_classes)  # (B, K)
    return keras.Model(inputs, x, name=name)


@register_model(
    "alexnet",
    builder=AlexNet,
    family="alexnet",
    task="classification",
    paper="Krizhevsky, Sutskever & Hinton 2012; single tower: Krizhevsky 2014",
    default_input_shape=(224, 224, 3),
    default_num_classes=1000,
    smoke_input_shape=(64, 64, 3),
    notes="torchvision's single-tower AlexNet: 5 convs (64-192-384-256-256) -> adaptive "
    "avg-pool 6x6 -> 4096 -> 4096 -> logits, dropout 0.5; 61,100,840 parameters at any "
    "input size (224x224x3 / 1000 classes as published). lrn=True adds the paper's local "
    "response normalisation. Images >= 63x63.",
)
def alexnet(input_shape, num_classes, **overrides):
    """Single-tower AlexNet (torchvision)."""
    return AlexNet(input_shape, num_classes, **{"name": "alexnet", **overrides})
