"""NumPy figures of generative and representation models: the PCA comparison of a linear
autoencoder and the importance-weighted log-likelihood bound of a VAE.

* Linear AE = PCA (Baldi & Hornik 1989): a linear autoencoder with k code units trained with
  squared error spans the top-k principal subspace of the centred data. :func:`principal_angles`
  measures how close the decoder's column space is to it (Bjorck & Golub 1973), and
  :func:`pca_reconstruction_mse` is the optimum any rank-k linear map can reach (Eckart & Young
  1936).
* IWAE (Burda, Grosse & Salakhutdinov 2016, "Importance Weighted Autoencoders", ICLR):
  ``log p(x) >= L_K = log (1/K) sum_k w_k``, ``w_k = p(x, z_k) / q(z_k | x)``, ``z_k ~ q(z|x)``;
  ``L_1`` is the ELBO, ``L_K`` grows with K and tends to ``log p(x)``. :func:`iwae_bound` takes
  the log-weights and reduces them with a float64 log-sum-exp.

Everything here is NumPy / SciPy (no Keras, no TensorFlow): the tasks compute the weights with the model.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "principal_angles", "pca_fit", "pca_reconstruct", "pca_reconstruction_mse",
    "logmeanexp", "iwae_bound", "gaussian_log_likelihood", "bernoulli_log_likelihood",
    "standard_normal_log_density", "diagonal_normal_log_density",
]

LOG_2PI = float(np.log(2.0 * np.pi))


# --------------------------------------------------------------------------- PCA and subspaces

def principal_angles(a: np.ndarray, b: np.ndarray, *, degrees: bool = True) -> np.ndarray:
    """Principal angles between the column spaces of ``a`` (F, k) and ``b`` (F, m), ascending.

    Bjorck & Golub 1973 (cosines: the singular values of ``Q_a^T Q_b`` for orthonormal bases),
    with Knyazev & Argentati 2002's sine formula for the small angles, where ``arccos`` loses
    accuracy: :func:`scipy.linalg.subspace_angles`.
    """
    from scipy.linalg import subspace_angles

    angles = np.sort(subspace_angles(np.asarray(a, np.float64), np.asarray(b, np.float64)))
    return np.degrees(angles) if degrees else angles


def pca_fit(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean (F,), components (F, k), explained variances (k,))`` of ``x`` (N, ...) flattened.

    The components are the top-k eigenvectors of the sample covariance (``eigh`` of the F x F
    matrix: on MNIST-sized data about 40x faster than an SVD of the N x F data matrix, and as
    accurate for the leading components, whose eigenvalues are well above round-off).
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if not 1 <= k <= min(x.shape):
        raise ValueError(f"k must be in [1, {min(x.shape)}]; received k={k}")
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred / max(len(x) - 1, 1)
    values, vectors = np.linalg.eigh(cov)  # ascending
    order = np.argsort(values)[::-1][:k]
    return mean, vectors[:, order], values[order]


def pca_reconstruct(x: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """The orthogonal projection of ``x`` (N, ...) onto ``mean + span(components)``, shaped like x."""
    shape = np.shape(x)
    flat = np.asarray(x, dtype=np.float64).reshape(shape[0], -1) - mean
    return (flat @ components @ components.T + mean).reshape(shape)


def pca_reconstruction_mse(x_train: np.ndarray, x_test: np.ndarray, k: int) -> float:
    """Mean squared error per value of the optimal rank-k PCA reconstruction (fit on train) of test."""
    mean, comps, _ = pca_fit(x_train, k)
    x_test = np.asarray(x_test, dtype=np.float64)
    return float(np.mean((pca_reconstruct(x_test, mean, comps) - x_test) ** 2))


# --------------------------------------------------------------------------- likelihoods and IWAE

def logmeanexp(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log(mean(exp(a)))`` along ``axis`` in float64 without overflow."""
    a = np.asarray(a, dtype=np.float64)
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    out = np.log(np.mean(np.exp(a - top), axis=axis)) + np.squeeze(top, axis=axis)
    return out


def iwae_bound(log_weights: np.ndarray) -> np.ndarray:
    """Per example ``L_K = logmeanexp_k log w_k`` from log-weights (N, K) (Burda et al. 2016)."""
    log_weights = np.asarray(log_weights, dtype=np.float64)
    if log_weights.ndim != 2:
        raise ValueError(f"log_weights must be (N, K); received shape {log_weights.shape}")
    return logmeanexp(log_weights, axis=1)


def _sum_event(v: np.ndarray) -> np.ndarray:
    return v.reshape(v.shape[0], -1).sum(axis=1) if v.ndim > 1 else v


def bernoulli_log_likelihood(x: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """``sum log Bernoulli(x | sigmoid(logits))`` per example (x in [0, 1]; grey values give the
    continuous cross-entropy, as usual for non-binarised MNIST)."""
    x, logits = np.asarray(x, np.float64), np.asarray(logits, np.float64)
    return -_sum_event(np.maximum(logits, 0) - logits * x + np.log1p(np.exp(-np.abs(logits))))


def gaussian_log_likelihood(x: np.ndarray, mean: np.ndarray, sigma: float) -> np.ndarray:
    """``sum log N(x | mean, sigma^2)`` per example (a fixed observation noise sigma)."""
    x, mean = np.asarray(x, np.float64), np.asarray(mean, np.float64)
    return -0.5 * _sum_event((x - mean) ** 2 / sigma**2 + LOG_2PI + 2.0 * np.log(sigma))


def standard_normal_log_density(z: np.ndarray) -> np.ndarray:
    """``log N(z | 0, I)`` per row of ``z`` (N, k)."""
    z = np.asarray(z, np.float64)
    return -0.5 * np.sum(z**2 + LOG_2PI, axis=-1)


def diagonal_normal_log_density(z: np.ndarray, mean: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    """``log N(z | mean, diag(exp(log_var)))`` per row."""
    z, mean, log_var = (np.asarray(v, np.float64) for v in (z, mean, log_var))
    return -0.5 * np.sum((z - mean) ** 2 * np.exp(-log_var) + log_var + LOG_2PI, axis=-1)
