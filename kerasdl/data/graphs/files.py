"""A user's own graph from an ``.npz`` file or from a folder of two CSV files.

**NPZ** (``numpy.savez``; read without ``allow_pickle``, so store strings as ``str`` arrays,
never ``object`` arrays):

==============================  ============================================================
key                             content
==============================  ============================================================
``edge_index`` or ``edges``     ``(2, E)`` or ``(E, 2)`` integer node ids (0..N-1), required
``x``                           ``(N, F)`` node features; optional: identity features for
                                one graph, constant ones ``(N, 1)`` for a graph-level set
``y``                           integer labels: ``(N,)`` per node (``-1`` = unlabelled), or
                                ``(G,)`` per graph when ``node_graph`` is given; required
``train_mask``, ``val_mask``,   optional boolean ``(N,)`` split masks (``validation_mask``
``test_mask``                   works too); with ``train_mask`` absent the labelled nodes are
                                split 60/20/20, stratified, with the load seed
``node_graph``                  optional ``(N,)`` graph id of each node (sorted, 0..G-1):
                                makes it a graph-classification set (many small graphs)
``graph_split``                 optional ``(G,)`` 0 = train, 1 = validation, 2 = test; absent:
                                graphs split 60/20/20, stratified, with the load seed
``class_names``                 optional ``(C,)`` str array
``edge_attr``                   optional ``(E,)`` or ``(E, D)`` edge features, one row per edge
                                as given (a reverse edge added gets its edge's row); used by
                                ``gin`` (GINE messages) and ``gcn`` (D = 1: edge weights)
==============================  ============================================================

**CSV folder**: ``nodes.csv`` and ``edges.csv`` (comma-separated, with a header row).

- ``nodes.csv``: an ``id`` column (any text, unique), a ``label`` column (class names or integers;
  an empty cell = unlabelled), an optional ``split`` column (``train`` / ``validation`` (or
  ``val``) / ``test``; empty = in no split), and every other column a numeric node feature. No
  feature column: identity features (one-hot node ids). Classes are the distinct labels, sorted
  (numerically when they are all integers). Without a ``split`` column the labelled nodes are
  split 60/20/20, stratified, with the load seed.
- ``edges.csv``: ``source`` and ``target`` columns holding node ids from ``nodes.csv``; other
  columns are ignored.

Both formats: edges are made undirected (both directions), duplicates and self-loops are
dropped (GNN layers add their own self-loops), and the features are kept as given
(``feature_norm = "none"``).
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np

from kerasdl.data.graphs.graph import (
    SPLITS,
    GraphData,
    as_edge_index,
    clean_edges,
    fraction_sizes,
    masks_from_indices,
    stratified_split,
)
from kerasdl.errors import KerasdlUsageError

FILE_FRACTIONS = (0.6, 0.2, 0.2)
EDGE_NOTE = "edges made undirected (both directions), duplicates and self-loops dropped"
MASK_KEYS = {
    "train": ("train_mask",),
    "validation": ("val_mask", "validation_mask"),
    "test": ("test_mask",),
}
SPLIT_WORDS = {
    "train": "train",
    "validation": "validation",
    "val": "validation",
    "valid": "validation",
    "test": "test",
}
_MISSING = {"", "nan", "na", "n/a", "null", "none"}


def _fail(message: str):
    raise KerasdlUsageError(message)


# ----------------------------------------------------------------------------------------------
# detection (cheap)


def npz_is_graph(path) -> bool:
    """Whether the ``.npz`` at ``path`` holds ``edge_index`` or ``edges`` (zip directory only)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = {n[:-4] if n.endswith(".npy") else n for n in zf.namelist()}
    except (OSError, zipfile.BadZipFile):
        return False
    return bool(names & {"edge_index", "edges"})


def csv_folder_is_graph(path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / "nodes.csv").is_file() and (path / "edges.csv").is_file()


# ----------------------------------------------------------------------------------------------
# NPZ


