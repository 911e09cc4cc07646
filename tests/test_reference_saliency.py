"""The L2A3 references (solutions.saliency, solutions.sanity, solutions.faithfulness) against
independent oracles, their contracts' side conditions, and behaviour on the real model.

Oracles:
- captum ``Saliency``, ``NoiseTunnel(Saliency)``, ``IntegratedGradients`` (right Riemann sum),
  ``GuidedBackprop`` and ``GuidedGradCam`` (bilinear), within 1e-5 of the oracle's largest value,
  on random-init torchvision architectures (ResNet18, VGG11 with in-place ReLUs, SqueezeNet1.1,
  MobileNetV2 with ReLU6 and BatchNorm) and on the real EfficientNet-Lite0 (ReLU6) with a photo.
  captum guides ``nn.ReLU`` only: for ReLU6 networks the oracle runs on a copy in which every
  ReLU6 is ReLU followed by Hardtanh(0, 6) (the same function; the guided ReLU then sees the
  clipped gradient, which is the guided ReLU6 rule).
- ``scipy.stats.spearmanr`` for ``rank_correlation``; ``numpy.trapezoid`` with explicit x for
  ``curve_auc``; deletion/insertion curves rebuilt pixel by pixel with Python's ``sorted``.
- networks small enough to compute by hand (a linear model: saliency = |W_c| and IG is exact).
"""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torchvision
from scipy import stats
from torch import nn

from autograder.model_state import differences, snapshot
from interpkit import get_layer, load_model, preprocess, sample_image
from interpkit.gradcam import grad_cam
from solutions import faithfulness, saliency, sanity
from solutions.saliency import (guided_backprop, guided_grad_cam, guided_relus, integrated_gradients,
                                smoothgrad)

warnings.filterwarnings("ignore", module="captum")
TOLERANCE = 1e-5  # relative to the oracle's largest absolute value


def close(ours: torch.Tensor, oracle: torch.Tensor, tolerance: float = TOLERANCE) -> float:
    """The largest difference relative to the oracle's largest absolute value (asserted small)."""
    assert ours.shape == oracle.shape, (tuple(ours.shape), tuple(oracle.shape))
    scale = float(oracle.detach().abs().max())
    assert scale > 0, "a trivial oracle proves nothing"
    err = float((ours.detach().double() - oracle.detach().double()).abs().max()) / scale
    assert err <= tolerance, f"relative difference {err:.3g} > {tolerance:g}"
    return err


