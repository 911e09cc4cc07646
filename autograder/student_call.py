"""Calling a student's function safely from a grade cell.

``call(fn, *args)`` returns an :class:`Outcome` instead of raising: the value, or a one-line
description of the exception. While the student's code runs:

- stdout/stderr and warnings are captured (any stderr output would score the grade cell 0);
- a profiler watches for calls into ``solutions`` or the autograder's checks: a submission that
  delegates to the reference gets no credit for that part. A call counts when its code object IS
  one of theirs (any route: ``import``, ``sys.modules``, ``importlib``), or when it is a COPY of
  one: a function of ``solutions``/the autograder compiled again (``exec`` of the file's source,
  ``code.replace``) has a new code object with the same bytecode, names and constants
  (:func:`fingerprint`). Code too small to tell apart from independent work (one-line
  delegations, comprehensions, lambdas) is matched by identity only.

Afterwards :func:`autograder.integrity.restore` undoes whatever the student's code patched in the
grading modules or the libraries they compare with (the report then gives no credit).
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import time
import traceback
import types
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

from . import integrity

#: Modules whose code a student's function must never run (the test models are allowed).
FORBIDDEN_PREFIXES = ("solutions", "autograder")
ALLOWED_MODULES = ("autograder.models",)
#: Smallest function (bytecode instructions, inline caches excluded) whose copy counts as
#: delegation. Smaller ones are one-line calls to other functions, which are matched themselves.
MIN_COPY_INSTRUCTIONS = 12


@dataclass
class Outcome:
    value: Any = None
    error: str | None = None
    forbidden_calls: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: What the call changed in the watched modules (already undone): see autograder.integrity.
    altered: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.forbidden_calls and not self.altered


def _functions_in(obj) -> list[types.FunctionType]:
    """Python functions reachable from a module attribute: a function (and what a
    ``functools.wraps`` wrapper wraps), or a class's methods, static/class methods and properties."""
    if isinstance(obj, types.FunctionType):
        wrapped = obj.__dict__.get("__wrapped__")
        return [obj] + ([wrapped] if isinstance(wrapped, types.FunctionType) else [])
    found = []
    if isinstance(obj, type):
        for attr in vars(obj).values():
            if isinstance(attr, (staticmethod, classmethod)):
                attr = attr.__func__
            parts = (attr.fget, attr.fset, attr.fdel) if isinstance(attr, property) else (attr,)
            found += [f for f in parts if isinstance(f, types.FunctionType)]
    return found


def _code_objects(obj, seen: set) -> set:
    codes = set()
    stack = [f.__code__ for f in _functions_in(getattr(obj, "__func__", obj))]
    while stack:
        code = stack.pop()
        if code in seen:
            continue
        seen.add(code)
        codes.add(code)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return codes


def _forbidden_modules() -> list[tuple[str, types.ModuleType]]:
    return [(name, module) for name, module in list(sys.modules.items())
            if module is not None and name.startswith(FORBIDDEN_PREFIXES) and name not in ALLOWED_MODULES]


def _reference_codes() -> set:
    """Code objects of every function and method written in ``solutions`` and the autograder.

    Only code compiled from their own files: code generated elsewhere (a dataclass's ``__init__``,
    the standard library's ``reprlib`` wrapper) is shared with students' code and proves nothing."""
    modules = _forbidden_modules()
    files = {os.path.abspath(m.__file__) for _, m in modules if getattr(m, "__file__", None)}
    seen: set = set()
    codes: set = set()
    for name, module in modules:
        for obj in list(vars(module).values()):
            if getattr(obj, "__module__", None) == name:
                codes |= _code_objects(obj, seen)
    return {c for c in codes if os.path.abspath(c.co_filename) in files}


# key -> frozenset of ids; filled in place (a watched module global must never be rebound).
_FORBIDDEN_IDS: dict = {}


def forbidden_code_objects() -> frozenset:
    """Ids of the code objects of every function and method defined in ``solutions`` and the
    autograder (ids: the very objects; their copies are found by :func:`fingerprint`; the
    modules keep these code objects alive while grading).

    Cached until the set of imported ``solutions``/autograder modules changes (their contents
    cannot change unnoticed: :mod:`autograder.integrity` watches them)."""
    key = len(sys.modules)  # cheap; a module imported (or dropped) since changes it
    if key not in _FORBIDDEN_IDS:
        _FORBIDDEN_IDS.clear()
        _FORBIDDEN_IDS[key] = frozenset(id(code) for code in _reference_codes())
    return _FORBIDDEN_IDS[key]


def _instructions(code: types.CodeType) -> int:
    raw = code.co_code
    return sum(1 for i in range(0, len(raw), 2) if raw[i])  # opcode 0 is CACHE (3.11+ inline caches)


def _constant(value):
    if isinstance(value, types.CodeType):
        return ("code",) + _shape(value)
    if isinstance(value, (tuple, frozenset)):
        items = tuple(_constant(v) for v in value)
        return (type(value).__name__, tuple(sorted(items, key=repr)) if isinstance(value, frozenset) else items)
    return (type(value).__name__, repr(value) if isinstance(value, float) else value)  # 1 == 1.0 == True


def _shape(code: types.CodeType) -> tuple:
    consts = code.co_consts
    if consts and isinstance(consts[0], str) and code.co_flags & _FUNCTION_FLAG:
        consts = (None,) + consts[1:]  # a function's first constant is its docstring (or None)
    return (code.co_code, code.co_names, tuple(_constant(c) for c in consts))


