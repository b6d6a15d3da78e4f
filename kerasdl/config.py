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

from kerasdl.data import augment
from kerasdl.data.info import INPUT_NORMS  # noqa: F401 (RunConfig's choices; re-exported)
from kerasdl.errors import KerasdlUsageError, UnknownNameError, first_line
from kerasdl.engine.distribute import LR_SCALINGS, PRECISIONS, STRATEGIES
from kerasdl.tasks.losses import LOSSES as LOSS_REGISTRY
from kerasdl.tasks.options import OPTIONS, TASK_NAMES, default_model, parse_options

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw")
FREEZE = ("none", "backbone")
SCHEDULES = ("constant", "step", "cosine", "onecycle", "cyclic", "plateau")
INITIALIZERS = ("he", "glorot", "lecun", "orthogonal", "zeros")  # see kerasdl/engine/regularize.py
DROPOUT_SCHEDULES = ("constant", "early", "late")
CALIBRATIONS = ("temperature", "vector", "matrix")  # see kerasdl/evaluation/calibration.py
LOSSES = tuple(LOSS_REGISTRY)  # see kerasdl/tasks/losses.py; binary_crossentropy: one sigmoid logit
# Problem types a run can name today (the Task classes of issue #14 will own this list); "auto":
# inferred from the dataset and the model.
TASKS = ("auto", *TASK_NAMES)  # auto: the dataset's own (supervised) task

# Sections of `kerasdl train --help`, in this order (RunConfig fields name theirs).
GROUPS = ("Model and data", "Training", "Regularisation", "Gradient", "Transfer learning",
          "Calibration and uncertainty", "Scale", "Output")


def opt(default: Any = None, help: str = "", group: str = "", *, flag: str | None = None, short: str | None = None,
        metavar: str | None = None, choices: tuple | None = None, kind: str | None = None, check: str | None = None,
        shown: str | None = None, path: str | None = None, factory: Any = None, no_flag: str | None = None):
    """A RunConfig field with what the command line and the checks need to know about it.

    help, group: the option's help text and its ``--help`` section (one of :data:`GROUPS`);
    flag, short: the option's name where it is not ``--<field-name>`` (bool fields: ``--x/--no-x``
    unless flag says otherwise) and a short alias; metavar; shown: the ``[default: ...]`` text
    where the default value alone says too little (default: the value itself, nothing for None);
    choices + kind: a name from ``choices``, refused with the closest names (``unknown <kind>``);
    choices without kind: the command line accepts only these (the library checks the rest);
    check: "positive" (> 0), "nonnegative" (>= 0) or "unit" (in [0, 1)) — None passes where the
    default is None; path: "dir" or "any" for path options; no_flag: the reason a field has no
    option (none has, today). Click is not imported here (cli/config_options.py builds the options).
    """
    meta = {"help": help, "group": group, "flag": flag, "short": short, "metavar": metavar, "choices": choices,
            "kind": kind, "check": check, "shown": shown, "path": path, "no_flag": no_flag}
    if group not in GROUPS:
        raise ValueError(f"unknown option group {group!r}")
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


DATA, TRAINING, REGULARISATION, GRADIENT, TRANSFER, CALIBRATION, SCALE, OUTPUT = GROUPS


