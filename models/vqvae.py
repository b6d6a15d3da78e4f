"""VQ-VAE components: the vector quantizer and a convolutional encoder / decoder pair.

van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete Representation Learning" (NeurIPS).
The encoder maps an image to a grid of vectors ``z_e(x)`` (h x w x D); the quantizer replaces each
vector by its nearest code ``e_k`` of a learnt codebook (K x D); the decoder maps the quantized
grid back to the image.

* :class:`VectorQuantizer` (a Keras layer): nearest code by squared Euclidean distance; the
  straight-through estimator ``z_q = z_e + stop_gradient(e - z_e)`` copies the decoder's gradient
  to the encoder (the paper's eq. 3); it adds, with ``add_loss``, the codebook term
  ``||sg[z_e] - e||^2`` and the commitment term ``beta ||z_e - sg[e]||^2`` (each a mean over every
  element), or with ``ema=True`` updates the codebook by exponential moving averages (the paper's
  appendix A.1) and adds the commitment term only.
* ``vq_encoder``: ``stages`` 4x4 stride-2 convolutions (28x28 -> 7x7 with the default 2), a 3x3
  convolution, ``res_blocks`` residual blocks (ReLU, 3x3 conv, ReLU, 1x1 conv, added to the
  input), a ReLU and a 1x1 convolution to D channels: the paper's encoder ("2 strided
  convolutional layers with stride 2 and window size 4 x 4, followed by two residual 3 x 3 blocks
  ... all having 256 hidden units") at a small width by default (``filters=64``,
  ``res_filters=32``).
* ``vq_decoder`` (the encoder's ``companion``): a 3x3 convolution from the code grid, the residual
  blocks, a ReLU and ``stages`` 4x4 stride-2 transposed convolutions, the last one to the image's
  channels (no output activation: the task trains it with squared error).

Layer names: ``input``, ``down{i}_conv`` / ``down{i}_relu``, ``mid_conv``, ``res{j}_relu1`` /
``res{j}_conv1`` / ``res{j}_relu2`` / ``res{j}_conv2`` / ``res{j}_add``, ``res_relu``, then
``code_conv`` (encoder) or ``up{i}_conv`` / ``up{i}_relu`` and ``output_conv`` (decoder).
Builders use ``keras.layers`` / ``keras.ops`` only.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
from keras import ops

from kerasdl.errors import KerasdlUsageError

from ._common import check_int, initializer, l2_regularizer
from .registry import register_model

VQ_FILTERS = 64  # hidden channels (the paper: 256)
VQ_RES_FILTERS = 32  # channels inside a residual block
VQ_RES_BLOCKS = 2
VQ_STAGES = 2  # stride-2 stages: 28x28 -> 7x7


# --------------------------------------------------------------------------- the quantizer

@keras.saving.register_keras_serializable(package="kerasdl")
class VectorQuantizer(keras.layers.Layer):
    """Nearest-code vector quantization with a straight-through gradient.

    Inputs ``(..., D)`` (e.g. ``(N, h, w, D)`` or ``(N, D)``); every D-vector ``z`` is replaced by
    the code ``e_k`` with ``k = argmin_j ||z - e_j||^2`` (ties: the lowest index). The output is
    ``z + stop_gradient(e_k - z)``: the value of ``e_k`` with the identity as gradient w.r.t. ``z``.
    ``call(z, return_indices=True)`` returns ``(quantized, indices)``, indices int32 of shape
    ``z.shape[:-1]``; :meth:`codes` gives the indices alone and :meth:`lookup` the codes of
    indices.

    Losses (``add_loss``, every call; means over all elements of ``z``):

    * ``ema=False``: ``mean((sg[z] - e_k)^2) + beta * mean((z - sg[e_k])^2)`` (codebook + commitment);
    * ``ema=True``: ``beta * mean((z - sg[e_k])^2)`` only. In a training call the codebook is
      updated instead (the paper's appendix A.1), with ``n_i`` the number of vectors assigned to
      code i in the batch and ``s_i`` their sum::

          N_i <- decay N_i + (1 - decay) n_i            (cluster_size)
          m_i <- decay m_i + (1 - decay) s_i            (code_sum)
          N~_i = (N_i + eps) / (sum_j N_j + K eps) * sum_j N_j    (Laplace smoothing)
          e_i <- m_i / N~_i

      ``N`` starts at 1 and ``m`` at the initial codebook (as if each code had been chosen once at
      its initial value), so ``e = m / N`` is defined from the first step and an unused code keeps
      its value (Sonnet's ``VectorQuantizerEMA`` debiases zero-initialised averages instead).

    Args:
        codebook_size: K, the number of codes.
        latent_dim: D, the size of each code (the input's last axis).
        beta: commitment weight (the paper: 0.25).
        ema: update the codebook by moving averages (then it is not trainable).
        decay: the moving averages' decay (gamma; the paper: 0.99).
        epsilon: Laplace smoothing of the cluster sizes.
    """

    def __init__(self, codebook_size: int, latent_dim: int, *, beta: float = 0.25, ema: bool = False,
                 decay: float = 0.99, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.codebook_size, self.latent_dim = int(codebook_size), int(latent_dim)
        self.beta, self.ema, self.decay, self.epsilon = float(beta), bool(ema), float(decay), float(epsilon)
        if self.codebook_size < 1 or self.latent_dim < 1:
            raise ValueError(f"codebook_size and latent_dim must be >= 1; got {codebook_size}, {latent_dim}")

    def build(self, input_shape):
        if input_shape[-1] is not None and int(input_shape[-1]) != self.latent_dim:
            raise ValueError(f"{self.name}: inputs end in {input_shape[-1]} channels; the codes have "
                             f"latent_dim={self.latent_dim}")
        k, d = self.codebook_size, self.latent_dim
        self.codebook = self.add_weight(
            shape=(k, d), name="codebook", trainable=not self.ema, autocast=False,
            initializer=keras.initializers.VarianceScaling(1.0, "fan_in", "uniform"))
        if self.ema:
            self.cluster_size = self.add_weight(shape=(k,), name="cluster_size", initializer="ones",
                                                trainable=False, autocast=False, aggregation="mean")
            self.code_sum = self.add_weight(shape=(k, d), name="code_sum", initializer="zeros",
                                            trainable=False, autocast=False, aggregation="mean")
            self.code_sum.assign(self.codebook.value)

    # -- pieces --------------------------------------------------------------------------------
    def _flat(self, z):
        return ops.reshape(ops.cast(z, "float32"), (-1, self.latent_dim))

    def distances(self, z):
        """Squared distances ``(M, K)`` of the M = prod(z.shape[:-1]) vectors to every code."""
        flat = self._flat(z)
        e = ops.cast(self.codebook, "float32")
        return (ops.sum(ops.square(flat), axis=1, keepdims=True) - 2.0 * ops.matmul(flat, ops.transpose(e))
                + ops.sum(ops.square(e), axis=1)[None, :])

    def codes(self, z):
        """The nearest code's index of every vector: int32 of shape ``z.shape[:-1]``."""
        idx = ops.cast(ops.argmin(self.distances(z), axis=1), "int32")
        return ops.reshape(idx, ops.shape(z)[:-1])

    def lookup(self, indices):
        """The code vectors ``(..., D)`` of integer ``indices``."""
        return ops.take(ops.cast(self.codebook, "float32"), ops.cast(indices, "int32"), axis=0)

    def _ema_update(self, flat, onehot):
        d = self.decay
        counts = ops.sum(onehot, axis=0)  # (K,)
        sums = ops.matmul(ops.transpose(onehot), flat)  # (K, D)
        size = d * self.cluster_size + (1.0 - d) * counts
        total = ops.sum(size)
        smoothed = (size + self.epsilon) / (total + self.codebook_size * self.epsilon) * total
        code_sum = d * self.code_sum + (1.0 - d) * sums
        self.cluster_size.assign(size)
        self.code_sum.assign(code_sum)
        self.codebook.assign(code_sum / smoothed[:, None])

    def call(self, inputs, training=None, return_indices=False):
        z = ops.cast(inputs, "float32")
        flat = self._flat(z)
        idx = ops.cast(ops.argmin(self.distances(z), axis=1), "int32")  # (M,)
        e = ops.take(ops.cast(self.codebook, "float32"), idx, axis=0)  # (M, D), before any update
        quantized = ops.reshape(e, ops.shape(z))
        commitment = self.beta * ops.mean(ops.square(z - ops.stop_gradient(quantized)))
        if self.ema:
            if training:
                self._ema_update(ops.stop_gradient(flat), ops.one_hot(idx, self.codebook_size, dtype="float32"))
            self.add_loss(commitment)
        else:
            self.add_loss(ops.mean(ops.square(ops.stop_gradient(z) - quantized)) + commitment)
        out = z + ops.stop_gradient(quantized - z)  # straight-through estimator
        if return_indices:
            return out, ops.reshape(idx, ops.shape(z)[:-1])
        return out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, inputs, training=None, return_indices=False):
        out = keras.KerasTensor(inputs.shape, dtype="float32")
        if return_indices:
            return out, keras.KerasTensor(inputs.shape[:-1], dtype="int32")
        return out

    def get_config(self):
        return {**super().get_config(), "codebook_size": self.codebook_size, "latent_dim": self.latent_dim,
                "beta": self.beta, "ema": self.ema, "decay": self.decay, "epsilon": self.epsilon}


# --------------------------------------------------------------------------- encoder / decoder

def check_vq_shape(model: str, shape: Sequence[int], stages: int = VQ_STAGES) -> tuple[int, ...]:
    """An (H, W, C) image shape whose sides ``stages`` stride-2 stages halve exactly."""
    shape = tuple(int(d) for d in shape)
    if len(shape) != 3:
        raise KerasdlUsageError(f"{model} needs (height, width, channels) images; use a dense_* encoder for "
                                f"vectors. Received: shape={shape}")
    factor = 2**stages
    if shape[0] % factor or shape[1] % factor:
        raise KerasdlUsageError(f"{model}: {stages} stride-2 stages need sides divisible by {factor} (28x28, "
                                f"32x32 and 8x8 work with 2). Received: shape={shape}")
    return shape


def _residual_stack(x, filters: int, res_filters: int, blocks: int, conv: dict):
    """``blocks`` x [ReLU -> 3x3 conv (res_filters) -> ReLU -> 1x1 conv (filters)] + skip, then ReLU."""
    for j in range(1, blocks + 1):
        h = keras.layers.ReLU(name=f"res{j}_relu1")(x)
        h = keras.layers.Conv2D(res_filters, 3, padding="same", name=f"res{j}_conv1", **conv)(h)
        h = keras.layers.ReLU(name=f"res{j}_relu2")(h)
        h = keras.layers.Conv2D(filters, 1, name=f"res{j}_conv2", **conv)(h)
        x = keras.layers.Add(name=f"res{j}_add")([x, h])
    return keras.layers.ReLU(name="res_relu")(x)


def _stage_filters(filters: int, stages: int) -> list[int]:
    """Channels of the stride-2 stages, first to last: doubling up to ``filters``."""
    return [max(1, filters // 2 ** (stages - i)) for i in range(1, stages + 1)]


def VQEncoder(
    input_shape: Sequence[int],
    latent_dim: int,
    *,
    filters: int = VQ_FILTERS,
    res_filters: int = VQ_RES_FILTERS,
    res_blocks: int = VQ_RES_BLOCKS,
    stages: int = VQ_STAGES,
    kernel_initializer: Any = "glorot_uniform",
    l2: float = 0.0,
    name: str = "vq_encoder",
) -> keras.Model:
    """The VQ-VAE encoder ``x (H, W, C) -> z_e (H / 2^stages, W / 2^stages, latent_dim)``.

    Args:
        input_shape: ``(H, W, C)``, sides divisible by ``2**stages``.
        latent_dim: D, the channels of the code grid (the codebook's vector size).
        filters: hidden channels (the paper: 256); the stride-2 stages double up to it.
        res_filters: channels inside each residual block.
        res_blocks: residual blocks (the paper: 2).
        stages: 4x4 stride-2 convolutions, each halving the sides (the paper: 2).
        kernel_initializer: Keras initializer for every kernel.
        l2: L2 penalty on every kernel; 0 disables it.
        name: the model's name.
    """
    latent_dim = check_int(name, "latent_dim", latent_dim, minimum=1)
    filters = check_int(name, "filters", filters, minimum=1)
    res_filters = check_int(name, "res_filters", res_filters, minimum=1)
    res_blocks = check_int(name, "res_blocks", res_blocks, minimum=0)
    stages = check_int(name, "stages", stages, minimum=1)
    shape = check_vq_shape(name, input_shape, stages)
    conv = dict(kernel_initializer=initializer(name, kernel_initializer), kernel_regularizer=l2_regularizer(name, l2))

    inputs = keras.Input(shape=shape, name="input")  # (B, H, W, C)
    x = inputs
    for i, f in enumerate(_stage_filters(filters, stages), start=1):
        x = keras.layers.Conv2D(f, 4, strides=2, padding="same", name=f"down{i}_conv", **conv)(x)  # sides / 2
        x = keras.layers.ReLU(name=f"down{i}_relu")(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", name="mid_conv", **conv)(x)  # (B, h, w, filters)
    x = _residual_stack(x, filters, res_filters, res_blocks, conv)
    z = keras.layers.Conv2D(latent_dim, 1, name="code_conv", **conv)(x)  # (B, h, w, D): z_e(x)
    return keras.Model(inputs, z, name=name)


def VQDecoder(
    latent_dim: int,
    output_shape: Sequence[int],
    *,
    filters: int = VQ_FILTERS,
    res_filters: int = VQ_RES_FILTERS,
    res_blocks: int = VQ_RES_BLOCKS,
    stages: int = VQ_STAGES,
    kernel_initializer: Any = "glorot_uniform",
    l2: float = 0.0,
    name: str = "vq_decoder",
) -> keras.Model:
    """The VQ-VAE decoder ``z_q (H / 2^stages, W / 2^stages, latent_dim) -> x_hat (H, W, C)``
    (no output activation). Arguments as for :func:`VQEncoder`; ``output_shape`` is ``(H, W, C)``."""
    latent_dim = check_int(name, "latent_dim", latent_dim, minimum=1)
    filters = check_int(name, "filters", filters, minimum=1)
    res_filters = check_int(name, "res_filters", res_filters, minimum=1)
    res_blocks = check_int(name, "res_blocks", res_blocks, minimum=0)
    stages = check_int(name, "stages", stages, minimum=1)
    h, w, c = check_vq_shape(name, output_shape, stages)
    conv = dict(kernel_initializer=initializer(name, kernel_initializer), kernel_regularizer=l2_regularizer(name, l2))

    inputs = keras.Input(shape=(h // 2**stages, w // 2**stages, latent_dim), name="input")  # (B, h, w, D)
    x = keras.layers.Conv2D(filters, 3, padding="same", name="mid_conv", **conv)(inputs)
    x = _residual_stack(x, filters, res_filters, res_blocks, conv)
    ups = list(reversed(_stage_filters(filters, stages)))[1:]  # the encoder's stages, mirrored
    for i, f in enumerate(ups, start=1):
        x = keras.layers.Conv2DTranspose(f, 4, strides=2, padding="same", name=f"up{i}_conv", **conv)(x)
        x = keras.layers.ReLU(name=f"up{i}_relu")(x)
    x = keras.layers.Conv2DTranspose(c, 4, strides=2, padding="same", name="output_conv", **conv)(x)  # (B, H, W, C)
    return keras.Model(inputs, x, name=name)


_VQ = "van den Oord, Vinyals & Kavukcuoglu 2017"


@register_model("vq_encoder", builder=VQEncoder, family="vqvae", task="vqvae", role="encoder", paper=_VQ,
                companion="vq_decoder", default_input_shape=(28, 28, 1), required=("input_shape", "latent_dim"),
                defaults={"latent_dim": 16},
                notes="4x4 stride-2 convs (32, 64) -> 3x3 conv -> 2 residual blocks -> 1x1 conv to a "
                      "(H/4, W/4, D) grid for the vector quantizer.")
def vq_encoder(input_shape, latent_dim, **overrides):
    """The VQ-VAE's convolutional encoder to a grid of D-vectors."""
    return VQEncoder(input_shape, latent_dim, **{"name": "vq_encoder", **overrides})


@register_model("vq_decoder", builder=VQDecoder, family="vqvae", task="vqvae", role="decoder", paper=_VQ,
                required=("latent_dim", "output_shape"), defaults={"latent_dim": 16, "output_shape": (28, 28, 1)},
                notes="3x3 conv -> 2 residual blocks -> 4x4 stride-2 transposed convs (32, C) from the code grid.")
def vq_decoder(latent_dim, output_shape, **overrides):
    """The VQ-VAE's decoder from the quantized grid, the mirror of vq_encoder."""
    return VQDecoder(latent_dim, output_shape, **{"name": "vq_decoder", **overrides})
