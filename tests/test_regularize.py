"""kerasdl.engine.regularize against the definitions: initialisers, penalties, max-norm, dropout schedules, AGC, EMA.

Expected values come from NumPy written from the papers' formulas (or from a hand-simulated SGD run
for EMA), never from the module's own helpers. Behavioural tests run real ``model.fit`` on tiny
models, so they cover the compiled (``tf.function``) train step: a dropout rate change must reach
the traced step, AGC must run inside it, and the EMA weights must be what validation and the
checkpoint see.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers, ops

from kerasdl import config as kconfig
from kerasdl.engine import regularize
from kerasdl.errors import KerasdlUsageError, UnknownNameError


def mlp(depth=3, width=8, inputs=4, outputs=3, activation="relu", seed=0):
    keras.utils.set_random_seed(seed)
    x = inp = keras.Input((inputs,))
    for _ in range(depth):
        x = layers.Dense(width, activation=activation)(x)
    return keras.Model(inp, layers.Dense(outputs)(x))


def kernel_arrays(model):
    return [v.numpy() for v in model.trainable_variables if v.name == "kernel"]


# --------------------------------------------------------------------------------------------
# Initialisers


def test_names_match_config():
    assert regularize.INITIALIZERS == kconfig.INITIALIZERS
    assert regularize.DROPOUT_SCHEDULES == kconfig.DROPOUT_SCHEDULES


def test_zeros_init_makes_every_input_look_the_same():
    model = mlp(depth=4)
    for v in model.trainable_variables:  # non-zero biases must be reset too
        v.assign(np.full(v.shape, 0.3, np.float32))
    assert regularize.apply_initializer(model, "zeros") == 5
    assert all(not k.any() for k in kernel_arrays(model))
    assert all(not v.numpy().any() for v in model.trainable_variables if v.name == "bias")
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32") * 10
    logits = model.predict(x, verbose=0)
    np.testing.assert_array_equal(logits, np.broadcast_to(logits[:1], logits.shape))


def test_he_init_has_the_rectifier_variance():
    model = keras.Sequential([keras.Input((256,)), layers.Dense(256)])
    regularize.apply_initializer(model, "he", seed=3)
    (w,) = kernel_arrays(model)
    assert abs(w.std() / np.sqrt(2.0 / 256) - 1) < 0.1
    assert abs(w.mean()) < 0.01


def test_orthogonal_init_gives_orthonormal_columns():
    model = keras.Sequential(
        [keras.Input((4, 4, 16)), layers.Conv2D(32, 3), layers.Flatten(), layers.Dense(64)]
    )
    assert regularize.apply_initializer(model, "orthogonal", seed=1) == 2
    for v in model.trainable_variables:
        if v.name == "kernel":
            w = v.numpy().reshape(-1, v.shape[-1])  # one column per output unit
            np.testing.assert_allclose(w.T @ w, np.eye(w.shape[1]), atol=1e-5)


def test_initializer_touches_only_kernels_with_distinct_seeds():
    keras.utils.set_random_seed(0)
    tokens = keras.Input((5,), dtype="int32")
    x = layers.Flatten()(layers.Embedding(10, 4)(tokens))
    x = layers.BatchNormalization()(layers.Dense(20)(x))
    x = layers.LayerNormalization()(layers.Dense(20)(x))
    images = keras.Input((6, 6, 3))
    y = layers.SeparableConv2D(4, 3)(layers.DepthwiseConv2D(3)(images))
    inner = keras.Sequential([keras.Input((20,)), layers.Dense(20)], name="inner")  # nested model
    out = layers.Concatenate()([inner(x), layers.Flatten()(y)])
    model = keras.Model([tokens, images], out)
    before = {v.path: v.numpy().copy() for v in model.weights}

    # Dense x3 (one nested), depthwise, separable's depthwise + pointwise.
    assert regularize.apply_initializer(model, "glorot", seed=5) == 6
    after = {v.path: v.numpy() for v in model.weights}
    for path, value in before.items():
        last = path.split("/")[-1]
        if last in ("kernel", "depthwise_kernel", "pointwise_kernel"):
            assert not np.array_equal(value, after[path]), path
        elif last == "bias":
            assert not after[path].any(), path
        else:  # embeddings, gamma, beta, moving statistics
            np.testing.assert_array_equal(value, after[path], err_msg=path)
    twins = [v.numpy() for v in model.weights if v.name == "kernel" and tuple(v.shape) == (20, 20)]
    assert len(twins) == 3
    assert not any(np.array_equal(twins[i], twins[j]) for i in range(3) for j in range(i))

    regularize.apply_initializer(model, "glorot", seed=5)  # same seed, same values
    for v in model.weights:
        np.testing.assert_array_equal(v.numpy(), after[v.path])


def test_unknown_initializer_suggests_the_close_name():
    model = mlp()
    before = kernel_arrays(model)
    with pytest.raises(UnknownNameError, match="orthogonal"):
        regularize.apply_initializer(model, "orthogonl")
    for a, b in zip(before, kernel_arrays(model)):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------------------
# Penalties and max-norm


def test_l2_and_l1_penalties_cover_kernels_only():
    model = mlp(depth=2)
    for v in model.trainable_variables:
        if v.name == "bias":
            v.assign(np.full(v.shape, 5.0, np.float32))  # would dominate if biases were penalised
    kernels = kernel_arrays(model)

    assert regularize.add_weight_penalty(model, l2=0.01) == 3
    assert len(model.losses) == 3
    squares = sum(np.sum(k.astype(np.float64) ** 2) for k in kernels)
    np.testing.assert_allclose(float(ops.sum(model.losses)), 0.01 * squares, rtol=1e-5)
    regularize.add_weight_penalty(model, l1=0.02)
    absolutes = sum(np.sum(np.abs(k.astype(np.float64))) for k in kernels)
    np.testing.assert_allclose(float(ops.sum(model.losses)), 0.02 * absolutes, rtol=1e-5)
    assert regularize.add_weight_penalty(model) == 0
    assert model.losses == []
    with pytest.raises(KerasdlUsageError):
        regularize.add_weight_penalty(model, l2=-1.0)


def test_penalty_is_part_of_the_fit_loss():
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = np.random.default_rng(1).normal(size=(8, 3)).astype("float32")
    plain, penalised = mlp(depth=1), mlp(depth=1)
    penalised.set_weights(plain.get_weights())
    regularize.add_weight_penalty(penalised, l2=0.05)
    penalty = 0.05 * sum(np.sum(k.astype(np.float64) ** 2) for k in kernel_arrays(penalised))
    losses = []
    for model in (plain, penalised):  # lr 0: both report the loss of the same weights
        model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
        losses.append(model.fit(x, y, batch_size=8, epochs=1, verbose=0).history["loss"][0])
    assert losses[1] > losses[0]
    np.testing.assert_allclose(losses[1] - losses[0], penalty, rtol=1e-4)


def test_max_norm_projects_every_unit_after_a_step():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((5, 5, 2)), layers.Conv2D(4, 3), layers.Flatten(), layers.Dense(6), layers.Dense(2)
    ])
    c = 0.7
    assert regularize.add_max_norm(model, c) == 3
    for v in model.trainable_variables:
        if v.name == "kernel":
            v.assign(v.numpy() * 100.0)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    x = np.random.default_rng(0).normal(size=(4, 5, 5, 2)).astype("float32")
    model.fit(x, np.zeros((4, 2), "float32"), batch_size=4, epochs=1, verbose=0)
    for w in kernel_arrays(model):
        norms = np.sqrt(np.sum(w.astype(np.float64) ** 2, axis=tuple(range(w.ndim - 1))))
        assert norms.max() <= c + 1e-5
        np.testing.assert_allclose(norms, c, rtol=1e-5)  # all were far above c: all land on it
    with pytest.raises(KerasdlUsageError):
        regularize.add_max_norm(model, 0.0)


# --------------------------------------------------------------------------------------------
# Dropout schedules


@pytest.mark.parametrize("mode, expected", [
    ("constant", [0.5, 0.5, 0.5, 0.5]), ("early", [0.5, 0.5, 0.0, 0.0]), ("late", [0.0, 0.0, 0.5, 0.5]),
])
def test_scheduled_rate(mode, expected):
    assert [regularize.scheduled_rate(mode, 0.5, 2, e) for e in range(4)] == expected
    assert [regularize.DropoutSchedule(mode, 2).rate_at(0.5, e) for e in range(4)] == expected


def test_unknown_dropout_schedule():
    with pytest.raises(UnknownNameError, match="late"):
        regularize.DropoutSchedule("lat", 1)


def test_finds_every_kind_of_dropout():
    inner = keras.Sequential([keras.Input((4, 4, 2)), layers.SpatialDropout2D(0.1)], name="inner")
    x = inp = keras.Input((4, 4, 2))
    x = layers.GaussianDropout(0.2)(layers.AlphaDropout(0.3)(layers.Dropout(0.4)(inner(x))))
    model = keras.Model(inp, layers.Dense(1)(x))
    assert sorted(layer.rate for layer in regularize.dropout_layers(model)) == [0.1, 0.2, 0.3, 0.4]


class ZeroSpy(layers.Layer):
    """Identity that counts, in training mode, the zeros it sees (its inputs are otherwise > 0)."""

    def build(self, input_shape):
        self.zeros = self.add_weight(shape=(), initializer="zeros", trainable=False, name="zeros")
        self.total = self.add_weight(shape=(), initializer="zeros", trainable=False, name="total")

    def call(self, x, training=False):
        if training:
            self.zeros.assign_add(ops.sum(ops.cast(ops.equal(x, 0.0), "float32")))
            self.total.assign_add(ops.cast(ops.size(x), "float32"))
        return x


class SpyProbe(keras.callbacks.Callback):
    """Per epoch: the fraction of zeros the spy saw and the dropout layer's rate."""

    def __init__(self, spy, dropout):
        super().__init__()
        self.spy, self.dropout, self.fractions, self.rates = spy, dropout, [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.spy.zeros.assign(0.0)
        self.spy.total.assign(0.0)
        self.rates.append(self.dropout.rate)

    def on_epoch_end(self, epoch, logs=None):
        self.fractions.append(float(self.spy.zeros.numpy() / self.spy.total.numpy()))


def dropout_model():
    """Dense (all-positive output) -> [nested: Dropout(0.5) -> ZeroSpy] -> Dense."""
    keras.utils.set_random_seed(0)
    dropout, spy = layers.Dropout(0.5), ZeroSpy()
    inner = keras.Sequential([keras.Input((16,)), dropout, spy], name="inner")
    inp = keras.Input((16,))
    x = layers.Dense(16, kernel_initializer="ones", trainable=False)(inp)
    model = keras.Model(inp, layers.Dense(1)(inner(x)))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model, dropout, spy


def fit_with_probe(model, dropout, spy, callbacks, epochs=3):
    x = np.random.default_rng(0).uniform(0.1, 1.0, size=(64, 16)).astype("float32")
    probe = SpyProbe(spy, dropout)
    model.fit(x, np.zeros((64, 1), "float32"), batch_size=16, epochs=epochs, verbose=0,
              callbacks=list(callbacks) + [probe])
    return probe


def assert_dropping(fraction):
    assert 0.35 < fraction < 0.65, fraction


def test_early_dropout_really_stops_in_the_compiled_step():
    model, dropout, spy = dropout_model()
    probe = fit_with_probe(model, dropout, spy, [regularize.DropoutSchedule("early", 1)])
    assert probe.rates == [0.5, 0.0, 0.0]
    assert_dropping(probe.fractions[0])
    assert probe.fractions[1:] == [0.0, 0.0]
    assert dropout.rate == 0.5  # restored for saving ...
    later = fit_with_probe(model, dropout, spy, [], epochs=1)
    assert_dropping(later.fractions[0])  # ... and for the next fit (the train step was rebuilt)


def test_late_dropout_really_starts_in_the_compiled_step():
    model, dropout, spy = dropout_model()
    probe = fit_with_probe(model, dropout, spy, [regularize.DropoutSchedule("late", 2)])
    assert probe.rates == [0.0, 0.0, 0.5]
    assert probe.fractions[:2] == [0.0, 0.0]
    assert_dropping(probe.fractions[2])
    assert dropout.rate == 0.5


def test_without_the_rebuild_the_traced_step_keeps_the_old_rate():
    """Why DropoutSchedule rebuilds the train function: keras bakes ``rate`` into the traced step.

    If keras ever reads the rate at run time, this control fails and the rebuild is merely redundant.
    """
    model, dropout, spy = dropout_model()
    build = model.make_train_function
    model.make_train_function = lambda force=False: build(force=False)  # ignore force=True
    probe = fit_with_probe(model, dropout, spy, [regularize.DropoutSchedule("early", 1)], epochs=2)
    assert probe.rates == [0.5, 0.0]
    assert_dropping(probe.fractions[1])  # rate 0 set, yet still dropping


# --------------------------------------------------------------------------------------------
# Adaptive gradient clipping


def test_unitwise_norm():
    rng = np.random.default_rng(0)
    conv, dense, bias = rng.normal(size=(3, 3, 2, 5)), rng.normal(size=(4, 6)), rng.normal(size=(6,))
    np.testing.assert_allclose(
        regularize.unitwise_norm(conv), np.sqrt((conv ** 2).sum(axis=(0, 1, 2), keepdims=True)), rtol=1e-6
    )
    np.testing.assert_allclose(
        regularize.unitwise_norm(dense), np.linalg.norm(dense, axis=0)[None], rtol=1e-6
    )
    np.testing.assert_allclose(regularize.unitwise_norm(bias), np.full(6, np.linalg.norm(bias)), rtol=1e-6)
    np.testing.assert_allclose(regularize.unitwise_norm(np.float32(-3.0)), 3.0)


def test_adaptive_clip_scales_exactly_the_units_over_the_ratio():
    lam, eps = 0.1, 1e-3
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 6)).astype("float32")
    w[:, 5] = 0.0  # a dead unit: the bound is lam * eps
    w_norm = np.maximum(np.linalg.norm(w, axis=0), eps)
    direction = rng.normal(size=(3, 6)).astype("float32")
    direction /= np.linalg.norm(direction, axis=0)
    ratio = np.array([0.01, 0.05, 0.09, 0.5, 3.0, 0.2], "float32")  # ||G|| / max(||W||, eps)
    g = (direction * ratio * w_norm).astype("float32")
    bias, g_bias = np.full(4, 2.0, "float32"), np.full(4, 0.1, "float32")  # ratio 0.05: kept

    out_w, out_none, out_bias = (
        np.asarray(ops.convert_to_numpy(t)) if t is not None else None
        for t in regularize.adaptive_clip([g, None, g_bias], [w, w, bias], lam, eps)
    )
    assert out_none is None
    over = ratio > lam
    np.testing.assert_array_equal(out_w[:, ~over], g[:, ~over])  # bit for bit
    np.testing.assert_array_equal(out_bias, g_bias)
    new_ratio = np.linalg.norm(out_w, axis=0) / w_norm
    np.testing.assert_allclose(new_ratio[over], lam, rtol=1e-5)
    unit = out_w[:, over] / np.linalg.norm(out_w[:, over], axis=0)
    np.testing.assert_allclose(unit, direction[:, over], rtol=1e-5)  # same direction


