"""Array helpers of the transforms family: summed-area window counts (MAC) and distance transforms.

Window counts are exact integer sums, computed from prefix sums taken only at the positions the start grid
needs (a summed-area table restricted to the grid), so the cost is one pass over the mask plus work on the
much smaller grid, whatever the crop size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from monai_imbalance.utils import ensure_int_sequence, to_numpy

__all__ = ["window_start_grid", "window_foreground_counts"]


def window_start_grid(spatial_shape: Sequence[int], roi_size: Sequence[int], stride: Sequence[int]) -> list[np.ndarray]:
    """Start positions along each axis, ``range(0, size - roi + 1, stride)`` (Algorithm 1 of the MAC paper).

    An axis where the ROI is larger than the image has no start (empty array)."""
    return [np.arange(0, n - r + 1, s, dtype=np.int64) for n, r, s in zip(spatial_shape, roi_size, stride)]


#: bytes of mask converted to 0/1 at a time, so the converted chunk is summed while it is still in cache
_CHUNK_BYTES = 1 << 20
#: longest run of rows summed in uint8 lanes: 255 rows of 0/1 cannot overflow a byte
_MAX_UINT8_ROWS = 255
_LOW_BYTES = np.uint64(0x00FF00FF00FF00FF)
_ONE_PER_LANE = np.uint64(0x0001000100010001)


def _last_axis_piece_sums_swar(arr: np.ndarray, end: int, count: int, length: int) -> np.ndarray:
    """Sums of ``count`` consecutive pieces of ``length`` (a multiple of 8) along the last axis of a ``uint8``
    array, each sum below 2**16, eight bytes per operation: a 64-bit word holds 8 columns; adding its even and odd
    bytes gives 4 16-bit lanes, words of one piece add lane-wise, and a multiply-shift adds the 4 lanes (no lane
    overflows because every partial sum is below 2**16). numpy reduces short contiguous rows one element at a time,
    which made this step cost as much as reading the whole mask."""
    src = np.ascontiguousarray(arr[..., :end])
    words = src.view(np.uint64)
    lanes = (words & _LOW_BYTES) + ((words >> np.uint64(8)) & _LOW_BYTES)
    lanes = lanes.reshape(arr.shape[:-1] + (count, length // 8))
    lanes = lanes[..., 0] + lanes[..., 1] if length == 16 else np.add.reduce(lanes, axis=-1)
    return (lanes * _ONE_PER_LANE) >> np.uint64(48)


def _axis_pieces(
    num_starts: int, stride: int, roi: int, max_len: int | None
) -> tuple[list[int], list[tuple[int, int, int]], np.ndarray | slice, np.ndarray | slice]:
    """Cut one axis into consecutive pieces so that every window start and end is a piece boundary.

    Returns ``(bounds, runs, lo, hi)``: the piece boundaries (from 0 to the last window end), the runs of
    consecutive equal-length pieces as ``(first piece, number of pieces, length)``, and for every window the
    boundary index of its start (``lo``) and of its end (``hi``), as index arrays or slices. Pieces are at most
    ``max_len`` long when it is given.
    """
    last = (num_starts - 1) * stride
    end = last + roi
    step = roi if num_starts == 1 else math.gcd(stride, roi)
    if (max_len is None or step <= max_len) and end // step <= 4 * num_starts + 8:
        # every start and end lies on the grid of step gcd(stride, roi): equal pieces, summed by one reshape
        n, jump, width = end // step, max(stride // step, 1), roi // step
        lo = slice(0, (num_starts - 1) * jump + 1, jump)
        hi = slice(width, width + (num_starts - 1) * jump + 1, jump)
        return list(range(0, end + 1, step)), [(0, n, step)], lo, hi
    starts = range(0, last + 1, stride)
    bounds = [0]
    for b in sorted(set(starts).union(range(roi, end + 1, stride)))[1:]:
        if max_len is not None:
            bounds.extend(range(bounds[-1] + max_len, b, max_len))
        bounds.append(b)
    where = {b: i for i, b in enumerate(bounds)}
    lo_idx = np.fromiter((where[s] for s in starts), dtype=np.intp, count=num_starts)
    hi_idx = np.fromiter((where[s + roi] for s in starts), dtype=np.intp, count=num_starts)
    runs: list[list[int]] = []
    for i in range(len(bounds) - 1):
        length = bounds[i + 1] - bounds[i]
        if runs and runs[-1][2] == length:
            runs[-1][1] += 1
        else:
            runs.append([i, 1, length])
    return bounds, [tuple(r) for r in runs], lo_idx, hi_idx


def _first_axis_piece_counts(rows: np.ndarray, bounds: list[int], runs: list[tuple[int, int, int]]) -> np.ndarray:
    """``uint8`` array ``(pieces, M)``: the non-zero count of every column of ``rows`` ``(N, M)`` in every piece of
    rows (pieces are at most 255 rows, so the byte sums cannot overflow)."""
    width = rows.shape[1]
    out = np.empty((len(bounds) - 1, width), dtype=np.uint8)
    if rows.dtype == bool or (rows.dtype == np.uint8 and rows.max() <= 1):
        # 0/1 bytes already (bool, binary uint8 masks): add whole rows as they lie, no conversion pass; numpy adds
        # contiguous uint8 rows with SIMD, so this runs at memory bandwidth
        src = rows.view(np.uint8)
        for first, count, length in runs:
            block = src[bounds[first] : bounds[first] + count * length].reshape(count, length, width)
            np.sum(block, axis=1, dtype=np.uint8, out=out[first : first + count])
        return out
    # any other values or dtype: compare with 0 one cache-sized chunk at a time and sum the chunk while it is hot
    chunk_rows = max(1, _CHUNK_BYTES // max(width * rows.itemsize, 1))
    buffer = np.empty((min(chunk_rows, rows.shape[0]), width), dtype=bool)
    for first, count, length in runs:
        if length <= chunk_rows:
            per_batch = chunk_rows // length
            for p in range(first, first + count, per_batch):
                n = min(per_batch, first + count - p)
                block = np.not_equal(rows[bounds[p] : bounds[p] + n * length], 0, out=buffer[: n * length])
                np.sum(block.view(np.uint8).reshape(n, length, width), axis=1, dtype=np.uint8, out=out[p : p + n])
            continue
        for p in range(first, first + count):
            out[p] = 0
            for r in range(bounds[p], bounds[p + 1], chunk_rows):
                e = min(r + chunk_rows, bounds[p + 1])
                block = np.not_equal(rows[r:e], 0, out=buffer[: e - r])
                out[p] += np.sum(block.view(np.uint8), axis=0, dtype=np.uint8)
    return out


def _uint_dtype(bound: int) -> type[np.unsignedinteger]:
    """Narrowest unsigned dtype holding ``bound`` (narrow sums move fewer bytes)."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if bound <= np.iinfo(dtype).max:
            return dtype
    return np.uint64


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
    the MAC paper), but reads the mask once: every axis is cut into pieces whose boundaries include each window
    start and end; the first (outermost) axis is summed piece by piece over whole contiguous rows in ``uint8``
    lanes (at most 255 rows a piece, so no byte overflows), which runs at memory bandwidth; the remaining axes
    are summed on that much smaller array, and the window counts are differences of prefix sums over the
    piece grid (a summed-area table restricted to the positions the grid needs). Integer arithmetic throughout:
    exact.
    """
    mask = np.asarray(mask)
    roi = ensure_int_sequence(roi_size, mask.ndim, "roi_size")
    step = ensure_int_sequence(stride, mask.ndim, "stride")
    num = [max(0, (n - r) // s + 1) for n, r, s in zip(mask.shape, roi, step)]
    if mask.ndim == 0 or 0 in num:
        return np.zeros(tuple(num), dtype=np.int64)
    transposed = not mask.flags.c_contiguous and mask.flags.f_contiguous
    if transposed:  # e.g. masks read through PIL or ITK: count on the C-ordered transpose instead of copying
        mask, roi, step, num = mask.T, roi[::-1], step[::-1], num[::-1]
    mask = np.ascontiguousarray(mask)
    pieces = [
        _axis_pieces(k, s, r, _MAX_UINT8_ROWS if axis == 0 else None)
        for axis, (k, s, r) in enumerate(zip(num, step, roi))
    ]
    bounds, runs = pieces[0][0], pieces[0][1]
    arr = _first_axis_piece_counts(mask.reshape(mask.shape[0], -1), bounds, runs)
    arr = arr.reshape((len(bounds) - 1,) + mask.shape[1:])
    bound = max(length for _, _, length in runs)  # largest value arr can hold
    for axis in range(1, mask.ndim):
        bounds, runs = pieces[axis][0], pieces[axis][1]
        bound *= max(length for _, _, length in runs)
        dtype = _uint_dtype(bound)
        head, tail = arr.shape[:axis], arr.shape[axis + 1 :]
        out = np.empty(head + (len(bounds) - 1,) + tail, dtype=dtype)
        lead = (slice(None),) * axis
        if axis == mask.ndim - 1 and arr.dtype == np.uint8 and bound < 2**16 and len(runs) == 1 and runs[0][2] % 8 == 0:
            out[...] = _last_axis_piece_sums_swar(arr, bounds[-1], runs[0][1], runs[0][2])
        elif axis == mask.ndim - 1:
            # contiguous last axis: reduceat beats a reshape-sum over short rows, which numpy reduces slowly
            np.add.reduceat(arr[..., : bounds[-1]], bounds[:-1], axis=axis, dtype=dtype, out=out)
        else:
            for first, count, length in runs:
                block = arr[lead + (slice(bounds[first], bounds[first] + count * length),)]
                block = block.reshape(head + (count, length) + tail)
                np.sum(block, axis=axis + 1, dtype=dtype, out=out[lead + (slice(first, first + count),)])
        arr = out
    # window sums = differences of prefix sums over the piece grid, one axis at a time
    for axis in range(mask.ndim):
        lead = (slice(None),) * axis
        shape = list(arr.shape)
        shape[axis] += 1
        prefix = np.zeros(shape, dtype=np.int64)
        np.cumsum(arr.astype(np.int64), axis=axis, out=prefix[lead + (slice(1, None),)])  # cast first: faster
        lo, hi = pieces[axis][2], pieces[axis][3]
        if isinstance(lo, slice):
            arr = prefix[lead + (hi,)] - prefix[lead + (lo,)]
        else:
            arr = prefix.take(hi, axis=axis) - prefix.take(lo, axis=axis)
    return arr.T if transposed else arr


# ----------------------------------------------------------------------------------------------------------------
# Distance transforms: weight maps (DBCE, Bressan) and signed distance maps (boundary losses).
# Every function takes a spatial array (no channel axis), numpy or torch. numpy runs scipy on the CPU; a torch
# tensor on a GPU runs MONAI's ``distance_transform_edt`` (cuCIM when installed) and stays on its device; a torch
# tensor on the CPU goes through scipy and comes back as a tensor.
# ----------------------------------------------------------------------------------------------------------------

__all__ += [
    "resolve_spacing",
    "bounding_box",
    "euclidean_distance",
    "label_components",
    "dilate_by_distance",
    "erode_by_distance",
    "exact_distance_boxes",
    "face_edges",
]

#: relative slack on distance thresholds, so that float rounding never decides a point lying exactly at the radius
DISTANCE_RTOL = 1e-6


def resolve_spacing(spacing: Any, ndim: int, data: Any = None) -> tuple[float, ...] | None:
    """Voxel size per spatial axis, or None for distances in voxels.

    Args:
        spacing: None (voxels), a positive number (isotropic, mm), one positive number per spatial axis, or
            ``"meta"``: the ``pixdim`` of ``data``, which must then be a ``MetaTensor``.
        ndim: number of spatial axes.
        data: the array the spacing belongs to (only read for ``"meta"``).

    Raises:
        ValueError: wrong length, a non-positive or non-finite value, or ``"meta"`` without a MetaTensor.
    """
    if spacing is None:
        return None
    if isinstance(spacing, str):
        if spacing != "meta":
            raise ValueError(f"spacing must be None, a number, one number per axis or 'meta', got {spacing!r}.")
        pixdim = getattr(data, "pixdim", None)
        if pixdim is None:
            raise ValueError(
                "spacing='meta' needs a MetaTensor carrying an affine (e.g. from LoadImaged), "
                f"got {type(data).__name__}."
            )
        spacing = [float(v) for v in to_numpy(pixdim).ravel()[:ndim]]
    values = (float(spacing),) * ndim if np.isscalar(spacing) else tuple(float(v) for v in spacing)
    if len(values) != ndim:
        raise ValueError(f"spacing must be a number or {ndim} values (one per spatial axis), got {tuple(values)}.")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"spacing must be positive and finite on every axis, got {values}.")
    return values


def bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Smallest box holding every non-zero element of ``mask`` (None when there is none)."""
    box = []
    for axis in range(mask.ndim):
        hits = np.flatnonzero(np.any(mask, axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if hits.size == 0:
            return None
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def _grow_box(box: tuple[slice, ...], margins: Sequence[int], shape: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(max(s.start - m, 0), min(s.stop + m, n)) for s, m, n in zip(box, margins, shape))


def _box_volume(box: tuple[slice, ...]) -> int:
    return math.prod(s.stop - s.start for s in box)


def euclidean_distance(mask: Any, spacing: Sequence[float] | None = None) -> np.ndarray | torch.Tensor:
    """Euclidean distance from every non-zero element of ``mask`` to the nearest zero element (0 on zeros).

    Where ``mask`` has no zero at all the distance is ``inf`` (scipy would return distances to a point outside
    the array). ``spacing`` gives distances in mm.

    Returns:
        numpy ``float64`` for numpy input; ``float32`` on the input's device for torch input (cuCIM on a GPU when
        installed, as MONAI's ``distance_transform_edt``).
    """
    if isinstance(mask, torch.Tensor):
        mask = mask.bool()
        if mask.device.type == "cuda":
            if bool(mask.all()):
                return torch.full(mask.shape, math.inf, dtype=torch.float32, device=mask.device)
            from monai.transforms.utils import distance_transform_edt

            dist = distance_transform_edt(mask[None], sampling=None if spacing is None else list(spacing))
            return torch.as_tensor(dist, dtype=torch.float32, device=mask.device)[0]
        dist = euclidean_distance(to_numpy(mask), spacing)
        return torch.as_tensor(dist, dtype=torch.float32, device=mask.device)
    mask = np.asarray(mask, dtype=bool)
    if mask.all():
        return np.full(mask.shape, np.inf)
    return ndimage.distance_transform_edt(mask, sampling=spacing)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, list[tuple[slice, ...]]]:
    """Face-connected components of a boolean mask (``scipy.ndimage.label``) and their bounding boxes."""
    components, _ = ndimage.label(mask)
    return components, ndimage.find_objects(components)


#: a foreground bounding box above this many pixels is split by connected components before a distance transform
SPLIT_BOX_PIXELS = 1 << 22
#: more components than this: one box for all (a Python loop over boxes would cost more than it saves)
MAX_COMPONENT_BOXES = 256


def exact_distance_boxes(
    mask: np.ndarray,
    components: tuple[np.ndarray, Sequence[tuple[slice, ...]]] | None = None,
) -> list[tuple[tuple[slice, ...], np.ndarray | None]]:
    """Boxes on which ``EDT(mask)`` (each mask pixel's distance to the nearest pixel outside the mask) is exact,
    so that it need not be computed on the whole image.

    Returns ``(box, selector)`` pairs: ``euclidean_distance(mask[box])`` is exact at every mask pixel of the box
    when ``selector`` is None, else at the mask pixels where ``selector`` (a boolean array over the box) is True;
    together the pairs cover every mask pixel once.

    - The mask's bounding box grown by one pixel, when it holds at most ``SPLIT_BOX_PIXELS`` pixels: its rim is
      outside the mask, and a nearest outside pixel beyond the box can be replaced by its projection onto the rim,
      which is no farther.
    - Otherwise one box per face-connected component, grown by one pixel, selecting that component's pixels: the
      lattice points of a ball around a pixel are face-connected, so the ball that reaches the nearest outside
      pixel lies in the component's grown box.
    - The whole image, when those boxes together are as large or there are more than ``MAX_COMPONENT_BOXES``.

    Args:
        mask: spatial boolean numpy array with at least one True pixel.
        components: ``label_components(mask)`` when already computed.
    """
    shape = mask.shape
    whole = tuple(slice(0, n) for n in shape)
    fg_box = _grow_box(bounding_box(mask), [1] * mask.ndim, shape)
    if _box_volume(fg_box) <= SPLIT_BOX_PIXELS:
        return [(fg_box, None)]
    labels, boxes = label_components(mask) if components is None else components
    grown = [_grow_box(box, [1] * mask.ndim, shape) for box in boxes if box is not None]
    if len(grown) > MAX_COMPONENT_BOXES or sum(_box_volume(box) for box in grown) >= mask.size:
        return [(whole, None)]
    return [(box, labels[box] == index) for index, box in enumerate(grown, start=1)]


def dilate_by_distance(
    mask: Any,
    radius: float,
    spacing: Sequence[float] | None = None,
    boxes: Sequence[tuple[slice, ...]] | None = None,
) -> np.ndarray | torch.Tensor:
    """Dilation of ``mask`` by the ball ``{x : |x| <= radius}``: ``EDT(not mask) <= radius``.

    The ball is the set of ``skimage.morphology.disk(radius)`` / ``ball(radius)`` (``strict_radius=True``), so for
    unit spacing the result equals ``scipy.ndimage.binary_dilation(mask, disk(radius))``; with ``spacing`` the
    radius is in mm. The distance transform runs on each object's bounding box grown by the radius, or once on
    the whole image when those boxes together are as large: the cost never exceeds one distance transform of the
    image, whatever the radius (a binary dilation grows with the structuring element's volume).

    Args:
        mask: spatial boolean array (numpy or torch).
        radius: ``>= 0``, in voxels or, with ``spacing``, in mm.
        spacing: voxel size per axis, or None.
        boxes: boxes that together cover every pixel of ``mask``, each holding some (default: the boxes of its
            face-connected components). Numpy only.

    Returns:
        boolean array of the input's kind (and device).
    """
    limit = radius * (1.0 + DISTANCE_RTOL)
    if isinstance(mask, torch.Tensor):
        return euclidean_distance(~mask.bool(), spacing) <= limit
    mask = np.asarray(mask, dtype=bool)
    if boxes is None:
        boxes = label_components(mask)[1] if mask.any() else []
    steps = spacing or (1.0,) * mask.ndim
    margins = [int(limit // s) for s in steps]
    grown = [_grow_box(box, margins, mask.shape) for box in boxes if box is not None]
    if not grown:
        return np.zeros(mask.shape, dtype=bool)
    if sum(_box_volume(box) for box in grown) >= mask.size:
        return euclidean_distance(~mask, spacing) <= limit
    out = np.zeros(mask.shape, dtype=bool)
    for box in grown:
        # every mask pixel within ``radius`` of the box's pixels lies in the grown box: distances there are exact
        out[box] |= euclidean_distance(~mask[box], spacing) <= limit
    return out


def erode_by_distance(
    mask: Any,
    radius: float,
    spacing: Sequence[float] | None = None,
    components: tuple[np.ndarray, Sequence[tuple[slice, ...]]] | None = None,
) -> np.ndarray | torch.Tensor:
    """Pixels of ``mask`` farther than ``radius`` from every pixel outside it: ``EDT(mask) > radius``.

    The complement of ``dilate_by_distance(~mask, radius)``, with the distance transform run only on the boxes
    of :func:`exact_distance_boxes` (exact there).

    Args:
        mask: spatial boolean array (numpy or torch).
        radius: ``>= 0``, in voxels or, with ``spacing``, in mm.
        spacing: voxel size per axis, or None.
        components: ``label_components(mask)`` when already computed (numpy only).

    Returns:
        boolean array of the input's kind (and device).
    """
    limit = radius * (1.0 + DISTANCE_RTOL)
    if isinstance(mask, torch.Tensor):
        return euclidean_distance(mask.bool(), spacing) > limit
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros(mask.shape, dtype=bool)
    out = np.zeros(mask.shape, dtype=bool)
    for box, select in exact_distance_boxes(mask, components):
        far = euclidean_distance(mask[box], spacing) > limit
        out[box] |= far if select is None else far & select
    return out


def face_edges(label: Any, mode: str = "inner") -> np.ndarray | torch.Tensor:
    """Edge pixels of a label map: pixels with a face neighbour (4-neighbourhood in 2-D, 6 in 3-D) of another label.

    Args:
        label: spatial integer array (numpy or torch).
        mode: ``"inner"``: only pixels of a non-background class (label > 0) are edges; ``"thick"``: pixels on both
            sides of every label change, background included. Pixels beyond the image border are no neighbours,
            so the border itself is no edge.

    Returns:
        boolean array of the input's kind.
    """
    if mode not in ("inner", "thick"):
        raise ValueError(f"edge_mode must be 'inner' or 'thick', got {mode!r}.")
    is_torch = isinstance(label, torch.Tensor)
    edges = torch.zeros_like(label, dtype=torch.bool) if is_torch else np.zeros(np.shape(label), dtype=bool)
    for axis in range(label.ndim):
        upper = tuple(slice(1, None) if a == axis else slice(None) for a in range(label.ndim))
        lower = tuple(slice(None, -1) if a == axis else slice(None) for a in range(label.ndim))
        change = label[upper] != label[lower]
        edges[upper] |= change
        edges[lower] |= change
    if mode == "inner":
        edges &= label > 0
    return edges
