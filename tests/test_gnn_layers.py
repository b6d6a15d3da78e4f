"""The graph layers (models/gnn.py) against dense NumPy references, and the GNN builders end to end.

TensorFlow backend, tiny graphs (7 nodes). The PyTorch / JAX runs are in tests/test_backends.py.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from kerasdl.errors import KerasdlUsageError  # noqa: E402
from kerasdl.models import build_model, model_info  # noqa: E402
from kerasdl.models.gnn import (  # noqa: E402
    GATConv, GCNConv, GINConv, GraphReadout, SAGEConv, prepare_graph_model,
)

N, F = 7, 5
BUILDERS = ("gcn", "gat", "graphsage", "gin", "deepsets")


def _graph(seed=0, n=N, f=F, isolated=True):
    """Random directed edges without duplicates, one self-loop, and (``isolated``) a last node
    with no edge at all."""
    rng = np.random.default_rng(seed)
    m = n - 1 if isolated else n
    a = (rng.uniform(size=(m, m)) < 0.35).astype("float32")
    np.fill_diagonal(a, 0.0)
    a[0, 0] = 1.0  # a self-loop 0 -> 0
    dst, src = np.nonzero(a)  # a[dst, src] = 1: an edge src -> dst
    edges = np.stack([src, dst], axis=1).astype("int32")
    x = rng.normal(size=(n, f)).astype("float32")
    adj = np.zeros((n, n), "float32")
    adj[:m, :m] = a
    return x, edges, adj  # adj[i, j] = 1 for an edge j -> i


def _np(v):
    return keras.ops.convert_to_numpy(v)


def _leaky(v, slope=0.2):
    return np.where(v > 0, v, slope * v)


# --------------------------------------------------------------------------- dense references


def test_gcn_matches_dense_reference():
    x, edges, adj = _graph()
    layer = GCNConv(4, activation=None)
    out = _np(layer([x, edges]))
    a_hat = adj * (1 - np.eye(N)) + np.eye(N)  # the existing self-loop is not counted twice
    d = a_hat.sum(1) ** -0.5
    ref = (d[:, None] * a_hat * d[None, :]) @ x @ _np(layer.kernel) + _np(layer.bias)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    # The isolated node: its own row only, Â_ii = 1.
    np.testing.assert_allclose(out[-1], x[-1] @ _np(layer.kernel) + _np(layer.bias), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("normalize", [False, True])
def test_sage_matches_dense_reference(normalize):
    x, edges, adj = _graph(1)
    layer = SAGEConv(3, activation="relu", normalize=normalize)
    out = _np(layer([x, edges]))
    mean = adj @ x / np.maximum(adj.sum(1, keepdims=True), 1)  # isolated: 0
    ref = np.maximum(x @ _np(layer.self_kernel) + mean @ _np(layer.neigh_kernel) + _np(layer.bias), 0)
    if normalize:
        ref = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-6)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("concat", [True, False])
def test_gat_matches_dense_masked_softmax(concat):
    x, edges, adj = _graph(2)
    heads, units = 3, 2
    layer = GATConv(units, heads=heads, concat=concat, attention_dropout=0.5)
    out = _np(layer([x, edges], training=False))  # attention dropout off at inference
    w, a_s, a_d = _np(layer.kernel), _np(layer.attn_src), _np(layer.attn_dst)
    mask = (adj + np.eye(N)) > 0  # self-loops included
    per_head = []
    for k in range(heads):
        z = x @ w[:, k * units:(k + 1) * units]
        e = _leaky((z @ a_d[k])[:, None] + (z @ a_s[k])[None, :])  # e[i, j] for j -> i
        e = np.where(mask, e, -np.inf)
        alpha = np.exp(e - e.max(1, keepdims=True))
        alpha /= alpha.sum(1, keepdims=True)
        per_head.append(alpha @ z)
    ref = np.concatenate(per_head, 1) if concat else np.mean(per_head, 0)
    np.testing.assert_allclose(out, ref + _np(layer.bias), rtol=1e-5, atol=1e-5)


def test_gat_attention_dropout_only_in_training():
    x, edges, _ = _graph(3)
    layer = GATConv(2, heads=2, attention_dropout=0.9, seed=1)
    a = _np(layer([x, edges], training=False))
    np.testing.assert_allclose(a, _np(layer([x, edges], training=False)))
    assert not np.allclose(a, _np(layer([x, edges], training=True)))


@pytest.mark.parametrize("train_eps", [False, True])
def test_gin_matches_dense_reference(train_eps):
    x, edges, adj = _graph(4)
    layer = GINConv((6, 4), eps=0.3, train_eps=train_eps)
    out = _np(layer([x, edges], training=False))
    h = 1.3 * x + adj @ x  # the sum aggregator (a self-loop in edges is a neighbour)
    for dense, bn in zip(layer.dense, layer.norm):
        h = h @ _np(dense.kernel) + _np(dense.bias)
        h = (h - _np(bn.moving_mean)) / np.sqrt(_np(bn.moving_variance) + bn.epsilon) * _np(bn.gamma) + _np(bn.beta)
        h = np.maximum(h, 0)
    np.testing.assert_allclose(out, h, rtol=1e-5, atol=1e-5)
    assert [w.name for w in layer.trainable_weights].count("eps") == int(train_eps)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_readout_matches_reference(mode):
    rng = np.random.default_rng(5)
    h = rng.normal(size=(N, 3)).astype("float32")
    ids = np.array([0, 0, 0, 1, 2, 2, 2], "int32")
    out = _np(GraphReadout(mode)([h, ids]))
    ref = np.stack([getattr(np, mode)(h[ids == g], axis=0) for g in range(3)])
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_readout_rejects_unknown_mode():
    with pytest.raises(KerasdlUsageError, match="mode must be one of"):
        GraphReadout("median")


def _layers():
    return [GCNConv(3), SAGEConv(3, normalize=True), GATConv(2, heads=2), GINConv((4,), eps=0.1)]


@pytest.mark.parametrize("make", range(4), ids=["gcn", "sage", "gat", "gin"])
def test_permutation_equivariance(make):
    x, edges, _ = _graph(6)
    layer = _layers()[make]
    out = _np(layer([x, edges], training=False))
    perm = np.random.default_rng(0).permutation(N)
    inv = np.argsort(perm)  # old node o is new node inv[o]
    out_p = _np(layer([x[perm], inv[edges].astype("int32")], training=False))
    np.testing.assert_allclose(out_p, out[perm], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", range(4), ids=["gcn", "sage", "gat", "gin"])
def test_graph_without_edges(make):
    x = np.random.default_rng(7).normal(size=(4, F)).astype("float32")
    out = _np(_layers()[make]([x, np.zeros((0, 2), "int32")], training=False))
    assert out.shape[0] == 4 and np.all(np.isfinite(out))


# --------------------------------------------------------------------------- the builders


def _inputs(level, seed=0, n=N):
    x, edges, _ = _graph(seed, n=n, f=8)
    inp = {"x": x, "edges": edges}
    if level == "graph":
        inp["graph_ids"] = np.sort(np.arange(n) % 3).astype("int32")  # 3 graphs
    return inp


@pytest.mark.parametrize("level", ["node", "graph"])
@pytest.mark.parametrize("name", BUILDERS)
def test_builder_trains_fits_and_reloads(name, level, tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model(name, input_shape=(8,), num_classes=3, level=level)
    assert model.name == name and model.layers[-1].name == "head_logits"
    assert set(model.input) == ({"x", "edges", "graph_ids"} if level == "graph" else {"x", "edges"})
    # The number of graphs is data-dependent: no XLA / jax.jit at level graph (jit_compile="auto").
    assert all(layer.supports_jit for layer in model.layers) == (level == "node")
    inp = _inputs(level)
    rows = N if level == "node" else 3
    out = _np(model(inp, training=False))
    assert out.shape == (rows, 3) and np.all(np.isfinite(out))

    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [_np(w).copy() for w in model.trainable_weights]
    loss = float(model.train_on_batch(inp, np.arange(rows) % 3))
    assert np.isfinite(loss)
    after = [_np(w) for w in model.trainable_weights]
    assert any(not np.allclose(b, a) for b, a in zip(before, after))

    # model.fit in graph mode: two graph batches of different N and E, one tf.data element each.
    spec = {"x": tf.TensorSpec((None, 8), tf.float32), "edges": tf.TensorSpec((None, 2), tf.int32)}
    if level == "graph":
        spec["graph_ids"] = tf.TensorSpec((None,), tf.int32)

    def batches():
        for seed, n in ((1, 7), (2, 11)):
            b = _inputs(level, seed, n)
            yield b, (np.arange(n if level == "node" else 3) % 3).astype("int32")

    ds = tf.data.Dataset.from_generator(batches, output_signature=(spec, tf.TensorSpec((None,), tf.int32)))
    ds = ds.apply(tf.data.experimental.assert_cardinality(2))
    steps = int(model.optimizer.iterations)
    history = model.fit(ds, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][-1]) and int(model.optimizer.iterations) == steps + 2

    path = tmp_path / f"{name}_{level}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(_np(reloaded(inp, training=False)), _np(model(inp, training=False)),
                               rtol=1e-5, atol=1e-5)


def test_cora_parameter_counts():
    # Kipf & Welling: 1433*16 + 16 + 16*7 + 7; GAT: 8 heads x 8 on 1433 features, 1 output head.
    assert build_model("gcn").count_params() == 23_063
    gat = build_model("gat")
    assert gat.count_params() == 1433 * 64 + 2 * 64 + 64 + 64 * 7 + 2 * 7 + 7 == 92_373
    assert model_info("gcn").role == "graph" and model_info("gcn").family == "gnn"


def test_weight_decay_is_kipfs_half_l2_on_the_first_layer():
    model = build_model("gcn", input_shape=(8,), num_classes=3)
    model(_inputs("node"))
    w1 = _np(model.get_layer("conv1").kernel)
    assert len(model.losses) == 1
    np.testing.assert_allclose(float(_np(model.losses[0])), 5e-4 * np.sum(w1 ** 2) / 2, rtol=1e-5)
    gat = build_model("gat", input_shape=(8,), num_classes=3)
    gat(_inputs("node"))
    assert len(gat.losses) == 6  # kernel + two attention vectors, both layers


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(KerasdlUsageError, match="level must be one of"):
        build_model("gcn", input_shape=(8,), num_classes=3, level="edge")
    with pytest.raises(KerasdlUsageError, match=r"node feature vectors \(F,\)"):
        build_model("gat", input_shape=(8, 8), num_classes=3)
    with pytest.raises(KerasdlUsageError, match="weight_decay"):
        build_model("gcn", input_shape=(8,), num_classes=3, weight_decay=-1)


def test_prepare_graph_model_is_harmless_on_tensorflow():
    model = build_model("gin", input_shape=(8,), num_classes=3, level="graph", num_layers=1)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    inp, y = _inputs("graph"), np.array([0, 1, 2])
    prepare_graph_model(model, inp, y)
    logs = model.train_on_batch(inp, y, return_dict=True)
    assert np.isfinite(logs["loss"]) and 0 <= logs["accuracy"] <= 1


@pytest.mark.parametrize("name", ["gcn", "gat"])
def test_node_level_compiles_with_xla(name):
    """What jit_compile="auto" picks on a GPU: XLA, with N and E static per compiled shape."""
    model = build_model(name, input_shape=(8,), num_classes=3, num_layers=2)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    for seed, n in ((0, 7), (1, 9)):
        assert np.isfinite(float(model.train_on_batch(_inputs("node", seed, n), np.arange(n) % 3)))
