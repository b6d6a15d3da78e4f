"""All-MLP vision models: MLP-Mixer and gMLP (no convolutions past the patch stem, no attention).

Tolstikhin, Houlsby, Kolesnikov, Beyer, Zhai, Unterthiner, Yung, Steiner, Keysers, Uszkoreit,
Lucic & Dosovitskiy 2021, "MLP-Mixer: An all-MLP Architecture for Vision", NeurIPS 2021.
Liu, Dai, So & Le 2021, "Pay Attention to MLPs", NeurIPS 2021 (gMLP).

Both start like ViT (a P x P stride-P conv cuts the image into S = HW / P^2 patch tokens of
width C; see :mod:`kerasdl.models.vit`) and end with LayerNorm -> mean over tokens -> logits.

MLP-Mixer block (pre-norm, two residual MLPs)::

    (B, S, C)
    token mixing:   x = x + (MLP_tok(LN(x)^T))^T    dense over the S tokens, per channel
                    MLP_tok = dense D_S, GELU -> dense S        (transpose: (B, C, S))
    channel mixing: x = x + MLP_ch(LN(x))           dense over the C channels, per token
                    MLP_ch = dense D_C, GELU -> dense C

gMLP block (one residual MLP whose hidden layer is gated across tokens)::

    (B, S, C)
    x = x + fc2(SGU(GELU(fc1(LN(x)))))    fc1: C -> F, fc2: F / 2 -> C
    SGU(z) = u * (W LN(v) + b)            z split in halves u, v of F / 2 channels each;
                                          W: (S, S) mixes tokens; init W ~ 0, b = 1

Parameter counts checked (224x224x3, 1000 classes; the token-mixing layers depend on S, so
counts change with the input size). We match timm exactly, which agrees with the papers::

    mixer_s16  P=16, 8 blocks, C 512, D_S 256, D_C 2048     18,528,264  (paper: 18M;
               timm mixer_s16_224)
    mixer_b16  P=16, 12 blocks, C 768, D_S 384, D_C 3072    59,880,472  (paper: 59M;
               timm mixer_b16_224)
    gmlp_s16   P=16, 30 blocks, C 256, F 1536               19,422,656  (paper: 20M;
               timm gmlp_s16_224)

``mixer_tiny_patch4_32`` is a CIFAR-size Mixer of our choosing: 4x4 patches (S = 64 at
32x32), 8 blocks, C 128, D_S 64, D_C 512 (the paper's ratios D_S = C / 2, D_C = 4 C):
1,132,170 parameters for 10 classes.

Initialisers: Keras defaults (Glorot-uniform kernels, zero biases), except the spatial gating
projection (N(0, 1e-6) weights and unit biases, so that each gMLP block starts close to an
ordinary MLP, as the gMLP paper prescribes). LayerNorm epsilon 1e-6 as in both papers' code.

Layer names: ``embed_patches``, ``embed_tokens``, then for Mixer ``block{i}_norm1``,
``block{i}_token_transpose1``, ``block{i}_token_fc1``, ``block{i}_token_fc2``,
``block{i}_token_transpose2``, ``block{i}_add1``, ``block{i}_norm2``, ``block{i}_channel_fc1``,
``block{i}_channel_fc2``, ``block{i}_add2``; for gMLP ``block{i}_norm``, ``block{i}_fc1``,
``block{i}_sgu``, ``block{i}_fc2``, ``block{i}_add``; optional ``..._dropout`` layers; then
``head_norm``, ``head_pool``, ``head_logits``.
"""

from __future__ import annotations

import math

from typing import Sequence

import keras
from keras import ops

from kerasdl.errors import KerasdlUsageError

from ._common import check_int, check_rate, check_top, logits_head
from .registry import register_model
from .vit import TokenPooling, check_patch_grid, features_pool, patch_embedding

LAYER_NORM_EPSILON = 1e-6

# name: (patch_size, depth, width C, token_mlp_dim D_S, channel_mlp_dim D_C), paper Table 1.
MIXER_CONFIGS = {
    "mixer_s16": (16, 8, 512, 256, 2048),
    "mixer_b16": (16, 12, 768, 384, 3072),
    "mixer_tiny_patch4_32": (4, 8, 128, 64, 512),
}
# name: (patch_size, depth, width C, ffn_dim F), gMLP paper Table 1.
GMLP_CONFIGS = {
    "gmlp_s16": (16, 30, 256, 1536),
}


