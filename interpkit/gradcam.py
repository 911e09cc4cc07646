"""Grad-CAM (Selvaraju et al., arXiv 1610.02391): the toolbox's engine, shared by the assignments.

L2A3's Guided Grad-CAM multiplies guided backpropagation by *this* Grad-CAM (the course's
reference, not a student's L2A2 answer). In L2A2, where students write Grad-CAM themselves, an
answer that calls these functions earns no credit for it.

The gradient of the class score with respect to the layer's output ``A`` is computed once;
Grad-CAM weights each channel by the spatial mean of that gradient, the counterfactual by the mean
of the negated gradient (paper, section on counterfactual explanations). Cost: one forward pass
(no autograd graph below the layer) plus a backward pass through the head only, with
``torch.autograd.grad`` (no parameter gradients).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

_UNUSED_LAYER = ("the logits do not depend on the layer's output: choose a layer on the path from "
                 "the input to the logits")

ClassIndex = int | Sequence[int] | torch.Tensor | None


def _check_inputs(model: nn.Module, layer: nn.Module, images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a float tensor (N, C, H, W); got {got}. "
                         "Use interpkit.preprocess(image, model_name) to make one.")
    if layer is model:
        raise ValueError("layer must be a convolutional block inside the model, not the model itself "
                         "(its output has no spatial grid)")
    if not any(m is layer for m in model.modules()):
        raise ValueError(f"layer ({type(layer).__name__}) is not a sub-module of the model; "
                         "get it with interpkit.get_layer(model, name).")
    if torch.is_inference_mode_enabled():
        raise RuntimeError("Grad-CAM needs gradients: call it outside torch.inference_mode().")


def class_indices(logits: torch.Tensor, class_idx: ClassIndex) -> torch.Tensor:
    """The class of each row of ``logits`` (N, classes): ``class_idx`` (one for all rows, or one
    per row), or each row's top-1 when it is None; a ValueError names what does not fit."""
    n, num_classes = logits.shape
    if class_idx is None:
        return logits.argmax(dim=1)
    idx = torch.as_tensor(class_idx, dtype=torch.long).reshape(-1)
    if idx.numel() == 1:
        idx = idx.expand(n)
    if idx.numel() != n:
        raise ValueError(f"class_idx has {idx.numel()} entries for a batch of {n} images")
    if idx.min() < 0 or idx.max() >= num_classes:
        raise ValueError(f"class_idx must lie in [0, {num_classes - 1}]; got {idx.tolist()}")
    return idx


def layer_output_and_gradient(model: nn.Module, layer: nn.Module, images: torch.Tensor,
                              class_idx: ClassIndex = None):
    """Run the model once and return ``(A, dA, classes)``.

    ``A`` (N, K, h, w) is ``layer``'s output, ``dA`` the gradient of each image's pre-softmax
    score for its class with respect to ``A``, ``classes`` (N,) the classes used (top-1 when
    ``class_idx`` is None). Nothing below ``layer`` is recorded for autograd and no parameter
    receives a gradient; the model's parameters, mode and hooks are left as found.
    """
    _check_inputs(model, layer, images)
    captured: list[torch.Tensor] = []

    def start_graph_here(module, inputs, output):
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"Grad-CAM needs a layer whose output is a tensor; "
                            f"{type(module).__name__} returned {type(output).__name__}")
        if captured:
            raise RuntimeError(f"{type(module).__name__} runs more than once per forward pass; "
                               "choose a layer that is called exactly once.")
        torch.set_grad_enabled(True)  # undone when the surrounding no_grad block exits
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf.clone()  # in-place ops further down must not overwrite A

    handle = layer.register_forward_hook(start_graph_here)
    try:
        with torch.no_grad():
            logits = model(images)
    finally:
        handle.remove()
    if not captured:
        raise RuntimeError("the layer was not used by the model's forward pass")
    if logits.dim() != 2:
        raise ValueError(f"the model must return logits (N, classes); got shape {tuple(logits.shape)}")
    classes = class_indices(logits.detach(), class_idx)
    with torch.enable_grad():  # the caller may be inside torch.no_grad()
        score = logits.gather(1, classes.view(-1, 1)).sum()  # images are independent: sum = each
        if not score.requires_grad:
            raise RuntimeError(_UNUSED_LAYER)
        (grad,) = torch.autograd.grad(score, captured[0], allow_unused=True)
    if grad is None:
        raise RuntimeError(_UNUSED_LAYER)
    return captured[0].detach(), grad, classes


def cam_from_gradient(activations: torch.Tensor, gradient: torch.Tensor, size: tuple[int, int],
                      sign: float = 1.0) -> torch.Tensor:
    """Grad-CAM maps from ``A`` and ``dScore/dA`` (both (N, K, h, w)) -> (N, H, W) in [0, 1].

    weights = spatial mean of ``sign * gradient``; map = ReLU(sum_k w_k A_k), bilinearly upsampled
    (align_corners=False) to ``size``, divided by its max (all-zero maps stay zero).
    """
    weights = (sign * gradient).mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activations).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)[:, 0]
    peak = cam.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, cam / peak.clamp_min(torch.finfo(cam.dtype).tiny),
                       torch.zeros_like(cam)).float()


def grad_cam_batch(model: nn.Module, layer: nn.Module, images: torch.Tensor,
                   class_idx: ClassIndex = None, counterfactual: bool = False) -> torch.Tensor:
    """Grad-CAM (or its counterfactual) for a batch ``(N, C, H, W)`` -> ``(N, H, W)`` in one pass."""
    acts, grad, _ = layer_output_and_gradient(model, layer, images, class_idx)
    return cam_from_gradient(acts, grad, images.shape[-2:], -1.0 if counterfactual else 1.0)


def grad_cam_and_counterfactual(model: nn.Module, layer: nn.Module, images: torch.Tensor,
                                class_idx: ClassIndex = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Both maps ``(N, H, W)`` from a single forward/backward pass."""
    acts, grad, _ = layer_output_and_gradient(model, layer, images, class_idx)
    size = images.shape[-2:]
    return cam_from_gradient(acts, grad, size, 1.0), cam_from_gradient(acts, grad, size, -1.0)


def _single(image: torch.Tensor) -> torch.Tensor:
    if isinstance(image, torch.Tensor) and image.dim() == 4 and image.shape[0] != 1:
        raise ValueError(f"expected one image (1, C, H, W); got a batch of {image.shape[0]}: "
                         "use grad_cam_batch for batches")
    return image


def grad_cam(model: nn.Module, layer: nn.Module, image: torch.Tensor,
             class_idx: int | None = None) -> torch.Tensor:
    """Grad-CAM of ``class_idx`` (top-1 if None) for ``image`` (1, 3, H, W) -> (H, W) float32 in [0, 1].

    The pre-softmax logit's gradient w.r.t. ``layer``'s output ``A``, averaged over space, weighs
    the maps; ReLU; bilinear upsampling (align_corners=False) to (H, W); divided by the max (an
    all-zero map stays zero). The model's parameters, mode and hooks are left as found.
    """
    return grad_cam_batch(model, layer, _single(image), class_idx)[0]


def counterfactual_grad_cam(model: nn.Module, layer: nn.Module, image: torch.Tensor,
                            class_idx: int) -> torch.Tensor:
    """Regions whose removal would raise the class score: Grad-CAM with the gradient negated."""
    return grad_cam_batch(model, layer, _single(image), class_idx, counterfactual=True)[0]


__all__ = ["cam_from_gradient", "class_indices", "counterfactual_grad_cam", "grad_cam", "grad_cam_and_counterfactual",
           "grad_cam_batch", "layer_output_and_gradient"]
