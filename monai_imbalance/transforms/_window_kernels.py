"""Fast path of :func:`monai_imbalance.transforms.utils.window_foreground_counts` for large masks (3-D volumes).

The definition is :func:`~monai_imbalance.transforms.utils.integral_image_counts`: a full summed-area table,
four bytes per pixel, built in three passes over the volume. Only the table's values at window starts and ends
are ever read, so this kernel sums the mask once into pieces whose boundaries are exactly those positions and takes
prefix sums over the much smaller piece grid (a summed-area table restricted to the grid). Measured with
``benchmarks/bench_crop.py`` (512x512x150 label, crop 96^3, stride 16, one core): about 100 ms for the integral
image, about 5 ms here, against 1.4 ms for one ``np.count_nonzero`` pass. At 448x448 both take well under a
millisecond, so 2-D images keep the definition. The tests check this kernel against the definition and
against a loop over windows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["piece_window_counts"]

#: longest piece of the outermost axis: 255 rows of 0/1 bytes add up in ``uint8`` without overflow
_MAX_BYTE_ROWS = 255


def _piece_bounds(size: int, roi: int, stride: int, max_len: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Window starts along one axis and the piece boundaries: every start and every end, from 0 to the last end,
    with pieces longer than ``max_len`` split."""
    starts = np.arange(0, size - roi + 1, stride)
    bounds = np.union1d(starts, starts + roi)
    if max_len is not None:
        splits = [np.arange(a + max_len, b, max_len) for a, b in zip(bounds[:-1], bounds[1:]) if b - a > max_len]
        if splits:
            bounds = np.union1d(bounds, np.concatenate(splits))
    return starts, bounds


def _first_axis_pieces(mask: np.ndarray, bounds: np.ndarray) -> list[np.ndarray]:
    """Foreground counts (``uint8``) of the runs ``mask[a:b]`` between consecutive ``bounds`` of axis 0.

    A bool or 0/1 ``uint8`` mask is summed as it is. Any other mask (class indices) is turned into foreground bytes
    one run at a time, in a buffer the size of the longest run reused for every run: no full-size temporary, and
    each run is summed while it is still in the cache."""
    runs = list(zip(bounds[:-1], bounds[1:]))
    if mask.dtype == bool or (mask.dtype == np.uint8 and mask.max() <= 1):
        arr = mask.view(np.uint8)
        return [arr[a:b].sum(axis=0, dtype=np.uint8) for a, b in runs]
    buffer = np.empty((max(b - a for a, b in runs), *mask.shape[1:]), dtype=bool)
    pieces = []
    for a, b in runs:
        run = np.not_equal(mask[a:b], 0, out=buffer[: b - a])
        pieces.append(run.view(np.uint8).sum(axis=0, dtype=np.uint8))
    return pieces


def piece_window_counts(mask: np.ndarray, roi: Sequence[int], stride: Sequence[int]) -> np.ndarray:
    """Same result as ``integral_image_counts(mask, roi, stride)`` (every axis holds at least one window)."""
    if not mask.flags.c_contiguous and mask.flags.f_contiguous:
        # Fortran order (ITK, PIL): count the C-ordered transpose, a view, rather than copy the mask
        return piece_window_counts(mask.T, tuple(roi)[::-1], tuple(stride)[::-1]).T
    cuts = [
        _piece_bounds(n, r, s, _MAX_BYTE_ROWS if axis == 0 else None)
        for axis, (n, r, s) in enumerate(zip(mask.shape, roi, stride))
    ]
    # piece sums, one axis at a time; the outermost axis reads the whole mask: its pieces are runs of contiguous
    # rows added as bytes (vectorised, no widening pass), after which the array is a fraction of the mask's size
    arr = np.stack(_first_axis_pieces(mask, cuts[0][1]), axis=0)
    for axis, (_, bounds) in enumerate(cuts[1:], start=1):
        lead = (slice(None),) * axis
        pieces = [arr[lead + (slice(a, b),)].sum(axis=axis, dtype=np.int64) for a, b in zip(bounds[:-1], bounds[1:])]
        arr = np.stack(pieces, axis=axis)
    # window sums: differences of prefix sums over the piece grid, one axis at a time
    for axis, (starts, bounds) in enumerate(cuts):
        shape = list(arr.shape)
        shape[axis] += 1
        prefix = np.zeros(shape, dtype=np.int64)
        np.cumsum(arr, axis=axis, dtype=np.int64, out=prefix[(slice(None),) * axis + (slice(1, None),)])
        ends = np.searchsorted(bounds, starts + roi[axis])
        arr = prefix.take(ends, axis=axis) - prefix.take(np.searchsorted(bounds, starts), axis=axis)
    return arr
