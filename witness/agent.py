"""Calling a notebook's function and describing what happened, as plain data.

:func:`observe` is the one place where a graded function is called. It runs in the student's
kernel during autograding (through :class:`Agent`, the kernel's ``interp.witness`` comm target,
see :mod:`witness.kernel`) and in-process when an instructor runs a source notebook. It returns
an *observation*, encoded with :mod:`witness.codec`:

- ``value``: what the function returned (or ``None``), ``error``: what it raised, as strings
  (``type``, ``message``, ``where``: the line of the notebook cell), ``seconds``;
- ``grads``: for each argument index in ``grads_wrt``, the gradient of ``value.sum()`` with
  respect to that (tensor) argument, ``None`` where there is none;
- ``changes``: what the call changed in its arguments: for an ``nn.Module``, the parameters and
  buffers written, ``.grad`` fields set, ``requires_grad`` flags and train/eval modes flipped,
  hooks added, parameters or modules added or removed; for a tensor or array, its new value;
  for a ``torch.Generator``, its new state;
- ``notes``: facts about the process (global module hooks left registered);
- ``module``: how a returned ``nn.Module`` travels back (a module is no plain data): as the
  argument it *is* (``{"arg", "sub"}``: the grader hands back its own object), or, when it has
  exactly the structure of a module argument (a modified copy, e.g. ``copy.deepcopy(model)``
  with some layers re-initialized), as that argument's copy with these tensors, modes and flags
  (``{"like", "state", "training", "requires_grad"}``: the grader rebuilds it from its own
  object); ``None`` otherwise (the value then travels as its type name only).

Everything here is testimony: the kernel belongs to the student, who can change this module's
behaviour. The grader validates every field and only ever compares what it gets with its own
reference; nothing in this package can award a point.
"""
from __future__ import annotations

import contextlib
import io
import pickle
import sys
import time
import traceback
import warnings
from typing import Any, Callable, Iterable

import numpy as np

from . import codec

COMM_TARGET = "interp.witness"
HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
GLOBAL_HOOK_DICTS = ("_global_forward_hooks", "_global_forward_pre_hooks",
                     "_global_backward_hooks", "_global_backward_pre_hooks")
_MESSAGE_LIMIT = 2000


# ------------------------------------------------------------------------------ errors
def describe_error(err: BaseException) -> dict[str, str]:
    """``type``, ``message`` and ``where`` (the innermost line of notebook code) of ``err``."""
    where = ""
    for frame in reversed(traceback.extract_tb(err.__traceback__)):
        name = frame.filename
        if name.startswith("<") or "ipykernel" in name or "/tmp/ipykernel_" in name:
            if frame.line:
                where = f"line {frame.lineno} of your cell: {frame.line!r}"
            break
    message = str(err)
    return {"type": type(err).__name__[:100], "message": message[:_MESSAGE_LIMIT], "where": where[:500]}


# ------------------------------------------------------------------------------ argument changes
def _torch():
    return sys.modules.get("torch")


def _is_module(value) -> bool:
    torch = _torch()
    return torch is not None and isinstance(value, torch.nn.Module)


def _tensors(module) -> dict:
    """Parameters and buffers by name (their names never collide)."""
    found = dict(module.named_buffers())
    found.update(module.named_parameters())
    return {n: t for n, t in found.items() if t is not None}


def pristine(module) -> dict:
    """What :class:`_ModuleState` compares with and :func:`restore_module` puts back: values,
    ``.grad`` fields, flags, modes and hook keys of ``module`` now."""
    return {"values": {n: t.detach().clone() for n, t in _tensors(module).items()},
            "grads": {n: None if p.grad is None else p.grad.detach().clone() for n, p in module.named_parameters()},
            "requires_grad": {n: p.requires_grad for n, p in module.named_parameters()},
            "training": {n: m.training for n, m in module.named_modules()},
            "hooks": {(n, d): set(getattr(m, d, {})) for n, m in module.named_modules() for d in HOOK_DICTS},
            "structure": _structure(module)}


def _structure(module) -> tuple:
    return (tuple(n for n, _ in module.named_parameters()), tuple(n for n, _ in module.named_buffers()),
            tuple(n for n, _ in module.named_modules()))


def _same(a, b) -> bool:
    torch = _torch()
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)


