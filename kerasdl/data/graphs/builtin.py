"""Built-in graph datasets that need no download: ``karate`` and ``cycles``.

- ``karate``: Zachary's karate club (Zachary 1977, "An Information Flow Model for Conflict and
  Fission in Small Groups", via ``networkx.karate_club_graph``): 34 members, 78 friendships, the two
  factions after the split ("Mr. Hi" = 0, "Officer" = 1). As in Kipf & Welling's (2017) karate
  demo the features are the identity (one-hot node ids) and only one member per faction is
  labelled for training: node 0 (Mr. Hi) and node 33 (John A., the officers' leader). The other 32
  split 16 validation / 16 test, stratified, with the fixed dataset seed 0 (never the run seed,
  so every run sees the same split).
- ``cycles``: 1,200 connected graphs of 10-30 nodes (uniform, for every class), classed by their
  number of independent cycles (cyclomatic number E - N + 1): 0 "tree", 1 "one_cycle",
  2 "two_cycles". Each is a uniform random labelled tree (a random Pruefer sequence) plus k edges
  between random non-adjacent pairs. Node features are constant ones (N, 1), so only structure
  tells the classes apart: a readout of the features alone (or the node count) is at chance,
  while message passing that counts edges per node does better (Xu et al. 2019, "How Powerful
  are Graph Neural Networks?"). Generated with the fixed seed :data:`CYCLES_SEED` (the same data
  on every machine), balanced, split 800 / 200 / 200 graphs, stratified.
"""

from __future__ import annotations

import functools

import numpy as np

from kerasdl.data.graphs.graph import (
    SPLITS,
    GraphData,
    clean_edges,
    masks_from_indices,
    stratified_split,
)

GRAPH_DATASETS = {
    "cycles": "1,200 synthetic graphs (10-30 nodes) classed by cycle count 0/1/2 (graph level)",
    "karate": "Zachary's karate club, 34 nodes, 2 factions, one labelled node each (node level)",
}
KARATE_SPLIT_SEED = 0
CYCLES_SEED = 2019
CYCLES_GRAPHS = 1200
CYCLES_SIZES = {"train": 800, "validation": 200, "test": 200}
CYCLES_NODES = (10, 30)
CYCLES_CLASSES = ["tree", "one_cycle", "two_cycles"]


def load_builtin(name: str) -> GraphData:
    """A fresh copy of the built-in dataset ``name`` (``"karate"`` or ``"cycles"``)."""
    g = {"karate": _karate, "cycles": _cycles}[name]()
    return GraphData(
        name=g.name,
        source=g.source,
        level=g.level,
        x=g.x.copy(),
        edge_index=g.edge_index.copy(),
        y=g.y.copy(),
        class_names=list(g.class_names),
        masks={k: v.copy() for k, v in g.masks.items()},
        node_graph=None if g.node_graph is None else g.node_graph.copy(),
        graph_splits={k: v.copy() for k, v in g.graph_splits.items()},
        feature_norm=g.feature_norm,
        description=g.description,
    )


@functools.lru_cache(maxsize=1)
def _karate() -> GraphData:
    import networkx as nx

    graph = nx.karate_club_graph()
    n = graph.number_of_nodes()
    class_names = ["Mr. Hi", "Officer"]
    y = np.array([class_names.index(graph.nodes[i]["club"]) for i in range(n)], dtype=np.int64)
    edge_index = clean_edges(np.array(list(graph.edges()), dtype=np.int64).T)
    train = np.array([0, n - 1], dtype=np.int64)  # Mr. Hi and John A.
    rest = np.full(n, -1, dtype=np.int64)
    others = np.setdiff1d(np.arange(n), train)
    rest[others] = y[others]
    half = len(others) // 2
    parts = stratified_split(
        rest, {"validation": half, "test": len(others) - half, "train": 0}, KARATE_SPLIT_SEED
    )
    parts["train"] = train
    return GraphData(
        name="karate",
        source="networkx",
        level="node",
        x=np.eye(n, dtype=np.float32),
        edge_index=edge_index,
        y=y,
        class_names=class_names,
        masks=masks_from_indices(n, parts),
        feature_norm="none",
        description=(
            f"Zachary's karate club (networkx): {n} nodes, {edge_index.shape[1]} directed edges, "
            "identity features, 2 factions; train = nodes 0 and 33 only, the other 32 split 16/16 "
            "validation/test (stratified, fixed seed 0)"
        ),
    )


def random_cycles_graph(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Undirected edges (M, 2) of a random connected graph: ``n`` nodes, cyclomatic number ``k``."""
    # uniform random labelled tree from a random Pruefer sequence (decoded in O(n^2), n <= 30)
    seq = rng.integers(0, n, size=n - 2)
    degree = np.ones(n, dtype=np.int64)
    np.add.at(degree, seq, 1)
    edges = []
    for v in seq:
        leaf = int(np.flatnonzero(degree == 1)[0])
        edges.append((leaf, int(v)))
        degree[leaf] -= 1
        degree[v] -= 1
    u, w = np.flatnonzero(degree == 1)
    edges.append((int(u), int(w)))
    present = {(min(a, b), max(a, b)) for a, b in edges}
    while len(present) < n - 1 + k:
        a, b = (int(t) for t in rng.choice(n, size=2, replace=False))
        pair = (min(a, b), max(a, b))
        if pair not in present:
            present.add(pair)
            edges.append(pair)
    return np.array(edges, dtype=np.int64)


@functools.lru_cache(maxsize=1)
def _cycles() -> GraphData:
    rng = np.random.default_rng(CYCLES_SEED)
    num_classes = len(CYCLES_CLASSES)
    y = rng.permutation(np.arange(CYCLES_GRAPHS) % num_classes).astype(np.int64)
    lo, hi = CYCLES_NODES
    sizes = rng.integers(lo, hi + 1, size=CYCLES_GRAPHS)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    edges = [
        random_cycles_graph(rng, int(n), int(k)) + offsets[i]
        for i, (n, k) in enumerate(zip(sizes, y))
    ]
    edge_index = clean_edges(np.concatenate(edges).T)
    node_graph = np.repeat(np.arange(CYCLES_GRAPHS, dtype=np.int64), sizes)
    total = int(offsets[-1])
    graph_splits = stratified_split(y, dict(CYCLES_SIZES), CYCLES_SEED)
    return GraphData(
        name="cycles",
        source="synthetic",
        level="graph",
        x=np.ones((total, 1), np.float32),
        edge_index=edge_index,
        y=y,
        class_names=list(CYCLES_CLASSES),
        masks={},
        node_graph=node_graph,
        graph_splits={s: graph_splits[s] for s in SPLITS},
        feature_norm="none",
        description=(
            f"{CYCLES_GRAPHS} synthetic connected graphs of {lo}-{hi} nodes ({total} nodes, "
            f"{edge_index.shape[1]} directed edges in all), class = number of independent cycles "
            "(0 tree / 1 / 2), constant node features; fixed seed, balanced, split 800/200/200"
        ),
    )
