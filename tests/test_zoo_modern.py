"""Tests for the modern zoo families: ViT, MLP-Mixer / gMLP, Xception and EfficientNet.

Parameter counts against the published figures (REFERENCES.md: exact for keras.applications
rows, timm's exact counts for the rest), shapes, features, errors, layer names, and the
family-specific pieces: attention written with keras.ops against NumPy and against
``keras.layers.MultiHeadAttention`` with the same weights, the causal mask, the spatial gating
unit, stochastic depth and compound scaling. Big models are only built to count parameters.
EfficientNet-B1..B7 counts are behind ``-m slow`` (each build takes several seconds).
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

from kerasdl.errors import KerasdlUsageError
from kerasdl.models import build_model, model_info
from kerasdl.models.efficientnet import (
    COMPOUND_SCALING,
    KERAS_APPLICATIONS_PARAMS,
    StochasticDepth,
    round_filters,
    round_repeats,
)
from kerasdl.models.mixer import SpatialGatingUnit
from kerasdl.models.vit import MultiHeadSelfAttention, TokenPooling

IMAGENET = (224, 224, 3)
AUTO_NAME = re.compile(
    r"^(input_layer|dense|conv2d|separable_conv2d|depthwise_conv2d|zero_padding2d|flatten|"
    r"dropout|batch_normalization|layer_normalization|max_pooling2d|global_average_pooling2d|"
    r"activation|add|multiply|reshape|permute|rescaling|normalization|multi_head_attention|"
    r"multi_head_self_attention|class_token|position_embedding|token_pooling|"
    r"spatial_gating_unit|stochastic_depth)(_\d+)?$"
)
HIERARCHICAL = re.compile(r"^[a-z]+[a-z0-9]*_[a-z0-9_]+$")  # block_role, e.g. block3a_expand_bn


def _batch(shape, n=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def _count(name, shape=IMAGENET, num_classes=1000, **overrides):
    return build_model(name, input_shape=shape, num_classes=num_classes, **overrides).count_params()


@pytest.fixture(scope="module")
def b0_rgb():
    """EfficientNet-B0 with keras.applications' preprocessing, at 32x32 (building B0 takes
    seconds, so the tests share one; parameter counts do not depend on the resolution)."""
    return build_model("efficientnet_b0", input_shape=(32, 32, 3), num_classes=1000,
                       include_preprocessing=True)


@pytest.fixture(scope="module")
def xception71():
    return build_model("xception", input_shape=(71, 71, 3), num_classes=10, dropout=0.5)


def _assert_hierarchical_names(model):
    names = [layer.name for layer in model.layers]
    assert names[0] == "input"
    assert len(set(names)) == len(names)
    for layer_name in names[1:]:
        assert not AUTO_NAME.match(layer_name), f"auto-named layer {layer_name!r}"
        assert HIERARCHICAL.match(layer_name), f"{layer_name!r} is not block_role"


# --------------------------------------------------------------------------- parameter counts


@pytest.mark.parametrize(
    "name,expected",
    [
        ("vit_b16", 86_567_656),  # timm vit_base_patch16_224 (REFERENCES.md)
        ("vit_s16", 22_050_664),  # timm vit_small_patch16_224
        ("vit_ti16", 5_717_416),  # timm vit_tiny_patch16_224
        ("mixer_s16", 18_528_264),  # timm mixer_s16_224; paper Table 1: 18M
        ("mixer_b16", 59_880_472),  # timm mixer_b16_224; paper Table 1: 59M
        ("gmlp_s16", 19_422_656),  # timm gmlp_s16_224; paper: 20M
    ],
)
def test_token_models_match_timm_exactly(name, expected):
    assert _count(name) == expected


@pytest.mark.parametrize("name,paper", [("mixer_s16", 18e6), ("mixer_b16", 59e6)])
def test_mixer_within_one_percent_of_paper_table1(name, paper):
    # The paper's Table 1 counts exclude the 1000-class head (timm's totals include it).
    body = _count(name, include_top=False)
    assert abs(body - paper) / paper < 0.01


def test_xception_matches_keras_applications_exactly():
    assert _count("xception", shape=(299, 299, 3)) == 22_910_480


def test_efficientnet_b0_matches_keras_applications(b0_rgb):
    # keras.applications' 5,330,571 includes Rescaling + Normalization (3 means, 3 variances,
    # 1 count: 7 non-trainable values). By default we leave the preprocessing to the data
    # pipeline; include_preprocessing=True adds the same layer and the exact count.
    plain = build_model("efficientnet_b0", input_shape=IMAGENET, num_classes=1000)
    assert plain.count_params() == 5_330_571 - 7
    assert b0_rgb.count_params() == 5_330_571
    normalize = b0_rgb.get_layer("preprocess_normalize")
    assert sum(int(np.prod(w.shape)) for w in normalize.weights) == 7
    assert not normalize.trainable_weights
    # Trainable parameters of B0 (keras.applications: 5,288,548).
    assert sum(int(np.prod(w.shape)) for w in plain.trainable_weights) == 5_288_548


@pytest.mark.slow
@pytest.mark.parametrize("variant", [v for v in COMPOUND_SCALING if v != "b0"])
def test_efficientnet_b1_to_b7_match_keras_applications(variant):
    resolution = COMPOUND_SCALING[variant][2]
    model = build_model(f"efficientnet_{variant}", input_shape=(resolution, resolution, 3),
                        num_classes=1000, include_preprocessing=True)
    assert model.count_params() == KERAS_APPLICATIONS_PARAMS[variant]


def _vit_params(*, patch, channels, width, depth, mlp, tokens, classes, class_token=True):
    embed = patch * patch * channels * width + width + tokens * width + class_token * width
    block = (
        2 * width  # LN
        + 4 * width * width + 4 * width  # W_qkv, b_qkv, W_o, b_o
        + 2 * width  # LN
        + width * mlp + mlp + mlp * width + width  # MLP
    )
    return embed + depth * block + 2 * width + width * classes + classes


def test_vit_counts_by_hand():
    # vit_tiny_patch4_32: 64 patches + [class] = 65 tokens.
    assert _count("vit_tiny_patch4_32", shape=(32, 32, 3), num_classes=10) == 2_693_578
    assert 2_693_578 == _vit_params(patch=4, channels=3, width=192, depth=6, mlp=768,
                                    tokens=65, classes=10)
    assert 86_567_656 == _vit_params(patch=16, channels=3, width=768, depth=12, mlp=3072,
                                     tokens=197, classes=1000)
    # "gap": no [class] token and one position fewer.
    assert _count("vit_ti16", classifier="gap") == 5_717_416 - 2 * 192
    # keras.layers.MultiHeadAttention has exactly the same parameters.
    assert _count("vit_ti16", attention="keras") == 5_717_416
    # Blocks do not depend on the resolution; only the position embedding does.
    assert _count("vit_ti16", shape=(32, 32, 3)) == 5_717_416 - (197 - 5) * 192


def test_mixer_counts_by_hand():
    def mixer(patch, channels, width, depth, s, ds, dc, classes):
        block = 2 * width + (s * ds + ds + ds * s + s) + 2 * width + (
            width * dc + dc + dc * width + width)
        stem = patch * patch * channels * width + width
        return stem + depth * block + 2 * width + width * classes + classes

    assert mixer(16, 3, 768, 12, 196, 384, 3072, 1000) == 59_880_472
    assert _count("mixer_tiny_patch4_32", shape=(32, 32, 3), num_classes=10) == mixer(
        4, 3, 128, 8, 64, 64, 512, 10) == 1_132_170
    # Token mixing is a dense layer over the S tokens: its size follows the resolution.
    assert _count("mixer_s16", shape=(32, 32, 3)) == 18_528_264 - 8 * (
        2 * 256 * (196 - 4) + (196 - 4))


# --------------------------------------------------------------------------- shapes / features

MY_MODELS = [
    "vit_b16", "vit_s16", "vit_ti16", "vit_tiny_patch4_32",
    "mixer_s16", "mixer_b16", "mixer_tiny_patch4_32", "gmlp_s16",
    "xception", *[f"efficientnet_{v}" for v in COMPOUND_SCALING],
]


def test_all_families_registered_with_small_smoke_shapes():
    from kerasdl.models import list_models

    assert set(MY_MODELS) <= set(list_models())
    for name in MY_MODELS:
        info = model_info(name)
        assert info.smoke_input_shape == ((71, 71, 3) if name == "xception" else (32, 32, 3))
        assert {"include_top", "pooling", "name"} <= set(info.overrides)
    assert model_info("vit_b16").default_input_shape == (224, 224, 3)
    assert model_info("xception").default_input_shape == (299, 299, 3)
    assert model_info("efficientnet_b7").default_input_shape == (600, 600, 3)
    assert model_info("vit_tiny_patch4_32").default_num_classes == 10


@pytest.mark.parametrize(
    "name,shape,overrides,features",
    [
        ("vit_tiny_patch4_32", (32, 32, 3), {}, (65, 192)),  # [class] + 64 patch tokens
        ("vit_tiny_patch4_32", (32, 32, 3), {"classifier": "gap"}, (64, 192)),
        ("vit_tiny_patch4_32", (32, 32, 3), {"pooling": "avg"}, (192,)),
        ("vit_ti16", (48, 32, 1), {"pooling": "max", "depth": 1}, (192,)),
        ("mixer_tiny_patch4_32", (32, 32, 3), {}, (64, 128)),
        ("mixer_tiny_patch4_32", (32, 32, 3), {"pooling": "max"}, (128,)),
        ("gmlp_s16", (32, 32, 3), {"depth": 2}, (4, 256)),
        ("xception", (71, 71, 3), {}, (3, 3, 2048)),  # the smallest input: a 3x3 map
        ("efficientnet_b0", (64, 64, 1), {}, (2, 2, 1280)),
    ],
)
def test_include_top_false_gives_features(name, shape, overrides, features):
    model = build_model(name, input_shape=shape, num_classes=10, include_top=False, **overrides)
    assert "head_logits" not in [layer.name for layer in model.layers]
    assert np.asarray(model(_batch(shape))).shape == (2, *features)


@pytest.mark.parametrize(
    "name,shape,overrides",
    [
        ("vit_tiny_patch4_32", (32, 32, 3), {}),
        ("vit_tiny_patch4_32", (28, 28, 1), {"classifier": "gap", "dropout": 0.1}),
        ("vit_b16", (32, 48, 3), {"depth": 1}),  # 2x3 patches of 16
        ("mixer_tiny_patch4_32", (32, 32, 3), {"dropout": 0.1}),
        ("gmlp_s16", (32, 32, 3), {"depth": 2}),
        ("xception", (75, 80, 3), {}),
        ("efficientnet_b0", (33, 47, 3), {}),  # odd sizes exercise the asymmetric padding
    ],
)
def test_logits_shape_at_small_inputs(name, shape, overrides):
    model = build_model(name, input_shape=shape, num_classes=7, **overrides)
    logits = np.asarray(model(_batch(shape), training=False))
    assert logits.shape == (2, 7) and np.all(np.isfinite(logits))
    assert model.layers[-1].name == "head_logits"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "name,shape,message",
    [
        ("vit_b16", (30, 30, 3), "vit_b16 needs an image input of shape (height, width, channels) "
         "with height and width multiples of the patch size 16. Received: input_shape=(30, 30, 3)"),
        ("vit_tiny_patch4_32", (32, 32), "vit_tiny_patch4_32 needs an image input of shape "
         "(height, width, channels) with height and width multiples of the patch size 4. "
         "Received: input_shape=(32, 32)"),
        ("mixer_b16", (8, 8, 3), "mixer_b16 needs an image input of shape (height, width, "
         "channels) with height and width multiples of the patch size 16. "
         "Received: input_shape=(8, 8, 3)"),
        ("gmlp_s16", (4,), "gmlp_s16 needs an image input of shape (height, width, channels) "
         "with height and width multiples of the patch size 16. Received: input_shape=(4,)"),
        ("xception", (70, 71, 3), "xception needs an image input of shape (height, width, "
         "channels) with height and width >= 71. Received: input_shape=(70, 71, 3)"),
        ("efficientnet_b3", (31, 64, 3), "efficientnet_b3 needs an image input of shape "
         "(height, width, channels) with height and width >= 32. "
         "Received: input_shape=(31, 64, 3)"),
    ],
)
def test_inputs_the_architecture_cannot_take(name, shape, message):
    with pytest.raises(KerasdlUsageError) as err:
        build_model(name, input_shape=shape, num_classes=10)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "name,overrides,fragment",
    [
        ("vit_ti16", {"heads": 5}, "Received: width=192, heads=5"),
        ("vit_ti16", {"classifier": "cls"}, "Received: classifier='cls'"),
        ("vit_ti16", {"attention": "flash"}, "Received: attention='flash'"),
        ("vit_ti16", {"attention_dropout": 1.0}, "Received: attention_dropout=1.0"),
        ("vit_ti16", {"pooling": "avg"}, "include_top=True"),
        ("mixer_s16", {"token_mlp_dim": 0}, "Received: token_mlp_dim=0"),
        ("gmlp_s16", {"ffn_dim": 7}, "Received: ffn_dim=7"),
        ("xception", {"dropout": -0.1}, "Received: dropout=-0.1"),
        ("efficientnet_b0", {"width_coefficient": 0}, "Received: width_coefficient=0"),
        ("efficientnet_b0", {"activation": "maxout"}, "Received: activation='maxout'"),
        ("efficientnet_b0", {"include_preprocessing": 1}, "Received: include_preprocessing=1"),
    ],
)
def test_bad_options_give_one_line_errors(name, overrides, fragment):
    shape = (71, 71, 3) if name == "xception" else (32, 32, 3)
    with pytest.raises(KerasdlUsageError) as err:
        build_model(name, input_shape=shape, num_classes=10, **overrides)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_efficientnet_preprocessing_needs_rgb():
    with pytest.raises(KerasdlUsageError, match=r"needs 3 channels\. Received: input_shape="
                       r"\(32, 32, 1\)"):
        build_model("efficientnet_b0", input_shape=(32, 32, 1), num_classes=10,
                    include_preprocessing=True)


# --------------------------------------------------------------------------- layer names


@pytest.mark.parametrize(
    "name,shape,overrides",
    [
        ("vit_tiny_patch4_32", (32, 32, 3), {"depth": 2, "dropout": 0.1}),
        ("vit_tiny_patch4_32", (32, 32, 3), {"depth": 2, "attention": "keras",
                                             "classifier": "gap"}),
        ("vit_tiny_patch4_32", (32, 32, 3), {"depth": 1, "include_top": False,
                                             "pooling": "avg"}),
        ("mixer_tiny_patch4_32", (32, 32, 3), {"depth": 2, "dropout": 0.1}),
        ("gmlp_s16", (32, 32, 3), {"depth": 2, "dropout": 0.1}),
    ],
)
def test_every_layer_has_a_hierarchical_name(name, shape, overrides):
    _assert_hierarchical_names(build_model(name, input_shape=shape, num_classes=10, **overrides))


def test_conv_models_have_hierarchical_names(b0_rgb, xception71):
    _assert_hierarchical_names(b0_rgb)
    _assert_hierarchical_names(xception71)
    assert xception71.get_layer("head_dropout").rate == 0.5


def test_names_follow_the_tables(b0_rgb, xception71):
    b0 = b0_rgb
    blocks = sorted({n.split("_")[0] for n in (layer.name for layer in b0.layers)
                     if re.match(r"block\d[a-z]_", n)})
    # B0's stages repeat 1, 2, 2, 3, 3, 4, 1 times: 16 MBConv blocks.
    assert blocks == ["block1a", "block2a", "block2b", "block3a", "block3b", "block4a",
                      "block4b", "block4c", "block5a", "block5b", "block5c", "block6a",
                      "block6b", "block6c", "block6d", "block7a"]
    names = {layer.name for layer in xception71.layers}
    # Entry (2-4) and exit (13) blocks downsample with a conv shortcut; middle (5-12) do not.
    assert {f"block{b}_shortcut_conv" for b in (2, 3, 4, 13)} <= names
    assert not any(f"block{b}_shortcut_conv" in names for b in range(5, 13))
    assert {f"block{b}_sepconv3" for b in range(5, 13)} <= names
    assert "block2_sepconv1_act" not in names and "block3_sepconv1_act" in names


# --------------------------------------------------------------------------- attention


def _numpy_attention(x, w_qkv, b_qkv, w_o, b_o, heads, causal):
    batch, tokens, width = x.shape
    d_k = width // heads
    qkv = (x @ w_qkv + b_qkv).reshape(batch, tokens, 3, heads, d_k).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv  # (B, h, T, d_k)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d_k)  # (B, h, T, T)
    if causal:
        scores = np.where(np.tril(np.ones((tokens, tokens), bool)), scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    out = (weights @ v).transpose(0, 2, 1, 3).reshape(batch, tokens, width)
    return out @ w_o + b_o


@pytest.mark.parametrize("causal", [False, True])
def test_self_attention_matches_numpy_formula(causal):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 12)).astype("float32")
    layer = MultiHeadSelfAttention(3, causal=causal, bias_initializer="random_normal",
                                   name="attn")
    got = np.asarray(layer(x))
    assert got.shape == (2, 5, 12)
    assert layer.count_params() == 4 * 12 * 12 + 4 * 12
    w_qkv, b_qkv, w_o, b_o = (np.asarray(w) for w in layer.weights)
    expected = _numpy_attention(x.astype("float64"), w_qkv, b_qkv, w_o, b_o, 3, causal)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_causal_attention_does_not_look_ahead():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 6, 8)).astype("float32")
    later = x.copy()
    later[:, 4:] += 10.0  # change only tokens 4 and 5
    causal = MultiHeadSelfAttention(2, causal=True, name="causal")
    a, b = np.asarray(causal(x)), np.asarray(causal(later))
    np.testing.assert_allclose(a[:, :4], b[:, :4], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a[:, 4:], b[:, 4:])
    full = MultiHeadSelfAttention(2, name="full")
    assert not np.allclose(np.asarray(full(x))[:, :4], np.asarray(full(later))[:, :4])


def _copy_into_keras_mha(custom, mha, width, heads):
    """Our fused (D, 3D) W_qkv and (D, D) W_o -> keras' per-projection (D, h, d_k) kernels."""
    w_qkv, b_qkv, w_o, b_o = (np.asarray(w) for w in custom.weights)
    d_k = width // heads
    q, k, v = np.split(w_qkv, 3, axis=1)
    bq, bk, bv = np.split(b_qkv, 3)
    mha.set_weights([
        q.reshape(width, heads, d_k), bq.reshape(heads, d_k),
        k.reshape(width, heads, d_k), bk.reshape(heads, d_k),
        v.reshape(width, heads, d_k), bv.reshape(heads, d_k),
        w_o.reshape(heads, d_k, width), b_o,
    ])


