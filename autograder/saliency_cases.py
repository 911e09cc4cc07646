"""The L2A3 checks' seeded cases: networks and inputs built once per grading process.

- hand-built nets: a linear model (the gradient is its weight row: saliency and IG known
  exactly), :class:`interpkit.toy_models.ConvStack` (ReLU and Tanh; in train mode; with a frozen
  stem) and :class:`~interpkit.toy_models.GapLinearNet`;
- torchvision's ResNet18 (a ReLU module called twice per block, in place) and SqueezeNet1.1
  (in-place ReLUs feeding concatenations) with random weights at 64 px;
- the real EfficientNet-Lite0 (ImageNet weights, offline; ReLU6 activations) on photos: the cat
  at 128 px (class 285, Egyptian cat, p = 0.996) and the coffee cup at 160 px (967, espresso).

Everything a case holds travels to the student's kernel (pickled by the grader): torch,
torchvision and :mod:`interpkit` objects only. Images are contiguous ``(1, 3, H, W)`` tensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import torch
import torchvision
from torch import nn

from interpkit import get_layer, preprocess, sample_image
from interpkit.toy_models import ConvStack, GapLinearNet

from . import models
from .reference_cache import cached


@dataclass(frozen=True)
class MapCase:
    """One call of an attribution function: ``fn(model, [layer,] image, class_idx, **options)``.

    ``options`` are extra keyword arguments (``n_samples``, ``baseline``, ``steps``...); ``seed``,
    when set, adds ``generator=torch.Generator().manual_seed(seed)`` (a fresh one per call)."""

    label: str
    model: nn.Module
    image: torch.Tensor
    class_idx: int | None
    layer_name: str | None = None
    options: dict = field(default_factory=dict)
    seed: int | None = None

    @property
    def layer(self) -> nn.Module:
        return get_layer(self.model, self.layer_name)

    def args(self) -> tuple:
        head = (self.model, self.layer) if self.layer_name is not None else (self.model,)
        return (*head, self.image.clone(), self.class_idx)

    def kwargs(self) -> dict:
        found = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in self.options.items()}
        if self.seed is not None:
            found["generator"] = torch.Generator().manual_seed(self.seed)
        return found


def seeded_image(seed: int, height: int, width: int | None = None) -> torch.Tensor:
    return torch.randn(1, 3, height, width or height, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- networks
@lru_cache(maxsize=None)
def linear_net(seed: int, size: int = 8, classes: int = 5) -> nn.Module:
    """``Flatten -> Linear``: d y_c / d x is the weight row of c, the same everywhere."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, classes)).eval()


