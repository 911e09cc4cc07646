"""Checks for the L2A3 gradient maps: ``saliency``, ``smoothgrad``, ``integrated_gradients``,
``guided_backprop`` and ``guided_grad_cam``.

Each check calls the student's function on the seeded cases of :mod:`autograder.saliency_cases`
(hand-built nets, random-init ResNet18 / SqueezeNet1.1, the real EfficientNet-Lite0 on photos),
compares every map with :mod:`solutions.saliency` (relative to the reference's largest value),
awards points per property, and names the likely cause of each failing case by comparing the
map with what the common mistakes produce (a softmax score, a missing absolute value, noise not
scaled to the input's range, a wrong IG path, a missing (x - baseline) factor, ...).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from interpkit.gradcam import counterfactual_grad_cam as toolbox_counterfactual
from interpkit.gradcam import grad_cam as toolbox_grad_cam
from solutions import saliency as reference

from . import saliency_cases as cases
from .reference_cache import cached
from .report import UNVERIFIED, Property, Report, graded, summarize
from .model_state import differences, restore, snapshot
from .student_call import call

#: Largest accepted |yours - reference| relative to the reference's largest |value|. Independent
#: correct implementations agree to ~1e-6; on the real model a different order of floating-point
#: operations can flip a few ReLU gates, which moves a map by up to ~1e-3 of its maximum.
TOLERANCE = 1e-2

#: Toolbox objects that implement a graded L2A3 function: none (Grad-CAM is the toolbox's on
#: purpose: Guided Grad-CAM multiplies by it).
TOOLBOX_IMPLEMENTATIONS: dict[str, tuple[str, ...]] = {}


def _as_tensor(value) -> torch.Tensor | None:
    if not isinstance(value, (torch.Tensor, np.ndarray)):
        return None
    try:
        return torch.as_tensor(value).detach().to("cpu", torch.float32)
    except Exception:  # noqa: BLE001 - anything that is not array-like
        return None


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    """max |got - expected| / max |expected| (absolute when the reference is all zero)."""
    scale = float(expected.abs().max())
    err = float((got.double() - expected.double()).abs().max())
    return err / scale if scale > 0 else err


# --------------------------------------------------------------------------- what mistakes produce
def _gradient(case: cases.MapCase, image: torch.Tensor | None = None, softmax: bool = False,
              class_idx: int | None = None) -> torch.Tensor:
    """d score / d x (3, H, W) of the case's model; ``softmax``: of the softmax probability."""
    x = (case.image if image is None else image).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = case.model(x)
        cls = reference._top1(case.model, case.image, case.class_idx) if class_idx is None else class_idx
        score = (logits.softmax(dim=1) if softmax else logits)[:, cls].sum()
        (grad,) = torch.autograd.grad(score, x)
    return grad


def _top1_class(case: cases.MapCase) -> int:
    with torch.no_grad():
        return int(case.model(case.image).argmax())


def _noise(case: cases.MapCase, sigma) -> torch.Tensor:
    x = case.image
    n = case.options.get("n_samples", 25)
    gen = torch.Generator().manual_seed(case.seed) if case.seed is not None else None
    return torch.cat([sigma * torch.randn(x.shape, generator=gen) for _ in range(n)])


def _batch_gradients(case: cases.MapCase, images: torch.Tensor, softmax: bool = False) -> torch.Tensor:
    """d score / d x of each of ``images`` (n, 3, H, W), in chunks of the reference's batch (images
    are independent: the gradient of the summed scores is each image's own)."""
    return torch.cat([_gradient(case, chunk, softmax) for chunk in images.split(reference.BATCH)])


def _sample_gradients(case: cases.MapCase, sigma, softmax: bool = False) -> torch.Tensor:
    """d y_c / d x at each of the case's noisy inputs (n, 3, H, W)."""
    return _batch_gradients(case, case.image + _noise(case, sigma), softmax)


def _sigma(case: cases.MapCase):
    x = case.image
    return case.options.get("noise_level", 0.15) * (x.max() - x.min())


