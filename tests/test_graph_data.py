"""kerasdl.data.graphs: Planetoid, the restricted unpickler, karate, cycles, user files, checks."""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerasdl.data.graphs import (
    GraphData,
    check_graph,
    graph_names,
    is_graph_dataset,
    load_graph,
    SPLITS,
)
from kerasdl.data.graphs.builtin import GRAPH_DATASETS
from kerasdl.data.graphs.safe_pickle import safe_load
from kerasdl.errors import KerasdlUsageError

PLANETOID = Path(__file__).resolve().parents[2] / "shared/data/planetoid"
needs_planetoid = pytest.mark.skipif(
    not (PLANETOID / "ind.cora.x").is_file(),
    reason=f"Planetoid files not found at {PLANETOID} (see shared/data/README.md)",
)


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message, message
    return message


# ----------------------------------------------------------------------------------------------
# Planetoid


@needs_planetoid
@pytest.mark.parametrize(
    "name, n, f, k, e, n_train",
    [
        ("cora", 2708, 1433, 7, 10556, 140),
        ("citeseer", 3327, 3703, 6, 9104, 120),
    ],
)
def test_planetoid_figures(name, n, f, k, e, n_train):
    g = load_graph(str(PLANETOID / name))
    assert (g.source, g.level, g.feature_norm) == ("planetoid", "node", "row")
    assert (g.num_nodes, g.num_features, g.num_classes, g.num_edges) == (n, f, k, e)
    assert g.x.dtype == np.float32 and g.edge_index.dtype == np.int64 and g.y.dtype == np.int64
    assert g.split_sizes() == {"train": n_train, "validation": 500, "test": 1000}
    m = g.masks
    assert not (m["train"] & m["validation"]).any() and not (m["train"] & m["test"]).any()
    assert not (m["validation"] & m["test"]).any()
    assert np.array_equal(np.flatnonzero(m["train"]), np.arange(n_train))
    assert np.array_equal(np.bincount(g.y[m["train"]], minlength=k), np.full(k, 20))
    test_index = np.loadtxt(PLANETOID / f"ind.{name}.test.index", dtype=np.int64)
    assert np.array_equal(np.flatnonzero(m["test"]), np.sort(test_index))
    for s in SPLITS:
        assert (g.y[m[s]] >= 0).all()
    # undirected, no duplicates, no self-loops; raw 0/1 features
    ei = g.edge_index
    assert (ei[0] != ei[1]).all()
    pairs = set(zip(ei[0].tolist(), ei[1].tolist()))
    assert len(pairs) == e and all((b, a) in pairs for a, b in pairs)
    assert set(np.unique(g.x).tolist()) <= {0.0, 1.0}
    if name == "cora":
        assert g.class_names[2] == "Neural_Networks" and len(g.class_names) == 7
        assert (g.y >= 0).all()
    else:
        assert g.class_names == ["Agents", "AI", "DB", "IR", "ML", "HCI"]
        padded = g.y < 0  # Citeseer's isolated test-range nodes: zero rows, no label, in no split
        assert padded.sum() == 15 and not g.x[padded].any()
        assert not any(m[s][padded].any() for s in SPLITS)


@needs_planetoid
def test_planetoid_folder_and_missing_files(tmp_path):
    for part in ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index"):
        shutil.copy(PLANETOID / f"ind.cora.{part}", tmp_path)
    assert is_graph_dataset(str(tmp_path)) and is_graph_dataset(str(tmp_path / "cora"))
    assert load_graph(str(tmp_path)).num_nodes == 2708  # a folder holding exactly one set
    (tmp_path / "ind.cora.ty").unlink()
    with pytest.raises(KerasdlUsageError) as exc:
        load_graph(str(tmp_path / "cora"))
    assert "ind.cora.ty" in one_line(exc)
    (tmp_path / "ind.cora.tx").write_bytes(b"\x80\x02garbage")
    (tmp_path / "ind.cora.ty").write_bytes(pickle.dumps(np.zeros((2, 2)))[:20])
    with pytest.raises(KerasdlUsageError) as exc:
        load_graph(str(tmp_path / "cora"))
    assert "ind.cora.tx" in one_line(exc)
    with pytest.raises(KerasdlUsageError) as exc:
        safe_load(tmp_path / "ind.cora.ty")
    assert "truncated" in one_line(exc) or "not a valid pickle" in one_line(exc)


