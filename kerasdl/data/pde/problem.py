"""A PDE problem as data: domain, residual, conditions, coefficients and a reference solution.

The ``pinn`` task (:mod:`kerasdl.tasks.pinn`) trains a network ``u(inputs)`` so that the problem's
residual vanishes on collocation points and its conditions hold on their faces (Raissi,
Perdikaris & Karniadakis 2019). A problem is a :class:`Problem` value; the built-in ones live in
:mod:`kerasdl.data.pde.problems`, and a user's own is a Python file passed as
``--task-opt problem=path.py:NAME`` (see :func:`kerasdl.data.pde.load_problem`)::

    import numpy as np
    from keras import ops
    from kerasdl.data.pde import Condition, Problem

    def residual(d, p):      # d: tensors (N, 1) by name; p: coefficients (floats or tensors)
        return d["u_t"] - p["alpha"] * d["u_xx"]

    HEAT = Problem(
        name="my_heat", inputs=("x", "t"), bounds={"x": (0.0, 1.0), "t": (0.0, 1.0)},
        residual=residual, derivatives=("u_t", "u_xx"), params={"alpha": 0.4},
        conditions=(
            Condition("initial", faces=({"t": 0.0},), value=lambda p: np.sin(np.pi * p[:, 0])),
            Condition("boundary", faces=({"x": 0.0}, {"x": 1.0}), value=lambda p: np.zeros(len(p))),
        ),
        reference=lambda p: np.exp(-0.4 * np.pi**2 * p[:, 1]) * np.sin(np.pi * p[:, 0]),
    )

Conventions:

* inputs are one lowercase letter each (not ``u``), in the order of the network's input columns;
  time, when there is one, goes last (the solution plots slice along the last input);
* ``d`` holds every input by name, ``"u"`` and each derivative named in ``derivatives``: ``u_x``,
  ``u_xx``, ``u_xt``, ... (``u_`` then one input letter per differentiation), all of shape (N, 1),
  computed by automatic differentiation; the residual returns an (N, 1) (or (N,)) tensor, written
  with ``keras.ops`` (or TensorFlow) functions;
* ``p`` holds ``params`` (their true values) — in an inverse run the ``unknowns`` among them are
  trainable variables instead;
* a condition holds on the faces of the box it names (each face fixes one input at a value);
  ``value`` maps NumPy points (n, d) to targets (n,) for ``output`` (``u``: Dirichlet, or a
  derivative key such as ``u_x``: Neumann);
* ``reference`` (NumPy points (n, d) -> (n,)) is the exact or a trusted numerical solution: the
  relative L2 error is measured against it on ``grid`` (points per input);
* ``transform`` (optional) imposes conditions exactly, as an output transform: ``(x, u) -> u`` with
  ``x`` the inputs by name (tensors (N, 1)) and ``u`` the network's output (Lagaris et al. 1998).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable

import numpy as np

from kerasdl.errors import KerasdlUsageError

__all__ = ["Problem", "Condition", "Unknown", "parse_derivative"]

_INPUT = re.compile(r"^[a-tv-z]$")  # one lowercase letter, not "u"


@dataclasses.dataclass(frozen=True)
class Condition:
    """An initial or boundary condition: ``output`` equals ``value(points)`` on ``faces``."""

    name: str  # "initial", "boundary", ... (names its loss term: loss_<name>)
    faces: tuple  # dicts {input: value}, one input fixed per face, e.g. ({"x": -1.0}, {"x": 1.0})
    value: Callable[[np.ndarray], np.ndarray]  # points (n, d) -> targets (n,) or (n, 1)
    output: str = "u"  # "u" (Dirichlet) or a derivative key, e.g. "u_x" (Neumann)


@dataclasses.dataclass(frozen=True)
class Unknown:
    """A coefficient an inverse run learns, and where it starts. ``positive`` trains ``log(value)``
    (Raissi et al. 2019 learn the viscosity as ``exp(lambda_2)``, from ``lambda_2 = -6``)."""

    guess: float
    positive: bool = False


@dataclasses.dataclass(frozen=True)
class Problem:
    """A PDE on a box domain (see the module docstring for the conventions)."""

    name: str
    inputs: tuple  # e.g. ("x", "t")
    bounds: dict  # input -> (low, high)
    residual: Callable[[dict, dict], Any]
    derivatives: tuple = ()  # e.g. ("u_t", "u_x", "u_xx")
    params: dict = dataclasses.field(default_factory=dict)  # coefficient -> true value
    conditions: tuple = ()
    reference: Callable[[np.ndarray], np.ndarray] | None = None
    grid: dict = dataclasses.field(default_factory=dict)  # input -> points on the evaluation grid (default 101)
    slices: tuple = ()  # values of the last input at which the solution is plotted (default: 3 spread)
    transform: Callable[[dict, Any], Any] | None = None
    unknowns: dict = dataclasses.field(default_factory=dict)  # coefficient -> Unknown (inverse runs)
    description: str = ""
    paper: str = ""

    @property
    def dim(self) -> int:
        return len(self.inputs)

    def low(self) -> np.ndarray:
        return np.array([self.bounds[k][0] for k in self.inputs], dtype=np.float64)

    def high(self) -> np.ndarray:
        return np.array([self.bounds[k][1] for k in self.inputs], dtype=np.float64)

    def keys(self) -> tuple:
        """Every derivative key the residual and the conditions need (sorted by order, then name)."""
        keys = set(self.derivatives) | {c.output for c in self.conditions if c.output != "u"}
        return tuple(sorted(keys, key=lambda k: (len(k), k)))

    def check(self, where: str = "") -> "Problem":
        """Refuse a malformed problem with one line; returns the problem."""
        at = f"problem {self.name!r}{' in ' + where if where else ''}"
        if not callable(self.residual):
            raise KerasdlUsageError(f"{at} has no residual: give residual=f(d, p) returning the PDE residual")
        if not self.inputs or len(set(self.inputs)) != len(self.inputs):
            raise KerasdlUsageError(f"{at}: inputs must be distinct names, e.g. ('x', 't'). Received: {self.inputs!r}")
        for name in self.inputs:
            if not isinstance(name, str) or not _INPUT.match(name):
                raise KerasdlUsageError(f"{at}: input {name!r} must be one lowercase letter other than 'u'")
            if name not in self.bounds:
                raise KerasdlUsageError(f"{at}: input {name!r} has no bounds (bounds={{'{name}': (low, high)}})")
            try:
                lo, hi = (float(v) for v in self.bounds[name])
            except (TypeError, ValueError):
                raise KerasdlUsageError(f"{at}: bounds of {name!r} must be (low, high). "
                                        f"Received: {self.bounds[name]!r}") from None
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise KerasdlUsageError(f"{at}: the domain of {name!r} must be finite. Received: ({lo}, {hi})")
            if not hi > lo:
                what = "zero width" if hi == lo else "low > high"
                raise KerasdlUsageError(f"{at}: the domain of {name!r} has {what}: ({lo}, {hi})")
        extra = sorted(set(self.bounds) - set(self.inputs))
        if extra:
            raise KerasdlUsageError(f"{at}: bounds name {extra[0]!r}, which is not an input of {self.inputs}")
        for key in self.keys():
            parse_derivative(key, self.inputs, at)
        for cond in self.conditions:
            if not isinstance(cond, Condition):
                raise KerasdlUsageError(f"{at}: conditions must be Condition values. Received: {type(cond).__name__}")
            if not callable(cond.value):
                raise KerasdlUsageError(f"{at}: condition {cond.name!r} has no value function")
            if not cond.faces:
                raise KerasdlUsageError(f"{at}: condition {cond.name!r} has no faces")
            for face in cond.faces:
                if len(face) != 1 or next(iter(face)) not in self.inputs:
                    raise KerasdlUsageError(f"{at}: condition {cond.name!r}: a face fixes one input, "
                                            f"e.g. {{'{self.inputs[-1]}': 0.0}}. Received: {face!r}")
                (key, value), = face.items()
                lo, hi = self.bounds[key]
                if not lo <= float(value) <= hi:
                    raise KerasdlUsageError(f"{at}: condition {cond.name!r}: face {key}={value} lies outside "
                                            f"the domain ({lo}, {hi})")
        for name in self.unknowns:
            if name not in self.params:
                raise KerasdlUsageError(f"{at}: unknown {name!r} is not one of its params {sorted(self.params)}")
        for name in self.grid:
            if name not in self.inputs or int(self.grid[name]) < 2:
                raise KerasdlUsageError(f"{at}: grid must give >= 2 points per input. Received: {self.grid!r}")
        return self


def parse_derivative(key: str, inputs, where: str = "problem") -> tuple:
    """``"u_xt"`` -> the input indices ``(0, 1)`` of ``inputs`` ("x", "t"); a bad key is one line."""
    letters = key[2:] if key.startswith("u_") else ""
    if not letters or any(c not in inputs for c in letters):
        raise KerasdlUsageError(f"{where}: derivative {key!r} must be 'u_' followed by input letters "
                                f"of {tuple(inputs)}, e.g. 'u_{inputs[0]}{inputs[0]}'")
    return tuple(inputs.index(c) for c in letters)
