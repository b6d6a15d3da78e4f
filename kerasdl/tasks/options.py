"""Every task's name and ``--task-opt`` keys, as data the config checks before anything runs.

The option dataclasses live here, not in the task modules, so that :class:`kerasdl.config.RunConfig`
validates ``task`` and ``task_options`` without importing any task (nor Keras): the config layer sits
below the tasks (see docs/DESIGN.md, "Layers"). A dataclass's ``check()`` refuses bad values with
one line; field types coerce ``--task-opt KEY=VALUE`` strings.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kerasdl.errors import KerasdlUsageError, UnknownNameError, closest

__all__ = ["OPTIONS", "TASK_NAMES", "DEFAULT_MODELS", "COMMANDS", "default_model", "NoOptions", "AutoencoderOptions", "VAEOptions", "parse_options"]


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """A task without ``--task-opt`` keys."""


@dataclasses.dataclass(frozen=True)
class AutoencoderOptions:
    """``--task-opt`` keys of the autoencoder task."""

    latent_dim: int = 16  # code size k
    noise: float = 0.0  # > 0: a denoising AE (Vincent et al. 2008), Gaussian noise std on [0, 1] inputs
    loss: str = "mse"  # "mse" or "bce" (Bernoulli on [0, 1] inputs)
    eval_noise: float = -1.0  # noise std of the denoising figures at evaluation; < 0: noise, or 0.3 when 0

    def check(self) -> None:
        if self.latent_dim < 1:
            raise KerasdlUsageError(f"latent_dim must be >= 1. Received: latent_dim={self.latent_dim}")
        if not 0.0 <= self.noise:
            raise KerasdlUsageError(f"noise must be >= 0. Received: noise={self.noise}")
        if self.loss not in ("mse", "bce"):
            raise UnknownNameError("autoencoder loss", self.loss, ("mse", "bce"))


@dataclasses.dataclass(frozen=True)
class VAEOptions:
    """``--task-opt`` keys of the VAE task (Kingma & Welling 2014)."""

    latent_dim: int = 16
    beta: float = 1.0  # weight of the KL term (beta-VAE, Higgins et al. 2017)
    decoder: str = "bernoulli"  # "bernoulli" (logits, [0, 1] pixels) or "gaussian"
    sigma: float = 1.0  # standard deviation of the Gaussian decoder
    kl_warmup_epochs: int = 0  # KL weight ramps linearly from 0 to beta over these epochs
    iw_samples: int = 100  # K of the importance-weighted NLL estimate (Burda et al. 2016)

    def check(self) -> None:
        if self.latent_dim < 1:
            raise KerasdlUsageError(f"latent_dim must be >= 1. Received: latent_dim={self.latent_dim}")
        if not self.beta >= 0.0:
            raise KerasdlUsageError(f"beta must be >= 0. Received: beta={self.beta}")
        if self.decoder not in ("bernoulli", "gaussian"):
            raise UnknownNameError("VAE decoder", self.decoder, ("bernoulli", "gaussian"))
        if not self.sigma > 0.0:
            raise KerasdlUsageError(f"sigma must be > 0. Received: sigma={self.sigma}")
        if self.kl_warmup_epochs < 0:
            raise KerasdlUsageError(f"kl_warmup_epochs must be >= 0. Received: kl_warmup_epochs={self.kl_warmup_epochs}")
        if self.iw_samples < 1:
            raise KerasdlUsageError(f"iw_samples must be >= 1. Received: iw_samples={self.iw_samples}")


# Task name -> its options dataclass (the registry's names: kerasdl.tasks.base maps them to modules).
OPTIONS: dict[str, type] = {
    "classification": NoOptions,
    "regression": NoOptions,
    "segmentation": NoOptions,
    "autoencoder": AutoencoderOptions,
    "vae": VAEOptions,
}
TASK_NAMES = tuple(sorted(OPTIONS))
# The model a task trains when --model is not given (the supervised tasks: LeNet-5, as always).
DEFAULT_MODELS = {"segmentation": "unet", "autoencoder": "dense_encoder", "vae": "dense_encoder"}


# The run-level commands beyond train/evaluate/export, and the tasks whose runs they take; the
# task classes get their ``generative`` / ``encodes`` flags from here (kerasdl.tasks.register_task).
COMMANDS: dict[str, tuple[str, ...]] = {"sample": ("vae",), "encode": ("autoencoder", "vae")}


def default_model(task: str) -> str:
    return DEFAULT_MODELS.get(task, "lenet5")


def parse_options(task: str, values: dict) -> Any:
    """``values`` (``config.task_options``) checked against ``task``'s options; strings coerced."""
    if task not in OPTIONS:
        raise UnknownNameError("task", task, TASK_NAMES)
    cls = OPTIONS[task]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in fields:
            hint = closest(str(key), fields)
            takes = (f"task {task!r} takes {', '.join(fields)}" if fields else f"task {task!r} takes no --task-opt options")
            raise KerasdlUsageError(
                f"unknown task option {key!r}"
                + (f" (did you mean {', '.join(repr(h) for h in hint)}?)" if hint else "")
                + f": {takes}. Received: task_options={dict(values)!r}"
            )
    kwargs = {key: _coerce(task, key, value, fields[key].default) for key, value in values.items()}
    opts = cls(**kwargs)
    check = getattr(opts, "check", None)
    if check is not None:
        try:
            check()
        except KerasdlUsageError as exc:
            raise KerasdlUsageError(f"task {task!r}: {exc}") from None
    return opts


def _coerce(task: str, key: str, value: Any, default: Any) -> Any:
    kind = type(default)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    try:
        if kind is bool:
            text = str(value).lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            if isinstance(value, float) and value.is_integer():
                return int(value)
            return int(str(value))
        return kind(value)
    except (TypeError, ValueError):
        raise KerasdlUsageError(
            f"task {task!r}: option {key}={value!r} must be a {kind.__name__}"
        ) from None
