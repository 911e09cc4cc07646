"""Every registered feature layer of the offline real model visualizes (issue: the deepest layer,
``features.17`` after its ReLU6, rendered flat grey). Measured with the benchmark's own code
(``bench/bench_featureviz_quality.py``): channels 0-7 of each layer at 128 px with 256 steps; no
flat image (pixel std >= 0.05) and a median gain over the best real photo of at least 1.5x. One
test per layer, so that the two pytest workers share them (each renders for 1-3 minutes)."""
from __future__ import annotations

import pytest
import torch

from bench.bench_featureviz_quality import FLAT_STD, MIN_GAIN, MODEL, measure_layer, photos
from interpkit.models import get_spec


@pytest.fixture(scope="module")
def photo_batch():
    return photos(128)


@pytest.mark.parametrize("layer", get_spec(MODEL).feature_layers)
def test_every_feature_layer_visualizes(layer, real_model, photo_batch):
    torch.manual_seed(0)
    result = measure_layer(real_model, layer, photo_batch=photo_batch)
    assert result.flat == 0, f"{layer}: {result.flat} flat visualizations (std {result.std.round(3)} < {FLAT_STD})"
    assert result.median_gain >= MIN_GAIN, (f"{layer}: median gain {result.median_gain:.2f} < {MIN_GAIN} "
                                            f"(gains {result.gains.round(2)})")


def test_the_post_relu6_head_would_not():
    """The reason for pre-activations, measured: on the grey starting image most channels of the
    head after its ReLU6 sit at 0, where the gradient vanishes."""
    from interpkit import capture, get_layer, load_model
    from interpkit import featureviz as fv
    from interpkit.images import normalize

    model = load_model(MODEL, device="cpu")
    start = fv.fft_image(128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), capture(get_layer(model, "features.17")) as post:
        model(normalize(start()))
    stuck = [c for c in range(8) if post.output[0, c].max() == 0]
    assert len(stuck) >= 6, stuck
