"""VQ-VAE (issue #15; van den Oord, Vinyals & Kavukcuoglu 2017): the vector quantizer (nearest
code, straight-through gradient, codebook / commitment losses, the EMA codebook update against a
NumPy re-computation), the vq_encoder / vq_decoder registry entries, and one tiny run on digits
through kerasdl.training.train: metrics.json's generative and codebook figures, the stored prior,
reproducible samples and the export's signatures."""

from __future__ import annotations

import os

import numpy as np
import pytest

from kerasdl.errors import KerasdlUsageError

TINY = {"filters": 8, "res_filters": 4, "res_blocks": 1}  # seconds on CPU


def _quantizer(codebook, **kw):
    from kerasdl.models.vqvae import VectorQuantizer

    codebook = np.asarray(codebook, np.float32)
    q = VectorQuantizer(codebook.shape[0], codebook.shape[1], **kw)
    q.build((None, codebook.shape[1]))
    q.codebook.assign(codebook)
    if q.ema:
        q.code_sum.assign(codebook)
    return q


def test_quantizer_picks_the_nearest_code_with_a_straight_through_gradient():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    codebook = rng.normal(size=(7, 3)).astype(np.float32)
    q = _quantizer(codebook)
    z = rng.normal(size=(2, 4, 5, 3)).astype(np.float32)
    out, idx = q(z, return_indices=True)
    expected = ((z[..., None, :] - codebook) ** 2).sum(-1).argmin(-1)  # (2, 4, 5)
    np.testing.assert_array_equal(idx, expected)
    assert idx.dtype == "int32" and tuple(idx.shape) == (2, 4, 5)
    np.testing.assert_allclose(out, codebook[expected], atol=1e-6)
    np.testing.assert_array_equal(q.codes(z), expected)
    np.testing.assert_allclose(q.lookup(expected), codebook[expected], atol=0)
    flat = z.reshape(-1, 3)  # (N, D) works the same
    np.testing.assert_array_equal(q(flat, return_indices=True)[1], expected.ravel())
    # straight-through: d(sum(w * out))/dz = w (the identity), the codebook gets no gradient from it
    w = tf.constant(rng.normal(size=z.shape).astype(np.float32))
    zt = tf.constant(z)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(zt)
        y = tf.reduce_sum(w * q(zt))
    np.testing.assert_allclose(tape.gradient(y, zt), w, atol=1e-6)
    assert tape.gradient(y, q.codebook.value) is None


def test_codebook_and_commitment_losses_match_a_hand_computation():
    import tensorflow as tf

    codebook = np.array([[0.0, 0.0], [1.0, 1.0], [3.0, -1.0]], np.float32)
    z = np.array([[0.2, -0.1], [0.9, 1.5], [2.0, -2.0], [0.6, 0.6]], np.float32)  # codes 0, 1, 2, 1
    e = codebook[[0, 1, 2, 1]]
    sq = float(np.mean((z - e) ** 2))
    q = _quantizer(codebook, beta=0.25)
    zt = tf.constant(z)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(zt)
        q(zt)
        (loss,) = q.losses
    assert float(loss) == pytest.approx(1.25 * sq, rel=1e-6)  # ||sg z - e||^2 + beta ||z - sg e||^2
    # the codebook term moves the codes towards z; the commitment term moves z towards its codes
    n = z.size
    np.testing.assert_allclose(tape.gradient(loss, zt), 0.25 * 2 * (z - e) / n, atol=1e-7)
    grad_e = np.zeros_like(codebook)
    np.add.at(grad_e, [0, 1, 2, 1], 2 * (e - z) / n)
    np.testing.assert_allclose(tf.convert_to_tensor(tape.gradient(loss, q.codebook.value)), grad_e, atol=1e-7)
    ema = _quantizer(codebook, beta=0.25, ema=True)
    ema(z)
    assert float(ema.losses[0]) == pytest.approx(0.25 * sq, rel=1e-6)  # commitment only
    assert not ema.trainable_weights


