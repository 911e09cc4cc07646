"""Shared fixtures. Tests never download weights: random weights are allowed explicitly."""
import os

os.environ.setdefault("INTERPKIT_ALLOW_RANDOM_WEIGHTS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def real_model():
    """EfficientNet-Lite0 with its real ImageNet weights (offline), eval mode."""
    from interpkit import load_model

    return load_model("efficientnet_lite0")
