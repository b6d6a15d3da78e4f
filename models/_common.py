"""Helpers shared by the family builders: argument checks and the standard heads.

Every check raises a one-line :class:`~kerasdl.errors.KerasdlUsageError` in the Keras style,
echoing the value it received (``"... Received: dropout=1.5"``).
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
from keras import ops

from kerasdl.errors import KerasdlUsageError

POOLINGS = (None, "avg", "max")


def check_top(model: str, include_top: Any, pooling: Any, *, allow_pooling: bool = True) -> None:
    """``include_top`` must be a bool; ``pooling`` is ``None|"avg"|"max"`` and only means
    something for feature extraction (``include_top=False``) of a model with feature maps."""
    check_bool(model, "include_top", include_top)
    if pooling is None:
        return
    if not allow_pooling:
        raise KerasdlUsageError(
            f"{model} has no feature maps to pool (its features are already a vector); leave "
            f"pooling=None. Received: pooling={pooling!r}"
        )
    if pooling not in POOLINGS:
        raise KerasdlUsageError(
            f"{model}: pooling must be None, 'avg' or 'max'. Received: pooling={pooling!r}"
        )
    if include_top:
        raise KerasdlUsageError(
            f"{model}: pooling applies to feature extraction only; pass include_top=False "
            f"with it. Received: pooling={pooling!r}, include_top=True"
        )


def check_bool(model: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise KerasdlUsageError(f"{model}: {key} must be True or False. Received: {key}={value!r}")
    return value


def check_int(model: str, key: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise KerasdlUsageError(
            f"{model}: {key} must be an integer >= {minimum}. Received: {key}={value!r}"
        )
    return value


def check_rate(model: str, key: str, value: Any) -> float:
    """A dropout rate in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise KerasdlUsageError(
            f"{model}: {key} must be a number in [0, 1). Received: {key}={value!r}"
        )
    return float(value)


def check_choice(model: str, key: str, value: Any, choices: Sequence[Any]) -> Any:
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise KerasdlUsageError(
            f"{model}: {key} must be one of {listed}. Received: {key}={value!r}"
        )
    return value


def per_layer(model: str, key: str, value: Any, depth: int) -> list[Any]:
    """A scalar repeated ``depth`` times, or a list/tuple that must have ``depth`` entries."""
    if isinstance(value, (list, tuple)):
        if len(value) != depth:
            raise KerasdlUsageError(
                f"{model}: {key} has {len(value)} entries but depth={depth}; give one value or "
                f"one per layer. Received: {key}={list(value)!r}"
            )
        return list(value)
    return [value] * depth


def l2_regularizer(model: str, l2: Any):
    """``keras.regularizers.L2(l2)`` for ``l2 > 0``, else ``None`` (adds ``l2 * sum(w**2)``)."""
    if isinstance(l2, bool) or not isinstance(l2, (int, float)) or l2 < 0:
        raise KerasdlUsageError(f"{model}: l2 must be a number >= 0. Received: l2={l2!r}")
    return keras.regularizers.L2(float(l2)) if l2 > 0 else None


def initializer(model: str, value: Any):
    """A Keras initializer from its name (``"he_normal"``) or an initializer object."""
    try:
        return keras.initializers.get(value)
    except (ValueError, TypeError) as exc:
        raise KerasdlUsageError(
            f"{model}: unknown kernel_initializer (use a Keras name such as 'glorot_uniform' or "
            f"'he_normal'). Received: kernel_initializer={value!r}"
        ) from exc


def logits_head(
    x,
    num_classes: int,
    *,
    kernel_regularizer=None,
    kernel_initializer="glorot_uniform",
    name: str = "head_logits",
):
    """The linear output layer ``head_logits``: ``(B, F) -> (B, num_classes)``, no softmax.

    ``name`` is for extra logits outputs only (e.g. GoogLeNet's ``aux1_logits``); a model's
    main output keeps the name ``head_logits``.

    Under a mixed-precision policy it computes in float32, so logits (and the losses and
    calibration built on them) keep full precision.
    """
    dtype = "float32" if keras.config.dtype_policy().name.startswith("mixed") else None
    return keras.layers.Dense(
        num_classes,
        kernel_initializer=kernel_initializer,
        kernel_regularizer=kernel_regularizer,
        dtype=dtype,
        name=name,
    )(x)