@needs_planetoid
def test_planetoid_unknown_set_suggests(tmp_path):
    with pytest.raises(KerasdlUsageError) as exc:
        load_graph(str(PLANETOID / "coraa"))
    assert "cora" in one_line(exc)


def test_safe_load_reads_numpy_scipy_and_python2_style_pickles(tmp_path):
    import collections

    import scipy.sparse as sp

    objects = {
        "arr": np.arange(6, dtype=np.int32).reshape(2, 3),
        "csr": sp.csr_matrix(np.eye(3, dtype=np.float32)),
        "lil": sp.lil_matrix(np.eye(2)),
        "graph": collections.defaultdict(list, {0: [1, 2], 1: [0]}),
    }
    for key, obj in objects.items():
        for protocol in (0, 2):
            path = tmp_path / f"{key}{protocol}"
            path.write_bytes(pickle.dumps(obj, protocol=protocol))
            back = safe_load(path)
            if key in ("csr", "lil"):
                assert np.array_equal(back.toarray(), obj.toarray())
            elif key == "arr":
                assert np.array_equal(back, obj)
            else:
                assert back == obj


# ----------------------------------------------------------------------------------------------
# hostile pickles


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.target}",))


def test_hostile_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned.txt"
    payload = pickle.dumps(_Evil(marker), protocol=2)
    for part in ("x", "y", "tx", "ty", "allx", "ally", "graph"):
        (tmp_path / f"ind.evil.{part}").write_bytes(payload)
    (tmp_path / "ind.evil.test.index").write_text("0\n1\n")
    assert is_graph_dataset(str(tmp_path / "evil"))  # cheap detection does not unpickle
    with pytest.raises(KerasdlUsageError) as exc:
        load_graph(str(tmp_path / "evil"))
    message = one_line(exc)
    assert message.startswith("refusing to load ind.evil.")
    assert "os.system" in message and "never contains" in message
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps(eval),  # builtins.eval
        pickle.dumps(subprocess.Popen),
        pickle.dumps(np.load),  # numpy, but not an array class
        b"cos\nsystem\n(S'echo hi'\ntR.",  # protocol 0 by hand
    ],
)
def test_other_globals_are_refused(tmp_path, payload):
    path = tmp_path / "ind.bad.graph"
    path.write_bytes(payload)
    with pytest.raises(KerasdlUsageError) as exc:
        safe_load(path)
    assert one_line(exc).startswith("refusing to load ind.bad.graph: the pickle asks for")


# ----------------------------------------------------------------------------------------------
# built-ins


def test_graph_names():
    assert graph_names() == ["cycles", "karate"]
    assert set(GRAPH_DATASETS) == {"cycles", "karate"} and all(GRAPH_DATASETS.values())


def test_karate():
    g = load_graph("karate")
    assert (g.source, g.level, g.num_nodes, g.num_edges, g.num_classes) == (
        "networkx",
        "node",
        34,
        156,
        2,
    )
    assert g.class_names == ["Mr. Hi", "Officer"]
    assert np.array_equal(g.x, np.eye(34, dtype=np.float32))
    assert np.array_equal(np.flatnonzero(g.masks["train"]), [0, 33])
    assert g.y[0] == 0 and g.y[33] == 1 and np.bincount(g.y).tolist() == [17, 17]
    assert g.split_sizes() == {"train": 2, "validation": 16, "test": 16}
    for s in ("validation", "test"):
        assert np.bincount(g.y[g.masks[s]]).tolist() == [8, 8]
    covered = g.masks["train"] | g.masks["validation"] | g.masks["test"]
    assert covered.all()
    again = load_graph("karate", seed=7)  # the split never depends on the run seed
    assert all(np.array_equal(g.masks[s], again.masks[s]) for s in SPLITS)
    g.masks["train"][:] = False  # callers get copies
    assert load_graph("karate").masks["train"].sum() == 2


