"""interpkit.featureviz: parameterizations, transforms, objectives, render, render_layer, DeepDream.

Oracles are independent computations written here (numpy FFTs, explicit loops over pairs,
closed-form gradients); behaviour on a trained network is checked on EfficientNet-Lite0 (real
ImageNet weights, offline): optimized images must excite their own channel far more than photos
do, and the Fourier parameterization must give smoother images than the pixel one.
Everything runs on small images (64-96 px) with few steps: the file takes a few seconds.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from interpkit import get_layer, sample_image
from interpkit.featureviz import (STANDARD_TRANSFORMS, Objective, channel, compose, deepdream,
                                  diversity, fft_image, jitter, jitter_crop, neuron, objective_from,
                                  pad, pixel_image, random_rotate, random_scale, render,
                                  render_layer, visualize_steps)
from interpkit.featureviz import objectives as O
from interpkit.featureviz.deepdream import normalized_gradient_step, octave_sizes
from interpkit.featureviz.param import (COLOR_CORRELATION_NORMALIZED, COLOR_CORRELATION_SQRT,
                                        FFT_OUTPUT_SCALE, rfft_frequencies)
from interpkit.featureviz.render import forward_to, make_normalizer
from interpkit.featureviz.transforms import as_transform, rotate

PHOTOS = ("cat", "coffee", "astronaut", "rocket")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- a small model
class Toy(nn.Module):
    """conv+BN+ReLU -> strided conv+ReLU (``block``) -> pooled linear ``head``; counts head calls."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(8, 6, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))
        self.head_calls = 0

    def forward(self, x):
        x = self.block(self.stem(x))
        self.head_calls += 1
        return self.head(x)


def toy_model(seed: int = 0) -> Toy:
    torch.manual_seed(seed)
    return Toy()