def _path_gradients(case: cases.MapCase, points: torch.Tensor) -> torch.Tensor:
    return _batch_gradients(case, points)


def _once(make: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
    """``make`` computed at its first call only (several likely causes share one set of gradients)."""
    kept: list[torch.Tensor] = []

    def get() -> torch.Tensor:
        if not kept:
            kept.append(make())
        return kept[0]
    return get


def _baseline(case: cases.MapCase) -> torch.Tensor:
    b = case.options.get("baseline")
    return torch.zeros_like(case.image) if b is None else b


def _alphas(steps: int, start: int = 1) -> torch.Tensor:
    return (torch.arange(start, start + steps, dtype=torch.float32) / steps).view(-1, 1, 1, 1)


class _Deconv(torch.autograd.Function):
    """The DeconvNet rule: the activation's forward, but its backward passes relu(grad) with no
    gate on the input (Zeiler & Fergus)."""

    @staticmethod
    def forward(ctx, x, upper):
        return x.clamp(min=0) if upper is None else x.clamp(0, upper)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0), None


def _modified_gradient(case: cases.MapCase, rule: str) -> torch.Tensor:
    """d y_c / d x with ``rule``: ``"deconvnet"`` on every ReLU/ReLU6, or ``"relu_only"`` (the
    guided rule on nn.ReLU but not on ReLU6)."""
    def deconv(module, inputs, output):
        return _Deconv.apply(inputs[0], 6.0 if isinstance(module, nn.ReLU6) else None)

    kinds = (nn.ReLU,) if rule == "relu_only" else reference.GUIDED_ACTIVATIONS
    hook = reference._guide if rule == "relu_only" else deconv
    handles = [m.register_forward_hook(hook) for m in case.model.modules() if type(m) in kinds]
    try:
        return _gradient(case)[0]
    finally:
        for h in handles:
            h.remove()


