"""solutions.gradcam against independent oracles, the contract's side conditions, and real-model
behaviour on EfficientNet-Lite0 (real ImageNet weights, offline).

Oracles:
- captum ``LayerGradCam`` (relu_attributions=True), bilinearly upsampled (align_corners=False) and
  divided by its max: the contract's map computed by an independent library.
- pytorch-grad-cam ``GradCAM``: its pre-scaling map and its final (min-max scaled, cv2-resized)
  output, compared as documented in ``test_matches_pytorch_grad_cam``.
- a GAP + linear network built here, for which Grad-CAM equals CAM exactly (computed by hand).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from interpkit import get_layer, load_model, preprocess, sample_image, two_objects
from interpkit.images import COMPOSITE_CLASSES
from interpkit.models import REGISTRY
from solutions.gradcam import (TARGET_LAYERS, counterfactual_grad_cam, grad_cam,
                               grad_cam_and_counterfactual, grad_cam_batch)
from solutions.segmentation import localization_box

CAT, COFFEE = COMPOSITE_CLASSES["cat"], COMPOSITE_CLASSES["coffee"]


# --------------------------------------------------------------------------- small models
class GapNet(nn.Module):
    """conv ``features`` (the explained layer A) -> global average pooling -> linear ``head``.

    score_c = sum_k W[c, k] * mean(A_k) + b_c, so dscore/dA_k = W[c, k] / (h * w) everywhere and
    Grad-CAM = ReLU(sum_k W[c, k] A_k) (CAM, Zhou et al. 2016), up to the positive factor 1/(h*w)
    that the division by the max removes.
    """

    def __init__(self, channels: int = 4, classes: int = 5, stride: int = 4):
        super().__init__()
        self.features = nn.Conv2d(3, channels, stride, stride=stride)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(channels, classes)

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


class InplaceReluGapNet(GapNet):
    """Same, but an in-place ReLU consumes A: dscore/dA_k = W[c, k] / (h * w) * [A_k > 0]."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.relu(self.features(x))), 1))


class ConvNet(nn.Module):
    """Gradients that vary in space (non-linear head above the explained layer ``block``)."""

    def __init__(self, classes: int = 6, width: int = 8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU())
        self.top = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.Tanh())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Linear(width, 16), nn.Tanh(), nn.Linear(16, classes))

    def forward(self, x):
        x = self.top(self.block(self.stem(x)))
        return self.head(torch.flatten(self.pool(x), 1))


class TwiceNet(nn.Module):
    """Calls ``conv`` twice per forward pass: Grad-CAM's A would be ambiguous."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.head = nn.Linear(3, 5)

    def forward(self, x):
        return self.head(self.conv(self.conv(x)).mean(dim=(2, 3)))


class Negated(nn.Module):
    """``inner`` with its logits negated: its Grad-CAM is ``inner``'s counterfactual."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return -self.inner(x)


def seeded(cls, seed=0, **kwargs):
    torch.manual_seed(seed)
    return cls(**kwargs).eval()


