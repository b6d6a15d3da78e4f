"""The autoencoder task: reconstruct the input through a small code (plain, denoising, linear).

* Plain autoencoder (Rumelhart, Hinton & Williams 1986; Hinton & Salakhutdinov 2006): an encoder
  from the registry (``--model dense_encoder | conv_encoder | linear_encoder``) and its mirrored
  decoder (the registry entry's ``companion``), trained to reconstruct ``x`` with squared error
  (``loss=mse``, the decoder's output is the reconstruction) or binary cross-entropy on logits
  (``loss=bce``, the reconstruction is ``sigmoid(output)``; for inputs in [0, 1]).
* Denoising autoencoder (Vincent, Larochelle, Bengio & Manzagol 2008, "Extracting and composing
  robust features with denoising autoencoders", ICML): ``--task-opt noise=S`` feeds
  ``x + N(0, S^2)`` (in the normalised scale: [0, 1] for images, clipped back to [0, 1]) and
  reconstructs the clean ``x``. Vincent et al. used masking noise; additive Gaussian noise is the
  variant their 2010 JMLR paper also studies, and it is what the lectures show.
* Linear autoencoder = PCA (Baldi & Hornik 1989): with ``--model linear_encoder`` and MSE the
  decoder's column space converges to the top-k principal subspace of the centred train data;
  ``evaluate`` reports the largest principal angle to it and the PCA optimum's test MSE.

Data: the engine's ``(x, y)`` batches, ``x`` scaled to [0, 1] (images); ``prepare`` maps them to
``(x_in, x)`` and keeps the labelled split for the 2-D latent scatter. The trainable model is an
:class:`EncoderDecoder`; ``inference_model`` is a plain functional model (loads without kerasdl).
"""

from __future__ import annotations

import math
import os
from typing import Any

import keras
import numpy as np
from keras import ops

from kerasdl.errors import KerasdlUsageError
from kerasdl.tasks.base import Endpoint, Task, register_task

DEFAULT_EVAL_NOISE = 0.3  # the noise level of the denoising comparison
EXAMPLES = 16  # examples shown in the reconstruction grids


# --------------------------------------------------------------------------- the trainable model

@keras.saving.register_keras_serializable(package="kerasdl")
class EncoderDecoder(keras.Model):
    """``decoder(encoder(x))``; a Gaussian encoder's ``z_mean`` is decoded.

    ``output_activation="sigmoid"`` returns probabilities instead of logits (inference). The
    weights are saved under ``encoder/`` and ``decoder/``, so a checkpoint of any subclass (the
    VAE) loads into a fresh ``EncoderDecoder`` (what :meth:`AutoencoderTask.rebuild` returns).
    """

    def __init__(self, encoder, decoder, *, output_activation: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.output_activation = output_activation

    def call(self, x, training=False):
        out = self.decoder(mean_code(self.encoder(x, training=training)), training=training)
        return ops.sigmoid(out) if self.output_activation == "sigmoid" else out

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "output_activation": self.output_activation,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)


def mean_code(z):
    """The code of an encoder's output: itself, or a Gaussian encoder's ``z_mean``."""
    return z[0] if isinstance(z, (list, tuple)) else z


def parts(model) -> tuple[Any, Any]:
    """``(encoder, decoder)`` of a trained, rebuilt or inference model."""
    if hasattr(model, "encoder") and hasattr(model, "decoder"):
        return model.encoder, model.decoder
    return model.get_layer("encoder"), model.get_layer("decoder")


# --------------------------------------------------------------------------- shared helpers

def check_data(task: str, info) -> None:
    """Images (H, W, C) or flat vectors (F,): what an autoencoder can reconstruct."""
    if len(info.input_shape) not in (1, 3):
        raise KerasdlUsageError(
            f"task {task!r} needs images (H, W, C) or flat vectors; dataset {info.name!r} has inputs "
            f"of shape {tuple(info.input_shape)}"
        )


