"""Segmentation and localization from a Grad-CAM map (numpy side)."""
from __future__ import annotations

import numpy as np
import skimage.measure


def _as_map(cam) -> np.ndarray:
    if hasattr(cam, "detach"):
        cam = cam.detach().cpu().numpy()
    cam = np.asarray(cam, dtype=np.float64)
    if cam.ndim != 2:
        raise ValueError(f"cam must be a 2-D map (H, W); got shape {cam.shape}")
    return cam


def threshold_segmentation(image: np.ndarray, cam, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep the pixels of ``image`` (H, W, 3) where ``cam`` (H, W) >= ``threshold``.

    Returns ``(segmented, mask)``: ``mask`` a bool (H, W) array, ``segmented`` the image where the
    mask is true and 0 elsewhere (same shape and dtype as ``image``).
    """
    cam = _as_map(cam)
    image = np.asarray(image)
    if image.shape[:2] != cam.shape:
        raise ValueError(f"image {image.shape[:2]} and cam {cam.shape} differ in size")
    mask = cam >= threshold
    return np.where(mask[..., None], image, 0).astype(image.dtype), mask


def localization_box(cam, threshold: float = 0.15) -> tuple[int, int, int, int]:
    """The paper's box: around the largest 8-connected region of ``cam >= threshold * cam.max()``.

    Returns inclusive pixel indices ``(top, left, bottom, right)``.
    """
    cam = _as_map(cam)
    labels = skimage.measure.label(cam >= threshold * cam.max(), connectivity=2)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0  # background
    rows, cols = np.nonzero(labels == int(np.argmax(sizes)))
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())