def randn(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def cam_oracle(model: GapNet, x: torch.Tensor, c: int, gate_on_positive: bool = False) -> np.ndarray:
    """CAM by hand: ReLU(sum_k w_k A_k), upsampled with OpenCV (half-pixel bilinear, i.e. the same
    sampling as align_corners=False, independent of torch) and divided by its max."""
    with torch.no_grad():
        acts = model.features(x)[0].double()                       # (K, h, w)
        w = model.head.weight[c].double()                           # (K,)
        if gate_on_positive:  # in-place ReLU above A: the gradient is W[c, k] / (hw) * [A > 0]
            weights = (w[:, None, None] * (acts > 0)).mean(dim=(1, 2))
        else:
            weights = w
        low = torch.relu(torch.einsum("k,khw->hw", weights, acts)).numpy()
    height, width = x.shape[-2:]
    up = cv2.resize(low, (width, height), interpolation=cv2.INTER_LINEAR)
    return up / up.max() if up.max() > 0 else up


def assert_contract_map(cam: torch.Tensor, shape):
    assert isinstance(cam, torch.Tensor)
    assert cam.dtype == torch.float32
    assert tuple(cam.shape) == tuple(shape)
    assert torch.isfinite(cam).all()
    assert cam.min() >= 0 and cam.max() <= 1
    assert cam.max() == 1.0 or not cam.any()


# --------------------------------------------------------------------------- GAP + linear: exact
@pytest.mark.parametrize("size", [(32, 32), (20, 36), (36, 20)])
@pytest.mark.parametrize("c", [0, 3])
def test_gap_linear_equals_cam(size, c):
    model = seeded(GapNet)
    x = randn(1, 3, *size)
    cam = grad_cam(model, model.features, x, c)
    assert_contract_map(cam, size)
    np.testing.assert_allclose(cam.numpy(), cam_oracle(model, x, c), atol=1e-5, rtol=0)


def test_gap_with_inplace_relu_above_the_layer():
    # An in-place op right after the layer must not overwrite A (nor break autograd).
    model = seeded(InplaceReluGapNet)
    x = randn(1, 3, 24, 24)
    for c in range(5):
        cam = grad_cam(model, model.features, x, c)
        expected = cam_oracle(model, x, c, gate_on_positive=True)
        np.testing.assert_allclose(cam.numpy(), expected, atol=1e-5, rtol=0)


def all_zero_case():
    """Class 0 has only negative weights on non-negative activations: ReLU(sum) = 0 everywhere."""
    model = seeded(GapNet, channels=3, classes=2)
    model.features = nn.Sequential(nn.Conv2d(3, 3, 4, stride=4), nn.ReLU())
    with torch.no_grad():
        model.head.weight[0] = -torch.tensor([1.0, 2.0, 0.5])
    layer = model.features
    x = randn(1, 3, 16, 16)
    with torch.no_grad():
        assert layer(x).sum() > 0  # A itself is not zero: the zero comes from the weights
    return model, layer, x


def test_all_zero_map_stays_zero():
    model, layer, x = all_zero_case()
    cam = grad_cam(model, layer, x, 0)
    assert cam.dtype == torch.float32 and cam.shape == (16, 16)
    assert torch.isfinite(cam).all()
    assert torch.equal(cam, torch.zeros(16, 16))
    # ... while its counterfactual (negated weights > 0) is a proper map.
    cf = counterfactual_grad_cam(model, layer, x, 0)
    assert_contract_map(cf, (16, 16))
    assert cf.max() == 1.0


# --------------------------------------------------------------------------- captum / pytorch-grad-cam
@dataclass
class ArchCase:
    name: str
    model: nn.Module
    layer: nn.Module
    x: torch.Tensor
    top1: int
    top2: int  # the second-ranked class: an explicit class_idx other than the default
    cam_top1: torch.Tensor  # grad_cam(model, layer, x, top1), computed once


@pytest.fixture(scope="module", params=["vgg16", "resnet50", "inception_v3", "efficientnet_lite0"])
def arch(request):
    """One model and one image per architecture (a private copy: pytorch-grad-cam touches it)."""
    name = request.param
    torch.manual_seed(0)
    if name == "efficientnet_lite0":
        model = load_model(name)  # real ImageNet weights
        x = preprocess(sample_image("cat"), name)
        layer_name = REGISTRY[name].gradcam_layer
    else:
        model = load_model(name, pretrained=False)
        size = REGISTRY[name].input_size
        x = randn(1, 3, size, size)
        layer_name = TARGET_LAYERS[name]
    with torch.no_grad():
        top1, top2 = model(x)[0].topk(2).indices.tolist()
    layer = get_layer(model, layer_name)
    return ArchCase(name, model, layer, x, top1, top2, grad_cam(model, layer, x, top1))


def captum_cam(model, layer, x, c):
    from captum.attr import LayerGradCam

    attr = LayerGradCam(model, layer).attribute(x, target=c, relu_attributions=True)
    up = F.interpolate(attr, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    return up / up.max()


def test_matches_captum(arch):
    for c in (arch.top1, arch.top2):
        ours = arch.cam_top1 if c == arch.top1 else grad_cam(arch.model, arch.layer, arch.x, c)
        assert_contract_map(ours, arch.x.shape[-2:])
        assert ours.max() == 1.0  # a real map, so that the comparison means something
        ref = captum_cam(arch.model, arch.layer, arch.x, c)
        torch.testing.assert_close(ours, ref.float(), atol=1e-5, rtol=0)


def test_matches_pytorch_grad_cam(arch):
    """pytorch-grad-cam 1.5.7 (read in pytorch_grad_cam/base_cam.py and utils/image.py):

    ``get_cam_image`` returns the pre-scaling map sum_k mean(dA_k) A_k at the layer's resolution;
    ``compute_cam_per_layer`` applies ``np.maximum(cam, 0)`` and ``scale_cam_image``, which
    MIN-MAX scales at low resolution ((cam - min) / (1e-7 + max - min)) and then resizes with
    ``cv2.resize`` (INTER_LINEAR, half-pixel centres = align_corners=False); finally
    ``aggregate_multi_layers`` min-max scales the full-resolution map once more. So:

    1. its raw map -> ReLU -> our contract's upsampling and max division must equal ours within
       1e-5 (float32 arithmetic in both, same formula, summation order aside);
    2. its final output is an increasing affine function of the upsampled ReLU map (bilinear
       resizing commutes with affine maps), and so is ours (a division by the max): the last
       min-max makes both the same, so its output must equal min-max(ours). Tolerance 1e-5: the
       1e-7 epsilon in the last scaling and float32 rounding (cv2 and torch bilinear agree to
       ~4e-7 on these grids).
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    c = arch.top1
    ours = arch.cam_top1.numpy()
    targets = [ClassifierOutputTarget(c)]
    # It calls loss.backward(): to spare the parameter gradients (0.5 GB and ~2 s for VGG16) the
    # parameters are frozen and the input requires grad instead; its tensor hook on the layer's
    # output only needs that output to require grad. Values are unaffected.
    flags = [p.requires_grad for p in arch.model.parameters()]
    for p in arch.model.parameters():
        p.requires_grad_(False)
    x = arch.x.clone().requires_grad_(True)
    try:
        with GradCAM(model=arch.model, target_layers=[arch.layer]) as method:
            out = method(input_tensor=x, targets=targets)[0]
            acts = method.activations_and_grads.activations[0].numpy()
            grads = method.activations_and_grads.gradients[0].numpy()
            raw = method.get_cam_image(x, arch.layer, targets, acts, grads)[0]
    finally:
        for p, flag in zip(arch.model.parameters(), flags):
            p.requires_grad_(flag)

    relu = np.maximum(raw, 0)
    up = F.interpolate(torch.from_numpy(relu)[None, None], size=arch.x.shape[-2:], mode="bilinear",
                       align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(ours, up / up.max(), atol=1e-5, rtol=0)

    assert ours.max() > ours.min()  # not constant: min-max is defined
    np.testing.assert_allclose(out, (ours - ours.min()) / (ours.max() - ours.min()), atol=1e-5, rtol=0)


def test_class_idx_none_is_top1(arch):
    torch.testing.assert_close(grad_cam(arch.model, arch.layer, arch.x), arch.cam_top1, atol=0, rtol=0)


# --------------------------------------------------------------------------- target layers
EXPECTED_GRID = {"vgg16": (224, 14), "resnet50": (224, 7), "inception_v3": (299, 8)}


def test_target_layer_keys():
    assert set(TARGET_LAYERS) == {"vgg16", "resnet50", "inception_v3"}
    assert all(isinstance(v, str) and v for v in TARGET_LAYERS.values())


@pytest.mark.parametrize("name", sorted(EXPECTED_GRID))
def test_target_layer_resolves_and_has_the_last_conv_grid(name):
    # Architecture only: built on the meta device (no memory, no init cost), shapes still flow.
    with torch.device("meta"):
        model = REGISTRY[name].build(False).eval()
    layer = get_layer(model, TARGET_LAYERS[name])
    seen = []
    handle = layer.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    size, grid = EXPECTED_GRID[name]
    try:
        with torch.no_grad():
            logits = model(torch.empty(1, 3, size, size, device="meta"))
    finally:
        handle.remove()
    assert logits.shape == (1, 1000)
    assert len(seen) == 1 and seen[0][0] == 1 and seen[0][2:] == (grid, grid)


# --------------------------------------------------------------------------- counterfactual, batches
@pytest.fixture(scope="module")
def cat_input():
    return preprocess(sample_image("cat"), "efficientnet_lite0")


@pytest.fixture(scope="module")
def composite():
    image = two_objects()
    return image, preprocess(image, "efficientnet_lite0", size=image.shape[:2])


@pytest.fixture(scope="module")
def real_layer(real_model):
    return get_layer(real_model, REGISTRY["efficientnet_lite0"].gradcam_layer)


@pytest.fixture(scope="module")
def composite_maps(real_model, real_layer, composite):
    """{class: (grad_cam, counterfactual)} on the composite, each (224, 448), from the one-pass
    function (whose equality with the separate calls is tested below)."""
    _, x = composite
    maps = {}
    for c in (CAT, COFFEE):
        cam, cf = grad_cam_and_counterfactual(real_model, real_layer, x, c)
        assert cam.shape == cf.shape == (1, 224, 448)
        maps[c] = (cam[0], cf[0])
    return maps


def test_counterfactual_is_gradcam_of_negated_logits_small():
    model = seeded(ConvNet)
    x = randn(1, 3, 40, 28)
    for c in range(6):
        cf = counterfactual_grad_cam(model, model.block, x, c)
        assert_contract_map(cf, (40, 28))
        torch.testing.assert_close(cf, grad_cam(Negated(model), model.block, x, c), atol=1e-6, rtol=0)
        # and it is a different map from Grad-CAM itself
        assert not torch.allclose(cf, grad_cam(model, model.block, x, c), atol=1e-3)


def test_counterfactual_is_gradcam_of_negated_logits_real(real_model, real_layer, composite,
                                                          composite_maps):
    _, x = composite
    torch.testing.assert_close(composite_maps[CAT][1], grad_cam(Negated(real_model), real_layer, x, CAT),
                               atol=1e-6, rtol=0)


def test_one_pass_pair_equals_separate_calls(real_model, real_layer, composite, composite_maps):
    _, x = composite
    for c in (CAT, COFFEE):
        cam, cf = composite_maps[c]
        torch.testing.assert_close(cam, grad_cam(real_model, real_layer, x, c), atol=1e-6, rtol=0)
        torch.testing.assert_close(cf, counterfactual_grad_cam(real_model, real_layer, x, c),
                                   atol=1e-6, rtol=0)
    # class_idx=None: both maps are for the top-1 class
    model = seeded(ConvNet)
    xs = randn(1, 3, 20, 20)
    top1 = int(model(xs).argmax())
    cam, cf = grad_cam_and_counterfactual(model, model.block, xs)
    torch.testing.assert_close(cam[0], grad_cam(model, model.block, xs, top1), atol=1e-6, rtol=0)
    torch.testing.assert_close(cf[0], counterfactual_grad_cam(model, model.block, xs, top1), atol=1e-6, rtol=0)


def test_batch_equals_per_image_small():
    model = seeded(ConvNet)
    xs = randn(3, 3, 32, 24)
    classes = [0, 4, 2]
    for class_idx, per_image in ((classes, classes), (None, [None] * 3), (5, [5] * 3)):
        maps = grad_cam_batch(model, model.block, xs, class_idx)
        assert maps.shape == (3, 32, 24) and maps.dtype == torch.float32
        for i in range(3):
            torch.testing.assert_close(maps[i], grad_cam(model, model.block, xs[i:i + 1], per_image[i]),
                                       atol=1e-5, rtol=0)
    cfs = grad_cam_batch(model, model.block, xs, classes, counterfactual=True)
    for i in range(3):
        torch.testing.assert_close(cfs[i], counterfactual_grad_cam(model, model.block, xs[i:i + 1], classes[i]),
                                   atol=1e-5, rtol=0)


def test_batch_equals_per_image_real(real_model, real_layer):
    xs = torch.cat([preprocess(sample_image(n), "efficientnet_lite0") for n in ("cat", "coffee")])
    maps = grad_cam_batch(real_model, real_layer, xs)
    for i in range(2):
        torch.testing.assert_close(maps[i], grad_cam(real_model, real_layer, xs[i:i + 1]), atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- side conditions
def test_float64_model_still_gives_float32():
    model = seeded(ConvNet).double()
    cam = grad_cam(model, model.block, randn(1, 3, 16, 16).double(), 1)
    assert_contract_map(cam, (16, 16))


def test_class_index_as_tensor_or_numpy_int():
    model = seeded(ConvNet)
    x = randn(1, 3, 16, 16)
    ref = grad_cam(model, model.block, x, 3)
    for c in (torch.tensor(3), np.int64(3)):
        torch.testing.assert_close(grad_cam(model, model.block, x, c), ref, atol=0, rtol=0)


def test_model_left_exactly_as_found():
    model = seeded(ConvNet)
    model.train()
    model.head.eval()  # mixed modes must survive
    for p in model.stem.parameters():
        p.requires_grad_(False)  # frozen part must stay frozen ...
    calls = []
    hook_a = model.block.register_forward_hook(lambda m, i, o: calls.append("fwd"))
    hook_b = model.register_forward_pre_hook(lambda m, i: calls.append("pre"))
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    modes = {n: m.training for n, m in model.named_modules()}
    hooks = {n: (tuple(m._forward_hooks), tuple(m._forward_pre_hooks), tuple(m._backward_hooks))
             for n, m in model.named_modules()}
    x = randn(1, 3, 24, 24)
    grad_enabled = torch.is_grad_enabled()

    grad_cam(model, model.block, x, 2)
    counterfactual_grad_cam(model, model.block, x, 2)
    grad_cam_and_counterfactual(model, model.block, x, 2)
    grad_cam_batch(model, model.block, torch.cat([x, x]), None)

    assert torch.is_grad_enabled() == grad_enabled
    for n, p in model.named_parameters():
        assert torch.equal(p, params[n]), n
        assert p.requires_grad == flags[n], n
        assert p.grad is None, f"{n}.grad was populated"
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert {n: (tuple(m._forward_hooks), tuple(m._forward_pre_hooks), tuple(m._backward_hooks))
            for n, m in model.named_modules()} == hooks
    assert "fwd" in calls and "pre" in calls  # the user's own hooks still ran
    hook_a.remove()
    hook_b.remove()


def test_real_model_parameters_buffers_and_grads_untouched(real_model, real_layer, cat_input):
    state = {k: v.clone() for k, v in real_model.state_dict().items()}
    grad_cam(real_model, real_layer, cat_input, CAT)
    assert all(torch.equal(v, state[k]) for k, v in real_model.state_dict().items())
    assert all(p.grad is None for p in real_model.parameters())
    assert not any(m.training for m in real_model.modules())
    assert all(not m._forward_hooks for m in real_model.modules())


def test_works_inside_no_grad_and_restores_it():
    model = seeded(GapNet)
    x = randn(1, 3, 16, 16)
    ref = grad_cam(model, model.features, x, 1)
    with torch.no_grad():
        cam = grad_cam(model, model.features, x, 1)
        assert not torch.is_grad_enabled()
    torch.testing.assert_close(cam, ref, atol=0, rtol=0)


# --------------------------------------------------------------------------- clear errors
def test_error_layer_is_the_model_itself():
    model = seeded(GapNet)
    with pytest.raises(ValueError, match="not the model itself"):
        grad_cam(model, model, randn(1, 3, 16, 16))


class _SideBranch(nn.Module):
    """A layer whose output never reaches the logits."""

    def __init__(self):
        super().__init__()
        self.main = nn.Conv2d(3, 4, 4, stride=4)
        self.side = nn.Conv2d(3, 4, 4, stride=4)
        self.head = nn.Linear(4, 5)

    def forward(self, x):
        self.side(x)
        return self.head(self.main(x).mean(dim=(2, 3)))


def test_error_layer_not_on_the_path_to_the_logits():
    model = _SideBranch().eval()
    with pytest.raises(RuntimeError, match="do not depend on the layer"):
        grad_cam(model, model.side, randn(1, 3, 16, 16), 1)


def test_error_layer_not_in_model():
    model = seeded(GapNet)
    with pytest.raises(ValueError, match="not a sub-module"):
        grad_cam(model, nn.Conv2d(3, 4, 4), randn(1, 3, 16, 16))


def test_error_three_dimensional_image():
    model = seeded(GapNet)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*\(3, 16, 16\)"):
        grad_cam(model, model.features, randn(3, 16, 16))


def test_error_batch_passed_to_single_image_functions():
    model = seeded(GapNet)
    xs = randn(2, 3, 16, 16)
    with pytest.raises(ValueError, match="batch of 2"):
        grad_cam(model, model.features, xs)
    with pytest.raises(ValueError, match="batch of 2"):
        counterfactual_grad_cam(model, model.features, xs, 0)


@pytest.mark.parametrize("c", [5, -1, 1000])
def test_error_class_idx_out_of_range(c):
    model = seeded(GapNet)  # 5 classes
    with pytest.raises(ValueError, match=r"class_idx must lie in \[0, 4\]"):
        grad_cam(model, model.features, randn(1, 3, 16, 16), c)


def test_error_layer_called_twice_and_hooks_removed():
    model = seeded(TwiceNet)
    with pytest.raises(RuntimeError, match="more than once"):
        grad_cam(model, model.conv, randn(1, 3, 8, 8), 0)
    assert not model.conv._forward_hooks
    assert torch.is_grad_enabled()


def test_error_inside_inference_mode():
    model = seeded(GapNet)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        grad_cam(model, model.features, randn(1, 3, 16, 16), 0)


# --------------------------------------------------------------------------- real model behaviour
def mass_fraction(cam: torch.Tensor, cols: slice) -> float:
    cam = cam.double()
    return float(cam[:, cols].sum() / cam.sum())


def test_real_model_cat_photo(real_model, real_layer, cat_input):
    """skimage.data.chelsea() (300 x 451) resized to 224 x 224: the cat's face fills the frame
    except a strip of wall on the right (columns >~ 190) and the top-left corner; eyes at about
    (row 88, col 78) and (row 100, col 165), nose at (row 178, col 130) (looked at the picture on a
    16 px grid). The peak must lie on the face, inside rows 16-208 x cols 16-184, and the
    mass-weighted centre in its middle (eyes-nose region) rows 64-160 x cols 64-160. Seen:
    peak (112, 48) on the left cheek, centre (107, 106) between the eyes."""
    with torch.no_grad():
        probs = real_model(cat_input).softmax(dim=1)[0]
    assert int(probs.argmax()) == CAT and probs[CAT] > 0.5

    cam = grad_cam(real_model, real_layer, cat_input)  # top-1 = cat
    assert_contract_map(cam, (224, 224))
    row, col = np.unravel_index(int(cam.argmax()), cam.shape)
    assert 16 <= row <= 208 and 16 <= col <= 184, (row, col)
    rows, cols = np.mgrid[:224, :224]
    c = cam.double().numpy()
    r_c, c_c = (c * rows).sum() / c.sum(), (c * cols).sum() / c.sum()
    assert 64 <= r_c <= 160 and 64 <= c_c <= 160, (r_c, c_c)
    assert mass_fraction(cam, slice(192, None)) < 0.1  # little on the wall strip


def test_real_model_composite_each_class_on_its_half(composite, composite_maps):
    _, x = composite
    assert x.shape == (1, 3, 224, 448)
    left, right = slice(0, 224), slice(224, None)
    (cam_cat, cf_cat), (cam_cup, cf_cup) = composite_maps[CAT], composite_maps[COFFEE]
    for m in (cam_cat, cf_cat, cam_cup, cf_cup):
        assert_contract_map(m, (224, 448))  # non-square: (H, W) of the input
        assert m.max() == 1.0
    # Seen: 0.97, 0.95, 0.99, 1.00. "Most of its mass": well above 1/2 with a margin.
    assert mass_fraction(cam_cat, left) > 0.8
    assert mass_fraction(cam_cup, right) > 0.8
    # Counterfactual: what lowers the cat score is the cup, and vice versa.
    assert mass_fraction(cf_cat, right) > 0.8
    assert mass_fraction(cf_cup, left) > 0.8


def box_iou(a, b) -> float:
    (t1, l1, b1, r1), (t2, l2, b2, r2) = a, b
    inter = max(0, min(b1, b2) - max(t1, t2) + 1) * max(0, min(r1, r2) - max(l1, l2) + 1)
    area = lambda t, l, b, r: (b - t + 1) * (r - l + 1)  # noqa: E731
    return inter / (area(*a) + area(*b) - inter)


def test_real_model_composite_localization_box(composite_maps):
    """Hand-chosen boxes (top, left, bottom, right) on the 224 x 448 composite: the cat's face
    fills rows 0-223 and columns ~16-190 of the left square (see test_real_model_cat_photo); the
    cup and saucer sit in the right square, rows ~8-215, columns ~240-410 (looked at the
    composite on a 16 px grid). The paper's
    localization counts a box as correct at IoU >= 0.5 with the ground truth; we ask for that.
    Seen: cat box (0, 17, 223, 231), IoU 0.81; cup box (0, 237, 184, 420), IoU 0.77."""
    cat_box = localization_box(composite_maps[CAT][0], 0.15)
    assert box_iou(cat_box, (0, 16, 223, 190)) >= 0.5, cat_box
    cup_box = localization_box(composite_maps[COFFEE][0], 0.15)
    assert box_iou(cup_box, (8, 240, 215, 410)) >= 0.5, cup_box
    assert box_iou(cat_box, cup_box) < 0.1