def _layer_norm(name: str):
    return keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=name)


def _maybe_dropout(x, rate: float, name: str):
    return keras.layers.Dropout(rate, name=name)(x) if rate else x


def _head(inputs, x, num_classes, include_top, pooling, name):
    """LayerNorm, then mean over tokens -> logits; or the features for ``include_top=False``."""
    x = _layer_norm("head_norm")(x)  # (B, S, C)
    if not include_top:
        return keras.Model(inputs, features_pool(x, pooling), name=name)
    x = TokenPooling("mean", name="head_pool")(x)  # (B, C)
    x = logits_head(x, num_classes)  # (B, K)
    return keras.Model(inputs, x, name=name)


def _check_common(name, input_shape, patch_size, include_top, pooling, depth, width, dropout):
    patch_size = check_int(name, "patch_size", patch_size, minimum=1)
    check_patch_grid(name, input_shape, patch_size)
    check_top(name, include_top, pooling)
    check_int(name, "depth", depth, minimum=1)
    check_int(name, "width", width, minimum=1)
    return check_rate(name, "dropout", dropout)


def MLPMixer(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    patch_size: int = 16,
    depth: int = 12,
    width: int = 768,
    token_mlp_dim: int = 384,
    channel_mlp_dim: int = 3072,
    dropout: float = 0.0,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "mixer",
) -> keras.Model:
    """Build an MLP-Mixer as a functional ``keras.Model`` with logits output.

    Args:
        input_shape: ``(height, width, channels)``, height and width multiples of ``patch_size``.
        num_classes: logits size; 1 gives a single linear output (regression).
        patch_size: side ``P`` of the square patches.
        depth: number of Mixer blocks.
        width: channels ``C`` per token (the paper's "hidden size").
        token_mlp_dim: hidden units ``D_S`` of the token-mixing MLP.
        channel_mlp_dim: hidden units ``D_C`` of the channel-mixing MLP.
        dropout: dropout rate after each MLP dense layer.
        include_top: False drops the head and returns the layer-normed tokens ``(B, S, C)``.
        pooling: with ``include_top=False``: None, ``"avg"`` or ``"max"`` over the tokens.
        name: the model's name (also used in error messages).
    """
    input_shape = tuple(input_shape)
    rate = _check_common(name, input_shape, patch_size, include_top, pooling, depth, width,
                         dropout)
    token_mlp_dim = check_int(name, "token_mlp_dim", token_mlp_dim, minimum=1)
    channel_mlp_dim = check_int(name, "channel_mlp_dim", channel_mlp_dim, minimum=1)

    inputs = keras.Input(shape=input_shape, name="input")  # (B, H, W, C_in)
    x = patch_embedding(inputs, width, patch_size, name="embed")  # (B, S, C)
    tokens = x.shape[1]
    for i in range(1, depth + 1):
        block = f"block{i}"
        # Token mixing: the same MLP for every channel, across the S tokens.
        y = _layer_norm(f"{block}_norm1")(x)
        y = keras.layers.Permute((2, 1), name=f"{block}_token_transpose1")(y)  # (B, C, S)
        y = keras.layers.Dense(token_mlp_dim, activation="gelu", name=f"{block}_token_fc1")(y)
        y = _maybe_dropout(y, rate, f"{block}_token_dropout1")  # (B, C, D_S)
        y = keras.layers.Dense(tokens, name=f"{block}_token_fc2")(y)  # (B, C, S)
        y = _maybe_dropout(y, rate, f"{block}_token_dropout2")
        y = keras.layers.Permute((2, 1), name=f"{block}_token_transpose2")(y)  # (B, S, C)
        x = keras.layers.Add(name=f"{block}_add1")([x, y])
        # Channel mixing: the same MLP for every token, across the C channels.
        y = _layer_norm(f"{block}_norm2")(x)
        y = keras.layers.Dense(channel_mlp_dim, activation="gelu",
                               name=f"{block}_channel_fc1")(y)  # (B, S, D_C)
        y = _maybe_dropout(y, rate, f"{block}_channel_dropout1")
        y = keras.layers.Dense(width, name=f"{block}_channel_fc2")(y)  # (B, S, C)
        y = _maybe_dropout(y, rate, f"{block}_channel_dropout2")
        x = keras.layers.Add(name=f"{block}_add2")([x, y])  # (B, S, C)
    return _head(inputs, x, num_classes, include_top, pooling, name)


