"""Autoencoder family: encoder/decoder builders, the autoencoder and vae tasks on tiny data, and
the NumPy math (principal angles, PCA optimum, IWAE) against independent implementations."""

from __future__ import annotations

import numpy as np
import pytest

from kerasdl.errors import KerasdlUsageError
from kerasdl.evaluation import generative as gen

# --------------------------------------------------------------------------- NumPy math


def _angles_by_svd(a, b):
    """Independent: arccos of the singular values of Q_a^T Q_b (Bjorck & Golub 1973), QR bases."""
    qa, qb = np.linalg.qr(a)[0], np.linalg.qr(b)[0]
    return np.sort(np.arccos(np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), -1, 1)))


def test_principal_angles_match_an_independent_svd():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    ours = gen.principal_angles(a, b, degrees=False)
    np.testing.assert_allclose(ours, _angles_by_svd(a, b), atol=1e-7)
    # a basis change leaves the subspace (and the angles) unchanged; a subspace with itself: 0
    mix = rng.normal(size=(4, 4))
    assert gen.principal_angles(a, a @ mix).max() < 1e-9
    np.testing.assert_allclose(gen.principal_angles(np.eye(3)[:, :1], np.array([[1.0], [1.0], [0.0]])), [45.0])


def test_pca_matches_the_svd_of_the_centred_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6)) + 3.0
    test = rng.normal(size=(50, 6)) @ rng.normal(size=(6, 6))
    k = 2
    mean, comps, _ = gen.pca_fit(x, k)
    top = np.linalg.svd(x - x.mean(0), full_matrices=False)[2][:k].T  # independent: right singular vectors
    assert gen.principal_angles(comps, top).max() < 1e-9
    proj = (test - x.mean(0)) @ top @ top.T + x.mean(0)
    assert gen.pca_reconstruction_mse(x, test, k) == pytest.approx(np.mean((proj - test) ** 2), rel=1e-9)


def test_logmeanexp_and_iwae_bound():
    from scipy.special import logsumexp

    rng = np.random.default_rng(2)
    lw = rng.normal(size=(5, 50)) * 30 - 800.0  # exp underflows in float64 without the shift
    np.testing.assert_allclose(gen.iwae_bound(lw), logsumexp(lw, axis=1) - np.log(50), rtol=1e-12)
    # Jensen: the K-sample bound is >= the mean log-weight (the ELBO), and monotone in K on average
    assert np.all(gen.iwae_bound(lw) >= lw.mean(axis=1))
    with pytest.raises(ValueError):
        gen.iwae_bound(lw[0])


# --------------------------------------------------------------------------- tiny data and tasks

def _info(shape=(28, 28, 1)):
    from kerasdl.data import DatasetInfo

    return DatasetInfo(name="tiny", source="npz", task="classification", input_shape=shape, raw_dtype="uint8",
                       num_classes=3, class_names=["a", "b", "c"], splits={"train": 32, "validation": 16, "test": 16},
                       mean=0.0, std=255.0)


def _ds(n, shape=(28, 28, 1), seed=0):
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    x = (rng.random((n,) + shape) < 0.3).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, rng.integers(0, 3, n).astype("int32"))).batch(16)


def _task(name, model="dense_encoder", info=None, model_options=None, **opts):
    from kerasdl.config import RunConfig
    from kerasdl.tasks import get_task

    if model_options is None:
        model_options = {"width": [16]} if model == "dense_encoder" else {}
    config = RunConfig(model=model, task=name, task_options=opts, model_options=model_options)
    return get_task(name, config, info or _info())


def _fit(task, epochs=1):
    import keras

    keras.utils.set_random_seed(0)
    train, val = task.prepare(_ds(32), "train"), task.prepare(_ds(16, seed=1), "validation")
    model = task.build()
    train, val = task.compile(model, keras.optimizers.Adam(1e-3), train, val)
    history = model.fit(train, validation_data=val, epochs=epochs, verbose=0)
    return model, history.history


def test_builders_shapes_and_registry():
    from kerasdl.models import build_model, model_info

    for name in ("dense_encoder", "conv_encoder", "linear_encoder"):
        info = model_info(name)
        assert info.role == "encoder" and model_info(info.companion).role == "decoder"
    enc = build_model("conv_encoder", input_shape=(32, 32, 3), latent_dim=3, gaussian=True)
    dec = build_model("conv_decoder", latent_dim=3, output_shape=(32, 32, 3))
    assert [tuple(o.shape) for o in enc.outputs] == [(None, 3), (None, 3)]
    assert tuple(dec.output.shape) == (None, 32, 32, 3)
    lin = build_model("linear_decoder", latent_dim=4, output_shape=(10,))
    assert [type(layer).__name__ for layer in lin.layers] == ["InputLayer", "Dense", "Reshape"]
    assert build_model("dense_encoder", input_shape=(10,), latent_dim=2, width=[8]).get_layer("dense1_linear")
    with pytest.raises(KerasdlUsageError, match="divisible by 4"):
        build_model("conv_encoder", input_shape=(30, 30, 1), latent_dim=2)


