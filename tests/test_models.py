"""Tests for the model registry, the activations and the first builders (kerasdl.models).

Fast: tiny batches, one training step per model; the two real-data checks train on the
1,797 scikit-learn digits (bundled with scikit-learn, no download) for a few seconds.
"""

from __future__ import annotations

import json
import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

from kerasdl.errors import KerasdlUsageError, UnknownNameError
from kerasdl.models import ACTIVATIONS, ModelInfo, build_model, list_models, model_info
from kerasdl.models import registry
from zoohelpers import checked_in_full, full_zoo_param
from kerasdl.models.activations import (
    Maxout,
    activation_layer,
    resolve_activation,
    units_multiplier,
)

MODELS = [n for n in list_models() if not model_info(n).is_component]  # components: tests/test_autoencoders.py

# Keras' automatic layer names (what a layer gets when the builder forgets `name=`).
AUTO_NAME = re.compile(
    r"^(input_layer|dense|conv2d|flatten|dropout|batch_normalization|max_pooling2d|"
    r"average_pooling2d|activation|leaky_re_lu|p_re_lu|elu|re_lu|maxout|"
    r"global_average_pooling2d|global_max_pooling2d)(_\d+)?$"
)
HIERARCHICAL = re.compile(r"^[a-z]+\d*_[a-z0-9_]+$")  # block_role, e.g. dense1_linear


