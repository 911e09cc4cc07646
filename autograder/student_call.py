"""Calling a student's function from a check: the outcome as data, never an exception.

``call(fn, *args)`` returns an :class:`Outcome`: the value the function returned, or a one-line
description of what it raised (type, message, the line of the notebook cell), the time it took,
and, for ``grads_wrt``, gradients of ``value.sum()`` with respect to those arguments. ``fn`` is
either a notebook function in the student's kernel (:class:`autograder.remote.RemoteFunction`,
while autograding) or a local function (an instructor's kernel, the test suite); both go through
:func:`autograder.remote.observe`, so both are seen the same way. What the student's kernel
reports about its own process (gradients, side effects) is testimony: checks say so in their
reports (``Property(kernel_observed=True)``) and give it little weight.

Delegation (calling the reference or a toolbox implementation) is judged from the notebook's
source by :mod:`autograder.delegation`, not here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from . import remote


@dataclass
class Outcome:
    value: Any = None
    error: str | None = None
    seconds: float = 0.0
    grads: list = field(default_factory=list)
    #: Facts the kernel reported that the grader cannot see on its own objects.
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def call(fn: Callable, *args, grads_wrt: Iterable[int | str] = (), **kwargs) -> Outcome:
    """Run ``fn(*args, **kwargs)`` as student code; never raises."""
    try:
        observed = remote.observe(fn, args, kwargs, grads_wrt)
    except remote.CallTimeout as err:
        return Outcome(error=f"CellTimeoutError: the cell's time limit ran out while your function ran ({err})")
    except remote.KernelLost as err:
        return Outcome(error=f"DeadKernelError: your kernel stopped working ({err})")
    except remote.InvalidReply as err:
        return Outcome(error=f"InvalidReply: {err}")
    error = None if observed.error is None else observed.error.describe()
    return Outcome(value=observed.value, error=error, seconds=observed.seconds, grads=observed.grads,
                   notes=observed.notes)


def call_on_model(model, fn: Callable, *args, grads: bool = False,
                  grads_wrt: Iterable[int | str] = ()) -> tuple[Outcome, list[str]]:
    """:func:`call` ``fn(*args)``, then list what it changed in ``model`` (see
    :func:`autograder.model_state.differences`; in the student's kernel, as it reported) and put
    the model back as it was."""
    from .model_state import differences, restore, snapshot

    state = snapshot(model)
    outcome = call(fn, *args, grads_wrt=grads_wrt)
    changed = differences(model, state, grads=grads) + outcome.notes
    restore(model, state)
    return outcome, changed
