"""PNG plots a person would rather look at than read: learning curves, confusion matrices.

matplotlib runs with the non-interactive Agg backend, so plotting works on a headless machine.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def learning_curves(history: Sequence[Mapping[str, float]], path: str, title: str = "") -> str:
    """One panel per metric (loss first), train vs validation, x = epoch (1-based)."""
    if not history:
        return path
    keys = [k for k in history[0] if k not in ("epoch", "learning_rate") and not k.startswith("val_")]
    keys.sort(key=lambda k: (k != "loss", k))
    has_lr = "learning_rate" in history[0]
    panels = len(keys) + int(has_lr)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.4), squeeze=False)
    epochs = [int(row["epoch"]) + 1 for row in history]
    for ax, key in zip(axes[0], keys):
        ax.plot(epochs, [row[key] for row in history], "o-", ms=3, label="train")
        if f"val_{key}" in history[0]:
            ax.plot(epochs, [row[f"val_{key}"] for row in history], "o-", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    if has_lr:
        ax = axes[0][-1]
        ax.plot(epochs, [row["learning_rate"] for row in history], "o-", ms=3, color="gray")
        ax.set_xlabel("epoch")
        ax.set_title("learning rate (end of epoch)")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def confusion_matrix(cm: np.ndarray, class_names: Sequence[str], path: str, title: str = "") -> str:
    """Row-normalised colours with raw counts written in each cell."""
    cm = np.asarray(cm)
    k = len(cm)
    size = min(1.0 + 0.55 * k, 14)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    names = list(class_names) if class_names else [str(i) for i in range(k)]
    ax.set_xticks(range(k), names, rotation=45 if k > 10 or max(map(len, names)) > 3 else 0, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    ax.set_title(title or "confusion matrix")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path
