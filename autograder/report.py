"""Partial-credit reports: named properties, each worth points, each failure with a message.

A check builds a :class:`Report`, adds one :class:`Property` per independent requirement, and
returns ``report.finish()``: the score as a plain ``float`` (nbgrader reads a test cell's numeric
last value as partial credit; a numpy scalar would print as ``np.float64(...)`` and be misread as
full credit). The report is printed to stdout. While autograding, checks run in the grader's
process and the grader writes the cell's outputs (:mod:`grading.trusted_tests`); in an
instructor's kernel they print as any cell does.

A property judged from what the student's kernel says about itself (side effects on the model,
gradients) is marked ``kernel_observed``: the report says so, such properties carry little
weight (a tenth to a fifth of a check), and they earn nothing unless the grader verified a result
of the same function (:data:`UNVERIFIED`), since the kernel belongs to the student.
"""
from __future__ import annotations

import contextlib
import functools
import io
import sys
import warnings
from dataclasses import dataclass, field

KERNEL_OBSERVED = "as observed in your kernel"
#: Why a kernel-observed property earns nothing: the kernel's word counts only beside a result the
#: grader verified (a forged "nothing changed" must not buy points for a function that does nothing).
UNVERIFIED = ("no call returned the reference's result, so what your kernel reports about side "
              "effects earns nothing yet")


@dataclass
class Property:
    """One independently graded requirement. ``failures``: messages naming the failing cases."""

    name: str
    points: float
    failures: list[str] = field(default_factory=list)
    checked: int = 0
    kernel_observed: bool = False

    def expect(self, ok: bool, message: str) -> bool:
        """Record one case; ``message`` (naming the case and the likely cause) if it fails."""
        self.checked += 1
        if not ok:
            self.failures.append(message)
        return ok

    def fail(self, message: str) -> None:
        self.expect(False, message)

    @property
    def passed(self) -> bool:
        return self.checked > 0 and not self.failures


class Report:
    """The result of one check: ``title`` (the graded function) and its properties."""

    def __init__(self, title: str):
        self.title = title
        self.properties: list[Property] = []
        self.notes: list[str] = []

    def add(self, name: str, points: float, kernel_observed: bool = False) -> Property:
        prop = Property(name, points, kernel_observed=kernel_observed)
        self.properties.append(prop)
        return prop

    def zero_all(self, reason: str) -> None:
        """Fail every property with the same reason."""
        for prop in self.properties:
            prop.fail(reason)

    @property
    def max_points(self) -> float:
        return float(sum(p.points for p in self.properties))

    @property
    def score(self) -> float:
        earned = sum(p.points for p in self.properties if p.passed)
        return float(min(round(earned, 6), round(self.max_points, 6)))

    def text(self, max_messages: int = 3) -> str:
        lines = [f"{self.title}: {self.score:g} / {self.max_points:g} points"]
        for prop in self.properties:
            mark = "ok  " if prop.passed else "FAIL"
            got = prop.points if prop.passed else 0
            where = f" ({KERNEL_OBSERVED})" if prop.kernel_observed else ""
            lines.append(f"  [{mark}] {got:g}/{prop.points:g}  {prop.name}{where}")
            for msg in prop.failures[:max_messages]:
                lines.append(f"         - {msg}")
            if len(prop.failures) > max_messages:
                lines.append(f"         - ... and {len(prop.failures) - max_messages} more failing case(s)")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def finish(self) -> float:
        """Print the report to stdout and return the score as a plain float."""
        print(self.text(), file=sys.stdout, flush=True)
        return self.score


def graded(check=None, *, cases=()):
    """Decorator for checks: whatever the reference or the toolbox writes to stderr while the check
    runs (a progress bar, a warning) is swallowed; in an instructor's kernel, stderr output would
    mark the test cell as failed. ``cases``: the functions that build the check's seeded cases
    (``check.cases``; :func:`autograder.warm_up` builds them ahead of time)."""
    def wrap(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs) -> float:
            with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fn(*args, **kwargs)
        wrapper.cases = tuple(cases)
        return wrapper
    return wrap(check) if check is not None else wrap


def summarize(value) -> str:
    """A returned value in a few words for a report: a tensor's shape, dtype and range, otherwise
    its type (and shape, for arrays)."""
    import torch

    if isinstance(value, torch.Tensor):
        v = value.detach().float()
        rng = f", range [{float(v.min()):.3g}, {float(v.max()):.3g}]" if v.numel() else ""
        return f"tensor {tuple(value.shape)} {value.dtype}{rng}"
    shape = getattr(value, "shape", None)
    return f"{type(value).__name__}" + (f" of shape {tuple(shape)}" if shape is not None else "")
