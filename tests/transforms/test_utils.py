"""Array helpers of the transforms: window counts (the integral-image definition, the fast kernel, and
Algorithm 1's loop agree), bounding boxes and distance boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_imbalance.transforms import _window_kernels
from monai_imbalance.transforms import utils as utils_module
from monai_imbalance.transforms.utils import (
    bounding_box,
    integral_image_counts,
    window_foreground_counts,
    window_start_grid,
)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_window_counts_equal_algorithm_1(mask_cases, brute_force_counts, data):
    """The definition (integral image), the kernel and the public function against a loop over windows."""
    mask, roi, stride = data.draw(mask_cases(max_side=14, with_rho=False, values=4))
    expected = brute_force_counts(mask, roi, stride)
    np.testing.assert_array_equal(integral_image_counts(mask, roi, stride), expected)
    np.testing.assert_array_equal(_window_kernels.piece_window_counts(mask, roi, stride), expected)
    np.testing.assert_array_equal(window_foreground_counts(mask, roi, stride), expected)


@pytest.mark.parametrize(
    "shape, roi, stride",
    [
        ((600, 7), (600, 3), (1, 2)),  # one window taller than 255 rows (the kernel's byte sums must be split)
        ((700, 20), (512, 5), (100, 3)),  # irregular cuts, pieces > 255
        ((1000, 3), (300, 1), (700, 1)),  # stride larger than the ROI
        ((520, 5, 3), (260, 2, 3), (1, 1, 1)),
        ((300, 1100), (256, 40), (7, 64)),
        ((96, 128), (32, 32), (16, 16)),
        ((12, 10, 256), (4, 3, 128), (4, 2, 64)),
        ((300, 64), (300, 32), (1, 32)),  # piece sums up to 255 * 32
    ],
)
@pytest.mark.parametrize("dtype", [bool, "uint8 0/1", np.uint8, np.int8, np.float64])
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_kernel_equals_definition_on_long_pieces(shape, roi, stride, dtype, layout, brute_force_counts):
    # bool and 0/1 bytes are summed as they are; class indices are converted one run of rows at a time
    rng = np.random.default_rng(0)
    values = rng.integers(1, 2, shape) if dtype == "uint8 0/1" else rng.integers(0, 3, shape)
    mask = (values * (rng.random(shape) < 0.7)).astype(np.uint8 if dtype == "uint8 0/1" else dtype)
    if dtype == np.int8:
        mask = -mask  # negative labels are still non-zero
    if layout == "strided":
        mask = np.repeat(mask, 2, axis=-1)[..., ::2]  # neither C nor Fortran contiguous
    else:
        mask = np.asarray(mask, order=layout)
    expected = brute_force_counts(mask, roi, stride)
    np.testing.assert_array_equal(integral_image_counts(mask, roi, stride), expected)
    np.testing.assert_array_equal(_window_kernels.piece_window_counts(mask, roi, stride), expected)


def test_large_masks_take_the_kernel_with_the_same_counts(monkeypatch):
    rng = np.random.default_rng(1)
    binary = (rng.random((64, 48, 20)) < 0.3).astype(np.uint8)
    expected = integral_image_counts(binary, (16, 8, 8), (4, 4, 4))
    calls = []
    kernel = _window_kernels.piece_window_counts
    monkeypatch.setattr(_window_kernels, "piece_window_counts", lambda *a: calls.append(1) or kernel(*a))
    np.testing.assert_array_equal(window_foreground_counts(binary, (16, 8, 8), 4), expected)
    assert not calls  # below KERNEL_MIN_PIXELS: the definition
    monkeypatch.setattr(utils_module, "KERNEL_MIN_PIXELS", binary.size)
    for mask in (binary, binary * 255, binary.astype(bool), np.asfortranarray(binary), torch.as_tensor(binary)):
        np.testing.assert_array_equal(window_foreground_counts(mask, (16, 8, 8), 4), expected)
    assert len(calls) == 6  # the Fortran-ordered mask recurses once, on its C-ordered transpose


def test_window_counts_int_roi_and_stride_and_grid():
    mask = np.zeros((10, 12), dtype=np.uint8)
    mask[0:4, 0:4] = 1
    mask[6:10, 8:12] = 1
    # starts 0, 4 (rows) and 0, 4, 8 (columns): the two squares each fill one window exactly
    np.testing.assert_array_equal(window_foreground_counts(mask, 4, 4), [[16, 0, 0], [0, 0, 8]])
    starts = window_start_grid((10, 12), (4, 4), (4, 4))
    assert [s.tolist() for s in starts] == [[0, 4], [0, 4, 8]]


def test_window_counts_roi_larger_than_image_is_empty_grid():
    counts = window_foreground_counts(np.ones((5, 5)), (6, 2), 1)
    assert counts.shape == (0, 4) and counts.dtype == np.int64


def test_window_counts_rejects_bad_arguments():
    with pytest.raises(ValueError, match="stride must be >= 1"):
        window_foreground_counts(np.ones((5, 5)), 2, 0)
    with pytest.raises(ValueError, match="roi_size must be an int or 2 values"):
        window_foreground_counts(np.ones((5, 5)), (2, 2, 2), 1)


def test_bounding_box_is_find_objects_of_the_mask():
    mask = np.zeros((6, 7, 5), dtype=np.uint8)
    mask[1:3, 2, 4] = 3
    mask[4, 5, 1] = 1
    assert bounding_box(mask) == (slice(1, 5), slice(2, 6), slice(1, 5))
    assert bounding_box(mask.astype(bool)[:, ::-1]) == (slice(1, 5), slice(1, 5), slice(1, 5))
    assert bounding_box(np.zeros((3, 3), dtype=bool)) is None


@pytest.mark.parametrize("split_pixels, max_boxes", [(1 << 22, 256), (0, 256), (0, 2)])
@pytest.mark.parametrize("spacing", [None, (1.0, 2.5)])
def test_exact_distance_boxes_give_whole_image_distances(monkeypatch, split_pixels, max_boxes, spacing):
    """Every strategy (foreground box, per-component boxes, whole image) reproduces the whole-image EDT."""
    from scipy import ndimage

    from monai_imbalance.transforms.utils import erode_by_distance, euclidean_distance, exact_distance_boxes

    monkeypatch.setattr(utils_module, "SPLIT_BOX_PIXELS", split_pixels)
    monkeypatch.setattr(utils_module, "MAX_COMPONENT_BOXES", max_boxes)
    rng = np.random.default_rng(3)
    mask = ndimage.gaussian_filter(rng.random((48, 40)), 2.0) > 0.53
    mask[0, :5] = True  # on the border
    reference = ndimage.distance_transform_edt(mask, sampling=spacing)
    got = np.zeros_like(reference)
    covered = np.zeros(mask.shape, dtype=int)
    for box, select in exact_distance_boxes(mask):
        where = mask[box] if select is None else select
        got[box][where] = euclidean_distance(mask[box], spacing)[where]
        covered[box] += where
    np.testing.assert_array_equal(covered, mask.astype(int))  # every mask pixel exactly once
    np.testing.assert_allclose(got, reference)
    for radius in (0.0, 1.5, 3.0):
        np.testing.assert_array_equal(erode_by_distance(mask, radius, spacing), reference > radius * (1 + 1e-6))
