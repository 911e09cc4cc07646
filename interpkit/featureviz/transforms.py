"""Random image transforms applied before every forward pass ("transformation robustness").

A transform is a callable ``transform(images, generator=None) -> images`` on a float batch
``(N, C, H, W)``; it is differentiable in ``images``, and every random choice is drawn from
``generator`` (a :class:`torch.Generator`; ``None`` uses torch's global random state), ONE draw
per call for the whole batch. The output size may differ from the input size (padding grows the
image, jitter crops it, scaling resizes it).

- :func:`pad` ``(w)``: pad ``w`` pixels on every side;
- :func:`jitter` ``(d)``: a random ``(H - d, W - d)`` crop (see :func:`jitter_crop`);
- :func:`random_scale` ``(scales)``: resize by a factor picked from ``scales``;
- :func:`random_rotate` ``(angles)``: rotate by an angle in degrees picked from ``angles``;
- :func:`compose` ``([...])``: apply several in order.

:data:`STANDARD_TRANSFORMS` is Lucid's stack: pad 12 (constant grey 0.5), jitter 8, scale
``1 + (i - 5) / 50`` for ``i`` in ``0..10``, rotate by ``-10..10`` degrees, jitter 4.
"""
from __future__ import annotations

import inspect
import math
from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F

Transform = Callable[..., torch.Tensor]


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"transforms take a batch of images (N, C, H, W); got {got}")


def _randint(high: int, generator: torch.Generator | None) -> int:
    """One integer uniform on ``{0, ..., high - 1}``, drawn with ``torch.randint``."""
    return int(torch.randint(0, high, (1,), generator=generator).item())


def _choice(options: Sequence[float], generator: torch.Generator | None) -> float:
    return float(options[_randint(len(options), generator)])


def jitter_crop(images: torch.Tensor, max_shift: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop of size ``(H - max_shift, W - max_shift)`` from ``images`` ``(N, C, H, W)``.

    One offset for the whole batch, drawn in this order: first ``dy``, then ``dx``, each with
    ``torch.randint(0, max_shift + 1, (1,), generator=generator)`` (uniform on
    ``{0, ..., max_shift}``, both ends included). The crop is ``images[:, :, dy:dy + H - max_shift,
    dx:dx + W - max_shift]``. ``max_shift = 0`` returns the batch unchanged (both draws still
    happen, so the generator advances the same way).
    """
    _check_images(images)
    max_shift = int(max_shift)
    h, w = images.shape[-2:]
    if max_shift < 0 or max_shift >= min(h, w):
        raise ValueError(f"max_shift must lie in [0, {min(h, w) - 1}] for {h}x{w} images; got {max_shift}")
    dy = _randint(max_shift + 1, generator)
    dx = _randint(max_shift + 1, generator)
    return images[:, :, dy:dy + h - max_shift, dx:dx + w - max_shift]


class _Named:
    """A transform with a readable ``repr`` (shown when printing a stack)."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__.lower()}({args})"


class Pad(_Named):
    def __init__(self, width: int, mode: str = "reflect", value: float = 0.5):
        if width < 0:
            raise ValueError(f"pad width must be >= 0; got {width}")
        if mode not in {"reflect", "replicate", "constant", "circular"}:
            raise ValueError(f"mode must be reflect, replicate, constant or circular; got {mode!r}")
        self.width, self.mode, self.value = int(width), mode, float(value)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_images(images)
        w = self.width
        if self.mode == "constant":
            return F.pad(images, (w, w, w, w), mode="constant", value=self.value)
        return F.pad(images, (w, w, w, w), mode=self.mode)


class Jitter(_Named):
    def __init__(self, max_shift: int):
        if max_shift < 0:
            raise ValueError(f"jitter must be >= 0; got {max_shift}")
        self.max_shift = int(max_shift)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return jitter_crop(images, self.max_shift, generator)


class RandomScale(_Named):
    def __init__(self, scales: Sequence[float]):
        self.scales = [float(s) for s in scales]
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"scales must be a non-empty list of positive factors; got {scales!r}")

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_images(images)
        scale = _choice(self.scales, generator)
        h, w = images.shape[-2:]
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        if size == (h, w):
            return images
        return F.interpolate(images, size=size, mode="bilinear", align_corners=False)


