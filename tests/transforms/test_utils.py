from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_imbalance.transforms.utils import window_foreground_counts, window_start_grid


def brute_force_counts(mask, roi, stride):
    """Algorithm 1 of the MAC paper: loop over windows, count non-zero pixels."""
    starts = [range(0, n - r + 1, s) for n, r, s in zip(mask.shape, roi, stride)]
    out = np.zeros([len(s) for s in starts], dtype=np.int64)
    for index in itertools.product(*[range(len(s)) for s in starts]):
        window = tuple(slice(s[i], s[i] + r) for s, i, r in zip(starts, index, roi))
        out[index] = np.count_nonzero(mask[window])
    return out


@st.composite
def mask_roi_stride(draw):
    ndim = draw(st.sampled_from([2, 3]))
    shape = tuple(draw(st.integers(1, 14)) for _ in range(ndim))
    roi = tuple(draw(st.integers(1, n)) for n in shape)
    stride = tuple(draw(st.integers(1, 6)) for _ in range(ndim))
    seed = draw(st.integers(0, 2**31))
    density = draw(st.floats(0.0, 1.0))
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 4, shape) * (rng.random(shape) < density)
    return values.astype(draw(st.sampled_from([np.uint8, np.int32, np.float32, bool]))), roi, stride


@settings(max_examples=150, deadline=None)
@given(mask_roi_stride())
def test_window_counts_equal_algorithm_1(case):
    mask, roi, stride = case
    np.testing.assert_array_equal(window_foreground_counts(mask, roi, stride), brute_force_counts(mask, roi, stride))


def test_window_counts_int_roi_and_stride_and_grid():
    mask = np.zeros((10, 12), dtype=np.uint8)
    mask[0:4, 0:4] = 1
    counts = window_foreground_counts(mask, 4, 4)
    assert counts.shape == (2, 3)  # starts 0,4 (rows) and 0,4,8 (cols)
    assert counts[0, 0] == 16 and counts.sum() == 16
    starts = window_start_grid((10, 12), (4, 4), (4, 4))
    assert [s.tolist() for s in starts] == [[0, 4], [0, 4, 8]]


def test_window_counts_roi_larger_than_image_is_empty_grid():
    counts = window_foreground_counts(np.ones((5, 5)), (6, 2), 1)
    assert counts.shape == (0, 4)


def test_window_counts_rejects_bad_arguments():
    with pytest.raises(ValueError, match="stride must be >= 1"):
        window_foreground_counts(np.ones((5, 5)), 2, 0)
    with pytest.raises(ValueError, match="roi_size must be an int or 2 values"):
        window_foreground_counts(np.ones((5, 5)), (2, 2, 2), 1)


@pytest.mark.parametrize("split_pixels, max_boxes", [(1 << 22, 256), (0, 256), (0, 2)])
@pytest.mark.parametrize("spacing", [None, (1.0, 2.5)])
def test_exact_distance_boxes_give_whole_image_distances(monkeypatch, split_pixels, max_boxes, spacing):
    """Every strategy (foreground box, per-component boxes, whole image) reproduces the whole-image EDT."""
    from scipy import ndimage

    from monai_imbalance.transforms import utils as utils_module
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
