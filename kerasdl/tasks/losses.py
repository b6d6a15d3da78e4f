"""Losses by name, written with ``keras.ops`` only (TensorFlow, JAX and PyTorch backends).

Every loss is a plain function ``fn(y_true, y_pred) -> per-example values`` (one value per
example, or per pixel for segmentation); :func:`make_loss` wraps it in a registered
``keras.losses.Loss`` subclass that averages those values over the batch.

Conventions (the pipeline's, see ARCHITECTURE.md):

* **Classification losses take logits** ``z`` of shape ``(..., C)`` and form probabilities
  inside, through ``log_softmax`` (never ``log(softmax)``), so logits of +-1e4 give finite values
  and gradients. ``p = softmax(z)``.
* **Targets.** Labels arrive as integer class ids, shape ``(...)`` or ``(..., 1)``; they are
  one-hot encoded inside (``t = one_hot(y, C)``). A ``y_true`` with the logits' own shape
  ``(..., C)`` is taken as one-hot or probability targets as given. The choice is made on the
  static rank and last dimension, so no label is ever guessed from its values.
* **One logit** (``C == 1``, the model of ``binary_crossentropy`` on a two-class set): ``z`` is
  the logit of class 1 and ``y`` is the label (or probability) of class 1. The probability losses
  read it as the logit pair ``(0, z)``, whose softmax is ``(1 - sigmoid(z), sigmoid(z))``, and
  ``t = (1 - y, y)``; the hinge family uses the margin form ``max(0, 1 - s z)`` with ``s = 2y - 1``.
* **Regression losses** compare the outputs ``(..., K)`` with targets of the same shape (or
  ``(...)`` for ``K == 1``) and average over the last axis, as keras does.

Most of the list follows Janocha & Czarnecki, "On Loss Functions for Deep Neural Networks in
Classification", Schedae Informaticae 25 (2016), arXiv:1702.05659, which compares these losses on
MNIST and CIFAR-10; where our definition differs from theirs, the docstring says so.

Importing this module does not import keras (the CLI reads :data:`LOSSES` for ``--help``, and
``kerasdl --help`` never starts TensorFlow); keras is imported when a loss is computed or built.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

from kerasdl.errors import KerasdlUsageError, UnknownNameError

EPSILON = 1e-7  # probability clipping of log_loss / squared_log_loss (keras's backend epsilon)
HUBER_DELTA = 1.0


class _LazyOps:
    """``keras.ops``, imported on first use (see the module docstring)."""

    def __getattr__(self, attr):
        from keras import ops as keras_ops

        return getattr(keras_ops, attr)


ops = _LazyOps()


# ---- shapes and targets -------------------------------------------------------------------------
def _align(y_true, y_pred):
    """``y_true`` in ``y_pred``'s dtype and rank: ``(B,)`` targets of ``(B, 1)`` outputs gain the axis."""
    y_true = ops.cast(y_true, y_pred.dtype)
    if len(y_true.shape) == len(y_pred.shape) - 1:
        y_true = ops.expand_dims(y_true, -1)
    k_true, k_pred = y_true.shape[-1], y_pred.shape[-1]
    known = k_true is not None and k_pred is not None
    if len(y_true.shape) != len(y_pred.shape) or (known and k_true != k_pred):
        raise ValueError(f"targets must have the outputs' shape {tuple(y_pred.shape)}. "
                         f"Received: y_true.shape={tuple(y_true.shape)}")
    return y_true


def _class_ids(y_true, logits):
    """Integer class ids of shape ``logits.shape[:-1]`` from labels ``(...)`` or ``(..., 1)``."""
    if len(y_true.shape) == len(logits.shape) and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    if len(y_true.shape) != len(logits.shape) - 1:
        raise ValueError(f"labels must be class ids of shape {tuple(logits.shape[:-1])} (or with a "
                         f"trailing 1) for logits of shape {tuple(logits.shape)}. "
                         f"Received: y_true.shape={tuple(y_true.shape)}")
    return ops.cast(y_true, "int32")


def _targets(y_true, logits, *, sparse: bool = False):
    """Target distributions ``t`` of shape ``logits.shape`` (``C > 1``): one-hot class ids, or the
    given one-hot / probability targets when ``y_true`` already has that shape (not if ``sparse``)."""
    n = logits.shape[-1]
    if not sparse and len(y_true.shape) == len(logits.shape) and y_true.shape[-1] == n:
        return ops.cast(y_true, logits.dtype)
    return ops.one_hot(_class_ids(y_true, logits), n, dtype=logits.dtype)


