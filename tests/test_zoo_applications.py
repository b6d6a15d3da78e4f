"""The zoo computes the same function as its keras.applications twins, and loads their weights.

For every kerasdl model that shares a name with a keras.applications model
(:data:`kerasdl.engine.pretrained.IMAGENET_TWINS`): build keras.applications' model with random weights
(``weights=None``) at a small input, copy its weights into ours by position (shapes must agree
one to one: :func:`kerasdl.engine.pretrained.transplant` fails loudly otherwise) and compare the logits
(keras' with ``classifier_activation=None``). BatchNorm statistics are randomised first: at their
initial values (gamma 1, beta 0, mean 0, variance 1) every BN layer is the same function, and two
swapped BN layers would go unnoticed.

``--pretrained imagenet`` / ``build_model(..., weights="imagenet")`` are tested with weight files
written here into a temporary Keras cache (``KERAS_HOME``) from a ``weights=None``
keras.applications model, in keras' legacy HDF5 layout (the one its ImageNet files use): never a
download.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from kerasdl.errors import KerasdlUsageError
from kerasdl.models import build_model, list_models
from zoohelpers import full_zoo_param
from kerasdl.engine.pretrained import (
    IMAGENET_TWINS,
    imagenet_weights_file,
    read_h5_weights,
    transplant,
    weights_from_model,
)

# Cost per pair on 2 CPU cores (build both models, calibrate, transplant, two forward passes),
# measured at load ~2: efficientnet_b7 14.5 s, b6 12.3 s, resnet152 / 152v2 11.4 s, densenet121
# 7.2 s; at load ~5 (two full runs) densenet169 / 201, efficientnet_b7 and resnet152 took 20-31 s. None is marked slow
# (the rule: > 20 s each); the whole file took 4.6 minutes at load ~5.
TOLERANCE = 1e-4  # of the logits' largest magnitude


def _side(name: str) -> int:
    """The smallest input keras.applications accepts (32; Xception needs 71)."""
    return 71 if name == "xception" else 32


def _keras_twin(name: str, shape, **kwargs):
    cls = getattr(keras.applications, IMAGENET_TWINS[name])
    return cls(weights=None, input_shape=shape, **kwargs)


def _randomise_batch_norm(model, x, seed: int = 0) -> None:
    """Give every BatchNormalization layer distinct statistics and scales that fit the data.

    A random deep net at BatchNorm's initial statistics (mean 0, variance 1) shrinks or blows up
    its activations until the logits barely depend on the input, and then a misplaced stride
    hardly shows. So the moving statistics are set to the batch statistics of ``x`` (one
    training-mode pass with momentum 0 and dropout off), then gamma and beta are perturbed.
    """
    saved = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            saved.append((layer, "momentum", layer.momentum))
            layer.momentum = 0.0
        elif isinstance(layer, keras.layers.Dropout):
            saved.append((layer, "rate", layer.rate))
            layer.rate = 0.0
    model(x, training=True)  # moving mean / variance := this batch's
    for layer, key, value in saved:
        setattr(layer, key, value)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.8, 1.2, gamma.shape).astype(gamma.dtype),
                               rng.normal(0, 0.1, beta.shape).astype(beta.dtype), mean, var])


def _inputs(name: str, shape, n: int = 4):
    # EfficientNet is compared with its in-model preprocessing (x / 255, then normalise), so it
    # gets raw 0..255 pixels; the others standardised-looking values.
    high = 255.0 if name.startswith("efficientnet") else 1.0
    low = 0.0 if high > 1 else -1.0
    return np.random.default_rng(1).uniform(low, high, (n, *shape)).astype("float32")


def _ours(name: str, shape, num_classes: int, **kwargs):
    if name.startswith("efficientnet"):
        kwargs.setdefault("include_preprocessing", True)  # as keras.applications always has
    return build_model(name, input_shape=shape, num_classes=num_classes, **kwargs)


def _assert_same_function(ref, ours, x):
    want = np.asarray(ref(x, training=False))
    got = np.asarray(ours(x, training=False))
    assert want.shape == got.shape
    scale = float(np.abs(want).max())
    spread = float(np.abs(want - want.mean(axis=0)).max())
    assert spread > 0.01 * scale, "the logits barely depend on the input: the test would be blind"
    err = float(np.abs(want - got).max())
    assert err <= TOLERANCE * scale, f"max |diff| {err:.3g} vs logits scale {scale:.3g}"


def test_every_keras_applications_name_in_the_zoo_is_a_twin():
    """A zoo name that matches a keras.applications model (case and separators aside) must be in
    IMAGENET_TWINS, so the transplant test below covers it."""
    def norm(s: str) -> str:
        return s.lower().replace("_", "")

    applications = {norm(n) for n in dir(keras.applications) if n[:1].isupper()}
    matching = {n for n in list_models() if norm(n) in applications}
    assert matching == set(IMAGENET_TWINS)


@pytest.mark.parametrize("name", [full_zoo_param(n) for n in sorted(IMAGENET_TWINS)])
def test_same_logits_as_keras_applications_given_the_same_weights(name):
    side = _side(name)
    shape = (side, side, 3)
    keras.utils.set_random_seed(0)
    ref = _keras_twin(name, shape, classes=10, classifier_activation=None)
    x = _inputs(name, shape)
    _randomise_batch_norm(ref, x)
    ours = _ours(name, shape, 10)
    report = transplant(weights_from_model(ref), ours, copy_normalization=True)
    assert report["copied_layers"] == len([layer for layer in ours.layers if layer.weights])
    _assert_same_function(ref, ours, x)


def test_transplant_fails_loudly_on_a_shape_mismatch():
    ref = _keras_twin("vgg16", (32, 32, 3), include_top=False)
    ours = build_model("vgg19", input_shape=(32, 32, 3), num_classes=10, include_top=False)
    with pytest.raises(ValueError, match="weighted layers"):
        transplant(weights_from_model(ref), ours)
    wrong = [(n, [a[..., :1] if a.ndim == 4 else a for a in arrays])
             for n, arrays in weights_from_model(ref)]
    ours16 = build_model("vgg16", input_shape=(32, 32, 3), num_classes=10, include_top=False)
    before = [w.copy() for w in ours16.get_weights()]
    with pytest.raises(ValueError, match="block1_conv1 has weight shapes"):
        transplant(wrong, ours16)
    assert all(np.array_equal(a, b) for a, b in zip(before, ours16.get_weights()))  # nothing set


def test_resnet_v1_5_and_the_paper_v2_layout_keep_their_own_names():
    # resnet50 / resnet50v2 are keras.applications' layouts (the transplant test above); the
    # other downsampling conventions live on under their own names, with the same parameters.
    v15 = build_model("resnet50_v1_5", input_shape=(32, 32, 3), num_classes=10)
    assert v15.get_layer("stage3_block1_conv1").strides == (1, 1)
    assert v15.get_layer("stage3_block1_conv2").strides == (2, 2)  # v1.5: the 3x3
    assert v15.count_params() == 25_636_712 - 2049 * (1000 - 10)  # resnet50's, 10 classes
    paper = build_model("preact_resnet50", input_shape=(32, 32, 3), num_classes=10)
    assert paper.get_layer("stage3_block1_conv2").strides == (2, 2)  # first block, stages 3-5
    assert paper.get_layer("stage2_block3_conv2").strides == (1, 1)
    assert "stage2_block3_shortcut_pool" not in [layer.name for layer in paper.layers]
    assert paper.count_params() == 25_613_800 - 2049 * (1000 - 10)  # resnet50v2's


# --------------------------------------------------------------------------- weights="imagenet"


def _write_legacy_h5(model, path: str) -> None:
    """Write ``model``'s weights in keras' legacy HDF5 layout, as the ImageNet files are."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache in a temporary KERAS_HOME (and HOME), downloads off."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("KERASDL_OFFLINE", "1")
    return tmp_path / "keras"