class _ModuleState:
    """Compares a module with its state before the call, by value (BatchNorm statistics and
    writes through ``.data`` do not bump version counters)."""

    def __init__(self, module, before: dict | None = None):
        self.module = module
        self.before = before or pristine(module)

    def changes(self) -> dict:
        m, before = self.module, self.before
        out: dict[str, Any] = {"kind": "module"}
        if _structure(m) != before["structure"]:
            out["structure"] = True
        values = {n: t.detach() for n, t in _tensors(m).items()
                  if n in before["values"] and not _same(t.detach(), before["values"][n])}
        if values:
            out["values"] = values
        params = dict(m.named_parameters())
        grads = {n: (None if p.grad is None else p.grad.detach()) for n, p in params.items()
                 if n in before["grads"] and not _same(None if p.grad is None else p.grad.detach(), before["grads"][n])}
        if grads:
            out["grads"] = grads
        flags = {n: p.requires_grad for n, p in params.items()
                 if before["requires_grad"].get(n, p.requires_grad) != p.requires_grad}
        if flags:
            out["requires_grad"] = flags
        modes = {n: mod.training for n, mod in m.named_modules() if before["training"].get(n, mod.training) != mod.training}
        if modes:
            out["training"] = modes
        hooks = {}
        for n, mod in m.named_modules():
            added = {d: len(set(getattr(mod, d, {})) - before["hooks"].get((n, d), set())) for d in HOOK_DICTS}
            added = {d: k for d, k in added.items() if k}
            if added:
                hooks[n] = added
        if hooks:
            out["hooks"] = hooks
        return out


def restore_module(module, before: dict) -> None:
    """Put a module back as :func:`pristine` recorded it (only what changed is written)."""
    torch = _torch()
    tensors = _tensors(module)
    with torch.no_grad():
        for n, saved in before["values"].items():
            t = tensors.get(n)
            if t is not None and t.shape == saved.shape and not _same(t.detach(), saved):
                t.copy_(saved)
    for n, p in module.named_parameters():
        if n in before["requires_grad"]:
            p.requires_grad_(before["requires_grad"][n])
        saved = before["grads"].get(n)
        p.grad = None if saved is None else saved.clone()
    for n, mod in module.named_modules():
        mod.training = before["training"].get(n, mod.training)
        for d in HOOK_DICTS:
            hooks = getattr(mod, d, None)
            if hooks is not None:
                for key in [k for k in hooks if k not in before["hooks"].get((n, d), set())]:
                    del hooks[key]


class _TensorState:
    def __init__(self, tensor):
        self.tensor = tensor
        self.value = tensor.detach().clone()
        self.grad = None if tensor.grad is None else tensor.grad.detach().clone()

    def changes(self) -> dict:
        out: dict[str, Any] = {"kind": "tensor"}
        t = self.tensor
        if not _same(t.detach(), self.value):
            out["value"] = t.detach()
        grad = None if t.grad is None else t.grad.detach()
        if not _same(grad, self.grad):
            out["grad"] = grad
        return out


class _ArrayState:
    def __init__(self, array: np.ndarray):
        self.array = array
        self.copy = array.copy()

    def changes(self) -> dict:
        same = self.array.shape == self.copy.shape and np.array_equal(self.array, self.copy, equal_nan=True)
        return {"kind": "ndarray"} if same else {"kind": "ndarray", "value": self.array.copy()}


class _GeneratorState:
    def __init__(self, generator):
        self.generator = generator
        self.state = generator.get_state().clone()

    def changes(self) -> dict:
        torch = _torch()
        now = self.generator.get_state()
        return {"kind": "generator"} if torch.equal(now, self.state) else {"kind": "generator", "state": now}


def _tracker(value, baselines: dict):
    torch = _torch()
    if _is_module(value):
        return _ModuleState(value, baselines.get(id(value)))
    if torch is not None and isinstance(value, torch.Tensor):
        return _TensorState(value)
    if isinstance(value, np.ndarray):
        return _ArrayState(value)
    if torch is not None and isinstance(value, torch.Generator):
        return _GeneratorState(value)
    return None


def _arguments(args: tuple, kwargs: dict) -> list[tuple[int | str, Any]]:
    """The arguments whose changes are reported; a module that is a sub-module of another module
    argument (the ``layer`` of a ``model``) is reported through the larger one only."""
    items = list(enumerate(args)) + list(kwargs.items())
    modules = [v for _, v in items if _is_module(v)]
    inside = {id(sub) for m in modules for sub in m.modules() if sub is not m}
    return [(k, v) for k, v in items if not (_is_module(v) and id(v) in inside)]


def _global_hooks() -> dict[str, int]:
    torch = _torch()
    if torch is None:
        return {}
    module = torch.nn.modules.module
    return {name: len(getattr(module, name, {})) for name in GLOBAL_HOOK_DICTS}


