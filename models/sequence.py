"""Sequence models: GPT decoders (softmax or FAVOR+ attention), recurrent language models and
sequence classifiers, on Keras 3 (``keras.layers`` / ``keras.ops``: TensorFlow, JAX, PyTorch).

Language models (registry role ``"lm"``, task ``"lm"``) share one contract::

    model = build_model("gpt_nano", input_shape=(T,), num_classes=V)
    logits = model(tokens)        # tokens (B, t) int32, 1 <= t <= T  ->  logits (B, t, V) float32

The input is ``keras.Input((None,), dtype="int32", name="tokens")``: ``T`` (the block size) only
sizes the learned position table, so generation can feed growing prefixes; the output layer is
named ``logits`` and logit ``[b, i]`` predicts token ``i + 1`` from tokens ``0..i`` (causal).
:func:`lm_block_size` reads ``T`` back from a built model.

**GPT** (:func:`GPT`): Radford, Narasimhan, Salimans & Sutskever 2018, "Improving language
understanding by generative pre-training" (GPT); Radford et al. 2019, "Language models are
unsupervised multitask learners" (GPT-2, pre-LayerNorm). The layout and the reference figures
are those of Karpathy's nanoGPT (``model.py``)::

    embed_tokens (V, E) + embed_position (T, E) -> embed_dropout
    block{i}, i = 1..n_layer:   x = x + attn(ln_1(x));   x = x + mlp(ln_2(x))
        block{i}_attn: qkv Dense(3E) -> causal multi-head attention (n_head heads) with dropout
                       on the attention weights -> proj Dense(E) -> residual dropout
        block{i}_mlp:  fc Dense(4E) -> GELU (tanh approximation, GPT-2's) -> proj Dense(E) -> dropout
    ln_f -> logits: the token embedding transposed (tie_weights=True) or Dense(V, no bias)

``bias=False`` (nanoGPT's training default) drops every Dense bias and the LayerNorm betas
(epsilon 1e-5, PyTorch's). Initialisation as GPT-2 / nanoGPT: N(0, 0.02) for every kernel and
both embeddings, N(0, 0.02 / sqrt(2 n_layer)) for the two residual projections (``proj``),
zero biases. Keras forbids ``/`` in layer names, so the hierarchy is ``block1_attn`` (a layer)
holding the sub-layers ``qkv`` and ``proj``: weight paths ``block1_attn/qkv/kernel``,
``block1_mlp/fc/kernel``, ``embed_tokens/embeddings``. (nanoGPT uses PyTorch's exact
``nn.GELU()``; ``approximate_gelu=False`` gives that one.)

Parameters (tied, no biases): ``V E + T E + n_layer (12 E^2 + 2 E) + E``; ``bias=True`` adds
``n_layer 11 E + E``; ``tie_weights=False`` adds ``V E`` (:func:`gpt_param_count`). nanoGPT's
printed ``get_num_params()`` is the same count minus the position table ``T E``.

Presets (parameters at V = 65, the Tiny-Shakespeare character vocabulary):

=================  ==================  =====  =======  =====  ===========  ========================
preset             layers x heads x E  block  dropout  bias   attention    parameters at V = 65
=================  ==================  =====  =======  =====  ===========  ========================
gpt_nano           4 x 4 x 128         64     0.0      False  softmax      804,096 (nanoGPT's CPU config)
gpt_shakespeare    6 x 6 x 384         256    0.2      False  softmax      10,745,088 (shakespeare_char)
gpt2_small         12 x 12 x 768       1024   0.0      True   softmax      85,892,352; 124,439,808 at V=50257
performer_nano     4 x 4 x 128         64     0.0      False  FAVOR+       804,096 + 8,192 fixed features
=================  ==================  =====  =======  =====  ===========  ========================

(nanoGPT prints 0.80M, 10.65M and 123.65M for the first three: its count leaves out the
position table.) ``gpt2_small`` defaults to GPT-2's vocabulary and block (50257, 1024); it
builds, it is not trained here.

**FAVOR+** (Choromanski et al. 2021, "Rethinking attention with Performers", ICLR):
``attention="favor"`` replaces ``softmax(Q K^T / sqrt(d)) V`` by the positive orthogonal
random-feature estimate, linear in T (:func:`favor_attention`). With ``x~ = x d^(-1/4)`` and the
fixed ``W`` (m, d) of :func:`orthogonal_random_features` (blocks of orthonormal rows scaled to
Gaussian norms, as their ``create_projection_matrix``, shared by the heads of a layer)::

    u(x)   = W x~ - |x~|^2 / 2                                   (m,)
    phi(q) = m^(-1/2) (exp(u(q) - max_j u_j(q)) + 1e-6)           (query: their stabiliser)
    phi(k) = m^(-1/2) exp(u(k) - c)                               (c: a shift that cancels)
    out_t  = sum_s phi(q_t).phi(k_s) v_s / sum_s phi(q_t).phi(k_s),  s <= t (causal) or all s

Their code shifts the keys by the max over the whole sequence; with the causal form that shift
(plus their additive 1e-6) lets a future key move past outputs a little. Here the keys carry no
additive constant and their shift is causal: every output ``t`` is computed relative to
``r_t = max_{s<=t} max_j u_j(k_s)`` (the shift cancels exactly in the ratio), so changing token
``t`` changes no output before ``t``, every factor is <= 1 (no overflow) and the denominator is
>= 1e-6 / m. The causal form runs in chunks of ``chunk`` positions (T padded to a multiple):
inside a chunk a masked (C x C) product, across chunks an exclusive cumulative sum of the
per-chunk states (B, H, T/C, m, d), each weighted relative to the first chunk's largest key
exponent (exact unless a later chunk's keys exceed it by more than 60 nats, where the weight is
clamped against float32 overflow): time and memory linear in T, no (T, T) tensor. The features
are drawn once at build from ``feature_seed`` (+ the block index), stored as a non-trainable
weight (``.keras`` archives keep them) and redrawn only by :func:`redraw_favor_features`.
``num_features`` m defaults to 64, a fixed number (the paper's analysis asks m = Theta(d log d):
d ln d = 111 for gpt_nano's heads of d = 32; pass num_features= for more). FAVOR+ has no
attention matrix, so no attention-weight dropout (the residual dropout stays).

**Recurrent LMs** (:func:`RNNLM`): ``embed_tokens`` (V, E) -> [dropout] -> ``num_layers`` x
SimpleRNN / LSTM / GRU (``return_sequences=True``, dropout after each, as Zaremba, Sutskever &
Vinyals 2014) -> ``logits`` Dense(V) (or the tied embedding when ``units == embedding_dim``).
The presets have two layers with E = units, sized to gpt_nano's parameter count at V = 65:
``lstm_lm`` 220 units 804,825, ``gru_lm`` 253 units 804,099 (Keras GRU, reset_after), ``rnn_lm``
432 units 803,585 -- gpt_nano has 804,096.

**Sequence classifiers** (role ``"sequence"``, task ``"sequence_classification"``): tokens
(B, T) int32 -> class logits (B, C) ``head_logits``; the vocabulary size is the third required
argument ``vocab_size`` (default 65). ``gpt_classifier``: the gpt_nano trunk, then the last
token's features (``pooling="last"``; the only position that saw the whole sequence) or their
mean -> Dense(C). ``lstm_classifier``: Embedding(128) -> LSTM(128) -> last state (or mean) ->
Dense(C).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import keras
import numpy as np
from keras import ops

from kerasdl.errors import KerasdlUsageError

from ._common import check_bool, check_choice, check_int, check_rate, check_shape
from .registry import register_presets

ATTENTIONS = ("softmax", "favor")
CELLS = ("rnn", "lstm", "gru")
POOLINGS = ("last", "mean")
LAYER_NORM_EPSILON = 1e-5  # PyTorch's default, as nanoGPT
INIT_STD = 0.02  # GPT-2 / nanoGPT
FAVOR_EPSILON = 1e-6  # the Performer code's numerical_stabilizer (queries)
_EXP_CLAMP = 60.0  # exp(60) ~ 1.1e26: T * |v| * exp(60) stays far below float32 max (3.4e38)

_SERIALIZABLE = keras.saving.register_keras_serializable(package="kerasdl")


# --------------------------------------------------------------------------- attention functions


def _large_negative(dtype) -> float:
    """A finite stand-in for -inf in masked softmax inputs (float16 tops out at 65504)."""
    return -3.0e4 if keras.backend.standardize_dtype(dtype) == "float16" else -1.0e9


def _causal_mask(length):
    """``(t, t)`` bool, True where key ``j <= query i``."""
    i = ops.arange(length, dtype="int32")
    return ops.greater_equal(i[:, None], i[None, :])


def attention_weights(q, k, causal: bool = True):
    """``softmax(Q K^T / sqrt(d))`` with the future masked: (B, H, T, d) x2 -> (B, H, T, T)."""
    d = q.shape[-1]
    scores = ops.matmul(q, ops.swapaxes(k, -1, -2)) / math.sqrt(d)
    if causal:
        scores = ops.where(_causal_mask(ops.shape(q)[-2]), scores, _large_negative(scores.dtype))
    return ops.softmax(scores, axis=-1)


def softmax_attention(q, k, v, causal: bool = True):
    """Exact scaled dot-product attention (Vaswani et al. 2017): ``softmax(Q K^T / sqrt(d)) V``.

    ``q, k, v``: (B, H, T, d) -> (B, H, T, d). ``causal``: query ``i`` attends to keys ``j <= i``.
    Builds the (T, T) score matrix: time and memory quadratic in T.
    """
    return ops.matmul(attention_weights(q, k, causal), v)


def orthogonal_random_features(num_features: int, dim: int, seed: int = 0, scaling: int = 0) -> np.ndarray:
    """The FAVOR+ projection ``W`` (num_features, dim), float32 (Choromanski et al. 2021).

    Stacked blocks of ``dim`` orthonormal rows (the last block cut to the remaining rows), each row
    rescaled to the norm of an independent Gaussian vector (``scaling=0``: every row is marginally
    N(0, I), the unbiased estimator) or to ``sqrt(dim)`` (``scaling=1``). A block is the Q of a
    Gaussian matrix's QR with its columns multiplied by the signs of R's diagonal, which makes
    it Haar-distributed (Mezzadri 2007). A plain QR, as in the Performer code, ties Q's signs to
    the draw (with NumPy's LAPACK QR the first row of every block has a negative first
    coordinate): a bias that stops the approximation error from falling as m grows. Deterministic
    in ``seed`` (NumPy's ``default_rng``).
    """
    num_features, dim = int(num_features), int(dim)
    rng = np.random.default_rng(seed)
    blocks = []
    for _ in range(-(-num_features // dim)):
        q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
        blocks.append((q * np.sign(np.diag(r))).T)  # orthonormal rows, Haar-distributed
    w = np.concatenate(blocks, axis=0)[:num_features]
    if scaling == 0:
        norms = np.linalg.norm(rng.standard_normal((num_features, dim)), axis=1)
    elif scaling == 1:
        norms = np.full(num_features, math.sqrt(dim))
    else:
        raise ValueError(f"scaling must be 0 or 1, got {scaling!r}")
    return (norms[:, None] * w).astype("float32")


def _favor_exponents(x, features):
    """``u(x) = W x~ - |x~|^2 / 2`` with ``x~ = x d^(-1/4)``: (..., d) -> (..., m)."""
    x = x * (float(x.shape[-1]) ** -0.25)
    return ops.matmul(x, ops.transpose(features)) - 0.5 * ops.sum(ops.square(x), axis=-1, keepdims=True)


def favor_query_features(q, features):
    """``phi(q) = m^(-1/2) (exp(u(q) - max_j u_j(q)) + 1e-6)``, the positive random features of the
    queries (the per-row shift cancels exactly in the attention ratio)."""
    u = _favor_exponents(q, features)
    shift = ops.stop_gradient(ops.max(u, axis=-1, keepdims=True))
    return (ops.exp(u - shift) + FAVOR_EPSILON) / math.sqrt(features.shape[0])


def _exclusive_cumsum(x, axis: int):
    """``y[c] = sum_{c' < c} x[c']`` along ``axis`` (2 here)."""
    total = ops.cumsum(x, axis=axis)
    zeros = ops.zeros_like(x[:, :, :1])
    return ops.concatenate([zeros, total[:, :, :-1]], axis=axis)


def _favor_causal(q, k, v, features, chunk: int):
    """Causal FAVOR+ in chunks (see the module docstring); float32 (B, H, T, d) in and out."""
    t = ops.shape(q)[2]
    h, dv = q.shape[1], v.shape[-1]
    c = int(chunk)
    n = (t + c - 1) // c  # number of chunks (a tensor for a dynamic T on TensorFlow)
    pad = n * c - t
    widths = [[0, 0], [0, 0], [0, pad], [0, 0]]
    # Pad the raw inputs (not the features): a padded query then still has phi > 0, so no 0/0.
    q, k, v = (ops.pad(x, widths) for x in (q, k, v))

    def chunks(x):  # (B, H, n C, X) -> (B, H, n, C, X)
        return ops.reshape(x, (-1, h, n, c, x.shape[-1]))

    pq = chunks(favor_query_features(q, features))  # (B, H, n, C, m), <= m^-1/2 (1 + eps)
    uk = chunks(_favor_exponents(k, features))  # (B, H, n, C, m)
    vv = chunks(v)  # (B, H, n, C, d)
    neg = -1.0e30
    a = ops.stop_gradient(ops.max(uk, axis=-1))  # (B, H, n, C): each key's largest exponent
    psi = ops.exp(uk - a[..., None])  # phi(k) / exp(a), <= 1
    idx = ops.arange(c, dtype="int32")
    tril = ops.greater_equal(idx[:, None], idx[None, :])  # (C, C): key i' <= query i
    r_in = ops.max(ops.where(tril, a[..., None, :], neg), axis=-1)  # (B, H, n, C): max over i' <= i
    m_chunk = ops.max(a, axis=-1)  # (B, H, n)
    ci = ops.arange(n, dtype="int32")
    earlier = ops.less(ci[None, :], ci[:, None])  # (n, n): chunk c' < chunk c
    r_before = ops.max(ops.where(earlier, m_chunk[..., None, :], neg), axis=-1)  # (B, H, n)
    r = ops.maximum(r_before[..., None], r_in)  # (B, H, n, C): r_t = max_{s <= t} a_s
    # Inside a chunk: weight(t, s) = phi(q_t).psi_s exp(a_s - r_t), s <= t.
    decay = ops.exp(ops.where(tril, a[..., None, :] - r[..., :, None], neg))  # (B, H, n, C, C)
    weights = ops.matmul(pq, ops.swapaxes(psi, -1, -2)) * decay
    num = ops.matmul(weights, vv)  # (B, H, n, C, d)
    den = ops.sum(weights, axis=-1)  # (B, H, n, C)
    # Across chunks: per-chunk states relative to the chunk's max, rescaled to the first chunk's.
    w = psi * ops.exp(a - m_chunk[..., None])[..., None]  # (B, H, n, C, m), <= 1
    state = ops.matmul(ops.swapaxes(w, -1, -2), vv)  # (B, H, n, m, d)
    norm = ops.sum(w, axis=-2)  # (B, H, n, m)
    first = m_chunk[..., :1]  # (B, H, 1): a reference no later position changes
    g = ops.exp(ops.minimum(m_chunk - first, _EXP_CLAMP))  # (B, H, n)
    s_before = _exclusive_cumsum(state * g[..., None, None], axis=2)  # (B, H, n, m, d)
    z_before = _exclusive_cumsum(norm * g[..., None], axis=2)  # (B, H, n, m)
    scale = ops.exp(ops.minimum(first[..., None] - r, 0.0))  # (B, H, n, C): exp(first - r_t)
    num = num + ops.matmul(pq, s_before) * scale[..., None]
    den = den + ops.sum(pq * z_before[..., None, :], axis=-1) * scale
    out = num / den[..., None]  # (B, H, n, C, d)
    return ops.reshape(out, (-1, h, n * c, dv))[:, :, :t]


def favor_attention(q, k, v, features, causal: bool = True, chunk: int = 64):
    """FAVOR+ attention (Choromanski et al. 2021): the random-feature estimate of softmax attention.

    ``q, k, v``: (B, H, T, d); ``features``: the (m, d) projection of
    :func:`orthogonal_random_features`. Returns (B, H, T, d) in the dtype of ``q`` (computed in
    float32). ``causal=True``: the chunked prefix-sum form (``chunk`` positions per chunk; any T,
    padded inside); ``causal=False``: ``phi(Q) (phi(K)^T V)`` normalised. Time and memory are
    linear in T. The feature maps are in the module docstring.
    """
    dtype = q.dtype
    q, k, v = (ops.cast(x, "float32") for x in (q, k, v))
    features = ops.cast(features, "float32")
    if causal:
        out = _favor_causal(q, k, v, features, chunk)
    else:
        pq = favor_query_features(q, features)  # (B, H, T, m)
        uk = _favor_exponents(k, features)
        shift = ops.stop_gradient(ops.max(uk, axis=(-2, -1), keepdims=True))  # their key shift
        pk = ops.exp(uk - shift) / math.sqrt(features.shape[0])  # (B, H, T, m), <= m^-1/2
        kv = ops.matmul(ops.swapaxes(pk, -1, -2), v)  # (B, H, m, d)
        den = ops.matmul(pq, ops.sum(pk, axis=-2)[..., None])  # (B, H, T, 1)
        out = ops.matmul(pq, kv) / den
    return ops.cast(out, dtype)


# --------------------------------------------------------------------------- layers


@_SERIALIZABLE
class TokenEmbedding(keras.layers.Layer):
    """A token embedding table (V, E) that also serves as the tied output layer.

    ``layer(tokens)``: (B, t) ints -> (B, t, E); ``layer(x, reverse=True)``: (B, t, E) -> logits
    (B, t, V) = ``x E^T``, in float32 (Press & Wolf 2017, "Using the output embedding to improve
    language models"; GPT-2's weight tying). Called twice in one functional model, it is one
    layer with one weight. Initialised N(0, ``init_std``).
    """

    def __init__(self, vocab_size: int, width: int, init_std: float = INIT_STD, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.width, self.init_std = int(vocab_size), int(width), float(init_std)

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.vocab_size, self.width),
            initializer=keras.initializers.RandomNormal(stddev=self.init_std))

    def call(self, inputs, reverse: bool = False):
        if reverse:
            x = ops.cast(inputs, "float32")
            return ops.matmul(x, ops.transpose(ops.cast(self.embeddings, "float32")))
        out = ops.take(self.embeddings, ops.cast(inputs, "int32"), axis=0)
        return ops.cast(out, self.compute_dtype)

    def compute_output_spec(self, inputs, reverse: bool = False):
        if reverse:
            return keras.KerasTensor((*inputs.shape[:-1], self.vocab_size), dtype="float32")
        return keras.KerasTensor((*inputs.shape, self.width), dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "width": self.width,
                "init_std": self.init_std}


@_SERIALIZABLE
class LearnedPositions(keras.layers.Layer):
    """Adds a learned position table (``block_size``, E) to (B, t, E), t <= ``block_size``: row
    ``i`` to position ``i`` (GPT's ``wpe``). Initialised N(0, ``init_std``)."""

    def __init__(self, block_size: int, init_std: float = INIT_STD, **kwargs):
        super().__init__(**kwargs)
        self.block_size, self.init_std = int(block_size), float(init_std)

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.block_size, int(input_shape[-1])),
            initializer=keras.initializers.RandomNormal(stddev=self.init_std))

    def call(self, x):  # (B, t, E)
        t = ops.shape(x)[1]
        return x + ops.cast(self.embeddings[:t], x.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size, "init_std": self.init_std}


@_SERIALIZABLE
class CausalSelfAttention(keras.layers.Layer):
    """Multi-head self-attention, nanoGPT's ``CausalSelfAttention``: (B, t, E) -> (B, t, E).

    ``qkv`` Dense(3E) -> q, k, v split into ``num_heads`` heads of d = E / h -> softmax attention
    (:func:`softmax_attention`, dropout on the weights) or FAVOR+ (:func:`favor_attention`, with a
    fixed (m, d) ``features`` weight) -> heads concatenated -> ``proj`` Dense(E) -> dropout.
    Kernels N(0, ``init_std``), ``proj`` N(0, ``proj_std``), zero biases (``use_bias``).
    ``causal=False`` attends to every position (an encoder's attention).
    """

    def __init__(self, num_heads: int, *, use_bias: bool = False, dropout: float = 0.0,
                 attention: str = "softmax", causal: bool = True, num_features: int = 64,
                 chunk: int = 64, feature_seed: int = 0, init_std: float = INIT_STD,
                 proj_std: float = INIT_STD, **kwargs):
        super().__init__(**kwargs)
        if attention not in ATTENTIONS:
            raise KerasdlUsageError(f"{self.name}: attention must be one of {', '.join(ATTENTIONS)}. "
                                    f"Received: attention={attention!r}")
        self.num_heads, self.use_bias, self.dropout = int(num_heads), bool(use_bias), float(dropout)
        self.attention, self.causal = attention, bool(causal)
        self.num_features, self.chunk, self.feature_seed = int(num_features), int(chunk), int(feature_seed)
        self.init_std, self.proj_std = float(init_std), float(proj_std)
        self.draws = 0  # how often the features were redrawn since the build
        self.attn_dropout = keras.layers.Dropout(self.dropout, name="attn_dropout")
        self.resid_dropout = keras.layers.Dropout(self.dropout, name="resid_dropout")

    def build(self, input_shape):
        width = input_shape[-1]
        if width is None or width % self.num_heads:
            raise KerasdlUsageError(f"{self.name}: the width must be divisible by num_heads={self.num_heads}. "
                                    f"Received: input_shape={tuple(input_shape)}")
        self.width = int(width)
        self.qkv = keras.layers.Dense(3 * self.width, use_bias=self.use_bias, name="qkv",
                                      kernel_initializer=keras.initializers.RandomNormal(stddev=self.init_std))
        self.qkv.build(input_shape)
        self.proj = keras.layers.Dense(self.width, use_bias=self.use_bias, name="proj",
                                       kernel_initializer=keras.initializers.RandomNormal(stddev=self.proj_std))
        self.proj.build(input_shape)
        self.features = None
        if self.attention == "favor":
            self.features = self.add_weight(name="features", shape=(self.num_features, self.width // self.num_heads),
                                            initializer="zeros", trainable=False)
            self.features.assign(orthogonal_random_features(self.num_features, self.width // self.num_heads,
                                                            seed=self.feature_seed))

    def redraw_features(self, seed: int | None = None) -> None:
        """Draw new FAVOR+ features (``seed`` None: ``feature_seed + number of redraws``)."""
        if self.features is None:
            return
        self.draws += 1
        seed = self.feature_seed + 100_003 * self.draws if seed is None else int(seed)
        self.features.assign(orthogonal_random_features(self.num_features, self.width // self.num_heads, seed=seed))

    def call(self, x, training=None):  # (B, t, E)
        t = ops.shape(x)[1]
        h = self.num_heads
        d = self.width // h
        qkv = ops.reshape(self.qkv(x), (-1, t, 3, h, d))
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))  # (3, B, h, t, d)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if self.attention == "favor":
            y = favor_attention(q, k, v, self.features, causal=self.causal, chunk=self.chunk)
        else:
            weights = self.attn_dropout(attention_weights(q, k, self.causal), training=training)
            y = ops.matmul(weights, v)  # (B, h, t, d)
        y = ops.reshape(ops.transpose(y, (0, 2, 1, 3)), (-1, t, self.width))
        return self.resid_dropout(self.proj(y), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "use_bias": self.use_bias,
                "dropout": self.dropout, "attention": self.attention, "causal": self.causal,
                "num_features": self.num_features, "chunk": self.chunk, "feature_seed": self.feature_seed,
                "init_std": self.init_std, "proj_std": self.proj_std}


@_SERIALIZABLE
class TransformerMLP(keras.layers.Layer):
    """The block's MLP (nanoGPT's ``MLP``): ``fc`` Dense(hidden) -> GELU -> ``proj`` Dense(E) ->
    dropout; (B, t, E) -> (B, t, E). ``approximate_gelu``: GPT-2's tanh form (else the exact erf)."""

    def __init__(self, hidden_units: int, *, use_bias: bool = False, dropout: float = 0.0,
                 approximate_gelu: bool = True, init_std: float = INIT_STD, proj_std: float = INIT_STD,
                 **kwargs):
        super().__init__(**kwargs)
        self.hidden_units, self.use_bias, self.dropout = int(hidden_units), bool(use_bias), float(dropout)
        self.approximate_gelu = bool(approximate_gelu)
        self.init_std, self.proj_std = float(init_std), float(proj_std)
        self.drop = keras.layers.Dropout(self.dropout, name="dropout")

    def build(self, input_shape):
        width = int(input_shape[-1])
        self.fc = keras.layers.Dense(self.hidden_units, use_bias=self.use_bias, name="fc",
                                     kernel_initializer=keras.initializers.RandomNormal(stddev=self.init_std))
        self.fc.build(input_shape)
        self.proj = keras.layers.Dense(width, use_bias=self.use_bias, name="proj",
                                       kernel_initializer=keras.initializers.RandomNormal(stddev=self.proj_std))
        self.proj.build((*input_shape[:-1], self.hidden_units))

    def call(self, x, training=None):
        y = ops.gelu(self.fc(x), approximate=self.approximate_gelu)
        return self.drop(self.proj(y), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "hidden_units": self.hidden_units, "use_bias": self.use_bias,
                "dropout": self.dropout, "approximate_gelu": self.approximate_gelu,
                "init_std": self.init_std, "proj_std": self.proj_std}


@_SERIALIZABLE
class SequencePool(keras.layers.Layer):
    """(B, T, E) -> (B, E): the last position (``"last"``) or the mean over positions (``"mean"``)."""

    def __init__(self, mode: str = "last", **kwargs):
        super().__init__(**kwargs)
        if mode not in POOLINGS:
            raise KerasdlUsageError(f"SequencePool: mode must be one of {', '.join(POOLINGS)}. "
                                    f"Received: mode={mode!r}")
        self.mode = mode

    def call(self, x):
        return x[:, -1] if self.mode == "last" else ops.mean(x, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


# --------------------------------------------------------------------------- helpers


def gpt_param_count(vocab_size: int, block_size: int, n_layer: int, n_embd: int, *, bias: bool = False,
                    tie_weights: bool = True) -> int:
    """The GPT's trainable parameters: ``V E + T E + L (12 E^2 + 2 E) + E`` (tied, no bias);
    ``bias`` adds ``L 11 E + E``, untied adds ``V E``. nanoGPT's ``get_num_params()`` = this - T E."""
    v, t, n, e = vocab_size, block_size, n_layer, n_embd
    count = v * e + t * e + n * (12 * e * e + 2 * e) + e
    if bias:
        count += n * 11 * e + e
    if not tie_weights:
        count += v * e
    return count


def lm_block_size(model: keras.Model) -> int | None:
    """The block size T of a GPT built here (its position table's rows); None for an RNN LM."""
    for layer in model.layers:
        if isinstance(layer, LearnedPositions):
            return layer.block_size
    return None


def redraw_favor_features(model: keras.Model, seed: int | None = None) -> int:
    """Redraw the FAVOR+ features of every favor attention layer of ``model`` (block ``i`` gets
    ``seed + i`` when ``seed`` is given); returns how many layers were redrawn."""
    count = 0
    for layer in model.layers:
        if isinstance(layer, CausalSelfAttention) and layer.features is not None:
            layer.redraw_features(None if seed is None else int(seed) + count)
            count += 1
    return count


def _block_size(name: str, input_shape: Any) -> int:
    shape = check_shape(name, "input_shape", input_shape)
    if len(shape) != 1:
        raise KerasdlUsageError(f"{name} takes token sequences (T,) (T: the block size). "
                                f"Received: input_shape={shape}")
    return shape[0]


def _float32_logits(x, vocab_size: int, embedding: TokenEmbedding | None, *, use_bias: bool, init_std=None):
    """The ``logits`` layer: the tied embedding (``embedding``) or a float32 Dense(V)."""
    if embedding is not None:
        return keras.layers.Activation("linear", dtype="float32", name="logits")(embedding(x, reverse=True))
    init = (keras.initializers.RandomNormal(stddev=init_std) if init_std is not None else "glorot_uniform")
    return keras.layers.Dense(vocab_size, use_bias=use_bias, kernel_initializer=init, dtype="float32",
                              name="logits")(x)


def _gpt_trunk(tokens, vocab_size: int, block_size: int, *, n_layer: int, n_head: int, n_embd: int,
               dropout: float, bias: bool, attention: str, num_features: int, chunk: int, feature_seed: int,
               approximate_gelu: bool):
    """Embeddings, ``n_layer`` pre-LN blocks and ``ln_f``: (B, t) -> (B, t, E); also the embedding."""
    wte = TokenEmbedding(vocab_size, n_embd, name="embed_tokens")
    x = LearnedPositions(block_size, name="embed_position")(wte(tokens))
    if dropout:
        x = keras.layers.Dropout(dropout, name="embed_dropout")(x)
    proj_std = INIT_STD / math.sqrt(2 * n_layer)
    for i in range(1, n_layer + 1):
        block = f"block{i}"
        y = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, center=bias, name=f"{block}_ln_1")(x)
        y = CausalSelfAttention(n_head, use_bias=bias, dropout=dropout, attention=attention,
                                num_features=num_features, chunk=chunk, feature_seed=feature_seed + i - 1,
                                proj_std=proj_std, name=f"{block}_attn")(y)
        x = keras.layers.Add(name=f"{block}_add1")([x, y])
        y = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, center=bias, name=f"{block}_ln_2")(x)
        y = TransformerMLP(4 * n_embd, use_bias=bias, dropout=dropout, approximate_gelu=approximate_gelu,
                           proj_std=proj_std, name=f"{block}_mlp")(y)
        x = keras.layers.Add(name=f"{block}_add2")([x, y])
    x = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, center=bias, name="ln_f")(x)
    return x, wte