def _log_probs_and_targets(y_true, logits, *, sparse: bool = False):
    """``(log p, t)`` over the last axis; one logit ``z`` is the pair ``(0, z)`` with ``t = (1-y, y)``."""
    if logits.shape[-1] == 1:
        y = _align(y_true, logits)  # (..., 1): label or probability of class 1
        logits = ops.concatenate([ops.zeros_like(logits), logits], axis=-1)
        t = ops.concatenate([1.0 - y, y], axis=-1)
    else:
        t = _targets(y_true, logits, sparse=sparse)
    return ops.log_softmax(logits, axis=-1), t


def _clipped_probs_and_targets(y_true, logits, epsilon):
    log_p, t = _log_probs_and_targets(y_true, logits)
    return ops.clip(ops.exp(log_p), epsilon, 1.0 - epsilon), t


def _signed_targets(y_true, logits):
    """Hinge targets ``s = 2t - 1`` in {-1, +1}: one-vs-rest over ``C`` logits, or the label for one."""
    t = _align(y_true, logits) if logits.shape[-1] == 1 else _targets(y_true, logits)
    return 2.0 * t - 1.0


# ---- regression ---------------------------------------------------------------------------------
def mse(y_true, y_pred):
    """Mean squared error: ``mean_k (y_k - yhat_k)^2``.

    The Gaussian negative log-likelihood up to constants (Goodfellow, Bengio & Courville,
    *Deep Learning*, 2016, section 5.5.1).
    """
    y_true = _align(y_true, y_pred)
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


def mae(y_true, y_pred):
    """Mean absolute error: ``mean_k |y_k - yhat_k|``.

    The Laplace negative log-likelihood up to constants; its minimiser is the conditional median
    (Goodfellow, Bengio & Courville, *Deep Learning*, 2016, section 6.2.1.2).
    """
    y_true = _align(y_true, y_pred)
    return ops.mean(ops.abs(y_true - y_pred), axis=-1)


def msle(y_true, y_pred):
    """Mean squared logarithmic error: ``mean_k (log(1 + y_k) - log(1 + yhat_k))^2``.

    Relative errors for non-negative targets (counts, prices). Values below 0 are clipped to 0 on
    both sides first, so an unbounded model output cannot reach ``log`` of a non-positive number
    (keras's ``MeanSquaredLogarithmicError`` clips at its epsilon, 1e-7, instead).
    """
    y_true = _align(y_true, y_pred)
    log_true = ops.log1p(ops.maximum(y_true, 0.0))
    log_pred = ops.log1p(ops.maximum(y_pred, 0.0))
    return ops.mean(ops.square(log_true - log_pred), axis=-1)


def huber(y_true, y_pred, delta: float = HUBER_DELTA):
    """Huber loss, ``mean_k h(y_k - yhat_k)`` with ``h(e) = e^2 / 2`` for ``|e| <= delta`` and
    ``delta * (|e| - delta / 2)`` beyond: quadratic near 0, linear (outlier-robust) in the tails.

    Huber, "Robust Estimation of a Location Parameter", Ann. Math. Statist. 35 (1964).
    """
    y_true = _align(y_true, y_pred)
    err = ops.abs(y_true - y_pred)
    quadratic = ops.minimum(err, delta)
    return ops.mean(0.5 * ops.square(quadratic) + delta * (err - quadratic), axis=-1)


# ---- cross-entropies ----------------------------------------------------------------------------
def binary_crossentropy(y_true, y_pred):
    """Binary cross-entropy on logits, ``mean_k -[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))]``.

    Computed as ``max(z, 0) - y z + log(1 + exp(-|z|))``, finite for any logit. ``y`` is the 0/1
    label (or probability) of class 1; ``z`` has one logit per example (or one per label for
    multi-label targets of the logits' shape). Goodfellow et al., *Deep Learning*, section 6.2.2.2.
    """
    y_true = _align(y_true, y_pred)
    z = y_pred
    per_logit = ops.relu(z) - y_true * z + ops.log1p(ops.exp(-ops.abs(z)))
    return ops.mean(per_logit, axis=-1)


def _smoothed(t, smoothing: float):
    """Label-smoothed targets ``(1 - e) t + e / K`` over the last axis's K classes (``t`` if e = 0)."""
    return (1.0 - smoothing) * t + smoothing / t.shape[-1] if smoothing else t