def test_cycles():
    g = load_graph("cycles")
    assert (g.source, g.level, g.num_classes, g.num_features) == ("synthetic", "graph", 3, 1)
    assert g.class_names == ["tree", "one_cycle", "two_cycles"]
    assert len(g.y) == 1200 and np.bincount(g.y).tolist() == [400, 400, 400]
    assert g.split_sizes() == {"train": 800, "validation": 200, "test": 200}
    for s in SPLITS:
        counts = np.bincount(g.y[g.graph_splits[s]], minlength=3)
        assert counts.max() - counts.min() <= 1, (s, counts)
    assert len(np.unique(np.concatenate([g.graph_splits[s] for s in SPLITS]))) == 1200
    assert np.all(np.diff(g.node_graph) >= 0) and g.node_graph[0] == 0 and g.node_graph[-1] == 1199
    assert np.all(g.x == 1)
    nodes = np.bincount(g.node_graph)
    assert nodes.min() >= 10 and nodes.max() <= 30
    edges = np.bincount(g.node_graph[g.edge_index[0]], minlength=1200)
    assert np.array_equal(edges // 2 - nodes + 1, g.y)  # cyclomatic number = class
    for c in range(3):  # node count carries (almost) no information about the class
        assert abs(nodes[g.y == c].mean() - 20) < 1.5
    # connected, undirected
    import networkx as nx

    src, dst = g.edge_index
    pairs = set(zip(src.tolist(), dst.tolist()))
    assert all((b, a) in pairs for a, b in list(pairs)[:2000])
    for gid in (0, 1, 2, 599, 1199):
        sel = g.node_graph[src] == gid
        graph = nx.Graph(list(zip(src[sel].tolist(), dst[sel].tolist())))
        assert nx.is_connected(graph) and graph.number_of_nodes() == nodes[gid]
    again = load_graph("cycles", seed=5)
    assert np.array_equal(g.edge_index, again.edge_index) and np.array_equal(g.y, again.y)
    assert all(np.array_equal(g.graph_splits[s], again.graph_splits[s]) for s in SPLITS)


def test_cycles_same_in_a_fresh_process():
    code = (
        "from kerasdl.data.graphs import load_graph; import hashlib; g = load_graph('cycles'); "
        "print(hashlib.sha1(g.edge_index.tobytes() + g.y.tobytes()).hexdigest())"
    )
    import hashlib

    g = load_graph("cycles")
    here = hashlib.sha1(g.edge_index.tobytes() + g.y.tobytes()).hexdigest()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == here


def test_no_tensorflow_import():
    code = (
        "import sys; from kerasdl.data.graphs import load_graph; load_graph('karate'); "
        "print([m for m in ('tensorflow', 'keras', 'torch', 'jax') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------------------------
# user files


def _toy(n=30, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = np.arange(n) % 3
    edges = np.stack([np.arange(n), (np.arange(n) + 1) % n])  # a ring
    return x, y, edges


def test_npz_node_level_round_trip(tmp_path):
    x, y, edges = _toy()
    path = tmp_path / "ring.npz"
    edges_with_junk = np.concatenate(
        [edges, edges[:, :3], [[4], [4]]], axis=1
    )  # duplicates + a self-loop
    np.savez(path, x=x, edge_index=edges_with_junk, y=y, class_names=np.array(["a", "b", "c"]))
    assert is_graph_dataset(str(path))
    g = load_graph(str(path), seed=3)
    assert (g.source, g.level, g.num_nodes, g.num_edges, g.class_names) == (
        "npz",
        "node",
        30,
        60,
        ["a", "b", "c"],
    )
    assert np.array_equal(g.x, x) and np.array_equal(g.y, y)
    assert g.split_sizes() == {"train": 18, "validation": 6, "test": 6}
    assert np.bincount(g.y[g.masks["train"]]).tolist() == [6, 6, 6]
    assert "self-loops dropped" in g.description
    same = load_graph(str(path), seed=3)
    other = load_graph(str(path), seed=4)
    assert np.array_equal(g.masks["test"], same.masks["test"])
    assert not np.array_equal(g.masks["test"], other.masks["test"])
    # (E, 2) edges and given masks
    masks = {
        "train_mask": np.arange(30) < 10,
        "val_mask": (np.arange(30) >= 10) & (np.arange(30) < 20),
        "test_mask": np.arange(30) >= 20,
    }
    np.savez(path, x=x, edges=edges.T, y=y, **masks)
    g = load_graph(str(path))
    assert g.num_edges == 60 and g.split_sizes() == {"train": 10, "validation": 10, "test": 10}
    assert g.class_names == ["0", "1", "2"]


def test_npz_graph_level_round_trip(tmp_path):
    ref = load_graph("cycles")
    path = tmp_path / "cycles.npz"
    split = np.zeros(len(ref.y), np.int64)
    split[ref.graph_splits["validation"]] = 1
    split[ref.graph_splits["test"]] = 2
    np.savez(
        path,
        x=ref.x,
        edge_index=ref.edge_index,
        y=ref.y,
        node_graph=ref.node_graph,
        graph_split=split,
    )
    g = load_graph(str(path))
    assert g.level == "graph" and g.source == "npz"
    assert np.array_equal(g.edge_index, ref.edge_index) and np.array_equal(
        g.node_graph, ref.node_graph
    )
    assert all(np.array_equal(g.graph_splits[s], ref.graph_splits[s]) for s in SPLITS)
    np.savez(path, edge_index=ref.edge_index, y=ref.y, node_graph=ref.node_graph)  # no x, no split
    g = load_graph(str(path), seed=1)
    assert g.x.shape == (len(ref.node_graph), 1)
    assert g.split_sizes() == {"train": 720, "validation": 240, "test": 240}


def test_npz_errors(tmp_path):
    x, y, edges = _toy()
    path = tmp_path / "g.npz"
    np.savez(path, x=x, edge_index=np.array([[0, 1], [1, 31]]), y=y)
    with pytest.raises(KerasdlUsageError) as exc:
        load_graph(str(path))
    assert one_line(exc) == "edge_index holds node 31 but the graph has 30 nodes"
    np.savez(path, x=x, edge_index=edges, y=y, class_names=np.array(["a", None], dtype=object))
    with pytest.raises(KerasdlUsageError) as exc:
        load_graph(str(path))
    assert "object array" in one_line(exc)
    np.savez(path, x=x, y=y)
    assert not is_graph_dataset(str(path))
    with pytest.raises(KerasdlUsageError) as exc:
        load_graph(str(path))
    assert one_line(exc) == "g.npz has no edge_index (2, E) or edges (E, 2) array"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(KerasdlUsageError) as exc:
        load_graph(str(path))
    assert one_line(exc).startswith("cannot read g.npz")


def _write_csv_graph(folder: Path, *, split=False, features=True):
    folder.mkdir()
    header = "id,label" + (",split" if split else "") + (",f1,f2" if features else "")
    lines = [header]
    for i in range(20):
        label = ["cat", "dog"][i % 2] if i != 19 else ""  # node 19 unlabelled
        row = f"n{i},{label}"
        if split:
            row += "," + ("train" if i < 10 else "val" if i < 14 else "test" if i < 19 else "")
        if features:
            row += f",{i},{i * 0.5}"
        lines.append(row)
    (folder / "nodes.csv").write_text("\n".join(lines) + "\n")
    edges = (
        ["source,target,weight"]
        + [f"n{i},n{(i + 1) % 20},1" for i in range(20)]
        + ["n3,n2,1", "n5,n5,1"]
    )
    (folder / "edges.csv").write_text("\n".join(edges) + "\n")


def test_csv_round_trip(tmp_path):
    folder = tmp_path / "pets"
    _write_csv_graph(folder)
    assert is_graph_dataset(str(folder))
    g = load_graph(str(folder), seed=0)
    assert (g.source, g.level, g.num_nodes, g.num_features, g.num_edges) == (
        "csv",
        "node",
        20,
        2,
        40,
    )
    assert g.class_names == ["cat", "dog"] and g.y[19] == -1 and g.y[0] == 0 and g.y[1] == 1
    assert np.allclose(g.x[3], [3, 1.5])
    assert sum(g.split_sizes().values()) == 19 and g.split_sizes()["validation"] == 4
    folder2 = tmp_path / "pets2"
    _write_csv_graph(folder2, split=True, features=False)
    g = load_graph(str(folder2))
    assert g.split_sizes() == {"train": 10, "validation": 4, "test": 5}
    assert np.array_equal(g.x, np.eye(20, dtype=np.float32))


def test_csv_errors(tmp_path):
    folder = tmp_path / "bad"
    _write_csv_graph(folder)
    (folder / "edges.csv").write_text("source,target\nn1,n99\n")
    with pytest.raises(KerasdlUsageError) as exc:
        load_graph(str(folder))
    assert one_line(exc) == "edges.csv line 2: node 'n99' is not in nodes.csv"
    (folder / "edges.csv").unlink()
    with pytest.raises(KerasdlUsageError) as exc:
        load_graph(str(folder))
    assert "edges.csv" in one_line(exc)
    (folder / "edges.csv").write_text("source,target\nn1,n2\n")
    (folder / "nodes.csv").write_text("id,label,f\na,x,1\nb,y,oops\n")
    with pytest.raises(KerasdlUsageError) as exc:
        load_graph(str(folder))
    assert one_line(exc) == "nodes.csv line 3, column 'f': 'oops' is not a number"


# ----------------------------------------------------------------------------------------------
# detection and names


def test_is_graph_dataset_and_unknown_names(tmp_path):
    assert is_graph_dataset("karate") and is_graph_dataset("cycles")
    for name in ("mnist5k", "iris", "cifar10", str(tmp_path / "nothing.npz"), str(tmp_path)):
        assert not is_graph_dataset(name), name
    with pytest.raises(KerasdlUsageError) as exc:
        load_graph("karat")
    assert "karate" in one_line(exc)


@needs_planetoid
def test_is_graph_dataset_planetoid():
    assert is_graph_dataset(str(PLANETOID / "cora")) and is_graph_dataset(
        str(PLANETOID / "citeseer")
    )
    assert is_graph_dataset(str(PLANETOID / "ind.cora.x"))  # one of the files names its set too
    assert load_graph(str(PLANETOID / "ind.cora.test.index")).num_nodes == 2708
    assert not is_graph_dataset(str(PLANETOID / "nope"))
    assert not is_graph_dataset(str(PLANETOID))  # holds two sets: ambiguous


# ----------------------------------------------------------------------------------------------
# check_graph


def _node_graph(**changes) -> GraphData:
    x, y, edges = _toy(n=12)
    masks = {
        "train": np.arange(12) < 6,
        "validation": (np.arange(12) >= 6) & (np.arange(12) < 9),
        "test": np.arange(12) >= 9,
    }
    g = GraphData(
        name="toy",
        source="npz",
        level="node",
        x=x,
        edge_index=edges.astype(np.int64),
        y=y.astype(np.int64),
        class_names=["a", "b", "c"],
        masks=masks,
    )
    return dataclasses.replace(g, **changes)


def _graph_graph(**changes) -> GraphData:
    node_graph = np.array([0, 0, 0, 1, 1, 2, 2, 2], np.int64)
    edges = np.array([[0, 1, 3, 5, 6], [1, 2, 4, 6, 7]], np.int64)
    g = GraphData(
        name="toy",
        source="npz",
        level="graph",
        x=np.ones((8, 1), np.float32),
        edge_index=edges,
        y=np.array([0, 1, 0], np.int64),
        class_names=["a", "b"],
        masks={},
        node_graph=node_graph,
        graph_splits={
            "train": np.array([0, 1]),
            "validation": np.array([2]),
            "test": np.array([], np.int64),
        },
    )
    return dataclasses.replace(g, **changes)


def test_check_graph_accepts_valid():
    check_graph(_node_graph())
    check_graph(_graph_graph())


def _x_with_nan():
    x = _toy(n=12)[0]
    x[3, 2] = np.nan
    return x


def _unlabelled_train():
    y = (np.arange(12) % 3).astype(np.int64)
    y[:6] = -1
    return y


@pytest.mark.parametrize(
    "changes, expected",
    [
        (
            dict(edge_index=np.array([[0, 1], [1, 12]])),
            "edge_index holds node 12 but the graph has 12 nodes",
        ),
        (dict(edge_index=np.array([[0, -1], [1, 2]])), "edge_index holds negative node id -1"),
        (
            dict(edge_index=np.array([[0, 1, 2], [1, 2, 3], [0, 0, 0]])),
            "edge_index must be a (2, E) integer array",
        ),
        (
            dict(edge_index=np.array([[0.0, 1.0], [1.0, 2.0]])),
            "edge_index must be a (2, E) integer array",
        ),
        (dict(y=np.zeros(10, np.int64)), "x has 12 rows but y has 10"),
        (
            dict(
                masks={
                    "train": np.ones(11, bool),
                    "validation": np.zeros(12, bool),
                    "test": np.zeros(12, bool),
                }
            ),
            "the train mask has 11 entries but the graph has 12 nodes",
        ),
        (dict(y=_unlabelled_train()), "the train split has no labelled node"),
        (dict(x=_x_with_nan()), "x holds NaN or infinite values (first at node 3, feature 2)"),
        (dict(y=np.full(12, 3, np.int64)), "y holds label 3 but there are 3 classes"),
        (
            dict(
                masks={
                    "train": np.ones(12, bool),
                    "validation": np.ones(12, bool),
                    "test": np.zeros(12, bool),
                }
            ),
            "the train and validation splits share 12 nodes",
        ),
    ],
)
def test_check_graph_node_errors(changes, expected):
    with pytest.raises(KerasdlUsageError) as exc:
        check_graph(_node_graph(**changes))
    assert one_line(exc).startswith(expected)


@pytest.mark.parametrize(
    "changes, expected",
    [
        (
            dict(node_graph=np.array([0, 0, 1, 0, 1, 2, 2, 2], np.int64)),
            "node_graph must be sorted ascending",
        ),
        (
            dict(node_graph=np.array([0, 0, 0, 1, 1, 3, 3, 3], np.int64)),
            "node_graph must number graphs 0..G-1 without gaps (graph 2 has no node)",
        ),
        (dict(edge_index=np.array([[0, 2], [1, 3]], np.int64)), "edge 1 joins graph 0 and graph 1"),
        (dict(y=np.array([0, 1], np.int64)), "node_graph has 3 graphs but y has 2 labels"),
        (dict(y=np.array([0, 1, 2], np.int64)), "y holds label 2 but there are 2 classes"),
        (
            dict(graph_splits={"train": np.array([], np.int64), "validation": np.array([0])}),
            "the train split has no graph",
        ),
    ],
)
def test_check_graph_graph_errors(changes, expected):
    with pytest.raises(KerasdlUsageError) as exc:
        check_graph(_graph_graph(**changes))
    assert one_line(exc).startswith(expected)
