"""Gradient attribution maps, the L2A3 references: saliency, SmoothGrad, Integrated Gradients,
guided backpropagation and Guided Grad-CAM.

Conventions (the L2A3 contract): ``image`` is one normalized image ``(1, 3, H, W)``; the score
``y_c`` is the pre-softmax logit of class ``c`` (``class_idx=None``: the top-1 class of
``image``); the model is left exactly as found (parameters and their ``.grad``, ``requires_grad``,
train/eval mode, hooks). Every map comes from :func:`input_gradients`: one forward and one
backward pass per batch of images, ``torch.autograd.grad`` with respect to the images only (no
parameter gradient is computed or stored).

- Simonyan, Vedaldi & Zisserman, *Deep Inside Convolutional Networks*, 2014 (saliency);
- Smilkov et al., *SmoothGrad: removing noise by adding noise*, 2017 (sensitivity maps);
- Sundararajan, Taly & Yan, *Axiomatic Attribution for Deep Networks*, 2017 (IG);
- Springenberg et al., *Striving for Simplicity*, 2015 (guided backpropagation);
- Selvaraju et al., *Grad-CAM*, arXiv 1610.02391 (Guided Grad-CAM).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from interpkit.gradcam import class_indices
from interpkit.gradcam import grad_cam as toolbox_grad_cam

#: The activations whose backward pass the guided rule replaces: ReLU, and ReLU6 (the clipped
#: ReLU of EfficientNet-Lite0 and MobileNetV2), whose own gradient gate is 0 < x < 6.
GUIDED_ACTIVATIONS: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)

#: Images per forward/backward pass (SmoothGrad's samples, IG's path points).
BATCH = 16


def _check_image(image) -> torch.Tensor:
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[0] != 1 \
            or not image.is_floating_point():
        got = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image must be one float tensor (1, 3, H, W); got {got}. "
                         "Use interpkit.preprocess(photo, model_name) to make one.")
    if torch.is_inference_mode_enabled():
        raise RuntimeError("attribution maps need gradients: call them outside torch.inference_mode()")
    return image.detach()


def input_gradients(model: nn.Module, images: torch.Tensor, class_idx=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(d y_c / d x, classes)`` for a batch ``images`` (N, 3, H, W): the gradient of each image's
    pre-softmax logit of its class (``class_idx``: one for all, one per image, or None for each
    image's top-1) with respect to that image. Images are independent, so the gradient of the
    sum of the scores is each image's own gradient."""
    x = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():  # the caller may be inside torch.no_grad()
        logits = model(x)
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
            raise ValueError(f"the model must return logits (N, classes); got {getattr(logits, 'shape', type(logits))}")
        classes = class_indices(logits.detach(), class_idx)
        score = logits.gather(1, classes.view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(score, x)
    return grad, classes


def _top1(model: nn.Module, image: torch.Tensor, class_idx) -> int:
    """``class_idx`` checked, or the top-1 class of ``image`` (one forward pass without autograd)."""
    with torch.no_grad():
        logits = model(image)
    return int(class_indices(logits, class_idx)[0])


def _summed_gradients(model: nn.Module, images: torch.Tensor, class_idx: int, absolute: bool) -> torch.Tensor:
    """Sum over the batch ``images`` of ``d y_c / d x`` (or of its absolute value), in chunks."""
    total = torch.zeros_like(images[0])
    for chunk in images.split(BATCH):
        grad, _ = input_gradients(model, chunk, class_idx)
        total += (grad.abs() if absolute else grad).sum(dim=0)
    return total


def saliency(model: nn.Module, image: torch.Tensor, class_idx: int | None = None) -> torch.Tensor:
    """Gradient saliency ``(H, W)`` float32 >= 0: the max over colour channels of ``|d y_c / d x|``
    (not normalized)."""
    grad, _ = input_gradients(model, _check_image(image), class_idx)
    return grad[0].abs().amax(dim=0).float()


def smoothgrad(model: nn.Module, image: torch.Tensor, class_idx: int | None = None, n_samples: int = 25,
               noise_level: float = 0.15, generator: torch.Generator | None = None) -> torch.Tensor:
    """SmoothGrad sensitivity map ``(H, W)`` float32 >= 0.

    ``sigma = noise_level * (x.max() - x.min())``; for each of ``n_samples`` samples, in order,
    ``eps = sigma * torch.randn(image.shape, generator=generator)``; the map is the max over colour
    channels of the mean of ``|d y_c / d x|`` at ``x + eps``. ``class_idx=None``: the top-1 class
    of the clean image.
    """
    x = _check_image(image)
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int; got {n_samples!r}")
    if not noise_level >= 0:
        raise ValueError(f"noise_level must be >= 0 (a fraction of the input's range); got {noise_level!r}")
    cls = _top1(model, x, class_idx)
    sigma = noise_level * (x.max() - x.min())
    noise = torch.cat([sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype) for _ in range(n_samples)])
    total = _summed_gradients(model, x + noise, cls, absolute=True)
    return (total / n_samples).amax(dim=0).float()


