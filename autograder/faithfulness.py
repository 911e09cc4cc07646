"""Checks for the L2A3 faithfulness functions: ``deletion_curve``, ``insertion_curve``, ``curve_auc``.

The curves are compared point by point with :mod:`solutions.faithfulness` (softmax
probabilities, within 1e-4) on hand-built nets with tie-heavy maps and uneven pixel counts, and on
the real EfficientNet-Lite0 with the cat photo; a failing curve is matched against what the
common mistakes produce (least important pixels first, ties broken the other way, logits instead
of probabilities, the count rounded, the endpoint missing, the other curve).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from solutions import faithfulness as reference

from . import saliency_cases as cases
from .reference_cache import cached
from .report import UNVERIFIED, Report, graded
from .student_call import call

TOLERANCE = 1e-4  # max |yours - reference| of a probability



def _args(case: cases.CurveCase) -> tuple[tuple, dict]:
    attribution = case.attribution.clone() if isinstance(case.attribution, torch.Tensor) else case.attribution.copy()
    kwargs = {} if case.steps is None else {"steps": case.steps}
    return (case.model, case.image.clone(), attribution, case.class_idx), kwargs


def _curve_from(case: cases.CurveCase, order: np.ndarray, insert: bool, counts=None, logits: bool = False,
                endpoint: bool = True) -> np.ndarray:
    """A curve as a mistake would compute it: pixel ``order``, ``counts`` per step, logits..."""
    x = case.image
    h, w = x.shape[-2:]
    steps = case.steps or 20
    counts = np.arange(steps + 1) * (h * w) // steps if counts is None else counts
    if not endpoint:
        counts = counts[:-1]
    rank = np.empty(h * w, dtype=np.int64)
    rank[order] = np.arange(h * w)
    masks = torch.from_numpy(rank[None, :] < np.asarray(counts)[:, None]).view(-1, 1, h, w).to(x.dtype)
    images = x * masks if insert else x * (1 - masks)
    with torch.no_grad():
        out = case.model(images)
        values = out[:, case.class_idx] if logits else out.softmax(1)[:, case.class_idx]
    return values.double().numpy()


def _diagnose(case: cases.CurveCase, got: np.ndarray, insert: bool) -> str:
    a = np.asarray(case.attribution.numpy() if isinstance(case.attribution, torch.Tensor) else case.attribution,
                   dtype=np.float64).ravel()
    n = a.size
    steps = case.steps or 20
    best_first = np.argsort(-a, kind="stable")
    variants = {
        "the least important pixels first: rank by the attribution in descending order":
            lambda: _curve_from(case, np.argsort(a, kind="stable"), insert),
        "ties broken by the larger flat index first: keep equal values in flat-index order (a stable sort of -a)":
            lambda: _curve_from(case, (n - 1 - np.argsort(-a[::-1], kind="stable")), insert),
        "logits instead of softmax probabilities": lambda: _curve_from(case, best_first, insert, logits=True),
        "pixel counts rounded up: step i changes floor(i * H * W / steps) pixels":
            lambda: _curve_from(case, best_first, insert, counts=-(-np.arange(steps + 1) * n // steps)),
        "pixel counts rounded to the nearest: step i changes floor(i * H * W / steps) pixels":
            lambda: _curve_from(case, best_first, insert, counts=np.round(np.arange(steps + 1) * n / steps).astype(int)),
        ("the deletion curve: insertion starts from an all-zero image and inserts the top pixels" if insert else
         "the insertion curve: deletion starts from the image and removes the top pixels"):
            lambda: _curve_from(case, best_first, not insert),
    }
    if got.shape == (steps,):
        return "steps points: the curve has steps + 1 points, i = 0 .. steps (both ends included)"
    for cause, make in variants.items():
        candidate = make()
        if candidate.shape == got.shape and np.abs(candidate - got).max() <= TOLERANCE:
            return cause
    return "differs from the reference (the order, the counts, the zeroed channels, the softmax?)"


def _check_curve(student: Callable, title: str, points: float, insert: bool) -> float:
    ref = reference.insertion_curve if insert else reference.deletion_curve
    report = Report(title)
    output = report.add("returns a numpy array (steps + 1,) of probabilities in [0, 1]", 0.15 * points)
    groups = cases.curve_cases()
    props = {"hand": report.add("matches the reference on hand-built nets (ties by flat index, uneven counts)",
                                0.35 * points),
             "defaults": report.add("steps=20 when it is not given", 0.1 * points),
             "real": report.add("matches the reference on the real EfficientNet-Lite0 (cat photo)", 0.3 * points)}
    side = report.add("leaves the model as found (parameters, requires_grad, mode, hooks)", 0.1 * points,
                      kernel_observed=True)
    matched = 0
    for group, prop in props.items():
        for case in groups[group]:
            args, kwargs = _args(case)
            expected = cached(("l2a3", title, case.label), lambda args=args, kwargs=kwargs: ref(*args, **kwargs))
            outcome, changed = _call(case, student, args, kwargs)
            side.expect(not changed, f"{case.label}: " + "; ".join(changed))
            if outcome.error:
                output.fail(f"{case.label}: raised {outcome.error}")
                prop.fail(f"{case.label}: raised an exception")
                continue
            got = outcome.value
            is_ok = (isinstance(got, np.ndarray) and got.shape == expected.shape and got.dtype.kind == "f"
                     and np.all((got >= -1e-6) & (got <= 1 + 1e-6)))
            output.expect(is_ok, f"{case.label}: expected a float numpy array of shape {expected.shape} in [0, 1]; "
                                 f"got {type(got).__name__}{getattr(got, 'shape', '')}"
                                 + (" (return .numpy() of a CPU tensor)" if isinstance(got, torch.Tensor) else ""))
            try:
                values = np.asarray(got.detach() if isinstance(got, torch.Tensor) else got, dtype=np.float64)
            except (TypeError, ValueError):
                prop.fail(f"{case.label}: not an array ({type(got).__name__})")
                continue
            if values.shape != expected.shape:
                prop.fail(f"{case.label}: shape {values.shape}, expected {expected.shape}; likely cause: "
                          f"{_diagnose(case, values, insert)}")
                continue
            err = float(np.abs(values - expected).max())
            if prop.expect(err <= TOLERANCE, f"{case.label}: max |yours - reference| = {err:.3g}; likely cause: "
                                             f"{_diagnose(case, values, insert)}" if err > TOLERANCE else ""):
                matched += 1
    if not matched:
        side.fail(UNVERIFIED)
    return report.finish()


def _call(case: cases.CurveCase, student: Callable, args: tuple, kwargs: dict):
    from .model_state import differences, restore, snapshot

    state = snapshot(case.model)
    outcome = call(student, *args, **kwargs)
    changed = differences(case.model, state) + outcome.notes
    restore(case.model, state)
    return outcome, changed


@graded(cases=(cases.curve_cases,))
def check_deletion_curve(deletion_curve: Callable, points: float = 2) -> float:
    """Grade ``deletion_curve(model, image, attribution, class_idx, steps=20) -> (steps + 1,)``."""
    return _check_curve(deletion_curve, "deletion_curve", points, insert=False)


@graded(cases=(cases.curve_cases,))
def check_insertion_curve(insertion_curve: Callable, points: float = 2) -> float:
    """Grade ``insertion_curve(model, image, attribution, class_idx, steps=20) -> (steps + 1,)``."""
    return _check_curve(insertion_curve, "insertion_curve", points, insert=True)


@graded(cases=(cases.auc_cases,))
def check_curve_auc(curve_auc: Callable, points: float = 1) -> float:
    """Grade ``curve_auc(curve) -> float`` (trapezoid rule on [0, 1])."""
    report = Report("curve_auc")
    kind = report.add("returns a float", 0.2 * points)
    values = report.add("the trapezoid rule on [0, 1] (points equally spaced, both ends included)", 0.8 * points)
    for label, curve in cases.auc_cases():
        expected = reference.curve_auc(curve)
        outcome = call(curve_auc, curve.copy() if hasattr(curve, "copy") else curve.clone())
        if outcome.error:
            kind.fail(f"{label}: raised {outcome.error}")
            values.fail(f"{label}: raised {outcome.error}")
            continue
        got = outcome.value
        kind.expect(isinstance(got, (float, np.floating)), f"{label}: expected a float, got {type(got).__name__}")
        try:
            value = float(np.asarray(got.detach() if isinstance(got, torch.Tensor) else got).reshape(()))
        except (TypeError, ValueError):
            values.fail(f"{label}: not a number ({type(got).__name__})")
            continue
        c = np.asarray(curve, dtype=np.float64)
        causes = {"np.trapezoid(curve) without dx: the x axis is [0, 1], dx = 1 / (len(curve) - 1)": np.trapezoid(c),
                  "the mean of the points: use the trapezoid rule": c.mean(),
                  "dx = 1 / len(curve): the curve has len(curve) - 1 intervals": np.trapezoid(c, dx=1 / c.size)}
        cause = next((k for k, v in causes.items() if abs(v - value) <= 1e-9), "differs from the trapezoid rule")
        values.expect(abs(value - expected) <= 1e-9, f"{label}: got {value:.6g}, expected {expected:.6g}; "
                                                      f"likely cause: {cause}")
    return report.finish()
