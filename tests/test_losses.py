"""Every registry loss against a plain NumPy implementation of its textbook formula.

The references below are written from the formulas (float64, naive softmax / sigmoid, indexing
for class ids), not from ``kerasdl/tasks/losses.py``: they share no code with it. Inputs are random;
each loss is checked per example (``reduction=None``) on every target form it accepts:
class ids ``(B,)`` and ``(B, 1)``, soft targets ``(B, C)``, one logit with 0/1 labels, and
segmentation-shaped ``(B, H, W, C)`` logits with ``(B, H, W)`` masks. Then: logits of +-1e4 give
finite values and finite gradients (and the right value where it is known in closed form),
gradients match finite differences of the NumPy reference, and the registry refuses what it must.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from kerasdl.tasks import losses
from kerasdl.config import LOSSES as CONFIG_LOSSES
from kerasdl.config import RunConfig
from kerasdl.errors import KerasdlUsageError, UnknownNameError

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

EPS = 1e-7
RTOL, ATOL = 1e-5, 1e-6
REGRESSION = ["mse", "mae", "msle", "huber"]
CLASSIFICATION = [n for n in losses.LOSSES if n not in REGRESSION and n != "binary_crossentropy"]


# ---- NumPy references (float64, textbook formulas) ---------------------------------------------
def np_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def classification_view(labels, logits):
    """p and t over the classes, hinge signs s and scores: written per target form, by hand."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if logits.shape[-1] == 1:  # one logit: class-1 probability sigmoid(z)
        y = labels.reshape(logits.shape).astype(np.float64)
        q = np_sigmoid(logits)
        p, t = np.concatenate([1 - q, q], -1), np.concatenate([1 - y, y], -1)
        return SimpleNamespace(p=p, t=t, s=2 * y - 1, z=logits)
    c = logits.shape[-1]
    if labels.shape == logits.shape:
        t = labels.astype(np.float64)
    else:
        t = np.eye(c)[labels.reshape(logits.shape[:-1]).astype(int)]
    return SimpleNamespace(p=np_softmax(logits), t=t, s=2 * t - 1, z=logits)


def ref_sparse_ce(labels, logits):
    """-log p_y, picking p_y by indexing with the label."""
    p = classification_view(labels, logits).p
    ids = np.asarray(labels).reshape(p.shape[:-1]).astype(int)
    return -np.log(np.take_along_axis(p, ids[..., None], axis=-1)[..., 0])


def ref_kl(labels, logits):
    v = classification_view(labels, logits)
    safe_t = np.where(v.t > 0, v.t, 1.0)
    return np.sum(np.where(v.t > 0, v.t * np.log(safe_t / v.p), 0.0), axis=-1)


def ref_binary_ce(labels, logits):
    z = np.asarray(logits, np.float64)
    y = np.asarray(labels, np.float64).reshape(z.shape)
    q = np_sigmoid(z)
    return np.mean(-(y * np.log(q) + (1 - y) * np.log(1 - q)), axis=-1)


def _view_ref(formula):
    return lambda labels, logits: formula(classification_view(labels, logits))


def _hinge(power):
    return _view_ref(lambda v: np.sum(np.maximum(0.0, 1.0 - v.s * v.z) ** power, axis=-1))


def _clip(p):
    return np.clip(p, EPS, 1 - EPS)


def _regression(formula):
    def ref(y, yhat):
        yhat = np.asarray(yhat, np.float64)
        y = np.asarray(y, np.float64).reshape(yhat.shape)
        return np.mean(formula(y, yhat), axis=-1)
    return ref


def _huber(e, delta=1.0):
    return np.where(np.abs(e) <= delta, 0.5 * e ** 2, delta * np.abs(e) - 0.5 * delta ** 2)


REFERENCE = {
    "sparse_categorical_crossentropy": ref_sparse_ce,
    "categorical_crossentropy": _view_ref(lambda v: -np.sum(v.t * np.log(v.p), axis=-1)),
    "binary_crossentropy": ref_binary_ce,
    "kl_divergence": ref_kl,
    "log_loss": _view_ref(lambda v: -np.sum(v.t * np.log(_clip(v.p)), axis=-1)),
    "squared_log_loss": _view_ref(lambda v: np.sum((v.t * np.log(_clip(v.p))) ** 2, axis=-1)),
    "hinge": _hinge(1),
    "squared_hinge": _hinge(2),
    "cubed_hinge": _hinge(3),
    "expectation": _view_ref(lambda v: 1.0 - np.sum(v.p * v.t, axis=-1)),
    "chebyshev": _view_ref(lambda v: np.max(np.abs(v.p - v.t), axis=-1)),
    "tanimoto": _view_ref(lambda v: 1.0 - np.sum(v.p * v.t, -1) / (
        np.sum(v.p ** 2, -1) + np.sum(v.t ** 2, -1) - np.sum(v.p * v.t, -1))),
    "cauchy_schwarz": _view_ref(lambda v: -np.log(np.sum(v.p * v.t, -1) / np.sqrt(
        np.sum(v.p ** 2, -1) * np.sum(v.t ** 2, -1)))),
    "mse": _regression(lambda y, yh: (y - yh) ** 2),
    "mae": _regression(lambda y, yh: np.abs(y - yh)),
    "msle": _regression(lambda y, yh: (np.log(1 + np.maximum(y, 0)) - np.log(1 + np.maximum(yh, 0))) ** 2),
    "huber": _regression(lambda y, yh: _huber(y - yh)),
}