@dataclass
class RunConfig:
    """A training run, fully resolved. Field names are the YAML keys and the CLI option names
    (see :func:`opt`: each field carries its flag, help, ``--help`` section and checks)."""

    model: str | None = opt(None, "Registry name (see 'kerasdl models'); default lenet5, or the task's own "
                            "(dense_encoder for autoencoder and vae).", DATA, short="-m")
    dataset: str = opt("mnist5k", "Offline name (see 'kerasdl datasets'), tfds catalog name, image folder, .npz "
                       "or .csv.", DATA, short="-d")
    epochs: int = opt(20, "Maximum epochs.", TRAINING, short="-e", check="positive")
    batch_size: int = opt(64, "Batch size.", TRAINING, short="-b", check="positive")
    optimizer: str = opt("adam", f"One of {', '.join(OPTIMIZERS)}.", TRAINING, choices=OPTIMIZERS, kind="optimizer")
    learning_rate: float = opt(1e-3, "Base learning rate.", TRAINING, flag="--lr", check="positive")
    # used by "momentum" and "nesterov" (and rmsprop's momentum stays 0)
    momentum: float = opt(0.9, "Momentum for 'momentum'/'nesterov'.", TRAINING)
    # None: the optimizer's own default (AdamW: 0.004)
    weight_decay: float | None = opt(None, "Decoupled weight decay (optimizer default if unset).", TRAINING)
    # half-cosine decay to min_learning_rate over the run
    schedule: str = opt("cosine", f"LR schedule: {', '.join(SCHEDULES)}.", TRAINING, choices=SCHEDULES, kind="schedule")
    warmup_epochs: float = opt(0.0, "Linear warmup length in epochs.", TRAINING)
    # step schedule: multiply by lr_decay_factor every this many epochs
    lr_decay_epochs: int = opt(10, "Step schedule period.", TRAINING, check="positive")
    lr_decay_factor: float = opt(0.1, "Step/plateau multiplier.", TRAINING)  # step and plateau schedules
    # floor of cosine / one-cycle / plateau; cyclic's lower rate
    min_learning_rate: float = opt(0.0, "Floor for cosine/onecycle/plateau; cyclic's low rate.", TRAINING,
                                   flag="--min-lr")
    # cyclic schedule: one full triangle (up and down) in this many epochs
    lr_cycle_epochs: float = opt(4.0, "Cyclic schedule: epochs per up-and-down cycle.", TRAINING,
                                 check="positive")
    # ---- regularisation (all off by default) ----
    init: str | None = opt(None, f"Re-initialise every kernel: {', '.join(INITIALIZERS)} (zeros shows the symmetry "
                           "failure).", REGULARISATION, choices=INITIALIZERS, kind="initializer",
                           shown="the builder's own")
    # L1 / L2 penalty on every kernel (not biases / norm parameters)
    l1: float = opt(0.0, "L1 penalty on every kernel, added to the loss.", REGULARISATION, check="nonnegative")
    l2: float = opt(0.0, "L2 penalty on every kernel, added to the loss (coupled; see --weight-decay for "
                    "decoupled).", REGULARISATION, check="nonnegative")
    max_norm: float | None = opt(None, "Max-norm constraint: each unit's incoming weight vector has L2 norm <= C "
                                 "after every update.", REGULARISATION, check="positive")
    dropout_schedule: str = opt("constant", f"{', '.join(DROPOUT_SCHEDULES)}: early = dropout only in the first "
                                "--dropout-epochs epochs, late = only after them (Liu et al. 2023).", REGULARISATION,
                                choices=DROPOUT_SCHEDULES, kind="dropout schedule")
    dropout_epochs: int = opt(0, "K of the early/late dropout schedule.", REGULARISATION, check="nonnegative")
    label_smoothing: float = opt(0.0, "Cross-entropy on targets (1-e)*onehot + e/K.", REGULARISATION, check="unit")
    # residual nets: drop rate of the last block (linear rule)
    stochastic_depth: float | None = opt(None, "Residual nets: drop-path rate of the last block, linearly less "
                                         "before (Huang et al. 2016).", REGULARISATION, check="unit")
    # ---- gradients ----
    clip_value: float | None = opt(None, "Clip every gradient element to [-V, V].", GRADIENT, check="positive")
    clip_norm: float | None = opt(None, "Rescale the gradient to global L2 norm <= N.", GRADIENT, check="positive")
    agc: float | None = opt(None, "Adaptive gradient clipping (Brock et al. 2021): clip each unit's gradient to "
                            "LAMBDA x its weight norm (e.g. 0.01).", GRADIENT, metavar="LAMBDA", check="positive")
    accumulate: int = opt(1, "Gradient accumulation: one update every N batches (effective batch N x batch "
                          "size).", GRADIENT, check="positive")
    ema: float | None = opt(None, "Exponential moving average of the weights (e.g. 0.999); validation, "
                            "checkpoints and the saved model use the averaged weights.", GRADIENT, metavar="MOMENTUM")
    # ---- inputs ----
    input_norm: str = opt("auto", f"Input normalisation: {', '.join(INPUT_NORMS)} (statistics from the train "
                          "split; channel_mean = per-channel mean subtraction).", DATA, choices=INPUT_NORMS,
                          kind="input normalisation")
    diagnostics: bool = opt(False, "Log per-layer gradient norms, activation statistics and dead ReLUs to "
                            "TensorBoard and diagnostics.csv; warn on vanishing/exploding gradients.", GRADIENT,
                            flag="--diagnostics")
    augment: str = opt("auto", augment.HELP, DATA)  # training split only (see augment.py)
    loss: str | None = opt(None, f"One of {', '.join(LOSSES)}; classification losses take the logits "
                           "(binary_crossentropy: two-class sets, one logit).", TRAINING, choices=LOSSES, kind="loss",
                           shown="sparse_categorical_crossentropy, mse for regression")
    patience: int = opt(10, "Early-stopping patience, 0 = off.", TRAINING, check="nonnegative")
    monitor: str = opt("val_loss", "Metric for early stopping and the best checkpoint.", TRAINING)
    seed: int = opt(0, "Random seed (same seed, same data, same metrics).", OUTPUT)
    name: str | None = opt(None, "Run name (folder under --output-dir).", OUTPUT, shown="<model>-<dataset>-<time>")
    output_dir: str = opt("runs", "Where runs go.", OUTPUT, path="dir")
    data_dir: str | None = opt(None, "Where tfds datasets are prepared/read.", DATA, path="dir",
                               shown="$KERASDL_DATA_DIR or ~/tensorflow_datasets")
    download: bool | None = opt(None, "Allow downloading tfds catalog datasets.", DATA,
                                shown="yes unless KERASDL_OFFLINE=1")
    label_column: str | None = opt(None, "A .csv dataset's label column.", DATA, metavar="NAME",
                                   shown="the first of label, target, y, class")
    model_options: dict = opt(help="Builder override, repeatable (e.g. --model-opt depth=3 --model-opt "
                              "activation=tanh).", group=DATA, flag="--model-opt", metavar="KEY=VALUE", factory=dict)
    image_size: list | None = opt(None, "Resize images, e.g. 32,32 (for nets that need larger inputs).", DATA,
                                  metavar="H,W")
    classes: list | None = opt(None, "Train on these classes only, e.g. '5,6,7,8,9' (relabelled 0..k-1).", DATA,
                               metavar="LIST")
    train_per_class: int | None = opt(None, "Label budget: at most N training examples per class.", DATA,
                                      check="positive")
    init_from: str | None = opt(None, "Transfer learning: start from this run's best weights (layers matched by "
                                "name and shape; a head of another size is re-initialised).", TRANSFER, path="any")
    pretrained: str | None = opt(None, "Start from keras.applications' ImageNet weights (models with a "
                                 "keras.applications twin; read from ~/.keras/models, downloaded unless offline; "
                                 "a head of another size is new).", TRANSFER, choices=("imagenet",))
    freeze: str = opt("none", "With --init-from or --pretrained: 'backbone' trains only the head, 'none' "
                      "fine-tunes all.", TRANSFER, choices=FREEZE, kind="freeze mode")
    unfreeze_last: int = opt(0, "With --freeze backbone: also train the last N weighted layers.", TRANSFER,
                             check="nonnegative")
    # ---- calibration and uncertainty (classifiers) ----
    calibrate: bool = opt(True, "Classifiers: fit a calibration map on the validation split when training ends "
                          "(calibration.json, reliability diagram); evaluate, predict and export use it.", CALIBRATION)
    calibration: str = opt("temperature", f"Calibration map: {', '.join(CALIBRATIONS)} (Guo et al. 2017).", CALIBRATION,
                           choices=CALIBRATIONS, kind="calibration method")
    ece_bins: int = opt(15, "Equal-width bins of ECE and the reliability diagram.", CALIBRATION, check="positive")
    conformal_alpha: float | None = opt(None, "Also calibrate split-conformal prediction sets (LAC and APS) with "
                                        "coverage 1 - ALPHA on validation, e.g. 0.1.", CALIBRATION, metavar="ALPHA")
    ensemble: int = opt(1, "Deep ensemble: train N members (seeds seed..seed+N-1) in <run>/members/; evaluate, "
                        "predict and export use the averaged probabilities.", CALIBRATION, metavar="N",
                        check="positive")
    # ---- scale (see kerasdl/engine/distribute.py) ----
    strategy: str = opt("auto", f"tf.distribute strategy: {', '.join(STRATEGIES)}. auto = multi_worker when "
                        "TF_CONFIG names several tasks, mirrored with several GPUs, else one device. --batch-size "
                        "is the global batch, split over the replicas.", SCALE, choices=STRATEGIES, kind="strategy")
    cpu_devices: int = opt(1, "Split the CPU into N logical devices (mirrored data parallelism on a CPU-only "
                           "machine).", SCALE, metavar="N", check="positive")
    precision: str = opt("float32", f"{', '.join(PRECISIONS)}: 16-bit compute with float32 weights (float16 adds "
                         "loss scaling); the saved model is float32.", SCALE, choices=PRECISIONS, kind="precision")
    jit: bool = opt(False, "XLA-compile the train step (turns TF op determinism off).", SCALE)
    # None: auto (see resolved_steps_per_execution)
    steps_per_execution: int | None = opt(None, "Run N batches per compiled call (less Python overhead per step; "
                                          "the same updates; callbacks see every Nth batch).", SCALE, metavar="N",
                                          check="positive",
                                          shown="32; 1 under a distribution strategy or with the plateau "
                                                "schedule's warmup")
    lr_scaling: str = opt("none", f"{', '.join(LR_SCALINGS)}: scale --lr by batch/--lr-base-batch (linear: Goyal "
                          "et al. 2017) or its square root.", SCALE, choices=LR_SCALINGS,
                          kind="learning-rate scaling rule")
    lr_base_batch: int = opt(64, "Batch size --lr was chosen for.", SCALE, check="positive")
    export: bool = opt(False, "Export a SavedModel when training ends.", OUTPUT)
    export_dir: str = opt("saved_models", "Export root; SavedModels go to <export-dir>/<name>/<version>/.", OUTPUT,
                          path="dir")
    # ---- the task (issue #14): appended, so older config.yaml files replay unchanged ----
    task: str = opt("auto", f"Problem type: {', '.join(TASKS)} (auto: from the dataset and the model).", DATA,
                    choices=TASKS, kind="task")
    task_options: dict = opt(help="Task option, repeatable (e.g. --task autoencoder --task-opt noise=0.3); "
                             "see 'kerasdl tasks' for each task's keys.", group=DATA, flag="--task-opt", metavar="KEY=VALUE", factory=dict)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "config") -> "RunConfig":
        """Build a config from a mapping, rejecting unknown keys with a suggestion.

        Keys are field names or the ``kerasdl train`` flag names (:func:`field_names`). The fields
        not in ``values`` take the task's own defaults where it has them (:meth:`task_defaults`:
        the graph models' papers' epochs and learning rates), else RunConfig's.
        """
        fields = field_names(values, source=source)
        config = cls(**{**cls.task_defaults(fields), **fields})
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
        """Check every value early, echoing what was received (exit code 2 in the CLI): first each
        field's own check (its ``opt(choices=, kind=, check=)``), then the rules between fields."""
        for f in dataclasses.fields(self):
            _check_field(f, getattr(self, f.name))
        augment.parse(self.augment)  # unknown names, 'none' with others (the data decides the rest)
        if self.warmup_epochs < 0 or self.warmup_epochs >= self.epochs:
            raise KerasdlUsageError(
                "warmup_epochs must be >= 0 and smaller than epochs. "
                f"Received: warmup_epochs={self.warmup_epochs!r}, epochs={self.epochs!r}"
            )
        if self.dropout_schedule != "constant" and not (
            isinstance(self.dropout_epochs, int) and 1 <= self.dropout_epochs < self.epochs
        ):
            raise KerasdlUsageError(
                f"dropout_schedule={self.dropout_schedule!r} needs 1 <= dropout_epochs < epochs. "
                f"Received: dropout_epochs={self.dropout_epochs!r}, epochs={self.epochs!r}"
            )
        if self.clip_value is not None and self.clip_norm is not None:  # keras optimizers take one
            raise KerasdlUsageError(
                "give one of clip_value (per element) and clip_norm (global norm), not both. "
                f"Received: clip_value={self.clip_value!r}, clip_norm={self.clip_norm!r}"
            )
        if self.label_column is not None and not (isinstance(self.label_column, str) and self.label_column):
            raise KerasdlUsageError(f"label_column must be a column name. Received: label_column={self.label_column!r}")
        if self.ema is not None and not (isinstance(self.ema, (int, float)) and 0.0 < self.ema < 1.0):
            raise KerasdlUsageError(f"ema (a momentum) must be in (0, 1). Received: ema={self.ema!r}")
        if self.conformal_alpha is not None and not (
            isinstance(self.conformal_alpha, (int, float)) and 0.0 < self.conformal_alpha < 1.0
        ):
            raise KerasdlUsageError(
                f"conformal_alpha must be in (0, 1). Received: conformal_alpha={self.conformal_alpha!r}"
            )
        for key in ("model_options", "task_options"):
            if not isinstance(getattr(self, key), dict):
                raise KerasdlUsageError(f"{key} must be a mapping. Received: {key}={getattr(self, key)!r}")
        if self.task == "auto":
            for key in self.task_options:  # auto picks the dataset's supervised task: no options
                raise KerasdlUsageError(
                    f"unknown task option {key!r}: task 'auto' takes no --task-opt options (name the task "
                    f"with --task). Received: task_options={self.task_options!r}"
                )
        elif self.task in TASK_NAMES:
            parse_options(self.task, self.task_options)
        if self.image_size is not None and (
            not isinstance(self.image_size, (list, tuple)) or len(self.image_size) != 2
            or not all(isinstance(s, int) and s > 0 for s in self.image_size)
        ):
            raise KerasdlUsageError(f"image_size must be [height, width]. Received: image_size={self.image_size!r}")
        if self.unfreeze_last and self.freeze != "backbone":
            raise KerasdlUsageError(
                "unfreeze_last needs freeze='backbone' and must be >= 0. "
                f"Received: unfreeze_last={self.unfreeze_last!r}, freeze={self.freeze!r}"
            )
        if self.pretrained is not None:
            from kerasdl.engine.pretrained import check_pretrained

            if self.init_from:
                raise KerasdlUsageError(
                    "give one of init_from (a run's weights) and pretrained (ImageNet weights), not both. "
                    f"Received: init_from={self.init_from!r}, pretrained={self.pretrained!r}"
                )
            check_pretrained(self.model_name, self.pretrained, include_top=self.model_options.get("include_top", True),
                             download=self.download)
        if self.freeze == "backbone" and not (self.init_from or self.pretrained):
            raise KerasdlUsageError(
                "freeze='backbone' needs init_from (a run to take the backbone from) or pretrained='imagenet'"
            )
        if self.name is not None and (not self.name or "/" in self.name or self.name in (".", "..")):
            raise KerasdlUsageError(f"run name must be a plain folder name. Received: name={self.name!r}")

    # ---- output -------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        """``model``, or the task's default model when none was given."""
        return self.model or default_model(self.task)

    def resolved(self) -> "RunConfig":
        """A copy with every default filled in (the model and the run name, in particular).

        A task whose options decide run settings (``run_settings()``: the pinn task's epochs come
        from its iteration counts, its dataset is its PDE problem) has them applied here."""
        if self.task in ("auto", None):
            from kerasdl.data.graphs.pipeline import graph_task

            task = graph_task(self.dataset)  # a graph dataset trains its graph task
            if task:
                return self.replace(task=task).resolved()
        changes = self._task_settings()
        if changes:
            return self.replace(**changes).resolved()
        if not self.model:
            return self.replace(model=self.model_name).resolved()
        if self.name:
            return self
        import secrets

        # The second alone collides in parallel sweeps; a random suffix (not the seeded RNG) does not.
        stamp = f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        return self.replace(name=f"{self.model}-{self.dataset.replace('/', '_')}-{stamp}")

    def _task_settings(self) -> dict:
        """The fields the task's options set that differ from this config's (``--monitor`` only
        while it is the default ``val_loss``)."""
        if self.task in ("auto", None) or self.task not in OPTIONS:
            return {}
        opts = parse_options(self.task, self.task_options or {})
        run_settings = getattr(opts, "run_settings", None)
        if run_settings is None:
            return {}
        wanted = run_settings()
        if self.monitor != "val_loss":
            wanted.pop("monitor", None)
        return {k: v for k, v in wanted.items() if getattr(self, k) != v}

    @staticmethod
    def task_defaults(fields: Mapping[str, Any]) -> dict:
        """The defaults that the task of ``fields`` (given field values; ``auto`` resolved for a
        graph dataset) sets through its options' ``default_settings(model)``: the papers' epochs,
        learning rates and schedules of the graph models. Applied by :meth:`from_mapping` (the
        command line, --config files) to the fields NOT given, so what a user sets always wins."""
        task = fields.get("task") or "auto"
        if task == "auto":
            from kerasdl.data.graphs.pipeline import graph_task

            task = graph_task(fields.get("dataset", RunConfig.dataset)) or "auto"
        if task not in OPTIONS:
            return {}
        try:
            opts = parse_options(task, fields.get("task_options") or {})
        except KerasdlUsageError:
            return {}  # validate() reports it
        if not hasattr(opts, "default_settings"):
            return {}
        return {"task": task, **opts.default_settings(fields.get("model") or default_model(task))}

    @property
    def run_dir(self) -> str:
        if not self.name:
            raise RuntimeError("resolve the config (config.resolved()) before asking for run_dir")
        return os.path.join(self.output_dir, self.name)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str) -> None:
        write_yaml(path, self.to_dict())


