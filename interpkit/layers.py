"""Finding layers by name and capturing what flows through them.

``get_layer(model, "layer4.2.conv3")`` resolves a dotted name (with a clear error listing close
names); ``capture(layer)`` records the layer's output and, optionally, the gradient that reaches
it, and always removes its hooks, even when the forward pass fails.
"""
from __future__ import annotations

import difflib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The sub-module of ``model`` called ``name`` (dotted, as in ``model.named_modules()``).

    Raises a KeyError that lists the closest existing names when ``name`` does not exist.
    """
    modules = dict(model.named_modules())
    if name in modules and name != "":
        return modules[name]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.5)
    hint = f" Closest names: {', '.join(close)}." if close else ""
    raise KeyError(
        f"{type(model).__name__} has no layer named {name!r}.{hint} "
        f"See [n for n, _ in model.named_modules()] for all {len(names)} names.")


def layer_name(model: nn.Module, layer: nn.Module) -> str:
    """The dotted name of ``layer`` inside ``model`` (ValueError if it is not a sub-module)."""
    for name, module in model.named_modules():
        if module is layer:
            return name
    raise ValueError(f"{type(layer).__name__} is not a sub-module of {type(model).__name__}.")


@dataclass
class Captured:
    """What :func:`capture` recorded. ``output``: the layer's output of the last forward pass
    (kept in the autograd graph); ``grad``: d(whatever was differentiated)/d(output), filled by a
    backward pass when ``with_grad=True``; ``calls``: how many times the layer ran."""

    output: torch.Tensor | None = None
    grad: torch.Tensor | None = None
    calls: int = 0


@contextmanager
def capture(layer: nn.Module, with_grad: bool = False) -> Iterator[Captured]:
    """Record ``layer``'s output (and its gradient) inside a ``with`` block.

    Example::

        with capture(get_layer(model, "layer4"), with_grad=True) as rec:
            model(x)[0, 281].backward()
        rec.output, rec.grad   # (1, 2048, 7, 7) each

    The hooks are removed when the block exits, whatever happens inside it.
    """
    rec = Captured()
    tensor_hooks = []

    def on_forward(module, inputs, output):
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"capture() needs a layer whose output is a tensor; "
                            f"{type(module).__name__} returned {type(output).__name__}.")
        rec.output = output
        rec.calls += 1
        if with_grad and output.requires_grad:
            def on_grad(grad):
                rec.grad = grad
            tensor_hooks.append(output.register_hook(on_grad))

    handle = layer.register_forward_hook(on_forward)
    try:
        yield rec
    finally:
        handle.remove()
        for h in tensor_hooks:
            h.remove()
