"""Snapshot a model, list what a student's function changed in it, and put it back.

Graded functions must leave the model exactly as they found it: parameter and buffer values,
``requires_grad`` flags, each module's train/eval mode, and the hooks registered on it.
Parameter ``.grad`` fields may be filled by a hooks + backward implementation (that is allowed
unless ``grads=True``); they are restored anyway so that cases do not leak into each other.

While autograding, the student's function runs in their kernel and what it changed there is
copied onto the grader's model (:mod:`autograder.remote`) before :func:`differences` looks.

Values are compared, not version counters: BatchNorm's running statistics and writes through
``.data`` change a tensor without bumping its version. :func:`restore` writes only what changed
(so an untouched model keeps its version counters, and the kernel's copy of it stays valid), and
:func:`snapshot` reuses the copy it took while the model's storage, version counters, flags and
hooks are as it left them (restore always puts the values back, so the copy stays exact).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
GLOBAL_HOOK_DICTS = ("_global_forward_hooks", "_global_forward_pre_hooks",
                     "_global_backward_hooks", "_global_backward_pre_hooks")


def _global_hooks() -> dict[str, tuple]:
    module = torch.nn.modules.module
    return {name: tuple(getattr(module, name, {}).keys()) for name in GLOBAL_HOOK_DICTS}


@dataclass
class ModelState:
    params: dict[str, torch.Tensor]
    grads: dict[str, torch.Tensor | None]
    requires_grad: dict[str, bool]
    buffers: dict[str, torch.Tensor]
    training: dict[str, bool]
    hooks: dict[tuple[str, str], tuple]
    global_hooks: dict[str, tuple]


def _fingerprint(model: nn.Module) -> tuple:
    return (tuple((id(p), p.data_ptr(), p._version, p.requires_grad, None if p.grad is None else id(p.grad))
                  for p in model.parameters()),
            tuple((id(b), b.data_ptr(), b._version) for b in model.buffers()),
            tuple((m.training, *(tuple(getattr(m, d).keys()) for d in HOOK_DICTS)) for m in model.modules()))


_SNAPSHOTS: dict[int, tuple[nn.Module, tuple, "ModelState"]] = {}


def snapshot(model: nn.Module) -> ModelState:
    """The model's state now (the copy is reused while nothing moved since the last restore)."""
    key = _fingerprint(model)
    cached = _SNAPSHOTS.get(id(model))
    if cached is not None and cached[0] is model and cached[1] == key:
        cached[2].global_hooks = _global_hooks()
        return cached[2]
    state = _take(model)
    _SNAPSHOTS[id(model)] = (model, key, state)
    return state


def _take(model: nn.Module) -> ModelState:
    params = dict(model.named_parameters())
    return ModelState(
        params={n: p.detach().clone() for n, p in params.items()},
        grads={n: None if p.grad is None else p.grad.detach().clone() for n, p in params.items()},
        requires_grad={n: p.requires_grad for n, p in params.items()},
        buffers={n: b.detach().clone() for n, b in model.named_buffers()},
        training={n: m.training for n, m in model.named_modules()},
        hooks={(n, d): tuple(getattr(m, d).keys()) for n, m in model.named_modules() for d in HOOK_DICTS},
        global_hooks=_global_hooks(),
    )


def _names(items, limit: int = 3) -> str:
    items = list(items)
    shown = ", ".join(repr(i or "<model>") for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _moved(tensors: dict[str, torch.Tensor], saved: dict[str, torch.Tensor]) -> list[str]:
    return [n for n, t in tensors.items() if n in saved and
            (t.shape != saved[n].shape or not torch.equal(t.detach(), saved[n]))]


def differences(model: nn.Module, state: ModelState, grads: bool = False) -> list[str]:
    """Human-readable list of what changed since ``state`` (empty: nothing changed).

    ``grads=True`` also requires every parameter's ``.grad`` to be as it was."""
    found = []
    params = dict(model.named_parameters())
    if grads:
        touched = [n for n, p in params.items() if n in state.grads and not (
            (p.grad is None and state.grads[n] is None) or
            (p.grad is not None and state.grads[n] is not None and torch.equal(p.grad, state.grads[n])))]
        if touched:
            found.append(f"parameter gradients (.grad) changed on {_names(touched)} (differentiate with "
                         "torch.autograd.grad w.r.t. the image only, or restore the model's .grad)")
    if set(params) != set(state.params):
        found.append("the model's set of parameters changed")
    changed = _moved(params, state.params)
    if changed:
        found.append(f"parameter values changed: {_names(changed)} (never step an optimizer "
                     "or write into the weights)")
    flipped = [n for n, p in params.items() if state.requires_grad.get(n, p.requires_grad) != p.requires_grad]
    if flipped:
        found.append(f"requires_grad changed on {_names(flipped)} (restore it if you switch it)")
    moved = _moved(dict(model.named_buffers()), state.buffers)
    if moved:
        found.append(f"buffers changed: {_names(moved)} (e.g. BatchNorm statistics updated in train mode)")
    modes = [n for n, m in model.named_modules() if state.training.get(n, m.training) != m.training]
    if modes:
        found.append(f"train/eval mode changed on {_names(modes)} (e.g. model.train() or model.eval() "
                     "without restoring the mode you found)")
    hooked = [f"{n or '<model>'}.{d}" for n, m in model.named_modules() for d in HOOK_DICTS
              if tuple(getattr(m, d).keys()) != state.hooks.get((n, d), ())]
    if hooked:
        found.append(f"hooks left registered on {_names(hooked)} (call handle.remove(), e.g. in a "
                     "finally: block)")
    if _global_hooks() != state.global_hooks:
        found.append("global module hooks left registered")
    return found


def restore(model: nn.Module, state: ModelState) -> None:
    """Put ``model`` back exactly as in ``state`` (values, flags, modes, grads, hooks), writing
    only what changed."""
    with torch.no_grad():
        for n in _moved(dict(model.named_parameters()), state.params):
            p = model.get_parameter(n)
            if p.shape == state.params[n].shape:
                p.copy_(state.params[n])
        for n, p in model.named_parameters():
            p.requires_grad_(state.requires_grad.get(n, p.requires_grad))
            saved = state.grads.get(n)
            if saved is None:
                p.grad = None
            elif p.grad is None or not torch.equal(p.grad, saved):
                p.grad = saved.clone()
        for n in _moved(dict(model.named_buffers()), state.buffers):
            b = model.get_buffer(n)
            if b.shape == state.buffers[n].shape:
                b.copy_(state.buffers[n])
    for n, m in model.named_modules():
        m.training = state.training.get(n, m.training)
        for d in HOOK_DICTS:
            hooks = getattr(m, d)
            for key in [k for k in hooks if k not in state.hooks.get((n, d), ())]:
                del hooks[key]
    module = torch.nn.modules.module
    for name, keys in state.global_hooks.items():
        hooks = getattr(module, name, {})
        for key in [k for k in hooks if k not in keys]:
            del hooks[key]
    _SNAPSHOTS[id(model)] = (model, _fingerprint(model), state)
