"""Feature visualization (Lucid-style, pure PyTorch): what makes a neuron, a channel or a layer fire.

Four small pieces, kept apart as in Lucid/lucent, plus DeepDream:

- :mod:`~interpkit.featureviz.param`       image parameterizations: ``pixel_image``, ``fft_image``
  (Fourier, ``1/f`` scaled, decorrelated colour); ``p.parameters()`` and ``p()`` ->
  ``(N, 3, H, W)`` in ``[0, 1]``
- :mod:`~interpkit.featureviz.transforms`  random ``(images, generator)`` transforms: ``pad``,
  ``jitter``, ``random_scale``, ``random_rotate``, ``compose``, ``STANDARD_TRANSFORMS``
- :mod:`~interpkit.featureviz.objectives`  ``acts -> scalar`` objectives to maximize: ``channel``,
  ``neuron``, ``deepdream``, ``diversity``; ``+``, ``-``, ``* float``, ``.batch(i)``
- :mod:`~interpkit.featureviz.render`      ``render`` (activation maximization), ``render_layer``
  (all channels of a layer as one batch), ``visualize_steps`` (snapshots along the way)
- :mod:`~interpkit.featureviz.deepdream`   ``deepdream`` on a photo (octaves, jitter, normalized steps)

Example::

    from interpkit import load_model
    from interpkit.featureviz import objectives, render

    model = load_model("googlenet")
    images = render(model, "inception4c", objectives.channel(97), steps=256)  # (1, 128, 128, 3)

Every function leaves the model as it found it (weights, gradients, requires_grad, train/eval
mode, hooks) and draws its randomness from a seeded ``torch.Generator`` (``seed=0``).
"""
from . import objectives, param, transforms
from .deepdream import deepdream
from .objectives import Objective, as_objective, channel, diversity, neuron, objective_from
from .param import ImageParam, fft_image, pixel_image
from .render import render, render_layer, visualize_steps
from .transforms import (STANDARD_TRANSFORMS, compose, jitter, jitter_crop, pad, random_rotate,
                         random_scale)

__all__ = ["STANDARD_TRANSFORMS", "ImageParam", "Objective", "as_objective", "channel", "compose",
           "deepdream", "diversity", "fft_image", "jitter", "jitter_crop", "neuron",
           "objective_from", "objectives", "pad", "param", "pixel_image", "random_rotate",
           "random_scale", "render", "render_layer", "transforms", "visualize_steps"]
