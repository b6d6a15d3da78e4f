"""The GAN task (issue #15): its losses against their textbook formulas, the gradient penalty on a
critic whose gradient is known, PacGAN's packing, a tiny conditional run end to end, and the
one-line refusals of bad input (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clihelpers import assert_one_line_error


def _sigmoid(t):
    return 1.0 / (1.0 + np.exp(-t))


def test_losses_match_their_textbook_formulas():
    from kerasdl.tasks.gan import discriminator_loss, generator_loss

    real = np.array([-2.0, -0.3, 0.0, 0.7, 3.0], np.float32)
    fake = np.array([1.5, -1.0, 0.2, -4.0, 0.0], np.float32)
    d_log = -np.log(_sigmoid(real)) - np.log(1.0 - _sigmoid(fake))  # Goodfellow et al. 2014, eq. 1
    for kind in ("minimax", "nonsaturating"):
        np.testing.assert_allclose(np.asarray(discriminator_loss(kind, real, fake)), d_log, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(generator_loss("minimax", fake)), np.log(1.0 - _sigmoid(fake)), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(generator_loss("nonsaturating", fake)), -np.log(_sigmoid(fake)), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(discriminator_loss("hinge", real, fake)),
                               np.maximum(0, 1 - real) + np.maximum(0, 1 + fake), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(generator_loss("hinge", fake)), -fake)
    np.testing.assert_allclose(np.asarray(discriminator_loss("wgan-gp", real, fake)), fake - real)
    np.testing.assert_allclose(np.asarray(generator_loss("wgan-gp", fake)), -fake)


def test_gradient_penalty_of_a_linear_critic_is_its_weight_norm_minus_one_squared():
    import keras

    from kerasdl.tasks.gan import GAN

    w = np.array([[3.0], [4.0]], np.float32)  # ||w|| = 5: penalty (5 - 1)^2 = 16 at every point
    x = keras.Input((2,))
    critic = keras.Model(x, keras.layers.Dense(1, name="head_logits")(x))
    critic.get_layer("head_logits").set_weights([w, np.zeros(1, np.float32)])
    z = keras.Input((2,))
    generator = keras.Model(z, keras.layers.Dense(2)(z))
    gan = GAN(generator, critic, latent_dim=2, loss="wgan-gp")
    gan.compile(optimizer=keras.optimizers.SGD(0.1), d_optimizer=keras.optimizers.SGD(0.1))
    real = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    fake = np.random.default_rng(1).normal(size=(6, 2)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(gan._penalty(real, fake, None, salt=0)), np.full(6, 16.0), rtol=1e-5)


def test_pack_puts_m_examples_side_by_side():
    from kerasdl.tasks.gan import pack

    v = np.arange(10, dtype=np.float32).reshape(5, 2)  # 5 examples: the fifth is dropped with m = 2
    np.testing.assert_array_equal(np.asarray(pack(v, 2)), [[0, 1, 2, 3], [4, 5, 6, 7]])
    img = np.arange(4 * 2 * 2 * 1, dtype=np.float32).reshape(4, 2, 2, 1)
    out = np.asarray(pack(img, 2))
    assert out.shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(out[0, ..., 0], img[0, ..., 0])
    np.testing.assert_array_equal(out[0, ..., 1], img[1, ..., 0])
    np.testing.assert_array_equal(out[1, ..., 1], img[3, ..., 0])
    rgb = np.random.default_rng(0).normal(size=(4, 2, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(pack(rgb, 2))[1, ..., 3:], rgb[3])  # whole examples, in order


TINY = ["--dataset", "digits", "--train-per-class", "6", "--epochs", "2", "--batch-size", "16", "--seed", "0",
        "--augment", "none", "--schedule", "constant"]


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory, data_dir):
    """A tiny conditional DCGAN on 8x8 digits (10 classes), trained in-process."""
    from kerasdl.config import RunConfig
    from kerasdl.training import train

    root = tmp_path_factory.mktemp("cgan")
    config = RunConfig(task="gan", model="mlp_generator", dataset="digits", train_per_class=6, epochs=2,
                       batch_size=16, seed=0, augment="none", schedule="constant", data_dir=data_dir,
                       output_dir=str(root / "runs"), name="cgan", model_options={"width": 16, "depth": 1},
                       task_options={"latent_dim": 4, "conditional": True, "eval_samples": 40, "sample_every": 1})
    result = train(config, progress=False, echo=lambda *_: None)
    return result.run_dir, root


def test_conditional_run_reports_quality_and_samples_the_asked_class(cgan_run):
    from kerasdl import api

    run_dir, _ = cgan_run
    test = json.load(open(f"{run_dir}/metrics.json"))["test"]
    for key in ("fid", "kid", "kid_std", "precision", "recall", "class_match", "labels", "floor", "ceiling"):
        assert key in test, key
    assert test["feature_net"]["name"] == "cnn" and len(test["feature_net"]["sha256"]) == 64
    assert test["floor"]["fid"] < test["ceiling"]["fid"]
    images, _ = api.sample(run_dir, n=5, seed=3, label=7, out="")
    again, _ = api.sample(run_dir, n=5, seed=3, label=7, out="")
    assert images.shape == (5, 8, 8, 1) and images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_array_equal(images, again)
    import os

    assert sorted(os.listdir(f"{run_dir}/plots/samples")) == ["epoch_001.png", "epoch_002.png"]


@pytest.mark.parametrize("args,needles", [
    (["train", "--task", "gan", "--model", "lenet5", *TINY], ["'lenet5' is a classifier", "dcgan_generator"]),
    (["train", "--task", "gan", "--model", "mlp_generator", "--task-opt", "n_critic=0", *TINY], ["n_critic must be >= 1"]),
    (["train", "--task", "gan", "--task-opt", "loss=wgan", *TINY], ["unknown GAN loss 'wgan'", "wgan-gp"]),
    (["train", "--task", "gan", "--task-opt", "pack=2", "--task-opt", "conditional=true", *TINY], ["pack=2"]),
    (["train", "--task", "gan", "--model", "mlp_generator", "--task-opt", "discriminator=lenet5", *TINY],
     ["discriminator='lenet5' is a classifier"]),
])
def test_bad_gan_config_is_one_line_exit_2(cli_inprocess, tmp_path, args, needles):
    assert_one_line_error(cli_inprocess(*args, cwd=tmp_path), *needles)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args,needles", [
    (["--class", "12"], ["class 12 is out of range", "10 classes"]),
    (["--class", "-1"], ["class -1 is out of range"]),
    (["--steps", "0"], ["steps must be >= 1"]),
    (["--steps", "5"], ["--steps is for diffusion runs"]),
])
def test_bad_sample_request_is_one_line_exit_2(cgan_run, cli_inprocess, args, needles):
    run_dir, root = cgan_run
    assert_one_line_error(cli_inprocess("sample", run_dir, *args, cwd=root), *needles)


def test_tuning_a_gan_is_refused_in_one_line(cli_inprocess, tmp_path):
    proc = cli_inprocess("tune", "--task", "gan", "--model", "mlp_generator", "--dataset", "ring8", "--max-trials", "1",
                         cwd=tmp_path)
    assert_one_line_error(proc, "task 'gan' has no tuning objective")
