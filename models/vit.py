"""Vision Transformer (ViT): a plain Transformer encoder over a sequence of image patches.

Dosovitskiy, Beyer, Kolesnikov, Weissenborn, Zhai, Unterthiner, Dehghani, Minderer, Heigold,
Gelly, Uszkoreit & Houlsby 2021, "An Image is Worth 16x16 Words: Transformers for Image
Recognition at Scale", ICLR 2021. Attention: Vaswani et al. 2017, "Attention Is All You Need".

    (B, H, W, C)
    embed_patches: conv P x P, stride P, D filters    (B, H/P, W/P, D) -> tokens (B, N, D)
    embed_class_token (classifier="token"): prepend a learned [class] token  (B, T = N + 1, D)
    embed_position: add a learned position embedding (T, D); dropout
    block{i}, i = 1..depth (pre-norm):
        x = x + dropout(MSA(LN(x)))                         (B, T, D)
        x = x + MLP(LN(x)),  MLP = dense mlp_dim, GELU -> dense D (dropout after each)
    head_norm: LN -> head_pool: the [class] token ("token") or the mean token ("gap")  (B, D)
    head_logits: dense num_classes (logits)

Multi-head self-attention (:class:`MultiHeadSelfAttention`) is written out with the formulas
of the lectures in ``keras.ops``: with ``d_k = D / heads``, for every head
``Q = X W_q, K = X W_k, V = X W_v`` and ``head = softmax(Q K^T / sqrt(d_k)) V``; the heads are
concatenated and projected by ``W_o``. ``causal=True`` masks every key after the query
(``j > i``) before the softmax (a decoder's mask; ViT itself is not causal).
``attention="keras"`` swaps in ``keras.layers.MultiHeadAttention``: the same function with
the same number of parameters (a test copies the weights across and gets the same logits).

Parameter counts checked (224x224x3, 1000 classes), matching timm exactly. ViT-B/16 is the
paper's Table 1 model (86M); S and Ti are the narrower widths of DeiT (Touvron et al. 2021)
that timm also lists as ViTs. The head has no "pre-logits" representation layer (used by the
paper only for ImageNet-21k pre-training), as in timm's ``vit_*_patch16_224``::

    vit_b16   P=16, depth 12, D 768, 12 heads, MLP 3072   86,567,656  (timm vit_base_patch16_224)
    vit_s16   P=16, depth 12, D 384,  6 heads, MLP 1536   22,050,664  (timm vit_small_patch16_224)
    vit_ti16  P=16, depth 12, D 192,  3 heads, MLP  768    5,717,416  (timm vit_tiny_patch16_224)

``vit_tiny_patch4_32`` is a CIFAR-size model of our choosing: ViT-Ti's width (D 192, 3 heads,
MLP 768) with 4x4 patches (64 patches of 32x32 images, 65 tokens) and depth 6:
2,693,578 parameters for 10 classes. Small ViTs trained from scratch on CIFAR need strong
augmentation and many epochs (keras.io reaches ~55% on CIFAR-100 in 100 epochs).

The position embedding is learned for one input size (the one the model is built for);
height and width must be multiples of ``patch_size``. Initialisers: Keras defaults
(Glorot-uniform kernels, zero biases) except the position embedding, N(0, 0.02) as in timm,
and the [class] token, zeros as in the paper's code. LayerNorm epsilon 1e-6 as in the paper.

Layer names: ``embed_patches``, ``embed_tokens``, ``embed_class_token``, ``embed_position``,
``embed_dropout``, ``block{i}_norm1``, ``block{i}_attn``, ``block{i}_attn_dropout``,
``block{i}_add1``, ``block{i}_norm2``, ``block{i}_mlp_fc1``, ``block{i}_mlp_dropout1``,
``block{i}_mlp_fc2``, ``block{i}_mlp_dropout2``, ``block{i}_add2``, ``head_norm``,
``head_pool``, ``head_logits``.
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
from keras import ops

from kerasdl.errors import KerasdlUsageError

from ._common import check_choice, check_int, check_rate, check_top, logits_head
from .registry import register_model

CLASSIFIERS = ("token", "gap")
ATTENTIONS = ("custom", "keras")
LAYER_NORM_EPSILON = 1e-6  # the paper's (and timm's) LayerNorm epsilon

# name: (patch_size, depth, width, heads, mlp_dim), the paper's Table 1 plus DeiT's S and Ti.
VIT_CONFIGS = {
    "vit_b16": (16, 12, 768, 12, 3072),
    "vit_s16": (16, 12, 384, 6, 1536),
    "vit_ti16": (16, 12, 192, 3, 768),
    "vit_tiny_patch4_32": (4, 6, 192, 3, 768),
}


def _large_negative(dtype) -> float:
    """A finite stand-in for -inf in masked softmax inputs (float16 tops out at 65504)."""
    return -3.0e4 if keras.backend.standardize_dtype(dtype) == "float16" else -1.0e9


@keras.saving.register_keras_serializable(package="kerasdl")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Multi-head scaled dot-product self-attention, written with ``keras.ops``.

    ``(B, T, D) -> (B, T, D)``. With ``h = num_heads`` and ``d_k = D / h``::

        [Q | K | V] = X W_qkv + b_qkv                 W_qkv: (D, 3D), heads contiguous in each
        A_h = softmax(Q_h K_h^T / sqrt(d_k))          (B, h, T, T); causal: A_h[i, j>i] = 0
        Y = concat_h(A_h V_h) W_o + b_o               W_o: (D, D)

    4 D^2 + 4 D parameters, the same as ``keras.layers.MultiHeadAttention(h, key_dim=d_k)``:
    its query/key/value kernels are the three ``(D, h, d_k)`` slices of ``W_qkv`` and its
    output kernel is ``W_o`` reshaped to ``(h, d_k, D)``.

    Args:
        num_heads: number of heads ``h``; the model width must be divisible by it.
        causal: mask the future (query ``i`` sees keys ``j <= i`` only), as in a decoder.
        dropout: dropout rate on the attention weights ``A`` (training only).
        kernel_initializer, bias_initializer: for ``W_qkv, W_o`` and ``b_qkv, b_o``.
    """

    def __init__(
        self,
        num_heads: int,
        *,
        causal: bool = False,
        dropout: float = 0.0,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.causal = bool(causal)
        self.dropout = float(dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.attention_dropout = keras.layers.Dropout(self.dropout, name="attention_dropout")

    def build(self, input_shape):
        width = input_shape[-1]
        if width is None or width % self.num_heads:
            raise KerasdlUsageError(
                f"{self.name}: the model width must be divisible by num_heads={self.num_heads}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.qkv_kernel = self.add_weight(
            name="qkv_kernel", shape=(width, 3 * width), initializer=self.kernel_initializer
        )
        self.qkv_bias = self.add_weight(
            name="qkv_bias", shape=(3 * width,), initializer=self.bias_initializer
        )
        self.output_kernel = self.add_weight(
            name="output_kernel", shape=(width, width), initializer=self.kernel_initializer
        )
        self.output_bias = self.add_weight(
            name="output_bias", shape=(width,), initializer=self.bias_initializer
        )

    def call(self, x, training=None):  # (B, T, D)
        tokens, width = x.shape[1], x.shape[2]
        if tokens is None:
            tokens = ops.shape(x)[1]
        heads, d_k = self.num_heads, width // self.num_heads
        qkv = ops.matmul(x, self.qkv_kernel) + self.qkv_bias  # (B, T, 3D)
        qkv = ops.reshape(qkv, (-1, tokens, 3, heads, d_k))  # (B, T, 3, h, d_k)
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))  # (3, B, h, T, d_k)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, h, T, d_k) each

        scores = ops.matmul(q, ops.swapaxes(k, -1, -2)) / math.sqrt(d_k)  # (B, h, T, T)
        if self.causal:
            keep = ops.tril(ops.ones((tokens, tokens), dtype="bool"))  # keys j <= query i
            scores = ops.where(keep, scores, _large_negative(scores.dtype))
        weights = ops.softmax(scores, axis=-1)  # (B, h, T, T), rows sum to 1
        weights = self.attention_dropout(weights, training=training)

        heads_out = ops.matmul(weights, v)  # (B, h, T, d_k)
        y = ops.reshape(ops.transpose(heads_out, (0, 2, 1, 3)), (-1, tokens, width))  # (B, T, D)
        return ops.matmul(y, self.output_kernel) + self.output_bias  # (B, T, D)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "causal": self.causal,
            "dropout": self.dropout,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }


@keras.saving.register_keras_serializable(package="kerasdl")
class ClassToken(keras.layers.Layer):
    """Prepend one learned token (the paper's ``[class]`` / BERT's ``[CLS]``):
    ``(B, N, D) -> (B, N + 1, D)``. Zero-initialised, as in the paper's code."""

    def build(self, input_shape):
        self.token = self.add_weight(name="token", shape=(1, 1, input_shape[-1]),
                                     initializer="zeros")

    def call(self, x):  # (B, N, D)
        token = ops.broadcast_to(ops.cast(self.token, x.dtype), (ops.shape(x)[0], 1, x.shape[-1]))
        return ops.concatenate([token, x], axis=1)  # (B, N + 1, D)

    def compute_output_shape(self, input_shape):
        tokens = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], tokens, input_shape[2])


@keras.saving.register_keras_serializable(package="kerasdl")
class PositionEmbedding(keras.layers.Layer):
    """Add a learned ``(T, D)`` position embedding to a ``(B, T, D)`` token sequence.

    Learned 1-D embeddings, as in the paper (it found 2-D-aware variants no better);
    initialised N(0, 0.02) as in timm.
    """

    def __init__(self, stddev: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.stddev = float(stddev)

    def build(self, input_shape):
        self.embedding = self.add_weight(
            name="embedding",
            shape=tuple(input_shape[1:]),
            initializer=keras.initializers.RandomNormal(stddev=self.stddev),
        )

    def call(self, x):  # (B, T, D)
        return x + ops.cast(self.embedding, x.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


@keras.saving.register_keras_serializable(package="kerasdl")
class TokenPooling(keras.layers.Layer):
    """``(B, T, D) -> (B, D)``: the first token (``mode="first"``, the [class] token), or the
    mean / max (``"mean"`` / ``"max"``) over the tokens after the first ``skip`` (skip the
    [class] token so that pooling sees image patches only)."""

    MODES = ("first", "mean", "max")

    def __init__(self, mode: str = "mean", skip: int = 0, **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise KerasdlUsageError(f"TokenPooling mode must be one of {self.MODES}. "
                                    f"Received: mode={mode!r}")
        self.mode, self.skip = mode, int(skip)

    def call(self, x):  # (B, T, D)
        if self.mode == "first":
            return x[:, 0]
        x = x[:, self.skip:]
        return ops.mean(x, axis=1) if self.mode == "mean" else ops.max(x, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "skip": self.skip}


def check_patch_grid(model: str, input_shape: tuple, patch_size: int) -> tuple[int, int]:
    """``(H, W, C)`` with H and W positive multiples of ``patch_size`` -> the patch grid."""
    if (
        len(input_shape) != 3
        or input_shape[0] % patch_size
        or input_shape[1] % patch_size
    ):
        raise KerasdlUsageError(
            f"{model} needs an image input of shape (height, width, channels) with height and "
            f"width multiples of the patch size {patch_size}. Received: input_shape={input_shape}"
        )
    return input_shape[0] // patch_size, input_shape[1] // patch_size


def patch_embedding(x, width: int, patch_size: int, *, name: str, bias_initializer="zeros"):
    """Cut ``(B, H, W, C)`` into P x P patches and project each linearly to ``width``:
    one ``P x P`` conv with stride ``P`` (the paper's ``E``), then ``(B, N, D)`` tokens."""
    x = keras.layers.Conv2D(width, patch_size, strides=patch_size, bias_initializer=bias_initializer,
                            name=f"{name}_patches")(x)
    grid_h, grid_w = x.shape[1], x.shape[2]  # (B, H/P, W/P, D)
    return keras.layers.Reshape((grid_h * grid_w, width), name=f"{name}_tokens")(x)  # (B, N, D)


def features_pool(x, pooling: str | None, *, skip: int = 0):
    """Feature-extraction pooling for token models: ``None`` keeps ``(B, T, D)``;
    ``"avg"`` / ``"max"`` pool the tokens after the first ``skip`` to ``(B, D)``."""
    if pooling is None:
        return x
    mode = {"avg": "mean", "max": "max"}[pooling]
    return TokenPooling(mode, skip=skip, name=f"features_{pooling}pool")(x)


def ViT(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    patch_size: int = 16,
    depth: int = 12,
    width: int = 768,
    heads: int = 12,
    mlp_dim: int = 3072,
    classifier: str = "token",
    dropout: float = 0.0,
    attention_dropout: float = 0.0,
    attention: str = "custom",
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "vit",
) -> keras.Model:
    """Build a Vision Transformer as a functional ``keras.Model`` with logits output.

    Args:
        input_shape: ``(height, width, channels)``, height and width multiples of ``patch_size``.
        num_classes: logits size; 1 gives a single linear output (regression).
        patch_size: side ``P`` of the square patches (16 in ViT-B/16).
        depth: number of Transformer blocks.
        width: token dimension ``D`` (the paper's "hidden size").
        heads: attention heads; ``width`` must be divisible by it.
        mlp_dim: hidden units of each block's MLP (4 D in the paper's models).
        classifier: ``"token"`` (a learned [class] token, the paper's default) or ``"gap"``
            (no [class] token; the mean of the patch tokens feeds the head).
        dropout: rate after the position embedding, the attention output and each MLP dense
            layer (the paper: "after every dense layer except the qkv-projections").
        attention_dropout: dropout rate on the attention weights.
        attention: ``"custom"`` (:class:`MultiHeadSelfAttention`, the formulas written out)
            or ``"keras"`` (``keras.layers.MultiHeadAttention``); same parameters.
        include_top: False drops the head and returns the encoded, layer-normed tokens
            ``(B, T, D)`` (T includes the [class] token first when ``classifier="token"``).
        pooling: with ``include_top=False``: None (the tokens), ``"avg"`` or ``"max"`` over
            the patch tokens (the [class] token excluded) -> ``(B, D)``.
        name: the model's name (also used in error messages).
    """
    input_shape = tuple(input_shape)
    patch_size = check_int(name, "patch_size", patch_size, minimum=1)
    check_patch_grid(name, input_shape, patch_size)
    check_top(name, include_top, pooling)
    depth = check_int(name, "depth", depth, minimum=1)
    width = check_int(name, "width", width, minimum=1)
    heads = check_int(name, "heads", heads, minimum=1)
    if width % heads:
        raise KerasdlUsageError(
            f"{name}: width must be divisible by heads (each head gets width / heads "
            f"dimensions). Received: width={width}, heads={heads}"
        )
    mlp_dim = check_int(name, "mlp_dim", mlp_dim, minimum=1)
    check_choice(name, "classifier", classifier, CLASSIFIERS)
    check_choice(name, "attention", attention, ATTENTIONS)
    rate = check_rate(name, "dropout", dropout)
    attention_rate = check_rate(name, "attention_dropout", attention_dropout)

    inputs = keras.Input(shape=input_shape, name="input")  # (B, H, W, C)
    x = patch_embedding(inputs, width, patch_size, name="embed")  # (B, N, D)
    prefix = 0  # tokens before the patch tokens
    if classifier == "token":
        x = ClassToken(name="embed_class_token")(x)  # (B, N + 1, D)
        prefix = 1
    x = PositionEmbedding(name="embed_position")(x)  # (B, T, D)
    if rate:
        x = keras.layers.Dropout(rate, name="embed_dropout")(x)

    for i in range(1, depth + 1):
        block = f"block{i}"
        y = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"{block}_norm1")(x)
        if attention == "custom":
            y = MultiHeadSelfAttention(heads, dropout=attention_rate, name=f"{block}_attn")(y)
        else:
            y = keras.layers.MultiHeadAttention(
                heads, key_dim=width // heads, dropout=attention_rate, name=f"{block}_attn"
            )(y, y)  # (B, T, D)
        if rate:
            y = keras.layers.Dropout(rate, name=f"{block}_attn_dropout")(y)
        x = keras.layers.Add(name=f"{block}_add1")([x, y])  # (B, T, D)

        y = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"{block}_norm2")(x)
        y = keras.layers.Dense(mlp_dim, activation="gelu", name=f"{block}_mlp_fc1")(y)
        if rate:
            y = keras.layers.Dropout(rate, name=f"{block}_mlp_dropout1")(y)
        y = keras.layers.Dense(width, name=f"{block}_mlp_fc2")(y)  # (B, T, D)
        if rate:
            y = keras.layers.Dropout(rate, name=f"{block}_mlp_dropout2")(y)
        x = keras.layers.Add(name=f"{block}_add2")([x, y])  # (B, T, D)

    x = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="head_norm")(x)
    if not include_top:
        return keras.Model(inputs, features_pool(x, pooling, skip=prefix), name=name)
    mode = "first" if classifier == "token" else "mean"
    x = TokenPooling(mode, name="head_pool")(x)  # (B, D)
    x = logits_head(x, num_classes)  # (B, K)
    return keras.Model(inputs, x, name=name)