def _variants(title: str, case: cases.MapCase) -> dict[str, Callable[[], torch.Tensor]]:
    """Likely cause -> the map that mistake produces (computed lazily, on a failing case only)."""
    g = _once(lambda: _gradient(case)[0])
    soft = _once(lambda: _gradient(case, softmax=True)[0])
    if title == "saliency":
        return {
            "no absolute value: take |d y_c / d x| before the max over colour channels": lambda: g().amax(0),
            "summed over colour channels: the contract takes the max of |d y_c / d x|": lambda: g().abs().sum(0),
            "averaged over colour channels: the contract takes the max": lambda: g().abs().mean(0),
            "normalized: the saliency map is not divided by its max": lambda: g().abs().amax(0) / g().abs().max(),
            "the gradient of the softmax probability: use the pre-softmax logit": lambda: soft().abs().amax(0),
        }
    if title == "smoothgrad":
        sigma = _sigma(case)
        level = case.options.get("noise_level", 0.15)
        samples = _once(lambda: _sample_gradients(case, sigma))
        return {
            "the absolute value after the mean: average |d y_c / d x| over the samples":
                lambda: samples().mean(0).abs().amax(0),
            "squared gradients (SmoothGrad-squared): the contract averages |d y_c / d x|":
                lambda: (samples() ** 2).mean(0).amax(0),
            "noise not scaled to the input's range: sigma = noise_level * (x.max() - x.min())":
                lambda: _sample_gradients(case, level).abs().mean(0).amax(0),
            "the gradient of the softmax probability: use the pre-softmax logit":
                lambda: _sample_gradients(case, sigma, softmax=True).abs().mean(0).amax(0),
            "no noise added (the plain saliency map)": lambda: g().abs().amax(0),
        }
    if title == "integrated_gradients":
        x, x0, steps = case.image, _baseline(case), case.options.get("steps", 50)
        right = _once(lambda: _path_gradients(case, x0 + _alphas(steps) * (x - x0)))
        ends = _once(lambda: _path_gradients(case, torch.cat([x0, x])))
        found = {
            "missing the (x - baseline) factor: multiply the mean gradient by it":
                lambda: right().mean(0),
            "left Riemann sum (k = 0 .. steps - 1): the contract uses k = 1 .. steps":
                lambda: ((x - x0) * _path_gradients(case, x0 + _alphas(steps, 0) * (x - x0)).mean(0, keepdim=True))[0],
            "trapezoid rule: the contract uses the right Riemann sum, k = 1 .. steps":
                lambda: ((x - x0) * (right().sum(0) - (ends()[1] - ends()[0]) / 2) / steps)[0],
            "the sign is flipped: attributions are (x - baseline) * mean gradient":
                lambda: -((x - x0) * right().mean(0, keepdim=True))[0],
            "the gradient of the softmax probability: use the pre-softmax logit":
                lambda: ((x - x0) * _batch_gradients(case, x0 + _alphas(steps) * (x - x0), softmax=True)
                         .mean(0, keepdim=True))[0],
        }
        if case.options.get("baseline") is not None:
            found["the path starts at 0, not at the baseline: use x0 + k/steps (x - x0)"] = \
                lambda: ((x - x0) * _path_gradients(case, _alphas(steps) * x).mean(0, keepdim=True))[0]
            found["the baseline is ignored (zeros used instead)"] = \
                lambda: (x * _path_gradients(case, _alphas(steps) * x).mean(0, keepdim=True))[0]
        return found
    if title == "guided_backprop":
        kinds = {type(m) for m in case.model.modules()}
        plain = ("the plain gradient: the guided rule (positive gradients where the input was positive) is missing"
                 + (", or it is applied to nn.ReLU only: this network's activations are all nn.ReLU6, which "
                    "needs the rule too" if nn.ReLU6 in kinds and nn.ReLU not in kinds else ""))
        return {
            plain: g,
            "the DeconvNet rule (relu of the gradient, no gate on the input): guided backprop keeps both":
                lambda: _modified_gradient(case, "deconvnet"),
            "the guided rule is applied to nn.ReLU only: EfficientNet-Lite0's activations are nn.ReLU6":
                lambda: _modified_gradient(case, "relu_only"),
            "absolute values: guided backprop is the signed (modified) gradient": lambda: _reference(title, case).abs(),
            "the gradient of the softmax probability: use the pre-softmax logit":
                lambda: _guided_softmax(case),
        }
    if title == "guided_grad_cam":
        cls = case.class_idx if case.class_idx is not None else _top1_class(case)
        gbp = lambda: reference.guided_backprop(case.model, case.image, cls)  # noqa: E731
        return {
            "the plain gradient times Grad-CAM: use guided backpropagation": lambda: g() * _cam(case, cls)[None],
            "guided backprop times the counterfactual map: use the toolbox's grad_cam":
                lambda: gbp() * toolbox_counterfactual(case.model, case.layer, case.image, cls)[None],
            "Grad-CAM at the layer's resolution upsampled with nearest neighbours: use the toolbox's grad_cam "
            "(bilinear)": lambda: gbp() * _nearest_cam(case, cls)[None],
            "guided backprop alone (not multiplied by Grad-CAM)": gbp,
        }
    return {}


def _guided_softmax(case: cases.MapCase) -> torch.Tensor:
    with reference.guided_relus(case.model):
        return _gradient(case, softmax=True)[0]


def _cam(case: cases.MapCase, cls: int) -> torch.Tensor:
    return toolbox_grad_cam(case.model, case.layer, case.image, cls)


def _nearest_cam(case: cases.MapCase, cls: int) -> torch.Tensor:
    from interpkit.gradcam import layer_output_and_gradient

    acts, grad, _ = layer_output_and_gradient(case.model, case.layer, case.image, cls)
    low = F.relu((grad.mean(dim=(2, 3), keepdim=True) * acts).sum(1, keepdim=True))
    up = F.interpolate(low, size=case.image.shape[-2:], mode="nearest")[0, 0]
    return up / up.max() if up.max() > 0 else up


