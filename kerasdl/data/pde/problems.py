"""The built-in PDE problems, and :func:`load_problem` for a built-in name or a user's problem file.

* ``burgers`` — viscous Burgers on [-1, 1] x [0, 1] with nu = 0.01/pi, the benchmark of Raissi,
  Perdikaris & Karniadakis 2019 (reference: the Cole–Hopf solution);
* ``heat`` — the 1-D heat equation with alpha = 0.4 (DeepXDE's heat example, n = 1, L = 1);
* ``poisson`` — -Δu = 2 pi^2 sin(pi x) sin(pi y) on the unit square;
* ``helmholtz`` — Δu + k^2 u = q on [-1, 1]^2 with u = sin(pi x) sin(4 pi y), the stiff problem
  of Wang, Teng & Perdikaris 2021.

Residuals and transforms run on tensors (float64) and use ``keras.ops``, imported inside each
function so that importing this module does not import Keras.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys

import numpy as np

from kerasdl.data.pde import reference as ref
from kerasdl.data.pde.problem import Condition, Problem, Unknown
from kerasdl.errors import KerasdlUsageError, UnknownNameError, first_line

__all__ = ["PROBLEMS", "list_problems", "load_problem"]

RAISSI_2019 = ("Raissi, Perdikaris & Karniadakis 2019, \"Physics-informed neural networks: a deep learning "
               "framework for solving forward and inverse problems involving nonlinear partial differential "
               "equations\", J. Comput. Phys. 378")
LU_2021 = ("Lu, Meng, Mao & Karniadakis 2021, \"DeepXDE: a deep learning library for solving differential "
           "equations\", SIAM Review 63(1)")
WANG_2021 = ("Wang, Teng & Perdikaris 2021, \"Understanding and mitigating gradient flow pathologies in "
             "physics-informed neural networks\", SIAM J. Sci. Comput. 43(5)")


def _zeros(points: np.ndarray) -> np.ndarray:
    return np.zeros(len(points), dtype=np.float64)


# --- burgers: u_t + u u_x = nu u_xx (Raissi et al. 2019) -------------------------------------------

def burgers_residual(d, p):
    """``u_t + u u_x - nu u_xx``."""
    return d["u_t"] + d["u"] * d["u_x"] - p["nu"] * d["u_xx"]


def burgers_initial(points: np.ndarray) -> np.ndarray:
    return -np.sin(np.pi * points[:, 0])


def burgers_reference(points: np.ndarray) -> np.ndarray:
    return ref.burgers_cole_hopf(points[:, 0], points[:, 1])


def burgers_transform(x, u):
    """``-sin(pi x) + t (1 - x^2) N``: the initial and boundary conditions hold exactly."""
    from keras import ops

    return -ops.sin(np.pi * x["x"]) + x["t"] * (1.0 - x["x"] ** 2) * u


def burgers() -> Problem:
    return Problem(
        name="burgers", inputs=("x", "t"), bounds={"x": (-1.0, 1.0), "t": (0.0, 1.0)},
        residual=burgers_residual, derivatives=("u_t", "u_x", "u_xx"), params={"nu": ref.BURGERS_NU},
        conditions=(
            Condition("initial", faces=({"t": 0.0},), value=burgers_initial),
            Condition("boundary", faces=({"x": -1.0}, {"x": 1.0}), value=_zeros),
        ),
        reference=burgers_reference, grid={"x": 256, "t": 101}, slices=(0.25, 0.5, 0.75),
        transform=burgers_transform, unknowns={"nu": Unknown(float(np.exp(-6.0)), positive=True)},
        description="viscous Burgers u_t + u u_x = (0.01/pi) u_xx, u(0,x) = -sin(pi x), u(t,±1) = 0; "
                    "a shock forms at x = 0 (reference: Cole-Hopf solution)",
        paper=RAISSI_2019,
    )


# --- heat: u_t = alpha u_xx (DeepXDE's heat example) ----------------------------------------------

HEAT_ALPHA = 0.4


def heat_residual(d, p):
    """``u_t - alpha u_xx``."""
    return d["u_t"] - p["alpha"] * d["u_xx"]


def heat_initial(points: np.ndarray) -> np.ndarray:
    return np.sin(np.pi * points[:, 0])


def heat_reference(points: np.ndarray) -> np.ndarray:
    return ref.heat_exact(points[:, 0], points[:, 1], HEAT_ALPHA)


def heat_transform(x, u):
    """``sin(pi x) + t x (1 - x) N``: the initial and boundary conditions hold exactly."""
    from keras import ops

    return ops.sin(np.pi * x["x"]) + x["t"] * x["x"] * (1.0 - x["x"]) * u


def heat() -> Problem:
    return Problem(
        name="heat", inputs=("x", "t"), bounds={"x": (0.0, 1.0), "t": (0.0, 1.0)},
        residual=heat_residual, derivatives=("u_t", "u_xx"), params={"alpha": HEAT_ALPHA},
        conditions=(
            Condition("initial", faces=({"t": 0.0},), value=heat_initial),
            Condition("boundary", faces=({"x": 0.0}, {"x": 1.0}), value=_zeros),
        ),
        reference=heat_reference, grid={"x": 101, "t": 101}, slices=(0.1, 0.5, 1.0),
        transform=heat_transform, unknowns={"alpha": Unknown(0.1, positive=True)},
        description="heat equation u_t = 0.4 u_xx on [0,1], u(0,x) = sin(pi x), u = 0 at x = 0, 1; "
                    "exact u = exp(-0.4 pi^2 t) sin(pi x)",
        paper=LU_2021,
    )


# --- poisson: -(u_xx + u_yy) = 2 pi^2 sin(pi x) sin(pi y) on the unit square ------------------------

def poisson_residual(d, p):
    """``u_xx + u_yy + 2 pi^2 sin(pi x) sin(pi y)`` (the equation is ``-Δu = f``)."""
    from keras import ops

    source = 2.0 * np.pi**2 * ops.sin(np.pi * d["x"]) * ops.sin(np.pi * d["y"])
    return d["u_xx"] + d["u_yy"] + source


def poisson_reference(points: np.ndarray) -> np.ndarray:
    return ref.poisson_exact(points[:, 0], points[:, 1])


def poisson_transform(x, u):
    """``x (1 - x) y (1 - y) N``: zero on the boundary exactly."""
    return x["x"] * (1.0 - x["x"]) * x["y"] * (1.0 - x["y"]) * u


def poisson() -> Problem:
    return Problem(
        name="poisson", inputs=("x", "y"), bounds={"x": (0.0, 1.0), "y": (0.0, 1.0)},
        residual=poisson_residual, derivatives=("u_xx", "u_yy"),
        conditions=(
            Condition("boundary", faces=({"x": 0.0}, {"x": 1.0}, {"y": 0.0}, {"y": 1.0}), value=_zeros),
        ),
        reference=poisson_reference, grid={"x": 101, "y": 101}, slices=(0.25, 0.5, 0.75),
        transform=poisson_transform,
        description="Poisson -(u_xx + u_yy) = 2 pi^2 sin(pi x) sin(pi y) on [0,1]^2, u = 0 on the boundary; "
                    "exact u = sin(pi x) sin(pi y)",
        paper=RAISSI_2019,
    )


# --- helmholtz: u_xx + u_yy + k^2 u = q on [-1, 1]^2 (Wang, Teng & Perdikaris 2021) ----------------

HELMHOLTZ_K, HELMHOLTZ_A1, HELMHOLTZ_A2 = 1.0, 1.0, 4.0


def helmholtz_residual(d, p):
    """``u_xx + u_yy + k^2 u - q`` with ``q`` made from the exact solution (true ``k`` = 1)."""
    from keras import ops

    coef = HELMHOLTZ_K**2 - (HELMHOLTZ_A1**2 + HELMHOLTZ_A2**2) * np.pi**2
    source = coef * ops.sin(HELMHOLTZ_A1 * np.pi * d["x"]) * ops.sin(HELMHOLTZ_A2 * np.pi * d["y"])
    return d["u_xx"] + d["u_yy"] + p["k"] ** 2 * d["u"] - source


def helmholtz_reference(points: np.ndarray) -> np.ndarray:
    return ref.helmholtz_exact(points[:, 0], points[:, 1], HELMHOLTZ_A1, HELMHOLTZ_A2)


def helmholtz_transform(x, u):
    """``(1 - x^2)(1 - y^2) N``: zero on the boundary exactly."""
    return (1.0 - x["x"] ** 2) * (1.0 - x["y"] ** 2) * u


def helmholtz() -> Problem:
    return Problem(
        name="helmholtz", inputs=("x", "y"), bounds={"x": (-1.0, 1.0), "y": (-1.0, 1.0)},
        residual=helmholtz_residual, derivatives=("u_xx", "u_yy"), params={"k": HELMHOLTZ_K},
        conditions=(
            Condition("boundary", faces=({"x": -1.0}, {"x": 1.0}, {"y": -1.0}, {"y": 1.0}), value=_zeros),
        ),
        reference=helmholtz_reference, grid={"x": 101, "y": 101}, slices=(-0.375, 0.125, 0.375),
        transform=helmholtz_transform,
        description="Helmholtz u_xx + u_yy + u = q on [-1,1]^2, u = 0 on the boundary; exact "
                    "u = sin(pi x) sin(4 pi y) (stiff: the residual loss dominates the boundary loss)",
        paper=WANG_2021,
    )


PROBLEMS = {"burgers": burgers, "heat": heat, "poisson": poisson, "helmholtz": helmholtz}


def list_problems() -> list[str]:
    """The built-in problem names."""
    return sorted(PROBLEMS)


_counter = itertools.count()


def load_problem(spec: str) -> Problem:
    """A built-in problem by name, or one from a Python file: ``"path.py:NAME"`` takes the attribute
    ``NAME`` (a :class:`Problem` or a zero-argument function returning one); ``"path.py"`` takes
    the file's only Problem. The problem is checked (:meth:`Problem.check`) either way."""
    spec = str(spec).strip()
    if spec in PROBLEMS:
        return PROBLEMS[spec]().check()
    path, name = spec, None
    if ":" in spec and not spec.endswith(".py"):
        path, name = spec.rsplit(":", 1)
    if not path.endswith(".py"):
        raise UnknownNameError("PDE problem", spec, list_problems(), extra="(or give path/to/file.py:NAME)")
    if not os.path.isfile(path):
        raise KerasdlUsageError(f"problem file {path} not found")
    module = _import_file(path)
    problems = {k: v for k, v in vars(module).items() if isinstance(v, Problem) and not k.startswith("_")}
    if name is None:
        if len(problems) != 1:
            found = ", ".join(sorted(problems)) if problems else "none"
            raise KerasdlUsageError(f"problem file {path} must hold exactly one Problem, or name it as "
                                    f"{path}:NAME. Problems found: {found}")
        (name, problem), = problems.items()
    else:
        if not hasattr(module, name):
            found = ", ".join(sorted(problems)) if problems else "none"
            raise KerasdlUsageError(f"problem file {path} has no {name!r}. Problems found: {found}")
        problem = getattr(module, name)
        if not isinstance(problem, Problem) and callable(problem):
            try:
                problem = problem()
            except Exception as exc:  # a user's factory failing is their error, in one line
                raise KerasdlUsageError(f"problem file {path}: {name}() failed: {first_line(exc)}") from None
        if not isinstance(problem, Problem):
            raise KerasdlUsageError(f"problem file {path}: {name} is a {type(problem).__name__}, not a Problem "
                                    f"(from kerasdl.data.pde import Problem)")
    return problem.check(where=path)


def _import_file(path: str):
    stem = os.path.splitext(os.path.basename(path))[0]
    module_name = f"kerasdl_user_problem_{next(_counter)}_{''.join(c if c.isalnum() else '_' for c in stem)}"
    spec = importlib.util.spec_from_file_location(module_name, os.path.abspath(path))
    if spec is None or spec.loader is None:
        raise KerasdlUsageError(f"problem file {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise KerasdlUsageError(f"problem file {path} failed: {first_line(exc)}") from None
    return module
