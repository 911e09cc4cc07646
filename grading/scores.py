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
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grading import gradebook
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


def _gradebook(root: Path | str, url: str | None = None):
    """The course's gradebook (``url``, default :func:`grading.gradebook.db_url`); raises
    ``FileNotFoundError`` when it does not exist yet."""
    url = url or gradebook.db_url(root)
    if not gradebook.exists(url):
        raise FileNotFoundError(f"no gradebook at {gradebook.redact(url)}: autograde something first")
    return gradebook.open_gradebook(url)


def _score(grade) -> float | None:
    """The grade's score (a manual score overrides the automatic one); None when nobody and
    nothing has scored it (a written answer awaiting a grader)."""
    if grade.manual_score is None and grade.auto_score is None:
        return None
    return float(grade.score)


def _submission_scores(gb, assignment: str, student: str) -> dict[str, tuple[float | None, float]]:
    submission = gb.find_submission(assignment, student)
    return {
        grade.name: (_score(grade), float(grade.max_score))
        for notebook in submission.notebooks
        for grade in notebook.grades
    }


def cell_scores(root: Path | str, assignment: str, student: str,
                url: str | None = None) -> dict[str, tuple[float | None, float]]:
    """``{grade_id: (score, max_score)}`` for every graded cell of the student's submission.

    ``score`` is None for a manually graded cell that no one has graded yet. Raises
    ``nbgrader.api.MissingEntry`` when the student has no autograded submission. ``url``: the
    gradebook (default: the course's, :func:`grading.gradebook.db_url`).
    """
    with _gradebook(root, url) as gb:
        return _submission_scores(gb, assignment, student)


def class_scores(root: Path | str, assignment: str, students: list[str],
                 url: str | None = None) -> dict[str, dict[str, tuple[float | None, float]] | None]:
    """:func:`cell_scores` of each student (None: no autograded submission), one connection."""
    from nbgrader.api import MissingEntry

    out: dict[str, dict[str, tuple[float | None, float]] | None] = {}
    with _gradebook(root, url) as gb:
        for student in students:
            try:
                out[student] = _submission_scores(gb, assignment, student)
            except MissingEntry:
                out[student] = None
    return out


def submitted_students(root: Path | str, assignment: str, url: str | None = None) -> list[str]:
    """The students with an autograded submission of ``assignment`` in the gradebook, sorted."""
    from nbgrader.api import MissingEntry

    with _gradebook(root, url) as gb:
        try:
            return sorted(s.student.id for s in gb.find_assignment(assignment).submissions)
        except MissingEntry:
            return []


def fmt(x: float | None) -> str:
    """A score as short text: ``3``, ``1.5``, ``0.333``; ``?`` for None (pending)."""
    if x is None:
        return "?"
    return f"{round(x, 3):g}"  # sums of partial credit: 6.8999999 -> 6.9


_fmt = fmt

#: Widest part label and student column of :func:`score_table` (longer ones are cut, with a
#: legend saying what was cut).
MAX_LABEL = 40
MAX_STUDENT = 16


def _middle(text: str, width: int) -> str:
    """``text`` with its middle replaced by ``...`` when longer than ``width``."""
    if len(text) <= width:
        return text
    keep = max(width - 3, 2)
    return text[: keep // 2] + "..." + text[len(text) - (keep - keep // 2):]


def _short(name: str, limit: int) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "~"


def score_table(root: Path | str, assignment: str, students: list[str] | None = None,
                width: int = 100, url: str | None = None) -> str:
    """A plain-text table that fits ``width`` columns: one row per graded part (grade cells in
    source order, with their maximum; ``*``: graded by hand), one column per student, then
    each student's autograded total out of the autograded maximum and the number of written
    answers still waiting for a grader. Students that do not fit go on further pages (the part
    column repeated). ``?`` marks a pending manual score, ``-`` a cell missing from the
    submission; a student without an autograded submission is listed below the page."""
    root = Path(root)
    url = url or gradebook.db_url(root)
    parts = graded_parts(root, assignment)
    if students is None:
        students = submitted_students(root, assignment, url)
    several = len({p.notebook for p in parts}) > 1
    labels = [f"{p.notebook}:{p.grade_id}" if several else p.grade_id for p in parts]
    auto_max = sum(p.points for p in parts if not p.manual)
    scores = class_scores(root, assignment, students, url) if students else {}

    missing = [s for s in students if scores.get(s) is None]
    shown = [s for s in students if scores.get(s) is not None]
    columns = {}
    for student in shown:
        got, cells, total, pending = scores[student], [], 0.0, 0
        for p in parts:
            if p.grade_id not in got:
                cells.append("-")
                continue
            score = got[p.grade_id][0]
            cells.append(fmt(score))
            if p.manual:
                pending += score is None
            else:
                total += score or 0.0
        columns[student] = cells + [f"{fmt(total)}/{fmt(auto_max)}", str(pending)]

    row_labels = [_short(lb, MAX_LABEL) for lb in labels] + ["auto total", "manual pending"]
    maxima = [fmt(p.points) + ("*" if p.manual else "") for p in parts] + [fmt(auto_max), ""]
    label_w = max(len("part"), *(len(lb) for lb in row_labels))
    max_w = max(len("max"), *(len(m) for m in maxima))
    heads = {s: _short(s, MAX_STUDENT) for s in shown}
    col_w = {s: max(len(heads[s]), *(len(v) for v in columns[s])) for s in shown}

    pages: list[list[str]] = [] if shown else [[]]  # no student yet: the parts and maxima
    room = width - label_w - 2 - max_w
    for student in shown:
        need = 2 + col_w[student]
        if pages and sum(2 + col_w[x] for x in pages[-1]) + need <= room:
            pages[-1].append(student)
        else:
            pages.append([student])

    out = textwrap.wrap(f"{assignment}: scores (? = manual score pending, - = no grade, "
                        "* = graded by hand)", width)
    out.append(_middle(f"gradebook: {gradebook.redact(url)}", width))
    for number, page in enumerate(pages, 1):
        out.append("")
        if len(pages) > 1:
            first = sum(len(p) for p in pages[:number - 1]) + 1
            out.append(f"students {first}-{first + len(page) - 1} of {len(shown)} "
                       f"(page {number}/{len(pages)})")
        header = f"{'part':<{label_w}}  {'max':>{max_w}}" + "".join(
            f"  {heads[s]:>{col_w[s]}}" for s in page)
        out += [header, "-" * len(header)]
        for i, label in enumerate(row_labels):
            if i == len(parts):
                out.append("-" * len(header))
            out.append((f"{label:<{label_w}}  {maxima[i]:>{max_w}}" + "".join(
                f"  {columns[s][i]:>{col_w[s]}}" for s in page)).rstrip())
    cut = [f"{_short(x, limit)} = {x}" for x, limit in
           [(lb, MAX_LABEL) for lb in labels] + [(s, MAX_STUDENT) for s in shown] if len(x) > limit]
    if cut:
        out += ["", "names cut to fit:"] + [_middle(f"  {c}", width) for c in cut]
    if missing:
        out += [""] + textwrap.wrap("no autograded submission: " + ", ".join(missing), width)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading.scores", description=__doc__.split("\n")[0])
    parser.add_argument("assignment")
    parser.add_argument("--students", nargs="+", default=None)
    parser.add_argument("--root", type=Path, default=COURSE_ROOT, help="course root")
    parser.add_argument("--width", type=int, default=100, help="terminal columns (default 100)")
    args = parser.parse_args(argv)
    print(score_table(args.root, args.assignment, args.students, width=args.width))
    return 0


if __name__ == "__main__":
    sys.exit(main())
