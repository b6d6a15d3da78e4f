"""Training at scale: tf.distribute strategies, mixed precision and the global-batch rules.

``kerasdl train --strategy S`` builds and compiles the model inside ``S.scope()`` and lets
``model.fit`` split every batch across the replicas:

- ``auto``: MultiWorkerMirrored when ``TF_CONFIG`` describes a cluster of more than one task,
  else Mirrored when more than one GPU is visible (or ``cpu_devices`` > 1), else the default
  (one device) strategy;
- ``one_device``: the first GPU, or the CPU;
- ``mirrored``: synchronous data parallelism over the local GPUs (all-reduce of the gradients);
  on a CPU-only machine ``cpu_devices: N`` splits the CPU into N logical devices, which is how
  the tests and a curious user exercise the multi-replica code path without GPUs;
- ``multi_worker``: MultiWorkerMirroredStrategy across processes/hosts, described by
  ``TF_CONFIG`` (every worker runs the same command; see the README for a launch recipe);
- ``tpu``: TPUStrategy on the TPU the cluster resolver finds.

**Global batch.** ``batch_size`` is the *global* batch: each of the R replicas computes the
gradient of ``batch_size / R`` examples and the all-reduce sums them, so one update sees exactly
the examples a one-device run with the same ``batch_size`` sees, and the loss curve does not
depend on R (tested: one device, 2 mirrored replicas and 2 worker processes agree). It must be
divisible by R. To grow the batch with the hardware, raise ``batch_size`` and let
``lr_scaling`` adapt the learning rate:

- ``linear`` (Goyal et al. 2017, "Accurate, Large Minibatch SGD"): lr x (batch_size / lr_base_batch);
  pair it with a warmup (``warmup_epochs``) for large factors, as the paper does;
- ``sqrt`` (Krizhevsky 2014; Hoffer et al. 2017): lr x sqrt(batch_size / lr_base_batch), the
  usual choice for Adam-like optimisers;
- ``none`` (default): the learning rate is used as given.

**Precision.** ``mixed_float16`` / ``mixed_bfloat16`` compute in 16 bits with float32 variables
(Micikevicius et al. 2018); float16 adds dynamic loss scaling (keras's LossScaleOptimizer, applied
by ``compile``). The saved ``model.keras`` is always a float32 model with the trained weights.

**Keras 3 and MultiWorkerMirroredStrategy.** Keras 3.15's TensorFlow trainer cannot ``fit`` under
MultiWorkerMirroredStrategy (keras-team/keras#20585): its symbolic build ``reduce``\\ s an eager
input batch, and its metric reduction asks for ``axis=0`` of scalar metric values.
:func:`patch_keras_trainer` fixes both (the shapes from the dataset's ``element_spec``, for every
strategy: keras's extra iterator also shifted the shuffled data order of distributed runs; a
plain cross-worker MEAN of the metric values for multi-worker strategies only); models without a
strategy run keras's code unchanged.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

from kerasdl.errors import KerasdlUsageError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
LR_SCALINGS = ("none", "linear", "sqrt")


# ----------------------------------------------------------------------------- the cluster


@dataclass(frozen=True)
class Role:
    """This process's place in a multi-worker cluster (from ``TF_CONFIG``)."""

    task_type: str
    task_index: int
    num_workers: int
    has_chief_task: bool = False  # the cluster names a "chief" task (else worker 0 is the chief)

    @property
    def is_chief(self) -> bool:
        """The chief writes the run directory; the others train alongside and write nothing lasting."""
        if self.task_type == "chief":
            return True
        return self.task_type == "worker" and self.task_index == 0 and not self.has_chief_task

    @property
    def label(self) -> str:
        return f"{self.task_type}{self.task_index}"


SINGLE = Role("worker", 0, 1)


