"""Sample photos (from scikit-image, offline), resizing, and model pre-processing.

Images on the numpy side are ``(H, W, 3)`` float arrays in ``[0, 1]``; images on the model side are
``(N, 3, H, W)`` float32 tensors normalized with the model's mean and std.
"""
from __future__ import annotations

from typing import Union

import numpy as np
import skimage.data
import skimage.transform
import torch
from torch import nn

from .devices import model_device
from .models import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, get_spec

#: Photos shipped with scikit-image, and the ImageNet class that best describes each.
SAMPLES: dict[str, tuple[str, int]] = {
    "cat": ("chelsea", 285),        # Egyptian cat
    "coffee": ("coffee", 967),      # espresso
    "astronaut": ("astronaut", 834),  # suit
    "rocket": ("rocket", 657),      # missile
}

#: The two objects of :func:`two_objects` and their ImageNet classes (left, right).
COMPOSITE_CLASSES: dict[str, int] = {"cat": 285, "coffee": 967}


def as_float_image(image: np.ndarray) -> np.ndarray:
    """``image`` as an ``(H, W, 3)`` float64 array in ``[0, 1]`` (uint8 is divided by 255)."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    array = array.astype(np.float64)
    if array.min() < 0 or array.max() > 1:
        raise ValueError(f"float images must lie in [0, 1]; got [{array.min():.3g}, {array.max():.3g}]")
    return array


def resize(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize an ``(H, W, 3)`` image to ``size`` (side, or ``(height, width)``), anti-aliased."""
    shape = (size, size) if isinstance(size, int) else tuple(size)
    return skimage.transform.resize(as_float_image(image), shape, anti_aliasing=True)


def sample_image(name: str, size: int | tuple[int, int] | None = 224) -> np.ndarray:
    """One of :data:`SAMPLES` (``"cat"``, ``"coffee"``, ...), resized; ``size=None`` keeps it."""
    if name not in SAMPLES:
        raise KeyError(f"Unknown sample {name!r}; choose one of {sorted(SAMPLES)}.")
    image = as_float_image(getattr(skimage.data, SAMPLES[name][0])())
    return image if size is None else resize(image, size)


def two_objects(size: int = 224) -> np.ndarray:
    """The counterfactual composite: the cat (left) beside the coffee cup (right).

    Shape ``(size, 2 * size, 3)``: each photo keeps its own square, nothing is squashed.
    """
    return np.concatenate([sample_image("cat", size), sample_image("coffee", size)], axis=1)


Model = Union[str, ModelSpec, nn.Module]


def _spec(model: Model) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, nn.Module):
        name = getattr(model, "interpkit_name", None)
        if name is None:
            raise ValueError("this model does not come from interpkit.load_model: pass its registry "
                             "name (e.g. preprocess(image, 'resnet50')) instead of the model")
        return get_spec(name)
    return get_spec(model)


def preprocess(image: np.ndarray, model: Model = "resnet50",
               size: int | tuple[int, int] | None = None,
               device: str | torch.device | None = None) -> torch.Tensor:
    """Turn an ``(H, W, 3)`` image into the model's input ``(1, 3, H', W')``.

    ``model``: a registry name, or a model from ``load_model`` (then the tensor is made on that
    model's device). ``size=None`` resizes to the model's input size (299 for inception_v3, else
    224); pass ``size=image.shape[:2]`` to keep the image as it is. ``device`` overrides where the
    tensor is made (default: the model's device, the CPU for a name).
    """
    spec = _spec(model)
    image = as_float_image(image)
    target = spec.input_size if size is None else size
    target = (target, target) if isinstance(target, int) else tuple(target)
    if image.shape[:2] != target:
        image = resize(image, target)
    if device is None:
        device = model_device(model) if isinstance(model, nn.Module) else "cpu"
    # contiguous (N, C, H, W): a permuted view would be channels-last, and convolutions would
    # take another code path whose rounding differs (enough to flip ReLU gates of a trained net)
    tensor = torch.as_tensor(image, dtype=torch.float32, device=device).permute(2, 0, 1).unsqueeze(0).contiguous()
    return normalize(tensor, spec)


def normalize(batch: torch.Tensor, model: Model = "resnet50") -> torch.Tensor:
    """``(N, 3, H, W)`` in ``[0, 1]`` -> normalized with the model's mean/std (differentiable)."""
    spec = _spec(model)
    mean = torch.tensor(spec.mean, dtype=batch.dtype, device=batch.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=batch.dtype, device=batch.device).view(1, 3, 1, 1)
    return (batch - mean) / std


def denormalize(batch: torch.Tensor, model: Model = "resnet50") -> np.ndarray:
    """Inverse of :func:`preprocess` for the first image: ``(H, W, 3)`` numpy array in ``[0, 1]``."""
    spec = _spec(model)
    mean = torch.tensor(spec.mean).view(3, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1)
    image = batch.detach().cpu()[0] * std + mean
    return image.clamp(0, 1).permute(1, 2, 0).numpy()


__all__ = ["SAMPLES", "COMPOSITE_CLASSES", "IMAGENET_MEAN", "IMAGENET_STD", "as_float_image",
           "resize", "sample_image", "two_objects", "preprocess", "normalize", "denormalize"]