def global_pool(x, pooling: str | None):
    """``(B, H, W, C) -> (B, C)`` for ``"avg"``/``"max"``; ``None`` returns ``x`` unchanged."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="features_avgpool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="features_maxpool")(x)
    return x


def check_shape(model: str, key: str, shape: Any) -> tuple[int, ...]:
    """``shape`` as a non-empty tuple of positive ints, or a one-line error naming ``key``."""
    try:
        out = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        out = ()
    if not out or any(d < 1 for d in out):
        raise KerasdlUsageError(f"{model}: {key} must be a non-empty tuple of positive sizes. "
                                f"Received: {key}={shape!r}")
    return out


def check_image_shape(model: str, input_shape: Sequence[int], *, min_side: int) -> tuple:
    """``(height, width, channels)`` with both sides >= ``min_side`` (for a conv net whose
    total stride is ``min_side``, the smallest input that still leaves a 1x1 map), else a
    one-line usage error echoing the shape."""
    shape = tuple(input_shape)
    if len(shape) != 3 or min(shape[:2]) < min_side:
        raise KerasdlUsageError(
            f"{model} needs an image input of shape (height, width, channels) with height and "
            f"width >= {min_side}. Received: input_shape={shape}"
        )
    return shape


def drop_path(rate: float, *, name: str, rank: int = 4):
    """Stochastic depth (Huang et al. 2016) for a residual branch ``(B, ...)`` of ``rank`` axes.

    Drops the whole branch for an example with probability ``rate`` during training and scales
    the kept ones by ``1 / (1 - rate)``; the identity at inference. It is a plain
    ``keras.layers.Dropout`` whose noise shape ``(None, 1, ..., 1)`` draws one coin per example,
    so it serialises and runs on every backend without a custom layer.
    """
    return keras.layers.Dropout(rate, noise_shape=(None,) + (1,) * (rank - 1), name=name)


def drop_path_rates(model: str, drop_path_rate: Any, num_blocks: int) -> list[float]:
    """Huang et al.'s linear decay rule: block ``l`` of ``L`` drops with ``rate * l / L``."""
    rate = check_rate(model, "drop_path_rate", drop_path_rate)
    return [rate * (i + 1) / num_blocks for i in range(num_blocks)]


@keras.saving.register_keras_serializable(package="kerasdl")
class AdaptiveAvgPool2D(keras.layers.Layer):
    """PyTorch's ``adaptive_avg_pool2d``: ``(B, H, W, C) -> (B, out_h, out_w, C)`` for any H, W.

    Output cell ``i`` averages input rows ``floor(i * H / out_h) .. ceil((i + 1) * H / out_h)``
    (same for columns): a no-op when ``H == out_h``, overlapping averages when H is larger,
    repeated cells when it is smaller (a 1x1 map becomes ``out_h x out_w`` copies). Written
    with ``keras.ops`` slices because ``keras.layers.AdaptiveAveragePooling2D`` (Keras 3.15,
    TensorFlow backend) fails in graph mode on a 1-pixel side.
    """

    def __init__(self, output_size: int | Sequence[int], **kwargs):
        super().__init__(**kwargs)
        size = (output_size, output_size) if isinstance(output_size, int) else output_size
        self.output_size = tuple(int(d) for d in size)

    @staticmethod
    def bins(size: int, out: int) -> list[tuple[int, int]]:
        return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]

    def call(self, x):  # (B, H, W, C)
        for axis, out in ((1, self.output_size[0]), (2, self.output_size[1])):
            size = x.shape[axis]
            if size == out:
                continue
            cells = [
                ops.mean(x[:, start:end] if axis == 1 else x[:, :, start:end], axis=axis,
                         keepdims=True)
                for start, end in self.bins(size, out)
            ]
            x = ops.concatenate(cells, axis=axis)
        return x  # (B, out_h, out_w, C)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size}
