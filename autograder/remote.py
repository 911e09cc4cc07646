"""The grader's side of the witness channel: a notebook's functions as local-looking proxies.

While a notebook is autograded, its functions live in the student's kernel and the checks run
here, in the grader's own process. :class:`RemoteFunction` stands for one notebook function:
calling it pickles the arguments (grader -> kernel only), asks the kernel's witness
(:mod:`witness.agent`) to call the function, and decodes the answer with :func:`witness.codec.decode`
(strict, plain data: nothing that comes back is unpickled or executed). What the call changed in
its arguments (a model's weights, ``.grad``, modes, hooks; a tensor; a generator's state) is
copied back onto the grader's own objects (*call by value-result*), so that the checks and the
visible tests see the side effects exactly as if the function had run here. The kernel may lie
about all of it; it can only make its own function look wrong, because every number it sends is
compared with the grader's reference.

A returned module comes back the same way: the argument it is (the grader's own object), or a
copy of the argument it is shaped like, rebuilt here with the tensors, modes and flags the kernel
reports (:func:`returned_module`); any other module is only its type's name.

Module arguments are sent once per kernel: later calls refer to the kernel's copy by a handle,
as long as the grader's module is unchanged since (a fingerprint of its tensors' storage and
version counters, modes and hooks) and no call reported changing it.

:func:`observe` is what :mod:`autograder.student_call` uses; with a plain (local) function it
calls :func:`witness.agent.observe` in-process, which is how an instructor's kernel runs the
hidden tests of a source notebook, and how the test suite runs the checks.
"""
from __future__ import annotations

import io
import itertools
import pickle
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from witness import agent as witness_agent
from witness import codec

#: How long an interrupted kernel gets to answer before it counts as lost (seconds).
INTERRUPT_GRACE = 15.0
#: The largest message accepted from a kernel (ZMQ drops and disconnects anything larger).
MAX_MESSAGE_BYTES = 256 * 1024 ** 2


class StudentError(Exception):
    """The notebook's function raised. ``type_name``, ``message``, ``where``: as the kernel
    described them (strings only)."""

    def __init__(self, type_name: str, message: str, where: str = ""):
        self.type_name, self.message, self.where = type_name, message, where
        super().__init__(self.describe())

    def describe(self) -> str:
        where = f" ({self.where})" if self.where else ""
        return f"{self.type_name}: {self.message}{where}".strip()


class CallTimeout(Exception):
    """The test cell's time limit ran out while the notebook's function was running."""


class KernelLost(Exception):
    """The student's kernel died or stopped answering; nothing more can be asked of it."""


class InvalidReply(Exception):
    """The kernel's answer was not a well-formed observation (or it refused the request)."""


@dataclass
class Observation:
    """One call, as the grader sees it. ``error``: the :class:`StudentError` the function raised,
    or None; ``grads``: see :func:`witness.agent.observe`; ``notes``: facts reported by the kernel
    that the grader cannot see on its own objects (global hooks, modules restructured)."""

    value: Any = None
    error: StudentError | None = None
    seconds: float = 0.0
    grads: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    remote: bool = False
    #: How a returned module travels (see :func:`returned_module`); ``value`` holds the module.
    module: dict | None = None