def test_ema_codebook_update_matches_numpy():
    rng = np.random.default_rng(1)
    k, d, decay, eps = 4, 2, 0.9, 1e-5
    codebook = rng.normal(size=(k, d)).astype(np.float32)
    q = _quantizer(codebook, ema=True, decay=decay, epsilon=eps)
    size, total_sum, book = np.ones(k), codebook.astype(np.float64), codebook.astype(np.float64)
    for step in range(3):
        z = rng.normal(size=(3, 2, d)).astype(np.float32)
        q(z, training=False)  # no update outside training
        np.testing.assert_allclose(q.codebook, book, atol=1e-5)
        q(z, training=True)
        flat = z.reshape(-1, d).astype(np.float64)
        idx = ((flat[:, None] - book) ** 2).sum(-1).argmin(1)
        onehot = np.eye(k)[idx]
        size = decay * size + (1 - decay) * onehot.sum(0)
        total_sum = decay * total_sum + (1 - decay) * onehot.T @ flat
        n = size.sum()
        book = total_sum / ((size + eps) / (n + k * eps) * n)[:, None]
        np.testing.assert_allclose(q.cluster_size, size, rtol=1e-5)
        np.testing.assert_allclose(q.code_sum, total_sum, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(q.codebook, book, rtol=1e-4, atol=1e-5)


def test_prior_counts_smoothing_and_draws():
    from kerasdl.tasks.vqvae import code_stats, count_codes, draw_codes, smoothed_log_probs

    codes = np.array([[[0, 1]], [[0, 2]], [[0, 2]]])  # (N=3, 1, 2) grids, K = 3
    counts = count_codes(codes, 3)
    np.testing.assert_array_equal(counts, [[[3, 0, 0], [0, 1, 2]]])
    p = np.exp(smoothed_log_probs(counts))
    np.testing.assert_allclose(p, [[[4 / 6, 1 / 6, 1 / 6], [1 / 6, 2 / 6, 3 / 6]]], rtol=1e-6)  # add-one
    entropy = -(0.5 * np.log(0.5) + (1 / 6) * np.log(1 / 6) + (1 / 3) * np.log(1 / 3))  # codes 0, 1, 2 of K = 4
    assert code_stats(codes, 4) == pytest.approx((np.exp(entropy), 0.75))
    draws = np.asarray(draw_codes(smoothed_log_probs(counts), 4000, 5))
    assert draws.shape == (4000, 1, 2) and draws.dtype == np.int32
    np.testing.assert_allclose(np.bincount(draws[:, 0, 1], minlength=3) / 4000, p[0, 1], atol=0.03)
    np.testing.assert_array_equal(draws, draw_codes(smoothed_log_probs(counts), 4000, 5))


def test_registry_entries_shapes_and_refusals():
    from kerasdl.models import build_model, model_info

    enc, dec = model_info("vq_encoder"), model_info("vq_decoder")
    assert (enc.role, enc.family, enc.companion, enc.required) == ("encoder", "vqvae", "vq_decoder",
                                                                   ("input_shape", "latent_dim"))
    assert (dec.role, dec.required) == ("decoder", ("latent_dim", "output_shape"))
    assert {"filters", "res_filters", "res_blocks", "stages"} <= set(enc.overrides)
    e = build_model("vq_encoder", latent_dim=5, **TINY)
    d = build_model("vq_decoder", latent_dim=5, output_shape=(28, 28, 1), **TINY)
    assert tuple(e.output_shape) == (None, 7, 7, 5) and tuple(d.input_shape) == (None, 7, 7, 5)
    assert tuple(d.output_shape) == (None, 28, 28, 1)
    assert tuple(build_model("vq_encoder", input_shape=(32, 32, 3), latent_dim=2, stages=3, **TINY).output_shape) \
        == (None, 4, 4, 2)
    names = [layer.name for layer in e.layers + d.layers]
    assert {"down1_conv", "res1_conv1", "res1_add", "code_conv", "up1_conv", "output_conv"} <= set(names)
    with pytest.raises(KerasdlUsageError, match="divisible by 4") as err:
        build_model("vq_encoder", input_shape=(30, 30, 1), latent_dim=2)
    assert "\n" not in str(err.value)
    with pytest.raises(KerasdlUsageError, match="needs \\(height, width, channels\\) images"):
        build_model("vq_encoder", input_shape=(10,), latent_dim=2)


# --------------------------------------------------------------------------- one tiny run

@pytest.fixture(scope="module")
def vq_run(data_dir, tmp_path_factory):
    """A tiny VQ-VAE on digits (8x8x1 -> a 2x2 grid of codes), one epoch."""
    from kerasdl.config import RunConfig
    from kerasdl.training import train

    out = tmp_path_factory.mktemp("vq")
    result = train(RunConfig(task="vqvae", dataset="digits", epochs=1, batch_size=64, output_dir=str(out), name="vq",
                             model_options=TINY, calibrate=False,
                             task_options={"latent_dim": 4, "codebook_size": 8, "eval_samples": 50,
                                           "sample_every": 0}), progress=False)
    return result.run_dir


def test_run_reports_quality_and_codebook_figures(vq_run):
    from kerasdl import runs

    record = runs.read_json(runs.path(vq_run, runs.METRICS))
    test = record["test"]
    assert {"fid", "kid", "kid_std", "precision", "recall", "floor", "ceiling"} <= set(test)
    assert 0.0 < test["codebook_usage"] <= 1.0 and 1.0 <= test["perplexity"] <= 8.0
    assert test["latent_grid"] == [2, 2] and test["reconstruction_mse"] > 0 and test["prior_nll"] > 0
    assert {"plots/samples.png", "plots/reconstructions.png"} <= set(test["plots"])
    assert record["prior"]["grid"] == [2, 2] and record["prior"]["train_codes"] > 0
    history = open(runs.path(vq_run, runs.HISTORY)).readline()
    for key in ("reconstruction", "vq_loss", "perplexity", "codebook_usage", "val_loss", "val_perplexity"):
        assert key in history.split(","), history
    with np.load(os.path.join(vq_run, "prior.npz"), allow_pickle=False) as f:
        assert f["counts"].shape == (2, 2, 8) and int(f["counts"][0, 0].sum()) == record["prior"]["train_codes"]


def test_prior_survives_load_run_and_samples_are_reproducible(vq_run, tmp_path):
    from kerasdl import api
    from kerasdl.runs.load import load_run

    run = load_run(vq_run)  # a fresh task: no cached prior
    task = run.task
    key = task.fingerprint(run.model)
    stored = task._stored_prior(key)
    assert stored is not None
    np.testing.assert_array_equal(stored, task.fit_prior(run.model))  # fitting again gives the same counts
    a, _ = api.sample(vq_run, n=6, seed=3, out="", npz=str(tmp_path / "a.npz"))
    b, _ = api.sample(vq_run, n=6, seed=3, out="")
    c, _ = api.sample(vq_run, n=6, seed=4, out="")
    assert a.shape == (6, 8, 8, 1) and 0.0 <= a.min() and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with np.load(tmp_path / "a.npz") as f:
        assert f["z"].shape == (6, 2, 2) and f["z"].dtype == np.int32
    # the trainable (rebuilt) model draws what the inference model draws
    rebuilt = task.rebuild()
    rebuilt.load_weights(os.path.join(vq_run, "checkpoints", "best.weights.h5"))
    np.testing.assert_allclose(task.generate(rebuilt, 6, 3), task.generate(run.model, 6, 3), atol=1e-6)


def test_export_signatures_match_the_api(vq_run):
    import tensorflow as tf

    from kerasdl import api
    from kerasdl.runs.load import load_run

    run = load_run(vq_run)
    eps = run.task.endpoints(run.model, vq_run)
    assert list(eps) == ["serving_default", "encode", "decode", "sample"]
    fn = {name: tf.function(e.fn, input_signature=e.input_signature) for name, e in eps.items()}
    exported = fn["sample"](tf.constant(5), tf.constant(9))
    images, _ = api.sample(vq_run, n=5, seed=9, out="")
    np.testing.assert_allclose(images, exported["samples"], atol=1e-5)
    np.testing.assert_array_equal(run.task.prior(5, 9), exported["codes"])
    raw = tf.constant(np.random.default_rng(0).integers(0, 17, (3, 8, 8, 1)).astype(np.uint8))
    codes = fn["encode"](raw)["codes"]
    assert codes.dtype == tf.int32 and tuple(codes.shape) == (3, 2, 2)
    np.testing.assert_allclose(fn["decode"](codes)["reconstruction"], fn["serving_default"](raw)["reconstruction"],
                               atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="codes must be in"):
        fn["decode"](tf.fill([1, 2, 2], 8))


def _info(shape=(8, 8, 1)):
    from kerasdl.data import DatasetInfo

    return DatasetInfo(name="tiny", source="npz", task="classification", input_shape=shape, raw_dtype="uint8",
                       num_classes=3, class_names=["a", "b", "c"], splits={"train": 32, "validation": 16, "test": 16},
                       mean=0.0, std=255.0)


def test_ema_model_trains_its_codebook_without_gradients(tmp_path):
    import keras
    import tensorflow as tf

    from kerasdl.config import RunConfig
    from kerasdl.tasks import get_task

    task = get_task("vqvae", RunConfig(model="vq_encoder", task="vqvae", model_options=TINY,
                                       task_options={"latent_dim": 3, "codebook_size": 6, "ema": True}), _info())
    task.check()
    keras.utils.set_random_seed(0)
    x = (np.random.default_rng(0).random((32, 8, 8, 1)) < 0.3).astype("float32")
    ds = task.prepare(tf.data.Dataset.from_tensor_slices((x, np.zeros(32, "int32"))).batch(16), "train")
    model = task.build()
    quantizer = model.quantizer
    assert all("codebook" not in v.path for v in model.trainable_weights)
    before = np.array(quantizer.codebook)
    task.compile(model, keras.optimizers.Adam(1e-3), ds, ds)
    history = model.fit(ds, validation_data=ds, epochs=1, verbose=0).history
    assert {"loss", "reconstruction", "vq_loss", "perplexity", "codebook_usage", "val_vq_loss"} <= set(history)
    assert not np.allclose(before, quantizer.codebook)  # moved by the moving averages
    np.testing.assert_allclose(np.array(quantizer.cluster_size).sum(), 6 * 0.99**2 + 2 * 16 * 4 * (1 - 0.99) * 0.995,
                               rtol=0.02)  # two updates of 64 vectors each, from ones
    model.save_weights(str(tmp_path / "w.weights.h5"))  # what load_run reads back
    rebuilt = task.rebuild()
    rebuilt.load_weights(str(tmp_path / "w.weights.h5"))
    inference = task.inference_model(rebuilt)
    np.testing.assert_allclose(inference(x[:4]), task.inference_model(model)(x[:4]), atol=1e-6)


def test_task_refusals_are_one_line():
    from kerasdl.config import RunConfig
    from kerasdl.tasks import get_task

    info = _info((30, 30, 1))
    cases = [
        (lambda: get_task("vqvae", RunConfig(model="vq_encoder", task="vqvae"), info).check(), "divisible by 4"),
        (lambda: get_task("vqvae", RunConfig(model="lenet5", task="vqvae"), info).check(), "is a classifier"),
        (lambda: get_task("vqvae", RunConfig(task="vqvae", monitor="val_accuracy"), info).monitor(), "not logged"),
        (lambda: get_task("vqvae", RunConfig(task="vqvae", task_options={"decay": 1.0}), info), "decay must be"),
    ]
    for make, message in cases:
        with pytest.raises(KerasdlUsageError, match=message) as err:
            make()
        assert "\n" not in str(err.value)
