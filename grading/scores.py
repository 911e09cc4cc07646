"""Read scores back from the gradebook (the only trustworthy source: never exit codes).

``python -m grading.scores ASSIGNMENT [--students a b] [--root PATH]`` prints the score table.

Cell kinds, from the nbgrader metadata of the source notebooks:

- autograded: a grade cell that is not a solution cell (a test cell); its score is the test
  outcome (partial credit when the cell's last value is a number);
- manual: a grade cell that is also a solution cell (a written answer) or a task cell. nbgrader
  scores an unchanged (blank) answer 0 automatically; any other answer waits for a human grader:
  its score is ``None`` ("pending") until someone grades it.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grading.course import COURSE_ROOT


@dataclass(frozen=True)
class GradedPart:
    """One graded cell of an assignment, as declared in its source notebook."""
    notebook: str      # notebook name without .ipynb
    grade_id: str
    points: float
    manual: bool       # True for written answers and tasks (graded by a human)


def graded_parts(root: Path | str, assignment: str) -> list[GradedPart]:
    """The graded cells of ``source/<assignment>/*.ipynb``, in notebook order (sorted by file
    name), then cell order."""
    parts = []
    for path in sorted((Path(root) / "source" / assignment).glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if not (meta.get("grade") or meta.get("task")):
                continue
            manual = bool(meta.get("task") or meta.get("solution") or cell.cell_type != "code")
            parts.append(GradedPart(path.stem, meta["grade_id"], float(meta.get("points", 0)),
                                    manual))
    return parts


def _gradebook(root: Path | str):
    from nbgrader.api import Gradebook

    db = Path(root).resolve() / "gradebook.db"
    if not db.exists():
        raise FileNotFoundError(f"no gradebook at {db}: autograde something first")
    return Gradebook(f"sqlite:///{db}")


def _score(grade) -> float | None:
    """The grade's score (a manual score overrides the automatic one); None when nobody and
    nothing has scored it (a written answer awaiting a grader)."""
    if grade.manual_score is None and grade.auto_score is None:
        return None
    return float(grade.score)


def cell_scores(root: Path | str, assignment: str,
                student: str) -> dict[str, tuple[float | None, float]]:
    """``{grade_id: (score, max_score)}`` for every graded cell of the student's submission.

    ``score`` is None for a manually graded cell that no one has graded yet. Raises
    ``nbgrader.api.MissingEntry`` when the student has no autograded submission.
    """
    with _gradebook(root) as gb:
        submission = gb.find_submission(assignment, student)
        return {
            grade.name: (_score(grade), float(grade.max_score))
            for notebook in submission.notebooks
            for grade in notebook.grades
        }


def submitted_students(root: Path | str, assignment: str) -> list[str]:
    """The students with an autograded submission of ``assignment`` in the gradebook, sorted."""
    from nbgrader.api import MissingEntry

    with _gradebook(root) as gb:
        try:
            return sorted(s.student.id for s in gb.find_assignment(assignment).submissions)
        except MissingEntry:
            return []


def _fmt(x: float | None) -> str:
    if x is None:
        return "?"
    return f"{x:g}" if x == round(x, 3) else f"{x:.3f}"


def score_table(root: Path | str, assignment: str, students: list[str] | None = None) -> str:
    """A plain-text table: one row per student, one column per graded cell (grade ids, in source
    order), then the autograded total out of the autograded maximum and the number of manually
    graded cells still waiting for a grader. ``?`` marks a pending manual score, ``-`` a cell
    missing from the submission; the first row gives each cell's maximum (``*``: manual)."""
    from nbgrader.api import MissingEntry

    root = Path(root)
    parts = graded_parts(root, assignment)
    if students is None:
        students = submitted_students(root, assignment)
    auto_max = sum(p.points for p in parts if not p.manual)

    header = ["student"] + [p.grade_id for p in parts] + ["auto total", "manual pending"]
    rows = [["(max)"] + [_fmt(p.points) + ("*" if p.manual else "") for p in parts]
            + [_fmt(auto_max), ""]]
    for student in students:
        try:
            scores = cell_scores(root, assignment, student)
        except MissingEntry:
            rows.append([student, "(no autograded submission)"])
            continue
        cells, total, pending = [], 0.0, 0
        for p in parts:
            if p.grade_id not in scores:
                cells.append("-")
                continue
            score, _ = scores[p.grade_id]
            cells.append(_fmt(score))
            if p.manual:
                pending += score is None
            else:
                total += score or 0.0
        rows.append([student] + cells + [f"{_fmt(total)}/{_fmt(auto_max)}", str(pending)])

    full = [header] + [r for r in rows if len(r) == len(header)]
    widths = [max(len(r[i]) for r in full) for i in range(len(header))]
    widths[0] = max(len(r[0]) for r in [header] + rows)

    def line(values: list[str]) -> str:
        if len(values) != len(header):  # a row with a message instead of scores
            return values[0].ljust(widths[0]) + "  " + " ".join(values[1:])
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    title = (f"{assignment}: scores from {root / 'gradebook.db'} "
             f"(? = manual score pending, * = manually graded)")
    out = [title, line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading.scores", description=__doc__.split("\n")[0])
    parser.add_argument("assignment")
    parser.add_argument("--students", nargs="+", default=None)
    parser.add_argument("--root", type=Path, default=COURSE_ROOT, help="course root")
    args = parser.parse_args(argv)
    print(score_table(args.root, args.assignment, args.students))
    return 0


if __name__ == "__main__":
    sys.exit(main())
