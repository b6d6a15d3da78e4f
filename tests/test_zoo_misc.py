"""Tests for the highway, cnn1d, cnn (spec string) and unet families.

Parameter counts against the published figures (U-Net, the keras.io MNIST convnet) and by
hand, shapes at small inputs, feature extraction, one-line errors, layer names, and what
each family is for: a highway layer's gate formula and near-identity start, the spec
grammar, the U-Net skip crops, and three tiny models that learn a synthetic task.
"""

from __future__ import annotations

import numpy as np
import pytest
import keras

from kerasdl.errors import KerasdlUsageError
from kerasdl.models import build_model, model_info

# Prefixes every layer name of these families starts with (no Keras auto names such as
# "conv2d_3" or "subtract").
PREFIXES = ("input", "proj_", "highway", "block", "dense", "top_", "stage", "encoder",
            "decoder", "bottleneck_", "head_", "features_")


def _batch(shape, n=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def _out(model, x):
    return np.asarray(model(x, training=False))


def _sub(model, *layer_names):
    """A model from the same input to the named layers' outputs."""
    return keras.Model(model.input, [model.get_layer(n).output for n in layer_names])


def _check_names(model):
    names = [layer.name for layer in model.layers]
    assert names[0] == "input" and len(set(names)) == len(names)
    for name in names[1:]:
        assert name.startswith(PREFIXES) and "_" in name, f"{name!r} in {names}"
    return names


# --------------------------------------------------------------------------- highway


def test_highway_parameter_counts_by_hand():
    # proj 16*8+8; each highway layer: H and T, each 8*8+8; head 8*2+2.
    model = build_model("highway", input_shape=(16,), num_classes=2, width=8, depth=3)
    assert model.count_params() == 136 + 3 * 2 * (64 + 8) + 18
    # Default on MNIST: 784 -> 64, 10 highway layers of 64, head 64 -> 10.
    default = build_model("highway", input_shape=(28, 28, 1), num_classes=10)
    assert default.count_params() == (784 * 64 + 64) + 10 * 2 * (64 * 64 + 64) + 650
    # Maxout (k=2) doubles H's affine map, not the gate.
    maxout = build_model("highway", input_shape=(16,), num_classes=2, width=8, depth=1,
                         activation="maxout")
    assert maxout.count_params() == (16 * 16 + 16) + (8 * 16 + 16) + (8 * 8 + 8) + 18


def test_highway_layer_computes_the_paper_formula():
    model = build_model("highway", input_shape=(6,), num_classes=3, width=5, depth=2,
                        activation="tanh")
    x = _batch((6,), n=7)
    inp, out = (np.asarray(a) for a in _sub(model, "proj_act", "highway1_out")(x))
    w_h, b_h = (np.asarray(w) for w in model.get_layer("highway1_h_linear").weights)
    w_t, b_t = (np.asarray(w) for w in model.get_layer("highway1_gate").weights)
    np.testing.assert_allclose(b_t, -2.0)  # the negative gate bias (paper: "e.g. -1, -3")
    h = np.tanh(inp @ w_h + b_h)
    t = 1 / (1 + np.exp(-(inp @ w_t + b_t)))
    np.testing.assert_allclose(out, h * t + inp * (1 - t), rtol=1e-5, atol=1e-6)


def test_highway_with_a_very_negative_gate_bias_starts_as_the_identity():
    x = _batch((16,), n=8)
    carry = build_model("highway", input_shape=(16,), num_classes=2, depth=5, gate_bias=-30.0)
    first, last = (np.asarray(a) for a in _sub(carry, "proj_act", "highway5_out")(x))
    assert np.abs(first).max() > 0.1
    np.testing.assert_allclose(last, first, atol=1e-6)
    # The default -2 already keeps each layer close to its input (T is about 0.12) ...
    default = build_model("highway", input_shape=(16,), num_classes=2, depth=1)
    first, gate, last = (np.asarray(a) for a in
                         _sub(default, "proj_act", "highway1_gate", "highway1_out")(x))
    assert 0.05 < gate.mean() < 0.25
    # ... and a very positive bias makes the layer its plain transform H.
    plain = build_model("highway", input_shape=(16,), num_classes=2, depth=1, gate_bias=30.0)
    h, last = (np.asarray(a) for a in _sub(plain, "highway1_h_act", "highway1_out")(x))
    np.testing.assert_allclose(last, h, atol=1e-6)


def test_highway_options_names_and_features():
    model = build_model("highway", input_shape=(4, 4), num_classes=3, depth=2, width=6,
                        dropout=0.3, include_top=False)
    assert _out(model, _batch((4, 4))).shape == (4, 6)
    names = _check_names(model)
    assert names[:4] == ["input", "input_flatten", "proj_linear", "proj_act"]
    assert names[-1] == "highway2_dropout" and "head_logits" not in names
    with pytest.raises(KerasdlUsageError, match=r"Received: gate_bias='-2'$"):
        build_model("highway", input_shape=(4,), num_classes=2, gate_bias="-2")
    with pytest.raises(KerasdlUsageError, match=r"Received: pooling='avg'"):
        build_model("highway", input_shape=(4,), num_classes=2, include_top=False, pooling="avg")


# --------------------------------------------------------------------------- cnn1d


def test_cnn1d_parameter_counts_by_hand():
    # Convs without bias (BN follows): 5*C_in*F, BN 4*F (gamma, beta, 2 moving stats).
    convs = (5 * 1 * 32 + 4 * 32) + (5 * 32 * 64 + 4 * 64) + (5 * 64 * 128 + 4 * 128)
    head = (128 * 64 + 64) + (64 * 2 + 2)
    for length in (64, 128, 1000):  # global pooling: any length, same parameters
        model = build_model("cnn1d", input_shape=(length, 1), num_classes=2)
        assert model.count_params() == convs + head
    flat = build_model("cnn1d", input_shape=(64, 1), num_classes=2, reduction="flatten")
    assert flat.count_params() == convs + (8 * 128 * 64 + 64) + 130  # 64 / 2**3 = 8 steps
    listed = build_model("cnn1d", input_shape=(32, 3), num_classes=4, filters=[8, 4],
                         batch_norm=False, kernel_size=3, dense_units=0)
    assert listed.count_params() == (3 * 3 * 8 + 8) + (3 * 8 * 4 + 4) + (4 * 4 + 4)


def test_cnn1d_shapes_features_and_names():
    x = _batch((64, 2))
    model = build_model("cnn1d", input_shape=(64, 2), num_classes=5, dropout=0.2)
    assert _out(model, x).shape == (4, 5)
    names = _check_names(model)
    assert names[1:5] == ["block1_conv", "block1_bn", "block1_act", "block1_pool"]
    assert names[-5:] == ["top_avgpool", "dense1_linear", "dense1_act", "dense1_dropout",
                          "head_logits"]
    assert model.get_layer("block1_conv").use_bias is False

    def features(**kw):
        m = build_model("cnn1d", input_shape=(64, 2), num_classes=5, include_top=False, **kw)
        _check_names(m)
        return _out(m, x).shape

    assert features() == (4, 8, 128)
    assert features(pooling="max") == (4, 128)
    assert features(blocks=2, filters=16, pooling="avg") == (4, 32)
    maxpool = build_model("cnn1d", input_shape=(64, 2), num_classes=5, reduction="max",
                          activation="prelu")
    assert "top_maxpool" in _check_names(maxpool)


@pytest.mark.parametrize("shape", [(4,), (7, 1), (4, 4, 1), (2, 2, 2, 2)])
def test_cnn1d_rejects_inputs_it_cannot_take(shape):
    with pytest.raises(KerasdlUsageError) as err:
        build_model("cnn1d", input_shape=shape, num_classes=2)
    assert str(err.value) == (
        "cnn1d needs a sequence input of shape (length, channels) (or an image, read row by "
        f"row) with length >= 8 (pool_size=2 ** blocks=3). Received: input_shape={shape}"
    )


def test_cnn1d_reads_an_image_as_a_sequence_of_rows():
    model = build_model("cnn1d", input_shape=(28, 28, 1), num_classes=10)
    assert model.get_layer("input_rows").output.shape == (None, 28, 28)
    assert model.output_shape == (None, 10)


def test_cnn1d_bad_options():
    with pytest.raises(KerasdlUsageError, match=r"Received: reduction='gap'"):
        build_model("cnn1d", input_shape=(64, 1), num_classes=2, reduction="gap")
    with pytest.raises(KerasdlUsageError, match=r"2 entries but blocks=3; .* filters=\[8, 8\]$"):
        build_model("cnn1d", input_shape=(64, 1), num_classes=2, blocks=3, filters=[8, 8])


def test_cnn1d_learns_to_tell_slow_from_fast_waves():
    # Class 0: 2-4 cycles per window; class 1: 10-14 cycles; random phase, noise.
    rng = np.random.default_rng(0)
    n, length = 320, 64
    y = rng.integers(0, 2, n)
    cycles = np.where(y == 0, rng.uniform(2, 4, n), rng.uniform(10, 14, n))
    t = np.arange(length) / length
    x = np.sin(2 * np.pi * cycles[:, None] * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    x = (x + 0.3 * rng.normal(size=x.shape)).astype("float32")[..., None]  # (n, 64, 1)
    keras.utils.set_random_seed(0)
    model = build_model("cnn1d", input_shape=(length, 1), num_classes=2, filters=8,
                        dense_units=16)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x[:256], y[:256], batch_size=32, epochs=6, verbose=0)
    _, accuracy = model.evaluate(x[256:], y[256:], verbose=0)
    assert accuracy >= 0.9


# --------------------------------------------------------------------------- cnn (spec)


def test_cnn_default_is_the_keras_io_mnist_convnet():
    # keras.io "Simple MNIST convnet": 34,826 parameters (REFERENCES.md).
    model = build_model("cnn", input_shape=(28, 28, 1), num_classes=10)
    assert model.count_params() == 34_826
    assert _check_names(model) == [
        "input", "stage1_conv1", "stage1_conv1_act", "stage1_pool",
        "stage2_conv1", "stage2_conv1_act", "stage2_pool", "stage2_dropout1",
        "head_flatten", "head_logits",
    ]
    assert model.get_layer("stage2_conv1").filters == 64  # doubled after the pool
    assert model.get_layer("stage2_pool").output.shape == (None, 5, 5, 64)
    assert model.get_layer("stage2_dropout1").rate == 0.5


def test_cnn_spec_grammar_with_batch_norm_and_dense():
    model = build_model("cnn", input_shape=(32, 32, 3), num_classes=10,
                        spec="cncnpdcncnpdfnd", padding="same")
    assert _check_names(model) == [
        "input",
        "stage1_conv1", "stage1_conv1_bn", "stage1_conv1_act",
        "stage1_conv2", "stage1_conv2_bn", "stage1_conv2_act", "stage1_pool", "stage1_dropout1",
        "stage2_conv1", "stage2_conv1_bn", "stage2_conv1_act",
        "stage2_conv2", "stage2_conv2_bn", "stage2_conv2_act", "stage2_pool", "stage2_dropout1",
        "top_flatten", "top_dense1", "top_dense1_bn", "top_dense1_act", "top_dropout1",
        "head_logits",
    ]
    # "n" right after c/f: BN between the map and its activation, and the map has no bias.
    assert model.get_layer("stage1_conv1").use_bias is False
    assert model.get_layer("top_dense1").use_bias is False
    bn = lambda f: 4 * f  # noqa: E731  gamma, beta, moving mean and variance
    assert model.count_params() == (
        (27 * 32 + bn(32)) + (288 * 32 + bn(32)) + (288 * 64 + bn(64)) + (576 * 64 + bn(64))
        + (8 * 8 * 64 * 128 + bn(128)) + (128 * 10 + 10)
    )
    assert _out(model, _batch((32, 32, 3))).shape == (4, 10)


def test_cnn_global_pool_standalone_bn_and_no_dropout():
    model = build_model("cnn", input_shape=(16, 16, 1), num_classes=3, spec="cpncpgdff",
                        padding="same", dropout=0.0, dense_units=12, filters=4)
    assert _check_names(model) == [
        "input", "stage1_conv1", "stage1_conv1_act", "stage1_pool", "stage1_bn1",
        "stage2_conv1", "stage2_conv1_act", "stage2_pool", "top_avgpool",
        "top_dense1", "top_dense1_act", "top_dense2", "top_dense2_act", "head_logits",
    ]
    assert model.get_layer("top_avgpool").output.shape == (None, 8)
    assert _out(model, _batch((16, 16, 1))).shape == (4, 3)
    # Filters double after every pool, also for consecutive pools.
    deep = build_model("cnn", input_shape=(32, 32, 1), num_classes=2, spec="cppcpc",
                       padding="same", filters=8)
    assert [deep.get_layer(n).filters for n in ("stage1_conv1", "stage3_conv1",
                                                 "stage4_conv1")] == [8, 32, 64]
    assert "stage2_pool" in _check_names(deep)


def test_cnn_include_top_false_returns_the_conv_body():
    x = _batch((28, 28, 1))

    def features(**kw):
        m = build_model("cnn", input_shape=(28, 28, 1), num_classes=10, include_top=False, **kw)
        names = _check_names(m)
        assert not any(n.startswith(("top_", "head_")) for n in names)
        return _out(m, x).shape

    assert features() == (4, 5, 5, 64)
    assert features(spec="cpcpfdf") == (4, 5, 5, 64)  # the dense top is dropped
    assert features(spec="cpcpg", pooling="max") == (4, 64)
    assert features(spec="cncp", padding="same", pooling="avg") == (4, 32)


@pytest.mark.parametrize(
    "spec,fragment",
    [
        ("cpx", "unknown letter 'x' at position 2 of the spec"),
        ("CP", "unknown letter 'C' at position 0 of the spec"),
        ("c pc", "unknown letter ' ' at position 1 of the spec"),
        ("cfc", "'c' at position 2 needs a feature map"),
        ("cgp", "'p' at position 2 needs a feature map"),
        (["c"], "spec must be a string"),
    ],
)
def test_cnn_bad_spec_is_a_one_line_error_naming_the_grammar(spec, fragment):
    with pytest.raises(KerasdlUsageError) as err:
        build_model("cnn", input_shape=(28, 28, 1), num_classes=10, spec=spec)
    message = str(err.value)
    assert fragment in message and "\n" not in message
    assert message.endswith(f"Received: spec={spec!r}")
    if "letter" in fragment:
        assert "c=conv+activation, p=max-pool 2x2" in message and "g=global average pool" in message


def test_cnn_rejects_inputs_too_small_for_the_spec():
    with pytest.raises(KerasdlUsageError) as err:
        build_model("cnn", input_shape=(12, 12, 1), num_classes=10, spec="cpcpcp")
    assert str(err.value) == (
        "cnn: the input is too small for spec='cpcpcp' (padding='valid'): the feature map "
        "vanishes at 'c', position 4. Received: input_shape=(12, 12, 1)"
    )
    # The same spec fits with 'same' padding (12 -> 6 -> 3 -> 1).
    ok = build_model("cnn", input_shape=(12, 12, 1), num_classes=10, spec="cpcpcp",
                     padding="same")
    assert ok.get_layer("stage3_pool").output.shape == (None, 1, 1, 128)
    with pytest.raises(KerasdlUsageError, match=r"Received: input_shape=\(28, 28\)$"):
        build_model("cnn", input_shape=(28, 28), num_classes=10)


# --------------------------------------------------------------------------- unet


def test_unet_paper_parameter_count_and_output_size():
    model = build_model("unet", input_shape=(572, 572, 1), num_classes=2, padding="valid")
    # Ronneberger et al. 2015, Fig. 1: 572x572 tile -> 388x388 map.
    assert model.output_shape == (None, 388, 388, 2)
    assert model.count_params() == 31_030_658
    # REFERENCES.md: ~31.0M. The often quoted 31,031,685 (zhixuhao/unet, Keras) has the same
    # body and another head: 3x3 conv 64 -> 2 and 1x1 conv 2 -> 1, not our 1x1 conv 64 -> 2.
    assert model.count_params() - 130 + (9 * 64 * 2 + 2) + (2 + 1) == 31_031_685
    assert abs(model.count_params() - 31_031_685) / 31_031_685 < 0.01
    # The paper's feature-map sizes along the U (skip before crop -> decoder output).
    sides = {n: model.get_layer(n).output.shape[1] for n in (
        "encoder1_conv2_act", "encoder2_conv2_act", "encoder3_conv2_act",
        "encoder4_conv2_act", "bottleneck_conv2_act", "decoder4_conv2_act",
        "decoder3_conv2_act", "decoder2_conv2_act", "decoder1_conv2_act")}
    assert list(sides.values()) == [568, 280, 136, 64, 28, 52, 100, 196, 388]
    # Skips are center-cropped to the up-sampled map: 64 -> 56, ..., 568 -> 392.
    assert model.get_layer("decoder4_crop").cropping == ((4, 4), (4, 4))
    assert model.get_layer("decoder1_crop").cropping == ((88, 88), (88, 88))
    assert model.get_layer("decoder1_concat").output.shape == (None, 392, 392, 128)
    assert model.get_layer("bottleneck_conv2").filters == 1024
    # "same" padding: identical parameters, output size == input size.
    same = build_model("unet", input_shape=(64, 64, 1), num_classes=2)
    assert same.count_params() == 31_030_658 and same.output_shape == (None, 64, 64, 2)


def test_unet_small_shapes_features_and_names():
    x = _batch((32, 32, 3))
    model = build_model("unet", input_shape=(32, 32, 3), num_classes=4, base_filters=8,
                        depth=3)
    assert _out(model, x).shape == (4, 32, 32, 4)
    names = _check_names(model)
    assert not any(n.endswith(("_crop", "_pad")) for n in names)  # 32 divides evenly
    assert names[-1] == "head_logits" and "bottleneck_conv2" in names
    assert model.get_layer("bottleneck_conv1").filters == 64
    binary = build_model("unet", input_shape=(32, 32, 3), num_classes=1, base_filters=8,
                         depth=3, batch_norm=True, dropout=0.5)
    assert _out(binary, x).shape == (4, 32, 32, 1)
    assert {"encoder1_conv1_bn", "bottleneck_dropout"} <= set(_check_names(binary))
    assert binary.get_layer("encoder1_conv1").use_bias is False

    def features(**kw):
        m = build_model("unet", input_shape=(32, 32, 3), num_classes=4, base_filters=8,
                        depth=3, include_top=False, **kw)
        assert "head_logits" not in _check_names(m)
        return _out(m, x).shape

    assert features() == (4, 32, 32, 8)
    assert features(pooling="avg") == (4, 8)


def test_unet_same_padding_takes_sizes_not_divisible_by_2_to_the_depth():
    model = build_model("unet", input_shape=(33, 45, 1), num_classes=2, base_filters=4,
                        depth=3)
    assert _out(model, _batch((33, 45, 1))).shape == (4, 33, 45, 2)
    # 33 -> 16 -> 8 -> 4 and back to 32: zero-padded to the skip's 33 rows.
    assert model.get_layer("decoder1_pad").padding == ((0, 1), (0, 1))
    # 'valid' with a small net: 92 -> 88 -> 44 -> 40 -> 20 -> 16 -> 32 -> 28 -> 56 -> 52.
    valid = build_model("unet", input_shape=(92, 92, 1), num_classes=2, base_filters=4,
                        depth=2, padding="valid")
    assert valid.output_shape == (None, 52, 52, 2)


@pytest.mark.parametrize(
    "shape,kw,smallest",
    [((8, 8, 1), {}, "16x16"), ((187, 200, 1), {"padding": "valid"}, "188x188"),
     ((32, 32), {}, "16x16"), ((4,), {"depth": 1}, "2x2")],
)
def test_unet_rejects_inputs_it_cannot_take(shape, kw, smallest):
    with pytest.raises(KerasdlUsageError) as err:
        build_model("unet", input_shape=shape, num_classes=2, **kw)
    message = str(err.value)
    assert message.startswith("unet needs an image input of shape (height, width, channels)")
    assert f"(the smallest is {smallest})" in message
    assert message.endswith(f"Received: input_shape={shape}") and "\n" not in message


def test_unet_bad_options():
    with pytest.raises(KerasdlUsageError, match=r"Received: padding='full'"):
        build_model("unet", input_shape=(32, 32, 1), num_classes=2, padding="full")
    with pytest.raises(KerasdlUsageError, match=r"Received: depth=0"):
        build_model("unet", input_shape=(32, 32, 1), num_classes=2, depth=0)


def test_unet_learns_to_segment_squares():
    # Bright squares of random size and place on a noisy background; label 1 inside.
    rng = np.random.default_rng(0)
    n, side = 192, 16
    x = 0.3 * rng.normal(size=(n, side, side, 1))
    y = np.zeros((n, side, side), "int32")
    for i in range(n):
        s = rng.integers(3, 8)
        r, c = rng.integers(0, side - s, 2)
        y[i, r:r + s, c:c + s] = 1
    x = (x + y[..., None]).astype("float32")
    keras.utils.set_random_seed(0)
    model = build_model("unet", input_shape=(side, side, 1), num_classes=2, base_filters=8,
                        depth=2)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x[:160], y[:160], batch_size=16, epochs=5, verbose=0)
    _, pixel_accuracy = model.evaluate(x[160:], y[160:], verbose=0)
    assert pixel_accuracy >= 0.95


