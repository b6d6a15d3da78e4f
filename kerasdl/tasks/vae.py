"""The variational autoencoder task (Kingma & Welling 2014, "Auto-Encoding Variational Bayes").

A Gaussian encoder q(z|x) = N(z_mean, diag(exp(z_log_var))) (``--model dense_encoder`` /
``conv_encoder`` with ``gaussian=True``), a prior p(z) = N(0, I) and a decoder p(x|z): Bernoulli
on logits (``--task-opt decoder=bernoulli``, the default, for inputs in [0, 1]) or Gaussian with a
fixed standard deviation (``decoder=gaussian``; sigma 1 unless the options carry ``sigma``). Trained by maximising the ELBO

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)),

with one sample ``z = z_mean + exp(z_log_var / 2) * eps`` (the reparameterisation trick) and the
KL in closed form. ``beta`` weights the KL (beta-VAE, Higgins et al. 2017); ``kl_warmup_epochs``
ramps its weight linearly from 0 (Bowman et al. 2016; Sonderby et al. 2016).

Logs (per example, nats, summed over pixels): ``loss`` = reconstruction + beta_t * kl (the
objective; in validation beta, not the warm-up weight, so val_loss compares across epochs),
``reconstruction`` = -log p(x|z), ``kl``, and ``elbo`` = -(reconstruction + kl) (``val_elbo``
is a tuning objective). ``evaluate`` adds the importance-weighted bound with K samples (Burda,
Grosse & Salakhutdinov 2016): NLL <= -L_K <= -ELBO, and the sample-quality figures every sampling
task reports (FID, KID, precision / recall of 1,000 samples from the prior:
:func:`kerasdl.tasks.generative.sample_quality`).

How it fits the engine. :class:`VAE` overrides ``compute_loss`` only, so Keras's own train step,
``fit``, callbacks, mixed precision, gradient accumulation and ``tf.distribute`` are unchanged:

* ``eps`` comes with the data (``prepare`` draws it per batch from stateless seeds: the run's
  seed, the split and the batch index), so the model holds no random state, and one device, a
  mirrored strategy and a resumed run see the same noise for the same batch; the per-replica loss is divided by the global batch size (sum over the local
  examples / (local batch x replicas)), as Keras's own losses do.
* the KL warm-up weight is ``min(1, optimizer.iterations / warm-up steps)``: it is restored with
  the optimizer by ``--resume``.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from kerasdl.engine.distribute import num_replicas
from kerasdl.tasks.autoencoder import (
    EXAMPLES, AutoencoderTask, EncoderDecoder, build_pair, parts, plot_path, predict, with_seeds,
)
from kerasdl.tasks.base import Endpoint, register_task
from kerasdl.tasks.generative import prior_codes  # noqa: F401 (kerasdl.tasks.vae.prior_codes, as before)

LOG_2PI = math.log(2.0 * math.pi)
QUALITY_SAMPLES = 1000  # samples from the prior scored by FID / KID / precision / recall (as eval_samples)


@keras.saving.register_keras_serializable(package="kerasdl")
class VAE(EncoderDecoder):
    """A VAE from a Gaussian ``encoder`` (outputs z_mean, z_log_var) and a ``decoder``.

    ``call((x, eps))`` samples ``z = z_mean + exp(z_log_var / 2) * eps`` and returns
    ``{"logits", "z_mean", "z_log_var"}``; ``call(x)`` decodes ``z_mean`` (no sampling).
    ``compute_loss`` turns that into the negative ELBO; the data are ``((x, eps), x)``.
    """

    def __init__(self, encoder, decoder, *, likelihood: str = "bernoulli", sigma: float = 0.1,
                 beta: float = 1.0, kl_warmup_steps: float = 0.0, **kwargs):
        kwargs.pop("output_activation", None)
        super().__init__(encoder, decoder, **kwargs)
        self.likelihood, self.sigma, self.beta = likelihood, float(sigma), float(beta)
        self.kl_warmup_steps = float(kl_warmup_steps)
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.elbo_tracker = keras.metrics.Mean(name="elbo")

    def call(self, inputs, training=False):
        sampled = isinstance(inputs, (tuple, list))
        x, eps = (inputs[0], inputs[1]) if sampled else (inputs, None)
        z_mean, z_log_var = self.encoder(x, training=training)
        z = z_mean + ops.exp(0.5 * z_log_var) * ops.cast(eps, z_mean.dtype) if sampled else z_mean
        return {"logits": self.decoder(z, training=training), "z_mean": z_mean, "z_log_var": z_log_var}

    def terms(self, x, out):
        """Per-example ``(reconstruction = -log p(x|z), kl)`` in float32 nats."""
        logits = ops.cast(out["logits"], "float32")
        x = ops.cast(x, "float32")
        axes = tuple(range(1, len(x.shape)))
        if self.likelihood == "bernoulli":
            per = ops.maximum(logits, 0.0) - logits * x + ops.log1p(ops.exp(-ops.abs(logits)))
            rec = ops.sum(per, axis=axes)
        else:
            const = LOG_2PI + 2.0 * math.log(self.sigma)
            rec = 0.5 * ops.sum(ops.square(x - logits) / self.sigma**2 + const, axis=axes)
        mean, log_var = ops.cast(out["z_mean"], "float32"), ops.cast(out["z_log_var"], "float32")
        kl = 0.5 * ops.sum(ops.exp(log_var) + ops.square(mean) - 1.0 - log_var, axis=-1)
        return rec, kl

    def kl_weight(self, training: bool):
        if not training or self.kl_warmup_steps <= 0 or self.optimizer is None:
            return ops.convert_to_tensor(self.beta, "float32")
        step = ops.cast(self.optimizer.iterations, "float32")
        return self.beta * ops.minimum(1.0, step / self.kl_warmup_steps)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        target = y if y is not None else (x[0] if isinstance(x, (tuple, list)) else x)
        rec, kl = self.terms(target, y_pred)
        self.reconstruction_tracker.update_state(rec)
        self.kl_tracker.update_state(kl)
        self.elbo_tracker.update_state(-(rec + kl))
        per_example = rec + self.kl_weight(training) * kl
        local = ops.cast(ops.shape(per_example)[0], "float32")
        loss = ops.sum(per_example) / (local * num_replicas())  # sum / global batch
        if self.losses:  # L2 penalties of the layers, scaled like Keras's own
            loss = loss + ops.sum([ops.cast(v, "float32") for v in self.losses]) / num_replicas()
        return loss

    def get_config(self):
        return {**super().get_config(), "likelihood": self.likelihood, "sigma": self.sigma, "beta": self.beta,
                "kl_warmup_steps": self.kl_warmup_steps}


@register_task
class VAETask(AutoencoderTask):
    """Variational autoencoder (Gaussian encoder, Bernoulli or Gaussian decoder, beta, KL warm-up)."""

    name = "vae"  # options: kerasdl.tasks.options.VAEOptions
    data_kind = "unlabeled"
    summary = "Variational autoencoder: ELBO, importance-weighted NLL, samples from the prior."
    paper = "Kingma & Welling 2014; Burda et al. 2016"
    roles = ("encoder",)
    _gaussian = True

    @property
    def likelihood(self) -> str:
        return self.opts.decoder  # "bernoulli" | "gaussian"

    @property
    def sigma(self) -> float:
        return float(getattr(self.opts, "sigma", 1.0))  # unit variance unless an option sets it

    @property
    def sigmoid(self) -> bool:
        return self.likelihood == "bernoulli"

    # -- data ----------------------------------------------------------------------------------
    def prepare(self, ds, split: str):
        """``((x, eps), x)`` with ``eps ~ N(0, I)`` of shape (batch, latent_dim), drawn from a
        stateless seed (the run's seed, the split, the batch index): see :func:`with_seeds`."""
        import tensorflow as tf

        self._raw[split] = ds
        k = self.opts.latent_dim
        offset = {"train": 0, "validation": 1}.get(split, 2)
        seeded = with_seeds(ds, int(self.config.seed) * 3 + offset)

        def attach(batch, seed):
            x = batch[0]
            eps = tf.random.stateless_normal([tf.shape(x)[0], k], seed=seed)
            return (x, eps), x

        out = seeded.map(attach)
        self._prepared[split] = out
        return out

    # -- model ---------------------------------------------------------------------------------
    def build(self):
        encoder, decoder = build_pair(self.config, self.info, self.opts.latent_dim, gaussian=True)
        model = VAE(encoder, decoder, likelihood=self.likelihood, sigma=self.sigma, beta=self.opts.beta,
                    kl_warmup_steps=self._warmup_steps(), name="vae")
        model((ops.zeros((1,) + tuple(self.info.input_shape)), ops.zeros((1, self.opts.latent_dim))))
        return model

    def _warmup_steps(self, train_ds=None) -> float:
        if self.opts.kl_warmup_epochs <= 0:
            return 0.0
        steps = None
        if train_ds is not None:
            n = int(train_ds.cardinality())
            steps = n if n > 0 else None
        if steps is None:
            steps = math.ceil(self.info.splits.get("train", 1) / max(1, int(self.config.batch_size)))
        accumulate = max(1, int(getattr(self.config, "accumulate", 1) or 1))
        return self.opts.kl_warmup_epochs * steps / accumulate

    def compile(self, model, optimizer, train_ds, val_ds, **speed):
        model.kl_warmup_steps = self._warmup_steps(train_ds)
        model.compile(optimizer=optimizer, **speed)
        return train_ds, val_ds

    logged = {"loss": "min", "reconstruction": "min", "kl": "min", "elbo": "max"}

    def tune_objectives(self) -> dict[str, str]:
        return {"val_elbo": "max", "val_loss": "min"}

    def tune_space(self) -> dict:
        return {"latent_dim": [2, 8, 16, 32], "beta": [0.5, 1.0, 2.0]}

    # -- evaluation ----------------------------------------------------------------------------
    def _log_likelihood(self, x: np.ndarray, decoded: np.ndarray) -> np.ndarray:
        from kerasdl.evaluation import generative as gen

        if self.sigmoid:
            return gen.bernoulli_log_likelihood(x, decoded)
        return gen.gaussian_log_likelihood(x, decoded, self.sigma)

    def elbo_terms(self, model, x: np.ndarray, samples: int = 1, seed: int = 0) -> dict:
        """Per-example reconstruction (one sample), KL (closed form) and ELBO, float64."""
        encoder, decoder = parts(model)
        mean, log_var = (v.astype(np.float64) for v in predict(encoder, x))
        rng = np.random.default_rng(seed)
        rec = np.zeros(len(x))
        for _ in range(samples):
            z = mean + np.exp(0.5 * log_var) * rng.standard_normal(mean.shape)
            rec -= self._log_likelihood(x, predict(decoder, z.astype(np.float32)))
        rec /= samples
        kl = 0.5 * np.sum(np.exp(log_var) + mean**2 - 1.0 - log_var, axis=-1)
        return {"reconstruction": rec, "kl": kl, "elbo": -(rec + kl)}

    def iwae(self, model, x: np.ndarray, k: int, seed: int = 0, batch: int = 64) -> np.ndarray:
        """Per-example importance-weighted bound L_K (nats; -L_K estimates the NLL), float64."""
        from kerasdl.evaluation import generative as gen

        encoder, decoder = parts(model)
        rng = np.random.default_rng(seed)
        out = np.empty(len(x))
        for i in range(0, len(x), batch):
            xb = x[i:i + batch]
            mean, log_var = (v.astype(np.float64) for v in predict(encoder, xb))
            n, d = mean.shape
            z = mean[:, None] + np.exp(0.5 * log_var)[:, None] * rng.standard_normal((n, k, d))  # (n, K, d)
            flat = z.reshape(n * k, d)
            decoded = predict(decoder, flat.astype(np.float32), batch_size=max(256, 4 * k))
            log_px = self._log_likelihood(np.repeat(xb, k, axis=0), decoded).reshape(n, k)
            log_pz = gen.standard_normal_log_density(flat).reshape(n, k)
            log_qz = gen.diagonal_normal_log_density(flat, np.repeat(mean, k, axis=0),
                                                     np.repeat(log_var, k, axis=0)).reshape(n, k)
            out[i:i + batch] = gen.iwae_bound(log_px + log_pz - log_qz)
        return out

    def evaluate(self, model, ds, **kw) -> dict:
        x, _ = self._arrays(ds)
        seed = int(self.config.seed)
        terms = self.elbo_terms(model, x, seed=seed)
        recon, logits = self._reconstruct(model, x)
        report = {"examples": int(len(x)), "latent_dim": self.opts.latent_dim, "decoder": self.likelihood,
                  "beta": self.opts.beta, "elbo": float(terms["elbo"].mean()),
                  "reconstruction": float(terms["reconstruction"].mean()), "kl": float(terms["kl"].mean()),
                  **{f"mean_{k}": v for k, v in self._figures(x, recon, logits).items()}}
        k = int(kw.get("iw_samples", self.opts.iw_samples))
        bound = self.iwae(model, x, k, seed=seed + 1)
        report.update(iw_samples=k, iwae_bound=float(bound.mean()), nll_iwae=float(-bound.mean()))
        samples = int(kw.get("samples", QUALITY_SAMPLES))  # 0: no sample-quality figures
        if samples > 0:
            report.update(self.sample_quality(model, x, samples))
        return report

    def sample_quality(self, model, x_test: np.ndarray, n: int) -> dict:
        """FID, KID, precision / recall and the label histogram of ``n`` samples from the prior,
        scored as every sampling task is (:func:`kerasdl.tasks.generative.sample_quality`)."""
        from kerasdl.tasks.generative import load_split, sample_quality

        generated = self._decode_mean(model, self.prior(n, int(self.config.seed) + 101))
        if self.info.is_image:
            generated = np.clip(generated, 0.0, 1.0)
        return sample_quality(self.config, self.info, generated.astype(np.float32), x_test,
                              load_split(self.config, "train"))

    # -- plots ---------------------------------------------------------------------------------
    def _decode_mean(self, model, z: np.ndarray) -> np.ndarray:
        _, decoder = parts(model)
        out = predict(decoder, z.astype(np.float32))
        return 1.0 / (1.0 + np.exp(-out)) if self.sigmoid else out

    def prior(self, n: int, seed: int) -> np.ndarray:
        """``n`` codes z ~ N(0, I) (n, k) from ``seed``: the same draw as the export's ``sample``
        signature (``tf.random.stateless_normal`` with seed ``(seed, 0)``)."""
        return np.asarray(prior_codes(int(n), self.opts.latent_dim, int(seed)))

    def sample(self, model, n: int, seed: int) -> np.ndarray:
        """``n`` images decoded from the prior (:meth:`prior`), in [0, 1]: the Bernoulli means, or
        the Gaussian decoder's means clipped (Kingma & Welling 2014, Fig. 4)."""
        return np.clip(self._decode_mean(model, self.prior(n, seed)), 0.0, 1.0).astype(np.float32)

    def plots(self, report: dict, model, ds, run_dir: str, split: str = "test") -> list[str]:
        from kerasdl.plots import generative as figs

        x, labels = self._arrays(ds, split)
        shown = x[:EXAMPLES]
        out = []
        path, rel = plot_path(run_dir, "reconstructions.png")
        figs.reconstruction_grid([("input", shown), ("reconstruction", self._reconstruct(model, shown)[0])], path,
                                 title=f"VAE {self.config.model}, k={self.opts.latent_dim} ({split})")
        out.append(rel)
        path, rel = plot_path(run_dir, "samples.png")
        z = np.random.default_rng(int(self.config.seed)).standard_normal((64, self.opts.latent_dim))
        figs.image_grid(self._decode_mean(model, z), path, cols=8, title="samples from the prior")
        out.append(rel)
        path, rel = plot_path(run_dir, "traversal.png")
        values = np.linspace(-2.5, 2.5, 9)
        dims = min(self.opts.latent_dim, 8)
        base = self._codes(model, x[:1])[0]
        grid = np.repeat(base[None, None], dims * len(values), axis=0).reshape(dims, len(values), -1).copy()
        for d in range(dims):
            grid[d, :, d] = values
        decoded = self._decode_mean(model, grid.reshape(dims * len(values), -1))
        figs.traversal_grid(decoded.reshape((dims, len(values)) + decoded.shape[1:]), values, path,
                            title="latent traversal (first test code, one dimension per row)")
        out.append(rel)
        if self.opts.latent_dim == 2:
            out.append(self._scatter(model, x, labels, run_dir, split))
        return out

    # -- export --------------------------------------------------------------------------------
    def endpoints(self, model, run_dir: str = "") -> dict[str, Endpoint]:
        """The autoencoder's serving_default (reconstruction from z_mean; probabilities for
        Bernoulli) and decode, with encode -> {"z_mean", "z_log_var"} and sample: n (int32),
        seed (int32) -> {"samples", "z"} from the prior."""
        import tensorflow as tf

        from kerasdl.data import normalize
        from kerasdl.tasks.serving import checked_inputs

        endpoints = super().endpoints(model, run_dir)
        encoder, decoder = parts(model)
        info, sigmoid, k = self.info, self.sigmoid, self.opts.latent_dim

        def encode(inputs):
            z_mean, z_log_var = encoder(normalize(checked_inputs(inputs, info.input_shape), info), training=False)
            return {"z_mean": z_mean, "z_log_var": z_log_var}

        def sample(n, seed):
            z = prior_codes(n, k, seed)
            logits = decoder(z, training=False)
            return {"samples": tf.sigmoid(logits) if sigmoid else logits, "z": z}

        endpoints["encode"] = Endpoint(encode, endpoints["encode"].input_signature)
        endpoints["sample"] = Endpoint(sample, [tf.TensorSpec([], tf.int32, name="n"),
                                                tf.TensorSpec([], tf.int32, name="seed")])
        return endpoints
