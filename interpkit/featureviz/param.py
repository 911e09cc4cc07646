"""Image parameterizations: the tensors that feature visualization optimizes, and the images they make.

A parameterization is an object with

- ``.parameters()``: the list of leaf tensors to hand to an optimizer (``requires_grad=True``);
- ``__call__()``: the current images, a differentiable float32 tensor ``(N, 3, H, W)`` in ``[0, 1]``.

Two are provided, as in Lucid (Olah et al., "Feature Visualization", Distill 2017):

- :func:`pixel_image`: one free value per pixel and colour, squashed into ``[0, 1]`` by a sigmoid.
  Simple, but gradient ascent fills it with high-frequency noise.
- :func:`fft_image`: the image is described by its Fourier spectrum, each frequency scaled by
  ``1 / frequency ** decay_power``, so that equal steps on the parameters move low frequencies
  much more than high ones (a preconditioner: natural images have a ``1/f`` spectrum); the colours
  are "decorrelated" (each parameter channel is mapped to RGB through the square root of the
  ImageNet colour-correlation matrix) before the sigmoid. It produces far smoother images.

Sizes are a side ``s`` (square ``s x s``) or ``(height, width)``. Random initial values come from
``generator`` (a seeded :class:`torch.Generator` makes them reproducible) or, when it is ``None``,
from torch's global random state; they are drawn on the CPU and then moved to ``device``, so a
seed gives the same image on every device. ``param.to(device)`` moves a parameterization.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

#: Square root of the colour-correlation matrix of ImageNet pixels (from Lucid): column ``k`` is
#: the RGB colour that parameter channel ``k`` adds. Rows = R, G, B.
COLOR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02],
                                       [0.27, 0.00, -0.05],
                                       [0.27, -0.09, 0.03]])
#: The same, divided by its largest column norm (so no parameter channel is amplified).
COLOR_CORRELATION_NORMALIZED = COLOR_CORRELATION_SQRT / COLOR_CORRELATION_SQRT.norm(dim=0).max()

#: Lucid divides the inverse FFT by 4 so that the initial image sits close to grey (0.5).
FFT_OUTPUT_SCALE = 0.25

Size = int | Sequence[int]


def image_size(size: Size) -> tuple[int, int]:
    """``size`` (an int side, or ``(height, width)``) as a ``(height, width)`` tuple of ints >= 1."""
    if isinstance(size, (int, np.integer)):
        h = w = int(size)
    else:
        if len(size) != 2:
            raise ValueError(f"size must be an int or (height, width); got {size!r}")
        h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ValueError(f"image size must be positive; got {(h, w)}")
    return h, w


def decorrelate_colors(images: torch.Tensor) -> torch.Tensor:
    """Map ``(N, 3, H, W)`` decorrelated channels to RGB with :data:`COLOR_CORRELATION_NORMALIZED`."""
    matrix = COLOR_CORRELATION_NORMALIZED.to(dtype=images.dtype, device=images.device)
    return torch.einsum("ck,nkhw->nchw", matrix, images)


class ImageParam:
    """Base class: ``parameters()`` to optimize and ``__call__()`` -> ``(N, 3, H, W)`` in ``[0, 1]``.

    Subclasses set ``self.size`` ``(H, W)``, ``self.batch`` ``N`` and implement :meth:`__call__`.
    """

    size: tuple[int, int]
    batch: int

    def parameters(self) -> list[torch.Tensor]:
        raise NotImplementedError

    def __call__(self) -> torch.Tensor:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return self.parameters()[0].device

    def to(self, device: str | torch.device) -> "ImageParam":
        """Move the parameters (and any constant tensor) to ``device``; returns ``self``."""
        device = torch.device(device)
        for name, value in list(vars(self).items()):
            if isinstance(value, torch.Tensor) and value.device != device:
                moved = value.detach().to(device)
                setattr(self, name, moved.requires_grad_(True) if value.requires_grad else moved)
        return self

    def numpy(self) -> np.ndarray:
        """The current images as a float32 array ``(N, H, W, 3)`` in ``[0, 1]`` (no gradient)."""
        with torch.no_grad():
            return self().detach().permute(0, 2, 3, 1).contiguous().cpu().numpy().astype(np.float32)

    def __repr__(self) -> str:
        h, w = self.size
        return f"{type(self).__name__}(batch={self.batch}, size=({h}, {w}))"


class PixelImage(ImageParam):
    """``sigmoid(decorrelate?(pixels))``: one logit per pixel and channel.

    A sigmoid (not a clamp) keeps the image in ``[0, 1]`` while every pixel still receives a
    gradient; the logits start as ``N(0, sd^2)`` noise, i.e. an image close to uniform grey 0.5.
    """

    def __init__(self, size: Size, batch: int = 1, sd: float = 0.01, decorrelate: bool = False,
                 generator: torch.Generator | None = None, device: str | torch.device = "cpu"):
        self.size, self.batch, self.decorrelate = image_size(size), int(batch), bool(decorrelate)
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1; got {batch}")
        h, w = self.size
        pixels = torch.randn(self.batch, 3, h, w, generator=generator) * sd
        self.pixels = pixels.to(device).requires_grad_(True)

    def parameters(self) -> list[torch.Tensor]:
        return [self.pixels]

    def __call__(self) -> torch.Tensor:
        logits = decorrelate_colors(self.pixels) if self.decorrelate else self.pixels
        return torch.sigmoid(logits)


def rfft_frequencies(height: int, width: int) -> torch.Tensor:
    """Radial frequency (cycles per pixel) of each entry of an ``rfft2`` of an ``(H, W)`` image.

    Shape ``(H, W // 2 + 1)``; 0 at the DC term, at most ``sqrt(0.5)`` (Nyquist in both axes).
    """
    fy = torch.fft.fftfreq(height).view(-1, 1)
    fx = torch.fft.rfftfreq(width).view(1, -1)
    return torch.sqrt(fy ** 2 + fx ** 2)


class FFTImage(ImageParam):
    """An image described by its scaled Fourier spectrum (Lucid's ``fft_image``).

    Parameters: the real and imaginary parts of the spectrum, ``(N, 3, H, W // 2 + 1, 2)``, drawn
    from ``N(0, sd^2)``. Image = ``sigmoid(decorrelate(irfft2(spectrum * scale) / 4))`` with
    ``scale = 1 / max(f, 1 / max(H, W)) ** decay_power`` (``f``: radial frequency in cycles per
    pixel, see :func:`rfft_frequencies`; the DC term gets the lowest non-zero frequency) and an
    orthonormal inverse FFT (``norm="ortho"``), so that a learning rate suited to pixels suits it
    too.
    """

    def __init__(self, size: Size, batch: int = 1, sd: float = 0.01, decay_power: float = 1.0,
                 decorrelate: bool = True, generator: torch.Generator | None = None,
                 device: str | torch.device = "cpu"):
        self.size, self.batch = image_size(size), int(batch)
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1; got {batch}")
        self.decay_power, self.decorrelate = float(decay_power), bool(decorrelate)
        h, w = self.size
        freqs = rfft_frequencies(h, w)
        self.scale = (1.0 / freqs.clamp_min(1.0 / max(h, w)) ** self.decay_power).to(device)  # (H, W//2+1)
        shape = (self.batch, 3, h, w // 2 + 1, 2)
        spectrum = torch.randn(shape, generator=generator) * sd
        self.spectrum = spectrum.to(device).requires_grad_(True)

    def parameters(self) -> list[torch.Tensor]:
        return [self.spectrum]

    def __call__(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        images = torch.fft.irfft2(spectrum, s=self.size, norm="ortho") * FFT_OUTPUT_SCALE
        if self.decorrelate:
            images = decorrelate_colors(images)
        return torch.sigmoid(images)


def pixel_image(size: Size, batch: int = 1, sd: float = 0.01, generator: torch.Generator | None = None,
                decorrelate: bool = False, device: str | torch.device = "cpu") -> PixelImage:
    """Pixel parameterization: ``(batch, 3, H, W)`` logits, image = their sigmoid, in ``[0, 1]``.

    ``sd`` is the standard deviation of the initial logits (0.01: a nearly uniform grey image);
    ``decorrelate=True`` maps the logits through the colour-correlation matrix first; ``device``:
    where the parameters live (pass ``interpkit.model_device(model)``).
    """
    return PixelImage(size, batch=batch, sd=sd, decorrelate=decorrelate, generator=generator, device=device)


def fft_image(size: Size, batch: int = 1, sd: float = 0.01, decay_power: float = 1.0,
              decorrelate: bool = True, generator: torch.Generator | None = None,
              device: str | torch.device = "cpu") -> FFTImage:
    """Fourier parameterization with decorrelated colour (Lucid's default image), see :class:`FFTImage`.

    ``decay_power`` = 1 scales each frequency by ``1/f``; 0 makes it a plain (orthonormal) Fourier
    basis with no preconditioning; ``device``: where the parameters live.
    """
    return FFTImage(size, batch=batch, sd=sd, decay_power=decay_power, decorrelate=decorrelate,
                    generator=generator, device=device)


__all__ = ["COLOR_CORRELATION_NORMALIZED", "COLOR_CORRELATION_SQRT", "FFTImage", "ImageParam",
           "PixelImage", "decorrelate_colors", "fft_image", "image_size", "pixel_image",
           "rfft_frequencies"]
