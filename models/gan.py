"""Generators and discriminators: the two players of a generative adversarial network.

A GAN trains a generator ``G: z -> x`` (noise ``z ~ N(0, I)`` to a sample) against a discriminator
``D: x -> logit`` that tells real examples from generated ones (Goodfellow et al. 2014,
"Generative Adversarial Nets", NeurIPS). Two bodies, each a generator whose ``companion`` (in the
registry) is its discriminator:

* ``mlp``   -- for vectors (standardised features, ``(F,)``: ``(1,)`` for a coin, ``(2,)`` for 2-D
  points): ``[dense -> (norm) -> activation] x depth``. The generator ends in a linear Dense
  reshaped to ``output_shape`` (the data are standardised, so no squashing); the discriminator in
  ONE logit. Goodfellow et al. 2014's fully connected players.
* ``dcgan`` -- for images (Radford, Metz & Chintala 2016, "Unsupervised Representation Learning
  with Deep Convolutional Generative Adversarial Networks", ICLR): the generator projects ``z``
  with a Dense to a small ``(h0, w0, filters * 2^(n-1))`` map, doubles its side with ``n`` strided
  transposed convolutions (batch norm + ReLU between them, halving the channels each time) and ends
  in ``tanh`` with the data's channels (the data are scaled to [-1, 1]). The discriminator mirrors
  it: ``n`` strided convolutions (``filters * 2^(i-1)`` channels) with LeakyReLU(0.2), batch norm
  on every layer but the first, then flatten -> one logit. ``n`` follows from the image size: the
  most stride-2 stages that keep both sides integral and the base map at least 4x4 (28x28 from
  7x7: n=2; 32x32 from 4x4: n=3; 64x64 from 4x4: n=4, the paper's LSUN generator).

``norm`` chooses the normalisation between each affine map and its activation: ``"batch"`` (the
DCGAN), ``"layer"`` or ``"none"``. A WGAN-GP critic must not use batch norm (the gradient penalty
is per example, and batch norm mixes the examples of a batch): Gulrajani et al. 2017, "Improved
Training of Wasserstein GANs", NeurIPS, use layer norm -- here on an image, statistics over
(H, W, C) with one scale and offset per channel (``GroupNormalization(groups=1)``), as in their code.

Conditional (Mirza & Osindero 2014, "Conditional Generative Adversarial Nets", arXiv:1411.1784):
``num_classes > 0`` gives both players a second input, the integer labels ``(B,)``. The generator
concatenates a learned label embedding (``embed_dim``) to ``z``; the discriminator concatenates one
to a vector input, or, for an image, embeds the label as an ``H x W`` map appended as an extra
channel. ``num_classes=0`` (the default): one input.

Discriminators output a logit (no sigmoid): the task's loss applies it (or, for a critic, none).

Layer names: ``input`` (and ``input_label``), ``label_embed`` / ``label_reshape`` /
``label_concat``; generators ``dense{i}_linear`` / ``dense{i}_bn|ln`` / ``dense{i}_act`` then
``output_linear`` / ``output_reshape``, or ``project_linear`` / ``project_reshape`` /
``project_bn`` / ``project_act``, ``deconv{i}_conv`` / ``deconv{i}_bn`` / ``deconv{i}_act``, then
``output_deconv`` / ``output_act``; discriminators ``input_flatten``, ``dense{i}_*`` or
``conv{i}_conv`` / ``conv{i}_bn|ln`` / ``conv{i}_act`` / ``conv{i}_dropout``, ``features_flatten``,
then ``head_logits``.
"""

from __future__ import annotations

import copy
import math
import types
from collections.abc import Mapping
from typing import Any, Sequence

import keras

from kerasdl.errors import KerasdlUsageError

from ._common import (
    check_choice,
    check_shape,
    check_int,
    check_rate,
    initializer,
    l2_regularizer,
    logits_head,
    per_layer,
)
from .activations import ActivationSpec, activation_layer, units_multiplier
from .registry import register_model

