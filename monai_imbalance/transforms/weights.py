"""Pixel weight maps and signed distance maps computed from a label: DBCE, Bressan et al., U-Net, Kervadec et al.

Four deterministic transforms (array + dictionary forms, 2-D and 3-D, numpy / torch / MetaTensor):

- :class:`DilationWeightMap`: the map ``M`` of the dilated balanced cross entropy (Hosseini and Soleymani
  Baghshah, Eqs. 3-5), consumed by :class:`monai_imbalance.losses.DilatedBalancedCELoss`.
- :class:`UncertaintyWeightMap`: ``omega_c(x) * delta(x)`` of Bressan et al. (Eqs. 4-6), consumed by
  :class:`monai_imbalance.losses.UncertaintyWeightedCELoss`.
- :class:`BorderWeightMap`: the U-Net weight map ``w_c(x) + w0 exp(-(d1 + d2)^2 / (2 sigma^2))`` (Ronneberger et
  al., Eq. 2), passed as ``weight_map=`` to :class:`monai_imbalance.losses.PixelWeightedCELoss`.
- :class:`SignedDistanceMap`: per-class signed distance maps in Kervadec's convention, consumed by
  :class:`monai_imbalance.losses.BoundaryLoss` and :class:`~monai_imbalance.losses.ModifiedBoundaryLoss`.

Put them before the random transforms, so that ``CacheDataset`` caches the map, and list the map's key in every
later spatial transform with the image and label, so that it stays aligned with its label::

    from monai.transforms import Compose, LoadImaged, EnsureChannelFirstd, RandFlipd, RandZoomd, RandSpatialCropd

    train_transforms = Compose([
        LoadImaged(keys=["image", "label"]),
        EnsureChannelFirstd(keys=["image", "label"]),
        DilationWeightMapd(keys="label", radius=20),  # adds "label_weight", cached by CacheDataset
        RandFlipd(keys=["image", "label", "label_weight"], prob=0.5, spatial_axis=0),
        RandZoomd(keys=["image", "label", "label_weight"], prob=0.5, min_zoom=0.9, max_zoom=1.2,
                  mode=["bilinear", "nearest", "nearest"]),
        RandSpatialCropd(keys=["image", "label", "label_weight"], roi_size=(256, 256), random_size=False),
    ])

Interpolate weight maps with ``"nearest"`` like the label: every value stays one of the computed weights and the
map's steps move exactly with the label's edges (a linear mode blurs the steps by a pixel). Signed distance maps
are smooth and can be interpolated linearly, but a zoom by ``z`` leaves their values in the original voxel units
(the true map of the zoomed label is ``z`` times larger); compute them after a zoom when that matters.
Padding fills maps with 0, i.e. padded pixels carry no weight. A DBCE map computed before a crop keeps the whole
image's normalisation ``1 / (1 + area)``; for the per-crop reading compute the map after the crop, or let the loss
compute it on the fly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import Transform
from monai.utils import TransformBackends, convert_to_dst_type
from scipy import ndimage

from monai_imbalance.transforms.utils import (
    DISTANCE_RTOL,
    LabelToKeyd,
    _box_volume,
    _edt,
    _grow_box,
    bounding_box,
    dilate_by_distance,
    erode_by_distance,
    euclidean_distance,
    face_edges,
    label_components,
    maps_on_device,
    resolve_spacing,
    two_sided_distance,
)
from monai_imbalance.utils import cc3d_connectivity, to_numpy, validate_label
from monai_imbalance.utils import label_components as label_class_components

__all__ = [
    "dilation_weight_map",
    "uncertainty_weight_map",
    "border_weight_map",
    "signed_distance",
    "signed_distance_map",
    "batch_map",
    "DilationWeightMap",
    "UncertaintyWeightMap",
    "BorderWeightMap",
    "SignedDistanceMap",
    "DilationWeightMapd",
    "DilationWeightMapD",
    "DilationWeightMapDict",
    "UncertaintyWeightMapd",
    "UncertaintyWeightMapD",
    "UncertaintyWeightMapDict",
    "BorderWeightMapd",
    "BorderWeightMapD",
    "BorderWeightMapDict",
    "SignedDistanceMapd",
    "SignedDistanceMapD",
    "SignedDistanceMapDict",
]


def check_radius(radius: float, name: str = "radius") -> float:
    radius = float(radius)
    if not np.isfinite(radius) or radius < 0:
        raise ValueError(f"{name} must be a finite number >= 0 (voxels, or mm with spacing), got {radius}.")
    return radius


def check_sigma(sigma: float) -> float:
    sigma = float(sigma)
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma must be a finite number > 0 (voxels, or mm with spacing), got {sigma}.")
    return sigma


def check_class_weights(class_weights: Any) -> np.ndarray | None:
    """``None`` or a 1-D array of finite non-negative weights, one per class."""
    if class_weights is None:
        return None
    weights = np.asarray(to_numpy(class_weights), dtype=np.float64)
    if weights.ndim != 1 or weights.size == 0:
        raise ValueError(f"class_weights must be one value per class (1-D), got shape {weights.shape}.")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f"class_weights must be finite and >= 0, got {weights.tolist()}.")
    return weights


def _check_label_tensor(label: torch.Tensor, name: str) -> torch.Tensor:
    """Device-side version of ``validate_label``: whole, non-negative class values. An integer label is returned as
    it is; a float one in the smallest integer dtype that holds its values (``uint8`` up to 255), not int64."""
    if label.numel() == 0:
        return label
    lo, hi = float(label.min()), float(label.max())
    if label.is_floating_point():
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"{name} must hold class indices (whole numbers); got non-integer or non-finite values.")
        dtype = torch.uint8 if hi < 256 else torch.int32 if hi < 2**31 else torch.int64
        converted = label.to(dtype)
        if (lo < 0 or not bool((converted == label).all())) and bool((label != label.round()).any()):
            raise ValueError(f"{name} must hold class indices (whole numbers); got non-integer or non-finite values.")
        label = converted if lo >= 0 else label
    if lo < 0:
        raise ValueError(f"{name} has negative values (min {int(lo)}); labels must be class indices >= 0.")
    return label


def dilation_weight_map(label: Any, radius: float, spacing: Sequence[float] | None = None) -> np.ndarray | torch.Tensor:
    """DBCE weight map ``M`` of one spatial label map (Hosseini and Soleymani Baghshah, Eqs. 3-5).

    ``D^c = Y^c`` dilated by the ball of ``radius``, ``W^c = D^c / (1 + sum(D^c))``, ``M = max_c W^c``, for every
    class present, background included (readings: :class:`DilationWeightMap`).

    Args:
        label: spatial integer label map ``(H, W[, D])``, numpy or torch (not validated here).
        radius: ``R >= 0`` in voxels, or in mm with ``spacing``.
        spacing: voxel size per axis, or None.

    Returns:
        ``float32`` map of the label's shape; numpy for numpy input, a tensor on the label's device otherwise.
    """
    if maps_on_device(label):
        weight_map = torch.zeros(label.shape, dtype=torch.float32, device=label.device)
        for c in torch.unique(label):
            dilated = dilate_by_distance(label == c, radius, spacing)
            weight = 1.0 / (1.0 + dilated.sum(dtype=torch.float64))
            weight_map = torch.where(dilated, torch.maximum(weight_map, weight.float()), weight_map)
        return weight_map
    if isinstance(label, torch.Tensor):
        return torch.as_tensor(dilation_weight_map(to_numpy(label), radius, spacing), device=label.device)
    label = np.asarray(label)
    counts = np.bincount(label.ravel())
    foreground = label != 0
    if counts.size == 2 and counts[0] and counts[1] and _binary_boxes_cover_image(foreground, radius, spacing):
        # both dilations from one two-sided distance transform: D^1 = Y or within R of it, D^0 = not Y or within R
        near = two_sided_distance(foreground, spacing) <= radius * (1.0 + DISTANCE_RTOL)
        dilated = (foreground | near, ~foreground | near)
        weight_map = np.zeros(label.shape, dtype=np.float32)
        for d in dilated:
            np.maximum(weight_map, np.float32(1.0 / (1.0 + np.count_nonzero(d))), out=weight_map, where=d)
        return weight_map
    components, boxes = label_components(foreground)
    if counts.size <= 2:  # binary: every foreground component holds class 1
        holds = np.ones((len(boxes) + 1, counts.size), dtype=bool)
    else:  # which face-connected foreground components hold which class, in one pass over the image
        pairs = components.astype(np.int64).ravel() * counts.size + label.ravel()
        holds = np.bincount(pairs, minlength=(len(boxes) + 1) * counts.size).reshape(-1, counts.size) > 0
    weight_map = np.zeros(label.shape, dtype=np.float32)
    for c in np.flatnonzero(counts):
        if c == 0:
            # the background's dilation is everything but the foreground deeper than R: erode the foreground
            dilated = ~erode_by_distance(foreground, radius, spacing, components=(components, boxes))
        else:
            dilated = dilate_by_distance(
                label == c, radius, spacing, boxes=[boxes[k - 1] for k in np.flatnonzero(holds[1:, c]) + 1]
            )
        weight = np.float32(1.0 / (1.0 + np.count_nonzero(dilated)))
        np.maximum(weight_map, weight, out=weight_map, where=dilated)
    return weight_map


def _binary_boxes_cover_image(foreground: np.ndarray, radius: float, spacing: Sequence[float] | None) -> bool:
    """Whether the bounding-box path of a binary DBCE map would run distance transforms over at least the whole
    image: the background's on the foreground's box grown by one voxel, the foreground's on that box grown by the
    radius (an upper bound of its components' grown boxes). Then one two-sided transform of the image is cheaper."""
    box = bounding_box(foreground)
    steps = spacing or (1.0,) * foreground.ndim
    margins = [int(radius * (1.0 + DISTANCE_RTOL) // s) for s in steps]
    inner = _box_volume(_grow_box(box, [1] * foreground.ndim, foreground.shape))
    return inner + _box_volume(_grow_box(box, margins, foreground.shape)) >= foreground.size


def uncertainty_weight_map(
    label: Any,
    sigma: float,
    class_weights: Any = None,
    edge_mode: str = "inner",
    spacing: Sequence[float] | None = None,
) -> np.ndarray | torch.Tensor:
    """Bressan et al.'s pixel weight ``w(x) = omega_{c(x)} * delta(x)`` of one spatial label map (Eqs. 4-6).

    ``delta(x) = 1 - exp(-d(x)^2 / (2 sigma^2))`` with ``d(x)`` the Euclidean distance to the nearest edge pixel
    (readings: :class:`UncertaintyWeightMap`).

    Args:
        label: spatial integer label map, numpy or torch.
        sigma: ``> 0``, in voxels, or in mm with ``spacing``.
        class_weights: ``omega_c`` per class, or None for 1 (uncertainty weighting only).
        edge_mode: ``"inner"`` or ``"thick"``.
        spacing: voxel size per axis, or None.

    Returns:
        ``float32`` map of the label's shape, same kind and device as the label.

    Raises:
        ValueError: a class value without a weight in ``class_weights``.
    """
    weights = check_class_weights(class_weights)
    if isinstance(label, torch.Tensor) and not maps_on_device(label):
        return torch.as_tensor(
            uncertainty_weight_map(to_numpy(label), sigma, weights, edge_mode, spacing), device=label.device
        )
    is_torch = isinstance(label, torch.Tensor)
    top = int(label.max()) if (label.numel() if is_torch else label.size) else 0
    if weights is not None and top >= weights.size:
        raise ValueError(
            f"class_weights has {weights.size} values (classes 0..{weights.size - 1}) but the label has class {top}."
        )
    edges = face_edges(label, edge_mode)
    if is_torch:
        if bool(edges.any()):
            dist = euclidean_distance(~edges, spacing)
            delta = -torch.expm1(-(dist.double() ** 2) / (2.0 * sigma**2))
        else:
            delta = torch.ones(label.shape, dtype=torch.float64, device=label.device)
        omega = torch.as_tensor(weights if weights is not None else np.ones(top + 1), device=label.device)
        return (omega[label.long()] * delta).float()
    if edges.any():
        dist = euclidean_distance(~edges, spacing)
        delta = -np.expm1(-np.square(dist) / (2.0 * sigma**2))
    else:
        delta = np.ones(label.shape)
    omega = weights if weights is not None else np.ones(top + 1)
    index = label if np.issubdtype(label.dtype, np.integer) else label.astype(np.intp)  # validated labels: no copy
    return (omega[index] * delta).astype(np.float32)


#: border terms below this fraction of ``w0`` may be dropped (:func:`border_weight_map`'s ``rtol``): the per-object
#: distance transforms then stop at ``sigma * sqrt(2 ln(1 / rtol))``, 5.26 sigma
BORDER_RTOL = 1e-6


def check_border_class_weights(class_weights: Any) -> str | np.ndarray | None:
    """``"balanced"``, ``None`` or a 1-D array of finite non-negative weights, one per class value."""
    if isinstance(class_weights, str):
        if class_weights != "balanced":
            raise ValueError(f"class_weights must be 'balanced', None or one weight per class, got {class_weights!r}.")
        return class_weights
    return check_class_weights(class_weights)


def check_border_args(w0: float, sigma: float, rtol: float = BORDER_RTOL) -> tuple[float, float, float]:
    """``w0 >= 0``, ``sigma > 0`` and ``0 <= rtol < 1``, all finite."""
    w0 = float(w0)
    if not np.isfinite(w0) or w0 < 0:
        raise ValueError(f"w0 must be a finite number >= 0 (the border weight), got {w0}.")
    sigma = check_sigma(sigma)
    rtol = float(rtol)
    if not 0 <= rtol < 1:  # False for NaN
        raise ValueError(f"rtol must be a number in [0, 1) (0: no cutoff), got {rtol}.")
    return w0, sigma, rtol


def two_nearest_object_distances(
    components: np.ndarray, spacing: Sequence[float] | None = None, cutoff: float = math.inf
) -> tuple[np.ndarray, np.ndarray]:
    """Distances ``d1``, ``d2`` from every pixel to its nearest and second-nearest object, up to a cutoff.

    Objects are the labels ``1..n`` of ``components`` (0 is no object); the distance to an object is the Euclidean
    distance to its nearest pixel (0 inside it). Each object's distance transform runs on its bounding box grown by
    ``cutoff`` and updates the two smallest distances of the box's pixels: a pixel outside the grown box is farther
    than ``cutoff`` from the object, so both distances are exact wherever ``d1 + d2 <= cutoff``; elsewhere they are
    no smaller than the exact ones (``inf`` where fewer than two objects lie within ``cutoff``).

    Args:
        components: spatial array of non-negative integer object labels.
        spacing: voxel size per axis (distances in mm), or None (voxels).
        cutoff: distance beyond which an object may be ignored, ``> 0``; ``inf``: whole-image distance transforms.

    Returns:
        ``(d1, d2)``, ``float32`` arrays of the shape of ``components``.
    """
    shape = components.shape
    near = np.full(shape, np.inf, dtype=np.float32)
    second = np.full(shape, np.inf, dtype=np.float32)
    steps = spacing or (1.0,) * components.ndim
    margins = [int(cutoff // s) if math.isfinite(cutoff) else n for s, n in zip(steps, shape)]
    for index, box in enumerate(ndimage.find_objects(components), start=1):
        if box is None:
            continue
        grown = _grow_box(box, margins, shape)
        # the grown box holds the whole object, so the distances to it are exact on the box
        dist = _edt(components[grown] != index, spacing)
        d1, d2 = near[grown], second[grown]  # views: the running two smallest, updated in place
        np.minimum(d2, np.maximum(d1, dist), out=d2)
        np.minimum(d1, dist, out=d1)
    return near, second


def border_weight_map(
    label: Any,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: str | Sequence[float] | np.ndarray | torch.Tensor | None = "balanced",
    spacing: float | Sequence[float] | str | None = None,
    connectivity: int | None = None,
    rtol: float = BORDER_RTOL,
) -> np.ndarray | torch.Tensor:
    """U-Net weight map ``w(x) = w_c(x) + w0 exp(-(d1(x) + d2(x))^2 / (2 sigma^2))`` of one spatial label map
    (Ronneberger et al., Eq. 2).

    Objects are the connected components of every foreground class (value > 0), each class labelled on its own;
    ``d1``, ``d2`` are the distances to the nearest and second-nearest object, applied at every pixel (inside an
    object ``d1 = 0`` and ``d2`` is the distance to the nearest other object); fewer than two objects give no
    border term. ``w_c`` is the class-balancing map (readings and exactness: :class:`BorderWeightMap`).

    Args:
        label: spatial label map ``(H, W[, D])`` of class indices, numpy or torch (whole-valued floats accepted).
        w0: border weight ``>= 0`` (paper: 10).
        sigma: border width ``> 0``, in voxels, or in mm with ``spacing`` (paper: 5 pixels).
        class_weights: ``"balanced"`` (``N / (K n_c)`` of this image), None (``w_c = 1``) or one weight per class
            value.
        spacing: None (voxels), a number or one number per spatial axis (mm), or ``"meta"`` (the label's
            ``MetaTensor`` ``pixdim``).
        connectivity: which touching voxels of one class form one object: 1 = face neighbours (4 in 2-D, 6 in
            3-D), 2 in 3-D = faces and edges (18), None or ``ndim`` = full (8 in 2-D, 26 in 3-D).
        rtol: border terms below ``rtol * w0`` may be dropped (objects farther than the cutoff
            ``sigma * sqrt(2 ln(1 / rtol))`` are ignored); 0 computes every object's distances on the whole image.

    Returns:
        ``float32`` map of the label's shape; numpy for numpy input, a tensor on the label's device otherwise.

    Raises:
        ValueError: ``w0 < 0``, ``sigma <= 0``, a non-finite value, ``rtol`` outside ``[0, 1)``, a label that is
            not 2-D or 3-D or not class indices, a bad ``spacing`` or ``connectivity``, class weights that are not
            1-D, finite and ``>= 0`` or fewer than the label's classes.

    Example:
        >>> import numpy as np
        >>> label = np.zeros((1, 9), dtype=np.uint8); label[0, [2, 6]] = 1  # two one-pixel objects 4 apart
        >>> border_weight_map(label, class_weights=None)[0, 2:7].round(4)  # d1 + d2 = 4 from x = 2 to 6
        array([8.2615, 8.2615, 8.2615, 8.2615, 8.2615], dtype=float32)

    Reference:
        O. Ronneberger, P. Fischer and T. Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation",
        MICCAI 2015, Eq. 2.
    """
    w0, sigma, rtol = check_border_args(w0, sigma, rtol)
    weights = check_border_class_weights(class_weights)
    shape = tuple(getattr(label, "shape", np.shape(label)))
    if len(shape) not in (2, 3):
        raise ValueError(f"label must be a spatial 2-D or 3-D label map (H, W) or (H, W, D), got shape {shape}.")
    cc3d_connectivity(len(shape), connectivity)
    spacing = resolve_spacing(spacing, len(shape), label)
    device = label.device if isinstance(label, torch.Tensor) else None
    arr = validate_label(label, name="label")

    counts = np.bincount(arr.ravel())
    if isinstance(weights, str):  # inverse class frequency of this image, mean pixel weight 1
        omega = np.zeros(counts.size)
        present = counts > 0
        omega[present] = arr.size / (np.count_nonzero(present) * counts[present])
    elif weights is None:
        omega = np.ones(counts.size)
    else:
        if weights.size < counts.size:
            raise ValueError(
                f"class_weights has {weights.size} values (classes 0..{weights.size - 1}) "
                f"but the label has class {counts.size - 1}."
            )
        omega = weights
    out = omega[arr]

    if w0 > 0:
        components, n = label_class_components(arr, connectivity)
        if n >= 2:
            cutoff = sigma * math.sqrt(2.0 * math.log(1.0 / rtol)) if rtol > 0 else math.inf
            d1, d2 = two_nearest_object_distances(components, spacing, cutoff)
            border = np.add(d1, d2, out=d1)  # in place: one full-size temporary less
            np.square(border, out=border)
            border *= -1.0 / (2.0 * sigma**2)
            np.exp(border, out=border)
            border *= w0
            out += border
    out = out.astype(np.float32)
    return out if device is None else torch.as_tensor(out, device=device)


def signed_distance(
    mask: Any, spacing: Sequence[float] | None = None, out: np.ndarray | None = None
) -> np.ndarray | torch.Tensor:
    """Signed distance map of one spatial binary mask in Kervadec's convention (see :func:`signed_distance_map`).

    ``out`` (numpy only): a ``float32`` array of the mask's shape to write the map into (returned)."""
    offset = 1.0 if spacing is None else float(min(spacing))
    if isinstance(mask, torch.Tensor):
        if not maps_on_device(mask):
            return torch.as_tensor(signed_distance(to_numpy(mask), spacing), device=mask.device)
        mask = mask.bool()
        if not bool(mask.any()) or bool(mask.all()):
            return torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
        outside = euclidean_distance(~mask, spacing)
        inside = euclidean_distance(mask, spacing)
        return torch.where(mask, offset - inside, outside).float()
    mask = np.asarray(mask, dtype=bool)
    if not mask.any() or mask.all():
        if out is None:
            return np.zeros(mask.shape, dtype=np.float32)
        out[...] = 0.0
        return out
    # one two-sided transform: the distance to the object outside it, to the background inside it
    sdm = two_sided_distance(mask, spacing)
    np.subtract(np.float32(offset), sdm, out=sdm, where=mask)
    if out is None:
        return sdm
    out[...] = sdm
    return out


def signed_distance_map(masks: Any, spacing: Sequence[float] | None = None) -> np.ndarray | torch.Tensor:
    """Per-channel signed distance maps of channel-first binary masks ``(C, *spatial)`` (Kervadec et al. 2019).

    Outside an object: ``+EDT`` to the object; inside: ``-(EDT to the background - 1)``, so the inner boundary is
    0; an empty channel or a channel filling the whole image gives zeros (readings: :class:`SignedDistanceMap`).

    Returns:
        ``float32`` ``(C, *spatial)``, same kind and device as ``masks``.
    """
    if isinstance(masks, torch.Tensor):
        return torch.stack([signed_distance(m, spacing) for m in masks]) if len(masks) else masks.float()
    masks = np.asarray(masks)
    out = np.empty(masks.shape, dtype=np.float32)
    for mask, channel in zip(masks, out):
        signed_distance(mask, spacing, out=channel)
    return out


def _class_signed_distance_map(
    label: np.ndarray, num_classes: int, spacing: Sequence[float] | None = None
) -> np.ndarray:
    """:func:`signed_distance_map` of the one-hot of a spatial class-index map, ``(num_classes, *spatial)``, one
    class mask at a time (no ``num_classes``-channel boolean stack)."""
    out = np.empty((num_classes,) + label.shape, dtype=np.float32)
    for c, channel in enumerate(out):
        signed_distance(label == c, spacing, out=channel)
    return out


@torch.no_grad()
def batch_map(fn: Callable[..., Any], batch: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """Apply a map function to every channel of every item of a batch ``(B, C, *spatial)``, on its device.

    ``fn`` receives one spatial array and ``kwargs`` and returns a map of the same shape (e.g.
    :func:`dilation_weight_map`, :func:`signed_distance`); CPU tensors go through numpy (``edt``, bounding boxes),
    GPU tensors stay on their device when cuCIM is installed, else the batch goes to the host once and the maps
    come back in one copy (:func:`~monai_imbalance.transforms.utils.maps_on_device`). The losses use it to compute
    maps on the fly, under ``torch.no_grad()``.

    Returns:
        ``float32`` ``(B, C, *spatial)`` on the batch's device.
    """
    batch = batch.detach()
    if hasattr(batch, "as_tensor"):
        batch = batch.as_tensor()
    if maps_on_device(batch):
        maps = [torch.as_tensor(fn(channel, **kwargs), device=batch.device) for item in batch for channel in item]
        return torch.stack(maps).reshape(batch.shape).float()
    host = batch.cpu().numpy()
    out = np.empty(host.shape, dtype=np.float32)
    for index in np.ndindex(*host.shape[:2]):
        out[index] = fn(host[index], **kwargs)
    return torch.from_numpy(out).to(batch.device)


def _label_channel_map(label: Any, fn: Callable[..., Any], spacing: Any, name: str, **kwargs: Any) -> Any:
    """Run ``fn`` on the single channel of ``label`` ``(1, *spatial)`` and return ``(1, *spatial)`` float32 of
    the label's type (a MetaTensor keeps its metadata, so later spatial transforms and ``Invertd`` treat the map
    like the label)."""
    if not hasattr(label, "shape") or len(label.shape) not in (3, 4) or label.shape[0] != 1:
        raise ValueError(
            f"{name} must be channel-first with one channel, (1, H, W) or (1, H, W, D), "
            f"got shape {tuple(getattr(label, 'shape', ()))}."
        )
    ndim = len(label.shape) - 1
    spacing = resolve_spacing(spacing, ndim, label)
    if maps_on_device(label):
        spatial = _check_label_tensor(label.as_tensor() if hasattr(label, "as_tensor") else label, name)[0]
    else:
        spatial = validate_label(label, name=name)[0]
    out = fn(spatial, spacing=spacing, **kwargs)
    result, *_ = convert_to_dst_type(out[None], label, dtype=torch.float32)
    return result


class DilationWeightMap(Transform):
    """DBCE pixel weight map ``M`` of a label (Hosseini and Soleymani Baghshah, Eqs. 3-5).

    For every class ``c`` present, background included: ``D^c = Y^c`` dilated by a disk (3-D: ball) of ``radius``,
    ``W^c = D^c / (1 + sum(D^c))``, and ``M = max_c W^c``. Small objects and their surroundings get the largest
    weights; the loss sums ``M * CE`` over pixels, so the weights normalise themselves.

    Reading: dilation by a Euclidean disk equals thresholding a distance transform, ``D^c = EDT(not Y^c) <= R``,
    with the disk ``{x : |x| <= R}`` (same set as ``skimage.morphology.disk(R)``); its cost does not grow with
    ``R``. R = 0 gives balanced CE weights ``1/(1+n_c)``; an absent class gets weight 0. Hand case: a 5x5 image
    with one foreground pixel in the centre and R = 1 gives ``M = 1/6`` on the 5-pixel cross, ``1/26`` elsewhere.

    Args:
        radius: disk radius ``R >= 0``, in pixels, or in mm when a spacing is given (the paper: 20 pixels for
            polyps and skin lesions at 320x320, 10 for the Synapse organs).
        spacing: None (pixels), a number or one number per spatial axis (mm), or ``"meta"`` for the label's
            ``MetaTensor`` ``pixdim``.

    Input: integer label ``(1, H, W[, D])`` (numpy, torch or MetaTensor; whole-valued floats accepted).
    Output: ``float32`` ``(1, H, W[, D])`` of the input's type; a MetaTensor keeps the label's metadata.

    Raises:
        ValueError: negative radius, a label that is not ``(1, *spatial)`` or not class indices, a bad spacing.

    Example:
        >>> import numpy as np
        >>> label = np.zeros((1, 5, 5), dtype=np.uint8); label[0, 2, 2] = 1
        >>> DilationWeightMap(radius=1)(label)[0, 2].round(4)
        array([0.0385, 0.1667, 0.1667, 0.1667, 0.0385], dtype=float32)
    """

    backend = [TransformBackends.NUMPY, TransformBackends.TORCH]

    def __init__(self, radius: float, spacing: float | Sequence[float] | str | None = None) -> None:
        self.radius = check_radius(radius)
        self.spacing = spacing

    def __call__(self, label: Any) -> Any:
        return _label_channel_map(label, dilation_weight_map, self.spacing, "label", radius=self.radius)


class UncertaintyWeightMap(Transform):
    """Bressan et al.'s pixel weight map: class imbalance times labelling uncertainty (Eqs. 4-6).

    ``w(x) = omega_{c(x)} * delta(x)`` with ``delta(x) = 1 - exp(-d(x)^2 / (2 sigma^2))``: pixels on an edge weigh
    0, pixels far from every edge weigh ``omega_c``.

    Reading: ``omega_c = m / (C * n_c)`` over the whole training set (a dataset statistic, computed once with
    :func:`monai_imbalance.stats.class_frequency_weights`; 0 for a class with ``n_c = 0``). ``d(x)``: Euclidean
    distance (in voxels, or mm when spacing is given) from every pixel, inside and outside objects, to the nearest
    edge pixel. Edge pixel (default ``edge_mode="inner"``): a pixel of a non-background class with a face
    neighbour of another label; ``"thick"`` (both sides) is an option. Our choices where the paper is silent: the
    image border is no edge, and an image without edge pixels (empty, or one class) has ``delta = 1``.

    Args:
        sigma: spread of the uncertainty around edges, ``> 0`` (paper: 1 to 3 pixels at 256x256); mm with spacing.
        class_weights: ``omega_c`` for classes ``0..C-1``, or None for 1 (uncertainty weighting only).
        edge_mode: ``"inner"`` or ``"thick"``.
        spacing: None (pixels), a number or one per axis (mm), or ``"meta"`` (the label's MetaTensor pixdim).

    Input: integer label ``(1, H, W[, D])``. Output: ``float32`` ``(1, H, W[, D])`` of the input's type.

    Raises:
        ValueError: ``sigma <= 0``, class weights that are not 1-D, finite and ``>= 0``, a label class without a
            weight, a label that is not ``(1, *spatial)``.

    Example:
        >>> from monai_imbalance.apps.synthetic import make_synthetic_dataset
        >>> from monai_imbalance.stats import class_frequency_weights
        >>> data = make_synthetic_dataset(4, spatial_size=(64, 64))
        >>> omega = class_frequency_weights((d["label"] for d in data), num_classes=2)
        >>> UncertaintyWeightMap(sigma=2.0, class_weights=omega)(data[0]["label"]).shape
        (1, 64, 64)
    """

    backend = [TransformBackends.NUMPY, TransformBackends.TORCH]

    def __init__(
        self,
        sigma: float,
        class_weights: Sequence[float] | np.ndarray | torch.Tensor | None = None,
        edge_mode: str = "inner",
        spacing: float | Sequence[float] | str | None = None,
    ) -> None:
        self.sigma = check_sigma(sigma)
        self.class_weights = check_class_weights(class_weights)
        if edge_mode not in ("inner", "thick"):
            raise ValueError(f"edge_mode must be 'inner' or 'thick', got {edge_mode!r}.")
        self.edge_mode = edge_mode
        self.spacing = spacing

    def __call__(self, label: Any) -> Any:
        return _label_channel_map(
            label,
            uncertainty_weight_map,
            self.spacing,
            "label",
            sigma=self.sigma,
            class_weights=self.class_weights,
            edge_mode=self.edge_mode,
        )


class BorderWeightMap(Transform):
    """U-Net pixel weight map: class balance plus a border term between close objects (Ronneberger et al., Eq. 2).

    ``w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))``, with ``d1``, ``d2`` the distances to the
    nearest and the second-nearest object and ``w_c`` the class-balancing map: the thin gaps between objects that
    nearly touch get the largest weights, so that the network learns to keep them apart.

    Reading: objects are the connected components of every foreground class (value > 0), each class labelled on
    its own (two touching objects of different classes are two objects; ``connectivity`` as
    :func:`monai_imbalance.utils.label_components`). The distance to an object is the Euclidean distance (voxels,
    or mm with a spacing; ``sigma`` then in mm too) to its nearest pixel, 0 inside it. Eq. 2 holds at every pixel:
    inside an object ``d1 = 0`` and ``d2`` is the distance to the nearest other object. With fewer than two objects
    ``d2`` is infinite and the border term 0. ``class_weights="balanced"``: ``w_c = N / (K n_c)`` of this image
    (``N`` pixels, ``K`` classes present, background included, ``n_c`` pixels of the class), i.e. the inverse class
    frequency of :class:`monai_imbalance.losses.BalancedCELoss` (``N / n_c``, per image for ``batch=False``)
    divided by ``K``, and :func:`monai_imbalance.stats.class_frequency_weights`' ``m / (C n_c)`` of this one image
    with ``C = K`` (equal when the classes present are ``0..K-1``): the mean pixel weight is 1.

    Exactness: each object's distance transform runs on its bounding box grown by the cutoff
    ``sigma * sqrt(2 ln(1 / rtol))`` (``rtol = 1e-6``: 5.26 sigma, 26.3 pixels at the paper's ``sigma = 5``),
    keeping each pixel's two smallest distances. The map is exact wherever the border term is at least
    ``rtol * w0`` (``d1 + d2 <= cutoff``: both objects lie within the cutoff); elsewhere the border term is below
    ``rtol * w0`` and ours is between 0 and it, so the absolute error is below ``1e-6 * w0`` at every pixel (then
    rounded to ``float32``). The cost is one distance transform per object on its grown box, never more than a
    whole-image one.

    Args:
        w0: border weight ``>= 0`` (paper: 10).
        sigma: border width ``> 0``, in pixels (paper: 5), or in mm when a spacing is given.
        class_weights: ``"balanced"`` (per image, see above), None (``w_c = 1``: the border term only, plus 1), or
            one weight per class value (e.g. a training-set statistic from
            :func:`monai_imbalance.stats.class_frequency_weights`).
        spacing: None (pixels), a number or one number per spatial axis (mm), or ``"meta"`` for the label's
            ``MetaTensor`` ``pixdim``.
        connectivity: neighbours that join voxels of one class into one object: 1 = face neighbours (4 in 2-D, 6 in
            3-D), 2 in 3-D = faces and edges (18), None (the package's default) or ``ndim`` = full (8 in 2-D, 26 in
            3-D).

    Input: integer label ``(1, H, W[, D])`` (numpy, torch or MetaTensor; whole-valued floats accepted).
    Output: ``float32`` ``(1, H, W[, D])`` of the input's type; a MetaTensor keeps the label's metadata.

    Raises:
        ValueError: ``w0 < 0``, ``sigma <= 0``, a non-finite value, class weights that are not ``"balanced"``,
            None or 1-D, finite and ``>= 0``, fewer class weights than the label's classes, a label that is not
            ``(1, *spatial)`` or not class indices, a bad spacing or connectivity.

    Example:
        >>> import numpy as np, torch
        >>> from monai_imbalance.losses import PixelWeightedCELoss
        >>> label = np.zeros((1, 1, 9), dtype=np.uint8); label[0, 0, [2, 6]] = 1  # two pixels 4 apart
        >>> weight = BorderWeightMap(w0=10.0, sigma=5.0, class_weights=None)(label)
        >>> weight[0, 0, :5].round(4)  # d1 + d2 = 8, 6, then 4 up to the middle: 1 + 10 exp(-16 / 50) = 8.2615
        array([3.7804, 5.8675, 8.2615, 8.2615, 8.2615], dtype=float32)
        >>> loss = PixelWeightedCELoss(softmax=True, to_onehot_y=True)  # mean over pixels of w(x) CE(x)
        >>> target, weight_map = torch.as_tensor(label)[None], torch.as_tensor(weight)[None]  # (B, 1, H, W)
        >>> round(loss(torch.zeros(1, 2, 1, 9), target, weight_map=weight_map).item(), 4)  # ln 2 * mean(w)
        4.6674

    Reference:
        O. Ronneberger, P. Fischer and T. Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation",
        MICCAI 2015, Eq. 2.
    """

    backend = [TransformBackends.NUMPY, TransformBackends.TORCH]

    def __init__(
        self,
        w0: float = 10.0,
        sigma: float = 5.0,
        class_weights: str | Sequence[float] | np.ndarray | torch.Tensor | None = "balanced",
        spacing: float | Sequence[float] | str | None = None,
        connectivity: int | None = None,
    ) -> None:
        self.w0, self.sigma, _ = check_border_args(w0, sigma)
        self.class_weights = check_border_class_weights(class_weights)
        self.spacing = spacing
        self.connectivity = connectivity

    def __call__(self, label: Any) -> Any:
        return _label_channel_map(
            label,
            border_weight_map,
            self.spacing,
            "label",
            w0=self.w0,
            sigma=self.sigma,
            class_weights=self.class_weights,
            connectivity=self.connectivity,
        )


class SignedDistanceMap(Transform):
    """Per-class signed distance maps ``(C, *spatial)`` for the boundary losses (Kervadec et al., MIDL 2019).

    Outside an object ``+EDT`` to the object; inside ``-(EDT to the background - 1)``, so the inner boundary is 0;
    an empty class or a class filling the whole image gives zeros; ``float32``.

    Reading: the convention of Kervadec's reference code. Reference: a 6x6 mask with a 4x4 square at rows/cols
    1-4 gives corners 1.4142, outer ring 1, inner boundary 0, centre 2x2 -1. With a spacing (mm) the ``1`` is the
    smallest voxel size, so the inner boundary stays 0 and the inside ``<= 0`` (the reference code subtracts 1
    whatever the spacing, which makes the inside positive below 1 mm).

    Args:
        num_classes: one-hot an index label ``(1, *spatial)`` into this many channels first (channel ``c`` is the
            map of class ``c``; match the loss input's channels, background included). None: every channel of the
            input is a binary mask (a binary ``(1, *spatial)`` mask gives its foreground's map, for one-channel
            sigmoid outputs; a one-hot ``(C, *spatial)`` label gives ``C`` maps).
        spacing: None (pixels), a number or one per axis (mm), or ``"meta"`` (the label's MetaTensor pixdim).

    Input: ``(1, H, W[, D])`` label or ``(C, H, W[, D])`` masks. Output: ``float32`` ``(C, H, W[, D])`` of the
    input's type.

    Raises:
        ValueError: a label value ``>= num_classes``, a mask that is not binary with ``num_classes=None``, an
            input that is not channel-first 2-D or 3-D.

    Example:
        >>> import numpy as np
        >>> mask = np.zeros((1, 6, 6), dtype=np.uint8); mask[0, 1:5, 1:5] = 1
        >>> SignedDistanceMap()(mask)[0, :3, :3].round(4)
        array([[ 1.4142,  1.    ,  1.    ],
               [ 1.    ,  0.    ,  0.    ],
               [ 1.    ,  0.    , -1.    ]], dtype=float32)
    """

    backend = [TransformBackends.NUMPY, TransformBackends.TORCH]

    def __init__(self, num_classes: int | None = None, spacing: float | Sequence[float] | str | None = None) -> None:
        if num_classes is not None and int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1 or None, got {num_classes}.")
        self.num_classes = None if num_classes is None else int(num_classes)
        self.spacing = spacing

    def __call__(self, label: Any) -> Any:
        shape = tuple(getattr(label, "shape", ()))
        if len(shape) not in (3, 4):
            raise ValueError(f"label must be channel-first (C, H, W) or (C, H, W, D), got shape {shape}.")
        spacing = resolve_spacing(self.spacing, len(shape) - 1, label)
        if maps_on_device(label):
            values = _check_label_tensor(label.as_tensor() if hasattr(label, "as_tensor") else label, "label")
            top = int(values.max()) if values.numel() else 0
        else:
            values = validate_label(label, name="label")
            top = int(values.max())
        if self.num_classes is not None:
            if shape[0] != 1:
                raise ValueError(f"num_classes={self.num_classes} expects an index label (1, *spatial), got {shape}.")
            if top >= self.num_classes:
                raise ValueError(
                    f"label has value {top} but num_classes={self.num_classes} "
                    f"(valid values 0..{self.num_classes - 1})."
                )
            if not isinstance(values, torch.Tensor):
                out = _class_signed_distance_map(values[0], self.num_classes, spacing)
                result, *_ = convert_to_dst_type(out, label, dtype=torch.float32)
                return result
            classes = np.arange(self.num_classes).reshape((-1,) + (1,) * (len(shape) - 1))
            masks = values == torch.as_tensor(classes, device=values.device)
        else:
            if top > 1:
                raise ValueError(
                    f"label has value {top}: without num_classes every channel must be a binary mask; "
                    "pass num_classes to one-hot an index label."
                )
            masks = values > 0
        out = signed_distance_map(masks, spacing)
        result, *_ = convert_to_dst_type(out, label, dtype=torch.float32)
        return result


class DilationWeightMapd(LabelToKeyd):
    """Dictionary form of :class:`DilationWeightMap`: stores the map of ``d[key]`` under ``key + postfix``
    (``"label_weight"`` by default), so that ``CacheDataset`` caches it and later spatial transforms can move it.

    Args:
        keys: label keys.
        radius, spacing: see :class:`DilationWeightMap`.
        postfix: appended to each key to name its map.
        allow_missing_keys: don't raise for a missing key.
    """

    backend = DilationWeightMap.backend

    def __init__(
        self,
        keys: KeysCollection,
        radius: float,
        spacing: float | Sequence[float] | str | None = None,
        postfix: str = "_weight",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, DilationWeightMap(radius, spacing), postfix, allow_missing_keys)


class UncertaintyWeightMapd(LabelToKeyd):
    """Dictionary form of :class:`UncertaintyWeightMap`: the map of ``d[key]`` goes to ``key + postfix``.

    Args:
        keys: label keys.
        sigma, class_weights, edge_mode, spacing: see :class:`UncertaintyWeightMap`.
        postfix: appended to each key to name its map.
        allow_missing_keys: don't raise for a missing key.
    """

    backend = UncertaintyWeightMap.backend

    def __init__(
        self,
        keys: KeysCollection,
        sigma: float,
        class_weights: Sequence[float] | np.ndarray | torch.Tensor | None = None,
        edge_mode: str = "inner",
        spacing: float | Sequence[float] | str | None = None,
        postfix: str = "_weight",
        allow_missing_keys: bool = False,
    ) -> None:
        transform = UncertaintyWeightMap(sigma, class_weights, edge_mode, spacing)
        super().__init__(keys, transform, postfix, allow_missing_keys)


class BorderWeightMapd(LabelToKeyd):
    """Dictionary form of :class:`BorderWeightMap`: stores the map of ``d[key]`` under ``key + postfix``
    (``"label_weight"`` by default), so that ``CacheDataset`` caches it and later spatial transforms can move it;
    pass it to the loss as ``weight_map`` (inside a trainer: ``loss_inputs={"weight_map": "label_weight"}``).

    Args:
        keys: label keys.
        w0, sigma, class_weights, spacing, connectivity: see :class:`BorderWeightMap`.
        postfix: appended to each key to name its map.
        allow_missing_keys: don't raise for a missing key.
    """

    backend = BorderWeightMap.backend

    def __init__(
        self,
        keys: KeysCollection,
        w0: float = 10.0,
        sigma: float = 5.0,
        class_weights: str | Sequence[float] | np.ndarray | torch.Tensor | None = "balanced",
        spacing: float | Sequence[float] | str | None = None,
        connectivity: int | None = None,
        postfix: str = "_weight",
        allow_missing_keys: bool = False,
    ) -> None:
        transform = BorderWeightMap(w0, sigma, class_weights, spacing, connectivity)
        super().__init__(keys, transform, postfix, allow_missing_keys)


class SignedDistanceMapd(LabelToKeyd):
    """Dictionary form of :class:`SignedDistanceMap`: the maps of ``d[key]`` go to ``key + postfix``
    (``"label_sdm"`` by default).

    Args:
        keys: label keys.
        num_classes, spacing: see :class:`SignedDistanceMap`.
        postfix: appended to each key to name its map.
        allow_missing_keys: don't raise for a missing key.
    """

    backend = SignedDistanceMap.backend

    def __init__(
        self,
        keys: KeysCollection,
        num_classes: int | None = None,
        spacing: float | Sequence[float] | str | None = None,
        postfix: str = "_sdm",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, SignedDistanceMap(num_classes, spacing), postfix, allow_missing_keys)


DilationWeightMapD = DilationWeightMapDict = DilationWeightMapd
UncertaintyWeightMapD = UncertaintyWeightMapDict = UncertaintyWeightMapd
BorderWeightMapD = BorderWeightMapDict = BorderWeightMapd
SignedDistanceMapD = SignedDistanceMapDict = SignedDistanceMapd
