"""The L2A1 checks, called in-process: reports on stdout only, unanswered functions score zero, side
effects seen. (Every example variant, cell by cell: test_cell_scores.py. Delegation to the reference or to the toolbox's own
version of a graded function is judged from the source: test_delegation.py.)"""
from __future__ import annotations

import pytest
import torch

import autograder
from support import instructor_answers, quiet, run_answers

A = "L2A1_feature_visualization"
CHECKS = {
    "test_channel_objective_hidden": ("channel_objective", autograder.check_channel_objective, 1),
    "test_neuron_objective_hidden": ("neuron_objective", autograder.check_neuron_objective, 2),
    "test_deepdream_objective_hidden": ("deepdream_objective", autograder.check_deepdream_objective, 1),
    "test_jitter_hidden": ("jitter", autograder.check_jitter, 3),
    "test_visualize_hidden": ("visualize", autograder.check_visualize, 4),
    "test_deepdream_hidden": ("deepdream", autograder.check_deepdream, 3),
}


@pytest.fixture(scope="module")
def answers():
    return instructor_answers(A)


def test_reports_go_to_stdout_only(answers, capfd):
    namespace = run_answers(A, answers)
    for cell, (name, check, pts) in CHECKS.items():
        assert type(check(namespace[name], points=pts)) is float
    out, err = capfd.readouterr()
    assert err == "" and "visualize: 4 / 4 points" in out


@pytest.mark.parametrize("cell", list(CHECKS))
def test_unanswered_functions_score_zero(cell):
    def unanswered(*args, **kwargs):
        raise NotImplementedError()
    name, check, pts = CHECKS[cell]
    score, report = quiet(check, unanswered, points=pts)
    assert score == 0.0, report


def test_visualize_side_effects_include_parameter_gradients(answers):
    namespace = run_answers(A, answers)
    good = namespace["visualize"]

    def leaves_grads(model, layer, objective, image_param, transforms, steps, lr):
        result = good(model, layer, objective, image_param, transforms, steps, lr)
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        return result

    score, report = quiet(autograder.check_visualize, leaves_grads)
    assert score == pytest.approx(3.6) and ".grad" in report  # the side-effect property: 1/10
