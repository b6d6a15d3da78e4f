"""`kerasdl sample`, `kerasdl encode` and `kerasdl tasks` (issue #14): samples from a VAE run's
prior (same seed, same PNG bytes and arrays, the same codes as the export's sample signature),
codes of input files, and the one-line refusals that write nothing."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from clihelpers import assert_one_line_error


@pytest.fixture(scope="module")
def vae_run(data_dir, tmp_path_factory):
    """One tiny VAE on digits (8x8x1), trained once for the module (a few seconds)."""
    from kerasdl.config import RunConfig
    from kerasdl.training import train

    out = tmp_path_factory.mktemp("gen")
    result = train(RunConfig(task="vae", dataset="digits", epochs=1, batch_size=64, output_dir=str(out), name="vae",
                             task_options={"latent_dim": 2, "iw_samples": 2}, calibrate=False), progress=False)
    return result.run_dir


@pytest.fixture(scope="module")
def classifier_run(vae_run, tmp_path_factory):
    """A classification run's config.yaml and dataset.json (no weights: refused before loading)."""
    from kerasdl import runs

    where = tmp_path_factory.mktemp("cls") / "mlp"
    where.mkdir()
    shutil.copy(runs.path(vae_run, runs.DATASET), where / runs.DATASET)
    config = runs.read_config(vae_run).replace(task="classification", model="mlp", task_options={})
    config.save(str(where / runs.CONFIG))
    return str(where)


def _tree(path) -> set:
    return {os.path.join(d, f) for d, _, files in os.walk(path) for f in files}


def test_sample_same_seed_same_png_and_arrays(vae_run, cli_inprocess, tmp_path):
    a = cli_inprocess("sample", vae_run, "--n", 64, "--seed", 3, "--out", tmp_path / "a.png", "--npz",
                      tmp_path / "a.npz", cwd=tmp_path)
    assert a.returncode == 0, a.stderr
    b = cli_inprocess("sample", vae_run, "--n", 64, "--seed", 3, "--out", tmp_path / "b.png", "--npz",
                      tmp_path / "b.npz", cwd=tmp_path)
    c = cli_inprocess("sample", vae_run, "--n", 64, "--seed", 4, cwd=tmp_path)  # default: <run>/plots/
    assert b.returncode == 0 and c.returncode == 0, b.stderr + c.stderr
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    default = os.path.join(vae_run, "plots", "samples_seed4.png")
    assert os.path.getsize(default) > 1000 and "samples_seed4.png" in c.stdout
    first, second = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert first["images"].shape == (64, 8, 8, 1) and first["z"].shape == (64, 2)
    assert 0.0 <= first["images"].min() and first["images"].max() <= 1.0
    np.testing.assert_array_equal(first["images"], second["images"])
    np.testing.assert_array_equal(first["z"], second["z"])


def test_sample_draws_the_exports_codes(vae_run):
    """The API's draw is the SavedModel sample signature's (stateless normal, seed (seed, 0))."""
    import tensorflow as tf

    from kerasdl import api
    from kerasdl.runs.load import load_run

    run = load_run(vae_run)
    endpoint = run.task.endpoints(run.model, vae_run)["sample"]
    exported = tf.function(endpoint.fn, input_signature=endpoint.input_signature)(tf.constant(5), tf.constant(9))
    np.testing.assert_array_equal(run.task.prior(5, 9), exported["z"])
    images, path = api.sample(vae_run, n=5, seed=9, out="")
    assert path is None
    np.testing.assert_allclose(images, exported["samples"], atol=1e-6)