def _reference(title: str, case: cases.MapCase) -> torch.Tensor:
    fn = getattr(reference, title)
    return cached(("l2a3", title, case.label), lambda: fn(*case.args(), **case.kwargs()))


def _diagnose(title: str, case: cases.MapCase, got: torch.Tensor, expected: torch.Tensor) -> str:
    """The likely bug behind ``got`` (a tensor that failed the comparison)."""
    if torch.isnan(got).any():
        return "your map contains NaN"
    if got.shape == expected.shape and not got.any() and expected.any():
        return "your map is all zeros (is the gradient taken with respect to the input image?)"
    if got.shape != expected.shape:
        h, w = expected.shape[-2:]
        if expected.dim() == 2 and tuple(got.shape) == (3, h, w):
            return "shape (3, H, W): take the max over colour channels"
        if expected.dim() == 3 and tuple(got.shape) == (h, w):
            return "shape (H, W): this method keeps the colour channels, (3, H, W)"
        if got.dim() == expected.dim() + 1 and got.shape[0] == 1:
            return f"shape {tuple(got.shape)}: drop the batch axis"
        return f"shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    for cause, make in _variants(title, case).items():
        try:
            candidate = make()
        except Exception:  # noqa: BLE001 - a variant that does not apply to this case
            continue
        if candidate.shape == got.shape and relative_error(got, candidate) <= TOLERANCE:
            return cause
    if case.class_idx is not None and title in ("saliency", "guided_backprop", "guided_grad_cam") \
            and _top1_class(case) != case.class_idx:
        explained = dict(case.__dict__, class_idx=None)
        top1 = _reference(title, cases.MapCase(**{**explained, "label": case.label + " (top-1)"}))
        if relative_error(got, top1) <= TOLERANCE:
            return "you explained the top-1 class: use class_idx when it is given"
    scale = float((got * expected).sum() / (expected * expected).sum().clamp_min(1e-30))
    if abs(scale - 1) > 1e-3 and relative_error(got, scale * expected) <= TOLERANCE:
        return f"proportional to the reference (x{scale:.3g}): a normalization or factor too many"
    hints = {"smoothgrad": " (is the noise drawn from `generator`, one torch.randn(image.shape, generator=generator) "
                           "per sample, in order?)",
             "guided_grad_cam": " (is it guided_backprop times the toolbox's grad_cam of the same class?)"}
    return "differs from the reference" + hints.get(title, " (is the score the pre-softmax logit of class_idx?)")


# --------------------------------------------------------------------------- grading
def _grade(student: Callable, title: str, group: list[cases.MapCase], output: Property, values: Property,
           side: Property | None, nonnegative: bool) -> int:
    """Call ``student`` on each case; returns how many maps matched the reference."""
    matched = 0
    for case in group:
        expected = _reference(title, case)
        outcome, changed = _call(case, student)
        if side is not None:
            side.expect(not changed, f"{case.label}: " + "; ".join(changed))
        if outcome.error:
            output.fail(f"{case.label}: raised {outcome.error}")
            values.fail(f"{case.label}: raised an exception")
            continue
        got = outcome.value
        shape = tuple(expected.shape)
        is_ok = (type(got) is torch.Tensor and got.dtype == torch.float32 and tuple(got.shape) == shape
                 and not torch.isnan(got).any() and (not nonnegative or float(got.min()) >= 0))
        rule = "float32 torch tensor of shape {}{} without NaN".format(shape, " with values >= 0" if nonnegative else "")
        output.expect(is_ok, f"{case.label}: expected a {rule}; got {summarize(got)}")
        got_t = _as_tensor(got)
        if got_t is None or got_t.shape != expected.shape:
            values.fail(f"{case.label}: cannot compare, {summarize(got)}"
                        + (f" ({_diagnose(title, case, got_t, expected)})" if got_t is not None else ""))
            continue
        err = relative_error(got_t, expected)
        if values.expect(err <= TOLERANCE, f"{case.label}: max |yours - reference| = {err:.3g} of the reference's "
                                           f"largest value; likely cause: {_diagnose(title, case, got_t, expected)}"
                         if err > TOLERANCE else ""):
            matched += 1
    return matched


