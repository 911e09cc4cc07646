"""Checks for ``threshold_segmentation`` and ``localization_box`` (numpy side, seeded cases)."""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage

from solutions import segmentation as reference

from .report import Report, graded
from .student_call import call


def _segmentation_cases() -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    rng = np.random.default_rng(2024)
    cases = []
    for i, (h, w, thr) in enumerate([(16, 16, 0.5), (20, 12, 0.3), (9, 31, 0.75), (32, 32, 0.0)]):
        image = rng.random((h, w, 3))
        cam = np.round(rng.random((h, w)), 2)  # many pixels exactly at the threshold
        cam.flat[: max(1, cam.size // 10)] = thr
        cases.append((f"{h}x{w} image, threshold {thr}", image, cam, thr))
    image = rng.random((8, 8, 3)).astype(np.float32)
    cases.append(("float32 image, threshold 1.0", image, np.eye(8, dtype=np.float32), 1.0))
    return cases


@graded
def check_threshold_segmentation(threshold_segmentation: Callable, points: float = 2) -> float:
    """Grade ``threshold_segmentation(image, cam, threshold) -> (segmented, mask)``."""
    report = Report("threshold_segmentation")
    mask_prop = report.add("mask = cam >= threshold (bool (H, W), equality included)", points / 2)
    seg_prop = report.add("segmented keeps the image where the mask is true, 0 elsewhere", points / 2)
    for label, image, cam, thr in _segmentation_cases():
        want_seg, want_mask = reference.threshold_segmentation(image, cam, thr)
        outcome = call(threshold_segmentation, image.copy(), cam.copy(), thr)
        if outcome.error:
            mask_prop.fail(f"{label}: raised {outcome.error}")
            seg_prop.fail(f"{label}: raised {outcome.error}")
            continue
        try:
            seg, mask = outcome.value
        except Exception:  # noqa: BLE001
            mask_prop.fail(f"{label}: expected a tuple (segmented, mask), got {type(outcome.value).__name__}")
            seg_prop.fail(f"{label}: expected a tuple (segmented, mask)")
            continue
        if not (isinstance(seg, np.ndarray) and isinstance(mask, np.ndarray)):
            # The contract is numpy in, numpy out (a torch tensor has no numpy dtype to match).
            msg = (f"{label}: expected numpy arrays, got ({type(seg).__name__}, "
                   f"{type(mask).__name__}); return np.ndarray (e.g. tensor.numpy())")
            mask_prop.fail(msg)
            seg_prop.fail(msg)
            continue
        if mask.shape != want_mask.shape:
            mask_prop.fail(f"{label}: mask shape {mask.shape}, expected {want_mask.shape}")
        elif not np.array_equal(mask.astype(bool), want_mask):
            hint = ("your mask is inverted" if np.array_equal(~mask.astype(bool), want_mask) else
                    "pixels exactly at the threshold must be kept (>=, not >)"
                    if np.array_equal(mask.astype(bool), cam > thr) else "wrong pixels selected")
            mask_prop.fail(f"{label}: {int((mask.astype(bool) != want_mask).sum())} pixels differ; {hint}")
        else:
            mask_prop.expect(mask.dtype == bool, f"{label}: mask dtype {mask.dtype}, expected bool")
        if seg_prop.expect(seg.shape == want_seg.shape and np.allclose(seg, want_seg, atol=1e-6),
                           f"{label}: segmented image differs from image * mask "
                           f"(shape {seg.shape}, expected {want_seg.shape})"):
            seg_prop.expect(seg.dtype == image.dtype,
                            f"{label}: segmented has dtype {seg.dtype}, expected the image's "
                            f"{image.dtype}")
    return report.finish()


def _blob(shape, top, left, bottom, right, value) -> np.ndarray:
    cam = np.zeros(shape)
    cam[top:bottom + 1, left:right + 1] = value
    return cam


def _box_cases():
    rng = np.random.default_rng(7)
    smooth = ndimage.gaussian_filter(rng.random((40, 48)), 4)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    two = _blob((30, 30), 2, 3, 8, 9, 1.0) + _blob((30, 30), 15, 12, 27, 25, 0.6)
    diagonal = np.zeros((20, 20))
    for i in range(4, 12):
        diagonal[i, i] = 1.0  # one 8-connected region of 8 pixels
    diagonal[16:19, 1:3] = 0.9  # a 6-pixel 4-connected block elsewhere
    return {
        "single": [("one blob", _blob((24, 24), 5, 7, 12, 19, 1.0), 0.15),
                   ("smooth random map", smooth, 0.15)],
        "relative": [("map with max 0.4 (threshold is 15% of the max)", 0.4 * smooth, 0.15),
                     ("blob of 0.3 on a 0.05 floor, threshold 0.5", _blob((20, 25), 4, 4, 9, 14, 0.25) + 0.05, 0.5)],
        "largest": [("two regions, the larger one dimmer", two, 0.15),
                    ("three regions", two + _blob((30, 30), 20, 0, 22, 1, 1.0), 0.15)],
        "connectivity": [("diagonal line (8-connected) vs a smaller block", diagonal, 0.15)],
    }


@graded
def check_localization_box(localization_box: Callable, points: float = 2) -> float:
    """Grade ``localization_box(cam, threshold=0.15) -> (top, left, bottom, right)``."""
    report = Report("localization_box")
    groups = _box_cases()
    props = {
        "single": report.add("box around a single region (inclusive indices)", points / 4),
        "relative": report.add("threshold relative to the map's maximum", points / 4),
        "largest": report.add("only the largest connected region counts", points / 4),
        "connectivity": report.add("8-connectivity (diagonal neighbours are connected)", points / 4),
    }
    for group, cases in groups.items():
        for label, cam, thr in cases:
            want = reference.localization_box(cam, thr)
            outcome = call(localization_box, cam.copy(), thr)
            if outcome.error:
                props[group].fail(f"{label}: raised {outcome.error}")
                continue
            try:
                got = tuple(int(v) for v in outcome.value)
            except Exception:  # noqa: BLE001
                props[group].fail(f"{label}: expected 4 integers, got {outcome.value!r}")
                continue
            props[group].expect(got == want, f"{label}: got {got}, expected {want} (top, left, bottom, right)")
    return report.finish()