def test_every_registry_loss_has_a_reference_and_config_lists_them():
    assert set(REFERENCE) == set(losses.LOSSES)
    assert CONFIG_LOSSES == tuple(losses.LOSSES)
    for name, spec in losses.LOSSES.items():
        assert spec.description and spec.tasks
        assert spec.fn.__doc__ and "``" in spec.fn.__doc__, f"{name}: docstring without its formula"


# ---- inputs --------------------------------------------------------------------------------------
def _inputs(form, seed=0):
    """(labels, logits) for one target form, float32 logits as a model would produce."""
    rng = np.random.default_rng(seed)
    if form == "ids":
        return rng.integers(0, 5, size=6), rng.normal(scale=1.5, size=(6, 5)).astype("float32")
    if form == "ids_column":
        return rng.integers(0, 5, size=(6, 1)), rng.normal(scale=1.5, size=(6, 5)).astype("float32")
    if form == "soft":
        soft = rng.dirichlet(np.ones(5), size=6).astype("float32")
        return soft, rng.normal(scale=1.5, size=(6, 5)).astype("float32")
    if form == "one_logit":
        return rng.integers(0, 2, size=6), rng.normal(scale=1.5, size=(6, 1)).astype("float32")
    if form == "segmentation":
        return rng.integers(0, 4, size=(2, 3, 3)), rng.normal(scale=1.5, size=(2, 3, 3, 4)).astype("float32")
    raise AssertionError(form)


def per_example(name, labels, logits, **options):
    loss = losses.LOSSES[name].factory(reduction=None, **options)
    return keras.ops.convert_to_numpy(loss(labels, logits))