def _call(case: cases.MapCase, student: Callable):
    """:func:`autograder.student_call.call_on_model` with the case's keyword arguments: the
    outcome and what the call changed in the model (put back afterwards)."""
    state = snapshot(case.model)
    outcome = call(student, *case.args(), **case.kwargs())
    changed = differences(case.model, state) + outcome.notes
    restore(case.model, state)
    return outcome, changed


def _check(student: Callable, title: str, groups: dict[str, list[cases.MapCase]], weights: dict[str, float],
           names: dict[str, str], points: float, nonnegative: bool) -> float:
    """The common shape of the map checks: one property per case group, plus the output's type,
    the top-1 rule and the model left as found (``weights`` are fractions of ``points``)."""
    report = Report(title)
    output = report.add(names["output"], weights["output"] * points)
    props = {group: report.add(names[group], weights[group] * points) for group in groups if group != "top1"}
    top1 = report.add("class_idx=None explains the top-1 class" + names.get("top1", ""), weights["top1"] * points)
    side = report.add("leaves the model as found (parameters, requires_grad, mode, hooks)",
                      weights["side"] * points, kernel_observed=True)
    matched = sum(_grade(student, title, groups[group], output, prop, side, nonnegative)
                  for group, prop in props.items())
    matched += _grade(student, title, groups["top1"], output, top1, side, nonnegative)
    if not matched:
        side.fail(UNVERIFIED)
    return report.finish()


def _output_name(shape: str, nonnegative: bool) -> str:
    return f"returns a float32 tensor {shape}" + (" >= 0" if nonnegative else "") + " without NaN"


_MAP_WEIGHTS = {"output": 0.15, "hand": 0.25, "archs": 0.2, "real": 0.2, "top1": 0.1, "side": 0.1}
_MAP_NAMES = {"hand": "matches the reference on hand-built nets (a linear net: |W_c| exactly)",
              "archs": "matches the reference on random-init ResNet18 / SqueezeNet1.1",
              "real": "matches the reference on the real EfficientNet-Lite0 and photos"}


@graded(cases=(cases.saliency_cases,))
def check_saliency(saliency: Callable, points: float = 3) -> float:
    """Grade ``saliency(model, image, class_idx=None) -> (H, W)``; returns the points earned."""
    return _check(saliency, "saliency", cases.saliency_cases(), _MAP_WEIGHTS,
                  {**_MAP_NAMES, "output": _output_name("(H, W)", True)}, points, nonnegative=True)


@graded(cases=(cases.smoothgrad_cases,))
def check_smoothgrad(smoothgrad: Callable, points: float = 3) -> float:
    """Grade ``smoothgrad(model, image, class_idx=None, n_samples=25, noise_level=0.15,
    generator=None) -> (H, W)``; returns the points earned."""
    weights = {"output": 0.1, "hand": 0.2, "defaults": 0.1, "archs": 0.2, "real": 0.2, "top1": 0.1, "side": 0.1}
    names = {**_MAP_NAMES, "output": _output_name("(H, W)", True),
             "hand": "matches the reference on hand-built nets (noise from the generator, scaled to the input's range)",
             "defaults": "the defaults n_samples=25, noise_level=0.15 when they are not given"}
    return _check(smoothgrad, "smoothgrad", cases.smoothgrad_cases(), weights, names, points, nonnegative=True)