def test_options_and_inputs_refused_in_one_line():
    from kerasdl.errors import UnknownNameError

    cases = [
        (lambda: _task("autoencoder", latent_dim=0), "latent_dim must be >= 1"),
        (lambda: _task("autoencoder", noise=-0.1), "noise must be >= 0"),
        (lambda: _task("vae", beta=-1), "beta must be >= 0"),
        (lambda: _task("vae", iw_samples=0), "iw_samples must be >= 1"),
        (lambda: _task("vae", latnt_dim=2), "did you mean 'latent_dim'"),
        (lambda: _task("vae", model="lenet5").check(), "is a classifier"),
        (lambda: _task("autoencoder", info=_info((10, 5))).check(), "images (H, W, C) or flat vectors"),
        (lambda: _task("autoencoder", model="conv_encoder", info=_info((10,))).check(), "use a dense_"),
    ]
    for make, message in cases:
        with pytest.raises(KerasdlUsageError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
            make()
        assert "\n" not in str(err.value)
    assert issubclass(UnknownNameError, KerasdlUsageError)


def test_denoising_autoencoder_trains_evaluates_plots_exports(tmp_path):
    import tensorflow as tf

    task = _task("autoencoder", latent_dim=2, noise=0.3, loss="bce")
    task.check()
    x_in, x_target = next(iter(task.prepare(_ds(16), "train")))
    assert 0 <= float(tf.reduce_min(x_in)) and float(tf.reduce_max(x_in)) <= 1
    assert float(tf.reduce_max(tf.abs(x_in - x_target))) > 0.1  # noisy input, clean target
    model, history = _fit(task)
    assert {"loss", "val_loss"} <= set(history)
    inference = task.inference_model(model)
    test = task.prepare(_ds(16, seed=2), "test")
    report = task.evaluate(inference, test)
    assert {"mse", "bce", "bce_sum", "noisy_mse", "noisy_input_mse"} <= set(report)
    plots = task.plots(report, inference, test, str(tmp_path))
    assert plots == ["plots/reconstructions.png", "plots/latent_scatter.png"]
    assert all((tmp_path / p).stat().st_size > 1000 for p in plots)
    eps = task.endpoints(inference, str(tmp_path))
    assert list(eps) == ["serving_default", "encode", "decode"]
    raw = tf.constant(np.full((2, 28, 28, 1), 255, np.uint8))
    rec = tf.function(eps["serving_default"].fn, input_signature=eps["serving_default"].input_signature)(raw)
    np.testing.assert_allclose(rec["reconstruction"], inference(tf.ones((2, 28, 28, 1))), atol=1e-5)
    # the trained model's weights load into rebuild(), which predicts like the inference model
    model.save_weights(str(tmp_path / "best.weights.h5"))
    rebuilt = task.rebuild()
    rebuilt.load_weights(str(tmp_path / "best.weights.h5"))
    np.testing.assert_allclose(rebuilt(tf.ones((2, 28, 28, 1))), inference(tf.ones((2, 28, 28, 1))), atol=1e-6)


def test_linear_autoencoder_reports_pca_comparison(tmp_path):
    task = _task("autoencoder", model="linear_encoder", info=_info((12,)), latent_dim=3)
    task.check()
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    import tensorflow as tf

    basis = rng.normal(size=(3, 12))
    x = (rng.normal(size=(64, 3)) * [3.0, 2.0, 1.5]) @ basis + 0.3 * rng.normal(size=(64, 12))
    ds = tf.data.Dataset.from_tensor_slices((x.astype("float32"), np.zeros(64, "int32"))).batch(16)
    train = task.prepare(ds, "train")
    model = task.build()
    task.compile(model, keras.optimizers.Adam(0.05), train, None)
    model.fit(train, epochs=60, verbose=0)
    report = task.evaluate(task.inference_model(model), task.prepare(ds, "test"))
    assert report["principal_angle_max_deg"] < 5.0
    assert 1.0 <= report["mse_over_pca"] < 1.1  # PCA is the optimum (on train; test = train here)
    assert "plots/pca_comparison.png" in task.plots(report, task.inference_model(model), ds, str(tmp_path))


def test_vae_logs_elbo_terms_and_evaluates(tmp_path):
    import keras
    import tensorflow as tf

    task = _task("vae", latent_dim=2, kl_warmup_epochs=1, iw_samples=20)
    task.check()
    assert task.monitor() == ("val_loss", "min")
    assert task.tune_objectives() == {"val_elbo": "max", "val_loss": "min"}
    (x, eps), target = next(iter(task.prepare(_ds(16), "validation")))
    assert tuple(eps.shape) == (16, 2) and np.array_equal(x, target)
    again = next(iter(task.prepare(_ds(16), "validation")))[0][1]
    np.testing.assert_array_equal(eps, again)  # validation noise is the same every pass
    model, h = _fit(task, epochs=2)
    assert {"loss", "reconstruction", "kl", "elbo", "val_loss", "val_elbo", "val_kl"} <= set(h)
    assert h["val_elbo"][-1] == pytest.approx(-(h["val_reconstruction"][-1] + h["val_kl"][-1]), rel=1e-5)
    assert h["val_loss"][-1] == pytest.approx(-h["val_elbo"][-1], rel=1e-5)  # beta = 1
    assert model.kl_warmup_steps == 2  # 32 examples / 16 per batch, 1 epoch
    inference = task.inference_model(model)
    test = task.prepare(_ds(16, seed=2), "test")
    report = task.evaluate(inference, test, samples=0)  # the sample-quality figures: tests/test_task_contract.py
    assert report["iwae_bound"] >= report["elbo"] - 1.0 and report["nll_iwae"] == -report["iwae_bound"]
    assert "fid" not in report
    plots = task.plots(report, inference, test, str(tmp_path))
    assert {"plots/samples.png", "plots/traversal.png", "plots/latent_scatter.png"} <= set(plots)
    eps = task.endpoints(inference, str(tmp_path))
    sample = tf.function(eps["sample"].fn, input_signature=eps["sample"].input_signature)
    a, b = sample(tf.constant(3), tf.constant(7)), sample(tf.constant(3), tf.constant(7))
    assert tuple(a["samples"].shape) == (3, 28, 28, 1) and np.array_equal(a["samples"], b["samples"])
    # config round trip of the trainable model, and its checkpoint into rebuild()
    path = str(tmp_path / "vae.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    np.testing.assert_allclose(loaded(tf.ones((1, 28, 28, 1)))["logits"], model(tf.ones((1, 28, 28, 1)))["logits"],
                               atol=1e-6)
    model.save_weights(str(tmp_path / "best.weights.h5"))
    rebuilt = task.rebuild()
    rebuilt.load_weights(str(tmp_path / "best.weights.h5"))
    np.testing.assert_allclose(rebuilt(tf.ones((1, 28, 28, 1))), inference(tf.ones((1, 28, 28, 1))), atol=1e-6)


def test_kl_warmup_follows_the_optimizer_step():
    import keras

    task = _task("vae", latent_dim=2, kl_warmup_epochs=2, beta=0.5)
    model = task.build()
    task.compile(model, keras.optimizers.Adam(1e-3), task.prepare(_ds(32), "train"), None)
    assert model.kl_warmup_steps == 4
    assert float(model.kl_weight(True)) == 0.0
    model.optimizer.iterations.assign(2)  # what --resume restores
    assert float(model.kl_weight(True)) == pytest.approx(0.25)
    model.optimizer.iterations.assign(10)
    assert float(model.kl_weight(True)) == pytest.approx(0.5)
    assert float(model.kl_weight(False)) == pytest.approx(0.5)  # validation: beta itself


def test_iwae_is_exact_for_the_true_posterior_of_a_linear_gaussian_model():
    """p(z) = N(0, I), p(x|z) = N(Wz + b, s^2 I): log p(x) = log N(x | b, WW^T + s^2 I). With
    q(z|x) the exact posterior every importance weight equals p(x), so L_K = log p(x) for all K;
    a worse q gives L_1 < L_K <= log p(x), closing with K."""
    from scipy.stats import multivariate_normal

    f, d, s = 6, 2, 1.0  # s: the Gaussian decoder's unit standard deviation
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(f, d)))
    w = q * [2.0, 1.0]  # orthogonal columns: the posterior covariance is diagonal
    b = rng.normal(size=f)
    post_cov = np.linalg.inv(np.eye(d) + w.T @ w / s**2)  # diagonal
    gain = post_cov @ w.T / s**2  # posterior mean = gain (x - b)
    task = _task("vae", model="linear_encoder", info=_info((f,)), latent_dim=d, decoder="gaussian")
    model = task.build()
    enc, dec = model.encoder, model.decoder
    enc.get_layer("z_mean").set_weights([gain.T, -gain @ b])
    enc.get_layer("z_log_var").set_weights([np.zeros((f, d)), np.log(np.diag(post_cov))])
    dec.get_layer("output_linear").set_weights([w.T, b])
    x = rng.normal(size=(20, d)) @ w.T + b + s * rng.normal(size=(20, f))
    exact = multivariate_normal(b, w @ w.T + s**2 * np.eye(f)).logpdf(x)
    x = x.astype("float32")
    for k in (1, 7):
        np.testing.assert_allclose(task.iwae(model, x, k), exact, atol=2e-3)
    # a too-narrow q: the bound is loose at K = 1 and tightens with K
    enc.get_layer("z_log_var").set_weights([np.zeros((f, d)), np.log(np.diag(post_cov)) - 2.0])
    bounds = [task.iwae(model, x, k, seed=1).mean() for k in (1, 10, 200)]
    assert bounds[0] < bounds[1] < bounds[2] <= exact.mean() + 1e-3
    elbo = task.elbo_terms(model, x, samples=50)["elbo"].mean()
    assert elbo == pytest.approx(bounds[0], abs=0.3)