# ------------------------------------------------------------------------------ returned modules
def _signature(module) -> tuple:
    """What makes two modules interchangeable for :func:`returned_module`: every sub-module's
    name and type, every tensor's name, shape and dtype."""
    return (tuple((n, type(m).__module__, type(m).__qualname__) for n, m in module.named_modules()),
            tuple((n, tuple(t.shape), str(t.dtype)) for n, t in _tensors(module).items()))


def returned_module(value, args: tuple, kwargs: dict) -> dict | None:
    """How the module ``value`` returned by a call travels back (see the module docstring), or
    None when it is neither one of the module arguments (or inside one) nor shaped like one."""
    modules = [(k, v) for k, v in _arguments(args, kwargs) if _is_module(v)]
    for key, arg in modules:
        for name, sub in arg.named_modules():
            if sub is value:
                return {"arg": key, "sub": name}
    signature = _signature(value)
    for key, arg in modules:
        if _signature(arg) == signature:
            return {"like": key,
                    "state": {n: t.detach() for n, t in _tensors(value).items()},
                    "training": {n: m.training for n, m in value.named_modules()},
                    "requires_grad": {n: p.requires_grad for n, p in value.named_parameters()}}
    return None


# ------------------------------------------------------------------------------ observe
def _gradients(value, args: tuple, kwargs: dict, grads_wrt: Iterable[int | str]) -> list:
    torch = _torch()
    wanted = [args[k] if isinstance(k, int) else kwargs.get(k) for k in grads_wrt]
    if torch is None or not isinstance(value, torch.Tensor) or not value.requires_grad:
        return [None for _ in wanted]
    inputs = [w for w in wanted if isinstance(w, torch.Tensor) and w.requires_grad]
    if not inputs:
        return [None for _ in wanted]
    found = torch.autograd.grad(value.sum(), inputs, allow_unused=True)
    by_id = {id(t): g for t, g in zip(inputs, found)}
    return [None if g is None else g.detach() for g in (by_id.get(id(w)) for w in wanted)]


def observe(fn: Callable, args: tuple = (), kwargs: dict | None = None,
            grads_wrt: Iterable[int | str] = (), baselines: dict | None = None) -> tuple[dict, list[bytes]]:
    """Call ``fn(*args, **kwargs)`` and return the encoded observation (see the module docstring).

    ``baselines``: ``{id(module): pristine(module)}`` recorded earlier for modules kept between
    calls (saves copying them again). Never raises for anything the function does
    (``SystemExit`` included); stdout, stderr and warnings written during the call are discarded."""
    return codec.encode(_observe(fn, args, kwargs, grads_wrt, baselines))


def _observe(fn: Callable, args: tuple, kwargs: dict | None, grads_wrt: Iterable[int | str],
             baselines: dict | None) -> dict:
    """The observation of :func:`observe`, not yet encoded."""
    kwargs = dict(kwargs or {})
    grads_wrt = list(grads_wrt)
    baselines = baselines or {}
    trackers = [(k, t) for k, t in ((k, _tracker(v, baselines)) for k, v in _arguments(args, kwargs))
                if t is not None]
    hooks_before = _global_hooks()
    observation: dict[str, Any] = {"value": None, "error": None, "grads": None, "module": None}
    sink = io.StringIO()
    start = time.perf_counter()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        try:
            value = fn(*args, **kwargs)
            observation["value"] = value
            if grads_wrt:
                observation["grads"] = _gradients(value, args, kwargs, grads_wrt)
            if _is_module(value):
                observation["module"] = returned_module(value, args, kwargs)
                if observation["module"] is not None:
                    observation["value"] = None
        except BaseException as err:  # noqa: BLE001 - SystemExit and interrupts are outcomes too
            observation["error"] = describe_error(err)
    observation["seconds"] = time.perf_counter() - start
    observation["changes"] = [dict(arg=k, **change) for k, change in ((k, t.changes()) for k, t in trackers)
                              if len(change) > 1]
    notes = []
    if _global_hooks() != hooks_before:
        notes.append("global module hooks were registered or removed and left that way")
    observation["notes"] = notes
    return observation


def describe(names: Iterable[str], namespace: dict) -> tuple[dict, list[bytes]]:
    """``{name: {"kind": ..., "type": ..., "value": ...}}`` for ``names`` in ``namespace``:
    ``missing``, ``callable`` (called later by name), ``data`` (the value itself, plain data
    only) or ``other`` (neither)."""
    found: dict[str, Any] = {}
    for name in names:
        if name not in namespace:
            found[name] = {"kind": "missing"}
            continue
        value = namespace[name]
        type_name = f"{type(value).__module__}.{type(value).__qualname__}"[:200]
        if callable(value):
            found[name] = {"kind": "callable", "type": type_name}
        elif codec.is_plain(value):
            found[name] = {"kind": "data", "type": type_name, "value": value}
        else:
            found[name] = {"kind": "other", "type": type_name}
    return codec.encode(found)


