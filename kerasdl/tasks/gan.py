"""The GAN task: a generator and a discriminator trained against each other (Goodfellow et al. 2014).

``kerasdl train --task gan --model dcgan_generator --dataset mnist5k`` trains the generator named
by ``--model`` (a registry entry of role ``generator``) against its companion discriminator (or
``--task-opt discriminator=NAME``). Losses (``--task-opt loss=``), with ``D`` the discriminator's
logit and ``softplus(t) = log(1 + e^t)``:

* ``minimax`` (Goodfellow et al. 2014): D minimises ``softplus(-D(x)) + softplus(D(G(z)))``, the
  generator minimises ``-softplus(D(G(z)))`` = ``log(1 - sigmoid(D(G(z))))`` (saturates early on);
* ``nonsaturating`` (the same paper's practical variant; the default): the generator minimises
  ``softplus(-D(G(z)))`` = ``-log sigmoid(D(G(z)))``;
* ``hinge`` (Lim & Ye 2017; Miyato et al. 2018): D minimises ``relu(1 - D(x)) + relu(1 + D(G(z)))``,
  the generator ``-D(G(z))``;
* ``wgan-gp`` (Gulrajani et al. 2017): the critic minimises ``D(G(z)) - D(x) + lambda (||grad
  D(x_hat)||_2 - 1)^2`` on random interpolates ``x_hat``, the generator ``-D(G(z))``. The critic
  must not use batch norm: for images the task builds the discriminator with ``norm=layer``, as the
  paper does (vector critics have no normalisation).

``n_critic=K`` takes K discriminator steps (each with fresh noise, on the batch at hand, as the
keras.io WGAN-GP example does) per generator step; ``d_lr_scale`` sets the discriminator's learning
rate to ``--lr`` times it (the two time-scale update rule, Heusel et al. 2017); ``beta_1`` /
``beta_2`` set Adam's moments of both (0.5 / 0.999 by default, as Radford et al.); ``--ema M`` keeps an
exponential moving average of the *generator* (Yazici et al. 2019): it is what validation, the
checkpoint and the export see. ``conditional=true`` gives both networks the class (Mirza &
Osindero 2014). ``pack=m`` (PacGAN, Lin et al. 2018) shows the discriminator m samples at once,
concatenated, so it can see a batch's proportions: the fix for mode collapse on the coin and the
8-Gaussian ring (a generator that puts every sample on one mode is told apart at once).

How it fits the engine: :class:`GAN` overrides ``train_step`` / ``test_step`` (TensorFlow: training
runs under ``tf.distribute``), holds its second optimizer as ``d_optimizer`` (saved with the model's
weights, so ``--resume`` restores both), and draws its noise from stateless seeds made of the run's
seed, the replica and the discriminator's step count: a resumed run draws what an uninterrupted one
would. A GAN's losses do not measure sample quality, so the run keeps its *last* epoch (monitor
``epoch``) and is scored by :meth:`kerasdl.tasks.generative.GenerativeTask.evaluate`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kerasdl.engine.callbacks import LAST_EPOCH
from kerasdl.engine.distribute import num_replicas, replica_id
from kerasdl.tasks.base import Endpoint, register_task
from kerasdl.tasks.generative import GenerativeTask, prior_codes


def discriminator_loss(kind: str, real, fake):
    """Per-example discriminator loss from the logits on real and generated examples."""
    if kind in ("minimax", "nonsaturating"):
        return ops.softplus(-real) + ops.softplus(fake)
    if kind == "hinge":
        return ops.relu(1.0 - real) + ops.relu(1.0 + fake)
    return fake - real  # wgan-gp (its penalty is added by the model)


def generator_loss(kind: str, fake):
    """Per-example generator loss from the discriminator's logits on generated examples."""
    if kind == "minimax":
        return -ops.softplus(fake)
    if kind == "nonsaturating":
        return ops.softplus(-fake)
    return -fake  # hinge, wgan-gp