def categorical_crossentropy(y_true, y_pred, smoothing: float = 0.0):
    """Categorical cross-entropy on logits, ``-sum_j t_j log p_j`` with ``log p = log_softmax(z)``.

    Takes class ids (one-hot inside) or one-hot / probability targets. Goodfellow et al.,
    *Deep Learning*, section 6.2.2.3. ``smoothing`` = ε > 0 trains on the label-smoothed targets
    ``(1 - ε) t + ε / K`` over ``K`` classes (Szegedy et al. 2016, "Rethinking the Inception
    Architecture", section 7).
    """
    log_p, t = _log_probs_and_targets(y_true, y_pred)
    return -ops.sum(_smoothed(t, smoothing) * log_p, axis=-1)


def sparse_categorical_crossentropy(y_true, y_pred, smoothing: float = 0.0):
    """Cross-entropy with integer class ids, ``-log p_y = logsumexp(z) - z_y``.

    The same value as :func:`categorical_crossentropy` with one-hot targets, but only class ids
    are accepted (shape ``(...)`` or ``(..., 1)``), as in keras. The default classification and
    segmentation loss, so it runs the backend's fused kernel (``ops.sparse_categorical_crossentropy``,
    no one-hot tensor): the default training path costs what it did with keras's own loss.
    ``smoothing`` = ε > 0: label smoothing, ``(1 - ε) (-log p_y) + ε mean_j (-log p_j)`` (the
    cross-entropy with targets ``(1 - ε) onehot(y) + ε / K``, still without a one-hot tensor).
    """
    if y_pred.shape[-1] == 1 or smoothing:  # one logit: the pair (0, z)
        log_p, t = _log_probs_and_targets(y_true, y_pred, sparse=True)
        return -ops.sum(_smoothed(t, smoothing) * log_p, axis=-1)
    return ops.sparse_categorical_crossentropy(_class_ids(y_true, y_pred), y_pred, from_logits=True)


def kl_divergence(y_true, y_pred):
    """Kullback-Leibler divergence ``KL(t || p) = sum_j t_j (log t_j - log p_j)``, with ``0 log 0 = 0``.

    For one-hot targets it equals the cross-entropy (the entropy of ``t`` is 0); it differs for
    soft targets (label smoothing, distillation). Unlike keras's ``KLDivergence`` nothing is
    clipped: ``log p`` is the exact log-softmax. Kullback & Leibler, "On Information and
    Sufficiency", Ann. Math. Statist. 22 (1951).
    """
    log_p, t = _log_probs_and_targets(y_true, y_pred)
    t_log_t = t * ops.log(ops.maximum(t, 1e-30))  # 0 where t == 0
    return ops.sum(t_log_t - t * log_p, axis=-1)


# ---- log losses on probabilities ----------------------------------------------------------------
def log_loss(y_true, y_pred, epsilon: float = EPSILON):
    """Log loss on clipped probabilities, ``-sum_j t_j log clip(p_j, eps, 1 - eps)``, ``eps = 1e-7``.

    The probability-space definition (scikit-learn's ``log_loss``; one logit gives the binary
    ``-[y log p + (1 - y) log(1 - p)]``). It equals the cross-entropy wherever the probabilities
    lie in ``[eps, 1 - eps]``; beyond, each term is capped at ``-log(eps) ~= 16.1`` and its
    gradient is 0, so a confidently wrong example stops contributing (cross-entropy keeps
    growing linearly in the logit). Janocha & Czarnecki 2016 ("log loss").
    """
    p, t = _clipped_probs_and_targets(y_true, y_pred, epsilon)
    return -ops.sum(t * ops.log(p), axis=-1)


def squared_log_loss(y_true, y_pred, epsilon: float = EPSILON):
    """Squared log loss, ``sum_j (t_j log clip(p_j, eps, 1 - eps))^2`` (the log loss's terms squared).

    For one-hot targets it is the square of :func:`log_loss`: small for confident correct
    predictions, heavier than the log loss on the wrong ones. Janocha & Czarnecki 2016
    ("squared log"; clipped here as in :func:`log_loss`).
    """
    p, t = _clipped_probs_and_targets(y_true, y_pred, epsilon)
    return ops.sum(ops.square(t * ops.log(p)), axis=-1)


# ---- hinge family (one-vs-rest) -----------------------------------------------------------------
def _hinge_power(y_true, y_pred, power: int):
    s = _signed_targets(y_true, y_pred)
    return ops.sum(ops.relu(1.0 - s * y_pred) ** power, axis=-1)


