"""Partial-credit reports: named properties, each worth points, each failure with a message.

A check builds a :class:`Report`, adds one :class:`Property` per independent requirement, and
returns ``report.finish()``: the score as a plain ``float`` (nbgrader reads a test cell's numeric
last value as partial credit; a numpy scalar would print as ``np.float64(...)`` and be misread as
full credit). The report itself is printed to stdout, never stderr (stderr scores the cell 0).

Integrity: every check is wrapped by :func:`graded`, which restores the grading modules and the
libraries they compare with (:mod:`autograder.integrity`) before and after the check, and
:func:`autograder.student_call.call` restores after each student call. While :func:`autograder.integrity.violations` is not empty
(anything patched since the process was sealed, even if already undone), :meth:`Report.finish`
fails every property with a message naming what was patched: a notebook that alters the grader
earns nothing for the parts graded after it did so.
"""
from __future__ import annotations

import contextlib
import functools
import io
import sys
from dataclasses import dataclass, field

from . import integrity

#: Why a part scores 0 when the grading modules or the libraries they use were altered.
ALTERED_MESSAGE = ("the grading environment was altered ({}): graded functions are not credited while "
                   "grading modules are altered (the originals were restored; remove the code that "
                   "patches them)")


def altered_names(altered: list[str], limit: int = 3) -> str:
    """The first ``limit`` violations, then how many more."""
    shown = "; ".join(altered[:limit])
    return shown + (f"; and {len(altered) - limit} more" if len(altered) > limit else "")


def integrity_violations() -> list[str]:
    """Restore anything altered right now, then every violation recorded since sealing."""
    integrity.seal()  # idempotent; sealed already when the autograder package was imported
    integrity.restore()
    return integrity.violations()


@dataclass
class Property:
    """One independently graded requirement. ``failures``: messages naming the failing cases."""

    name: str
    points: float
    failures: list[str] = field(default_factory=list)
    checked: int = 0

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

    def add(self, name: str, points: float) -> Property:
        prop = Property(name, points)
        self.properties.append(prop)
        return prop

    def zero_all(self, reason: str) -> None:
        """Fail every property with the same reason (e.g. the function calls the reference)."""
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
            lines.append(f"  [{mark}] {got:g}/{prop.points:g}  {prop.name}")
            for msg in prop.failures[:max_messages]:
                lines.append(f"         - {msg}")
            if len(prop.failures) > max_messages:
                lines.append(f"         - ... and {len(prop.failures) - max_messages} more failing case(s)")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def finish(self, forbidden_calls: list[str] = ()) -> float:
        """Print the report to stdout and return the score as a plain float.

        ``forbidden_calls``: calls into the reference seen while the student's code ran; any
        one of them fails every property (no credit for delegating). Any integrity violation
        (:func:`integrity_violations`) fails every property too, naming what was patched."""
        altered = integrity_violations()
        if altered:
            self.zero_all("not credited: grading modules were altered (see the note below)")
            self.notes.append(ALTERED_MESSAGE.format(altered_names(altered)))
        if forbidden_calls:
            from .student_call import REFERENCE_MESSAGE

            self.zero_all(REFERENCE_MESSAGE.format(sorted(set(forbidden_calls))[0]))
        print(self.text(), file=sys.stdout, flush=True)
        return self.score


def graded(check):
    """Decorator for checks: whatever the reference or the toolbox writes to stderr while the check
    runs (a progress bar, a warning) is swallowed, because any stderr output scores the cell 0.

    Integrity: the watched modules are restored before the check (in-process, no ``exec`` may have
    run since a student's patch) and after it; if a violation exists after the check and the
    report did not already score 0 (e.g. something the student left behind acted after
    :meth:`Report.finish`), the check prints why and returns 0.0."""
    @functools.wraps(check)
    def wrapper(*args, **kwargs) -> float:
        import warnings

        integrity_violations()
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = check(*args, **kwargs)
        altered = integrity_violations()
        if altered and score:
            print(f"{check.__name__}: 0 points: {ALTERED_MESSAGE.format(altered_names(altered))}",
                  file=sys.stdout, flush=True)
            return 0.0
        return score
    return wrapper
