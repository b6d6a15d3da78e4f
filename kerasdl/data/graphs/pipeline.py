"""Graphs as the Keras models of :mod:`kerasdl.models.gnn` take them: ``tf.data`` datasets, the
node-feature rule and the :class:`~kerasdl.data.DatasetInfo` of a graph dataset.

The models take a dict ``{"x": (N, F) float32, "edges": (E, 2) int32[, "graph_ids": (N,) int32]}``:
the node axis is Keras's batch axis, an edge row is ``(source, target)`` (messages flow from the
source to the target) and ``graph_ids`` numbers the graphs of a batch 0..G-1.

* Node level (one graph, full batch): every split is ONE element ``(inputs, y, weights)`` holding the
  whole graph, ``weights`` the split's mask as 0/1 floats. Keras's loss (with the reduction
  ``mean_with_sample_weight``) and metrics then average over the split's nodes only: Kipf &
  Welling's masked cross-entropy and accuracy. Unlabelled nodes get class 0 with weight 0.
* Graph level (many small graphs): a split is batches of ``batch_size`` graphs merged into one
  disjoint graph (node ids offset per graph, ``graph_ids`` the graph of each node) with one label per
  graph; the train split is reshuffled every epoch from the run's seed.

The feature rule (``row``: each node's features divided by their sum, zero rows left zero — Kipf &
Welling's ``preprocess_features``) is one TF function used by the pipeline and by the export
signature, so a SavedModel takes the raw features a user has.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["graph_task", "graph_info", "node_datasets", "graph_datasets", "normalize_features", "feature_rule",
           "GRAPH_TASKS"]

# The task of each graph level.
GRAPH_TASKS = {"node": "node_classification", "graph": "graph_classification"}


def graph_task(name: str | None) -> str | None:
    """The task a graph dataset ``name`` trains by default ("node_classification" or
    "graph_classification"), or None when ``name`` is not a graph dataset. Cheap: nothing is loaded
    but the key list of an ``.npz``."""
    if not name:
        return None
    from kerasdl.data.graphs import is_graph_dataset

    try:
        if not is_graph_dataset(str(name)):
            return None
    except Exception:  # noqa: BLE001 - a name that is no graph dataset is not this module's error
        return None
    return GRAPH_TASKS[_level(str(name))]


def _level(name: str) -> str:
    from kerasdl.data.graphs.builtin import GRAPH_DATASETS

    if name in GRAPH_DATASETS:
        return "graph" if name == "cycles" else "node"
    if name.endswith(".npz") and os.path.isfile(name):
        with np.load(name, allow_pickle=False) as f:
            return "graph" if "node_graph" in f.files else "node"
    return "node"


def feature_rule(graph, option: str = "auto") -> str:
    """The node-feature rule of a run: the task option, or the dataset's own (``auto``)."""
    return graph.feature_norm if option == "auto" else option


def normalize_features(x, rule: str):
    """``x`` (N, F) under ``rule`` with TF ops (eager or symbolic): ``row`` divides each row by
    its sum (zero rows stay zero), ``none`` only casts to float32."""
    import tensorflow as tf

    x = tf.cast(x, tf.float32)
    if rule == "row":
        return tf.math.divide_no_nan(x, tf.reduce_sum(x, axis=-1, keepdims=True))
    return x


def graph_info(graph, rule: str):
    """The :class:`~kerasdl.data.DatasetInfo` of ``graph`` (a ``GraphData``): the per-node input
    shape (F,), the classes, the split sizes (nodes or graphs) and, under ``graph``, what the
    export and ``kerasdl predict`` need (level, feature rule, sizes)."""
    from kerasdl.data.info import DatasetInfo

    level = graph.level
    return DatasetInfo(
        name=graph.name, source=graph.source, task=GRAPH_TASKS[level], input_shape=(int(graph.x.shape[1]),),
        raw_dtype="float32", num_classes=len(graph.class_names), class_names=[str(c) for c in graph.class_names],
        splits={k: int(v) for k, v in graph.split_sizes().items()}, mean=0.0, std=1.0,
        description=graph.description,
        graph={"level": level, "feature_norm": rule, "nodes": graph.num_nodes, "edge_features": graph.num_edge_features,
               "edges": graph.num_edges, "graphs": graph.num_graphs})


