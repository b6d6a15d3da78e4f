"""Sample-quality figures of a generative model, computed offline on feature vectors.

Every function here takes *features* -- the penultimate-layer activations of a pinned feature
network (:mod:`kerasdl.evaluation.feature_net`), or the raw vectors of a non-image dataset -- as
float arrays of shape ``(N, F)``. They are plain NumPy / SciPy (no Keras, no TensorFlow), so
the figures can be recomputed from saved features anywhere.

The measures and their papers:

* **FID** -- Heusel, Ramsauer, Unterthiner, Nessler & Hochreiter 2017, "GANs Trained by a Two
  Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS: the Frechet (2-Wasserstein)
  distance between Gaussians fitted to the two feature sets,
  ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` (:func:`frechet_distance`, :func:`fid`).
  The published FID uses Inception-v3 pool3 features on ImageNet-like images; with our local
  feature net the numbers are comparable only with each other (same net, same sha256, same n).
* **KID** -- Binkowski, Sutherland, Arbel & Gretton 2018, "Demystifying MMD GANs", ICLR: the
  unbiased estimate of the squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets (:func:`mmd2_unbiased`, :func:`kid`).
  Unlike FID it is unbiased, so it does not depend on the sample size in expectation.
* **Precision and recall** -- Kynkaanniemi, Karras, Laine, Lehtinen & Aila 2019, "Improved
  Precision and Recall Metric for Assessing Generative Models", NeurIPS: each set's manifold is
  the union of balls around its points, of radius the distance to the point's k-th nearest
  neighbour in its own set; precision = fraction of generated points inside the real manifold
  (fidelity), recall = fraction of real points inside the generated manifold (coverage)
  (:func:`precision_recall`).

:func:`quality_report` puts the three side by side with two reference rows, so a figure reads
against what is attainable: the *floor* (held-out real train images against the real test set:
what a perfect generator would score at this n) and the *ceiling* (noise against the real test
set: what a useless one scores). :func:`label_stats` summarises the classes the feature net
predicts for generated samples (mode collapse shows as low entropy / few classes covered).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "frechet_distance", "gaussian_stats", "fid", "polynomial_kernel", "mmd2_unbiased", "kid",
    "precision_recall", "label_stats", "quality_report",
]

# Added to both covariances when (S1 S2)^(1/2) is not finite (a singular product), as pytorch-fid does.
SQRTM_EPS = 1e-6
# Relative size of the imaginary part of Tr((S1 S2)^(1/2)) above which the square root is refused.
IMAG_TOL = 1e-3
# A square root whose square is further than this (relative) from S1 S2 is recomputed with eps * I.
SQRTM_RESIDUAL = 1e-6
# Distances are computed in row chunks of at most this many float64 values (64 MiB).
CHUNK_VALUES = 2**23


def _features(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        x = x.reshape(len(x), -1)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return x


def _same_dim(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names} have different feature sizes: {a.shape[1]} and {b.shape[1]}")


# --------------------------------------------------------------------------- FID


def _sqrtm(a: np.ndarray) -> np.ndarray:
    import warnings

    from scipy import linalg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return linalg.sqrtm(a)


def _sqrtm_checked(product: np.ndarray) -> np.ndarray | None:
    """``sqrtm(product)``, or None when it is not finite or does not square back to ``product``
    (relative Frobenius residual above :data:`SQRTM_RESIDUAL`). SciPy's "matrix is singular"
    warning is silenced: the residual is the check (dead ReLU units make the feature
    covariances singular without harming the root)."""
    root = _sqrtm(product)
    if not np.all(np.isfinite(root)):
        return None
    scale = max(np.linalg.norm(product), np.finfo(np.float64).tiny)
    return root if np.linalg.norm(root @ root - product) <= SQRTM_RESIDUAL * scale else None


def frechet_distance(mu1, sigma1, mu2, sigma2, *, eps: float = SQRTM_EPS) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017).

    ``d^2 = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2))`` in float64, with
    :func:`scipy.linalg.sqrtm` for the matrix square root. ``S1 S2`` is not symmetric, but it is
    similar to the PSD matrix ``S1^(1/2) S2 S1^(1/2)``, so its principal square root has real,
    non-negative eigenvalues; round-off leaves tiny imaginary parts, which are dropped (an
    imaginary trace above ``1e-3`` of the real one is an error). When the product is singular
    and the square root comes back non-finite -- or, stricter than pytorch-fid, does not square
    back to ``S1 S2`` within a relative ``1e-6`` -- ``eps * I`` is added to both covariances and
    the root recomputed: the stabilisation of pytorch-fid (Seitzer 2020). A negative result (only
    round-off can make one) is returned as 0.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != mu2.shape or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"means and covariances must match: mu {mu1.shape} and {mu2.shape}, sigma {s1.shape} and {s2.shape}"
        )
    diff = mu1 - mu2
    covmean = _sqrtm_checked(s1 @ s2)
    if covmean is None:
        offset = np.eye(d) * eps
        covmean = _sqrtm((s1 + offset) @ (s2 + offset))
    tr_covmean = np.trace(covmean)
    if np.iscomplexobj(tr_covmean) or np.iscomplexobj(covmean):
        if abs(np.imag(tr_covmean)) > IMAG_TOL * max(1.0, abs(np.real(tr_covmean))):
            raise ValueError(f"matrix square root has a large imaginary part: trace {tr_covmean}")
        tr_covmean = np.real(tr_covmean)
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(value, 0.0)


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """``(mean (F,), covariance (F, F))`` of ``features`` (N, F) in float64 (``np.cov``, N - 1)."""
    x = _features(features, "features")
    if len(x) < 2:
        raise ValueError(f"a covariance needs at least 2 samples; received {len(x)}")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def fid(feats_a, feats_b) -> float:
    """FID of two feature sets: :func:`frechet_distance` of their :func:`gaussian_stats`."""
    a, b = _features(feats_a, "feats_a"), _features(feats_b, "feats_b")
    _same_dim(a, b, "feats_a and feats_b")
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))


# --------------------------------------------------------------------------- KID


def polynomial_kernel(x: np.ndarray, y: np.ndarray, *, degree: int = 3, coef0: float = 1.0) -> np.ndarray:
    """Gram matrix ``(x . y / d + coef0) ** degree`` of rows of x (m, d) and y (n, d): KID's kernel."""
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(a, b, kernel=polynomial_kernel) -> float:
    """Unbiased estimate of MMD^2 between the samples ``a`` (m, d) and ``b`` (n, d).

    ``sum_{i!=j} k(a_i, a_j) / (m (m-1)) + sum_{i!=j} k(b_i, b_j) / (n (n-1)) - 2 mean k(a_i, b_j)``
    (Gretton et al. 2012; the KID estimator of Binkowski et al. 2018 with the default cubic
    polynomial kernel). ``kernel(x, y)`` returns a Gram matrix. It can be slightly negative when
    the two distributions are equal.
    """
    a, b = _features(a, "a"), _features(b, "b")
    _same_dim(a, b, "a and b")
    m, n = len(a), len(b)
    if m < 2 or n < 2:
        raise ValueError(f"unbiased MMD needs at least 2 samples per set; received {m} and {n}")
    k_aa, k_bb, k_ab = kernel(a, a), kernel(b, b), kernel(a, b)
    term_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    term_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return float(term_a + term_b - 2.0 * k_ab.mean())


