"""Figures of a physics-informed run: the field against its reference (Raissi et al. 2019, Figure 1),
the error and residual maps, the loss terms and an inverse run's coefficients per epoch."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from kerasdl.plots import plt, save


def _slices(problem, axis_values: np.ndarray) -> list[int]:
    """Indices along the last input nearest the problem's slice values (three spread ones by default)."""
    lo, hi = axis_values[0], axis_values[-1]
    wanted = list(problem.slices) or [lo + (hi - lo) * f for f in (0.25, 0.5, 0.75)]
    return [int(np.argmin(np.abs(axis_values - v))) for v in wanted]


def solution_figure(problem, x: np.ndarray, u: np.ndarray, u_ref: np.ndarray | None, residual: np.ndarray,
                    shape: Sequence[int], path: str, *, title: str = "", report: Mapping | None = None) -> bool:
    """1-D and 2-D problems: maps of the prediction, |error| and |residual| (last input on the
    horizontal axis, as Raissi's Figure 1), then the prediction against the reference at three
    values of the last input. Returns False (nothing written) for other dimensions."""
    d = x.shape[1]
    if d == 1:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        order = np.argsort(x[:, 0])
        if u_ref is not None:
            axes[0].plot(x[order, 0], u_ref[order], "b-", lw=2, label="reference")
        axes[0].plot(x[order, 0], u[order], "r--", lw=2, label="PINN")
        axes[0].set_xlabel(problem.inputs[0])
        axes[0].legend()
        axes[1].semilogy(x[order, 0], np.maximum(residual[order], 1e-300))
        axes[1].set_title("|residual|")
        fig.suptitle(title)
        save(fig, path)
        return True
    if d != 2:
        return False
    n0, n1 = int(shape[0]), int(shape[1])
    a = x[:, 0].reshape(n0, n1)[:, 0]  # first input (e.g. x)
    b = x[:, 1].reshape(n0, n1)[0, :]  # last input (e.g. t)
    maps = [("prediction u", u.reshape(n0, n1), "RdBu_r")]
    if u_ref is not None:
        maps += [("|error|", np.abs(u - u_ref).reshape(n0, n1), "viridis")]
    maps += [("|residual|", residual.reshape(n0, n1), "magma")]
    picks = _slices(problem, b)
    fig = plt.figure(figsize=(4.4 * max(len(maps), len(picks)), 7.4))
    grid = fig.add_gridspec(2, max(len(maps), len(picks)))
    extent = (b[0], b[-1], a[0], a[-1])
    for i, (name, values, cmap) in enumerate(maps):
        ax = fig.add_subplot(grid[0, i])
        im = ax.imshow(values, origin="lower", aspect="auto", extent=extent, cmap=cmap)
        for j in picks:
            ax.axvline(b[j], color="w", lw=0.8, ls="--")
        ax.set_xlabel(problem.inputs[1])
        ax.set_ylabel(problem.inputs[0])
        ax.set_title(name)
        fig.colorbar(im, ax=ax)
    for i, j in enumerate(picks):
        ax = fig.add_subplot(grid[1, i])
        if u_ref is not None:
            ax.plot(a, u_ref.reshape(n0, n1)[:, j], "b-", lw=2, label="reference")
        ax.plot(a, u.reshape(n0, n1)[:, j], "r--", lw=2, label="PINN")
        ax.set_xlabel(problem.inputs[0])
        ax.set_ylabel("u")
        ax.set_title(f"{problem.inputs[1]} = {b[j]:.2f}")
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend()
    line = title
    if report and "rel_l2" in report:
        line += f"  (relative L2 {report['rel_l2']:.2e})"
    fig.suptitle(line)
    fig.tight_layout()
    save(fig, path)
    return True


def loss_terms(rows: Sequence[Mapping[str, float]], path: str, *, title: str = "") -> str:
    """The loss and each of its terms per iteration (log scale), the Adam / L-BFGS switch marked,
    and the validation relative L2 error beside them when it was logged."""
    fig, ax = plt.subplots(figsize=(8, 4.4))
    it = np.array([r.get("iteration", r["epoch"] + 1) for r in rows], dtype=float)
    keys = ["loss"] + sorted(k for k in rows[0] if k.startswith("loss_"))
    for key in keys:
        ax.semilogy(it, [max(r.get(key, np.nan), 1e-300) for r in rows], lw=2 if key == "loss" else 1.2,
                    label=key)
    lbfgs = [r.get("iteration", 0) for r in rows if r.get("phase", 0.0) == 1.0]
    adam = [r.get("iteration", 0) for r in rows if r.get("phase", 0.0) == 0.0]
    if lbfgs and adam:
        ax.axvline(max(adam), color="k", ls=":", lw=1)
        ax.text(max(adam), ax.get_ylim()[1], " L-BFGS", va="top", fontsize=8)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3, which="both")
    if "val_rel_l2" in rows[0]:
        ax2 = ax.twinx()
        ax2.semilogy(it, [r["val_rel_l2"] for r in rows], "k--", lw=1.2, label="val rel. L2")
        ax2.set_ylabel("relative L2 error (validation)")
        ax2.legend(loc="upper center", fontsize=8)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title)
    fig.tight_layout()
    return save(fig, path)


def coefficients(rows: Sequence[Mapping[str, float]], true: Mapping[str, float], path: str, *,
                 title: str = "") -> str:
    """An inverse run's coefficients per iteration against their true values."""
    fig, axes = plt.subplots(1, len(true), figsize=(4.8 * len(true), 3.6), squeeze=False)
    it = [r.get("iteration", r["epoch"] + 1) for r in rows]
    for ax, (name, value) in zip(axes[0], true.items()):
        ax.plot(it, [r.get(name, np.nan) for r in rows], "r-", label="fitted")
        ax.axhline(value, color="b", ls="--", label=f"true {value:.6g}")
        ax.set_xlabel("iteration")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)
