#!/usr/bin/env python
"""Speed of the feature-visualization engine (``interpkit.featureviz``) against baselines in the same run.

Run from the repository root::

    .venv/bin/python bench/bench_featureviz.py                 # about 2-4 minutes on 2 cores
    .venv/bin/python bench/bench_featureviz.py --quick         # smoke test, well under a minute
    .venv/bin/python bench/bench_featureviz.py --lucent-python /path/to/venv/bin/python

All measurements use torchvision's GoogLeNet (InceptionV1, Lucid's network) with random weights
(``load_model("googlenet", pretrained=False)``: timings do not depend on the weights).

(a) ``render step / fwd+bwd``
    One optimization step of :func:`interpkit.featureviz.render` (``render(..., steps=K)``
    divided by ``K``: Fourier parameterization, Lucid's ``STANDARD_TRANSFORMS``, ImageNet
    normalization, forward pass, gradient with respect to the image parameters, Adam) divided by
    one plain training-style forward+backward of the model on a batch of the transformed size
    (``model(x)[:, 0].sum().backward()``, gradients into every parameter; reset outside the timed
    region), at 128 and 224 px, for a middle layer (``inception4c``, Lucid's ``mixed4c``) and the
    last block (``inception5b``). Goal: <= 1.15x. ``floor`` is the least a step must do: the
    forward pass up to the layer plus the objective's gradient with respect to the input image.
    The engine stops the forward pass at the layer, so for middle layers it beats fwd+bwd easily;
    ``inception5b`` (nothing above it but the pooling and the classifier) is the fair case.
(b) ``batched / one by one``
    Images per second when all channels of a layer are optimized as one batch
    (:func:`interpkit.featureviz.render_layer`, image ``i`` maximizes channel ``i``) against one
    :func:`render` call per channel (measured on a few channels, same steps and size). Layer
    ``inception3a``, its first 64 channels (16 with ``--quick``). Goal: >= 3x.
(c) ``ours / lucent``
    torch-lucent's ``render_vis`` (its own ``param.image(224)`` Fourier parameterization with
    decorrelated colour, its standard transforms, Adam lr 0.05, ``thresholds=(K,)``) against
    :func:`render` with the same settings on ``inception4c`` channel 0 at 224 px. Measured ONLY
    when ``lucent`` is importable: in this interpreter, or in the one given by
    ``--lucent-python`` (or the ``LUCENT_PYTHON`` environment variable), which then also needs
    this repository's dependencies (scikit-image, matplotlib, tqdm). torch-lucent pins kornia
    0.4.1, so it is not a dependency of this project. Otherwise the bench prints
    ``lucent: not available (reason)``. Lucent registers a forward hook on every module at each
    call and never removes them, and its ``backward()`` fills every parameter's ``.grad``: each
    timed lucent call gets a fresh copy of the model (copied outside the timed region); what it
    left behind is reported.

(d) ``GPU / CPU``
    With ``--device cuda`` (or ``auto`` on a machine with a GPU): (a) and (b) run on the GPU, and
    one render step on the GPU is compared with the same step on the CPU (``inception4c``, 128 px).
    On a GPU the batch of (b) should reach its goal easily; on a CPU, which is compute-bound, it
    cannot.

Each cell is the median of ``--reps`` repetitions after ``--warmup`` untimed rounds; the methods
of a row run interleaved (reversed order every other round) with the garbage collector paused
during each timed call (on a GPU, each timed call ends with ``torch.cuda.synchronize()``).
``--threads N`` sets ``torch.set_num_threads`` (default: torch's default, printed).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.timing import Method, load_average, table  # noqa: E402
from bench.timing import measure as measure_all  # noqa: E402

GOAL_STEP_VS_FWD_BWD = 1.15
GOAL_BATCHED_SPEEDUP = 3.0
MODEL = "googlenet"
STEP_LAYERS = ("inception4c", "inception5b")
STEP_SIZES = (128, 224)
LAYER_FOR_BATCH = "inception3a"
LUCENT_LAYER, LUCENT_CHANNEL, LUCENT_SIZE = "inception4c", 0, 224
DEFAULT_REPS, QUICK_REPS = 3, 2
RESULT_TAG = "LUCENT_RESULT "


def measure(methods: list[Method], reps: int, warmup: int) -> dict[str, float]:
    """Median seconds per call (divided by ``per``) of each method, interleaved rounds."""
    return {name: statistics.median(ts) for name, ts in measure_all(methods, reps, warmup).items()}


def _model(device: str = "cpu"):
    import torch

    from interpkit import load_model

    torch.manual_seed(0)
    return load_model(MODEL, pretrained=False, device=device)


def _synced(fn, device: str):
    """``fn`` followed by a wait for the GPU (the work a GPU queues must be inside the timing)."""
    import torch

    if not str(device).startswith("cuda"):
        return fn

    def run():
        fn()
        torch.cuda.synchronize()
    return run


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.1f}"


# --------------------------------------------------------------------------- (a)
def bench_step(model, layer_name: str, size: int, steps: int, reps: int, warmup: int) -> dict:
    import torch

    from interpkit import get_layer, model_device
    from interpkit.featureviz import channel, render
    from interpkit.featureviz.render import forward_to

    layer = get_layer(model, layer_name)
    device = model_device(model)
    side = size + 2 * 12 - 8 - 4  # pad 12, jitter 8, (scale 1, rotation), jitter 4
    x = torch.randn(1, 3, side, side, device=device)

    def reset() -> None:
        model.zero_grad(set_to_none=True)

    def fwd_bwd() -> None:
        model(x)[:, 0].sum().backward()

    def floor() -> None:
        image = x.clone().requires_grad_(True)
        torch.autograd.grad(forward_to(model, layer, image)[:, 0].mean(), image)

    def step() -> None:
        render(model, layer, channel(0), size=size, steps=steps, progress=False)

    methods = [Method("fwd+bwd", _synced(fwd_bwd, device), setup=reset, teardown=reset),
               Method("floor", _synced(floor, device)), Method("render step", _synced(step, device), per=steps)]
    times = measure(methods, reps, warmup)
    if any(p.grad is not None for p in model.parameters()):
        raise RuntimeError("a parameter gradient was left behind")
    return {"layer": layer_name, "size": size, "side": side, "times": times}


def report_step(results: list[dict], steps: int) -> tuple[str, int]:
    rows, misses = [], 0
    for r in results:
        t = r["times"]
        ratio = t["render step"] / t["fwd+bwd"]
        verdict = "PASS" if ratio <= GOAL_STEP_VS_FWD_BWD else "MISS"
        misses += verdict == "MISS"
        rows.append([r["layer"], f"{r['size']} ({r['side']})", _ms(t["render step"]), _ms(t["fwd+bwd"]),
                     _ms(t["floor"]), f"{ratio:.2f}x", verdict, f"{t['render step'] / t['floor']:.2f}x"])
    header = ["layer", "px (input)", "render step ms", "fwd+bwd ms", "floor ms", "step/fwd+bwd",
              f"(<={GOAL_STEP_VS_FWD_BWD:.2f})", "step/floor"]
    text = (f"(a) one render step (render(steps={steps}) / {steps}) vs one plain forward+backward "
            f"of {MODEL} on the transformed batch\n" + table(header, rows))
    return text, misses


# --------------------------------------------------------------------------- (b)
def bench_batched(model, n_channels: int, n_single: int, size: int, steps: int, reps: int,
                  warmup: int, chunks: list[int | None]) -> dict:
    from interpkit import model_device
    from interpkit.featureviz import channel, render, render_layer

    device = model_device(model)
    methods = []
    for chunk in chunks:
        label = f"batched ({chunk or n_channels})"
        methods.append(Method(label, _synced(lambda chunk=chunk: render_layer(
            model, LAYER_FOR_BATCH, n_channels, size=size, steps=steps, batch_size=chunk,
            progress=False), device), per=n_channels))

    def one_by_one() -> None:
        for c in range(n_single):
            render(model, LAYER_FOR_BATCH, channel(c), size=size, steps=steps, progress=False)

    methods.append(Method("one by one", _synced(one_by_one, device), per=n_single))
    times = measure(methods, reps, warmup)  # seconds per image
    return {"times": times, "n_channels": n_channels, "n_single": n_single, "size": size, "steps": steps}


def report_batched(r: dict) -> tuple[str, int]:
    single = r["times"]["one by one"]
    rows, misses = [], 0
    for name, t in r["times"].items():
        if name == "one by one":
            rows.append([name, f"{1 / t:.2f}", "1.00x", "", f"{r['n_single']} channels"])
            continue
        speedup = single / t
        verdict = "PASS" if speedup >= GOAL_BATCHED_SPEEDUP else "MISS"
        misses += verdict == "MISS"
        rows.append([name, f"{1 / t:.2f}", f"{speedup:.2f}x", verdict, f"{r['n_channels']} channels"])
    header = ["method", "images/s", "vs one by one", f"(>={GOAL_BATCHED_SPEEDUP:.0f}x)", "measured on"]
    text = (f"(b) all channels of {MODEL}.{LAYER_FOR_BATCH} as one batch (render_layer) vs one render "
            f"per channel; {r['size']} px, {r['steps']} steps each\n" + table(header, rows))
    return text, misses


# --------------------------------------------------------------------------- (c)
def measure_lucent(steps: int, reps: int, warmup: int) -> dict:
    """Runs in an interpreter where ``lucent`` imports; returns seconds per step and side effects."""
    warnings.filterwarnings("ignore")
    import torch
    from lucent.optvis import param as lucent_param
    from lucent.optvis import render as lucent_render

    from interpkit.featureviz import channel, render

    base = _model()
    ours_model = copy.deepcopy(base)
    state: dict[str, object] = {}

    def fresh_copy() -> None:
        state["model"] = copy.deepcopy(base)

    def lucent() -> None:
        lucent_render.render_vis(state["model"], f"{LUCENT_LAYER}:{LUCENT_CHANNEL}",
                                 param_f=lambda: lucent_param.image(LUCENT_SIZE), thresholds=(steps,),
                                 progress=False, show_image=False)

    def ours() -> None:
        render(ours_model, LUCENT_LAYER, channel(LUCENT_CHANNEL), size=LUCENT_SIZE, steps=steps,
               progress=False)

    times = measure([Method("lucent", lucent, setup=fresh_copy, per=steps),
                     Method("ours", ours, per=steps)], reps, warmup)
    leftover = state["model"]
    hooks = sum(len(m._forward_hooks) for m in leftover.modules())
    grads = sum(p.grad is not None for p in leftover.parameters())
    our_hooks = sum(len(m._forward_hooks) for m in ours_model.modules())
    our_grads = sum(p.grad is not None for p in ours_model.parameters())
    import lucent as lucent_pkg
    from importlib.metadata import version

    return {"times": times, "lucent_hooks_left": hooks, "lucent_grads_left": grads,
            "our_hooks_left": our_hooks, "our_grads_left": our_grads,
            "versions": f"torch-lucent {version('torch-lucent')}, kornia {version('kornia')}, "
                        f"torch {torch.__version__}", "where": os.path.dirname(lucent_pkg.__file__),
            "threads": torch.get_num_threads()}


def lucent_section(args) -> str:
    steps = args.lucent_steps
    try:
        import lucent  # noqa: F401
        in_process = True
    except Exception as err:  # noqa: BLE001 - any import failure means "not here"
        in_process, reason = False, f"{type(err).__name__}: {err}"
    header = (f"(c) torch-lucent render_vis vs ours, {MODEL}.{LUCENT_LAYER} channel {LUCENT_CHANNEL}, "
              f"{LUCENT_SIZE} px, {steps} steps (measured only when lucent is importable)")
    try:
        if in_process:
            result = measure_lucent(steps, args.reps, args.warmup)
        elif args.lucent_python:
            cmd = [args.lucent_python, str(Path(__file__).resolve()), "--lucent-only",
                   "--reps", str(args.reps), "--warmup", str(args.warmup), "--lucent-steps", str(steps)]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
            if proc.returncode != 0 or not lines:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                return f"{header}\nlucent: not available (run with {args.lucent_python} failed: {tail})"
            result = json.loads(lines[-1][len(RESULT_TAG):])
            result["where"] += f" (interpreter {args.lucent_python})"
        else:
            return (f"{header}\nlucent: not available ({reason}; it is not a dependency of this "
                    "project: pass --lucent-python PATH to an interpreter that has it)")
    except Exception as err:  # noqa: BLE001 - report, don't crash the whole bench
        return f"{header}\nlucent: not available (measurement failed: {type(err).__name__}: {err})"
    t = result["times"]
    rows = [["lucent render_vis", _ms(t["lucent"]), "1.00x"],
            ["ours render", _ms(t["ours"]), f"{t['ours'] / t['lucent']:.2f}x"]]
    return "\n".join([
        header, f"lucent: {result['versions']} from {result['where']}; "
                f"torch.get_num_threads() = {result['threads']} there",
        table(["method", "ms per step", "vs lucent"], rows),
        f"ours/lucent = {t['ours'] / t['lucent']:.2f}x (lower is faster). Left behind on the model "
        f"after one call: lucent {result['lucent_hooks_left']} forward hooks, "
        f"{result['lucent_grads_left']} parameter .grad tensors; ours {result['our_hooks_left']} "
        f"hooks, {result['our_grads_left']} .grad tensors.",
    ])


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: fewer reps and steps, 16 channels at 64 px in (b)")
    parser.add_argument("--reps", type=int, default=None,
                        help=f"timed repetitions, median reported (default {DEFAULT_REPS}; {QUICK_REPS} with --quick)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: unchanged)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"),
                        help="where (a) and (b) run; auto: a GPU when there is one (default cpu)")
    parser.add_argument("--lucent-python", default=os.environ.get("LUCENT_PYTHON"),
                        help="an interpreter where torch-lucent is installed (default: $LUCENT_PYTHON)")
    parser.add_argument("--lucent-steps", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--lucent-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reps is None:
        args.reps = QUICK_REPS if args.quick else DEFAULT_REPS
    if args.lucent_steps is None:
        args.lucent_steps = 2 if args.quick else 4
    if args.reps < 1 or args.warmup < 0 or (args.threads is not None and args.threads < 1):
        parser.error("--reps and --threads must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.lucent_only:  # child process of section (c)
        print(RESULT_TAG + json.dumps(measure_lucent(args.lucent_steps, args.reps, args.warmup)))
        return 0

    steps = 2 if args.quick else 4
    n_channels, n_single, size_b, steps_b = (16, 2, 64, 2) if args.quick else (64, 4, 128, 2)
    chunks = [None] if args.quick else [None, 16, 4]
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    where = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    print(f"torch {torch.__version__}; {where}, {os.cpu_count()} logical cores; "
          f"torch.get_num_threads() = {torch.get_num_threads()}"
          f"{' (set by --threads)' if args.threads else ' (default, not changed)'}; "
          f"median of {args.reps} reps after {args.warmup} warm-up round(s); {MODEL}, random weights")
    load_start = load_average()
    model = _model(device)
    start = time.perf_counter()
    step_results = [bench_step(model, layer, size, steps, args.reps, args.warmup)
                    for size in STEP_SIZES for layer in STEP_LAYERS]
    print(f"  measured (a) in {time.perf_counter() - start:.0f} s", flush=True)
    start = time.perf_counter()
    batched = bench_batched(model, n_channels, n_single, size_b, steps_b, args.reps, args.warmup, chunks)
    print(f"  measured (b) in {time.perf_counter() - start:.0f} s", flush=True)
    gpu_text = ""
    if device == "cuda":
        start = time.perf_counter()
        on_cpu = bench_step(_model("cpu"), "inception4c", 128, steps, args.reps, args.warmup)["times"]
        on_gpu = next(r["times"] for r in step_results if r["layer"] == "inception4c" and r["size"] == 128)
        gpu_text = (f"(d) one render step of inception4c at 128 px: GPU {_ms(on_gpu['render step'])} ms, "
                    f"CPU {_ms(on_cpu['render step'])} ms: the GPU is "
                    f"{on_cpu['render step'] / on_gpu['render step']:.1f}x faster")
        print(f"  measured (d) in {time.perf_counter() - start:.0f} s", flush=True)
    start = time.perf_counter()
    lucent_text = lucent_section(args)
    print(f"  measured (c) in {time.perf_counter() - start:.0f} s", flush=True)
    text_a, misses_a = report_step(step_results, steps)
    text_b, misses_b = report_batched(batched)
    misses = misses_a + misses_b
    print()
    print(text_a)
    print("floor: forward to the layer + gradient of the objective w.r.t. the input only "
          "(step/floor = the cost of the parameterization, transforms and Adam).")
    print()
    print(text_b)
    print()
    if gpu_text:
        print(gpu_text)
        print()
    print(lucent_text)
    print()
    print(f"Goals: render step <= {GOAL_STEP_VS_FWD_BWD:.2f}x one forward+backward; batched >= "
          f"{GOAL_BATCHED_SPEEDUP:.0f}x the images/s of one render per channel. "
          f"{'All goals met.' if misses == 0 else f'{misses} goal(s) missed.'}")
    print(f"Machine load average (1 min) at start {load_start}, at end {load_average()}, on "
          f"{os.cpu_count()} cores: other work beside the benchmark inflates absolute times; the "
          "ratios, measured interleaved, are less affected.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