def check_encoder(task: str, config, info) -> None:
    """``config.model`` must be a registered encoder whose companion decoder fits the data."""
    from kerasdl.models import list_models, model_info

    minfo = model_info(config.model)  # unknown names: one line with the closest ones
    if minfo.role != "encoder":
        encoders = ", ".join(list_models(role="encoder"))
        raise KerasdlUsageError(
            f"task {task!r} trains an encoder and its decoder; {config.model!r} is a {minfo.role} "
            f"(use --model with one of {encoders})"
        )
    if minfo.family == "vqvae" and task != "vqvae":
        raise KerasdlUsageError(f"{config.model!r} is the VQ-VAE's encoder (a grid of code vectors): "
                                f"train it with --task vqvae")
    if minfo.family == "autoencoder" and "conv" in config.model:
        from kerasdl.models.autoencoders import CONV_FILTERS, check_conv_shape

        check_conv_shape(config.model, info.input_shape, (config.model_options or {}).get("filters", CONV_FILTERS))


def build_pair(config, info, latent_dim: int, *, gaussian: bool):
    """The encoder ``config.model`` (named "encoder") and its companion decoder ("decoder").

    ``--model-opt`` keys go to the encoder; those the decoder also takes (width, filters,
    activation, ...) go to it mirrored (list-valued widths and filters reversed).
    """
    from kerasdl.models import build_model, model_info

    opts = dict(config.model_options or {})
    opts.pop("gaussian", None)
    opts.pop("name", None)
    minfo = model_info(config.model)
    encoder = build_model(config.model, input_shape=tuple(info.input_shape), latent_dim=latent_dim,
                          gaussian=gaussian, name="encoder", **opts)
    dec_valid = model_info(minfo.companion).overrides
    dec_opts = {}
    for key, value in opts.items():
        if key in dec_valid and key != "body":
            dec_opts[key] = list(reversed(value)) if key in ("width", "filters") and isinstance(value, (list, tuple)) else value
    decoder = build_model(minfo.companion, latent_dim=latent_dim, output_shape=tuple(info.input_shape),
                          name="decoder", **dec_opts)
    return encoder, decoder


def with_seeds(ds, seed: int):
    """``ds`` zipped with a per-batch stateless seed ``(seed, batch index)`` (shape (2,)).

    Noise drawn from these seeds depends on the batch's position only, not on how often the
    dataset was iterated: a mirrored strategy (which reads a batch more to build the model) and
    a resumed run draw exactly what one device and an uninterrupted run draw. Every epoch reuses
    the same noise per batch position, paired with other examples where the train split is
    shuffled (the engine's pipeline reshuffles every epoch).
    """
    import tensorflow as tf

    return ds.enumerate().map(
        lambda i, batch: (batch, tf.stack([tf.constant(int(seed), tf.int64), tf.cast(i, tf.int64)])))


def is_image_scale(info) -> bool:
    """Images normalised to [0, 1] (the ``scale`` input normalisation)."""
    return info.is_image and info.raw_dtype == "uint8" and np.allclose(info.mean, 0.0) and np.allclose(info.std, 255.0)