def kid(feats_a, feats_b, *, subsets: int = 10, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): ``(mean, std)`` of :func:`mmd2_unbiased`
    over ``subsets`` random subsets.

    Each subset draws ``subset_size`` rows of each set without replacement
    (``np.random.default_rng(seed)``); ``subset_size`` is capped at the smaller set. ``std`` is
    the population standard deviation over the subsets (0 with one subset), as torch-fidelity
    reports it: the spread of the estimate, not a standard error.
    """
    a, b = _features(feats_a, "feats_a"), _features(feats_b, "feats_b")
    _same_dim(a, b, "feats_a and feats_b")
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"kid needs subsets >= 1 and subset_size >= 2; received {subsets}, {subset_size}")
    size = min(int(subset_size), len(a), len(b))
    if size < 2:
        raise ValueError(f"kid needs at least 2 samples per set; received {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(int(subsets)):
        ia = rng.choice(len(a), size, replace=False)
        ib = rng.choice(len(b), size, replace=False)
        values.append(mmd2_unbiased(a[ia], b[ib]))
    return float(np.mean(values)), float(np.std(values))


# --------------------------------------------------------------------------- precision / recall


def _chunks(n_rows: int, n_cols: int):
    step = max(1, CHUNK_VALUES // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


def _sq_dists(x: np.ndarray, x_sq: np.ndarray, y: np.ndarray, y_sq: np.ndarray) -> np.ndarray:
    return np.maximum(x_sq[:, None] + y_sq[None, :] - 2.0 * (x @ y.T), 0.0)


def _kth_radii_sq(x: np.ndarray, x_sq: np.ndarray, k: int) -> np.ndarray:
    """Squared distance of each row to its k-th nearest other row (itself excluded)."""
    out = np.empty(len(x))
    for start, stop in _chunks(len(x), len(x)):
        d = _sq_dists(x[start:stop], x_sq[start:stop], x, x_sq)
        d[np.arange(stop - start), np.arange(start, stop)] = np.inf
        out[start:stop] = np.partition(d, k - 1, axis=1)[:, k - 1]
    return out


def _inside(query: np.ndarray, q_sq: np.ndarray, ref: np.ndarray, r_sq: np.ndarray, radii_sq: np.ndarray):
    """For each query row: is it within the ball of some reference row (distance <= its radius)?

    The Gram-trick distances carry a round-off of about 1e-16 (|q|^2 + |r|^2); a tolerance of
    1e-12 of that keeps a point that coincides with a reference point inside its ball.
    """
    out = np.empty(len(query), dtype=bool)
    for start, stop in _chunks(len(query), len(ref)):
        q, qs = query[start:stop], q_sq[start:stop]
        d = _sq_dists(q, qs, ref, r_sq)
        tol = 1e-12 * (qs[:, None] + r_sq[None, :])
        out[start:stop] = np.any(d <= radii_sq[None, :] + tol, axis=1)
    return out


def precision_recall(real, fake, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of ``fake`` against ``real``.

    Each set's manifold is the union of the balls around its points whose radius is the distance
    to the point's ``k``-th nearest neighbour in the same set (the point itself excluded; the
    paper uses k = 3). precision = fraction of ``fake`` inside the real manifold; recall =
    fraction of ``real`` inside the fake manifold. Euclidean distances in float64, computed in
    row chunks (at most 64 MiB at a time), so 5,000 x 5,000 sets are fine in memory.
    """
    r, f = _features(real, "real"), _features(fake, "fake")
    _same_dim(r, f, "real and fake")
    k = int(k)
    if k < 1 or k >= min(len(r), len(f)):
        raise ValueError(f"k must be in [1, {min(len(r), len(f)) - 1}] for sets of {len(r)} and {len(f)}; received {k}")
    r_sq, f_sq = np.einsum("ij,ij->i", r, r), np.einsum("ij,ij->i", f, f)
    precision = _inside(f, f_sq, r, r_sq, _kth_radii_sq(r, r_sq, k)).mean()
    recall = _inside(r, r_sq, f, f_sq, _kth_radii_sq(f, f_sq, k)).mean()
    return float(precision), float(recall)


