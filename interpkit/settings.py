"""Environment switches shared by notebooks, solutions and the autograder.

Two switches exist, both read from the environment so that nbgrader's kernels inherit them:

- ``INTERPKIT_ALLOW_RANDOM_WEIGHTS=1``: when pretrained torchvision weights are not in the
  torch cache and cannot be downloaded, build the architecture with random weights (one warning)
  instead of raising :class:`interpkit.models.WeightsUnavailableError`. Tests and CI set it.
- ``NBGRADER_EXECUTION`` (set by nbgrader itself while it runs a notebook): exploratory cells use
  smaller settings so that autograding stays fast on a laptop CPU.
"""
from __future__ import annotations

import os

RANDOM_WEIGHTS_ENV = "INTERPKIT_ALLOW_RANDOM_WEIGHTS"


def random_weights_allowed() -> bool:
    """True when the explicit random-weights switch is set to a true value (1/true/yes)."""
    return os.environ.get(RANDOM_WEIGHTS_ENV, "").strip().lower() in {"1", "true", "yes"}


def is_grading() -> bool:
    """True while nbgrader executes the notebook (autograde or validate)."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def fast_or_full(fast, full):
    """Return ``fast`` while nbgrader grades the notebook, ``full`` otherwise.

    Exploratory cells use it for step counts and image sizes, e.g.
    ``steps = fast_or_full(32, 512)``.
    """
    return fast if is_grading() else full
