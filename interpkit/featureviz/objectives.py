"""Objectives: what feature visualization maximizes, as functions of a layer's activations.

An objective is a callable ``acts -> scalar tensor`` where ``acts`` is the layer's output
``(N, C, h, w)``; larger is better (:func:`~interpkit.featureviz.render.render` maximizes it).
The math lives in plain functions (:func:`channel_activation`, :func:`neuron_activation`,
:func:`mean_squared_activation`, :func:`gram_diversity`); the factories (:func:`channel`,
:func:`neuron`, :func:`deepdream`, :func:`diversity`) wrap them into :class:`Objective` objects that
compose like numbers::

    obj = channel(97) + 0.5 * neuron(12) - deepdream()      # sums, scaled by floats
    obj = channel(3).batch(0) + channel(7).batch(1)         # image 0 -> channel 3, image 1 -> 7
    obj = channel(97) + 1e-2 * diversity()                  # a batch of different-looking images

Any plain function ``f(acts, ...)`` becomes an objective with :func:`objective_from` (extra
arguments bound), and render accepts any callable ``acts -> scalar`` directly.
"""
from __future__ import annotations

import numbers
from typing import Callable, Sequence

import torch
import torch.nn.functional as F


def _check_acts(acts: torch.Tensor) -> None:
    if not isinstance(acts, torch.Tensor) or acts.dim() != 4:
        got = tuple(acts.shape) if isinstance(acts, torch.Tensor) else type(acts).__name__
        raise ValueError(f"objectives take a convolutional layer's activations (N, C, h, w); got {got}")


def _check_channel(acts: torch.Tensor, channel: int) -> int:
    channels = acts.shape[1]
    if not -channels <= int(channel) < channels:
        raise IndexError(f"channel {channel} does not exist: the layer has {channels} channels")
    return int(channel)


# --------------------------------------------------------------------------- the math
def channel_activation(acts: torch.Tensor, channel: int) -> torch.Tensor:
    """Mean activation of ``channel`` over the batch and all positions: ``acts[:, c].mean()``."""
    _check_acts(acts)
    return acts[:, _check_channel(acts, channel)].mean()


def neuron_activation(acts: torch.Tensor, channel: int, y: int | None = None,
                      x: int | None = None) -> torch.Tensor:
    """Activation of ``channel`` at position ``(y, x)``, averaged over the batch.

    ``y``/``x`` default to the centre: ``h // 2`` and ``w // 2``.
    """
    _check_acts(acts)
    h, w = acts.shape[-2:]
    y = h // 2 if y is None else int(y)
    x = w // 2 if x is None else int(x)
    if not (0 <= y < h and 0 <= x < w):
        raise IndexError(f"position (y={y}, x={x}) lies outside the {h}x{w} activation map")
    return acts[:, _check_channel(acts, channel), y, x].mean()


def mean_squared_activation(acts: torch.Tensor) -> torch.Tensor:
    """DeepDream's objective: the mean of the squared activations of the whole layer."""
    _check_acts(acts)
    return acts.pow(2).mean()


def gram_diversity(acts: torch.Tensor) -> torch.Tensor:
    """Minus the mean cosine similarity between the Gram matrices of distinct images (Lucid).

    Gram matrix of image ``n``: ``G_n = A_n A_n^T`` with ``A_n`` = ``acts[n]`` as ``(C, h*w)``.
    Returns ``-mean_{i != j} <G_i, G_j> / (|G_i| |G_j|)``, in ``[-1, 1]`` (0 for a batch of one).
    Maximizing it pushes the images of a batch towards different styles.
    """
    _check_acts(acts)
    n, c = acts.shape[:2]
    if n < 2:
        return acts.sum() * 0.0
    flat = acts.reshape(n, c, -1)
    grams = torch.bmm(flat, flat.transpose(1, 2)).reshape(n, -1)
    grams = F.normalize(grams, dim=1, eps=1e-10)
    similarity = grams @ grams.T
    off_diagonal = similarity.sum() - similarity.diagonal().sum()
    return -off_diagonal / (n * (n - 1))


def channel_per_image(acts: torch.Tensor, channels: Sequence[int]) -> torch.Tensor:
    """``sum_i mean(acts[i, channels[i]])``: image ``i`` of the batch is scored on its own channel.

    Equal to ``sum(channel(c).batch(i) for i, c in enumerate(channels))`` in one indexing operation;
    needs ``len(channels) == N``.
    """
    _check_acts(acts)
    index = torch.as_tensor(list(channels), dtype=torch.long, device=acts.device)
    if index.numel() != acts.shape[0]:
        raise ValueError(f"{index.numel()} channels for a batch of {acts.shape[0]} images")
    for c in index.tolist():
        _check_channel(acts, c)
    return acts[torch.arange(acts.shape[0], device=acts.device), index].mean(dim=(1, 2)).sum()