def cluster_role() -> Role:
    """The role ``TF_CONFIG`` gives this process (one worker when it is unset)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return SINGLE
    try:
        spec = json.loads(raw)
        cluster, task = spec["cluster"], spec.get("task", {})
        workers = sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))
        role = Role(str(task["type"]), int(task["index"]), workers, has_chief_task=bool(cluster.get("chief")))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KerasdlUsageError(
            f"TF_CONFIG is not a valid cluster description ({type(exc).__name__}: {exc}); expected "
            '{"cluster": {"worker": ["host1:port", ...]}, "task": {"type": "worker", "index": 0}}'
        ) from None
    if role.task_type not in ("chief", "worker"):
        raise KerasdlUsageError(
            f"kerasdl train runs chief and worker tasks only; TF_CONFIG names task type {role.task_type!r}"
        )
    return role


# ----------------------------------------------------------------------------- strategies


def split_cpu(devices: int) -> None:
    """Split the physical CPU into ``devices`` logical devices (before TensorFlow starts using it)."""
    import tensorflow as tf

    if devices <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == devices:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:  # the runtime is already initialised with another split
        raise KerasdlUsageError(
            f"cpu_devices={devices} must be set before TensorFlow starts (this process already "
            f"has {len(tf.config.list_logical_devices('CPU'))} CPU device(s)); run it in a fresh process"
        ) from None


def resolve_strategy_name(name: str, cpu_devices: int = 1) -> str:
    """What ``auto`` means on this machine (other names pass through)."""
    if name != "auto":
        return name
    import tensorflow as tf

    if cluster_role().num_workers > 1:
        return "multi_worker"
    if len(tf.config.list_physical_devices("GPU")) > 1 or cpu_devices > 1:
        return "mirrored"
    return "one_device"


def make_strategy(name: str, cpu_devices: int = 1):
    """The ``tf.distribute.Strategy`` for ``name`` (see the module docstring)."""
    import tensorflow as tf

    name = resolve_strategy_name(name, cpu_devices)
    patch_keras_trainer()
    if name == "multi_worker":
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.AUTO)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    split_cpu(cpu_devices)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "one_device":
        if len(gpus) > 1:
            return tf.distribute.OneDeviceStrategy(gpus[0].name)
        return tf.distribute.get_strategy()  # the default strategy: keras's ordinary path
    if name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as exc:
            raise KerasdlUsageError(f"strategy 'tpu' found no TPU: {str(exc).splitlines()[0]}") from None
        return tf.distribute.TPUStrategy(resolver)
    raise KerasdlUsageError(f"unknown strategy {name!r}")  # config.validate() refuses it first


def is_default(strategy) -> bool:
    """Is ``strategy`` TensorFlow's default (no distribution) strategy? Right inside or outside a scope."""
    import tensorflow as tf

    with strategy.scope():
        return not tf.distribute.has_strategy()


AUTO_STEPS_PER_EXECUTION = 32


def resolved_steps_per_execution(config, strategy=None) -> int:
    """``config.steps_per_execution``, or the automatic choice when it is None.

    Auto is 32 batches per compiled call: with few-millisecond steps the Python round trip per
    batch is a large share of the time (LeNet-5 on 2 CPU cores: 1.4x the images/s with oneDNN,
    benchmarks/RESULTS.md), and the updates are the same. Callbacks then see every 32nd batch,
    so auto is 1 where a callback must act on every batch: the plateau schedule's warmup.

    Under a distribution strategy (not the default one) it is 1: Keras 3.15's multi-step loop
    over a distributed iterator fails ("You must feed a value for placeholder tensor ...
    while/cond/Placeholder"), so more than 1 is refused there with a clear message.
    """
    distributed = strategy is not None and not is_default(strategy)
    if config.steps_per_execution is not None:
        if distributed and config.steps_per_execution > 1:
            raise KerasdlUsageError(
                f"steps_per_execution > 1 does not work under {type(strategy).__name__} in this Keras "
                f"(its multi-step loop fails on a distributed iterator). Received: "
                f"steps_per_execution={config.steps_per_execution}"
            )
        return int(config.steps_per_execution)
    if distributed or (config.schedule == "plateau" and config.warmup_epochs):
        return 1
    return AUTO_STEPS_PER_EXECUTION


def num_replicas() -> int:
    """Replicas of the current strategy (1 outside any): a custom train step divides a summed
    loss by ``local batch x num_replicas()`` -- the global batch -- as Keras's own losses do."""
    import tensorflow as tf

    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def replica_id():
    """This replica's index (an int64 tensor; 0 outside a replica context): folded into the
    stateless seeds of a custom train step, so that replicas draw different noise."""
    import tensorflow as tf

    ctx = tf.distribute.get_replica_context()
    return tf.cast(ctx.replica_id_in_sync_group if ctx is not None else 0, tf.int64)