_FUNCTION_FLAG = 0x02  # inspect.CO_NEWLOCALS: the code of a function, not of a module or class body


def fingerprint(code: types.CodeType) -> tuple | None:
    """What makes ``code`` the same function as another, wherever and whenever it was compiled:
    bytecode, the global/attribute names it uses, and its constants (nested code objects by their
    own fingerprint; the docstring ignored). Line numbers, file and local variable names do not
    count. ``None`` for comprehensions, lambdas, module/class bodies and functions under
    :data:`MIN_COPY_INSTRUCTIONS` instructions: an independent solution may well coincide with
    those, so they are only matched by identity."""
    if code.co_name.startswith("<") or not code.co_flags & _FUNCTION_FLAG:
        return None
    if _instructions(code) < MIN_COPY_INSTRUCTIONS:
        return None
    return _shape(code)


# Both filled in place, never rebound: these module globals are watched by autograder.integrity.
_REFERENCE_FINGERPRINTS: dict[tuple, str] = {}
_VERDICTS: dict[int, tuple] = {}  # id(code) -> (code, "a copy of ..." or None); code kept alive


def reference_fingerprints() -> dict[tuple, str]:
    """``fingerprint -> "module.qualname"`` for the reference's and autograder's functions.

    Computed once: :mod:`autograder.integrity` keeps these modules as they were."""
    if not _REFERENCE_FINGERPRINTS:
        modules = {os.path.abspath(m.__file__): name for name, m in _forbidden_modules()
                   if getattr(m, "__file__", None)}
        prints = {}
        for code in _reference_codes():
            shape = fingerprint(code)
            if shape is not None:
                prints.setdefault(shape, f"{modules[os.path.abspath(code.co_filename)]}.{code.co_qualname}")
        _REFERENCE_FINGERPRINTS.update(prints)
    return _REFERENCE_FINGERPRINTS


def _verdict(code: types.CodeType) -> tuple:
    shape = fingerprint(code)
    name = None if shape is None else reference_fingerprints().get(shape)
    entry = _VERDICTS[id(code)] = (code, None if name is None else f"a copy of {name}")
    return entry


def copied_from(code: types.CodeType) -> str | None:
    """``"a copy of module.qualname"`` if ``code`` is a recompiled reference function, else None."""
    return (_VERDICTS.get(id(code)) or _verdict(code))[1]


def _describe(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    where = ""
    for frame in reversed(frames):
        if frame.filename.startswith("<") or "ipykernel" in frame.filename:
            where = f" (line {frame.lineno} of your cell: {frame.line!r})" if frame.line else ""
            break
    return f"{type(err).__name__}: {err}{where}".strip()


def call(fn: Callable, *args, forbid: tuple = (), **kwargs) -> Outcome:
    """Run ``fn(*args, **kwargs)`` as student code; never raises (except KeyboardInterrupt).

    ``forbid``: further functions or classes (e.g. the toolbox's own version of the graded
    function) that count as delegating to a reference."""
    seen: set = set()
    extra = {id(code) for obj in forbid for code in _code_objects(getattr(obj, "__func__", obj), seen)}
    forbidden = forbidden_code_objects() | extra  # ``forbid`` extras: identity only (see fingerprint)
    reference_fingerprints()
    outcome = Outcome()
    verdicts = _VERDICTS

    def watch(frame, event, arg):  # runs on every call: keep it lean
        if event == "call":
            code = frame.f_code
            key = id(code)
            if key in forbidden:
                outcome.forbidden_calls.append(f"{frame.f_globals.get('__name__')}.{code.co_qualname}")
            else:
                copy = (verdicts.get(key) or _verdict(code))[1]
                if copy is not None:
                    outcome.forbidden_calls.append(copy)

    sink = io.StringIO()
    previous = sys.getprofile()
    start = time.perf_counter()
    with warnings.catch_warnings(), contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
        warnings.simplefilter("ignore")
        sys.setprofile(watch)
        try:
            outcome.value = fn(*args, **kwargs)
        except KeyboardInterrupt:
            raise
        except BaseException as err:  # noqa: BLE001 - a student's SystemExit must not end grading
            failure = err
        else:
            failure = None
        finally:
            tampered = sys.getprofile() is not watch
            sys.setprofile(previous)
    # Before anything else runs (the next reference computation): put back what the student's code
    # patched. The report sees it in integrity.violations() and gives no credit.
    if integrity.sealed():
        outcome.altered = integrity.restore()
    if failure is not None:
        outcome.error = _describe(failure)
    outcome.seconds = time.perf_counter() - start
    if tampered:
        outcome.forbidden_calls.append("sys.setprofile (the grader's watch was replaced)")
    return outcome


def call_on_model(model, fn: Callable, *args, forbid: tuple = (), grads: bool = False) -> tuple[Outcome, list[str]]:
    """:func:`call` ``fn(*args)``, then list what it changed in ``model`` (see
    :func:`autograder.model_state.differences`) and put the model back as it was."""
    from .model_state import differences, restore, snapshot

    state = snapshot(model)
    outcome = call(fn, *args, forbid=forbid)
    changed = differences(model, state, grads=grads)
    restore(model, state)
    return outcome, changed


REFERENCE_MESSAGE = ("your function calls the reference solution or the autograder ({}); "
                     "no credit for this part: write the function yourself")