def seeded_image(seed: int, size: int) -> torch.Tensor:
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def relu6_as_relu_and_clip(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ReLU6 modules are ReLU + Hardtanh(0, 6): the same function, with
    a module captum's guided backpropagation recognizes."""
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(parent, name, nn.Sequential(nn.ReLU(), nn.Hardtanh(0.0, 6.0)))
    return model


# --------------------------------------------------------------------------- architectures
ARCHS = ["resnet18", "vgg11", "squeezenet1_1", "mobilenet_v2", "efficientnet_lite0"]
LAYERS = {"resnet18": "layer4", "vgg11": "features.19", "squeezenet1_1": "features.12",
          "mobilenet_v2": "features.18", "efficientnet_lite0": "features.17"}


@pytest.fixture(scope="module", params=ARCHS)
def arch(request):
    """(name, model, image, class): random init at 64 px, or the real model on the cat photo."""
    name = request.param
    if name == "efficientnet_lite0":
        model = load_model(name)
        return name, model, preprocess(sample_image("cat", 160), name, size=160), 285
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(num_classes=10).eval()
    # MobileNetV2's random-init Grad-CAM of class 3 is all zero (an empty oracle): class 1
    return name, model, seeded_image(1, 64), 1 if name == "mobilenet_v2" else 3


def test_saliency_matches_captum(arch):
    from captum.attr import Saliency

    name, model, x, c = arch
    oracle = Saliency(copy.deepcopy(model)).attribute(x.clone(), target=c, abs=True)[0].amax(dim=0)
    ours = saliency.saliency(model, x, c)
    assert ours.dtype == torch.float32 and ours.shape == x.shape[-2:] and ours.min() >= 0
    close(ours, oracle)


def test_smoothgrad_matches_noise_tunnel(arch):
    """captum draws its noise from torch's global generator, all samples in one draw; ours draws
    them one by one from the generator passed: the same numbers (3 * H * W is a multiple of 16).
    sigma is handed to captum as the very float32 value ours uses (a last-bit difference in the
    noise flips ReLU gates on the real model, which moves its map by ~1e-3)."""
    from captum.attr import NoiseTunnel, Saliency

    name, model, x, c = arch
    n, level = 5, 0.2
    sigma = float(level * (x.max() - x.min()))
    torch.manual_seed(7)
    oracle = NoiseTunnel(Saliency(copy.deepcopy(model))).attribute(
        x.clone(), nt_type="smoothgrad", nt_samples=n, stdevs=sigma, target=c, abs=True)[0].amax(dim=0)
    ours = smoothgrad(model, x, c, n_samples=n, noise_level=level, generator=torch.Generator().manual_seed(7))
    close(ours, oracle)


@pytest.mark.parametrize("baseline", ["zeros", "blurred"])
def test_integrated_gradients_match_captum(arch, baseline):
    """In float64: captum computes the path's alphas in another way (last-bit differences in
    float32), and on the trained model one such difference can flip a ReLU6 gate at one of the
    path's points (5.7e-5 relative was seen). In float64 both follow the same gates."""
    from captum.attr import IntegratedGradients

    name, model, x, c = arch
    assert integrated_gradients(model, x, c, steps=2).dtype == torch.float32
    model, x = copy.deepcopy(model).double(), x.double()
    x0 = torch.zeros_like(x) if baseline == "zeros" else torch.nn.functional.avg_pool2d(x, 9, 1, 4)
    steps = 12
    oracle = IntegratedGradients(copy.deepcopy(model)).attribute(
        x.clone(), baselines=x0, target=c, n_steps=steps, method="riemann_right")[0]
    ours = integrated_gradients(model, x, c, baseline=None if baseline == "zeros" else x0, steps=steps)
    assert ours.shape == x.shape[1:]
    close(ours, oracle)


def test_guided_backprop_matches_captum(arch):
    from captum.attr import GuidedBackprop

    name, model, x, c = arch
    oracle = GuidedBackprop(relu6_as_relu_and_clip(model)).attribute(x.clone(), target=c)[0]
    ours = guided_backprop(model, x, c)
    close(ours, oracle)
    plain, _ = saliency.input_gradients(model, x, c)
    assert float((ours - plain[0]).abs().max()) > 1e-2 * float(plain.abs().max()), "the guided rule changed nothing"


def test_guided_grad_cam_matches_captum(arch):
    """captum multiplies by the un-normalized Grad-CAM map; ours by the map in [0, 1] (the
    toolbox's Grad-CAM, divided by its maximum after upsampling): the same up to that maximum,
    taken from captum's LayerGradCam upsampled the same way."""
    from captum.attr import GuidedGradCam, LayerAttribution, LayerGradCam

    name, model, x, c = arch
    oracle_model = relu6_as_relu_and_clip(model)
    layer = get_layer(oracle_model, LAYERS[name])
    low = LayerGradCam(oracle_model, layer).attribute(x.clone(), target=c, relu_attributions=True)
    peak = float(LayerAttribution.interpolate(low, tuple(x.shape[-2:]), "bilinear").max())
    fresh = copy.deepcopy(oracle_model)
    oracle = GuidedGradCam(fresh, get_layer(fresh, LAYERS[name])).attribute(
        x.clone(), target=c, interpolate_mode="bilinear")[0]
    ours = guided_grad_cam(model, get_layer(model, LAYERS[name]), x, c)
    close(ours * peak, oracle)


def test_every_map_leaves_the_model_as_found(arch):
    name, model, x, c = arch
    layer = get_layer(model, LAYERS[name])
    calls = [lambda: saliency.saliency(model, x), lambda: smoothgrad(model, x, n_samples=2),
             lambda: integrated_gradients(model, x, steps=3), lambda: guided_backprop(model, x),
             lambda: guided_grad_cam(model, layer, x)]
    for run in calls:
        before = snapshot(model)
        run()
        assert differences(model, before, grads=True) == []


# --------------------------------------------------------------------------- by hand
class Linear(nn.Module):
    """y = W flatten(x) + b: d y_c / d x = W_c everywhere, so IG is exact for any number of steps."""

    def __init__(self, size: int = 4, classes: int = 3):
        super().__init__()
        self.fc = nn.Linear(3 * size * size, classes)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_linear_model_saliency_and_exact_integrated_gradients():
    torch.manual_seed(0)
    model = Linear().eval()
    x, x0 = seeded_image(1, 4), seeded_image(2, 4)
    w = model.fc.weight[1].detach().view(3, 4, 4)
    assert torch.allclose(saliency.saliency(model, x, 1), w.abs().amax(0))
    for steps in (1, 7):
        attr = integrated_gradients(model, x, 1, baseline=x0, steps=steps)
        assert torch.allclose(attr, (x - x0)[0] * w, atol=1e-6)
        with torch.no_grad():
            delta = model(x)[0, 1] - model(x0)[0, 1]
        assert abs(float(attr.sum() - delta)) < 1e-5    # completeness, exactly


def test_integrated_gradients_completeness_improves_with_steps():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 7 * 7, 5)).eval()
    x = seeded_image(4, 16)
    with torch.no_grad():
        delta = float(model(x)[0, 2] - model(torch.zeros_like(x))[0, 2])
    errors = [abs(float(integrated_gradients(model, x, 2, steps=s).sum()) - delta) for s in (4, 32, 256)]
    assert errors[2] < errors[0] and errors[2] < 0.01 * abs(delta), (errors, delta)


