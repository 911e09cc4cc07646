"""Finding layers by name and capturing what flows through them.

``get_layer(model, "layer4.2.conv3")`` resolves a dotted name (with a clear error listing close
names); ``capture(layer)`` records the layer's output and, optionally, the gradient that reaches
it, and always removes its hooks, even when the forward pass fails.

``get_layer(model, "inception4c:pre_relu")`` is the layer's **pre-activation**: what its final
ReLU (ReLU6, ...) receives, Lucid's ``*_pre_relu`` tensors. Feature visualization maximizes these:
a channel after a ReLU6 can sit at 0 or at 6 on the starting image, where the gradient is zero and
the optimization never starts. :class:`PreActivation` knows where that tensor lives in the course's
architectures (an activation module's input; a conv block's batch norm; a residual block's sum
before its last ReLU; the concatenated branches of an Inception block) and ``capture`` records it.
"""
from __future__ import annotations

import difflib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn


PRE_RELU = ":pre_relu"


def get_layer(model: nn.Module, name: str) -> "nn.Module | PreActivation":
    """The sub-module of ``model`` called ``name`` (dotted, as in ``model.named_modules()``), or,
    for ``"<name>:pre_relu"``, that layer's :class:`PreActivation`.

    Raises a KeyError that lists the closest existing names when ``name`` does not exist.
    """
    if isinstance(name, str) and name.endswith(PRE_RELU):
        return PreActivation(model, name[: -len(PRE_RELU)])
    modules = dict(model.named_modules())
    if name in modules and name != "":
        return modules[name]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.5)
    hint = f" Closest names: {', '.join(close)}." if close else ""
    raise KeyError(
        f"{type(model).__name__} has no layer named {name!r}.{hint} "
        f"See [n for n, _ in model.named_modules()] for all {len(names)} names.")


def layer_name(model: nn.Module, layer: "nn.Module | PreActivation") -> str:
    """The dotted name of ``layer`` inside ``model`` (ValueError if it is not a sub-module)."""
    if isinstance(layer, PreActivation):
        return layer.name
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


#: Modules whose input is a pre-activation (their output is the activation).
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.GELU, nn.Hardswish, nn.Hardtanh)

#: Inception blocks of torchvision: in forward order, the conv block whose batch norm gives each
#: branch's pre-activation (``None``: a max-pool of the block's input, which has none: its
#: channels are kept as they are). The block's output concatenates the branches.
INCEPTION_BRANCHES = {
    "Inception": ("branch1", "branch2.1", "branch3.1", "branch4.1"),  # GoogLeNet
    "InceptionA": ("branch1x1", "branch5x5_2", "branch3x3dbl_3", "branch_pool"),
    "InceptionB": ("branch3x3", "branch3x3dbl_3", None),
    "InceptionC": ("branch1x1", "branch7x7_3", "branch7x7dbl_5", "branch_pool"),
    "InceptionD": ("branch3x3_2", "branch7x7x3_4", None),
    "InceptionE": ("branch1x1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_3a", "branch3x3dbl_3b",
                   "branch_pool"),
}