def load_npz_graph(path, *, seed: int = 0, display_name: str | None = None,
                   labels: bool = True) -> GraphData:
    """Read a graph ``.npz`` (see the module docstring). ``labels=False`` (``kerasdl predict``):
    ``y`` may be missing (every node, or graph, unlabelled) and there are no splits."""
    path = Path(path)
    label = path.name
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        _fail(f"no such file: {path}")
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "pickle" in str(exc):
            _fail(
                f"{label} holds an object array; save strings as str arrays "
                "(kerasdl never unpickles .npz files)"
            )
        _fail(f"cannot read {label}: {str(exc).splitlines()[0] if str(exc) else 'corrupt file'}")
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        _fail(f"cannot read {label}: not a valid .npz file ({type(exc).__name__})")

    if "edge_index" in arrays:
        edge_index = as_edge_index(arrays["edge_index"], f"{label}: edge_index")
    elif "edges" in arrays:
        edges = np.asarray(arrays["edges"])
        if edges.ndim != 2 or edges.shape[1] != 2:
            _fail(f"{label}: edges must be an (E, 2) integer array, got shape {tuple(edges.shape)}")
        edge_index = as_edge_index(edges.T, f"{label}: edges")
    else:
        _fail(f"{label} has no edge_index (2, E) or edges (E, 2) array")
    graph_level = "node_graph" in arrays
    if "y" not in arrays and not labels:
        if graph_level:
            ids = _int_labels(arrays["node_graph"], f"{label}: node_graph")
            count = int(ids.max()) + 1 if ids.size else 0
        else:
            count = int(np.shape(arrays["x"])[0]) if "x" in arrays and np.ndim(arrays["x"]) else (
                int(edge_index.max()) + 1 if edge_index.size else 0)
        arrays["y"] = -np.ones(count, np.int64)
    if "y" not in arrays:
        _fail(f"{label} has no y array (labels)")
    y = _int_labels(arrays["y"], f"{label}: y")

    node_graph = None
    if graph_level:
        node_graph = _int_labels(arrays["node_graph"], f"{label}: node_graph")
        n = len(node_graph)
    elif "x" in arrays:
        n = int(np.shape(arrays["x"])[0]) if np.ndim(arrays["x"]) else 0
    else:
        n = len(y)
    if "x" in arrays:
        x = np.asarray(arrays["x"])
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.dtype.kind not in "fiub":
            _fail(
                f"{label}: x must be an (N, F) numeric array, got shape {tuple(x.shape)} {x.dtype}"
            )
        x = x.astype(np.float32)
        feature_note = f"{x.shape[1]} features"
    elif graph_level:
        x = np.ones((n, 1), np.float32)
        feature_note = "constant features (no x)"
    else:
        x = np.eye(n, dtype=np.float32)
        feature_note = "identity features (no x)"
    _check_ids(edge_index, x.shape[0])
    edge_attr = None
    if "edge_attr" in arrays:
        edge_attr = np.asarray(arrays["edge_attr"])
        if edge_attr.ndim == 1:
            edge_attr = edge_attr[:, None]
        if edge_attr.ndim != 2 or edge_attr.shape[0] != edge_index.shape[1] or edge_attr.dtype.kind not in "fiub":
            _fail(f"{label}: edge_attr must be numeric with one row per edge ({edge_index.shape[1]}), "
                  f"got shape {tuple(edge_attr.shape)} {edge_attr.dtype}")
        edge_index, edge_attr = clean_edges(edge_index, edge_attr=edge_attr)
    else:
        edge_index = clean_edges(edge_index)

    k = int(y.max()) + 1 if y.size else 0
    if "class_names" in arrays:
        names = np.asarray(arrays["class_names"]).reshape(-1)
        class_names = [str(c) for c in names]
        if len(class_names) < k:
            _fail(
                f"{label}: y holds label {k - 1} but class_names lists {len(class_names)} classes"
            )
    else:
        class_names = [str(c) for c in range(max(k, 1))]

    masks, graph_splits = {}, {}
    if not labels and not (y >= 0).any():
        masks = {s: np.zeros(len(y), bool) for s in SPLITS} if not graph_level else {}
        graph_splits = {s: np.zeros(0, np.int64) for s in SPLITS} if graph_level else {}
        split_note = "unlabelled (for prediction)"
    elif graph_level:
        if "graph_split" in arrays:
            gs = _int_labels(arrays["graph_split"], f"{label}: graph_split")
            if len(gs) != len(y):
                _fail(f"{label}: graph_split has {len(gs)} entries but y has {len(y)} graphs")
            if gs.size and (gs.min() < 0 or gs.max() > 2):
                _fail(f"{label}: graph_split must hold 0 (train), 1 (validation) or 2 (test)")
            graph_splits = {
                s: np.flatnonzero(gs == i).astype(np.int64) for i, s in enumerate(SPLITS)
            }
            split_note = "graph_split as given"
        else:
            graph_splits = stratified_split(y, fraction_sizes(len(y), FILE_FRACTIONS), seed)
            split_note = f"graphs split 60/20/20 (stratified, seed {seed})"
    else:
        given = {
            s: next((arrays[k] for k in keys if k in arrays), None) for s, keys in MASK_KEYS.items()
        }
        if given["train"] is not None:
            for s in SPLITS:
                m = given[s]
                if m is None:
                    masks[s] = np.zeros(len(y), bool)
                    continue
                m = np.asarray(m).reshape(-1)
                if m.dtype.kind in "iu" and set(np.unique(m).tolist()) <= {0, 1}:
                    m = m.astype(bool)
                if m.dtype != bool:
                    _fail(f"{label}: {MASK_KEYS[s][0]} must be a boolean (N,) array, got {m.dtype}")
                masks[s] = m
            split_note = "masks as given"
        else:
            labelled = int(np.sum(y >= 0))
            parts = stratified_split(y, fraction_sizes(labelled, FILE_FRACTIONS), seed)
            masks = masks_from_indices(len(y), parts)
            split_note = f"labelled nodes split 60/20/20 (stratified, seed {seed})"
    what = f"{len(y)} graphs, " if graph_level else ""
    return GraphData(
        name=str(display_name if display_name is not None else path),
        source="npz",
        level="graph" if graph_level else "node",
        x=x,
        edge_index=edge_index,
        y=y,
        class_names=class_names,
        masks=masks,
        node_graph=node_graph,
        graph_splits=graph_splits,
        feature_norm="none",
        edge_attr=edge_attr,
        description=(
            f"graph from {label}: {what}{x.shape[0]} nodes, {edge_index.shape[1]} directed edges, "
            f"{feature_note}, {len(class_names)} classes; {EDGE_NOTE}; {split_note}"
        ),
    )


