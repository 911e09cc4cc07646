"""Where tensors live: a GPU when there is one, else the CPU, and always the model's own device.

``load_model`` puts a model on :func:`default_device` (CUDA when available); every toolbox function
that makes tensors for a model (``preprocess``, the image parameterizations of ``render`` and
friends, ``deepdream``) makes them on :func:`model_device` of that model, so the notebooks run
unedited on a Colab GPU. Grading kernels have no GPU: there everything stays on the CPU.
"""
from __future__ import annotations

import torch
from torch import nn


def default_device() -> torch.device:
    """``cuda`` when a CUDA GPU is usable, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); ``cpu`` for a model with neither."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


__all__ = ["default_device", "model_device"]