@pytest.mark.parametrize("causal", [False, True])
def test_self_attention_equals_keras_multi_head_attention(causal):
    x = _batch((7, 16), seed=3)
    custom = MultiHeadSelfAttention(4, causal=causal, bias_initializer="random_normal",
                                    name="custom")
    ours = np.asarray(custom(x))
    mha = keras.layers.MultiHeadAttention(4, key_dim=4, name="mha")
    mha(x, x)  # build
    assert mha.count_params() == custom.count_params()
    _copy_into_keras_mha(custom, mha, 16, 4)
    theirs = np.asarray(mha(x, x, use_causal_mask=causal))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_vit_with_keras_attention_gives_the_same_logits_for_the_same_weights():
    kw = dict(input_shape=(32, 32, 3), num_classes=10, depth=2, width=48, heads=3, mlp_dim=96)
    custom = build_model("vit_tiny_patch4_32", **kw)
    keras_attn = build_model("vit_tiny_patch4_32", attention="keras", **kw)
    assert custom.count_params() == keras_attn.count_params()
    assert isinstance(keras_attn.get_layer("block1_attn"), keras.layers.MultiHeadAttention)
    for layer in custom.layers:
        target = keras_attn.get_layer(layer.name)
        if isinstance(layer, MultiHeadSelfAttention):
            _copy_into_keras_mha(layer, target, 48, 3)
        else:
            target.set_weights(layer.get_weights())
    x = _batch((32, 32, 3), seed=4)
    np.testing.assert_allclose(np.asarray(custom(x)), np.asarray(keras_attn(x)),
                               rtol=1e-4, atol=1e-4)


