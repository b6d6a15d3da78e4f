"""Tests for kerasdl.data.pde: the reference solutions, the built-in problems, sampling, load_problem.

Pure NumPy except where a problem's residual or transform (written with ``keras.ops``) is
evaluated on NumPy arrays converted to float64 tensors.
"""

from __future__ import annotations

import textwrap
import warnings

import numpy as np
import pytest

from kerasdl.data.pde import (
    PROBLEMS,
    Problem,
    collocation,
    condition_points,
    list_problems,
    load_problem,
    observations,
    reference_grid,
)
from kerasdl.data.pde.reference import BURGERS_NU, BURGERS_QUAD, burgers_cole_hopf
from kerasdl.errors import KerasdlUsageError, UnknownNameError

_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 names it trapz

NEAR_SHOCK = np.array([-1e-2, -1e-3, -1e-4, 0.0, 1e-4, 1e-3, 1e-2, 5e-2])


def _tensor(a):
    from keras import ops

    return ops.convert_to_tensor(np.asarray(a, dtype=np.float64).reshape(-1, 1), dtype="float64")


def _numpy(t):
    from keras import ops

    return np.asarray(ops.convert_to_numpy(t), dtype=np.float64).reshape(-1)


def _fd_terms(problem, points, h):
    """Central finite differences of the reference at ``points``: {"u", "u_x", "u_xx", ...}."""
    ref = problem.reference
    d = {"u": ref(points)}
    for i, name in enumerate(problem.inputs):
        step = np.zeros(problem.dim)
        step[i] = h[i]
        up, down = ref(points + step), ref(points - step)
        d[f"u_{name}"] = (up - down) / (2 * h[i])
        d[f"u_{name}{name}"] = (up - 2 * d["u"] + down) / h[i] ** 2
    return d


def _residual(problem, points, h):
    """The problem's own residual function on finite-difference derivatives of its reference,
    and the size of the largest term (to judge the residual against)."""
    d = _fd_terms(problem, points, h)
    scale = max(np.abs(d[k]).max() for k in ("u", *problem.derivatives))
    tensors = {k: _tensor(v) for k, v in d.items()}
    tensors.update({name: _tensor(points[:, i]) for i, name in enumerate(problem.inputs)})
    return _numpy(problem.residual(tensors, dict(problem.params))), scale


# --- Cole-Hopf ---------------------------------------------------------------------------------

def test_cole_hopf_initial_condition_and_boundary():
    x = np.linspace(-1, 1, 401)
    np.testing.assert_array_equal(burgers_cole_hopf(x, 0.0), -np.sin(np.pi * x))
    np.testing.assert_allclose(burgers_cole_hopf(x, 1e-6), -np.sin(np.pi * x), atol=1e-5)
    t = np.linspace(0, 1, 51)
    assert np.abs(burgers_cole_hopf(-1.0, t)).max() < 1e-12
    assert np.abs(burgers_cole_hopf(1.0, t)).max() < 1e-12
    # odd in x, zero at the shock, broadcasts
    X, T = np.meshgrid(x, t[1:], indexing="ij")
    u = burgers_cole_hopf(X, T)
    assert u.shape == X.shape
    np.testing.assert_allclose(u, -burgers_cole_hopf(-X, T), atol=1e-12)


@pytest.mark.parametrize("t", [0.25, 0.5, 1.0])
def test_cole_hopf_converged_in_n_quad(t):
    x = np.concatenate([np.linspace(-1, 1, 401), NEAR_SHOCK])
    n = BURGERS_QUAD
    diff = np.abs(burgers_cole_hopf(x, t, n_quad=n) - burgers_cole_hopf(x, t, n_quad=2 * n)).max()
    assert diff < 1e-8, (n, diff)
    coarse = np.abs(burgers_cole_hopf(x, t, n_quad=32) - burgers_cole_hopf(x, t, n_quad=2 * n)).max()
    assert t < 0.5 or coarse > 1e-6  # the comparison can tell: too few nodes are visibly off


