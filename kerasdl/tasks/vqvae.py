"""The VQ-VAE task (van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete Representation Learning").

``kerasdl train --task vqvae --model vq_encoder --dataset mnist5k`` trains an encoder (the
registry entry named by ``--model``, role ``encoder``), a :class:`~kerasdl.models.vqvae.VectorQuantizer`
with a codebook of ``codebook_size`` (K) vectors of size ``latent_dim`` (D) and the encoder's
companion decoder. ``vq_encoder`` maps an image to an h x w grid of codes (28x28 -> 7x7); a flat
encoder (``dense_encoder``) gives one code per example. The loss is the paper's eq. 3::

    L = ||x - D(z_q)||^2 + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2

with the straight-through gradient through the quantizer. The reconstruction term is the plain
mean squared error on the [0, 1] images (the paper divides it by the data's variance, which only
rescales the weight of the VQ terms); the VQ terms are means over every code element, as in the
authors' Sonnet code. ``ema=true`` replaces the codebook term by the exponential-moving-average
codebook update of the paper's appendix A.1 (``decay``).

Logs (``val_`` for validation): ``loss``, ``reconstruction`` (MSE), ``vq_loss`` (codebook +
commitment, or commitment alone with EMA), ``perplexity`` (``exp`` of the entropy of the batch's
code histogram: the number of codes used, weighted by use) and ``codebook_usage`` (the fraction
of the K codes used in the batch). The run keeps the epoch with the lowest ``val_loss``.

**The prior is a simple one, not the paper's.** The paper fits an autoregressive PixelCNN over the
code grid; this task fits an *independent categorical distribution per grid position* to the
codes of the train split (counts plus add-one Laplace smoothing): sampling draws every position's
code independently (``tf.random.stateless_categorical``, seed ``(seed, 0)``), looks the codes up
in the codebook and decodes them. Samples are therefore blurrier / less coherent than a PixelCNN
prior's; the figures measure the autoencoder and this prior together. The prior is fitted on first
use from the model's weights (identified by a sha256 of the encoder's weights and the codebook),
written to ``<run>/prior.npz`` after training (``counts``, ``laplace``, ``fingerprint``; read with
``allow_pickle=False``) and read back by a fresh process when the fingerprint matches; otherwise
it is fitted again, which gives the same counts.

``evaluate`` adds to the generative scores (FID, KID, precision / recall; see
:mod:`kerasdl.tasks.generative`) the test split's ``codebook_usage``, ``perplexity``,
``reconstruction_mse`` and ``prior_nll`` (nats per code position of the test codes under the prior).
The export: ``serving_default`` raw inputs -> ``{"reconstruction"}``, ``encode`` -> ``{"codes"}``
(int32 grid), ``decode`` codes -> ``{"reconstruction"}`` and ``sample`` (n, seed) -> ``{"samples",
"codes"}`` with the prior's log-probabilities baked into the graph (plain TensorFlow, no kerasdl).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import keras
import numpy as np
from keras import ops

from kerasdl.engine.distribute import num_replicas
from kerasdl.errors import KerasdlUsageError
from kerasdl.tasks.base import Endpoint, register_task
from kerasdl.tasks.generative import GenerativeTask

__all__ = ["VQVAE", "VQVAETask", "code_stats", "count_codes", "smoothed_log_probs", "draw_codes", "parts", "PRIOR_FILE",
           "LAPLACE"]

PRIOR_FILE = "prior.npz"  # in the run directory
LAPLACE = 1.0  # add-one smoothing of the prior's counts
EXAMPLES = 16  # examples in the reconstruction grid


# --------------------------------------------------------------------------- code statistics

def code_stats(codes: np.ndarray, k: int) -> tuple[float, float]:
    """``(perplexity, usage)`` of integer ``codes``: ``exp`` of the entropy (nats) of their
    histogram over the K codes, and the fraction of the K codes that occur."""
    counts = np.bincount(np.asarray(codes, np.int64).ravel(), minlength=k).astype(np.float64)
    p = counts / max(counts.sum(), 1.0)
    nz = p[p > 0]
    return float(np.exp(-np.sum(nz * np.log(nz)))), float(np.mean(counts > 0))


def count_codes(codes: np.ndarray, k: int) -> np.ndarray:
    """Per grid position, how often each code occurs: int64 ``(*grid, K)`` from codes ``(N, *grid)``."""
    codes = np.asarray(codes, np.int64)
    n, grid = codes.shape[0], codes.shape[1:]
    flat = codes.reshape(n, -1)  # (N, P)
    counts = np.zeros((flat.shape[1], k), np.int64)
    np.add.at(counts, (np.broadcast_to(np.arange(flat.shape[1]), flat.shape), flat), 1)
    return counts.reshape(grid + (k,))


def smoothed_log_probs(counts: np.ndarray, alpha: float = LAPLACE) -> np.ndarray:
    """``log p`` (float32, same shape) of the smoothed categorical: (count + alpha) / (N + K alpha)."""
    counts = np.asarray(counts, np.float64)
    p = (counts + alpha) / (counts.sum(-1, keepdims=True) + alpha * counts.shape[-1])
    return np.log(p).astype(np.float32)


def draw_codes(log_probs, n, seed):
    """``n`` code grids ``(n, *grid)`` int32 from the per-position categorical ``log_probs``
    (``(*grid, K)``, a NumPy array or a tensor), ``tf.random.stateless_categorical`` with seed
    ``(seed, 0)``: one definition for ``kerasdl sample``, the figures and the export's ``sample``."""
    import tensorflow as tf

    log_probs = tf.convert_to_tensor(log_probs, tf.float32)
    grid = tf.shape(log_probs)[:-1]
    k = tf.shape(log_probs)[-1]
    seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    drawn = tf.random.stateless_categorical(tf.reshape(log_probs, [-1, k]), n, seed=seed, dtype=tf.int32)  # (P, n)
    return tf.reshape(tf.transpose(drawn), tf.concat([[n], grid], 0))