def _check_gpt(name, *, n_layer, n_head, n_embd, dropout, bias, attention, num_features, chunk, feature_seed,
               approximate_gelu) -> dict:
    n_layer = check_int(name, "n_layer", n_layer, minimum=1)
    n_head = check_int(name, "n_head", n_head, minimum=1)
    n_embd = check_int(name, "n_embd", n_embd, minimum=1)
    if n_embd % n_head:
        raise KerasdlUsageError(f"{name}: n_embd must be divisible by n_head (each head gets n_embd / n_head "
                                f"dimensions). Received: n_embd={n_embd}, n_head={n_head}")
    return dict(
        n_layer=n_layer, n_head=n_head, n_embd=n_embd, dropout=check_rate(name, "dropout", dropout),
        bias=check_bool(name, "bias", bias), attention=check_choice(name, "attention", attention, ATTENTIONS),
        num_features=check_int(name, "num_features", num_features, minimum=1),
        chunk=check_int(name, "chunk", chunk, minimum=1),
        feature_seed=check_int(name, "feature_seed", feature_seed, minimum=0),
        approximate_gelu=check_bool(name, "approximate_gelu", approximate_gelu))


# --------------------------------------------------------------------------- builders


def GPT(input_shape: Sequence[int], num_classes: int, *, n_layer: int = 4, n_head: int = 4, n_embd: int = 128,
        dropout: float = 0.0, bias: bool = False, tie_weights: bool = True, attention: str = "softmax",
        num_features: int = 64, chunk: int = 64, feature_seed: int = 0, approximate_gelu: bool = True,
        name: str = "gpt") -> keras.Model:
    """A GPT decoder language model (nanoGPT's layout; see the module docstring).

    Args:
        input_shape: ``(T,)``, the block size: the position table's rows and the longest input.
        num_classes: the vocabulary size V (token ids 0..V-1 in, V logits out per position).
        n_layer, n_head, n_embd: blocks, heads and width E (E divisible by n_head).
        dropout: after the embeddings, on the attention weights, after each residual branch.
        bias: biases in every Dense and LayerNorm (False: nanoGPT's default, none).
        tie_weights: the output layer is the token embedding transposed (GPT-2, nanoGPT).
        attention: ``"softmax"`` (exact) or ``"favor"`` (FAVOR+, linear in T).
        num_features, chunk, feature_seed: FAVOR+'s m, chunk length and feature seed.
        approximate_gelu: GPT-2's tanh GELU (True) or the exact erf GELU (nanoGPT's nn.GELU).
        name: the model's name.

    Returns a model ``tokens`` (B, t) int32, t <= T -> ``logits`` (B, t, V) float32.
    """
    block_size = _block_size(name, input_shape)
    vocab = check_int(name, "num_classes", num_classes, minimum=1)
    check_bool(name, "tie_weights", tie_weights)
    cfg = _check_gpt(name, n_layer=n_layer, n_head=n_head, n_embd=n_embd, dropout=dropout, bias=bias,
                     attention=attention, num_features=num_features, chunk=chunk, feature_seed=feature_seed,
                     approximate_gelu=approximate_gelu)
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x, wte = _gpt_trunk(tokens, vocab, block_size, **cfg)
    logits = _float32_logits(x, vocab, wte if tie_weights else None, use_bias=False, init_std=INIT_STD)
    return keras.Model(tokens, logits, name=name)