class PreActivation:
    """The pre-activation of the layer ``name`` of ``model``: a "virtual layer" for
    :func:`capture` and everything built on it (feature visualization, ``forward_to``).

    ``module`` is the layer itself; its pre-activation has the shape of its output. The hooks that
    record it hand the model a copy of the tensor they record, so that an in-place ReLU after them
    (torchvision's are) cannot overwrite it. A layer that does not end with an activation (a
    linear bottleneck, a convolution) has no pre-activation: its output already is one, and
    ``ValueError`` says to use its plain name.
    """

    def __init__(self, model: nn.Module, name: str):
        self.model = model
        self.name = f"{name}{PRE_RELU}"
        self.module = get_layer(model, name)
        self.kind, self.where = self._locate(self.module, name)

    @staticmethod
    def _locate(module: nn.Module, name: str) -> tuple[str, object]:
        while isinstance(module, nn.Sequential) and len(module):
            module = module[-1]
        kind = type(module).__name__
        if isinstance(module, ACTIVATIONS):
            return "input", module
        if kind == "BasicConv2d" and isinstance(getattr(module, "bn", None), nn.BatchNorm2d):
            return "output", module.bn
        if kind in ("BasicBlock", "Bottleneck") and isinstance(getattr(module, "relu", None), ACTIVATIONS):
            return "residual", module  # its relu is called last on the residual sum
        if kind in INCEPTION_BRANCHES:
            return "concat", (module, [None if b is None else get_layer(module, b).bn
                                       for b in INCEPTION_BRANCHES[kind]])
        raise ValueError(f"layer {name!r} ({kind}) does not end with an activation: its output "
                         f"already is a pre-activation; use {name!r} itself")

    def __repr__(self) -> str:
        return f"PreActivation({self.name!r})"

    def register_forward_hook(self, hook) -> "_Handles":
        """As ``nn.Module.register_forward_hook``: ``hook(module, inputs, pre_activation)`` after
        every forward pass through the layer (its return value is ignored); ``.remove()`` it."""
        return _Handles(self.hooks(lambda tensor: hook(self.module, (), tensor)))

    def hooks(self, store) -> list:
        """Register hooks that call ``store(tensor)`` with the pre-activation of every forward pass
        through the layer; return their handles."""
        if self.kind == "input":
            def before(module, args):
                copy = args[0].clone()
                store(args[0])
                return (copy, *args[1:])
            return [self.where.register_forward_pre_hook(before)]
        if self.kind == "output":
            def after(module, args, output):
                store(output)
                return output.clone()
            return [self.where.register_forward_hook(after)]
        if self.kind == "residual":
            last: list[torch.Tensor] = []

            def each_relu(module, args):
                last[:] = [args[0]]
                return (args[0].clone(), *args[1:])

            def block_done(module, args, output):
                store(last[0])
            return [self.where.relu.register_forward_pre_hook(each_relu),
                    self.where.register_forward_hook(block_done)]
        block, norms = self.where
        seen: dict[int, torch.Tensor] = {}

        def branch(module, args, output):
            seen[id(module)] = output
            return output.clone()

        def assemble(module, args, output):
            parts, start = [], 0
            known = sum(seen[id(n)].shape[1] for n in norms if n is not None)
            for norm in norms:
                width = seen[id(norm)].shape[1] if norm is not None else output.shape[1] - known
                parts.append(seen[id(norm)] if norm is not None else output[:, start:start + width])
                start += width
            store(torch.cat(parts, dim=1))
            seen.clear()

        return [n.register_forward_hook(branch) for n in norms if n is not None] + \
               [block.register_forward_hook(assemble)]


class _Handles:
    """Several hook handles removed as one (what :meth:`PreActivation.register_forward_hook` returns)."""

    def __init__(self, handles: list):
        self.handles = handles

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


@contextmanager
def capture(layer: "nn.Module | PreActivation", with_grad: bool = False) -> Iterator[Captured]:
    """Record ``layer``'s output (and its gradient) inside a ``with`` block; for a
    :class:`PreActivation`, the pre-activation.

    Example::

        with capture(get_layer(model, "layer4"), with_grad=True) as rec:
            model(x)[0, 281].backward()
        rec.output, rec.grad   # (1, 2048, 7, 7) each

    The hooks are removed when the block exits, whatever happens inside it.
    """
    rec = Captured()
    tensor_hooks = []

    def store(output):
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"capture() needs a layer whose output is a tensor; got {type(output).__name__}.")
        rec.output = output
        rec.calls += 1
        if with_grad and output.requires_grad:
            def on_grad(grad):
                rec.grad = grad
            tensor_hooks.append(output.register_hook(on_grad))

    if isinstance(layer, PreActivation):
        handles = layer.hooks(store)
    else:
        handles = [layer.register_forward_hook(lambda module, inputs, output: store(output))]
    try:
        yield rec
    finally:
        for handle in handles:
            handle.remove()
        for h in tensor_hooks:
            h.remove()
