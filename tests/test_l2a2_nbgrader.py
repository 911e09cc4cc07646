"""L2A2 through nbgrader itself: generate_assignment, submit, autograde, gradebook, feedback.

Every example submission is graded in a scratch copy of the course. The students are split into
two groups so that the two test processes (pytest -n 2) grade in parallel.
"""
from __future__ import annotations

import pytest

from examples.L2A2_gradcam import BUGS, CORRECT
from grading.submissions import fill
from support import cell_ids, grade_through_nbgrader, instructor_answers, release_notebook

A = "L2A2_gradcam"
TESTS = cell_ids(A, "test")
MANUAL = cell_ids(A, "manual")
VARIANTS = CORRECT + BUGS
GROUPS = [VARIANTS[0::2], VARIANTS[1::2]]


def _full(scores, cell) -> bool:
    score, max_score = scores[cell]
    return score == max_score


@pytest.mark.parametrize("group", [0, 1])
def test_every_submission_is_graded_as_expected(group, tmp_path):
    answers = instructor_answers(A)
    release = release_notebook(A)
    submissions = {v.name: fill(release, v.answers(dict(answers))) for v in GROUPS[group]}
    if group == 0:
        submissions["blank"] = release
    graded = grade_through_nbgrader(tmp_path / "course", A, submissions)

    problems = []
    for variant in GROUPS[group]:
        scores = graded[variant.name]
        lost = {cell for cell in TESTS if not _full(scores, cell)}
        unexpected = lost - variant.affected
        missed = {c for c in variant.affected if c.endswith("_hidden")} - lost
        if unexpected or missed:
            problems.append(f"{variant.name}: lost points in {sorted(lost)}; expected within "
                            f"{sorted(variant.affected)} and at least the hidden cells")
        for cell in MANUAL:  # written answers wait for a human, whatever the code does
            if scores[cell][0] not in (None, 0.0) and variant.name != "blank":
                problems.append(f"{variant.name}: manual cell {cell} has score {scores[cell][0]}")
    if group == 0:
        blank = graded["blank"]
        earned = {cell: blank[cell][0] for cell in TESTS + MANUAL if blank[cell][0]}
        if earned:
            problems.append(f"the blank release earned points: {earned}")
    assert not problems, "\n".join(problems)