@keras.saving.register_keras_serializable(package="kerasdl")
class GAN(keras.Model):
    """A generator and a discriminator with their own ``train_step``.

    ``call(z)`` (or ``call([z, labels])`` when conditional) is the generator. Data are
    ``(x, labels)`` batches in the generator's output space; the labels are used when
    ``num_classes`` > 0.
    """

    def __init__(self, generator, discriminator, *, latent_dim: int, loss: str = "nonsaturating",
                 n_critic: int = 1, gp_weight: float = 10.0, num_classes: int = 0, seed: int = 0, pack: int = 1,
                 **kwargs):
        super().__init__(**kwargs)
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim, self.loss_kind, self.n_critic = int(latent_dim), loss, int(n_critic)
        self.gp_weight, self.num_classes, self.seed = float(gp_weight), int(num_classes), int(seed)
        self.pack = int(pack)
        self.d_optimizer = None
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("d_loss", "g_loss", "d_real", "d_fake")
                         + (("gradient_penalty",) if loss == "wgan-gp" else ())}
        self.built = True  # both networks are built functional models: nothing to trace first

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def compile(self, optimizer, d_optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        self.d_optimizer = d_optimizer
        # Built now, so BackupAndRestore finds every optimizer variable to restore.
        optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)

    # -- pieces --------------------------------------------------------------------------------
    def _inputs(self, main, labels):
        return [main, labels] if self.num_classes else main

    def _judge(self, x, labels, training):
        """The discriminator's logits (B', ) of ``x``, packed (PacGAN) when ``pack`` > 1."""
        return ops.cast(self.discriminator(self._inputs(pack(x, self.pack), labels), training=training),
                        "float32")[:, 0]

    def _noise(self, shape, salt: int):
        import tensorflow as tf

        step = tf.cast(self.d_optimizer.iterations, tf.int64)
        seed = tf.stack([tf.constant(self.seed * 1_000_003 + salt, tf.int64) + 7919 * replica_id(), step])
        return tf.random.stateless_normal(shape, seed=seed)

    def _per_batch(self, per_example):
        """Sum over the local examples / the global batch (Keras's own loss scaling)."""
        per_example = ops.cast(per_example, "float32")
        local = ops.cast(ops.shape(per_example)[0], "float32")
        return ops.sum(per_example) / (local * num_replicas())

    def _penalty(self, real, fake, labels, salt: int):
        import tensorflow as tf

        real, fake = pack(real, self.pack), pack(fake, self.pack)
        batch = tf.shape(real)[0]
        eps = tf.reshape(tf.random.stateless_uniform(
            [batch], seed=tf.stack([tf.constant(self.seed * 31 + salt, tf.int64) + 7919 * replica_id(),
                                    tf.cast(self.d_optimizer.iterations, tf.int64)])),
            [-1] + [1] * (len(real.shape) - 1))
        mixed = eps * real + (1.0 - eps) * tf.cast(fake, real.dtype)
        with tf.GradientTape() as tape:
            tape.watch(mixed)
            score = self.discriminator(self._inputs(mixed, labels), training=True)
        grads = tape.gradient(score, mixed)
        norm = tf.sqrt(tf.reduce_sum(tf.square(tf.cast(grads, tf.float32)),
                                     axis=list(range(1, len(real.shape)))) + 1e-12)
        return tf.square(norm - 1.0)

    # -- steps ---------------------------------------------------------------------------------
    def train_step(self, data):
        import tensorflow as tf

        real, labels = data[0], data[1]
        batch = tf.shape(real)[0]
        labels = tf.cast(labels, tf.int32) if self.num_classes else labels
        d_vars = self.discriminator.trainable_variables
        for k in range(self.n_critic):
            z = self._noise([batch, self.latent_dim], salt=k)
            with tf.GradientTape() as tape:
                fake = self.generator(self._inputs(z, labels), training=True)
                d_real = self._judge(real, labels, training=True)
                d_fake = self._judge(fake, labels, training=True)
                per = discriminator_loss(self.loss_kind, d_real, d_fake)
                if self.loss_kind == "wgan-gp":
                    penalty = self._penalty(real, fake, labels, salt=k)
                    per = per + self.gp_weight * penalty
                d_loss = self._per_batch(per)
            self.d_optimizer.apply(tape.gradient(d_loss, d_vars), d_vars)
        z = self._noise([batch, self.latent_dim], salt=1000)
        g_vars = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            fake = self.generator(self._inputs(z, labels), training=True)
            score = self._judge(fake, labels, training=True)
            g_loss = self._per_batch(generator_loss(self.loss_kind, score))
        self.optimizer.apply(tape.gradient(g_loss, g_vars), g_vars)
        scale = float(num_replicas())
        self.trackers["d_loss"].update_state(d_loss * scale)
        self.trackers["g_loss"].update_state(g_loss * scale)
        self.trackers["d_real"].update_state(d_real)
        self.trackers["d_fake"].update_state(d_fake)
        if self.loss_kind == "wgan-gp":
            self.trackers["gradient_penalty"].update_state(penalty)
        return {name: m.result() for name, m in self.trackers.items()}

    def test_step(self, data):
        import tensorflow as tf

        real, labels = data[0], data[1]
        labels = tf.cast(labels, tf.int32) if self.num_classes else labels
        z = tf.random.stateless_normal([tf.shape(real)[0], self.latent_dim],
                                       seed=tf.constant([self.seed, 424242], tf.int64))
        fake = self.generator(self._inputs(z, labels), training=False)
        d_real = self._judge(real, labels, training=False)
        d_fake = self._judge(fake, labels, training=False)
        self.trackers["d_loss"].update_state(discriminator_loss(self.loss_kind, d_real, d_fake))
        self.trackers["g_loss"].update_state(generator_loss(self.loss_kind, d_fake))
        self.trackers["d_real"].update_state(d_real)
        self.trackers["d_fake"].update_state(d_fake)
        return {name: m.result() for name, m in self.trackers.items() if name != "gradient_penalty"}

    def get_config(self):
        return {**super().get_config(),
                "generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "latent_dim": self.latent_dim, "loss": self.loss_kind, "n_critic": self.n_critic,
                "gp_weight": self.gp_weight, "num_classes": self.num_classes, "seed": self.seed, "pack": self.pack}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        generator = keras.saving.deserialize_keras_object(config.pop("generator"))
        discriminator = keras.saving.deserialize_keras_object(config.pop("discriminator"))
        return cls(generator, discriminator, **config)


