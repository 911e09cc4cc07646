"""Checks for the L2A2 Grad-CAM functions: ``grad_cam``, ``counterfactual_grad_cam``, ``TARGET_LAYERS``.

Each check compares the student's function with :mod:`solutions.gradcam` on seeded cases
(:mod:`autograder.models`), awards points per independent property, prints a report naming every
failing case with the likely cause, and returns the score as a float.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from solutions import gradcam as reference

from . import models
from .reference_cache import cached
from .report import UNVERIFIED, Property, Report, graded, summarize
from .student_call import call_on_model

TOLERANCE = 2e-3  # max |student - reference|; independent correct implementations agree to ~1e-6

#: The toolbox's own Grad-CAM (:mod:`interpkit.gradcam`, which L2A3's Guided Grad-CAM builds on):
#: calling it in an L2A2 answer earns no credit for that function (autograder.delegation).
_TOOLBOX_GRAD_CAM = tuple(f"interpkit.gradcam.{n}" for n in (
    "grad_cam", "counterfactual_grad_cam", "grad_cam_batch", "grad_cam_and_counterfactual",
    "cam_from_gradient", "layer_output_and_gradient"))
TOOLBOX_IMPLEMENTATIONS = {"grad_cam": _TOOLBOX_GRAD_CAM, "counterfactual_grad_cam": _TOOLBOX_GRAD_CAM}


def _as_tensor(value) -> torch.Tensor | None:
    """A float32 CPU tensor of ``value`` (a decoded tensor or array: plain data), or None."""
    if not isinstance(value, (torch.Tensor, np.ndarray)):
        return None
    try:
        return torch.as_tensor(value).detach().to("cpu", torch.float32)
    except Exception:  # noqa: BLE001 - anything that is not array-like
        return None


def _diagnose(case: models.Case, got: torch.Tensor, counterfactual: bool) -> str:
    """Name the likely bug by comparing ``got`` with the outputs of common mistakes."""
    acts, grad, classes = reference.layer_output_and_gradient(case.model, case.layer, case.image, case.class_idx)
    size = case.image.shape[-2:]
    sign = -1.0 if counterfactual else 1.0
    if got.shape == acts.shape[-2:] and got.shape != size:
        return "your map has the layer's resolution: upsample it bilinearly to the image size"
    if got.shape != size:
        return f"shape {tuple(got.shape)} but the image is {tuple(size)}"
    if torch.isnan(got).any():
        return "your map contains NaN (division by a zero maximum?)"
    if got.min() < -1e-6:
        return "negative values: apply the ReLU to the weighted sum of the activation maps"
    if got.max() > 1 + 1e-4:
        return "values above 1: divide the map by its maximum"

    def close(candidate: torch.Tensor) -> bool:
        return candidate.shape == got.shape and float((candidate - got).abs().max()) <= TOLERANCE

    weights = (sign * grad).mean(dim=(2, 3), keepdim=True)
    raw = F.relu((weights * acts).sum(1, keepdim=True))

    def finish(cam):
        cam = cam[:, 0]
        peak = cam.amax(dim=(1, 2), keepdim=True)
        return torch.where(peak > 0, cam / peak.clamp_min(1e-30), cam)[0]

    variants = {
        "nearest-neighbour upsampling: use mode='bilinear', align_corners=False":
            finish(F.interpolate(raw, size=size, mode="nearest")),
        "align_corners=True: the contract asks for align_corners=False":
            finish(F.interpolate(raw, size=size, mode="bilinear", align_corners=True)),
        "normalized before upsampling: upsample first, then divide by the max":
            F.interpolate(finish(raw)[None, None], size=size, mode="bilinear", align_corners=False)[0, 0],
        "channel weights from the MAX of the gradient: use its spatial MEAN":
            finish(F.interpolate(F.relu(((sign * grad).amax(dim=(2, 3), keepdim=True) * acts).sum(1, keepdim=True)),
                                 size=size, mode="bilinear", align_corners=False)),
        ("the gradient is not negated: a counterfactual map uses -dScore/dA" if counterfactual else
         "the gradient is negated: that is the counterfactual map"):
            reference.cam_from_gradient(acts, grad, size, -sign)[0],
    }
    for cause, candidate in variants.items():
        if close(candidate):
            return cause
    if case.class_idx is not None:
        top1 = reference.grad_cam_batch(case.model, case.layer, case.image, None, counterfactual)[0]
        with torch.no_grad():
            predicted = int(case.model(case.image).argmax())
        if int(classes[0]) != predicted and close(top1):
            return "you explained the top-1 class: use class_idx when it is given"
    return "differs from the reference (is the score the pre-softmax logit of class_idx?)"


def _reference(case: models.Case, counterfactual: bool) -> torch.Tensor:
    """The reference map of ``case`` (computed once per code version, see reference_cache)."""
    ref_fn = reference.counterfactual_grad_cam if counterfactual else reference.grad_cam
    return cached(("grad_cam", counterfactual, case.label),
                  lambda: ref_fn(case.model, case.layer, case.image, case.class_idx))


def _grade_cases(student: Callable, cases: list[models.Case], counterfactual: bool,
                 output: Property, values: Property, side_effects: Property | None) -> int:
    """Run every case: reference first, then the student on the same untouched model.

    Returns how many calls returned the reference's map (within the tolerance)."""
    matched = 0
    for case in cases:
        expected = _reference(case, counterfactual)
        outcome, changed = call_on_model(case.model, student, case.model, case.layer, case.image.clone(),
                                         case.class_idx)
        if side_effects is not None:
            side_effects.expect(not changed, f"{case.label}: " + "; ".join(changed))
        if outcome.error:
            output.fail(f"{case.label}: raised {outcome.error}")
            values.fail(f"{case.label}: raised an exception")
            continue
        got = outcome.value
        is_ok = (type(got) is torch.Tensor and got.dtype == torch.float32 and
                 tuple(got.shape) == tuple(expected.shape) and not torch.isnan(got).any() and
                 float(got.min()) >= 0 and float(got.max()) <= 1 + 1e-6)
        output.expect(is_ok, f"{case.label}: expected a float32 torch tensor of shape "
                             f"{tuple(expected.shape)} in [0, 1] without NaN; got "
                             f"{summarize(got)}")
        got_t = _as_tensor(got)
        if got_t is None or got_t.shape != expected.shape:
            values.fail(f"{case.label}: cannot compare, {summarize(got)}"
                        + (f" ({_diagnose(case, got_t, counterfactual)})" if got_t is not None else ""))
            continue
        err = float((got_t - expected).abs().max())
        if err <= TOLERANCE:
            values.expect(True, "")
            matched += 1
        else:  # the diagnosis runs only the reference, which leaves the model untouched
            values.fail(f"{case.label}: max |yours - reference| = {err:.3g}; likely cause: "
                        f"{_diagnose(case, got_t, counterfactual)}")
    return matched