def _rnn_layer(cell: str, units: int, *, return_sequences: bool, name: str):
    layer = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
    return layer(units, return_sequences=return_sequences, name=name)


def _check_rnn(name, cell, embedding_dim, units, num_layers, dropout):
    check_choice(name, "cell", cell, CELLS)
    units = check_int(name, "units", units, minimum=1)
    embedding_dim = units if embedding_dim is None else check_int(name, "embedding_dim", embedding_dim, minimum=1)
    return (embedding_dim, units, check_int(name, "num_layers", num_layers, minimum=1),
            check_rate(name, "dropout", dropout))


def RNNLM(input_shape: Sequence[int], num_classes: int, *, cell: str = "lstm", embedding_dim: int | None = None,
          units: int = 220, num_layers: int = 2, dropout: float = 0.0, tie_weights: bool = False,
          name: str = "lstm_lm") -> keras.Model:
    """A recurrent language model: Embedding(V, E) -> ``num_layers`` x ``cell`` -> Dense(V).

    ``cell``: ``"rnn"`` (Elman's SimpleRNN, tanh), ``"lstm"`` (Hochreiter & Schmidhuber 1997) or
    ``"gru"`` (Cho et al. 2014). ``embedding_dim`` None: ``units``. ``dropout``: after the
    embedding and after each recurrent layer (Zaremba et al. 2014). ``tie_weights``: the output
    layer is the embedding transposed (needs ``units == embedding_dim``); else a Dense(V) with
    bias. ``input_shape`` (T,) is only checked: any length runs. Same contract as :func:`GPT`.
    """
    _block_size(name, input_shape)
    vocab = check_int(name, "num_classes", num_classes, minimum=1)
    embedding_dim, units, num_layers, dropout = _check_rnn(name, cell, embedding_dim, units, num_layers, dropout)
    if check_bool(name, "tie_weights", tie_weights) and units != embedding_dim:
        raise KerasdlUsageError(f"{name}: tie_weights needs units == embedding_dim. "
                                f"Received: units={units}, embedding_dim={embedding_dim}")
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    wte = TokenEmbedding(vocab, embedding_dim, init_std=0.05, name="embed_tokens")
    x = wte(tokens)
    if dropout:
        x = keras.layers.Dropout(dropout, name="embed_dropout")(x)
    for i in range(1, num_layers + 1):
        x = _rnn_layer(cell, units, return_sequences=True, name=f"rnn{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"rnn{i}_dropout")(x)
    logits = _float32_logits(x, vocab, wte if tie_weights else None, use_bias=True)
    return keras.Model(tokens, logits, name=name)


def GPTClassifier(input_shape: Sequence[int], num_classes: int, vocab_size: int, *, n_layer: int = 4,
                  n_head: int = 4, n_embd: int = 128, dropout: float = 0.0, bias: bool = False,
                  attention: str = "softmax", num_features: int = 64, chunk: int = 64, feature_seed: int = 0,
                  approximate_gelu: bool = True, pooling: str = "last", name: str = "gpt_classifier") -> keras.Model:
    """A sequence classifier on the GPT trunk: tokens (B, T) -> ``ln_f`` features -> the last
    position's (``pooling="last"``) or the mean (``"mean"``) -> ``head_logits`` Dense(C)."""
    block_size = _block_size(name, input_shape)
    num_classes = check_int(name, "num_classes", num_classes, minimum=1)
    vocab = check_int(name, "vocab_size", vocab_size, minimum=1)
    check_choice(name, "pooling", pooling, POOLINGS)
    cfg = _check_gpt(name, n_layer=n_layer, n_head=n_head, n_embd=n_embd, dropout=dropout, bias=bias,
                     attention=attention, num_features=num_features, chunk=chunk, feature_seed=feature_seed,
                     approximate_gelu=approximate_gelu)
    tokens = keras.Input((block_size,), dtype="int32", name="tokens")
    x, _ = _gpt_trunk(tokens, vocab, block_size, **cfg)
    x = SequencePool(pooling, name="head_pool")(x)
    logits = keras.layers.Dense(num_classes, kernel_initializer=keras.initializers.RandomNormal(stddev=INIT_STD),
                                dtype="float32", name="head_logits")(x)
    return keras.Model(tokens, logits, name=name)


def RNNClassifier(input_shape: Sequence[int], num_classes: int, vocab_size: int, *, cell: str = "lstm",
                  embedding_dim: int | None = None, units: int = 128, num_layers: int = 1, dropout: float = 0.0,
                  pooling: str = "last", name: str = "lstm_classifier") -> keras.Model:
    """A recurrent sequence classifier: Embedding -> ``num_layers`` x ``cell`` -> the last state
    (``pooling="last"``) or the mean of the outputs (``"mean"``) -> ``head_logits`` Dense(C)."""
    block_size = _block_size(name, input_shape)
    num_classes = check_int(name, "num_classes", num_classes, minimum=1)
    vocab = check_int(name, "vocab_size", vocab_size, minimum=1)
    check_choice(name, "pooling", pooling, POOLINGS)
    embedding_dim, units, num_layers, dropout = _check_rnn(name, cell, embedding_dim, units, num_layers, dropout)
    tokens = keras.Input((block_size,), dtype="int32", name="tokens")
    x = TokenEmbedding(vocab, embedding_dim, init_std=0.05, name="embed_tokens")(tokens)
    if dropout:
        x = keras.layers.Dropout(dropout, name="embed_dropout")(x)
    for i in range(1, num_layers + 1):
        last = i == num_layers and pooling == "last"
        x = _rnn_layer(cell, units, return_sequences=not last, name=f"rnn{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"rnn{i}_dropout")(x)
    if pooling == "mean":
        x = SequencePool("mean", name="head_pool")(x)
    logits = keras.layers.Dense(num_classes, dtype="float32", name="head_logits")(x)
    return keras.Model(tokens, logits, name=name)


# --------------------------------------------------------------------------- the registry

_GPT_PAPER = ("Radford et al. 2018 (GPT), 2019 (GPT-2, Language models are unsupervised multitask "
              "learners); the layout of Karpathy's nanoGPT")
_PERFORMER = "Choromanski et al. 2021 (ICLR), Rethinking attention with Performers"
_LM = dict(family="sequence", task="lm", role="lm", default_input_shape=(64,), default_num_classes=65,
           smoke_input_shape=(16,))

register_presets(GPT, {
    "gpt_nano": dict(
        paper=_GPT_PAPER,
        notes="nanoGPT's CPU config: 4 layers x 4 heads x 128, block 64, dropout 0, no biases, tied "
              "head; 804,096 parameters at V=65 (nanoGPT prints 0.80M: without the 8,192 positions).",
        preset=dict(n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False)),
    "gpt_shakespeare": dict(
        paper=_GPT_PAPER, default_input_shape=(256,),
        notes="nanoGPT's shakespeare_char config: 6 x 6 x 384, block 256, dropout 0.2, no biases, "
              "tied; 10,745,088 parameters at V=65 (nanoGPT prints 10.65M, without positions).",
        preset=dict(n_layer=6, n_head=6, n_embd=384, dropout=0.2, bias=False)),
    "gpt2_small": dict(
        paper=_GPT_PAPER, default_input_shape=(1024,), default_num_classes=50257,
        notes="GPT-2 small (124M): 12 x 12 x 768, block 1024, vocabulary 50257, biases, tied; "
              "124,439,808 parameters. Built, not trained here.",
        preset=dict(n_layer=12, n_head=12, n_embd=768, dropout=0.0, bias=True)),
    "performer_nano": dict(
        paper=_PERFORMER + "; " + _GPT_PAPER,
        notes="gpt_nano with causal FAVOR+ attention (64 orthogonal random features per layer, chunks "
              "of 64): 804,096 trainable parameters at V=65 + 8,192 fixed features.",
        preset=dict(n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False, attention="favor",
                    num_features=64, chunk=64)),
}, **_LM)

register_presets(RNNLM, {
    "lstm_lm": dict(
        paper="Hochreiter & Schmidhuber 1997 (LSTM); character LMs: Karpathy 2015 (char-rnn), "
              "Zaremba, Sutskever & Vinyals 2014 (dropout)",
        notes="Embedding 220 -> 2 x LSTM(220) -> Dense(V): 804,825 parameters at V=65 (gpt_nano's size).",
        preset=dict(cell="lstm", units=220, num_layers=2)),
    "gru_lm": dict(
        paper="Cho et al. 2014 (GRU), Learning phrase representations using RNN encoder-decoder",
        notes="Embedding 253 -> 2 x GRU(253) -> Dense(V): 804,099 parameters at V=65 (gpt_nano's size).",
        preset=dict(cell="gru", units=253, num_layers=2)),
    "rnn_lm": dict(
        paper="Elman 1990, Finding structure in time (simple recurrent network)",
        notes="Embedding 432 -> 2 x SimpleRNN(432, tanh) -> Dense(V): 803,585 parameters at V=65.",
        preset=dict(cell="rnn", units=432, num_layers=2)),
}, **_LM)

_SEQUENCE = dict(family="sequence", task="sequence_classification", role="sequence",
                 required=("input_shape", "num_classes", "vocab_size"), defaults={"vocab_size": 65},
                 default_input_shape=(64,), default_num_classes=2, smoke_input_shape=(16,))

register_presets(GPTClassifier, {
    "gpt_classifier": dict(
        paper=_GPT_PAPER,
        notes="gpt_nano's causal trunk (4 x 4 x 128) -> the last position's features -> Dense(C); "
              "804,354 parameters at V=65, C=2.",
        preset=dict(n_layer=4, n_head=4, n_embd=128, pooling="last")),
}, **_SEQUENCE)

register_presets(RNNClassifier, {
    "lstm_classifier": dict(
        paper="Hochreiter & Schmidhuber 1997 (LSTM)",
        notes="Embedding 128 -> LSTM(128) -> last state -> Dense(C): 140,162 parameters at V=65, C=2.",
        preset=dict(cell="lstm", units=128, num_layers=1, pooling="last")),
}, **_SEQUENCE)