def integrated_gradients(model: nn.Module, image: torch.Tensor, class_idx: int | None = None,
                         baseline: torch.Tensor | None = None, steps: int = 50) -> torch.Tensor:
    """Integrated Gradients ``(3, H, W)``: ``(x - x0) * mean_{k=1..steps} d y_c / d x`` at
    ``x0 + k/steps (x - x0)`` (the right Riemann sum of the straight path from the baseline
    ``x0``; zeros when ``baseline`` is None). Completeness: the attributions sum to about
    ``y_c(x) - y_c(x0)``, more closely with more steps. ``class_idx=None``: the top-1 class of x.
    """
    x = _check_image(image)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int; got {steps!r}")
    x0 = torch.zeros_like(x) if baseline is None else torch.as_tensor(baseline, dtype=x.dtype).detach()
    if x0.shape != x.shape:
        if x0.dim() == 3 and x0.shape == x.shape[1:]:
            x0 = x0[None]
        else:
            raise ValueError(f"baseline must have the image's shape {tuple(x.shape)}; got {tuple(x0.shape)}")
    cls = _top1(model, x, class_idx)
    alphas = (torch.arange(1, steps + 1, dtype=x.dtype) / steps).view(-1, 1, 1, 1)
    total = _summed_gradients(model, x0 + alphas * (x - x0), cls, absolute=False)
    return ((x - x0)[0] * total / steps).float()


class _PositiveGradient(torch.autograd.Function):
    """Identity forward; backward passes only the positive part of the incoming gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clone()  # a new tensor: later in-place operations must not reach the input

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.clamp(min=0)


def _guide(module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
    return _PositiveGradient.apply(output)


@contextmanager
def guided_relus(model: nn.Module) -> Iterator[int]:
    """Inside the block, every :data:`GUIDED_ACTIVATIONS` module of ``model`` back-propagates with
    the guided rule: the gradient reaching its output is clamped at 0 before its own gate (input
    > 0; for ReLU6, 0 < input < 6), so only positive gradients pass, and only where the input was
    positive. Forward values are unchanged. Yields how many modules were hooked; the hooks are
    removed when the block exits, whatever happens inside it."""
    handles = [m.register_forward_hook(_guide) for m in model.modules() if isinstance(m, GUIDED_ACTIVATIONS)]
    try:
        yield len(handles)
    finally:
        for handle in handles:
            handle.remove()


def guided_backprop(model: nn.Module, image: torch.Tensor, class_idx: int | None = None) -> torch.Tensor:
    """Guided backpropagation ``(3, H, W)``: ``d y_c / d x`` with every ReLU (and ReLU6) passing
    back only positive gradients where its input was positive (see :func:`guided_relus`)."""
    x = _check_image(image)
    with guided_relus(model):
        grad, _ = input_gradients(model, x, class_idx)
    return grad[0].float()


def guided_grad_cam(model: nn.Module, layer: nn.Module, image: torch.Tensor,
                    class_idx: int | None = None) -> torch.Tensor:
    """Guided Grad-CAM ``(3, H, W)``: guided backpropagation times the toolbox's Grad-CAM map of
    the same class (``interpkit.gradcam.grad_cam``: upsampled bilinearly to (H, W), in [0, 1])."""
    x = _check_image(image)
    cls = _top1(model, x, class_idx)
    cam = toolbox_grad_cam(model, layer, x, cls)
    return guided_backprop(model, x, cls) * cam[None]


__all__ = ["BATCH", "GUIDED_ACTIVATIONS", "guided_backprop", "guided_grad_cam", "guided_relus",
           "input_gradients", "integrated_gradients", "saliency", "smoothgrad"]