def agc_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((4, 4, 2)), layers.Conv2D(3, 2), layers.Flatten(), layers.Dense(5), layers.Dense(2)
    ])


def agc_data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 4, 4, 2)).astype("float32") * 100, np.full((8, 2), 1e4, "float32")


def assert_steps_bounded(before, model, lam, eps=1e-3):
    """Every unit moved by at most lam * max(||W_unit||, eps); the huge-gradient kernels exactly that."""
    for w0, v in zip(before, model.trainable_variables):
        w1 = v.numpy()
        axes = tuple(range(w0.ndim - 1)) if w0.ndim >= 2 else None
        step = np.sqrt(((w1 - w0).astype(np.float64) ** 2).sum(axis=axes))
        bound = lam * np.maximum(np.sqrt((w0.astype(np.float64) ** 2).sum(axis=axes)), eps)
        assert np.all(step <= bound * (1 + 1e-4) + 1e-7), v.path
        if v.name == "kernel":
            np.testing.assert_allclose(step, bound, rtol=1e-3, err_msg=v.path)


def test_agc_runs_inside_fit():
    lam = 0.01
    x, y = agc_data()
    model = agc_model()
    optimizer = keras.optimizers.SGD(1.0)
    assert regularize.with_gradient_transform(optimizer, agc=lam) is optimizer
    assert isinstance(optimizer, keras.optimizers.SGD)
    model.compile(optimizer=optimizer, loss="mse")
    before = [v.numpy() for v in model.trainable_variables]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert_steps_bounded(before, model, lam)
    assert {v.path.split("/")[-1] for v in optimizer.variables} <= {"iteration", "learning_rate"}

    plain = agc_model()  # control: the same step without AGC moves far more
    plain.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    plain.fit(x, y, batch_size=8, epochs=1, verbose=0)
    moved = np.linalg.norm(plain.trainable_variables[0].numpy() - before[0])
    assert moved > 100 * lam * np.linalg.norm(before[0])