@lru_cache(maxsize=None)
def mlp_net(seed: int, size: int = 6, classes: int = 4) -> nn.Module:
    """``Flatten -> Linear -> ReLU -> Linear``: guided backprop differs from the gradient."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, 24), nn.ReLU(), nn.Linear(24, classes)).eval()


def conv_stack(seed: int, train_mode: bool = False, frozen_stem: bool = False) -> nn.Module:
    return models.conv_stack(seed, train_mode, frozen_stem)


@lru_cache(maxsize=None)
def gap_linear(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return GapLinearNet(channels=6, classes=5, stride=2).eval()


@lru_cache(maxsize=None)
def resnet18() -> nn.Module:
    torch.manual_seed(18)
    return torchvision.models.resnet18(num_classes=10).eval()


@lru_cache(maxsize=None)
def squeezenet() -> nn.Module:
    torch.manual_seed(11)
    return torchvision.models.squeezenet1_1(num_classes=10).eval()


def real_model() -> nn.Module:
    return models.real_model()


@lru_cache(maxsize=None)
def photos() -> dict[str, torch.Tensor]:
    def compute():
        return {"cat": preprocess(sample_image("cat", 128), "efficientnet_lite0", size=128),
                "coffee": preprocess(sample_image("coffee", 160), "efficientnet_lite0", size=160)}
    return cached(("l2a3 photos",), compute)


def _cat(label: str = "EfficientNet-Lite0, cat photo 128 px, class 285", **kw) -> MapCase:
    return MapCase(label, real_model(), photos()["cat"], kw.pop("class_idx", 285), **kw)


def _coffee(label: str = "EfficientNet-Lite0, coffee photo 160 px, class 967", **kw) -> MapCase:
    return MapCase(label, real_model(), photos()["coffee"], kw.pop("class_idx", 967), **kw)


# --------------------------------------------------------------------------- saliency
def saliency_cases() -> dict[str, list[MapCase]]:
    """``{"hand", "archs", "real", "top1"}`` cases of ``saliency`` (and guided backprop)."""
    return {
        "hand": [MapCase("linear net, 8x8, class 2", linear_net(0), seeded_image(1, 8), 2),
                 MapCase("conv stack in train mode, 32x32, class 5", conv_stack(21, train_mode=True),
                         seeded_image(2, 32), 5),
                 MapCase("conv stack with frozen stem, 24x40, class 1", conv_stack(22, frozen_stem=True),
                         seeded_image(3, 24, 40), 1)],
        "archs": [MapCase("ResNet18 (random init), 64x64, class 7", resnet18(), seeded_image(4, 64), 7),
                  MapCase("SqueezeNet1.1 (random init), 64x64, class 3", squeezenet(), seeded_image(5, 64), 3)],
        "real": [_cat(), _coffee()],
        "top1": [MapCase("conv stack, class_idx=None", conv_stack(23), seeded_image(6, 32), None),
                 _cat("EfficientNet-Lite0, cat photo, class_idx=None", class_idx=None)],
    }


def smoothgrad_cases() -> dict[str, list[MapCase]]:
    few = {"n_samples": 4, "noise_level": 0.15}
    return {
        "hand": [MapCase("linear net, 8x8, class 1, 6 samples, noise 0.2", linear_net(1), seeded_image(7, 8), 1,
                         options={"n_samples": 6, "noise_level": 0.2}, seed=1),
                 MapCase("conv stack in train mode, 32x32, class 5, 8 samples, noise 0.3",
                         conv_stack(21, train_mode=True), seeded_image(8, 32), 5,
                         options={"n_samples": 8, "noise_level": 0.3}, seed=2)],
        "defaults": [MapCase("conv stack, 24x24, class 2, default n_samples=25 and noise_level=0.15",
                             conv_stack(24), seeded_image(9, 24), 2, seed=3)],
        "archs": [MapCase("ResNet18 (random init), 64x64, class 7, 4 samples", resnet18(), seeded_image(4, 64), 7,
                          options=few, seed=4),
                  MapCase("SqueezeNet1.1 (random init), 64x64, class 3, 4 samples, noise 0.1", squeezenet(),
                          seeded_image(5, 64), 3, options={"n_samples": 4, "noise_level": 0.1}, seed=5)],
        "real": [_cat("EfficientNet-Lite0, cat photo 128 px, class 285, 4 samples", options=few, seed=6)],
        "top1": [MapCase("conv stack, class_idx=None, 5 samples", conv_stack(23), seeded_image(6, 32), None,
                         options={"n_samples": 5, "noise_level": 0.15}, seed=7)],
    }


def integrated_gradients_cases() -> dict[str, list[MapCase]]:
    blur = torch.nn.functional.avg_pool2d(seeded_image(11, 32), 5, 1, 2)
    return {
        "hand": [MapCase("linear net, 8x8, class 3, 10 steps (IG is exact)", linear_net(2), seeded_image(10, 8), 3,
                         options={"steps": 10}),
                 MapCase("conv stack in train mode, 32x32, class 5, 20 steps", conv_stack(21, train_mode=True),
                         seeded_image(2, 32), 5, options={"steps": 20}),
                 MapCase("GAP+linear net, 16x16, class 4, default steps=50", gap_linear(3), seeded_image(12, 16), 4)],
        "baseline": [MapCase("linear net, 8x8, class 0, random baseline, 6 steps", linear_net(2), seeded_image(13, 8), 0,
                             options={"baseline": seeded_image(14, 8), "steps": 6}),
                     MapCase("conv stack, 32x32, class 6, blurred-image baseline, 16 steps", conv_stack(25),
                             seeded_image(11, 32), 6, options={"baseline": blur, "steps": 16})],
        "archs": [MapCase("ResNet18 (random init), 64x64, class 7, 8 steps", resnet18(), seeded_image(4, 64), 7,
                          options={"steps": 8}),
                  MapCase("SqueezeNet1.1 (random init), 64x64, class 3, 8 steps", squeezenet(), seeded_image(5, 64), 3,
                          options={"steps": 8})],
        "real": [_cat("EfficientNet-Lite0, cat photo 128 px, class 285, 8 steps", options={"steps": 8})],
        "completeness": [MapCase("conv stack, 24x24, class 2, 128 steps", conv_stack(24), seeded_image(9, 24), 2,
                                 options={"steps": 128}),
                         MapCase("linear net, 8x8, class 4, random baseline, 3 steps", linear_net(3),
                                 seeded_image(15, 8), 4, options={"baseline": seeded_image(16, 8), "steps": 3})],
        "top1": [MapCase("conv stack, class_idx=None, 12 steps", conv_stack(23), seeded_image(6, 32), None,
                         options={"steps": 12})],
    }


def guided_backprop_cases() -> dict[str, list[MapCase]]:
    return {
        "hand": [MapCase("MLP with a ReLU, 6x6, class 1", mlp_net(0), seeded_image(17, 6), 1),
                 MapCase("conv stack in train mode, 32x32, class 5", conv_stack(21, train_mode=True),
                         seeded_image(2, 32), 5),
                 MapCase("GAP+linear net, 16x16, class 2", gap_linear(4), seeded_image(18, 16), 2)],
        "archs": [MapCase("ResNet18 (random init), 64x64, class 7", resnet18(), seeded_image(4, 64), 7),
                  MapCase("SqueezeNet1.1 (random init), 64x64, class 3", squeezenet(), seeded_image(5, 64), 3)],
        "real": [_cat(), _coffee()],
        "top1": [MapCase("MLP with a ReLU, class_idx=None", mlp_net(1), seeded_image(19, 6), None),
                 _cat("EfficientNet-Lite0, cat photo, class_idx=None", class_idx=None)],
    }


def guided_grad_cam_cases() -> dict[str, list[MapCase]]:
    return {
        "hand": [MapCase("conv stack, layer block, 32x32, class 5", conv_stack(26), seeded_image(20, 32), 5, "block"),
                 MapCase("GAP+linear net, layer features, 16x16, class 2", gap_linear(4), seeded_image(18, 16), 2,
                         "features")],
        "archs": [MapCase("ResNet18 (random init), layer4, 64x64, class 7", resnet18(), seeded_image(4, 64), 7, "layer4"),
                  MapCase("SqueezeNet1.1 (random init), features.12, 64x64, class 3", squeezenet(),
                          seeded_image(5, 64), 3, "features.12")],
        "real": [_cat("EfficientNet-Lite0, features.17, cat photo 128 px, class 285", layer_name="features.17"),
                 _coffee("EfficientNet-Lite0, features.15, coffee photo 160 px, class 967", layer_name="features.15")],
        "top1": [MapCase("conv stack, layer block, class_idx=None", conv_stack(23), seeded_image(6, 32), None, "block"),
                 _cat("EfficientNet-Lite0, features.17, cat photo, class_idx=None", class_idx=None,
                      layer_name="features.17")],
    }


# --------------------------------------------------------------------------- sanity checks
@dataclass(frozen=True)
class RandomizeCase:
    """``randomize_layers(model, layer_names, generator=torch.Generator().manual_seed(seed))``."""

    label: str
    model: nn.Module
    layer_names: tuple[str, ...]
    seed: int


def randomize_cases() -> list[RandomizeCase]:
    return [
        RandomizeCase("conv stack, ['head']", conv_stack(27), ("head",), 1),
        RandomizeCase("conv stack with frozen stem, ['top', 'head']", conv_stack(28, frozen_stem=True), ("top", "head"), 2),
        RandomizeCase("ResNet18 (random init), ['fc', 'layer4']", resnet18(), ("fc", "layer4"), 3),
        RandomizeCase("EfficientNet-Lite0, ['classifier', 'features.17', 'features.16']", real_model(),
                      ("classifier", "features.17", "features.16"), 4),
    ]


def rank_cases() -> list[tuple[str, object, object]]:
    """``(label, map_a, map_b)``: arrays and tensors, with and without ties."""
    gen = torch.Generator().manual_seed(31)
    a, b = torch.rand(12, 12, generator=gen), torch.rand(12, 12, generator=gen)
    saliency_like = torch.relu(torch.randn(3, 10, 8, generator=gen))        # many zeros: ties
    flat = torch.round(torch.rand(16, 16, generator=gen) * 5) / 5             # 6 values only
    return [
        ("two random 12x12 tensors (no ties)", a, b),
        ("a map and a noisy copy, numpy arrays (no ties)", a.numpy(), (a + 0.3 * b).double().numpy()),
        ("a map and its negation", b, -b),
        ("ReLU'd (3, 10, 8) maps with many zeros (ties)", saliency_like, torch.relu(saliency_like + 0.5 * torch.randn(3, 10, 8, generator=gen))),
        ("16x16 maps with 6 distinct values (ties), numpy float32", flat.numpy(), torch.round(flat * 2).numpy()),
    ]


# --------------------------------------------------------------------------- deletion / insertion
@dataclass(frozen=True)
class CurveCase:
    """``curve(model, image, attribution, class_idx, steps=steps)`` (``steps=None``: the default)."""

    label: str
    model: nn.Module
    image: torch.Tensor
    attribution: object
    class_idx: int
    steps: int | None


def curve_cases() -> dict[str, list[CurveCase]]:
    gen = torch.Generator().manual_seed(41)
    tied = torch.round(torch.rand(6, 6, generator=gen) * 3)                    # 4 values: ties by index
    photo = photos()["cat"]
    return {
        "hand": [CurveCase("linear net 8x8, class 2, a map with ties, 4 steps", linear_net(4), seeded_image(42, 8),
                           torch.round(torch.rand(8, 8, generator=gen) * 3), 2, 4),
                 CurveCase("linear net 6x6 (36 pixels), class 1, 7 steps (uneven counts)", linear_net(5, size=6),
                           seeded_image(43, 6), tied.numpy(), 1, 7),
                 CurveCase("conv stack 16x16, class 3, random map, 16 steps", conv_stack(29), seeded_image(44, 16),
                           torch.rand(16, 16, generator=gen), 3, 16)],
        "defaults": [CurveCase("conv stack 12x12, class 0, default steps=20", conv_stack(30), seeded_image(45, 12),
                               torch.rand(12, 12, generator=gen).numpy(), 0, None)],
        "real": [CurveCase("EfficientNet-Lite0, cat photo 128 px, class 285, a blob map, 10 steps", real_model(), photo,
                           _blob(128, 128, 50, 70), 285, 10),
                 CurveCase("EfficientNet-Lite0, cat photo 128 px, class 285, a random map, 8 steps", real_model(), photo,
                           torch.rand(128, 128, generator=gen), 285, 8)],
    }


def _blob(height: int, width: int, cy: float, cx: float) -> torch.Tensor:
    y = torch.arange(height, dtype=torch.float32)[:, None]
    x = torch.arange(width, dtype=torch.float32)[None, :]
    return torch.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * 20.0 ** 2))


def auc_cases() -> list[tuple[str, object]]:
    gen = torch.Generator().manual_seed(51)
    return [("a list of 2 points", [0.2, 0.9]),
            ("21 points (numpy)", torch.rand(21, generator=gen).double().numpy()),
            ("11 points (a tensor)", torch.rand(11, generator=gen)),
            ("a constant curve of 6 points", [0.3] * 6)]
