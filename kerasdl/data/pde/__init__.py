"""PDE problems for physics-informed networks (the ``pinn`` task; Raissi, Perdikaris & Karniadakis 2019).

* :class:`Problem`, :class:`Condition`, :class:`Unknown` — a problem as data (see
  :mod:`kerasdl.data.pde.problem` for the conventions);
* :data:`PROBLEMS`, :func:`list_problems`, :func:`load_problem` — the built-in problems
  (``burgers``, ``heat``, ``poisson``, ``helmholtz``) and a user's ``path.py:NAME``;
* :func:`collocation`, :func:`condition_points`, :func:`observations`, :func:`reference_grid` —
  seeded float64 point sets.

Importing this package imports NumPy only (residuals import ``keras.ops`` when they run; SciPy's
samplers load on first use).

    >>> from kerasdl.data.pde import load_problem, collocation
    >>> problem = load_problem("burgers")
    >>> collocation(problem, 10000).shape
    (10000, 2)
"""

from kerasdl.data.pde.problem import Condition, Problem, Unknown, parse_derivative
from kerasdl.data.pde.problems import PROBLEMS, list_problems, load_problem
from kerasdl.data.pde.sampling import SAMPLERS, collocation, condition_points, observations, reference_grid

__all__ = [
    "Condition", "PROBLEMS", "Problem", "SAMPLERS", "Unknown", "collocation", "condition_points",
    "list_problems", "load_problem", "observations", "parse_derivative", "reference_grid",
]
