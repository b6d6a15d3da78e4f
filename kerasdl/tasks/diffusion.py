"""The diffusion task: denoising diffusion probabilistic models with DDIM sampling.

``kerasdl train --task diffusion --model diffusion_unet --dataset mnist5k`` trains a denoiser (a
registry entry of role ``denoiser``: :mod:`kerasdl.models.diffusion`) as in Ho, Jain & Abbeel
2020, "Denoising Diffusion Probabilistic Models" (NeurIPS):

* **Forward process.** ``T = timesteps`` noise levels ``beta_1..beta_T``; ``abar_t = prod_{s<=t}
  (1 - beta_s)`` and ``q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)``. ``schedule=linear``:
  betas evenly spaced from 1e-4 to 0.02 at T = 1000 (Ho et al.), both ends scaled by 1000 / T for
  another T (as Nichol & Dhariwal's code does, so that ``abar_T`` stays near 0 for small T);
  ``schedule=cosine``: ``abar_t = f(t) / f(0)``, ``f(t) = cos^2((t / T + s) / (1 + s) * pi / 2)``,
  s = 0.008, betas clipped at 0.999 (Nichol & Dhariwal 2021, "Improved Denoising Diffusion
  Probabilistic Models", ICML). The arrays are float64 NumPy (:func:`betas_for`, :func:`alpha_bar`).
  Timesteps are 0-based here: index ``t`` in ``0..T-1`` is the paper's ``t + 1``.
* **Training** (the "simple" loss of Ho et al., eq. 14): ``t ~ U{0..T-1}``, ``eps ~ N(0, I)``,
  ``loss = mean (eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t))^2`` (the mean over
  the example's features, then over the batch). ``conditional=true`` replaces a label by the
  *null* label (index ``num_classes``) with probability ``p_uncond`` (Ho & Salimans 2022,
  "Classifier-Free Diffusion Guidance"). The noise comes from stateless seeds made of the run's
  seed, the replica and ``optimizer.iterations``, so a resumed run draws what an uninterrupted one
  would; validation draws with a FIXED seed, so ``val_loss`` (the monitor, min) compares across
  epochs. ``--ema M`` keeps an exponential moving average of the weights (the optimizer's
  ``use_ema``; Ho et al. use 0.9999): validation, the checkpoint and the export see it.
* **Sampling** (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models", ICLR, eq. 12):
  ``S = sample_steps`` (or ``kerasdl sample --steps S``) timesteps evenly spaced over ``T-1..0``;
  from ``x_T ~ N(0, I)``, each step predicts ``x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``
  (clipped to [-1, 1] for images, to +-5 standard deviations for the standardised vectors:
  :data:`VECTOR_CLIP`; eps then re-derived from it) and moves to the previous kept
  timestep ``s``: ``x_s = sqrt(abar_s) x_0 + sqrt(1 - abar_s - sigma^2) eps + sigma z`` with
  ``sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s)``. ``eta=0`` is
  deterministic (DDIM); ``eta=1`` with S = T is DDPM's ancestral sampler. A conditional model
  samples with classifier-free guidance ``eps = (1 + w) eps(x, c) - w eps(x, null)``
  (``guidance=w``; 0: the conditional model alone). All noise comes from
  ``tf.random.stateless_normal`` with seed ``(seed, 0)`` for ``x_T`` and ``(seed, i + 1)`` for
  step ``i``: ``kerasdl sample --seed``, the figures and the export's ``sample`` signature run the
  same TensorFlow loop (:meth:`DiffusionTask.sampler`) and draw the same examples.

Images are modelled in [-1, 1] (:attr:`image_range`); the user sees [0, 1]. Vector data are
modelled standardised. Scored by :meth:`kerasdl.tasks.generative.GenerativeTask.evaluate` (FID,
KID, precision / recall against the test split) with ``sample_steps`` DDIM steps.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from kerasdl.engine.distribute import num_replicas, replica_id
from kerasdl.errors import KerasdlUsageError
from kerasdl.tasks.base import Endpoint, register_task
from kerasdl.tasks.generative import GenerativeTask

LINEAR_BETAS = (1e-4, 0.02)  # Ho et al. 2020, at T = 1000
COSINE_S = 0.008  # Nichol & Dhariwal 2021's offset
MAX_BETA = 0.999  # their clip of the cosine schedule's betas
VAL_SEED = 424242  # the fixed stream of the validation noise
# Vector data are standardised per feature: a predicted x_0 is clipped to this many standard
# deviations. At the noisiest steps x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) multiplies
# any error of eps by 1 / sqrt(abar_t) (~2000 at the last step of the cosine schedule, whose beta
# is clipped at 0.999), which images bound by clipping to [-1, 1]; vectors need a bound too.
VECTOR_CLIP = 5.0


# --------------------------------------------------------------------------- schedules (NumPy)

def linear_betas(timesteps: int) -> np.ndarray:
    """Ho et al. 2020's betas: ``linspace(1e-4, 0.02, T)`` at T = 1000, both ends times 1000 / T
    otherwise (Nichol & Dhariwal 2021's code), float64 (T,)."""
    scale = 1000.0 / int(timesteps)
    return np.linspace(scale * LINEAR_BETAS[0], scale * LINEAR_BETAS[1], int(timesteps), dtype=np.float64)


def cosine_betas(timesteps: int, s: float = COSINE_S, max_beta: float = MAX_BETA) -> np.ndarray:
    """Nichol & Dhariwal 2021's cosine schedule: ``beta_t = min(1 - abar_t / abar_{t-1}, max_beta)``
    with ``abar_t = f(t) / f(0)``, ``f(t) = cos^2((t / T + s) / (1 + s) * pi / 2)``, float64 (T,)."""
    T = int(timesteps)
    steps = np.arange(T + 1, dtype=np.float64) / T
    f = np.cos((steps + s) / (1.0 + s) * math.pi / 2.0) ** 2
    abar = f / f[0]
    return np.minimum(1.0 - abar[1:] / abar[:-1], max_beta)


def betas_for(schedule: str, timesteps: int) -> np.ndarray:
    """The betas of ``schedule`` ("linear" | "cosine") with ``timesteps`` steps."""
    if schedule == "linear":
        return linear_betas(timesteps)
    if schedule == "cosine":
        return cosine_betas(timesteps)
    raise KerasdlUsageError(f"unknown noise schedule {schedule!r}: use linear or cosine")


def alpha_bar(betas: np.ndarray) -> np.ndarray:
    """``abar_t = prod_{s<=t} (1 - beta_s)``, float64 (T,)."""
    return np.cumprod(1.0 - np.asarray(betas, np.float64))


def q_sample(x0, abar_t, eps):
    """A draw of ``q(x_t | x_0)``: ``sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` (Ho et al. 2020, eq. 4),
    ``abar_t`` broadcast against ``x0`` (shape (B,) for a batch is reshaped to (B, 1, ...));
    TensorFlow ops (NumPy inputs work too)."""
    import tensorflow as tf

    x0 = tf.convert_to_tensor(x0, tf.float32)
    abar_t = tf.cast(abar_t, tf.float32)
    if abar_t.shape.rank == 1 and x0.shape.rank > 1:
        abar_t = tf.reshape(abar_t, [-1] + [1] * (x0.shape.rank - 1))
    return tf.sqrt(abar_t) * x0 + tf.sqrt(1.0 - abar_t) * tf.cast(eps, tf.float32)


def ddim_timesteps(timesteps, steps):
    """The ``steps`` kept timesteps, descending from ``T-1`` (to 0 when steps >= 2), evenly spaced
    (rounded half to even): a TF int32 tensor (S,). ``steps == T`` keeps every timestep."""
    import tensorflow as tf

    T = tf.cast(timesteps, tf.float64)
    return tf.cast(tf.round(tf.linspace(T - 1.0, tf.constant(0.0, tf.float64), tf.cast(steps, tf.int32))), tf.int32)


def ddim_step(x, eps, abar_t, abar_prev, *, eta=0.0, noise=None, clip: float | None = None):
    """One DDIM update (Song et al. 2021, eq. 12) from ``x`` at a timestep with ``abar_t`` to the
    previous kept timestep (``abar_prev``; 1 past the last step), given the predicted ``eps``;
    ``clip``: the predicted x_0 is clipped to [-clip, clip] (and eps re-derived from it).
    Returns ``(x_prev, x0_pred)``; TensorFlow ops (NumPy inputs work too)."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x, tf.float32)
    eps = tf.cast(eps, tf.float32)
    abar_t, abar_prev = tf.cast(abar_t, tf.float32), tf.cast(abar_prev, tf.float32)
    x0 = (x - tf.sqrt(1.0 - abar_t) * eps) / tf.sqrt(abar_t)
    if clip:
        x0 = tf.clip_by_value(x0, -float(clip), float(clip))
        eps = (x - tf.sqrt(abar_t) * x0) / tf.sqrt(1.0 - abar_t)
    sigma = tf.cast(eta, tf.float32) * tf.sqrt((1.0 - abar_prev) / (1.0 - abar_t)) * tf.sqrt(1.0 - abar_t / abar_prev)
    direction = tf.sqrt(tf.maximum(1.0 - abar_prev - tf.square(sigma), 0.0)) * eps
    x_prev = tf.sqrt(abar_prev) * x0 + direction
    if noise is not None:
        x_prev = x_prev + sigma * tf.cast(noise, tf.float32)
    return x_prev, x0


# --------------------------------------------------------------------------- the trainable model

@keras.saving.register_keras_serializable(package="kerasdl")
class Diffusion(keras.Model):
    """A denoiser ``eps_theta`` with the DDPM training step (see the module docstring).

    ``call([x_t, t(, labels)])`` is the denoiser (a lone tensor ``x`` is taken at t = 0 with the
    null label). Data are ``(x_0, labels)`` batches in the model space; labels are used when
    ``num_classes`` > 0.
    """

    def __init__(self, denoiser, *, timesteps: int = 1000, schedule: str = "linear", num_classes: int = 0,
                 p_uncond: float = 0.1, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.denoiser = denoiser
        self.timesteps, self.schedule, self.num_classes = int(timesteps), schedule, int(num_classes)
        self.p_uncond, self.seed = float(p_uncond), int(seed)
        self.abar = alpha_bar(betas_for(schedule, self.timesteps)).astype(np.float32)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, inputs, training=False):
        if not isinstance(inputs, (list, tuple)):
            batch = ops.shape(inputs)[0]
            inputs = [inputs, ops.zeros((batch,), "int32")] + (
                [ops.full((batch,), self.num_classes, "int32")] if self.num_classes else [])
        return self.denoiser(list(inputs), training=training)

    def compile(self, optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        optimizer.build(self.denoiser.trainable_variables)  # BackupAndRestore finds every variable

    def simple_loss(self, x0, labels, seed, training: bool):
        """Per-example simple loss (float32) with t, eps (and the label drop) from ``seed``."""
        import tensorflow as tf

        batch = tf.shape(x0)[0]
        x0 = tf.cast(x0, tf.float32)
        t = tf.random.stateless_uniform([batch], seed=seed, minval=0, maxval=self.timesteps, dtype=tf.int32)
        eps = tf.random.stateless_normal(tf.shape(x0), seed=seed + tf.constant([0, 1], tf.int64))
        x_t = q_sample(x0, tf.gather(tf.constant(self.abar), t), eps)
        inputs = [x_t, t]
        if self.num_classes:
            labels = tf.cast(labels, tf.int32)
            if training and self.p_uncond > 0:
                drop = tf.random.stateless_uniform([batch], seed=seed + tf.constant([0, 2], tf.int64)) < self.p_uncond
                labels = tf.where(drop, tf.fill([batch], self.num_classes), labels)
            inputs.append(labels)
        pred = tf.cast(self.denoiser(inputs, training=training), tf.float32)
        axes = list(range(1, len(x0.shape)))
        return tf.reduce_mean(tf.square(eps - pred), axis=axes)

    def train_step(self, data):
        import tensorflow as tf

        x0, labels = data[0], data[1]
        step = tf.cast(self.optimizer.iterations, tf.int64)
        seed = tf.stack([tf.constant(self.seed * 1_000_003 + 17, tf.int64) + 7919 * replica_id(), step * 3])
        variables = self.denoiser.trainable_variables
        with tf.GradientTape() as tape:
            per = self.simple_loss(x0, labels, seed, training=True)
            local = tf.cast(tf.shape(per)[0], tf.float32)
            loss = tf.reduce_sum(per) / (local * num_replicas())  # sum / global batch
            if self.denoiser.losses:  # L2 penalties, scaled like Keras's own
                loss = loss + tf.add_n([tf.cast(v, tf.float32) for v in self.denoiser.losses]) / num_replicas()
            scaled = self.optimizer.scale_loss(loss) if hasattr(self.optimizer, "scale_loss") else loss
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self.loss_tracker.update_state(per)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        import tensorflow as tf

        x0, labels = data[0], data[1]
        per = self.simple_loss(x0, labels, tf.constant([self.seed, VAL_SEED], tf.int64), training=False)
        self.loss_tracker.update_state(per)
        return {"loss": self.loss_tracker.result()}

    def get_config(self):
        return {**super().get_config(), "denoiser": keras.saving.serialize_keras_object(self.denoiser),
                "timesteps": self.timesteps, "schedule": self.schedule, "num_classes": self.num_classes,
                "p_uncond": self.p_uncond, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        denoiser = keras.saving.deserialize_keras_object(config.pop("denoiser"))
        return cls(denoiser, **config)


def denoiser_of(model):
    """The denoiser of a trainable / rebuilt :class:`Diffusion` or of the inference model (itself)."""
    return model.denoiser if isinstance(model, Diffusion) else model


# --------------------------------------------------------------------------- the task

@register_task
class DiffusionTask(GenerativeTask):
    """Denoising diffusion (DDPM training, DDIM / ancestral sampling, classifier-free guidance)."""

    name = "diffusion"  # options: kerasdl.tasks.options.DiffusionOptions
    summary = "Denoising diffusion model: DDPM training, DDIM sampling, classifier-free guidance."
    paper = "Ho et al. 2020; Song et al. 2021; Nichol & Dhariwal 2021; Ho & Salimans 2022"
    roles = ("denoiser",)
    serving_outputs = ("eps",)
    image_range = (-1.0, 1.0)

    def __init__(self, config, info):
        super().__init__(config, info)
        self._samplers: dict = {}

    @property
    def alpha_bar(self) -> np.ndarray:
        """``abar_t`` (T,) float64 of the run's schedule."""
        return alpha_bar(betas_for(self.opts.schedule, self.opts.timesteps))

    def check_steps(self, steps: int | None) -> None:
        if steps is None:
            return
        T = int(self.opts.timesteps)
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= int(steps) <= T:
            raise KerasdlUsageError(f"--steps must be in [1, {T}] (this run's timesteps). Received: steps={steps}")

    # -- model ---------------------------------------------------------------------------------
    def build(self):
        from kerasdl.models import build_model

        opts = dict(self.config.model_options or {})
        denoiser = build_model(self.config.model, input_shape=tuple(self.info.input_shape),
                               num_classes=self.num_classes, **opts)
        return Diffusion(denoiser, timesteps=self.opts.timesteps, schedule=self.opts.schedule,
                         num_classes=self.num_classes, p_uncond=self.opts.p_uncond, seed=int(self.config.seed),
                         name="diffusion")

    def compile(self, model, optimizer, train_ds, val_ds, **speed):
        model.compile(optimizer=optimizer, **speed)
        return train_ds, val_ds

    def inference_model(self, model):
        return denoiser_of(model)

    # -- sampling ------------------------------------------------------------------------------
    def sampler(self, model):
        """The DDIM loop as a function of TF tensors ``(n, seed, steps, labels, start, stop)`` ->
        ``x_0`` (stop - start, ...) in the model space: rows ``start:stop`` of the ``n`` examples
        drawn with ``seed`` (the noise is drawn for all ``n`` and sliced, so a draw does not depend
        on how it is batched). ``labels`` (stop - start,) int32 are ignored when unconditional."""
        import tensorflow as tf

        denoiser = denoiser_of(model)
        abar = tf.constant(self.alpha_bar.astype(np.float32))
        T, shape = int(self.opts.timesteps), list(self.info.input_shape)
        eta, w = float(self.opts.eta), float(self.opts.guidance)
        conditional, null = self.conditional, int(self.info.num_classes)
        clip = 1.0 if self.info.is_image else VECTOR_CLIP

        def predict(x, t, labels):
            b = tf.shape(x)[0]
            ts = tf.fill([b], t)
            if not conditional:
                return tf.cast(denoiser([x, ts], training=False), tf.float32)
            if w == 0.0:
                return tf.cast(denoiser([x, ts, labels], training=False), tf.float32)
            both = tf.cast(denoiser([tf.concat([x, x], 0), tf.concat([ts, ts], 0),
                                     tf.concat([labels, tf.fill([b], null)], 0)], training=False), tf.float32)
            cond, uncond = both[:b], both[b:]
            return (1.0 + w) * cond - w * uncond  # Ho & Salimans 2022, eq. 6

        def run(n, seed, steps, labels, start, stop):
            seed = tf.cast(seed, tf.int64)
            taus = ddim_timesteps(T, steps)
            full = tf.concat([[n], shape], 0)
            x = tf.random.stateless_normal(full, seed=tf.stack([seed, tf.constant(0, tf.int64)]))[start:stop]
            labels = tf.cast(labels, tf.int32)

            def body(i, x):
                t = taus[i]
                prev = tf.where(i + 1 < steps, taus[tf.minimum(i + 1, steps - 1)], -1)
                abar_t = abar[t]
                abar_prev = tf.where(prev >= 0, abar[tf.maximum(prev, 0)], 1.0)
                eps = predict(x, t, labels)
                noise = None
                if eta > 0.0:
                    noise = tf.random.stateless_normal(
                        full, seed=tf.stack([seed, tf.cast(i, tf.int64) + 1]))[start:stop]
                x_prev, _ = ddim_step(x, eps, abar_t, abar_prev, eta=eta, noise=noise, clip=clip)
                return i + 1, x_prev

            _, x = tf.while_loop(lambda i, _: i < steps, body, (tf.constant(0), x),
                                 shape_invariants=(tf.TensorShape([]), tf.TensorShape([None] + shape)))
            return tf.clip_by_value(x, -1.0, 1.0) if self.info.is_image else x

        return run

    def _compiled(self, model):
        import tensorflow as tf

        key = id(denoiser_of(model))
        if key not in self._samplers:
            self._samplers = {key: tf.function(self.sampler(model), reduce_retracing=True)}
        return self._samplers[key]

    def generate(self, model, n, seed, labels=None, steps=None, batch: int = 250) -> np.ndarray:
        """``n`` examples in the model's space (``steps`` DDIM steps, default ``sample_steps``);
        a conditional model without ``labels`` draws the classes in turn."""
        import tensorflow as tf

        n, steps = int(n), int(steps if steps is not None else self.opts.sample_steps)
        self.check_steps(steps)
        if self.conditional and labels is None:
            labels = self.requested_labels(n)
        labels = np.zeros(n, np.int32) if labels is None else np.asarray(labels, np.int32)
        run = self._compiled(model)
        out = [np.asarray(run(tf.constant(n), tf.constant(int(seed)), tf.constant(steps),
                              tf.constant(labels[i:i + batch]), tf.constant(i), tf.constant(min(i + batch, n))))
               for i in range(0, n, batch)]
        return np.concatenate(out) if out else np.zeros((0,) + tuple(self.info.input_shape), np.float32)

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self, model, ds, **kw) -> dict:
        """The base class's quality report with ``steps`` (default ``sample_steps``) DDIM steps;
        ``guidance=w`` scores a conditional model at another guidance weight than its option's
        (the weight is a sampling choice: the denoiser is the same)."""
        import dataclasses

        steps = int(kw.pop("steps", None) or self.opts.sample_steps)
        self.check_steps(steps)
        guidance, opts = kw.pop("guidance", None), self.opts
        if guidance is not None:
            if not float(guidance) >= 0.0:
                raise KerasdlUsageError(f"guidance must be >= 0. Received: guidance={guidance}")
            self.opts, self._samplers = dataclasses.replace(opts, guidance=float(guidance)), {}
        try:
            report = super().evaluate(model, ds, steps=steps, **kw)
            report.update(ddim_steps=steps, eta=float(self.opts.eta), timesteps=int(self.opts.timesteps),
                          schedule=self.opts.schedule)
            if self.conditional:
                report["guidance"] = float(self.opts.guidance)
        finally:
            self.opts, self._samplers = opts, ({} if guidance is not None else self._samplers)
        return report

    # -- export --------------------------------------------------------------------------------
    def endpoints(self, model, run_dir: str = "") -> dict[str, Endpoint]:
        """serving_default: x_t (N, ...) float32 in the model space ([-1, 1] images), t (N,) int32
        [, labels (N,) int32; ``num_classes`` is the null label] -> {"eps"}; sample: n, seed,
        steps [, label: -1 = the classes in turn] (int32 scalars) -> {"samples"} in the user's
        scale (images in [0, 1], vectors in the data's units) [and "labels"], the same draw as
        ``kerasdl sample``. Plain TensorFlow: loads and runs without kerasdl."""
        import tensorflow as tf

        denoiser = denoiser_of(model)
        classes, conditional, T = int(self.info.num_classes), self.conditional, int(self.opts.timesteps)
        to_user = self.tf_to_user()
        run = self.sampler(model)
        shape = list(self.info.input_shape)

        def checked_labels(labels, allow_null=False):
            labels = tf.cast(labels, tf.int32)
            top = classes + 1 if allow_null else classes
            tf.debugging.assert_less(labels, top, message=f"labels must be in [0, {top})")
            tf.debugging.assert_non_negative(labels, message=f"labels must be in [0, {top})")
            return labels

        def eps(x_t, t, labels=None):
            t = tf.cast(t, tf.int32)
            tf.debugging.assert_non_negative(t, message=f"t must be in [0, {T})")
            tf.debugging.assert_less(t, T, message=f"t must be in [0, {T})")
            inputs = [x_t, t] + ([checked_labels(labels, allow_null=True)] if conditional else [])
            return {"eps": tf.cast(denoiser(inputs, training=False), tf.float32)}

        def sample(n, seed, steps, label=None):
            tf.debugging.assert_greater_equal(steps, 1, message=f"steps must be in [1, {T}]")
            tf.debugging.assert_less_equal(steps, T, message=f"steps must be in [1, {T}]")
            if conditional:
                label = tf.cast(label, tf.int32)
                tf.debugging.assert_less(label, classes, message=f"label must be -1 or in [0, {classes})")
                tf.debugging.assert_greater_equal(label, -1, message=f"label must be -1 or in [0, {classes})")
                labels = tf.where(label < 0, tf.range(n) % classes, tf.fill([n], label))
            else:
                labels = tf.zeros([n], tf.int32)
            x = run(n, seed, steps, labels, 0, n)
            out = {"samples": to_user(x)}
            if conditional:
                out["labels"] = labels
            return out

        x_spec = tf.TensorSpec([None] + shape, tf.float32, name="x_t")
        t_spec = tf.TensorSpec([None], tf.int32, name="t")
        scalars = [tf.TensorSpec([], tf.int32, name=k) for k in ("n", "seed", "steps")]
        if conditional:
            serve = Endpoint(eps, [x_spec, t_spec, tf.TensorSpec([None], tf.int32, name="labels")])
            samp = Endpoint(sample, scalars + [tf.TensorSpec([], tf.int32, name="label")])
        else:
            serve = Endpoint(lambda x_t, t: eps(x_t, t), [x_spec, t_spec])
            samp = Endpoint(lambda n, seed, steps: sample(n, seed, steps), scalars)
        return {"serving_default": serve, "sample": samp}

    # -- tuning --------------------------------------------------------------------------------
    def tune_objectives(self) -> dict[str, str]:
        return {"val_loss": "min"}
