"""solutions.featureviz (the L2A1 contract) against hand computations and on a trained network.

The reference delegates to :mod:`interpkit.featureviz`; these tests pin the contract itself:
values and gradients of the objectives on random activations computed here with numpy, the exact
random draws of ``jitter`` (dy first, then dx), and the behaviour of ``visualize``/``deepdream`` on
EfficientNet-Lite0 (real ImageNet weights, offline) and on a small model left in an awkward state.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from interpkit import get_layer, sample_image
from interpkit.featureviz import STANDARD_TRANSFORMS, fft_image, objectives, pixel_image
from interpkit.featureviz import transforms as T
from interpkit.featureviz.render import forward_to, make_normalizer
from solutions.featureviz import (channel_objective, deepdream, deepdream_objective, jitter,
                                  neuron_objective, visualize)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def acts_of(model, layer, images: np.ndarray) -> torch.Tensor:
    """``layer``'s activations for ``(N, H, W, 3)`` images in [0, 1] (ImageNet normalization)."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32).permute(0, 3, 1, 2)
    with torch.no_grad():
        return forward_to(model, get_layer(model, layer), make_normalizer()(x))


def snapshot(model: nn.Module) -> tuple:
    return ({k: v.clone() for k, v in model.state_dict().items()},
            {n: (p.requires_grad, None if p.grad is None else p.grad.clone())
             for n, p in model.named_parameters()},
            {n: m.training for n, m in model.named_modules()},
            {n: (list(m._forward_hooks), list(m._forward_pre_hooks), list(m._backward_hooks))
             for n, m in model.named_modules()})


