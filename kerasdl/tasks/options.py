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

__all__ = ["OPTIONS", "TASK_NAMES", "DEFAULT_MODELS", "COMMANDS", "default_model", "NoOptions", "AutoencoderOptions",
           "VAEOptions", "GANOptions", "VQVAEOptions", "DiffusionOptions", "GAN_LOSSES", "NOISE_SCHEDULES", "parse_options"]


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


def _at_least(name: str, value, low, strict: bool = False) -> None:
    if not (value > low if strict else value >= low):
        raise KerasdlUsageError(f"{name} must be {'>' if strict else '>='} {low}. Received: {name}={value}")


@dataclasses.dataclass(frozen=True)
class GenerativeOptions:
    """Keys every sampling task (gan, vqvae, diffusion) shares."""

    eval_samples: int = 1000  # samples generated for the quality figures (FID, KID, precision/recall)
    sample_every: int = 5  # epochs between the sample grids written during training (0: only at the end)

    def check(self) -> None:
        _at_least("eval_samples", self.eval_samples, 2)
        _at_least("sample_every", self.sample_every, 0)


GAN_LOSSES = ("nonsaturating", "minimax", "hinge", "wgan-gp")


@dataclasses.dataclass(frozen=True)
class GANOptions(GenerativeOptions):
    """``--task-opt`` keys of the GAN task (Goodfellow et al. 2014; Gulrajani et al. 2017)."""

    latent_dim: int = 64  # size of the noise vector z ~ N(0, I)
    loss: str = "nonsaturating"  # one of GAN_LOSSES
    n_critic: int = 1  # discriminator (critic) steps per generator step (WGAN-GP: 5)
    gp_weight: float = 10.0  # lambda of the gradient penalty (wgan-gp)
    d_lr_scale: float = 1.0  # discriminator learning rate = --lr x this (two time-scale rule, Heusel et al. 2017)
    conditional: bool = False  # class-conditional (Mirza & Osindero 2014): the labels go to both networks
    discriminator: str = ""  # registry name of the discriminator; "" = the generator's companion
    pack: int = 1  # PacGAN (Lin et al. 2018): the discriminator judges m samples at once (m > 1 fights mode collapse)
    beta_1: float = 0.5  # Adam's beta_1 for both networks (Radford et al. 2016: 0.5; WGAN-GP: 0.0)
    beta_2: float = 0.999  # Adam's beta_2 (WGAN-GP: 0.9)

    def check(self) -> None:
        GenerativeOptions.check(self)
        _at_least("latent_dim", self.latent_dim, 1)
        if self.loss not in GAN_LOSSES:
            raise UnknownNameError("GAN loss", self.loss, GAN_LOSSES)
        _at_least("n_critic", self.n_critic, 1)
        _at_least("gp_weight", self.gp_weight, 0.0)
        _at_least("d_lr_scale", self.d_lr_scale, 0.0, strict=True)
        _at_least("pack", self.pack, 1)
        if self.pack > 1 and self.conditional:
            raise KerasdlUsageError(f"pack={self.pack} is for unconditional GANs; a conditional GAN packs with pack=1")
        for key in ("beta_1", "beta_2"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise KerasdlUsageError(f"{key} must be in [0, 1). Received: {key}={getattr(self, key)}")


@dataclasses.dataclass(frozen=True)
class VQVAEOptions(GenerativeOptions):
    """``--task-opt`` keys of the VQ-VAE task (van den Oord, Vinyals & Kavukcuoglu 2017)."""

    latent_dim: int = 16  # D, the size of each code vector
    codebook_size: int = 64  # K, the number of code vectors
    beta: float = 0.25  # commitment weight
    ema: bool = False  # update the codebook by exponential moving averages (the paper's appendix A.1)
    decay: float = 0.99  # EMA decay of the codebook

    def check(self) -> None:
        GenerativeOptions.check(self)
        _at_least("latent_dim", self.latent_dim, 1)
        _at_least("codebook_size", self.codebook_size, 2)
        _at_least("beta", self.beta, 0.0)
        if not 0.0 < self.decay < 1.0:
            raise KerasdlUsageError(f"decay must be in (0, 1). Received: decay={self.decay}")


NOISE_SCHEDULES = ("linear", "cosine")


@dataclasses.dataclass(frozen=True)
class DiffusionOptions(GenerativeOptions):
    """``--task-opt`` keys of the diffusion task (Ho et al. 2020; Nichol & Dhariwal 2021; Song et al. 2021)."""

    timesteps: int = 1000  # T of the forward (noising) process
    schedule: str = "linear"  # beta schedule: "linear" (Ho et al.) or "cosine" (Nichol & Dhariwal)
    sample_steps: int = 20  # DDIM steps of the figures and the quality report (kerasdl sample --steps)
    eta: float = 0.0  # DDIM eta: 0 deterministic, 1 DDPM-like
    conditional: bool = False  # class-conditional denoiser (labels dropped with p_uncond for guidance)
    p_uncond: float = 0.1  # probability of training without the label (classifier-free guidance, Ho & Salimans 2022)
    guidance: float = 2.0  # guidance weight w: eps = (1 + w) eps(x, c) - w eps(x)

    def check(self) -> None:
        GenerativeOptions.check(self)
        _at_least("timesteps", self.timesteps, 2)
        if self.schedule not in NOISE_SCHEDULES:
            raise UnknownNameError("noise schedule", self.schedule, NOISE_SCHEDULES)
        _at_least("sample_steps", self.sample_steps, 1)
        if self.sample_steps > self.timesteps:
            raise KerasdlUsageError(f"sample_steps must be <= timesteps ({self.timesteps}). "
                                    f"Received: sample_steps={self.sample_steps}")
        if not 0.0 <= self.eta <= 1.0:
            raise KerasdlUsageError(f"eta must be in [0, 1]. Received: eta={self.eta}")
        if not 0.0 <= self.p_uncond < 1.0:
            raise KerasdlUsageError(f"p_uncond must be in [0, 1). Received: p_uncond={self.p_uncond}")
        _at_least("guidance", self.guidance, 0.0)


# Task name -> its options dataclass (the registry's names: kerasdl.tasks.base maps them to modules).
OPTIONS: dict[str, type] = {
    "classification": NoOptions,
    "regression": NoOptions,
    "segmentation": NoOptions,
    "autoencoder": AutoencoderOptions,
    "vae": VAEOptions,
    "gan": GANOptions,
    "vqvae": VQVAEOptions,
    "diffusion": DiffusionOptions,
}
TASK_NAMES = tuple(sorted(OPTIONS))
# The model a task trains when --model is not given (the supervised tasks: LeNet-5, as always).
DEFAULT_MODELS = {"segmentation": "unet", "autoencoder": "dense_encoder", "vae": "dense_encoder",
                  "gan": "dcgan_generator", "vqvae": "vq_encoder", "diffusion": "diffusion_unet"}


# The run-level commands beyond train/evaluate/export, and the tasks whose runs they take; the
# task classes get their ``generative`` / ``encodes`` flags from here (kerasdl.tasks.register_task).
COMMANDS: dict[str, tuple[str, ...]] = {"sample": ("vae", "gan", "vqvae", "diffusion"),
                                        "encode": ("autoencoder", "vae")}


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
