"""Denoisers: the noise-prediction networks of denoising diffusion models.

A diffusion model (Ho, Jain & Abbeel 2020, "Denoising Diffusion Probabilistic Models", NeurIPS)
trains a network ``eps_theta(x_t, t)`` to predict the Gaussian noise ``eps`` that the forward
process mixed into a clean example: ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``. Every
denoiser here takes ``[x_t, t]`` -- ``x_t`` shaped like one example, ``t`` the integer timestep
``(B,)`` -- plus the integer labels ``(B,)`` when ``num_classes > 0``, and returns ``eps`` with the
input's shape. The task (:mod:`kerasdl.tasks.diffusion`) owns the schedule, the loss and sampling.

* ``unet`` (``diffusion_unet``, for ``(H, W, C)`` images) -- Ho et al. 2020's denoiser, small: a
  3x3 input convolution, then per resolution level ``blocks`` residual blocks (GroupNorm -> swish
  -> 3x3 conv, the embedding added, GroupNorm -> swish -> dropout -> 3x3 conv, plus a 1x1
  shortcut when the width changes; Ho et al. appendix B, after Wide ResNet) and a stride-2 3x3
  convolution down to the next level; a middle of residual block, self-attention, residual block;
  then the mirror image upwards with nearest-neighbour upsampling + 3x3 conv, each block fed the
  matching down-path activation by concatenation (the U-Net skip connections, Ronneberger et al.
  2015); GroupNorm -> swish -> a zero-initialised 3x3 convolution to the image's channels (so the
  untrained model predicts eps = 0). ``attention=True`` adds single-head self-attention (Vaswani et
  al. 2017; in Ho et al. at 16x16) after every block of the *lowest* resolution. Level widths are
  ``base_filters * channel_mult[i]``; each level but the last halves the sides, so the sides must
  be divisible by ``2 ** (len(channel_mult) - 1)`` (28 -> 14 -> 7 with the default three levels;
  8x8 digits -> 4 -> 2; 32 -> 16 -> 8).
* ``mlp`` (``diffusion_mlp``, for ``(F,)`` vectors such as 2-D points) -- a linear projection to
  ``width`` units, ``depth`` residual blocks (LayerNorm -> swish -> dense, the embedding added,
  LayerNorm -> swish -> dropout -> dense) and a zero-initialised linear output.

The timestep ``t`` enters through the sinusoidal position embedding of the Transformer (Vaswani et
al. 2017, section 3.5; Ho et al. 2020, appendix B) -> dense -> swish -> dense (``4 * base_filters``
units for the U-Net). A conditional denoiser adds a learned class embedding with
``num_classes + 1`` rows: row ``num_classes`` is the *null* label, the "no class" input that
classifier-free guidance trains with probability ``p_uncond`` and samples with (Ho & Salimans
2022, "Classifier-Free Diffusion Guidance"). The embedding is added inside every residual block
through a per-block dense projection.

Layer names: ``input``, ``input_timestep`` (and ``input_label``), ``time_embed`` /
``time_dense1`` / ``time_act`` / ``time_dense2`` (and ``label_embed`` / ``embed_add``),
``stem_conv``; blocks ``down{i}_res{j}_*`` / ``down{i}_attn{j}_*`` / ``down{i}_downsample``,
``mid_res1_*`` / ``mid_attn_*`` / ``mid_res2_*``, ``up{i}_res{j}_*`` (``_concat``, ``_norm1``,
``_act1``, ``_conv1``, ``_emb_act``, ``_emb_proj``, ``_emb_add``, ``_norm2``, ``_act2``,
``_dropout``, ``_conv2``, ``_shortcut``, ``_add``) and ``up{i}_upsample`` / ``up{i}_upconv``; then
``out_norm`` / ``out_act`` / ``out_conv``. The MLP: ``input_proj``, ``block{i}_*`` and ``out_linear``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import keras
from keras import ops

from kerasdl.errors import KerasdlUsageError

from ._common import check_bool, check_int, check_rate, check_shape
from .registry import register_model

CHANNEL_MULT = (1, 2, 2)  # three levels: 28 -> 14 -> 7
MAX_PERIOD = 10000.0  # the Transformer's base wavelength factor


@keras.saving.register_keras_serializable(package="kerasdl")
class SinusoidalEmbedding(keras.layers.Layer):
    """Integer timesteps ``(B,)`` -> ``(B, dim)``: ``[sin(t w_k), cos(t w_k)]`` with geometric
    frequencies ``w_k = max_period^(-k / (dim / 2))``, k = 0 .. dim/2 - 1 (Vaswani et al. 2017,
    section 3.5; the timestep embedding of Ho et al. 2020)."""

    def __init__(self, dim: int, max_period: float = MAX_PERIOD, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.max_period = int(dim), float(max_period)

    def call(self, t):
        half = self.dim // 2
        freqs = ops.exp(-math.log(self.max_period) * ops.arange(half, dtype="float32") / half)  # (half,)
        args = ops.cast(ops.reshape(t, (-1, 1)), "float32") * freqs[None, :]  # (B, half)
        out = ops.concatenate([ops.sin(args), ops.cos(args)], axis=-1)  # (B, 2 * half)
        if self.dim % 2:
            out = ops.pad(out, [[0, 0], [0, 1]])
        return ops.cast(out, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_period": self.max_period}


def _groups(channels: int, wanted: int = 8) -> int:
    """The largest group count <= ``wanted`` that divides ``channels`` (GroupNorm, Wu & He 2018)."""
    return math.gcd(int(channels), int(wanted)) or 1


def _inputs(shape: tuple[int, ...], num_classes: int):
    x = keras.Input(shape=shape, name="input")  # (B, *shape): x_t
    t = keras.Input(shape=(), dtype="int32", name="input_timestep")  # (B,)
    labels = keras.Input(shape=(), dtype="int32", name="input_label") if num_classes else None  # (B,)
    return x, t, labels


def _embedding(t, labels, num_classes: int, units: int, sinusoid: int):
    """Timestep (and class) embedding (B, units)."""
    e = SinusoidalEmbedding(sinusoid, name="time_embed")(t)  # (B, sinusoid)
    e = keras.layers.Dense(units, name="time_dense1")(e)
    e = keras.layers.Activation("silu", name="time_act")(e)
    e = keras.layers.Dense(units, name="time_dense2")(e)  # (B, units)
    if labels is not None:  # row num_classes: the null label of classifier-free guidance
        # N(0, 1) rows (PyTorch's nn.Embedding default, as the reference implementations use):
        # Keras's default U(-0.05, 0.05) starts the class signal 20x weaker than the time
        # embedding's, and a short CPU run then learns to ignore the label.
        c = keras.layers.Embedding(num_classes + 1, units, name="label_embed",
                                   embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0))(labels)
        e = keras.layers.Add(name="embed_add")([e, c])
    return e


def _res_block(x, emb, out: int, dropout: float, name: str, spatial: bool = True):
    """Residual block with the embedding added between its two convolutions (Ho et al. 2020)."""
    if spatial:
        def norm(n, nm):
            return keras.layers.GroupNormalization(groups=_groups(n), epsilon=1e-5, name=nm)

        def conv(units, k, nm, zero=False):
            return keras.layers.Conv2D(units, k, padding="same", name=nm,
                                       kernel_initializer="zeros" if zero else "glorot_uniform")
    else:
        def norm(n, nm):
            return keras.layers.LayerNormalization(epsilon=1e-5, name=nm)

        def conv(units, k, nm, zero=False):
            return keras.layers.Dense(units, name=nm, kernel_initializer="zeros" if zero else "glorot_uniform")
    channels = int(x.shape[-1])
    h = norm(channels, f"{name}_norm1")(x)
    h = keras.layers.Activation("silu", name=f"{name}_act1")(h)
    h = conv(out, 3, f"{name}_conv1")(h)  # (B, ..., out)
    e = keras.layers.Activation("silu", name=f"{name}_emb_act")(emb)
    e = keras.layers.Dense(out, name=f"{name}_emb_proj")(e)  # (B, out)
    if spatial:
        e = keras.layers.Reshape((1, 1, out), name=f"{name}_emb_reshape")(e)  # broadcast over H, W
    h = keras.layers.Add(name=f"{name}_emb_add")([h, e])
    h = norm(out, f"{name}_norm2")(h)
    h = keras.layers.Activation("silu", name=f"{name}_act2")(h)
    if dropout:
        h = keras.layers.Dropout(dropout, name=f"{name}_dropout")(h)
    h = conv(out, 3, f"{name}_conv2", zero=True)(h)  # zero-initialised: the block starts as identity
    if channels != out:
        x = conv(out, 1, f"{name}_shortcut")(x)
    return keras.layers.Add(name=f"{name}_add")([x, h])


def _attention(x, name: str):
    """Single-head self-attention over the H x W positions, residual (Ho et al. 2020)."""
    _, h, w, c = x.shape
    a = keras.layers.GroupNormalization(groups=_groups(c), epsilon=1e-5, name=f"{name}_norm")(x)
    a = keras.layers.Reshape((h * w, c), name=f"{name}_flatten")(a)  # (B, HW, C)
    a = keras.layers.MultiHeadAttention(num_heads=1, key_dim=c, name=f"{name}_mha")(a, a)  # (B, HW, C)
    a = keras.layers.Reshape((h, w, c), name=f"{name}_unflatten")(a)
    return keras.layers.Add(name=f"{name}_add")([x, a])


def _mult(model: str, channel_mult: Any) -> list[int]:
    values = [channel_mult] if isinstance(channel_mult, int) and not isinstance(channel_mult, bool) else channel_mult
    if not isinstance(values, (list, tuple)) or not values:
        raise KerasdlUsageError(f"{model}: channel_mult must be a non-empty list of ints. "
                                f"Received: channel_mult={channel_mult!r}")
    return [check_int(model, "channel_mult", m, minimum=1) for m in values]


def check_unet_shape(model: str, shape: Sequence[int], levels: int) -> tuple[int, int, int]:
    """An (H, W, C) image whose sides ``levels - 1`` stride-2 stages halve exactly."""
    shape = tuple(int(d) for d in shape)
    if len(shape) != 3:
        raise KerasdlUsageError(f"{model} needs (height, width, channels) images; use diffusion_mlp for vectors. "
                                f"Received: shape={shape}")
    factor = 2 ** (levels - 1)
    if shape[0] % factor or shape[1] % factor:
        raise KerasdlUsageError(
            f"{model}: {levels} resolution levels need sides divisible by {factor} (give fewer channel_mult "
            f"entries, e.g. channel_mult=[1,2]). Received: shape={shape}")
    return shape  # type: ignore[return-value]


def DiffusionUNet(
    input_shape: Sequence[int],
    *,
    num_classes: int = 0,
    base_filters: int = 32,
    channel_mult: Sequence[int] = CHANNEL_MULT,
    blocks: int = 1,
    attention: bool = True,
    dropout: float = 0.0,
    name: str = "diffusion_unet",
) -> keras.Model:
    """U-Net noise predictor ``[x_t, t(, labels)] -> eps`` (Ho et al. 2020, small).

    Args:
        input_shape: ``(H, W, C)``; the sides must be divisible by ``2 ** (len(channel_mult) - 1)``.
        num_classes: > 0 adds the labels input (``num_classes + 1`` embedding rows; the last is
            the null label of classifier-free guidance); 0 is unconditional.
        base_filters: width of the first level (and ``4 x`` it: the embedding's units).
        channel_mult: per-level width multipliers; one level per entry.
        blocks: residual blocks per level on the way down (``blocks + 1`` on the way up).
        attention: self-attention after the blocks of the lowest resolution and in the middle.
        dropout: dropout rate inside every residual block.
        name: the model's name.
    """
    num_classes = check_int(name, "num_classes", num_classes, minimum=0)
    base_filters = check_int(name, "base_filters", base_filters, minimum=1)
    mult = _mult(name, channel_mult)
    blocks = check_int(name, "blocks", blocks, minimum=1)
    attention = check_bool(name, "attention", attention)
    dropout = check_rate(name, "dropout", dropout)
    shape = check_unet_shape(name, input_shape, len(mult))

    x_in, t, labels = _inputs(shape, num_classes)
    emb = _embedding(t, labels, num_classes, 4 * base_filters, base_filters)
    h = keras.layers.Conv2D(base_filters, 3, padding="same", name="stem_conv")(x_in)  # (B, H, W, F)
    skips = [h]
    last = len(mult)
    for i, m in enumerate(mult, start=1):
        for j in range(1, blocks + 1):
            h = _res_block(h, emb, base_filters * m, dropout, f"down{i}_res{j}")
            if attention and i == last:
                h = _attention(h, f"down{i}_attn{j}")
            skips.append(h)
        if i < last:
            h = keras.layers.Conv2D(int(h.shape[-1]), 3, strides=2, padding="same", name=f"down{i}_downsample")(h)
            skips.append(h)  # (B, H / 2^i, W / 2^i, F_i)
    h = _res_block(h, emb, int(h.shape[-1]), dropout, "mid_res1")
    if attention:
        h = _attention(h, "mid_attn")
    h = _res_block(h, emb, int(h.shape[-1]), dropout, "mid_res2")
    for i in range(last, 0, -1):
        for j in range(1, blocks + 2):
            h = keras.layers.Concatenate(name=f"up{i}_res{j}_concat")([h, skips.pop()])
            h = _res_block(h, emb, base_filters * mult[i - 1], dropout, f"up{i}_res{j}")
            if attention and i == last:
                h = _attention(h, f"up{i}_attn{j}")
        if i > 1:
            h = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up{i}_upsample")(h)
            h = keras.layers.Conv2D(int(h.shape[-1]), 3, padding="same", name=f"up{i}_upconv")(h)
    h = keras.layers.GroupNormalization(groups=_groups(int(h.shape[-1])), epsilon=1e-5, name="out_norm")(h)
    h = keras.layers.Activation("silu", name="out_act")(h)
    eps = keras.layers.Conv2D(shape[-1], 3, padding="same", kernel_initializer="zeros", name="out_conv",
                              dtype="float32")(h)  # (B, H, W, C), float32 under mixed precision
    inputs = [x_in, t] + ([labels] if labels is not None else [])
    return keras.Model(inputs, eps, name=name)


def DiffusionMLP(
    input_shape: Sequence[int],
    *,
    num_classes: int = 0,
    width: int = 128,
    depth: int = 3,
    embed_dim: int = 64,
    dropout: float = 0.0,
    name: str = "diffusion_mlp",
) -> keras.Model:
    """Residual MLP noise predictor ``[x_t, t(, labels)] -> eps`` for vectors ``(F,)``.

    Args:
        input_shape: ``(F,)`` (any shape is flattened and the output reshaped back).
        num_classes: > 0 adds the labels input (``num_classes + 1`` rows; the last is the null label).
        width: hidden units (and the embedding's units).
        depth: residual blocks.
        embed_dim: size of the sinusoidal timestep features.
        dropout: dropout rate inside every block.
        name: the model's name.
    """
    num_classes = check_int(name, "num_classes", num_classes, minimum=0)
    width = check_int(name, "width", width, minimum=1)
    depth = check_int(name, "depth", depth, minimum=1)
    embed_dim = check_int(name, "embed_dim", embed_dim, minimum=2)
    dropout = check_rate(name, "dropout", dropout)
    shape = check_shape(name, "input_shape", input_shape)
    x_in, t, labels = _inputs(shape, num_classes)
    emb = _embedding(t, labels, num_classes, width, embed_dim)
    h = keras.layers.Flatten(name="input_flatten")(x_in) if len(shape) > 1 else x_in
    h = keras.layers.Dense(width, name="input_proj")(h)  # (B, width)
    for i in range(1, depth + 1):
        h = _res_block(h, emb, width, dropout, f"block{i}", spatial=False)
    eps = keras.layers.Dense(math.prod(shape), kernel_initializer="zeros", name="out_linear", dtype="float32")(h)
    if len(shape) > 1:
        eps = keras.layers.Reshape(shape, name="out_reshape")(eps)
    inputs = [x_in, t] + ([labels] if labels is not None else [])
    return keras.Model(inputs, eps, name=name)


_HO = "Ho, Jain & Abbeel 2020; classifier-free guidance: Ho & Salimans 2022"
_DEN = dict(family="diffusion", task="diffusion", role="denoiser", required=("input_shape",))


@register_model("diffusion_unet", builder=DiffusionUNet, paper=_HO, default_input_shape=(28, 28, 1),
                notes="[x_t, t(, labels)] -> eps: sinusoidal t embedding, 32/64/64-filter levels (28->14->7) of "
                      "GroupNorm+swish residual blocks, self-attention at the lowest level, zero-initialised output.",
                **_DEN)
def diffusion_unet(input_shape, **overrides):
    """Small DDPM U-Net denoiser for images."""
    return DiffusionUNet(input_shape, **{"name": "diffusion_unet", **overrides})


@register_model("diffusion_mlp", builder=DiffusionMLP, paper=_HO, default_input_shape=(2,),
                notes="[x_t, t(, labels)] -> eps for vectors: 3 residual LayerNorm+swish dense blocks of 128 "
                      "with the t embedding, zero-initialised output.", **_DEN)
def diffusion_mlp(input_shape, **overrides):
    """Residual MLP denoiser for vector data (e.g. 2-D points)."""
    return DiffusionMLP(input_shape, **{"name": "diffusion_mlp", **overrides})
