#!/usr/bin/env python
"""Does every registered feature layer of the offline real model visualize? Measured, per layer.

For every layer of ``get_spec("efficientnet_lite0").feature_layers`` (pre-activations where a
layer ends with an activation), channels 0-7 are rendered together (``fv.render_layer``: FFT
parameterization with decorrelated colour, the standard transforms, Adam 0.05) at 128 px for 256
steps, and two figures are taken:

- **flat**: a visualization whose pixel standard deviation is below :data:`FLAT_STD` (0.05) is
  flat (the optimization never started, as with a ReLU6 channel stuck at 0 or 6);
- **gain**: for each channel, its mean activation on its own visualization divided by its highest
  mean activation over scikit-image's real photos (:data:`PHOTOS`) at the same size; the layer's
  median over its channels must be at least :data:`MIN_GAIN` (1.5). Where no photo activates a
  channel above zero, the gain is infinite if the visualization does and 0 otherwise.

Run from the repository root::

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_featureviz_quality.py            # ~10 min on 2 cores
    .venv/bin/python bench/bench_featureviz_quality.py --steps 32 --layers features.2  # a quick look

It prints one row per layer and saves the visualizations as a figure (``--figure``, default
``bench/results/featureviz_quality.png``). ``tests/test_featureviz_quality.py`` asserts the same
goals with the same code.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import skimage.data
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.timing import table  # noqa: E402

MODEL = "efficientnet_lite0"
CHANNELS = tuple(range(8))
SIZE, STEPS = 128, 256
FLAT_STD, MIN_GAIN = 0.05, 1.5
#: scikit-image's natural colour photos (shipped in its wheel: offline).
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
          "retina", "stereo_motorcycle")


@dataclass
class LayerQuality:
    layer: str
    images: np.ndarray          # (channels, H, W, 3)
    std: np.ndarray             # pixel standard deviation per visualization
    on_visualization: np.ndarray  # mean activation of each channel on its own visualization
    best_photo: np.ndarray      # highest mean activation of each channel over the photos
    seconds: float

    @property
    def gains(self) -> np.ndarray:
        gains = []
        for vis, photo in zip(self.on_visualization, self.best_photo):
            if photo > 0:
                gains.append(vis / photo)
            else:
                gains.append(math.inf if vis > 0 else 0.0)
        return np.array(gains)

    @property
    def median_gain(self) -> float:
        return float(np.median(self.gains))

    @property
    def flat(self) -> int:
        return int((self.std < FLAT_STD).sum())

    @property
    def met(self) -> bool:
        return self.flat == 0 and self.median_gain >= MIN_GAIN


def photos(size: int) -> torch.Tensor:
    """The photos, each resized (anti-aliased) to ``size`` x ``size``: ``(P, 3, size, size)`` in ``[0, 1]``."""
    from interpkit.images import resize

    arrays = []
    for name in PHOTOS:
        image = getattr(skimage.data, name)()
        image = image[0] if isinstance(image, tuple) else image
        arrays.append(resize(image[..., :3], size))
    return torch.as_tensor(np.stack(arrays), dtype=torch.float32).permute(0, 3, 1, 2)


def channel_means(model, layer, images: torch.Tensor, channels) -> np.ndarray:
    """``(len(images), len(channels))``: each channel's mean activation over positions."""
    from interpkit.featureviz.render import forward_to
    from interpkit.images import normalize

    with torch.no_grad():
        acts = forward_to(model, layer, normalize(images.to(next(model.parameters()).device)))
    return acts[:, list(channels)].mean(dim=(2, 3)).cpu().numpy()


def measure_layer(model, layer_name: str, channels=CHANNELS, size: int = SIZE, steps: int = STEPS,
                  photo_batch: torch.Tensor | None = None) -> LayerQuality:
    from interpkit import featureviz as fv
    from interpkit import get_layer

    layer = get_layer(model, layer_name)
    start = time.perf_counter()
    images = fv.render_layer(model, layer, list(channels), size=size, steps=steps, progress=False)
    seconds = time.perf_counter() - start
    as_tensor = torch.as_tensor(images).permute(0, 3, 1, 2)
    own = channel_means(model, layer, as_tensor, channels)
    on_vis = np.array([own[i, i] for i in range(len(channels))])
    photo_batch = photos(size) if photo_batch is None else photo_batch
    best = channel_means(model, layer, photo_batch, channels).max(axis=0)
    return LayerQuality(layer_name, images, images.reshape(len(channels), -1).std(axis=1), on_vis, best, seconds)


def measure(layers=None, channels=CHANNELS, size: int = SIZE, steps: int = STEPS) -> list[LayerQuality]:
    from interpkit import load_model
    from interpkit.models import get_spec

    model = load_model(MODEL, device="cpu")
    batch = photos(size)
    return [measure_layer(model, name, channels, size, steps, batch)
            for name in (layers or get_spec(MODEL).feature_layers)]


def report(results: list[LayerQuality], steps: int, size: int) -> str:
    def gain(x: float) -> str:
        return "inf" if math.isinf(x) else f"{x:.2f}"

    rows = [[r.layer, f"{r.std.min():.3f}", str(r.flat), gain(r.median_gain), gain(float(r.gains.min())),
             f"{r.seconds:.0f}", "met" if r.met else "MISSED"] for r in results]
    header = ["layer", "min std", "flat", "median gain", "min gain", "render s", "goal"]
    missed = [r.layer for r in results if not r.met]
    return "\n".join([
        f"{MODEL}: channels {CHANNELS[0]}-{CHANNELS[-1]} of every feature layer, {size} px, {steps} steps",
        table(header, rows),
        f"flat: visualizations with pixel std < {FLAT_STD}; gain: mean activation on the channel's own "
        f"visualization / highest over {len(PHOTOS)} real photos; goal per layer: no flat image and "
        f"median gain >= {MIN_GAIN}: " + ("met on every layer." if not missed else f"MISSED on {', '.join(missed)}."),
    ])


def save_figure(results: list[LayerQuality], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from interpkit import image_grid

    images = [img for r in results for img in r.images]
    titles = [f"ch {c}: {gain:.1f}x" if not math.isinf(gain) else f"ch {c}: inf"
              for r in results for c, gain in zip(CHANNELS, r.gains)]
    fig = image_grid(images, titles, ncols=len(CHANNELS), row_labels=[r.layer for r in results],
                     suptitle=f"{MODEL}: channels by depth (gain: activation vs the best real photo)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--layers", nargs="+", default=None, help="default: every registered feature layer")
    parser.add_argument("--figure", type=Path, default=REPO_ROOT / "bench" / "results" / "featureviz_quality.png")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    results = measure(args.layers, CHANNELS, args.size, args.steps)
    print(report(results, args.steps, args.size))
    save_figure(results, args.figure)
    print(f"figure: {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
