"""Grad-CAM (Selvaraju et al., arXiv 1610.02391) and its counterfactual variant: the L2A2 references.

The algorithm lives in the toolbox (:mod:`interpkit.gradcam`, one source of truth: L2A3's Guided
Grad-CAM uses it too); this module adds the L2A2 answer that is not an algorithm, the target
layers, and names the references the checks compare with.
"""
from __future__ import annotations

from interpkit.gradcam import (cam_from_gradient, counterfactual_grad_cam, grad_cam,
                               grad_cam_and_counterfactual, grad_cam_batch, layer_output_and_gradient)
from interpkit.models import REGISTRY

#: The last convolutional block of each network (its output is Grad-CAM's ``A``).
TARGET_LAYERS: dict[str, str] = {name: REGISTRY[name].gradcam_layer
                                 for name in ("vgg16", "resnet50", "inception_v3")}

__all__ = ["TARGET_LAYERS", "cam_from_gradient", "counterfactual_grad_cam", "grad_cam",
           "grad_cam_and_counterfactual", "grad_cam_batch", "layer_output_and_gradient"]