def test_right_riemann_sum_by_hand():
    """Two steps on a net whose gradient changes along the path: the points are x/2 and x."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.Tanh(), nn.Linear(6, 2)).eval()
    x = seeded_image(5, 2)
    grads = [saliency.input_gradients(model, a * x, 1)[0] for a in (0.5, 1.0)]
    expected = x[0] * (grads[0] + grads[1])[0] / 2
    assert torch.allclose(integrated_gradients(model, x, 1, steps=2), expected, atol=1e-6)


def test_smoothgrad_draws_the_stated_noise_in_order():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 3, 3)).eval()
    x = seeded_image(6, 7)[:, :, :, :5]                 # 3 * 7 * 5 = 105 values: not a multiple of 16
    gen = torch.Generator().manual_seed(11)
    sigma = 0.3 * (x.max() - x.min())
    by_hand = torch.stack([saliency.input_gradients(model, x + sigma * torch.randn(x.shape, generator=gen), 0)[0][0].abs()
                           for _ in range(4)]).mean(0).amax(0)
    ours = smoothgrad(model, x, 0, n_samples=4, noise_level=0.3, generator=torch.Generator().manual_seed(11))
    assert torch.allclose(ours, by_hand, atol=1e-6)
    assert torch.allclose(smoothgrad(model, x, 0, n_samples=3, noise_level=0.0), saliency.saliency(model, x, 0))
    same = [smoothgrad(model, x, None, 3, 0.2, torch.Generator().manual_seed(5)) for _ in range(2)]
    assert torch.equal(same[0], same[1])


def test_guided_rule_by_hand_and_hooks_always_removed():
    """y = w2 . relu(W1 x): guided d y / d x = W1^T (relu(w2) * [W1 x > 0])."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]))
        model[3].weight.copy_(torch.tensor([[2.0, -1.0, 3.0, -2.0]]))
    x = torch.tensor([1.0, -1.0, 2.0]).view(1, 3, 1, 1)
    # hidden = (1, -1, 2, 2): active units 0, 2, 3; positive output weights: units 0, 2
    expected = torch.tensor([2.0, 0.0, 3.0]).view(3, 1, 1)
    assert torch.equal(guided_backprop(model, x, 0), expected)
    with pytest.raises(RuntimeError, match="boom"), guided_relus(model) as hooked:
        assert hooked == 1
        raise RuntimeError("boom")
    assert not any(m._forward_hooks for m in model.modules())