@keras.saving.register_keras_serializable(package="kerasdl")
class SpatialGatingUnit(keras.layers.Layer):
    """gMLP's spatial gating unit: ``(B, S, F) -> (B, S, F / 2)``.

    Split the channels into halves ``u, v``; ``out = u * (W LN(v) + b)`` where the ``(S, S)``
    matrix ``W`` mixes the tokens (``out[t] = u[t] * (sum_s W[t, s] LN(v)[s] + b[t])``).
    ``W`` starts near zero and ``b`` at one, so the unit starts as ``u`` (Liu et al. 2021).
    """

    def __init__(self, epsilon: float = LAYER_NORM_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.norm = keras.layers.LayerNormalization(epsilon=self.epsilon, name="norm")

    def build(self, input_shape):
        tokens, channels = input_shape[1], input_shape[2]
        if tokens is None or channels is None or channels % 2:
            raise KerasdlUsageError(
                f"{self.name}: the spatial gating unit needs a known token count and an even "
                f"channel count. Received: input_shape={tuple(input_shape)}"
            )
        self.norm.build((input_shape[0], tokens, channels // 2))
        self.kernel = self.add_weight(
            name="kernel", shape=(tokens, tokens),
            initializer=keras.initializers.RandomNormal(stddev=1e-6),
        )
        self.bias = self.add_weight(name="bias", shape=(tokens,), initializer="ones")

    def call(self, x):  # (B, S, F)
        u, v = ops.split(x, 2, axis=-1)  # (B, S, F/2) each
        v = self.norm(v)
        v = ops.einsum("ts,bsc->btc", self.kernel, v) + self.bias[:, None]  # (B, S, F/2)
        return u * v

    def compute_output_shape(self, input_shape):
        return (*input_shape[:2], input_shape[2] // 2)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def GMLP(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    patch_size: int = 16,
    depth: int = 30,
    width: int = 256,
    ffn_dim: int = 1536,
    dropout: float = 0.0,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "gmlp",
) -> keras.Model:
    """Build a gMLP image classifier as a functional ``keras.Model`` with logits output.

    Args:
        input_shape: ``(height, width, channels)``, height and width multiples of ``patch_size``.
        num_classes: logits size; 1 gives a single linear output (regression).
        patch_size: side ``P`` of the square patches.
        depth: number of gMLP blocks.
        width: channels ``C`` per token (the paper's ``d_model``).
        ffn_dim: hidden units ``F`` of each block (the paper's ``d_ffn``; even: the gating
            unit splits it in two).
        dropout: dropout rate after fc1's activation and after fc2.
        include_top: False drops the head and returns the layer-normed tokens ``(B, S, C)``.
        pooling: with ``include_top=False``: None, ``"avg"`` or ``"max"`` over the tokens.
        name: the model's name (also used in error messages).
    """
    input_shape = tuple(input_shape)
    rate = _check_common(name, input_shape, patch_size, include_top, pooling, depth, width,
                         dropout)
    ffn_dim = check_int(name, "ffn_dim", ffn_dim, minimum=2)
    if ffn_dim % 2:
        raise KerasdlUsageError(
            f"{name}: ffn_dim must be even (the spatial gating unit splits it in two halves). "
            f"Received: ffn_dim={ffn_dim}"
        )

    inputs = keras.Input(shape=input_shape, name="input")  # (B, H, W, C_in)
    # Patch-embedding bias as PyTorch's conv default (the reference code's), U(+-1/sqrt(fan_in)),
    # not keras's zeros: with a zero bias an all-zero patch (an MNIST border) embeds to an exactly
    # zero token, the gating keeps it zero in every block, and each LayerNorm then multiplies its
    # gradient by 1/sqrt(epsilon) = 1000 -- an overflow to NaN within a few of the 30 blocks.
    bound = 1.0 / math.sqrt(patch_size * patch_size * input_shape[-1])
    x = patch_embedding(inputs, width, patch_size, name="embed",
                        bias_initializer=keras.initializers.RandomUniform(-bound, bound))  # (B, S, C)
    for i in range(1, depth + 1):
        block = f"block{i}"
        y = _layer_norm(f"{block}_norm")(x)
        y = keras.layers.Dense(ffn_dim, activation="gelu", name=f"{block}_fc1")(y)  # (B, S, F)
        y = _maybe_dropout(y, rate, f"{block}_dropout1")
        y = SpatialGatingUnit(name=f"{block}_sgu")(y)  # (B, S, F/2)
        y = keras.layers.Dense(width, name=f"{block}_fc2")(y)  # (B, S, C)
        y = _maybe_dropout(y, rate, f"{block}_dropout2")
        x = keras.layers.Add(name=f"{block}_add")([x, y])  # (B, S, C)
    return _head(inputs, x, num_classes, include_top, pooling, name)


_SMOKE = (32, 32, 3)


@register_model(
    "mixer_s16", builder=MLPMixer, family="mixer", task="classification",
    paper="Tolstikhin et al. 2021", default_input_shape=(224, 224, 3), default_num_classes=1000,
    smoke_input_shape=_SMOKE,
    notes="Mixer-S/16: 16x16 patches, 8 blocks, C 512, token MLP 256, channel MLP 2048; "
    "18,528,264 parameters at 224x224x3 / 1000 classes (paper: 18M; timm mixer_s16_224). "
    "Input sides must be multiples of 16.",
)
def mixer_s16(input_shape, num_classes, **overrides):
    """MLP-Mixer S/16."""
    p, d, c, ds, dc = MIXER_CONFIGS["mixer_s16"]
    preset = dict(patch_size=p, depth=d, width=c, token_mlp_dim=ds, channel_mlp_dim=dc,
                  name="mixer_s16")
    return MLPMixer(input_shape, num_classes, **{**preset, **overrides})


@register_model(
    "mixer_b16", builder=MLPMixer, family="mixer", task="classification",
    paper="Tolstikhin et al. 2021", default_input_shape=(224, 224, 3), default_num_classes=1000,
    smoke_input_shape=_SMOKE,
    notes="Mixer-B/16: 16x16 patches, 12 blocks, C 768, token MLP 384, channel MLP 3072; "
    "59,880,472 parameters at 224x224x3 / 1000 classes (paper: 59M; timm mixer_b16_224).",
)
def mixer_b16(input_shape, num_classes, **overrides):
    """MLP-Mixer B/16."""
    p, d, c, ds, dc = MIXER_CONFIGS["mixer_b16"]
    preset = dict(patch_size=p, depth=d, width=c, token_mlp_dim=ds, channel_mlp_dim=dc,
                  name="mixer_b16")
    return MLPMixer(input_shape, num_classes, **{**preset, **overrides})


@register_model(
    "mixer_tiny_patch4_32", builder=MLPMixer, family="mixer", task="classification",
    paper="Tolstikhin et al. 2021", default_input_shape=(32, 32, 3), default_num_classes=10,
    smoke_input_shape=_SMOKE,
    notes="CIFAR-size Mixer: 4x4 patches (64 tokens at 32x32), 8 blocks, C 128, token MLP 64, "
    "channel MLP 512; 1,132,170 parameters at 32x32x3 / 10 classes.",
)
def mixer_tiny_patch4_32(input_shape, num_classes, **overrides):
    """A small MLP-Mixer for 32x32 images."""
    p, d, c, ds, dc = MIXER_CONFIGS["mixer_tiny_patch4_32"]
    preset = dict(patch_size=p, depth=d, width=c, token_mlp_dim=ds, channel_mlp_dim=dc,
                  name="mixer_tiny_patch4_32")
    return MLPMixer(input_shape, num_classes, **{**preset, **overrides})


@register_model(
    "gmlp_s16", builder=GMLP, family="gmlp", task="classification",
    paper="Liu, Dai, So & Le 2021", default_input_shape=(224, 224, 3), default_num_classes=1000,
    smoke_input_shape=_SMOKE,
    notes="gMLP-S/16: 16x16 patches, 30 blocks, C 256, FFN 1536 with a spatial gating unit; "
    "19,422,656 parameters at 224x224x3 / 1000 classes (paper: 20M; timm gmlp_s16_224).",
)
def gmlp_s16(input_shape, num_classes, **overrides):
    """gMLP-S/16."""
    p, d, c, f = GMLP_CONFIGS["gmlp_s16"]
    preset = dict(patch_size=p, depth=d, width=c, ffn_dim=f, name="gmlp_s16")
    return GMLP(input_shape, num_classes, **{**preset, **overrides})
