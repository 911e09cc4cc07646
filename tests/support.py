"""Helpers shared by the tests: run an assignment's answers in-process, like a notebook would."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import nbformat

from grading.submissions import solution_answers

ROOT = Path(__file__).resolve().parents[1]


def source_notebook(assignment: str) -> Path:
    (path,) = sorted((ROOT / "source" / assignment).glob("*.ipynb"))
    return path


def cell_ids(assignment: str, kind: str) -> list[str]:
    """Grade ids in notebook order; ``kind`` is 'answer' (code solution cells), 'test' or 'manual'."""
    nb = nbformat.read(source_notebook(assignment), as_version=4)
    ids = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if kind == "answer" and meta.get("solution") and cell.cell_type == "code":
            ids.append(meta["grade_id"])
        elif kind == "test" and meta.get("grade") and not meta.get("solution"):
            ids.append(meta["grade_id"])
        elif kind == "manual" and meta.get("grade") and meta.get("solution") and cell.cell_type == "markdown":
            ids.append(meta["grade_id"])
    return ids


def instructor_answers(assignment: str) -> dict[str, str]:
    return solution_answers(source_notebook(assignment))


def setup_source(assignment: str) -> str:
    nb = nbformat.read(source_notebook(assignment), as_version=4)
    return next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")


def run_answers(assignment: str, answers: dict[str, str], allow_errors: bool = False) -> dict:
    """Namespace after running the setup cell and every code answer cell, in notebook order.
    ``allow_errors``: a cell that raises is passed over, as nbgrader's execution does."""
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(setup_source(assignment), "<setup>", "exec"), namespace)
        for grade_id in cell_ids(assignment, "answer"):
            try:
                exec(compile(answers[grade_id], f"<{grade_id}>", "exec"), namespace)
            except Exception:
                if not allow_errors:
                    raise
    return namespace


def quiet(check, *args, **kwargs) -> tuple[float, str]:
    """Run a check, returning (score, printed report)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        score = check(*args, **kwargs)
    return score, out.getvalue()


def grade_through_nbgrader(course_dir: Path, assignment: str, submissions: dict) -> dict:
    """Autograde ``submissions`` (student -> notebook) in a scratch copy of the course.

    Copies the course into ``course_dir``, regenerates the release, submits every notebook,
    runs ``nbgrader autograde`` once for all of them and ``generate_feedback``, and returns
    ``{student: {grade_id: (score, max_score)}}`` read from the gradebook (never from exit codes).
    """
    from grading import course, scores

    root = course.copy_course(course_dir)
    course.generate_release(assignment, root)
    for student, notebook in submissions.items():
        course.submit(root, student, assignment, notebook, source_notebook(assignment).name)
    course.autograde(root, assignment)
    course.generate_feedback(root, assignment)
    for student in submissions:
        html = root / "feedback" / student / assignment / source_notebook(assignment).with_suffix(".html").name
        assert html.is_file() and "Score" in html.read_text(), f"no feedback for {student}: {html}"
    return {student: scores.cell_scores(root, assignment, student) for student in submissions}


def grade_in_process(assignment: str, answers: dict[str, str]) -> dict[str, tuple[float, float, str]]:
    """``{test cell: (score, max, text of its outputs)}`` of every test cell, visible and hidden, as the grader scores
    them, but in this process: the answers run here (as an instructor's kernel would), the test
    cells through :class:`grading.trusted_tests.TrustedTests` (the same runs, outputs and
    provenance rules as while autograding), scored by nbgrader's own ``determine_grade``. Fast
    enough for every example submission; ``nbgrader autograde`` itself grades a few of them in
    test_nbgrader_end_to_end.py."""
    import autograder
    from grading.cells import is_locked_code, is_test_cell
    from grading.submissions import fill
    from grading.trusted_tests import TrustedTests
    from nbgrader.utils import determine_grade

    namespace = run_answers(assignment, answers, allow_errors=True)
    graded = fill(release_notebook(assignment), {k: v for k, v in answers.items()
                                                 if k in cell_ids(assignment, "answer") + cell_ids(assignment, "manual")})
    runner = TrustedTests(release_notebook(assignment), graded, None, float("inf"),
                          autograder.TOOLBOX_IMPLEMENTATIONS, local=namespace)
    scores = {}
    for cell in nbformat.read(source_notebook(assignment), as_version=4).cells:
        if is_locked_code(cell):
            runner.run_locked(cell.source)
        elif is_test_cell(cell):
            cell.outputs, _ = runner.run_test(cell.source)
            text = "\n".join(o.get("text", "") or "\n".join(o.get("traceback", [])) for o in cell.outputs)
            scores[cell.metadata.nbgrader["grade_id"]] = (*determine_grade(cell), text)
    return scores


def release_notebook(assignment: str):
    (path,) = sorted((ROOT / "release" / assignment).glob("*.ipynb"))
    return nbformat.read(path, as_version=4)


def check_scores(checks: dict, namespace: dict) -> dict[str, tuple[float, str]]:
    """``{hidden cell: (score, report)}`` for ``checks`` = ``{cell: (name, check, points)}``."""
    return {cell: quiet(check, namespace[name], points=pts) for cell, (name, check, pts) in checks.items()}
