"""Post-hoc calibration of a classifier's logits, and the metrics that say how well it worked.

Calibration maps (fitted on held-out validation logits ``z``, never on the training set):

* temperature scaling   p = softmax(z / T),        1 parameter, T > 0 (Guo et al. 2017,
  "On Calibration of Modern Neural Networks", section 4.2). T never changes the argmax.
* vector scaling        p = softmax(w * z + b),    2K parameters (Guo et al. 2017).
* matrix scaling        p = softmax(z @ W + b),    K^2 + K parameters (Guo et al. 2017).

Each is fitted by minimising the mean NLL of the validation labels. Vector and matrix scaling add
a small L2 penalty that pulls the map toward the identity (w = 1 or W = I, b = 0):

    loss = mean_i -log softmax(a_i)[y_i] + l2 * (||W - I||_F^2 + ||b||^2)

In the spirit of ODIR (Kull et al. 2019, "Beyond temperature scaling: Obtaining well-calibrated
multiclass probabilities with Dirichlet calibration"), which penalises the off-diagonal entries
and the intercepts; we also shrink the diagonal toward 1, so that with little validation data the
map stays close to "do nothing". The penalty also makes the fit unique: softmax is unchanged when
the same constant is added to every b_k (or the same vector to every column of W), and the L2
term picks the smallest such solution (sum_k b_k = 0 at the optimum).

Metrics (probabilities ``probs`` (N, K), integer ``labels`` (N,), fractions rather than %):

* ECE  = sum_m |B_m|/n |acc(B_m) - conf(B_m)|, equal-width bins on the top-label confidence
  (Guo et al. 2017); delegated to :func:`kerasdl.evaluation.metrics.expected_calibration_error`.
* MCE  = max over non-empty bins of |acc(B_m) - conf(B_m)| (Naeini et al. 2015).
* adaptive ECE: the same sum over equal-mass bins -- examples sorted by confidence and cut into
  ``n_bins`` groups of (nearly) equal size (Nixon et al. 2019, "Measuring Calibration in Deep
  Learning"). Ties in confidence are kept in input order (stable sort), so a tie may straddle two
  groups; the result is still deterministic.
* classwise ECE = (1/K) sum_k sum_m |B_mk|/n |mean(1[y = k]) - mean(p_k)| over B_mk, equal-width bins
  on p_k for every class k (Kull et al. 2019).
* Brier score = mean_i sum_k (p_ik - 1[y_i = k])^2 (Brier 1950; the multi-class form, in [0, 2]).
* NLL  = mean_i -log p_i[y_i].

Bin edges follow :func:`kerasdl.evaluation.metrics.calibration_bins`: n_bins equal-width bins of [0, 1],
bin m is (m/n_bins, (m+1)/n_bins] and the first bin is closed at 0, so a confidence lying exactly
on an edge belongs to the bin *below* it (1/3 with 3 bins is in bin 0) and 0 and 1 are both
counted. Empty bins contribute nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize

from kerasdl.evaluation import metrics
from kerasdl.errors import KerasdlUsageError, UnknownNameError

KINDS = ("temperature", "vector", "matrix")
T_BOUNDS = (0.05, 20.0)  # the temperature search range
L2_DEFAULT = 1e-3  # strength of the pull toward the identity map (vector / matrix scaling)


# --------------------------------------------------------------------------------------------
# Fitting


def _check(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64).ravel()
    if z.ndim != 2 or len(z) != len(y) or len(y) == 0:
        raise KerasdlUsageError(
            f"calibration needs logits (N, K) and N labels; got logits {z.shape} and {len(y)} labels"
        )
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise KerasdlUsageError(f"labels must lie in [0, {z.shape[1]}); got [{y.min()}, {y.max()}]")
    return z, y


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 that minimises the mean NLL of softmax(logits / T) on ``labels``.

    NLL(z / T) is convex in 1/T (a log-sum-exp of functions linear in 1/T), hence unimodal in
    log T, so a bounded Brent search over log T in [log 0.05, log 20] finds the global minimum
    inside that range (to ~1e-9 in log T).
    """
    z, y = _check(logits, labels)
    res = optimize.minimize_scalar(
        lambda log_t: metrics.nll_from_logits(z / np.exp(log_t), y),
        bounds=tuple(np.log(T_BOUNDS)), method="bounded", options={"xatol": 1e-9},
    )
    return float(np.exp(res.x))