def collect(ds, limit: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(x, labels)`` as arrays from a raw ``(x, y)`` dataset (labels None when ``y`` is ``x``)."""
    xs, ys, n = [], [], 0
    for batch in ds:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        y = batch[1] if isinstance(batch, (tuple, list)) and len(batch) > 1 else None
        if isinstance(x, (tuple, list)):  # ((x, eps), target)
            x = x[0]
        xs.append(np.asarray(x))
        ys.append(None if y is None else np.asarray(y))
        n += len(xs[-1])
        if limit is not None and n >= limit:
            break
    x = np.concatenate(xs)[:limit]
    if ys[0] is None or ys[0].shape == xs[0].shape:
        if ys[0] is not None:
            x = np.concatenate(ys)[:limit]  # prepared (x_in, x): the clean target
        return x, None
    return x, np.concatenate(ys)[:limit]


def predict(model, x: np.ndarray, batch_size: int = 256):
    """``model(x)`` batched, as NumPy (one or several outputs)."""
    outs = []
    for i in range(0, len(x), batch_size):
        out = model(x[i:i + batch_size], training=False)
        outs.append([np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else np.asarray(out))
    if isinstance(outs[0], list):
        return [np.concatenate([o[j] for o in outs]) for j in range(len(outs[0]))]
    return np.concatenate(outs)


def plot_path(run_dir: str, name: str) -> tuple[str, str]:
    rel = os.path.join("plots", name)
    return os.path.join(run_dir, rel), rel


# --------------------------------------------------------------------------- the task

@register_task
class AutoencoderTask(Task):
    """Autoencoder, denoising autoencoder and linear autoencoder (= PCA)."""

    name = "autoencoder"  # options: kerasdl.tasks.options.AutoencoderOptions
    data_kind = "unlabeled"
    summary = "Reconstruct the input through a k-unit code (noise=S: denoising; linear_encoder: PCA)."
    paper = "Hinton & Salakhutdinov 2006; Vincent et al. 2008; Baldi & Hornik 1989"
    roles = ("encoder",)
    serving_outputs = ("reconstruction",)

    def __init__(self, config, info):
        super().__init__(config, info)
        self._raw: dict[str, Any] = {}  # split -> the labelled dataset prepare() received
        self._prepared: dict[str, Any] = {}
        self._pca = None  # (mean, components, angles) of the last linear evaluation

    # -- checks --------------------------------------------------------------------------------
    # What the model logs each epoch, with the direction in which each is better (validation
    # figures get the val_ prefix): the monitor must be one of them.
    logged = {"loss": "min"}

    def check(self) -> None:
        check_data(self.name, self.info)
        check_encoder(self.name, self.config, self.info)
        self.monitor()  # a monitor the model never logs: refused now, not after training

    @property
    def sigmoid(self) -> bool:
        return self.opts.loss == "bce"

    @property
    def eval_noise(self) -> float:
        chosen = float(getattr(self.opts, "eval_noise", -1.0))  # not (yet) an option: see the report
        if chosen >= 0:
            return chosen
        return float(self.opts.noise) if self.opts.noise > 0 else DEFAULT_EVAL_NOISE

    def _noisy_tf(self, x, seed):
        import tensorflow as tf

        noisy = x + self.opts.noise * tf.random.stateless_normal(tf.shape(x), seed=seed, dtype=x.dtype)
        return tf.clip_by_value(noisy, 0.0, 1.0) if is_image_scale(self.info) else noisy

    def _noisy_np(self, x: np.ndarray, std: float) -> np.ndarray:
        rng = np.random.default_rng(int(self.config.seed) + 7919)
        noisy = x + std * rng.standard_normal(x.shape).astype(x.dtype)
        return np.clip(noisy, 0.0, 1.0) if is_image_scale(self.info) else noisy

    # -- data ----------------------------------------------------------------------------------
    def prepare(self, ds, split: str):
        self._raw[split] = ds
        if self.opts.noise > 0 and split in ("train", "validation"):
            out = with_seeds(ds, 2 * int(self.config.seed) + (0 if split == "train" else 1))
            out = out.map(lambda batch, seed: (self._noisy_tf(batch[0], seed), batch[0]))
        else:
            out = ds.map(lambda x, *_: (x, x))
        self._prepared[split] = out
        return out

    def _arrays(self, ds, split: str = "test", limit: int | None = None):
        if ds is self._prepared.get(split) and split in self._raw:
            ds = self._raw[split]
        return collect(ds, limit)

    # -- model ---------------------------------------------------------------------------------
    def build(self):
        encoder, decoder = build_pair(self.config, self.info, self.opts.latent_dim, gaussian=False)
        model = EncoderDecoder(encoder, decoder, name="autoencoder")
        model(ops.zeros((1,) + tuple(self.info.input_shape)))
        return model

    def compile(self, model, optimizer, train_ds, val_ds, **speed):
        loss = (keras.losses.BinaryCrossentropy(from_logits=True, name="bce") if self.sigmoid
                else keras.losses.MeanSquaredError(name="mse"))
        model.compile(optimizer=optimizer, loss=loss, **speed)
        return train_ds, val_ds

    def inference_model(self, model):
        encoder, decoder = parts(model)
        x = keras.Input(shape=tuple(self.info.input_shape), name="input")
        out = decoder(mean_code(encoder(x)))
        if self.sigmoid:
            out = keras.layers.Activation("sigmoid", name="reconstruction")(out)
        return keras.Model(x, out, name=f"{self.name}_inference")

    def rebuild(self):
        encoder, decoder = build_pair(self.config, self.info, self.opts.latent_dim, gaussian=self._gaussian)
        model = EncoderDecoder(encoder, decoder, output_activation="sigmoid" if self.sigmoid else None,
                               name=self.name)
        model(ops.zeros((1,) + tuple(self.info.input_shape)))
        return model

    _gaussian = False

    # -- evaluation ----------------------------------------------------------------------------
    def _reconstruct(self, model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(reconstruction, logits or None)."""
        encoder, decoder = parts(model)
        out = predict(decoder, mean_code(predict(encoder, x)))
        if self.sigmoid:
            return 1.0 / (1.0 + np.exp(-out.astype(np.float64))), out
        return out, None

    def _figures(self, x: np.ndarray, recon: np.ndarray, logits: np.ndarray | None) -> dict:
        from kerasdl.evaluation.generative import bernoulli_log_likelihood

        x64, r64 = x.astype(np.float64), recon.astype(np.float64)
        if logits is None:
            p = np.clip(r64, 1e-7, 1 - 1e-7)
            logits = np.log(p) - np.log1p(-p)
        nll = -bernoulli_log_likelihood(x64, logits)
        per = max(1, math.prod(x.shape[1:]))
        return {"mse": float(np.mean((r64 - x64) ** 2)), "bce": float(np.mean(nll) / per),
                "bce_sum": float(np.mean(nll))}

    def evaluate(self, model, ds, **kw) -> dict:
        x, _ = self._arrays(ds)
        recon, logits = self._reconstruct(model, x)
        report = {"examples": int(len(x)), "latent_dim": self.opts.latent_dim, "loss_function": self.opts.loss,
                  **self._figures(x, recon, logits)}
        noise = self.eval_noise
        if noise > 0:
            noisy = self._noisy_np(x, noise)
            denoised, _ = self._reconstruct(model, noisy)
            report.update(eval_noise=noise, noisy_mse=float(np.mean((denoised - x) ** 2)),
                          noisy_input_mse=float(np.mean((noisy.astype(np.float64) - x) ** 2)))
        if self.config.model == "linear_encoder":
            report.update(self._pca_report(model, x, recon, kw.get("train_ds")))
        return report

    def _pca_report(self, model, x_test, recon, train_ds=None) -> dict:
        from kerasdl.evaluation import generative as gen

        train = train_ds if train_ds is not None else self._raw.get("train")
        if train is None:
            return {}
        x_train, _ = collect(train)
        k = self.opts.latent_dim
        mean, comps, _ = gen.pca_fit(x_train, k)
        _, decoder = parts(model)
        kernel = np.asarray(decoder.get_layer("output_linear").kernel)  # (k, F)
        angles = gen.principal_angles(kernel.T, comps)
        pca_recon = gen.pca_reconstruct(x_test, mean, comps)
        pca_mse = float(np.mean((pca_recon - x_test.astype(np.float64)) ** 2))
        ae_mse = float(np.mean((recon.astype(np.float64) - x_test) ** 2))
        self._pca = (mean, comps, angles)
        return {"principal_angle_max_deg": float(angles.max()), "principal_angle_mean_deg": float(angles.mean()),
                "pca_mse": pca_mse, "mse_over_pca": ae_mse / pca_mse if pca_mse > 0 else float("nan")}

    def plots(self, report: dict, model, ds, run_dir: str, split: str = "test") -> list[str]:
        from kerasdl.evaluation.generative import pca_reconstruct
        from kerasdl.plots import generative as figs

        x, labels = self._arrays(ds, split)
        shown = x[:EXAMPLES]
        recon, _ = self._reconstruct(model, shown)
        rows = [("input", shown)]
        noise = self.eval_noise if self.opts.noise > 0 else 0.0
        if noise > 0:
            noisy = self._noisy_np(shown, noise)  # the same draws as evaluate's first rows
            rows += [(f"noisy {noise:g}", noisy), ("denoised", self._reconstruct(model, noisy)[0])]
        rows.append(("reconstruction", recon))
        out = []
        path, rel = plot_path(run_dir, "reconstructions.png")
        figs.reconstruction_grid(rows, path, title=f"{self.config.model}, k={self.opts.latent_dim} ({split})")
        out.append(rel)
        if self.opts.latent_dim == 2:
            out.append(self._scatter(model, x, labels, run_dir, split))
        if self._pca is not None:
            mean, comps, angles = self._pca
            path, rel = plot_path(run_dir, "pca_comparison.png")
            few = shown[:8]
            figs.pca_comparison([("input", few), ("linear AE", recon[:8]),
                                 ("PCA", np.clip(pca_reconstruct(few, mean, comps), 0.0, 1.0))], angles, path,
                                title=f"linear AE vs PCA, k={self.opts.latent_dim}: max angle {angles.max():.2f} deg")
            out.append(rel)
        return out

    def _codes(self, model, x: np.ndarray) -> np.ndarray:
        encoder, _ = parts(model)
        return mean_code(predict(encoder, x))

    def encode(self, model, x_raw) -> np.ndarray:
        """Codes (N, k) of raw inputs (as the dataset stores them, e.g. uint8 images): normalised
        as in training, then the encoder (a Gaussian encoder's ``z_mean``) — what the export's
        ``encode`` signature returns."""
        from kerasdl.data import normalize

        x = np.asarray(x_raw)
        if not len(x):
            return np.zeros((0, self.opts.latent_dim), np.float32)
        x = np.concatenate([np.asarray(normalize(x[i:i + 256], self.info)) for i in range(0, len(x), 256)])
        return self._codes(model, x)

    def _scatter(self, model, x, labels, run_dir, split) -> str:
        from kerasdl.plots import generative as figs

        path, rel = plot_path(run_dir, "latent_scatter.png")
        figs.latent_scatter(self._codes(model, x), labels, path, class_names=self.info.class_names,
                            title=f"{split} codes ({self.config.model})")
        return rel

    # -- export --------------------------------------------------------------------------------
    def endpoints(self, model, run_dir: str = "") -> dict[str, Endpoint]:
        """serving_default: raw inputs -> {"reconstruction"} (in the normalised scale);
        encode: raw inputs -> {"z"}; decode: codes (N, k) -> {"reconstruction"}."""
        import tensorflow as tf

        from kerasdl.data import normalize
        from kerasdl.tasks.serving import checked_inputs, raw_input_spec

        encoder, decoder = parts(model)
        info, sigmoid = self.info, self.sigmoid
        k = self.opts.latent_dim

        def out(values):
            return tf.sigmoid(values) if sigmoid else values

        def code(x):
            return mean_code(encoder(normalize(checked_inputs(x, info.input_shape), info), training=False))

        def serve(inputs):
            return {"reconstruction": out(decoder(code(inputs), training=False))}

        def encode(inputs):
            return {"z": code(inputs)}

        def decode(z):
            return {"reconstruction": out(decoder(z, training=False))}

        z_spec = tf.TensorSpec([None, k], tf.float32, name="z")
        raw = raw_input_spec(info)
        return {"serving_default": Endpoint(serve, [raw]),
                "encode": Endpoint(encode, [raw]),
                "decode": Endpoint(decode, [z_spec])}

    def tune_objectives(self) -> dict[str, str]:
        return {"val_loss": "min"}

    def tune_space(self) -> dict:
        return {"latent_dim": [2, 8, 16, 32]}
