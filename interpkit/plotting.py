"""Figures: Grad-CAM overlays, boxes, titled image grids and attribution heatmaps (matplotlib)."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle


def _to_numpy(array) -> np.ndarray:
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def show_cam(image: np.ndarray, cam, ax=None, title: str | None = None, alpha: float = 0.5,
             cmap: str = "jet", box: tuple[int, int, int, int] | None = None):
    """Overlay a map ``cam`` ``(H, W)`` in ``[0, 1]`` on ``image`` ``(H, W, 3)`` in ``[0, 1]``.

    ``box`` = ``(top, left, bottom, right)`` (inclusive pixels) draws a localization box.
    Returns the axes.
    """
    image, cam = _to_numpy(image), _to_numpy(cam)
    if image.shape[:2] != cam.shape:
        raise ValueError(f"image {image.shape[:2]} and cam {cam.shape} must have the same height and width")
    ax = ax or plt.gca()
    ax.imshow(image)
    ax.imshow(cam, cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0)
    if box is not None:
        draw_box(ax, box)
    if title:
        ax.set_title(title, fontsize=9)
    ax.axis("off")
    return ax


def draw_box(ax, box: tuple[int, int, int, int], color: str = "lime"):
    """Draw ``(top, left, bottom, right)`` (inclusive pixel indices) on ``ax``."""
    top, left, bottom, right = box
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1,
                           fill=False, edgecolor=color, linewidth=2))
    return ax


def image_grid(images: Sequence, titles: Sequence[str] | None = None, ncols: int | None = None,
               row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None,
               suptitle: str | None = None, cams: Sequence | None = None, size: float = 2.4):
    """Show images (``(H, W, 3)`` in ``[0, 1]``, or ``(H, W)`` maps) in a grid with titles.

    With ``cams`` (same length as ``images``) each cell is a :func:`show_cam` overlay. Rows are
    filled left to right; ``row_labels``/``col_labels`` label the first column / first row.
    Returns the figure.
    """
    n = len(images)
    ncols = ncols or (len(col_labels) if col_labels else min(n, 4))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        title = titles[i] if titles else None
        if cams is not None:
            show_cam(images[i], cams[i], ax=ax, title=title)
        else:
            img = _to_numpy(images[i])
            ax.imshow(img, cmap="viridis" if img.ndim == 2 else None)
            ax.set_title(title or "", fontsize=9)
            ax.set_xticks([]); ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
    for r, label in enumerate(row_labels or []):
        axes[r, 0].axis("on"); axes[r, 0].set_xticks([]); axes[r, 0].set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=10)
    for c, label in enumerate(col_labels or []):
        axes[0, c].set_title(label if not titles else f"{label}\n{titles[c]}", fontsize=10)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def attribution_heatmap(attribution, percentile: float = 99.0) -> np.ndarray:
    """An attribution map as an ``(H, W)`` heatmap in ``[0, 1]`` for display.

    ``attribution`` is ``(H, W)`` or ``(3, H, W)`` (tensor or array); a 3-channel map is reduced
    to the max of its absolute value over the channels. Values are divided by their
    ``percentile``-th percentile and clipped to 1, so that a few extreme pixels do not turn the
    rest black (the usual display of saliency maps; for display only, not for ranking pixels).
    """
    values = np.abs(_to_numpy(attribution).astype(np.float64))
    if values.ndim == 3:
        values = values.max(axis=0)
    if values.ndim != 2:
        raise ValueError(f"expected an (H, W) or (3, H, W) attribution, got shape {values.shape}")
    top = np.percentile(values, percentile) if values.size else 0.0
    if top <= 0:
        top = values.max()
    return np.clip(values / top, 0.0, 1.0) if top > 0 else np.zeros_like(values)


def show_attribution(attribution, ax=None, title: str | None = None, image: np.ndarray | None = None,
                     cmap: str = "inferno", percentile: float = 99.0):
    """Show :func:`attribution_heatmap` of ``attribution`` on ``ax``; with ``image`` (``(H, W, 3)``
    in ``[0, 1]``), as an overlay on the photo. Returns the axes."""
    heat = attribution_heatmap(attribution, percentile)
    ax = ax or plt.gca()
    if image is not None:
        image = _to_numpy(image)
        if image.shape[:2] != heat.shape:
            raise ValueError(f"image {image.shape[:2]} and attribution {heat.shape} must have the same height and width")
        ax.imshow(image)
        ax.imshow(heat, cmap=cmap, alpha=0.6, vmin=0.0, vmax=1.0)
    else:
        ax.imshow(heat, cmap=cmap, vmin=0.0, vmax=1.0)
    if title:
        ax.set_title(title, fontsize=9)
    ax.axis("off")
    return ax
