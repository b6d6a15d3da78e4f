"""Optimizers and learning-rate schedules, by name.

Schedules are per-step ``LearningRateSchedule`` objects written with ``keras.ops`` (so the
optimizer evaluates them inside the compiled train step, no Python per batch):

* ``constant``  -- the base rate;
* ``step``      -- multiply by ``decay_factor`` every ``decay_epochs`` epochs (He et al. 2016);
* ``cosine``    -- half-cosine from the base rate to ``min_lr`` (Loshchilov & Hutter 2017, SGDR
  without restarts);
* ``onecycle``  -- linear ramp up to the base rate over the first 30% then cosine annealing to
  ``min_lr`` (Smith & Topin 2019);
* ``plateau``   -- constant, lowered by a ``ReduceLROnPlateau`` callback (see training.py).

Every schedule can start with a linear warmup from 0 over ``warmup_steps`` (Goyal et al. 2017).
"""

from __future__ import annotations

import math

import keras
from keras import ops

from kerasdl.config import RunConfig


@keras.saving.register_keras_serializable(package="kerasdl")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup followed by one of the named decay rules."""

    def __init__(
        self,
        base_lr: float,
        kind: str = "constant",
        total_steps: int = 1,
        warmup_steps: int = 0,
        decay_steps: int = 1,
        decay_factor: float = 0.1,
        min_lr: float = 0.0,
    ):
        self.base_lr = float(base_lr)
        self.kind = kind
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = max(int(warmup_steps), 0)
        self.decay_steps = max(int(decay_steps), 1)
        self.decay_factor = float(decay_factor)
        self.min_lr = float(min_lr)

    def _after_warmup(self, step):
        # `t` counts steps after warmup; `span` is how many such steps the run has.
        t = ops.maximum(step - self.warmup_steps, 0.0)
        span = float(max(self.total_steps - self.warmup_steps, 1))
        lr, low = self.base_lr, self.min_lr
        if self.kind == "step":
            return lr * ops.power(self.decay_factor, ops.floor(t / self.decay_steps))
        if self.kind == "cosine":
            frac = ops.minimum(t / span, 1.0)
            return low + 0.5 * (lr - low) * (1.0 + ops.cos(math.pi * frac))
        if self.kind == "onecycle":
            # Ramp from lr/25 to lr over 30% of the steps, then cosine down to min_lr.
            up = 0.3 * span
            start = lr / 25.0
            ramp = start + (lr - start) * ops.minimum(t / up, 1.0)
            frac = ops.clip((t - up) / (span - up), 0.0, 1.0)
            down = low + 0.5 * (lr - low) * (1.0 + ops.cos(math.pi * frac))
            return ops.where(t < up, ramp, down)
        return ops.convert_to_tensor(lr, dtype="float32") + 0.0 * t  # constant / plateau

    def __call__(self, step):
        step = ops.cast(step, "float32")
        lr = ops.cast(self._after_warmup(step), "float32")
        if self.warmup_steps:
            warm = self.base_lr * (step + 1.0) / float(self.warmup_steps)
            lr = ops.where(step < self.warmup_steps, warm, lr)
        return lr

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "kind": self.kind,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "decay_factor": self.decay_factor,
            "min_lr": self.min_lr,
        }


def make_schedule(config: RunConfig, steps_per_epoch: int) -> WarmupSchedule:
    return WarmupSchedule(
        base_lr=config.learning_rate,
        kind=config.schedule,
        total_steps=config.epochs * steps_per_epoch,
        warmup_steps=round(config.warmup_epochs * steps_per_epoch),
        decay_steps=config.lr_decay_epochs * steps_per_epoch,
        decay_factor=config.lr_decay_factor,
        min_lr=config.min_learning_rate,
    )


def make_optimizer(config: RunConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer named in ``config`` driven by its learning-rate schedule.

    ``plateau`` needs a mutable rate for ``ReduceLROnPlateau``, so it gets a plain float unless
    warmup is asked for (then the warmup callback in training.py adjusts it).
    """
    if config.schedule == "plateau":
        lr = float(config.learning_rate)
    else:
        lr = make_schedule(config, steps_per_epoch)
    wd = {} if config.weight_decay is None else {"weight_decay": config.weight_decay}
    name = config.optimizer
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, **wd)
    if name == "momentum":
        return keras.optimizers.SGD(learning_rate=lr, momentum=config.momentum, **wd)
    if name == "nesterov":
        return keras.optimizers.SGD(learning_rate=lr, momentum=config.momentum, nesterov=True, **wd)
    if name == "adagrad":
        return keras.optimizers.Adagrad(learning_rate=lr, **wd)
    if name == "adadelta":
        return keras.optimizers.Adadelta(learning_rate=lr, **wd)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr, **wd)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr, **wd)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, **wd)
    raise AssertionError(f"RunConfig.validate lets through unknown optimizer {name!r}")
