"""``monai-imbalance plan``: from a dataset's fingerprint and imbalance statistics to a ready training config.

nnU-Net and MONAI Auto3DSeg plan a network's settings from a dataset's fingerprint (dimensionality, channels,
spacing, intensities, shapes); neither plans for imbalance. This planner does both, for the ``generic_seg`` bundle
(``bundles/generic_seg``): it streams over the training cases of a MONAI datalist, a Medical Segmentation Decathlon
``dataset.json`` or a folder of image/label pairs (:mod:`monai_imbalance.apps.user_data`), one case in memory at a
time, and writes a bundle override (``plan.yaml``) with the reason for every choice beside it:

- geometry (nnU-Net's rules): dimensionality, input channels, classes (names from the dataset file), intensity
  normalisation per modality (CT: clip to the 0.5 / 99.5 percentiles of the foreground intensities, then the
  foreground mean and standard deviation; 8-bit images: 0..255 to 0..1; otherwise z-score per image), for 3-D the
  median spacing as target spacing, and a DynUNet (strides and kernels from the patch and spacing) with the largest
  patch whose training memory fits a stated GPU budget;
- imbalance handling (the five papers), computed at the training resolution: Mask-Aware Cropping and its ``rho``
  (the largest that keeps a chosen share of the images with foreground croppable at the patch size), the DBCE
  radius from the object sizes, the class weights ``omega_c`` (Eq. 5 of Bressan et al.), the loss family for the
  DIBE paper's imbalance level, and how many deep-supervision heads the small objects survive.

Every decision is a small function of plain numbers (:func:`choose_rho`, :func:`choose_radius`, ...), so that each
can be checked by hand; :func:`plan_dataset` gathers the numbers and calls them.

Example::

    monai-imbalance plan --datalist data.json --out plan.yaml --gpu-memory 8
    python -m monai.bundle run --config_file "['configs/train.yaml','plan.yaml']"
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monai_imbalance.stats import DIBE_PAPER_LAMBDA, ImageLabelSummary, ImbalanceReport, ImbalanceStatistics

__all__ = [
    "PlanError",
    "PLAN_VERSION",
    "CaseFingerprint",
    "Plan",
    "fingerprint_case",
    "choose_dims",
    "choose_labels",
    "choose_intensity",
    "choose_spacing",
    "choose_image_size",
    "plan_dynunet",
    "fit_patch",
    "training_memory",
    "choose_crop",
    "choose_rho",
    "choose_mac_stride",
    "choose_radius",
    "choose_loss",
    "choose_deep_supervision",
    "plan_dataset",
]

PLAN_VERSION = 1
#: nnU-Net's reference GPU budget (GiB) for its default plans
DEFAULT_GPU_MEMORY_GIB = 8.0
#: GiB kept free for the CUDA context, cuDNN workspaces and the data loader's pinned buffers
MEMORY_RESERVE_GIB = 1.0
#: share of the images with foreground that the planned MAC rho keeps croppable
DEFAULT_CROPPABLE_SHARE = 0.8
#: the largest rho of the MAC paper's grid (Sec. 4.3): the plan never asks for more
MAX_RHO = 0.75
#: foreground share at and above which the plan crops at random: the MAC paper saw no gain from MAC on HAM10000 (30%)
RANDOM_CROP_FOREGROUND = 0.25
#: 2-D images whose median longest side is above this are resized (the papers train at 320-448 px)
MAX_2D_SIDE = 512
#: smallest feature map edge a pooling may leave (nnU-Net: 4)
MIN_FEATURE_SIZE = 4
#: most poolings per axis (DynUNet levels - 1)
MAX_POOLS = 5
#: deep-supervision heads are kept at the levels where at most this share of the objects is lost
DS_MAX_LOST_SHARE = 0.1
#: foreground intensities sampled per case for the CT normalisation (nnU-Net: 10,000)
INTENSITY_SAMPLES = 10_000
#: batch of 3-D training (nnU-Net's minimum); 2-D grows it up to the MAC paper's 32 while it fits
BATCH_3D = 2
MAX_BATCH_2D = 32
_GIB = 1024.0**3


class PlanError(ValueError):
    """The data cannot be planned (mixed dimensionality, labels not matching images, classes absent, ...)."""


# ------------------------------------------------------------------------------------------------- fingerprint


@dataclass
class CaseFingerprint:
    """What the planner keeps of one training case (never the arrays themselves)."""

    id: str
    image: str
    label: str
    spatial_shape: tuple[int, ...]
    label_shape: tuple[int, ...]
    channels: int
    spacing: tuple[float, ...]
    integer_image: bool  # every intensity is a whole number in 0..255 (an 8-bit image)
    label_values: tuple[int, ...]  # values of the label (grey for multi-channel masks), whole numbers
    label_channels: int
    label_suffix: str
    samples: np.ndarray  # (channels, n) foreground intensities, float32


def _suffix(path: Any) -> str:
    """:func:`monai_imbalance.apps.io.label_suffix` of a path, or of the first of a list of channel files."""
    from monai_imbalance.apps.io import label_suffix

    return label_suffix(path[0] if isinstance(path, (list, tuple)) else path)


def _is_lossy_or_colour_mask(suffix: str, channels: int) -> bool:
    """JPEG masks (compression noise) and colour masks are read as binary masks thresholded at 127."""
    return suffix in (".jpg", ".jpeg") or channels > 1


def _load(path: Any) -> Any:
    from monai.transforms import LoadImage

    return LoadImage(image_only=True, ensure_channel_first=True)(path)


def _grey(label: Any) -> np.ndarray:
    """A loaded label (C, *spatial) as one spatial array: colour masks (Kvasir's 3-channel JPEGs) averaged."""
    arr = np.asarray(label)
    return arr[0] if arr.shape[0] == 1 else arr.mean(axis=0)


def fingerprint_case(item: Mapping[str, Any], index: int = 0, seed: int = 0) -> CaseFingerprint:
    """Load one case the way the generic bundle does (``LoadImage(image_only=True, ensure_channel_first=True)``)
    and keep its shapes, spacing, label values and a sample of its foreground intensities.

    Raises:
        PlanError: a label with values that are not whole numbers (and not a colour or JPEG mask).
    """
    case = str(item.get("id", index))
    image, label = _load(item["image"]), _load(item["label"])
    arr = np.asarray(image, dtype=np.float32)
    grey = _grey(label)
    suffix = _suffix(item["label"])
    if _is_lossy_or_colour_mask(suffix, label.shape[0]):
        values = tuple(int(v) for v in np.unique(grey > 127))  # read as a binary mask (threshold 127)
        foreground = grey > 127
    else:
        if not np.array_equal(grey, np.round(grey)):
            bad = grey[grey != np.round(grey)].ravel()[0]
            raise PlanError(f"label of case {case} ({item['label']}) holds {bad:g}, not a class index: labels must be "
                            "whole numbers.")
        values = tuple(int(v) for v in np.unique(grey))
        foreground = grey > 0
    spacing = tuple(float(s) for s in np.asarray(getattr(image, "pixdim", [1.0] * (arr.ndim - 1))).tolist())
    rng = np.random.default_rng([seed, index])
    where = np.flatnonzero(foreground) if foreground.shape == arr.shape[1:] else np.zeros(0, dtype=np.int64)
    if where.size > INTENSITY_SAMPLES:
        where = rng.choice(where, INTENSITY_SAMPLES, replace=False)
    samples = arr.reshape(arr.shape[0], -1)[:, where].astype(np.float32)
    integer = bool(arr.size and arr.min() >= 0 and arr.max() <= 255 and np.array_equal(arr, np.round(arr)))
    return CaseFingerprint(case, str(item["image"]), str(item["label"]), tuple(arr.shape[1:]), tuple(grey.shape),
                           int(arr.shape[0]), spacing, integer, values, int(label.shape[0]), suffix, samples)


# --------------------------------------------------------------------------------------------------- decisions


def choose_dims(cases: Sequence[CaseFingerprint]) -> tuple[int, int, str]:
    """``(spatial_dims, in_channels, reason)``.

    Raises:
        PlanError: mixed dimensionality or channel counts, or a label whose shape is not the image's.
    """
    for c in cases:
        if c.label_shape != c.spatial_shape:
            raise PlanError(f"label of case {c.id} has shape {list(c.label_shape)} but its image "
                            f"{list(c.spatial_shape)} ({c.label} vs {c.image}): labels must match their images.")
    dims = {len(c.spatial_shape) for c in cases}
    if len(dims) > 1:
        examples = {len(c.spatial_shape): c.image for c in cases}
        raise PlanError("mixed dimensionality: " + ", ".join(f"{d}-D (e.g. {p})" for d, p in sorted(examples.items()))
                        + "; plan 2-D and 3-D data separately.")
    if not dims <= {2, 3}:
        raise PlanError(f"images must be 2-D or 3-D, got {dims.pop()}-D ({cases[0].image}).")
    channels = {c.channels for c in cases}
    if len(channels) > 1:
        examples = {c.channels: c.image for c in cases}
        raise PlanError("images have different channel counts: " + ", ".join(
            f"{k} (e.g. {p})" for k, p in sorted(examples.items())) + ".")
    d, ch = dims.pop(), channels.pop()
    return d, ch, f"every case is {d}-D with {ch} channel{'s' if ch > 1 else ''}"


def choose_labels(
    cases: Sequence[CaseFingerprint], class_names: Mapping[int, str] | None = None
) -> tuple[int, list[str], float | None, str]:
    """``(num_classes, foreground names, label_threshold, reason)``.

    A dataset whose masks are JPEG or colour files, or hold only 0 and 255, is binary: read with a threshold of 127.
    Otherwise label values are class indices: ``0..C-1`` with ``C`` from the dataset's ``labels`` when given, else
    the largest value plus one.

    Raises:
        PlanError: values outside the declared classes, a class absent from every case, no foreground at all.
    """
    values = set().union(*(c.label_values for c in cases))
    binary_255 = values <= {0, 255} and 255 in values
    noisy = any(_is_lossy_or_colour_mask(c.label_suffix, c.label_channels) for c in cases)
    if noisy or binary_255:
        threshold: float | None = 127.0
        present = {1 if v else 0 for v in values} if not noisy else set(values)
        why = "JPEG or colour masks" if noisy else "masks hold only 0 and 255"
        num_classes, reason = 2, f"binary labels ({why}): read as foreground where the mask is above 127"
    else:
        threshold, present = None, values
        if min(values) < 0:
            raise PlanError(f"label values must be >= 0, got {min(values)}.")
        if class_names:
            num_classes = max(int(k) for k in class_names) + 1
            where = "the dataset's labels"
        else:
            num_classes = max(values) + 1
            where = "the largest label value + 1"
        outside = sorted(v for v in values if v >= num_classes)
        if outside:
            bad = next(c for c in cases if set(c.label_values) & set(outside))
            raise PlanError(f"label value {outside[0]} of case {bad.id} ({bad.label}) is not one of the dataset's "
                            f"{num_classes} classes ({where}).")
        reason = f"{num_classes} classes ({where}); labels are class indices"
    if present == {0}:
        raise PlanError("no case has any foreground pixel: check the labels (and their value encoding).")
    absent = [c for c in range(1, num_classes) if c not in present]
    if absent:
        names = [class_names.get(c, str(c)) if class_names else str(c) for c in absent]
        listed = ", ".join(f"{c} ({n})" for c, n in zip(absent, names))
        plural = len(absent) > 1
        raise PlanError(f"class{'es' if plural else ''} {listed} {'are' if plural else 'is'} absent from every "
                        "training case: nothing can learn them; drop them from the labels or add cases that hold them.")
    if class_names and threshold is None:
        names = [str(class_names.get(c, f"class {c}")) for c in range(1, num_classes)]
    elif class_names and threshold is not None:
        names = [str(class_names.get(1, class_names.get(255, "foreground")))]
    else:
        names = ["foreground"] if num_classes == 2 else [f"class {c}" for c in range(1, num_classes)]
    return num_classes, names, threshold, reason


def choose_intensity(
    cases: Sequence[CaseFingerprint], modality: Mapping[int, str] | None, spatial_dims: int
) -> tuple[dict[str, Any], str]:
    """nnU-Net's normalisation rule: CT (every channel named CT) clips to the 0.5 / 99.5 percentiles of the
    foreground intensities and subtracts their mean, divides by their standard deviation (one linear map after the
    clip, ``kind: ct``); 8-bit 2-D images (PNG, JPEG, every value a whole number in 0..255) map 0..255 to 0..1
    (``kind: range``, nnU-Net's ``rgb_to_0_1``); anything else is z-scored per image and channel
    (``kind: zscore``)."""
    names = [str(v).strip().lower() for v in (modality or {}).values()]
    if names and all(n == "ct" for n in names):
        pooled = np.concatenate([c.samples.reshape(-1) for c in cases]) if cases else np.zeros(0)
        if pooled.size == 0:
            raise PlanError("CT normalisation needs foreground intensities, and no case has foreground.")
        lower, upper = (float(v) for v in np.percentile(pooled, [0.5, 99.5]))
        mean, std = float(pooled.mean()), float(pooled.std())
        std = std if std > 0 else 1.0
        spec = {"kind": "ct", "lower": round(lower, 4), "upper": round(upper, 4), "mean": round(mean, 4),
                "std": round(std, 4)}
        return spec, (f"CT (dataset modality): clip to the 0.5/99.5 percentiles of {pooled.size:,} foreground "
                      f"intensities [{lower:.4g}, {upper:.4g}], then (x - {mean:.4g}) / {std:.4g} (nnU-Net)")
    if spatial_dims == 2 and all(c.integer_image for c in cases):
        return {"kind": "range", "a_min": 0.0, "a_max": 255.0}, "8-bit images: 0..255 scaled to 0..1"
    what = f"modality {', '.join(sorted(set(names)))}" if names else "not CT, not 8-bit"
    return {"kind": "zscore", "nonzero": False}, f"{what}: z-score per image and channel (nnU-Net)"


def choose_spacing(spacings: Sequence[Sequence[float]]) -> tuple[list[float] | None, list[float], str]:
    """``(pixdim or None, target spacing, reason)``: the median spacing per axis (nnU-Net); None (no resampling)
    when every case already has it."""
    arr = np.asarray(spacings, dtype=np.float64)
    target = [round(float(v), 4) for v in np.median(arr, axis=0)]
    if np.allclose(arr, np.asarray(target)[None], rtol=1e-3, atol=1e-6):
        return None, target, f"every case has spacing {target}: no resampling"
    lo, hi = arr.min(0).round(4).tolist(), arr.max(0).round(4).tolist()
    return target, target, f"median spacing of the cases (nnU-Net; from {lo} to {hi})"


def choose_image_size(shapes: Sequence[Sequence[int]], max_side: int = MAX_2D_SIDE) -> tuple[list[int] | None, str]:
    """2-D: ``(image_size or None, reason)``. Images keep their size unless the median longest side is above
    ``max_side``; then every image is resized to the median shape scaled to that longest side (rounded to 16)."""
    median = np.median(np.asarray(shapes, dtype=np.float64), axis=0)
    if median.max() <= max_side:
        same = len({tuple(s) for s in shapes}) == 1
        return None, ("every image is " if same else "median image ") + "x".join(
            str(int(v)) for v in median) + f" (longest side <= {max_side}): no resizing"
    scale = max_side / median.max()
    size = [max(16, int(round(v * scale / 16)) * 16) for v in median]
    return size, (f"median image {'x'.join(str(int(v)) for v in median)} is larger than {max_side} px: resized to "
                  f"{'x'.join(map(str, size))} (the papers train at 320-448 px)")


def plan_dynunet(
    patch: Sequence[int], spacing: Sequence[float], max_pools: int = MAX_POOLS, min_feature: int = MIN_FEATURE_SIZE
) -> tuple[list[list[int]], list[list[int]]]:
    """DynUNet ``(kernel_size, strides)`` for a patch (nnU-Net's rule, simplified): at each level an axis is halved
    while its feature map stays at least ``min_feature`` and its current spacing is at most twice the finest
    current spacing (a coarse axis waits until the others catch up); its kernel is 3 on such axes and 1 on the
    coarse ones. At most ``max_pools`` levels."""
    current, size = [float(s) for s in spacing], [int(p) for p in patch]
    finest = min(current)
    kernels = [[3 if c <= 2 * finest else 1 for c in current]]
    strides = [[1] * len(size)]
    for _ in range(max_pools):
        finest = min(current)
        pool = [c <= 2 * finest and s // 2 >= min_feature for c, s in zip(current, size)]
        if not any(pool):
            break
        strides.append([2 if p else 1 for p in pool])
        current = [c * 2 if p else c for c, p in zip(current, pool)]
        size = [s // 2 if p else s for s, p in zip(size, pool)]
        finest = min(current)
        kernels.append([3 if c <= 2 * finest else 1 for c in current])
    return kernels, strides


def _divisors(strides: Sequence[Sequence[int]]) -> list[int]:
    return [int(np.prod([s[a] for s in strides])) for a in range(len(strides[0]))]


def training_memory(
    spatial_dims: int, in_channels: int, out_channels: int, kernels: Sequence[Sequence[int]],
    strides: Sequence[Sequence[int]], deep_supervision: bool = True, deep_supr_num: int = 1,
) -> tuple[float, float]:
    """``(bytes per patch voxel and batch item, fixed bytes)`` of training the DynUNet: the tensors autograd saves
    for the backward pass, measured on one forward of twice the smallest valid patch (every level's size is the
    patch's divided by its strides, so this grows linearly with the patch), plus parameters, gradients and the
    two Adam moments (16 bytes per parameter). Float32 throughout: an upper bound of mixed-precision training."""
    import torch
    from monai.networks.nets import DynUNet

    net = DynUNet(spatial_dims, in_channels, out_channels, kernels, strides, strides[1:], res_block=True,
                  deep_supervision=deep_supervision, deep_supr_num=max(1, min(deep_supr_num, len(strides) - 2)))
    net.train()
    probe = [2 * d for d in _divisors(strides)]  # 2 per axis at the bottom: instance norm needs more than 1
    storages: dict[int, int] = {}
    weights = {p.untyped_storage().data_ptr() for p in net.parameters()}  # saved too, but counted as parameters

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = net(torch.zeros(1, in_channels, *probe))
    saved = sum(storages.values()) + out.numel() * out.element_size() * 2  # the output and its gradient
    params = sum(p.numel() for p in net.parameters()) * 16.0
    return saved / float(np.prod(probe)), params


def fit_patch(
    start: Sequence[int], spacing: Sequence[float],
    memory: Callable[[list[int], list[list[int]], list[list[int]]], float],
    budget: float, plan_network: Callable[..., tuple[list[list[int]], list[list[int]]]] = plan_dynunet,
) -> tuple[list[int], list[list[int]], list[list[int]], float, int]:
    """The largest patch from ``start`` whose training needs at most ``budget`` bytes.

    Each step plans the network for the patch (:func:`plan_dynunet`), rounds the patch down to a multiple of the
    network's divisor per axis (at least one divisor), and asks ``memory(patch, kernels, strides)``; while that is
    over the budget, the axis with the largest physical extent (size x spacing; the first on ties) loses one
    divisor, while it stays at least ``4 * MIN_FEATURE_SIZE`` (two poolings).

    Returns:
        ``(patch, kernels, strides, bytes, steps)``.

    Raises:
        PlanError: even the smallest patch does not fit, or the network would have fewer than 2 poolings.
    """
    patch, steps = [int(p) for p in start], 0
    while True:
        kernels, strides = plan_network(patch, spacing)
        if len(strides) < 3:
            raise PlanError(f"a patch of {patch} allows fewer than 2 poolings (DynUNet needs 3 levels): the images are "
                            f"too small (at least {2 * 2 * MIN_FEATURE_SIZE} px per axis).")
        div = _divisors(strides)
        patch = [max(d, (p // d) * d) for p, d in zip(patch, div)]
        need = float(memory(patch, kernels, strides))
        if need <= budget:
            return patch, kernels, strides, need, steps
        # an axis shrinks by its divisor while it keeps room for two poolings (4 x the smallest feature map)
        extents = [p * s if p - d >= 4 * MIN_FEATURE_SIZE else -1.0 for p, s, d in zip(patch, spacing, div)]
        if max(extents) < 0:
            raise PlanError(f"the smallest patch {patch} needs {need / _GIB:.2f} GiB to train, more than the "
                            f"{budget / _GIB:.2f} GiB budget: raise --gpu-memory.")
        axis = int(np.argmax(extents))
        patch[axis] -= div[axis]
        steps += 1


def choose_crop(
    foreground_fraction: float, shapes: Sequence[Sequence[int]], roi: Sequence[int]
) -> tuple[str, str]:
    """``(crop name, reason)``: ``none`` when every image has one shape that the patch covers; ``random`` at
    ``RANDOM_CROP_FOREGROUND`` or more foreground (MAC paper: no gain at HAM10000's 30%); ``mac`` otherwise (its
    gains were at 3% and 16% foreground)."""
    same = len({tuple(s) for s in shapes}) == 1
    if same and all(r >= s for r, s in zip(roi, shapes[0])):
        return "none", f"the patch {list(roi)} covers every (equal-sized) image: no crop"
    share = 100 * foreground_fraction
    if foreground_fraction >= RANDOM_CROP_FOREGROUND:
        return "random", (f"{share:.3g}% foreground (>= {100 * RANDOM_CROP_FOREGROUND:.0f}%): random crops; the MAC "
                          "paper saw no gain from MAC at HAM10000's 30%")
    return "mac", (f"{share:.3g}% foreground: Mask-Aware Cropping (the MAC paper's gains were at 3% and 16% "
                   "foreground)")


def choose_rho(shares: Sequence[float], croppable_share: float = DEFAULT_CROPPABLE_SHARE) -> tuple[float, str]:
    """The largest MAC ``rho`` that keeps ``croppable_share`` of the images with foreground croppable.

    ``shares`` are the best window foreground shares of the images with foreground (at the patch size and MAC
    stride). With them sorted from largest to smallest, ``k = ceil(croppable_share * n)`` images must reach rho:
    rho is the ``k``-th largest share, rounded down to 4 decimals and at most :data:`MAX_RHO`.
    """
    if not 0.0 < croppable_share <= 1.0:
        raise ValueError(f"croppable_share must be in (0, 1], got {croppable_share}.")
    values = sorted((float(s) for s in shares), reverse=True)
    if not values:
        raise PlanError("no training image has foreground: MAC's rho cannot be planned.")
    k = math.ceil(croppable_share * len(values) - 1e-9)
    rho = min(MAX_RHO, math.floor(values[k - 1] * 1e4) / 1e4)
    capped = " (capped at the paper grid's 0.75)" if values[k - 1] > MAX_RHO else ""
    return rho, (f"largest rho keeping {k} of {len(values)} images with foreground ({100 * k / len(values):.3g}% >= "
                 f"{100 * croppable_share:.3g}%) croppable at the patch size{capped}")


def choose_mac_stride(roi: Sequence[int]) -> list[int]:
    """MAC window stride per axis: the MAC paper's 16 px for its 224 px crops, and at most an eighth of the patch
    on small axes (at least 1)."""
    return [max(1, min(16, int(r) // 8)) for r in roi]


def choose_radius(
    median_object: float, spatial_dims: int, spacing: Sequence[float] | None = None
) -> tuple[float, str]:
    """DBCE dilation radius: half the equivalent radius of the median object (pixels or voxels at the training
    resolution; in mm when ``spacing`` is given, for 3-D). The equivalent radius is that of the disk
    (``sqrt(A / pi)``) or ball (``cbrt(3 V / (4 pi))``) of the object's size. Of the DBCE paper's two values, 20 px
    (polyps and skin lesions) and 10 px (abdominal organs) at 320 x 320, the smaller objects got the smaller
    radius; the paper's Fig. 5 loses the balancing effect at large radii and the class weights' bound at small."""
    size = float(median_object) * (float(np.prod(spacing)) if spacing is not None else 1.0)
    equivalent = math.sqrt(size / math.pi) if spatial_dims == 2 else (3 * size / (4 * math.pi)) ** (1 / 3)
    unit = "mm" if spacing is not None else "px"
    radius = max(1.0, round(equivalent / 2, 1 if spacing is not None else 0))
    return radius, (f"half the equivalent radius ({equivalent:.3g} {unit}) of the median object "
                    f"({median_object:.6g} {'pixels' if spatial_dims == 2 else 'voxels'})")


def choose_loss(report: ImbalanceReport) -> tuple[str, str]:
    """The loss family for the DIBE paper's imbalance level of the rarest foreground class: DIBE_Reg for extreme
    (1:1000 and rarer), DIBE for high and medium (the paper's recommendation, Sec. 5); below 1:100 the paper makes
    none, and the plan takes MONAI's Dice + cross entropy, which the DBCE paper finds DBCE on a par with."""
    from monai_imbalance.stats import imbalance_level

    rows = [r for r in report.classes if r.index > 0 and r.background_per_pixel]
    rarest = max(rows, key=lambda r: r.background_per_pixel)
    level = imbalance_level(rarest.background_per_pixel)
    which = f"rarest class {rarest.name} at FG:BG {rarest.ratio_to_background}: {level} imbalance"
    if level == "extreme":
        return "dibe_reg", which + " (DIBE paper: DIBE_Reg for extreme imbalance)"
    if level in ("high", "medium"):
        return "dibe", which + f" (DIBE paper: DIBE for medium and high imbalance; lambda {DIBE_PAPER_LAMBDA})"
    return "dice_ce", which + " (the DIBE paper recommends nothing below 1:100: MONAI's Dice + CE)"


def choose_deep_supervision(objects: int, lost: Sequence[int], max_heads: int) -> tuple[bool, int, str]:
    """``(deep_supervision, deep_supr_num, reason)``: one head per level ``1, 2, ...`` (resolution ``1/2**l``) as
    long as that level's ``"area"`` target (a cell is an object's when at least half of it is) loses at most
    :data:`DS_MAX_LOST_SHARE` of the objects, up to ``max_heads`` (DynUNet: levels - 2). No deep supervision when
    the objects are lost already at 1/2."""
    heads = 0
    for count in list(lost)[:max_heads]:
        if objects and count / objects > DS_MAX_LOST_SHARE:
            break
        heads += 1
    shares = ", ".join(f"1/{2 ** (i + 1)}: {count}" for i, count in enumerate(list(lost)[:max_heads]))
    if heads == 0:
        return False, 1, (f"small objects: more than {100 * DS_MAX_LOST_SHARE:.0f}% of the {objects} objects vanish at "
                          f"1/2 resolution (objects lost {shares}): no deep supervision")
    return True, heads, (f"heads down to 1/{2 ** heads}: objects lost per level ({shares}) of {objects}, at most "
                         f"{100 * DS_MAX_LOST_SHARE:.0f}% allowed")


# --------------------------------------------------------------------------------------------------- the plan


@dataclass
class Plan:
    """The decisions (``values``: the bundle ids of ``plan.yaml``), their reasons and the statistics behind them."""

    values: dict[str, Any]
    reasons: dict[str, str]
    report: ImbalanceReport
    source: str
    kind: str
    num_cases: int
    notes: list[str] = field(default_factory=list)

    def to_yaml(self) -> str:
        """``plan.yaml``: each bundle id with its reason in a comment above it, then ``plan_reasons`` (the same
        reasons, for scripts) and ``plan_info``."""
        import yaml

        class _NoAliases(yaml.SafeDumper):
            def ignore_aliases(self, data: Any) -> bool:
                return True

        def inline(value: Any) -> str:
            text = yaml.dump(value, Dumper=_NoAliases, default_flow_style=True, sort_keys=False, width=10**6)
            return text.strip().removesuffix("...").strip()

        lines = [
            f"# monai-imbalance plan (version {PLAN_VERSION}) of {self.source} ({self.kind}, {self.num_cases} training "
            "cases)",
            "# use: python -m monai.bundle run --config_file \"['configs/train.yaml','plan.yaml']\"",
            "# (from bundles/generic_seg); every id below is an ordinary bundle id: --<id> <value> overrides it.",
        ]
        for key, value in self.values.items():
            if key in self.reasons:
                lines += ["", f"# {self.reasons[key]}"]
            lines.append(f"{key}: {inline(value)}")
        lines += ["", "# the reasons again, for scripts", "plan_reasons:"]
        lines += [f"  {key}: {inline(reason)}" for key, reason in self.reasons.items()]
        info = {"version": PLAN_VERSION, "source": self.source, "kind": self.kind, "num_cases": self.num_cases,
                "foreground_fraction": round(self.report.foreground_fraction, 6), "ratio": self.report.ratio,
                "imbalance_level": self.report.imbalance_level}
        lines += ["plan_info: " + inline(info), ""]
        return "\n".join(lines)

    def write(self, path: str | os.PathLike) -> Path:
        from monai_imbalance.utils import atomic_write

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: f.write(self.to_yaml().encode()))
        return path

    def summary(self) -> str:
        """The statistics report at the training resolution, then every decision with its reason."""
        from dataclasses import replace

        # the report's own suggestions are the papers' general advice; the decisions below replace them
        head = f"plan for {self.source} ({self.kind}, {self.num_cases} cases):"
        lines = [replace(self.report, suggestions=[]).format(), "", head]
        for key, reason in self.reasons.items():
            value = self.values[key]
            text = value if isinstance(value, str) else repr(value)
            lines.append(f"  {key} = {text}\n      {reason}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _label_at_training_resolution(
    path: Any, threshold: float | None, pixdim: Sequence[float] | None, image_size: Sequence[int] | None
) -> np.ndarray:
    """A label as the generic bundle trains on it: thresholded or class indices, resampled to ``pixdim`` (3-D) or
    resized to ``image_size`` (2-D) by nearest neighbour, as uint8/int64 spatial array."""
    from monai.transforms import Resize, Spacing

    label = _load(path)
    grey = _grey(label)
    arr = (grey > threshold).astype(np.uint8) if threshold is not None else np.round(grey).astype(np.int64)
    if pixdim is None and image_size is None:
        return arr
    from monai.data import MetaTensor

    tensor = MetaTensor(arr[None].astype(np.float32), affine=label.affine)
    if pixdim is not None:
        tensor = Spacing(pixdim=pixdim, mode="nearest")(tensor)
    if image_size is not None:
        tensor = Resize(image_size, mode="nearest")(tensor)
    return np.asarray(tensor[0]).round().astype(np.int64)


class _Pass:
    """Picklable map-style dataset for the two streaming passes (worker processes through a DataLoader)."""

    def __init__(self, items: Sequence[Mapping[str, Any]], fn: Callable[..., Any], **kwargs: Any) -> None:
        self.items, self.fn, self.kwargs = list(items), fn, kwargs

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        return self.fn(self.items[index], index, **self.kwargs)


def _label_summary(
    item: Mapping[str, Any], index: int, threshold: float | None, pixdim: Any, image_size: Any, num_classes: int,
    roi: Sequence[int], stride: Sequence[int], ds_levels: int,
) -> tuple[ImageLabelSummary, float | None, tuple[int, ...]]:
    from monai_imbalance.stats import summarise_label
    from monai_imbalance.transforms.utils import window_foreground_counts

    arr = _label_at_training_resolution(item["label"], threshold, pixdim, image_size)
    summary = summarise_label(arr, num_classes, None, None, 16, str(item.get("id", index)), ds_levels)
    share = None
    if arr.any():
        # the bundle pads a smaller image to the patch (SpatialPadd) before cropping: windows of the padded label
        pad = [(max(0, r - s) // 2, max(0, r - s) - max(0, r - s) // 2) for r, s in zip(roi, arr.shape)]
        counts = window_foreground_counts(np.pad(arr > 0, pad), roi, stride)
        share = float(counts.max()) / float(np.prod(roi))
    summary.max_window_share = share
    return summary, share, tuple(arr.shape)


def _stream(dataset: _Pass, num_workers: int, progress: bool, desc: str) -> list[Any]:
    from monai_imbalance.apps.checks import process_iter

    return list(process_iter(dataset, num_workers, desc, bool(progress), unit="case"))


def plan_dataset(
    source: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    gpu_memory_gib: float = DEFAULT_GPU_MEMORY_GIB,
    croppable_share: float = DEFAULT_CROPPABLE_SHARE,
    num_workers: int = 0,
    progress: bool = True,
    seed: int = 0,
    max_cases: int | None = None,
) -> Plan:
    """Plan the ``generic_seg`` bundle for a dataset: two streaming passes over its training cases (one case in
    memory at a time; ``num_workers`` processes) and the decisions of this module.

    Args:
        source: a MONAI datalist JSON, a Decathlon ``dataset.json`` (or its Task folder), or a folder of
            image/label pairs (:func:`monai_imbalance.apps.user_data.read_user_dataset`).
        data_root: base of relative paths (default: the JSON's folder).
        gpu_memory_gib: the GPU memory the training may use.
        croppable_share: share of the images with foreground that MAC's rho must keep croppable.
        seed: seed of the intensity sampling.
        max_cases: plan on the first cases only (a quick look at a large dataset).

    Raises:
        PlanError: data that cannot be planned (the message names the case and the problem).
        FileNotFoundError, ValueError: as the dataset reader.
    """
    from monai_imbalance.apps.user_data import read_user_dataset

    if gpu_memory_gib <= MEMORY_RESERVE_GIB:
        raise ValueError(f"gpu_memory_gib must be more than the {MEMORY_RESERVE_GIB} GiB reserve, got "
                         f"{gpu_memory_gib}.")
    data = read_user_dataset(source, data_root=data_root)
    items = [it for it in data.items if it.get("label") is not None]
    if not items:
        raise PlanError(f"{source} lists no training case with a label.")
    if max_cases is not None:
        items = items[: int(max_cases)]
    values: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    notes: list[str] = []

    cases = _stream(_Pass(items, fingerprint_case, seed=seed), num_workers, progress, "plan: fingerprint")
    dims, channels, why = choose_dims(cases)
    num_classes, names, threshold, label_why = choose_labels(cases, data.class_names)
    intensity, intensity_why = choose_intensity(cases, data.modality, dims)

    values["datalist"] = str(Path(data.source).resolve())
    values["data_root"] = None if data_root is None else str(Path(data_root).resolve())
    values["spatial_dims"], reasons["spatial_dims"] = dims, why
    values["in_channels"], reasons["in_channels"] = channels, why
    values["out_channels"], reasons["out_channels"] = num_classes, label_why + " (softmax output)"
    values["class_names"] = names
    values["label_threshold"], reasons["label_threshold"] = threshold, label_why
    values["intensity"], reasons["intensity"] = intensity, intensity_why

    shapes = [c.spatial_shape for c in cases]
    if dims == 3:
        pixdim, target, spacing_why = choose_spacing([c.spacing for c in cases])
        image_size, size_why = None, "3-D: volumes are resampled, not resized"
        resampled = [[max(1, int(round(s * sp / t))) for s, sp, t in zip(c.spatial_shape, c.spacing, target)]
                     for c in cases]
    else:
        pixdim, target, spacing_why = None, [1.0, 1.0], "2-D: images are resized when large, not resampled"
        image_size, size_why = choose_image_size(shapes)
        resampled = [list(image_size) for _ in cases] if image_size else [list(s) for s in shapes]
    values["pixdim"], reasons["pixdim"] = pixdim, spacing_why
    values["image_size"], reasons["image_size"] = image_size, size_why

    median = [int(v) for v in np.median(np.asarray(resampled, dtype=np.float64), axis=0)]
    if dims == 3:
        start, start_why = median, f"starting from the median resampled shape {median} (nnU-Net)"
    elif min(median) >= 128:
        start = [m // 2 for m in median]
        start_why = f"starting from half the median image {median} (the MAC paper crops 224 px of 448)"
    else:
        start, start_why = median, f"starting from the median image {median} (small images: the whole image)"
    budget = (gpu_memory_gib - MEMORY_RESERVE_GIB) * _GIB
    cache: dict[tuple, tuple[float, float]] = {}

    def per_batch(strides: list[list[int]], kernels: list[list[int]]) -> tuple[float, float]:
        key = (tuple(map(tuple, strides)), tuple(map(tuple, kernels)))
        if key not in cache:
            cache[key] = training_memory(dims, channels, num_classes, kernels, strides)
        return cache[key]

    def memory_of(batch: int) -> Callable[[list[int], list[list[int]], list[list[int]]], float]:
        def need(patch: list[int], kernels: list[list[int]], strides: list[list[int]]) -> float:
            per_voxel, fixed = per_batch(strides, kernels)
            return fixed + batch * per_voxel * float(np.prod(patch))

        return need

    batch = BATCH_3D if dims == 3 else 2
    roi, kernels, strides, need, steps = fit_patch(start, target, memory_of(batch), budget)
    if dims == 2:
        while batch < min(MAX_BATCH_2D, len(items)) and memory_of(batch + 1)(roi, kernels, strides) <= budget:
            batch += 1
        need = memory_of(batch)(roi, kernels, strides)
    values["roi_size"] = roi
    reasons["roi_size"] = (f"{start_why}; the largest patch whose training (batch {batch}) fits {gpu_memory_gib:g} "
                           f"GiB - {MEMORY_RESERVE_GIB:g} GiB reserve: estimated {need / _GIB:.2f} GiB"
                           + (f" after {steps} reductions" if steps else ""))
    values["batch_size"] = batch
    reasons["batch_size"] = ("nnU-Net's 3-D batch" if dims == 3 else
                             f"the largest batch up to {MAX_BATCH_2D} (the MAC paper's) that fits the budget, at most "
                             "the number of training cases")
    values["kernel_size"], values["strides"] = kernels, strides
    reasons["strides"] = (f"DynUNet: halve an axis while its feature map stays >= {MIN_FEATURE_SIZE} and its spacing "
                          "is at most twice the finest (nnU-Net)")
    values["filters"] = None

    # -- pass 2: the labels at the training resolution
    stride = choose_mac_stride(roi)
    ds_levels = len(strides) - 2
    summaries = _stream(_Pass(items, _label_summary, threshold=threshold, pixdim=pixdim, image_size=image_size,
                              num_classes=num_classes, roi=roi, stride=stride, ds_levels=ds_levels),
                        num_workers, progress, "plan: labels")
    stats = ImbalanceStatistics(num_classes=num_classes, class_names=["background", *names], roi_size=roi,
                                stride=stride, ds_levels=ds_levels)
    for summary, _, _ in summaries:
        stats.add_summary(summary)
    report = stats.compute()
    train_shapes = [shape for _, _, shape in summaries]
    shares = [share for _, share, _ in summaries if share is not None]

    deep, heads, ds_why = choose_deep_supervision(
        report.deep_supervision["objects"], report.deep_supervision["objects_lost"]["area"], ds_levels)
    values["deep_supervision"], reasons["deep_supervision"] = deep, ds_why
    values["deep_supr_num"] = heads

    crop, crop_why = choose_crop(report.foreground_fraction, train_shapes, roi)
    values["crop"], reasons["crop"] = crop, crop_why
    rho, rho_why = choose_rho(shares, croppable_share)
    values["crop_params"] = {"mac": {"rho": rho, "tau": 5, "stride": stride}, "probabilistic": {"power": 1.0}}
    reasons["crop_params"] = f"MAC rho {rho}: {rho_why}; stride {stride} (16 px as the MAC paper, <= patch / 8)"
    if crop != "mac":
        notes.append(f"crop_params.mac is planned (rho {rho}) for --crop mac, but the plan crops {crop}")

    loss, loss_why = choose_loss(report)
    values["loss"], reasons["loss"] = loss, loss_why
    median_object = report.foreground.component_size["median"]
    # 3-D: a ball in mm at the training spacing (voxels are often anisotropic); 2-D: a disk in pixels
    radius, radius_why = choose_radius(median_object, dims, target if dims == 3 else None)
    weights = [round(w, 6) for w in report.class_weights]
    dbce: dict[str, Any] = {"radius": radius}
    if dims == 3:
        dbce["spacing"] = list(target)
    values["loss_params"] = {"dbce": dbce, "balanced_ce": {"weight": weights},
                             "uncertainty_ce": {"class_weights": weights}}
    reasons["loss_params"] = (f"DBCE radius {radius}: {radius_why}; balanced CE weights omega_c = m / (C n_c) "
                              f"(Bressan et al., Eq. 5) over the training labels: {weights}")
    return Plan(values, reasons, report, str(data.source), data.kind, len(items), notes)