def assert_unchanged(before: tuple, after: tuple) -> None:
    tensors, params, modes, hooks = before
    assert all(torch.equal(tensors[k], after[0][k]) for k in tensors)
    for name, (requires_grad, grad) in params.items():
        now_requires_grad, now_grad = after[1][name]
        assert now_requires_grad == requires_grad, name
        assert (grad is None and now_grad is None) or torch.equal(grad, now_grad), name
    assert modes == after[2] and hooks == after[3]


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                                      nn.Conv2d(6, 4, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

    def forward(self, x):
        return self.head(self.features(x))


@pytest.fixture
def small_in_awkward_state():
    """Train mode, a frozen parameter, an existing .grad and a user forward hook."""
    model = Small().train()
    model.features[0].weight.requires_grad_(False)
    model.head[2].weight.grad = torch.ones_like(model.head[2].weight)
    handle = model.features.register_forward_hook(lambda m, i, o: None)
    yield model
    handle.remove()


# --------------------------------------------------------------------------- objectives
@pytest.fixture
def acts():
    return torch.randn(2, 4, 5, 6, generator=gen(1), dtype=torch.float64).requires_grad_(True)


def test_channel_objective(acts):
    a = acts.detach().numpy()
    for c in range(4):
        value = channel_objective(acts, c)
        assert value.dim() == 0 and value.item() == pytest.approx(a[:, c].mean())
    (grad,) = torch.autograd.grad(channel_objective(acts, 3), acts)
    expected = np.zeros_like(a)
    expected[:, 3] = 1 / (2 * 5 * 6)
    assert np.allclose(grad.numpy(), expected)
    assert channel_objective(acts, 1).item() == objectives.channel(1)(acts).item()  # one source of truth


@pytest.mark.parametrize("shape, centre", [((5, 6), (2, 3)), ((4, 4), (2, 2)), ((1, 1), (0, 0)), ((7, 3), (3, 1))])
def test_neuron_objective_centre_default(shape, centre):
    acts = torch.randn(3, 2, *shape, generator=gen(2))
    a = acts.numpy()
    assert neuron_objective(acts, 1).item() == pytest.approx(a[:, 1, centre[0], centre[1]].mean())


def test_neuron_objective_explicit_position_and_gradient(acts):
    a = acts.detach().numpy()
    assert neuron_objective(acts, 2, y=4, x=0).item() == pytest.approx(a[:, 2, 4, 0].mean())
    (grad,) = torch.autograd.grad(neuron_objective(acts, 2, 1, 5), acts)
    expected = np.zeros_like(a)
    expected[:, 2, 1, 5] = 0.5  # averaged over a batch of 2
    assert np.allclose(grad.numpy(), expected)


def test_deepdream_objective(acts):
    a = acts.detach().numpy()
    assert deepdream_objective(acts).item() == pytest.approx((a ** 2).mean())
    (grad,) = torch.autograd.grad(deepdream_objective(acts), acts)
    assert np.allclose(grad.numpy(), 2 * a / a.size)


# --------------------------------------------------------------------------- jitter
def test_jitter_shape_and_crop():
    image = torch.rand(2, 3, 20, 24)
    out = jitter(image, 6, gen(0))
    assert out.shape == (2, 3, 14, 18)
    g = gen(0)
    dy = int(torch.randint(0, 7, (1,), generator=g))
    dx = int(torch.randint(0, 7, (1,), generator=g))
    assert torch.equal(out, image[:, :, dy:dy + 14, dx:dx + 18])


def test_jitter_draws_dy_then_dx_uniformly_on_the_closed_range():
    max_shift = 3
    counts = np.zeros((max_shift + 1, max_shift + 1), dtype=int)
    grid = torch.arange(10 * 10, dtype=torch.float32).view(1, 1, 10, 10)
    for seed in range(400):
        out = jitter(grid, max_shift, gen(seed))
        dy, dx = divmod(int(out[0, 0, 0, 0]), 10)
        g = gen(seed)
        assert (dy, dx) == (int(torch.randint(0, max_shift + 1, (1,), generator=g)),
                            int(torch.randint(0, max_shift + 1, (1,), generator=g)))
        counts[dy, dx] += 1
    assert (counts.sum(axis=1) > 0).all() and (counts.sum(axis=0) > 0).all()  # 0..max_shift both axes
    assert counts.sum(axis=1).min() > 400 / 4 * 0.6  # roughly uniform


def test_jitter_global_random_state_and_gradient():
    image = torch.rand(1, 3, 12, 12, requires_grad=True)
    torch.manual_seed(7)
    a = jitter(image, 4)
    torch.manual_seed(7)
    assert torch.equal(a, jitter(image, 4))
    a.sum().backward()
    assert image.grad.sum().item() == pytest.approx(8 * 8 * 3)
    assert torch.equal(jitter(image, 0, gen(0)), image)
    assert T.jitter(4)(image, gen(3)).shape == jitter(image, 4, gen(3)).shape


# --------------------------------------------------------------------------- visualize
def test_visualize_on_a_trained_network(real_model):
    layer, channel = "features.7", 30
    param = fft_image(64, generator=gen(0))
    start = param.numpy()
    before = snapshot(real_model)
    image = visualize(real_model, real_model.features[7], lambda a: channel_objective(a, channel),
                      param, STANDARD_TRANSFORMS, 48, 0.05)
    assert_unchanged(before, snapshot(real_model))
    assert image.shape == (64, 64, 3) and image.dtype == np.float32
    assert 0 <= image.min() and image.max() <= 1
    assert np.array_equal(image, param.numpy()[0])  # image_param was optimized in place
    before_value = acts_of(real_model, layer, start)[:, channel].mean().item()
    after_value = acts_of(real_model, layer, image[None])[:, channel].mean().item()
    assert after_value > before_value + 5, (before_value, after_value)


def test_visualize_accepts_pixels_lists_and_leaves_the_model_alone(small_in_awkward_state):
    model = small_in_awkward_state
    before = snapshot(model)
    image = visualize(model, model.features[4], lambda a: neuron_objective(a, 1),
                      pixel_image(16, generator=gen(0)), [T.pad(2), T.jitter(4)], 4, 0.1)
    assert image.shape == (16, 16, 3)
    image = visualize(model, "features.4", deepdream_objective, fft_image(16), None, 2, 0.05)
    assert image.shape == (16, 16, 3)
    assert_unchanged(before, snapshot(model))


# --------------------------------------------------------------------------- deepdream
def test_deepdream_on_a_photo(real_model):
    photo = sample_image("astronaut", 80)
    before = snapshot(real_model)
    dream = deepdream(real_model, real_model.features[7], photo, 5, 0.01, 2, 1.4)
    assert_unchanged(before, snapshot(real_model))
    assert dream.shape == photo.shape and 0 <= dream.min() and dream.max() <= 1
    score = lambda img: deepdream_objective(acts_of(real_model, "features.7", img[None])).item()  # noqa: E731
    assert score(dream) > 1.15 * score(photo)


def test_deepdream_leaves_an_awkward_model_alone(small_in_awkward_state):
    model = small_in_awkward_state
    before = snapshot(model)
    dream = deepdream(model, "features.4", sample_image("rocket", 32), 2, 0.02, 2, 1.5)
    assert dream.shape == (32, 32, 3)
    assert_unchanged(before, snapshot(model))