def _nll_grad(a: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean NLL of softmax(a) and its gradient d/da = (softmax(a) - onehot(y)) / N."""
    lsm = metrics.log_softmax(a)
    rows = np.arange(len(y))
    grad = np.exp(lsm)
    grad[rows, y] -= 1.0
    return float(-np.mean(lsm[rows, y])), grad / len(y)


def _lbfgs(loss_grad, x0: np.ndarray) -> np.ndarray:
    res = optimize.minimize(loss_grad, x0, jac=True, method="L-BFGS-B",
                            options={"maxiter": 2000, "gtol": 1e-10, "ftol": 1e-15})
    return res.x


def fit_vector_scaling(logits: np.ndarray, labels: np.ndarray, l2: float = L2_DEFAULT):
    """(w, b), each (K,), of softmax(w * z + b) by L-BFGS on mean NLL + l2 (||w - 1||^2 + ||b||^2).

    Starts from temperature scaling (w = 1/T, b = 0).
    """
    z, y = _check(logits, labels)
    k = z.shape[1]

    def loss_grad(theta):
        w, b = theta[:k], theta[k:]
        loss, g = _nll_grad(z * w + b, y)
        loss += l2 * (np.sum((w - 1.0) ** 2) + np.sum(b**2))
        return loss, np.concatenate([np.sum(g * z, axis=0) + 2 * l2 * (w - 1.0), g.sum(axis=0) + 2 * l2 * b])

    x0 = np.concatenate([np.full(k, 1.0 / fit_temperature(z, y)), np.zeros(k)])
    theta = _lbfgs(loss_grad, x0)
    return theta[:k], theta[k:]


def fit_matrix_scaling(logits: np.ndarray, labels: np.ndarray, l2: float = L2_DEFAULT):
    """(W (K, K), b (K,)) of softmax(z @ W + b) by L-BFGS on mean NLL + l2 (||W - I||_F^2 + ||b||^2).

    Starts from temperature scaling (W = I / T, b = 0).
    """
    z, y = _check(logits, labels)
    k = z.shape[1]
    eye = np.eye(k)

    def loss_grad(theta):
        w, b = theta[: k * k].reshape(k, k), theta[k * k:]
        loss, g = _nll_grad(z @ w + b, y)
        loss += l2 * (np.sum((w - eye) ** 2) + np.sum(b**2))
        return loss, np.concatenate([(z.T @ g + 2 * l2 * (w - eye)).ravel(), g.sum(axis=0) + 2 * l2 * b])

    x0 = np.concatenate([(eye / fit_temperature(z, y)).ravel(), np.zeros(k)])
    theta = _lbfgs(loss_grad, x0)
    return theta[: k * k].reshape(k, k), theta[k * k:]


@dataclass
class Calibrator:
    """A fitted calibration map. ``params``: ``{"temperature": T}`` (kind "temperature"),
    ``{"w": (K,), "b": (K,)}`` ("vector") or ``{"W": (K, K), "b": (K,)}`` ("matrix")."""

    kind: str
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UnknownNameError("calibration", str(self.kind), KINDS)
        needs = {"temperature": ("temperature",), "vector": ("w", "b"), "matrix": ("W", "b")}[self.kind]
        missing = [name for name in needs if name not in self.params]
        if missing:
            raise KerasdlUsageError(f"{self.kind} calibration needs params {', '.join(missing)}")

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """The calibrated logits (feed them to softmax); float64, same shape as ``logits``."""
        z = np.asarray(logits, dtype=np.float64)
        if self.kind == "temperature":
            return z / float(self.params["temperature"])
        b = np.asarray(self.params["b"], dtype=np.float64)
        if z.shape[-1] != len(b):
            raise KerasdlUsageError(
                f"{self.kind} calibration was fitted on {len(b)} classes, got {z.shape[-1]}"
            )
        if self.kind == "vector":
            return z * np.asarray(self.params["w"], dtype=np.float64) + b
        return z @ np.asarray(self.params["W"], dtype=np.float64) + b

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: floats and (nested) lists only."""
        return {"kind": self.kind, "params": {k: np.asarray(v, dtype=np.float64).tolist()
                                              for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Calibrator":
        return cls(kind=str(data["kind"]), params=dict(data.get("params", {})))


def fit_calibrator(kind: str, logits: np.ndarray, labels: np.ndarray, l2: float = L2_DEFAULT) -> Calibrator:
    """Fit the calibration map ``kind`` (one of :data:`KINDS`) on validation logits and labels."""
    if kind == "temperature":
        return Calibrator(kind, {"temperature": fit_temperature(logits, labels)})
    if kind == "vector":
        w, b = fit_vector_scaling(logits, labels, l2=l2)
        return Calibrator(kind, {"w": w, "b": b})
    if kind == "matrix":
        w, b = fit_matrix_scaling(logits, labels, l2=l2)
        return Calibrator(kind, {"W": w, "b": b})
    raise UnknownNameError("calibration", str(kind), KINDS)


# --------------------------------------------------------------------------------------------
# Metrics


def _bin_index(scores: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each score in [0, 1]: bin m is (m/n_bins, (m+1)/n_bins], bin 0 also holds 0.

    The same edges and rule as :func:`kerasdl.evaluation.metrics.calibration_bins`.
    """
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.clip(np.searchsorted(edges, scores, side="left") - 1, 0, n_bins - 1)


def _binned_gap(scores: np.ndarray, hits: np.ndarray, n_bins: int) -> float:
    """sum_m |B_m|/n |mean(hits) - mean(scores)| over equal-width bins of ``scores``."""
    idx = _bin_index(scores, n_bins)
    counts = np.bincount(idx, minlength=n_bins)
    gap = np.abs(np.bincount(idx, weights=hits - scores, minlength=n_bins)) / np.maximum(counts, 1)
    return float(np.sum(counts / len(scores) * gap))


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error over equal-width top-label confidence bins (Guo et al. 2017)."""
    return metrics.expected_calibration_error(probs, labels, n_bins)


def mce(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Maximum calibration error: max over non-empty bins of |acc(B_m) - conf(B_m)|."""
    _, counts, acc, conf = metrics.calibration_bins(probs, labels, n_bins)
    filled = counts > 0
    return float(np.max(np.abs(acc - conf)[filled])) if filled.any() else 0.0


def adaptive_ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE over equal-mass bins (Nixon et al. 2019): sort by confidence (stable), then
    ``np.array_split`` into ``n_bins`` groups whose sizes differ by at most one."""
    probs = np.asarray(probs, dtype=np.float64)
    conf = probs.max(axis=-1)
    correct = (probs.argmax(axis=-1) == np.asarray(labels)).astype(np.float64)
    order = np.argsort(conf, kind="stable")
    n = len(conf)
    total = 0.0
    for group in np.array_split(order, n_bins):
        if len(group):
            total += len(group) / n * abs(correct[group].mean() - conf[group].mean())
    return float(total)


def classwise_ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Classwise ECE (Kull et al. 2019): the mean over classes k of the binned calibration gap of
    p_k against the indicator 1[y = k], equal-width bins on p_k."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    k = probs.shape[-1]
    gaps = [_binned_gap(probs[:, c], (labels == c).astype(np.float64), n_bins) for c in range(k)]
    return float(np.mean(gaps))


def brier_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """Multi-class Brier score (Brier 1950): mean_i sum_k (p_ik - 1[y_i = k])^2, in [0, 2]."""
    probs = np.asarray(probs, dtype=np.float64)
    onehot = np.eye(probs.shape[-1])[np.asarray(labels).astype(np.int64)]
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=-1)))


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood -log p_i[y_i] (probabilities clipped at 1e-12)."""
    return metrics.nll(probs, labels)


def calibration_report(logits: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> dict:
    """Every calibration figure of softmax(logits) against integer labels (NLL exact from logits)."""
    z, y = _check(logits, labels)
    probs = metrics.softmax(z)
    return {
        "accuracy": metrics.accuracy(probs, y),
        "nll": metrics.nll_from_logits(z, y),
        "brier": brier_score(probs, y),
        "ece": ece(probs, y, n_bins),
        "mce": mce(probs, y, n_bins),
        "adaptive_ece": adaptive_ece(probs, y, n_bins),
        "classwise_ece": classwise_ece(probs, y, n_bins),
        "n_bins": int(n_bins),
    }


# --------------------------------------------------------------------------------------------
# Reliability diagram


def reliability_diagram(probs_before: np.ndarray, labels: np.ndarray, out_png: str,
                        probs_after: np.ndarray | None = None, n_bins: int = 15,
                        title: str | None = None) -> str:
    """PNG reliability diagram: accuracy per confidence bin against the diagonal (top), and the
    number of examples per bin (bottom); "before" and "after" side by side when ``probs_after`` is
    given. ECE is in each panel's title. Returns ``out_png``."""
    from kerasdl.plots import save, plt

    panels = [("before calibration" if probs_after is not None else "", probs_before)]
    if probs_after is not None:
        panels.append(("after calibration", probs_after))
    fig, axes = plt.subplots(2, len(panels), figsize=(4.6 * len(panels), 5.6), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    for col, (name, probs) in enumerate(panels):
        edges, counts, acc, conf = metrics.calibration_bins(probs, labels, n_bins)
        width = edges[1] - edges[0]
        filled = counts > 0
        top, bottom = axes[0][col], axes[1][col]
        top.bar(edges[:-1][filled], acc[filled], width=width, align="edge", color="tab:blue",
                edgecolor="black", linewidth=0.5, label="accuracy")
        top.bar(edges[:-1][filled], (conf - acc)[filled], bottom=acc[filled], width=width, align="edge",
                color="tab:red", alpha=0.3, edgecolor="tab:red", linewidth=0.5, label="gap to confidence")
        top.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
        top.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy",
                title=f"{name}{': ' if name else ''}ECE {100 * ece(probs, labels, n_bins):.2f}%")
        top.legend(loc="upper left", fontsize=8)
        bottom.bar(edges[:-1], counts, width=width, align="edge", color="gray", edgecolor="black",
                   linewidth=0.5)
        bottom.set(xlabel="confidence (max probability)", ylabel="examples (bin count)")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, out_png)