BODIES = ("mlp", "dcgan")
NORMS = ("batch", "layer", "none")
MIN_BASE = 4  # the DCGAN generator's smallest starting map side (4x4, as in the paper)
LEAKY_RELU = types.MappingProxyType({"name": "leaky_relu", "alpha": 0.2})  # Radford et al.'s slope
# Radford et al. 2016: "All weights were initialized from a zero-centered Normal distribution with
# standard deviation 0.02" (a Keras initializer config: JSON-safe, a fresh initializer per build).
DCGAN_INIT = types.MappingProxyType(
    {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.02}})


def _initializer(model: str, value: Any):
    """:func:`initializer`, also from a (read-only) config mapping such as :data:`DCGAN_INIT`."""
    if isinstance(value, Mapping):
        value = copy.deepcopy(dict(value))  # Keras may edit the config it deserialises
    return initializer(model, value)


def dcgan_stages(model: str, shape: Sequence[int]) -> int:
    """The number ``n`` of stride-2 stages between an ``(H, W, C)`` image and its DCGAN base map.

    The most halvings that keep both sides integral and the base at least ``MIN_BASE`` (4) pixels:
    28x28 -> 2 (7x7 base), 32x32 -> 3 (4x4), 64x64 -> 4 (4x4). A shape with none is refused in
    one line.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) != 3:
        raise KerasdlUsageError(
            f"{model} needs (height, width, channels) images; use an mlp_* model for vectors. "
            f"Received: shape={shape}")
    n = 0
    while all(s % 2 ** (n + 1) == 0 and s // 2 ** (n + 1) >= MIN_BASE for s in shape[:2]):
        n += 1
    if n == 0:
        raise KerasdlUsageError(
            f"{model}: the sides must be even and at least {2 * MIN_BASE} so that a stride-2 stage "
            f"starts from a map of at least {MIN_BASE}x{MIN_BASE} (28x28, 32x32 and 64x64 work). "
            f"Received: shape={shape}")
    return n


def _norm(norm: str, block: str, spatial: bool, momentum: float = 0.9):
    """The normalisation layer of ``block`` (None for ``"none"``)."""
    if norm == "batch":
        return keras.layers.BatchNormalization(momentum=momentum, epsilon=1e-5, name=f"{block}_bn")
    if norm == "layer":
        if spatial:  # statistics over (H, W, C), one scale and offset per channel
            return keras.layers.GroupNormalization(groups=1, epsilon=1e-5, name=f"{block}_ln")
        return keras.layers.LayerNormalization(epsilon=1e-5, name=f"{block}_ln")
    return None


def _inputs(shape: tuple[int, ...], num_classes: int):
    """``(x, labels)`` Keras inputs; labels is None when unconditional."""
    x = keras.Input(shape=shape, name="input")  # (B, *shape)
    if not num_classes:
        return x, None
    return x, keras.Input(shape=(), dtype="int32", name="input_label")  # (B,) class indices


def _widths(model: str, width: Any, depth: Any) -> list[int]:
    depth = check_int(model, "depth", depth, minimum=0)
    return [check_int(model, "width", w, minimum=1) for w in per_layer(model, "width", width, depth)]


def _dense_blocks(x, widths, *, activation, norm, dropout, dense):
    pieces = units_multiplier(activation)  # k for maxout, else 1; validates the activation
    for i, units in enumerate(widths, start=1):
        block = f"dense{i}"
        x = keras.layers.Dense(units * pieces, use_bias=norm == "none", name=f"{block}_linear",
                               **dense)(x)  # (B, k * units)
        layer = _norm(norm, block, spatial=False)
        if layer is not None:
            x = layer(x)
        x = activation_layer(activation, name_prefix=block)(x)  # (B, units)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{block}_dropout")(x)
    return x


def Generator(
    latent_dim: int,
    output_shape: Sequence[int],
    *,
    body: str = "mlp",
    num_classes: int = 0,
    embed_dim: int = 16,
    width: int | Sequence[int] = 128,
    depth: int = 2,
    filters: int = 64,
    kernel_size: int = 5,
    activation: ActivationSpec = "relu",
    norm: str = "none",
    output_activation: ActivationSpec | None = None,
    kernel_initializer: Any = "glorot_uniform",
    l2: float = 0.0,
    name: str = "generator",
) -> keras.Model:
    """A generator ``z -> x`` shaped ``output_shape`` (``[z, labels] -> x`` when conditional).

    Args:
        latent_dim: size k of the noise vector z.
        output_shape: one example's shape: ``(F,)`` vectors (``mlp``; any shape, reshaped) or
            ``(H, W, C)`` images (``dcgan``; see :func:`dcgan_stages` for the sizes it makes).
        body: ``"mlp"`` (dense layers) or ``"dcgan"`` (strided transposed convolutions).
        num_classes: > 0 adds the integer labels ``(B,)`` as a second input (conditional GAN);
            0 is unconditional.
        embed_dim: size of the learned label embedding concatenated to z (conditional only).
        width: mlp hidden widths: one int for all ``depth`` layers, or one per layer.
        depth: mlp hidden layers.
        filters: dcgan channels of the last (largest) hidden map; each earlier map has twice as
            many (the 4x4 base of a 64x64 generator has ``8 * filters``).
        kernel_size: dcgan transposed-convolution kernel side (5 in Radford et al.; 4 is common).
        activation: hidden activation (see :mod:`kerasdl.models.activations`).
        norm: ``"batch"``, ``"layer"`` or ``"none"`` between each hidden affine map and its
            activation (never on the output).
        output_activation: None (linear, for standardised vectors) or an activation, e.g.
            ``"tanh"`` (images scaled to [-1, 1]).
        kernel_initializer: Keras initializer for every kernel (DCGAN: N(0, 0.02)).
        l2: L2 penalty on every kernel; 0 disables it.
        name: the model's name.
    """
    check_choice(name, "body", body, BODIES)
    latent_dim = check_int(name, "latent_dim", latent_dim, minimum=1)
    output_shape = check_shape(name, "output_shape", output_shape)
    num_classes = check_int(name, "num_classes", num_classes, minimum=0)
    check_choice(name, "norm", norm, NORMS)
    pieces = units_multiplier(activation)
    if output_activation is not None and units_multiplier(output_activation) != 1:
        raise KerasdlUsageError(f"{name}: output_activation must keep the output's size (not "
                                f"maxout). Received: output_activation={output_activation!r}")
    reg, init = l2_regularizer(name, l2), _initializer(name, kernel_initializer)
    dense = dict(kernel_initializer=init, kernel_regularizer=reg)

    z, labels = _inputs((latent_dim,), num_classes)  # (B, k), (B,)
    x = z
    if labels is not None:
        embed_dim = check_int(name, "embed_dim", embed_dim, minimum=1)
        e = keras.layers.Embedding(num_classes, embed_dim, name="label_embed")(labels)  # (B, e)
        x = keras.layers.Concatenate(name="label_concat")([z, e])  # (B, k + e)
    if body == "dcgan":
        n = dcgan_stages(name, output_shape)
        filters = check_int(name, "filters", filters, minimum=1)
        kernel_size = check_int(name, "kernel_size", kernel_size, minimum=1)
        h, w, c = output_shape
        h0, w0, f0 = h // 2**n, w // 2**n, filters * 2 ** (n - 1)
        x = keras.layers.Dense(h0 * w0 * f0 * pieces, use_bias=norm == "none",
                               name="project_linear", **dense)(x)  # (B, h0 * w0 * f0)
        x = keras.layers.Reshape((h0, w0, f0 * pieces), name="project_reshape")(x)  # (B, h0, w0, .)
        layer = _norm(norm, "project", spatial=True)
        if layer is not None:
            x = layer(x)
        x = activation_layer(activation, name_prefix="project", spatial_dims=2)(x)
        for i in range(1, n):
            x = keras.layers.Conv2DTranspose(
                filters * 2 ** (n - 1 - i) * pieces, kernel_size, strides=2, padding="same",
                use_bias=norm == "none", name=f"deconv{i}_conv", **dense)(x)  # side x 2, filters / 2
            layer = _norm(norm, f"deconv{i}", spatial=True)
            if layer is not None:
                x = layer(x)
            x = activation_layer(activation, name_prefix=f"deconv{i}", spatial_dims=2)(x)
        x = keras.layers.Conv2DTranspose(c, kernel_size, strides=2, padding="same",
                                         name="output_deconv", **dense)(x)  # (B, H, W, C)
    else:
        x = _dense_blocks(x, _widths(name, width, depth), activation=activation, norm=norm,
                          dropout=0.0, dense=dense)
        x = keras.layers.Dense(math.prod(output_shape), name="output_linear", **dense)(x)  # (B, F)
        x = keras.layers.Reshape(output_shape, name="output_reshape")(x)
    if output_activation is not None:
        x = activation_layer(output_activation, name_prefix="output",
                             spatial_dims=len(output_shape) - 1)(x)  # e.g. tanh: (-1, 1)
    return keras.Model(z if labels is None else [z, labels], x, name=name)


def Discriminator(
    input_shape: Sequence[int],
    *,
    body: str = "mlp",
    num_classes: int = 0,
    embed_dim: int = 16,
    width: int | Sequence[int] = 128,
    depth: int = 2,
    filters: int = 64,
    kernel_size: int = 5,
    activation: ActivationSpec = LEAKY_RELU,
    norm: str = "none",
    dropout: float = 0.0,
    kernel_initializer: Any = "glorot_uniform",
    l2: float = 0.0,
    name: str = "discriminator",
) -> keras.Model:
    """A discriminator ``x -> logit`` ``(B, 1)`` (``[x, labels] -> logit`` when conditional).

    Args:
        input_shape: one example's shape: ``(F,)`` vectors (``mlp``, which flattens any shape) or
            ``(H, W, C)`` images (``dcgan``).
        body: ``"mlp"`` (dense layers) or ``"dcgan"`` (strided convolutions).
        num_classes: > 0 adds the integer labels ``(B,)`` as a second input (conditional GAN).
        embed_dim: size of the label embedding concatenated to a vector input (an image gets an
            ``H x W`` embedding as an extra channel instead).
        width, depth: mlp hidden widths and layers (as for :func:`Generator`).
        filters: dcgan channels of the first convolution; each later one has twice as many.
        kernel_size: dcgan convolution kernel side.
        activation: hidden activation; LeakyReLU with slope 0.2 by default (Radford et al.).
        norm: ``"batch"``, ``"layer"`` or ``"none"``; dcgan never normalises its first layer.
            Use ``"layer"`` or ``"none"`` for a WGAN-GP critic (Gulrajani et al. 2017).
        dropout: dropout rate after each hidden activation.
        kernel_initializer, l2, name: as for :func:`Generator`.
    """
    check_choice(name, "body", body, BODIES)
    input_shape = check_shape(name, "input_shape", input_shape)
    num_classes = check_int(name, "num_classes", num_classes, minimum=0)
    check_choice(name, "norm", norm, NORMS)
    dropout = check_rate(name, "dropout", dropout)
    pieces = units_multiplier(activation)
    reg, init = l2_regularizer(name, l2), _initializer(name, kernel_initializer)
    dense = dict(kernel_initializer=init, kernel_regularizer=reg)

    inputs, labels = _inputs(input_shape, num_classes)  # (B, *input_shape), (B,)
    x = inputs
    if body == "dcgan":
        n = dcgan_stages(name, input_shape)
        filters = check_int(name, "filters", filters, minimum=1)
        kernel_size = check_int(name, "kernel_size", kernel_size, minimum=1)
        h, w, _ = input_shape
        if labels is not None:  # the label as one more image channel
            e = keras.layers.Embedding(num_classes, h * w, name="label_embed")(labels)  # (B, H * W)
            e = keras.layers.Reshape((h, w, 1), name="label_reshape")(e)  # (B, H, W, 1)
            x = keras.layers.Concatenate(name="label_concat")([x, e])  # (B, H, W, C + 1)
        for i in range(1, n + 1):
            block = f"conv{i}"
            block_norm = "none" if i == 1 else norm
            x = keras.layers.Conv2D(filters * 2 ** (i - 1) * pieces, kernel_size, strides=2,
                                    padding="same", use_bias=block_norm == "none",
                                    name=f"{block}_conv", **dense)(x)  # (B, H / 2^i, W / 2^i, .)
            layer = _norm(block_norm, block, spatial=True)
            if layer is not None:
                x = layer(x)
            x = activation_layer(activation, name_prefix=block, spatial_dims=2)(x)
            if dropout:
                x = keras.layers.Dropout(dropout, name=f"{block}_dropout")(x)
        x = keras.layers.Flatten(name="features_flatten")(x)  # (B, h0 * w0 * filters * 2^(n-1))
    else:
        x = keras.layers.Flatten(name="input_flatten")(x)  # (B, F)
        if labels is not None:
            embed_dim = check_int(name, "embed_dim", embed_dim, minimum=1)
            e = keras.layers.Embedding(num_classes, embed_dim, name="label_embed")(labels)  # (B, e)
            x = keras.layers.Concatenate(name="label_concat")([x, e])  # (B, F + e)
        x = _dense_blocks(x, _widths(name, width, depth), activation=activation, norm=norm,
                          dropout=dropout, dense=dense)
    x = logits_head(x, 1, kernel_regularizer=reg, kernel_initializer=init)  # (B, 1), no sigmoid
    return keras.Model(inputs if labels is None else [inputs, labels], x, name=name)


_GOODFELLOW = "Goodfellow et al. 2014"
_DCGAN = "Radford, Metz & Chintala 2016"
_CGAN = "; conditional: Mirza & Osindero 2014"
_GEN = dict(family="gan", task="gan", role="generator", required=("latent_dim", "output_shape"))
_DIS = dict(family="gan", task="gan", role="discriminator", required=("input_shape",))


@register_model("mlp_generator", builder=Generator, paper=_GOODFELLOW + _CGAN,
                companion="mlp_discriminator", defaults={"latent_dim": 64, "output_shape": (2,)},
                notes="z -> 2 x 128 ReLU -> linear output reshaped to output_shape (standardised "
                      "vectors); num_classes>0: [z, labels].", **_GEN)
def mlp_generator(latent_dim, output_shape, **overrides):
    """MLP generator (2 x 128 ReLU, linear output) for vector data."""
    return Generator(latent_dim, output_shape,
                     **{"name": "mlp_generator", **overrides, "body": "mlp"})


@register_model("mlp_discriminator", builder=Discriminator, paper=_GOODFELLOW + _CGAN,
                default_input_shape=(2,),
                notes="Flatten -> 2 x 128 LeakyReLU(0.2) -> one logit; num_classes>0: [x, labels].",
                **_DIS)
def mlp_discriminator(input_shape, **overrides):
    """MLP discriminator (2 x 128 LeakyReLU(0.2), one logit) for vector data."""
    return Discriminator(input_shape, **{"name": "mlp_discriminator", **overrides, "body": "mlp"})


@register_model("dcgan_generator", builder=Generator, paper=_DCGAN + _CGAN,
                companion="dcgan_discriminator",
                defaults={"latent_dim": 64, "output_shape": (28, 28, 1)},
                notes="Dense to (H/2^n, W/2^n, 64*2^(n-1)) -> 5x5 stride-2 transposed convs + BN + "
                      "ReLU -> tanh; n=2 for 28x28, 3 for 32x32, 4 for 64x64.", **_GEN)
def dcgan_generator(latent_dim, output_shape, **overrides):
    """DCGAN generator: strided transposed convolutions, batch norm, ReLU, tanh output."""
    return Generator(latent_dim, output_shape, **{
        "name": "dcgan_generator", "norm": "batch", "output_activation": "tanh",
        "kernel_initializer": DCGAN_INIT, **overrides, "body": "dcgan"})


@register_model("dcgan_discriminator", builder=Discriminator, paper=_DCGAN + _CGAN,
                default_input_shape=(28, 28, 1),
                notes="5x5 stride-2 convs 64, 128, ... + BN (not on the first) + LeakyReLU(0.2) -> "
                      "one logit; norm='layer' for a WGAN-GP critic.", **_DIS)
def dcgan_discriminator(input_shape, **overrides):
    """DCGAN discriminator: strided convolutions, batch norm, LeakyReLU(0.2), one logit."""
    return Discriminator(input_shape, **{
        "name": "dcgan_discriminator", "norm": "batch", "kernel_initializer": DCGAN_INIT,
        **overrides, "body": "dcgan"})
