"""The task contract: what differs between kinds of learning, behind one interface.

A *task* (classification, regression, segmentation, autoencoder, vae, ...) owns everything that
depends on the kind of learning; the engine (:mod:`kerasdl.engine`) owns everything else — seeding,
the strategy, the run directory, resume-aware callbacks, checkpoints, the NaN guard, backup and
resume — and is the same for every task. The split follows keras-hub's task classes and TF Model
Garden's ``base_task.py``; where training is not plain supervised, a task's model is a
``keras.Model`` subclass that overrides Keras's own extension points (``compute_loss`` /
``train_step``), so ``fit``, callbacks, ``tf.distribute`` and ``BackupAndRestore`` stay unchanged.

The engine calls a task in this order (one :class:`Task` instance per run)::

    task = get_task(name)(config, info)      # info: the dataset's DatasetInfo
    task.check()                             # refuse bad input: before any folder is made
    ds = task.prepare(ds, split)             # per split: e.g. drop labels, add noise, augment
    model = task.build()                     # inside the strategy scope and precision policy
    train_ds, val_ds = task.compile(model, optimizer, train_ds, val_ds, **speed)
    ... engine: fit with callbacks monitoring task.monitor() ...
    inference = task.inference_model(model)  # what model.keras, evaluation and export use
    model = task.rebuild()                   # load_run: checkpoint -> inference_model(model)
    report = task.evaluate(inference, test_ds)              # -> metrics.json "test"
    report["plots"] = task.plots(report, inference, test_ds, run_dir)
    task.after_fit(inference, val_ds, test_ds, run_dir, record)   # calibration, ...
    task.endpoints(inference)                # export: serving_default + named signatures

Importing this module imports neither Keras nor TensorFlow (``kerasdl --help`` stays fast).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

from kerasdl.errors import KerasdlUsageError, UnknownNameError
from kerasdl.tasks.options import COMMANDS, MODULES, OPTIONS, default_model, parse_options

__all__ = ["Task", "Endpoint", "register_task", "get_task", "list_tasks", "task_class", "task_name", "resolve_task",
           "tasks_that", "task_attribute", "refusal", "load_task_data", "DATA_KINDS", "OWN_DATA", "CLASSIFYING"]

# What a task's data looks like (the engine asks the data layer for it):
#   supervised  (x, y) batches; y: class ids, targets or masks
#   unlabeled   x only (an image or vector dataset used without its labels)
#   collocation the task makes its own points (a PDE problem: kerasdl.tasks.pinn); see load_task_data
#   graph       node features + an edge index (kerasdl.data.graphs); the task makes its datasets
#               (one full graph with split masks, or batches of graphs): kerasdl.tasks.graph
DATA_KINDS = ("supervised", "unlabeled", "collocation", "graph")
# The kinds whose task makes its own datasets (Task.make_data) instead of load_splits.
OWN_DATA = ("collocation", "graph")
# The kinds whose runs are classifiers of (inputs, y[, weights]) batches: evaluation, calibration,
# conformal sets and predict read them the supervised way.
CLASSIFYING = ("supervised", "graph")


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One export signature: ``fn`` is a ``tf.function``-able callable of ``input_signature``
    (a list of ``tf.TensorSpec``) returning a dict of named tensors."""

    fn: Callable[..., Any]
    input_signature: list