class RandomRotate(_Named):
    """Rotation about the image centre; the corners that come from outside are filled by
    reflection (``grid_sample(padding_mode="reflection")``), so no artificial edges appear."""

    def __init__(self, angles: Sequence[float]):
        self.angles = [float(a) for a in angles]
        if not self.angles:
            raise ValueError("angles must be a non-empty list of degrees")

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_images(images)
        angle = _choice(self.angles, generator)
        if angle == 0.0:
            return images
        return rotate(images, angle)


def rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate ``(N, C, H, W)`` by ``degrees`` (counter-clockwise on screen) about the centre, bilinear.

    ``affine_grid`` works in normalized coordinates (``[-1, 1]`` on both axes), so for non-square
    images the rotation matrix is conjugated by the aspect ratio to stay a true rotation in pixels.
    """
    n, _, h, w = images.shape
    a = math.radians(degrees)
    cos, sin = math.cos(a), math.sin(a)
    theta = torch.tensor([[cos, -sin * h / w, 0.0],
                          [sin * w / h, cos, 0.0]], dtype=images.dtype, device=images.device)
    grid = F.affine_grid(theta.expand(n, 2, 3), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class Compose(_Named):
    def __init__(self, transforms: Iterable[Transform]):
        self.transforms = [as_transform(t) for t in transforms]

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for t in self.transforms:
            images = t(images, generator)
        return images

    def __repr__(self) -> str:
        return "compose([" + ", ".join(repr(t) for t in self.transforms) + "])"


class _OneArgument(_Named):
    """Adapts a student's ``f(images)`` (no generator argument) to the two-argument protocol."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        self.fn = fn

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.fn(images)


def _identity(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return images


def as_transform(transforms) -> Transform:
    """Normalize what a user passes as ``transforms`` into one ``(images, generator)`` callable.

    ``None`` or ``[]``: identity; a list/tuple: :func:`compose`; a callable taking two positional
    arguments: itself; a callable taking only ``images``: wrapped (it draws its own randomness).
    """
    if transforms is None:
        return _identity
    if isinstance(transforms, (list, tuple)):
        return Compose(transforms) if transforms else _identity
    if not callable(transforms):
        raise TypeError(f"transforms must be a callable (images, generator) -> images, a list of "
                        f"them, or None; got {type(transforms).__name__}")
    if isinstance(transforms, _Named):
        return transforms
    try:
        params = inspect.signature(transforms).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: assume the full protocol
        return transforms
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    variadic = any(p.kind == p.VAR_POSITIONAL for p in params)
    return transforms if variadic or len(positional) >= 2 else _OneArgument(transforms)


def pad(w: int, mode: str = "reflect", value: float = 0.5) -> Pad:
    """Pad ``w`` pixels on each side; ``mode`` as ``F.pad`` (``"constant"`` fills with ``value``)."""
    return Pad(w, mode=mode, value=value)


def jitter(d: int) -> Jitter:
    """Random crop of ``(H - d, W - d)``, offsets uniform on ``{0..d}`` (see :func:`jitter_crop`)."""
    return Jitter(d)


def random_scale(scales: Sequence[float]) -> RandomScale:
    """Resize (bilinear) by a factor drawn uniformly from ``scales``."""
    return RandomScale(scales)


def random_rotate(angles_degrees: Sequence[float]) -> RandomRotate:
    """Rotate about the centre by an angle (degrees) drawn uniformly from ``angles_degrees``."""
    return RandomRotate(angles_degrees)


def compose(transforms: Iterable[Transform]) -> Compose:
    """Apply ``transforms`` in order, passing the same generator to each."""
    return Compose(transforms)


#: Lucid's ``standard_transforms``.
STANDARD_TRANSFORMS: Compose = compose([
    pad(12, mode="constant", value=0.5),
    jitter(8),
    random_scale([1 + (i - 5) / 50 for i in range(11)]),
    random_rotate(list(range(-10, 11))),
    jitter(4),
])

__all__ = ["STANDARD_TRANSFORMS", "Compose", "Jitter", "Pad", "RandomRotate", "RandomScale",
           "Transform", "as_transform", "compose", "jitter", "jitter_crop", "pad", "random_rotate",
           "random_scale", "rotate"]