# --------------------------------------------------------------------------- labels


def label_stats(pred_labels, num_classes: int, *, min_fraction: float | None = None) -> dict:
    """The class histogram of predicted labels (e.g. the feature net's labels of generated images).

    Returns ``{"counts", "fractions", "entropy", "max_entropy", "classes_covered", "threshold", "n"}``:
    entropy in nats of the label distribution (``max_entropy = log K``: uniform over the classes);
    a class is *covered* when it holds at least ``min_fraction`` of the samples -- by default a
    tenth of its uniform share, ``1 / (10 K)`` (1 % for 10 classes), so that a handful of stray
    predictions does not count as generating a class.
    """
    k = int(num_classes)
    if k < 1:
        raise ValueError(f"num_classes must be >= 1; received {num_classes}")
    labels = np.asarray(pred_labels).reshape(-1)
    if labels.size == 0:
        raise ValueError("label_stats needs at least one label")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError("labels must be integers")
        labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"labels must be in [0, {k - 1}]; received {labels.min()}..{labels.max()}")
    threshold = 1.0 / (10 * k) if min_fraction is None else float(min_fraction)
    counts = np.bincount(labels, minlength=k)
    n = int(labels.size)
    fractions = counts / n
    p = fractions[fractions > 0]
    return {
        "counts": [int(c) for c in counts],
        "fractions": [float(v) for v in fractions],
        "entropy": float(-(p * np.log(p)).sum()),
        "max_entropy": float(np.log(k)),
        "classes_covered": int(np.sum((fractions >= threshold) & (counts > 0))),
        "threshold": threshold,
        "n": n,
    }


# --------------------------------------------------------------------------- report


def _row(fake: np.ndarray, real: np.ndarray, *, seed: int, kid_subsets: int, kid_subset_size: int, k: int) -> dict:
    kid_mean, kid_std = kid(fake, real, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    precision, recall = precision_recall(real, fake, k=k)
    return {"fid": fid(fake, real), "kid": kid_mean, "kid_std": kid_std, "precision": precision,
            "recall": recall, "n_generated": int(len(fake)), "n_real": int(len(real))}


def _subsample(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= n else x[np.sort(rng.choice(len(x), n, replace=False))]


def quality_report(gen, real_test, real_train=None, noise=None, *, seed: int = 0, kid_subsets: int = 10,
                   kid_subset_size: int = 1000, k: int = 3) -> dict:
    """FID, KID, precision and recall of generated features against real test features.

    Returns ``{"fid", "kid", "kid_std", "precision", "recall", "n_generated", "n_real"}`` and,
    when given, two reference rows with the same keys:

    * ``"floor"``   -- ``real_train`` features in place of the generated ones: what a generator
      that reproduces the data distribution scores at this sample size (FID is biased upwards at
      small n, so 0 is not the right reference);
    * ``"ceiling"`` -- ``noise`` (features of e.g. uniform-noise images) in its place: what a
      useless generator scores.

    The reference sets are subsampled (without replacement, ``np.random.default_rng(seed)``) to
    ``len(gen)`` so the three rows use the same n; a smaller reference set is used whole, and each
    row states its own ``n_generated`` / ``n_real``. KID uses the same ``seed`` in every row.
    """
    g = _features(gen, "gen")
    real = _features(real_test, "real_test")
    _same_dim(g, real, "gen and real_test")
    options = dict(seed=seed, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, k=k)
    report = _row(g, real, **options)
    rng = np.random.default_rng(seed)
    for key, ref in (("floor", real_train), ("ceiling", noise)):
        if ref is None:
            continue
        ref = _features(ref, "real_train" if key == "floor" else "noise")
        _same_dim(ref, real, f"{'real_train' if key == 'floor' else 'noise'} and real_test")
        report[key] = _row(_subsample(ref, len(g), rng), real, **options)
    return report