def test_guided_relu6_gate():
    """ReLU6 passes gradient only where 0 < x < 6; the guided rule also drops negative gradients."""
    model = nn.Sequential(nn.Flatten(), nn.ReLU6(), nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        model[2].weight.copy_(torch.tensor([[1.0, -1.0, 1.0, 1.0]]))
    x = torch.tensor([1.0, 2.0, 7.0, -1.0]).view(1, 4, 1, 1)
    assert guided_backprop(model, x, 0).flatten().tolist() == [1.0, 0.0, 0.0, 0.0]


def test_guided_grad_cam_is_guided_backprop_times_the_toolbox_grad_cam():
    torch.manual_seed(4)
    model = torchvision.models.resnet18(num_classes=5).eval()
    x = seeded_image(7, 64)
    cam = grad_cam(model, model.layer4, x)               # top-1
    ours = guided_grad_cam(model, model.layer4, x)
    assert torch.allclose(ours, guided_backprop(model, x) * cam[None])


def test_bad_inputs_get_clear_errors():
    model = Linear().eval()
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        saliency.saliency(model, torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="n_samples"):
        smoothgrad(model, seeded_image(1, 4), n_samples=0)
    with pytest.raises(ValueError, match="baseline"):
        integrated_gradients(model, seeded_image(1, 4), baseline=torch.zeros(1, 3, 5, 5))
    with pytest.raises(ValueError, match="class_idx"):
        saliency.saliency(model, seeded_image(1, 4), 7)


# --------------------------------------------------------------------------- sanity checks
def _named_tensors(model):
    found = dict(model.named_buffers())
    found.update({n: p.detach() for n, p in model.named_parameters()})
    return found


def test_randomize_layers_changes_exactly_the_named_layers_of_a_copy():
    model = load_model("efficientnet_lite0")
    before = snapshot(model)
    state = {n: t.clone() for n, t in _named_tensors(model).items()}
    rng_state = torch.random.get_rng_state()
    names = ["classifier", "features.17", "features.16"]
    copy_ = sanity.randomize_layers(model, names, generator=torch.Generator().manual_seed(0))
    assert differences(model, before, grads=True) == [] and copy_ is not model
    assert torch.equal(torch.random.get_rng_state(), rng_state), "the global generator moved"
    for name, tensor in _named_tensors(copy_).items():
        inside = any(name.startswith(n + ".") for n in names)
        if not inside:
            assert torch.equal(tensor, state[name]), name
        elif name.endswith(("running_var", "bn0.weight", "bn1.weight", "bn2.weight")):
            assert torch.equal(tensor, torch.ones_like(tensor)), name            # BatchNorm's defaults
        elif name.endswith(("running_mean", "bn0.bias", "bn1.bias", "bn2.bias")):
            assert torch.equal(tensor, torch.zeros_like(tensor)), name
        elif tensor.is_floating_point():
            assert not torch.equal(tensor, state[name]), name
    assert not copy_.training and copy_.classifier[1].weight.requires_grad


def test_randomize_layers_draws_each_layers_default_init_reproducibly():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    a, b = (sanity.randomize_layers(model, ["fc", "layer4"], torch.Generator().manual_seed(3)) for _ in range(2))
    c = sanity.randomize_layers(model, ["fc", "layer4"], torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.fc.weight, c.fc.weight)
    fresh = nn.Linear(512, 10)  # the default init: kaiming_uniform(a=sqrt(5)), U(-1/sqrt(512), 1/sqrt(512))
    assert stats.ks_2samp(a.fc.weight.detach().flatten(), fresh.weight.detach().flatten()).pvalue > 1e-3
    assert float(a.fc.weight.abs().max()) <= 1 / 512 ** 0.5
    unseeded = sanity.randomize_layers(model, ["fc"])
    assert not torch.equal(unseeded.fc.weight, model.fc.weight)


def test_randomize_layers_rejects_unknown_names():
    model = Linear()
    with pytest.raises(KeyError, match="Closest names: fc"):
        sanity.randomize_layers(model, ["fcc"])
    with pytest.raises(TypeError, match="list of dotted layer names"):
        sanity.randomize_layers(model, "fc")


@pytest.mark.parametrize("shape", [(16, 16), (3, 8, 5)])
def test_rank_correlation_matches_spearmanr_with_ties(shape):
    rng = np.random.default_rng(0)
    a = np.round(rng.random(shape), 1)                     # many ties
    b = np.round(a + 0.3 * rng.random(shape), 1)
    expected = stats.spearmanr(a.ravel(), b.ravel()).statistic
    assert sanity.rank_correlation(a, b) == pytest.approx(expected, abs=1e-12)
    assert sanity.rank_correlation(torch.from_numpy(a).float(), torch.from_numpy(b)) == pytest.approx(expected, abs=1e-6)
    assert type(sanity.rank_correlation(a, b)) is float
    assert sanity.rank_correlation(a, -a) == pytest.approx(-1.0)


def test_rank_correlation_of_a_constant_map_is_nan_and_shapes_must_match():
    assert np.isnan(sanity.rank_correlation(np.ones((4, 4)), np.arange(16.0).reshape(4, 4)))
    with pytest.raises(ValueError, match="same shape"):
        sanity.rank_correlation(np.zeros((4, 4)), np.zeros((4, 5)))


# --------------------------------------------------------------------------- deletion / insertion
class PixelWeights(nn.Module):
    """Logits (sum over pixels of w_class(pixel) * x): every pixel's contribution is known."""

    def __init__(self, size: int = 5, classes: int = 3, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(classes, 3, size, size, generator=gen))

    def forward(self, x):
        return torch.einsum("nchw,kchw->nk", x, self.w)


def curve_by_hand(model, image, attribution, c, steps, insert):
    h, w = attribution.shape
    order = sorted(range(h * w), key=lambda i: (-float(attribution.flatten()[i]), i))
    probs = []
    for i in range(steps + 1):
        top = set(order[: (i * h * w) // steps])
        mask = torch.tensor([[float((r * w + q) in top) for q in range(w)] for r in range(h)])
        changed = image * mask if insert else image * (1 - mask)
        with torch.no_grad():
            probs.append(float(model(changed).softmax(1)[0, c]))
    return np.array(probs)


@pytest.mark.parametrize("steps", [1, 4, 7, 25])
def test_deletion_and_insertion_curves_by_hand(steps):
    model, x = PixelWeights(), seeded_image(3, 5)
    attribution = torch.round(torch.rand(5, 5, generator=torch.Generator().manual_seed(1)) * 4) / 4  # ties
    for fn, insert in ((faithfulness.deletion_curve, False), (faithfulness.insertion_curve, True)):
        got = fn(model, x, attribution, 1, steps=steps)
        assert isinstance(got, np.ndarray) and got.shape == (steps + 1,)
        np.testing.assert_allclose(got, curve_by_hand(model, x, attribution, 1, steps, insert), atol=1e-6)
    with torch.no_grad():
        p_image = float(model(x).softmax(1)[0, 1])
        p_zero = float(model(torch.zeros_like(x)).softmax(1)[0, 1])
    dele = faithfulness.deletion_curve(model, x, attribution.numpy(), 1, steps)
    ins = faithfulness.insertion_curve(model, x, attribution.numpy(), 1, steps)
    assert dele[0] == pytest.approx(p_image, abs=1e-6) and dele[-1] == pytest.approx(p_zero, abs=1e-6)
    assert ins[0] == pytest.approx(p_zero, abs=1e-6) and ins[-1] == pytest.approx(p_image, abs=1e-6)


def test_curves_need_an_hw_map():
    with pytest.raises(ValueError, match=r"\(H, W\) map"):
        faithfulness.deletion_curve(PixelWeights(), seeded_image(3, 5), torch.zeros(3, 5, 5), 0)


def test_curve_auc_is_the_trapezoid_rule_on_the_unit_interval():
    rng = np.random.default_rng(1)
    for n in (2, 5, 21):
        curve = rng.random(n)
        assert faithfulness.curve_auc(curve) == pytest.approx(np.trapezoid(curve, np.linspace(0, 1, n)))
    assert faithfulness.curve_auc([0.4] * 11) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        faithfulness.curve_auc([1.0])


# --------------------------------------------------------------------------- the real model
@pytest.fixture(scope="module")
def cat():
    model = load_model("efficientnet_lite0")
    return model, preprocess(sample_image("cat", 128), "efficientnet_lite0", size=128)


def test_insertion_and_deletion_rank_the_maps_as_measured(cat):
    """On the cat (128 px): Guided Grad-CAM deletes faster than a random pixel order (smaller
    deletion AUC) and inserts faster (larger insertion AUC), saliency deletes faster; Grad-CAM
    inserts best of all but
    deletes *slower* than random pixels: scattered black pixels are out of distribution and
    destroy the prediction faster than any coherent region (the pitfall the notebook asks about)."""
    model, x = cat
    layer = get_layer(model, "features.17")
    maps = {"random": torch.rand(128, 128, generator=torch.Generator().manual_seed(0)),
            "grad_cam": grad_cam(model, layer, x, 285),
            "guided_grad_cam": guided_grad_cam(model, layer, x, 285).abs().amax(0),
            "saliency": saliency.saliency(model, x, 285)}
    auc = {k: (faithfulness.curve_auc(faithfulness.deletion_curve(model, x, a, 285)),
               faithfulness.curve_auc(faithfulness.insertion_curve(model, x, a, 285))) for k, a in maps.items()}
    assert auc["guided_grad_cam"][0] < auc["random"][0] and auc["guided_grad_cam"][1] > auc["random"][1], auc
    assert auc["saliency"][0] < auc["random"][0], auc
    assert auc["grad_cam"][1] == max(a[1] for a in auc.values()) and auc["grad_cam"][0] > auc["random"][0], auc


def test_randomizing_the_top_changes_saliency_more_than_guided_backprop(cat):
    """Adebayo et al.'s finding on the real model: after the classifier and the head are
    re-initialized, the gradient map is far from the original, guided backprop hardly moves."""
    model, x = cat
    randomized = sanity.randomize_layers(model, ["classifier", "features.17"], torch.Generator().manual_seed(0))
    gbp = [guided_backprop(m, x, 285).abs().amax(0) for m in (model, randomized)]
    sal = [saliency.saliency(m, x, 285) for m in (model, randomized)]
    assert sanity.rank_correlation(*gbp) > sanity.rank_correlation(*sal) + 0.2
