"""ResNet / ResNet v2 / ResNeXt / CIFAR ResNet / WideResNet / DenseNet builders.

Parameter counts against the published figures (docs: /work/shared/REFERENCES.md), shapes at
small inputs, feature extraction, input errors, layer names and each family's own behaviour.
Big nets are only built (never trained) here; the zoo-wide smoke test in test_models.py trains
one step of each registered model.
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

from kerasdl.errors import KerasdlUsageError, UnknownNameError
from kerasdl.models import build_model, list_models, model_info
from kerasdl.models.resnet import ZeroPadShortcut

HIERARCHICAL = re.compile(r"^[a-z]+\d*_[a-z0-9_]+$")  # block_role, e.g. stage2_block1_conv1
KERAS_AUTO = re.compile(
    r"^(input_layer|dense|conv2d|batch_normalization|re_lu|activation|add|concatenate|dropout|"
    r"zero_padding2d|max_pooling2d|average_pooling2d|global_average_pooling2d|"
    r"global_max_pooling2d|zero_pad_shortcut)(_\d+)?$"
)


def _trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _batch(shape, n=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


# name -> (what is counted, published figure, tolerance, the feature layer, its shape at the
# smoke input). "total" = count_params() (keras.applications counts BN moving statistics too);
# "trainable" = torchvision / the papers. Tolerance 0 = exact; a float = relative; "round" =
# the paper's rounding (0.27M means [0.265M, 0.275M)).
REFERENCE = {
    "resnet18": ("trainable", 11_689_512, 0, "stage5_block2_out", (1, 1, 512)),
    "resnet34": ("trainable", 21_797_672, 0, "stage5_block3_out", (1, 1, 512)),
    "resnet50": ("total", 25_636_712, 0, "stage5_block3_out", (1, 1, 2048)),
    "resnet101": ("total", 44_707_176, 0, "stage5_block3_out", (1, 1, 2048)),
    "resnet152": ("total", 60_419_944, 0, "stage5_block3_out", (1, 1, 2048)),
    "resnet50v2": ("total", 25_613_800, 0, "post_relu", (1, 1, 2048)),
    "resnet101v2": ("total", 44_675_560, 0, "post_relu", (1, 1, 2048)),
    "resnet152v2": ("total", 60_380_648, 0, "post_relu", (1, 1, 2048)),
    "resnet50_v1_5": ("total", 25_636_712, 0, "stage5_block3_out", (1, 1, 2048)),
    "resnet101_v1_5": ("total", 44_707_176, 0, "stage5_block3_out", (1, 1, 2048)),
    "resnet152_v1_5": ("total", 60_419_944, 0, "stage5_block3_out", (1, 1, 2048)),
    "preact_resnet50": ("total", 25_613_800, 0, "post_relu", (1, 1, 2048)),
    "preact_resnet101": ("total", 44_675_560, 0, "post_relu", (1, 1, 2048)),
    "preact_resnet152": ("total", 60_380_648, 0, "post_relu", (1, 1, 2048)),
    "resnext50_32x4d": ("trainable", 25_028_904, 0, "stage5_block3_out", (1, 1, 2048)),
    "resnet20": ("trainable", 0.27e6, "round", "stage3_block3_out", (8, 8, 64)),
    "resnet32": ("trainable", 0.46e6, "round", "stage3_block5_out", (8, 8, 64)),
    "resnet44": ("trainable", 0.66e6, "round", "stage3_block7_out", (8, 8, 64)),
    "resnet56": ("trainable", 0.85e6, "round", "stage3_block9_out", (8, 8, 64)),
    "resnet110": ("trainable", 1.7e6, "round", "stage3_block18_out", (8, 8, 64)),
    "plain20": ("trainable", 0.27e6, "round", "stage3_block3_out", (8, 8, 64)),
    "plain56": ("trainable", 0.85e6, "round", "stage3_block9_out", (8, 8, 64)),
    "wide_resnet": ("trainable", 36.5e6, 0.01, "post_relu", (8, 8, 640)),
    "wide_resnet28_10": ("trainable", 36.5e6, 0.01, "post_relu", (8, 8, 640)),
    "wide_resnet16_8": ("trainable", 11.0e6, 0.01, "post_relu", (8, 8, 512)),
    "wide_resnet40_4": ("trainable", 8.9e6, 0.01, "post_relu", (8, 8, 256)),
    "densenet121": ("total", 8_062_504, 0, "post_relu", (1, 1, 1024)),
    "densenet169": ("total", 14_307_880, 0, "post_relu", (1, 1, 1664)),
    "densenet201": ("total", 20_242_984, 0, "post_relu", (1, 1, 1920)),
}
def test_every_model_of_these_families_has_a_reference_row():
    families = {"resnet", "resnext", "resnet_cifar", "plain_cifar", "wide_resnet", "densenet"}
    ours = {n for n in list_models() if model_info(n).family in families}
    assert ours == set(REFERENCE)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_parameter_count_names_and_features(name):
    kind, published, tolerance, feature_layer, feature_shape = REFERENCE[name]
    info = model_info(name)
    model = build_model(name, input_shape=info.smoke_input_shape,
                        num_classes=info.default_num_classes)
    count = model.count_params() if kind == "total" else _trainable(model)
    if tolerance == 0:
        assert count == published, f"{name}: {count:,} != {published:,}"
    elif tolerance == "round":  # 0.27M / 1.7M: half a unit of the last printed digit
        unit = 0.1e6 if published >= 1e6 else 0.01e6
        assert abs(count - published) < unit / 2, f"{name}: {count:,} vs {published:,.0f}"
    else:
        assert abs(count - published) <= tolerance * published, f"{name}: {count:,}"

    names = [layer.name for layer in model.layers]
    assert names[0] == "input" and names[-1] == "head_logits"
    for layer_name in names[1:]:
        assert not KERAS_AUTO.match(layer_name), f"auto-named layer {layer_name!r}"
        assert HIERARCHICAL.match(layer_name), f"{layer_name!r} is not block_role"
    assert model.get_layer(feature_layer).output.shape == (None, *feature_shape)
    assert model.output_shape == (None, info.default_num_classes)


# --------------------------------------------------------------------------- shapes and features


@pytest.mark.parametrize(
    "name,shape,features,pooling",
    [
        ("resnet18", (64, 64, 3), (2, 2, 512), "avg"),
        ("resnet18", (48, 80, 1), (2, 3, 512), "max"),  # any channels, non-square
        ("resnet20", (32, 32, 3), (8, 8, 64), "avg"),
        ("resnet20", (28, 28, 1), (7, 7, 64), "max"),  # 28 -> 14 -> 7
        ("plain20", (36, 20, 3), (9, 5, 64), "avg"),  # 20 -> 10 -> 5
    ],
)
def test_feature_extraction(name, shape, features, pooling):
    x = _batch(shape)
    model = build_model(name, input_shape=shape, num_classes=10, include_top=False)
    assert "head_logits" not in [layer.name for layer in model.layers]
    maps = np.asarray(model(x))
    assert maps.shape == (2, *features)
    pooled = build_model(name, input_shape=shape, num_classes=10, include_top=False,
                         pooling=pooling)
    pooled.set_weights(model.get_weights())
    reduce = np.mean if pooling == "avg" else np.max
    np.testing.assert_allclose(np.asarray(pooled(x)), reduce(maps, axis=(1, 2)), rtol=1e-5,
                               atol=1e-5)


def test_small_wide_resnet_and_densenet_shapes():
    x = _batch((32, 32, 3))
    wrn = build_model("wide_resnet", input_shape=(32, 32, 3), num_classes=10, depth=10,
                      widen_factor=2, include_top=False)
    assert np.asarray(wrn(x)).shape == (2, 8, 8, 128)
    dense = build_model("densenet121", input_shape=(8, 8, 3), num_classes=3,
                        blocks=(2, 2), growth_rate=4, stem_filters=8, include_top=False)
    assert np.asarray(dense(_batch((8, 8, 3)))).shape == (2, 1, 1, 16)


# --------------------------------------------------------------------------- input errors


@pytest.mark.parametrize(
    "name,shape,min_side",
    [
        ("resnet18", (4,), 32),
        ("resnet50v2", (31, 64, 3), 32),
        ("resnext50_32x4d", (224, 224), 32),
        ("resnet20", (3, 3, 3), 4),
        ("plain56", (32, 32), 4),
        ("wide_resnet16_8", (2, 32, 3), 4),
        ("densenet121", (16, 16, 3), 32),
    ],
)
def test_inputs_the_architecture_cannot_take(name, shape, min_side):
    with pytest.raises(KerasdlUsageError) as err:
        build_model(name, input_shape=shape, num_classes=10)
    assert str(err.value) == (
        f"{name} needs an image input of shape (height, width, channels) with height and "
        f"width >= {min_side}. Received: input_shape={shape}"
    )


@pytest.mark.parametrize(
    "name,overrides,fragment",
    [
        ("resnet18", dict(depth=19), "Received: depth=19"),
        ("resnet18", dict(version=3), "Received: version=3"),
        ("resnet18", dict(groups=32), "need bottleneck blocks"),
        ("resnet18", dict(conv_bias=1), "Received: conv_bias=1"),
        ("resnet18", dict(drop_path_rate=1.0), "Received: drop_path_rate=1.0"),
        ("resnet18", dict(pooling="avg"), "include_top=False"),
        ("resnet20", dict(depth=21), "depth must be 6n + 2"),
        ("resnet20", dict(shortcut="C"), "Received: shortcut='C'"),
        ("plain20", dict(drop_path_rate=0.1), "no residual branch"),
        ("wide_resnet", dict(depth=27), "depth must be 6n + 4"),
        ("wide_resnet", dict(widen_factor=0), "Received: widen_factor=0"),
        ("wide_resnet", dict(dropout=1.5), "Received: dropout=1.5"),
        ("densenet121", dict(blocks=()), "Received: blocks=()"),
        ("densenet121", dict(compression=0), "Received: compression=0"),
        ("densenet121", dict(growth_rate=0), "Received: growth_rate=0"),
    ],
)
def test_bad_options_give_one_line_errors(name, overrides, fragment):
    shape = model_info(name).smoke_input_shape
    with pytest.raises(KerasdlUsageError) as err:
        build_model(name, input_shape=shape, num_classes=10, **overrides)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_unknown_override_is_rejected_before_building():
    with pytest.raises(UnknownNameError, match="did you mean 'widen_factor'"):
        build_model("wide_resnet", input_shape=(32, 32, 3), num_classes=10, widen=4)


# --------------------------------------------------------------------------- ImageNet ResNets


def test_conv_bias_selects_the_reference_convention():
    # torchvision's ResNet-50 has no conv biases: 25,557,032 trainable parameters.
    plain = build_model("resnet50", input_shape=(32, 32, 3), num_classes=1000, conv_bias=False)
    assert _trainable(plain) == 25_557_032
    assert plain.get_layer("stage2_block1_conv1").use_bias is False
    # ResNet-18 with biases adds one per conv filter: 64 + 4*64 + 5*128 + 5*256 + 5*512.
    biased = build_model("resnet18", input_shape=(32, 32, 3), num_classes=1000, conv_bias=True)
    assert _trainable(biased) == 11_689_512 + 64 + 256 + 640 + 1280 + 2560


def test_v1_block_structure_and_stride_placement():
    model = build_model("resnet18", input_shape=(64, 64, 3), num_classes=10)
    # A stage's first block downsamples in its first 3x3 conv and projects the shortcut.
    assert model.get_layer("stage3_block1_conv1").strides == (2, 2)
    assert model.get_layer("stage3_block1_conv1_pad").padding == ((1, 1), (1, 1))
    assert model.get_layer("stage3_block1_shortcut_conv").strides == (2, 2)
    assert "stage2_block1_shortcut_conv" not in [layer.name for layer in model.layers]
    # Post-activation: ReLU after the add.
    assert isinstance(model.get_layer("stage2_block1_out"), keras.layers.ReLU)
    assert model.get_layer("stem_conv").kernel_size == (7, 7)
    assert model.get_layer("stem_pool").output.shape == (None, 16, 16, 64)


def test_v2_is_pre_activation_with_keras_biases():
    model = build_model("resnet18", input_shape=(32, 32, 3), num_classes=10, version=2,
                        conv_bias=True)
    names = [layer.name for layer in model.layers]
    assert "stem_bn" not in names and "post_bn" in names and "post_relu" in names
    assert "stage2_block1_preact_bn" in names and "stage2_block1_out" not in names
    assert "stage2_block1_bn2" not in names  # the branch ends on a conv
    # Only the convs whose output is not normalised carry a bias (keras.applications V2).
    assert model.get_layer("stem_conv").use_bias
    assert model.get_layer("stage3_block1_shortcut_conv").use_bias
    assert model.get_layer("stage3_block1_conv2").use_bias
    assert not model.get_layer("stage3_block1_conv1").use_bias
    # The projection reads the pre-activated input.
    shortcut = model.get_layer("stage3_block1_shortcut_conv")
    assert shortcut.input is model.get_layer("stage3_block1_preact_relu").output


def test_resnext_uses_grouped_convolutions():
    model = build_model("resnext50_32x4d", input_shape=(32, 32, 3), num_classes=1000)
    conv = model.get_layer("stage2_block1_conv2")
    assert conv.groups == 32 and conv.filters == 128 and conv.kernel.shape == (3, 3, 4, 128)
    assert model.get_layer("stage5_block1_conv2").filters == 1024
    assert model.get_layer("stage5_block1_conv2").strides == (2, 2)
    assert model.get_layer("stage5_block1_conv3").filters == 2048


# --------------------------------------------------------------------------- CIFAR ResNets


def test_option_a_is_parameter_free_and_option_b_projects():
    a = build_model("resnet20", input_shape=(32, 32, 3), num_classes=10)
    b = build_model("resnet20", input_shape=(32, 32, 3), num_classes=10, shortcut="B")
    plain = build_model("plain20", input_shape=(32, 32, 3), num_classes=10)
    # Option A adds nothing to the plain net; B adds two 1x1 convs (16->32, 32->64) + BNs.
    assert a.count_params() == plain.count_params()
    assert _trainable(b) - _trainable(a) == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert [layer.name for layer in a.layers if isinstance(layer, ZeroPadShortcut)] == [
        "stage2_block1_shortcut_pad", "stage3_block1_shortcut_pad"]
    assert sum(isinstance(layer, keras.layers.Add) for layer in a.layers) == 9
    assert not any(isinstance(layer, keras.layers.Add) for layer in plain.layers)
    assert b.get_layer("stage3_block1_shortcut_conv").kernel_size == (1, 1)


def test_zero_pad_shortcut_subsamples_and_pads():
    x = np.arange(2 * 5 * 5 * 3, dtype="float32").reshape(2, 5, 5, 3)
    out = np.asarray(ZeroPadShortcut(strides=2, channels=8)(x))
    assert out.shape == (2, 3, 3, 8)  # ceil(5 / 2) = 3, like a stride-2 conv with padding 1
    np.testing.assert_array_equal(out[..., :3], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(out[..., 3:], 0.0)
    layer = ZeroPadShortcut.from_config(ZeroPadShortcut(2, 8, name="s").get_config())
    assert (layer.strides, layer.channels) == (2, 8)


def test_option_a_output_matches_a_hand_computed_block():
    # With the residual branch zeroed, an option-A block outputs relu(pad(subsample(x))).
    model = build_model("resnet20", input_shape=(8, 8, 3), num_classes=10, depth=8,
                        include_top=False)
    for layer in model.layers:
        if layer.name.startswith("stage2_block1_bn2"):
            layer.gamma.assign(np.zeros(layer.gamma.shape, "float32"))
            layer.beta.assign(np.zeros(layer.beta.shape, "float32"))
    sub = keras.Model(model.input, [model.get_layer("stage1_block1_out").output,
                                    model.get_layer("stage2_block1_out").output])
    before, after = (np.asarray(t) for t in sub(_batch((8, 8, 3))))
    expected = np.concatenate([before[:, ::2, ::2, :], np.zeros((2, 4, 4, 16), "float32")], -1)
    np.testing.assert_allclose(after, np.maximum(expected, 0), atol=1e-6)


# --------------------------------------------------------------------------- stochastic depth


def test_drop_path_rates_follow_the_linear_rule():
    model = build_model("resnet20", input_shape=(32, 32, 3), num_classes=10, drop_path_rate=0.45)
    rates = [layer.rate for layer in model.layers if layer.name.endswith("_drop_path")]
    np.testing.assert_allclose(rates, [0.45 * l / 9 for l in range(1, 10)])
    assert model.get_layer("stage3_block3_drop_path").rate == pytest.approx(0.45)
    assert "stage1_block1_drop_path" in [layer.name for layer in model.layers]
    off = build_model("resnet20", input_shape=(32, 32, 3), num_classes=10)
    assert not any(layer.name.endswith("_drop_path") for layer in off.layers)


def test_drop_path_is_identity_at_inference_and_per_example_in_training():
    keras.utils.set_random_seed(0)
    dropped = build_model("resnet20", input_shape=(8, 8, 3), num_classes=10, depth=8,
                          drop_path_rate=0.5)
    plain = build_model("resnet20", input_shape=(8, 8, 3), num_classes=10, depth=8)
    plain.set_weights(dropped.get_weights())  # drop path adds no weights
    x = _batch((8, 8, 3), n=4)
    np.testing.assert_allclose(np.asarray(dropped(x, training=False)),
                               np.asarray(plain(x, training=False)), rtol=1e-5, atol=1e-5)
    # Training: each example's branch is kept (scaled by 1/(1-p)) or dropped as a whole.
    layer = dropped.get_layer("stage3_block1_drop_path")
    ones = np.ones((256, 2, 2, 3), "float32")
    out = np.asarray(layer(ones, training=True))
    per_example = out.reshape(256, -1)
    assert np.all(per_example == per_example[:, :1])  # one coin per example
    assert set(np.unique(per_example)) == {0.0, 2.0}
    assert 0.35 < (per_example[:, 0] == 0).mean() < 0.65
    np.testing.assert_array_equal(np.asarray(layer(ones, training=False)), ones)


def test_wide_resnet_dropout_and_drop_path():
    model = build_model("wide_resnet", input_shape=(16, 16, 3), num_classes=10, depth=16,
                        widen_factor=2, dropout=0.3, drop_path_rate=0.2)
    names = [layer.name for layer in model.layers]
    # Dropout sits between the two convs of every block: relu1 -> dropout -> conv2.
    dropout = model.get_layer("stage2_block1_dropout")
    assert dropout.rate == 0.3 and len([n for n in names if n.endswith("_dropout")]) == 6
    assert dropout.input is model.get_layer("stage2_block1_relu1").output
    assert model.get_layer("stage2_block1_conv2").input is dropout.output
    assert model.get_layer("stage3_block2_drop_path").rate == pytest.approx(0.2)
    # WRN shortcuts: a projection in every stage's first block (16 -> 32 channels too).
    assert [n for n in names if n.endswith("shortcut_conv")] == [
        "stage1_block1_shortcut_conv", "stage2_block1_shortcut_conv",
        "stage3_block1_shortcut_conv"]
    assert not any(layer.use_bias for layer in model.layers
                   if isinstance(layer, keras.layers.Conv2D))


# --------------------------------------------------------------------------- DenseNet


def test_densenet_generic_builder_counts_by_hand():
    model = build_model("densenet121", input_shape=(8, 8, 3), num_classes=3, blocks=(2, 2),
                        growth_rate=4, stem_filters=8, bottleneck_width=2)
    bn = lambda c: 4 * c  # noqa: E731  gamma, beta, moving mean, moving variance
    stem = 7 * 7 * 3 * 8 + bn(8)
    # A dense layer on c channels: BN(c), 1x1 c -> 2k, BN(2k), 3x3 2k -> k (k = 4).
    layer = lambda c: bn(c) + c * 8 + bn(8) + 3 * 3 * 8 * 4  # noqa: E731
    block = layer(8) + layer(12)  # 8 -> 12 -> 16 channels
    transition = bn(16) + 16 * 8  # 16 -> 8 channels (compression 0.5)
    head = bn(16) + 16 * 3 + 3
    assert model.count_params() == stem + block + transition + block + head
    assert model.get_layer("block2_layer2_concat").output.shape == (None, 1, 1, 16)
    with pytest.raises(KerasdlUsageError, match=r"width >= 8\. Received: input_shape=\(7, 7, 3\)"):
        build_model("densenet121", input_shape=(7, 7, 3), num_classes=3, blocks=(2, 2))


def test_densenet_dense_connectivity():
    model = build_model("densenet121", input_shape=(32, 32, 3), num_classes=10,
                        blocks=(6, 2, 5, 2), dropout=0.2, growth_rate=12)
    # Each dense layer adds k = 12 channels; transitions halve them.
    assert model.get_layer("block1_layer1_concat").output.shape[-1] == 64 + 12
    assert model.get_layer("block1_layer6_concat").output.shape[-1] == 64 + 6 * 12
    assert model.get_layer("transition1_conv").filters == (64 + 6 * 12) // 2
    assert model.get_layer("block1_layer1_conv1").filters == 4 * 12
    assert model.get_layer("block3_layer5_dropout").rate == 0.2
    assert model.get_layer("transition3_pool").output.shape[1:3] == (1, 1)


# --------------------------------------------------------------------------- serialisation


def test_custom_layers_and_drop_path_survive_save_and_load(tmp_path):
    model = build_model("resnet20", input_shape=(8, 8, 3), num_classes=4, depth=8,
                        drop_path_rate=0.3)
    path = tmp_path / "resnet20.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    x = _batch((8, 8, 3))
    np.testing.assert_allclose(np.asarray(reloaded(x)), np.asarray(model(x)), rtol=1e-5,
                               atol=1e-5)
    assert isinstance(reloaded.get_layer("stage2_block1_shortcut_pad"), ZeroPadShortcut)
    assert reloaded.get_layer("stage3_block1_drop_path").noise_shape == (None, 1, 1, 1)
