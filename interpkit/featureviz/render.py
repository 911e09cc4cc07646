"""Activation maximization: optimize an image parameterization so that a layer responds strongly.

Each step (as in Lucid's ``render_vis``): images = ``param()`` -> random ``transforms`` ->
normalization for the model -> forward pass up to ``layer`` -> ``objective(acts)`` -> its gradient
with respect to the image parameters only -> one Adam step that increases the objective.

- :func:`render`: one objective, returns the final images ``(N, H, W, 3)`` in ``[0, 1]``;
- :func:`render_layer`: many channels of a layer at once, image ``i`` for ``channels[i]``, as one
  batch (far faster per image than one call per channel);
- :func:`visualize_steps`: snapshots of the images after given numbers of steps.

The model is never modified: while rendering it runs in eval mode (so batch-norm statistics do not
move) and each module's train/eval flag is restored afterwards; gradients are taken with
``torch.autograd.grad`` with respect to the image parameters only, so no parameter's ``.grad`` or
``requires_grad`` is touched; the temporary hooks are removed whatever happens. The forward pass
stops as soon as ``layer`` has produced its output (the layers above it are not run).
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..devices import model_device
from ..images import normalize as normalize_for_model
from ..layers import PreActivation, capture, get_layer
from ..models import IMAGENET_MEAN, IMAGENET_STD
from ..settings import is_grading
from .objectives import as_objective, channels_per_image
from .param import ImageParam, Size, fft_image
from .transforms import STANDARD_TRANSFORMS, as_transform

Normalizer = Callable[[torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- shared machinery
class _StopForward(Exception):
    """Raised by a forward hook once the target layer has run: the rest of the model is skipped."""


def resolve_layer(model: nn.Module, layer: nn.Module | PreActivation | str) -> nn.Module | PreActivation:
    """``layer`` as a sub-module of ``model`` or the pre-activation of one (a dotted name, with
    ``":pre_relu"`` for the latter, is looked up with ``get_layer``)."""
    if isinstance(layer, str):
        return get_layer(model, layer)
    if isinstance(layer, PreActivation):
        if not any(m is layer.module for m in model.modules()):
            raise ValueError(f"{layer!r} belongs to another model")
        return layer
    if not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be an nn.Module inside the model or its dotted name; "
                        f"got {type(layer).__name__}")
    if layer is model:
        raise ValueError("layer must be a layer inside the model, not the model itself")
    if not any(m is layer for m in model.modules()):
        raise ValueError(f"layer ({type(layer).__name__}) is not a sub-module of the model; "
                         "get it with interpkit.get_layer(model, name).")
    return layer


def make_normalizer(model_name: str | None = None, normalize: Normalizer | None = None) -> Normalizer:
    """How ``[0, 1]`` images become model inputs.

    ``normalize`` (a callable on ``(N, 3, H, W)``) wins; else ``model_name`` uses that registry
    model's mean/std (:func:`interpkit.images.normalize`); else ImageNet's mean/std, which every
    model of the registry uses.
    """
    if normalize is not None and model_name is not None:
        raise ValueError("pass model_name or normalize, not both")
    if normalize is not None:
        if not callable(normalize):
            raise TypeError(f"normalize must be a callable on (N, 3, H, W) images; got {type(normalize).__name__}")
        return normalize
    if model_name is not None:
        return lambda images: normalize_for_model(images, model_name)

    def imagenet(images: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return (images - mean) / std

    return imagenet


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode inside the block; every module's own flag is restored after it."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in flags:
            module.training = training


def forward_to(model: nn.Module, layer: nn.Module | PreActivation, inputs: torch.Tensor) -> torch.Tensor:
    """``layer``'s output (or pre-activation) for ``inputs``, recorded with
    :func:`interpkit.layers.capture`.

    The forward pass stops right after the layer's first call (a hook raises a private exception
    that is caught here), so nothing above the layer costs time. All hooks are removed on exit.
    """
    def stop(module, args, output):
        raise _StopForward

    module = layer.module if isinstance(layer, PreActivation) else layer
    with capture(layer) as record:
        handle = module.register_forward_hook(stop)  # runs after capture's hooks
        try:
            model(inputs)
        except _StopForward:
            pass
        finally:
            handle.remove()
    if record.output is None:
        raise RuntimeError(f"the layer ({type(layer).__name__}) was not used by the model's forward pass")
    return record.output


def _check_objective_value(value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"the objective must return a scalar tensor (one number); got {got}")
    if not value.requires_grad:
        raise ValueError("the objective's value does not depend on the activations it was given "
                         "(did you call .item(), .detach() or numpy on them?)")
    return value.reshape(())


def _check_images(images, param) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{type(param).__name__}() must return images (N, 3, H, W); got {got}")
    return images


def _progress_bar(total: int, progress: bool, desc: str):
    return tqdm(total=total, desc=desc, disable=not progress or is_grading(), file=sys.stderr,
                leave=False, mininterval=0.5)


def _snapshot(param: ImageParam) -> np.ndarray:
    with torch.no_grad():
        images = _check_images(param(), param)
        return images.detach().permute(0, 2, 3, 1).contiguous().cpu().numpy().astype(np.float32)


def optimize(model: nn.Module, layer: nn.Module | str, objective, param: ImageParam,
             transforms=STANDARD_TRANSFORMS, steps: int = 512, lr: float = 0.05,
             normalize: Normalizer | None = None, generator: torch.Generator | None = None,
             progress: bool = True, record_at: Iterable[int] = (), desc: str = "render"
             ) -> dict[int, np.ndarray]:
    """The optimization loop shared by :func:`render`, :func:`render_layer`, :func:`visualize_steps`.

    Runs ``steps`` Adam steps on ``param.parameters()`` (in place) and returns
    ``{t: images after t steps}`` (each ``(N, H, W, 3)`` float32 in ``[0, 1]``) for every ``t`` in
    ``record_at`` and for ``t = steps``.
    """
    if torch.is_inference_mode_enabled():
        raise RuntimeError("feature visualization needs gradients: call it outside torch.inference_mode()")
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"steps must be >= 0; got {steps}")
    record = {int(t) for t in record_at} | {steps}
    if min(record) < 0 or max(record) > steps:
        raise ValueError(f"record_at must lie in [0, steps={steps}]; got {sorted(record)}")
    layer = resolve_layer(model, layer)
    objective = as_objective(objective)
    transform = as_transform(transforms)
    normalize = normalize or make_normalizer()
    device = model_device(model)
    if param.device != device:
        param.to(device)
    params = list(param.parameters())
    if not params or not all(p.is_leaf and p.requires_grad for p in params):
        raise ValueError("param.parameters() must be leaf tensors with requires_grad=True")
    optimizer = torch.optim.Adam(params, lr=lr)
    snapshots: dict[int, np.ndarray] = {}
    bar = _progress_bar(steps, progress, desc)
    try:
        with eval_mode(model), torch.enable_grad():
            for step in range(steps + 1):
                if step in record:
                    snapshots[step] = _snapshot(param)
                if step == steps:
                    break
                images = _check_images(param(), param)
                acts = forward_to(model, layer, normalize(transform(images, generator)))
                value = _check_objective_value(objective(acts))
                grads = torch.autograd.grad(-value, params)
                for p, g in zip(params, grads):
                    p.grad = g
                optimizer.step()
                bar.update(1)
                if not bar.disable and (step % 16 == 0 or step == steps - 1):  # .item() syncs a GPU
                    bar.set_postfix(objective=f"{value.item():.3g}", refresh=False)
    finally:
        bar.close()
        for p in params:
            p.grad = None
    return snapshots


def _generator(seed: int | None) -> torch.Generator:
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(int(seed))
    return generator


# --------------------------------------------------------------------------- public API
def render(model: nn.Module, layer: nn.Module | str, objective, param: ImageParam | None = None,
           transforms=STANDARD_TRANSFORMS, steps: int = 512, lr: float = 0.05,
           model_name: str | None = None, normalize: Normalizer | None = None, seed: int | None = 0,
           progress: bool = True, size: Size = 128) -> np.ndarray:
    """Maximize ``objective(acts of layer)`` by gradient ascent on an image; return the images.

    Args:
        model: the network (left untouched, see the module docstring).
        layer: a module inside ``model``, or its dotted name (``"inception4c"``).
        objective: a callable ``acts (N, C, h, w) -> scalar`` to maximize (an
            :class:`~interpkit.featureviz.objectives.Objective` or any plain function).
        param: an image parameterization (optimized in place); default
            ``fft_image(size)`` drawn from the seeded generator.
        transforms: a ``(images, generator) -> images`` callable, a list of them, or None.
        steps, lr: number of Adam steps and its learning rate (Lucid: 512, 0.05).
        model_name / normalize: how images in ``[0, 1]`` are normalized for the model (see
            :func:`make_normalizer`; default ImageNet mean/std).
        seed: seeds the generator used for the default parameterization and every random transform
            (``None``: a fresh random seed).
        progress: show a tqdm bar (never while nbgrader grades: no stderr output then).
        size: side or ``(H, W)`` of the default parameterization.

    Returns:
        float32 array ``(N, H, W, 3)`` in ``[0, 1]``: ``param()`` after the last step (untransformed).
    """
    generator = _generator(seed)
    param = fft_image(size, generator=generator, device=model_device(model)) if param is None else param
    snapshots = optimize(model, layer, objective, param, transforms, steps, lr,
                         make_normalizer(model_name, normalize), generator, progress,
                         desc=f"render {getattr(objective, 'name', 'objective')}")
    return snapshots[int(steps)]


def visualize_steps(model: nn.Module, layer: nn.Module | str, objective,
                    thresholds: Sequence[int] = (0, 16, 64, 256), param: ImageParam | None = None,
                    transforms=STANDARD_TRANSFORMS, lr: float = 0.05, model_name: str | None = None,
                    normalize: Normalizer | None = None, seed: int | None = 0, progress: bool = True,
                    size: Size = 128) -> dict[int, np.ndarray]:
    """Like :func:`render` with ``steps = max(thresholds)``, returning ``{t: images after t steps}``.

    ``t = 0`` is the initial noise. Each value is ``(N, H, W, 3)`` float32 in ``[0, 1]``; one
    optimization run serves all thresholds (the figure "one channel from noise over the steps").
    """
    thresholds = sorted({int(t) for t in thresholds})
    if not thresholds:
        raise ValueError("thresholds must name at least one step")
    generator = _generator(seed)
    param = fft_image(size, generator=generator, device=model_device(model)) if param is None else param
    snapshots = optimize(model, layer, objective, param, transforms, thresholds[-1], lr,
                         make_normalizer(model_name, normalize), generator, progress,
                         record_at=thresholds, desc="visualize_steps")
    return {t: snapshots[t] for t in thresholds}


def render_layer(model: nn.Module, layer: nn.Module | str, channels: int | Sequence[int],
                 size: Size = 128, steps: int = 512, lr: float = 0.05,
                 transforms=STANDARD_TRANSFORMS, batch_size: int | None = None,
                 model_name: str | None = None, normalize: Normalizer | None = None,
                 seed: int | None = 0, progress: bool = True, neuron: bool = False,
                 param_fn: Callable[[int, torch.Generator], ImageParam] | None = None) -> np.ndarray:
    """One image per channel of ``layer``, optimized together as one batch.

    ``channels``: a list of channel indices, or an int ``n`` for the first ``n`` channels. Image
    ``i`` maximizes the mean of channel ``channels[i]`` (its centre neuron when ``neuron=True``):
    the per-image objective ``sum_i channel(channels[i]).batch(i)``. Images of a batch do not
    interact (eval mode, per-element Adam): each evolves exactly as it would alone from the same
    initial values and transform draws. On a GPU the batch is much faster than one call per
    channel; on a CPU the gain is small (compute-bound) and chunks of 4-16 beat one huge batch.
    ``batch_size`` splits long channel lists into batches of that many (None: all at once).
    ``param_fn(n, generator)`` makes the parameterization of a batch of ``n`` (default
    ``fft_image(size, batch=n)``). Returns float32 ``(len(channels), H, W, 3)`` in ``[0, 1]``.
    """
    channel_list = list(range(channels)) if isinstance(channels, (int, np.integer)) else [int(c) for c in channels]
    if not channel_list:
        raise ValueError("channels is empty")
    batch_size = len(channel_list) if batch_size is None else int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    generator = _generator(seed)
    device = model_device(model)
    make_param = param_fn or (lambda n, gen: fft_image(size, batch=n, generator=gen, device=device))
    normalizer = make_normalizer(model_name, normalize)
    outputs = []
    for start in range(0, len(channel_list), batch_size):
        chunk = channel_list[start:start + batch_size]
        param = make_param(len(chunk), generator)
        snapshots = optimize(model, layer, channels_per_image(chunk, neuron=neuron), param, transforms,
                             steps, lr, normalizer, generator, progress,
                             desc=f"render_layer {start + len(chunk)}/{len(channel_list)}")
        outputs.append(snapshots[int(steps)])
    return np.concatenate(outputs, axis=0)


__all__ = ["eval_mode", "forward_to", "make_normalizer", "optimize", "render", "render_layer",
           "resolve_layer", "visualize_steps"]