def _int_labels(arr, what: str) -> np.ndarray:
    arr = np.asarray(arr).reshape(-1) if np.ndim(arr) <= 1 else np.asarray(arr)
    if arr.ndim != 1:
        _fail(f"{what} must be 1-D, got shape {tuple(arr.shape)}")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return arr.astype(np.int64)
    _fail(f"{what} must hold integers, got {arr.dtype}")


def _check_ids(edge_index: np.ndarray, n: int) -> None:
    """The check_graph messages, before cleaning (so the message names the id the user wrote)."""
    if edge_index.size:
        lo, hi = int(edge_index.min()), int(edge_index.max())
        if lo < 0:
            _fail(f"edge_index holds negative node id {lo}")
        if hi >= n:
            _fail(f"edge_index holds node {hi} but the graph has {n} nodes")


# ----------------------------------------------------------------------------------------------
# CSV folder


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        _fail(f"missing file {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    except UnicodeDecodeError:
        _fail(f"cannot read {path.name}: not UTF-8 text")
    except csv.Error as exc:
        _fail(f"cannot read {path.name}: {exc}")
    if not rows:
        _fail(f"{path.name} is empty")
    header = [h.strip() for h in rows[0]]
    for i, r in enumerate(rows[1:], 2):
        if len(r) != len(header):
            _fail(f"{path.name} line {i} has {len(r)} cells but the header has {len(header)}")
    return header, [[c.strip() for c in r] for r in rows[1:]]


def _column(header: list[str], name: str, file: str, required: bool = True) -> int | None:
    lowered = [h.lower() for h in header]
    if name in lowered:
        return lowered.index(name)
    if required:
        _fail(f"{file} has no {name!r} column (columns: {', '.join(header)})")
    return None


def load_csv_graph(folder, *, seed: int = 0, display_name: str | None = None) -> GraphData:
    """Read a ``nodes.csv`` + ``edges.csv`` folder (see the module docstring)."""
    folder = Path(folder)
    header, rows = _read_csv(folder / "nodes.csv")
    if not rows:
        _fail("nodes.csv has no node")
    id_col = _column(header, "id", "nodes.csv")
    label_col = _column(header, "label", "nodes.csv")
    split_col = _column(header, "split", "nodes.csv", required=False)
    feature_cols = [i for i in range(len(header)) if i not in (id_col, label_col, split_col)]

    ids: dict[str, int] = {}
    for line, r in enumerate(rows, 2):
        if r[id_col] in ids:
            _fail(f"nodes.csv line {line}: node id {r[id_col]!r} appears twice")
        ids[r[id_col]] = len(ids)
    n = len(ids)

    raw = [r[label_col] for r in rows]
    present = sorted({v for v in raw if v.lower() not in _MISSING})
    if not present:
        _fail("nodes.csv has no labelled node")
    try:
        present = sorted(present, key=int)
    except ValueError:
        pass
    index = {c: i for i, c in enumerate(present)}
    y = np.array(
        [index.get(v, -1) if v.lower() not in _MISSING else -1 for v in raw], dtype=np.int64
    )

    if feature_cols:
        x = np.zeros((n, len(feature_cols)), np.float32)
        for line, r in enumerate(rows, 2):
            for j, c in enumerate(feature_cols):
                try:
                    x[line - 2, j] = float(r[c])
                except ValueError:
                    _fail(
                        f"nodes.csv line {line}, column {header[c]!r}: "
                        f"{r[c][:30]!r} is not a number"
                    )
        bad = ~np.isfinite(x)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            _fail(
                f"nodes.csv line {r + 2}, column {header[feature_cols[c]]!r}: NaN or infinite value"
            )
        feature_note = f"{len(feature_cols)} features"
    else:
        x = np.eye(n, dtype=np.float32)
        feature_note = "identity features (no feature column)"

    if split_col is not None:
        masks = {s: np.zeros(n, bool) for s in SPLITS}
        for line, r in enumerate(rows, 2):
            word = r[split_col].lower()
            if word in _MISSING:
                continue
            if word not in SPLIT_WORDS:
                _fail(
                    f"nodes.csv line {line}: "
                    f"split {r[split_col]!r} is not train, validation or test"
                )
            masks[SPLIT_WORDS[word]][line - 2] = True
        split_note = "split column as given"
    else:
        labelled = int(np.sum(y >= 0))
        masks = masks_from_indices(
            n, stratified_split(y, fraction_sizes(labelled, FILE_FRACTIONS), seed)
        )
        split_note = f"labelled nodes split 60/20/20 (stratified, seed {seed})"

    eheader, erows = _read_csv(folder / "edges.csv")
    src_col = _column(eheader, "source", "edges.csv")
    dst_col = _column(eheader, "target", "edges.csv")
    edges = np.zeros((2, len(erows)), np.int64)
    for line, r in enumerate(erows, 2):
        for k, c in enumerate((src_col, dst_col)):
            node = ids.get(r[c])
            if node is None:
                _fail(f"edges.csv line {line}: node {r[c][:30]!r} is not in nodes.csv")
            edges[k, line - 2] = node
    edge_index = clean_edges(edges)
    return GraphData(
        name=str(display_name if display_name is not None else folder),
        source="csv",
        level="node",
        x=x,
        edge_index=edge_index,
        y=y,
        class_names=list(present),
        masks=masks,
        feature_norm="none",
        description=(
            f"graph from {folder.name}/nodes.csv + edges.csv: {n} nodes, "
            f"{edge_index.shape[1]} directed "
            f"edges, {feature_note}, {len(present)} classes; {EDGE_NOTE}; {split_note}"
        ),
    )
