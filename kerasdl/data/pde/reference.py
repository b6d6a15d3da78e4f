"""NumPy reference solutions for the built-in PDE problems (:mod:`kerasdl.data.pde.problems`).

A physics-informed network's error is measured against these, so they must be far more accurate
than the network (relative L2 errors of 1e-4..1e-3 are typical for Burgers): the closed forms are
exact, and :func:`burgers_cole_hopf` is converged to about 1e-12 with its default quadrature.

All functions take NumPy arrays (broadcast together) and return float64 arrays of their shape.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = [
    "BURGERS_NU", "burgers_cole_hopf", "heat_exact", "poisson_exact", "poisson_source",
    "helmholtz_exact", "helmholtz_source",
]

BURGERS_NU = 0.01 / np.pi  # Raissi, Perdikaris & Karniadakis 2019
BURGERS_QUAD = 128  # Gauss-Hermite nodes: 128 and 256 agree to ~1e-15 at nu = 0.01/pi (tests)
MAX_QUAD = 300  # numpy's hermgauss overflows (NaN weights) beyond about 350 nodes


@functools.lru_cache(maxsize=8)
def _hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and log-weights (weights of far nodes underflow: log 0 = -inf, harmless)."""
    if not 2 <= n <= MAX_QUAD:
        raise ValueError(f"n_quad must be between 2 and {MAX_QUAD}. Received: {n}")
    z, w = np.polynomial.hermite.hermgauss(n)
    with np.errstate(divide="ignore"):
        return z, np.log(w)


def burgers_cole_hopf(x, t, nu: float = BURGERS_NU, n_quad: int = BURGERS_QUAD) -> np.ndarray:
    """The viscous Burgers solution ``u_t + u u_x = nu u_xx``, ``u(0, x) = -sin(pi x)``, ``u(t, ±1) = 0``.

    Cole–Hopf (Cole 1951; Hopf 1950; the closed form of Basdevant et al. 1986, "Spectral and finite
    difference solutions of the Burgers equation"): with ``f(y) = exp(-cos(pi y) / (2 pi nu))`` and
    the heat kernel ``g(eta) = exp(-eta^2 / (4 nu t))``,

        u(t, x) = -∫ sin(pi (x - eta)) f(x - eta) g(eta) d eta / ∫ f(x - eta) g(eta) d eta.

    Substituting ``eta = sqrt(4 nu t) z`` turns both integrals into Gauss–Hermite quadratures
    (weight ``exp(-z^2)``). ``f`` spans ``exp(±1/(2 pi nu))`` (``exp(±50)`` at Raissi's viscosity),
    so the sums are taken in log space, shifted by their largest exponent at each point. ``t == 0``
    returns ``-sin(pi x)`` exactly. Vectorised over the (broadcast) points. The quadrature is
    hardest at the latest time (``f(x - sqrt(4 nu t) z)`` varies fastest in ``z``): at Raissi's ``nu``
    and ``t = 1``, 80 nodes agree with 300 to 1e-13 (the default is 128); a much smaller ``nu`` or a
    later ``t`` needs more (numpy's nodes allow at most 300).
    """
    x, t = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64))
    shape = x.shape
    x, t = x.reshape(-1), t.reshape(-1)
    out = -np.sin(np.pi * x)
    later = t > 0
    if np.any(later):
        z, log_w = _hermite(int(n_quad))
        out[later] = _cole_hopf(x[later], t[later], float(nu), z, log_w)
    return out.reshape(shape)


def _cole_hopf(x, t, nu, z, log_w, chunk: int = 4096) -> np.ndarray:
    out = np.empty_like(x)
    for start in range(0, len(x), chunk):  # bounds memory: (chunk, n_quad) at a time
        xs, ts = x[start:start + chunk, None], t[start:start + chunk, None]
        y = xs - np.sqrt(4.0 * nu * ts) * z[None, :]
        expo = log_w[None, :] - np.cos(np.pi * y) / (2.0 * np.pi * nu)
        weight = np.exp(expo - expo.max(axis=1, keepdims=True))
        out[start:start + chunk] = -(weight * np.sin(np.pi * y)).sum(axis=1) / weight.sum(axis=1)
    return out


def heat_exact(x, t, alpha: float = 0.4) -> np.ndarray:
    """``u_t = alpha u_xx`` on [0, 1], ``u(0, x) = sin(pi x)``, ``u = 0`` at x = 0, 1."""
    return np.exp(-alpha * np.pi**2 * np.asarray(t, dtype=np.float64)) * np.sin(np.pi * np.asarray(x, np.float64))


def poisson_exact(x, y) -> np.ndarray:
    """``-(u_xx + u_yy) = 2 pi^2 sin(pi x) sin(pi y)`` on [0, 1]^2, ``u = 0`` on the boundary."""
    return np.sin(np.pi * np.asarray(x, dtype=np.float64)) * np.sin(np.pi * np.asarray(y, dtype=np.float64))


def poisson_source(x, y) -> np.ndarray:
    """The right-hand side ``2 pi^2 sin(pi x) sin(pi y)`` of :func:`poisson_exact`'s equation."""
    return 2.0 * np.pi**2 * poisson_exact(x, y)


def helmholtz_exact(x, y, a1: float = 1.0, a2: float = 4.0) -> np.ndarray:
    """``u = sin(a1 pi x) sin(a2 pi y)`` (Wang, Teng & Perdikaris 2021): zero on the boundary of [-1, 1]^2."""
    return np.sin(a1 * np.pi * np.asarray(x, dtype=np.float64)) * np.sin(a2 * np.pi * np.asarray(y, dtype=np.float64))


def helmholtz_source(x, y, k: float = 1.0, a1: float = 1.0, a2: float = 4.0) -> np.ndarray:
    """``q = u_xx + u_yy + k^2 u`` for :func:`helmholtz_exact`: ``(k^2 - (a1^2 + a2^2) pi^2) u``."""
    return (k**2 - (a1**2 + a2**2) * np.pi**2) * helmholtz_exact(x, y, a1, a2)