def neuron_per_image(acts: torch.Tensor, channels: Sequence[int]) -> torch.Tensor:
    """``sum_i acts[i, channels[i], h // 2, w // 2]``: the centre neuron of each image's own channel."""
    _check_acts(acts)
    h, w = acts.shape[-2:]
    return channel_per_image(acts[:, :, h // 2:h // 2 + 1, w // 2:w // 2 + 1], channels)


# --------------------------------------------------------------------------- composition
class Objective:
    """A callable ``acts -> scalar`` that supports ``+``, ``-``, ``*``/``/`` by numbers and :meth:`batch`.

    ``Objective(fn, name)`` wraps any ``fn(acts) -> scalar tensor``; ``name`` is shown by ``repr``.
    Sums with plain callables work too (they are wrapped). ``sum([...])`` works (starts at 0).
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], name: str | None = None):
        if not callable(fn):
            raise TypeError(f"an objective wraps a callable acts -> scalar; got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "objective")

    def __call__(self, acts: torch.Tensor) -> torch.Tensor:
        return self.fn(acts)

    def __repr__(self) -> str:
        return f"Objective({self.name})"

    # arithmetic ---------------------------------------------------------------
    def __add__(self, other) -> "Objective":
        if isinstance(other, numbers.Number):
            return Objective(lambda acts: self(acts) + other, f"{self.name} + {other}")
        other = as_objective(other)
        return Objective(lambda acts: self(acts) + other(acts), f"{self.name} + {other.name}")

    def __radd__(self, other) -> "Objective":
        if isinstance(other, numbers.Number):
            return self if other == 0 else self + other  # sum([...]) starts at 0
        return as_objective(other) + self

    def __neg__(self) -> "Objective":
        return Objective(lambda acts: -self(acts), f"-({self.name})")

    def __sub__(self, other) -> "Objective":
        if isinstance(other, numbers.Number):
            return self + (-other)
        return self + (-as_objective(other))

    def __rsub__(self, other) -> "Objective":
        return (-self) + other

    def __mul__(self, other) -> "Objective":
        if isinstance(other, numbers.Number):
            return Objective(lambda acts: self(acts) * other, f"{other} * ({self.name})")
        other = as_objective(other)
        return Objective(lambda acts: self(acts) * other(acts), f"({self.name}) * ({other.name})")

    __rmul__ = __mul__

    def __truediv__(self, other) -> "Objective":
        if not isinstance(other, numbers.Number):
            return NotImplemented
        return self * (1.0 / other)

    # per-image ----------------------------------------------------------------
    def batch(self, i: int) -> "Objective":
        """The same objective applied to image ``i`` of the batch only: ``self(acts[i:i+1])``."""
        i = int(i)

        def on_image(acts: torch.Tensor) -> torch.Tensor:
            if not 0 <= i < acts.shape[0]:
                raise IndexError(f"batch index {i} out of range for a batch of {acts.shape[0]} images")
            return self(acts[i:i + 1])

        return Objective(on_image, f"{self.name}.batch({i})")


def as_objective(obj) -> Objective:
    """``obj`` as an :class:`Objective` (plain callables ``acts -> scalar`` are wrapped)."""
    if isinstance(obj, Objective):
        return obj
    if callable(obj):
        return Objective(obj)
    raise TypeError(f"an objective must be a callable acts -> scalar; got {type(obj).__name__}")


def objective_from(fn: Callable[..., torch.Tensor], *args, **kwargs) -> Objective:
    """Bind extra arguments of a plain function: ``objective_from(f, 5)(acts) == f(acts, 5)``."""
    bound = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    name = f"{getattr(fn, '__name__', 'objective')}({bound})"
    return Objective(lambda acts: fn(acts, *args, **kwargs), name)


# --------------------------------------------------------------------------- factories
def channel(c: int) -> Objective:
    """Maximize the mean activation of channel ``c`` (:func:`channel_activation`)."""
    return Objective(lambda acts: channel_activation(acts, c), f"channel({c})")


def neuron(c: int, y: int | None = None, x: int | None = None) -> Objective:
    """Maximize channel ``c`` at ``(y, x)`` (the centre by default) (:func:`neuron_activation`)."""
    where = "" if y is None and x is None else f", y={y}, x={x}"
    return Objective(lambda acts: neuron_activation(acts, c, y, x), f"neuron({c}{where})")


def deepdream() -> Objective:
    """Maximize the mean squared activation of the whole layer (:func:`mean_squared_activation`)."""
    return Objective(mean_squared_activation, "deepdream()")


def diversity() -> Objective:
    """Reward images of a batch whose Gram matrices differ (:func:`gram_diversity`)."""
    return Objective(gram_diversity, "diversity()")


def channels_per_image(channels: Sequence[int], neuron: bool = False) -> Objective:
    """Image ``i`` maximizes channel ``channels[i]`` (its centre neuron if ``neuron``): one batch,
    many channels (:func:`channel_per_image`)."""
    channels = [int(c) for c in channels]
    fn = neuron_per_image if neuron else channel_per_image
    label = "neurons" if neuron else "channels"
    return Objective(lambda acts: fn(acts, channels), f"{label}_per_image({channels})")


__all__ = ["Objective", "as_objective", "channel", "channel_activation", "channel_per_image",
           "channels_per_image", "deepdream", "diversity", "gram_diversity",
           "mean_squared_activation", "neuron", "neuron_activation", "neuron_per_image",
           "objective_from"]