@graded(cases=(cases.integrated_gradients_cases,))
def check_integrated_gradients(integrated_gradients: Callable, points: float = 4) -> float:
    """Grade ``integrated_gradients(model, image, class_idx=None, baseline=None, steps=50)
    -> (3, H, W)``; returns the points earned."""
    weights = {"output": 0.1, "hand": 0.2, "baseline": 0.15, "archs": 0.15, "real": 0.1, "completeness": 0.1,
               "top1": 0.1, "side": 0.1}
    groups = cases.integrated_gradients_cases()
    names = {**_MAP_NAMES, "output": _output_name("(3, H, W)", False),
             "hand": "matches the reference on hand-built nets (a linear net: (x - x0) * W_c exactly)",
             "baseline": "matches the reference with a given baseline (the path from x0 to x)",
             "completeness": "completeness: the attributions sum to y_c(x) - y_c(baseline) within 1 %"}
    report = Report("integrated_gradients")
    output = report.add(names["output"], weights["output"] * points)
    props = {g: report.add(names[g], weights[g] * points) for g in ("hand", "baseline", "archs", "real")}
    complete = report.add(names["completeness"], weights["completeness"] * points)
    top1 = report.add("class_idx=None explains the top-1 class", weights["top1"] * points)
    side = report.add("leaves the model as found (parameters, requires_grad, mode, hooks)",
                      weights["side"] * points, kernel_observed=True)
    matched = sum(_grade(integrated_gradients, "integrated_gradients", groups[g], output, p, side, False)
                  for g, p in props.items())
    matched += _grade(integrated_gradients, "integrated_gradients", groups["top1"], output, top1, side, False)
    for case in groups["completeness"]:
        outcome, changed = _call(case, integrated_gradients)
        side.expect(not changed, f"{case.label}: " + "; ".join(changed))
        got = _as_tensor(outcome.value) if outcome.ok else None
        if got is None or tuple(got.shape) != tuple(case.image.shape[1:]):
            complete.fail(f"{case.label}: " + (f"raised {outcome.error}" if outcome.error else
                                               f"expected (3, H, W), got {summarize(outcome.value)}"))
            continue
        with torch.no_grad():
            logits = case.model(torch.cat([case.image, _baseline(case)]))
        delta = float(logits[0, case.class_idx] - logits[1, case.class_idx])
        total = float(got.double().sum())
        complete.expect(abs(total - delta) <= 0.01 * abs(delta) + 1e-6,
                        f"{case.label}: the attributions sum to {total:.5g}, but y_c(x) - y_c(x0) = {delta:.5g} "
                        "(the path, the (x - x0) factor or the 1/steps?)")
    if not matched:
        side.fail(UNVERIFIED)
    return report.finish()


@graded(cases=(cases.guided_backprop_cases,))
def check_guided_backprop(guided_backprop: Callable, points: float = 3) -> float:
    """Grade ``guided_backprop(model, image, class_idx=None) -> (3, H, W)``; returns the points."""
    names = {**_MAP_NAMES, "output": _output_name("(3, H, W)", False),
             "hand": "matches the reference on hand-built nets (guided ReLU rule)",
             "archs": "matches the reference on random-init ResNet18 / SqueezeNet1.1 (in-place, reused ReLUs)",
             "real": "matches the reference on the real EfficientNet-Lite0 (ReLU6) and photos"}
    return _check(guided_backprop, "guided_backprop", cases.guided_backprop_cases(), _MAP_WEIGHTS, names, points,
                  nonnegative=False)


@graded(cases=(cases.guided_grad_cam_cases,))
def check_guided_grad_cam(guided_grad_cam: Callable, points: float = 2) -> float:
    """Grade ``guided_grad_cam(model, layer, image, class_idx=None) -> (3, H, W)``; returns the points."""
    names = {**_MAP_NAMES, "output": _output_name("(3, H, W)", False),
             "hand": "matches the reference on hand-built nets",
             "archs": "matches the reference on random-init ResNet18 / SqueezeNet1.1",
             "real": "matches the reference on the real EfficientNet-Lite0 and photos",
             "top1": " (for both factors)"}
    return _check(guided_grad_cam, "guided_grad_cam", cases.guided_grad_cam_cases(), _MAP_WEIGHTS, names, points,
                  nonnegative=False)