class Task:
    """Base class of every task. Subclasses set the class attributes and override the methods.

    Instances hold the run's ``config`` (:class:`kerasdl.config.RunConfig`), the dataset's
    ``info`` (:class:`kerasdl.data.DatasetInfo`) and ``opts`` (the task's options dataclass from
    :mod:`kerasdl.tasks.options`, parsed and checked from ``config.task_options``).
    """

    name: ClassVar[str] = ""
    data_kind: ClassVar[str] = "supervised"
    summary: ClassVar[str] = ""  # one line for `kerasdl tasks` / help
    paper: ClassVar[str] = ""
    # Set by register_task from kerasdl.tasks.options (COMMANDS, DEFAULT_MODELS): the data the
    # config and the CLI read without importing a task.
    generative: ClassVar[bool] = False  # `kerasdl sample` works on its runs
    encodes: ClassVar[bool] = False  # `kerasdl encode` works on its runs
    default_model: ClassVar[str] = "lenet5"  # used when the user gives no --model
    # The model roles (ModelInfo.role) this task can train.
    roles: ClassVar[tuple[str, ...]] = ("classifier",)
    # The output names of the export's serving_default (kerasdl.json "outputs").
    serving_outputs: ClassVar[tuple[str, ...]] = ()
    # What a model with its own metrics logs each epoch, with the direction in which each is
    # better (validation figures get the val_ prefix); when set, the monitor must be one of them.
    logged: ClassVar[dict[str, str]] = {}

    def __init__(self, config, info):
        self.config = config
        self.info = info
        self.opts = parse_options(self.name, getattr(config, "task_options", None) or {})
        self.run_dir: str | None = None  # set by load_run: the run this task instance was loaded from

    # -- before any folder is made -------------------------------------------------------------
    def check(self) -> None:
        """Refuse a config that cannot work on this data (raise KerasdlUsageError, one line)."""

    def check_model(self) -> None:
        """``config.model`` must have one of :attr:`roles` (one line with the models that do)."""
        from kerasdl.models import list_models, model_info

        minfo = model_info(self.config.model)  # unknown names: one line with the closest ones
        if minfo.role not in self.roles:
            able = [m for role in self.roles for m in list_models(role=role)]
            raise KerasdlUsageError(
                f"task {self.name!r} trains a {' or '.join(self.roles)}; {self.config.model!r} is a {minfo.role} "
                f"(use --model with one of {', '.join(able)})")

    # -- data ----------------------------------------------------------------------------------
    def make_data(self, splits) -> tuple[dict, Any]:
        """``(datasets by split, DatasetInfo)`` of a task that makes its own data (data_kind
        ``collocation``); the others read ``config.dataset`` (see :func:`load_task_data`)."""
        raise NotImplementedError

    def steps_per_epoch(self) -> int | None:
        """Batches per epoch when the task decides it (full-batch tasks: 1); None: the dataset's."""
        return None

    def prepare(self, ds, split: str):
        """The dataset of ``split`` as the trainable model consumes it (default: unchanged)."""
        return ds

    # -- model ---------------------------------------------------------------------------------
    def build(self):
        """The trainable ``keras.Model`` (called inside the strategy scope)."""
        raise NotImplementedError

    def compile(self, model, optimizer, train_ds, val_ds, **speed):
        """Compile ``model``; returns ``(train_ds, val_ds)`` (remapped where the model needs it)."""
        raise NotImplementedError

    def monitor(self) -> tuple[str, str]:
        """(metric to monitor, "min" | "max") — the config's ``monitor`` with its direction.
        ``("epoch", "max")`` keeps the last epoch (GANs: their losses do not measure quality).
        A task with :attr:`logged` takes the direction from it (``--monitor`` default val_loss)
        and refuses a monitor its model never logs, in one line, before training."""
        if self.logged:
            name = self.config.monitor or "val_loss"
            directions = {**self.logged, **{f"val_{k}": v for k, v in self.logged.items()}}
            if name not in directions:
                raise KerasdlUsageError(f"monitor {name!r} is not logged by task {self.name!r}; "
                                        f"choose one of {', '.join(directions)}")
            return name, directions[name]
        from kerasdl.engine.callbacks import monitor_mode

        return self.config.monitor, monitor_mode(self.config.monitor)

    def callbacks(self, run_dir: str) -> list:
        """Extra Keras callbacks of the chief's fit (e.g. sample grids); they run before the
        backup, so an epoch's figures are written before it counts as done."""
        return []

    def inference_model(self, model):
        """The model that is saved, evaluated and exported (default: the trained one)."""
        return model

    def rebuild(self):
        """The trainable model again, outside any strategy, for ``load_run`` to load the checkpoint
        into (then :meth:`inference_model`); default :meth:`build`."""
        return self.build()

    # -- after fitting -------------------------------------------------------------------------
    def evaluate(self, model, ds, **kw) -> dict:
        """Figures of ``model`` on ``ds`` (the "test" entry of metrics.json)."""
        raise NotImplementedError

    def plots(self, report: dict, model, ds, run_dir: str, split: str = "test") -> list[str]:
        """PNG figures for the report; returns their paths relative to ``run_dir``."""
        return []

    def after_fit(self, model, val_ds, test_ds, run_dir: str, record: dict, title: str = "") -> None:
        """Steps after fitting that add to ``record`` (metrics.json), e.g. calibration."""

    # -- export --------------------------------------------------------------------------------
    def endpoints(self, model, run_dir: str) -> dict[str, Endpoint]:
        """Export signatures by name; ``serving_default`` first."""
        raise NotImplementedError

    def export_outputs(self, run_dir: str) -> list[str]:
        """The ``serving_default`` output names written to the export's kerasdl.json."""
        return list(self.serving_outputs)

    # -- generative use: `kerasdl sample` / `kerasdl encode` ------------------------------------
    def sample(self, model, n: int, seed: int):
        """``n`` images (N, ...) in [0, 1] drawn from the model's prior with ``seed`` (generative
        tasks: ``options.COMMANDS['sample']``); others refuse in one line."""
        raise KerasdlUsageError(refusal(self.name, "sample"))

    def encode(self, model, x_raw):
        """Codes (N, k) of raw inputs ``x_raw`` (as the dataset stores them; tasks with an encoder:
        ``options.COMMANDS['encode']``); others refuse in one line."""
        raise KerasdlUsageError(refusal(self.name, "encode"))

    # -- tuning --------------------------------------------------------------------------------
    def tune_objectives(self) -> dict[str, str]:
        """Objectives ``kerasdl tune --objective`` accepts for this task: name -> "min" | "max"."""
        name, mode = self.monitor()
        return {name: mode}

    def tune_space(self) -> dict:
        """Extra search-space entries this task adds (hyperparameter name -> choices)."""
        return {}


