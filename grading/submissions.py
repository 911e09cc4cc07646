"""Build submission notebooks from the release notebook.

An *answers* dict maps the grade id of each nbgrader solution cell to the source a student would
write there. :func:`solution_answers` reads the instructor's answers from a source notebook;
:func:`patch` introduces a bug into one answer; :func:`fill` puts answers into a copy of the
release notebook, which :func:`grading.course.submit` then writes as a submission.

A :class:`Variant` names one way of answering (complete, blank, one specific bug, ...) and says
which grade cells it is expected to lose points on.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat
from nbformat import NotebookNode

#: nbgrader's default solution delimiters: a line containing one of them is a marker line.
BEGIN_SOLUTION = "BEGIN SOLUTION"
END_SOLUTION = "END SOLUTION"

Answers = dict[str, str]


def _nbgrader_meta(cell: NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def solution_cells(notebook: NotebookNode) -> dict[str, NotebookNode]:
    """``{grade_id: cell}`` for the notebook's nbgrader solution cells, in cell order."""
    return {
        _nbgrader_meta(c)["grade_id"]: c
        for c in notebook.cells
        if _nbgrader_meta(c).get("solution")
    }


def strip_solution_markers(source: str) -> str:
    """The cell source without its ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines (matched
    as nbgrader does: any line containing the delimiter)."""
    return "\n".join(
        line for line in source.split("\n")
        if BEGIN_SOLUTION not in line and END_SOLUTION not in line
    )


def solution_answers(source_notebook_path: Path | str) -> Answers:
    """The instructor's answer of every solution cell of a source notebook: the whole cell
    text (code or markdown) minus the solution marker lines."""
    nb = nbformat.read(str(source_notebook_path), as_version=4)
    return {gid: strip_solution_markers(c.source) for gid, c in solution_cells(nb).items()}


def fill(release_notebook: NotebookNode, answers: Answers) -> NotebookNode:
    """A deep copy of ``release_notebook`` with each solution cell named in ``answers`` holding
    that answer; every other cell untouched. Raises ``KeyError`` naming grade ids that are not
    solution cells of the notebook."""
    nb = copy.deepcopy(release_notebook)
    cells = solution_cells(nb)
    unknown = sorted(set(answers) - set(cells))
    if unknown:
        raise KeyError(f"not solution cells of this notebook: {', '.join(unknown)}")
    for gid, text in answers.items():
        cells[gid].source = text
    return nb


def patch(answers: Answers, grade_id: str, old: str, new: str) -> Answers:
    """A copy of ``answers`` with ``old`` replaced by ``new`` in the answer ``grade_id``.

    Raises ``KeyError`` for an unknown grade id and ``ValueError`` unless ``old`` occurs exactly
    once, so that a bug patch can never silently do nothing (or too much).
    """
    if grade_id not in answers:
        raise KeyError(f"no answer {grade_id!r}")
    count = answers[grade_id].count(old)
    if count != 1:
        raise ValueError(f"{old!r} occurs {count} times in answer {grade_id!r} (expected once)")
    patched = dict(answers)
    patched[grade_id] = answers[grade_id].replace(old, new)
    return patched


@dataclass(frozen=True)
class Variant:
    """One way of answering an assignment, built from the instructor's answers.

    ``answers`` turns the instructor's answers into this variant's answers (e.g. a
    :func:`patch` that plants one bug); ``affected`` is the set of grade-cell ids (test cells)
    that are expected to lose points with this variant; every other autograded cell is expected
    to keep full marks. Tests compare both sides against the gradebook.
    """
    name: str
    description: str
    answers: Callable[[Answers], Answers]
    affected: frozenset[str] = field(default_factory=frozenset)

    def build(self, release_notebook: NotebookNode, instructor_answers: Answers) -> NotebookNode:
        """The submission notebook of this variant."""
        return fill(release_notebook, self.answers(dict(instructor_answers)))


def replace_cells(**cells: str) -> Callable[[Answers], Answers]:
    """An answers transform that swaps whole answer cells (another correct implementation)."""
    def answers(instructor: Answers) -> Answers:
        out = dict(instructor)
        out.update({k: v.strip() + "\n" for k, v in cells.items()})
        return out
    return answers


def combine(*variants: Variant) -> Callable[[Answers], Answers]:
    """An answers transform applying several variants in turn (e.g. several bugs in one submission)."""
    def answers(instructor: Answers) -> Answers:
        for variant in variants:
            instructor = variant.answers(instructor)
        return instructor
    return answers


def patches(*edits: tuple[str, str, str]) -> Callable[[Answers], Answers]:
    """An answers transform applying :func:`patch` for each ``(grade_id, old, new)`` (a planted bug)."""
    def answers(instructor: Answers) -> Answers:
        for grade_id, old, new in edits:
            instructor = patch(instructor, grade_id, old, new)
        return instructor
    return answers
