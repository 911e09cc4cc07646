"""What hidden tests call (instructor only): one check per graded function.

Each check runs the student's function and the reference in :mod:`solutions` on seeded cases,
prints a partial-credit report to stdout and returns the points earned as a float (the last value
of an nbgrader test cell).

L2A1 (feature visualization): :func:`check_channel_objective`, :func:`check_neuron_objective`,
:func:`check_deepdream_objective`, :func:`check_jitter`, :func:`check_visualize`, :func:`check_deepdream`.

L2A2 (Grad-CAM): :func:`check_grad_cam`, :func:`check_counterfactual_grad_cam`,
:func:`check_target_layers`, :func:`check_threshold_segmentation`, :func:`check_localization_box`.

Importing this package seals :mod:`autograder.integrity` (snapshot of the grading code and the
libraries it compares with, plus an audit hook that undoes changes before every cell) if the grading
kernel (:mod:`autograder.kernel`) has not already done so before any student code ran.
"""
from .featureviz import (check_channel_objective, check_deepdream, check_deepdream_objective, check_jitter,
                         check_neuron_objective, check_visualize)
from .gradcam import check_counterfactual_grad_cam, check_grad_cam, check_target_layers
from .segmentation import check_localization_box, check_threshold_segmentation
from . import integrity

__all__ = ["check_channel_objective", "check_counterfactual_grad_cam", "check_deepdream",
           "check_deepdream_objective", "check_grad_cam", "check_jitter", "check_localization_box",
           "check_neuron_objective", "check_target_layers", "check_threshold_segmentation",
           "check_visualize"]

# Last, so that the snapshot holds the finished package. Protection wherever checks run; without the
# grading kernel this snapshot may postdate student code (see autograder.integrity): weaker, but
# better than none.
integrity.seal()