def test_encode_writes_codes(vae_run, cli_inprocess, tmp_path):
    from sklearn.datasets import load_digits

    from kerasdl import api

    x = load_digits().images[:5].astype(np.uint8)[..., None]
    np.savez(tmp_path / "in.npz", x=x)
    printed = cli_inprocess("encode", vae_run, tmp_path / "in.npz", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.strip().splitlines()
    assert len(lines) == 5 and all(len(line.split("\t")) == 3 for line in lines)
    assert cli_inprocess("encode", vae_run, tmp_path / "in.npz", "-o", tmp_path / "c.npz", cwd=tmp_path).returncode == 0
    assert cli_inprocess("encode", vae_run, tmp_path / "in.npz", "-o", tmp_path / "c.csv", cwd=tmp_path).returncode == 0
    saved = np.load(tmp_path / "c.npz")
    assert saved["codes"].shape == (5, 2) and saved["names"][0].endswith("in.npz[0]")
    np.testing.assert_allclose(saved["codes"], api.encode(vae_run, [str(tmp_path / "in.npz")]), atol=1e-6)
    header = (tmp_path / "c.csv").read_text().splitlines()[0]
    assert header == "input,z0,z1"
    # the codes are the VAE's posterior means, as the export's encode signature returns
    import tensorflow as tf

    from kerasdl.runs.load import load_run

    run = load_run(vae_run)
    endpoint = run.task.endpoints(run.model, vae_run)["encode"]
    z_mean = tf.function(endpoint.fn, input_signature=endpoint.input_signature)(tf.constant(x))["z_mean"]
    np.testing.assert_allclose(saved["codes"], z_mean, atol=1e-5)


def test_refusals_are_one_line_and_write_nothing(vae_run, classifier_run, cli_inprocess, tmp_path):
    before = _tree(classifier_run)
    proc = cli_inprocess("sample", classifier_run, "--out", tmp_path / "s.png", cwd=tmp_path)
    assert_one_line_error(proc, "is a classification run; sample needs a generative run (task diffusion, gan, vae or vqvae)")
    proc = cli_inprocess("encode", classifier_run, tmp_path / "x.npz", "-o", tmp_path / "c.npz", cwd=tmp_path)
    assert_one_line_error(proc, "encode needs a run with an encoder (task autoencoder or vae)")
    proc = cli_inprocess("sample", vae_run, "--n", 0, cwd=tmp_path)
    assert_one_line_error(proc, "--n")
    proc = cli_inprocess("sample", vae_run, "--out", tmp_path / "s.jpg", cwd=tmp_path)
    assert_one_line_error(proc, ".png")
    proc = cli_inprocess("encode", vae_run, tmp_path / "missing.npz", cwd=tmp_path)
    assert_one_line_error(proc, "missing.npz")
    assert _tree(classifier_run) == before and list(tmp_path.iterdir()) == []


def test_predict_refuses_a_vae_run_in_one_line(vae_run, cli_inprocess, tmp_path):
    np.savez(tmp_path / "x.npz", x=np.zeros((2, 8, 8), np.float32))
    proc = cli_inprocess("predict", vae_run, tmp_path / "x.npz", "-o", tmp_path / "p.csv", cwd=tmp_path)
    assert_one_line_error(proc, "is a vae run; predict is for classification, regression and segmentation runs")
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("opts, needle", [
    (("--task-opt", "latent_dim=0"), "latent_dim must be >= 1"),
    (("--task-opt", "bogus=1"), "unknown task option 'bogus'"),
])
def test_train_refuses_bad_task_options(opts, needle, cli_inprocess, tmp_path):
    proc = cli_inprocess("train", "--task", "vae", "--dataset", "digits", "--epochs", 1, *opts, cwd=tmp_path)
    assert_one_line_error(proc, needle)
    assert list(tmp_path.iterdir()) == []  # no runs/ folder


def test_generative_task_needs_images_or_vectors():
    """No offline dataset has other inputs (all are images or vectors), so the check is called
    on a dataset description of shape (10, 5), as the engine does before any folder is made."""
    from kerasdl.config import RunConfig
    from kerasdl.data import DatasetInfo
    from kerasdl.errors import KerasdlUsageError
    from kerasdl.tasks import get_task

    info = DatasetInfo(name="sequences", source="npz", task="classification", input_shape=(10, 5), num_classes=2,
                       class_names=["a", "b"], splits={"train": 8}, raw_dtype="float32", mean=0.0, std=1.0)
    for task in ("vae", "autoencoder"):
        with pytest.raises(KerasdlUsageError, match=r"needs images \(H, W, C\) or flat vectors") as err:
            get_task(task, RunConfig(task=task, dataset="digits"), info).check()
        assert "\n" not in str(err.value)


def test_base_task_refuses_sample_and_encode():
    from kerasdl.errors import KerasdlUsageError
    from kerasdl.tasks.base import Task, refusal, task_attribute, task_class

    assert refusal("autoencoder", "sample", "runs/ae") == (
        "run runs/ae is an autoencoder run; sample needs a generative run (task diffusion, gan, vae or vqvae)")
    for method, args in (("sample", (None, 4, 0)), ("encode", (None, None))):
        with pytest.raises(KerasdlUsageError, match=f"{method} needs"):
            getattr(Task, method)(Task.__new__(Task), *args)
    for name in ("classification", "autoencoder", "vae"):  # read from source == imported
        cls = task_class(name)
        assert (task_attribute(name, "generative"), task_attribute(name, "encodes")) == (cls.generative, cls.encodes)


def test_tasks_listing(cli_inprocess, tmp_path):
    proc = cli_inprocess("tasks", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("\t")[0]: line.split("\t") for line in proc.stdout.splitlines()}
    assert rows["name"] == ["name", "data", "default model", "commands", "summary", "paper", "--task-opt"]
    assert rows["vae"][3] == "sample, encode" and "latent_dim=16" in rows["vae"][6] and "beta=1.0" in rows["vae"][6]
    assert "Kingma" in rows["vae"][5] and rows["classification"][3] == "-"