def _vit_entry(variant: str, default_input_shape, default_num_classes, notes: str):
    patch_size, depth, width, heads, mlp_dim = VIT_CONFIGS[variant]

    @register_model(
        variant,
        builder=ViT,
        family="vit",
        task="classification",
        paper="Dosovitskiy et al. 2021",
        default_input_shape=default_input_shape,
        default_num_classes=default_num_classes,
        notes=notes,
        smoke_input_shape=(32, 32, 3),
    )
    def entry(input_shape, num_classes, **overrides):
        preset = dict(patch_size=patch_size, depth=depth, width=width, heads=heads,
                      mlp_dim=mlp_dim, name=variant)
        return ViT(input_shape, num_classes, **{**preset, **overrides})

    entry.__name__ = entry.__qualname__ = variant
    entry.__doc__ = f"{variant}: ViT with patch {patch_size}, depth {depth}, width {width}."
    return entry


vit_b16 = _vit_entry(
    "vit_b16", (224, 224, 3), 1000,
    "ViT-Base/16: 16x16 patches, 12 blocks, width 768, 12 heads, MLP 3072; 86,567,656 "
    "parameters at 224x224x3 / 1000 classes (timm vit_base_patch16_224). Input sides must be "
    "multiples of 16.",
)
vit_s16 = _vit_entry(
    "vit_s16", (224, 224, 3), 1000,
    "ViT-Small/16 (DeiT-S): 12 blocks, width 384, 6 heads, MLP 1536; 22,050,664 parameters "
    "at 224x224x3 / 1000 classes (timm vit_small_patch16_224).",
)
vit_ti16 = _vit_entry(
    "vit_ti16", (224, 224, 3), 1000,
    "ViT-Tiny/16 (DeiT-Ti): 12 blocks, width 192, 3 heads, MLP 768; 5,717,416 parameters "
    "at 224x224x3 / 1000 classes (timm vit_tiny_patch16_224).",
)
vit_tiny_patch4_32 = _vit_entry(
    "vit_tiny_patch4_32", (32, 32, 3), 10,
    "CIFAR-size ViT: 4x4 patches (65 tokens at 32x32), 6 blocks, width 192, 3 heads, MLP 768; "
    "2,693,578 parameters at 32x32x3 / 10 classes. Train with strong augmentation.",
)