def test_vit_classifier_token_versus_gap():
    token = build_model("vit_tiny_patch4_32", input_shape=(32, 32, 3), num_classes=10, depth=1)
    gap = build_model("vit_tiny_patch4_32", input_shape=(32, 32, 3), num_classes=10, depth=1,
                      classifier="gap")
    assert token.get_layer("head_pool").mode == "first"
    assert gap.get_layer("head_pool").mode == "mean"
    assert "embed_class_token" not in [layer.name for layer in gap.layers]
    assert token.get_layer("embed_position").output.shape == (None, 65, 192)
    assert gap.get_layer("embed_position").output.shape == (None, 64, 192)
    # The [class] token is learned; the features' avg pooling skips it.
    assert token.get_layer("embed_class_token").trainable_weights[0].shape == (1, 1, 192)
    x = np.arange(2 * 3 * 2, dtype="float32").reshape(2, 3, 2)
    np.testing.assert_array_equal(TokenPooling("first")(x), x[:, 0])
    np.testing.assert_array_equal(TokenPooling("mean", skip=1)(x), x[:, 1:].mean(1))
    np.testing.assert_array_equal(TokenPooling("max")(x), x.max(1))


# --------------------------------------------------------------------------- gMLP / Mixer


def test_spatial_gating_unit_formula_and_near_identity_init():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(2, 4, 6)).astype("float32")  # (B, S, F)
    sgu = SpatialGatingUnit(name="sgu")
    out = np.asarray(sgu(z))
    assert out.shape == (2, 4, 3)
    # W ~ N(0, 1e-6), b = 1: at initialisation the unit passes u (the first half) through.
    np.testing.assert_allclose(out, z[..., :3], rtol=1e-4, atol=1e-4)
    # With random weights: out = u * (W LN(v) + b), W mixing the S tokens.
    w = rng.normal(size=(4, 4)).astype("float32")
    b = rng.normal(size=(4,)).astype("float32")
    gamma, beta = np.asarray(sgu.norm.gamma), np.asarray(sgu.norm.beta)
    sgu.kernel.assign(w)
    sgu.bias.assign(b)
    u, v = z[..., :3], z[..., 3:]
    v = (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + 1e-6)
    v = v * gamma + beta
    expected = u * (np.einsum("ts,bsc->btc", w, v) + b[:, None])
    np.testing.assert_allclose(np.asarray(sgu(z)), expected, rtol=1e-4, atol=1e-5)


