"""Graph neural networks: message-passing layers and node / graph classifiers on Keras 3.

A graph batch is three tensors (the node axis is Keras's batch axis, so one "batch" is one graph,
or many small graphs stacked as one disjoint graph):

* ``x`` (N, F) float node features;
* ``edges`` (E, 2) int32 edge index: column 0 the source, column 1 the target; messages flow
  source -> target (store an undirected graph with both directions);
* ``graph_ids`` (N,) int32, only at ``level="graph"``: the graph of each node, sorted, 0..G-1.

The layers use ``keras.ops`` only (``take`` to gather, ``segment_sum`` / ``segment_max`` to
scatter), so they run on TensorFlow (graph mode, dynamic N and E), PyTorch and JAX. The graph
readout's number of graphs, ``max(graph_ids) + 1``, is data-dependent: a graph-level model is not
XLA-compiled (``jit_compile="auto"`` gives False; on JAX it runs eagerly) and on PyTorch / JAX it
needs :func:`prepare_graph_model` once after ``compile()``. Node-level models also jit (XLA, JAX).
Layers take ``[x, edges]``:

* :class:`GCNConv` -- Kipf & Welling 2017, "Semi-supervised classification with graph
  convolutional networks" (ICLR): ``D^-1/2 (A + I) D^-1/2 X W``;
* :class:`SAGEConv` -- Hamilton, Ying & Leskovec 2017, "Inductive representation learning on
  large graphs" (NeurIPS), the mean aggregator;
* :class:`GATConv` -- Velickovic et al. 2018, "Graph attention networks" (ICLR), multi-head;
* :class:`GINConv` -- Xu, Hu, Leskovec & Jegelka 2019, "How powerful are graph neural
  networks?" (ICLR);
* :class:`GraphReadout` -- ``[h, graph_ids] -> (G, F)``: sum, mean or max over each graph's nodes.

Builders (one generic :func:`GNN`; the registry entries ``gcn``, ``gat``, ``graphsage``, ``gin``,
``deepsets`` bind the papers' configurations) take ``(input_shape=(F,), num_classes=C, *,
level="node"|"graph", **overrides)`` and return a functional model with DICT inputs ``{"x",
"edges"[, "graph_ids"]}`` and logits (N, C) at level node, (G, C) at level graph.

``weight_decay`` is Kipf's and Velickovic's ``weight_decay * tf.nn.l2_loss(W)`` = ``weight_decay
* sum(W**2) / 2``, so it is a Keras ``L2(weight_decay / 2)`` regularizer on the kernels.

Layer names: ``x``, ``edges``, ``graph_ids`` (inputs), ``conv{i}`` and ``dropout{i}`` (its input
dropout), ``readout``, ``jk{i}_readout`` / ``jk{i}_dropout`` / ``jk{i}_logits`` (GIN's
per-layer prediction at level graph), ``mlp{i}`` (DeepSets), and ``head_logits``: the output
layer, whatever its type (the last convolution of a node-level GCN / GAT / GraphSAGE).
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
from keras import ops

from kerasdl.errors import KerasdlUsageError

from ._common import check_bool, check_choice, check_int, check_rate, check_shape
from .registry import register_model

LEVELS = ("node", "graph")
CONVS = ("gcn", "sage", "gat", "gin", "none")
READOUTS = ("sum", "mean", "max")

_SERIALIZABLE = keras.saving.register_keras_serializable(package="kerasdl")


# --------------------------------------------------------------------------- helpers


def _split_edges(edges):
    """``(E, 2)`` -> (source, target), int32."""
    edges = ops.cast(edges, "int32")
    return edges[:, 0], edges[:, 1]


def _num_nodes(x):
    return ops.shape(x)[0]


class _Conv(keras.layers.Layer):
    """Shared plumbing: ``units``, activation, bias and the kernel regularizer; ``[x, edges]`` input."""

    def __init__(self, units: int, activation=None, use_bias: bool = True, kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def _kernel(self, name, shape):
        return self.add_weight(name=name, shape=shape, initializer="glorot_uniform",
                               regularizer=self.kernel_regularizer)

    def _bias(self, units):
        return self.add_weight(name="bias", shape=(units,), initializer="zeros") if self.use_bias else None

    @property
    def output_units(self) -> int:
        return self.units

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.output_units)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": keras.activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer)}


@_SERIALIZABLE
class GCNConv(_Conv):
    """Graph convolution (Kipf & Welling 2017): ``act(D^-1/2 (A + I) D^-1/2 X W + b)``.

    Self-loops are added inside (a self-loop already in ``edges`` is ignored, not counted
    twice); ``D`` is the degree of ``A + I``: a node's in-degree + 1. ``[x, edges] -> (N, units)``.
    ``[x, edges, weights (E, 1)]``: a weighted ``A`` (degree = sum of incoming weights + 1), as
    PyG's ``GCNConv(edge_weight=...)``.
    """

    def build(self, input_shape):
        self.kernel = self._kernel("kernel", (int(input_shape[0][-1]), self.units))
        self.bias = self._bias(self.units)

    def call(self, inputs):
        x, edges = inputs[0], inputs[1]
        src, dst = _split_edges(edges)
        n = _num_nodes(x)
        h = ops.matmul(x, self.kernel)
        keep = ops.cast(ops.not_equal(src, dst), h.dtype)  # (E,) existing self-loops -> 0
        if len(inputs) > 2:  # edge weights (E, 1)
            keep = keep * ops.reshape(ops.cast(inputs[2], h.dtype), (-1,))
        deg = ops.segment_sum(keep, dst, num_segments=n) + 1.0  # (N,)
        dinv = ops.rsqrt(deg)
        coef = ops.take(dinv, src, axis=0) * ops.take(dinv, dst, axis=0) * keep  # (E,)
        messages = ops.take(h, src, axis=0) * coef[:, None]
        out = ops.segment_sum(messages, dst, num_segments=n) + h * (dinv * dinv)[:, None]
        if self.bias is not None:
            out = out + self.bias
        return self.activation(out)


@_SERIALIZABLE
class SAGEConv(_Conv):
    """GraphSAGE, mean aggregator (Hamilton et al. 2017): ``W_self x_i + W_neigh mean_{j->i} x_j + b``.

    Concatenating ``[x_i, mean_j x_j]`` before one matrix, as in the paper, is the same map. A
    node without in-edges aggregates 0. ``normalize=True`` L2-normalises the output rows (the
    paper's line 7, after the activation). ``[x, edges] -> (N, units)``.
    """

    def __init__(self, units: int, activation=None, use_bias: bool = True, kernel_regularizer=None,
                 normalize: bool = False, **kwargs):
        super().__init__(units, activation, use_bias, kernel_regularizer, **kwargs)
        self.normalize = bool(normalize)

    def build(self, input_shape):
        f = int(input_shape[0][-1])
        self.self_kernel = self._kernel("self_kernel", (f, self.units))
        self.neigh_kernel = self._kernel("neigh_kernel", (f, self.units))
        self.bias = self._bias(self.units)

    def call(self, inputs):
        x, edges = inputs
        src, dst = _split_edges(edges)
        n = _num_nodes(x)
        total = ops.segment_sum(ops.take(x, src, axis=0), dst, num_segments=n)
        count = ops.segment_sum(ops.ones_like(src, dtype=x.dtype), dst, num_segments=n)
        mean = total / ops.maximum(count, 1.0)[:, None]
        out = ops.matmul(x, self.self_kernel) + ops.matmul(mean, self.neigh_kernel)
        if self.bias is not None:
            out = out + self.bias
        out = self.activation(out)
        if self.normalize:
            out = out * ops.rsqrt(ops.maximum(ops.sum(out * out, axis=-1, keepdims=True), 1e-12))
        return out

    def get_config(self):
        return {**super().get_config(), "normalize": self.normalize}


@_SERIALIZABLE
class GATConv(_Conv):
    """Graph attention (Velickovic et al. 2018), ``heads`` independent heads.

    Per head ``k``: ``z = x W_k``; ``e_ij = LeakyReLU(a_dst . z_i + a_src . z_j)`` for each edge
    ``j -> i`` and the self-loop ``i -> i`` (added inside; an existing self-loop in ``edges`` is
    ignored); ``alpha_ij`` = softmax of ``e_ij`` over ``i``'s incoming edges (the segment max
    subtracted first, for stability); dropout on the ``alpha`` in training; ``h_i = sum_j
    alpha_ij z_j``. Heads are concatenated (``concat=True``: ``heads * units`` outputs) or
    averaged (``units``); then the bias and the activation. ``kernel_regularizer`` applies to
    ``W`` and to the attention vectors, as in the authors' code.
    """

    def __init__(self, units: int, heads: int = 8, concat: bool = True, attention_dropout: float = 0.0,
                 negative_slope: float = 0.2, activation=None, use_bias: bool = True, kernel_regularizer=None,
                 seed: int | None = None, **kwargs):
        super().__init__(units, activation, use_bias, kernel_regularizer, **kwargs)
        self.heads, self.concat = int(heads), bool(concat)
        self.attention_dropout, self.negative_slope = float(attention_dropout), float(negative_slope)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def output_units(self) -> int:
        return self.heads * self.units if self.concat else self.units

    def build(self, input_shape):
        f = int(input_shape[0][-1])
        self.kernel = self._kernel("kernel", (f, self.heads * self.units))
        self.attn_src = self._kernel("attn_src", (self.heads, self.units))
        self.attn_dst = self._kernel("attn_dst", (self.heads, self.units))
        self.bias = self._bias(self.output_units)

    def _drop(self, alpha, training):
        if training and self.attention_dropout > 0:
            return keras.random.dropout(alpha, self.attention_dropout, seed=self.seed_generator)
        return alpha

    def call(self, inputs, training=None):
        x, edges = inputs
        src, dst = _split_edges(edges)
        n = _num_nodes(x)
        z = ops.reshape(ops.matmul(x, self.kernel), (-1, self.heads, self.units))  # (N, H, U)
        s_src = ops.sum(z * self.attn_src, axis=-1)  # (N, H)
        s_dst = ops.sum(z * self.attn_dst, axis=-1)
        e = ops.leaky_relu(ops.take(s_dst, dst, axis=0) + ops.take(s_src, src, axis=0),
                           negative_slope=self.negative_slope)  # (E, H)
        e_self = ops.leaky_relu(s_dst + s_src, negative_slope=self.negative_slope)  # (N, H)
        keep = ops.cast(ops.not_equal(src, dst), e.dtype)[:, None]  # (E, 1)
        # Softmax over {j -> i} and i -> i: shift by the max (no gradient through the shift).
        low = ops.cast(-1e9, e.dtype)
        e_masked = ops.where(keep > 0, e, low)
        top = ops.maximum(ops.segment_max(e_masked, dst, num_segments=n), e_self)  # (N, H)
        top = ops.stop_gradient(top)
        w = ops.exp(e_masked - ops.take(top, dst, axis=0)) * keep  # (E, H)
        w_self = ops.exp(e_self - top)  # (N, H)
        denom = ops.segment_sum(w, dst, num_segments=n) + w_self  # >= 1 at the max: never 0
        alpha = self._drop(w / ops.take(denom, dst, axis=0), training)  # (E, H)
        alpha_self = self._drop(w_self / denom, training)
        messages = ops.take(z, src, axis=0) * alpha[:, :, None]  # (E, H, U)
        out = ops.segment_sum(messages, dst, num_segments=n) + z * alpha_self[:, :, None]  # (N, H, U)
        out = ops.reshape(out, (-1, self.heads * self.units)) if self.concat else ops.mean(out, axis=1)
        if self.bias is not None:
            out = out + self.bias
        return self.activation(out)

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "concat": self.concat,
                "attention_dropout": self.attention_dropout, "negative_slope": self.negative_slope,
                "seed": self.seed}


@_SERIALIZABLE
class GINConv(keras.layers.Layer):
    """Graph isomorphism layer (Xu et al. 2019): ``MLP((1 + eps) x_i + sum_{j->i} x_j)``.

    The MLP is, per entry of ``mlp_units``, Dense -> BatchNorm -> ReLU (the authors' 2-layer MLP
    and the batch norm + ReLU after it). ``eps`` is fixed (GIN-0: ``eps=0``) or learnt
    (``train_eps=True``, GIN-eps). ``[x, edges] -> (N, mlp_units[-1])``. With edge features,
    ``[x, edges, edge_attr (E, D)]``, the messages are GINE's ``ReLU(x_j + W e_ji)`` (Hu et al.
    2020, "Strategies for pre-training graph neural networks", ICLR).
    """

    def __init__(self, mlp_units: Sequence[int] = (64, 64), eps: float = 0.0, train_eps: bool = False,
                 kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.mlp_units = tuple(int(u) for u in mlp_units)
        self.eps, self.train_eps = float(eps), bool(train_eps)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.dense, self.norm = [], []
        for i, units in enumerate(self.mlp_units, start=1):
            self.dense.append(keras.layers.Dense(units, kernel_regularizer=self.kernel_regularizer,
                                                 name=f"dense{i}"))
            self.norm.append(keras.layers.BatchNormalization(name=f"bn{i}"))

    def build(self, input_shape):
        self.eps_weight = self.add_weight(name="eps", shape=(), trainable=self.train_eps,
                                          initializer=keras.initializers.Constant(self.eps))
        f = int(input_shape[0][-1])
        self.edge_dense = None
        if len(input_shape) > 2:  # GINE: edge features mapped to the node features' width
            self.edge_dense = keras.layers.Dense(f, kernel_regularizer=self.kernel_regularizer, name="edge")
            self.edge_dense.build((None, int(input_shape[2][-1])))
        for dense, norm in zip(self.dense, self.norm):
            dense.build((None, f))
            f = dense.units
            norm.build((None, f))

    def call(self, inputs, training=None):
        x, edges = inputs[0], inputs[1]
        src, dst = _split_edges(edges)
        messages = ops.take(x, src, axis=0)
        if self.edge_dense is not None:
            messages = ops.relu(messages + self.edge_dense(ops.cast(inputs[2], x.dtype)))
        agg = ops.segment_sum(messages, dst, num_segments=_num_nodes(x))
        h = (1.0 + ops.cast(self.eps_weight, x.dtype)) * x + agg
        for dense, norm in zip(self.dense, self.norm):
            h = ops.relu(norm(dense(h), training=training))
        return h

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.mlp_units[-1])

    def get_config(self):
        return {**super().get_config(), "mlp_units": list(self.mlp_units), "eps": self.eps,
                "train_eps": self.train_eps,
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer)}


@_SERIALIZABLE
class GraphReadout(keras.layers.Layer):
    """``[h (N, F), graph_ids (N,)] -> (G, F)``, ``G = max(graph_ids) + 1``: the sum, mean or max of
    each graph's node rows (Xu et al. 2019 use the sum: it keeps multiset sizes apart).

    ``G`` is data-dependent, which XLA / ``jax.jit`` cannot compile, so the layer sets
    ``supports_jit = False``: ``compile(jit_compile="auto")`` then runs a graph-level model without
    XLA on TensorFlow and eagerly on JAX.
    """

    def __init__(self, mode: str = "sum", **kwargs):
        super().__init__(**kwargs)
        self.supports_jit = False
        if mode not in READOUTS:
            raise KerasdlUsageError(f"GraphReadout: mode must be one of {', '.join(READOUTS)}. "
                                    f"Received: mode={mode!r}")
        self.mode = mode

    def call(self, inputs):
        h, ids = inputs
        ids = ops.cast(ids, "int32")
        g = ops.max(ids) + 1
        if keras.backend.backend() == "torch":
            g = int(g)  # torch builds the result with torch.ones(*shape)
        if self.mode == "max":
            return ops.segment_max(h, ids, num_segments=g)
        total = ops.segment_sum(h, ids, num_segments=g)
        if self.mode == "sum":
            return total
        count = ops.segment_sum(ops.ones_like(ids, dtype=h.dtype), ids, num_segments=g)
        return total / ops.maximum(count, 1.0)[:, None]

    def compute_output_shape(self, input_shape):
        return (None, input_shape[0][-1])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@_SERIALIZABLE
class IgnoreEdges(keras.layers.Layer):
    """``[x, edges] -> x``: keeps the ``edges`` input in a model that passes no messages (DeepSets),
    so every graph model takes the same inputs."""

    def call(self, inputs):
        return inputs[0]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])


def prepare_graph_model(model: keras.Model, x: Any, y: Any, sample_weight: Any = None) -> None:
    """Build a compiled graph-level model's loss and metrics on one real batch, eagerly.

    Keras builds them on the first ``fit`` / ``train_on_batch`` by tracing the model symbolically;
    a graph-level model's number of output rows (the number of graphs) is data-dependent, so on
    PyTorch the trace makes up a row count that disagrees with the labels, and on JAX
    ``max(graph_ids)`` cannot be traced. Call this once after ``compile()`` there (harmless on
    TensorFlow and at level node); the metrics it touched are reset.
    """
    y_pred = model(x, training=False)
    model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)
    model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
    model.reset_metrics()


# --------------------------------------------------------------------------- the generic builder


def _l2(model: str, weight_decay: Any):
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or weight_decay < 0:
        raise KerasdlUsageError(f"{model}: weight_decay must be a number >= 0. "
                                f"Received: weight_decay={weight_decay!r}")
    # tf.nn.l2_loss(W) * wd = wd * sum(W^2) / 2 (Kipf's and Velickovic's code).
    return keras.regularizers.L2(float(weight_decay) / 2.0) if weight_decay > 0 else None


def GNN(input_shape: Sequence[int], num_classes: int, *, level: str = "node", conv: str = "gcn",
        num_layers: int = 2, hidden_units: int = 16, heads: int = 8, output_heads: int = 1,
        dropout: float = 0.5, attention_dropout: float = 0.0, weight_decay: float = 5e-4,
        decay_all_layers: bool = False, readout: str = "mean", normalize: bool = False,
        train_eps: bool = False, edge_features: int = 0, name: str = "gnn") -> keras.Model:
    """A graph classifier: ``num_layers`` message-passing layers of type ``conv``.

    ``level="node"``: node logits (N, C). GCN / GraphSAGE / GAT: ``num_layers`` convolutions, the
    last one with ``num_classes`` outputs (``head_logits``), each after a dropout of ``dropout``
    (Kipf & Welling's and Velickovic et al.'s layout); hidden layers use ReLU (GAT: ELU) and
    ``hidden_units`` (GAT: per head, ``heads`` heads concatenated; the output layer averages
    ``output_heads``). GIN: ``num_layers`` GIN-0 layers with a 2-layer MLP of ``hidden_units``,
    then dropout and a Dense (``head_logits``). ``conv="none"`` (DeepSets): a node-wise MLP of
    ``num_layers`` ReLU layers, no messages.

    ``level="graph"``: graph logits (G, C) from a ``graph_ids`` input. GIN: Xu et al.'s
    prediction from every layer (the input too): per layer a ``readout``, dropout and a Dense to
    logits, summed. The others: ``num_layers`` hidden layers, ``readout``, dropout, then
    ``head_logits`` (DeepSets: a ReLU layer of ``hidden_units`` before it, the rho of Zaheer et
    al. 2017).

    ``weight_decay``: ``L2(weight_decay / 2)`` on the kernels of the first layer, or of every
    layer with ``decay_all_layers=True``. ``normalize``: GraphSAGE's L2 normalisation of the
    hidden layers' outputs. ``train_eps``: GIN-eps instead of GIN-0. ``edge_features`` D > 0 adds
    an ``edge_attr`` (E, D) input: GIN's messages become GINE's (Hu et al. 2020), GCN takes it as
    edge weights (D = 1); the other layers refuse it.
    """
    shape = check_shape(name, "input_shape", input_shape)
    if len(shape) != 1:
        raise KerasdlUsageError(f"{name} takes node feature vectors (F,). Received: input_shape={shape}")
    num_classes = check_int(name, "num_classes", num_classes, minimum=1)
    check_choice(name, "level", level, LEVELS)
    check_choice(name, "conv", conv, CONVS)
    check_choice(name, "readout", readout, READOUTS)
    num_layers = check_int(name, "num_layers", num_layers, minimum=1)
    hidden_units = check_int(name, "hidden_units", hidden_units, minimum=1)
    heads = check_int(name, "heads", heads, minimum=1)
    output_heads = check_int(name, "output_heads", output_heads, minimum=1)
    dropout = check_rate(name, "dropout", dropout)
    attention_dropout = check_rate(name, "attention_dropout", attention_dropout)
    for key, value in (("decay_all_layers", decay_all_layers), ("normalize", normalize),
                       ("train_eps", train_eps)):
        check_bool(name, key, value)
    l2 = _l2(name, weight_decay)
    edge_features = check_int(name, "edge_features", edge_features, minimum=0)
    if edge_features and not (conv == "gin" or (conv == "gcn" and edge_features == 1)):
        raise KerasdlUsageError(f"{name} does not use edge features ({edge_features} per edge): gin uses any "
                                "(GINE messages), gcn one (edge weights)")

    x_in = keras.Input(shape, name="x")
    edges = keras.Input((2,), dtype="int32", name="edges")
    inputs = {"x": x_in, "edges": edges}
    if edge_features:
        inputs["edge_attr"] = keras.Input((edge_features,), name="edge_attr")
    extra = [inputs["edge_attr"]] if edge_features else []
    if level == "graph":
        inputs["graph_ids"] = keras.Input((), dtype="int32", name="graph_ids")
    node = level == "node"

    def reg(i):
        return l2 if (i == 1 or decay_all_layers) else None

    h = x_in
    if conv == "gin":
        outs = [h]
        for i in range(1, num_layers + 1):
            h = GINConv((hidden_units, hidden_units), train_eps=train_eps, kernel_regularizer=reg(i),
                        name=f"conv{i}")([h, edges, *extra])
            outs.append(h)
        if node:
            h = keras.layers.Dropout(dropout, name="head_dropout")(h)
            logits = keras.layers.Dense(num_classes, name="head_logits")(h)
        else:
            parts = []
            for i, hi in enumerate(outs):
                pooled = GraphReadout(readout, name=f"jk{i}_readout")([hi, inputs["graph_ids"]])
                pooled = keras.layers.Dropout(dropout, name=f"jk{i}_dropout")(pooled)
                parts.append(keras.layers.Dense(num_classes, name=f"jk{i}_logits")(pooled))
            logits = keras.layers.Add(name="head_logits")(parts)
        return keras.Model(inputs, logits, name=name)

    if conv == "none":
        h = IgnoreEdges(name="ignore_edges")([h, edges])
        for i in range(1, num_layers + 1):
            h = keras.layers.Dense(hidden_units, activation="relu", kernel_regularizer=reg(i), name=f"mlp{i}")(h)
        if not node:
            h = GraphReadout(readout, name="readout")([h, inputs["graph_ids"]])
            h = keras.layers.Dense(hidden_units, activation="relu", name="rho1")(h)
        h = keras.layers.Dropout(dropout, name="head_dropout")(h)
        logits = keras.layers.Dense(num_classes, name="head_logits")(h)
        return keras.Model(inputs, logits, name=name)

    hidden_act = "elu" if conv == "gat" else "relu"
    for i in range(1, num_layers + 1):
        last = node and i == num_layers
        h = keras.layers.Dropout(dropout, name=f"dropout{i}")(h)
        units, act, layer_name = ((num_classes, None, "head_logits") if last
                                  else (hidden_units, hidden_act, f"conv{i}"))
        common = dict(activation=act, kernel_regularizer=reg(i), name=layer_name)
        if conv == "gcn":
            layer = GCNConv(units, **common)
        elif conv == "sage":
            layer = SAGEConv(units, normalize=normalize and not last, **common)
        else:
            layer = GATConv(units, heads=output_heads if last else heads, concat=not last,
                            attention_dropout=attention_dropout, **common)
        h = layer([h, edges, *extra])
    if not node:  # every convolution was a hidden one
        h = GraphReadout(readout, name="readout")([h, inputs["graph_ids"]])
        h = keras.layers.Dropout(dropout, name="head_dropout")(h)
        logits = keras.layers.Dense(num_classes, name="head_logits")(h)
    else:
        logits = h
    return keras.Model(inputs, logits, name=name)


# --------------------------------------------------------------------------- the registry

_KIPF = "Kipf & Welling 2017 (ICLR), Semi-supervised classification with graph convolutional networks"
_GAT = "Velickovic et al. 2018 (ICLR), Graph attention networks"
_SAGE = "Hamilton, Ying & Leskovec 2017 (NeurIPS), Inductive representation learning on large graphs"
_GIN = "Xu, Hu, Leskovec & Jegelka 2019 (ICLR), How powerful are graph neural networks?"
_DEEPSETS = "Zaheer et al. 2017 (NeurIPS), Deep sets"
_GRAPH = dict(builder=GNN, family="gnn", task="graph", role="graph", default_input_shape=(1433,),
              default_num_classes=7, smoke_input_shape=(8,))


@register_model("gcn", paper=_KIPF, notes="Cora config: dropout 0.5, GCNConv(16, relu), dropout 0.5, "
                "GCNConv(C); weight decay 5e-4 on the first layer only. Graph level: mean readout + Dense.",
                **_GRAPH)
def gcn(input_shape, num_classes, *, level="node", **overrides):
    """Kipf & Welling 2017's two-layer GCN (their Cora / Citeseer / Pubmed configuration)."""
    return GNN(input_shape, num_classes, **{"name": "gcn", "level": level, "conv": "gcn", **overrides})


