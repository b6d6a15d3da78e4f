"""Sequence models (models/sequence.py): the attention functions against NumPy references,
causality, shorter prefixes, parameter counts, a few training steps and ``.keras`` round trips.

TensorFlow backend, tiny configurations (vocabulary 11, block 12, width 16). The PyTorch and JAX
runs are in tests/test_backends.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from kerasdl.errors import KerasdlUsageError  # noqa: E402
from kerasdl.models import build_model, list_models, model_info  # noqa: E402
from kerasdl.models.sequence import (  # noqa: E402
    favor_attention,
    gpt_param_count,
    lm_block_size,
    orthogonal_random_features,
    redraw_favor_features,
    softmax_attention,
)

V, T = 11, 12
TINY_GPT = dict(n_layer=2, n_head=2, n_embd=16)
TINY = {  # kind -> (registry name, overrides)
    "gpt": ("gpt_nano", TINY_GPT),
    "favor": ("performer_nano", dict(TINY_GPT, num_features=16, chunk=5)),  # T = 12: chunks 5, 5, 2 (+3 padded)
    "lstm": ("lstm_lm", dict(units=12)),
    "gru": ("gru_lm", dict(units=12)),
    "rnn": ("rnn_lm", dict(units=12, num_layers=1)),
}
LM_NAMES = {"gpt_nano", "gpt_shakespeare", "gpt2_small", "performer_nano", "lstm_lm", "gru_lm", "rnn_lm"}


def _tiny(kind, **overrides):
    name, cfg = TINY[kind]
    keras.utils.set_random_seed(0)
    return build_model(name, input_shape=(T,), num_classes=V, **{**cfg, **overrides})


def _tokens(b=2, t=T, seed=0):
    return np.random.default_rng(seed).integers(0, V, size=(b, t)).astype("int32")


def _np(x):
    return keras.ops.convert_to_numpy(x)


# --------------------------------------------------------------------------- NumPy references


def _softmax_reference(q, k, v, causal):
    q, k, v = (a.astype("float64") for a in (q, k, v))
    s = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    w = np.exp(s - s.max(-1, keepdims=True))
    return (w / w.sum(-1, keepdims=True)) @ v


def _favor_reference(q, k, v, w, causal):
    """The quadratic form of FAVOR+: phi(Q) phi(K)^T (masked), row-normalised, times V (float64)."""
    q, k, v, w = (a.astype("float64") for a in (q, k, v, w))
    m, d = w.shape

    def u(x):
        x = x * d ** -0.25
        return x @ w.T - 0.5 * (x ** 2).sum(-1, keepdims=True)

    uq, uk = u(q), u(k)
    pq = (np.exp(uq - uq.max(-1, keepdims=True)) + 1e-6) / math.sqrt(m)
    pk = np.exp(uk - uk.max(axis=(-2, -1), keepdims=True)) / math.sqrt(m)
    a = pq @ pk.swapaxes(-1, -2)
    if causal:
        a = a * np.tril(np.ones(a.shape[-2:]))
    return (a @ v) / a.sum(-1, keepdims=True)


def _qkv(t, d=8, b=2, h=3, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return tuple((scale * rng.normal(size=(b, h, t, d))).astype("float32") for _ in range(3))


@pytest.mark.parametrize("causal", [True, False])
def test_softmax_attention_matches_numpy(causal):
    q, k, v = _qkv(10)
    out = _np(softmax_attention(q, k, v, causal=causal))
    np.testing.assert_allclose(out, _softmax_reference(q, k, v, causal), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("t, chunk", [(37, 8), (16, 8), (5, 8), (64, 64), (1, 4)])
def test_favor_causal_matches_its_quadratic_form(t, chunk):
    q, k, v = _qkv(t, seed=t)
    w = orthogonal_random_features(16, 8, seed=3)
    out = _np(favor_attention(q, k, v, w, causal=True, chunk=chunk))
    assert out.shape == q.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, _favor_reference(q, k, v, w, causal=True), rtol=1e-5, atol=1e-5)


def test_favor_non_causal_matches_its_quadratic_form():
    q, k, v = _qkv(21)
    w = orthogonal_random_features(16, 8, seed=3)
    out = _np(favor_attention(q, k, v, w, causal=False))
    np.testing.assert_allclose(out, _favor_reference(q, k, v, w, causal=False), rtol=1e-5, atol=1e-5)


def test_favor_causal_is_exact_under_large_key_spread():
    """Keys 4x larger in the second half (exponents far apart): every factor stays <= 1, still exact."""
    q, k, v = _qkv(40, seed=5)
    k[:, :, 20:] *= 4.0
    w = orthogonal_random_features(16, 8, seed=4)
    out = _np(favor_attention(q, k, v, w, causal=True, chunk=8))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, _favor_reference(q, k, v, w, causal=True), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("causal", [True, False])
def test_favor_approximates_softmax_with_many_features(causal):
    """m = 2048 orthogonal random features vs exact attention (d = 16, T = 64, q, k, v ~ N(0, 0.25)):
    mean absolute error 0.0042 causal / 0.0026 not (the outputs average 0.094 / 0.043 in absolute
    value), against 0.034 / 0.022 with m = 16: the error falls like 1 / sqrt(m)."""
    q, k, v = _qkv(64, d=16, b=1, h=2, seed=7, scale=0.5)
    exact = _softmax_reference(q, k, v, causal)
    errors = {}
    for m in (16, 2048):
        w = orthogonal_random_features(m, 16, seed=11)
        errors[m] = float(np.mean(np.abs(_np(favor_attention(q, k, v, w, causal=causal, chunk=16)) - exact)))
    assert errors[2048] < 0.01, errors
    assert errors[2048] < errors[16] / 4, errors


def test_orthogonal_features_are_orthogonal_blocks_and_reproducible():
    w = orthogonal_random_features(40, 16, seed=1)
    assert w.shape == (40, 16) and w.dtype == np.float32
    for block in (w[:16], w[16:32]):
        gram = block @ block.T
        np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0.0, atol=1e-4)
    np.testing.assert_array_equal(w, orthogonal_random_features(40, 16, seed=1))
    assert not np.allclose(w, orthogonal_random_features(40, 16, seed=2))
    # Haar-distributed blocks (sign-corrected QR): no coordinate of a block's first row is biased.
    many = orthogonal_random_features(16 * 400, 16, seed=0)
    assert abs(float(many[::16, 0].mean())) < 0.2
    fixed = orthogonal_random_features(16, 16, seed=1, scaling=1)
    np.testing.assert_allclose(np.linalg.norm(fixed, axis=1), 4.0, rtol=1e-5)


# --------------------------------------------------------------------------- the models


@pytest.mark.parametrize("kind", list(TINY))
def test_changing_a_token_changes_no_earlier_logit(kind):
    model = _tiny(kind)
    x = _tokens()
    pos = 7
    y = x.copy()
    y[:, pos] = (y[:, pos] + 1) % V
    a, b = _np(model(x)), _np(model(y))
    assert a.shape == (2, T, V) and a.dtype == np.float32
    np.testing.assert_array_equal(a[:, :pos], b[:, :pos])  # bit for bit
    assert not np.allclose(a[:, pos], b[:, pos])


@pytest.mark.parametrize("kind", list(TINY))
def test_shorter_prefixes_give_the_first_logits_of_a_full_pass(kind):
    model = _tiny(kind)
    x = _tokens(seed=1)
    full = _np(model(x))
    for t in (1, 5, T - 1):
        part = _np(model(x[:, :t]))
        assert part.shape == (2, t, V)
        np.testing.assert_allclose(part, full[:, :t], rtol=1e-5, atol=1e-5)
    # The compiled path (tf.function; the later calls retrace with a dynamic length).
    for t in (3, 7, T):
        np.testing.assert_allclose(model.predict(x[:, :t], verbose=0), full[:, :t], rtol=1e-5, atol=1e-5)


def test_registry_entries_and_layout():
    assert LM_NAMES <= set(list_models(role="lm"))
    assert {"gpt_classifier", "lstm_classifier"} <= set(list_models(role="sequence"))
    info = model_info("gpt_nano")
    assert (info.family, info.task, info.role) == ("sequence", "lm", "lm")
    assert (info.default_input_shape, info.default_num_classes, info.smoke_input_shape) == ((64,), 65, (16,))
    assert model_info("gpt2_small").default_num_classes == 50257
    assert model_info("gpt_classifier").required == ("input_shape", "num_classes", "vocab_size")
    model = _tiny("gpt")
    assert model.inputs[0].name == "tokens" and model.inputs[0].dtype == "int32"
    assert model.inputs[0].shape == (None, None)
    assert model.layers[-1].name == "logits" and lm_block_size(model) == T
    paths = {w.path for w in model.weights}
    assert {"embed_tokens/embeddings", "embed_position/embeddings", "block1_attn/qkv/kernel",
            "block1_attn/proj/kernel", "block2_mlp/fc/kernel", "block2_mlp/proj/kernel", "ln_f/gamma"} <= paths
    assert not any(p.endswith("bias") or p.endswith("beta") for p in paths)  # bias=False
    assert lm_block_size(_tiny("lstm")) is None


def test_gpt_parameter_counts_follow_the_formula():
    nano = build_model("gpt_nano")  # V = 65, T = 64
    assert nano.count_params() == gpt_param_count(65, 64, 4, 128) == 804_096
    assert 804_096 - 64 * 128 == 795_904  # nanoGPT's get_num_params(): positions left out (0.80M)
    untied = build_model("gpt_nano", tie_weights=False)
    assert untied.count_params() - nano.count_params() == 65 * 128  # tying removes V * E
    biased = build_model("gpt_nano", input_shape=(T,), num_classes=V, bias=True, **TINY_GPT)
    assert biased.count_params() == gpt_param_count(V, T, 2, 16, bias=True)
    assert gpt_param_count(65, 256, 6, 384) == 10_745_088  # gpt_shakespeare (nanoGPT: 10.65M + positions)
    assert gpt_param_count(50257, 1024, 12, 768, bias=True) == 124_439_808  # GPT-2 small
    performer = build_model("performer_nano")
    trainable = sum(int(np.prod(w.shape)) for w in performer.trainable_weights)
    assert trainable == 804_096 and performer.count_params() == 804_096 + 4 * 64 * 32  # + fixed features


def test_rnn_lm_parameter_counts():
    counts = {name: build_model(name).count_params() for name in ("lstm_lm", "gru_lm", "rnn_lm")}
    assert counts == {"lstm_lm": 804_825, "gru_lm": 804_099, "rnn_lm": 803_585}
    tied = build_model("lstm_lm", tie_weights=True)
    assert counts["lstm_lm"] - tied.count_params() == 65 * 220 + 65  # the Dense(V) and its bias


@pytest.mark.parametrize("kind", ["gpt", "favor", "lstm"])
def test_a_few_steps_learn_a_repeated_pattern(kind):
    model = _tiny(kind)
    seq = np.tile(np.arange(5), 12)
    x = np.stack([seq[i:i + T] for i in range(8)]).astype("int32")
    y = np.stack([seq[i + 1:i + T + 1] for i in range(8)]).astype("int32")
    model.compile(optimizer=keras.optimizers.Adam(3e-2 if kind == "lstm" else 1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = [float(model.train_on_batch(x, y)) for _ in range(25)]
    assert all(np.isfinite(losses)) and losses[-1] < (0.7 if kind == "lstm" else 0.5) * losses[0], losses


@pytest.mark.parametrize("kind", ["favor", "lstm"])
def test_keras_archive_round_trip(kind, tmp_path):
    model = _tiny(kind, tie_weights=True)
    x = _tokens(seed=2)
    path = tmp_path / "model.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(_np(again(x)), _np(model(x)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(_np(again(x[:, :4])), _np(model(x))[:, :4], rtol=1e-5, atol=1e-5)


def test_favor_features_are_fixed_until_redrawn():
    model, twin = _tiny("favor"), _tiny("favor")
    x = _tokens(seed=3)
    before = _np(model(x))
    np.testing.assert_array_equal(before, _np(twin(x)))  # seeded: reproducible
    assert redraw_favor_features(model) == 2
    assert not np.allclose(_np(model(x)), before)
    redraw_favor_features(model, seed=0)  # block i gets seed + i - 1: the build's draw again
    np.testing.assert_array_equal(_np(model(x)), before)


@pytest.mark.parametrize("name, cfg", [
    ("gpt_classifier", TINY_GPT),
    ("gpt_classifier", dict(TINY_GPT, attention="favor", num_features=8, chunk=4, pooling="mean")),
    ("lstm_classifier", dict(units=8)),
    ("lstm_classifier", dict(units=8, cell="gru", pooling="mean", dropout=0.1)),
])
def test_sequence_classifiers(name, cfg, tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model(name, input_shape=(T,), num_classes=3, vocab_size=V, **cfg)
    x = _tokens(b=4)
    out = _np(model(x))
    assert out.shape == (4, 3) and np.all(np.isfinite(out)) and model.layers[-1].name == "head_logits"
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert np.isfinite(float(model.train_on_batch(x, np.arange(4) % 3)))
    path = tmp_path / "classifier.keras"
    model.save(path)
    np.testing.assert_allclose(_np(keras.saving.load_model(path)(x)), _np(model(x)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name, kwargs, match", [
    ("gpt_nano", dict(n_embd=30), "divisible by n_head"),
    ("gpt_nano", dict(input_shape=(8, 8)), "token sequences"),
    ("gpt_nano", dict(attention="linear"), "attention must be one of"),
    ("gpt_nano", dict(dropout=1.0), "dropout"),
    ("lstm_lm", dict(tie_weights=True, embedding_dim=10), "units == embedding_dim"),
    ("lstm_lm", dict(cell="transformer"), "cell must be one of"),
    ("gpt_classifier", dict(pooling="max"), "pooling must be one of"),
])
def test_bad_options_are_one_line_errors(name, kwargs, match):
    with pytest.raises(KerasdlUsageError, match=match) as exc:
        build_model(name, **kwargs)
    assert "\n" not in str(exc.value)