def test_mixer_token_mixing_is_shared_across_channels():
    model = build_model("mixer_tiny_patch4_32", input_shape=(32, 32, 3), num_classes=10, depth=1)
    # Dense over the 64 tokens (input (B, C, S)) and over the 128 channels (input (B, S, C)).
    assert model.get_layer("block1_token_fc1").kernel.shape == (64, 64)
    assert model.get_layer("block1_token_fc2").kernel.shape == (64, 64)
    assert model.get_layer("block1_channel_fc1").kernel.shape == (128, 512)
    assert model.get_layer("block1_token_transpose1").output.shape == (None, 128, 64)


# --------------------------------------------------------------------------- EfficientNet


def test_stochastic_depth_is_identity_at_inference_and_drops_examples_in_training():
    x = np.ones((2000, 3, 3, 4), "float32")
    layer = StochasticDepth(0.25, seed=0)
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    y = np.asarray(layer(x, training=True))
    per_example = y.reshape(2000, -1)
    # Whole examples are dropped (0) or kept and scaled by 1 / (1 - rate).
    assert np.all(per_example == per_example[:, :1])
    np.testing.assert_allclose(np.unique(per_example), [0.0, 1 / 0.75], rtol=1e-6)
    assert abs((per_example[:, 0] == 0).mean() - 0.25) < 0.05
    assert abs(y.mean() - 1.0) < 0.1  # expectation preserved
    np.testing.assert_array_equal(np.asarray(StochasticDepth(0.0)(x, training=True)), x)
    with pytest.raises(KerasdlUsageError, match="Received: rate=1.0"):
        StochasticDepth(1.0)


