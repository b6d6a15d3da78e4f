"""Tests for the classic ImageNet families: AlexNet, VGG and GoogLeNet (kerasdl.models).

Parameter counts are checked against the published figures of REFERENCES.md by building the
full 224x224 models (building is cheap; nothing big is trained). Behaviour is checked at small
inputs. The zoo-wide smoke tests (build, logits, one SGD step) live in tests/test_models.py.
"""

from __future__ import annotations

import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasdl.errors import KerasdlUsageError
from kerasdl.models import build_model, list_models, model_info
from kerasdl.models._common import AdaptiveAvgPool2D
from kerasdl.models.alexnet import LocalResponseNormalization

VGGS = [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")]
CLASSIC = ["alexnet", "googlenet", *VGGS]
IMAGENET = (224, 224, 3)

# Keras' automatic names, and block_role names (block3a_... style allowed: inception3a_1x1_conv).
AUTO_NAME = re.compile(
    r"^(input_layer|dense|conv2d|flatten|dropout|batch_normalization|max_pooling2d|re_lu|"
    r"zero_padding2d|concatenate|global_average_pooling2d|adaptive_avg_pool2d|"
    r"local_response_normalization)(_\d+)?$"
)
HIERARCHICAL = re.compile(r"^[a-z]+\d*[a-z]?_[a-z0-9_]+$")

# The 4096-4096 VGG classifier on the 7x7x512 map of a 224x224 input, 1000 classes.
VGG_HEAD = (25088 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)  # 123,642,856


def _batch(shape, n=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def _trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _shape(model, layer):
    return tuple(model.get_layer(layer).output.shape)


# --------------------------------------------------------------------------- registry


def test_the_classic_models_are_registered():
    assert set(CLASSIC) <= set(list_models())
    for name in CLASSIC:
        info = model_info(name)
        assert info.default_input_shape == IMAGENET and info.default_num_classes == 1000
        assert info.family in {"alexnet", "vgg", "inception"}
        assert min(info.smoke_input_shape[:2]) <= 64
    assert model_info("vgg16_bn").family == "vgg" and "Ioffe" in model_info("vgg16_bn").paper
    assert {"config", "batch_norm", "head", "fc_units"} <= set(model_info("vgg11").overrides)
    assert {"aux_logits", "kernel_5x5"} <= set(model_info("googlenet").overrides)
    assert "lrn" in model_info("alexnet").overrides


# --------------------------------------------------------------------------- parameter counts


@pytest.mark.parametrize(
    "name,expected",
    [("alexnet", 61_100_840), ("vgg16", 138_357_544), ("vgg19", 143_667_240)],
)
def test_published_parameter_counts_exact(name, expected):
    model = build_model(name, input_shape=IMAGENET, num_classes=1000)
    assert model.count_params() == expected
    assert _trainable(model) == expected
    if name == "alexnet":  # at 224 the adaptive pool is a no-op: conv5 already gives 6x6
        assert _shape(model, "conv1_conv") == (None, 55, 55, 64)
        assert _shape(model, "conv5_pool") == (None, 6, 6, 256)
        assert _shape(model, "head_flatten") == (None, 9216)
    else:
        assert _shape(model, "block5_pool") == (None, 7, 7, 512)


def _googlenet_by_hand(*, batch_norm: bool, kernel_5x5: int, aux: bool = False) -> int:
    """Trainable parameters of GoogLeNet from the paper's Table 1 numbers, written out here
    independently of the builder: conv weights + (bias | BN gamma and beta) per channel."""

    def conv(cin, cout, k):
        return cin * cout * k * k + (2 if batch_norm else 1) * cout

    total = conv(3, 64, 7) + conv(64, 64, 1) + conv(64, 192, 3)
    cin = 192
    rows = [(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), (192, 96, 208, 16, 48, 64),
            (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
            (256, 160, 320, 32, 128, 128), (256, 160, 320, 32, 128, 128),
            (384, 192, 384, 48, 128, 128)]
    aux_inputs = []
    for i, (n1, r3, n3, r5, n5, proj) in enumerate(rows):
        total += conv(cin, n1, 1) + conv(cin, r3, 1) + conv(r3, n3, 3)
        total += conv(cin, r5, 1) + conv(r5, n5, kernel_5x5) + conv(cin, proj, 1)
        cin = n1 + n3 + n5 + proj
        if i in (2, 5):  # 4a, 4d
            aux_inputs.append(cin)
    total += 1024 * 1000 + 1000
    if aux:
        for c in aux_inputs:
            total += conv(c, 128, 1) + (2048 * 1024 + 1024) + (1024 * 1000 + 1000)
    return total


def test_googlenet_matches_torchvision_count():
    model = build_model("googlenet", input_shape=IMAGENET, num_classes=1000)
    # torchvision googlenet (aux_logits=False): 6,624,904 parameters (BN moving stats are
    # PyTorch buffers, so compare Keras' *trainable* count).
    assert _trainable(model) == 6_624_904 == _googlenet_by_hand(batch_norm=True, kernel_5x5=3)
    bn_channels = sum(int(w.shape[0]) for w in model.non_trainable_weights) // 2
    assert model.count_params() == 6_624_904 + 2 * bn_channels == 6_639_464
    assert _shape(model, "inception5b_concat") == (None, 7, 7, 1024)


def test_googlenet_aux_heads_match_torchvision_count():
    model = build_model("googlenet", input_shape=IMAGENET, num_classes=1000, aux_logits=True)
    # torchvision googlenet(aux_logits=True, init_weights=True): 13,004,888 parameters.
    assert _trainable(model) == 13_004_888
    assert _trainable(model) == _googlenet_by_hand(batch_norm=True, kernel_5x5=3, aux=True)


def test_googlenet_paper_variant():
    model = build_model("googlenet", input_shape=IMAGENET, num_classes=1000,
                        batch_norm=False, kernel_5x5=5, dropout=0.4)
    expected = _googlenet_by_hand(batch_norm=False, kernel_5x5=5)
    assert model.count_params() == _trainable(model) == expected == 6_998_552
    assert model.get_layer("inception3a_5x5_conv").kernel_size == (5, 5)
    assert model.get_layer("inception3a_5x5_conv").use_bias
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    # The paper's Table 1 "params" column sums to ~6.8M (its entries are rounded down).
    assert abs(model.count_params() - 6.8e6) / 6.8e6 < 0.03


@pytest.mark.parametrize(
    "depth,torchvision,torchvision_bn",
    [
        (11, 132_863_336, 132_868_840),
        (13, 133_047_848, 133_053_736),
        (16, 138_357_544, 138_365_992),
        (19, 143_667_240, 143_678_248),
    ],
)
def test_vgg_features_match_torchvision(depth, torchvision, torchvision_bn):
    # The classifier is the same for every depth (checked exactly above for vgg16/19), so the
    # conv stacks are compared without it (cheap to build).
    plain = build_model(f"vgg{depth}", input_shape=IMAGENET, num_classes=1000,
                        include_top=False)
    assert plain.count_params() == torchvision - VGG_HEAD
    bn = build_model(f"vgg{depth}_bn", input_shape=IMAGENET, num_classes=1000,
                     include_top=False)
    # Conv biases kept, as torchvision's vgg*_bn: trainable count equals torchvision's; Keras
    # also counts BN's moving mean and variance (as many again as gamma and beta).
    assert _trainable(bn) == torchvision_bn - VGG_HEAD
    assert bn.count_params() == torchvision_bn - VGG_HEAD + (torchvision_bn - torchvision)
    assert plain.output.shape == bn.output.shape == (None, 7, 7, 512)


def test_vgg_configs_match_the_paper_table_2():
    # Simonyan & Zisserman 2015, Table 2, number of parameters (in millions).
    paper = {"A": 133, "B": 133, "C": 134, "D": 138, "E": 144}
    for config, millions in paper.items():
        features = build_model("vgg16", input_shape=IMAGENET, num_classes=1000,
                               config=config, include_top=False)
        assert round((features.count_params() + VGG_HEAD) / 1e6) == millions, config
    c = build_model("vgg16", input_shape=(32, 32, 3), num_classes=10, config="C",
                    include_top=False)
    assert [c.get_layer(f"block{b}_conv3").kernel_size for b in (3, 4, 5)] == [(1, 1)] * 3


def test_vgg_layers_match_keras_applications():
    for ours, theirs in [("vgg16", keras.applications.VGG16), ("vgg19", keras.applications.VGG19)]:
        model = build_model(ours, input_shape=(32, 32, 3), num_classes=10, include_top=False)
        reference = theirs(weights=None, include_top=False, input_shape=(32, 32, 3))
        convs = {layer.name: [tuple(w.shape) for w in layer.weights]
                 for layer in reference.layers if layer.weights}
        assert {name: [tuple(w.shape) for w in model.get_layer(name).weights]
                for name in convs} == convs
        assert model.count_params() == reference.count_params()


# --------------------------------------------------------------------------- shapes and heads


def test_alexnet_odd_input_sizes_use_the_adaptive_pool():
    model = build_model("alexnet", input_shape=(100, 130, 3), num_classes=1000)
    # conv1 (100 + 4 - 11) // 4 + 1 = 24, (130 + 4 - 11) // 4 + 1 = 31; three floor 3/2 pools.
    assert _shape(model, "conv1_conv") == (None, 24, 31, 64)
    assert _shape(model, "conv5_pool") == (None, 2, 3, 256)
    assert _shape(model, "head_avgpool") == (None, 6, 6, 256)
    assert model.count_params() == 61_100_840  # independent of the input size
    assert np.asarray(model(_batch((100, 130, 3)))).shape == (2, 1000)


def test_alexnet_small_input_replicates_the_1x1_map():
    model = build_model("alexnet", input_shape=(64, 64, 3), num_classes=10)
    probe = keras.Model(model.inputs, [model.get_layer("conv5_pool").output,
                                       model.get_layer("head_avgpool").output])
    cell, pooled = (np.asarray(t) for t in probe.predict(_batch((64, 64, 3)), verbose=0))
    assert cell.shape == (2, 1, 1, 256) and pooled.shape == (2, 6, 6, 256)
    # predict() runs in graph mode, where Keras' own adaptive pooling fails on a 1x1 map.
    np.testing.assert_allclose(pooled, np.broadcast_to(cell, pooled.shape))


def _torch_pool(side, k, s, *, ceil):
    """Output size of PyTorch's MaxPool2d(k, s) with ceil_mode (no padding)."""
    out = (math.ceil if ceil else math.floor)((side - k) / s) + 1
    if ceil and (out - 1) * s >= side:  # last window must start inside the input
        out -= 1
    return out


@pytest.mark.parametrize("side", [224, 57, 75, 32])
def test_googlenet_spatial_sizes_follow_torchvision(side):
    model = build_model("googlenet", input_shape=(side, side, 3), num_classes=10,
                        include_top=False)
    h = (side + 2 * 3 - 7) // 2 + 1
    assert _shape(model, "conv1_act")[1] == h
    for pool, k in [("pool1", 3), ("pool2", 3), ("pool3", 3), ("pool4", 2)]:
        h = _torch_pool(h, k, 2, ceil=True)
        assert _shape(model, f"{pool}_pool")[1] == h, pool
    assert model.output.shape == (None, h, h, 1024)


def test_googlenet_module_widths_follow_the_table():
    model = build_model("googlenet", input_shape=(32, 32, 3), num_classes=10, include_top=False)
    widths = {"3a": 256, "3b": 480, "4a": 512, "4b": 512, "4c": 512, "4d": 528, "4e": 832,
              "5a": 832, "5b": 1024}  # #1x1 + #3x3 + #5x5 + pool proj
    for module, channels in widths.items():
        assert _shape(model, f"inception{module}_concat")[-1] == channels
    # torchvision's "5x5" branch is a 3x3 conv; BN replaces the conv bias.
    conv = model.get_layer("inception4e_5x5_conv")
    assert conv.kernel_size == (3, 3) and not conv.use_bias
    assert model.get_layer("inception4e_5x5_bn").epsilon == 1e-3


@pytest.mark.parametrize(
    "name,shape,features",
    [
        ("alexnet", (64, 64, 3), (1, 1, 256)),
        ("alexnet", (224, 224, 3), (6, 6, 256)),
        ("vgg16", (32, 32, 3), (1, 1, 512)),
        ("vgg11_bn", (64, 96, 3), (2, 3, 512)),
        ("googlenet", (32, 32, 3), (1, 1, 1024)),
        ("googlenet", (64, 64, 3), (2, 2, 1024)),
    ],
)
def test_include_top_false_gives_features(name, shape, features):
    model = build_model(name, input_shape=shape, num_classes=10, include_top=False)
    assert "head_logits" not in [layer.name for layer in model.layers]
    assert model.output.shape == (None, *features)
    pooling = "max" if name == "vgg16" else "avg"
    pooled = build_model(name, input_shape=shape, num_classes=10, include_top=False,
                         pooling=pooling)
    assert pooled.output.shape == (None, features[-1])
    assert pooled.layers[-1].name == f"features_{pooling}pool"
    if shape[0] <= 64:
        assert np.asarray(pooled(_batch(shape))).shape == (2, features[-1])


def test_vgg_heads():
    x = _batch((32, 32, 3))
    # Small CIFAR head: global average pooling -> logits (the common CIFAR VGG16-BN count).
    gap = build_model("vgg16_bn", input_shape=(32, 32, 3), num_classes=10, head="gap")
    assert _trainable(gap) == 14_728_266
    assert [layer.name for layer in gap.layers][-2:] == ["head_avgpool", "head_logits"]
    assert np.asarray(gap(x)).shape == (2, 10)
    # The paper's head flattens the map (1x1x512 at 32x32) into fc1, fc2 with dropout 0.5.
    fc = build_model("vgg16", input_shape=(32, 32, 3), num_classes=10, fc_units=512)
    features = 14_714_688
    assert fc.count_params() == features + (512 * 512 + 512) * 2 + (512 * 10 + 10)
    assert fc.get_layer("fc1_dropout").rate == 0.5 and fc.get_layer("fc2_dropout").rate == 0.5
    names = [layer.name for layer in fc.layers]
    assert names[-8:] == ["head_flatten", "fc1_dense", "fc1_act", "fc1_dropout",
                          "fc2_dense", "fc2_act", "fc2_dropout", "head_logits"]
    no_dropout = build_model("vgg11", input_shape=(32, 32, 3), num_classes=10, dropout=0.0,
                             fc_units=64)
    assert not any("dropout" in layer.name for layer in no_dropout.layers)
    bn = build_model("vgg11_bn", input_shape=(32, 32, 3), num_classes=10, head="gap")
    assert bn.get_layer("block1_conv1").use_bias  # kept, as torchvision's vgg*_bn
    assert [layer.name for layer in bn.layers][1:4] == [
        "block1_conv1", "block1_conv1_bn", "block1_conv1_act"]


# --------------------------------------------------------------------------- aux classifiers


def test_googlenet_aux_logits_train_and_drop_for_inference():
    keras.utils.set_random_seed(0)
    model = build_model("googlenet", input_shape=(32, 32, 3), num_classes=10, aux_logits=True)
    assert model.output_names == ["head_logits", "aux1_logits", "aux2_logits"]
    # The side heads hang off 4a and 4d.
    assert model.get_layer("aux1_avgpool").input.shape[-1] == 512
    assert model.get_layer("aux2_avgpool").input.shape[-1] == 528
    assert model.get_layer("aux1_avgpool").output.shape == (None, 4, 4, 512)
    assert model.get_layer("aux1_dropout").rate == 0.7

    x, y = _batch((32, 32, 3), n=4), np.array([0, 1, 2, 3])
    outputs = model(x, training=False)
    assert [tuple(o.shape) for o in outputs] == [(4, 10)] * 3
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    # run_eagerly: one step, so skip tracing the big graph (~20 s on 2 CPU cores).
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=[ce, ce, ce],
                  loss_weights=[1.0, 0.3, 0.3], run_eagerly=True)
    aux_kernel = model.get_layer("aux1_fc_dense").kernel
    before = np.array(aux_kernel)
    losses = model.train_on_batch(x, (y, y, y))
    assert np.all(np.isfinite(losses))
    assert not np.allclose(before, np.array(aux_kernel))  # the side loss reaches its head

    inference = keras.Model(model.input, model.outputs[0])  # shares the trained weights
    assert _trainable(inference) < _trainable(model)
    assert not any(layer.name.startswith("aux") for layer in inference.layers)
    np.testing.assert_allclose(np.asarray(inference(x)), np.asarray(model(x)[0]),
                               rtol=1e-5, atol=1e-5)
    # The default model has a single output: the logits.
    assert len(build_model("googlenet", input_shape=(32, 32, 3), num_classes=10).outputs) == 1


# --------------------------------------------------------------------------- custom layers


def _lrn_reference(a, size=5, k=2.0, alpha=1e-4, beta=0.75):
    """The paper's formula, literally: sum of squares over the channel window (clipped)."""
    c = a.shape[-1]
    out = np.empty_like(a)
    for i in range(c):
        lo, hi = max(0, i - size // 2), min(c, i + size // 2 + 1)
        out[..., i] = a[..., i] / (k + alpha * np.sum(a[..., lo:hi] ** 2, axis=-1)) ** beta
    return out


def test_local_response_normalization_is_the_papers_formula():
    a = np.abs(_batch((3, 3, 16))) * 40.0  # large activations, so the normaliser matters
    got = np.asarray(LocalResponseNormalization()(a))
    np.testing.assert_allclose(got, _lrn_reference(a), rtol=1e-5)
    tf_lrn = tf.nn.local_response_normalization(a, depth_radius=2, bias=2.0, alpha=1e-4,
                                                beta=0.75)
    np.testing.assert_allclose(got, tf_lrn.numpy(), rtol=1e-5)
    custom = LocalResponseNormalization(size=3, k=1.0, alpha=1e-3, beta=0.5)
    np.testing.assert_allclose(np.asarray(custom(a)),
                               _lrn_reference(a, 3, 1.0, 1e-3, 0.5), rtol=1e-5)
    # Under mixed precision the sums of squares are taken in float32 (600**2 overflows fp16).
    half = LocalResponseNormalization(dtype="mixed_float16")(a * 15.0)
    assert keras.backend.standardize_dtype(half.dtype) == "float16"
    np.testing.assert_allclose(np.asarray(half, "float32"), _lrn_reference(a * 15.0), rtol=2e-3)
    restored = LocalResponseNormalization.from_config(custom.get_config())
    assert (restored.size, restored.k, restored.alpha, restored.beta) == (3, 1.0, 1e-3, 0.5)
    with pytest.raises(KerasdlUsageError, match=r"Received: size=4"):
        LocalResponseNormalization(size=4)


def test_alexnet_lrn_option():
    model = build_model("alexnet", input_shape=(64, 64, 3), num_classes=10, lrn=True)
    names = [layer.name for layer in model.layers]
    for block in ("conv1", "conv2"):
        i = names.index(f"{block}_lrn")
        assert names[i - 1] == f"{block}_act" and names[i + 1] == f"{block}_pool"
    assert "conv3_lrn" not in names
    plain = build_model("alexnet", input_shape=(64, 64, 3), num_classes=10)
    assert model.count_params() == plain.count_params()  # LRN has no weights
    assert not any(isinstance(layer, LocalResponseNormalization) for layer in plain.layers)


@pytest.mark.parametrize("size,out", [((13, 13), 6), ((1, 1), 6), ((2, 2), 4), ((14, 14), 4),
                                      ((7, 5), 6), ((6, 6), 6)])
def test_adaptive_avg_pool_matches_pytorch_bins(size, out):
    x = _batch((*size, 3))
    expected = np.zeros((2, out, out, 3), "float32")
    for i in range(out):
        r0, r1 = i * size[0] // out, math.ceil((i + 1) * size[0] / out)
        for j in range(out):
            c0, c1 = j * size[1] // out, math.ceil((j + 1) * size[1] / out)
            expected[:, i, j] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
    inputs = keras.Input((*size, 3))
    model = keras.Model(inputs, AdaptiveAvgPool2D(out, name="pool_adaptive")(inputs))
    assert model.output.shape == (None, out, out, 3)
    got = model.predict(x, verbose=0)  # graph mode
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_custom_layers_survive_save_and_load(tmp_path):
    inputs = keras.Input((13, 13, 8), name="input")
    x = LocalResponseNormalization(size=3, name="block_lrn")(inputs)
    tiny = keras.Model(inputs, AdaptiveAvgPool2D((6, 4), name="block_pool")(x))
    aux = build_model("googlenet", input_shape=(32, 32, 3), num_classes=3, aux_logits=True)
    for model, shape in [(tiny, (13, 13, 8)), (aux, (32, 32, 3))]:
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        reloaded = keras.models.load_model(path)
        x = np.abs(_batch(shape)) * 30
        for a, b in zip(keras.tree.flatten(model(x)), keras.tree.flatten(reloaded(x))):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert reloaded.output_names == ["head_logits", "aux1_logits", "aux2_logits"]
    assert tiny.output.shape == (None, 6, 4, 8)


# --------------------------------------------------------------------------- names and errors


def _variants():
    yield "alexnet", (64, 64, 3), {}
    yield "alexnet", (64, 64, 3), dict(lrn=True, include_top=False, pooling="avg")
    yield "vgg16", (32, 32, 3), dict(fc_units=32)
    yield "vgg13_bn", (32, 32, 3), dict(head="gap")
    yield "vgg11", (32, 32, 3), dict(config="C", include_top=False, pooling="max")
    yield "googlenet", (32, 32, 3), {}
    yield "googlenet", (32, 32, 3), dict(aux_logits=True)
    yield "googlenet", (32, 32, 3), dict(batch_norm=False, kernel_5x5=5, dropout=0.0)


@pytest.mark.parametrize("name,shape,overrides", list(_variants()))
def test_every_layer_has_a_hierarchical_name(name, shape, overrides):
    model = build_model(name, input_shape=shape, num_classes=10, **overrides)
    names = [layer.name for layer in model.layers]
    assert names[0] == "input"
    for layer_name in names[1:]:
        assert not AUTO_NAME.match(layer_name), f"auto-named layer {layer_name!r}"
        assert HIERARCHICAL.match(layer_name), f"{layer_name!r} is not block_role"


@pytest.mark.parametrize(
    "name,shape,minimum",
    [
        ("alexnet", (62, 62, 3), 63),
        ("alexnet", (224, 40, 3), 63),
        ("alexnet", (4,), 63),
        ("vgg16", (31, 32, 3), 32),
        ("vgg19_bn", (224, 224), 32),
        ("googlenet", (31, 31, 3), 32),
        ("googlenet", (32, 32, 3, 1), 32),
    ],
)
def test_inputs_the_architecture_cannot_take(name, shape, minimum):
    with pytest.raises(KerasdlUsageError) as err:
        build_model(name, input_shape=shape, num_classes=10)
    assert str(err.value) == (
        f"{name} needs an image input of shape (height, width, channels) with height and "
        f"width >= {minimum}. Received: input_shape={shape}"
    )


@pytest.mark.parametrize("name,shape", [("alexnet", (63, 63, 3)), ("vgg16", (32, 32, 1)),
                                        ("googlenet", (32, 40, 1))])
def test_smallest_inputs_build(name, shape):
    model = build_model(name, input_shape=shape, num_classes=10, include_top=False)
    assert model.output.shape[1:3] == (1, 1) or name == "googlenet"
    assert np.all(np.isfinite(np.asarray(model(_batch(shape)))))


@pytest.mark.parametrize(
    "name,overrides,fragment",
    [
        ("vgg16", dict(config="F"), "Received: config='F'"),
        ("vgg16", dict(head="flat"), "Received: head='flat'"),
        ("vgg16", dict(fc_units=0), "Received: fc_units=0"),
        ("vgg16_bn", dict(batch_norm="yes"), "Received: batch_norm='yes'"),
        ("alexnet", dict(lrn=1), "Received: lrn=1"),
        ("alexnet", dict(dropout=1.0), "Received: dropout=1.0"),
        ("alexnet", dict(pooling="avg"), "include_top=False"),
        ("googlenet", dict(kernel_5x5=7), "Received: kernel_5x5=7"),
        ("googlenet", dict(aux_logits=True, include_top=False), "Received: aux_logits=True"),
        ("googlenet", dict(aux_logit=True), "did you mean 'aux_logits'"),
    ],
)
def test_bad_options_give_one_line_usage_errors(name, overrides, fragment):
    with pytest.raises(KerasdlUsageError) as err:
        build_model(name, input_shape=(64, 64, 3), num_classes=10, **overrides)
    assert fragment in str(err.value) and "\n" not in str(err.value)