# ------------------------------------------------------------------------------ the kernel's agent
HANDLE_TAG = "witness-handle"


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, handles: dict):
        super().__init__(io.BytesIO(data))
        self.handles = handles

    def persistent_load(self, pid):
        tag, handle, sub = pid
        if tag != HANDLE_TAG or handle not in self.handles:
            raise pickle.UnpicklingError(f"unknown object handle {pid!r}")
        module = self.handles[handle]
        return module.get_submodule(sub) if sub else module


class _UserFunction:
    """Stands for a notebook function by name: unpickled in the kernel, it calls whatever the name
    is bound to in the notebook's namespace at call time."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        return AGENT.namespace()[self.name](*args, **kwargs)


def user_function(name: str) -> _UserFunction:
    """What a grader-side proxy of a notebook function unpickles to in the kernel."""
    return _UserFunction(name)


class Agent:
    """The kernel's side of the channel: one comm, requests in, observations out.

    Requests (``data`` of a ``comm_msg``): ``{"op": "describe", "names": [...]}`` and
    ``{"op": "call", "name": ..., "grads_wrt": [...], "keep": [[arg, handle], ...]}`` whose
    first buffer is a pickle of ``(args, kwargs)`` made by the grader (module arguments it sent
    before appear as persistent handles). Replies: ``{"op": "reply", "header": ...}`` plus the
    observation's buffers, or ``{"op": "failed", "why": ...}``."""

    def __init__(self, shell=None):
        self.shell = shell
        self.handles: dict[int, Any] = {}
        self.pristine: dict[int, dict] = {}  # handle -> pristine(module) when it arrived

    def namespace(self) -> dict:
        return self.shell.user_ns if self.shell is not None else {}

    def handle(self, data: dict, buffers: list) -> tuple[dict, list]:
        op = data.get("op")
        if op == "describe":
            header, out = describe(list(data.get("names", [])), self.namespace())
            return {"op": "reply", "header": header}, out
        if op == "call":
            return self._call(data, buffers)
        if op == "forget":
            self.handles.clear()
            self.pristine.clear()
            return {"op": "reply", "header": codec.encode(None)[0]}, []
        return {"op": "failed", "why": f"unknown request {op!r}"}, []

    def _call(self, data: dict, buffers: list) -> tuple[dict, list]:
        try:
            args, kwargs = _Unpickler(bytes(buffers[0]), self.handles).load()
        except Exception as err:  # noqa: BLE001 - e.g. a module the kernel cannot import
            return {"op": "failed", "why": f"the arguments could not be rebuilt here: {describe_error(err)}"}, []
        for key, handle in data.get("keep", []):
            value = args[key] if isinstance(key, int) else kwargs.get(key)
            if _is_module(value):
                self.handles[handle] = value
                self.pristine[handle] = pristine(value)
        namespace = self.namespace()
        name = data.get("name")
        if name not in namespace:
            header, out = codec.encode({"value": None, "grads": None, "changes": [], "notes": [], "seconds": 0.0,
                                        "module": None,
                                        "error": {"type": "NameError", "message": f"name {name!r} is not defined",
                                                  "where": ""}})
            return {"op": "reply", "header": header}, out
        passed = {id(v) for v in list(args) + list(kwargs.values()) if _is_module(v)}
        used = [h for h, m in self.handles.items() if any(id(sub) in passed for sub in m.modules())]
        kept = {id(self.handles[h]): self.pristine[h] for h in used}
        observation = None
        try:
            observation = _observe(namespace[name], tuple(args), kwargs, data.get("grads_wrt", ()), kept)
            header, out = codec.encode(observation)  # before restoring: changed values are views
        finally:
            if observation is None or observation["changes"]:
                for h in used:  # the kept copies stay as the grader sent them
                    restore_module(self.handles[h], self.pristine[h])
        return {"op": "reply", "header": header}, out

    def on_comm_open(self, comm, open_msg) -> None:
        """The comm target: every message on this comm is a request, answered on the same comm."""
        def on_msg(msg):
            try:
                reply, out = self.handle(msg["content"].get("data") or {}, msg.get("buffers") or [])
            except KeyboardInterrupt:
                reply, out = {"op": "failed", "why": "interrupted"}, []
            except Exception as err:  # noqa: BLE001 - the grader must always get an answer
                reply, out = {"op": "failed", "why": f"witness error: {describe_error(err)}"}, []
            comm.send(reply, buffers=out)
        comm.on_msg(on_msg)


AGENT = Agent()
