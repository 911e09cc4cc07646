"""L2A1 reference: feature-visualization objectives, jitter, activation maximization, DeepDream.

Every function delegates to the engine in :mod:`interpkit.featureviz` (one source of truth: the
objectives' math lives in :mod:`interpkit.featureviz.objectives`, the crop in
:func:`interpkit.featureviz.transforms.jitter_crop`, the optimization loop in
:func:`interpkit.featureviz.render.render`, DeepDream in :mod:`interpkit.featureviz.deepdream`).
The contract (DESIGN.md, "The student functions"): ``acts`` is a layer's activation tensor
``(N, C, h, w)``; objectives return a scalar tensor to MAXIMIZE.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from interpkit.featureviz import deepdream as _engine_deepdream
from interpkit.featureviz import objectives as _objectives
from interpkit.featureviz.param import ImageParam
from interpkit.featureviz.render import render
from interpkit.featureviz.transforms import jitter_crop


def channel_objective(acts: torch.Tensor, channel: int) -> torch.Tensor:
    """Mean activation of ``channel`` over the batch and all positions (scalar): ``acts[:, c].mean()``."""
    return _objectives.channel_activation(acts, channel)


def neuron_objective(acts: torch.Tensor, channel: int, y: int | None = None,
                     x: int | None = None) -> torch.Tensor:
    """Activation of ``channel`` at ``(y, x)`` averaged over the batch (scalar).

    ``y``, ``x`` default to the centre of the ``(h, w)`` map: ``h // 2``, ``w // 2``.
    """
    return _objectives.neuron_activation(acts, channel, y, x)


def deepdream_objective(acts: torch.Tensor) -> torch.Tensor:
    """Mean of the squared activations of the whole layer (scalar): ``(acts ** 2).mean()``."""
    return _objectives.mean_squared_activation(acts)


def jitter(image: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop ``(N, C, H - max_shift, W - max_shift)`` of ``image`` ``(N, C, H, W)``.

    One offset for the whole batch. Draw order (so that a seeded generator gives reproducible
    crops): first ``dy = torch.randint(0, max_shift + 1, (1,), generator=generator)``, then ``dx``
    the same way; both are uniform on ``{0, ..., max_shift}``, ends included. The result is
    ``image[:, :, dy:dy + H - max_shift, dx:dx + W - max_shift]`` (differentiable).
    """
    return jitter_crop(image, max_shift, generator)


def visualize(model: nn.Module, layer: nn.Module | str, objective: Callable[[torch.Tensor], torch.Tensor],
              image_param: ImageParam, transforms, steps: int, lr: float) -> np.ndarray:
    """Activation maximization: the first image of ``image_param`` after ``steps`` Adam steps.

    ``objective``: a callable ``acts -> scalar`` to maximize; ``image_param``: from
    :mod:`interpkit.featureviz.param` (optimized in place); ``transforms``: a callable
    ``images -> images`` (or the engine's ``(images, generator) -> images``), a list of them, or
    None, applied before every forward pass. Images are normalized with ImageNet's mean/std.
    Returns float32 ``(H, W, 3)`` in ``[0, 1]``. The model is left untouched (parameters, grads,
    mode, hooks).
    """
    return render(model, layer, objective, param=image_param, transforms=transforms, steps=steps,
                  lr=lr, seed=0, progress=False)[0]


def deepdream(model: nn.Module, layer: nn.Module | str, image: np.ndarray, steps: int = 10,
              step_size: float = 0.01, octaves: int = 4, octave_scale: float = 1.4) -> np.ndarray:
    """Classic DeepDream on ``image`` ``(H, W, 3)`` in ``[0, 1]`` -> float32 ``(H, W, 3)`` in ``[0, 1]``.

    Exactly the notebook's algorithm (the engine's, :mod:`interpkit.featureviz.deepdream`, without
    its random rolls): ``octaves`` sizes ``round(side / octave_scale ** i)``, smallest first, each
    octave starting from the photo resized there (bilinear, anti-aliased) plus the detail dreamed so
    far, ``steps`` steps of ``clip(x + step_size * g / (mean(|g|) + 1e-8), 0, 1)`` where ``g`` is the
    gradient of :func:`deepdream_objective` of the layer (ImageNet normalization), on the model's
    device.
    """
    return _engine_deepdream(model, layer, image, steps=steps, step_size=step_size, octaves=octaves,
                             octave_scale=octave_scale, jitter=0, objective=deepdream_objective,
                             progress=False)