def _batch(shape, n=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def _weights(model):
    return [np.array(w) for w in model.trainable_weights]


# --------------------------------------------------------------------------- registry / zoo


def test_registry_lists_the_first_families():
    assert MODELS == sorted(MODELS)
    assert {"logistic", "mlp", "lenet5"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_zoo_builds_outputs_logits_and_trains_one_step(name):
    info = model_info(name)
    shape, k = info.smoke_input_shape, info.default_num_classes
    model = build_model(name, input_shape=shape, num_classes=k)
    assert isinstance(model, keras.Model) and model.name == name
    x = _batch(shape, n=8)
    y = np.arange(8) % k
    # Segmentation models output per-pixel logits (B, H, W, K) and train on per-pixel labels.
    out_shape = (8, k)
    if info.task == "segmentation":
        out_shape = (8, *model.output_shape[1:3], k)
        y = np.arange(np.prod(out_shape[:-1])).reshape(out_shape[:-1]) % k

    logits = np.asarray(model(x, training=False))
    assert logits.shape == out_shape
    assert np.all(np.isfinite(logits))
    # Logits, not probabilities: a linear last layer, and rows that are not a distribution.
    last = model.layers[-1]
    assert last.name == "head_logits"
    assert last.activation is keras.activations.linear
    assert not np.allclose(logits.sum(axis=-1), 1.0)

    if not checked_in_full(name):  # its blocks train in a shallower sibling (tests/zoohelpers.py)
        return
    # Eager: one step of a 200-layer net traced into a graph costs a minute on 2 CPUs, eagerly
    # a second or two -- and the gradient it checks is the same.
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,
    )
    before = _weights(model)
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    after = _weights(model)
    assert any(not np.allclose(b, a) for b, a in zip(before, after)), "no weight changed"
    # Every trainable weight received a gradient (no dead branch in the graph).
    assert all(not np.array_equal(b, a) for b, a in zip(before, after) if b.ndim == 2)


@pytest.mark.parametrize("name", [full_zoo_param(n) for n in MODELS])  # the family's head: one per family
def test_regression_head_has_one_linear_output(name):
    shape = model_info(name).smoke_input_shape
    model = build_model(name, input_shape=shape, num_classes=1)
    x = _batch(shape)
    out = np.asarray(model(x))
    expected = (4, 1)
    if model_info(name).task == "segmentation":  # one value per pixel
        expected = (4, *model.output_shape[1:3], 1)
    assert out.shape == expected and np.all(np.isfinite(out))


@pytest.mark.parametrize("name", MODELS)
def test_model_info_fields(name):
    info = model_info(name)
    assert isinstance(info, ModelInfo) and info.name == name
    assert info.family and info.task and info.paper and info.notes
    assert isinstance(info.default_input_shape, tuple)
    assert all(d > 0 for d in info.default_input_shape)
    assert info.default_num_classes >= 1
    assert {"include_top", "pooling", "name"} <= set(info.overrides)
    d = info.to_dict()
    assert set(d) == {
        "name", "family", "task", "paper", "default_input_shape",
        "default_num_classes", "notes", "overrides", "smoke_input_shape",
    }
    # Serialisable as-is for the CLI / run directories.
    assert json.loads(json.dumps(d)) == d
    assert yaml.safe_load(yaml.safe_dump(d)) == d


def _variants():
    yield "logistic", {}
    yield "mlp", {}
    yield "mlp", dict(batch_norm=True, dropout=[0.1, 0.2], input_dropout=0.2, activation="maxout")
    yield "mlp", dict(activation="prelu", include_top=False)
    yield "lenet5", {}
    yield "lenet5", dict(activation="leaky_relu", pool_type="avg", dropout=0.5)
    yield "lenet5", dict(activation={"name": "maxout", "k": 3}, include_top=False, pooling="max")


@pytest.mark.parametrize("name,overrides", list(_variants()))
def test_every_layer_has_a_hierarchical_name(name, overrides):
    model = build_model(name, input_shape=(28, 28, 1), num_classes=10, **overrides)
    names = [layer.name for layer in model.layers]
    assert names[0] == "input"
    for layer_name in names[1:]:
        assert not AUTO_NAME.match(layer_name), f"auto-named layer {layer_name!r} in {names}"
        assert HIERARCHICAL.match(layer_name), f"{layer_name!r} is not block_role"


# --------------------------------------------------------------------------- parameter counts


def test_lenet5_has_the_published_61706_parameters():
    assert build_model("lenet5", input_shape=(28, 28, 1), num_classes=10).count_params() == 61_706
    # The paper's tanh + average pooling flavour changes no parameter count.
    paper = build_model("lenet5", input_shape=(28, 28, 1), num_classes=10,
                        activation="tanh", pool_type="avg")
    assert paper.count_params() == 61_706


def test_lenet5_other_input_sizes():
    # 32x32x3: conv1 5*5*3*6+6=456; 32->16 -> valid 12 -> 6; flatten 6*6*16=576.
    cifar = build_model("lenet5", input_shape=(32, 32, 3), num_classes=10)
    assert cifar.get_layer("conv2_pool").output.shape == (None, 6, 6, 16)
    assert cifar.count_params() == 456 + 2416 + (576 * 120 + 120) + 10164 + 850
    # 8x8 (sklearn digits): second conv switches to 'same': 8 -> 4 -> 4 -> 2.
    digits = build_model("lenet5", input_shape=(8, 8, 1), num_classes=10)
    assert digits.get_layer("conv2_conv").output.shape == (None, 4, 4, 16)
    assert digits.count_params() == 156 + 2416 + (64 * 120 + 120) + 10164 + 850
    assert np.asarray(digits(_batch((8, 8, 1)))).shape == (4, 10)


def test_logistic_has_7850_parameters():
    assert build_model("logistic", input_shape=(28, 28, 1), num_classes=10).count_params() == 7_850
    assert build_model("logistic", input_shape=(13,), num_classes=1).count_params() == 14


def test_mlp_parameter_counts_by_hand():
    def count(**kw):
        return build_model("mlp", input_shape=(28, 28, 1), num_classes=10, **kw).count_params()

    # 784-128-128-10: (784*128 + 128) + (128*128 + 128) + (128*10 + 10)
    assert count() == 118_282
    # Maxout, k=2: each hidden Dense is 2*128 wide, the max brings it back to 128.
    assert count(activation="maxout") == (784 * 256 + 256) + (128 * 256 + 256) + (128 * 10 + 10)
    assert count(activation={"name": "maxout", "k": 3}) == (
        (784 * 384 + 384) + (128 * 384 + 384) + 1290
    )
    # Per-layer widths; depth follows the list: 784-300-100-10 (LeCun's classic MLP).
    assert count(width=[300, 100]) == (784 * 300 + 300) + (300 * 100 + 100) + (100 * 10 + 10)
    # Batch norm: no Dense bias; gamma, beta (+ 2 non-trainable moving stats) per unit.
    bn = build_model("mlp", input_shape=(28, 28, 1), num_classes=10, batch_norm=True)
    trainable = sum(int(np.prod(w.shape)) for w in bn.trainable_weights)
    assert trainable == 784 * 128 + 2 * 128 + 128 * 128 + 2 * 128 + 1290
    assert bn.count_params() == trainable + 2 * 2 * 128
    # PReLU learns one slope per unit.
    assert count(activation="prelu") == 118_282 + 2 * 128
    # depth=0 is logistic regression.
    assert count(depth=0) == 7_850


# --------------------------------------------------------------------------- activations

X = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 2.0], dtype="float32")
_sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
_erf = np.vectorize(math.erf)
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805

