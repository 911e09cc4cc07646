"""The L2A3 checks themselves, called in-process: full marks for the reference, the likely cause
each planted bug's report names (with the failing case), clean output (stdout only, plain float),
determinism, side effects judged as the kernel reports them, returned modules, clear messages for
wrong outputs, and zero for unanswered functions.

Which cells every example (correct or buggy) gains or loses, visible and hidden, is
test_cell_scores.py's; the same checks through nbgrader and a sandboxed kernel:
test_nbgrader_end_to_end.py."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import autograder
from examples.L2A3_saliency import BUGS
from solutions import faithfulness, saliency, sanity
from support import instructor_answers, quiet, run_answers

A = "L2A3_saliency"
CHECKS = {  # hidden test cell -> (name in the notebook, check, points)
    "test_saliency_hidden": ("saliency", autograder.check_saliency, 3),
    "test_smoothgrad_hidden": ("smoothgrad", autograder.check_smoothgrad, 3),
    "test_integrated_gradients_hidden": ("integrated_gradients", autograder.check_integrated_gradients, 4),
    "test_guided_backprop_hidden": ("guided_backprop", autograder.check_guided_backprop, 3),
    "test_guided_grad_cam_hidden": ("guided_grad_cam", autograder.check_guided_grad_cam, 2),
    "test_randomize_layers_hidden": ("randomize_layers", autograder.check_randomize_layers, 3),
    "test_rank_correlation_hidden": ("rank_correlation", autograder.check_rank_correlation, 1),
    "test_deletion_curve_hidden": ("deletion_curve", autograder.check_deletion_curve, 2),
    "test_insertion_curve_hidden": ("insertion_curve", autograder.check_insertion_curve, 2),
    "test_curve_auc_hidden": ("curve_auc", autograder.check_curve_auc, 1),
}
REFERENCES = {"saliency": saliency.saliency, "smoothgrad": saliency.smoothgrad,
              "integrated_gradients": saliency.integrated_gradients, "guided_backprop": saliency.guided_backprop,
              "guided_grad_cam": saliency.guided_grad_cam, "randomize_layers": sanity.randomize_layers,
              "rank_correlation": sanity.rank_correlation, "deletion_curve": faithfulness.deletion_curve,
              "insertion_curve": faithfulness.insertion_curve, "curve_auc": faithfulness.curve_auc}


@pytest.fixture(scope="module")
def answers():
    return instructor_answers(A)


def test_the_references_get_full_marks_as_plain_floats_with_reports_on_stdout(capfd):
    for cell, (name, check, pts) in CHECKS.items():
        score = check(REFERENCES[name], points=pts)
        assert type(score) is float, f"{cell}: nbgrader needs a plain float, got {type(score)}"
        assert score == pts, f"the reference lost points in {cell}:\n{capfd.readouterr().out}"
    out, err = capfd.readouterr()
    assert err == "", f"a grade cell must write nothing to stderr, got: {err[:300]}"
    assert "saliency: 3 / 3 points" in out and "randomize_layers: 3 / 3 points" in out


LIKELY_CAUSES = {  # bug -> (hidden cell, words its report must contain)
    "softmax_score": ("test_saliency_hidden", "softmax probability"),
    "no_absolute_value": ("test_saliency_hidden", "no absolute value"),
    "channel_sum": ("test_saliency_hidden", "summed over colour channels"),
    "noise_not_scaled": ("test_smoothgrad_hidden", "not scaled to the input's range"),
    "abs_after_mean": ("test_smoothgrad_hidden", "absolute value after the mean"),
    "noise_from_global_rng": ("test_smoothgrad_hidden", "drawn from `generator`"),
    "ig_path_from_zero": ("test_integrated_gradients_hidden", "path starts at 0"),
    "ig_no_delta_factor": ("test_integrated_gradients_hidden", "(x - baseline) factor"),
    "ig_left_riemann": ("test_integrated_gradients_hidden", "left Riemann sum"),
    "guided_hooks_left_registered": ("test_guided_backprop_hidden", "hooks left registered"),
    "guided_relu_only": ("test_guided_backprop_hidden", "nn.ReLU only"),
    "guided_no_clamp": ("test_guided_backprop_hidden", "the plain gradient"),
    "guided_grad_cam_plain_gradient": ("test_guided_grad_cam_hidden", "plain gradient times Grad-CAM"),
    "randomized_in_place": ("test_randomize_layers_hidden", "the caller's model"),
    "randomize_unseeded": ("test_randomize_layers_hidden", "draw the new weights from `generator`"),
    "randomize_named_module_only": ("test_randomize_layers_hidden", "was not re-initialized"),
    "pearson_not_spearman": ("test_rank_correlation_hidden", "Pearson's correlation of the values"),
    "ordinal_ranks": ("test_rank_correlation_hidden", "ties broken by position"),
    "least_important_first": ("test_deletion_curve_hidden", "least important pixels first"),
    "curve_of_logits": ("test_deletion_curve_hidden", "logits instead of softmax"),
    "insertion_is_deletion": ("test_insertion_curve_hidden", "the deletion curve"),
    "auc_without_dx": ("test_curve_auc_hidden", "without dx"),
}


def test_every_bug_has_a_stated_likely_cause():
    assert set(LIKELY_CAUSES) == {b.name for b in BUGS}


@pytest.mark.parametrize("name", sorted(LIKELY_CAUSES))
def test_the_report_names_the_likely_cause(name, answers):
    variant = next(b for b in BUGS if b.name == name)
    cell, words = LIKELY_CAUSES[name]
    fn_name, check, points = CHECKS[cell]
    score, report = quiet(check, run_answers(A, variant.answers(dict(answers)))[fn_name], points=points)
    assert score < points, f"{name}: {cell} kept full marks:\n{report}"
    assert words in report, f"{name}: the report of {cell} does not say {words!r}:\n{report}"
    assert "FAIL" in report and " - " in report, f"{name}: the failing property names no case:\n{report}"


def test_noisy_student_code_writes_nothing_to_stderr(capfd):
    def noisy(model, image, class_idx=None):
        import sys
        import warnings
        warnings.warn("student warning")
        print("progress...", file=sys.stderr)
        return saliency.saliency(model, image, class_idx)

    score = autograder.check_saliency(noisy, points=3)
    out, err = capfd.readouterr()
    assert score == 3.0 and err == ""


def test_partial_credit_is_deterministic(answers):
    """The same score and report twice, for a bug that fails every case (so every likely cause is tried)."""
    namespace = run_answers(A, next(b for b in BUGS if b.name == "softmax_score").answers(dict(answers)))
    first = quiet(autograder.check_saliency, namespace["saliency"], points=3)
    second = quiet(autograder.check_saliency, namespace["saliency"], points=3)
    assert first == second and first[0] < 3


def _leaves_a_hook(model, image, class_idx=None):
    model.register_forward_hook(lambda *args: None)
    return saliency.guided_backprop(model, image, class_idx)


def test_side_effects_lose_the_side_effect_points_only():
    score, report = quiet(autograder.check_guided_backprop, _leaves_a_hook, points=3)
    assert "hooks left registered" in report and "as observed in your kernel" in report
    assert score == pytest.approx(3 - 0.3)


def _randomizes_in_place_and_copies(model, layer_names, generator=None):
    """Returns a correct copy, but also scribbles on the caller's model."""
    result = sanity.randomize_layers(model, layer_names, generator)
    with torch.no_grad():
        next(model.parameters()).mul_(1.5)
    return result


