"""Graph datasets for node and graph classification, as NumPy arrays (:class:`GraphData`).

Sources (:func:`load_graph` takes any of these names):

- ``"karate"``: Zachary's karate club, one labelled member per faction (:mod:`.builtin`);
- ``"cycles"``: 1,200 offline synthetic graphs classed by cycle count (:mod:`.builtin`);
- ``"path/to/folder/cora"`` (or a folder holding one ``ind.<name>.*`` set): the Planetoid
  citation graphs Cora / Citeseer / PubMed with their standard split (:mod:`.planetoid`, read
  with the restricted unpickler of :mod:`.safe_pickle`);
- ``"graph.npz"`` or a folder with ``nodes.csv`` + ``edges.csv``: a user's own graph
  (:mod:`.files`, whose docstring documents the formats).

Nothing here imports TensorFlow or Keras; the input pipeline builds on these arrays.

    >>> from kerasdl.data.graphs import load_graph
    >>> g = load_graph("karate")
    >>> g.num_nodes, g.num_edges, g.split_sizes()
    (34, 156, {'train': 2, 'validation': 16, 'test': 16})
"""

from __future__ import annotations

from pathlib import Path

from kerasdl.data.graphs.builtin import GRAPH_DATASETS, load_builtin
from kerasdl.data.graphs.graph import SPLITS, GraphData, check_graph
from kerasdl.errors import KerasdlUsageError, UnknownNameError

__all__ = [
    "GRAPH_DATASETS",
    "SPLITS",
    "GraphData",
    "check_graph",
    "graph_names",
    "is_graph_dataset",
    "load_graph",
]


def graph_names() -> list[str]:
    """The built-in graph dataset names (descriptions in :data:`GRAPH_DATASETS`)."""
    return sorted(GRAPH_DATASETS)


def _kind(name: str) -> str | None:
    """``"builtin"``, ``"planetoid"``, ``"npz"``, ``"csv"`` or ``None`` (a few stat calls)."""
    from kerasdl.data.graphs import files, planetoid

    if name in GRAPH_DATASETS:
        return "builtin"
    path = Path(name).expanduser()
    if path.suffix.lower() == ".npz":
        return "npz" if path.is_file() and files.npz_is_graph(path) else None
    if files.csv_folder_is_graph(path):
        return "csv"
    if planetoid.find_planetoid(path) is not None:
        return "planetoid"
    return None


def is_graph_dataset(name) -> bool:
    """Whether ``name`` is a graph dataset: a built-in, a Planetoid spec, a .npz or a CSV folder.

    Cheap: no data is loaded (an .npz has only its zip directory read).
    """
    try:
        return _kind(str(name)) is not None
    except OSError:
        return False


def load_graph(name: str, *, seed: int = 0, labels: bool = True) -> GraphData:
    """Load and :func:`check_graph` the graph dataset ``name``.

    ``labels=False`` reads a graph to predict: a user's .npz may then have no ``y``, and labels and
    splits are not checked.

    ``seed`` only matters for a user's .npz / CSV graph without given splits (it seeds their
    stratified 60/20/20 split); ``karate``, ``cycles`` and Planetoid have fixed splits.
    """
    from kerasdl.data.graphs import files, planetoid

    name = str(name)
    kind = _kind(name)
    if kind == "builtin":
        g = load_builtin(name)
    elif kind == "planetoid":
        g = planetoid.load_planetoid(name, display_name=name)
    elif kind == "npz":
        g = files.load_npz_graph(name, seed=seed, display_name=name, labels=labels)
    elif kind == "csv":
        g = files.load_csv_graph(name, seed=seed, display_name=name)
    else:
        path = Path(name).expanduser()
        if path.suffix.lower() == ".npz":
            if not path.is_file():
                raise KerasdlUsageError(f"no such file: {name}")
            files.load_npz_graph(path)  # corrupt, or no edge_index / edges: a one-line error
            raise KerasdlUsageError(f"{name} is not a graph .npz")
        if path.is_dir():
            if (path / "nodes.csv").is_file() or (path / "edges.csv").is_file():
                missing = "edges.csv" if (path / "nodes.csv").is_file() else "nodes.csv"
                raise KerasdlUsageError(
                    f"graph folder {name} has no {missing} (it needs nodes.csv and edges.csv)"
                )
            if planetoid.planetoid_sets(path):  # several sets: load_planetoid says which
                planetoid.load_planetoid(path, display_name=name)
            raise KerasdlUsageError(
                f"no graph dataset in {name} "
                "(expected Planetoid ind.<name>.* files, or nodes.csv and edges.csv)"
            )
        if path.name and any(path.parent.glob(f"ind.{path.name}.*")):
            raise KerasdlUsageError(
                f"Planetoid set {path.name!r} in {path.parent} is missing ind.{path.name}.x"
            )
        if (
            path.parent.is_dir()
            and str(path.parent) not in ("", ".")
            and planetoid.planetoid_sets(path.parent)
        ):
            sets = planetoid.planetoid_sets(path.parent)
            raise UnknownNameError("Planetoid set", path.name, sets, extra=f"in {path.parent}")
        if "/" in name or "\\" in name or path.exists():
            raise KerasdlUsageError(
                f"no graph dataset at {name} (no ind.{path.name}.x, nodes.csv or graph .npz)"
            )
        raise UnknownNameError("graph dataset", name, graph_names())
    check_graph(g, labels=labels)
    return g