REFERENCE = {
    "identity": lambda x: x,
    "linear": lambda x: x,
    "binary_step": lambda x: (x >= 0).astype("float32"),
    "sigmoid": _sig,
    "tanh": np.tanh,
    "arctan": np.arctan,
    "relu": lambda x: np.maximum(x, 0),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "prelu": lambda x: np.where(x >= 0, x, 0.25 * x),  # initial slope 0.25 (He et al. 2015)
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "maxout": lambda x: x.reshape(-1, 3, 2).max(axis=-1),  # pairs of consecutive features
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))),
    "silu": lambda x: x * _sig(x),
    "swish": lambda x: x * _sig(x),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1)),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "hard_sigmoid": lambda x: np.clip((x + 3) / 6, 0, 1),
}


def test_every_activation_has_a_reference():
    assert set(ACTIVATIONS) == set(REFERENCE)
    assert list(ACTIVATIONS) == sorted(ACTIVATIONS)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_numpy(name):
    layer = activation_layer(name, name_prefix="block1")
    assert layer.name == "block1_act"
    x = X[None, :]  # (1, 6)
    got = np.asarray(layer(x))
    np.testing.assert_allclose(got, REFERENCE[name](x), rtol=1e-5, atol=1e-6)


def test_activation_options():
    x = X[None, :]
    leaky = activation_layer({"name": "leaky_relu", "alpha": 0.2}, name_prefix="a")
    np.testing.assert_allclose(np.asarray(leaky(x)), np.where(x >= 0, x, 0.2 * x), rtol=1e-6)
    elu = activation_layer({"name": "elu", "alpha": 0.5}, name_prefix="b")
    np.testing.assert_allclose(np.asarray(elu(x)), np.where(x > 0, x, 0.5 * (np.exp(x) - 1)),
                               rtol=1e-5)
    assert resolve_activation("Swish") == ("silu", {})
    assert resolve_activation("leaky_relu") == ("leaky_relu", {"alpha": 0.01})
    assert units_multiplier("maxout") == 2
    assert units_multiplier({"name": "maxout", "k": 4}) == 4
    assert units_multiplier("relu") == 1


def test_maxout_semantics():
    # Output unit i = max over features i*k .. i*k+k-1, on any rank.
    x = np.array([[1.0, 5.0, 3.0, 2.0, -1.0, -4.0]], "float32")
    np.testing.assert_array_equal(np.asarray(Maxout(k=2)(x)), [[5.0, 3.0, -1.0]])
    np.testing.assert_array_equal(np.asarray(Maxout(k=3)(x)), [[5.0, 2.0]])
    maps = np.arange(2 * 3 * 3 * 4, dtype="float32").reshape(2, 3, 3, 4)  # (B, H, W, 4)
    out = np.asarray(Maxout(k=2)(maps))
    assert out.shape == (2, 3, 3, 2)
    np.testing.assert_array_equal(out, maps.reshape(2, 3, 3, 2, 2).max(axis=-1))
    with pytest.raises(KerasdlUsageError, match="divisible"):
        Maxout(k=4)(x)


def test_binary_step_gradient_is_zero():
    layer = activation_layer("binary_step", name_prefix="step")
    x = tf.constant(X)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(layer(x))
    grad = tape.gradient(y, x)
    assert grad is not None
    np.testing.assert_array_equal(grad.numpy(), np.zeros_like(X))


@pytest.mark.parametrize("activation", ["binary_step", "prelu", "maxout", "arctan", "hard_sigmoid"])
def test_mlp_trains_with_activation(activation):
    model = build_model("mlp", input_shape=(6,), num_classes=3, width=8, activation=activation)
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = _weights(model)
    assert np.isfinite(model.train_on_batch(_batch((6,), n=8), np.arange(8) % 3))
    # The head always learns (even behind binary_step, whose own gradient is zero).
    head = [w.path for w in model.trainable_weights].index("head_logits/kernel")
    assert not np.allclose(before[head], _weights(model)[head])