def field_type(f: dataclasses.Field) -> str:
    """A field's value type without its ``| None``: "int", "float", "str", "bool", "list" or "dict"."""
    return str(f.type).split("|")[0].strip()


def _check_field(f: dataclasses.Field, value: Any) -> None:
    """One field's own check (see :func:`opt`); messages echo what was received."""
    meta, key = f.metadata, f.name
    if value is None and f.default is None:
        return
    if meta.get("kind"):  # a name from a list: the closest names on a typo
        if value not in meta["choices"]:
            raise UnknownNameError(meta["kind"], str(value), meta["choices"])
        return
    kind, check = field_type(f), meta.get("check")
    if kind == "bool" and not isinstance(value, bool):
        raise KerasdlUsageError(f"{key} must be true or false. Received: {key}={value!r}")
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "int" and check == "positive" and not (isinstance(value, int) and number and value >= 1):
        raise KerasdlUsageError(f"{key} must be a positive integer. Received: {key}={value!r}")
    if check == "positive" and not (number and value > 0):
        raise KerasdlUsageError(f"{key} must be > 0. Received: {key}={value!r}")
    if check == "nonnegative" and not (number and value >= 0):
        raise KerasdlUsageError(f"{key} must be >= 0. Received: {key}={value!r}")
    if check == "unit" and not (number and 0.0 <= value < 1.0):
        raise KerasdlUsageError(f"{key} must be in [0, 1). Received: {key}={value!r}")


def _flag_aliases() -> dict:
    """Config-file keys may also be spelt as the `kerasdl train` flags (--lr -> lr, --batch-size ->
    batch-size): the flags whose name differs from the field's (beyond '-' for '_')."""
    out = {}
    for f in dataclasses.fields(RunConfig):
        flag = (f.metadata.get("flag") or "").split("/")[0].lstrip("-").replace("-", "_")
        if flag and flag != f.name:
            out[flag] = f.name
    return out


KEY_ALIASES = _flag_aliases()  # {"lr": "learning_rate", "min_lr": "min_learning_rate", "model_opt": ...}


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
