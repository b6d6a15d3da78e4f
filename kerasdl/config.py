"""RunConfig: the one resolved, serialisable description of a training run.

Everything the CLI can set is a field here, so a run can be replayed from its saved
``config.yaml`` alone (``kerasdl train --config runs/<name>/config.yaml``). Values come from,
in increasing priority: the defaults below, a YAML file, and explicit command-line options.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from kerasdl import augment
from kerasdl.errors import KerasdlUsageError, UnknownNameError, first_line
from kerasdl.distribute import LR_SCALINGS, PRECISIONS, STRATEGIES
from kerasdl.losses import LOSSES as LOSS_REGISTRY

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw")
FREEZE = ("none", "backbone")
SCHEDULES = ("constant", "step", "cosine", "onecycle", "cyclic", "plateau")
INITIALIZERS = ("he", "glorot", "lecun", "orthogonal", "zeros")  # see kerasdl/regularize.py
DROPOUT_SCHEDULES = ("constant", "early", "late")
INPUT_NORMS = ("auto", "scale", "standardize", "channel_mean", "none")
CALIBRATIONS = ("temperature", "vector", "matrix")  # see kerasdl/calibration.py
LOSSES = tuple(LOSS_REGISTRY)  # see kerasdl/losses.py; binary_crossentropy: one sigmoid logit
# Config-file keys may also be spelt as the `kerasdl train` flags: --lr -> lr, --batch-size -> batch-size.
# Flag names that differ from the field name (beyond '-' for '_'):
KEY_ALIASES = {"lr": "learning_rate", "min_lr": "min_learning_rate", "model_opt": "model_options"}


@dataclass
class RunConfig:
    """A training run, fully resolved. Field names are the YAML keys and the CLI option names."""

    model: str = "lenet5"
    dataset: str = "mnist5k"
    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9  # used by "momentum" and "nesterov" (and rmsprop's momentum stays 0)
    weight_decay: float | None = None  # None: the optimizer's own default (AdamW: 0.004)
    schedule: str = "cosine"  # half-cosine decay to min_learning_rate over the run
    warmup_epochs: float = 0.0
    lr_decay_epochs: int = 10  # step schedule: multiply by lr_decay_factor every this many epochs
    lr_decay_factor: float = 0.1  # step and plateau schedules
    min_learning_rate: float = 0.0  # floor of cosine / one-cycle / plateau; cyclic's lower rate
    lr_cycle_epochs: float = 4.0  # cyclic schedule: one full triangle (up and down) in this many epochs
    # ---- regularisation (all off by default) ----
    init: str | None = None  # re-initialise every kernel: he | glorot | lecun | orthogonal | zeros
    l1: float = 0.0  # L1 penalty on every kernel (not biases / norm parameters)
    l2: float = 0.0  # L2 penalty on every kernel (coupled, in the loss; see weight_decay for decoupled)
    max_norm: float | None = None  # max-norm constraint on each unit's incoming weights
    dropout_schedule: str = "constant"  # early: dropout only before epoch dropout_epochs; late: only from it
    dropout_epochs: int = 0
    label_smoothing: float = 0.0
    stochastic_depth: float | None = None  # residual nets: drop rate of the last block (linear rule)
    # ---- gradients ----
    clip_value: float | None = None  # clip every gradient element to [-v, v]
    clip_norm: float | None = None  # rescale the whole gradient to global L2 norm <= n
    agc: float | None = None  # adaptive gradient clipping, unit-wise ratio lambda (Brock et al. 2021)
    accumulate: int = 1  # gradient accumulation: one update every this many batches
    ema: float | None = None  # exponential moving average of the weights, momentum (e.g. 0.999)
    # ---- inputs ----
    input_norm: str = "auto"  # auto | scale | standardize | channel_mean | none
    diagnostics: bool = False  # gradient norms, activation statistics, dead ReLUs -> TensorBoard
    augment: str = "auto"  # training-split augmentation: auto | none | policy | a,b,c (see augment.py)
    loss: str | None = None  # None: sparse categorical cross-entropy (classes) or mse (regression)
    patience: int = 10  # early stopping on `monitor`; 0 turns it off
    monitor: str = "val_loss"
    seed: int = 0
    name: str | None = None  # run directory name; default "<model>-<dataset>-<timestamp>"
    output_dir: str = "runs"
    data_dir: str | None = None  # tfds data dir; default $KERASDL_DATA_DIR or ~/tensorflow_datasets
    download: bool | None = None  # None: download tfds catalog sets unless KERASDL_OFFLINE=1
    label_column: str | None = None  # .csv datasets: the label column (default: label, target, y or class)
    model_options: dict = field(default_factory=dict)  # extra build_model(**overrides)
    image_size: list | None = None  # resize image inputs to [height, width] (families needing >= 32 px)
    classes: list | None = None  # train on these classes only (indices or names), relabelled 0..k-1
    train_per_class: int | None = None  # label budget: at most this many training examples per class
    init_from: str | None = None  # transfer learning: start from this run's best weights
    pretrained: str | None = None  # "imagenet": keras.applications' ImageNet weights (kerasdl.pretrained)
    freeze: str = "none"  # "backbone": train only the head (+ the last `unfreeze_last` weighted layers)
    unfreeze_last: int = 0
    # ---- calibration and uncertainty (classifiers) ----
    calibrate: bool = True  # fit a calibration map on the validation split when training ends
    calibration: str = "temperature"  # temperature | vector | matrix (Guo et al. 2017)
    ece_bins: int = 15  # equal-width confidence bins of ECE / MCE / reliability diagrams
    conformal_alpha: float | None = None  # also fit split-conformal sets with coverage 1 - alpha
    ensemble: int = 1  # deep ensemble: train this many members (seeds seed .. seed + n - 1)
    # ---- scale (see kerasdl/distribute.py) ----
    strategy: str = "auto"  # auto | one_device | mirrored | multi_worker | tpu
    cpu_devices: int = 1  # split the CPU into this many logical devices (mirrored on a CPU-only machine)
    precision: str = "float32"  # float32 | mixed_float16 | mixed_bfloat16
    jit: bool = False  # XLA-compile the train step (keras jit_compile)
    steps_per_execution: int | None = None  # batches per compiled call; None: auto (see resolved_steps_per_execution)
    lr_scaling: str = "none"  # none | linear | sqrt: scale learning_rate by batch_size / lr_base_batch
    lr_base_batch: int = 64  # the batch size learning_rate was chosen for
    export: bool = False  # also export a SavedModel when training finishes
    export_dir: str = "saved_models"

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "config") -> "RunConfig":
        """Build a config from a mapping, rejecting unknown keys with a suggestion.

        Keys are field names or the ``kerasdl train`` flag names (:func:`field_names`).
        """
        config = cls(**field_names(values, source=source))
        config.validate()
        return config

    @classmethod
    def from_yaml(cls, path: str, overrides: Mapping[str, Any] | None = None) -> "RunConfig":
        """Read a YAML file and apply ``overrides`` (explicit CLI options) on top."""
        values = field_names(read_yaml(path), source=os.path.basename(path))
        values.update(overrides or {})
        return cls.from_mapping(values, source=os.path.basename(path))

    def replace(self, **changes: Any) -> "RunConfig":
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    # ---- checks -------------------------------------------------------------------------
    def validate(self) -> None:
        """Check every value early, echoing what was received (exit code 2 in the CLI)."""
        for key in ("epochs", "batch_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise KerasdlUsageError(f"{key} must be a positive integer. Received: {key}={value!r}")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise KerasdlUsageError(
                f"learning_rate must be > 0. Received: learning_rate={self.learning_rate!r}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise UnknownNameError("optimizer", str(self.optimizer), OPTIMIZERS)
        if self.schedule not in SCHEDULES:
            raise UnknownNameError("schedule", str(self.schedule), SCHEDULES)
        augment.parse(self.augment)  # unknown names, 'none' with others (the data decides the rest)
        if self.loss is not None and self.loss not in LOSSES:
            raise UnknownNameError("loss", str(self.loss), LOSSES)
        if self.warmup_epochs < 0 or self.warmup_epochs >= self.epochs:
            raise KerasdlUsageError(
                "warmup_epochs must be >= 0 and smaller than epochs. "
                f"Received: warmup_epochs={self.warmup_epochs!r}, epochs={self.epochs!r}"
            )
        if self.init is not None and self.init not in INITIALIZERS:
            raise UnknownNameError("initializer", str(self.init), INITIALIZERS)
        if self.dropout_schedule not in DROPOUT_SCHEDULES:
            raise UnknownNameError("dropout schedule", str(self.dropout_schedule), DROPOUT_SCHEDULES)
        if self.dropout_schedule != "constant" and not (
            isinstance(self.dropout_epochs, int) and 1 <= self.dropout_epochs < self.epochs
        ):
            raise KerasdlUsageError(
                f"dropout_schedule={self.dropout_schedule!r} needs 1 <= dropout_epochs < epochs. "
                f"Received: dropout_epochs={self.dropout_epochs!r}, epochs={self.epochs!r}"
            )
        if self.input_norm not in INPUT_NORMS:
            raise UnknownNameError("input normalisation", str(self.input_norm), INPUT_NORMS)
        for key in ("l1", "l2"):
            if not (isinstance(getattr(self, key), (int, float)) and getattr(self, key) >= 0):
                raise KerasdlUsageError(f"{key} must be >= 0. Received: {key}={getattr(self, key)!r}")
        for key in ("max_norm", "clip_value", "clip_norm", "agc", "lr_cycle_epochs"):
            value = getattr(self, key)
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise KerasdlUsageError(f"{key} must be > 0. Received: {key}={value!r}")
        if self.clip_value is not None and self.clip_norm is not None:  # keras optimizers take one
            raise KerasdlUsageError(
                "give one of clip_value (per element) and clip_norm (global norm), not both. "
                f"Received: clip_value={self.clip_value!r}, clip_norm={self.clip_norm!r}"
            )
        if self.label_column is not None and not (isinstance(self.label_column, str) and self.label_column):
            raise KerasdlUsageError(f"label_column must be a column name. Received: label_column={self.label_column!r}")
        if not (0.0 <= self.label_smoothing < 1.0):
            raise KerasdlUsageError(
                f"label_smoothing must be in [0, 1). Received: label_smoothing={self.label_smoothing!r}"
            )
        if self.stochastic_depth is not None and not (0.0 <= self.stochastic_depth < 1.0):
            raise KerasdlUsageError(
                f"stochastic_depth must be in [0, 1). Received: stochastic_depth={self.stochastic_depth!r}"
            )
        if self.ema is not None and not (0.0 < self.ema < 1.0):
            raise KerasdlUsageError(f"ema (a momentum) must be in (0, 1). Received: ema={self.ema!r}")
        if not isinstance(self.accumulate, int) or isinstance(self.accumulate, bool) or self.accumulate < 1:
            raise KerasdlUsageError(f"accumulate must be a positive integer. Received: accumulate={self.accumulate!r}")
        if self.calibration not in CALIBRATIONS:
            raise UnknownNameError("calibration method", str(self.calibration), CALIBRATIONS)
        if not isinstance(self.calibrate, bool):
            raise KerasdlUsageError(f"calibrate must be true or false. Received: calibrate={self.calibrate!r}")
        if self.strategy not in STRATEGIES:
            raise UnknownNameError("strategy", str(self.strategy), STRATEGIES)
        if self.precision not in PRECISIONS:
            raise UnknownNameError("precision", str(self.precision), PRECISIONS)
        if self.lr_scaling not in LR_SCALINGS:
            raise UnknownNameError("learning-rate scaling rule", str(self.lr_scaling), LR_SCALINGS)
        if not isinstance(self.jit, bool):
            raise KerasdlUsageError(f"jit must be true or false. Received: jit={self.jit!r}")
        if self.steps_per_execution is not None and (
            not isinstance(self.steps_per_execution, int) or isinstance(self.steps_per_execution, bool)
            or self.steps_per_execution < 1
        ):
            raise KerasdlUsageError("steps_per_execution must be a positive integer (or null for auto). "
                                    f"Received: steps_per_execution={self.steps_per_execution!r}")
        for key in ("ece_bins", "ensemble", "cpu_devices", "lr_base_batch"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise KerasdlUsageError(f"{key} must be a positive integer. Received: {key}={value!r}")
        if self.conformal_alpha is not None and not (
            isinstance(self.conformal_alpha, (int, float)) and 0.0 < self.conformal_alpha < 1.0
        ):
            raise KerasdlUsageError(
                f"conformal_alpha must be in (0, 1). Received: conformal_alpha={self.conformal_alpha!r}"
            )
        if self.patience < 0:
            raise KerasdlUsageError(f"patience must be >= 0. Received: patience={self.patience!r}")
        if not isinstance(self.model_options, dict):
            raise KerasdlUsageError(
                f"model_options must be a mapping. Received: model_options={self.model_options!r}"
            )
        if self.image_size is not None and (
            not isinstance(self.image_size, (list, tuple)) or len(self.image_size) != 2
            or not all(isinstance(s, int) and s > 0 for s in self.image_size)
        ):
            raise KerasdlUsageError(f"image_size must be [height, width]. Received: image_size={self.image_size!r}")
        if self.freeze not in FREEZE:
            raise UnknownNameError("freeze mode", str(self.freeze), FREEZE)
        if self.unfreeze_last < 0 or (self.unfreeze_last and self.freeze != "backbone"):
            raise KerasdlUsageError(
                "unfreeze_last needs freeze='backbone' and must be >= 0. "
                f"Received: unfreeze_last={self.unfreeze_last!r}, freeze={self.freeze!r}"
            )
        if self.pretrained is not None:
            from kerasdl.pretrained import check_pretrained

            if self.init_from:
                raise KerasdlUsageError(
                    "give one of init_from (a run's weights) and pretrained (ImageNet weights), not both. "
                    f"Received: init_from={self.init_from!r}, pretrained={self.pretrained!r}"
                )
            check_pretrained(self.model, self.pretrained, include_top=self.model_options.get("include_top", True),
                             download=self.download)
        if self.freeze == "backbone" and not (self.init_from or self.pretrained):
            raise KerasdlUsageError(
                "freeze='backbone' needs init_from (a run to take the backbone from) or pretrained='imagenet'"
            )
        if self.train_per_class is not None and (not isinstance(self.train_per_class, int) or self.train_per_class < 1):
            raise KerasdlUsageError(
                f"train_per_class must be a positive integer. Received: train_per_class={self.train_per_class!r}"
            )
        if self.name is not None and (not self.name or "/" in self.name or self.name in (".", "..")):
            raise KerasdlUsageError(f"run name must be a plain folder name. Received: name={self.name!r}")

    # ---- output -------------------------------------------------------------------------
    def resolved(self) -> "RunConfig":
        """A copy with every default filled in (the run name, in particular)."""
        if self.name:
            return self
        import secrets

        # The second alone collides in parallel sweeps; a random suffix (not the seeded RNG) does not.
        stamp = f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        return self.replace(name=f"{self.model}-{self.dataset.replace('/', '_')}-{stamp}")

    @property
    def run_dir(self) -> str:
        if not self.name:
            raise RuntimeError("resolve the config (config.resolved()) before asking for run_dir")
        return os.path.join(self.output_dir, self.name)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str) -> None:
        write_yaml(path, self.to_dict())


def replay_name(output_dir: str, name: str) -> str:
    """A free run name for replaying run ``name`` from its stored config: ``<name>-replay``, then
    ``<name>-replay2``, ... (a replay of a replay counts on from the original's name)."""
    import re

    base = re.sub(r"-replay\d*$", "", name) + "-replay"
    n = 1
    while os.path.exists(os.path.join(output_dir, base if n == 1 else f"{base}{n}")):
        n += 1
    return base if n == 1 else f"{base}{n}"


def field_names(values: Mapping[str, Any], *, source: str = "config") -> dict:
    """``values`` keyed by RunConfig field names: flag spellings (``lr``, ``batch-size``, ``min_lr``)
    become field names; an unknown key is refused with the closest names, a key given twice
    (``lr`` and ``learning_rate``) too."""
    known = {f.name for f in dataclasses.fields(RunConfig)}
    out, spelt = {}, {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        name = KEY_ALIASES.get(name, name)
        if name not in known:
            raise UnknownNameError(f"key in {source}", str(key), known | set(KEY_ALIASES))
        if name in out:
            raise KerasdlUsageError(f"{source} sets {name} twice: as {spelt[name]!r} and as {key!r}; keep one")
        out[name], spelt[name] = value, key
    return out


def read_yaml(path: str) -> dict:
    """Read a YAML mapping; a missing or malformed file is a usage error."""
    try:
        with open(path, encoding="utf-8") as f:
            values = yaml.safe_load(f)
    except FileNotFoundError:
        raise KerasdlUsageError(f"config file not found: {path}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise KerasdlUsageError(f"cannot read config file {path}: {first_line(exc)}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise KerasdlUsageError(
            f"config file {path} must hold a mapping of option: value. Received: {type(values).__name__}"
        )
    return values


def write_yaml(path: str, values: Mapping[str, Any]) -> None:
    """Write YAML atomically (a crash never leaves a half-written config)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.safe_dump(dict(values), f, sort_keys=False)
    os.replace(tmp, path)
