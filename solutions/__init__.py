"""Reference implementations of every function students write (instructor only).

- :mod:`solutions.gradcam`        L2A2: Grad-CAM, counterfactual Grad-CAM, target layers
- :mod:`solutions.segmentation`   L2A2: threshold segmentation, the paper's localization box
- :mod:`solutions.saliency`       L2A3: saliency, SmoothGrad, Integrated Gradients, guided backprop, Guided Grad-CAM
- :mod:`solutions.sanity`         L2A3: ``randomize_layers`` (cascading randomization), ``rank_correlation``
- :mod:`solutions.faithfulness`   L2A3: deletion and insertion curves, their area
- :mod:`solutions.featureviz`     L2A1: objectives, jitter, visualize (activation maximization), DeepDream
"""
