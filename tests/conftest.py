"""Shared fixtures. Tests never download weights: random weights are allowed explicitly."""
import os

os.environ.setdefault("INTERPKIT_ALLOW_RANDOM_WEIGHTS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

# Parallel workers (pytest -n 2) on 2 cores: one thread each. Oversubscribed OpenMP threads spin
# and made the suite 10x slower; kernels started by nbgrader inherit OMP_NUM_THREADS.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def real_model():
    """EfficientNet-Lite0 with its real ImageNet weights (offline), eval mode."""
    from interpkit import load_model

    return load_model("efficientnet_lite0")