# --------------------------------------------------------------------------- all four


@pytest.mark.parametrize("name", ["highway", "cnn1d", "cnn", "unet"])
def test_registry_entries(name):
    info = model_info(name)
    assert info.task == ("segmentation" if name == "unet" else "classification")
    assert info.smoke_input_shape == {"highway": (16,), "cnn1d": (64, 1), "cnn": (32, 32, 3),
                                      "unet": (32, 32, 1)}[name]
    assert {"include_top", "pooling", "name"} <= set(info.overrides)
    small = {"base_filters": 4} if name == "unet" else {}  # (the zoo test builds the default)
    model = build_model(name, input_shape=info.smoke_input_shape, num_classes=3, name="renamed",
                        **small)
    assert model.name == "renamed"
    _check_names(model)


def test_models_survive_save_and_load(tmp_path):
    models = [
        (build_model("highway", input_shape=(6,), num_classes=3, depth=2, width=4), (6,)),
        (build_model("cnn1d", input_shape=(16, 2), num_classes=3, filters=4, blocks=2), (16, 2)),
        (build_model("cnn", input_shape=(12, 12, 1), num_classes=3, spec="cnpfn", filters=4,
                     dense_units=8), (12, 12, 1)),
        (build_model("unet", input_shape=(18, 18, 1), num_classes=2, base_filters=4,
                     depth=2), (18, 18, 1)),
    ]
    for model, shape in models:
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        x = _batch(shape)
        np.testing.assert_allclose(_out(keras.models.load_model(path), x), _out(model, x),
                                   rtol=1e-5, atol=1e-6)
