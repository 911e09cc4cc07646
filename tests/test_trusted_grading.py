"""What stays true around trusted grading, through nbgrader's own commands.

- The course's test cells can run in the grader: every name they use comes from the set-up cells,
  earlier test cells or the assignment's contract (what the answer cells define), never from a
  cell the student may edit (a static check of every assignment).
- ``nbgrader validate`` works as before: the instructor's source notebook passes with its hidden
  tests run in the instructor's own kernel; a student's filled-in release passes, the blank one
  fails.
- A kernel can plant no timestamp: a resubmission is regraded by a plain ``nbgrader autograde``
  (no ``--force``) even after the first grading's kernel tried to write one everywhere.
"""
from __future__ import annotations

import ast
import builtins
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from grading import course, scores
from grading.cells import is_locked_code, is_test_cell
from grading.submissions import fill
from grading.trusted_tests import contract_names
from support import ROOT, instructor_answers, release_notebook, source_notebook

ASSIGNMENTS = sorted(p.name for p in (ROOT / "source").iterdir() if p.is_dir())


def _free_names(source: str) -> set[str]:
    """Names a cell reads that it does not bind itself (module level; comprehensions and
    function bodies bind their own)."""
    tree = ast.parse(source)
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.Lambda, ast.ClassDef)):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                bound.add(node.name)
            args = getattr(node, "args", None)
            if args is not None:
                bound |= {a.arg for a in [*args.args, *args.kwonlyargs, *args.posonlyargs]}
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return used - bound - set(dir(builtins))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_test_cells_use_only_trusted_names_and_the_contract(assignment):
    nb = nbformat.read(source_notebook(assignment), as_version=4)
    contract = set(contract_names(release_notebook(assignment)))
    known: set[str] = set()
    for cell in nb.cells:
        if is_locked_code(cell) or is_test_cell(cell):
            missing = _free_names(cell.source) - known - contract
            assert not missing, f"{cell.metadata['nbgrader']['grade_id']} uses {sorted(missing)}, which " \
                                "only a student-editable cell defines: the grader cannot see it"
            tree = ast.parse(cell.source)
            known |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            known |= {(a.asname or a.name).split(".")[0] for n in ast.walk(tree)
                      if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
            known |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def _validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "validate", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_nbgrader_validate_works_for_instructors_and_students(assignment, tmp_path):
    source = _validate(source_notebook(assignment))
    assert "Success! Your notebook passes all the tests." in source.stdout, source.stdout[-3000:] + source.stderr[-2000:]
    filled = tmp_path / "filled.ipynb"
    nbformat.write(fill(release_notebook(assignment), instructor_answers(assignment)), str(filled))
    assert "Success!" in _validate(filled).stdout
    blank = tmp_path / "blank.ipynb"
    nbformat.write(release_notebook(assignment), str(blank))
    assert "failed" in _validate(blank).stdout.lower()


def test_a_resubmission_is_regraded_whatever_the_first_kernel_wrote(tmp_path):
    a, nb_name = "L2A2_gradcam", "L2A2_gradcam.ipynb"
    root = course.copy_course(tmp_path / "course")
    course.generate_release(a, root)
    planted = fill(release_notebook(a), instructor_answers(a))
    setup = next(i for i, c in enumerate(planted.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    planted.cells.insert(setup + 1, new_code_cell(
        "import os\n"
        f"for path in ['timestamp.txt', '/sandbox/timestamp.txt', '{root}/autograded/s/{a}/timestamp.txt',\n"
        f"             '{root}/submitted/s/{a}/timestamp.txt']:\n"
        "    try:\n        open(path, 'w').write('2099-01-01 00:00:00.000000 UTC')\n    except OSError:\n        pass"))
    course.submit(root, "s", a, planted, nb_name, timestamp="2030-01-01 10:00:00.000000 UTC")
    course.nbgrader("autograde", a, root=root)
    assert (root / "autograded" / "s" / a / "timestamp.txt").read_text().startswith("2030-01-01 10")
    assert scores.cell_scores(root, a, "s")["test_localization_box_hidden"] == (2.0, 2.0)

    resubmitted = fill(release_notebook(a), instructor_answers(a))   # now with a bug in the box
    box = next(c for c in resubmitted.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "localization_box")
    box.source = box.source.replace("    return int(rows.min())", "    return 0, 0, 0, 0\n    return int(rows.min())")
    course.submit(root, "s", a, resubmitted, nb_name, timestamp="2030-01-02 10:00:00.000000 UTC")
    course.nbgrader("autograde", a, root=root)      # no --force: nbgrader compares timestamps
    assert scores.cell_scores(root, a, "s")["test_localization_box_hidden"] == (0.0, 2.0)
