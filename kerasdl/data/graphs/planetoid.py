"""The Planetoid citation graphs (Cora, Citeseer, PubMed) read from the standard ``ind.*`` files.

Yang, Cohen & Salakhutdinov 2016, "Revisiting Semi-Supervised Learning with Graph Embeddings"
(the split); Kipf & Welling 2017, "Semi-Supervised Classification with Graph Convolutional
Networks" (the files, as distributed with their ``gcn`` code, and the loading rules below).

``load_planetoid("path/to/folder/cora")`` reads ``ind.cora.{x,y,tx,ty,allx,ally,graph,test.index}``
from ``path/to/folder`` (the last path component names the dataset); a folder that holds exactly
one ``ind.<name>.x`` set works too. The rules are those of Kipf & Welling's ``load_data``:

- features: ``allx`` rows for nodes ``0 .. len(allx)-1``, then ``tx`` row ``i`` for node
  ``test.index[i]``; test ids missing from ``test.index`` (Citeseer's isolated test nodes) get a
  zero feature row and no label (``y = -1``, in no split). Raw 0/1 features are kept;
  ``feature_norm = "row"`` tells the pipeline to divide each row by its sum, as Kipf & Welling do;
- labels: the argmax of the one-hot rows of ``ally`` / ``ty`` (an all-zero row gives ``-1``);
- splits: train = ``range(len(y))`` (140 nodes for Cora, 120 for Citeseer, 60 for PubMed),
  validation = the next 500 nodes, test = the 1,000 nodes of ``test.index``;
- edges: from the ``graph`` adjacency lists, both directions, duplicates and self-loops removed
  (Cora: 10,556 directed edges, Citeseer: 9,104, PyTorch Geometric's figures).

The pickles are read with :func:`~kerasdl.data.graphs.safe_pickle.safe_load`, never ``pickle.load``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from kerasdl.data.graphs.graph import GraphData, clean_edges
from kerasdl.data.graphs.safe_pickle import safe_load
from kerasdl.errors import KerasdlUsageError

PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")
VALIDATION_SIZE = 500
CLASS_NAMES = {
    "cora": [
        "Case_Based",
        "Genetic_Algorithms",
        "Neural_Networks",
        "Probabilistic_Methods",
        "Reinforcement_Learning",
        "Rule_Learning",
        "Theory",
    ],
    "citeseer": ["Agents", "AI", "DB", "IR", "ML", "HCI"],
    "pubmed": [
        "Diabetes_Mellitus_Experimental",
        "Diabetes_Mellitus_Type_1",
        "Diabetes_Mellitus_Type_2",
    ],
}
_X_FILE = re.compile(r"^ind\.(.+)\.x$")
_PART_FILE = re.compile(r"^ind\.(.+)\.(?:x|y|tx|ty|allx|ally|graph|test\.index)$")


def find_planetoid(spec) -> tuple[Path, str] | None:
    """``(folder, name)`` when ``spec`` names a Planetoid set, else ``None`` (a few stat calls)."""
    path = Path(spec).expanduser()
    part = _PART_FILE.match(path.name)
    if part and path.is_file():  # "folder/ind.cora.x" (any of the eight files) names the set too
        path = path.parent / part.group(1)
    if path.is_dir():
        names = sorted(m.group(1) for p in path.glob("ind.*.x") if (m := _X_FILE.match(p.name)))
        if len(names) == 1:
            return path, names[0]
        if (
            path.name and (path / f"ind.{path.name}.x").is_file()
        ):  # folder "cora" holding ind.cora.*
            return path, path.name
        return None
    if path.name and (path.parent / f"ind.{path.name}.x").is_file():
        return path.parent, path.name
    return None


def planetoid_sets(folder) -> list[str]:
    """Names of the ``ind.<name>.x`` sets in ``folder``."""
    return sorted(m.group(1) for p in Path(folder).glob("ind.*.x") if (m := _X_FILE.match(p.name)))


def load_planetoid(spec, *, display_name: str | None = None) -> GraphData:
    """Read a Planetoid set (module docstring); one-line errors for missing or corrupt files."""
    found = find_planetoid(spec)
    if found is None:
        path = Path(spec).expanduser()
        if path.is_dir():
            names = planetoid_sets(path)
            if names:
                raise KerasdlUsageError(
                    f"{path} holds several Planetoid sets ({', '.join(names)}); "
                    f"name one, e.g. {path / names[0]}"
                )
            raise KerasdlUsageError(f"{path} holds no Planetoid set (no ind.<name>.x file)")
        raise KerasdlUsageError(
            f"missing Planetoid file {path.parent / ('ind.' + path.name + '.x')}"
        )
    folder, name = found
    for part in PARTS:
        if not (folder / f"ind.{name}.{part}").is_file():
            raise KerasdlUsageError(
                f"Planetoid set {name!r} in {folder} is missing ind.{name}.{part}"
            )

    objs = {
        part: safe_load(folder / f"ind.{name}.{part}") for part in PARTS if part != "test.index"
    }
    test_index = _read_index(folder / f"ind.{name}.test.index")
    y_train = _dense(objs["y"], f"ind.{name}.y")
    allx = _dense(objs["allx"], f"ind.{name}.allx")
    ally = _dense(objs["ally"], f"ind.{name}.ally")
    tx = _dense(objs["tx"], f"ind.{name}.tx")
    ty = _dense(objs["ty"], f"ind.{name}.ty")
    graph = objs["graph"]
    if not isinstance(graph, dict):
        raise KerasdlUsageError(
            f"ind.{name}.graph must hold a dict of adjacency lists, got {type(graph).__name__}"
        )
    if len(allx) != len(ally) or len(tx) != len(ty) or len(tx) != len(test_index):
        raise KerasdlUsageError(
            f"Planetoid set {name!r} is inconsistent: allx {len(allx)} / ally {len(ally)} rows, "
            f"tx {len(tx)} / "
            f"ty {len(ty)} rows, test.index {len(test_index)} ids"
        )
    if allx.shape[1] != tx.shape[1] or ally.shape[1] != ty.shape[1]:
        raise KerasdlUsageError(
            f"Planetoid set {name!r} is inconsistent: allx/tx or ally/ty widths differ"
        )
    if test_index.size and int(test_index.min()) < len(allx):
        raise KerasdlUsageError(
            f"ind.{name}.test.index holds node {int(test_index.min())}, "
            f"inside the allx range 0..{len(allx) - 1}"
        )

    # Kipf & Welling: nodes 0..len(allx)-1 are allx; the test block spans min..max of test.index
    # (Citeseer's gaps are isolated test nodes with no features: zero rows, no label).
    n = len(allx) + (int(test_index.max()) - int(test_index.min()) + 1 if test_index.size else 0)
    x = np.zeros((n, allx.shape[1]), np.float32)
    x[: len(allx)] = allx
    x[test_index] = tx
    onehot = np.zeros((n, ally.shape[1]), np.float32)
    onehot[: len(ally)] = ally
    onehot[test_index] = ty
    y = np.where(onehot.sum(1) > 0, onehot.argmax(1), -1).astype(np.int64)

    n_train = len(y_train)
    masks = {s: np.zeros(n, bool) for s in ("train", "validation", "test")}
    masks["train"][:n_train] = True
    masks["validation"][n_train : n_train + VALIDATION_SIZE] = True
    masks["test"][test_index] = True

    src, dst = [], []
    try:
        for u, nbrs in graph.items():
            for v in nbrs:
                src.append(int(u))
                dst.append(int(v))
    except (TypeError, ValueError):
        raise KerasdlUsageError(
            f"ind.{name}.graph must map node ids to lists of node ids"
        ) from None
    edge_index = clean_edges(np.array([src, dst], dtype=np.int64).reshape(2, -1))
    if edge_index.size and int(edge_index.max()) >= n:
        raise KerasdlUsageError(
            f"ind.{name}.graph holds node {int(edge_index.max())} but the features cover {n} nodes"
        )

    k = ally.shape[1]
    class_names = CLASS_NAMES.get(name.lower(), [])
    if len(class_names) != k:
        class_names = [f"class_{i}" for i in range(k)]
    missing = n - len(allx) - len(test_index)
    description = (
        f"Planetoid {name} (Yang et al. 2016; files of Kipf & Welling 2017): {n} nodes, "
        f"{edge_index.shape[1]} directed edges (adjacency lists symmetrised, duplicates and "
        f"self-loops removed), {x.shape[1]} "
        f"bag-of-words features (row-normalise them), {k} classes; split {n_train} train / "
        f"{int(masks['validation'].sum())} validation / {int(masks['test'].sum())} test"
        + (
            f"; {missing} isolated test-range nodes padded with zero features and no label"
            if missing
            else ""
        )
    )
    return GraphData(
        name=str(display_name if display_name is not None else spec),
        source="planetoid",
        level="node",
        x=x,
        edge_index=edge_index,
        y=y,
        class_names=list(class_names),
        masks=masks,
        feature_norm="row",
        description=description,
    )


def _dense(obj, label: str) -> np.ndarray:
    if sp.issparse(obj):
        obj = obj.toarray()
    if not isinstance(obj, np.ndarray) or obj.ndim != 2 or obj.dtype.kind not in "fiub":
        raise KerasdlUsageError(f"{label} must hold a 2-D numeric array, got {type(obj).__name__}")
    return np.asarray(obj, dtype=np.float32)


def _read_index(path: Path) -> np.ndarray:
    ids = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                ids.append(int(line))
            except ValueError:
                raise KerasdlUsageError(
                    f"{path.name} line {i}: {line[:40]!r} is not a node id"
                ) from None
    arr = np.array(ids, dtype=np.int64)
    if arr.size and int(arr.min()) < 0:
        raise KerasdlUsageError(f"{path.name} holds negative node id {int(arr.min())}")
    if len(np.unique(arr)) != len(arr):
        raise KerasdlUsageError(f"{path.name} repeats a node id")
    return arr
