"""Diffusion (issue #15): noise schedules, the DDIM / DDPM step against the DDPM formulas, the
whole sampler against data whose optimal denoiser is known in closed form, the denoisers, and a
tiny conditional run through the engine (metrics, `kerasdl sample` reproducibility, the export's
sample signature in plain TensorFlow)."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from kerasdl.errors import KerasdlUsageError

# --------------------------------------------------------------------------- schedules


def test_schedules():
    from kerasdl.tasks.diffusion import alpha_bar, betas_for, cosine_betas, linear_betas

    b = linear_betas(1000)
    assert b[0] == pytest.approx(1e-4) and b[-1] == pytest.approx(0.02) and np.all(np.diff(b) > 0)
    b50 = linear_betas(50)  # both ends scaled by 1000 / T
    assert b50[0] == pytest.approx(2e-3) and b50[-1] == pytest.approx(0.4)
    for schedule in ("linear", "cosine"):
        for T in (50, 1000):
            abar = alpha_bar(betas_for(schedule, T))
            assert abar.dtype == np.float64 and abar.shape == (T,)
            assert np.all(np.diff(abar) < 0) and 0.0 < abar[-1] < 1e-3 and abar[0] <= 1.0 and abar[0] > 0.99
    # cosine: abar_t = f(t) / f(0) wherever the clip at 0.999 does not bite (Nichol & Dhariwal 2021)
    T, s = 1000, 0.008
    f = np.cos((np.arange(1, T + 1) / T + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2
    abar = alpha_bar(cosine_betas(T))
    np.testing.assert_allclose(abar[:990], f[:990], rtol=1e-9)
    assert cosine_betas(T).max() <= 0.999
    with pytest.raises(KerasdlUsageError):
        betas_for("quadratic", 10)


def test_q_sample_moments():
    from kerasdl.tasks.diffusion import q_sample

    rng = np.random.default_rng(0)
    x0 = np.array([0.5, -1.0, 2.0], np.float32)
    abar = np.array([0.9, 0.5, 0.01], np.float32)
    eps = rng.standard_normal((200_000, 3)).astype(np.float32)
    xt = np.asarray(q_sample(np.broadcast_to(x0, eps.shape), np.broadcast_to(abar, eps.shape), eps))
    np.testing.assert_allclose(xt.mean(0), np.sqrt(abar) * x0, atol=0.01)
    np.testing.assert_allclose(xt.var(0), 1 - abar, rtol=0.02)
    # per-example abar (B,) broadcast over an image batch
    img = np.ones((2, 4, 4, 1), np.float32)
    out = np.asarray(q_sample(img, np.array([1.0, 0.25], np.float32), np.zeros_like(img)))
    np.testing.assert_allclose(out[:, 0, 0, 0], [1.0, 0.5])


def test_ddim_eta1_is_the_ddpm_step_and_timesteps():
    import tensorflow as tf

    from kerasdl.tasks.diffusion import alpha_bar, ddim_step, ddim_timesteps, linear_betas

    betas = linear_betas(100)
    abar = alpha_bar(betas)
    rng = np.random.default_rng(1)
    x, eps, z = (rng.standard_normal((5, 3)) for _ in range(3))
    for t in (1, 40, 99):
        # DDPM ancestral step (Ho et al. 2020, Algorithm 2), float64
        mean = (x - betas[t] / np.sqrt(1 - abar[t]) * eps) / np.sqrt(1 - betas[t])
        var = (1 - abar[t - 1]) / (1 - abar[t]) * betas[t]
        ddpm = mean + np.sqrt(var) * z
        ddim, _ = ddim_step(x, eps, abar[t], abar[t - 1], eta=1.0, noise=z)
        np.testing.assert_allclose(np.asarray(ddim), ddpm, rtol=1e-4, atol=1e-4)
    # eta = 0, last step (abar_prev = 1): the predicted x0 itself
    out, x0 = ddim_step(x, eps, abar[0], 1.0, eta=0.0)
    np.testing.assert_allclose(np.asarray(out), np.asarray(x0), atol=1e-6)
    np.testing.assert_array_equal(ddim_timesteps(100, 100).numpy(), np.arange(99, -1, -1))
    np.testing.assert_array_equal(ddim_timesteps(100, 1).numpy(), [99])
    taus = ddim_timesteps(1000, 50).numpy()
    assert taus[0] == 999 and taus[-1] == 0 and len(set(taus)) == 50 and np.all(np.diff(taus) < 0)
    assert ddim_timesteps(tf.constant(50), tf.constant(7)).dtype == tf.int32


# --------------------------------------------------------------------------- the sampler, exactly


def _info(shape, task="classification", classes=2, image=False):
    from kerasdl.data import DatasetInfo

    return DatasetInfo(name="toy", source="npz", task=task, input_shape=shape,
                       raw_dtype="uint8" if image else "float32", num_classes=classes,
                       class_names=[str(i) for i in range(classes)], splits={"train": 32, "validation": 16, "test": 16},
                       mean=0.0 if image else [0.0] * shape[0], std=255.0 if image else [1.0] * shape[0])


def _task(info, model="diffusion_mlp", model_options=None, **opts):
    from kerasdl.config import RunConfig
    from kerasdl.tasks import get_task

    config = RunConfig(model=model, task="diffusion", task_options=opts, model_options=model_options or {})
    return get_task("diffusion", config, info)


class GaussianDenoiser:
    """The optimal eps predictor for x0 ~ N(mu_c, s^2 I): E[eps | x_t] =
    sqrt(1 - abar) (x_t - sqrt(abar) mu) / (abar s^2 + 1 - abar). Labels pick mu_c (the null
    label: the mean of the means)."""

    def __init__(self, abar, means, s):
        import tensorflow as tf

        self.abar = tf.constant(abar.astype(np.float32))
        self.means = tf.constant(np.vstack([means, means.mean(0, keepdims=True)]).astype(np.float32))
        self.s = float(s)

    def __call__(self, inputs, training=False):
        import tensorflow as tf

        x, t = inputs[0], inputs[1]
        mu = tf.gather(self.means, inputs[2] if len(inputs) > 2 else tf.zeros_like(t))
        a = tf.gather(self.abar, t)[:, None]
        return tf.sqrt(1 - a) * (x - tf.sqrt(a) * mu) / (a * self.s**2 + 1 - a)


def test_sampler_is_ddim_with_guidance():
    """The TF loop against an independent float64 NumPy DDIM (eta 0, 7 of 100 steps) with
    classifier-free guidance and the x_0 clip, from the same x_T (stateless normal, seed (seed, 0))."""
    import tensorflow as tf

    from kerasdl.tasks.diffusion import VECTOR_CLIP

    means, s, w = np.array([[2.0, -1.0], [-3.0, 0.5]]), 0.5, 1.5
    task = _task(_info((2,)), timesteps=100, eta=0.0, conditional=True, guidance=w)
    fake = GaussianDenoiser(task.alpha_bar, means, s)
    n, seed, steps = 300, 4, 7
    labels = np.arange(n) % 2
    got = task.generate(fake, n, seed, steps=steps)  # no labels: the classes in turn
    x = tf.random.stateless_normal([n, 2], seed=[seed, 0]).numpy().astype(np.float64)
    abar = task.alpha_bar
    taus = np.round(np.linspace(99, 0, steps)).astype(int)
    mus = np.vstack([means, means.mean(0)])
    for i, t in enumerate(taus):
        a, prev = abar[t], (abar[taus[i + 1]] if i + 1 < steps else 1.0)

        def eps(mu):
            return np.sqrt(1 - a) * (x - np.sqrt(a) * mu) / (a * s**2 + 1 - a)

        e = (1 + w) * eps(mus[labels]) - w * eps(mus[2])
        x0 = np.clip((x - np.sqrt(1 - a) * e) / np.sqrt(a), -VECTOR_CLIP, VECTOR_CLIP)  # vectors: +-5 sd
        e = (x - np.sqrt(a) * x0) / np.sqrt(1 - a)
        x = np.sqrt(prev) * x0 + np.sqrt(1 - prev) * e
    np.testing.assert_allclose(got, x, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_sampler_recovers_gaussian_data(eta):
    """DDIM (eta 0) and DDPM (eta 1), all 1000 steps of the cosine schedule, with the exact
    denoiser draw the data distribution (fewer steps shrink the spread: 0.43 for 20 of 100 linear
    steps); a conditional model draws the class asked for; same seed, same draw."""
    means, s = np.array([[2.0, -1.0], [-3.0, 0.5]]), 0.5
    task = _task(_info((2,)), timesteps=1000, schedule="cosine", eta=eta, conditional=True, guidance=0.0)
    fake = GaussianDenoiser(task.alpha_bar, means, s)
    x = task.generate(fake, 2000, seed=3, labels=np.full(2000, 1), steps=1000)
    np.testing.assert_allclose(x.mean(0), means[1], atol=0.05)
    np.testing.assert_allclose(x.std(0), [s, s], atol=0.03)
    a = task.generate(fake, 300, seed=5, steps=10)  # classes in turn; batched as 250 + 50
    b = task.generate(fake, 300, seed=5, steps=10, batch=300)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert np.abs(a[0::2].mean(0) - means[0]).max() < 0.3 and np.abs(a[1::2].mean(0) - means[1]).max() < 0.3
    assert np.abs(a - task.generate(fake, 300, seed=6, steps=10)).max() > 0.1


# --------------------------------------------------------------------------- denoisers


def test_denoisers_build_and_refuse():
    from kerasdl.models import build_model, model_info

    for name in ("diffusion_unet", "diffusion_mlp"):
        assert model_info(name).role == "denoiser"
    unet = build_model("diffusion_unet", input_shape=(28, 28, 1), num_classes=10, base_filters=8)
    assert [tuple(i.shape) for i in unet.inputs] == [(None, 28, 28, 1), (None,), (None,)]
    assert unet.get_layer("label_embed").input_dim == 11  # row 10: the null label
    assert unet.get_layer("down3_attn1_mha") is not None and tuple(unet.output.shape) == (None, 28, 28, 1)
    x = np.random.default_rng(0).normal(size=(2, 28, 28, 1)).astype("float32")
    out = np.asarray(unet([x, np.array([0, 5]), np.array([3, 10])]))
    assert out.shape == x.shape and np.abs(out).max() == 0.0  # zero-initialised output convolution
    small = build_model("diffusion_unet", input_shape=(8, 8, 3), channel_mult=[1, 2], attention=False, base_filters=8)
    assert tuple(small.output.shape) == (None, 8, 8, 3) and len(small.inputs) == 2
    mlp = build_model("diffusion_mlp", input_shape=(2,), width=16, depth=1)
    assert tuple(mlp.output.shape) == (None, 2)
    with pytest.raises(KerasdlUsageError, match="divisible by 4"):
        build_model("diffusion_unet", input_shape=(30, 30, 1))
    with pytest.raises(KerasdlUsageError, match="diffusion_mlp for vectors"):
        build_model("diffusion_unet", input_shape=(10,))
    with pytest.raises(KerasdlUsageError, match="steps must be in"):
        _task(_info((2,)), timesteps=10, sample_steps=5).check_steps(11)
    with pytest.raises(KerasdlUsageError):
        _task(_info((2,)), schedule="quadratic")


def test_validation_noise_is_fixed_and_training_noise_follows_the_step():
    import keras
    import tensorflow as tf

    task = _task(_info((2,)), timesteps=20, sample_steps=4, conditional=True, model_options={"width": 8, "depth": 1})
    rng = np.random.default_rng(0)
    ds = tf.data.Dataset.from_tensor_slices((rng.normal(size=(64, 2)).astype("float32"),
                                             rng.integers(0, 2, 64).astype("int32"))).batch(64)
    model = task.build()
    task.compile(model, keras.optimizers.SGD(0.0), task.prepare(ds, "train"), None)  # lr 0: weights fixed
    val = [model.evaluate(task.prepare(ds, "validation"), verbose=0, return_dict=True)["loss"] for _ in range(2)]
    assert val[0] == pytest.approx(val[1], rel=1e-6)
    train = [model.fit(task.prepare(ds, "train"), epochs=1, verbose=0).history["loss"][0] for _ in range(2)]
    assert train[0] != pytest.approx(train[1], rel=1e-6)  # optimizer.iterations moved: new t and eps
    assert int(model.optimizer.iterations) == 2


def test_unet_trains_and_export_sample_matches_generate():
    """An image task on [0, 1] images: trains a step, the export's sample signature (TF only)
    draws what generate draws, in the user's scale."""
    import keras
    import tensorflow as tf

    task = _task(_info((8, 8, 1), image=True, classes=3), model="diffusion_unet", timesteps=20, sample_steps=4,
                 model_options={"base_filters": 8, "channel_mult": [1, 2], "attention": False})
    task.check()
    rng = np.random.default_rng(0)
    ds = tf.data.Dataset.from_tensor_slices((rng.random((32, 8, 8, 1)).astype("float32"),
                                             rng.integers(0, 3, 32).astype("int32"))).batch(16)
    keras.utils.set_random_seed(0)
    model = task.build()
    task.compile(model, keras.optimizers.Adam(1e-3), task.prepare(ds, "train"), None)
    before = [w.numpy().copy() for w in model.trainable_weights]
    hist = model.fit(task.prepare(ds, "train"), epochs=1, verbose=0).history
    assert np.isfinite(hist["loss"]).all() and hist["loss"][0] > 0
    assert any(np.abs(w.numpy() - b).max() > 0 for w, b in zip(model.trainable_weights, before))
    den = task.inference_model(model)
    a = task.sample(den, 6, seed=2)
    assert a.shape == (6, 8, 8, 1) and 0.0 <= a.min() and a.max() <= 1.0
    np.testing.assert_array_equal(a, task.sample(model, 6, seed=2))  # trainable or inference model
    ends = task.endpoints(den)
    assert list(ends) == ["serving_default", "sample"]
    samp = ends["sample"]
    out = tf.function(samp.fn, input_signature=samp.input_signature)(tf.constant(6), tf.constant(2), tf.constant(4))
    np.testing.assert_allclose(out["samples"].numpy(), a, atol=1e-4)
    serve = ends["serving_default"]
    eps = serve.fn(tf.zeros((2, 8, 8, 1)), tf.constant([0, 19]))["eps"]
    assert eps.shape == (2, 8, 8, 1)
    with pytest.raises(tf.errors.InvalidArgumentError):
        serve.fn(tf.zeros((1, 8, 8, 1)), tf.constant([20]))
    with pytest.raises(KerasdlUsageError, match="conditional"):
        task.sample(den, 2, seed=0, label=1)


