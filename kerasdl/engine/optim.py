"""Optimizers and learning-rate schedules, by name.

Schedules are per-step ``LearningRateSchedule`` objects written with ``keras.ops`` (so the
optimizer evaluates them inside the compiled train step, no Python per batch):

* ``constant``  -- the base rate;
* ``step``      -- multiply by ``decay_factor`` every ``decay_epochs`` epochs (He et al. 2016);
* ``cosine``    -- half-cosine from the base rate to ``min_lr`` (Loshchilov & Hutter 2017, SGDR
  without restarts);
* ``onecycle``  -- linear ramp up to the base rate over the first 30% then cosine annealing to
  ``min_lr`` (Smith & Topin 2019);
* ``cyclic``    -- triangular cyclical rate between ``min_lr`` (``lr / 10`` when 0) and the base
  rate, one full up-and-down cycle every ``cycle_steps`` (Smith 2017, "Cyclical Learning Rates");
* ``plateau``   -- constant, lowered by a ``ReduceLROnPlateau`` callback (see training.py).

``make_optimizer`` also wires the gradient options of a run: clipping by value
(``clipvalue``), by global norm (``global_clipnorm``), adaptive gradient clipping
(:func:`kerasdl.engine.regularize.with_gradient_transform`), gradient accumulation
(``gradient_accumulation_steps``) and an exponential moving average of the weights
(``use_ema``). Each is off by default and then adds nothing to the train step.

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
        cycle_steps: int = 1,
    ):
        self.base_lr = float(base_lr)
        self.kind = kind
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = max(int(warmup_steps), 0)
        self.decay_steps = max(int(decay_steps), 1)
        self.decay_factor = float(decay_factor)
        self.min_lr = float(min_lr)
        self.cycle_steps = max(int(cycle_steps), 2)

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
        if self.kind == "cyclic":
            # Triangle wave: low at t = 0, lr at half a cycle, low again at a full cycle.
            low = low if low > 0 else lr / 10.0
            phase = t / float(self.cycle_steps) - ops.floor(t / float(self.cycle_steps))  # in [0, 1)
            return low + (lr - low) * (1.0 - ops.abs(2.0 * phase - 1.0))
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
            "cycle_steps": self.cycle_steps,
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
        cycle_steps=round(config.lr_cycle_epochs * steps_per_epoch),
    )


def make_optimizer(config: RunConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer named in ``config`` driven by its learning-rate schedule.

    ``plateau`` needs a mutable rate for ``ReduceLROnPlateau``, so it gets a plain float unless
    warmup is asked for (then the warmup callback in training.py adjusts it). Gradient clipping,
    AGC, accumulation and EMA come from ``config`` (see the module docstring).
    """
    optimizer = _named_optimizer(config, steps_per_epoch, **gradient_options(config))
    if config.agc:
        from kerasdl.engine.regularize import with_gradient_transform

        optimizer = with_gradient_transform(optimizer, agc=config.agc)
    return optimizer


def gradient_options(config: RunConfig) -> dict:
    """Keyword arguments every keras optimizer takes, for the run's gradient options (only those set)."""
    kw = {}
    if config.clip_value:
        kw["clipvalue"] = float(config.clip_value)
    if config.clip_norm:
        kw["global_clipnorm"] = float(config.clip_norm)
    if config.accumulate > 1:
        kw["gradient_accumulation_steps"] = int(config.accumulate)
    if config.ema:
        kw["use_ema"] = True
        kw["ema_momentum"] = float(config.ema)
    return kw


def _named_optimizer(config: RunConfig, steps_per_epoch: int, **kw) -> keras.optimizers.Optimizer:
    if config.schedule == "plateau":
        lr = float(config.learning_rate)
    else:
        lr = make_schedule(config, steps_per_epoch)
    wd = dict(kw) if config.weight_decay is None else {"weight_decay": config.weight_decay, **kw}
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
