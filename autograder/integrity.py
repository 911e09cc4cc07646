"""Keep the grading code and the libraries it relies on as they were: detect, undo and report tampering.

A student's notebook runs in the same Python process as the hidden tests, so a cell could replace a
check (``autograder.check_grad_cam = lambda *a, **k: 6``), a comparison the checks rely on
(``torch.allclose``, ``numpy.allclose``, ``builtins.isinstance``, ``torch.Tensor.__eq__``), or a
function the reference computes with (``torch.nn.functional.interpolate``). This module:

- :func:`seal` records, once, what every watched name refers to (by identity), and installs an audit
  hook (:func:`sys.addaudithook`, which cannot be removed) that runs :func:`restore` on every
  ``exec`` event. IPython runs every cell through ``exec``, so whatever a cell changed is put back
  before the next cell runs: a hidden test cell's ``from autograder import check_x`` finds the
  real check. The hook also refuses (RuntimeError) any write to ``__code__``, ``__defaults__`` or
  ``__kwdefaults__`` of a watched function, and records it.
- :func:`changes` lists what differs from the snapshot now; :func:`restore` records those changes,
  puts the originals back and returns them; :func:`violations` lists every change recorded since
  sealing (including those the hook already undid). :mod:`autograder.report` gives no credit to a
  graded part while :func:`violations` is not empty.

What is watched (identity of ``name -> object``, the Python functions found there as above, and the
``sys.modules`` entries of these modules):

- every module under ``autograder`` and ``solutions``, and the class dicts of the classes they
  define: any change counts (replaced, deleted, or added);
- every module under ``interpkit``, the class dicts of its classes, and ``torch``,
  ``torch.nn.functional``, ``torch.nn``, ``torch.autograd``, ``torch.testing``, ``numpy``,
  ``numpy.testing``, ``builtins``, ``math``, ``scipy.ndimage``, ``skimage.measure`` and the class
  dicts of ``torch.Tensor`` and ``torch.nn.Module``: replacements and deletions count; a NEW name
  is harmless (students may add attributes), except in a class dict where it shadows an inherited
  attribute (``torch.Tensor.__eq__ = f`` puts ``__eq__`` in ``Tensor``'s own dict: a replacement).

Names that the Jupyter machinery itself changes while a cell runs are not watched: ``builtins``'
``exit``, ``quit``, ``input``, ``get_ipython``, ``display``, ``_``/``__``/``___``; modules'
``__warningregistry__``; a package attribute that appears because its own submodule was imported.

When the snapshot is taken matters. The grading kernel (:mod:`autograder.kernel`) seals before any
cell runs. Anywhere else (in-process unit tests, a kernel started without that entry point) the
first ``import autograder`` seals, which may be AFTER student code ran: a change made before that
import becomes part of the snapshot and is neither detected nor undone. :func:`sealed_early` tells
which case holds.

Limits (best effort, honestly): this is an in-process defence. It catches the realistic cheats
(assigning to a module, class or function attribute, ``sys.modules`` entries, ``importlib.reload``),
but a student who studies the grader can defeat it from inside the same process (editing the
snapshot through ``gc``, patching C-level state, mutating containers in place, changing a closure
cell, or shadowing names the checks never look up through a watched namespace). Files, network and
resources are the sandbox's job, not this module's.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
import threading
import types
from dataclasses import dataclass, field
from typing import Any

# The guard must not run what it guards: the builtins and operator functions it uses are bound here,
# at import, as this module's own globals (a cell's ``builtins.isinstance = ...`` cannot reach them).
from builtins import all, getattr, isinstance, len, map, sorted, type, vars  # noqa: A004
from operator import is_, setitem

_FunctionType = types.FunctionType
_ModuleType = types.ModuleType
_type_setattr, _type_delattr = type.__setattr__, type.__delattr__

#: Packages whose namespaces must not change at all (additions count too).
STRICT_PACKAGES = ("autograder", "solutions")
#: Packages whose names must keep their objects (additions are harmless).
LOOSE_PACKAGES = ("interpkit",)
#: Library namespaces the checks and the reference compute or compare with (additions harmless).
LIBRARY_MODULES = ("torch", "torch.nn.functional", "torch.nn", "torch.autograd", "torch.testing", "numpy",
                   "numpy.testing", "builtins", "math", "scipy.ndimage", "skimage.measure")
#: Library classes whose own dicts are watched (``module:attribute`` path).
LIBRARY_CLASSES = ("torch.Tensor", "torch.nn.Module")
#: Modules never imported by :func:`seal`: the kernel entry point (``python -m autograder.kernel``
#: would warn if it were already imported when runpy starts it).
NOT_IMPORTED = frozenset({"autograder.kernel"})
#: Names that legitimately change during a cell: IPython's BuiltinTrap hides ``exit``/``quit`` and
#: adds ``get_ipython``; ipykernel swaps ``input`` while a cell runs; the display hook sets ``_``.
VOLATILE = {
    "builtins": frozenset({"_", "__", "___", "exit", "quit", "input", "raw_input", "get_ipython", "display",
                           "__IPYTHON__"}),
}
#: Written by :mod:`warnings` into the globals of whichever module warns.
VOLATILE_EVERYWHERE = frozenset({"__warningregistry__"})
_FUNCTION_FIELDS = ("__code__", "__defaults__", "__kwdefaults__")
_MISSING = object()


@dataclass
class _Namespace:
    """One watched mapping: a module's ``__dict__`` or a class's own dict."""

    label: str                   # how messages name it: "torch", "torch.Tensor", "autograder.report.Report"
    owner: Any                   # the module or class
    strict: bool                 # additions count as violations
    saved: dict                  # name -> object at sealing
    names: tuple                 # the watched names, in a fixed order
    values: tuple                # the saved object of each name, same order
    inherited: frozenset = frozenset()  # classes: names resolved through the MRO at sealing
    ignore: frozenset = frozenset()

    @property
    def live(self):
        return vars(self.owner)

    def label_of(self, name: str) -> str:
        return f"{self.label}.{name}"


@dataclass
class _Guard:
    """Everything :func:`seal` recorded; the audit hook holds this object (not a module global),
    so ``importlib.reload(autograder.integrity)`` cannot swap it from under the hook."""

    namespaces: list[_Namespace] = field(default_factory=list)
    functions: dict = field(default_factory=dict)         # watched Python function -> label
    modules: dict = field(default_factory=dict)           # sys.modules name -> module
    module_names: tuple = ()
    module_values: tuple = ()
    recorded: dict = field(default_factory=dict)          # message -> None (ordered set)
    lock: threading.RLock = field(default_factory=threading.RLock)
    early: bool = False

    # ------------------------------------------------------------------ detection
    def changes(self) -> list[tuple[str, Any]]:
        """``[(message, undo)]`` for everything that differs from the snapshot; no side effects."""
        found: list[tuple[str, Any]] = []
        for ns in self.namespaces:
            self._namespace_changes(ns, found)
        if not all(map(is_, map(sys.modules.get, self.module_names), self.module_values)):
            for name, module in self.modules.items():
                if sys.modules.get(name) is not module:
                    found.append((f"sys.modules[{name!r}] was replaced",
                                  (setitem, sys.modules, name, module)))
        return found

    def _namespace_changes(self, ns: _Namespace, found: list) -> None:
        live = ns.live
        # Fast path at C speed: the same object under every watched name. Never id(): it raises an
        # audit event, i.e. calls the audit hook, thousands of times.
        try:
            same = all(map(is_, map(live.__getitem__, ns.names), ns.values))
        except KeyError:
            same = False
        if not same:
            for name in ns.names:
                obj = live.get(name, _MISSING)
                saved = ns.saved[name]
                if obj is not saved:
                    what = "deleted" if obj is _MISSING else "replaced"
                    found.append((f"{ns.label_of(name)} was {what}", (_put, ns.owner, name, saved)))
        if same and len(live) == len(ns.names):
            return  # every saved name present and nothing else: no addition
        if ns.strict:
            added = live.keys() - ns.saved.keys() - ns.ignore
            found.extend((f"{ns.label_of(n)} was added", (_remove, ns.owner, n)) for n in sorted(added)
                         if not _own_submodule(ns.owner, n, live[n]))
        elif ns.inherited:  # a class: a new name in its own dict may shadow an inherited attribute
            added = (live.keys() - ns.saved.keys()) & ns.inherited
            found.extend((f"{ns.label_of(n)} was replaced (a new entry shadows the inherited one)",
                          (_remove, ns.owner, n)) for n in sorted(added))

    # ------------------------------------------------------------------ repair
    def restore(self) -> list[str]:
        """Record every change, put the originals back, return the messages of this pass."""
        if not self.lock.acquire(blocking=False):
            return []  # another thread is restoring right now
        try:
            found = self.changes()
            if not found:
                return []
            for message, (undo, *args) in found:
                self.recorded.setdefault(message, None)
                undo(*args)
            return [message for message, _ in found]
        finally:
            self.lock.release()

    def on_exec(self) -> None:
        try:
            self.restore()
        except Exception as err:  # noqa: BLE001 - a cell must still run; the failure is recorded
            self.recorded.setdefault(f"the integrity check failed ({type(err).__name__}: {err})", None)

    def on_setattr(self, args: tuple) -> None:
        # Writing __code__/__defaults__/__kwdefaults__ raises this event; reading them raises one too,
        # which is why they are guarded here rather than compared on every restore. Functions hash
        # by identity: the type check comes first, so no student __hash__/__eq__ runs here.
        if (type(args[0]) is _FunctionType and args[1] in _FUNCTION_FIELDS
                and args[0] in self.functions):
            label = self.functions[args[0]]
            self.recorded.setdefault(f"{label}.{args[1]} was replaced (refused)", None)
            raise RuntimeError(f"{label}.{args[1]} is watched by the grader and cannot be replaced")


def _audit_hook(guard: _Guard):
    """The hook: restore on ``exec`` (every notebook cell), refuse code swaps of grading functions.

    It runs on EVERY audit event of the process (``id()``, ``frame.f_code``, ``open``...), so the
    common case is two string comparisons. Python runs audit hooks with profiling disabled, so the
    student-call profiler of :mod:`autograder.student_call` never sees this code."""
    on_exec, on_setattr = guard.on_exec, guard.on_setattr

    def audit(event: str, args: tuple) -> None:
        if event == "exec":
            on_exec()
        elif event == "object.__setattr__":
            on_setattr(args)
    return audit


def _put(owner, name: str, value) -> None:
    if isinstance(owner, type):
        _type_setattr(owner, name, value)
    else:
        vars(owner)[name] = value


def _remove(owner, name: str) -> None:
    if isinstance(owner, type):
        _type_delattr(owner, name)
    else:
        vars(owner).pop(name, None)


def _own_submodule(owner, name: str, value) -> bool:
    """A package attribute that appeared because its submodule was imported (e.g. ``autograder.kernel``)."""
    return (isinstance(owner, _ModuleType) and isinstance(value, _ModuleType)
            and value.__name__ == f"{owner.__name__}.{name}" and sys.modules.get(value.__name__) is value)


def _import_tree(package: str) -> list[str]:
    """``package`` and every module under it (imported now), sorted."""
    root = importlib.import_module(package)
    names = {package}
    for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=package + "."):
        if info.name in NOT_IMPORTED or info.name.split(".")[-1].startswith("__"):
            continue
        importlib.import_module(info.name)
        names.add(info.name)
    return sorted(names)


def _class_namespaces(module: types.ModuleType) -> list[type]:
    return [obj for obj in vars(module).values()
            if isinstance(obj, type) and obj.__module__ == module.__name__]


def _namespace(label: str, owner, strict: bool) -> _Namespace:
    live = vars(owner)
    ignore = VOLATILE.get(label, frozenset()) | VOLATILE_EVERYWHERE
    saved = {k: v for k, v in live.items() if k not in ignore}
    names = tuple(saved)
    inherited = frozenset(dir(owner)) - live.keys() if isinstance(owner, type) else frozenset()
    return _Namespace(label, owner, strict, saved, names, tuple(saved.values()), inherited, ignore)


def _functions_of(ns: _Namespace) -> list[tuple[str, types.FunctionType]]:
    """Python functions stored in ``ns`` (plain, static/class methods, property getters/setters,
    and what a ``functools.wraps`` wrapper wraps). Only type checks, never ``getattr`` on arbitrary
    objects: a lazy namespace like ``torch.ops`` would create an attribute on demand."""
    out = []
    for name, obj in ns.saved.items():
        candidates = []
        if isinstance(obj, types.FunctionType):
            candidates = [obj, obj.__dict__.get("__wrapped__")]
        elif isinstance(obj, (staticmethod, classmethod)):
            candidates = [obj.__func__]
        elif isinstance(obj, property):
            candidates = [obj.fget, obj.fset, obj.fdel]
        out.extend((ns.label_of(name), f) for f in candidates if isinstance(f, types.FunctionType))
    return out


def _build() -> _Guard:
    guard = _Guard()
    strict_modules = [m for p in STRICT_PACKAGES for m in _import_tree(p)]
    loose_modules = [m for p in LOOSE_PACKAGES for m in _import_tree(p)]
    library = []
    for name in LIBRARY_MODULES:
        try:
            importlib.import_module(name)
            library.append(name)
        except ImportError:  # an optional dependency the course does not install
            continue
    for name in strict_modules + loose_modules:
        module = sys.modules[name]
        strict = name in strict_modules
        guard.namespaces.append(_namespace(name, module, strict))
        for cls in _class_namespaces(module):
            guard.namespaces.append(_namespace(f"{name}.{cls.__qualname__}", cls, strict))
    for name in library:
        guard.namespaces.append(_namespace(name, sys.modules[name], strict=False))
    for path in LIBRARY_CLASSES:
        module, _, attr = path.rpartition(".")
        guard.namespaces.append(_namespace(path, getattr(importlib.import_module(module), attr), strict=False))

    for ns in guard.namespaces:
        for label, func in _functions_of(ns):
            guard.functions.setdefault(func, label)

    guard.modules = {name: sys.modules[name] for name in strict_modules + loose_modules + library}
    guard.module_names = tuple(guard.modules)
    guard.module_values = tuple(guard.modules.values())
    return guard


def _resnapshot(guard: _Guard, module_name: str) -> None:
    """Retake one module's entry (this module, after ``_guard`` was assigned)."""
    for i, ns in enumerate(guard.namespaces):
        if ns.owner is sys.modules[module_name]:
            guard.namespaces[i] = _namespace(ns.label, ns.owner, ns.strict)