def _check_map_function(student: Callable, title: str, counterfactual: bool, points: float) -> float:
    report = Report(title)
    scale = points / 10.0
    output = report.add("returns an (H, W) float32 tensor in [0, 1] without NaN", 1.5 * scale)
    hand = report.add("matches the reference on hand-built nets (GAP + linear: Grad-CAM = CAM)", 2.5 * scale)
    archs = report.add("matches the reference on random-init VGG16 / ResNet50 / InceptionV3", 2 * scale)
    real = report.add("matches the reference on the real EfficientNet-Lite0 and photos", 2 * scale)
    top1 = None if counterfactual else report.add("class_idx=None explains the top-1 class", 1 * scale)
    side = report.add("leaves the model as found (parameters, requires_grad, mode, hooks)", 1 * scale,
                      kernel_observed=True)
    if counterfactual:  # no None cases: the counterfactual needs an explicit class
        hand.points += 1 * scale
    matched = sum(_grade_cases(student, cases, counterfactual, output, prop, side)
                  for cases, prop in ((models.hand_built_cases(), hand), (models.architecture_cases(), archs),
                                      (models.real_cases(), real)))
    if top1 is not None:
        _grade_cases(student, models.top1_cases(), counterfactual, output, top1, None)
    if not matched:  # the kernel's own word about side effects counts only beside a verified map
        side.fail(UNVERIFIED)
    return report.finish()


_MAP_CASES = (models.hand_built_cases, models.architecture_cases, models.real_cases, models.top1_cases)


@graded(cases=_MAP_CASES)
def check_grad_cam(grad_cam: Callable, points: float = 6) -> float:
    """Grade ``grad_cam(model, layer, image, class_idx=None)``; returns the points earned."""
    return _check_map_function(grad_cam, "grad_cam", counterfactual=False, points=points)


@graded(cases=_MAP_CASES)
def check_counterfactual_grad_cam(counterfactual_grad_cam: Callable, points: float = 3) -> float:
    """Grade ``counterfactual_grad_cam(model, layer, image, class_idx)``; returns the points."""
    return _check_map_function(counterfactual_grad_cam, "counterfactual_grad_cam", counterfactual=True,
                               points=points)


#: Names accepted for each network (the reference layer, or a module with the very same output
#: grid: conv5_3 before or after its ReLU) and the grid that names it in feedback.
ACCEPTED_LAYERS = {
    "vgg16": ({"features.29", "features.28"}, "14 x 14 at 224 px"),
    "resnet50": ({"layer4", "layer4.2"}, "7 x 7 at 224 px"),
    "inception_v3": ({"Mixed_7c"}, "8 x 8 at 299 px"),
}


@graded
def check_target_layers(target_layers, points: float = 3) -> float:
    """Grade ``TARGET_LAYERS``: one share of the points per network."""
    report = Report("TARGET_LAYERS")
    share = points / len(ACCEPTED_LAYERS)
    for name, (accepted, grid) in ACCEPTED_LAYERS.items():
        prop = report.add(f"{name}: the last convolutional block", share)
        if not isinstance(target_layers, dict) or name not in target_layers:
            prop.fail(f"TARGET_LAYERS must be a dict with the key {name!r}")
            continue
        given = target_layers[name]
        prop.expect(given in accepted,
                    f"{given!r} is not the last convolutional block of {name}: Grad-CAM uses the "
                    f"deepest layer that still has a spatial grid ({grid}), before any pooling")
    return report.finish()
