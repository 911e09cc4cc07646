#!/usr/bin/env python
"""Cost of the L2A3 references (``solutions.saliency``) as a multiple of one forward+backward
pass, beside captum's implementations of the same maps, measured in the same run.

Run from the repository root::

    INTERPKIT_ALLOW_RANDOM_WEIGHTS=1 .venv/bin/python bench/bench_saliency.py
    .venv/bin/python bench/bench_saliency.py --quick --models resnet18      # smoke test, < 60 s

What is measured, for each network (ResNet50 224 px with random weights, and the real offline
EfficientNet-Lite0 224 px on the cat photo), on one image and its top-1 class (computed once,
untimed, and passed explicitly to every method):

``fwd+bwd``
    One plain training-style step without the optimizer: ``model(x)[0, c].backward()`` with the
    parameters requiring gradients as usual (gradients reset outside the timed region). Every
    other column is divided by this one: it is the unit of cost.
``saliency``
    ``solutions.saliency.saliency`` against captum's ``Saliency(abs=True)`` + max over colour
    channels. Its floor is one forward and one backward pass into the input only (no parameter
    gradients), i.e. about 1x or less.
``smoothgrad``
    ``n_samples`` (default 25) noisy gradients, batches of ``solutions.saliency.BATCH``, against
    captum's ``NoiseTunnel(Saliency)`` with ``nt_samples_batch_size`` = the same batch.
``ig``
    Integrated Gradients with ``steps`` (default 50) points, right Riemann sum, against captum's
    ``IntegratedGradients(method="riemann_right", internal_batch_size=BATCH)``.
``guided``
    Guided backpropagation against captum's ``GuidedBackprop`` (which guides ``nn.ReLU`` only: on
    EfficientNet-Lite0, whose activations are ReLU6, captum runs on a copy where each ReLU6 is a
    ReLU followed by a clip at 6, the same function; see tests/test_reference_saliency.py).
``guided_gc``
    Guided Grad-CAM at the Grad-CAM layer against captum's ``GuidedGradCam`` (bilinear).

The largest difference between each of ours and captum's map (relative to the largest value of
ours; Guided Grad-CAM compared up to captum's un-normalized Grad-CAM scale) is printed as a check
that the two compute the same thing. SmoothGrad's noise is drawn from the same seed for both.

Each cell is the median (``--stat min``: the minimum) of ``--reps`` repetitions after
``--warmup`` untimed rounds, the methods interleaved (order reversed every other round,
``bench.timing.measure``); the garbage collector is paused during each timed call.
``torch.set_num_threads`` is left at its default (the value is printed).

Goals (ours / captum's, lower is faster): each method at most 1.10x captum's (the same algorithm:
a reference slower than captum does needless work).
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.timing import Method, load_average, measure, table  # noqa: E402

GOAL_VS_CAPTUM = 1.10
DEFAULT_MODELS = ("resnet50", "efficientnet_lite0")
CHOICES = ("resnet18", "resnet50", "efficientnet_lite0")
LAYERS = {"resnet18": "layer4", "resnet50": "layer4", "efficientnet_lite0": "features.17"}
METHODS = ("saliency", "smoothgrad", "ig", "guided", "guided_gc")
DEFAULT_REPS = 5
QUICK_REPS = 2
NOISY = 0.25


def _model_and_input(name: str, size: int):
    import torch
    import torchvision

    from interpkit import load_model, preprocess, sample_image

    if name == "efficientnet_lite0":
        model = load_model("efficientnet_lite0")
        x = preprocess(sample_image("cat", size), "efficientnet_lite0", size=size)
    else:
        torch.manual_seed(0)
        model = getattr(torchvision.models, name)().eval()
        x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    return model, x


def _relu6_as_relu_and_clip(model):
    """A copy in which every ReLU6 is ReLU followed by a clip at 6 (the same function), so that
    captum's GuidedBackprop, which overrides nn.ReLU only, guides it."""
    import torch
    from torch import nn

    class Clip6(nn.Module):
        def forward(self, x):
            return torch.clamp(x, max=6.0)

    clone = copy.deepcopy(model)
    for parent in list(clone.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(parent, child_name, nn.Sequential(nn.ReLU(), Clip6()))
    return clone


def build_methods(name: str, model, x, c: int, n_samples: int, steps: int):
    """(timed methods, max relative difference ours vs captum per method)."""
    import torch
    from captum.attr import (GuidedBackprop, GuidedGradCam, IntegratedGradients, LayerAttribution,
                             LayerGradCam, NoiseTunnel, Saliency)

    from interpkit import get_layer
    from solutions import saliency as ours

    layer = get_layer(model, LAYERS[name])
    level = 0.15
    sigma = float(level * (x.max() - x.min()))
    captum_model = _relu6_as_relu_and_clip(model)      # a copy: captum's hooks never touch ours
    captum_layer = get_layer(captum_model, LAYERS[name])
    sal, nt = Saliency(captum_model), NoiseTunnel(Saliency(captum_model))
    ig, gbp = IntegratedGradients(captum_model), GuidedBackprop(captum_model)
    ggc = GuidedGradCam(captum_model, captum_layer)

    def reset_grads() -> None:
        model.zero_grad(set_to_none=True)

    def fwd_bwd() -> None:
        model(x)[0, c].backward()

    runs = {
        "saliency": (lambda: ours.saliency(model, x, c),
                     lambda: sal.attribute(x, target=c, abs=True)[0].amax(dim=0)),
        "smoothgrad": (lambda: ours.smoothgrad(model, x, c, n_samples=n_samples, noise_level=level,
                                               generator=torch.Generator().manual_seed(0)),
                       lambda: _seeded(lambda: nt.attribute(
                           x, nt_type="smoothgrad", nt_samples=n_samples, nt_samples_batch_size=ours.BATCH,
                           stdevs=sigma, target=c, abs=True)[0].amax(dim=0))),
        "ig": (lambda: ours.integrated_gradients(model, x, c, steps=steps),
               lambda: ig.attribute(x, baselines=torch.zeros_like(x), target=c, n_steps=steps,
                                    method="riemann_right", internal_batch_size=ours.BATCH)[0]),
        "guided": (lambda: ours.guided_backprop(model, x, c), lambda: gbp.attribute(x, target=c)[0]),
        "guided_gc": (lambda: ours.guided_grad_cam(model, layer, x, c),
                      lambda: ggc.attribute(x, target=c, interpolate_mode="bilinear")[0]),
    }
    methods = [Method("fwd+bwd", fwd_bwd, setup=reset_grads, teardown=reset_grads)]
    for method, (mine, theirs) in runs.items():
        methods += [Method(method, mine), Method(f"captum {method}", theirs)]

    check = {}
    for method, (mine, theirs) in runs.items():   # untimed: the two compute the same map
        a, b = mine().detach(), theirs().detach()
        if method == "guided_gc":                  # captum: times the un-normalized Grad-CAM
            low = LayerGradCam(captum_model, captum_layer).attribute(x, target=c, relu_attributions=True)
            a = a * float(LayerAttribution.interpolate(low.detach(), tuple(x.shape[-2:]), "bilinear").max())
        check[method] = float((a - b).abs().max() / a.abs().max().clamp_min(1e-30))
    reset_grads()
    return methods, check


def _seeded(run):
    """captum's NoiseTunnel draws from torch's global generator: seed it (as ours is seeded)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return run()


def bench_one(name: str, size: int, reps: int, warmup: int, n_samples: int, steps: int,
              stat: str = "median") -> dict:
    import torch

    model, x = _model_and_input(name, size)
    with torch.no_grad():
        c = int(model(x).argmax())
    methods, check = build_methods(name, model, x, c, n_samples, steps)
    samples = measure(methods, reps, warmup)
    summary = statistics.median if stat == "median" else min
    times = {method: summary(ts) for method, ts in samples.items()}
    spread = max((max(ts) - min(ts)) / statistics.median(ts) for ts in samples.values())
    return {"model": name, "size": size, "class": c, "times": times, "check": check, "spread": spread}


def format_report(results: list[dict], n_samples: int, steps: int, stat: str = "median") -> str:
    header = ["model", "px", "fwd+bwd ms"] + [f"{m} (captum)" for m in METHODS]
    cost_rows, ratio_rows, misses = [], [], 0
    for r in results:
        t, unit = r["times"], r["times"]["fwd+bwd"]
        cost_rows.append([r["model"], str(r["size"]), f"{1000 * unit:.1f}"] +
                         [f"{t[m] / unit:.2f}x ({t[f'captum {m}'] / unit:.2f}x)" for m in METHODS])
        row = [r["model"]]
        for m in METHODS:
            ratio = t[m] / t[f"captum {m}"]
            verdict = "PASS" if ratio <= GOAL_VS_CAPTUM else "MISS"
            misses += verdict == "MISS"
            row.append(f"{ratio:.2f}x {verdict}")
        row += [f"{max(r['check'].values()):.1e}",
                f"{100 * r['spread']:.0f}%" + (" (noisy)" if r["spread"] > NOISY else "")]
        ratio_rows.append(row)
    return "\n".join([
        f"Cost in forward+backward passes ({stat} time / fwd+bwd; captum's in brackets)",
        table(header, cost_rows),
        "",
        f"Ours / captum's (goal <= {GOAL_VS_CAPTUM:.2f}x)",
        table(["model", *METHODS, "max|d| vs captum", "spread"], ratio_rows),
        "",
        f"smoothgrad: n_samples={n_samples}; ig: steps={steps}; both in batches of "
        "solutions.saliency.BATCH images. fwd+bwd: model(x)[0, c].backward() into every parameter.",
        "max|d| vs captum: the largest relative difference of any method's map from captum's "
        "(the same maps: expect <= 1e-5; a flipped ReLU gate on the real model can reach ~1e-3).",
        f"spread: widest (max - min) / median over the reps; above {100 * NOISY:.0f}% the machine "
        "was busy: rerun (or --stat min).",
        f"{'All goals met.' if misses == 0 else f'{misses} goal(s) missed.'}",
    ])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=CHOICES, metavar="MODEL",
                        help=f"subset of {', '.join(CHOICES)} (default {' '.join(DEFAULT_MODELS)})")
    parser.add_argument("--size", type=int, default=None, help="input size in px (default 224; 64 with --quick)")
    parser.add_argument("--reps", type=int, default=None,
                        help=f"timed repetitions (default {DEFAULT_REPS}; {QUICK_REPS} with --quick)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--n-samples", type=int, default=None, help="SmoothGrad samples (default 25; 4 with --quick)")
    parser.add_argument("--steps", type=int, default=None, help="IG steps (default 50; 4 with --quick)")
    parser.add_argument("--stat", choices=("median", "min"), default="median")
    parser.add_argument("--quick", action="store_true", help="smoke test: small input, few samples and reps")
    args = parser.parse_args(argv)
    args.size = args.size or (64 if args.quick else 224)
    args.reps = args.reps or (QUICK_REPS if args.quick else DEFAULT_REPS)
    args.n_samples = args.n_samples or (4 if args.quick else 25)
    args.steps = args.steps or (4 if args.quick else 50)
    if min(args.size, args.reps, args.n_samples, args.steps) < 1 or args.warmup < 0:
        parser.error("sizes, reps, samples and steps must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import warnings
    from importlib.metadata import version

    import torch

    warnings.filterwarnings("ignore", module="captum")
    print(f"torch {torch.__version__}, captum {version('captum')}; device: CPU ({os.cpu_count()} logical cores); "
          f"torch.get_num_threads() = {torch.get_num_threads()} (default, not changed)")
    print(f"{args.stat} of {args.reps} reps after {args.warmup} warm-up round(s); batch 1, {args.size} px")
    load_start = load_average()
    print(flush=True)
    results = []
    for name in args.models:
        start = time.perf_counter()
        results.append(bench_one(name, args.size, args.reps, args.warmup, args.n_samples, args.steps, args.stat))
        print(f"  measured {name} in {time.perf_counter() - start:.0f} s", flush=True)
    print()
    print(format_report(results, args.n_samples, args.steps, args.stat))
    print(f"Machine load average (1 min) at start {load_start}, at end {load_average()}, on {os.cpu_count()} "
          "cores: other work beside the benchmark inflates the absolute times; the ratios, measured "
          "interleaved, are less affected.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