def check_global_batch(batch_size: int, replicas: int) -> None:
    if batch_size % replicas:
        raise KerasdlUsageError(
            f"batch_size is the global batch and must be divisible by the {replicas} replicas. "
            f"Received: batch_size={batch_size}"
        )


def scaled_learning_rate(learning_rate: float, batch_size: int, rule: str, base_batch: int) -> float:
    """The learning rate after the ``lr_scaling`` rule (see the module docstring)."""
    factor = batch_size / base_batch
    if rule == "linear":
        return learning_rate * factor
    if rule == "sqrt":
        return learning_rate * math.sqrt(factor)
    return learning_rate


def run_learning_rate(config) -> float:
    """The learning rate a run trains with: ``config.learning_rate`` after its ``lr_scaling`` rule."""
    return scaled_learning_rate(config.learning_rate, config.batch_size, config.lr_scaling, config.lr_base_batch)


# ----------------------------------------------------------------------------- precision


class precision_policy:
    """Context manager: keras's global dtype policy is ``name`` inside, the previous one after.

    Global state must not leak: a test, a tuner trial or the next run in the same process would
    otherwise build its models in float16.
    """

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        import keras

        self._previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(self.name)
        return self

    def __exit__(self, *exc):
        import keras

        keras.config.set_dtype_policy(self._previous)
        return False


# ----------------------------------------------------------------------------- keras 3 fixes


_PATCHED = False


def patch_keras_trainer() -> None:
    """Let Keras 3's TensorFlow ``fit``/``evaluate`` run under MultiWorkerMirroredStrategy.

    Two changes (keras-team/keras#20585), only for models under a strategy:

    1. ``_maybe_symbolic_build`` needs the input shapes; keras draws a batch from a fresh
       iterator and ``reduce``\\ s it eagerly. The collective strategy cannot do that; under
       MirroredStrategy it fails when the first batch splits unevenly (``AddN`` of 630 and 629
       rows); and the extra iterator advances a reshuffling dataset by one epoch, so a
       distributed run would see another order of the data than a one-device run with the same
       seed. The dataset's ``element_spec`` has the shapes without drawing anything.
    2. ``reduce_per_replica(..., "auto"/"mean")`` calls ``strategy.reduce("MEAN", v, axis=0)`` on
       scalar metric values, which fails; the cross-worker mean (``axis=None``) is what is meant.
    Idempotent.
    """
    global _PATCHED
    if _PATCHED:
        return
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if not (hasattr(tf_trainer, "reduce_per_replica") and hasattr(tf_trainer, "_collective_all_reduce_multi_worker")
            and hasattr(tf_trainer.TensorFlowTrainer, "_maybe_symbolic_build")):
        raise RuntimeError("this keras version's TensorFlow trainer is not the one kerasdl knows how to "
                           "run multi-worker (keras-team/keras#20585); please report it")
    multi_worker = tf_trainer._collective_all_reduce_multi_worker
    keras_reduce = tf_trainer.reduce_per_replica
    keras_build = tf_trainer.TensorFlowTrainer._maybe_symbolic_build

    def reduce_per_replica(values, strategy, reduction):
        if multi_worker(strategy) and reduction in ("auto", "mean"):
            return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return keras_reduce(values, strategy, reduction)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if strategy is None:
            return keras_build(self, iterator=iterator, data_batch=data_batch)
        if iterator is not None:  # the shapes and dtypes, without drawing a batch
            data_batch = iterator.data_adapter.get_tf_dataset().element_spec
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    tf_trainer.reduce_per_replica = reduce_per_replica
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    _PATCHED = True


def build_before_fit(model, dataset) -> None:
    """Create every variable ``fit`` needs (model, compiled metrics, loss, optimizer) before the
    train function is traced, from the dataset's ``element_spec`` (no batch is drawn).

    Without a strategy Keras 3 defers this to the first trace of the train step, which then creates
    the metrics' and the optimizer's variables; ``tf.function`` must trace a function that created
    variables a second time, so the whole multi-step train function was traced twice (about a
    third of the first epoch of LeNet-5). Under a strategy :func:`patch_keras_trainer` does the
    same build at ``fit``; calling this first does no harm there. Call inside the strategy scope.
    """
    build = getattr(model, "_symbolic_build", None)
    if build is None:  # another keras: it builds while tracing (one extra trace, same result)
        return
    build(data_batch=dataset.element_spec)  # builds the optimizer too
