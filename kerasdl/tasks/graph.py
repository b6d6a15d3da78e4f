"""Graph learning: node classification (one graph, full batch, masked loss) and graph
classification (mini-batches of graphs, one label each), with the message-passing networks of
:mod:`kerasdl.models.gnn` (GCN, GraphSAGE, GAT, GIN, and the readout-only DeepSets baseline).

* ``node_classification`` (Kipf & Welling 2017, "Semi-supervised classification with graph
  convolutional networks", ICLR): the whole graph is one batch; the loss is the cross-entropy
  averaged over the train split's nodes only (Keras's ``mean_with_sample_weight`` reduction with the
  split's mask as weights), and every figure (accuracy, NLL, ECE, the confusion matrix, calibration
  fitted on the validation nodes) is over the split's nodes. One optimiser step per epoch.
* ``graph_classification`` (Xu et al. 2019, "How powerful are graph neural networks?", ICLR):
  batches of graphs merged into one disjoint graph (``graph_ids``), a readout per graph.

Both are classifiers: they reuse :class:`~kerasdl.tasks.supervised.SupervisedTask`'s evaluation,
plots and post-hoc calibration, which read ``(inputs, y[, weights])`` batches and keep the nodes
of weight > 0. The data come from :mod:`kerasdl.data.graphs` (karate, Planetoid files, the offline
``cycles`` set, a user's CSV/NPZ) through :mod:`kerasdl.data.graphs.pipeline`.

Export: ``serving_default(x (N, F) float32, edge_index (2, E) int64[, graph_ids (N,) int64])`` ->
``probabilities`` / ``class`` per node (or per graph), the feature rule and the calibration map
inside; an edge index outside [0, N) is refused with an error naming it.
"""

from __future__ import annotations

import os
from typing import ClassVar

import numpy as np

from kerasdl import runs
from kerasdl.errors import KerasdlUsageError, first_line
from kerasdl.tasks.base import Endpoint, register_task
from kerasdl.tasks.supervised import SupervisedTask

EMBEDDING_PNG = "embedding_{split}.png"
MAX_DRAWN_EDGES = 5000  # the embedding plot draws the graph's edges up to this many


