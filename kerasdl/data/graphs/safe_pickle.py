"""A restricted unpickler for the Planetoid files (``ind.cora.x``, ...).

A pickle is a program: unpickling one with the plain :mod:`pickle` module can run any function
it names (``os.system``, ``subprocess.Popen``, ``builtins.eval``, ...). The Planetoid files
(Yang et al. 2016, "Revisiting Semi-Supervised Learning with Graph Embeddings", as distributed
with Kipf & Welling's GCN code) only ever hold NumPy arrays, SciPy sparse matrices and a
``collections.defaultdict`` of lists, written by Python 2. :func:`safe_load` resolves exactly
those classes (by fully qualified name, to the objects imported here) and refuses every other
global with a one-line :class:`~kerasdl.errors.KerasdlUsageError` before anything runs. The
approach is the one the Python documentation recommends ("Restricting Globals", pickle docs).
"""

from __future__ import annotations

import builtins
import collections
import copyreg
import pickle
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from kerasdl.errors import KerasdlUsageError

try:  # NumPy >= 2 moved numpy.core to numpy._core (numpy.core still works, with a warning)
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric


def _numpy_globals() -> dict[tuple[str, str], object]:
    table: dict[tuple[str, str], object] = {
        ("numpy", "dtype"): np.dtype,
        ("numpy", "ndarray"): np.ndarray,
    }
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = _multiarray._reconstruct
        table[(f"{core}.multiarray", "scalar")] = _multiarray.scalar
        if hasattr(_numeric, "_frombuffer"):
            table[(f"{core}.numeric", "_frombuffer")] = _numeric._frombuffer
    # dtype classes that NumPy >= 1.25 pickles by name (numpy.dtypes.Float32DType, ...)
    for name in (
        "Float16DType",
        "Float32DType",
        "Float64DType",
        "Int8DType",
        "Int16DType",
        "Int32DType",
        "Int64DType",
        "UInt8DType",
        "UInt16DType",
        "UInt32DType",
        "UInt64DType",
        "BoolDType",
    ):
        cls = getattr(getattr(np, "dtypes", None), name, None)
        if cls is not None:
            table[("numpy.dtypes", name)] = cls
    return table


def _scipy_globals() -> dict[tuple[str, str], object]:
    table: dict[tuple[str, str], object] = {}
    for fmt in ("csr", "csc", "lil", "coo"):
        for kind in ("matrix", "array"):
            cls = getattr(sp, f"{fmt}_{kind}", None)
            if cls is None:
                continue
            # public module, the SciPy < 1.8 module and the private module of SciPy >= 1.8
            for module in ("scipy.sparse", f"scipy.sparse.{fmt}", f"scipy.sparse._{fmt}"):
                table[(module, f"{fmt}_{kind}")] = cls
    return table


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1"):
        raise pickle.UnpicklingError(f"codec {encoding!r} refused")
    return text.encode("latin1")


def _builtin_globals() -> dict[tuple[str, str], object]:
    table: dict[tuple[str, str], object] = {}
    for name in (
        "list",
        "dict",
        "set",
        "frozenset",
        "tuple",
        "int",
        "float",
        "complex",
        "str",
        "bytes",
        "bool",
        "object",
        "bytearray",
    ):
        for module in ("builtins", "__builtin__"):  # Python 3 / Python 2 names
            table[(module, name)] = getattr(builtins, name)
    table[("__builtin__", "unicode")] = str
    table[("__builtin__", "long")] = int
    # Python 3 writes bytes in protocol 0-2 as _codecs.encode(text, "latin1"); admit that codec only
    table[("_codecs", "encode")] = _latin1_encode
    table[("collections", "defaultdict")] = collections.defaultdict
    table[("collections", "OrderedDict")] = collections.OrderedDict
    # protocol 0/1 pickles of new-style objects: _reconstructor(cls, base, state) only builds
    # instances of classes that themselves passed this table
    table[("copy_reg", "_reconstructor")] = copyreg._reconstructor
    table[("copyreg", "_reconstructor")] = copyreg._reconstructor
    return table


ALLOWED = {**_numpy_globals(), **_scipy_globals(), **_builtin_globals()}
_SHOWN_AS = {
    "posix": "os",
    "nt": "os",
    "__builtin__": "builtins",
}  # os.system pickles as posix.system


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in :data:`ALLOWED` and refuses the rest."""

    def __init__(self, file, *, label: str, **kwargs):
        super().__init__(file, **kwargs)
        self.label = label

    def find_class(self, module: str, name: str):
        obj = ALLOWED.get((module, name))
        if obj is None:
            shown = f"{_SHOWN_AS.get(module, module)}.{name}"
            raise KerasdlUsageError(
                f"refusing to load {self.label}: the pickle asks for {shown}, "
                "which a Planetoid file never contains"
            )
        return obj


def safe_load(path, *, encoding: str = "latin1"):
    """Unpickle ``path`` with :class:`RestrictedUnpickler` (``"latin1"`` reads Python 2 pickles).

    Raises a one-line :class:`~kerasdl.errors.KerasdlUsageError` for a refused global, and for a
    missing, truncated or corrupt file.
    """
    path = Path(path)
    label = path.name
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, label=label, encoding=encoding).load()
    except KerasdlUsageError:
        raise
    except FileNotFoundError:
        raise KerasdlUsageError(f"missing file {path}") from None
    except IsADirectoryError:
        raise KerasdlUsageError(f"{path} is a folder, not a Planetoid pickle") from None
    except EOFError:
        raise KerasdlUsageError(f"cannot read {label}: the pickle is truncated") from None
    except (
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        UnicodeDecodeError,
        MemoryError,
        OverflowError,
        RecursionError,
    ) as exc:
        reason = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KerasdlUsageError(f"cannot read {label}: not a valid pickle ({reason})") from None
