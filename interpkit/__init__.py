"""interpkit: the toolbox students import in the Lecture 2 notebooks.

- :mod:`interpkit.models`   model registry, weights, ImageNet class names
- :mod:`interpkit.images`   sample photos, the two-object composite, pre-processing
- :mod:`interpkit.layers`   ``get_layer`` by dotted name (``"name:pre_relu"``: its pre-activation),
  ``capture`` a layer's output and gradient
- :mod:`interpkit.plotting` ``show_cam`` overlays, ``image_grid``, attribution heatmaps
- :mod:`interpkit.gradcam`  the course's Grad-CAM (L2A3's Guided Grad-CAM builds on it; in L2A2's
                            answers it earns no credit)
- :mod:`interpkit.settings` the random-weights switch and the grading-mode helpers
- :mod:`interpkit.devices`  ``default_device`` (a GPU when there is one), ``model_device``
- :mod:`interpkit.featureviz` feature visualization: parameterizations, transforms, objectives, render, DeepDream
"""
from .devices import default_device, model_device
from .images import preprocess, sample_image, two_objects
from .layers import capture, get_layer
from .models import REGISTRY, imagenet_categories, load_model
from .plotting import image_grid, show_cam
from .settings import fast_or_full, is_grading

__all__ = ["REGISTRY", "capture", "default_device", "model_device", "fast_or_full", "get_layer", "image_grid", "imagenet_categories",
           "is_grading", "load_model", "preprocess", "sample_image", "show_cam", "two_objects"]
