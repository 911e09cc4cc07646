"""Checks for the L2A1 functions: the three objectives, ``jitter``, ``visualize``, ``deepdream``.

Objectives are compared with :mod:`solutions.featureviz` in value and gradient on random
activations. ``jitter`` is checked as a crop (any offsets, as long as they cover the range and
follow the generator). The notebook fixes the algorithms of ``visualize`` and ``deepdream``, so
their results are compared exactly on small deterministic cases (``visualize`` also with a
deterministic transform the check passes); on the real model with random transforms, the
objective must rise at least half as much as the reference's. Graded functions
must leave the model untouched, ``.grad`` included. Using the toolbox's own version of the graded
function (e.g. ``interpkit.featureviz.render`` inside ``visualize``) earns nothing for that part:
:data:`TOOLBOX_IMPLEMENTATIONS` lists them for :mod:`autograder.delegation`.
"""
from __future__ import annotations

import importlib
from typing import Callable

import numpy as np
import torch

from interpkit.images import normalize
from solutions import featureviz as reference

from . import models
from .reference_cache import cached
from .report import UNVERIFIED, Report, graded
from .student_call import call, call_on_model

toolbox_render = importlib.import_module("interpkit.featureviz.render")  # the module
_OBJECTIVES = "interpkit.featureviz.objectives"
_OBJECTIVE_FUNCTIONS = tuple(f"{_OBJECTIVES}.{n}" for n in (
    "channel_activation", "neuron_activation", "mean_squared_activation", "gram_diversity",
    "channel_per_image", "neuron_per_image", "Objective", "as_objective", "objective_from", "channel",
    "neuron", "deepdream", "diversity", "channels_per_image"))
_RENDER = tuple(f"interpkit.featureviz.render.{n}" for n in ("render", "optimize", "render_layer", "visualize_steps"))

#: Toolbox objects that implement a graded function: using one in that function's definition
#: earns no credit for it (judged from the source, autograder.delegation).
TOOLBOX_IMPLEMENTATIONS = {
    "channel_objective": _OBJECTIVE_FUNCTIONS,
    "neuron_objective": _OBJECTIVE_FUNCTIONS,
    "deepdream_objective": _OBJECTIVE_FUNCTIONS,
    "jitter": ("interpkit.featureviz.transforms.jitter_crop", "interpkit.featureviz.transforms.Jitter",
               "interpkit.featureviz.transforms.jitter"),
    "visualize": _RENDER,
    "deepdream": ("interpkit.featureviz.deepdream.deepdream",),
}