def hinge(y_true, y_pred):
    """One-vs-rest hinge loss on logits, ``sum_j max(0, 1 - s_j z_j)`` with ``s_j = 2 t_j - 1``.

    Each logit is a binary SVM score for "class j vs the rest": +1 for the true class, -1 for the
    others, margin 1 (summed over classes as in Janocha & Czarnecki 2016, so the gradient per logit
    does not shrink with the number of classes). With one logit, ``s = 2y - 1`` from the 0/1 label.
    Cortes & Vapnik, "Support-Vector Networks", Mach. Learn. 20 (1995); one-vs-rest: Rifkin &
    Klautau, "In Defense of One-Vs-All Classification", JMLR 5 (2004).
    """
    return _hinge_power(y_true, y_pred, 1)


def squared_hinge(y_true, y_pred):
    """Squared one-vs-rest hinge, ``sum_j max(0, 1 - s_j z_j)^2`` (the L2-SVM; differentiable).

    Targets as in :func:`hinge`. Tang, "Deep Learning using Linear Support Vector Machines",
    ICML workshop 2013.
    """
    return _hinge_power(y_true, y_pred, 2)


def cubed_hinge(y_true, y_pred):
    """Cubed one-vs-rest hinge, ``sum_j max(0, 1 - s_j z_j)^3``.

    Targets as in :func:`hinge`. Janocha & Czarnecki 2016 ("cubed hinge").
    """
    return _hinge_power(y_true, y_pred, 3)


# ---- losses on the softmax probabilities --------------------------------------------------------
def expectation(y_true, y_pred):
    """Expectation loss: the expected 0-1 error under the softmax, ``1 - sum_j t_j p_j`` (``1 - p_y``).

    Bounded in [0, 1] and robust to label noise, but its gradient vanishes on confidently wrong
    examples. Janocha & Czarnecki 2016 define it as ``sum_j |t_j - p_j|``, which is exactly twice
    this value for one-hot targets.
    """
    log_p, t = _log_probs_and_targets(y_true, y_pred)
    return 1.0 - ops.sum(t * ops.exp(log_p), axis=-1)


def chebyshev(y_true, y_pred):
    """Chebyshev loss, the L-infinity distance ``max_j |p_j - t_j|`` between softmax and targets.

    Janocha & Czarnecki 2016 ("Chebyshev loss").
    """
    log_p, t = _log_probs_and_targets(y_true, y_pred)
    return ops.max(ops.abs(ops.exp(log_p) - t), axis=-1)


def tanimoto(y_true, y_pred):
    """Tanimoto loss, ``1 - sum(p t) / (sum(p^2) + sum(t^2) - sum(p t))`` (sums over classes).

    One minus the Tanimoto (extended Jaccard) similarity of ``p`` and ``t``; the denominator is
    ``||p - t||^2 + p.t > 0`` for probability vectors. Tanimoto, IBM internal report (1958);
    Janocha & Czarnecki 2016 use ``-similarity``, which differs by the constant 1.
    """
    log_p, t = _log_probs_and_targets(y_true, y_pred)
    p = ops.exp(log_p)
    pt = ops.sum(p * t, axis=-1)
    return 1.0 - pt / (ops.sum(p * p, axis=-1) + ops.sum(t * t, axis=-1) - pt)


def cauchy_schwarz(y_true, y_pred):
    """Cauchy-Schwarz divergence, ``-log( sum(p t) / sqrt(sum(p^2) sum(t^2)) )`` (>= 0).

    ``log sum(p t)`` is taken as a log-sum-exp of ``log p_j + log t_j`` over the classes with
    ``t_j > 0``, so a true class whose probability underflows to 0 still gives a finite value
    (``-log_softmax(z)_y + ...`` for one-hot targets). Principe, Xu & Fisher, "Information
    Theoretic Learning" (2000); Janocha & Czarnecki 2016.
    """
    log_p, t = _log_probs_and_targets(y_true, y_pred)
    present = t > 0
    log_pt = ops.logsumexp(ops.where(present, log_p + ops.log(ops.where(present, t, 1.0)), -1e30), axis=-1)
    log_norms = ops.log(ops.sum(ops.exp(2.0 * log_p), axis=-1)) + ops.log(ops.sum(t * t, axis=-1))
    return 0.5 * log_norms - log_pt


# ---- the keras object ----------------------------------------------------------------------------
def build(name: str, **options):
    """The registered ``keras.losses.Loss`` for ``name`` (no task check; see :func:`make_loss`)."""
    return loss_class()(name, **options)