def _cache(keras_home, name: str, model, include_top: bool) -> str:
    path = str(keras_home / "models" / imagenet_weights_file(name, include_top).file_name)
    _write_legacy_h5(model, path)
    return path


def test_fake_cache_file_reads_like_keras_reads_it(keras_home):
    ref = _keras_twin("vgg16", (32, 32, 3), include_top=False)
    path = _cache(keras_home, "vgg16", ref, include_top=False)
    assert path.endswith("models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    # keras itself loads the file (its legacy loader), and our reader sees the same arrays.
    other = _keras_twin("vgg16", (32, 32, 3), include_top=False)
    other.load_weights(path)
    mine = [a for _, arrays in read_h5_weights(path) for a in arrays]
    assert all(np.array_equal(a, b) for a, b in zip(mine, other.get_weights()))
    assert len(mine) == len(other.get_weights())


def test_imagenet_weights_notop_for_fine_tuning(keras_home):
    keras.utils.set_random_seed(0)
    ref = _keras_twin("resnet50", (32, 32, 3), include_top=False)
    x = _inputs("resnet50", (32, 32, 3))
    _randomise_batch_norm(ref, x)
    _cache(keras_home, "resnet50", ref, include_top=False)
    ours = build_model("resnet50", input_shape=(32, 32, 3), num_classes=10, include_top=False,
                       weights="imagenet")
    _assert_same_function(ref, ours, x)


def test_imagenet_weights_with_the_top(keras_home):
    keras.utils.set_random_seed(0)
    ref = _keras_twin("xception", (71, 71, 3), classifier_activation=None)  # 1000 classes
    x = _inputs("xception", (71, 71, 3))
    _randomise_batch_norm(ref, x)
    _cache(keras_home, "xception", ref, include_top=True)
    ours = build_model("xception", input_shape=(71, 71, 3), num_classes=1000, weights="imagenet")
    _assert_same_function(ref, ours, x)
    # Another class count: the backbone loads, the classifier is new.
    ten = build_model("xception", input_shape=(71, 71, 3), num_classes=10, weights="imagenet")
    assert np.array_equal(ten.get_layer("block14_sepconv2_bn").get_weights()[3],
                          ref.get_layer("block14_sepconv2_bn").get_weights()[3])
    assert ten.get_layer("head_logits").kernel.shape == (2048, 10)


def test_offline_and_not_cached_names_the_file_and_where_to_put_it(keras_home):
    with pytest.raises(KerasdlUsageError) as err:
        build_model("densenet121", input_shape=(32, 32, 3), num_classes=10, include_top=False,
                    weights="imagenet")
    message = str(err.value)
    assert "\n" not in message
    want = keras_home / "models" / "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert str(want) in message
    assert "https://storage.googleapis.com/tensorflow/keras-applications/densenet/" in message


def test_a_model_without_imagenet_weights_lists_those_that_have_them():
    with pytest.raises(KerasdlUsageError, match="no ImageNet weights for model 'resnet18'") as err:
        build_model("resnet18", input_shape=(32, 32, 3), num_classes=10, weights="imagenet")
    assert "resnet50, resnet50v2" in str(err.value) and "efficientnet_b0" in str(err.value)
    with pytest.raises(KerasdlUsageError, match="weights must be None or 'imagenet'"):
        build_model("resnet50", input_shape=(32, 32, 3), num_classes=10, weights="imagenet21k")


def test_train_pretrained_offline_is_one_line_exit_2_before_any_run_folder(keras_home, tmp_path,
                                                                          cli_inprocess):
    proc = cli_inprocess("train", "--model", "resnet50", "--dataset", "digits", "--pretrained",
                         "imagenet", "--epochs", "1", "--output-dir", tmp_path / "runs",
                         cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "resnet50_weights_tf_dim_ordering_tf_kernels.h5" in lines[0], lines
    assert str(keras_home / "models") in lines[0]
    assert not (tmp_path / "runs").exists()
    # A model without ImageNet weights is refused the same way.
    proc = cli_inprocess("train", "--model", "lenet5", "--dataset", "digits", "--pretrained",
                         "imagenet", "--output-dir", tmp_path / "runs", cwd=tmp_path)
    assert proc.returncode == 2 and "no ImageNet weights for model 'lenet5'" in proc.stderr


def test_run_config_pretrained_rules(keras_home):
    from kerasdl.config import RunConfig

    cached = keras_home / "models" / imagenet_weights_file("vgg16").file_name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")  # cached: validate only looks for the file
    RunConfig(model="vgg16", pretrained="imagenet", freeze="backbone").validate()
    with pytest.raises(KerasdlUsageError, match="not both"):
        RunConfig(model="vgg16", pretrained="imagenet", init_from="runs/x").validate()
    with pytest.raises(KerasdlUsageError, match="weights must be None or 'imagenet'"):
        RunConfig(model="vgg16", pretrained="imagenet21k").validate()
    notop = RunConfig(model="vgg16", pretrained="imagenet", model_options={"include_top": False})
    with pytest.raises(KerasdlUsageError, match="vgg16_weights_tf_dim_ordering_tf_kernels_notop"):
        notop.validate()
    with pytest.raises(KerasdlUsageError, match="needs init_from"):
        RunConfig(model="vgg16", freeze="backbone").validate()


def test_weight_files_are_the_ones_keras_applications_downloads():
    """md5 sums as in keras.applications' own source (a typo would fail the hash check only on a
    user's first download), full and _notop in the right order."""
    import importlib
    import inspect

    for name in IMAGENET_TWINS:
        family = name if name.startswith("vgg") else next(  # vgg16.py, vgg19.py; resnet.py, ...
            f for f in ("resnet", "densenet", "efficientnet", "xception") if name.startswith(f))
        module = importlib.import_module(f"keras.src.applications.{family}")
        top, notop = imagenet_weights_file(name, True), imagenet_weights_file(name, False)
        hashes = getattr(module, "WEIGHTS_HASHES", None)
        if hashes is not None:  # resnet / efficientnet: a table of (full, notop) pairs
            key = name.replace("efficientnet_", "")
            assert (top.md5, notop.md5) == hashes[key], name
        else:  # the others: in the get_file calls, full file first
            source = inspect.getsource(module)
            assert source.index(top.md5) < source.index(notop.md5), name
        assert top.file_name.endswith(".h5") and notop.file_name.endswith("_notop.h5")
        assert notop.url == top.url[: -len(".h5")] + "_notop.h5"
