"""Calling a student's function safely from a grade cell.

``call(fn, *args)`` returns an :class:`Outcome` instead of raising: the value, or a one-line
description of the exception. While the student's code runs:

- stdout/stderr and warnings are captured (any stderr output would score the grade cell 0);
- a profiler watches for calls into ``solutions`` or the autograder's checks: a submission that
  delegates to the reference gets no credit for that part.
"""
from __future__ import annotations

import contextlib
import io
import sys
import time
import traceback
import types
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

#: Modules whose code a student's function must never run (the test models are allowed).
FORBIDDEN_PREFIXES = ("solutions", "autograder")
ALLOWED_MODULES = ("autograder.models",)


@dataclass
class Outcome:
    value: Any = None
    error: str | None = None
    forbidden_calls: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and not self.forbidden_calls


def _code_objects(obj, seen: set) -> set:
    codes = set()
    stack = []
    if isinstance(obj, types.FunctionType):
        stack.append(obj.__code__)
    elif isinstance(obj, type):
        for attr in vars(obj).values():
            codes |= _code_objects(getattr(attr, "__func__", attr), seen)
    while stack:
        code = stack.pop()
        if code in seen:
            continue
        seen.add(code)
        codes.add(code)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return codes


def forbidden_code_objects() -> frozenset:
    """Ids of the code objects of every function and method defined in ``solutions`` and the
    autograder (ids, not equality: code compiled elsewhere from the same text is a different
    function; the modules keep these code objects alive while grading)."""
    seen: set = set()
    codes: set = set()
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(FORBIDDEN_PREFIXES) or name in ALLOWED_MODULES:
            continue
        for obj in list(vars(module).values()):
            if getattr(obj, "__module__", None) == name:
                codes |= _code_objects(obj, seen)
    return frozenset(id(code) for code in codes)


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
    forbidden = forbidden_code_objects() | extra
    outcome = Outcome()

    def watch(frame, event, arg):
        if event == "call" and id(frame.f_code) in forbidden:
            outcome.forbidden_calls.append(f"{frame.f_globals.get('__name__')}.{frame.f_code.co_qualname}")

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