def node_inputs(graph, rule: str) -> dict:
    """The model inputs of a whole node-level graph: normalised features and (E, 2) int32 edges."""
    inputs = {"x": np.asarray(normalize_features(graph.x, rule)),
              "edges": np.ascontiguousarray(graph.edge_index.T.astype(np.int32))}
    if graph.edge_attr is not None:
        inputs["edge_attr"] = np.asarray(graph.edge_attr, np.float32)
    return inputs


def node_datasets(graph, rule: str, splits) -> dict:
    """Split -> one-element ``tf.data`` dataset ``(inputs, y, mask weights)`` of the whole graph."""
    import tensorflow as tf

    inputs = node_inputs(graph, rule)
    y = np.where(graph.y < 0, 0, graph.y).astype(np.int32)
    return {split: tf.data.Dataset.from_tensors((inputs, y, graph.masks[split].astype(np.float32)))
            for split in splits}


def graph_datasets(graph, rule: str, splits, *, batch_size: int, seed: int, shuffle_train: bool = True) -> dict:
    """Split -> batched ``tf.data`` dataset ``(inputs, y)`` of disjoint unions of ``batch_size`` graphs."""
    import tensorflow as tf

    x = np.asarray(normalize_features(graph.x, rule))
    node_graph = np.asarray(graph.node_graph, np.int64)
    n_graphs = int(node_graph.max()) + 1
    node_ptr = np.searchsorted(node_graph, np.arange(n_graphs + 1))
    src = graph.edge_index[0]
    edge_graph = node_graph[src]
    order = np.argsort(edge_graph, kind="stable")
    edges = graph.edge_index.T[order]
    attrs = None if graph.edge_attr is None else np.asarray(graph.edge_attr, np.float32)[order]
    edge_graph = edge_graph[order]
    edge_ptr = np.searchsorted(edge_graph, np.arange(n_graphs + 1))
    local = (edges - node_ptr[edge_graph][:, None]).astype(np.int32)  # node ids within their graph
    out = {}
    for split in splits:
        ids = np.asarray(graph.graph_splits[split], np.int64)
        xs = tf.RaggedTensor.from_row_limits(
            tf.constant(np.concatenate([x[node_ptr[g]:node_ptr[g + 1]] for g in ids]) if len(ids) else x[:0]),
            np.cumsum([node_ptr[g + 1] - node_ptr[g] for g in ids]).astype(np.int64))
        es = tf.RaggedTensor.from_row_limits(
            tf.constant(np.concatenate([local[edge_ptr[g]:edge_ptr[g + 1]] for g in ids]) if len(ids)
                        else local[:0]),
            np.cumsum([edge_ptr[g + 1] - edge_ptr[g] for g in ids]).astype(np.int64))
        parts = [xs, es]
        if attrs is not None:
            parts.append(tf.RaggedTensor.from_row_limits(
                tf.constant(np.concatenate([attrs[edge_ptr[g]:edge_ptr[g + 1]] for g in ids]) if len(ids)
                            else attrs[:0]), es.row_limits()))
        ds = tf.data.Dataset.from_tensor_slices((tuple(parts), graph.y[ids].astype(np.int32)))
        if split == "train" and shuffle_train:
            ds = ds.shuffle(len(ids), seed=seed, reshuffle_each_iteration=True)
        out[split] = ds.ragged_batch(batch_size).map(_merge, num_parallel_calls=1).prefetch(2)
    return out


def _merge(parts, y):
    """A batch of graphs (ragged node features, local edges[, edge features]) as one disjoint graph."""
    import tensorflow as tf

    xs, es = parts[0], parts[1]
    starts = tf.cast(xs.row_starts(), tf.int32)
    edges = es.flat_values + tf.gather(starts, tf.cast(es.value_rowids(), tf.int32))[:, None]
    inputs = {"x": xs.flat_values, "edges": edges, "graph_ids": tf.cast(xs.value_rowids(), tf.int32)}
    if len(parts) > 2:
        inputs["edge_attr"] = parts[2].flat_values
    return inputs, y