def test_efficientnet_stochastic_depth_schedule_and_se(b0_rgb):
    b0 = b0_rgb
    # Rate grows linearly with the block index b (0..15) as 0.2 * b / 16; blocks that change
    # shape (a stage's first) have no residual and hence no drop.
    names = [layer.name for layer in b0.layers]
    drops = [n for n in names if n.endswith("_drop")]
    assert drops == ["block2b_drop", "block3b_drop", "block4b_drop", "block4c_drop",
                     "block5b_drop", "block5c_drop", "block6b_drop", "block6c_drop",
                     "block6d_drop"]
    assert b0.get_layer("block2b_drop").rate == pytest.approx(0.2 * 2 / 16)
    assert b0.get_layer("block6d_drop").rate == pytest.approx(0.2 * 14 / 16)
    # MBConv1 has no expansion; SE squeezes to a quarter of the block's input channels.
    assert "block1a_expand_conv" not in names and "block2a_expand_conv" in names
    assert b0.get_layer("block2a_expand_conv").filters == 16 * 6
    assert b0.get_layer("block2a_se_reduce").filters == 4
    assert b0.get_layer("block2a_se_expand").filters == 96
    # Inference is deterministic (dropout and stochastic depth off).
    x = _batch((32, 32, 3))
    np.testing.assert_array_equal(np.asarray(b0(x)), np.asarray(b0(x)))


