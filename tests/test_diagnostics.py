"""Gradient norms, activation statistics, the Diagnostics callback and its plots (small models, CPU)."""

from __future__ import annotations

import csv
import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasdl.engine.diagnostics import (CSV_FIELDS, Diagnostics, activation_stats, gradient_norms,
                                 plot_depth_profile, plot_gradient_norms, read_records)

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def batch(n=64, d=16, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype("float32"), rng.integers(0, classes, n)


def deep_mlp(activation: str, initializer: str, depth: int = 20, width: int = 32) -> keras.Model:
    """``depth`` Dense layers: ``depth - 1`` hidden ones of ``width`` units, then 10 logits."""
    keras.utils.set_random_seed(0)
    hidden = [keras.layers.Dense(width, activation=activation, kernel_initializer=initializer)
              for _ in range(depth - 1)]
    logits = keras.layers.Dense(10, kernel_initializer=initializer)
    return keras.Sequential([keras.Input((16,)), *hidden, logits])


def dead_relu_model() -> keras.Model:
    keras.utils.set_random_seed(1)
    inputs = keras.Input((16,))
    h = keras.layers.Dense(12, activation="relu", name="alive")(inputs)
    h = keras.layers.Dense(8, activation="relu", name="dead")(h)
    outputs = keras.layers.Dense(3, name="logits")(h)
    model = keras.Model(inputs, outputs)
    model.get_layer("dead").bias.assign(np.full(8, -100.0, "float32"))
    return model


def test_gradient_norms_match_a_manual_tape_and_leave_out_regularisation():
    keras.utils.set_random_seed(0)
    l2 = keras.regularizers.L2(10.0)  # large, so including it would change the norms a lot
    model = keras.Sequential([keras.Input((16,)),
                              keras.layers.Dense(8, activation="tanh", kernel_regularizer=l2),
                              keras.layers.Dense(3)])
    x, y = batch()
    norms = gradient_norms(model, x, y, LOSS)
    kernels = [model.layers[0].kernel, model.layers[1].kernel]
    assert list(norms) == [f"{layer.name}/kernel" for layer in model.layers]
    with tf.GradientTape() as tape:
        loss = LOSS(y, model(x, training=True))
    expected = [float(tf.norm(g)) for g in tape.gradient(loss, kernels)]
    np.testing.assert_allclose(list(norms.values()), expected, rtol=1e-5)
    assert all(v > 0 for v in expected)


def test_gradient_norms_restore_batch_norm_statistics():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                              keras.layers.Dropout(0.5), keras.layers.Dense(3)])
    before = [v.numpy().copy() for v in model.non_trainable_variables]
    gradient_norms(model, *batch(), LOSS)
    for v, old in zip(model.non_trainable_variables, before):
        np.testing.assert_array_equal(v.numpy(), old)


def test_sigmoid_gradients_vanish_with_depth_relu_he_does_not():
    x, y = batch(classes=10)
    sigmoid = list(gradient_norms(deep_mlp("sigmoid", "glorot_uniform"), x, y, LOSS).values())
    relu = list(gradient_norms(deep_mlp("relu", "he_normal"), x, y, LOSS).values())
    assert len(sigmoid) == len(relu) == 20
    # Measured: sigmoid last/first ~ 3e12, ReLU+He ~ 0.7-3 (seeds 0-4); thresholds leave wide margins.
    assert sigmoid[-1] / sigmoid[0] > 1e6
    assert 1e-2 < relu[-1] / relu[0] < 100
    assert np.all(np.diff(np.log(sigmoid[:-1])) > 0)  # shrinks monotonically towards the input


def test_activation_stats_dead_relus_and_saturation():
    model = dead_relu_model()
    x, _ = batch()
    stats = activation_stats(model, x)
    assert set(stats) == {"alive", "dead"}  # the linear logits layer applies no activation
    assert stats["dead"]["dead_fraction"] == 1.0 and stats["dead"]["zero_fraction"] == 1.0
    assert stats["dead"]["mean"] == 0.0 and stats["dead"]["std"] == 0.0
    assert stats["alive"]["dead_fraction"] < 0.5 and 0 < stats["alive"]["zero_fraction"] < 1

    keras.utils.set_random_seed(2)
    inputs = keras.Input((16,))
    s = keras.layers.Dense(4, activation="sigmoid", bias_initializer=keras.initializers.Constant(50.0),
                           name="saturated")(inputs)
    small = keras.initializers.RandomNormal(stddev=1e-3)
    t = keras.layers.Dense(4, kernel_initializer=small, name="pre")(inputs)
    t = keras.layers.Activation("tanh", name="calm_tanh")(t)
    r = keras.layers.ReLU(name="relu_layer")(keras.layers.Concatenate()([s, t]))
    stats = activation_stats(keras.Model(inputs, r), x)
    assert set(stats) == {"saturated", "calm_tanh", "relu_layer"}
    assert stats["saturated"]["saturated_fraction"] == 1.0 and "dead_fraction" not in stats["saturated"]
    assert stats["calm_tanh"]["saturated_fraction"] == 0.0
    assert "dead_fraction" in stats["relu_layer"] and "saturated_fraction" not in stats["relu_layer"]