# --------------------------------------------------------------------------- registry

_TASKS: dict[str, type[Task]] = {}
# Task name -> module under kerasdl.tasks, so listing and name checks need no import of them.
# (Every name has its options dataclass in kerasdl.tasks.options; a test checks the two agree.)
_MODULES = {name: MODULES.get(name, name) for name in OPTIONS}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register a task under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.data_kind not in DATA_KINDS:
        raise ValueError(f"{cls.__name__}.data_kind {cls.data_kind!r} is not one of {DATA_KINDS}")
    if cls.name in _TASKS and _TASKS[cls.name] is not cls:
        raise ValueError(f"task {cls.name!r} is already registered (by {_TASKS[cls.name]!r})")
    cls.generative = cls.name in COMMANDS["sample"]
    cls.encodes = cls.name in COMMANDS["encode"]
    cls.default_model = default_model(cls.name)
    _TASKS[cls.name] = cls
    return cls


def list_tasks() -> list[str]:
    """Every registered task name, sorted."""
    return sorted(OPTIONS)


def task_class(name: str) -> type[Task]:
    """The task class registered as ``name``; an unknown name is a one-line error with the closest."""
    if name not in _MODULES:
        raise UnknownNameError("task", name, list_tasks())
    if name not in _TASKS:
        import importlib

        importlib.import_module(f"kerasdl.tasks.{_MODULES[name]}")
    return _TASKS[name]


def get_task(name: str, config, info) -> Task:
    """A task instance for one run (options parsed and checked)."""
    return task_class(name)(config, info)


def task_name(config, dataset_task: str) -> str:
    """The run's task: ``config.task``, or with ``auto`` the dataset's own (supervised) task."""
    task = getattr(config, "task", "auto") or "auto"
    return dataset_task if task == "auto" else task


def load_task_data(config, splits, **kw) -> tuple[dict, Any, Task]:
    """``(data, info, task)`` of a run: its splits, its DatasetInfo and its task instance. A task
    of data kind ``collocation`` or ``graph`` makes its data itself (:meth:`Task.make_data`); the others read
    ``config.dataset`` with :func:`kerasdl.data.load_splits` (``kw``: its options)."""
    name = getattr(config, "task", "auto") or "auto"
    if name == "auto":
        from kerasdl.data.graphs.pipeline import graph_task

        name = graph_task(getattr(config, "dataset", None)) or "auto"
    if name != "auto" and task_class(name).data_kind in OWN_DATA:
        task = task_class(name)(config, None)
        data, task.info = task.make_data(tuple(splits))
        return data, task.info, task
    from kerasdl.data import load_splits

    data, info = load_splits(config, splits, **kw)
    return data, info, resolve_task(config, info)


def resolve_task(config, info) -> Task:
    """The task instance of a run (``config.task``, ``auto`` resolved from the dataset)."""
    return get_task(task_name(config, info.task), config, info)


# --------------------------------------------------------------------------- capabilities

# Command -> (the Task flag it needs, what such a run is called in an error).
CAPABILITIES = {"sample": ("generative", "a generative run"), "encode": ("encodes", "a run with an encoder")}
_FLAGS = {flag: command for command, (flag, _) in CAPABILITIES.items()}


def tasks_that(command: str) -> list[str]:
    """The task names whose runs ``kerasdl <command>`` ("sample" | "encode") works on."""
    return sorted(COMMANDS[command])


def task_attribute(name: str, attr: str) -> Any:
    """A class attribute of task ``name``; the capability flags (``generative``, ``encodes``) and
    ``default_model`` come from :mod:`kerasdl.tasks.options` without importing the task (no Keras:
    the refusals of ``kerasdl sample`` / ``encode`` come before TensorFlow loads)."""
    if name not in _MODULES:
        raise UnknownNameError("task", name, list_tasks())
    if attr in _FLAGS:
        return name in COMMANDS[_FLAGS[attr]]
    if attr == "default_model":
        return default_model(name)
    return getattr(task_class(name), attr)


def refusal(task: str, command: str, where: str = "") -> str:
    """The one-line refusal of ``command`` on a run of ``task``, e.g. "run runs/x is a
    classification run; sample needs a generative run (task vae)"."""
    what = CAPABILITIES[command][1]
    able = tasks_that(command)
    prefix = f"run {where}" if where else "this"
    article = "an" if task[:1] in "aeiou" else "a"
    names = able[0] if len(able) == 1 else f"{', '.join(able[:-1])} or {able[-1]}"
    return f"{prefix} is {article} {task} run; {command} needs {what} (task {names})"
