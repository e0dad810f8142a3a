"""Array helpers of the transforms family: summed-area window counts (MAC) and distance transforms."""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform
from scipy import ndimage

from monai_imbalance.transforms import _window_kernels
from monai_imbalance.utils import ensure_int_sequence, to_numpy, whole_number_arg

__all__ = [
    "window_start_grid",
    "window_foreground_counts",
    "integral_image_counts",
    "whole_number_arg",
    "KERNEL_MIN_PIXELS",
]

#: masks of at least this many pixels are counted by the piece-sum kernel (``_window_kernels``), about 20x faster
#: than the integral image on a 512x512x150 volume; below it (every 2-D bundle image) the definition itself runs,
#: in under a millisecond at 448x448 (``benchmarks/bench_crop.py``)
KERNEL_MIN_PIXELS = 1 << 22




def window_start_grid(spatial_shape: Sequence[int], roi_size: Sequence[int], stride: Sequence[int]) -> list[np.ndarray]:
    """Start positions along each axis, ``range(0, size - roi + 1, stride)`` (Algorithm 1 of the MAC paper).

    An axis where the ROI is larger than the image has no start (empty array)."""
    return [np.arange(0, n - r + 1, s, dtype=np.int64) for n, r, s in zip(spatial_shape, roi_size, stride)]


def integral_image_counts(mask: np.ndarray, roi: Sequence[int], stride: Sequence[int]) -> np.ndarray:
    """The definition of :func:`window_foreground_counts`, on normalised arguments (one int per axis).

    A summed-area table (integral image) ``S`` of ``mask != 0``, ``numpy.cumsum`` along every axis with a leading
    zero row, gives the count of any box as the alternating sum of ``S`` at its ``2**ndim`` corners; here for every
    window of the start grid at once.
    """
    ndim = mask.ndim
    table = np.zeros(tuple(n + 1 for n in mask.shape), dtype=np.int32 if mask.size < 2**31 else np.int64)
    table[(slice(1, None),) * ndim] = mask != 0
    for axis in range(ndim):
        np.cumsum(table, axis=axis, out=table)
    starts = window_start_grid(mask.shape, roi, stride)
    counts = np.zeros([len(s) for s in starts], dtype=np.int64)
    for corner in itertools.product((0, 1), repeat=ndim):  # per axis: 0 = the window's start, 1 = its end
        sign = -1 if (ndim - sum(corner)) % 2 else 1
        counts += sign * table[np.ix_(*[s + c * r for s, c, r in zip(starts, corner, roi)])]
    return counts


