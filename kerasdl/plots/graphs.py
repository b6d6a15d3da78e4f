"""Figures of graph runs: the nodes at their learned representation."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from kerasdl.plots import plt, save


def graph_embedding(points: np.ndarray, labels: np.ndarray, class_names: Sequence[str], path: str, *,
                    train: np.ndarray | None = None, edges: np.ndarray | None = None, title: str = "") -> str:
    """Nodes at ``points`` (N, 2), coloured by their true class (grey: unlabelled), the ``train``
    nodes ringed in black and labelled with their class, the ``edges`` (2, E) drawn underneath."""
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    if edges is not None and edges.size:
        segments = np.stack([points[edges[0]], points[edges[1]]], axis=1)
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection(segments, colors="0.75", linewidths=0.5, zorder=1))
    n = len(points)
    size = 60 if n <= 100 else 12 if n <= 1000 else 5
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    unlabelled = labels < 0
    if unlabelled.any():
        ax.scatter(*points[unlabelled].T, s=size, c="0.6", label="unlabelled", zorder=2)
    for k, name in enumerate(class_names):
        at = labels == k
        if at.any():
            ax.scatter(*points[at].T, s=size, color=cmap(k % cmap.N), label=str(name), zorder=2)
    if train is not None and train.any():
        ax.scatter(*points[train].T, s=size * 3, facecolors="none", edgecolors="black", linewidths=1.5,
                   label=f"train nodes ({int(train.sum())})", zorder=3)
    ax.set(xlabel="dimension 1", ylabel="dimension 2", title=title or "learned node embedding")
    ax.legend(fontsize=7, loc="best", markerscale=1.0 if n <= 100 else 2.0)
    ax.autoscale()
    ax.grid(alpha=0.2)
    fig.tight_layout()
    return save(fig, path)