@functools.cache
def loss_class():
    """The ``keras.losses.Loss`` subclass behind every registry loss (created, and registered as
    ``kerasdl>Loss`` for saving, on first use so that importing this module stays keras-free)."""
    import keras

    @keras.saving.register_keras_serializable(package="kerasdl", name="Loss")
    class KerasdlLoss(keras.losses.Loss):
        """``LOSSES[loss].fn`` per example, reduced by keras (default: mean over the batch)."""

        def __init__(self, loss: str, name=None, reduction="sum_over_batch_size", dtype=None, **options):
            if loss not in LOSSES:
                raise UnknownNameError("loss", str(loss), LOSSES)
            super().__init__(name=name or loss, reduction=reduction, dtype=dtype)
            self.loss, self.options = loss, dict(options)

        def call(self, y_true, y_pred):
            return LOSSES[self.loss].fn(y_true, y_pred, **self.options)

        def get_config(self):
            return {**super().get_config(), "loss": self.loss, **self.options}

    return KerasdlLoss


# ---- the registry -------------------------------------------------------------------------------
REGRESSION = ("regression",)
CLASSIFICATION = ("classification", "segmentation")  # segmentation: per-pixel classification


class LossSpec(NamedTuple):
    factory: Callable  # factory(**options) -> keras.losses.Loss
    tasks: tuple[str, ...]  # dataset tasks it fits
    description: str
    fn: Callable  # fn(y_true, y_pred, **options) -> per-example values
    single_logit: bool = False  # the model outputs one logit (two-class sets only)


def _spec(fn, tasks, description, **kw) -> tuple[str, LossSpec]:
    return fn.__name__, LossSpec(functools.partial(build, fn.__name__), tasks, description, fn, **kw)


LOSSES: dict[str, LossSpec] = dict([
    _spec(sparse_categorical_crossentropy, CLASSIFICATION, "cross-entropy with class ids (default)"),
    _spec(categorical_crossentropy, CLASSIFICATION, "cross-entropy, one-hot or soft targets"),
    _spec(binary_crossentropy, ("classification",), "sigmoid cross-entropy, one logit (two classes)",
          single_logit=True),
    _spec(kl_divergence, CLASSIFICATION, "KL(targets || softmax)"),
    _spec(log_loss, CLASSIFICATION, "log loss on clipped probabilities"),
    _spec(squared_log_loss, CLASSIFICATION, "squared log loss"),
    _spec(hinge, CLASSIFICATION, "one-vs-rest hinge on the logits"),
    _spec(squared_hinge, CLASSIFICATION, "one-vs-rest squared hinge"),
    _spec(cubed_hinge, CLASSIFICATION, "one-vs-rest cubed hinge"),
    _spec(expectation, CLASSIFICATION, "expected 0-1 error, 1 - p_true"),
    _spec(chebyshev, CLASSIFICATION, "max |softmax - targets|"),
    _spec(tanimoto, CLASSIFICATION, "1 - Tanimoto similarity of softmax and targets"),
    _spec(cauchy_schwarz, CLASSIFICATION, "Cauchy-Schwarz divergence"),
    _spec(mse, REGRESSION, "mean squared error (regression default)"),
    _spec(mae, REGRESSION, "mean absolute error"),
    _spec(msle, REGRESSION, "mean squared log error"),
    _spec(huber, REGRESSION, "Huber, delta 1"),
])


def default_loss(task: str) -> str:
    return "mse" if task in REGRESSION else "sparse_categorical_crossentropy"


def names_for(task: str) -> list[str]:
    """The losses that fit ``task``, in registry order."""
    return [name for name, spec in LOSSES.items() if task in spec.tasks]


SMOOTHABLE = ("sparse_categorical_crossentropy", "categorical_crossentropy")  # take `smoothing`


def make_loss(name: str, task: str, num_classes: int | None = None, *, dataset: str | None = None, **options):
    """The ``keras.losses.Loss`` for ``name``, checked against the dataset's task and classes.

    Raises :class:`UnknownNameError` (with suggestions) for a name not in :data:`LOSSES`, and
    :class:`KerasdlUsageError` for a loss that does not fit ``task`` or, for the one-logit
    ``binary_crossentropy``, a dataset without exactly two classes (``dataset`` names it in the
    message). ``options`` go to the loss (e.g. ``delta`` of ``huber``, ``reduction``).
    """
    if name not in LOSSES:
        raise UnknownNameError("loss", str(name), LOSSES)
    spec = LOSSES[name]
    if task not in spec.tasks:
        fits = names_for(task)
        hint = f"; use one of {', '.join(fits)}" if fits else ""
        raise KerasdlUsageError(f"loss {name!r} does not fit a {task} dataset{hint}")
    if spec.single_logit and num_classes != 2:
        raise KerasdlUsageError(
            f"{name} needs a two-class dataset (it trains one sigmoid logit); "
            f"{dataset or 'this dataset'} has {num_classes} classes"
        )
    return spec.factory(**options)