def _window_counts(mask: np.ndarray, roi: Sequence[int], stride: Sequence[int]) -> np.ndarray:
    """:func:`window_foreground_counts` on a numpy mask with one int per axis (no argument checks)."""
    if mask.ndim == 0 or any(n < r for n, r in zip(mask.shape, roi)):
        return np.zeros([max(0, (n - r) // s + 1) for n, r, s in zip(mask.shape, roi, stride)], dtype=np.int64)
    if mask.size >= KERNEL_MIN_PIXELS:
        return _window_kernels.piece_window_counts(mask, roi, stride)
    return integral_image_counts(mask, roi, stride)


def window_foreground_counts(
    mask: np.ndarray, roi_size: int | Sequence[int], stride: int | Sequence[int]
) -> np.ndarray:
    """Number of foreground (non-zero) pixels in every window of the MAC start grid.

    Args:
        mask: spatial array (2-D or 3-D), numpy or torch; any non-zero value is foreground.
        roi_size: window size, an int or one value per axis.
        stride: step between window starts, an int or one value per axis.

    Returns:
        ``int64`` array of shape ``(K_0, ..., K_{d-1})`` where ``K_i = len(range(0, size_i - roi_i + 1, stride_i))``;
        entry ``[i, j, ...]`` counts the window starting at ``(i * stride_0, j * stride_1, ...)``. An axis where the
        ROI is larger than the image gives ``K_i = 0`` (an empty array).

    The result equals looping over windows and summing ``mask[y:y + roi_h, x:x + roi_w] != 0`` (Algorithm 1 of
    the MAC paper), computed from a summed-area table (:func:`integral_image_counts`), as the MAC reading
    prescribes; masks of ``KERNEL_MIN_PIXELS`` or more (3-D volumes) take a faster kernel with the same integers.
    """
    mask = to_numpy(mask)
    roi = ensure_int_sequence(roi_size, mask.ndim, "roi_size")
    step = ensure_int_sequence(stride, mask.ndim, "stride")
    return _window_counts(mask, roi, step)


# ----------------------------------------------------------------------------------------------------------------
# Distance transforms: weight maps (DBCE, Bressan) and signed distance maps (boundary losses).
# Every function takes a spatial array (no channel axis), numpy or torch. numpy runs ``edt`` on the CPU (_edt); a
# torch tensor on a GPU runs MONAI's ``distance_transform_edt`` on its device when cuCIM is installed, otherwise the
# callers take it to the host once (maps_on_device); a torch tensor on the CPU goes through numpy and comes back as
# a tensor.
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
    "two_sided_distance",
    "gpu_distance_available",
    "maps_on_device",
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
    """Smallest box holding every non-zero element of ``mask`` (None when there is none): the box that
    ``scipy.ndimage.find_objects`` gives the mask read as a single label."""
    boxes = ndimage.find_objects(np.asarray(mask, dtype=bool).view(np.uint8))
    return boxes[0] if boxes else None


def _grow_box(box: tuple[slice, ...], margins: Sequence[int], shape: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(max(s.start - m, 0), min(s.stop + m, n)) for s, m, n in zip(box, margins, shape))


def _box_volume(box: tuple[slice, ...]) -> int:
    return math.prod(s.stop - s.start for s in box)


def _edt_call(labels: np.ndarray, spacing: Sequence[float] | None) -> np.ndarray:
    """``edt.edt`` of a C-contiguous 1-D to 3-D integer label array: each element's distance to the nearest element
    of another label (0 on label 0), ``float32``; the image border is no boundary (scipy's convention)."""
    import edt

    anisotropy = tuple(float(s) for s in spacing) if spacing is not None else (1.0,) * labels.ndim
    return edt.edt(labels, anisotropy=anisotropy[0] if labels.ndim == 1 else anisotropy, black_border=False,
                   parallel=1)


def _edt(mask: np.ndarray, spacing: Sequence[float] | None) -> np.ndarray:
    """Exact Euclidean distance transform of a boolean numpy array (distance from every True element to the nearest
    False one; the array has at least one False), ``float32``.

    ``edt`` (seung-lab's multi-label EDT, a dependency beside ``connected-components-3d``) does the work in 1-D to
    3-D: linear in the voxels up to cache effects, where ``scipy.ndimage.distance_transform_edt`` builds a feature
    transform (three int32 indices per voxel in 3-D) and slows down per voxel as volumes grow (9 scipy calls on a
    9-class volume: 672 ns per voxel at 64^3, 1643 at 256^3; ``benchmarks/bench_3d_maps.py``). Squared distances
    between lattice points are whole numbers, exact in ``float32`` below ``2**24``, so thresholds at a radius stay
    exact up to the square root's rounding (relative 6e-8, inside ``DISTANCE_RTOL``). Other dimensionalities go
    through scipy.
    """
    if mask.ndim not in (1, 2, 3):
        return ndimage.distance_transform_edt(mask, sampling=spacing).astype(np.float32)
    if not mask.flags.c_contiguous:
        if mask.flags.f_contiguous:  # Fortran order (ITK, PIL): the C-ordered transpose is a view
            return _edt(mask.T, None if spacing is None else tuple(spacing)[::-1]).T
        mask = np.ascontiguousarray(mask)
    # a uint8 view, not the bool array: edt's bool path measured 5x slower on ACDC volumes (53 ms against 10.5 ms
    # for a 10x256x216 mask); 0/1 bytes read as labels give the same distances
    return _edt_call(mask.view(np.uint8), spacing)


def two_sided_distance(mask: np.ndarray, spacing: Sequence[float] | None = None) -> np.ndarray:
    """Distance from every element to the nearest element on the other side of a boolean mask that holds both
    values: ``EDT(mask)`` on the mask, ``EDT(~mask)`` off it, from one multi-label ``edt`` pass over the mask read
    as labels 1 and 2 (what two separate distance transforms give, at the cost of one). ``float32``."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim not in (1, 2, 3):
        return np.where(mask, _edt(mask, spacing), _edt(~mask, spacing))
    # a C-ordered copy (spacing then follows the axes); 0 would mean "no label" to edt
    return _edt_call(np.add(mask.view(np.uint8), np.uint8(1), order="C"), spacing)


#: the extra that installs cuCIM and CuPy, per CUDA major version of torch
GPU_EXTRAS = {"12": "gpu", "13": "gpu-cu13"}
_warned_host_maps = False


@functools.cache
def gpu_distance_available() -> bool:
    """Whether MONAI's ``distance_transform_edt`` runs on CUDA tensors on the GPU: cuCIM and CuPy importable
    (``pip install "monai-imbalance[gpu]"``, ``[gpu-cu13]`` for CUDA 13). Without them MONAI copies every call's
    tensor to the host and back."""
    from monai.utils import optional_import

    _, has_cupy = optional_import("cupy")
    _, has_cucim = optional_import("cucim.core.operations.morphology", name="distance_transform_edt")
    return bool(has_cupy and has_cucim)


def maps_on_device(data: Any) -> bool:
    """Whether a map of ``data`` is computed with torch ops on its device: a tensor on a GPU with cuCIM installed
    (:func:`gpu_distance_available`). A GPU tensor without cuCIM goes to the host once, takes the CPU path (bounding
    boxes, ``edt``) and its map comes back to the device; the first time, a ``UserWarning`` names the extra to
    install. CPU tensors always take the CPU path (faster than torch ops there)."""
    global _warned_host_maps
    if not isinstance(data, torch.Tensor) or data.device.type == "cpu":
        return False
    if gpu_distance_available():
        return True
    if not _warned_host_maps:
        _warned_host_maps = True
        cuda = (torch.version.cuda or "12").split(".")[0]
        extra = GPU_EXTRAS.get(cuda, "gpu")
        warnings.warn(
            f"distance maps of {data.device.type} tensors are computed on the host: cuCIM and CuPy are not installed "
            f'(pip install "monai-imbalance[{extra}]" keeps them on the GPU). Each label is copied to the host '
            "once and its map back.",
            UserWarning,
            stacklevel=3,
        )
    return False


def euclidean_distance(mask: Any, spacing: Sequence[float] | None = None) -> np.ndarray | torch.Tensor:
    """Euclidean distance from every non-zero element of ``mask`` to the nearest zero element (0 on zeros).

    Where ``mask`` has no zero at all the distance is ``inf`` (scipy would return distances to a point outside
    the array). ``spacing`` gives distances in mm.

    Returns:
        ``float32``: numpy for numpy input (:func:`_edt`); on the input's device for torch input (cuCIM on a GPU when
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
        return np.full(mask.shape, np.inf, dtype=np.float32)
    return _edt(mask, spacing)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, list[tuple[slice, ...]]]:
    """Face-connected components of a boolean mask (``scipy.ndimage.label``'s default structure, labelled by
    ``connected-components-3d`` in 2-D and 3-D) and their bounding boxes."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim in (2, 3):
        from monai_imbalance.utils import label_components as label_connected

        components, _ = label_connected(mask, connectivity=1)
    else:
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


class LabelToKeyd(MapTransform):
    """Dictionary form shared by the transforms that derive something from a label (the weight and distance maps,
    the component ids): ``transform(d[key])`` goes to ``d[key + postfix]``, the label is left as it is."""

    def __init__(self, keys: KeysCollection, transform: Transform, postfix: str, allow_missing_keys: bool) -> None:
        super().__init__(keys, allow_missing_keys)
        if not postfix:
            raise ValueError("postfix must be a non-empty string, or the output would overwrite its label.")
        self.transform = transform
        self.postfix = postfix

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[f"{key}{self.postfix}"] = self.transform(d[key])
        return d
