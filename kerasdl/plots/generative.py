"""Figures of autoencoders and generative models: image grids (inputs vs reconstructions,
samples), 2-D latent scatters coloured by class, latent traversals and the linear AE's PCA
comparison. matplotlib with the Agg backend (see :mod:`kerasdl.plots`); every helper writes one
PNG atomically and returns its path.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from kerasdl.plots import plt, save

__all__ = ["image_grid", "reconstruction_grid", "latent_scatter", "traversal_grid", "pca_comparison", "sample_scatter"]


def _as_images(x: np.ndarray, image_shape: Sequence[int] | None = None) -> np.ndarray:
    """(N, H, W) or (N, H, W, 3) floats clipped to [0, 1]; vectors reshape to ``image_shape``
    or, when that is not given, to the most square (h, w) that fits."""
    x = np.asarray(x, dtype=np.float32)
    if image_shape is not None:
        x = x.reshape((len(x),) + tuple(image_shape))
    if x.ndim == 2:  # vectors: a 1-row strip per example unless F is a square
        f = x.shape[1]
        side = int(round(f**0.5))
        x = x.reshape(len(x), side, side) if side * side == f else x.reshape(len(x), 1, f)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    return np.clip(x, 0.0, 1.0)


def _grid_axes(rows: int, cols: int, cell: float = 1.0):
    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell, rows * cell + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def image_grid(images: np.ndarray, path: str, *, cols: int = 8, title: str = "",
               image_shape: Sequence[int] | None = None) -> str:
    """``images`` (N, ...) in [0, 1] laid out ``cols`` wide."""
    images = _as_images(images, image_shape)
    n = len(images)
    rows = max(1, -(-n // cols))
    fig, axes = _grid_axes(rows, cols)
    for i, ax in enumerate(axes.flat):
        if i < n:
            ax.imshow(images[i], cmap="gray" if images[i].ndim == 2 else None, vmin=0, vmax=1)
        else:
            ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def reconstruction_grid(rows: Sequence[tuple[str, np.ndarray]], path: str, *, title: str = "",
                        image_shape: Sequence[int] | None = None) -> str:
    """One labelled row per ``(label, images)`` pair (e.g. inputs, noisy inputs, reconstructions),
    the same examples in each column."""
    rows = [(label, _as_images(x, image_shape)) for label, x in rows]
    cols = min(len(x) for _, x in rows)
    fig, axes = _grid_axes(len(rows), cols)
    for r, (label, images) in enumerate(rows):
        for c in range(cols):
            axes[r][c].imshow(images[c], cmap="gray" if images[c].ndim == 2 else None, vmin=0, vmax=1)
        axes[r][0].set_ylabel(label, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def latent_scatter(z: np.ndarray, labels: np.ndarray | None, path: str, *, class_names: Sequence[str] = (),
                   title: str = "") -> str:
    """Codes (N, 2) as points, coloured by class when ``labels`` are given."""
    z = np.asarray(z)
    fig, ax = plt.subplots(figsize=(5.4, 4.6))
    if labels is None:
        ax.scatter(z[:, 0], z[:, 1], s=4, alpha=0.6)
    else:
        labels = np.asarray(labels).astype(int)
        cmap = plt.get_cmap("tab10" if labels.max(initial=0) < 10 else "tab20")
        for k in np.unique(labels):
            name = class_names[k] if k < len(class_names) else str(k)
            sel = labels == k
            ax.scatter(z[sel, 0], z[sel, 1], s=4, alpha=0.7, color=cmap(k % cmap.N), label=name)
        ax.legend(markerscale=3, fontsize=7, loc="best", ncol=2)
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save(fig, path)


def traversal_grid(images: np.ndarray, values: Sequence[float], path: str, *, title: str = "",
                   image_shape: Sequence[int] | None = None) -> str:
    """``images`` (D, S, ...): row d varies latent dimension d over ``values`` (S of them)."""
    images = np.asarray(images)
    d, s = images.shape[:2]
    flat = _as_images(images.reshape((d * s,) + images.shape[2:]), image_shape)
    fig, axes = _grid_axes(d, s, cell=0.8)
    for r in range(d):
        for c in range(s):
            img = flat[r * s + c]
            axes[r][c].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        axes[r][0].set_ylabel(f"z[{r}]", fontsize=7)
    for c, v in enumerate(values):
        axes[-1][c].set_xlabel(f"{v:+.1f}", fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def pca_comparison(rows: Sequence[tuple[str, np.ndarray]], angles_deg: np.ndarray, path: str, *,
                   title: str = "", image_shape: Sequence[int] | None = None) -> str:
    """Left: inputs, linear-AE and PCA reconstructions; right: the principal angles (degrees)
    between the decoder's column space and the top-k PCA subspace."""
    rows = [(label, _as_images(x, image_shape)) for label, x in rows]
    cols = min(len(x) for _, x in rows)
    fig = plt.figure(figsize=(cols * 0.9 + 4.2, len(rows) * 0.9 + 0.6))
    grid = fig.add_gridspec(len(rows), cols + 5)
    for r, (label, images) in enumerate(rows):
        for c in range(cols):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(images[c], cmap="gray" if images[c].ndim == 2 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=7)
    ax = fig.add_subplot(grid[:, cols + 1:])
    angles = np.asarray(angles_deg)
    ax.bar(np.arange(1, len(angles) + 1), angles, color="tab:blue")
    ax.set_xlabel("principal angle #")
    ax.set_ylabel("degrees")
    ax.set_title("decoder vs top-k PCA", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def sample_scatter(samples: np.ndarray, real: np.ndarray, path: str, *, title: str = "",
                   feature_names: Sequence[str] = ()) -> str:
    """Generated vectors over the real ones: a scatter of the first two features (2-D and up) or,
    for 1-D data (a coin), the two histograms side by side."""
    samples, real = np.asarray(samples, np.float64), np.asarray(real, np.float64)
    samples, real = samples.reshape(len(samples), -1), real.reshape(len(real), -1)
    fig, ax = plt.subplots(figsize=(5.4, 4.6))
    if samples.shape[1] == 1:
        lo = min(samples.min(initial=0.0), real.min(initial=0.0))
        hi = max(samples.max(initial=1.0), real.max(initial=1.0))
        bins = np.linspace(lo, hi, 41)
        ax.hist(real[:, 0], bins=bins, alpha=0.5, density=True, label=f"real (n={len(real)})")
        ax.hist(samples[:, 0], bins=bins, alpha=0.5, density=True, label=f"generated (n={len(samples)})")
        ax.set_xlabel(feature_names[0] if feature_names else "x")
        ax.set_ylabel("density")
    else:
        ax.scatter(real[:, 0], real[:, 1], s=4, alpha=0.4, label=f"real (n={len(real)})")
        ax.scatter(samples[:, 0], samples[:, 1], s=4, alpha=0.4, label=f"generated (n={len(samples)})")
        names = list(feature_names) or ["x1", "x2"]
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1] if len(names) > 1 else "x2")
        ax.set_aspect("equal", adjustable="datalim")
    ax.legend(markerscale=3, fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save(fig, path)
