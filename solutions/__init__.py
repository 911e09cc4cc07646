"""Reference implementations of every function students write (instructor only).

- :mod:`solutions.gradcam`        L2A2: Grad-CAM, counterfactual Grad-CAM, target layers
- :mod:`solutions.segmentation`   L2A2: threshold segmentation, the paper's localization box
- :mod:`solutions.featureviz`     L2A1: objectives, jitter, visualize (activation maximization), DeepDream
"""
