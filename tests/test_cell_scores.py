"""Every example submission of every assignment, scored cell by cell as the grader scores it.

The test cells (visible and hidden) of the source notebook run through
:class:`grading.trusted_tests.TrustedTests`, the class ``nbgrader autograde`` uses, and are scored
by nbgrader's own ``determine_grade``; only the student's answers run in this process instead of a
sandboxed kernel (that path is test_nbgrader_end_to_end.py's and the catalog's). For each variant:
the correct ones get every point; a bug loses points in its ``affected`` cells only, and in every
hidden cell among them; the blank release earns nothing.
"""
from __future__ import annotations

import importlib

import pytest

from support import cell_ids, grade_in_process, instructor_answers, release_notebook

ASSIGNMENTS = ["L2A1_feature_visualization", "L2A2_gradcam", "L2A3_saliency"]


def _cases():
    for assignment in ASSIGNMENTS:
        module = importlib.import_module(f"examples.{assignment}")
        for variant in module.CORRECT + module.BUGS:
            yield pytest.param(assignment, variant, id=f"{assignment.split('_')[0]}-{variant.name}")


def _blank_answers(assignment: str) -> dict[str, str]:
    release = release_notebook(assignment)
    wanted = set(cell_ids(assignment, "answer"))
    return {c.metadata.nbgrader["grade_id"]: c.source for c in release.cells
            if c.metadata.get("nbgrader", {}).get("grade_id") in wanted}


@pytest.mark.parametrize("assignment, variant", list(_cases()))
def test_each_variant_loses_points_in_its_own_cells_only(assignment, variant):
    scores = grade_in_process(assignment, variant.answers(dict(instructor_answers(assignment))))
    assert set(scores) == set(cell_ids(assignment, "test"))
    lost = {cell for cell, (score, most, _) in scores.items() if score != most}
    unexpected = lost - variant.affected
    missed = {cell for cell in variant.affected if cell.endswith("_hidden")} - lost
    assert not unexpected and not missed, (
        f"{variant.name}: lost points in {sorted(lost)}; allowed {sorted(variant.affected)}, "
        "hidden cells among them must lose points\n"
        + "\n".join(f"--- {cell}\n{scores[cell][2]}" for cell in sorted(unexpected | missed)))
    for cell in lost:  # every lost hidden point comes with a report naming the failing case
        if cell.endswith("_hidden"):
            assert "FAIL" in scores[cell][2] and " - " in scores[cell][2], scores[cell][2]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_blank_release_earns_nothing(assignment):
    scores = grade_in_process(assignment, _blank_answers(assignment))
    earned = {cell: score for cell, (score, _, _) in scores.items() if score}
    assert not earned, f"the blank release earned points: {earned}"
