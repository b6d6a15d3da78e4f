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
           "VAEOptions", "GANOptions", "VQVAEOptions", "DiffusionOptions", "PINNOptions", "NodeClassificationOptions", "GraphClassificationOptions", "MODULES", "SAMPLERS", "GAN_LOSSES", "NOISE_SCHEDULES", "parse_options"]


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


SAMPLERS = ("lhs", "sobol", "uniform")
PINN_DTYPES = ("float64", "float32")


@dataclasses.dataclass(frozen=True)
class PINNOptions:
    """``--task-opt`` keys of the physics-informed task (Raissi, Perdikaris & Karniadakis 2019; RAR:
    Lu et al. 2021). The defaults are Raissi's Burgers setup: N_u = 100 condition points, N_f =
    10,000 collocation points (Latin hypercube), full-batch; here Adam first, then L-BFGS."""

    problem: str = "burgers"  # a built-in problem (kerasdl.data.pde) or path/to/file.py:NAME
    inverse: bool = False  # learn the problem's unknown coefficients from observations of u
    n_collocation: int = 10000  # N_f: residual points
    n_conditions: int = 100  # N_u: initial/boundary points, spread over the faces by their size
    n_data: int = -1  # observations of u from the reference (-1: 0, or 2000 in an inverse run)
    noise: float = 0.0  # observation noise, as a fraction of std(u) (Raissi: 0.01 = 1%)
    sampler: str = "lhs"  # collocation points: lhs, sobol or uniform
    adam_steps: int = 2000  # full-batch Adam iterations (learning rate: --lr)
    lbfgs_steps: int = 11000  # L-BFGS iteration budget after Adam (0: none): the default run fits 15 min on 2 cores
    lbfgs_memory: int = 50  # (s, y) pairs L-BFGS keeps
    log_every: int = 250  # iterations per history row ("epoch")
    w_pde: float = 1.0  # loss weight of the mean squared residual
    w_conditions: float = 1.0  # loss weight of the initial/boundary conditions' mean squared error
    w_data: float = 1.0  # loss weight of the observations' mean squared error
    hard: bool = False  # impose the conditions exactly with the problem's output transform
    dtype: str = "float64"  # float64 (Raissi; what L-BFGS needs near convergence) or float32
    rar: bool = False  # residual-based adaptive refinement (Lu et al. 2021), during the Adam phase
    rar_points: int = 2000  # points RAR adds in total (included in n_collocation)
    rar_rounds: int = 10  # RAR adds them in this many rounds, spread over the Adam phase (or rar_until)
    rar_until: float = 0.0  # rounds spread over this fraction of all iterations (0: the Adam phase only)
    rar_candidates: int = 20000  # random candidates whose residual RAR ranks each round
    validation_points: int = 2000  # reference points behind val_rel_l2 each epoch (0: none)
    xla: bool = True  # XLA-compile the full-batch step: sets --jit (measured ~1.7x faster on 2 CPU cores)
    derivatives: str = "auto"  # auto: forward Taylor mode through smooth MLPs (not under XLA), else nested tapes

    def check(self) -> None:
        if not self.problem:
            raise KerasdlUsageError("problem must name a built-in problem or path/to/file.py:NAME")
        for key in ("n_collocation", "n_conditions", "log_every", "lbfgs_memory", "rar_rounds", "rar_candidates"):
            _at_least(key, getattr(self, key), 1)
        for key in ("adam_steps", "lbfgs_steps", "validation_points", "rar_points"):
            _at_least(key, getattr(self, key), 0)
        if self.adam_steps + self.lbfgs_steps < 1:
            raise KerasdlUsageError("adam_steps + lbfgs_steps must be >= 1. "
                                    f"Received: adam_steps={self.adam_steps}, lbfgs_steps={self.lbfgs_steps}")
        if self.n_data < -1:
            raise KerasdlUsageError(f"n_data must be >= 0 (or -1: automatic). Received: n_data={self.n_data}")
        for key in ("w_pde", "w_conditions", "w_data", "noise"):
            value = getattr(self, key)
            if not value >= 0.0:
                raise KerasdlUsageError(f"{key} must be >= 0. Received: {key}={value}")
        if self.sampler not in SAMPLERS:
            raise UnknownNameError("sampler", self.sampler, SAMPLERS)
        if self.derivatives not in ("auto", "tapes"):
            raise UnknownNameError("derivative method", self.derivatives, ("auto", "tapes"))
        if self.dtype not in PINN_DTYPES:
            raise UnknownNameError("PINN dtype", self.dtype, PINN_DTYPES)
        if not 0.0 <= self.rar_until < 1.0:
            raise KerasdlUsageError(f"rar_until must be in [0, 1) (0: the Adam phase). Received: "
                                    f"rar_until={self.rar_until}")
        if self.rar:
            if self.rar_until > 0.0:
                if self.epochs() * self.rar_until < 2:
                    raise KerasdlUsageError(f"rar_until={self.rar_until} leaves RAR less than two history rows "
                                            f"of {self.log_every} iterations")
            elif self.adam_steps < 2 * self.log_every:
                raise KerasdlUsageError(f"rar refines during the Adam phase: adam_steps must be >= 2 x log_every "
                                        f"({2 * self.log_every}). Received: adam_steps={self.adam_steps}")
            if not 1 <= self.rar_points < self.n_collocation:
                raise KerasdlUsageError(f"rar_points must be in [1, n_collocation). Received: "
                                        f"rar_points={self.rar_points}, n_collocation={self.n_collocation}")
            if self.rar_candidates < self.rar_points // self.rar_rounds:
                raise KerasdlUsageError("rar_candidates must be >= rar_points / rar_rounds")

    @property
    def data_points(self) -> int:
        """Observations of u: n_data, or its automatic value (0 forward, 2000 inverse: Raissi 2019)."""
        return self.n_data if self.n_data >= 0 else (2000 if self.inverse else 0)

    def epochs(self) -> int:
        """History rows of the whole schedule: Adam's then L-BFGS's, log_every iterations each."""
        return -(-self.adam_steps // self.log_every) + -(-self.lbfgs_steps // self.log_every)

    def run_settings(self) -> dict:
        """What a pinn run's config takes from these options (RunConfig.resolved): the epochs of
        the schedule, the problem as the dataset, and the full-batch loss as the monitor."""
        settings = {"epochs": self.epochs(), "dataset": self.problem, "monitor": "loss"}
        if self.xla:  # the engine's --jit: XLA for the train step (and TF op determinism off, as XLA needs)
            settings["jit"] = True
        return settings


FEATURE_NORMS = ("auto", "row", "none")

# The papers' optimisation settings of the graph models (kerasdl.models.gnn), applied to the flags
# a user does not give (``default_settings``, through RunConfig.from_mapping: the command line): Kipf & Welling 2017 (GCN: Adam lr 0.01, 200
# epochs), Velickovic et al. 2018 (GAT: lr 0.005), Hamilton et al. 2017 / PyG's Cora example
# (GraphSAGE: lr 0.01), Xu et al. 2019 (GIN: lr 0.01, batches of 32 graphs).
GRAPH_LEARNING_RATES = {"gat": 0.005}


@dataclasses.dataclass(frozen=True)
class NodeClassificationOptions:
    """``--task-opt`` keys of node classification: one graph, full batch, masked loss and metrics."""

    feature_norm: str = "auto"  # node features: "row" (each row / its sum, Kipf & Welling), "none", or the dataset's

    def check(self) -> None:
        if self.feature_norm not in FEATURE_NORMS:
            raise UnknownNameError("feature_norm", self.feature_norm, FEATURE_NORMS)

    def default_settings(self, model: str) -> dict:
        """Run settings for the flags not given: the papers' 200 epochs of full-batch
        Adam (one step per epoch) at the model's constant learning rate, no early stop (the best
        validation-loss checkpoint is the one evaluated), as DGL's and PyG's reproductions."""
        return {"epochs": 200, "learning_rate": GRAPH_LEARNING_RATES.get(model, 0.01), "schedule": "constant",
                "patience": 0}


@dataclasses.dataclass(frozen=True)
class GraphClassificationOptions:
    """``--task-opt`` keys of graph classification: mini-batches of graphs, one label each."""

    feature_norm: str = "auto"

    def check(self) -> None:
        if self.feature_norm not in FEATURE_NORMS:
            raise UnknownNameError("feature_norm", self.feature_norm, FEATURE_NORMS)

    def default_settings(self, model: str) -> dict:
        """Xu et al. 2019's batches of 32 graphs and Adam lr 0.01 (here with the run's default cosine
        decay; the paper halves it every 50 epochs); 100 epochs, no early stop."""
        return {"epochs": 100, "batch_size": 32, "learning_rate": GRAPH_LEARNING_RATES.get(model, 0.01),
                "patience": 0}


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
    "pinn": PINNOptions,
    "node_classification": NodeClassificationOptions,
    "graph_classification": GraphClassificationOptions,
}
# Task name -> its module under kerasdl.tasks where that is not the task's own name.
MODULES = {"node_classification": "graph", "graph_classification": "graph"}
TASK_NAMES = tuple(sorted(OPTIONS))
# The model a task trains when --model is not given (the supervised tasks: LeNet-5, as always).
DEFAULT_MODELS = {"segmentation": "unet", "autoencoder": "dense_encoder", "vae": "dense_encoder",
                  "gan": "dcgan_generator", "vqvae": "vq_encoder", "diffusion": "diffusion_unet",
                  "pinn": "pinn_mlp", "node_classification": "gcn", "graph_classification": "gin"}


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