def test_cole_hopf_matches_direct_quadrature():
    """An independent check: the two integrals by the trapezoid rule on a fine eta grid."""
    for x, t in [(0.3, 1.0), (0.002, 1.0), (-0.5, 0.3), (0.02, 0.5)]:
        s = np.sqrt(4 * BURGERS_NU * t)
        eta = np.linspace(-12 * s, 12 * s, 200001)
        y = x - eta
        expo = -np.cos(np.pi * y) / (2 * np.pi * BURGERS_NU) - eta**2 / (4 * BURGERS_NU * t)
        w = np.exp(expo - expo.max())
        direct = -_trapezoid(w * np.sin(np.pi * y), eta) / _trapezoid(w, eta)
        assert abs(burgers_cole_hopf(x, t) - direct) < 1e-10


def test_cole_hopf_satisfies_burgers_by_finite_differences():
    problem = load_problem("burgers")
    # away from the shock (|x| >= 0.2) over the whole time span
    x = np.concatenate([np.linspace(-0.95, -0.2, 60), np.linspace(0.2, 0.95, 60)])
    X, T = np.meshgrid(x, np.linspace(0.05, 0.95, 10), indexing="ij")
    points = np.stack([X.ravel(), T.ravel()], axis=1)
    res, scale = _residual(problem, points, h=(1e-4, 1e-4))
    assert np.abs(res).max() < 1e-6 * scale, (np.abs(res).max(), scale)
    # the discretisation error is all there is: it falls as h^2 (100x for h/10)
    coarse, _ = _residual(problem, points, h=(1e-3, 1e-3))
    assert np.abs(coarse).max() > 50 * np.abs(res).max()
    # everywhere at early times, before the shock steepens (it forms near t = 1/pi)
    X, T = np.meshgrid(np.linspace(-0.98, 0.98, 99), np.linspace(0.02, 0.2, 10), indexing="ij")
    points = np.stack([X.ravel(), T.ravel()], axis=1)
    res, scale = _residual(problem, points, h=(1e-4, 1e-4))
    assert np.abs(res).max() < 1e-6 * scale, (np.abs(res).max(), scale)


def test_cole_hopf_shock_is_steep():
    # Raissi et al. 2019's solution: |u_x| at x = 0 exceeds 100 for t >= 0.5 (a near-discontinuity)
    h = 1e-5
    slope = (burgers_cole_hopf(h, 0.75) - burgers_cole_hopf(-h, 0.75)) / (2 * h)
    assert slope < -100
    with pytest.raises(ValueError, match="n_quad"):
        burgers_cole_hopf(0.1, 0.5, n_quad=1000)


# --- the built-in problems ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["heat", "poisson", "helmholtz"])
def test_closed_forms_satisfy_their_pde(name):
    problem = load_problem(name)
    points = collocation(problem, 400, seed=1)
    h = [1e-4 * (hi - lo) for lo, hi in problem.bounds.values()]
    res, scale = _residual(problem, points, h)
    assert np.abs(res).max() < 5e-6 * scale, (np.abs(res).max(), scale)
    if problem.params:  # the check can tell: a 10% wrong coefficient leaves a visible residual
        wrong = Problem(**{**vars(problem), "params": {k: 1.1 * v for k, v in problem.params.items()}})
        res, _ = _residual(wrong, points, h)
        assert np.abs(res).max() > 5e-4 * scale


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_problem_is_complete_and_conditions_hold(name):
    problem = PROBLEMS[name]()
    assert isinstance(problem, Problem) and problem.name == name
    assert problem.check() is problem
    assert problem.reference is not None and problem.transform is not None
    assert problem.description and problem.paper and len(problem.slices) == 3
    assert set(problem.unknowns) <= set(problem.params)
    for cond, points, targets in condition_points(problem, 200, seed=3):
        np.testing.assert_allclose(targets[:, 0], problem.reference(points), atol=1e-10, err_msg=cond.name)
        # the hard-constraint transform meets the condition whatever the network outputs
        inputs = {k: _tensor(points[:, i]) for i, k in enumerate(problem.inputs)}
        network = _tensor(np.random.default_rng(0).normal(size=len(points)))
        np.testing.assert_allclose(_numpy(problem.transform(inputs, network)), targets[:, 0], atol=1e-10)