# --------------------------------------------------------------------------- through the engine


@pytest.fixture(scope="module")
def moons_run(data_dir, tmp_path_factory):
    """A tiny conditional diffusion_mlp on moons (2-D points), trained for one epoch."""
    from kerasdl.config import RunConfig
    from kerasdl.training import train

    out = tmp_path_factory.mktemp("diffusion")
    config = RunConfig(task="diffusion", model="diffusion_mlp", dataset="moons", epochs=1, batch_size=64, seed=1,
                       output_dir=str(out), name="moons", model_options={"width": 32, "depth": 2},
                       task_options={"timesteps": 50, "eval_samples": 50, "sample_steps": 5, "sample_every": 0,
                                     "conditional": True, "eta": 1.0, "guidance": 1.0},
                       calibrate=False, data_dir=data_dir)
    return train(config, progress=False, echo=lambda *_: None).run_dir


def test_run_metrics_sample_and_export(moons_run, tmp_path):
    import tensorflow as tf

    from kerasdl import api
    from kerasdl.export.savedmodel import export_run

    with open(os.path.join(moons_run, "metrics.json"), encoding="utf-8") as f:
        record = json.load(f)
    test = record["test"]
    assert record["monitor"] == "val_loss" and np.isfinite(record["best_monitor_value"])
    for key in ("fid", "kid", "kid_std", "precision", "recall"):
        assert key in test, test
    assert test["ddim_steps"] == 5 and test["samples"] == 50 and test["guidance"] == 1.0
    a, _ = api.sample(moons_run, n=4, seed=1, steps=5, out="")
    b, _ = api.sample(moons_run, n=4, seed=1, steps=5, out="")
    assert a.shape == (4, 2)
    np.testing.assert_array_equal(a, b)
    c, _ = api.sample(moons_run, n=4, seed=1, steps=5, out="", label=1)
    with pytest.raises(KerasdlUsageError):
        api.sample(moons_run, n=4, seed=1, steps=51, out="")
    model_dir = export_run(moons_run, str(tmp_path / "saved"))
    loaded = tf.saved_model.load(model_dir)
    sig = loaded.signatures["sample"]
    out = sig(n=tf.constant(4), seed=tf.constant(1), steps=tf.constant(5), label=tf.constant(-1))
    np.testing.assert_allclose(out["samples"].numpy(), a, atol=1e-4)
    np.testing.assert_array_equal(out["labels"].numpy(), [0, 1, 0, 1])
    one = sig(n=tf.constant(4), seed=tf.constant(1), steps=tf.constant(5), label=tf.constant(1))
    np.testing.assert_allclose(one["samples"].numpy(), c, atol=1e-4)
    eps = loaded.signatures["serving_default"](x_t=tf.zeros((3, 2)), t=tf.constant([0, 1, 49]),
                                               labels=tf.constant([0, 1, 2]))["eps"]
    assert eps.shape == (3, 2)
    with pytest.raises(tf.errors.InvalidArgumentError):
        sig(n=tf.constant(2), seed=tf.constant(1), steps=tf.constant(5), label=tf.constant(2))