def test_compound_scaling_table():
    # Stem / top channels and block counts of B0..B7 (keras.applications' rounding).
    stems = {v: round_filters(32, COMPOUND_SCALING[v][0]) for v in COMPOUND_SCALING}
    tops = {v: round_filters(1280, COMPOUND_SCALING[v][0]) for v in COMPOUND_SCALING}
    blocks = {v: sum(round_repeats(r, COMPOUND_SCALING[v][1]) for r in (1, 2, 2, 3, 3, 4, 1))
              for v in COMPOUND_SCALING}
    assert stems == {"b0": 32, "b1": 32, "b2": 32, "b3": 40, "b4": 48, "b5": 48, "b6": 56,
                     "b7": 64}
    assert tops == {"b0": 1280, "b1": 1280, "b2": 1408, "b3": 1536, "b4": 1792, "b5": 2048,
                    "b6": 2304, "b7": 2560}
    assert blocks == {"b0": 16, "b1": 23, "b2": 23, "b3": 26, "b4": 32, "b5": 39, "b6": 45,
                      "b7": 55}
    assert [COMPOUND_SCALING[v][2] for v in COMPOUND_SCALING] == [224, 240, 260, 300, 380,
                                                                   456, 528, 600]


def test_efficientnet_preprocessing_normalises_with_imagenet_statistics(b0_rgb):
    model = b0_rgb
    front = keras.Model(model.input, model.get_layer("preprocess_normalize").output)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    pixels = np.stack([np.full((32, 32, 3), 255 * mean), np.full((32, 32, 3), 255 * (mean + std))])
    out = np.asarray(front(pixels.astype("float32")))
    np.testing.assert_allclose(out[0], 0.0, atol=1e-5)
    np.testing.assert_allclose(out[1], 1.0, atol=1e-5)