# ------------------------------------------------------------------------------ channel
class Channel:
    """Shell and IOPub sockets of one kernel, speaking Jupyter's wire protocol (signed messages),
    with one comm to the witness. ``alive()`` says whether the kernel process still runs;
    ``interrupt()`` sends it SIGINT."""

    def __init__(self, connection: dict, alive: Callable[[], bool], interrupt: Callable[[], None],
                 ready_timeout: float = 60.0):
        import zmq
        from jupyter_client.session import Session

        self._zmq = zmq
        self.alive, self.interrupt = alive, interrupt
        key = connection.get("key", b"")
        self.session = Session(key=key.encode() if isinstance(key, str) else key,
                               signature_scheme=connection.get("signature_scheme", "hmac-sha256"))
        self.context = zmq.Context()
        self.shell = self._socket(zmq.DEALER, connection, "shell_port")
        self.iopub = self._socket(zmq.SUB, connection, "iopub_port")
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.poller = zmq.Poller()
        self.poller.register(self.shell, zmq.POLLIN)
        self.poller.register(self.iopub, zmq.POLLIN)
        self.lost: str | None = None
        self._wait_for_iopub(time.monotonic() + ready_timeout)
        self.comm_id = uuid.uuid4().hex
        self.session.send(self.shell, self.session.msg(
            "comm_open", {"comm_id": self.comm_id, "target_name": witness_agent.COMM_TARGET, "data": {}}))

    def _socket(self, kind, connection: dict, port_name: str):
        sock = self.context.socket(kind)
        sock.setsockopt(self._zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        sock.setsockopt(self._zmq.LINGER, 0)
        port = connection[port_name]
        if connection.get("transport", "tcp") == "ipc":
            sock.connect(f"ipc://{connection['ip']}-{port}")
        else:
            sock.connect(f"tcp://{connection['ip']}:{port}")
        return sock

    def _receive(self, timeout: float) -> tuple[str, dict] | None:
        """One message from either socket within ``timeout`` s: (``"shell"``/``"iopub"``, msg)."""
        events = dict(self.poller.poll(max(0, int(timeout * 1000))))
        for sock, name in ((self.iopub, "iopub"), (self.shell, "shell")):
            if sock in events:
                try:
                    _, frames = self.session.feed_identities(sock.recv_multipart(copy=False), copy=False)
                    return name, self.session.deserialize(frames, content=True, copy=False)
                except Exception:  # noqa: BLE001 - a malformed or badly signed message is dropped
                    return name, {}
        return None

    def _wait_for_iopub(self, deadline: float) -> None:
        """Until IOPub delivers (a SUB socket misses what was published before it connected)."""
        while time.monotonic() < deadline:
            request = self.session.msg("kernel_info_request", {})
            self.session.send(self.shell, request)
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                got = self._receive(0.1)
                if got and got[0] == "iopub" and got[1].get("parent_header", {}).get("msg_id") == request["header"]["msg_id"]:
                    return
            if not self.alive():
                raise KernelLost("the kernel died before grading began")
        raise KernelLost("the kernel did not answer within its start-up time")

    def request(self, data: dict, buffers: list, deadline: float) -> tuple[dict, list]:
        """Send one witness request; its reply's ``(data, buffers)``. Raises :class:`CallTimeout`
        past ``deadline`` (the kernel is interrupted), :class:`KernelLost`."""
        if self.lost:
            raise KernelLost(self.lost)
        if time.monotonic() >= deadline:
            raise CallTimeout("no time was left in this cell")
        message = self.session.msg("comm_msg", {"comm_id": self.comm_id, "data": data})
        self.session.send(self.shell, message, buffers=buffers)
        msg_id = message["header"]["msg_id"]
        interrupted = None
        while True:
            now = time.monotonic()
            if interrupted is None and now >= deadline:
                self.interrupt()
                interrupted = now
            if interrupted is not None and now >= interrupted + INTERRUPT_GRACE:
                self.lost = "it did not stop when interrupted"
                raise KernelLost(self.lost)
            limit = (deadline if interrupted is None else interrupted + INTERRUPT_GRACE) - now
            got = self._receive(min(1.0, max(0.0, limit)))
            if got is None:
                if not self.alive():
                    self.lost = "the kernel process died"
                    raise KernelLost(self.lost)
                continue
            channel, msg = got
            if channel != "iopub" or msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            content = msg.get("content") or {}
            if msg.get("msg_type") == "comm_msg" and content.get("comm_id") == self.comm_id:
                if interrupted is not None:
                    raise CallTimeout("interrupted at the cell's time limit")
                data = content.get("data")
                if not isinstance(data, dict):
                    raise InvalidReply("the kernel's answer carried no data")
                return data, [bytes(b) for b in msg.get("buffers") or []]
            if msg.get("msg_type") == "status" and content.get("execution_state") == "idle":
                if interrupted is not None:
                    raise CallTimeout("interrupted at the cell's time limit")
                raise InvalidReply("the kernel finished the request without answering it")

    def close(self) -> None:
        self.context.destroy(linger=0)


# ------------------------------------------------------------------------------ arguments out
def _fingerprint(module: nn.Module) -> tuple:
    return (tuple((id(t), t.data_ptr(), t._version, t.requires_grad) for t in module.parameters()),
            tuple((id(t), t.data_ptr(), t._version) for t in module.buffers() if t is not None),
            tuple((m.training, tuple(m._forward_hooks), tuple(m._forward_pre_hooks),
                   tuple(m._backward_hooks), tuple(m._backward_pre_hooks)) for m in module.modules()))


@dataclass
class _Sent:
    root: nn.Module
    handle: int
    fingerprint: tuple
    names: dict[int, str]  # id(submodule) -> dotted name


def _pickler_class():
    import cloudpickle

    class Pickler(cloudpickle.Pickler):
        """cloudpickle (functions defined in test cells travel by value) with module handles."""

        def __init__(self, file, kernel: "RemoteKernel"):
            super().__init__(file, protocol=5)
            self.kernel = kernel
            self.checked: dict[int, bool] = {}

        def reducer_override(self, obj):
            module = getattr(obj, "__module__", "") or ""
            if module.split(".")[0] in ("solutions",) and callable(obj):
                raise pickle.PicklingError(f"refusing to send reference code ({module}.{getattr(obj, '__qualname__', obj)}) "
                                           "to the student's kernel")
            return super().reducer_override(obj)

        def persistent_id(self, obj):
            if not isinstance(obj, nn.Module):
                return None
            sent = self.kernel._sent_containing(obj)
            if sent is None:
                return None
            fresh = self.checked.get(sent.handle)
            if fresh is None:
                fresh = self.checked[sent.handle] = _fingerprint(sent.root) == sent.fingerprint
            return (witness_agent.HANDLE_TAG, sent.handle, sent.names[id(obj)]) if fresh else None

    return Pickler


_PICKLER = None


def _dumps(value, kernel: "RemoteKernel") -> bytes:
    global _PICKLER
    if _PICKLER is None:
        _PICKLER = _pickler_class()
    buffer = io.BytesIO()
    _PICKLER(buffer, kernel).dump(value)
    return buffer.getvalue()


# ------------------------------------------------------------------------------ answers in
def _fail(why: str):
    raise InvalidReply(f"the kernel's answer was malformed: {why}")


def _student_error(error) -> StudentError | None:
    if error is None:
        return None
    if not isinstance(error, dict) or not all(isinstance(error.get(k), str) for k in ("type", "message", "where")):
        _fail("error")
    return StudentError(error["type"], error["message"], error["where"])


def parse_observation(payload, grads_wrt: list, remote: bool) -> tuple[Observation, list]:
    """The :class:`Observation` in a decoded payload and its reported changes; every field's type
    is checked (:class:`InvalidReply` otherwise)."""
    if not isinstance(payload, dict) or set(payload) - {"module"} != {"value", "error", "grads", "changes", "notes", "seconds"}:
        _fail("fields")
    seconds = payload["seconds"]
    if type(seconds) is not float or not math.isfinite(seconds):
        _fail("seconds")
    grads = payload["grads"]
    if grads is None:
        grads = [None] * len(grads_wrt)
    elif not (isinstance(grads, list) and len(grads) == len(grads_wrt)
              and all(g is None or isinstance(g, torch.Tensor) for g in grads)):
        _fail("grads")
    notes = payload["notes"]
    if not (isinstance(notes, list) and len(notes) <= 20 and all(isinstance(n, str) for n in notes)):
        _fail("notes")
    changes = payload["changes"]
    if not (isinstance(changes, list) and len(changes) <= 64 and all(
            isinstance(c, dict) and type(c.get("arg")) in (int, str) and isinstance(c.get("kind"), str)
            for c in changes)):
        _fail("changes")
    module = payload.get("module")
    if module is not None and not _valid_module_report(module):
        _fail("module")
    observation = Observation(value=payload["value"], error=_student_error(payload["error"]),
                              seconds=seconds, grads=grads, notes=[n[:300] for n in notes], remote=remote)
    observation.module = module
    return observation, changes


def _valid_module_report(report) -> bool:
    if not isinstance(report, dict):
        return False
    if set(report) == {"arg", "sub"}:
        return type(report["arg"]) in (int, str) and isinstance(report["sub"], str)
    if set(report) != {"like", "state", "training", "requires_grad"} or type(report["like"]) not in (int, str):
        return False
    state, training, flags = report["state"], report["training"], report["requires_grad"]
    return (isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
            and isinstance(training, dict) and all(type(v) is bool for v in training.values())
            and isinstance(flags, dict) and all(type(v) is bool for v in flags.values()))


def returned_module(args: tuple, kwargs: dict, report: dict) -> nn.Module:
    """The module a call returned, on the grader's side: the argument (or sub-module) it is, or a
    deep copy of the argument it is shaped like, holding the reported tensors, modes and flags
    (no ``.grad``, no hooks but the argument's). :class:`InvalidReply` if the report does not fit."""
    key = report.get("arg", report.get("like"))
    target = (args[key] if isinstance(key, int) and 0 <= key < len(args) else
              kwargs.get(key) if isinstance(key, str) else None)
    if not isinstance(target, nn.Module):
        _fail("the returned module names no module argument")
    if "sub" in report:
        try:
            return target.get_submodule(report["sub"]) if report["sub"] else target
        except AttributeError:
            _fail("the returned module names no sub-module of the argument")
    import copy

    params, buffers = dict(target.named_parameters()), dict(target.named_buffers())
    tensors = {**buffers, **params}
    state = report["state"]
    if set(state) != set(tensors) or not all(_same_kind(tensors[n], v) for n, v in state.items()):
        _fail("the returned module's tensors do not fit the argument it is said to copy")
    if not set(report["training"]) <= {n for n, _ in target.named_modules()} \
            or not set(report["requires_grad"]) <= set(params):
        _fail("the returned module's modes or flags name unknown layers")
    # The copy takes the reported tensors in place of the argument's (decoded tensors are the
    # grader's own memory): nothing is cloned twice.
    memo: dict[int, Any] = {id(b): state[n] for n, b in buffers.items()}
    memo.update({id(p): nn.Parameter(state[n], requires_grad=report["requires_grad"].get(n, p.requires_grad))
                 for n, p in params.items()})
    rebuilt = copy.deepcopy(target, memo)
    for name, module in rebuilt.named_modules():
        module.training = report["training"].get(name, module.training)
    return rebuilt


# ------------------------------------------------------------------------------ side effects back
def _placeholder_hook(*args, **kwargs):
    """Stands, on the grader's copy, for a hook the student's function left on the kernel's."""
    return None


def _same_kind(target: torch.Tensor, value) -> bool:
    return isinstance(value, torch.Tensor) and value.shape == target.shape and value.dtype == target.dtype


def _mirror_module(module: nn.Module, change: dict, notes: list[str]) -> None:
    params, buffers = dict(module.named_parameters()), dict(module.named_buffers())
    modules = dict(module.named_modules())
    if change.get("structure"):
        notes.append("the model's parameters, buffers or sub-modules were added or removed")
    with torch.no_grad():
        for name, value in (change.get("values") or {}).items():
            target = params.get(name, buffers.get(name))
            if target is not None and _same_kind(target, value):
                target.copy_(value)
            else:
                notes.append(f"{name!r} was replaced by a tensor of another shape or type")
    for name, value in (change.get("grads") or {}).items():
        if name in params and (value is None or _same_kind(params[name], value)):
            params[name].grad = None if value is None else value.detach().clone()
    for name, flag in (change.get("requires_grad") or {}).items():
        if name in params and isinstance(flag, bool):
            params[name].requires_grad_(flag)
    for name, flag in (change.get("training") or {}).items():
        if name in modules and isinstance(flag, bool):
            modules[name].training = flag
    for name, added in (change.get("hooks") or {}).items():
        if name not in modules or not isinstance(added, dict):
            continue
        for dict_name, count in added.items():
            hooks = getattr(modules[name], dict_name, None) if dict_name in witness_agent.HOOK_DICTS else None
            if hooks is not None and type(count) is int and 0 < count <= 1000:
                for _ in range(count):
                    hooks[RemovableHandle(hooks).id] = _placeholder_hook


def apply_changes(args: tuple, kwargs: dict, changes: list, notes: list[str]) -> None:
    """Copy what the kernel reports its call changed onto the grader's own arguments (validated:
    unknown names, shapes or types are ignored; what cannot be copied becomes a note)."""
    for change in changes:
        key = change["arg"]
        if isinstance(key, int):
            target = args[key] if 0 <= key < len(args) else None
        else:
            target = kwargs.get(key)
        kind = change["kind"]
        if kind == "module" and isinstance(target, nn.Module):
            _mirror_module(target, change, notes)
        elif kind == "tensor" and isinstance(target, torch.Tensor):
            value = change.get("value")
            if value is not None and _same_kind(target, value):
                with torch.no_grad():
                    target.copy_(value)
            if "grad" in change and (change["grad"] is None or _same_kind(target, change["grad"])):
                target.grad = None if change["grad"] is None else change["grad"].clone()
        elif kind == "ndarray" and isinstance(target, np.ndarray):
            value = change.get("value")
            if isinstance(value, np.ndarray) and value.shape == target.shape and target.flags.writeable:
                target[...] = value
        elif kind == "generator" and isinstance(target, torch.Generator):
            state = change.get("state")
            if _same_kind(target.get_state(), state):
                target.set_state(state)


# ------------------------------------------------------------------------------ the kernel
class RemoteKernel:
    """The witness of one student's kernel. ``budget``: seconds the student's code may still run
    (the grader sets it per test cell; the grader's own work is not counted)."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.budget = math.inf
        self._handles = itertools.count(1)
        self._sent: dict[int, _Sent] = {}     # handle -> what the kernel holds under it
        self._owner: dict[int, int] = {}      # id(module or sub-module) -> handle

    def _sent_containing(self, module: nn.Module) -> _Sent | None:
        handle = self._owner.get(id(module))
        sent = self._sent.get(handle) if handle is not None else None
        return sent if sent is not None and id(module) in sent.names else None

    def _forget(self, module: nn.Module) -> None:
        sent = self._sent_containing(module)
        if sent is not None:
            del self._sent[sent.handle]
            for key in sent.names:
                self._owner.pop(key, None)

    def _remember(self, module: nn.Module, handle: int) -> None:
        names = {id(m): n for n, m in module.named_modules()}
        self._sent[handle] = _Sent(module, handle, _fingerprint(module), names)
        for key in names:
            self._owner[key] = handle

    def _request(self, data: dict, buffers: list) -> tuple[Any, list]:
        start = time.monotonic()
        try:
            reply, out = self.channel.request(data, buffers, start + self.budget)
        finally:
            self.budget = max(0.0, self.budget - (time.monotonic() - start))
        if reply.get("op") == "failed":
            raise InvalidReply(f"the grading kernel could not serve the request: {str(reply.get('why'))[:500]}")
        if reply.get("op") != "reply":
            raise InvalidReply("the kernel's answer had no result")
        try:
            return codec.decode(reply.get("header"), out), out
        except codec.InvalidData as err:
            raise InvalidReply(f"the kernel's answer was not valid plain data: {err}") from None

    def describe(self, names: Iterable[str]) -> dict:
        """``{name: {"kind": "missing" | "callable" | "data" | "other", ...}}`` (validated)."""
        names = list(names)
        found, _ = self._request({"op": "describe", "names": names}, [])
        if not isinstance(found, dict) or set(found) != set(names) or not all(
                isinstance(v, dict) and v.get("kind") in ("missing", "callable", "data", "other") for v in found.values()):
            raise InvalidReply("the kernel's description of the notebook's names was malformed")
        return found

    def call(self, name: str, args: tuple, kwargs: dict, grads_wrt: Iterable[int | str] = ()) -> Observation:
        """Call the notebook's ``name`` on (copies of) ``args``; side effects copied back."""
        grads_wrt = list(grads_wrt)
        items = list(enumerate(args)) + list(kwargs.items())
        modules = [v for _, v in items if isinstance(v, nn.Module)]
        inside = {id(s) for m in modules for s in m.modules() if s is not m}
        keep = []
        for key, value in items:
            if isinstance(value, nn.Module) and id(value) not in inside:
                sent = self._sent_containing(value)
                if sent is None or _fingerprint(sent.root) != sent.fingerprint:
                    keep.append([key, next(self._handles)])
        data = {"op": "call", "name": name, "grads_wrt": grads_wrt, "keep": keep}
        payload, _ = self._request(data, [_dumps((tuple(args), dict(kwargs)), self)])
        for key, handle in keep:
            value = args[key] if isinstance(key, int) else kwargs[key]
            self._forget(value)
            self._remember(value, handle)
        observation, changes = parse_observation(payload, grads_wrt, remote=True)
        apply_changes(tuple(args), dict(kwargs), changes, observation.notes)
        if observation.module is not None:
            observation.value = returned_module(tuple(args), dict(kwargs), observation.module)
        for change in changes:
            key = change["arg"]
            value = (args[key] if isinstance(key, int) and 0 <= key < len(args) else kwargs.get(key)
                     if isinstance(key, str) else None)
            if isinstance(value, nn.Module):
                self._forget(value)  # the kernel's copy differs from what was sent: send it again
        return observation

    def close(self) -> None:
        self.channel.close()


class RemoteFunction:
    """A notebook function living in the student's kernel; calling it calls it there.

    Raises :class:`StudentError` when the function raised, :class:`CallTimeout`,
    :class:`KernelLost` or :class:`InvalidReply` when no valid answer came. Pickled (inside the
    arguments of another call), it stands for the same notebook function in the kernel."""

    def __init__(self, kernel: RemoteKernel, name: str):
        self.kernel = kernel
        self.__name__ = self.__qualname__ = name

    def observe(self, args: tuple, kwargs: dict, grads_wrt: Iterable[int | str] = ()) -> Observation:
        return self.kernel.call(self.__name__, args, kwargs, grads_wrt)

    def __call__(self, *args, **kwargs):
        observation = self.observe(args, kwargs)
        if observation.error is not None:
            if observation.error.type_name == "KeyboardInterrupt":
                raise CallTimeout("interrupted at the cell's time limit")
            raise observation.error
        return observation.value

    def __reduce__(self):
        return (witness_agent.user_function, (self.__name__,))

    def __repr__(self) -> str:
        return f"<notebook function {self.__name__} (in the student's kernel)>"


def observe_local(fn: Callable, args: tuple, kwargs: dict, grads_wrt: Iterable[int | str] = ()) -> Observation:
    """:func:`witness.agent.observe` in this process, decoded exactly as a kernel's answer is
    (the arguments are the caller's own objects: side effects happen on them directly)."""
    grads_wrt = list(grads_wrt)
    header, buffers = witness_agent.observe(fn, args, kwargs, grads_wrt)
    observation, _ = parse_observation(codec.decode(header, buffers), grads_wrt, remote=False)
    if observation.module is not None:
        observation.value = returned_module(tuple(args), dict(kwargs), observation.module)
    return observation


def observe(fn: Callable, args: tuple = (), kwargs: dict | None = None,
            grads_wrt: Iterable[int | str] = ()) -> Observation:
    """Call ``fn`` as student code: in the student's kernel when it is a :class:`RemoteFunction`,
    here otherwise. Raises only :class:`CallTimeout`, :class:`KernelLost`, :class:`InvalidReply`
    (the function's own exceptions are in ``Observation.error``)."""
    kwargs = dict(kwargs or {})
    if isinstance(fn, RemoteFunction):
        return fn.observe(tuple(args), kwargs, grads_wrt)
    return observe_local(fn, tuple(args), kwargs, grads_wrt)