# --------------------------------------------------------------------------- objectives
def _activation_cases(seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    shapes = [(1, 4, 5, 5), (3, 6, 4, 6), (2, 8, 7, 3), (4, 3, 6, 8)]
    return [(f"acts {shape}", torch.randn(*shape, generator=gen)) for shape in shapes]


def _check_objective(student: Callable, ref: Callable, title: str, points: float,
                     arg_sets: Callable[[torch.Tensor], list[tuple]]) -> float:
    report = Report(title)
    scalar = report.add("returns a scalar tensor (0-dim)", points * 0.2)
    values = report.add("value equals the reference on random activations", points * 0.6)
    grads = report.add("differentiable: its gradient w.r.t. the activations equals the reference's",
                       points * 0.2, kernel_observed=True)
    for label, acts in _activation_cases():
        for args in arg_sets(acts):
            case = f"{label}, arguments {args}" if args else label

            def compute(acts=acts, args=args):
                leaf = acts.clone().requires_grad_(True)
                value = ref(leaf, *args)
                return value.detach(), torch.autograd.grad(value, leaf)[0]

            want, want_grad = cached((title, label, repr(args)), compute)
            outcome = call(student, acts.clone().requires_grad_(True), *args, grads_wrt=(0,))
            if outcome.error:
                for prop in (scalar, values, grads):
                    prop.fail(f"{case}: raised {outcome.error}")
                continue
            got = outcome.value
            scalar.expect(isinstance(got, torch.Tensor) and got.dim() == 0,
                          f"{case}: expected a 0-dim tensor, got "
                          f"{type(got).__name__}{'' if not isinstance(got, torch.Tensor) else tuple(got.shape)}")
            if not isinstance(got, torch.Tensor) or got.numel() != 1:
                values.fail(f"{case}: not a single number")
                grads.fail(f"{case}: not a single number")
                continue
            value = float(got.detach().reshape(()))
            hint = " (sign flipped? objectives are MAXIMIZED)" if abs(value + float(want)) < 1e-5 * (1 + abs(value)) else ""
            if not values.expect(abs(value - float(want)) <= 1e-5 * (1 + abs(float(want))),
                                 f"{case}: got {value:.6g}, expected {float(want):.6g}{hint}"):
                grads.fail(f"{case}: the value is wrong, so the gradient your kernel reports earns nothing")
                continue
            got_grad = outcome.grads[0] if outcome.grads else None
            if not got.requires_grad or got_grad is None:
                grads.fail(f"{case}: the result is not connected to acts (detached, .item() or numpy?)")
                continue
            grads.expect(got_grad.shape == want_grad.shape and torch.allclose(got_grad.float(), want_grad, atol=1e-6),
                         f"{case}: the gradient differs from the reference")
    return report.finish()


@graded
def check_channel_objective(channel_objective: Callable, points: float = 1) -> float:
    """Grade ``channel_objective(acts, channel)``."""
    return _check_objective(channel_objective, reference.channel_objective, "channel_objective", points,
                            lambda a: [(c,) for c in (0, a.shape[1] - 1, a.shape[1] // 2)])


@graded
def check_neuron_objective(neuron_objective: Callable, points: float = 2) -> float:
    """Grade ``neuron_objective(acts, channel, y=None, x=None)`` (centre by default)."""
    def args(a):
        h, w = a.shape[-2:]
        return [(1,), (a.shape[1] - 1,), (0, 0, w - 1), (2, h - 1, 0), (1, h // 2, w - 1)]
    return _check_objective(neuron_objective, reference.neuron_objective, "neuron_objective", points, args)


@graded
def check_deepdream_objective(deepdream_objective: Callable, points: float = 1) -> float:
    """Grade ``deepdream_objective(acts)``."""
    return _check_objective(deepdream_objective, reference.deepdream_objective, "deepdream_objective",
                            points, lambda a: [()])


# --------------------------------------------------------------------------- jitter
def _find_offset(image: torch.Tensor, crop: torch.Tensor) -> tuple[int, int] | None:
    h, w = crop.shape[-2:]
    for dy in range(image.shape[-2] - h + 1):
        for dx in range(image.shape[-1] - w + 1):
            if torch.equal(image[..., dy:dy + h, dx:dx + w], crop):
                return dy, dx
    return None


@graded
def check_jitter(jitter: Callable, points: float = 3) -> float:
    """Grade ``jitter(image, max_shift, generator=None)``."""
    report = Report("jitter")
    crop = report.add("returns a crop (H - max_shift, W - max_shift) of the input, same for every image", points / 3)
    seeded = report.add("draws its offset from `generator` (same seed, same crop)", points / 6)
    cover = report.add("offsets cover 0 ... max_shift in both directions, ends included", points / 3)
    grad = report.add("differentiable: gradients flow back to the input", points / 6, kernel_observed=True)
    base = torch.arange(2 * 3 * 12 * 14, dtype=torch.float32).reshape(2, 3, 12, 14)  # all values distinct
    for shape_label, image, shift in [("(2, 3, 12, 14), max_shift 4", base, 4),
                                      ("(1, 3, 9, 9), max_shift 2", base[:1, :, :9, :9].contiguous(), 2),
                                      ("(2, 3, 12, 14), max_shift 0", base, 0)]:
        outcome = call(jitter, image.clone(), shift, torch.Generator().manual_seed(1))
        if outcome.error:
            crop.fail(f"{shape_label}: raised {outcome.error}")
            continue
        out = outcome.value
        want_shape = (*image.shape[:2], image.shape[2] - shift, image.shape[3] - shift)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != want_shape:
            hint = " (padding instead of cropping?)" if isinstance(out, torch.Tensor) and out.shape[-1] > image.shape[-1] else ""
            crop.fail(f"{shape_label}: expected shape {want_shape}, got "
                      f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}{hint}")
            continue
        offset = _find_offset(image[:1], out[:1].detach())
        same = offset is not None and torch.equal(
            image[:, :, offset[0]:offset[0] + want_shape[2], offset[1]:offset[1] + want_shape[3]], out.detach())
        crop.expect(same, f"{shape_label}: the output is not one crop of the input (one offset for the whole batch)")
    offsets = []
    for seed in range(120):
        first = call(jitter, base.clone(), 4, torch.Generator().manual_seed(seed))
        again = call(jitter, base.clone(), 4, torch.Generator().manual_seed(seed))
        if first.error or again.error or not isinstance(first.value, torch.Tensor) or first.value.shape[-2:] != (8, 10):
            seeded.fail("seeded calls failed or returned the wrong shape")
            cover.fail("seeded calls failed or returned the wrong shape")
            break
        if seed < 10:
            seeded.expect(torch.equal(first.value, again.value),
                          f"seed {seed}: two calls with equally seeded generators gave different crops "
                          "(pass generator=generator to torch.randint)")
        offsets.append(_find_offset(base[:1], first.value[:1].detach()))
    if offsets:
        ys = {o[0] for o in offsets if o}
        xs = {o[1] for o in offsets if o}
        cover.expect(ys == set(range(5)) and xs == set(range(5)),
                     f"over 120 seeds with max_shift 4, dy took {sorted(ys)} and dx took {sorted(xs)}; "
                     "expected every value in 0..4 (torch.randint's upper bound is exclusive)")
    leaf = base.clone().requires_grad_(True)
    outcome = call(jitter, leaf, 4, torch.Generator().manual_seed(0), grads_wrt=(0,))
    g = outcome.grads[0] if outcome.grads else None
    if not crop.passed:  # the kernel's own word about gradients counts only beside verified crops
        grad.fail("the crops are wrong, so the gradient your kernel reports earns nothing yet")
    elif outcome.error or not isinstance(outcome.value, torch.Tensor) or not outcome.value.requires_grad or g is None:
        grad.fail("the output of a tensor that requires grad must itself require grad (no .detach()/.numpy())")
    else:
        grad.expect(float(g.sum()) == outcome.value.numel() and float(g.max()) == 1.0,
                    "the gradient does not flow back to the cropped pixels")
    return report.finish()


# --------------------------------------------------------------------------- visualize
def _objective_value(model, layer, images: np.ndarray | torch.Tensor, objective) -> float:
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    if x.dim() == 3:
        x = x.permute(2, 0, 1)[None]
    with torch.no_grad():
        acts = toolbox_render.forward_to(model, layer, normalize(x))
        return float(objective(acts))


def _image_ok(value, shape: tuple[int, int]) -> tuple[bool, str]:
    arr = np.asarray(value) if isinstance(value, np.ndarray) else None
    if arr is None:
        return False, f"expected a numpy array (H, W, 3), got {type(value).__name__}"
    if arr.shape != (*shape, 3):
        return False, f"expected shape {(*shape, 3)}, got {arr.shape}"
    if not np.issubdtype(arr.dtype, np.floating) or np.isnan(arr).any():
        return False, f"expected floats without NaN, got {arr.dtype}"
    if arr.min() < 0 or arr.max() > 1:
        return False, f"values must lie in [0, 1], got [{arr.min():.3g}, {arr.max():.3g}]"
    return True, ""


#: max |student - reference| of an exact check (the same computation agrees to ~1e-6).
EXACT_TOLERANCE = 2e-3


def _visualize_reference(case, **changes) -> np.ndarray:
    """The reference image of a visualize case; ``changes`` make a wrong variant (diagnosis)."""
    kwargs = dict(transforms=case.transforms, objective=case.objective)
    kwargs.update(changes)
    return toolbox_render.render(case.model, case.layer, kwargs["objective"], param=case.param(),
                                 transforms=kwargs["transforms"], steps=case.steps, lr=case.lr, seed=0,
                                 progress=False, normalize=kwargs.get("normalize"))[0]


def _visualize_cause(case, got: np.ndarray) -> str:
    """The likely bug behind a visualize result that is not the reference's."""
    def close(changes) -> bool:
        return float(np.abs(got - _visualize_reference(case, **changes)).max()) <= EXACT_TOLERANCE

    objective = case.objective
    variants = [({"normalize": lambda images: images}, "the images were not normalized (normalize(images) "
                 "before the model)"),
                ({"objective": lambda acts: -objective(acts)}, "the objective was minimized: Adam minimizes, "
                 "so negate the objective")]
    if case.transforms is not None:
        variants.insert(0, ({"transforms": None}, "the transforms were ignored: apply them to the images "
                            "before every forward pass"))
    for changes, cause in variants:
        if close(changes):
            return cause
    return ("not the reference's trajectory: Adam(image_param.parameters(), lr) stepped once per step on "
            "the gradient of -objective, nothing else")


@graded(cases=(models.visualize_cases,))
def check_visualize(visualize: Callable, points: float = 4) -> float:
    """Grade ``visualize(model, layer, objective, image_param, transforms, steps, lr)``.

    The notebook fixes the algorithm, so results are compared exactly (within
    :data:`EXACT_TOLERANCE`) on cases without transforms and with a deterministic transform (the
    check passes it: ignoring it shows); with the standard random transforms, where the student's
    draws cannot match the reference's, the objective must rise at least half as much."""
    report = Report("visualize")
    output = report.add("returns the first image as a numpy array (H, W, 3) in [0, 1]", points * 0.1)
    exact = report.add("without transforms, follows Adam's trajectory exactly (maximizing, fresh "
                       "gradients each step, ImageNet normalization)", points * 0.35)
    shaped = report.add("applies the transforms before every forward pass (exact, with a deterministic "
                        "transform)", points * 0.25)
    gain = report.add("with the standard random transforms, raises the objective at least half as much as "
                      "the reference", points * 0.2)
    side = report.add("leaves the model untouched (parameters, .grad, requires_grad, mode, hooks)", points * 0.1,
                      kernel_observed=True)
    for case in models.visualize_cases():
        prop = {"exact": exact, "transform": shaped, "gain": gain}[case.kind]
        want = cached(("visualize", case.label), lambda: reference.visualize(
            case.model, case.layer, case.objective, case.param(), case.transforms, case.steps, case.lr))
        outcome, changed = call_on_model(case.model, visualize, case.model, case.layer, case.objective,
                                         case.param(), case.transforms, case.steps, case.lr, grads=True)
        side.expect(not changed, f"{case.label}: " + "; ".join(changed))
        if outcome.error:
            output.fail(f"{case.label}: raised {outcome.error}")
            prop.fail(f"{case.label}: raised an exception")
            continue
        ok, why = _image_ok(outcome.value, case.param().size)
        output.expect(ok, f"{case.label}: {why}")
        if not ok:
            prop.fail(f"{case.label}: invalid image ({why})")
            continue
        got = np.asarray(outcome.value, dtype=np.float64)
        if case.kind == "gain":
            start = _objective_value(case.model, case.layer, case.param().numpy()[0], case.objective)
            ref_gain = _objective_value(case.model, case.layer, want, case.objective) - start
            got_gain = _objective_value(case.model, case.layer, got, case.objective) - start
            sign = " (it went DOWN: is the objective maximized, i.e. the loss negated?)" if got_gain < 0 else ""
            gain.expect(got_gain >= 0.5 * ref_gain, f"{case.label}: objective rose by {got_gain:.4g}, the "
                                                    f"reference by {ref_gain:.4g}{sign}")
            continue
        err = float(np.abs(got - want).max())
        if err > EXACT_TOLERANCE:
            prop.fail(f"{case.label}: max |yours - reference| = {err:.3g} after {case.steps} steps; likely "
                      f"cause: {_visualize_cause(case, got)}")
        else:
            prop.expect(True, "")
    if not (exact.passed or shaped.passed or gain.passed):
        side.fail(UNVERIFIED)
    return report.finish()


# --------------------------------------------------------------------------- deepdream
def _deepdream_cause(case, got: np.ndarray) -> str:
    """The likely bug behind a DeepDream result that is not the reference's."""
    from interpkit.featureviz import deepdream as engine

    def close(**changes) -> bool:
        kwargs = dict(steps=case.steps, step_size=case.step_size, octaves=case.octaves,
                      octave_scale=case.octave_scale, jitter=0, progress=False,
                      objective=reference.deepdream_objective)
        kwargs.update(changes)
        want = engine(case.model, case.layer, case.photo, **kwargs)
        return float(np.abs(got - want).max()) <= EXACT_TOLERANCE

    if case.octaves > 1 and close(octaves=1):
        return "a single octave: process every octave, smallest first"
    if close(normalize=lambda images: images):
        return "the images were not normalized (normalize(x) before the model)"
    return ("not the reference's result: check the octave order (smallest first), the photo resized to each "
            "octave plus the detail carried over, and the step x + step_size * g / (mean|g| + 1e-8) clipped "
            "to [0, 1]")


@graded(cases=(models.deepdream_cases,))
def check_deepdream(deepdream: Callable, points: float = 3) -> float:
    """Grade ``deepdream(model, layer, image, steps, step_size, octaves, octave_scale)``.

    Exact results (within :data:`EXACT_TOLERANCE`) on small configurations pin the octave sizes
    and order, the detail carried between octaves, the normalized and clipped steps and the input
    normalization; the DeepDream objective must also rise on the real model."""
    report = Report("deepdream")
    output = report.add("returns an image of the input's shape (H, W, 3) in [0, 1] (clipped)", points * 0.15)
    exact = report.add("exactly the notebook's algorithm (octaves smallest first, detail carried over, "
                       "normalized steps, clipping, ImageNet normalization) on small cases", points * 0.5)
    gain = report.add("raises the layer's DeepDream objective on the real model at least half as much as "
                      "the reference", points * 0.25)
    side = report.add("leaves the model untouched (parameters, .grad, requires_grad, mode, hooks)", points * 0.1,
                      kernel_observed=True)
    dd = reference.deepdream_objective
    for case in models.deepdream_cases():
        args = (case.photo.copy(), case.steps, case.step_size, case.octaves, case.octave_scale)
        want = cached(("deepdream", case.label), lambda: reference.deepdream(case.model, case.layer, *args))
        outcome, changed = call_on_model(case.model, deepdream, case.model, case.layer, *args, grads=True)
        side.expect(not changed, f"{case.label}: " + "; ".join(changed))
        if outcome.error:
            output.fail(f"{case.label}: raised {outcome.error}")
            exact.fail(f"{case.label}: raised an exception")
            if case.real:
                gain.fail(f"{case.label}: raised an exception")
            continue
        ok, why = _image_ok(outcome.value, case.photo.shape[:2])
        output.expect(ok, f"{case.label}: {why}" + (" (clip the image to [0, 1] after each step)"
                                                     if "[0, 1]" in why else ""))
        if not ok:
            exact.fail(f"{case.label}: invalid image ({why})")
            if case.real:
                gain.fail(f"{case.label}: invalid image ({why})")
            continue
        got = np.asarray(outcome.value, dtype=np.float64)
        err = float(np.abs(got - want).max())
        if err > EXACT_TOLERANCE:
            exact.fail(f"{case.label}: max |yours - reference| = {err:.3g}; likely cause: {_deepdream_cause(case, got)}")
        else:
            exact.expect(True, "")
        if case.real:
            start = _objective_value(case.model, case.layer, case.photo, dd)
            ref_gain = _objective_value(case.model, case.layer, want, dd) - start
            got_gain = _objective_value(case.model, case.layer, got, dd) - start
            gain.expect(got_gain >= 0.5 * ref_gain,
                        f"{case.label}: the objective rose by {got_gain:.4g}, the reference by {ref_gain:.4g} "
                        "(normalize each gradient step by the gradient's mean absolute value)")
    if not (exact.passed or gain.passed):
        side.fail(UNVERIFIED)
    return report.finish()