FORMS = ["ids", "ids_column", "soft", "one_logit", "segmentation"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", CLASSIFICATION)
def test_classification_loss_matches_numpy(name, form):
    if name == "sparse_categorical_crossentropy" and form == "soft":
        pytest.skip("class ids only (tested to raise below)")
    labels, logits = _inputs(form)
    got = per_example(name, labels, logits)
    want = REFERENCE[name](labels, logits)
    assert got.shape == want.shape == logits.shape[:-1]
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_binary_crossentropy_matches_numpy_single_logit_and_multilabel():
    labels, logits = _inputs("one_logit", seed=1)
    for y in (labels, labels[:, None]):
        np.testing.assert_allclose(per_example("binary_crossentropy", y, logits),
                                   ref_binary_ce(labels, logits), rtol=RTOL, atol=ATOL)
    rng = np.random.default_rng(2)
    targets, logits = rng.integers(0, 2, size=(6, 3)), rng.normal(scale=2, size=(6, 3)).astype("float32")
    np.testing.assert_allclose(per_example("binary_crossentropy", targets, logits),
                               ref_binary_ce(targets, logits), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", REGRESSION)
def test_regression_loss_matches_numpy(name):
    rng = np.random.default_rng(3)
    y1, p1 = rng.normal(size=6) * 2, rng.normal(size=(6, 1)).astype("float32") * 2  # (B,) targets
    y3, p3 = rng.normal(size=(6, 3)) * 2, rng.normal(size=(6, 3)).astype("float32") * 2
    for y, p in ((y1, p1), (y3, p3)):
        np.testing.assert_allclose(per_example(name, y, p), REFERENCE[name](y, p), rtol=RTOL, atol=ATOL)


def test_huber_delta_option():
    y, p = np.array([0.0, 0.0, 0.0]), np.array([[0.5], [1.5], [-4.0]], "float32")
    # delta 2: 0.5*0.25, 0.5*2.25, 2*(4 - 1)
    np.testing.assert_allclose(per_example("huber", y, p, delta=2.0), [0.125, 1.125, 6.0], rtol=RTOL)


def test_default_reduction_is_the_batch_mean():
    labels, logits = _inputs("ids")
    for name in ("categorical_crossentropy", "tanimoto", "cubed_hinge"):
        total = float(losses.make_loss(name, "classification", 5)(labels, logits))
        assert total == pytest.approx(float(np.mean(REFERENCE[name](labels, logits))), rel=RTOL)


def test_sparse_ce_refuses_dense_targets_and_shapes_are_checked():
    labels, logits = _inputs("soft")
    with pytest.raises(ValueError, match="class ids"):
        per_example("sparse_categorical_crossentropy", labels, logits)
    with pytest.raises(ValueError, match="class ids"):  # (B, 3) labels for 5 logits: neither form
        per_example("categorical_crossentropy", labels[:, :3], logits)
    with pytest.raises(ValueError, match="Received: y_true.shape"):
        per_example("mse", np.zeros((6, 3)), np.zeros((6, 1), "float32"))


def test_log_loss_differs_from_cross_entropy_only_by_clipping():
    # Probabilities inside [eps, 1 - eps]: the same value as cross-entropy.
    labels, logits = _inputs("ids", seed=4)
    np.testing.assert_allclose(per_example("log_loss", labels, logits),
                               per_example("categorical_crossentropy", labels, logits), rtol=RTOL)
    # p_true = e^-40 / (1 + e^-40 + e^-20) underflows eps: log loss is capped at -log(eps).
    logits = np.array([[0.0, -40.0, -20.0]], "float32")
    assert per_example("log_loss", np.array([1]), logits)[0] == pytest.approx(-np.log(EPS), rel=1e-5)
    assert per_example("categorical_crossentropy", np.array([1]), logits)[0] == pytest.approx(40.0, rel=1e-5)
    assert per_example("squared_log_loss", np.array([1]), logits)[0] == pytest.approx(np.log(EPS) ** 2,
                                                                                      rel=1e-5)


def test_definitions_relate_as_documented():
    labels, logits = _inputs("ids", seed=5)
    ce = per_example("categorical_crossentropy", labels, logits)
    # KL(t || p) == cross-entropy for one-hot targets; squared log loss == log loss squared.
    np.testing.assert_allclose(per_example("kl_divergence", labels, logits), ce, rtol=RTOL)
    np.testing.assert_allclose(per_example("squared_log_loss", labels, logits), ce ** 2, rtol=1e-4)
    # Expectation loss is half of Janocha & Czarnecki's sum_j |t_j - p_j| for one-hot targets.
    v = classification_view(labels, logits)
    np.testing.assert_allclose(per_example("expectation", labels, logits),
                               0.5 * np.abs(v.t - v.p).sum(-1), rtol=RTOL, atol=ATOL)


# ---- extreme logits ------------------------------------------------------------------------------
EXTREME = [(n, "ids") for n in CLASSIFICATION] + [(n, "one_logit") for n in CLASSIFICATION] + [
    ("binary_crossentropy", "one_logit"), ("sparse_categorical_crossentropy", "segmentation"),
] + [(n, "regression") for n in REGRESSION]


@pytest.mark.parametrize("name,form", EXTREME)
def test_extreme_logits_give_finite_values_and_gradients(name, form):
    rng = np.random.default_rng(6)
    if form == "regression":
        labels, logits = rng.normal(size=8) * 1e4, rng.normal(size=(8, 1)) * 1e4
    else:
        labels, logits = _inputs(form, seed=6)
        labels = np.concatenate([labels, labels])  # each label with the logits and their negation
        logits = np.concatenate([np.sign(logits), -np.sign(logits)]) * 1e4
    z = tf.Variable(logits.astype("float32"))
    loss = losses.LOSSES[name].factory(reduction=None)
    with tf.GradientTape() as tape:
        values = loss(labels, z)
    grad = tape.gradient(values, z)
    assert np.all(np.isfinite(values.numpy())), values.numpy()
    assert grad is not None and np.all(np.isfinite(grad.numpy())), grad


@pytest.mark.parametrize("name,labels,logits,want", [
    ("sparse_categorical_crossentropy", [1], [[1e4, -1e4]], 2e4),
    ("categorical_crossentropy", [0], [[1e4, -1e4]], 0.0),
    ("kl_divergence", [1], [[1e4, -1e4, 0.0]], 2e4),
    ("binary_crossentropy", [1], [[-1e4]], 1e4),
    ("binary_crossentropy", [0], [[-1e4]], 0.0),
    ("cauchy_schwarz", [1], [[1e4, -1e4]], 2e4),  # -log p_y + 0.5 log sum p^2 = 2e4 + 0
    ("hinge", [1], [[1e4, -1e4]], 2 * (1e4 + 1)),
    ("expectation", [1], [[1e4, -1e4]], 1.0),
    ("tanimoto", [0], [[1e4, -1e4]], 0.0),
])
def test_extreme_logits_give_the_closed_form_value(name, labels, logits, want):
    got = per_example(name, np.array(labels), np.array(logits, "float32"))[0]
    assert got == pytest.approx(want, rel=1e-6, abs=1e-6)


# ---- gradients -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CLASSIFICATION + ["binary_crossentropy"])
def test_gradient_matches_finite_differences_of_the_reference(name):
    form = "one_logit" if name == "binary_crossentropy" else "soft"
    if name == "sparse_categorical_crossentropy":
        form = "ids"
    labels, logits = _inputs(form, seed=7)
    logits = logits[:3].astype("float64")
    labels = labels[:3]
    z = tf.Variable(logits)
    loss = losses.LOSSES[name].factory(reduction="sum", dtype="float64")
    with tf.GradientTape() as tape:
        total = loss(labels, z)
    grad = tape.gradient(total, z).numpy()
    h, numeric = 1e-6, np.zeros_like(logits)
    for idx in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (REFERENCE[name](labels, up).sum() - REFERENCE[name](labels, down).sum()) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


# ---- the registry and its wiring -----------------------------------------------------------------
def test_unknown_loss_names_the_closest():
    with pytest.raises(UnknownNameError, match="did you mean 'tanimoto'"):
        losses.make_loss("tanimotto", "classification", 10)
    with pytest.raises(UnknownNameError, match="did you mean 'hinge'"):
        RunConfig(loss="hinj").validate()


@pytest.mark.parametrize("name,task,classes,message", [
    ("mse", "classification", 10, "does not fit a classification dataset; use one of sparse_categorical"),
    ("huber", "segmentation", 3, "does not fit a segmentation dataset"),
    ("hinge", "regression", None, "does not fit a regression dataset; use one of mse, mae, msle, huber"),
    ("cauchy_schwarz", "regression", None, "does not fit a regression dataset"),
    ("binary_crossentropy", "classification", 3, "needs a two-class dataset"),
    ("binary_crossentropy", "segmentation", 2, "does not fit a segmentation dataset"),
])
def test_a_loss_that_does_not_fit_the_task_is_a_usage_error(name, task, classes, message):
    with pytest.raises(KerasdlUsageError, match=message) as err:
        losses.make_loss(name, task, classes)
    assert not isinstance(err.value, UnknownNameError)


def test_training_make_loss_uses_the_registry_and_its_defaults():
    from kerasdl import runs
    from kerasdl.tasks import supervised as training

    def info(task, n):
        return SimpleNamespace(task=task, num_classes=n, input_shape=(4,))  # tabular: no augmentation

    cases = [(None, "classification", 10, "sparse_categorical_crossentropy"),
             (None, "segmentation", 3, "sparse_categorical_crossentropy"),
             (None, "regression", None, "mse"),
             ("tanimoto", "classification", 10, "tanimoto"),
             ("binary_crossentropy", "classification", 2, "binary_crossentropy")]
    for loss, task, n, want in cases:
        config = RunConfig(loss=loss, dataset="d")
        made = training.make_loss(config, info(task, n))
        assert isinstance(made, keras.losses.Loss) and made.loss == want
        # One sigmoid logit for binary cross-entropy only; every other loss keeps C logits.
        assert runs.output_units(config, info(task, n)) == (1 if want == "binary_crossentropy" else n)
    with pytest.raises(KerasdlUsageError, match="two-class dataset.*iris has 3 classes"):
        training.make_loss(RunConfig(loss="binary_crossentropy", dataset="iris"), info("classification", 3))


def test_loss_serialises_and_compiles():
    loss = losses.make_loss("huber", "regression", delta=2.0)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert (restored.loss, restored.options, restored.name) == ("huber", {"delta": 2.0}, "huber")
    y, p = np.array([0.0, 3.0]), np.array([[4.0], [0.0]], "float32")
    # Huber with delta 2 on errors 4 and 3: (2 * (4 - 1) + 2 * (3 - 1)) / 2.
    assert float(restored(y, p)) == pytest.approx(float(loss(y, p))) == pytest.approx(5.0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    model.compile(optimizer="sgd", loss=losses.make_loss("cauchy_schwarz", "classification", 3))
    before = model.get_weights()[0].copy()
    model.train_on_batch(np.ones((4, 2), "float32"), np.array([0, 1, 2, 1]))
    assert not np.allclose(model.get_weights()[0], before)


def test_importing_losses_and_config_does_not_import_keras():
    code = "import sys, kerasdl.config, kerasdl.tasks.losses; print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