# The one guard of this process. Kept on ``sys`` under a private name too, so that a reload of
# this module (which re-runs this file in the same namespace) finds the guard instead of sealing
# a second, later snapshot.
_GUARD_ATTR = "_autograder_integrity_guard"
_guard: _Guard | None = getattr(sys, _GUARD_ATTR, None)


def seal(early: bool = False) -> None:
    """Import the watched modules, snapshot them and install the audit hook; idempotent.

    The first call takes the snapshot; later calls change nothing (the snapshot is never retaken,
    so code that ran in between cannot launder its changes). ``early=True`` (the grading kernel,
    before any cell ran) states that no student code ran before the snapshot."""
    global _guard
    if _guard is None:
        guard = _build()
        _guard = guard
        setattr(sys, _GUARD_ATTR, guard)
        _resnapshot(guard, __name__)  # the snapshot of this module must hold the guard, not None
        sys.addaudithook(_audit_hook(guard))
    if early:
        _guard.early = True


def sealed() -> bool:
    """True once :func:`seal` has run in this process."""
    return _guard is not None


def sealed_early() -> bool:
    """True when the snapshot is known to predate all student code (sealed by the grading kernel)."""
    return _guard is not None and _guard.early


def changes() -> list[str]:
    """What differs from the snapshot right now (empty when intact); changes nothing.

    Raises RuntimeError if :func:`seal` was never called."""
    return [message for message, _ in _sealed().changes()]


def restore() -> list[str]:
    """Put every watched name back as sealed and record what had changed; returns this pass's
    messages (empty when intact). Raises RuntimeError if :func:`seal` was never called."""
    return _sealed().restore()


def violations() -> list[str]:
    """Every change recorded since sealing (including those already undone by the audit hook),
    in order of detection, without duplicates; e.g. ``["torch.allclose was replaced"]``.

    Call :func:`restore` first to include changes made since the last ``exec``. Empty when not sealed."""
    return [] if _guard is None else list(_guard.recorded)


def forget() -> None:
    """Clear the record of violations (tests only; grading never calls it). The state is not
    touched: a change that is still in place is found again by the next :func:`restore`."""
    if _guard is not None:
        _guard.recorded.clear()


def _sealed() -> _Guard:
    if _guard is None:
        raise RuntimeError("autograder.integrity.seal() has not been called")
    return _guard


def watched_count() -> int:
    """How many names, functions and ``sys.modules`` entries the snapshot covers (for reports)."""
    guard = _sealed()
    return sum(len(ns.names) for ns in guard.namespaces) + len(guard.functions) + len(guard.modules)


__all__ = ["changes", "forget", "restore", "seal", "sealed", "sealed_early", "violations", "watched_count"]
