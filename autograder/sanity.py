"""Checks for the L2A3 sanity-check functions: ``randomize_layers`` and ``rank_correlation``.

``randomize_layers`` may draw its new weights in any honest way, so it is checked by its
properties, not against the reference's numbers: it returns a copy (never the caller's model),
every float tensor of the named layers is re-drawn with the layer's default initialization (each
tensor's values follow the distribution of the reference's fresh draw: a two-sample
Kolmogorov-Smirnov test; deterministic defaults such as BatchNorm's weight = 1 exactly),
everything else is copied unchanged, equally seeded generators give equal copies, an unknown
name is an error, and the caller's model is untouched (as the kernel reports it). The returned
module travels back from the student's kernel as a copy rebuilt by the grader
(:func:`autograder.remote.returned_module`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from scipy import stats
from torch import nn

from solutions import sanity as reference

from . import saliency_cases as cases
from .reference_cache import cached
from .report import UNVERIFIED, Report, graded
from .student_call import call, call_on_model

#: A re-drawn tensor passes when the KS test cannot tell it from the reference's draw at this level.
KS_LEVEL = 1e-3
#: Tensors smaller than this are checked for having changed only (too few values for a test).
KS_MIN_VALUES = 32
#: Values per tensor that enter the test.
KS_SAMPLE = 4000



def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    found = {n: b.detach() for n, b in model.named_buffers()}
    found.update({n: p.detach() for n, p in model.named_parameters()})
    return found


def _inside(name: str, layers) -> bool:
    return any(name == layer or name.startswith(layer + ".") for layer in layers)


def _reference_draws(case: cases.RandomizeCase) -> dict[str, torch.Tensor]:
    """Two reference copies with different seeds: the fresh tensors of the named layers (a pair
    per name, for the distribution and to tell deterministic defaults from random ones)."""
    def compute():
        a = reference.randomize_layers(case.model, list(case.layer_names), torch.Generator().manual_seed(1000))
        b = reference.randomize_layers(case.model, list(case.layer_names), torch.Generator().manual_seed(1001))
        ta, tb = _tensors(a), _tensors(b)
        return {n: torch.stack([ta[n], tb[n]]) for n in ta if _inside(n, case.layer_names)}
    return cached(("l2a3", "randomize_layers", case.label), compute)


def _sample(tensor: torch.Tensor) -> np.ndarray:
    """At most :data:`KS_SAMPLE` values of ``tensor``, evenly spaced in flat order (a test on
    millions of values would take seconds and reject the tiniest difference in shape)."""
    flat = tensor.flatten()
    step = max(1, flat.numel() // KS_SAMPLE)
    return flat[::step].double().numpy()


def _judge_copy(case: cases.RandomizeCase, got: nn.Module, fresh: dict) -> tuple[list[str], list[str]]:
    """(problems inside the named layers, problems outside them) of a returned copy."""
    original, mine = _tensors(case.model), _tensors(got)
    inside, outside = [], []
    for name, before in original.items():
        now = mine[name]
        if not _inside(name, case.layer_names):
            if not torch.equal(now, before):
                outside.append(f"{name!r} changed, but it is not in {list(case.layer_names)}")
            continue
        draws = fresh[name]
        if not now.is_floating_point():
            continue  # e.g. BatchNorm's num_batches_tracked
        if torch.equal(draws[0], draws[1]):          # a deterministic default (BatchNorm: 1, 0)
            if not (torch.equal(now, draws[0]) or (name.endswith(("running_mean", "running_var"))
                                                   and torch.equal(now, before))):
                inside.append(f"{name!r} should be its default {float(draws[0].flatten()[0]):g} "
                              "(reset_parameters())")
            continue
        if torch.equal(now, before):
            inside.append(f"{name!r} was not re-initialized")
            continue
        if now.numel() >= KS_MIN_VALUES:
            p = stats.ks_2samp(_sample(now), _sample(draws)).pvalue
            if p < KS_LEVEL:
                inside.append(f"{name!r} does not follow the layer's default initialization (values in "
                              f"[{float(now.min()):.3g}, {float(now.max()):.3g}], the default's in "
                              f"[{float(draws.min()):.3g}, {float(draws.max()):.3g}]; use reset_parameters())")
    return inside, outside


def _describe(value) -> str:
    return type(value).__name__ if not isinstance(value, nn.Module) else f"a {type(value).__name__}"


@graded(cases=(cases.randomize_cases,))
def check_randomize_layers(randomize_layers: Callable, points: float = 3) -> float:
    """Grade ``randomize_layers(model, layer_names, generator=None) -> nn.Module``."""
    report = Report("randomize_layers")
    is_copy = report.add("returns a copy of the model (an nn.Module of the same structure, not the model itself)",
                         0.15 * points)
    named = report.add("the named layers get freshly drawn weights (their own default initialization)", 0.3 * points)
    rest = report.add("every other parameter and buffer is copied unchanged", 0.15 * points)
    seeded = report.add("equally seeded generators give equal copies, other seeds other weights", 0.15 * points)
    unknown = report.add("an unknown layer name raises an error (KeyError, ValueError or AttributeError)", 0.1 * points)
    side = report.add("leaves the caller's model untouched", 0.15 * points, kernel_observed=True)
    verified = 0
    for case in cases.randomize_cases():
        fresh = _reference_draws(case)
        outcome, changed = call_on_model(case.model, randomize_layers, case.model, list(case.layer_names),
                                         torch.Generator().manual_seed(case.seed))
        side.expect(not changed, f"{case.label}: the caller's model changed: " + "; ".join(changed)
                    + (" (deep-copy the model first: copy.deepcopy(model))" if changed else ""))
        if outcome.error:
            for prop in (is_copy, named, rest):
                prop.fail(f"{case.label}: raised {outcome.error}")
            continue
        got = outcome.value
        if got is case.model:
            is_copy.fail(f"{case.label}: you returned the caller's model itself; return copy.deepcopy(model), "
                         "randomized")
            named.fail(f"{case.label}: no copy to judge")
            rest.fail(f"{case.label}: no copy to judge")
            continue
        if not isinstance(got, nn.Module) or set(_tensors(got)) != set(_tensors(case.model)):
            is_copy.fail(f"{case.label}: expected a copy of the model (same layers), got {_describe(got)}")
            named.fail(f"{case.label}: no copy to judge")
            rest.fail(f"{case.label}: no copy to judge")
            continue
        is_copy.expect(True, "")
        inside, outside = _judge_copy(case, got, fresh)
        named.expect(not inside, f"{case.label}: " + "; ".join(inside[:3]))
        rest.expect(not outside, f"{case.label}: " + "; ".join(outside[:3]))
        modes = [n for n, m in got.named_modules() if m.training != case.model.get_submodule(n).training]
        rest.expect(not modes, f"{case.label}: train/eval mode differs from the model's on {modes[:3]}")
        verified += not inside and not outside
    _check_seeding(randomize_layers, seeded)
    _check_unknown_name(randomize_layers, unknown)
    if not verified:
        side.fail(UNVERIFIED)
    return report.finish()


def _check_seeding(randomize_layers: Callable, prop) -> None:
    case = cases.randomize_cases()[1]
    copies = []
    for seed in (7, 7, 8):
        outcome, _ = call_on_model(case.model, randomize_layers, case.model, list(case.layer_names),
                                   torch.Generator().manual_seed(seed))
        if outcome.error or not isinstance(outcome.value, nn.Module) or outcome.value is case.model:
            prop.fail(f"{case.label}, seed {seed}: " + (f"raised {outcome.error}" if outcome.error else
                                                       f"no copy returned ({_describe(outcome.value)})"))
            return
        copies.append(_tensors(outcome.value))
    weight = next(n for n in copies[0] if _inside(n, case.layer_names) and n.endswith("weight"))
    same = all(torch.equal(copies[0][n], copies[1][n]) for n in copies[0])
    prop.expect(same, f"{case.label}: two generators seeded 7 gave different copies: draw the new weights "
                      "from `generator` (e.g. torch.manual_seed(int(torch.randint(2**62, (), generator=generator))))")
    prop.expect(not torch.equal(copies[0][weight], copies[2][weight]),
                f"{case.label}: seeds 7 and 8 gave the same {weight!r}: the generator is not used")


def _check_unknown_name(randomize_layers: Callable, prop) -> None:
    case = cases.randomize_cases()[0]
    outcome, _ = call_on_model(case.model, randomize_layers, case.model, ["no_such_layer"],
                               torch.Generator().manual_seed(0))
    error = (outcome.error or "").split(":")[0]
    prop.expect(error in ("KeyError", "ValueError", "AttributeError"),
                f"{case.label}: layer_names=['no_such_layer'] " + (f"raised {outcome.error}" if outcome.error else
                "returned without an error: a misspelt name must not silently randomize nothing"))


# --------------------------------------------------------------------------- rank_correlation
@graded(cases=(cases.rank_cases,))
def check_rank_correlation(rank_correlation: Callable, points: float = 1) -> float:
    """Grade ``rank_correlation(map_a, map_b) -> float`` (Spearman, ties at their average rank)."""
    report = Report("rank_correlation")
    kind = report.add("returns a float", 0.2 * points)
    plain = report.add("Spearman's correlation of maps without ties", 0.3 * points)
    tied = report.add("Spearman's correlation of maps with ties (tied values share their average rank)", 0.5 * points)
    for label, a, b in cases.rank_cases():
        expected = cached(("l2a3", "rank_correlation", label), lambda a=a, b=b: reference.rank_correlation(a, b))
        outcome = call(rank_correlation, a.clone() if isinstance(a, torch.Tensor) else a.copy(),
                       b.clone() if isinstance(b, torch.Tensor) else b.copy())
        prop = tied if "ties)" in label and "no ties" not in label else plain
        if outcome.error:
            kind.fail(f"{label}: raised {outcome.error}")
            prop.fail(f"{label}: raised {outcome.error}")
            continue
        got = outcome.value
        number = isinstance(got, (float, np.floating)) or (isinstance(got, (torch.Tensor, np.ndarray))
                                                           and np.size(got) == 1)
        kind.expect(isinstance(got, (float, np.floating)), f"{label}: expected a float, got {_describe(got)}"
                    + (" (use float(...))" if number else ""))
        if not number:
            prop.fail(f"{label}: not a number ({_describe(got)})")
            continue
        value = float(np.asarray(got).reshape(()))
        if abs(value - expected) <= 1e-6:
            prop.expect(True, "")
            continue
        pearson = float(np.corrcoef(np.ravel(np.asarray(a, dtype=float)), np.ravel(np.asarray(b, dtype=float)))[0, 1])
        ordinal = float(np.corrcoef(stats.rankdata(np.ravel(np.asarray(a, dtype=float)), method="ordinal"),
                                    stats.rankdata(np.ravel(np.asarray(b, dtype=float)), method="ordinal"))[0, 1])
        cause = ("Pearson's correlation of the values: Spearman's correlates their ranks" if abs(value - pearson) <= 1e-6
                 else "ties broken by position (argsort of argsort): tied values share their average rank"
                 if abs(value - ordinal) <= 1e-6 else "differs from Spearman's rank correlation")
        prop.fail(f"{label}: got {value:.6g}, expected {expected:.6g}; likely cause: {cause}")
    return report.finish()
