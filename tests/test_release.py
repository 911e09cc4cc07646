"""release/ is what nbgrader generates from source/, and nothing instructor-only leaks into it."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from grading import course

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.name for p in (ROOT / "source").iterdir() if p.is_dir())
LEAKS = re.compile(r"BEGIN SOLUTION|END SOLUTION|BEGIN HIDDEN TESTS|END HIDDEN TESTS|"
                   r"\bsolutions\b\s*(import|\.)|import solutions|from solutions|autograder")


def _comparable(path: Path) -> list[tuple]:
    nb = nbformat.read(path, as_version=4)
    return [(c.cell_type, c.source, dict(c.metadata)) for c in nb.cells]


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory):
    root = course.copy_course(tmp_path_factory.mktemp("course"))
    for assignment in ASSIGNMENTS:
        course.generate_release(assignment, root)
    return root / "release"


def test_there_are_assignments():
    assert "L2A2_gradcam" in ASSIGNMENTS


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_equals_a_fresh_generation(assignment, fresh_release):
    committed = sorted(p.relative_to(ROOT / "release") for p in (ROOT / "release" / assignment).rglob("*") if p.is_file())
    fresh = sorted(p.relative_to(fresh_release) for p in (fresh_release / assignment).rglob("*") if p.is_file())
    assert committed == fresh, "release/ has other files than a fresh generation: run `make release`"
    for rel in committed:
        if rel.suffix == ".ipynb":
            assert _comparable(ROOT / "release" / rel) == _comparable(fresh_release / rel), \
                f"release/{rel} is stale: run `make release` and commit it"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_leaks_nothing(assignment):
    for path in (ROOT / "release" / assignment).rglob("*"):
        assert "solution" not in path.name.lower() and "hidden" not in path.name.lower(), path
        if path.suffix == ".ipynb":
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                assert not LEAKS.search(cell.source), f"{path.name}: leaked into release:\n{cell.source[:300]}"
                assert not cell.get("outputs"), f"{path.name}: outputs committed in release"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebooks_are_valid_with_unique_grade_ids_and_no_outputs(assignment):
    for folder in ("source", "release"):
        for path in (ROOT / folder / assignment).glob("*.ipynb"):
            nb = nbformat.read(path, as_version=4)
            nbformat.validate(nb)
            ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
            assert len(ids) == len(set(ids)), f"{path}: duplicate grade ids"
            assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells
                       if c.cell_type == "code"), f"{path}: clear the outputs before committing"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_points_stated_at_the_top_add_up(assignment):
    (path,) = (ROOT / "source" / assignment).glob("*.ipynb")
    nb = nbformat.read(path, as_version=4)
    graded = [c.metadata["nbgrader"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    total = sum(m["points"] for m in graded)
    auto = sum(m["points"] for m in graded if not m.get("solution"))
    assert f"**{total:g} points**: {auto:g} autograded" in nb.cells[0].source


def test_ignore_patterns_keep_instructor_files_out_of_release(tmp_path):
    root = course.copy_course(tmp_path / "course")
    src = root / "source" / "L2A2_gradcam"
    (src / "solution_notes.py").write_text("SECRET = 1\n")
    (src / "hidden_cases.json").write_text("{}")
    (src / "data.txt").write_text("students may see this\n")
    course.generate_release("L2A2_gradcam", root)
    released = {p.name for p in (root / "release" / "L2A2_gradcam").iterdir()}
    assert "data.txt" in released
    assert not {"solution_notes.py", "hidden_cases.json"} & released