def test_unknown_activation_and_options():
    with pytest.raises(UnknownNameError, match="did you mean 'relu'"):
        activation_layer("rellu", name_prefix="x")
    with pytest.raises(UnknownNameError, match="valid options: alpha"):
        resolve_activation({"name": "leaky_relu", "beta": 1})
    with pytest.raises(KerasdlUsageError, match=r"Received: k=0"):
        resolve_activation({"name": "maxout", "k": 0})
    with pytest.raises(UnknownNameError, match="unknown activation"):
        build_model("mlp", input_shape=(4,), num_classes=2, activation="sigmoidd")


# --------------------------------------------------------------------------- errors


def test_unknown_model_name_suggests_the_closest():
    with pytest.raises(UnknownNameError) as err:
        build_model("lenet", input_shape=(28, 28, 1), num_classes=10)
    assert err.value.suggestions[0] == "lenet5"
    assert "did you mean 'lenet5'" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UnknownNameError):
        model_info("resnet9000")


def test_unknown_override_names_the_valid_keywords():
    with pytest.raises(KerasdlUsageError) as err:
        build_model("mlp", input_shape=(28, 28, 1), num_classes=10, widht=64)
    message = str(err.value)
    assert "'widht'" in message and "did you mean 'width'" in message
    for keyword in model_info("mlp").overrides:
        assert keyword in message
    assert "\n" not in message


@pytest.mark.parametrize("shape", [(4,), (4, 4, 1), (28, 28), (7, 28, 1)])
def test_lenet5_rejects_inputs_it_cannot_take(shape):
    with pytest.raises(KerasdlUsageError) as err:
        build_model("lenet5", input_shape=shape, num_classes=10)
    message = str(err.value)
    assert message.startswith("lenet5 needs an image input of shape (height, width, channels)")
    assert message.endswith(f"Received: input_shape={shape}")
    assert "\n" not in message


def test_lenet5_error_message_exact():
    with pytest.raises(KerasdlUsageError) as err:
        build_model("lenet5", input_shape=(4,), num_classes=10)
    assert str(err.value) == (
        "lenet5 needs an image input of shape (height, width, channels) with height and "
        "width >= 8. Received: input_shape=(4,)"
    )


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        (dict(input_shape=(0, 3), num_classes=2), "Received: input_shape=(0, 3)"),
        (dict(input_shape="abc", num_classes=2), "Received: input_shape='abc'"),
        (dict(input_shape=(4,), num_classes=0), "Received: num_classes=0"),
        (dict(input_shape=(4,), num_classes=2, width=[8, 8], depth=3), "depth=3"),
        (dict(input_shape=(4,), num_classes=2, dropout=1.0), "Received: dropout=1.0"),
        (dict(input_shape=(4,), num_classes=2, width=0), "Received: width=0"),
        (dict(input_shape=(4,), num_classes=2, pooling="avg"), "Received: pooling='avg'"),
        (dict(input_shape=(4,), num_classes=2, kernel_initializer="nope"), "kernel_initializer"),
        (dict(input_shape=(4,), num_classes=2, l2=-1), "Received: l2=-1"),
    ],
)
def test_bad_values_give_one_line_usage_errors(kwargs, fragment):
    with pytest.raises(KerasdlUsageError) as err:
        build_model("mlp", **kwargs)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_lenet_bad_options():
    with pytest.raises(KerasdlUsageError, match="Received: pool_type='min'"):
        build_model("lenet5", input_shape=(28, 28, 1), num_classes=10, pool_type="min")
    with pytest.raises(KerasdlUsageError, match="include_top=False"):
        build_model("lenet5", input_shape=(28, 28, 1), num_classes=10, pooling="avg")


# --------------------------------------------------------------------------- options


