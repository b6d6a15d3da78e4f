"""Seeded float64 point sets for physics-informed training: collocation points inside the domain,
points on the faces where the conditions hold, noisy observations and the evaluation grid.

Raissi, Perdikaris & Karniadakis 2019 draw collocation points by Latin hypercube sampling (McKay,
Beckman & Conover 1979), the default here; ``"sobol"`` is a scrambled Sobol' sequence (Owen 1998),
``"uniform"`` plain i.i.d. uniform points. The same ``seed`` always gives the same points.
"""

from __future__ import annotations

import math

import numpy as np

from kerasdl.data.pde.problem import Problem
from kerasdl.errors import KerasdlUsageError, UnknownNameError

__all__ = ["SAMPLERS", "collocation", "condition_points", "observations", "reference_grid"]

SAMPLERS = ("lhs", "sobol", "uniform")
DEFAULT_GRID = 101  # points per input of the evaluation grid when the problem's grid does not say


def _qmc_engine(cls, d: int, seed: int):
    try:
        return cls(d, rng=np.random.default_rng(seed))
    except TypeError:  # scipy < 1.15 names it seed
        return cls(d, seed=np.random.default_rng(seed))


def _unit(n: int, d: int, method: str, seed: int) -> np.ndarray:
    """``n`` points in the unit cube [0, 1)^d."""
    if method not in SAMPLERS:
        raise UnknownNameError("sampler", method, SAMPLERS)
    if d == 0:
        return np.zeros((n, 0), dtype=np.float64)
    if method == "uniform":
        return np.random.default_rng(seed).random((n, d))
    from scipy.stats import qmc

    if method == "lhs":
        return _qmc_engine(qmc.LatinHypercube, d, seed).random(n).astype(np.float64)
    # Sobol' points are balanced in blocks of 2^m: draw the next power of two (no warning), keep n.
    points = _qmc_engine(qmc.Sobol, d, seed).random_base2(max(0, math.ceil(math.log2(n))))
    return points[:n].astype(np.float64)


def _count(n, what: str) -> int:
    try:
        ok = not isinstance(n, bool) and int(n) == n and int(n) >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise KerasdlUsageError(f"the number of {what} must be a positive integer. Received: {n!r}")
    return int(n)


def collocation(problem: Problem, n: int, method: str = "lhs", seed: int = 0) -> np.ndarray:
    """``n`` points (n, d) inside the problem's box, drawn by ``method`` ("lhs", "sobol", "uniform")."""
    n = _count(n, "collocation points")
    low, high = problem.low(), problem.high()
    return low + (high - low) * _unit(n, problem.dim, method, seed)


def _faces(problem: Problem) -> list:
    """``(condition index, input index, value, measure)`` per face, in order."""
    low, high = problem.low(), problem.high()
    faces = []
    for c, cond in enumerate(problem.conditions):
        for face in cond.faces:
            (key, value), = face.items()
            k = problem.inputs.index(key)
            measure = float(np.prod(np.delete(high - low, k)))  # the widths of its free inputs
            faces.append((c, k, float(value), measure))
    return faces


def _share(n: int, measures) -> list[int]:
    """Split ``n`` in proportion to ``measures`` (largest remainders), at least 1 each."""
    measures = np.asarray(measures, dtype=np.float64)
    exact = n * measures / measures.sum()
    counts = np.maximum(np.floor(exact).astype(int), 1)
    for i in np.argsort(-(exact - np.floor(exact)), kind="stable"):
        if counts.sum() >= n:
            break
        counts[i] += 1
    return [int(c) for c in counts]


def condition_points(problem: Problem, n: int, method: str = "lhs", seed: int = 0) -> list:
    """``[(condition, points (n_i, d), targets (n_i, 1)), ...]``, one entry per condition: ``n``
    points in all, spread over every face of every condition in proportion to the face's measure
    (the product of the widths of its free inputs; at least one point per face). On a face the
    fixed input equals the face's value exactly; the free inputs are drawn by ``method``.
    Raissi et al. 2019's 100 Burgers points give 50 at t = 0 and 25 on each of x = -1 and x = 1."""
    n = _count(n, "condition points")
    if not problem.conditions:
        return []
    faces = _faces(problem)
    counts = _share(n, [f[3] for f in faces])
    low, high = problem.low(), problem.high()
    seeds = np.random.SeedSequence(seed).generate_state(len(faces))  # one stream per face
    per_condition: dict[int, list] = {}
    for (c, k, value, _), count, face_seed in zip(faces, counts, seeds):
        free = [i for i in range(problem.dim) if i != k]
        points = np.empty((count, problem.dim), dtype=np.float64)
        points[:, free] = low[free] + (high[free] - low[free]) * _unit(count, len(free), method, int(face_seed))
        points[:, k] = value
        per_condition.setdefault(c, []).append(points)
    out = []
    for c, cond in enumerate(problem.conditions):
        points = np.concatenate(per_condition[c], axis=0)
        targets = np.asarray(cond.value(points), dtype=np.float64).reshape(len(points), 1)
        out.append((cond, points, targets))
    return out


def observations(problem: Problem, n: int, noise: float = 0.0, method: str = "lhs",
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points (n, d) inside the box and the reference solution there (n, 1), plus
    ``noise * std(values) * N(0, 1)`` (the noise model of Raissi et al. 2019's inverse problems)."""
    if problem.reference is None:
        raise KerasdlUsageError(f"problem {problem.name!r} has no reference solution to observe: "
                                f"give reference=f(points) for an inverse run")
    try:
        noise = float(noise)
    except (TypeError, ValueError):
        noise = float("nan")
    if not (np.isfinite(noise) and noise >= 0):
        raise KerasdlUsageError(f"the observation noise must be >= 0. Received: {noise!r}")
    points = collocation(problem, n, method, seed)
    values = np.asarray(problem.reference(points), dtype=np.float64).reshape(len(points), 1)
    if noise > 0:
        rng = np.random.default_rng(np.random.SeedSequence(seed).generate_state(2)[1])
        values = values + noise * np.std(values) * rng.standard_normal(values.shape)
    return points, values


def reference_grid(problem: Problem) -> tuple[np.ndarray, np.ndarray | None, tuple]:
    """The evaluation grid: ``(points (M, d), reference values (M,) or None, shape)`` — a meshgrid
    (``indexing="ij"``, inputs in order) of ``problem.grid[k]`` points per input (default 101),
    evenly spaced over the bounds, ends included; ``values.reshape(shape)`` is the solution field."""
    axes = [np.linspace(lo, hi, int(problem.grid.get(k, DEFAULT_GRID)))
            for k, lo, hi in zip(problem.inputs, problem.low(), problem.high())]
    mesh = np.meshgrid(*axes, indexing="ij")
    points = np.stack([m.reshape(-1) for m in mesh], axis=1)
    values = None
    if problem.reference is not None:
        values = np.asarray(problem.reference(points), dtype=np.float64).reshape(-1)
    return points, values, tuple(len(a) for a in axes)