@register_model("gat", paper=_GAT, notes="Cora config: dropout 0.6, GATConv(8 x 8 heads, ELU, attention "
                "dropout 0.6), dropout 0.6, GATConv(C, 1 head); weight decay 5e-4 on every kernel.", **_GRAPH)
def gat(input_shape, num_classes, *, level="node", **overrides):
    """Velickovic et al. 2018's two-layer GAT (their transductive Cora / Citeseer configuration)."""
    return GNN(input_shape, num_classes, **{
        "name": "gat", "level": level, "conv": "gat", "hidden_units": 8, "heads": 8, "output_heads": 1,
        "dropout": 0.6, "attention_dropout": 0.6, "weight_decay": 5e-4, "decay_all_layers": True, **overrides})


@register_model("graphsage", paper=_SAGE, notes="mean aggregator, 2 layers, hidden 16, ReLU, dropout 0.5, "
                "weight decay 5e-4 on the first layer (the GCN recipe; the paper has no Cora setting).",
                **_GRAPH)
def graphsage(input_shape, num_classes, *, level="node", **overrides):
    """GraphSAGE-mean (Hamilton et al. 2017) with the GCN paper's Cora hyper-parameters (hidden 16,
    dropout 0.5, weight decay 5e-4), as DGL's and PyG's full-batch Cora examples use; the paper
    trained on Reddit / PPI with sampled neighbourhoods instead."""
    return GNN(input_shape, num_classes, **{"name": "graphsage", "level": level, "conv": "sage", **overrides})