def test_include_top_false_gives_features():
    x = _batch((28, 28, 1))

    def features(name, **kw):
        model = build_model(name, input_shape=(28, 28, 1), num_classes=10, include_top=False, **kw)
        assert "head_logits" not in [layer.name for layer in model.layers]
        return np.asarray(model(x)).shape

    assert features("lenet5") == (4, 5, 5, 16)
    assert features("lenet5", pooling="avg") == (4, 16)
    assert features("lenet5", pooling="max") == (4, 16)
    assert features("mlp") == (4, 128)
    assert features("mlp", width=[64, 32]) == (4, 32)
    assert features("mlp", activation="maxout") == (4, 128)
    assert features("logistic") == (4, 784)


def test_name_override_and_int_input_shape():
    model = build_model("mlp", input_shape=13, num_classes=3, name="my_mlp")
    assert model.name == "my_mlp" and model.input_shape == (None, 13)
    # With no positional name, name= is the registry name (keyword-style callers).
    assert build_model(name="lenet5", input_shape=[8, 8, 1], num_classes=2).name == "lenet5"
    with pytest.raises(KerasdlUsageError, match="my_lenet needs an image input"):
        build_model("lenet5", input_shape=(4,), num_classes=2, name="my_lenet")


def test_mlp_options_build_the_layers_they_name():
    model = build_model("mlp", input_shape=(20,), num_classes=2, width=[16, 8, 4],
                        dropout=[0.0, 0.3, 0.0], batch_norm=True, input_dropout=0.1)
    names = [layer.name for layer in model.layers]
    assert names == [
        "input", "input_flatten", "input_dropout",
        "dense1_linear", "dense1_bn", "dense1_act",
        "dense2_linear", "dense2_bn", "dense2_act", "dense2_dropout",
        "dense3_linear", "dense3_bn", "dense3_act",
        "head_logits",
    ]
    assert model.get_layer("dense2_dropout").rate == 0.3
    assert model.get_layer("dense1_linear").use_bias is False


def test_custom_layers_survive_save_and_load(tmp_path):
    model = build_model("mlp", input_shape=(6,), num_classes=3, width=[8, 8, 8],
                        activation={"name": "maxout", "k": 3})
    other = build_model("mlp", input_shape=(6,), num_classes=3, activation="binary_step",
                        name="step_mlp")
    arctan = build_model("lenet5", input_shape=(8, 8, 1), num_classes=3, activation="arctan")
    for m, shape in [(model, (6,)), (other, (6,)), (arctan, (8, 8, 1))]:
        path = tmp_path / f"{m.name}.keras"
        m.save(path)
        reloaded = keras.models.load_model(path)
        x = _batch(shape)
        np.testing.assert_allclose(np.asarray(reloaded(x)), np.asarray(m(x)), rtol=1e-6)


def test_registering_a_new_family():
    def Tiny(input_shape, num_classes, *, units=4, include_top=True, pooling=None, name="tiny"):
        inputs = keras.Input(input_shape, name="input")
        x = keras.layers.Dense(num_classes, name="head_logits")(inputs)
        return keras.Model(inputs, x, name=name)

    try:
        @registry.register_model("tiny_test", builder=Tiny, family="tiny", task="classification",
                                 paper="none", default_input_shape=(3,), default_num_classes=2)
        def tiny_test(input_shape, num_classes, **overrides):
            return Tiny(input_shape, num_classes, **{"name": "tiny_test", **overrides})

        assert "tiny_test" in list_models()
        assert model_info("tiny_test").overrides == ("include_top", "name", "pooling", "units")
        assert build_model("tiny_test", input_shape=(3,), num_classes=2).name == "tiny_test"
        with pytest.raises(ValueError, match="already registered"):
            registry.register_model("tiny_test", builder=Tiny, family="tiny", task="c",
                                    paper="none", default_input_shape=(3,),
                                    default_num_classes=2)(tiny_test)
    finally:
        registry._REGISTRY.pop("tiny_test", None)
    assert "tiny_test" not in list_models()


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype("float32")[..., None]  # (1797, 8, 8, 1) in [0, 1]
    y = data.target.astype("int32")
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


@pytest.mark.parametrize("name,epochs,threshold", [("mlp", 8, 0.93), ("lenet5", 10, 0.93)])
def test_default_models_learn_the_digits(digits, name, epochs, threshold):
    (x_train, y_train), (x_test, y_test) = digits
    keras.utils.set_random_seed(0)
    model = build_model(name, input_shape=(8, 8, 1), num_classes=10)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy >= threshold, f"{name}: test accuracy {accuracy:.3f} < {threshold}"