def events(log_dir: str) -> dict[str, list[int]]:
    """TensorBoard tag -> steps written, read back from the event files."""
    tags: dict[str, list[int]] = {}
    for path in glob.glob(os.path.join(log_dir, "diagnostics", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


def test_callback_logs_csv_events_warns_once_and_plots(tmp_path):
    model = dead_relu_model()
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=LOSS)
    x, y = batch(n=32)
    warnings: list[str] = []
    csv_path = str(tmp_path / "diag" / "diagnostics.csv")
    diag = Diagnostics((x, y), log_dir=str(tmp_path / "logs"), csv_path=csv_path, warn=warnings.append)
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[diag])

    dead = [w for w in warnings if "dead ReLUs in dead" in w]
    assert len(dead) == 1 and "100%" in dead[0] and "\n" not in dead[0]
    assert not any(w.startswith("dead ReLUs in alive") for w in warnings)
    # nothing flows back through the dead layer: every kernel's gradient is 0, each reported once
    assert sorted(w.split(":")[0] for w in warnings if w.startswith("vanishing")) == [
        f"vanishing gradient at {name}/kernel" for name in ("alive", "dead", "logits")]
    assert len(warnings) == len(set(warnings))  # every warning once, though the problem persists

    with open(csv_path, newline="") as f:
        assert next(csv.reader(f)) == list(CSV_FIELDS)
    rows = read_records(csv_path)
    assert rows == diag.records and {r["epoch"] for r in rows} == {1, 2, 3}
    last = {r["layer"]: r["value"] for r in rows if r["epoch"] == 3 and r["quantity"] == "grad_norm"}
    # loss_fn=None uses the compiled loss: the last row equals a direct call after training
    direct = gradient_norms(model, x, y, LOSS)
    assert list(last) == list(direct)
    np.testing.assert_allclose(list(last.values()), list(direct.values()), rtol=1e-5)
    assert any(r["quantity"] == "dead_fraction" and r["layer"] == "dead" and r["value"] == 1.0 for r in rows)

    tags = events(str(tmp_path / "logs"))
    assert tags["grad_norm/alive/kernel"] == [1, 2, 3] and tags["dead_fraction/dead"] == [1, 2, 3]
    assert tags["logits"] == [1, 2, 3] and "activation_mean/alive" in tags

    png = plot_gradient_norms(csv_path, str(tmp_path / "grad.png"), title="gradient norms")
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(png) > 1000
    png = plot_depth_profile({"sigmoid": {"a": 1e-9, "b": 1e-3}, "relu": {"a": 0.5, "b": 0.7}},
                             str(tmp_path / "depth.png"), "depth")
    assert os.path.getsize(png) > 1000


@pytest.mark.parametrize("epochs, expected", [(3, {2, 3}), (4, {2, 4})])
def test_every_n_epochs_plus_the_last(tmp_path, epochs, expected):
    model = dead_relu_model()
    model.compile(optimizer="sgd", loss=LOSS)
    x, y = batch(n=16)
    diag = Diagnostics((x, y), every=2, warn=lambda _: None)
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=[diag])
    assert {r["epoch"] for r in diag.records} == expected


def test_resume_drops_rows_of_epochs_run_again(tmp_path):
    model = dead_relu_model()
    model.compile(optimizer="sgd", loss=LOSS)
    x, y = batch(n=16)
    csv_path = str(tmp_path / "d.csv")
    first = Diagnostics((x, y), csv_path=csv_path, warn=lambda _: None)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[first])
    per_epoch = len(read_records(csv_path)) // 3
    # as if killed after epoch 3's rows but before its backup: fit restarts at epoch index 2
    diag = Diagnostics((x, y), csv_path=csv_path, warn=lambda _: None)
    model.fit(x, y, epochs=4, initial_epoch=2, verbose=0, callbacks=[diag])
    rows = read_records(csv_path)
    assert [sum(r["epoch"] == e for r in rows) for e in (1, 2, 3, 4)] == [per_epoch] * 4
    assert rows == diag.records
    with open(csv_path) as f:
        assert f.read().count("epoch,layer") == 1


def test_subclassed_model_gets_gradients_and_one_note_instead_of_activation_stats():
    class Tiny(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(4, activation="relu")
            self.out = keras.layers.Dense(3)

        def call(self, x):
            return self.out(self.hidden(x))

    keras.utils.set_random_seed(0)
    model = Tiny()
    model.compile(optimizer="sgd", loss=LOSS)
    x, y = batch(n=16)
    notes: list[str] = []
    diag = Diagnostics((x, y), warn=notes.append)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[diag])
    assert {r["quantity"] for r in diag.records} == {"grad_norm"} and len(diag.records) == 4
    assert len(notes) == 1 and notes[0].startswith("no activation statistics")
