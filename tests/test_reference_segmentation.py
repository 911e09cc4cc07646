"""solutions.segmentation: threshold segmentation and the paper's localization box, on maps built
by hand so that the expected mask and box are known exactly."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from solutions.segmentation import localization_box, threshold_segmentation


def rand_image(h=6, w=8, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).random((h, w, 3)).astype(dtype)


# --------------------------------------------------------------------------- threshold_segmentation
def test_threshold_mask_includes_equality_and_zeroes_outside():
    image = rand_image(2, 3) * 0.9 + 0.1  # strictly positive: zeros can only come from the mask
    cam = np.array([[0.0, 0.5, 0.49999],
                    [1.0, 0.5000001, 0.25]])
    segmented, mask = threshold_segmentation(image, cam, 0.5)
    expected = np.array([[False, True, False],
                         [True, True, False]])
    assert mask.dtype == np.bool_ and mask.shape == (2, 3)
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(segmented[expected], image[expected])  # kept exactly
    assert np.all(segmented[~expected] == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threshold_keeps_dtype_and_shape(dtype):
    image = rand_image(5, 7, dtype)
    cam = np.random.default_rng(1).random((5, 7))
    segmented, mask = threshold_segmentation(image, cam, 0.3)
    assert segmented.shape == image.shape and segmented.dtype == image.dtype
    assert mask.shape == (5, 7)
    np.testing.assert_array_equal(segmented, np.where((cam >= 0.3)[..., None], image, 0))
    assert not np.shares_memory(segmented, image)  # a new array, the input is not modified


def test_threshold_extremes():
    image = rand_image()
    cam = np.random.default_rng(2).random((6, 8))
    segmented, mask = threshold_segmentation(image, cam, 0.0)
    assert mask.all() and np.array_equal(segmented, image)
    segmented, mask = threshold_segmentation(image, cam, 1.01)
    assert not mask.any() and not segmented.any()


def test_threshold_monotone_in_threshold():
    image, cam = rand_image(), np.random.default_rng(3).random((6, 8))
    sizes = [threshold_segmentation(image, cam, t)[1].sum() for t in np.linspace(0, 1, 11)]
    assert sizes == sorted(sizes, reverse=True)


def test_threshold_accepts_torch_cam():
    image = rand_image(4, 4)
    cam = torch.linspace(0, 1, 16).reshape(4, 4)
    segmented, mask = threshold_segmentation(image, cam, 0.5)
    np.testing.assert_array_equal(mask, cam.numpy() >= 0.5)
    assert segmented.shape == (4, 4, 3)


def test_threshold_size_mismatch_raises():
    with pytest.raises(ValueError, match=r"differ in size"):
        threshold_segmentation(rand_image(6, 8), np.zeros((8, 6)), 0.5)
    with pytest.raises(ValueError, match=r"2-D map"):
        threshold_segmentation(rand_image(6, 8), np.zeros((1, 6, 8)), 0.5)


# --------------------------------------------------------------------------- localization_box
def test_box_single_blob_inclusive():
    cam = np.zeros((10, 12))
    cam[2:5, 3:9] = 1.0  # rows 2..4, cols 3..8
    assert localization_box(cam) == (2, 3, 4, 8)


def test_box_single_pixel_is_inclusive():
    cam = np.zeros((5, 5))
    cam[3, 1] = 0.7
    assert localization_box(cam) == (3, 1, 3, 1)


def test_box_returns_python_ints():
    cam = np.zeros((5, 5))
    cam[1:3, 1:4] = 1
    box = localization_box(cam)
    assert all(type(v) is int for v in box)


def test_box_largest_of_several_regions():
    cam = np.zeros((20, 20))
    cam[0:2, 0:2] = 1.0        # 4 px, the highest values
    cam[10:15, 5:12] = 0.6     # 35 px: the largest
    cam[18:20, 15:20] = 0.8    # 10 px
    assert localization_box(cam, 0.15) == (10, 5, 14, 11)


def test_box_is_tight_around_a_non_convex_region():
    cam = np.zeros((12, 12))
    cam[2, 2:10] = 1.0   # an L shape: top bar ...
    cam[2:11, 9] = 1.0   # ... and right leg
    cam[6, 0] = 1.0      # a lone pixel elsewhere
    assert localization_box(cam) == (2, 2, 10, 9)


def test_box_diagonal_pixels_are_connected():
    cam = np.zeros((10, 10))
    for i in range(6):
        cam[i, i] = 1.0        # a diagonal chain: ONE 6-px region with 8-connectivity
    cam[8:10, 0:2] = 1.0       # a 4-px block (the largest region with 4-connectivity)
    assert localization_box(cam) == (0, 0, 5, 5)


def test_box_corner_touching_blocks_merge():
    cam = np.zeros((10, 10))
    cam[0:2, 0:2] = 1.0        # 4 px
    cam[2:4, 2:4] = 1.0        # 4 px, touching the first only at a corner: one 8-px region
    cam[6:9, 7:9] = 1.0        # 6 px: beats each 4-px block alone, loses to the merged 8 px
    assert localization_box(cam) == (0, 0, 3, 3)


def test_box_threshold_is_relative_to_the_max():
    cam = np.zeros((8, 8))
    cam[1:3, 1:3] = 0.4     # peak 4 px
    cam[4:8, 0:8] = 0.15    # 32 px at 0.15: >= 0.3 * 0.4 = 0.12, but < 0.3 in absolute terms
    assert localization_box(cam, 0.3) == (4, 0, 7, 7)
    assert localization_box(cam, 0.5) == (1, 1, 2, 2)  # 0.5 * 0.4 = 0.2 > 0.15
    # scaling the map does not move the box
    assert localization_box(cam * 2.5, 0.3) == localization_box(cam, 0.3)


def test_box_threshold_includes_equality():
    cam = np.zeros((6, 6))
    cam[0, 0] = 1.0
    cam[3:6, 3:6] = 0.25    # exactly threshold * max
    assert localization_box(cam, 0.25) == (3, 3, 5, 5)
    assert localization_box(cam, 0.2500001) == (0, 0, 0, 0)


def test_box_default_threshold_is_0_15():
    cam = np.zeros((6, 6))
    cam[0, 0] = 1.0
    cam[2:6, 2:6] = 0.15
    assert localization_box(cam) == localization_box(cam, 0.15) == (2, 2, 5, 5)
    cam[2:6, 2:6] = 0.149
    assert localization_box(cam) == (0, 0, 0, 0)


def test_box_accepts_torch_tensors():
    cam = torch.zeros(9, 7)
    cam[4:8, 1:3] = 0.9
    assert localization_box(cam) == (4, 1, 7, 2)
    assert localization_box(cam.double(), 0.5) == (4, 1, 7, 2)


def test_box_rejects_non_2d():
    with pytest.raises(ValueError, match=r"2-D map"):
        localization_box(np.zeros((1, 4, 4)))
