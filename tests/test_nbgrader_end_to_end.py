"""Each assignment through nbgrader itself: generate_assignment, submit, autograde (sandboxed kernel,
trusted test cells), gradebook, feedback.

A few well-chosen example submissions per assignment, in one batch: another correct
implementation, bugs whose evidence comes from the kernel's side (side effects, returned values)
and from the grader's side, and the blank release. Every cell's score read from the gradebook must
equal the score the same test cell gets in-process (test_cell_scores.py grades every example that
way), so the fast path is proven to be the grader's path. Scores come from the gradebook, never
from exit codes.
"""
from __future__ import annotations

import importlib

import pytest

from grading.submissions import fill
from support import cell_ids, grade_in_process, grade_through_nbgrader, instructor_answers, release_notebook

CHOSEN = {  # assignment -> the example variants graded through nbgrader
    "L2A1_feature_visualization": ["adam_maximize", "visualize_transforms_ignored", "deepdream_grads_into_model"],
    "L2A2_gradcam": ["hooks_and_backward", "hooks_left_registered", "softmax_score"],
    "L2A3_saliency": ["loops_and_backward", "randomized_in_place", "noise_from_global_rng"],
}


def _variant(assignment: str, name: str):
    module = importlib.import_module(f"examples.{assignment}")
    (variant,) = [v for v in module.CORRECT + module.BUGS if v.name == name]
    return variant


@pytest.mark.parametrize("assignment", list(CHOSEN))
def test_chosen_submissions_score_through_nbgrader_as_in_process(assignment, tmp_path):
    tests, manual = cell_ids(assignment, "test"), cell_ids(assignment, "manual")
    answers = instructor_answers(assignment)
    release = release_notebook(assignment)
    variants = [_variant(assignment, name) for name in CHOSEN[assignment]]
    submissions = {v.name: fill(release, v.answers(dict(answers))) for v in variants}
    submissions["blank"] = release
    graded = grade_through_nbgrader(tmp_path / "course", assignment, submissions)

    problems = []
    for variant in variants:
        scores = graded[variant.name]
        expected = grade_in_process(assignment, variant.answers(dict(answers)))
        differ = {cell: (scores[cell][0], expected[cell][0]) for cell in tests
                  if scores[cell][0] != expected[cell][0] or scores[cell][1] != expected[cell][1]}
        if differ:
            problems.append(f"{variant.name}: gradebook vs in-process (score, score): {differ}")
        lost = {cell for cell in tests if scores[cell][0] != scores[cell][1]}
        if variant.affected and not lost & variant.affected:
            problems.append(f"{variant.name} lost nothing through nbgrader")
        pending = [cell for cell in manual if scores[cell][0] is not None]
        if pending:
            problems.append(f"{variant.name}: written answers were scored without a human: {pending}")
    earned = {cell: s for cell, (s, _) in graded["blank"].items() if s}
    if earned:
        problems.append(f"the blank release earned points: {earned}")
    assert not problems, "\n".join(problems)
