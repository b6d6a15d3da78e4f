"""Encoders and decoders: the components of autoencoders and variational autoencoders.

An autoencoder maps an input ``x`` to a code ``z = f(x)`` with fewer units than ``x`` and back,
``x_hat = g(z)``, trained to reconstruct its input (Rumelhart, Hinton & Williams 1986; Hinton &
Salakhutdinov 2006, "Reducing the dimensionality of data with neural networks", Science 313).
Three bodies, each with a mirrored decoder (the ``companion`` of the registry entry):

* ``dense``  -- an MLP: flatten -> [dense -> activation] x len(width) -> dense(latent_dim).
* ``conv``   -- strided 3x3 convolutions (each halves the side) -> flatten -> dense(latent_dim); the
  decoder projects to the smallest feature map and doubles it back with 3x3 transposed
  convolutions, ending in a 3x3 convolution to the image's channels (as in Keras's VAE example).
* ``linear`` -- one Dense each way, no activation: the linear autoencoder, which with squared
  error spans the top-k principal subspace of the (centred) data (Baldi & Hornik 1989, "Neural
  networks and principal component analysis: learning from examples without local minima",
  Neural Networks 2, 53-58).

``gaussian=True`` gives the encoder two outputs, ``z_mean`` and ``z_log_var``: the diagonal
Gaussian posterior q(z|x) of the variational autoencoder (Kingma & Welling 2014, "Auto-Encoding
Variational Bayes", ICLR). Decoders output logits (Bernoulli likelihood) or unconstrained values
(squared error / Gaussian mean) shaped ``output_shape``: the task applies the sigmoid.

Layer names: ``input``, ``flatten``, ``dense{i}_linear`` / ``dense{i}_act`` or ``conv{i}_conv`` /
``conv{i}_act``, then ``z`` (or ``z_mean`` and ``z_log_var``); decoders ``input``,
``dense{i}_*`` or ``project_linear`` / ``project_act`` / ``project_reshape`` and
``deconv{i}_conv`` / ``deconv{i}_act``, then ``output_linear`` / ``output_conv`` and ``output``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import keras

from kerasdl.errors import KerasdlUsageError

from ._common import check_bool, check_choice, check_int, initializer, l2_regularizer
from .activations import ActivationSpec, activation_layer, units_multiplier
from .registry import register_model

BODIES = ("dense", "conv", "linear")
DENSE_WIDTH = (512, 256)  # encoder hidden widths; the dense decoder mirrors them
CONV_FILTERS = (32, 64)  # encoder filters; each stride-2 conv halves the side


def _widths(model: str, width: Any) -> list[int]:
    values = [width] if isinstance(width, int) and not isinstance(width, bool) else width
    if not isinstance(values, (list, tuple)):
        raise KerasdlUsageError(f"{model}: width must be an int or a list of ints. Received: width={width!r}")
    return [check_int(model, "width", w, minimum=1) for w in values]


def _filters(model: str, filters: Any) -> list[int]:
    values = [filters] if isinstance(filters, int) and not isinstance(filters, bool) else filters
    if not isinstance(values, (list, tuple)) or not values:
        raise KerasdlUsageError(
            f"{model}: filters must be an int or a non-empty list of ints. Received: filters={filters!r}"
        )
    return [check_int(model, "filters", f, minimum=1) for f in values]


def check_conv_shape(model: str, shape: Sequence[int], filters: Any = CONV_FILTERS) -> tuple[int, ...]:
    """An (H, W, C) image shape whose sides the ``len(filters)`` stride-2 stages halve exactly."""
    shape = tuple(int(d) for d in shape)
    stages = len(_filters(model, filters))
    if len(shape) != 3:
        raise KerasdlUsageError(
            f"{model} needs (height, width, channels) images; use a dense_* model for vectors. "
            f"Received: shape={shape}"
        )
    factor = 2**stages
    if shape[0] % factor or shape[1] % factor:
        raise KerasdlUsageError(
            f"{model}: {stages} stride-2 stages need sides divisible by {factor} (28x28 and 32x32 "
            f"work with 2). Received: shape={shape}"
        )
    return shape


def Encoder(
    input_shape: Sequence[int],
    latent_dim: int,
    *,
    body: str = "dense",
    width: int | Sequence[int] = DENSE_WIDTH,
    filters: int | Sequence[int] = CONV_FILTERS,
    activation: ActivationSpec = "relu",
    gaussian: bool = False,
    kernel_initializer: Any = "glorot_uniform",
    l2: float = 0.0,
    name: str = "encoder",
) -> keras.Model:
    """An encoder ``x -> z`` (or ``x -> [z_mean, z_log_var]`` with ``gaussian=True``).

    Args:
        input_shape: one example's shape: ``(F,)`` vectors or ``(H, W, C)`` images (``conv``).
        latent_dim: code size k.
        body: ``"dense"`` (MLP), ``"conv"`` (strided convolutions) or ``"linear"`` (one Dense).
        width: dense body's hidden widths, first to last (one int: one hidden layer).
        filters: conv body's filters per stride-2 stage, first to last.
        activation: hidden activation (see :mod:`kerasdl.models.activations`).
        gaussian: two outputs, ``z_mean`` and ``z_log_var`` (the VAE's q(z|x)).
        kernel_initializer: Keras initializer for every kernel.
        l2: L2 penalty on every kernel; 0 disables it.
        name: the model's name.
    """
    check_choice(name, "body", body, BODIES)
    latent_dim = check_int(name, "latent_dim", latent_dim, minimum=1)
    check_bool(name, "gaussian", gaussian)
    pieces = units_multiplier(activation)
    reg, init = l2_regularizer(name, l2), initializer(name, kernel_initializer)
    dense = dict(kernel_initializer=init, kernel_regularizer=reg)

    inputs = keras.Input(shape=tuple(input_shape), name="input")  # (B, *input_shape)
    x = inputs
    if body == "conv":
        check_conv_shape(name, input_shape, filters)
        for i, f in enumerate(_filters(name, filters), start=1):
            x = keras.layers.Conv2D(f * pieces, 3, strides=2, padding="same", name=f"conv{i}_conv",
                                    **dense)(x)  # (B, H / 2^i, W / 2^i, f)
            x = activation_layer(activation, name_prefix=f"conv{i}", spatial_dims=2)(x)
    x = keras.layers.Flatten(name="flatten")(x)  # (B, F)
    if body == "dense":
        for i, units in enumerate(_widths(name, width), start=1):
            x = keras.layers.Dense(units * pieces, name=f"dense{i}_linear", **dense)(x)
            x = activation_layer(activation, name_prefix=f"dense{i}")(x)  # (B, units)
    if gaussian:
        z_mean = keras.layers.Dense(latent_dim, name="z_mean", **dense)(x)  # (B, k)
        z_log_var = keras.layers.Dense(latent_dim, name="z_log_var", **dense)(x)  # (B, k)
        return keras.Model(inputs, [z_mean, z_log_var], name=name)
    z = keras.layers.Dense(latent_dim, name="z", **dense)(x)  # (B, k), no activation
    return keras.Model(inputs, z, name=name)


def Decoder(
    latent_dim: int,
    output_shape: Sequence[int],
    *,
    body: str = "dense",
    width: int | Sequence[int] = tuple(reversed(DENSE_WIDTH)),
    filters: int | Sequence[int] = tuple(reversed(CONV_FILTERS)),
    activation: ActivationSpec = "relu",
    kernel_initializer: Any = "glorot_uniform",
    l2: float = 0.0,
    name: str = "decoder",
) -> keras.Model:
    """A decoder ``z -> logits`` shaped ``output_shape`` (no output activation).

    Args:
        latent_dim: code size k.
        output_shape: one example's shape, e.g. ``(28, 28, 1)``.
        body: ``"dense"``, ``"conv"`` (transposed convolutions) or ``"linear"``.
        width: dense body's hidden widths, first to last (the encoder's reversed by default).
        filters: conv body's filters per stride-2 transposed stage, first (smallest map) to last.
        activation, kernel_initializer, l2, name: as for :func:`Encoder`.
    """
    check_choice(name, "body", body, BODIES)
    latent_dim = check_int(name, "latent_dim", latent_dim, minimum=1)
    output_shape = tuple(int(d) for d in output_shape)
    if not output_shape or any(d < 1 for d in output_shape):
        raise KerasdlUsageError(f"{name}: output_shape must be positive sizes. Received: output_shape={output_shape}")
    pieces = units_multiplier(activation)
    reg, init = l2_regularizer(name, l2), initializer(name, kernel_initializer)
    dense = dict(kernel_initializer=init, kernel_regularizer=reg)

    inputs = keras.Input(shape=(latent_dim,), name="input")  # (B, k)
    x = inputs
    if body == "conv":
        stages = _filters(name, filters)
        h, w, c = check_conv_shape(name, output_shape, stages)
        h0, w0 = h // 2 ** len(stages), w // 2 ** len(stages)
        x = keras.layers.Dense(h0 * w0 * stages[0] * pieces, name="project_linear", **dense)(x)
        x = activation_layer(activation, name_prefix="project")(x)
        x = keras.layers.Reshape((h0, w0, stages[0]), name="project_reshape")(x)  # (B, h0, w0, f0)
        for i, f in enumerate(stages, start=1):
            x = keras.layers.Conv2DTranspose(f * pieces, 3, strides=2, padding="same",
                                             name=f"deconv{i}_conv", **dense)(x)  # side x 2
            x = activation_layer(activation, name_prefix=f"deconv{i}", spatial_dims=2)(x)
        x = keras.layers.Conv2D(c, 3, padding="same", name="output_conv", **dense)(x)  # (B, H, W, C)
        return keras.Model(inputs, x, name=name)
    if body == "dense":
        for i, units in enumerate(_widths(name, width), start=1):
            x = keras.layers.Dense(units * pieces, name=f"dense{i}_linear", **dense)(x)
            x = activation_layer(activation, name_prefix=f"dense{i}")(x)
    x = keras.layers.Dense(math.prod(output_shape), name="output_linear", **dense)(x)  # (B, prod)
    x = keras.layers.Reshape(output_shape, name="output")(x)  # (B, *output_shape)
    return keras.Model(inputs, x, name=name)


_AE = "Rumelhart, Hinton & Williams 1986; Hinton & Salakhutdinov 2006"
_ENC = dict(family="autoencoder", task="autoencoder", role="encoder", default_input_shape=(28, 28, 1),
            required=("input_shape", "latent_dim"), defaults={"latent_dim": 16})
_DEC = dict(family="autoencoder", task="autoencoder", role="decoder",
            required=("latent_dim", "output_shape"), defaults={"latent_dim": 16, "output_shape": (28, 28, 1)})


@register_model("dense_encoder", builder=Encoder, paper=_AE, companion="dense_decoder",
                notes="Flatten -> 512 -> 256 ReLU -> z (gaussian=True: z_mean, z_log_var).", **_ENC)
def dense_encoder(input_shape, latent_dim, **overrides):
    """MLP encoder (512, 256 ReLU by default)."""
    return Encoder(input_shape, latent_dim, **{"name": "dense_encoder", **overrides, "body": "dense"})


@register_model("dense_decoder", builder=Decoder, paper=_AE,
                notes="z -> 256 -> 512 ReLU -> logits reshaped to output_shape.", **_DEC)
def dense_decoder(latent_dim, output_shape, **overrides):
    """MLP decoder (256, 512 ReLU by default), the mirror of dense_encoder."""
    return Decoder(latent_dim, output_shape, **{"name": "dense_decoder", **overrides, "body": "dense"})


@register_model("conv_encoder", builder=Encoder, paper=_AE + "; Kingma & Welling 2014",
                companion="conv_decoder",
                notes="3x3 stride-2 convs 32, 64 ReLU -> z; sides divisible by 4 (28x28x1, 32x32x3).", **_ENC)
def conv_encoder(input_shape, latent_dim, **overrides):
    """Strided-convolution encoder (32, 64 filters by default)."""
    return Encoder(input_shape, latent_dim, **{"name": "conv_encoder", **overrides, "body": "conv"})


@register_model("conv_decoder", builder=Decoder, paper=_AE + "; Kingma & Welling 2014",
                notes="Dense to (H/4, W/4, 64) -> 3x3 stride-2 transposed convs 64, 32 -> 3x3 conv logits.",
                **_DEC)
def conv_decoder(latent_dim, output_shape, **overrides):
    """Transposed-convolution decoder, the mirror of conv_encoder."""
    return Decoder(latent_dim, output_shape, **{"name": "conv_decoder", **overrides, "body": "conv"})


@register_model("linear_encoder", builder=Encoder, paper="Baldi & Hornik 1989", companion="linear_decoder",
                notes="One Dense, no activation: with MSE it spans the top-k PCA subspace.", **_ENC)
def linear_encoder(input_shape, latent_dim, **overrides):
    """Linear encoder (one Dense): the linear autoencoder of Baldi & Hornik 1989."""
    return Encoder(input_shape, latent_dim, **{"name": "linear_encoder", **overrides, "body": "linear"})


@register_model("linear_decoder", builder=Decoder, paper="Baldi & Hornik 1989",
                notes="One Dense, no activation, reshaped to output_shape.", **_DEC)
def linear_decoder(latent_dim, output_shape, **overrides):
    """Linear decoder (one Dense), the mirror of linear_encoder."""
    return Decoder(latent_dim, output_shape, **{"name": "linear_decoder", **overrides, "body": "linear"})