def test_randomize_layers_in_place_costs_the_untouched_property():
    score, report = quiet(autograder.check_randomize_layers, _randomizes_in_place_and_copies, points=3)
    assert "the caller's model changed" in report and score == pytest.approx(3 - 0.45)


@pytest.mark.parametrize("returned, fragment", [
    (lambda m, names, generator=None: m, "the caller's model itself"),
    (lambda m, names, generator=None: torch.nn.Linear(2, 2), "expected a copy of the model"),
    (lambda m, names, generator=None: copy.deepcopy(m), "was not re-initialized"),
    (lambda m, names, generator=None: None, "got NoneType"),
])
def test_randomize_layers_wrong_returns_get_clear_messages(returned, fragment):
    score, report = quiet(autograder.check_randomize_layers, returned, points=3)
    assert score < 3 and fragment in report, report


@pytest.mark.parametrize("returned, fragment", [
    (lambda m, x, c=None: None, "got NoneType"),
    (lambda m, x, c=None: np.zeros(x.shape[-2:], dtype=np.float32), "got ndarray"),
    (lambda m, x, c=None: torch.zeros(x.shape[-2:]), "your map is all zeros"),
    (lambda m, x, c=None: torch.full(x.shape[-2:], float("nan")), "without NaN"),
    (lambda m, x, c=None: torch.zeros(3, *x.shape[-2:]), "take the max over colour channels"),
    (lambda m, x, c=None: 1 / 0, "ZeroDivisionError"),
])
def test_wrong_saliency_outputs_get_clear_messages(returned, fragment):
    score, report = quiet(autograder.check_saliency, returned, points=3)
    assert score < 3 and fragment in report, report


def _unanswered(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("cell", sorted(CHECKS))
def test_unanswered_functions_score_zero(cell):
    name, check, pts = CHECKS[cell]
    score, report = quiet(check, _unanswered, points=pts)
    assert score == 0.0, report
    assert "NotImplementedError" in report
