"""The L2A2 checks themselves, called in-process (fast): clean output (stdout only, plain float),
determinism, side effects, clear messages for wrong outputs. (Every example variant, cell by cell:
test_cell_scores.py.) (Delegation is judged from the source: test_delegation.py; the same
checks through a student's kernel: test_remote_calls.py.)"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import autograder
from examples.L2A2_gradcam import BUGS
from support import instructor_answers, quiet, run_answers

A = "L2A2_gradcam"
CHECKS = {  # hidden test cell -> (name in the notebook, check, points)
    "test_grad_cam_hidden": ("grad_cam", autograder.check_grad_cam, 6),
    "test_counterfactual_hidden": ("counterfactual_grad_cam", autograder.check_counterfactual_grad_cam, 3),
    "test_target_layers_hidden": ("TARGET_LAYERS", autograder.check_target_layers, 3),
    "test_threshold_segmentation_hidden": ("threshold_segmentation", autograder.check_threshold_segmentation, 2),
    "test_localization_box_hidden": ("localization_box", autograder.check_localization_box, 2),
}


@pytest.fixture(scope="module")
def answers():
    return instructor_answers(A)


def test_scores_are_plain_floats_and_reports_go_to_stdout(answers, capfd):
    namespace = run_answers(A, answers)
    for cell, (name, check, pts) in CHECKS.items():
        score = check(namespace[name], points=pts)
        assert type(score) is float, f"{cell}: nbgrader needs a plain float, got {type(score)}"
    out, err = capfd.readouterr()
    assert err == "", f"a grade cell must write nothing to stderr, got: {err[:300]}"
    assert "grad_cam: 6 / 6 points" in out


def test_noisy_student_code_writes_nothing_to_stderr(answers, capfd):
    namespace = run_answers(A, answers)
    real = namespace["grad_cam"]

    def noisy(model, layer, image, class_idx=None):
        import sys
        import warnings
        warnings.warn("student warning")
        print("progress...", file=sys.stderr)
        return real(model, layer, image, class_idx)

    score = autograder.check_grad_cam(noisy, points=6)
    out, err = capfd.readouterr()
    assert score == 6.0 and err == ""


def test_partial_credit_is_deterministic(answers):
    namespace = run_answers(A, BUGS[0].answers(dict(answers)))
    first = quiet(autograder.check_grad_cam, namespace["grad_cam"], points=6)
    second = quiet(autograder.check_grad_cam, namespace["grad_cam"], points=6)
    assert first == second


def _changes_weights(model, layer, image, class_idx=None):
    with torch.no_grad():
        for p in layer.parameters():
            p.mul_(1.0001)
    return torch.zeros(image.shape[-2:])


def _freezes_parameters(fn):
    def student(model, layer, image, class_idx=None):
        first = next(model.parameters())
        first.requires_grad_(not first.requires_grad)  # flipped and never restored
        return fn(model, layer, image, class_idx)
    return student


def test_side_effects_lose_the_side_effect_points(answers):
    namespace = run_answers(A, answers)
    score, report = quiet(autograder.check_grad_cam, _changes_weights, points=6)
    assert "parameter values changed" in report and score < 6
    score, report = quiet(autograder.check_grad_cam, _freezes_parameters(namespace["grad_cam"]), points=6)
    assert "requires_grad changed" in report
    assert score == pytest.approx(6 - 0.6)  # the side-effect property: 1/10 of the points


@pytest.mark.parametrize("returned, fragment", [
    (lambda m, l, x, c=None: None, "got NoneType"),
    (lambda m, l, x, c=None: np.zeros(x.shape[-2:], dtype=np.float32), "got ndarray"),
    (lambda m, l, x, c=None: torch.full(x.shape[-2:], float("nan")), "without NaN"),
    (lambda m, l, x, c=None: torch.zeros(3, 3), "cannot compare"),
    (lambda m, l, x, c=None: 1 / 0, "ZeroDivisionError"),
])
def test_wrong_outputs_get_clear_messages(returned, fragment):
    score, report = quiet(autograder.check_grad_cam, returned, points=6)
    assert score < 6 and fragment in report


def test_target_layers_accepts_equivalent_names_and_rejects_pooling():
    assert quiet(autograder.check_target_layers, {"vgg16": "features.28", "resnet50": "layer4.2",
                                                  "inception_v3": "Mixed_7c"})[0] == 3
    score, report = quiet(autograder.check_target_layers, {"vgg16": "features.30", "resnet50": "avgpool",
                                                           "inception_v3": "Mixed_7b"})
    assert score == 0 and "14 x 14" in report
    assert quiet(autograder.check_target_layers, "not a dict")[0] == 0


def _unanswered(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("cell", [c for c in CHECKS if c != "test_target_layers_hidden"])
def test_unanswered_functions_score_zero(cell):
    name, check, pts = CHECKS[cell]
    score, report = quiet(check, _unanswered, points=pts)
    assert score == 0.0, report
    assert "NotImplementedError" in report
