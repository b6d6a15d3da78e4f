"""The craft-of-training options of issue #4 that live in optim / losses / data / training:
cyclic LR, clipping by value and norm, gradient accumulation, label smoothing, input
normalisation, stochastic depth and the CLI's listing of every option. (Initialisers, penalties,
max-norm, dropout schedules, AGC and EMA: test_regularize.py; diagnostics: test_diagnostics.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from kerasdl.config import RunConfig
from kerasdl.errors import KerasdlUsageError, UnknownNameError


def lr_curve(**kw):
    from kerasdl.engine.optim import make_schedule

    config = RunConfig(**{"epochs": 10, "learning_rate": 0.1, "schedule": "constant", **kw})
    schedule = make_schedule(config, steps_per_epoch=10)
    return np.array([float(schedule(s)) for s in range(100)])


def test_cyclic_schedule_is_a_triangle_between_the_two_rates():
    lr = lr_curve(schedule="cyclic", lr_cycle_epochs=4, min_learning_rate=0.01)  # 40 steps per cycle
    assert lr[0] == pytest.approx(0.01) and lr[20] == pytest.approx(0.1) and lr[40] == pytest.approx(0.01)
    assert lr[10] == pytest.approx(0.055) and lr[60] == pytest.approx(0.1)
    assert np.all(np.diff(lr[:20]) > 0) and np.all(np.diff(lr[20:40]) < 0)
    default_low = lr_curve(schedule="cyclic", lr_cycle_epochs=2)
    assert default_low.min() == pytest.approx(0.01) and default_low.max() == pytest.approx(0.1)


def _one_sgd_step(config: RunConfig, grad_scale: np.ndarray, steps: int = 1):
    """Weights of a bias-free linear unit after ``steps`` SGD(lr=1) steps whose gradient is ``grad_scale``.

    The loss is ``sum(w * g)`` (its gradient w.r.t. ``w`` is ``g``), so the update shows exactly
    what the optimizer did to the gradient.
    """
    import keras

    from kerasdl.engine.optim import make_optimizer

    config = config.replace(optimizer="sgd", learning_rate=1.0, schedule="constant")
    optimizer = make_optimizer(config, steps_per_epoch=1)
    w = keras.Variable(np.zeros_like(grad_scale, dtype="float32"))
    history = []
    for _ in range(steps):
        optimizer.apply([keras.ops.convert_to_tensor(grad_scale.astype("float32"))], [w])
        history.append(keras.ops.convert_to_numpy(w).copy())
    return history


def test_clip_value_and_clip_norm_change_the_update_as_defined():
    g = np.array([3.0, -0.5, 4.0])
    (plain,) = _one_sgd_step(RunConfig(), g)
    np.testing.assert_allclose(plain, -g)
    (by_value,) = _one_sgd_step(RunConfig(clip_value=1.0), g)
    np.testing.assert_allclose(by_value, [-1.0, 0.5, -1.0])  # every element into [-1, 1]
    (by_norm,) = _one_sgd_step(RunConfig(clip_norm=1.0), g)  # ||g|| = 5.02: rescaled to norm 1
    np.testing.assert_allclose(by_norm, -g / np.linalg.norm(g), rtol=1e-6)
    (small,) = _one_sgd_step(RunConfig(clip_norm=10.0), g)  # under the limit: untouched
    np.testing.assert_allclose(small, -g, rtol=1e-6)


def test_gradient_accumulation_updates_once_every_n_batches_with_the_mean():
    g = np.array([1.0, 2.0])
    steps = _one_sgd_step(RunConfig(accumulate=3), g, steps=6)
    np.testing.assert_allclose(steps[0], 0.0)
    np.testing.assert_allclose(steps[1], 0.0)
    np.testing.assert_allclose(steps[2], -g)  # the mean of 3 equal gradients, applied once
    np.testing.assert_allclose(steps[4], -g)
    np.testing.assert_allclose(steps[5], -2 * g)


def test_ema_and_gradient_options_reach_the_keras_optimizer():
    from kerasdl.engine.optim import make_optimizer

    opt = make_optimizer(RunConfig(ema=0.99, clip_norm=2.0, accumulate=2, optimizer="adamw",
                                   weight_decay=0.01), steps_per_epoch=5)
    assert opt.use_ema and opt.ema_momentum == pytest.approx(0.99)
    assert opt.global_clipnorm == 2.0 and opt.gradient_accumulation_steps == 2 and opt.weight_decay == 0.01
    plain = make_optimizer(RunConfig(), steps_per_epoch=5)
    assert not plain.use_ema and plain.clipvalue is None and plain.global_clipnorm is None
    assert not plain.gradient_accumulation_steps


@pytest.mark.parametrize("name", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
def test_label_smoothing_matches_numpy(name):
    from kerasdl.tasks import losses

    rng = np.random.default_rng(0)
    labels, logits = rng.integers(0, 4, size=7), rng.normal(scale=3, size=(7, 4)).astype("float32")
    eps = 0.1
    z = logits.astype(np.float64)
    log_p = z - z.max(-1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(-1, keepdims=True))
    target = (1 - eps) * np.eye(4)[labels] + eps / 4
    want = -(target * log_p).sum(-1)
    loss = losses.LOSSES[name].factory(reduction=None, smoothing=eps)
    y = labels if name.startswith("sparse") else np.eye(4)[labels]
    np.testing.assert_allclose(np.asarray(loss(y, logits)), want, rtol=1e-5)
    # smoothing 0 is plain cross-entropy
    plain = losses.LOSSES[name].factory(reduction=None)
    np.testing.assert_allclose(np.asarray(plain(y, logits)), -log_p[np.arange(7), labels], rtol=1e-5)


def test_label_smoothing_needs_a_cross_entropy_loss():
    from types import SimpleNamespace

    from kerasdl.tasks.supervised import make_loss

    info = SimpleNamespace(task="regression", num_classes=1, input_shape=(10,))
    with pytest.raises(KerasdlUsageError, match="label_smoothing needs a cross-entropy"):
        make_loss(RunConfig(dataset="diabetes", label_smoothing=0.1, augment="none"), info)
    classes = SimpleNamespace(task="classification", num_classes=10, input_shape=(28, 28, 1))
    loss = make_loss(RunConfig(label_smoothing=0.2, augment="none"), classes)
    assert loss.options == {"smoothing": 0.2}


@pytest.mark.parametrize("field,value,match", [
    ("init", "kaiming_typo", "initializer"),
    ("dropout_schedule", "erly", "early"),
    ("input_norm", "standardise", "standardize"),
])
def test_new_names_are_checked_with_suggestions(field, value, match):
    with pytest.raises(UnknownNameError, match=match):
        RunConfig(**{field: value}).validate()


@pytest.mark.parametrize("kw,match", [
    ({"l2": -1.0}, "l2 must be >= 0"),
    ({"clip_norm": 0.0}, "clip_norm must be > 0"),
    ({"agc": -0.01}, "agc must be > 0"),
    ({"label_smoothing": 1.0}, "label_smoothing must be in"),
    ({"ema": 1.0}, "ema"),
    ({"accumulate": 0}, "accumulate"),
    ({"dropout_schedule": "early", "dropout_epochs": 0}, "dropout_epochs"),
    ({"dropout_schedule": "late", "dropout_epochs": 20, "epochs": 20}, "dropout_epochs < epochs"),
    ({"stochastic_depth": 1.5}, "stochastic_depth"),
])
def test_new_numbers_are_validated(kw, match):
    with pytest.raises(KerasdlUsageError, match=match):
        RunConfig(**kw).validate()


def test_config_and_data_layer_agree_on_the_names():
    from kerasdl import config
    from kerasdl.data.info import INPUT_NORMS

    assert config.INPUT_NORMS == INPUT_NORMS


def test_input_norm_statistics(data_dir):
    """mnist5k is uint8 images: scale = /255, channel_mean subtracts the train mean, standardize
    gives the train split zero mean and unit variance, none leaves raw values."""
    from kerasdl.data import load_arrays, load_dataset

    x_train = load_arrays("mnist5k", "train", data_dir=data_dir)[0].astype(np.float64)
    stats = {}
    for mode in ("auto", "scale", "standardize", "channel_mean", "none"):
        ds, info = load_dataset("mnist5k", "train", data_dir=data_dir, shuffle=False, batch_size=4096,
                                input_norm=mode)
        x = np.concatenate([np.asarray(b) for b, _ in ds])
        stats[mode] = (info.mean, info.std, x)
    np.testing.assert_allclose(stats["scale"][2], x_train / 255.0, rtol=1e-6)
    np.testing.assert_allclose(stats["auto"][2], stats["scale"][2])
    np.testing.assert_allclose(stats["none"][2], x_train)
    assert abs(stats["standardize"][2].mean()) < 1e-4 and stats["standardize"][2].std() == pytest.approx(1, rel=1e-4)
    assert stats["channel_mean"][2].mean() == pytest.approx(0, abs=1e-5)
    np.testing.assert_allclose(stats["channel_mean"][2], (x_train - x_train.mean()) / 255.0, atol=1e-5)


def test_input_norm_on_a_table_and_through_a_subset(data_dir):
    from kerasdl.data import load_arrays, load_dataset
    from kerasdl.data.subset import load_subset

    x_train = load_arrays("iris", "train", data_dir=data_dir)[0].astype(np.float64)
    ds, info = load_dataset("iris", "train", data_dir=data_dir, shuffle=False, input_norm="scale")
    x = np.concatenate([np.asarray(b) for b, _ in ds])
    np.testing.assert_allclose(x.min(0), 0, atol=1e-6)
    np.testing.assert_allclose(x.max(0), 1, atol=1e-6)
    np.testing.assert_allclose(info.mean, x_train.min(0), rtol=1e-6)
    _, sub = load_subset("iris", "validation", classes=[0, 1], data_dir=data_dir, input_norm="scale")
    assert sub.mean == info.mean and sub.std == info.std  # the train split's statistics


def test_stochastic_depth_maps_to_the_residual_builders_option():
    from kerasdl.engine.fit import with_default_options

    assert with_default_options(RunConfig(model="resnet20", stochastic_depth=0.1)).model_options == {
        "drop_path_rate": 0.1}
    assert with_default_options(RunConfig(model="efficientnet_b0", stochastic_depth=0.3)).model_options == {
        "drop_connect_rate": 0.3}
    with pytest.raises(KerasdlUsageError, match="'lenet5' has none"):
        with_default_options(RunConfig(model="lenet5", stochastic_depth=0.1))
    with pytest.raises(KerasdlUsageError, match="contradicts"):
        with_default_options(RunConfig(model="resnet20", stochastic_depth=0.1,
                                       model_options={"drop_path_rate": 0.2}))


def test_train_help_lists_every_technique(run_cli, tmp_path):
    out = run_cli("train", "--help", cwd=tmp_path, check=0).stdout
    for option in ("--init", "--l1", "--l2", "--max-norm", "--dropout-schedule", "--dropout-epochs",
                   "--label-smoothing", "--stochastic-depth", "--clip-value", "--clip-norm", "--agc",
                   "--accumulate", "--ema", "--input-norm", "--diagnostics", "--lr-cycle-epochs",
                   "--weight-decay", "--augment", "--loss", "--optimizer", "--schedule"):
        assert option in out, option
    for name in ("he", "glorot", "lecun", "orthogonal", "zeros", "cyclic", "channel_mean", "early", "late"):
        assert name in out, name


def test_bad_technique_values_exit_2_with_one_line(cli_inprocess, tmp_path):
    run_cli = cli_inprocess
    proc = run_cli("train", "--init", "kaiming", "--epochs", "1", cwd=tmp_path)
    assert proc.returncode == 2
    assert "initializer" in proc.stderr and "glorot, he, lecun" in proc.stderr
    proc = run_cli("train", "--model", "mlp", "--stochastic-depth", "0.1", "--epochs", "1", cwd=tmp_path)
    assert proc.returncode == 2 and "stochastic_depth" in proc.stderr


def test_every_technique_at_once_trains_and_leaves_its_traces(run_cli, tmp_path):
    """One real CLI run with every optional technique on: it trains, writes the diagnostics
    (CSV, TensorBoard events, PNG), records the regularisers, and the saved model still loads
    with plain keras in a fresh process (nothing kerasdl-specific leaks into model.keras)."""
    import json
    import subprocess
    import sys

    proc = run_cli(
        "train", "--model", "mlp", "--dataset", "digits", "--epochs", "3", "--seed", "3", "--name", "all",
        "--model-opt", "dropout=0.3", "--init", "he", "--l2", "1e-4", "--max-norm", "3",
        "--dropout-schedule", "early", "--dropout-epochs", "1", "--label-smoothing", "0.1",
        "--clip-norm", "5", "--agc", "0.05", "--accumulate", "2", "--ema", "0.9",
        "--input-norm", "standardize", "--diagnostics", "--schedule", "cyclic", "--lr-cycle-epochs", "2",
        cwd=tmp_path, check=0,
    )
    run = tmp_path / "runs" / "all"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["test"]["accuracy"] > 0.5, proc.stdout
    assert metrics["regularisers"] == {"reinitialised_kernels": 3, "penalised_kernels": 3, "max_norm_kernels": 3}
    rows = (run / "diagnostics.csv").read_text().splitlines()
    assert rows[0] == "epoch,layer,quantity,value" and any(",grad_norm," in r for r in rows)
    assert {r.split(",")[0] for r in rows[1:]} == {"1", "2", "3"}
    assert (run / "plots" / "gradient_norms.png").stat().st_size > 1000
    assert list((run / "logs" / "diagnostics").glob("events.out.tfevents.*"))
    dataset = json.loads((run / "dataset.json").read_text())
    # digits are 8x8x1 images on a 0..16 scale: standardize stores the train split's channel statistics
    assert len(dataset["mean"]) == 1 and 3 < dataset["mean"][0] < 7 and 4 < dataset["std"][0] < 8
    code = ("import keras, numpy as np; m = keras.saving.load_model(r'%s'); "
            "print(m(np.zeros((1, 8, 8, 1), 'float32')).shape)" % (run / "model.keras"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and "(1, 10)" in out.stdout, out.stderr[-2000:]


def test_mlp_layer_norm_switch_normalises_each_example():
    import keras

    from kerasdl.models import build_model

    model = build_model("mlp", input_shape=(8,), num_classes=3, width=16, layer_norm=True)
    assert model.get_layer("dense1_linear").bias is None  # LayerNorm's beta replaces it
    probe = keras.Model(model.input, model.get_layer("dense1_ln").output)
    h = np.asarray(probe(np.random.default_rng(0).normal(size=(5, 8)).astype("float32") * 7 + 3))
    np.testing.assert_allclose(h.mean(-1), 0, atol=1e-5)  # per example, over the units
    np.testing.assert_allclose(h.var(-1), 1, rtol=1e-2)
    with pytest.raises(KerasdlUsageError, match="not both"):
        build_model("mlp", input_shape=(8,), num_classes=3, batch_norm=True, layer_norm=True)


def _textbook_steps(name: str, w0: np.ndarray, grads: list, lr: float, momentum: float = 0.9,
                    wd: float | None = None) -> np.ndarray:
    """Each optimizer's defining update, written out in NumPy (keras's default constants)."""
    w, eps = w0.astype(np.float64), 1e-7
    state = {"v": np.zeros_like(w), "m": np.zeros_like(w), "acc": np.full_like(w, 0.1),  # adagrad starts at 0.1
             "g2": np.zeros_like(w), "dx2": np.zeros_like(w)}
    for t, g in enumerate(grads, start=1):
        if wd:  # decoupled weight decay (Loshchilov & Hutter 2019), before the gradient step
            w = w - lr * wd * w
        if name == "sgd":
            w = w - lr * g
        elif name == "momentum":  # Polyak heavy ball: v <- mu v - lr g; w <- w + v
            state["v"] = momentum * state["v"] - lr * g
            w = w + state["v"]
        elif name == "nesterov":  # Sutskever et al. 2013 form: w <- w + mu v_new - lr g
            state["v"] = momentum * state["v"] - lr * g
            w = w + momentum * state["v"] - lr * g
        elif name == "adagrad":  # Duchi et al. 2011: accumulate squared gradients
            state["acc"] = state["acc"] + g ** 2
            w = w - lr * g / np.sqrt(state["acc"] + eps)
        elif name == "rmsprop":  # Hinton's lecture 6e: a moving average of squared gradients
            state["v"] = 0.9 * state["v"] + 0.1 * g ** 2
            w = w - lr * g / np.sqrt(state["v"] + eps)
        elif name == "adadelta":  # Zeiler 2012: unit-correct ratio of RMS[dx] to RMS[g]
            state["g2"] = 0.95 * state["g2"] + 0.05 * g ** 2
            dx = -np.sqrt(state["dx2"] + eps) / np.sqrt(state["g2"] + eps) * g
            state["dx2"] = 0.95 * state["dx2"] + 0.05 * dx ** 2
            w = w + lr * dx
        elif name in ("adam", "adamw"):  # Kingma & Ba 2015, bias-corrected, epsilon-hat form
            state["m"] = 0.9 * state["m"] + 0.1 * g
            state["v"] = 0.999 * state["v"] + 0.001 * g ** 2
            alpha = lr * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            w = w - alpha * state["m"] / (np.sqrt(state["v"]) + eps)
        else:
            raise AssertionError(name)
    return w


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw"])
def test_each_optimizer_makes_its_textbook_update(name):
    """Three steps of every --optimizer on fixed gradients equal its defining formula."""
    import keras

    from kerasdl.engine.optim import make_optimizer

    config = RunConfig(optimizer=name, learning_rate=0.1, schedule="constant",
                       weight_decay=0.01 if name == "adamw" else None)
    optimizer = make_optimizer(config, steps_per_epoch=1)
    w0 = np.array([1.0, -2.0, 0.5])
    grads = [np.array([0.3, -1.0, 2.0]), np.array([-0.5, 0.2, 1.0]), np.array([0.1, 0.1, -3.0])]
    w = keras.Variable(w0.astype("float32"))
    for g in grads:
        optimizer.apply([keras.ops.convert_to_tensor(g.astype("float32"))], [w])
    want = _textbook_steps(name, w0, grads, lr=0.1, wd=0.01 if name == "adamw" else None)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(w), want, rtol=2e-5, atol=1e-6)
