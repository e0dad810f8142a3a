"""Array helpers of the transforms family: summed-area window counts (MAC) and distance transforms.

Window counts are exact integer sums, computed from prefix sums taken only at the positions the start grid
needs (a summed-area table restricted to the grid), so the cost is one pass over the mask plus work on the
much smaller grid, whatever the crop size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monai_imbalance.utils import ensure_int_sequence

__all__ = ["window_start_grid", "window_foreground_counts"]


def window_start_grid(spatial_shape: Sequence[int], roi_size: Sequence[int], stride: Sequence[int]) -> list[np.ndarray]:
    """Start positions along each axis, ``range(0, size - roi + 1, stride)`` (Algorithm 1 of the MAC paper).

    An axis where the ROI is larger than the image has no start (empty array)."""
    return [np.arange(0, n - r + 1, s, dtype=np.int64) for n, r, s in zip(spatial_shape, roi_size, stride)]


def _window_sums_along_axis(arr: np.ndarray, axis: int, starts: np.ndarray, roi: int) -> np.ndarray:
    """Sum of ``arr[start:start + roi]`` along ``axis`` for every start, from prefix sums at the needed cuts."""
    size = arr.shape[axis]
    cuts = np.union1d(np.union1d(starts, starts + roi), [0])  # sorted positions in [0, size]
    inner = cuts[cuts < size]
    # reduceat sums each slab between consecutive cuts; the cumulative sum of slabs is the prefix sum at each cut
    slabs = np.add.reduceat(arr, inner, axis=axis, dtype=np.int64)
    prefix_shape = list(slabs.shape)
    prefix_shape[axis] += 1
    prefix = np.zeros(prefix_shape, dtype=np.int64)
    index = [slice(None)] * arr.ndim
    index[axis] = slice(1, None)
    np.cumsum(slabs, axis=axis, out=prefix[tuple(index)])
    # position p maps to prefix entry searchsorted(inner, p); p == size maps past every cut, to the last entry
    lo = np.searchsorted(inner, starts)
    hi = np.searchsorted(inner, starts + roi)
    return np.take(prefix, hi, axis=axis) - np.take(prefix, lo, axis=axis)


def window_foreground_counts(
    mask: np.ndarray, roi_size: int | Sequence[int], stride: int | Sequence[int]
) -> np.ndarray:
    """Number of foreground (non-zero) pixels in every window of the MAC start grid.

    Args:
        mask: spatial array (2-D or 3-D); any non-zero value is foreground.
        roi_size: window size, an int or one value per axis.
        stride: step between window starts, an int or one value per axis.

    Returns:
        ``int64`` array of shape ``(K_0, ..., K_{d-1})`` where ``K_i = len(range(0, size_i - roi_i + 1, stride_i))``;
        entry ``[i, j, ...]`` counts the window starting at ``(i * stride_0, j * stride_1, ...)``. An axis where the
        ROI is larger than the image gives ``K_i = 0`` (an empty array).

    The result equals looping over windows and summing ``mask[y:y + roi_h, x:x + roi_w] != 0`` (Algorithm 1 of
    the MAC paper), but reads the mask once.
    """
    mask = np.asarray(mask)
    roi = ensure_int_sequence(roi_size, mask.ndim, "roi_size")
    step = ensure_int_sequence(stride, mask.ndim, "stride")
    starts = window_start_grid(mask.shape, roi, step)
    if any(len(s) == 0 for s in starts):
        return np.zeros(tuple(len(s) for s in starts), dtype=np.int64)
    arr = mask if mask.dtype == bool else mask != 0
    # reduce the axis with the fewest start positions first: it shrinks the array the most for the next passes
    for axis in sorted(range(mask.ndim), key=lambda a: len(starts[a]) / mask.shape[a]):
        arr = _window_sums_along_axis(arr, axis, starts[axis], roi[axis])
    return arr