@register_model("gin", paper=_GIN, notes="GIN-0: 4 GIN layers (5 with the input), MLPs of 64 with batch norm; "
                "graph level: sum readout of every layer -> Dense -> summed logits, dropout 0.5.", **_GRAPH)
def gin(input_shape, num_classes, *, level="node", **overrides):
    """Xu et al. 2019's GIN-0 (their graph-classification configuration: 5 layers counting the input,
    2-layer MLPs of 64 units with batch norm, sum readout, dropout 0.5, no weight decay)."""
    return GNN(input_shape, num_classes, **{
        "name": "gin", "level": level, "conv": "gin", "num_layers": 4, "hidden_units": 64, "dropout": 0.5,
        "weight_decay": 0.0, "readout": "sum", **overrides})


@register_model("deepsets", paper=_DEEPSETS, notes="readout-only baseline: node-wise MLP 2 x 64 ReLU, edges "
                "ignored; graph level: sum readout -> Dense(64, ReLU) -> logits.", **_GRAPH)
def deepsets(input_shape, num_classes, *, level="node", **overrides):
    """Deep sets (Zaheer et al. 2017): ``rho(sum_i phi(x_i))`` -- the baseline without message passing
    that a GNN must beat on graph classification."""
    return GNN(input_shape, num_classes, **{
        "name": "deepsets", "level": level, "conv": "none", "num_layers": 2, "hidden_units": 64, "dropout": 0.0,
        "weight_decay": 0.0, "readout": "sum", **overrides})
