"""PNG plots a person would rather look at than read: learning curves, confusion matrices,
a regressor's predicted-vs-true scatter and a segmenter's predicted masks.

matplotlib runs with the non-interactive Agg backend, so plotting works on a headless machine.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors  # noqa: E402
import matplotlib.patches  # noqa: E402
import matplotlib.ticker  # noqa: E402
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
    return save(fig, path)


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
    return save(fig, path)


def member_learning_curves(histories: Sequence[Sequence[Mapping[str, float]]], path: str, title: str = "",
                           labels: Sequence[str] | None = None) -> str:
    """An ensemble's members side by side: one panel per metric (loss first), one colour per
    member, train solid and validation dashed, x = epoch (1-based)."""
    histories = [h for h in histories if h]
    if not histories:
        return path
    first = histories[0][0]
    keys = [k for k in first if k not in ("epoch", "learning_rate", "epoch_time_s") and not k.startswith("val_")]
    keys.sort(key=lambda k: (k != "loss", k))
    labels = list(labels) if labels else [f"member {i}" for i in range(1, len(histories) + 1)]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 3.6), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key in zip(axes[0], keys):
        for i, (history, label) in enumerate(zip(histories, labels)):
            colour = colours[i % len(colours)]
            epochs = [int(row["epoch"]) + 1 for row in history]
            ax.plot(epochs, [row.get(key, np.nan) for row in history], "o-", ms=3, color=colour,
                    label=f"{label} train")
            if f"val_{key}" in history[0]:
                ax.plot(epochs, [row.get(f"val_{key}", np.nan) for row in history], "o--", ms=3, color=colour,
                        label=f"{label} validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def regression_scatter(y_true: np.ndarray, y_pred: np.ndarray, path: str, title: str = "") -> str:
    """Predicted against true values with the y = x line; R², MAE and n in the corner."""
    from kerasdl.evaluation.metrics import regression_report

    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    report = regression_report(y_true, y_pred)
    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    ax.scatter(y_true, y_pred, s=12, alpha=0.6, edgecolors="none")
    finite = np.concatenate([y_true, y_pred])
    finite = finite[np.isfinite(finite)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    pad = 0.03 * (high - low or 1.0)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], "--", color="gray", lw=1, label="y = x")
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.text(0.03, 0.97, f"R² {report['r2']:.3f}\nMAE {report['mae']:.4g}\nn {report['n']:,}",
            transform=ax.transAxes, va="top", fontsize=9,
            bbox=dict(boxstyle="round", facecolor="white", alpha=0.8, edgecolor="lightgray"))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title or "predicted vs true")
    fig.tight_layout()
    return save(fig, path)


def segmentation_examples(images: np.ndarray, masks_true: np.ndarray, masks_pred: np.ndarray, path: str,
                          class_names: Sequence[str] | None = None, title: str = "") -> str:
    """One row per example: the input, the true mask and the predicted mask (one fixed colour per
    class, shared by both masks), with the example's pixel accuracy."""
    images = np.asarray(images, dtype=np.float64)
    masks_true = np.asarray(masks_true).reshape(images.shape[:3])
    masks_pred = np.asarray(masks_pred).reshape(images.shape[:3])
    n = len(images)
    k = max(int(masks_true.max(initial=0)), int(masks_pred.max(initial=0))) + 1
    if class_names:
        k = max(k, len(class_names))
    names = list(class_names) if class_names else [str(i) for i in range(k)]
    cmap = matplotlib.colors.ListedColormap(
        [plt.get_cmap("tab10" if k <= 10 else "tab20")(i % 20) for i in range(k)])
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n + 0.6), squeeze=False)
    for i in range(n):
        image = images[i]
        lo, hi = float(image.min()), float(image.max())
        image = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)  # any normalisation -> [0, 1]
        accuracy = float(np.mean(masks_true[i] == masks_pred[i]))
        panels = ((image[..., 0] if image.shape[-1] == 1 else image[..., :3], "input", "gray"),
                  (masks_true[i], "true mask", cmap), (masks_pred[i], f"predicted ({accuracy:.1%} of pixels)", cmap))
        for ax, (picture, label, colours) in zip(axes[i], panels):
            if colours is cmap:
                ax.imshow(picture, cmap=cmap, vmin=-0.5, vmax=k - 0.5, interpolation="nearest")
            else:
                ax.imshow(picture, cmap=colours)
            ax.set_title(label, fontsize=9)
            ax.axis("off")
    handles = [matplotlib.patches.Patch(color=cmap(i), label=names[i]) for i in range(k)]
    fig.legend(handles=handles, loc="lower center", ncol=min(k, 6), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 if n > 1 else 0.1, 1, 1))
    return save(fig, path)


def save(fig, path: str) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path
