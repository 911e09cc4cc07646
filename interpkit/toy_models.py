"""Tiny hand-weighted networks whose Grad-CAM can be checked by hand (used by visible tests).

For a network ``features -> global average pooling -> linear``, the score of class c is
``sum_k W[c, k] * mean(A_k)``, so dScore/dA_k = W[c, k] / (h * w) everywhere and Grad-CAM equals
CAM (Zhou et al. 2016): ``ReLU(sum_k W[c, k] A_k)``, upsampled and divided by its max.
"""
from __future__ import annotations

import torch
from torch import nn


class GapLinearNet(nn.Module):
    """``features`` (conv + ReLU) -> global average pooling -> ``head`` (linear).

    ``features`` is the layer to explain; its output A has ``channels`` maps at the input's
    resolution divided by ``stride``.
    """

    def __init__(self, in_channels: int = 3, channels: int = 4, classes: int = 5, stride: int = 4):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(in_channels, channels, stride, stride=stride), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


def identity_cam_net(head_weight: torch.Tensor) -> nn.Module:
    """A GAP + linear net whose explained layer ``features`` (a 1x1 convolution with identity
    weights) outputs its input unchanged: A = the image.

    ``head_weight`` is ``(classes, channels)``; the input must have ``channels`` channels. The
    Grad-CAM of class c on image x is then ``ReLU(sum_k head_weight[c, k] * x[0, k])`` / its max,
    which you can compute by hand.
    """
    classes, channels = head_weight.shape
    net = GapLinearNet(in_channels=channels, channels=channels, classes=classes, stride=1)
    net.features = nn.Conv2d(channels, channels, 1)
    with torch.no_grad():
        net.features.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
        net.features.bias.zero_()
        net.head.weight.copy_(head_weight)
        net.head.bias.zero_()
    return net.eval()


class ConvStack(nn.Module):
    """conv-ReLU-conv-ReLU-(explained layer ``block``)-conv-GAP-MLP: gradients that vary in space."""

    def __init__(self, classes: int = 7, width: int = 8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU())
        self.top = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.Tanh())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Linear(width, 16), nn.Tanh(), nn.Linear(16, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.top(self.block(self.stem(x)))
        return self.head(torch.flatten(self.pool(x), 1))
