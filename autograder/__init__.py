"""What hidden tests call (instructor only): one check per graded function.

Each check runs the student's function and the reference in :mod:`solutions` on seeded cases,
prints a partial-credit report to stdout and returns the points earned as a float (the last value
of an nbgrader test cell).

L2A1 (feature visualization): :func:`check_channel_objective`, :func:`check_neuron_objective`,
:func:`check_deepdream_objective`, :func:`check_jitter`, :func:`check_visualize`, :func:`check_deepdream`.

L2A2 (Grad-CAM): :func:`check_grad_cam`, :func:`check_counterfactual_grad_cam`,
:func:`check_target_layers`, :func:`check_threshold_segmentation`, :func:`check_localization_box`.

L2A3 (saliency and sanity checks): :func:`check_saliency`, :func:`check_smoothgrad`,
:func:`check_integrated_gradients`, :func:`check_guided_backprop`, :func:`check_guided_grad_cam`,
:func:`check_randomize_layers`, :func:`check_rank_correlation`, :func:`check_deletion_curve`,
:func:`check_insertion_curve`, :func:`check_curve_auc`.

Where checks run: while autograding, in the grader's own process (:mod:`grading.trusted_tests`),
the student's functions being proxies into their kernel (:mod:`autograder.remote`); this package
is never importable in a student's kernel. In an instructor's kernel (a source notebook run by
hand), in that kernel, on the notebook's own functions. :data:`TOOLBOX_IMPLEMENTATIONS` says,
per graded name, which toolbox objects implement it (:mod:`autograder.delegation`).
"""
from .featureviz import (TOOLBOX_IMPLEMENTATIONS as _FEATUREVIZ_TOOLBOX, check_channel_objective, check_deepdream,
                         check_deepdream_objective, check_jitter, check_neuron_objective, check_visualize)
from .gradcam import TOOLBOX_IMPLEMENTATIONS as _GRADCAM_TOOLBOX
from .gradcam import check_counterfactual_grad_cam, check_grad_cam, check_target_layers
from .faithfulness import check_curve_auc, check_deletion_curve, check_insertion_curve
from .saliency import (check_guided_backprop, check_guided_grad_cam, check_integrated_gradients, check_saliency,
                       check_smoothgrad)
from .sanity import check_randomize_layers, check_rank_correlation
from .segmentation import check_localization_box, check_threshold_segmentation

#: Graded name -> dotted paths of toolbox objects that implement it (no credit when used).
TOOLBOX_IMPLEMENTATIONS: dict[str, tuple[str, ...]] = {**_FEATUREVIZ_TOOLBOX, **_GRADCAM_TOOLBOX}


def warm_up(test_sources) -> None:
    """Build the seeded cases of every check the given test cells call (models are built once
    per process: the grader does it while the student's kernel runs their first cells)."""
    import re

    names = {m for source in test_sources for m in re.findall(r"\b(check_\w+)\s*\(", source)}
    for name in sorted(names):
        for build in getattr(globals().get(name), "cases", ()):
            build()

__all__ = ["TOOLBOX_IMPLEMENTATIONS", "warm_up", "check_channel_objective", "check_counterfactual_grad_cam", "check_deepdream",
           "check_deepdream_objective", "check_grad_cam", "check_jitter", "check_localization_box",
           "check_neuron_objective", "check_target_layers", "check_threshold_segmentation",
           "check_visualize",
           # L2A3
           "check_curve_auc", "check_deletion_curve", "check_guided_backprop", "check_guided_grad_cam",
           "check_insertion_curve", "check_integrated_gradients", "check_randomize_layers",
           "check_rank_correlation", "check_saliency", "check_smoothgrad"]
