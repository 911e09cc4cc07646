"""Deletion and insertion curves (Petsiuk, Das & Saenko, *RISE*, BMVC 2018), the L2A3 references.

An attribution map ranks the pixels. The deletion curve follows the softmax probability of the
class while the most important pixels are removed (set to 0 in normalized space, all channels),
the insertion curve while they are inserted into an all-zero image. A faithful map makes the
deletion curve fall fast (small area under it) and the insertion curve rise fast (large area).

Step ``i`` of ``steps`` changes the top ``floor(i * H * W / steps)`` pixels, ranked by the
``(H, W)`` attribution in descending order, ties by flat index; the curve has ``steps + 1``
points, ``i = 0 .. steps``; :func:`curve_auc` is the trapezoid rule on ``[0, 1]``.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import integrate
from torch import nn

from interpkit.gradcam import class_indices

#: Images per forward pass.
BATCH = 16


def pixel_order(attribution, shape: tuple[int, int]) -> np.ndarray:
    """Flat pixel indices from the most to the least important (ties: the smaller flat index
    first) of an ``(H, W)`` attribution."""
    values = attribution.detach().cpu().double().numpy() if isinstance(attribution, torch.Tensor) \
        else np.asarray(attribution, dtype=np.float64)
    if values.shape != tuple(shape):
        raise ValueError(f"attribution must be an (H, W) map of the image's size {tuple(shape)}; got "
                         f"{values.shape} (reduce a (3, H, W) attribution first, e.g. .abs().amax(0))")
    if np.isnan(values).any():
        raise ValueError("the attribution contains NaN")
    return np.argsort(-values.ravel(), kind="stable")


def _kept_masks(order: np.ndarray, shape: tuple[int, int], steps: int) -> torch.Tensor:
    """``(steps + 1, 1, H, W)`` masks: step ``i`` marks the top ``floor(i * H * W / steps)`` pixels."""
    n = order.size
    counts = np.arange(steps + 1) * n // steps
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)                      # each pixel's place in the order
    masks = rank[None, :] < counts[:, None]        # (steps + 1, H * W)
    return torch.from_numpy(masks).view(steps + 1, 1, *shape)


def _probabilities(model: nn.Module, images: torch.Tensor, class_idx) -> np.ndarray:
    probs = []
    with torch.no_grad():
        for chunk in images.split(BATCH):
            logits = model(chunk)
            cls = class_indices(logits, class_idx)
            probs.append(logits.softmax(dim=1).gather(1, cls.view(-1, 1))[:, 0])
    return torch.cat(probs).double().numpy()


def _curve(model, image, attribution, class_idx, steps: int, insert: bool) -> np.ndarray:
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"image must be one tensor (1, 3, H, W); got {getattr(image, 'shape', type(image))}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int; got {steps!r}")
    x = image.detach()
    shape = tuple(x.shape[-2:])
    top = _kept_masks(pixel_order(attribution, shape), shape, steps).to(x.dtype)
    images = x * top if insert else x * (1 - top)
    if class_idx is None:
        with torch.no_grad():
            class_idx = int(model(x).argmax())
    return _probabilities(model, images, class_idx)


def deletion_curve(model: nn.Module, image: torch.Tensor, attribution, class_idx: int | None,
                   steps: int = 20) -> np.ndarray:
    """``(steps + 1,)`` softmax probabilities of ``class_idx`` (None: the top-1 class of the image)
    as the most important pixels are set to 0 (all channels): point ``i`` has the top
    ``floor(i * H * W / steps)`` pixels removed."""
    return _curve(model, image, attribution, class_idx, steps, insert=False)


def insertion_curve(model: nn.Module, image: torch.Tensor, attribution, class_idx: int | None,
                    steps: int = 20) -> np.ndarray:
    """``(steps + 1,)`` softmax probabilities of ``class_idx`` as the most important pixels are
    inserted into an all-zero image: point ``i`` shows only the top ``floor(i * H * W / steps)``."""
    return _curve(model, image, attribution, class_idx, steps, insert=True)


def curve_auc(curve) -> float:
    """Area under a curve sampled at ``len(curve)`` equally spaced points of ``[0, 1]`` (trapezoid rule)."""
    values = np.asarray(curve, dtype=np.float64).ravel()
    if values.size < 2:
        raise ValueError(f"a curve needs at least 2 points; got {values.size}")
    return float(integrate.trapezoid(values, dx=1.0 / (values.size - 1)))


__all__ = ["curve_auc", "deletion_curve", "insertion_curve", "pixel_order"]