class GraphTask(SupervisedTask):
    """What node and graph classification share: graph data, the ``graph`` model role, the
    masked/batched cross-entropy, and the export signature on (features, edge index)."""

    data_kind = "graph"
    roles = ("graph",)
    level: ClassVar[str] = "node"
    serving_outputs = ("probabilities", "class")

    def __init__(self, config, info):
        super().__init__(config, info)
        self._graph = None

    # -- data ----------------------------------------------------------------------------------
    def graph(self):
        """The run's ``GraphData`` (loaded and checked once)."""
        if self._graph is None:
            from kerasdl.data.graphs import load_graph

            self._graph = load_graph(self.config.dataset, seed=self.config.seed)
            if self._graph.level != self.level:
                other = "graph_classification" if self._graph.level == "graph" else "node_classification"
                what = "one label per graph" if self._graph.level == "graph" else "one label per node"
                raise KerasdlUsageError(f"dataset {self.config.dataset!r} has {what}; train it with --task {other}")
        return self._graph

    def feature_rule(self) -> str:
        from kerasdl.data.graphs.pipeline import feature_rule

        return feature_rule(self.graph(), self.opts.feature_norm)

    def make_data(self, splits):
        from kerasdl.data.graphs import pipeline

        graph, rule = self.graph(), self.feature_rule()
        info = pipeline.graph_info(graph, rule)
        if self.level == "node":
            data = pipeline.node_datasets(graph, rule, splits)
        else:
            data = pipeline.graph_datasets(graph, rule, splits, batch_size=self.config.batch_size,
                                           seed=self.config.seed)
        return data, info

    def steps_per_epoch(self) -> int | None:
        return 1 if self.level == "node" else None

    def prepare(self, ds, split: str):
        return ds

    # -- checks --------------------------------------------------------------------------------
    def check(self) -> None:
        config = self.config
        self.check_model()
        if config.loss not in (None, "sparse_categorical_crossentropy", "categorical_crossentropy"):
            raise KerasdlUsageError(f"task {self.name!r} trains with the cross-entropy; loss {config.loss!r} "
                                    "is not available for graphs")
        if config.label_smoothing:
            raise KerasdlUsageError(f"task {self.name!r} does not support label_smoothing")
        if config.augment not in ("auto", "none", None, ""):
            raise KerasdlUsageError(f"task {self.name!r} has no augmentation (augment={config.augment!r})")
        if config.strategy not in ("auto", "default", "one_device"):
            raise KerasdlUsageError(f"task {self.name!r} runs on one device (a graph is not split across "
                                    f"replicas); strategy {config.strategy!r} is not available")
        if self.level == "graph" and config.jit:
            raise KerasdlUsageError("graph classification batches have a new shape every step; "
                                    "XLA (--jit) would recompile each one")
        graph = self.graph()
        if self.level == "node" and not (graph.y[graph.masks["validation"]] >= 0).any():
            raise KerasdlUsageError("the validation split has no labelled node (it picks the best checkpoint)")
        self.monitor()

    # -- model ---------------------------------------------------------------------------------
    def build(self):
        from kerasdl.models import build_model

        info = self.info
        try:
            edge = {"edge_features": int(info.graph["edge_features"])} if info.graph.get("edge_features") else {}
            return build_model(self.config.model, input_shape=tuple(info.input_shape), num_classes=info.num_classes,
                               level=self.level, **edge, **self.config.model_options)
        except KerasdlUsageError:
            raise
        except (ValueError, TypeError) as exc:
            raise KerasdlUsageError(f"model {self.config.model!r} cannot take dataset {self.config.dataset!r}: "
                                    f"{first_line(exc)}") from None

    rebuild = build

    def compile(self, model, optimizer, train_ds, val_ds, **speed):
        import keras

        # The mean over the split's nodes (weights = its mask), as Kipf & Welling's masked loss; for
        # graph batches (no weights) the plain mean over the batch's graphs.
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")
        # weighted_metrics: Keras weights only these by the mask (plain `metrics` would count every node).
        model.compile(optimizer=optimizer, loss=loss,
                      weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")], **speed)
        return train_ds, val_ds

    def inference_model(self, model):
        import keras

        return keras.Model(model.input, model.output, name=model.name)  # uncompiled, same dict inputs

    # -- reports -------------------------------------------------------------------------------
    def plots(self, report_: dict, model, ds, run_dir: str, split: str = "test") -> list[str]:
        out = super().plots(report_, model, ds, run_dir, split)
        if self.level == "node":
            try:
                out.append(self.embedding_plot(model, run_dir, split))
            except Exception as exc:  # noqa: BLE001 - a figure must not lose the run's figures
                import warnings

                warnings.warn(f"embedding plot skipped: {first_line(exc)}", stacklevel=2)
        return out

    def embedding(self, model) -> tuple[np.ndarray, str]:
        """Every node's representation at the input of the model's output layer (the last hidden
        layer), and that layer's name."""
        import keras

        from kerasdl.data.graphs.pipeline import node_inputs

        last = model.layers[-1]
        inner = last.input[0] if isinstance(last.input, (list, tuple)) else last.input
        probe = keras.Model(model.input, inner)
        return np.asarray(probe.predict_on_batch(node_inputs(self.graph(), self.feature_rule()))), last.name

    def embedding_plot(self, model, run_dir: str, split: str) -> str:
        """The nodes at their learned representation (PCA to 2-D when wider), coloured by class,
        the train nodes ringed, the edges drawn (up to MAX_DRAWN_EDGES)."""
        from kerasdl.plots import graphs as plots

        graph = self.graph()
        h, layer = self.embedding(model)
        width = h.shape[1]
        if width > 2:
            centred = h - h.mean(axis=0)
            _, _, vt = np.linalg.svd(centred, full_matrices=False)
            h2 = centred @ vt[:2].T
            how = f"PCA of the {width}-D input of layer {layer!r}"
        else:
            h2 = h if width == 2 else np.concatenate([h, np.zeros_like(h)], axis=1)
            how = f"the {width}-D input of layer {layer!r}"
        edges = graph.edge_index if graph.edge_index.shape[1] <= MAX_DRAWN_EDGES else None
        file = os.path.join(run_dir, runs.PLOTS, EMBEDDING_PNG.format(split=split))
        return plots.graph_embedding(h2, graph.y, list(graph.class_names), file, train=graph.masks["train"],
                                     edges=edges, title=f"learned node embedding ({how})")

    def tune_objectives(self) -> dict[str, str]:
        return {"val_loss": "min", "val_accuracy": "max"}

    def tune_space(self) -> dict:
        """A node task trains on the whole graph at once: the batch size is not searched."""
        return {"batch_size": {"type": "fixed", "value": 64}} if self.level == "node" else {}

    # -- export --------------------------------------------------------------------------------
    def endpoints(self, model, run_dir: str) -> dict[str, Endpoint]:
        """``serving_default``: raw node features and an edge index -> class probabilities (per node,
        or per graph with ``graph_ids``), calibrated when the run was."""
        import tensorflow as tf

        from kerasdl.data.graphs.pipeline import normalize_features
        from kerasdl.tasks.serving import _fitted, calibrated_logits

        calibrator, _ = _fitted(run_dir, self.info)
        rule, level, features = self.feature_rule(), self.level, int(self.info.input_shape[0])

        edge_features = int(self.info.graph.get("edge_features", 0))

        def forward(x, edge_index, graph_ids=None, edge_attr=None):
            x = tf.ensure_shape(tf.cast(x, tf.float32), [None, features])
            n = tf.shape(x, out_type=tf.int64)[0]
            checks = [tf.debugging.assert_non_negative(edge_index, message="edge_index holds a negative node id"),
                      tf.debugging.assert_less(edge_index, n, message="edge_index holds a node id >= N (the rows of x)")]
            if graph_ids is not None:
                checks += [tf.debugging.assert_equal(tf.shape(graph_ids, out_type=tf.int64)[0], n,
                                                     message="graph_ids must have one entry per row of x"),
                           tf.debugging.assert_non_negative(graph_ids, message="graph_ids must be >= 0")]
            with tf.control_dependencies(checks):  # before any gather: a bad id gets this message
                edges = tf.transpose(tf.cast(tf.identity(edge_index), tf.int32))
            inputs = {"x": normalize_features(x, rule), "edges": edges}
            if graph_ids is not None:
                inputs["graph_ids"] = tf.cast(graph_ids, tf.int32)
            if edge_attr is not None:
                check = tf.debugging.assert_equal(tf.shape(edge_attr)[0], tf.shape(edge_index)[1],
                                                  message="edge_attr must have one row per column of edge_index")
                with tf.control_dependencies([check]):
                    inputs["edge_attr"] = tf.identity(edge_attr)
            logits = model(inputs, training=False)
            probabilities = tf.nn.softmax(calibrated_logits(logits, calibrator), axis=-1)
            return {"probabilities": probabilities,
                    "class": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

        x_spec = tf.TensorSpec([None, features], tf.float32, name="x")
        e_spec = tf.TensorSpec([2, None], tf.int64, name="edge_index")
        a_spec = tf.TensorSpec([None, edge_features], tf.float32, name="edge_attr")
        if level == "node":
            if edge_features:
                return {"serving_default": Endpoint(lambda x, edge_index, edge_attr: forward(
                    x, edge_index, edge_attr=edge_attr), [x_spec, e_spec, a_spec])}
            return {"serving_default": Endpoint(lambda x, edge_index: forward(x, edge_index), [x_spec, e_spec])}
        g_spec = tf.TensorSpec([None], tf.int64, name="graph_ids")
        if edge_features:
            return {"serving_default": Endpoint(forward, [x_spec, e_spec, g_spec, a_spec])}
        return {"serving_default": Endpoint(forward, [x_spec, e_spec, g_spec])}

    def export_outputs(self, run_dir: str) -> list[str]:
        return list(self.serving_outputs)

    # -- predict -------------------------------------------------------------------------------
    def predict_graph(self, model, graph, calibrator=None) -> np.ndarray:
        """Probabilities of a ``GraphData`` (per node, or per graph), through the run's feature rule
        and calibration map: what ``kerasdl predict RUN graph`` prints."""
        import tensorflow as tf

        from kerasdl.data.graphs.pipeline import normalize_features
        from kerasdl.tasks.serving import calibrated_logits

        inputs = {"x": normalize_features(graph.x, self.feature_rule()),
                  "edges": tf.constant(graph.edge_index.T.astype(np.int32))}
        if self.level == "graph":
            inputs["graph_ids"] = tf.constant(np.asarray(graph.node_graph, np.int32))
        wanted = int(self.info.graph.get("edge_features", 0))
        if graph.num_edge_features != wanted:
            raise KerasdlUsageError(f"the graph has {graph.num_edge_features} edge features per edge; the model "
                                    f"takes {wanted}")
        if wanted:
            inputs["edge_attr"] = tf.constant(np.asarray(graph.edge_attr, np.float32))
        logits = model(inputs, training=False)
        return np.asarray(tf.nn.softmax(calibrated_logits(logits, calibrator), axis=-1))


@register_task
class NodeClassificationTask(GraphTask):
    """One graph, node labels on split masks, full batch."""

    name = "node_classification"
    summary = "label the nodes of one graph (GCN, GAT, GraphSAGE, GIN), full batch, masked loss"
    paper = "Kipf & Welling 2017; Velickovic et al. 2018"
    level = "node"


@register_task
class GraphClassificationTask(GraphTask):
    """Many small graphs, one label each, mini-batches of disjoint graphs."""

    name = "graph_classification"
    summary = "label whole graphs (GIN, GCN, ... with a readout), mini-batches of graphs"
    paper = "Xu et al. 2019"
    level = "graph"
