"""The in-memory graph dataset (:class:`GraphData`), its validation and shared helpers.

A graph dataset is node features ``x`` (N, F), an edge index ``edge_index`` (2, E) in the PyTorch
Geometric convention (row 0 the source, row 1 the target: messages flow from row 0 to row 1,
Fey & Lenssen 2019, "Fast Graph Representation Learning with PyTorch Geometric"), labels ``y``
and splits. Two levels:

- ``"node"``: one graph, a label per node (``-1`` = unlabelled) and boolean split masks
  (the transductive setting of Kipf & Welling 2017, "Semi-Supervised Classification with Graph
  Convolutional Networks");
- ``"graph"``: many small graphs stored as one disjoint graph; ``node_graph`` gives each node's
  graph id (sorted ascending, 0..G-1), ``y`` one label per graph and ``graph_splits`` the graph
  ids of each split (Xu et al. 2019, "How Powerful are Graph Neural Networks?").

Pure NumPy: nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kerasdl.errors import KerasdlUsageError

SPLITS = ("train", "validation", "test")
LEVELS = ("node", "graph")
FEATURE_NORMS = ("none", "row")


@dataclass
class GraphData:
    """A node- or graph-classification dataset held in NumPy arrays (see the module docstring)."""

    name: str
    source: str
    level: str
    x: np.ndarray
    edge_index: np.ndarray
    y: np.ndarray
    class_names: list
    masks: dict
    node_graph: np.ndarray | None = None
    graph_splits: dict = field(default_factory=dict)
    feature_norm: str = "none"
    description: str = ""
    # Optional edge features (E, D) float32, one row per column of edge_index (a user's .npz
    # ``edge_attr``); the models that use them: gin (GINE messages) and gcn (D = 1: edge weights).
    edge_attr: np.ndarray | None = None

    @property
    def num_edge_features(self) -> int:
        return 0 if self.edge_attr is None else int(self.edge_attr.shape[1])

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_edges(self) -> int:
        """Directed edges (an undirected edge counts twice, once per direction)."""
        return int(self.edge_index.shape[1])

    @property
    def num_features(self) -> int:
        return int(self.x.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_graphs(self) -> int:
        """1 for a node-level set; the number of graphs for a graph-level set."""
        if self.level != "graph" or self.node_graph is None:
            return 1
        return int(len(self.y))

    def split_sizes(self) -> dict[str, int]:
        """Nodes (node level: mask sums) or graphs (graph level) in each split."""
        if self.level == "graph":
            return {s: int(len(self.graph_splits.get(s, ()))) for s in SPLITS}
        return {s: int(np.sum(self.masks[s])) if s in self.masks else 0 for s in SPLITS}


# ----------------------------------------------------------------------------------------------
# checks


def _fail(message: str) -> None:
    raise KerasdlUsageError(message)


def as_edge_index(edges, what: str = "edge_index") -> np.ndarray:
    """``edges`` as a (2, E) int64 array, or a one-line error (bad shape, dtype or values)."""
    arr = np.asarray(edges)
    if arr.ndim != 2 or arr.shape[0] != 2:
        _fail(f"{what} must be a (2, E) integer array, got shape {tuple(arr.shape)}")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "f":
        _fail(f"{what} must be a (2, E) integer array, got dtype {arr.dtype}")
    if arr.size and (not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr))):
        _fail(f"{what} must be a (2, E) integer array, got non-integer values")
    return arr.astype(np.int64)


def check_graph(g: GraphData, *, labels: bool = True) -> None:
    """Validate ``g``: one-line :class:`~kerasdl.errors.KerasdlUsageError` on the first problem.
    ``labels=False`` (a graph to predict): the labels and splits are not checked."""
    if g.level not in LEVELS:
        _fail(f"graph level must be one of {', '.join(LEVELS)}, got {g.level!r}")
    if g.feature_norm not in FEATURE_NORMS:
        _fail(f"feature_norm must be one of {', '.join(FEATURE_NORMS)}, got {g.feature_norm!r}")
    x = g.x
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        _fail(f"x must be a 2-D (nodes, features) array, got shape {tuple(np.shape(x))}")
    if x.dtype.kind not in "fiub":
        _fail(f"x must hold numbers, got dtype {x.dtype}")
    n = x.shape[0]
    if n == 0:
        _fail("the graph has no node")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            _fail(f"x holds NaN or infinite values (first at node {r}, feature {c})")
    ei = g.edge_index
    if (
        not isinstance(ei, np.ndarray)
        or ei.ndim != 2
        or ei.shape[0] != 2
        or ei.dtype.kind not in "iu"
    ):
        _fail(
            f"edge_index must be a (2, E) integer array, got shape {tuple(np.shape(ei))} "
            f"{getattr(ei, 'dtype', type(ei).__name__)}"
        )
    if ei.size:
        lo, hi = int(ei.min()), int(ei.max())
        if lo < 0:
            _fail(f"edge_index holds negative node id {lo}")
        if hi >= n:
            _fail(f"edge_index holds node {hi} but the graph has {n} nodes")
    if g.edge_attr is not None:
        ea = np.asarray(g.edge_attr)
        if ea.ndim != 2 or ea.shape[0] != ei.shape[1]:
            _fail(f"edge_attr must have one row per edge: shape {tuple(ea.shape)} for {ei.shape[1]} edges")
        if not np.isfinite(ea).all():
            _fail("edge_attr holds NaN or infinite values")
    y = np.asarray(g.y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        _fail(f"y must be a 1-D integer array, got shape {tuple(y.shape)} {y.dtype}")
    k = len(g.class_names)
    if k == 0:
        _fail("class_names is empty")
    if y.size and int(y.max()) >= k:
        _fail(f"y holds label {int(y.max())} but there are {k} classes")
    if g.level == "node":
        if not labels:
            if len(y) != n:
                _fail(f"x has {n} rows but y has {len(y)}")
            return
        _check_node_level(g, n, y)
    else:
        _check_graph_level(g, n, y, labels=labels)


def _check_node_level(g: GraphData, n: int, y: np.ndarray) -> None:
    if len(y) != n:
        _fail(f"x has {n} rows but y has {len(y)}")
    if y.size and int(y.min()) < -1:
        _fail(f"y holds label {int(y.min())}; use -1 for an unlabelled node")
    extra = sorted(set(g.masks) - set(SPLITS))
    if extra:
        _fail(f"unknown split mask {extra[0]!r}; masks are {', '.join(SPLITS)}")
    masks = {}
    for s in SPLITS:
        if s not in g.masks:
            _fail(f"the {s} mask is missing")
        m = np.asarray(g.masks[s])
        if m.ndim != 1 or len(m) != n:
            _fail(f"the {s} mask has {m.size} entries but the graph has {n} nodes")
        if m.dtype != bool:
            _fail(f"the {s} mask must be boolean, got {m.dtype}")
        unlabelled = int(np.sum(m & (y < 0)))
        if unlabelled and s != "train":
            _fail(f"the {s} split holds {unlabelled} unlabelled nodes (y = -1)")
        masks[s] = m
    if not np.any(masks["train"] & (y >= 0)):
        _fail("the train split has no labelled node")
    unlabelled = int(np.sum(masks["train"] & (y < 0)))
    if unlabelled:
        _fail(f"the train split holds {unlabelled} unlabelled nodes (y = -1)")
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            both = int(np.sum(masks[a] & masks[b]))
            if both:
                _fail(f"the {a} and {b} splits share {both} nodes")


def _check_graph_level(g: GraphData, n: int, y: np.ndarray, labels: bool = True) -> None:
    ng = g.node_graph
    if ng is None:
        _fail("a graph-level dataset needs node_graph (the graph id of each node)")
    ng = np.asarray(ng)
    if ng.ndim != 1 or ng.dtype.kind not in "iu":
        _fail(f"node_graph must be a 1-D integer array, got shape {tuple(ng.shape)} {ng.dtype}")
    if len(ng) != n:
        _fail(f"x has {n} rows but node_graph has {len(ng)}")
    if ng[0] != 0:
        _fail(f"node_graph must start at graph 0, got {int(ng[0])}")
    steps = np.diff(ng)
    if np.any(steps < 0):
        _fail(
            f"node_graph must be sorted ascending (node {int(np.argmax(steps < 0)) + 1} goes back)"
        )
    if np.any(steps > 1):
        gap = int(ng[int(np.argmax(steps > 1))]) + 1
        _fail(f"node_graph must number graphs 0..G-1 without gaps (graph {gap} has no node)")
    num_graphs = int(ng[-1]) + 1
    if len(y) != num_graphs:
        _fail(f"node_graph has {num_graphs} graphs but y has {len(y)} labels")
    if labels and y.size and int(y.min()) < 0:
        _fail(f"y holds label {int(y.min())}; every graph needs a class")
    if g.edge_index.size:
        src, dst = ng[g.edge_index[0]], ng[g.edge_index[1]]
        cross = np.flatnonzero(src != dst)
        if cross.size:
            e = int(cross[0])
            _fail(
                f"edge {e} joins graph {int(src[e])} and graph {int(dst[e])}; "
                "edges must stay inside a graph"
            )
    extra = sorted(set(g.graph_splits) - set(SPLITS))
    if extra:
        _fail(f"unknown graph split {extra[0]!r}; splits are {', '.join(SPLITS)}")
    seen = np.zeros(num_graphs, dtype=bool)
    for s in SPLITS:
        ids = np.asarray(g.graph_splits.get(s, np.zeros(0, np.int64)))
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            _fail(f"the {s} graph split must be a 1-D array of graph ids")
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= num_graphs):
            bad = int(ids.max()) if int(ids.max()) >= num_graphs else int(ids.min())
            _fail(f"the {s} split holds graph {bad} but there are {num_graphs} graphs")
        if np.any(seen[ids]) or len(np.unique(ids)) != len(ids):
            _fail(f"the {s} split repeats a graph of another split (splits must be disjoint)")
        seen[ids] = True
    if labels and not len(g.graph_splits.get("train", ())):
        _fail("the train split has no graph")


# ----------------------------------------------------------------------------------------------
# helpers shared by the sources


def clean_edges(edge_index: np.ndarray, *, symmetric: bool = True, edge_attr: np.ndarray | None = None):
    """Both directions of every edge (when ``symmetric``), duplicates and self-loops removed.

    Sorted by (source, target). GNN layers add their own self-loops where their paper does. With
    ``edge_attr`` (E, D) the attributes follow their edges (a reverse edge copies its edge's, a
    duplicate keeps the first one's) and ``(edge_index, edge_attr)`` is returned.
    """
    ei = np.asarray(edge_index, dtype=np.int64).reshape(2, -1)
    attr = None if edge_attr is None else np.asarray(edge_attr, np.float32).reshape(ei.shape[1], -1)
    if symmetric:
        ei = np.concatenate([ei, ei[::-1]], axis=1)
        attr = None if attr is None else np.concatenate([attr, attr])
    keep = ei[0] != ei[1]
    ei = ei[:, keep]
    attr = None if attr is None else attr[keep]
    if not ei.size:
        empty = np.zeros((2, 0), np.int64)
        return empty if edge_attr is None else (empty, np.zeros((0, attr.shape[1]), np.float32))
    ei, first = np.unique(ei, axis=1, return_index=True)  # lexicographic by (row 0, row 1)
    ei = np.ascontiguousarray(ei, dtype=np.int64)
    return ei if edge_attr is None else (ei, np.ascontiguousarray(attr[first]))


def stratified_split(y: np.ndarray, sizes: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    """Split the labelled items of ``y`` (label >= 0) into exact ``sizes``, stratified by class.

    Each class is permuted with ``seed``; the classes are then interleaved by relative rank, so
    every prefix of the order holds the classes in proportion, and the order is cut into
    validation, test and train (train takes the rest when its size is ``None``). Returns sorted
    int64 index arrays.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    keys, order = [], []
    for c in np.unique(y[y >= 0]):
        idx = rng.permutation(np.flatnonzero(y == c))
        keys.append((np.arange(len(idx)) + 0.5) / len(idx) + rng.uniform(0, 1e-9))
        order.append(idx)
    if not order:
        return {s: np.zeros(0, np.int64) for s in SPLITS}
    key, order = np.concatenate(keys), np.concatenate(order)
    order = order[np.argsort(key, kind="stable")]
    out, start = {}, 0
    for s in ("validation", "test", "train"):
        k = sizes.get(s)
        k = len(order) - start if k is None else min(int(k), len(order) - start)
        out[s] = np.sort(order[start : start + k]).astype(np.int64)
        start += k
    return {s: out[s] for s in SPLITS}


def fraction_sizes(n: int, fractions: tuple[float, float, float]) -> dict[str, int | None]:
    """Validation/test sizes of ``n`` items from (train, val, test) fractions; train: the rest."""
    _, f_val, f_test = fractions
    return {"train": None, "validation": int(n * f_val + 0.5), "test": int(n * f_test + 0.5)}


def masks_from_indices(n: int, parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Boolean (n,) masks from index arrays."""
    masks = {}
    for s in SPLITS:
        m = np.zeros(n, dtype=bool)
        m[np.asarray(parts.get(s, []), dtype=np.int64)] = True
        masks[s] = m
    return masks