def pack(x, m: int):
    """PacGAN's packing (Lin et al. 2018): ``m`` consecutive examples become one, concatenated
    along the last axis -- vectors (B, F) -> (B/m, m F), images (B, H, W, C) -> (B/m, H, W, m C).
    A batch that ``m`` does not divide loses its last ``B mod m`` examples."""
    if m == 1:
        return x
    import tensorflow as tf

    inner = list(x.shape[1:])
    b = tf.shape(x)[0] // m
    x = tf.reshape(x[: b * m], [b, m] + inner)  # (B/m, m, ..., C)
    rank = len(inner) + 2
    x = tf.transpose(x, [0] + list(range(2, rank - 1)) + [1, rank - 1])  # (B/m, ..., m, C)
    return tf.reshape(x, [b] + inner[:-1] + [inner[-1] * m])  # example 0's channels, then example 1's, ...


def generator_of(model):
    """The generator of a trainable / rebuilt :class:`GAN` or of the inference model (itself)."""
    return model.generator if isinstance(model, GAN) else model


@register_task
class GANTask(GenerativeTask):
    """Generative adversarial network: minimax, non-saturating, hinge or WGAN-GP; conditional option."""

    name = "gan"  # options: kerasdl.tasks.options.GANOptions
    summary = "Generative adversarial network (minimax, non-saturating, hinge, WGAN-GP; conditional)."
    paper = "Goodfellow et al. 2014; Radford et al. 2016; Mirza & Osindero 2014; Gulrajani et al. 2017"
    roles = ("generator",)

    @property
    def image_range(self):
        return (-1.0, 1.0)  # tanh generators (Radford et al. 2016)

    def monitor(self) -> tuple[str, str]:
        """The last epoch (``epoch``, max), unless ``--monitor`` names a logged loss."""
        name = self.config.monitor
        logged = {"val_d_loss", "val_g_loss", "d_loss", "g_loss"}
        if name in logged:
            return name, "min"
        return LAST_EPOCH, "max"

    def check_model(self) -> None:
        super().check_model()
        from kerasdl.errors import KerasdlUsageError
        from kerasdl.models import list_models, model_info

        name = self.discriminator_name
        if not name:
            raise KerasdlUsageError(f"generator {self.config.model!r} names no discriminator: "
                                    f"give --task-opt discriminator=NAME ({', '.join(list_models(role='discriminator'))})")
        role = model_info(name).role
        if role not in ("discriminator", "critic"):
            raise KerasdlUsageError(f"discriminator={name!r} is a {role}; use one of "
                                    f"{', '.join(list_models(role='discriminator'))}")

    @property
    def discriminator_name(self) -> str:
        from kerasdl.models import model_info

        return self.opts.discriminator or model_info(self.config.model).companion or ""

    # -- model ---------------------------------------------------------------------------------
    def _parts(self):
        from kerasdl.models import build_model, model_info

        opts = dict(self.config.model_options or {})
        shape = tuple(self.info.input_shape)
        k = self.opts.latent_dim
        generator = build_model(self.config.model, latent_dim=k, output_shape=shape, num_classes=self.num_classes,
                                name="generator", **opts)
        d_name = self.discriminator_name
        d_valid = model_info(d_name).overrides
        d_opts = {key: v for key, v in opts.items() if key in d_valid and key not in ("name",)}
        if self.opts.loss == "wgan-gp" and "norm" in d_valid and self.info.is_image:
            # No batch norm in a WGAN-GP critic: the penalty is per example (Gulrajani et al. 2017
            # use layer norm in their image critics). Vector critics keep theirs (none): layer norm
            # on 1-D / 2-D inputs makes the input gradient blow up where the units' spread vanishes.
            d_opts.setdefault("norm", "layer")
        packed = shape[:-1] + (shape[-1] * self.opts.pack,)  # PacGAN: m examples side by side
        discriminator = build_model(d_name, input_shape=packed, num_classes=self.num_classes, name="discriminator",
                                    **d_opts)
        return generator, discriminator

    def build(self):
        generator, discriminator = self._parts()
        return GAN(generator, discriminator, latent_dim=self.opts.latent_dim, loss=self.opts.loss,
                   n_critic=self.opts.n_critic, gp_weight=self.opts.gp_weight, num_classes=self.num_classes,
                   seed=int(self.config.seed), pack=self.opts.pack, name="gan")

    def compile(self, model, optimizer, train_ds, val_ds, **speed):
        from kerasdl.engine import distribute
        from kerasdl.engine.optim import make_optimizer

        config = self.config
        lr = distribute.run_learning_rate(config) * float(self.opts.d_lr_scale)
        steps = max(1, int(train_ds.cardinality())) if int(train_ds.cardinality()) > 0 else 1
        d_optimizer = make_optimizer(config.replace(learning_rate=lr, ema=None), steps)
        for opt in (optimizer, d_optimizer):  # Adam's moments as GANs use them (Radford et al. 2016)
            inner = getattr(opt, "inner_optimizer", opt)
            if hasattr(inner, "beta_1") and hasattr(inner, "beta_2"):
                inner.beta_1, inner.beta_2 = float(self.opts.beta_1), float(self.opts.beta_2)
        model.compile(optimizer=optimizer, d_optimizer=d_optimizer, **speed)
        return train_ds, val_ds

    def inference_model(self, model):
        return generator_of(model)

    # -- sampling ------------------------------------------------------------------------------
    def generate(self, model, n, seed, labels=None, steps=None, batch: int = 500) -> np.ndarray:
        generator = generator_of(model)
        z = np.asarray(prior_codes(int(n), self.opts.latent_dim, int(seed)))
        out = []
        for i in range(0, int(n), batch):
            inputs = [z[i:i + batch], labels[i:i + batch]] if self.conditional else z[i:i + batch]
            out.append(np.asarray(generator(inputs, training=False)))
        return np.concatenate(out) if out else np.zeros((0,) + tuple(self.info.input_shape), np.float32)

    # -- export --------------------------------------------------------------------------------
    def endpoints(self, model, run_dir: str = "") -> dict[str, Endpoint]:
        """serving_default / generate: z (N, k) [+ labels (N,)] -> {"samples"} in the user's scale
        (images in [0, 1], vectors in the data's units); sample: n, seed [, label: -1 = the
        classes in turn] -> {"samples", "z"}, the same draw as ``kerasdl sample``."""
        import tensorflow as tf

        generator = generator_of(model)
        k, classes, conditional = self.opts.latent_dim, int(self.info.num_classes), self.conditional
        to_user = self.tf_to_user()

        def checked(labels):
            labels = tf.cast(labels, tf.int32)
            tf.debugging.assert_less(labels, classes, message=f"labels must be in [0, {classes})")
            tf.debugging.assert_non_negative(labels, message=f"labels must be in [0, {classes})")
            return labels

        def generate(z, labels=None):
            inputs = [z, checked(labels)] if conditional else z
            return {"samples": to_user(generator(inputs, training=False))}

        def sample(n, seed, label=None):
            z = prior_codes(n, k, seed)
            if conditional:
                turns = tf.range(n) % classes
                labels = tf.where(label < 0, turns, tf.fill([n], label))
                return {"samples": generate(z, labels)["samples"], "z": z}
            return {"samples": generate(z)["samples"], "z": z}

        z_spec = tf.TensorSpec([None, k], tf.float32, name="z")
        scalars = [tf.TensorSpec([], tf.int32, name="n"), tf.TensorSpec([], tf.int32, name="seed")]
        if conditional:
            gen = Endpoint(generate, [z_spec, tf.TensorSpec([None], tf.int32, name="labels")])
            samp = Endpoint(sample, scalars + [tf.TensorSpec([], tf.int32, name="label")])
        else:
            gen = Endpoint(lambda z: generate(z), [z_spec])
            samp = Endpoint(lambda n, seed: sample(n, seed), scalars)
        return {"serving_default": gen, "generate": gen, "sample": samp}

    # -- tuning --------------------------------------------------------------------------------
    def tune_objectives(self) -> dict[str, str]:
        """None: a GAN's losses do not measure its samples (``kerasdl tune`` refuses in one line)."""
        return {}