# --------------------------------------------------------------------------- serialisation


def test_custom_layers_survive_save_and_load(tmp_path):
    models = [
        build_model("vit_tiny_patch4_32", input_shape=(16, 16, 3), num_classes=3, depth=1,
                    width=24, heads=2, mlp_dim=32),
        build_model("gmlp_s16", input_shape=(32, 32, 3), num_classes=3, depth=1, width=16,
                    ffn_dim=32, name="tiny_gmlp"),
        # A slim EfficientNet (7 blocks) keeps the save fast; same layers as B0.
        build_model("efficientnet_b0", input_shape=(32, 32, 3), num_classes=3,
                    width_coefficient=0.25, depth_coefficient=0.3, include_preprocessing=True),
    ]
    for model in models:
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        reloaded = keras.models.load_model(path)
        x = _batch(model.input_shape[1:], seed=6) * 50 + 100
        np.testing.assert_allclose(np.asarray(reloaded(x)), np.asarray(model(x)),
                                   rtol=1e-5, atol=1e-5)
    restored = keras.models.load_model(tmp_path / "efficientnet_b0.keras")
    assert isinstance(restored.get_layer("block6b_drop"), StochasticDepth)
    causal = MultiHeadSelfAttention(2, causal=True, dropout=0.1, name="a")
    clone = MultiHeadSelfAttention.from_config(causal.get_config())
    assert (clone.num_heads, clone.causal, clone.dropout) == (2, True, 0.1)