# --------------------------------------------------------------------------- the trainable model

@keras.saving.register_keras_serializable(package="kerasdl")
class VQVAE(keras.Model):
    """``decoder(quantizer(encoder(x)))`` with the VQ-VAE loss (see the module docstring).

    ``call(x)`` returns ``{"reconstruction", "codes"}``; data are ``(x, x)`` batches. The weights
    are saved under ``encoder/``, ``quantizer/`` and ``decoder/``.
    """

    def __init__(self, encoder, quantizer, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.quantizer, self.decoder = encoder, quantizer, decoder
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.vq_tracker = keras.metrics.Mean(name="vq_loss")
        self.perplexity_tracker = keras.metrics.Mean(name="perplexity")
        self.usage_tracker = keras.metrics.Mean(name="codebook_usage")

    def call(self, x, training=False):
        z_e = self.encoder(x, training=training)
        z_q, codes = self.quantizer(z_e, training=training, return_indices=True)
        return {"reconstruction": self.decoder(z_q, training=training), "codes": codes}

    def code_histogram(self, codes):
        """``(perplexity, usage)`` of a batch's codes (tensors; see :func:`code_stats`)."""
        k = self.quantizer.codebook_size
        counts = ops.sum(ops.one_hot(ops.reshape(codes, (-1,)), k, dtype="float32"), axis=0)
        p = counts / ops.maximum(ops.sum(counts), 1.0)
        entropy = -ops.sum(p * ops.log(p + 1e-10))
        return ops.exp(entropy), ops.mean(ops.cast(counts > 0, "float32"))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        target = ops.cast(y if y is not None else x, "float32")
        recon = ops.cast(y_pred["reconstruction"], "float32")
        per_example = ops.mean(ops.square(recon - target), axis=tuple(range(1, len(target.shape))))
        local = ops.cast(ops.shape(per_example)[0], "float32")
        replicas = num_replicas()
        loss = ops.sum(per_example) / (local * replicas)  # sum / global batch, as Keras's losses
        vq = ops.sum([ops.cast(v, "float32") for v in self.quantizer.losses])
        loss = loss + ops.sum([ops.cast(v, "float32") for v in self.losses]) / replicas  # VQ terms + L2
        perplexity, usage = self.code_histogram(y_pred["codes"])
        self.reconstruction_tracker.update_state(per_example)
        self.vq_tracker.update_state(vq)
        self.perplexity_tracker.update_state(perplexity)
        self.usage_tracker.update_state(usage)
        return loss

    def get_config(self):
        return {**super().get_config(),
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "quantizer": keras.saving.serialize_keras_object(self.quantizer),
                "decoder": keras.saving.serialize_keras_object(self.decoder)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        parts_ = [keras.saving.deserialize_keras_object(config.pop(key)) for key in ("encoder", "quantizer", "decoder")]
        return cls(*parts_, **config)


def parts(model) -> tuple[Any, Any, Any]:
    """``(encoder, quantizer, decoder)`` of a trainable / rebuilt :class:`VQVAE` or the inference model."""
    if isinstance(model, VQVAE):
        return model.encoder, model.quantizer, model.decoder
    return model.get_layer("encoder"), model.get_layer("quantizer"), model.get_layer("decoder")


def _predict(fn, x: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.concatenate([np.asarray(fn(x[i:i + batch])) for i in range(0, len(x), batch)])


# --------------------------------------------------------------------------- the task

@register_task
class VQVAETask(GenerativeTask):
    """Vector-quantised VAE (codebook + commitment losses or EMA codebook; simple per-position prior)."""

    name = "vqvae"  # options: kerasdl.tasks.options.VQVAEOptions
    summary = "Vector-quantised VAE: discrete codes, EMA codebook option; samples from a per-position prior."
    paper = "van den Oord, Vinyals & Kavukcuoglu 2017"
    roles = ("encoder",)
    image_range = (0.0, 1.0)  # MSE on the [0, 1] images
    serving_outputs = ("reconstruction",)
    # What the model logs each epoch and in which direction each is better (validation: val_).
    logged = {"loss": "min", "reconstruction": "min", "vq_loss": "min", "perplexity": "max",
              "codebook_usage": "max"}

    def __init__(self, config, info):
        super().__init__(config, info)
        self.run_dir: str | None = None  # where prior.npz lives, once known (after_fit, endpoints)
        self._prior: tuple[str, np.ndarray] | None = None  # (model fingerprint, counts)
        self._train_x: np.ndarray | None = None

    # -- checks --------------------------------------------------------------------------------
    def check(self) -> None:
        super().check()
        from kerasdl.models import model_info

        minfo = model_info(self.config.model)
        opts = self.config.model_options or {}
        if minfo.family == "vqvae":
            from kerasdl.models.vqvae import VQ_STAGES, check_vq_shape

            check_vq_shape(self.config.model, self.info.input_shape, opts.get("stages", VQ_STAGES))
        else:
            from kerasdl.tasks.autoencoder import check_encoder

            check_encoder(self.name, self.config, self.info)

    def tune_objectives(self) -> dict[str, str]:
        return {"val_loss": "min", "val_reconstruction": "min", "val_perplexity": "max"}

    def tune_space(self) -> dict:
        return {"latent_dim": [8, 16, 32], "codebook_size": [32, 64, 128, 512]}

    # -- data ----------------------------------------------------------------------------------
    def prepare(self, ds, split: str):
        """``(x, x)``: the images are their own targets."""
        self._raw[split] = ds
        out = ds.map(lambda x, *_: (x, x))
        self._prepared[split] = out
        return out

    # -- model ---------------------------------------------------------------------------------
    def _parts(self):
        """The encoder ``config.model`` ("encoder"), its companion decoder ("decoder") and the
        quantizer ("quantizer", float32 under any precision policy). ``--model-opt`` keys go to the
        encoder and, where the decoder takes them, to the decoder (list-valued widths and filters
        reversed, as the autoencoder task does)."""
        from kerasdl.models import build_model, model_info
        from kerasdl.models.vqvae import VectorQuantizer

        opts = dict(self.config.model_options or {})
        opts.pop("name", None)
        opts.pop("gaussian", None)
        shape, d = tuple(self.info.input_shape), self.opts.latent_dim
        minfo = model_info(self.config.model)
        encoder = build_model(self.config.model, input_shape=shape, latent_dim=d, name="encoder", **opts)
        valid = model_info(minfo.companion).overrides
        dec_opts = {k: (list(reversed(v)) if k in ("width", "filters") and isinstance(v, (list, tuple)) else v)
                    for k, v in opts.items() if k in valid and k != "body"}
        decoder = build_model(minfo.companion, latent_dim=d, output_shape=shape, name="decoder", **dec_opts)
        quantizer = VectorQuantizer(self.opts.codebook_size, d, beta=self.opts.beta, ema=self.opts.ema,
                                    decay=self.opts.decay, name="quantizer", dtype="float32")
        return encoder, quantizer, decoder

    def build(self):
        model = VQVAE(*self._parts(), name="vqvae")
        model(ops.zeros((1,) + tuple(self.info.input_shape)))
        return model

    def compile(self, model, optimizer, train_ds, val_ds, **speed):
        model.compile(optimizer=optimizer, **speed)
        return train_ds, val_ds

    def inference_model(self, model):
        """A plain functional model ``x -> decoder(quantizer(encoder(x)))`` (the reconstruction)."""
        encoder, quantizer, decoder = parts(model)
        x = keras.Input(shape=tuple(self.info.input_shape), name="input")
        return keras.Model(x, decoder(quantizer(encoder(x))), name=f"{self.name}_inference")

    # -- codes ---------------------------------------------------------------------------------
    def codes(self, model, x: np.ndarray) -> np.ndarray:
        """Code indices (N, *grid) int32 of normalised inputs ``x``."""
        encoder, quantizer, _ = parts(model)
        if not len(x):
            return np.zeros((0,) + tuple(encoder.output_shape[1:-1]), np.int32)
        return _predict(lambda b: quantizer.codes(encoder(b, training=False)), x).astype(np.int32)

    def decode_codes(self, model, codes: np.ndarray, batch: int = 500) -> np.ndarray:
        """Decoder outputs (model space) of code indices ``(N, *grid)``."""
        _, quantizer, decoder = parts(model)
        return _predict(lambda c: decoder(quantizer.lookup(c), training=False), np.asarray(codes, np.int32), batch)

    def _reconstruct(self, model, x: np.ndarray) -> np.ndarray:
        encoder, quantizer, decoder = parts(model)
        return _predict(lambda b: decoder(quantizer(encoder(b, training=False), training=False), training=False), x)

    # -- the prior -----------------------------------------------------------------------------
    @staticmethod
    def fingerprint(model) -> str:
        """sha256 (16 hex digits) of the encoder's weights and the codebook: what the prior depends on."""
        encoder, quantizer, _ = parts(model)
        digest = hashlib.sha256()
        for w in list(encoder.weights) + [quantizer.codebook]:
            digest.update(np.ascontiguousarray(ops.convert_to_numpy(w), np.float32).tobytes())
        return digest.hexdigest()[:16]

    def _train_codes_source(self) -> np.ndarray:
        if self._train_x is None:
            self._train_x = self._split("train")[0]
        return self._train_x

    def fit_prior(self, model) -> np.ndarray:
        """Counts ``(*grid, K)`` of the train split's codes (unshuffled, no augmentation)."""
        return count_codes(self.codes(model, self._train_codes_source()), self.opts.codebook_size)

    def _stored_prior(self, key: str) -> np.ndarray | None:
        dirs = [self.run_dir]
        try:
            dirs.append(self.config.run_dir)
        except (RuntimeError, AttributeError, TypeError):
            pass
        for where in dirs:
            path = os.path.join(where, PRIOR_FILE) if where else None
            if not path or not os.path.isfile(path):
                continue
            try:
                with np.load(path, allow_pickle=False) as f:
                    if str(f["fingerprint"]) == key and float(f["laplace"]) == LAPLACE:
                        counts = np.asarray(f["counts"], np.int64)
                        if counts.shape[-1] == self.opts.codebook_size:
                            return counts
            except (OSError, KeyError, ValueError):
                continue  # unreadable or foreign: fitted again
        return None

    def prior_counts(self, model) -> np.ndarray:
        """The prior's counts for ``model`` (cached; read from ``prior.npz`` or fitted)."""
        key = self.fingerprint(model)
        if self._prior is None or self._prior[0] != key:
            counts = self._stored_prior(key)
            self._prior = (key, counts if counts is not None else self.fit_prior(model))
        return self._prior[1]

    def prior_log_probs(self, model) -> np.ndarray:
        return smoothed_log_probs(self.prior_counts(model))

    def prior(self, n: int, seed: int) -> np.ndarray:
        """The code grids ``(n, *grid)`` of the last draw's prior with ``seed`` (what ``sample``
        decodes and the export's ``sample`` returns as ``codes``)."""
        if self._prior is None:
            raise RuntimeError("no prior yet: call sample() / generate() with the model first")
        return np.asarray(draw_codes(smoothed_log_probs(self._prior[1]), int(n), int(seed)))

    # -- sampling ------------------------------------------------------------------------------
    def generate(self, model, n, seed, labels=None, steps=None) -> np.ndarray:
        """``n`` images (model space = [0, 1] before clipping) decoded from codes drawn from the prior."""
        log_probs = self.prior_log_probs(model)
        if not int(n):
            return np.zeros((0,) + tuple(self.info.input_shape), np.float32)
        return self.decode_codes(model, np.asarray(draw_codes(log_probs, int(n), int(seed))))

    # -- after fitting -------------------------------------------------------------------------
    def after_fit(self, model, val_ds, test_ds, run_dir: str, record: dict, title: str = "") -> None:
        """Write the prior to ``<run>/prior.npz`` and describe it in metrics.json (``prior``)."""
        self.run_dir = run_dir
        counts = self.prior_counts(model)
        key = self._prior[0]
        path = os.path.join(run_dir, PRIOR_FILE)
        tmp = path + f".tmp-{os.getpid()}.npz"
        np.savez(tmp, counts=counts, laplace=np.float64(LAPLACE), fingerprint=np.array(key))
        os.replace(tmp, path)
        p = np.exp(smoothed_log_probs(counts).astype(np.float64))
        entropy = float(np.mean(-np.sum(p * np.log(p), axis=-1)))
        record["prior"] = {"kind": "independent categorical per code position (not the paper's PixelCNN)",
                           "file": PRIOR_FILE, "grid": list(counts.shape[:-1]), "codebook_size": int(counts.shape[-1]),
                           "laplace": LAPLACE, "train_codes": int(counts.reshape(-1, counts.shape[-1])[0].sum()),
                           "entropy_nats_per_position": entropy, "fingerprint": key}

    # -- evaluation ----------------------------------------------------------------------------
    def extra_figures(self, model, generated: np.ndarray, x_test: np.ndarray) -> dict:
        """The test split's code usage, perplexity, reconstruction MSE and its codes' NLL under the prior."""
        k = self.opts.codebook_size
        codes = self.codes(model, x_test)
        perplexity, usage = code_stats(codes, k)
        recon = self._reconstruct(model, x_test)
        log_p = self.prior_log_probs(model).reshape(-1, k)  # (P, K)
        flat = codes.reshape(len(codes), -1)
        nll = -log_p[np.arange(flat.shape[1])[None, :], flat]
        return {"codebook_size": k, "latent_dim": self.opts.latent_dim, "latent_grid": list(codes.shape[1:]),
                "ema": bool(self.opts.ema), "codebook_usage": usage, "perplexity": perplexity,
                "reconstruction_mse": float(np.mean((recon.astype(np.float64) - x_test) ** 2)),
                "prior_nll": float(nll.mean()) if nll.size else float("nan"),
                "prior": "independent categorical per code position"}

    def plots(self, report: dict, model, ds, run_dir: str, split: str = "test") -> list[str]:
        from kerasdl.plots import generative as figs
        from kerasdl.tasks.autoencoder import plot_path

        out = super().plots(report, model, ds, run_dir, split)
        if self.info.is_image:
            shown = self._arrays(ds, split, EXAMPLES)[0]
            path, rel = plot_path(run_dir, "reconstructions.png")
            recon = np.clip(self._reconstruct(model, shown), 0.0, 1.0)
            figs.reconstruction_grid([("input", shown), ("reconstruction", recon)], path,
                                     title=f"VQ-VAE {self.config.model}, K={self.opts.codebook_size} ({split})")
            out.append(rel)
        return out

    # -- export --------------------------------------------------------------------------------
    def endpoints(self, model, run_dir: str = "") -> dict[str, Endpoint]:
        """serving_default: raw inputs -> {"reconstruction"} (normalised scale); encode: raw inputs
        -> {"codes"} (int32 grid); decode: codes -> {"reconstruction"}; sample: n (int32), seed
        (int32) -> {"samples" (user scale), "codes"}, the prior's log-probabilities a constant."""
        import tensorflow as tf

        from kerasdl.data import normalize
        from kerasdl.tasks.serving import checked_inputs, raw_input_spec

        if run_dir:
            self.run_dir = run_dir
        encoder, quantizer, decoder = parts(model)
        info, k = self.info, self.opts.codebook_size
        grid = [int(d) for d in encoder.output_shape[1:-1]]
        log_probs = tf.constant(self.prior_log_probs(model))
        to_user = self.tf_to_user()

        def z_e(x):
            return encoder(normalize(checked_inputs(x, info.input_shape), info), training=False)

        def decoded(codes):
            return decoder(quantizer.lookup(codes), training=False)

        def serve(inputs):
            return {"reconstruction": decoder(quantizer(z_e(inputs), training=False), training=False)}

        def encode(inputs):
            return {"codes": quantizer.codes(z_e(inputs))}

        def decode(codes):
            codes = tf.cast(codes, tf.int32)
            # The checks must run before the lookup: without the dependency the gather may fail first with
            # its own message (the order of independent ops in a graph is not fixed).
            checks = [tf.debugging.assert_non_negative(codes, message=f"codes must be in [0, {k})"),
                      tf.debugging.assert_less(codes, k, message=f"codes must be in [0, {k})")]
            with tf.control_dependencies(checks):
                codes = tf.identity(codes)
            return {"reconstruction": decoded(codes)}

        def sample(n, seed):
            codes = draw_codes(log_probs, n, seed)
            return {"samples": to_user(decoded(codes)), "codes": codes}

        raw = raw_input_spec(info)
        return {"serving_default": Endpoint(serve, [raw]),
                "encode": Endpoint(encode, [raw]),
                "decode": Endpoint(decode, [tf.TensorSpec([None] + grid, tf.int32, name="codes")]),
                "sample": Endpoint(sample, [tf.TensorSpec([], tf.int32, name="n"),
                                            tf.TensorSpec([], tf.int32, name="seed")])}
