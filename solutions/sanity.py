"""The model-randomization sanity check (Adebayo et al., *Sanity Checks for Saliency Maps*,
NeurIPS 2018), the L2A3 references: :func:`randomize_layers` (a copy of the model whose named
layers are re-initialized, for the cascading randomization from the top) and
:func:`rank_correlation` (how similar a map stays to the original one).
"""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
from scipy import stats
from torch import nn

from interpkit.layers import get_layer


def randomize_layers(model: nn.Module, layer_names: Sequence[str],
                     generator: torch.Generator | None = None) -> nn.Module:
    """A deep copy of ``model`` whose layers named in ``layer_names`` (dotted names, as in
    ``model.named_modules()``) get freshly initialized weights: every sub-module of each named
    layer that has a ``reset_parameters`` method calls it (each layer's own default
    initialization; BatchNorm's running statistics are reset with it). Everything else, modes
    and ``requires_grad`` included, is copied as it is; the caller's ``model`` is untouched.

    The new weights are drawn from a seed taken from ``generator`` (torch's global generator
    when None), with the global generator's state saved and restored around the draw: the same
    generator state gives the same copy.
    """
    if isinstance(layer_names, str) or not all(isinstance(n, str) for n in layer_names):
        raise TypeError(f"layer_names must be a list of dotted layer names, e.g. ['classifier', 'features.17']; "
                        f"got {layer_names!r}")
    randomized = copy.deepcopy(model)
    layers = [get_layer(randomized, name) for name in layer_names]  # a KeyError lists close names
    seed = int(torch.randint(0, 2 ** 62, (), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in layers:
            for module in layer.modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()
    return randomized


def _flat(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64).ravel()


def rank_correlation(map_a, map_b) -> float:
    """Spearman's rank correlation of two maps of the same shape (tensors or arrays): the Pearson
    correlation of their values' ranks, tied values sharing their average rank. NaN when a map is
    constant (no ranking exists)."""
    shape_a, shape_b = tuple(np.shape(map_a)), tuple(np.shape(map_b))
    if shape_a != shape_b:
        raise ValueError(f"the maps must have the same shape; got {shape_a} and {shape_b}")
    a, b = stats.rankdata(_flat(map_a)), stats.rankdata(_flat(map_b))
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


__all__ = ["randomize_layers", "rank_correlation"]
