#!/usr/bin/env python
"""Speed of ``solutions.gradcam`` against baselines measured in the same run.

Run from the repository root::

    INTERPKIT_ALLOW_RANDOM_WEIGHTS=1 .venv/bin/python bench/bench_gradcam.py
    .venv/bin/python bench/bench_gradcam.py --quick --models resnet50     # smoke test, < 60 s

What is measured, for each network (VGG16 224 px, ResNet50 224 px, InceptionV3 299 px; the
Grad-CAM layer is ``solutions.gradcam.TARGET_LAYERS``) and batch size, on the same input and the
same classes:

``fwd+bwd``
    One plain training-style step without the optimizer: ``model(x)[range(n), cls].sum()
    .backward()`` with the parameters requiring gradients as usual. Gradients are reset
    (``zero_grad(set_to_none=True)``, PyTorch's default) outside the timed region.
``fwd``
    One forward pass under ``torch.no_grad()`` (inference only; for reference, no goal).
``grad_cam``
    ``solutions.gradcam.grad_cam_batch`` (maps upsampled to the input and normalized).
``captum``
    captum's ``LayerGradCam.attribute(relu_attributions=True)`` followed by bilinear
    ``LayerAttribution.interpolate`` and division by each map's maximum, i.e. the same output as
    ``grad_cam`` (the largest difference is printed as a check). The classes are each image's
    top-1, computed once before timing and passed explicitly to every method. The ``LayerGradCam`` object is
    built outside the timed region (it holds no hooks between calls).
``pgc``
    pytorch-grad-cam's ``GradCAM`` with ``ClassifierOutputTarget`` targets (numpy output, min-max
    normalized and resized with OpenCV, so it differs slightly from the others). Its constructor
    registers hooks on the model, so a fresh object is built before each timed call and its
    hooks are released after it, both outside the timed region (the hooks must not slow the
    other methods down).
``2x grad_cam`` / ``both``
    ``grad_cam_batch(counterfactual=False)`` then ``grad_cam_batch(counterfactual=True)``,
    against ``grad_cam_and_counterfactual``, which gets both maps from one pass.

Why these baselines: Grad-CAM needs the class score's gradient with respect to one layer's
output ``A`` only. Its cost floor is therefore one forward pass plus a backward pass through the
*head* (the layers above ``A``), with no parameter gradients and nothing recorded for autograd
below ``A``. On these networks that is about one forward pass, while a full ``.backward()`` into
every parameter costs roughly three forward passes. A Grad-CAM that takes longer than a plain
forward+backward (goal: <= 1.10x, allowing for noise) is doing needless work, e.g. computing
parameter gradients or backpropagating through the whole network; and being at least as fast as
captum (goal: <= 1.00x), a careful independent implementation of the same output, is the bar for
the course's reference. Computing the map and its counterfactual from a single pass should cost
about half of two separate calls.

Each cell is the median (``--stat min``: the minimum) of ``--reps`` repetitions after
``--warmup`` untimed rounds. Within a round the methods run one after another (interleaved, in
reversed order every other round), so that drift of the machine affects them all alike; the
garbage collector is paused during each timed call. ``torch.set_num_threads`` is left at its
default (the value is printed). Timings do not depend on the weights, so the networks are built
with random weights (no download).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.timing import Method, load_average, measure, table  # noqa: E402

GOAL_VS_FWD_BWD = 1.10
GOAL_VS_CAPTUM = 1.00
DEFAULT_MODELS = ("vgg16", "resnet50", "inception_v3")
DEFAULT_BATCHES = (1, 8)
DEFAULT_REPS = 5
QUICK_REPS = 3
NOISY = 0.25


def _normalize(cam):
    """Divide each (H, W) map by its maximum; all-zero maps stay zero (as solutions.gradcam)."""
    import torch

    peak = cam.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, cam / peak.clamp_min(torch.finfo(cam.dtype).tiny),
                       torch.zeros_like(cam))


def build_methods(model, layer, x, classes) -> tuple[list[Method], dict[str, float]]:
    """The timed methods for one (model, input), and a correctness check of their outputs."""
    import numpy as np
    import torch
    from captum.attr import LayerAttribution, LayerGradCam
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from solutions.gradcam import grad_cam_and_counterfactual, grad_cam_batch

    n = x.shape[0]
    rows = torch.arange(n)
    size = tuple(x.shape[-2:])

    def reset_grads() -> None:
        model.zero_grad(set_to_none=True)

    def fwd_bwd() -> None:
        model(x)[rows, classes].sum().backward()

    def fwd() -> None:
        with torch.no_grad():
            model(x)

    def ours():
        return grad_cam_batch(model, layer, x, classes)

    def ours_twice():
        return (grad_cam_batch(model, layer, x, classes, counterfactual=False),
                grad_cam_batch(model, layer, x, classes, counterfactual=True))

    def ours_both():
        return grad_cam_and_counterfactual(model, layer, x, classes)

    lgc = LayerGradCam(model, layer)

    def captum_cam():
        attr = lgc.attribute(x, target=classes, relu_attributions=True)
        up = LayerAttribution.interpolate(attr, size, "bilinear")[:, 0]
        return _normalize(up)

    pgc_targets = [ClassifierOutputTarget(int(c)) for c in classes]
    pgc_state: dict[str, object] = {}

    def pgc_setup() -> None:
        reset_grads()
        pgc_state["cam"] = GradCAM(model=model, target_layers=[layer])

    def pgc_run():
        return pgc_state["cam"](input_tensor=x, targets=pgc_targets)

    def pgc_teardown() -> None:
        cam = pgc_state.pop("cam")
        cam.activations_and_grads.release()  # remove its hooks from the model
        cam.outputs = None  # its graph was retained (retain_graph=True)
        reset_grads()

    methods = [
        Method("fwd+bwd", fwd_bwd, setup=reset_grads, teardown=reset_grads),
        Method("fwd", fwd),
        Method("grad_cam", ours),
        Method("captum", captum_cam),
        Method("pgc", pgc_run, setup=pgc_setup, teardown=pgc_teardown),
        Method("2x grad_cam", ours_twice),
        Method("both", ours_both),
    ]

    # Correctness check (untimed): the compared implementations must produce the same maps.
    ref = ours()
    pos, neg = ours_twice()
    both_pos, both_neg = ours_both()
    pgc_setup()
    try:
        pgc_out = torch.from_numpy(np.asarray(pgc_run()))
    finally:
        pgc_teardown()
    check = {
        "captum": float((captum_cam() - ref).detach().abs().max()),
        "pgc": float((pgc_out - ref).abs().max()),
        "both": float(max((both_pos - pos).abs().max(), (both_neg - neg).abs().max())),
        "nonzero": int((ref.amax(dim=(1, 2)) > 0).sum()),  # maps that make the check meaningful
    }
    if any(p.grad is not None for p in model.parameters()):
        raise RuntimeError("a method left parameter gradients behind")
    return methods, check


def bench_one(name: str, batch: int, reps: int, warmup: int, stat: str = "median") -> dict:
    import torch

    from interpkit import get_layer, load_model
    from interpkit.models import get_spec
    from solutions.gradcam import TARGET_LAYERS

    spec = get_spec(name)
    torch.manual_seed(0)
    model = load_model(name, pretrained=False)
    layer = get_layer(model, TARGET_LAYERS[name])
    x = torch.randn(batch, 3, spec.input_size, spec.input_size)
    with torch.no_grad():  # top-1 classes, fixed for all methods (untimed)
        classes = model(x).argmax(dim=1)
    methods, check = build_methods(model, layer, x, classes)
    samples = measure(methods, reps, warmup)
    summary = statistics.median if stat == "median" else min
    times = {method: summary(ts) for method, ts in samples.items()}
    # Noise: the widest relative range (max - min) / median among the row's methods.
    spread = max((max(ts) - min(ts)) / statistics.median(ts) for ts in samples.values())
    return {"spread": spread, "model": name, "batch": batch, "size": spec.input_size,
            "layer": TARGET_LAYERS[name], "times": times, "check": check}


def _verdict(ratio: float, goal: float) -> str:
    return "PASS" if ratio <= goal else "MISS"


def format_report(results: list[dict], stat: str = "median") -> str:
    ms = lambda s: f"{1000 * s:.1f}"  # noqa: E731
    abs_header = ["model", "N", "px", "fwd+bwd", "fwd", "grad_cam", "captum", "pgc",
                  "2x grad_cam", "both"]
    abs_rows = []
    ratio_header = ["model", "N", "gc/fwd+bwd", f"(<={GOAL_VS_FWD_BWD:.2f})", "gc/captum",
                    f"(<={GOAL_VS_CAPTUM:.2f})", "gc/pgc", "both/2x gc", "gc/fwd",
                    "max|d| captum", "max|d| pgc", "maps>0", "spread"]
    ratio_rows = []
    misses = 0
    for r in results:
        t = r["times"]
        abs_rows.append([r["model"], str(r["batch"]), str(r["size"])] +
                        [ms(t[k]) for k in abs_header[3:]])
        vs_fb = t["grad_cam"] / t["fwd+bwd"]
        vs_captum = t["grad_cam"] / t["captum"]
        v1, v2 = _verdict(vs_fb, GOAL_VS_FWD_BWD), _verdict(vs_captum, GOAL_VS_CAPTUM)
        misses += (v1 == "MISS") + (v2 == "MISS")
        ratio_rows.append([r["model"], str(r["batch"]), f"{vs_fb:.2f}x", v1, f"{vs_captum:.2f}x", v2,
                           f"{t['grad_cam'] / t['pgc']:.2f}x", f"{t['both'] / t['2x grad_cam']:.2f}x",
                           f"{t['grad_cam'] / t['fwd']:.2f}x",
                           f"{r['check']['captum']:.1e}", f"{r['check']['pgc']:.1e}",
                           f"{r['check']['nonzero']}/{r['batch']}",
                           f"{100 * r['spread']:.0f}%" + (" (noisy)" if r["spread"] > NOISY else "")])
    parts = [
        f"Absolute times ({stat} ms per call)",
        table(abs_header, abs_rows),
        "",
        "Ratios (gc = solutions.gradcam.grad_cam_batch; lower is faster)",
        table(ratio_header, ratio_rows),
        "",
        f"Goals: grad_cam <= {GOAL_VS_FWD_BWD:.2f}x one forward+backward, "
        f"<= {GOAL_VS_CAPTUM:.2f}x captum LayerGradCam. "
        f"{'All goals met.' if misses == 0 else f'{misses} goal(s) missed.'}",
        "both/2x gc: grad_cam_and_counterfactual (one pass) / two grad_cam_batch calls (ideal ~0.5x).",
        "gc/fwd: grad_cam_batch / a no_grad forward pass (its floor is about 1x: forward + head backward).",
        "max|d|: largest difference from grad_cam's maps (captum: same output, expect ~1e-6; "
        "pgc: min-max normalized and resized with OpenCV, so only close); maps>0: non-zero "
        "grad_cam maps among N (classes: each image's top-1).",
        f"spread: widest (max - min) / median among the row's methods over the reps; above "
        f"{100 * NOISY:.0f}% the machine was busy and the row's figures are unreliable: rerun it "
        "(on a quiet machine, or with --stat min).",
    ]
    both_bad = [f"{r['model']}/N={r['batch']}" for r in results if r["check"]["both"] > 1e-5]
    if both_bad:
        parts.append(f"WARNING: grad_cam_and_counterfactual differs from two calls for {both_bad}")
    return "\n".join(parts)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=None,
                        help=f"timed repetitions per cell, median reported (default {DEFAULT_REPS}; "
                             f"{QUICK_REPS} with --quick)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=DEFAULT_MODELS,
                        metavar="MODEL", help=f"subset of {', '.join(DEFAULT_MODELS)}")
    parser.add_argument("--batches", nargs="+", type=int, default=None, metavar="N",
                        help="batch sizes (default 1 8; 1 with --quick)")
    parser.add_argument("--stat", choices=("median", "min"), default="median",
                        help="how the reps are summarized (default median; min is more robust "
                             "when other work shares the machine, since interference only adds time)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {QUICK_REPS} reps, batch 1 only (unless --reps/--batches given)")
    args = parser.parse_args(argv)
    if args.reps is None:
        args.reps = QUICK_REPS if args.quick else DEFAULT_REPS
    if args.batches is None:
        args.batches = [1] if args.quick else list(DEFAULT_BATCHES)
    if args.reps < 1 or args.warmup < 0 or any(b < 1 for b in args.batches):
        parser.error("--reps and batch sizes must be >= 1, --warmup >= 0")
    return args


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import warnings

    from importlib.metadata import version

    import torch

    warnings.filterwarnings("ignore", category=UserWarning, module="captum")
    print(f"torch {torch.__version__}, captum {version('captum')}, "
          f"grad-cam {version('grad-cam')}; device: CPU "
          f"({_cpu_name()}, {os.cpu_count()} logical cores)")
    print(f"torch.get_num_threads() = {torch.get_num_threads()} (default, not changed); "
          f"{args.stat} of {args.reps} reps after {args.warmup} warm-up round(s); random weights")
    print("pytorch-grad-cam: GradCAM object constructed OUTSIDE the timed region (fresh per call, "
          "hooks released after it); captum LayerGradCam object constructed outside too.")
    load_start = load_average()
    print(flush=True)
    results = []
    for name in args.models:
        for batch in args.batches:
            start = time.perf_counter()
            results.append(bench_one(name, batch, args.reps, args.warmup, args.stat))
            print(f"  measured {name} N={batch} in {time.perf_counter() - start:.0f} s", flush=True)
    print()
    print(format_report(results, args.stat))
    print(f"Machine load average (1 min) at start {load_start}, at end {load_average()}, on "
          f"{os.cpu_count()} cores: other work running beside the benchmark inflates the absolute "
          "times; the ratios, measured interleaved, are less affected.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
