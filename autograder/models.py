"""The networks and inputs the checks run on, built once per grading kernel and seeded.

- hand-built nets from :mod:`interpkit.toy_models` (GAP + linear: Grad-CAM equals CAM exactly);
- torchvision's VGG16, ResNet50 and InceptionV3 architectures with random weights, at small
  input sizes (VGG16's 100M-parameter classifier is replaced by a small one: the layers Grad-CAM
  uses are untouched);
- the real EfficientNet-Lite0 (ImageNet weights, offline) on real photos.

The cases travel to the student's kernel (pickled by the grader, :mod:`autograder.remote`), so
everything a case holds is built from torchvision and :mod:`interpkit` (importable there) or is a
closure defined here (sent by value).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import torchvision
from torch import nn

from interpkit import get_layer, load_model, preprocess, sample_image, two_objects
from interpkit.featureviz import objectives
from interpkit.toy_models import ConvStack, GapLinearNet

from .reference_cache import cached


@dataclass(frozen=True)
class Case:
    """One graded call: ``model``, the dotted ``layer`` name, ``image`` (1, 3, H, W), class."""

    label: str
    model: nn.Module
    layer_name: str
    image: torch.Tensor
    class_idx: int | None

    @property
    def layer(self) -> nn.Module:
        return get_layer(self.model, self.layer_name)


def _seeded_image(seed: int, height: int, width: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(1, 3, height, width, generator=gen)


@lru_cache(maxsize=None)
def gap_linear(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return GapLinearNet(channels=6, classes=5, stride=4).eval()


@lru_cache(maxsize=None)
def conv_stack(seed: int, train_mode: bool = False, frozen_stem: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    net = ConvStack(classes=7)
    if frozen_stem:  # mixed requires_grad flags must survive the call
        net.stem.requires_grad_(False)
    return net.train(train_mode)  # no dropout/BatchNorm: train mode is deterministic here


@lru_cache(maxsize=None)
def small_vgg16() -> nn.Module:
    torch.manual_seed(16)
    with torch.device("meta"):
        net = torchvision.models.vgg16()
    net.features = _vgg16_features()  # the meta-device features are replaced by real ones
    net.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, 10))
    return net.eval()


def _vgg16_features() -> nn.Module:
    # Same layers (and names, features.0 ... features.30) as torchvision's VGG16.
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["D"])
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return features


@lru_cache(maxsize=None)
def small_resnet50() -> nn.Module:
    torch.manual_seed(50)
    return torchvision.models.resnet50(num_classes=10).eval()


@lru_cache(maxsize=None)
def small_inception_v3() -> nn.Module:
    torch.manual_seed(3)
    return torchvision.models.inception_v3(num_classes=10, aux_logits=False, init_weights=True,
                                           transform_input=True).eval()


@lru_cache(maxsize=None)
def real_model() -> nn.Module:
    return load_model("efficientnet_lite0", device="cpu")  # grading stays on the CPU, deterministic


@lru_cache(maxsize=None)
def real_inputs() -> dict[str, torch.Tensor]:
    def compute():
        composite = two_objects(112)
        return {
            "cat photo": preprocess(sample_image("cat"), "efficientnet_lite0"),
            "coffee photo": preprocess(sample_image("coffee", 160), "efficientnet_lite0", size=160),
            "cat+coffee composite": preprocess(composite, "efficientnet_lite0", size=composite.shape[:2]),
        }
    return cached(("real_inputs",), compute)


def hand_built_cases() -> list[Case]:
    """GAP + linear nets (Grad-CAM = CAM) and a conv stack, incl. train mode and frozen weights."""
    return [
        Case("GAP+linear net A, 32x32 image, class 2", gap_linear(0), "features", _seeded_image(1, 32, 32), 2),
        Case("GAP+linear net B, 24x40 image, class 4", gap_linear(1), "features", _seeded_image(2, 24, 40), 4),
        Case("conv stack, 32x32, class 5", conv_stack(2), "block", _seeded_image(3, 32, 32), 5),
        Case("conv stack in train mode, 40x24, class 1", conv_stack(3, train_mode=True), "block",
             _seeded_image(4, 40, 24), 1),
        Case("conv stack with frozen stem, 32x32, class 0", conv_stack(4, frozen_stem=True), "block",
             _seeded_image(5, 32, 32), 0),
    ]


def architecture_cases() -> list[Case]:
    """Random-init torchvision architectures at small input sizes, explicit classes."""
    return [
        Case("VGG16 (random init), 64x64, class 3", small_vgg16(), "features.29", _seeded_image(6, 64, 64), 3),
        Case("ResNet50 (random init), 96x64, class 7", small_resnet50(), "layer4", _seeded_image(7, 96, 64), 7),
        Case("ResNet50 (random init), layer3, 64x64, class 2", small_resnet50(), "layer3",
             _seeded_image(8, 64, 64), 2),
        Case("InceptionV3 (random init), 139x139, class 6", small_inception_v3(), "Mixed_7c",
             _seeded_image(9, 139, 139), 6),
    ]


def top1_cases() -> list[Case]:
    """``class_idx=None`` cases: the top-1 class must be explained."""
    inputs = real_inputs()
    return [
        Case("conv stack, class_idx=None", conv_stack(5), "block", _seeded_image(10, 32, 32), None),
        Case("ResNet50 (random init), class_idx=None", small_resnet50(), "layer4", _seeded_image(11, 64, 64), None),
        Case("EfficientNet-Lite0, cat photo, class_idx=None", real_model(), "features.17", inputs["cat photo"], None),
    ]


def real_cases() -> list[Case]:
    """The real EfficientNet-Lite0 on photos, for the photo's class and for a second class."""
    inputs = real_inputs()
    model = real_model()
    return [
        Case("EfficientNet-Lite0, cat photo, class 285 (Egyptian cat)", model, "features.17", inputs["cat photo"], 285),
        Case("EfficientNet-Lite0, coffee photo 160px, class 967 (espresso)", model, "features.15",
             inputs["coffee photo"], 967),
        Case("EfficientNet-Lite0, composite, class 967 (espresso)", model, "features.17",
             inputs["cat+coffee composite"], 967),
        Case("EfficientNet-Lite0, composite, class 285 (Egyptian cat)", model, "features.17",
             inputs["cat+coffee composite"], 285),
    ]