def test_burgers_is_raissi_2019():
    problem = load_problem("burgers")
    assert problem.inputs == ("x", "t") and problem.bounds == {"x": (-1.0, 1.0), "t": (0.0, 1.0)}
    assert problem.params["nu"] == pytest.approx(0.01 / np.pi)
    assert problem.unknowns["nu"].guess == pytest.approx(np.exp(-6.0)) and problem.unknowns["nu"].positive
    assert problem.grid == {"x": 256, "t": 101}
    points, values, shape = reference_grid(problem)
    assert shape == (256, 101) and points.shape == (256 * 101, 2) and values.shape == (256 * 101,)
    field = values.reshape(shape)
    np.testing.assert_allclose(field[:, 0], -np.sin(np.pi * np.linspace(-1, 1, 256)), atol=1e-15)
    assert np.isfinite(field).all() and np.abs(field).max() <= 1.0 + 1e-12


# --- sampling ----------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["lhs", "sobol", "uniform"])
def test_collocation_inside_box_and_seeded(method):
    problem = load_problem("burgers")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Sobol with n not a power of two must not warn
        a = collocation(problem, 1000, method, seed=5)
    assert a.shape == (1000, 2) and a.dtype == np.float64
    assert (a >= problem.low()).all() and (a <= problem.high()).all()
    np.testing.assert_array_equal(a, collocation(problem, 1000, method, seed=5))
    assert not np.array_equal(a, collocation(problem, 1000, method, seed=6))
    assert a[:, 0].min() < -0.9 and a[:, 0].max() > 0.9  # spread over the box
    if method == "lhs":  # one point per stratum of each input
        for k in range(2):
            strata = np.floor((a[:, k] - problem.low()[k]) / (problem.high()[k] - problem.low()[k]) * 1000)
            assert len(np.unique(strata)) == 1000


def test_collocation_errors():
    problem = load_problem("heat")
    with pytest.raises(UnknownNameError, match="'sobol'"):
        collocation(problem, 10, "sobl")
    for bad in (0, 2.5, "ten", None):
        with pytest.raises(KerasdlUsageError, match="positive integer"):
            collocation(problem, bad)


def test_condition_points_split_by_face_measure():
    problem = load_problem("burgers")
    parts = condition_points(problem, 100, seed=0)
    (initial, p0, y0), (boundary, p1, y1) = parts
    assert (initial.name, boundary.name) == ("initial", "boundary")
    assert p0.shape == (50, 2) and y0.shape == (50, 1) and p1.shape == (50, 2) and y1.shape == (50, 1)
    assert (p0[:, 1] == 0.0).all() and (p0[:, 0] >= -1).all() and (p0[:, 0] <= 1).all()
    assert (p1[:, 0] == -1.0).sum() == 25 and (p1[:, 0] == 1.0).sum() == 25
    assert (p1[:, 1] >= 0).all() and (p1[:, 1] <= 1).all()
    np.testing.assert_allclose(y0[:, 0], -np.sin(np.pi * p0[:, 0]))
    np.testing.assert_array_equal(y1, 0.0)
    again = condition_points(problem, 100, seed=0)
    for (_, a, b), (_, c, e) in zip(parts, again):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, e)
    # every face gets a point, the total is n
    square = condition_points(load_problem("poisson"), 10, method="sobol", seed=1)
    (_, points, _), = square
    assert len(points) == 10
    for k, value in [(0, 0.0), (0, 1.0), (1, 0.0), (1, 1.0)]:
        assert (points[:, k] == value).sum() >= 2  # 10 over four equal faces: 3/3/2/2
    assert len(condition_points(load_problem("poisson"), 2)[0][1]) == 4  # at least one per face