def model_state(model: nn.Module) -> dict:
    """Everything render/deepdream promise to leave alone."""
    return {
        "tensors": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "grads": {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "training": {n: m.training for n, m in model.named_modules()},
        "hooks": {n: (list(m._forward_hooks), list(m._forward_pre_hooks), list(m._backward_hooks))
                  for n, m in model.named_modules()},
    }


def assert_same_state(before: dict, after: dict) -> None:
    assert before["tensors"].keys() == after["tensors"].keys()
    for k in before["tensors"]:
        assert torch.equal(before["tensors"][k], after["tensors"][k]), f"{k} changed"
    for n, g in before["grads"].items():
        if g is None:
            assert after["grads"][n] is None, f"{n}.grad was created"
        else:
            assert torch.equal(g, after["grads"][n]), f"{n}.grad changed"
    assert before["requires_grad"] == after["requires_grad"]
    assert before["training"] == after["training"]
    assert before["hooks"] == after["hooks"]


@pytest.fixture
def awkward_toy():
    """A toy model in TRAIN mode, with one frozen parameter, one existing .grad and a user hook."""
    model = toy_model().train()
    model.stem[0].bias.requires_grad_(False)
    model.block[0].weight.grad = torch.full_like(model.block[0].weight, 0.25)
    seen = []
    handle = model.block.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    yield model, seen
    handle.remove()


def layer_acts(model, layer, images: np.ndarray, model_name=None) -> torch.Tensor:
    """Activations of ``layer`` for ``(N, H, W, 3)`` images in [0, 1] (no transforms)."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32).permute(0, 3, 1, 2)
    with torch.no_grad():
        return forward_to(model, get_layer(model, layer) if isinstance(layer, str) else layer,
                          make_normalizer(model_name)(x))


def high_frequency_fraction(image: np.ndarray) -> float:
    """Share of the (mean-removed) spectral energy above half the Nyquist frequency (0.25 c/px)."""
    x = image - image.mean(axis=(0, 1))
    power = np.abs(np.fft.rfft2(x, axes=(0, 1))) ** 2
    fy = np.fft.fftfreq(x.shape[0])[:, None]
    fx = np.fft.rfftfreq(x.shape[1])[None, :]
    radius = np.sqrt(fy ** 2 + fx ** 2)
    return float(power[radius > 0.25].sum() / power.sum())


# =========================================================================== param
@pytest.mark.parametrize("make", [pixel_image, fft_image])
@pytest.mark.parametrize("size, expected", [(16, (16, 16)), ((12, 20), (12, 20)), ((15, 17), (15, 17))])
def test_param_shapes_and_range(make, size, expected):
    p = make(size, batch=3, generator=gen(0))
    images = p()
    assert images.shape == (3, 3, *expected) and images.dtype == torch.float32
    assert 0 < images.min() and images.max() < 1
    assert all(t.is_leaf and t.requires_grad for t in p.parameters())
    # sd = 0.01: starts as (nearly) uniform grey
    assert abs(images.mean().item() - 0.5) < 0.02 and images.std().item() < 0.05
    assert p.numpy().shape == (3, *expected, 3)


@pytest.mark.parametrize("make", [pixel_image, fft_image])
def test_param_seeding(make):
    a, b, c = make(8, generator=gen(1)), make(8, generator=gen(1)), make(8, generator=gen(2))
    assert torch.equal(a(), b()) and not torch.equal(a(), c())
    torch.manual_seed(5)
    d = make(8)
    torch.manual_seed(5)
    assert torch.equal(d(), make(8)())  # generator=None: torch's global random state


@pytest.mark.parametrize("make", [pixel_image, fft_image])
def test_param_gradients_flow(make):
    p = make((10, 14), batch=2, sd=0.5, generator=gen(0))
    (p()[:, 0] - p()[:, 2]).pow(2).sum().backward()
    for t in p.parameters():
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_color_matrix_is_lucids_normalized():
    norms = COLOR_CORRELATION_NORMALIZED.norm(dim=0)
    assert norms.max().item() == pytest.approx(1.0)
    assert torch.allclose(COLOR_CORRELATION_NORMALIZED * COLOR_CORRELATION_SQRT.norm(dim=0).max(),
                          COLOR_CORRELATION_SQRT)


@pytest.mark.parametrize("size", [(16, 16), (9, 14), (13, 7)])
def test_fft_image_matches_numpy(size):
    """image = sigmoid(M @ irfft2(spectrum / max(f, 1/max(H, W)), ortho) / 4), computed in numpy."""
    h, w = size
    p = fft_image(size, batch=2, sd=1.0, generator=gen(3))
    spectrum = p.spectrum.detach().double().numpy()
    spectrum = spectrum[..., 0] + 1j * spectrum[..., 1]
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    scale = 1.0 / np.maximum(np.sqrt(fy ** 2 + fx ** 2), 1.0 / max(h, w))
    spatial = np.fft.irfft2(spectrum * scale, s=(h, w), norm="ortho") * FFT_OUTPUT_SCALE
    mixed = np.einsum("ck,nkhw->nchw", COLOR_CORRELATION_NORMALIZED.double().numpy(), spatial)
    expected = 1 / (1 + np.exp(-mixed))
    assert np.allclose(p().detach().numpy(), expected, atol=1e-5)
    assert rfft_frequencies(h, w).shape == (h, w // 2 + 1)


def test_fft_parameterization_is_smoother_than_pixels(real_model):
    """After the same steps, the Fourier image has far less energy above half Nyquist."""
    cases = [("features.4", STANDARD_TRANSFORMS), ("features.7", None)]
    for layer, transforms in cases:
        fractions = {}
        for name, make in (("pixel", pixel_image), ("fft", fft_image)):
            image = render(real_model, layer, channel(5), param=make(64, generator=gen(0)),
                           transforms=transforms, steps=40, progress=False)[0]
            fractions[name] = high_frequency_fraction(image)
        assert fractions["fft"] < 0.6 * fractions["pixel"], (layer, fractions)


# =========================================================================== transforms
def test_transform_shapes():
    x = torch.rand(2, 3, 40, 50)
    assert pad(6)(x).shape == (2, 3, 52, 62)
    assert jitter(8)(x).shape == (2, 3, 32, 42)
    assert random_scale([1.1])(x).shape == (2, 3, 44, 55)
    assert random_rotate([7])(x).shape == x.shape
    assert compose([pad(2), jitter(4)])(x, gen(0)).shape == x.shape
    for seed in range(5):  # 64 -> pad 88 -> jitter 80 -> scale 0.9..1.1 -> 72..88 -> jitter 68..84
        out = STANDARD_TRANSFORMS(torch.rand(1, 3, 64, 64), gen(seed))
        assert out.shape[-2] == out.shape[-1] and 68 <= out.shape[-1] <= 84


def test_pad_modes():
    x = torch.rand(1, 3, 5, 5)
    reflected = pad(2)(x)
    assert torch.equal(reflected[..., 2, 0], x[..., 0, 2])  # reflect: mirrored without the edge
    constant = pad(2, mode="constant", value=0.5)(x)
    assert torch.all(constant[..., 0, :] == 0.5) and torch.equal(constant[..., 2:-2, 2:-2], x)


def test_rotation_is_exact_on_pixel_grid():
    x = torch.rand(2, 3, 9, 9)
    assert torch.allclose(rotate(x, 90), torch.rot90(x, 1, dims=(2, 3)), atol=1e-5)  # counter-clockwise
    y = torch.rand(1, 3, 9, 13)
    assert torch.allclose(rotate(y, 180), torch.flip(y, dims=(2, 3)), atol=1e-5)  # non-square
    assert torch.equal(random_rotate([0])(x), x)


def test_transforms_are_reproducible_with_a_seeded_generator():
    x = torch.rand(2, 3, 48, 48)
    a = STANDARD_TRANSFORMS(x, gen(11))
    b = STANDARD_TRANSFORMS(x, gen(11))
    assert torch.equal(a, b)
    outputs = {tuple(STANDARD_TRANSFORMS(x, gen(s)).flatten()[:50].tolist()) for s in range(6)}
    assert len(outputs) > 1
    torch.manual_seed(3)
    c = STANDARD_TRANSFORMS(x)
    torch.manual_seed(3)
    assert torch.equal(c, STANDARD_TRANSFORMS(x))  # generator=None: the global random state


def test_jitter_offsets_cover_the_full_range_in_draw_order():
    d, h, w = 5, 12, 14
    rows = torch.arange(h).view(1, 1, h, 1).expand(1, 1, h, w).float()
    cols = torch.arange(w).view(1, 1, 1, w).expand(1, 1, h, w).float()
    coords = torch.cat([rows, cols], dim=1)
    seen_dy, seen_dx = set(), set()
    for seed in range(300):
        crop = jitter_crop(coords, d, gen(seed))
        assert crop.shape == (1, 2, h - d, w - d)
        dy, dx = int(crop[0, 0, 0, 0]), int(crop[0, 1, 0, 0])
        reference = gen(seed)
        assert dy == int(torch.randint(0, d + 1, (1,), generator=reference))  # first draw
        assert dx == int(torch.randint(0, d + 1, (1,), generator=reference))  # second draw
        seen_dy.add(dy)
        seen_dx.add(dx)
    assert seen_dy == seen_dx == set(range(d + 1))
    assert torch.equal(jitter_crop(coords, 0, gen(0)), coords)
    with pytest.raises(ValueError):
        jitter_crop(coords, h, gen(0))


def test_transforms_are_differentiable_and_normalized_inputs():
    x = torch.rand(1, 3, 40, 40, requires_grad=True)
    STANDARD_TRANSFORMS(x, gen(0)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    identity = as_transform(None)
    assert identity(x, None) is x
    one_arg = as_transform(lambda images: images * 2)
    assert torch.equal(one_arg(x, gen(0)), x * 2)
    assert isinstance(repr(STANDARD_TRANSFORMS), str) and "jitter" in repr(STANDARD_TRANSFORMS)


# =========================================================================== objectives
@pytest.fixture
def acts():
    return torch.randn(3, 5, 6, 7, generator=gen(0), dtype=torch.float64).requires_grad_(True)


def test_objective_values_by_hand(acts):
    a = acts.detach().numpy()
    assert channel(2)(acts).item() == pytest.approx(a[:, 2].mean())
    assert neuron(1)(acts).item() == pytest.approx(a[:, 1, 3, 3].mean())  # centre: 6 // 2, 7 // 2
    assert neuron(4, 0, 6)(acts).item() == pytest.approx(a[:, 4, 0, 6].mean())
    assert O.deepdream()(acts).item() == pytest.approx((a ** 2).mean())


def test_objective_gradients_by_hand(acts):
    n, c, h, w = acts.shape
    (g,) = torch.autograd.grad(channel(2)(acts), acts)
    expected = torch.zeros_like(acts)
    expected[:, 2] = 1 / (n * h * w)
    assert torch.allclose(g, expected)
    (g,) = torch.autograd.grad(neuron(1, 2, 5)(acts), acts)
    expected = torch.zeros_like(acts)
    expected[:, 1, 2, 5] = 1 / n
    assert torch.allclose(g, expected)
    (g,) = torch.autograd.grad(O.deepdream()(acts), acts)
    assert torch.allclose(g, 2 * acts.detach() / acts.numel())


def test_diversity_against_explicit_pairs(acts):
    a = acts.detach().numpy()
    n = a.shape[0]
    grams = [(x.reshape(x.shape[0], -1) @ x.reshape(x.shape[0], -1).T).ravel() for x in a]
    cos = [grams[i] @ grams[j] / np.linalg.norm(grams[i]) / np.linalg.norm(grams[j])
           for i in range(n) for j in range(n) if i != j]
    assert diversity()(acts).item() == pytest.approx(-np.mean(cos))
    same = acts.detach()[:1].expand(4, -1, -1, -1)
    assert diversity()(same).item() == pytest.approx(-1.0)
    assert diversity()(acts[:1]).item() == 0.0
    (g,) = torch.autograd.grad(diversity()(acts), acts)
    assert torch.isfinite(g).all()


def test_objective_composition(acts):
    a = acts.detach().numpy()
    combo = channel(1) + 2 * neuron(0) - O.deepdream() / 4 + 0.5
    expected = a[:, 1].mean() + 2 * a[:, 0, 3, 3].mean() - (a ** 2).mean() / 4 + 0.5
    assert combo(acts).item() == pytest.approx(expected)
    assert (-channel(1))(acts).item() == pytest.approx(-a[:, 1].mean())
    assert (3.0 - channel(1))(acts).item() == pytest.approx(3.0 - a[:, 1].mean())
    assert (channel(0) * channel(1))(acts).item() == pytest.approx(a[:, 0].mean() * a[:, 1].mean())
    total = sum([channel(0), channel(1), channel(2)])
    assert total(acts).item() == pytest.approx(a[:, :3].mean(axis=(0, 2, 3)).sum())
    per_image = channel(4).batch(0) + channel(2).batch(2)
    assert per_image(acts).item() == pytest.approx(a[0, 4].mean() + a[2, 2].mean())
    with pytest.raises(IndexError):
        channel(0).batch(3)(acts)
    # plain functions: wrapped, and with bound arguments
    plain = lambda t: t[:, 3].max()  # noqa: E731
    assert (channel(0) + plain)(acts).item() == pytest.approx(a[:, 0].mean() + a[:, 3].max())
    bound = objective_from(lambda t, c, scale=1.0: scale * t[:, c].mean(), 2, scale=3.0)
    assert isinstance(bound, Objective) and bound(acts).item() == pytest.approx(3 * a[:, 2].mean())
    assert "channel(1)" in repr(combo)


def test_channels_per_image_equals_sum_of_batch_objectives(acts):
    channels = [4, 0, 2]
    fast = O.channels_per_image(channels)(acts)
    slow = sum(channel(c).batch(i) for i, c in enumerate(channels))(acts)
    assert fast.item() == pytest.approx(slow.item())
    fast_n = O.channels_per_image(channels, neuron=True)(acts)
    slow_n = sum(neuron(c).batch(i) for i, c in enumerate(channels))(acts)
    assert fast_n.item() == pytest.approx(slow_n.item())
    with pytest.raises(ValueError):
        O.channels_per_image([0, 1])(acts)


def test_objective_errors(acts):
    with pytest.raises(ValueError, match=r"\(N, C, h, w\)"):
        channel(0)(acts[0])
    with pytest.raises(IndexError, match="5 channels"):
        channel(5)(acts)
    with pytest.raises(IndexError, match="outside"):
        neuron(0, 6, 0)(acts)


# =========================================================================== render
def test_render_raises_the_objective_and_returns_images(real_model):
    layer, c = "features.7", 11
    snaps = visualize_steps(real_model, layer, channel(c), thresholds=(0, 8, 48), size=64,
                            progress=False)
    assert sorted(snaps) == [0, 8, 48]
    for images in snaps.values():
        assert images.shape == (1, 64, 64, 3) and images.dtype == np.float32
        assert images.min() >= 0 and images.max() <= 1
    values = [layer_acts(real_model, layer, snaps[t])[:, c].mean().item() for t in (0, 8, 48)]
    assert values[0] < values[1] < values[2] and values[2] > values[0] + 1.0, values
    again = render(real_model, layer, channel(c), size=64, steps=48, progress=False)
    assert np.array_equal(again, snaps[48])  # same seed, same run
    other = render(real_model, layer, channel(c), size=64, steps=48, progress=False, seed=1)
    assert not np.array_equal(other, again)


def test_render_leaves_the_model_untouched(awkward_toy):
    model, seen = awkward_toy
    before = model_state(model)
    x = torch.rand(1, 3, 24, 24)
    model.eval()
    with torch.no_grad():
        reference = model(x)
    model.train()
    seen.clear()
    out = render(model, "block", channel(1) + 0.1 * diversity(), param=fft_image(24, batch=2),
                 transforms=[jitter(2)], steps=5, progress=False)
    assert out.shape == (2, 24, 24, 3)
    assert len(seen) == 5  # the user's hook ran at every step, and is still there
    assert_same_state(before, model_state(model))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), reference)


def test_render_stops_the_forward_pass_at_the_layer():
    model = toy_model()
    render(model, model.block, channel(0), size=16, steps=3, transforms=None, progress=False)
    assert model.head_calls == 0


def test_render_works_under_no_grad_and_with_plain_objectives():
    model = toy_model()
    with torch.no_grad():
        out = render(model, "block", lambda acts: acts[:, 2].mean(), size=16, steps=2,
                     progress=False, transforms=STANDARD_TRANSFORMS)
    assert out.shape == (1, 16, 16, 3)


def test_render_errors():
    model = toy_model()
    with pytest.raises(ValueError, match="scalar"):
        render(model, "block", lambda acts: acts.mean(dim=0), size=16, steps=1, progress=False)
    with pytest.raises(ValueError, match="depend"):
        render(model, "block", lambda acts: acts.detach().mean(), size=16, steps=1, progress=False)
    with pytest.raises(ValueError, match="not a sub-module"):
        render(model, nn.Conv2d(3, 3, 1), channel(0), size=16, steps=1, progress=False)
    with pytest.raises(KeyError, match="no layer named"):
        render(model, "blokc", channel(0), size=16, steps=1, progress=False)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        render(model, "block", channel(0), size=16, steps=1, progress=False)


def test_progress_bar_is_silent_while_grading(monkeypatch, capfd):
    model = toy_model()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    render(model, "block", channel(0), size=16, steps=2, progress=True)
    assert capfd.readouterr().err == ""
    monkeypatch.delenv("NBGRADER_EXECUTION")
    render(model, "block", channel(0), size=16, steps=2, progress=False)
    assert capfd.readouterr().err == ""


def test_render_layer_matches_per_image_objectives_and_independent_images():
    model = toy_model()
    channels, size, steps = [3, 0, 5], 16, 6
    batched = render_layer(model, "block", channels, size=size, steps=steps, transforms=None,
                           progress=False, seed=4)
    # the same as render with the per-batch-index objective and the same initial images
    p = fft_image(size, batch=3, generator=gen(4))
    start = p.spectrum.detach().clone()
    objective = sum(channel(c).batch(i) for i, c in enumerate(channels))
    assert np.allclose(batched, render(model, "block", objective, param=p, transforms=None,
                                       steps=steps, progress=False), atol=1e-6)
    # image i does not depend on the others: optimizing it alone gives the same image
    for i, c in enumerate(channels):
        alone = fft_image(size, batch=1)
        with torch.no_grad():
            alone.spectrum.copy_(start[i:i + 1])
        single = render(model, "block", channel(c), param=alone, transforms=None, steps=steps,
                        progress=False)
        assert np.allclose(single[0], batched[i], atol=1e-4)
    chunks = render_layer(model, "block", 4, size=size, steps=1, batch_size=3, progress=False)
    assert chunks.shape == (4, size, size, 3)


@pytest.fixture(scope="module")
def photos():
    return np.stack([sample_image(name, 64) for name in PHOTOS])


def test_render_layer_images_excite_their_own_channel(real_model, photos):
    layer, channels = "features.4", list(range(0, 40, 5))
    before = model_state(real_model)
    images = render_layer(real_model, layer, channels, size=64, steps=64, progress=False)
    assert_same_state(before, model_state(real_model))
    assert images.shape == (8, 64, 64, 3) and images.min() >= 0 and images.max() <= 1
    table = layer_acts(real_model, layer, images)[:, channels].mean(dim=(2, 3))  # (image, channel)
    own = table.diagonal()
    wins = int((table.argmax(dim=0) == torch.arange(8)).sum())
    assert wins >= 6, table
    best_photo = layer_acts(real_model, layer, photos)[:, channels].mean(dim=(2, 3)).amax(dim=0)
    several_times = int((own > 3 * best_photo.clamp_min(0.1)).sum())
    assert several_times >= 6, (own, best_photo)


# =========================================================================== deepdream
def test_octave_sizes():
    assert octave_sizes(100, 140, 3, 2.0) == [(25, 35), (50, 70), (100, 140)]
    assert octave_sizes(64, 64, 1, 1.4) == [(64, 64)]
    with pytest.raises(ValueError, match="smallest octave"):
        octave_sizes(40, 40, 4, 1.5)


def test_normalized_gradient_step():
    image = torch.full((1, 3, 4, 4), 0.5)
    grad = torch.randn(1, 3, 4, 4, generator=gen(0))
    step = normalized_gradient_step(image, grad, 0.01)
    assert (step - image).abs().mean().item() == pytest.approx(0.01, rel=1e-5)
    assert torch.equal(normalized_gradient_step(image, torch.zeros_like(grad), 0.01), image)
    assert normalized_gradient_step(image, grad, 10.0).max() <= 1


def test_deepdream_raises_the_layer_objective_on_a_photo(real_model):
    photo = sample_image("coffee", 96)
    layer = "features.7"
    before = model_state(real_model)
    dream = deepdream(real_model, layer, photo, steps=6, octaves=3, octave_scale=1.4, progress=False)
    assert_same_state(before, model_state(real_model))
    assert dream.shape == photo.shape and dream.dtype == np.float32
    assert dream.min() >= 0 and dream.max() <= 1
    score = lambda img: O.mean_squared_activation(layer_acts(real_model, layer, img[None])).item()  # noqa: E731
    assert score(dream) > 1.25 * score(photo), (score(photo), score(dream))
    assert np.abs(dream - photo).mean() > 0.01
    again = deepdream(real_model, layer, photo, steps=6, octaves=3, octave_scale=1.4, progress=False)
    assert np.array_equal(dream, again)


def test_deepdream_zero_steps_returns_the_photo_and_model_untouched(awkward_toy):
    model, _ = awkward_toy
    photo = sample_image("cat", 40)
    before = model_state(model)
    same = deepdream(model, "block", photo, steps=0, octaves=2, progress=False)
    assert np.allclose(same, photo, atol=1e-6)
    dream = deepdream(model, "block", photo, steps=3, octaves=2, jitter=4, progress=False,
                      objective=channel(1))
    assert dream.shape == photo.shape
    assert_same_state(before, model_state(model))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        deepdream(model, "block", photo[..., 0], progress=False)


def test_bench_script_imports_and_parses_its_flags():
    """bench/bench_featureviz.py: importable without running, flags as documented (no timing here)."""
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "bench_featureviz.py"
    ns = runpy.run_path(str(script), run_name="bench_featureviz")
    args = ns["parse_args"](["--quick"])
    assert args.quick and args.reps == 2 and ns["parse_args"](["--reps", "5"]).reps == 5
    assert ns["GOAL_STEP_VS_FWD_BWD"] == 1.15 and ns["GOAL_BATCHED_SPEEDUP"] == 3.0