# --------------------------------------------------------------------------- L2A1 cases
def _channel(c: int):
    return lambda acts: acts[:, c].mean()


def _centre_neuron(c: int):
    return lambda acts: acts[:, c, acts.shape[2] // 2, acts.shape[3] // 2].mean()


_mean_square = objectives.mean_squared_activation  # importable in the student's kernel (the cases travel there)


@dataclass(frozen=True)
class VisualizeCase:
    """One ``visualize`` call; ``param()`` makes a fresh, identically seeded parameterization.
    ``kind``: ``"exact"`` (no transforms), ``"transform"`` (a deterministic transform: exact too)
    or ``"gain"`` (the standard random transforms: judged by the objective's rise)."""

    label: str
    model: nn.Module
    layer: object
    objective: object
    param: object
    transforms: object
    steps: int
    lr: float
    kind: str


def deterministic_transform():
    """Pad, scale and rotate with no randomness (one option each): a student who ignores the
    transforms follows another trajectory, one who applies them follows the reference's."""
    from interpkit.featureviz import compose, pad, random_rotate, random_scale

    return compose([pad(4), random_scale([1.1]), random_rotate([5.0])])


def visualize_cases() -> list[VisualizeCase]:
    from interpkit.featureviz import STANDARD_TRANSFORMS, pixel_image

    def seeded(make, size, seed):
        return lambda: make(size, generator=torch.Generator().manual_seed(seed))

    small, small_train, real = conv_stack(7), conv_stack(8, train_mode=True), real_model()
    fixed = deterministic_transform()
    return [
        VisualizeCase("conv stack, channel 3, pixel image 24 px, no transforms, 12 steps",
                      small, small.block, _channel(3), seeded(pixel_image, 24, 1), None, 12, 0.05, "exact"),
        VisualizeCase("EfficientNet-Lite0 features.4, channel 5, FFT image 48 px, no transforms, 10 steps",
                      real, get_layer(real, "features.4"), _channel(5), seeded(_fft, 48, 2), None, 10, 0.05, "exact"),
        VisualizeCase("conv stack in train mode, channel 1, FFT 32 px, a deterministic pad + scale + rotate, "
                      "10 steps", small_train, small_train.block, _channel(1), seeded(_fft, 32, 5), fixed, 10,
                      0.05, "transform"),
        VisualizeCase("EfficientNet-Lite0 features.17:pre_relu, channel 2, FFT 40 px, a deterministic pad + scale "
                      "+ rotate, 8 steps", real, get_layer(real, "features.17:pre_relu"), _channel(2),
                      seeded(_fft, 40, 6), fixed, 8, 0.05, "transform"),
        VisualizeCase("EfficientNet-Lite0 features.7, centre neuron of channel 10, FFT 64 px, "
                      "standard transforms, 24 steps", real, get_layer(real, "features.7"), _centre_neuron(10),
                      seeded(_fft, 64, 3), STANDARD_TRANSFORMS, 24, 0.05, "gain"),
        VisualizeCase("conv stack in train mode, DeepDream objective, FFT 40 px, standard transforms, 16 steps",
                      small_train, small_train.block, _mean_square, seeded(_fft, 40, 4), STANDARD_TRANSFORMS, 16,
                      0.05, "gain"),
    ]


def _fft(size, generator=None):
    from interpkit.featureviz import fft_image

    return fft_image(size, generator=generator)


@dataclass(frozen=True)
class DeepDreamCase:
    """One ``deepdream`` call; ``real``: on the real model (its objective's rise is graded too)."""

    label: str
    model: nn.Module
    layer: object
    photo: object  # (H, W, 3) float array in [0, 1]
    steps: int
    step_size: float
    octaves: int
    octave_scale: float
    real: bool = False


def deepdream_cases() -> list[DeepDreamCase]:
    real, small = real_model(), conv_stack(9)
    return [
        DeepDreamCase("EfficientNet-Lite0 features.4, cat photo 64 px, 2 octaves x 4 steps",
                      real, get_layer(real, "features.4"), sample_image("cat", 64), 4, 0.05, 2, 1.4, real=True),
        DeepDreamCase("conv stack, coffee photo 48 px, 2 octaves x 5 steps", small, small.block,
                      sample_image("coffee", 48), 5, 0.05, 2, 1.5),
        DeepDreamCase("conv stack, cat photo 44 x 60 px, 3 octaves (scale 1.3) x 3 steps", small, small.block,
                      sample_image("cat", (44, 60)), 3, 0.03, 3, 1.3),
    ]