def test_agc_clips_the_accumulated_gradient():
    lam = 0.01
    x, y = agc_data()
    model = agc_model()
    sgd = keras.optimizers.SGD(1.0, gradient_accumulation_steps=2)
    optimizer = regularize.with_gradient_transform(sgd, lam)
    model.compile(optimizer=optimizer, loss="mse")
    before = [v.numpy() for v in model.trainable_variables]
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # two micro-batches, one update
    assert_steps_bounded(before, model, lam)


def test_agc_optimizer_saves_and_loads(tmp_path):
    x, y = agc_data()
    model = agc_model()
    model.compile(optimizer=regularize.with_gradient_transform(keras.optimizers.Adam(1e-3), 0.05), loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    plain = keras.saving.load_model(path, compile=False)
    np.testing.assert_allclose(plain.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    again = keras.saving.load_model(path)
    assert type(again.optimizer).__name__ == "AdaptiveClippedAdam" and again.optimizer.agc_clip_factor == 0.05

    wrapped = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD())
    regularize.with_gradient_transform(wrapped, 0.1)
    assert wrapped.inner_optimizer.agc_clip_factor == 0.1
    with pytest.raises(KerasdlUsageError):
        regularize.with_gradient_transform(keras.optimizers.SGD(), 0.0)


# --------------------------------------------------------------------------------------------
# EMA of the weights


def sgd_linear_reference(x, y, w, b, lr, momentum, epochs, batch):
    """Hand-run SGD on MSE for a linear model, and keras' EMA rule; raw and EMA weights per epoch."""
    w, b = w.astype(np.float64), b.astype(np.float64)
    avg, step, raw_end, ema_end = None, 0, [], []
    for _ in range(epochs):
        for i in range(0, len(x), batch):
            xb, yb = x[i:i + batch].astype(np.float64), y[i:i + batch].astype(np.float64)
            err = xb @ w + b - yb
            w, b = w - lr * 2 * xb.T @ err / len(xb), b - lr * 2 * err.mean(axis=0)
            avg = [w, b] if step == 0 else [momentum * a + (1 - momentum) * v for a, v in zip(avg, (w, b))]
            step += 1
        raw_end.append([w, b])
        ema_end.append(avg)
    return raw_end, ema_end


class WeightProbe(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights, self.logs = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([w.copy() for w in self.model.get_weights()])
        self.logs.append(dict(logs or {}))


@pytest.mark.parametrize("validate", [True, False])
def test_ema_weights_are_validated_and_checkpointed(tmp_path, validate):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype("float32")
    xv, yv = x[:5] + 0.5, y[:5]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), layers.Dense(1)])
    w0, b0 = model.get_weights()
    lr, m, epochs = 0.05, 0.5, 2
    raw_ref, ema_ref = sgd_linear_reference(x, y, w0, b0, lr, m, epochs, batch=4)

    optimizer = keras.optimizers.SGD(lr, use_ema=True, ema_momentum=m)
    model.compile(optimizer=optimizer, loss="mse")
    swap_in, swap_out = regularize.ema_callbacks(optimizer)
    seen, after = WeightProbe(), WeightProbe()
    ckpt = str(tmp_path / "ckpt.weights.h5")
    checkpoint = keras.callbacks.ModelCheckpoint(ckpt, save_weights_only=True)
    model.fit(x, y, batch_size=4, epochs=epochs, shuffle=False, verbose=0,
              validation_data=(xv, yv) if validate else None,
              callbacks=[swap_in, seen, checkpoint, swap_out, after])

    for e in range(epochs):
        for got, want in zip(seen.weights[e], ema_ref[e]):  # what the checkpoint callbacks see
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        for got, want in zip(after.weights[e], raw_ref[e]):  # training goes on from the raw weights
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        if validate:
            w, b = ema_ref[e]
            np.testing.assert_allclose(seen.logs[e]["val_loss"], np.mean((xv @ w + b - yv) ** 2), rtol=1e-5)
    assert not np.allclose(ema_ref[-1][0], raw_ref[-1][0], rtol=1e-3)  # the test can tell them apart

    averages = [ops.convert_to_numpy(a) for a in optimizer._model_variables_moving_average]
    for got, want in zip(model.get_weights(), averages):  # the final model is the EMA too
        np.testing.assert_allclose(got, want, rtol=1e-6)
    restored = keras.Sequential([keras.Input((3,)), layers.Dense(1)])
    restored.load_weights(ckpt)
    for got, want in zip(restored.get_weights(), ema_ref[-1]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_ema_callbacks_need_use_ema():
    with pytest.raises(KerasdlUsageError, match="use_ema"):
        regularize.ema_callbacks(keras.optimizers.SGD())