def test_observations_and_noise():
    problem = load_problem("heat")
    points, values = observations(problem, 300, seed=2)
    assert points.shape == (300, 2) and values.shape == (300, 1)
    np.testing.assert_allclose(values[:, 0], problem.reference(points))
    _, noisy = observations(problem, 300, noise=0.1, seed=2)
    ratio = np.std(noisy - values) / np.std(values)
    assert 0.08 < ratio < 0.12
    np.testing.assert_array_equal(noisy, observations(problem, 300, noise=0.1, seed=2)[1])
    bare = Problem(name="bare", inputs=("x",), bounds={"x": (0.0, 1.0)}, residual=lambda d, p: d["u"])
    with pytest.raises(KerasdlUsageError, match="no reference"):
        observations(bare, 10)
    points, values, shape = reference_grid(bare)
    assert values is None and shape == (101,) and points[-1, 0] == 1.0


def test_reference_grid_order_is_ij():
    problem = load_problem("poisson")
    points, values, shape = reference_grid(problem)
    assert shape == (101, 101)
    grid_x = points[:, 0].reshape(shape)
    assert (grid_x[:, 0] == np.linspace(0, 1, 101)).all() and (grid_x[0] == 0).all()
    np.testing.assert_allclose(values.reshape(shape)[50, 50], 1.0)


# --- load_problem ------------------------------------------------------------------------------

USER_FILE = '''
import numpy as np
from kerasdl.data.pde import Condition, Problem

def residual(d, p):
    return d["u_t"] - p["alpha"] * d["u_xx"]

HEAT = Problem(
    name="my_heat", inputs=("x", "t"), bounds={"x": (0.0, 1.0), "t": (0.0, 1.0)},
    residual=residual, derivatives=("u_t", "u_xx"), params={"alpha": 0.4},
    conditions=(Condition("initial", faces=({"t": 0.0},), value=lambda p: np.sin(np.pi * p[:, 0])),),
)

def make():
    return HEAT

NOT_A_PROBLEM = 3
'''


def test_load_builtin_problems():
    assert list_problems() == ["burgers", "heat", "helmholtz", "poisson"]
    for name in list_problems():
        assert load_problem(name).name == name
    with pytest.raises(UnknownNameError, match="did you mean 'burgers'"):
        load_problem("burger")


def test_load_user_problem_file(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(textwrap.dedent(USER_FILE))
    assert load_problem(f"{path}:HEAT").name == "my_heat"
    assert load_problem(f"{path}:make").name == "my_heat"
    assert load_problem(str(path)).name == "my_heat"  # the file's only Problem
    with pytest.raises(KerasdlUsageError, match=r"has no 'HAET'.*HEAT"):
        load_problem(f"{path}:HAET")
    with pytest.raises(KerasdlUsageError, match="int, not a Problem"):
        load_problem(f"{path}:NOT_A_PROBLEM")


@pytest.mark.parametrize("body, message", [
    ("raise RuntimeError('boom here')\n", "failed: boom here"),
    (USER_FILE.replace("residual=residual", "residual=None"), "has no residual"),
    (USER_FILE.replace('"x": (0.0, 1.0)', '"x": (1.0, 1.0)'), "zero width"),
    ("X = 1\n", "exactly one Problem"),
])
def test_load_user_problem_errors(tmp_path, body, message):
    path = tmp_path / "bad.py"
    path.write_text(body)
    with pytest.raises(KerasdlUsageError, match=message) as info:
        load_problem(str(path))
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_load_missing_file(tmp_path):
    with pytest.raises(KerasdlUsageError, match="not found"):
        load_problem(str(tmp_path / "nope.py:HEAT"))
