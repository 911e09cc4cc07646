"""Both assignments through nbgrader itself: generate_assignment, submit, autograde, gradebook, feedback.

Every example submission (correct implementations, realistic bugs, the blank release) is graded in a
scratch copy of the course. Students are split into two groups per assignment so that the two test
processes (pytest -n 2) grade in parallel. Scores come from the gradebook, never from exit codes.
"""
from __future__ import annotations

import importlib

import pytest

from grading.submissions import fill
from support import cell_ids, grade_through_nbgrader, instructor_answers, release_notebook

ASSIGNMENTS = ["L2A1_feature_visualization", "L2A2_gradcam"]


def _variants(assignment):
    module = importlib.import_module(f"examples.{assignment}")
    return module.CORRECT + module.BUGS


@pytest.mark.parametrize("group", [0, 1])
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_submission_is_graded_as_expected(assignment, group, tmp_path):
    tests, manual = cell_ids(assignment, "test"), cell_ids(assignment, "manual")
    variants = _variants(assignment)[group::2]
    answers = instructor_answers(assignment)
    release = release_notebook(assignment)
    submissions = {v.name: fill(release, v.answers(dict(answers))) for v in variants}
    if group == 0:
        submissions["blank"] = release
    graded = grade_through_nbgrader(tmp_path / "course", assignment, submissions)

    problems = []
    for variant in variants:
        scores = graded[variant.name]
        lost = {cell for cell in tests if scores[cell][0] != scores[cell][1]}
        unexpected = lost - variant.affected
        missed = {c for c in variant.affected if c.endswith("_hidden")} - lost
        if unexpected or missed:
            problems.append(f"{variant.name}: lost points in {sorted(lost)}; expected within "
                            f"{sorted(variant.affected)}, hidden cells included")
        pending = [cell for cell in manual if scores[cell][0] is not None]
        if pending:
            problems.append(f"{variant.name}: written answers were scored without a human: {pending}")
    if group == 0:
        earned = {cell: s for cell, (s, _) in graded["blank"].items() if s}
        if earned:
            problems.append(f"the blank release earned points: {earned}")
    assert not problems, "\n".join(problems)
