"""Mask-Aware Cropping (MAC) and probabilistic cropping (PC) as MONAI transforms.

MAC (Ghyselincx, Delchevalerie, Frénay, Dumas, *Mask-Aware Cropping: Mitigating Mask Imbalance in Segmentation
Tasks*) lists every window of a regular start grid whose foreground share is at least ``rho`` (Algorithm 1) and
samples crops among them at a given frequency, random crops otherwise. PC (Kochkarev et al., as described in the
MAC paper) draws crop centers with probability proportional to the distance of foreground pixels to the background.

Both follow MONAI's precompute-then-consume pattern (``FgBgToIndicesd`` -> ``RandCropByPosNegLabeld``): a
deterministic transform stores a small record under a postfixed key, which ``CacheDataset`` caches, and the random
crop consumes it:

- :class:`MaskAwareWindowsd` -> :class:`RandMaskAwareCropd` (record: ``int32`` window starts, a few kB per image);
- :class:`ProbabilisticCropCentersd` -> :class:`RandProbabilisticCropd` (record: flat indices of the foreground
  pixels and the cumulative distribution of their weights, 12 bytes per foreground pixel).

The record carries the geometry it was computed with (MAC: ``roi_size``, ``rho``, ``stride``, ``classes``,
``allow_smaller``; PC: ``power``), and the crop reads it from there: the geometry is stated once, on the
precompute transform. Defaults are the papers' values, :data:`MAC_DEFAULTS` and :data:`PC_DEFAULTS`.

Each crop's output ``MetaTensor`` records in its metadata which kind of crop was taken (``"crop_kind"``: ``"mac"``,
``"random"`` or ``"fallback"`` for MAC; ``"pc"`` or ``"fallback"`` for PC), its start corner (``"crop_start"``) and
``"patch_index"``; crops are undone by ``Invertd`` like ``RandSpatialCropd``'s.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Mapping, Sequence
from copy import deepcopy
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data.meta_obj import get_track_meta
from monai.data.meta_tensor import MetaTensor
from monai.transforms.croppad.array import BorderPad, SpatialCrop
from monai.transforms.croppad.functional import crop_func, pad_func
from monai.transforms.inverse import InvertibleTransform
from monai.transforms.traits import MultiSampleTrait
from monai.transforms.transform import MapTransform, Randomizable, Transform
from monai.utils import PytorchPadMode, TraceKeys, convert_to_tensor, deprecated, deprecated_arg

from monai_imbalance import __version__
from monai_imbalance.transforms.utils import (
    _window_counts,
    euclidean_distance,
    exact_distance_boxes,
    whole_number_arg,
)
from monai_imbalance.utils import ensure_int_sequence, to_numpy, validate_label

__all__ = [
    "MAC_DEFAULTS",
    "PC_DEFAULTS",
    "CROP_KIND_KEY",
    "CROP_START_KEY",
    "CROP_CLASS_KEY",
    "CROP_CENTER_KEY",
    "CropSample",
    "mac_window_starts",
    "MaskAwareWindows",
    "MaskAwareWindowsd",
    "MaskAwareWindowsD",
    "MaskAwareWindowsDict",
    "RandMaskAwareCrop",
    "RandMaskAwareCropd",
    "RandMaskAwareCropD",
    "RandMaskAwareCropDict",
    "ProbabilisticCropCenters",
    "ProbabilisticCropCentersd",
    "ProbabilisticCropCentersD",
    "ProbabilisticCropCentersDict",
    "RandProbabilisticCrop",
    "RandProbabilisticCropd",
    "RandProbabilisticCropD",
    "RandProbabilisticCropDict",
    # deprecated spellings, removed in 0.2.0
    "ProbabilisticCropCentres",
    "ProbabilisticCropCentresd",
    "ProbabilisticCropCentresD",
    "ProbabilisticCropCentresDict",
]

#: MAC paper's values (its best Kvasir-SEG setting): minimum foreground share ``rho``, one MAC crop in ``tau``
#: samples, window ``stride`` (Algorithm 1's ``sigma``). The defaults of :class:`MaskAwareWindows` and
#: :class:`RandMaskAwareCrop`; read-only (``dict(MAC_DEFAULTS)`` for a copy to update).
MAC_DEFAULTS: Mapping[str, Any] = MappingProxyType({"rho": 0.25, "tau": 5, "stride": 16})
#: probabilistic cropping's default: exponent of the distance weights (``EDT ** power``)
PC_DEFAULTS: Mapping[str, Any] = MappingProxyType({"power": 1.0})

#: metadata key of every crop: ``"mac"``, ``"random"`` (the frequency draw chose a random crop), ``"fallback"`` (a
#: MAC or PC crop was drawn but the label has no valid window / no foreground, so a uniform random crop was taken)
#: or ``"pc"``
CROP_KIND_KEY = "crop_kind"
#: metadata key: start corner of the crop in the input's voxel grid (a tuple of ints)
CROP_START_KEY = "crop_start"
#: metadata key, per-class MAC only: class whose share made the window valid (0 for random and fallback crops)
CROP_CLASS_KEY = "crop_class"
#: metadata key, PC only: sampled center (for a fallback crop, the center of the random window); MONAI's key name
CROP_CENTER_KEY = "crop_center"

#: fields of the windows record that fix the windows: the crop reads them from the record
_MAC_GEOMETRY = ("roi_size", "rho", "stride", "classes", "allow_smaller")
#: the ``centre`` spellings stay one release, then go
_DEPRECATION = {"since": "0.1.0", "removed": "0.2.0", "version_val": __version__}


def _warn_renamed(old: str, new: str) -> None:
    warnings.warn(
        f"`{old}` has been deprecated since version 0.1.0 and will be removed in version 0.2.0; use `{new}`.",
        FutureWarning,
        stacklevel=3,
    )


class CropSample(NamedTuple):
    """One sampled crop: start corner in the input grid, kind (``"mac"``, ``"random"``, ``"fallback"``, ``"pc"``),
    the class of a per-class MAC crop (0 for the random and fallback crops of per-class mode, None otherwise), the
    sampled center of a PC crop (else None) and the crop size (None: the cropping transform's own ``roi_size``)."""

    start: tuple[int, ...]
    kind: str
    label_class: int | None = None
    center: tuple[int, ...] | None = None
    roi_size: tuple[int, ...] | None = None

    @property
    def centre(self) -> tuple[int, ...] | None:
        """Deprecated spelling of :attr:`center`."""
        _warn_renamed("CropSample.centre", "CropSample.center")
        return self.center


# ---------------------------------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------------------------------


def _check_rho(rho: Any, name: str = "rho") -> float:
    value = float(rho)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1] (a share of the window), got {rho}.")
    return value


def _check_spatial_ndim(value: int | Sequence[int], name: str) -> int | None:
    """Number of spatial axes a per-axis argument implies (None for an int)."""
    if isinstance(value, (int, np.integer)):
        return None
    n = len(tuple(value))
    if n not in (2, 3):
        raise ValueError(f"{name} must be an int or 2 or 3 values (2-D or 3-D), got {tuple(value)}.")
    return n


def _check_int_arg(value: Any, name: str, minimum: int = 1) -> int | tuple[int, ...]:
    """Early check of an int or per-axis argument (the axis count is only known from the data), returned
    normalised: whole-valued floats such as ``32.0`` as ints
    (:func:`~monai_imbalance.utils.whole_number_arg`)."""
    return whole_number_arg(value, name, minimum)


def _check_classes_rho(
    classes: Sequence[int] | None, rho: float | Sequence[float]
) -> tuple[tuple[int, ...] | None, tuple[float, ...]]:
    """Validate per-class mode: ``(classes or None, one rho per group)``."""
    if classes is None:
        if not np.isscalar(rho):
            raise ValueError(f"rho must be one number unless classes are given (per-class mode), got rho={rho}.")
        return None, (_check_rho(rho),)
    values = tuple(int(c) for c in classes)
    if len(values) == 0 or len(set(values)) != len(values) or min(values) < 1:
        raise ValueError(f"classes must be distinct label values >= 1 (foreground classes), got classes={classes}.")
    rhos = (rho,) * len(values) if np.isscalar(rho) else tuple(rho)
    if len(rhos) != len(values):
        raise ValueError(f"rho must be one number or one per class ({len(values)} classes {values}), got rho={rho}.")
    return values, tuple(_check_rho(r) for r in rhos)


def _check_power(power: float) -> float:
    value = float(power)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"power must be a finite number >= 0, got power={power}.")
    return value


def _mac_frequency(tau: float | None, prob: float | None) -> float:
    """Probability that a sample is a MAC crop, from at most one of ``tau`` and ``prob`` (neither: the paper's
    ``tau``)."""
    if tau is not None and prob is not None:
        raise ValueError(
            f"give at most one of tau (one MAC crop in tau samples, tau >= 1; default {MAC_DEFAULTS['tau']}) and "
            f"prob (MAC probability in [0, 1]), got tau={tau}, prob={prob}."
        )
    if prob is None:
        tau = MAC_DEFAULTS["tau"] if tau is None else tau
        if not float(tau) >= 1.0:  # also rejects NaN
            raise ValueError(f"tau must be >= 1 (each sample is a MAC crop with probability 1/tau), got tau={tau}.")
        return 1.0 / float(tau)
    if not 0.0 <= float(prob) <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got prob={prob}.")
    return float(prob)


def _check_ratios(ratios: Sequence[float] | None, classes: tuple[int, ...] | None) -> np.ndarray | None:
    """Per-class sampling ratios as an array (None: equal); their count is checked against ``classes`` when
    known, else against the windows record at call time."""
    if ratios is None:
        return None
    values = np.asarray(ratios, dtype=np.float64)
    if values.ndim != 1 or not np.all(values >= 0) or (classes is not None and len(values) != len(classes)):
        raise ValueError(
            f"ratios must be one non-negative number per class of classes={classes}, got ratios={ratios}."
        )
    if values.sum() <= 0:
        raise ValueError(f"ratios must not all be 0, got ratios={ratios}.")
    return values


# ---------------------------------------------------------------------------------------------------------------
# labels and masks: checked and converted once, at the public entry
# ---------------------------------------------------------------------------------------------------------------


def _spatial_mask(mask: Any, roi_size: int | Sequence[int]) -> np.ndarray:
    """``mask`` as a spatial numpy array: a 2-D or 3-D array, or channel-first with one channel.

    A 3-D array of shape ``(1, H, W)`` is read as a channel-first 2-D mask unless ``roi_size`` gives 3 values.
    """
    arr = to_numpy(mask)
    ndim = _check_spatial_ndim(roi_size, "roi_size")
    if ndim is None:
        ndim = 2 if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[0] == 1) else 3
    if arr.ndim == ndim + 1:
        if arr.shape[0] != 1:
            raise ValueError(
                f"mask must have one channel, got shape {tuple(arr.shape)} ({arr.shape[0]} channels); "
                "merge one-hot labels with argmax first."
            )
        arr = arr[0]
    if arr.ndim != ndim or ndim not in (2, 3):
        raise ValueError(
            f"mask must be 2-D or 3-D, or channel-first with one channel, matching roi_size={roi_size}; "
            f"got shape {tuple(arr.shape)}."
        )
    if arr.dtype != bool and not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"mask must be numeric or bool, got dtype {arr.dtype}.")
    return arr


def _spatial_shape(data: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in data.shape[1:])


def _check_label_shape(label: Any, spatial_shape: Sequence[int] | None = None, name: str = "label") -> tuple[int, ...]:
    """Spatial shape of a channel-first one-channel label; ``ValueError`` for other shapes or a grid that differs
    from the image's ``spatial_shape``."""
    if label.ndim not in (3, 4) or label.shape[0] != 1:
        raise ValueError(
            f"{name} must be channel-first with one channel, (1, H, W) or (1, H, W, D), got shape "
            f"{tuple(label.shape)}; merge one-hot labels with argmax first."
        )
    shape = _spatial_shape(label)
    if spatial_shape is not None and shape != tuple(spatial_shape):
        raise ValueError(f"image and {name} spatial shapes differ: image {tuple(spatial_shape)}, {name} {shape}.")
    return shape


def _label_values(label: Any, name: str = "label") -> np.ndarray:
    """The spatial class-index array of a channel-first label whose shape is checked: one conversion to numpy,
    one value check (``validate_label``, no copy wider than ``uint8`` for float labels)."""
    return validate_label(to_numpy(label)[0], name=name)


def _effective_roi(spatial_shape: Sequence[int], roi: Sequence[int], allow_smaller: bool) -> tuple[int, ...]:
    """The ROI clipped to the image; ``ValueError`` when it does not fit and ``allow_smaller`` is False."""
    if not allow_smaller and any(r > n for r, n in zip(roi, spatial_shape)):
        raise ValueError(
            f"roi_size {tuple(roi)} is larger than the image (spatial shape {tuple(spatial_shape)}); "
            "use allow_smaller=True to pad the crop, or a smaller roi_size."
        )
    return tuple(min(r, n) for r, n in zip(roi, spatial_shape))


# ---------------------------------------------------------------------------------------------------------------
# MAC: window search
# ---------------------------------------------------------------------------------------------------------------


def _valid_window_starts(
    mask: np.ndarray, roi: tuple[int, ...], counted_roi: tuple[int, ...], step: tuple[int, ...], rho: float
) -> np.ndarray:
    """Algorithm 1 on a checked spatial mask: windows of ``counted_roi`` (the ROI clipped to the image) counted,
    their share taken against the full ``roi`` volume, as Algorithm 1 does (float64 ``count / volume >= rho``)."""
    counts = _window_counts(mask, counted_roi, step)
    valid = counts / math.prod(roi) >= rho
    return (np.argwhere(valid) * np.asarray(step)).astype(np.int32)


def mac_window_starts(
    mask: Any,
    roi_size: int | Sequence[int],
    stride: int | Sequence[int] = MAC_DEFAULTS["stride"],
    rho: float = MAC_DEFAULTS["rho"],
    allow_smaller: bool = False,
) -> np.ndarray:
    """Start corners of every window whose foreground share is ``>= rho``: Algorithm 1 of the MAC paper, with
    the readings stated on :class:`MaskAwareWindows`.

    The counts come from summed-area tables (:func:`~monai_imbalance.transforms.utils.window_foreground_counts`),
    never from a loop over windows, and the share is computed as Algorithm 1 computes it (``count / volume`` in
    float64, compared with ``>=``), so the list is identical to Algorithm 1's.

    Args:
        mask: spatial 2-D or 3-D array, or channel-first with one channel (numpy, torch or MetaTensor); any
            non-zero value is foreground. A 3-D array of shape ``(1, H, W)`` is read as a channel-first 2-D mask
            unless ``roi_size`` gives 3 values.
        roi_size: window size, an int or one value per spatial axis.
        stride: step between window starts, an int or one value per axis (Algorithm 1's ``sigma``).
        rho: minimum foreground share in ``[0, 1]``.
        allow_smaller: if True, an axis where the window is larger than the mask has the single start 0 and the
            share is counted against the full window volume (the padded crop sees background there); if False,
            such a window is a ``ValueError`` (Algorithm 1 requires the crop to fit).

    Returns:
        ``int32`` array of shape ``(K, ndim)``, one start corner per valid window, in the order Algorithm 1 visits
        them (row-major over the start grid, first axis slowest). ``K`` may be 0.

    Raises:
        ValueError: a multi-channel mask, a mask that is not 2-D/3-D, ``roi_size`` or ``stride`` below 1,
            ``rho`` outside ``[0, 1]``, a window larger than the mask (unless ``allow_smaller``).

    Example:
        >>> mask = np.zeros((8, 8), dtype=np.uint8); mask[:4, :4] = 1
        >>> mac_window_starts(mask, roi_size=4, stride=2, rho=0.5).tolist()  # shares 1, 1/2, 1/2
        [[0, 0], [0, 2], [2, 0]]
    """
    roi_size, stride = _check_int_arg(roi_size, "roi_size"), _check_int_arg(stride, "stride")
    arr = _spatial_mask(mask, roi_size)
    roi = ensure_int_sequence(roi_size, arr.ndim, "roi_size")
    step = ensure_int_sequence(stride, arr.ndim, "stride")
    return _valid_window_starts(arr, roi, _effective_roi(arr.shape, roi, allow_smaller), step, _check_rho(rho))


class MaskAwareWindows(Transform):
    """Deterministic MAC precompute: the valid windows of a label, as a small record for :class:`RandMaskAwareCrop`.

    Reading: foreground = ``Y > 0`` (any non-background class). A per-class variant (``classes=[...]``, rho per
    class) is our multi-class extension, the paper's stated future work.

    Reading: candidate window starts along each axis: ``0, s, 2s, ...`` up to and including ``size - roi``
    (``range(0, size - roi + 1, stride)``), exactly Algorithm 1. No extra flush-to-border window.

    Reading: keep a window when ``fg_count / window_volume >= rho`` (inclusive).

    Reading: the coordinate list must be identical to Algorithm 1; it is computed with summed-area tables
    (integral images), never by looping over windows (:func:`mac_window_starts`).

    The record is a dict (cached by ``CacheDataset``, small: ``int32`` starts) that carries its geometry, which the
    crop reads from it::

        {"starts": int32 (K, ndim), "counts": int64 (G,), "num_valid": int64 (G,), "spatial_shape": tuple,
         "roi_size": tuple, "stride": tuple, "rho": tuple (G,), "classes": tuple | None, "allow_smaller": bool}

    with one group per class in per-class mode (``G = len(classes)``; ``starts`` holds the groups one after the
    other, ``counts`` their sizes) and one group (the foreground) otherwise. ``num_valid`` is the number of valid
    windows before the ``max_windows`` cap.

    Args:
        roi_size: crop size, an int or one value per spatial axis.
        rho: minimum foreground share in ``[0, 1]``; in per-class mode one value per class or one for all.
            Default ``MAC_DEFAULTS["rho"]`` (0.25).
        stride: step between window starts (Algorithm 1's ``sigma``), an int or one value per axis. Default
            ``MAC_DEFAULTS["stride"]`` (16).
        classes: None (binary: any non-zero label is foreground) or the label values (``>= 1``) that get their own
            windows, each with its own share ``rho``.
        max_windows: keep at most this many windows per group, chosen uniformly at random with ``seed`` (so the
            result stays deterministic and cacheable) and kept in Algorithm 1's order; None keeps all. Bounds the
            cache for small strides (the default 16 keeps it small anyway).
        seed: seed of the ``max_windows`` subsample.
        allow_smaller: as in :func:`mac_window_starts`; the crop pads to ``roi_size`` when the record allows it.

    Raises:
        ValueError: bad arguments (named in the message); at call time a label that is multi-channel, has
            non-integer or negative values (``validate_label``), or is smaller than ``roi_size`` without
            ``allow_smaller``.
    """

    def __init__(
        self,
        roi_size: int | Sequence[int],
        rho: float | Sequence[float] = MAC_DEFAULTS["rho"],
        stride: int | Sequence[int] = MAC_DEFAULTS["stride"],
        classes: Sequence[int] | None = None,
        max_windows: int | None = None,
        seed: int = 0,
        allow_smaller: bool = False,
    ) -> None:
        self.roi_size = _check_int_arg(roi_size, "roi_size")
        self.stride = _check_int_arg(stride, "stride")
        self.classes, self.rho = _check_classes_rho(classes, rho)
        if max_windows is not None and int(max_windows) < 1:
            raise ValueError(f"max_windows must be None or >= 1, got {max_windows}.")
        self.max_windows = None if max_windows is None else int(max_windows)
        self.seed = int(seed)
        self.allow_smaller = bool(allow_smaller)

    def __call__(self, label: Any) -> dict[str, Any]:
        """Compute the windows record of a channel-first label ``(1, *spatial)``."""
        _check_label_shape(label)
        return self._record(_label_values(label))

    def _record(self, arr: np.ndarray) -> dict[str, Any]:
        """The record of a checked spatial class-index array."""
        roi = ensure_int_sequence(self.roi_size, arr.ndim, "roi_size")
        step = ensure_int_sequence(self.stride, arr.ndim, "stride")
        counted_roi = _effective_roi(arr.shape, roi, self.allow_smaller)
        starts, counts, num_valid = [], [], []
        for i, rho in enumerate(self.rho):
            group = arr if self.classes is None else arr == self.classes[i]  # one class mask at a time
            found = _valid_window_starts(group, roi, counted_roi, step, rho)
            num_valid.append(len(found))
            if self.max_windows is not None and len(found) > self.max_windows:
                keep = np.random.default_rng([self.seed, i]).choice(len(found), self.max_windows, replace=False)
                found = found[np.sort(keep)]
            starts.append(found)
            counts.append(len(found))
        return {
            "starts": np.concatenate(starts, axis=0) if len(starts) > 1 else starts[0],
            "counts": np.asarray(counts, dtype=np.int64),
            "num_valid": np.asarray(num_valid, dtype=np.int64),
            "spatial_shape": tuple(int(s) for s in arr.shape),
            "roi_size": roi,
            "stride": step,
            "rho": self.rho,
            "classes": self.classes,
            "allow_smaller": self.allow_smaller,
        }


class MaskAwareWindowsd(MapTransform):
    """Dictionary form of :class:`MaskAwareWindows` (readings and record there): stores the windows record of each
    label key under ``key + windows_postfix``, so that ``CacheDataset`` caches it (MONAI's ``FgBgToIndicesd``
    pattern). :class:`RandMaskAwareCropd` reads the geometry from the record: state it here only.

    Args:
        keys: label keys to compute windows for.
        roi_size, rho, stride, classes, max_windows, seed, allow_smaller: as :class:`MaskAwareWindows`.
        windows_postfix: postfix of the output key.
        allow_missing_keys: don't raise an exception if a key is missing.

    Example:
        >>> from monai.transforms import Compose
        >>> from monai_imbalance.apps.synthetic import make_synthetic_pair
        >>> pipeline = Compose([
        ...     MaskAwareWindowsd("label", roi_size=64, rho=0.25, stride=16),  # deterministic: CacheDataset keeps it
        ...     RandMaskAwareCropd(["image", "label"], "label", tau=3, num_samples=2, windows_key="label_mac_windows"),
        ... ])
        >>> out = pipeline(make_synthetic_pair((128, 128), fg_fraction=0.1, seed=0))
        >>> len(out), tuple(out[0]["image"].shape), "label_mac_windows" in out[0]
        (2, (1, 64, 64), False)
    """

    def __init__(
        self,
        keys: KeysCollection,
        roi_size: int | Sequence[int],
        rho: float | Sequence[float] = MAC_DEFAULTS["rho"],
        stride: int | Sequence[int] = MAC_DEFAULTS["stride"],
        windows_postfix: str = "_mac_windows",
        max_windows: int | None = None,
        classes: Sequence[int] | None = None,
        seed: int = 0,
        allow_smaller: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.windows_postfix = windows_postfix
        self.finder = MaskAwareWindows(
            roi_size, rho=rho, stride=stride, classes=classes, max_windows=max_windows, seed=seed,
            allow_smaller=allow_smaller,
        )

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[str(key) + self.windows_postfix] = self.finder(d[key])
        return d


# ---------------------------------------------------------------------------------------------------------------
# common crop machinery: draw from a record, apply sampled crops, record metadata, invert
# ---------------------------------------------------------------------------------------------------------------


class _RandWindowCrop(Randomizable, InvertibleTransform, MultiSampleTrait):
    """Shared part of the MAC and PC crops: drawing from a precomputed record (or one computed from the label),
    cropping (and padding) sampled windows, metadata, inversion. Subclasses implement ``randomize``, ``_record_of``
    and ``_check_record``.

    Thread safety: the sampled crops of a call live in a local list that ``randomize`` returns and the crop
    consumes; nothing per call is kept on ``self``, so one instance can serve several threads (MONAI's own crops
    keep their sampled centers on ``self``, which mixes up images and labels between threads).
    """

    #: the precomputed record's argument name, in messages ("windows" for MAC, "centers" for PC)
    _record_name = "record"

    def __init__(
        self,
        roi_size: int | Sequence[int] | None,
        num_samples: int = 1,
        allow_smaller: bool = False,
        mode: str = PytorchPadMode.CONSTANT,
        **pad_kwargs: Any,
    ) -> None:
        if roi_size is not None:
            roi_size = _check_int_arg(roi_size, "roi_size")
            _check_spatial_ndim(roi_size, "roi_size")
        if not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise ValueError(f"num_samples must be an int >= 1, got {num_samples!r}.")
        self.roi_size = roi_size
        self.num_samples = int(num_samples)
        self.allow_smaller = allow_smaller
        self.mode = mode
        self.pad_kwargs = pad_kwargs

    def _roi(self, spatial_shape: Sequence[int]) -> tuple[int, ...]:
        """This transform's ``roi_size`` for an image, checked against it (``allow_smaller``)."""
        ndim = len(spatial_shape)
        if ndim not in (2, 3):
            raise ValueError(f"images must be channel-first 2-D or 3-D, got spatial shape {tuple(spatial_shape)}.")
        if self.roi_size is None:
            raise ValueError(
                f"{type(self).__name__} has no roi_size: give it one, or crop with samples drawn from a "
                f"{self._record_name} record (which carries the crop size)."
            )
        roi = ensure_int_sequence(self.roi_size, ndim, "roi_size")
        _effective_roi(spatial_shape, roi, bool(self.allow_smaller))
        return roi

    def _random_starts(self, spatial_shape: Sequence[int], roi: Sequence[int], n: int) -> np.ndarray:
        """``n`` uniform random crop starts (every position where the crop fits, like ``RandSpatialCrop``)."""
        high = np.maximum(np.asarray(spatial_shape) - np.asarray(roi), 0) + 1
        return self.R.randint(0, high, size=(n, len(spatial_shape)))

    def _record_of(self, label: np.ndarray) -> Mapping[str, Any]:
        """The record of a checked spatial class-index array."""
        raise NotImplementedError

    def _check_record(self, record: Any, spatial_shape: Sequence[int]) -> None:
        raise NotImplementedError

    def _draw(
        self, spatial_shape: tuple[int, ...], label: Any | None, record: Mapping[str, Any] | None, name: str = "label"
    ) -> list[CropSample]:
        """Draw one call's crops from ``record``, or from the record of ``label`` (shape already checked by the
        caller) when there is none."""
        if record is None:
            if label is None:
                raise ValueError(
                    f"label must be given unless {self._record_name} or samples are (the crop draws from the label)."
                )
            record = self._record_of(_label_values(label, name))
        else:
            self._check_record(record, spatial_shape)
        return self.randomize(spatial_shape, record)

    def _crop_one(self, img: torch.Tensor, start: Sequence[int], roi: Sequence[int]) -> torch.Tensor:
        spatial = _spatial_shape(img)
        slices = (slice(None),) + tuple(slice(s, s + min(r, n)) for s, r, n in zip(start, roi, spatial))
        info = self.get_transform_info()
        out = crop_func(img, slices, False, info)
        short = [max(r - n, 0) for r, n in zip(roi, spatial)]
        if any(short):
            to_pad = [(0, 0)] + [(k // 2, k - k // 2) for k in short]
            out = pad_func(out, to_pad, info, self.mode, False, **self.pad_kwargs)
            if get_track_meta() and isinstance(out, MetaTensor):
                # one traced entry per crop: the padding rides inside the crop's entry, as CropForeground does
                pad_info = out.applied_operations.pop()
                out.applied_operations[-1][TraceKeys.EXTRA_INFO]["pad_info"] = pad_info
        return out

    def apply_samples(self, img: Any, samples: Sequence[CropSample]) -> list[torch.Tensor]:
        """Crop ``img`` (channel-first) at each sampled start, to the sample's ``roi_size`` (this transform's when
        the sample has none); no randomness. Returns one tensor per sample (``MetaTensor`` with the crop's metadata
        when MONAI's metadata tracking is on)."""
        if img.ndim not in (3, 4):
            raise ValueError(f"images must be channel-first 2-D or 3-D, got shape {tuple(img.shape)}.")
        img_t = convert_to_tensor(img, track_meta=get_track_meta())
        own_roi = None
        results = []
        for i, sample in enumerate(samples):
            roi = sample.roi_size
            if roi is None:
                own_roi = own_roi or self._roi(_spatial_shape(img_t))
                roi = own_roi
            out = self._crop_one(img_t, sample.start, roi)
            if isinstance(out, MetaTensor):
                out.meta["patch_index"] = i
                out.meta[CROP_KIND_KEY] = sample.kind
                out.meta[CROP_START_KEY] = tuple(sample.start)
                self._extra_meta(out.meta, sample)
            results.append(out)
        return results

    def _extra_meta(self, meta: dict, sample: CropSample) -> None:
        """Hook for subclass-specific metadata."""

    def _crop(
        self, img: Any, label: Any | None, record: Mapping[str, Any] | None, samples: Sequence[CropSample] | None
    ) -> list[torch.Tensor]:
        """``__call__`` of both crops: draw (from ``record``, computed from ``label`` when None) unless ``samples``
        are given, then crop ``img``."""
        if samples is None:
            spatial_shape = _spatial_shape(img)
            if label is not None:
                _check_label_shape(label, spatial_shape)
            samples = self._draw(spatial_shape, label, record)
        return self.apply_samples(img, samples)

    def inverse(self, data: MetaTensor) -> MetaTensor:
        """Undo one crop: remove the padding (``allow_smaller``) and pad back to the input's size with zeros."""
        transform = self.pop_transform(data)
        extra = transform[TraceKeys.EXTRA_INFO]
        pad_info = extra.get("pad_info")
        if pad_info is not None:
            padded = pad_info[TraceKeys.EXTRA_INFO]["padded"][1:]
            start = [p[0] for p in padded]
            end = [n - p[1] for n, p in zip(data.shape[1:], padded)]
            unpad = SpatialCrop(roi_start=start, roi_end=end)
            with unpad.trace_transform(False):
                data = unpad(data)
        border = BorderPad(extra["cropped"])
        with border.trace_transform(False):
            return border(data)


class _RandWindowCropd(Randomizable, MapTransform, InvertibleTransform, MultiSampleTrait):
    """Shared dictionary wrapper: one draw for all keys, ``num_samples`` output dicts, the precomputed record
    popped from the outputs, inversion per key."""

    cropper: _RandWindowCrop

    def __init__(
        self, keys: KeysCollection, label_key: str, record_key: str | None, allow_missing_keys: bool = False
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.label_key = label_key
        self.record_key = record_key

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> Any:
        super().set_random_state(seed, state)
        self.cropper.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, Any]) -> list[dict[Hashable, Any]]:
        d = dict(data)
        record = None
        if self.record_key is not None:
            if self.record_key not in d:
                raise ValueError(
                    f"the precomputed key {self.record_key!r} is not in the data (keys {list(d)}); add the precompute "
                    "transform before this crop, or leave the key argument at None to compute it on the fly."
                )
            record = d.pop(self.record_key)
        label = d.get(self.label_key)
        if label is None and record is None:
            raise ValueError(f"label_key {self.label_key!r} is not in the data (keys {list(d)}).")
        keys = list(self.key_iterator(d))
        name = f"label {self.label_key!r}"
        if label is not None:
            spatial_shape = _check_label_shape(label, None, name=name)
        elif keys:
            spatial_shape = _spatial_shape(d[keys[0]])
        else:
            raise ValueError(f"none of the keys {self.keys} is in the data (keys {list(d)}): nothing to crop.")
        for key in keys:
            if _spatial_shape(d[key]) != spatial_shape:
                raise ValueError(
                    f"spatial shapes differ: {key!r} has {_spatial_shape(d[key])}, "
                    f"{self.label_key!r} has {spatial_shape}; every cropped key must share the label's grid."
                )
        samples = self.cropper._draw(spatial_shape, label, record, name)
        ret: list[dict[Hashable, Any]] = [dict(d) for _ in samples]
        for i in range(len(samples)):
            for key in set(d).difference(keys):
                ret[i][key] = deepcopy(d[key])
        for key in keys:
            for i, cropped in enumerate(self.cropper.apply_samples(d[key], samples)):
                ret[i][key] = cropped
        return ret

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.cropper.inverse(d[key])
        return d


# ---------------------------------------------------------------------------------------------------------------
# MAC crop
# ---------------------------------------------------------------------------------------------------------------


class RandMaskAwareCrop(_RandWindowCrop):
    """Mask-Aware Cropping: each sample is a crop from the valid-window list with probability ``1/tau`` (or
    ``prob``), else a uniform random crop.

    Reading: the paper's ``tau`` (grid values 2, 3, 5) reads as "one crop in tau is a MAC crop": each sample is a
    MAC crop with probability ``1/tau``, drawn from the transform's own random state, else a uniform random crop.
    ``prob`` may be given instead of ``tau`` (exactly one of them). A MAC crop picks one valid window uniformly.
    No valid window -> uniform random crop, always.

    The windows (and the readings behind them) are those of :class:`MaskAwareWindows`. The crop reads its geometry
    (``roi_size``, ``rho``, ``stride``, ``classes``, ``allow_smaller``) from the windows record when one is given
    (``windows``, or the dictionary form's cached key); without a record it computes one from the label with its
    own arguments, where unset ones take :data:`MAC_DEFAULTS`. An argument set here that differs from the record's
    value is a ``ValueError`` (neither silently wins); one that agrees is accepted.

    Per-class mode (``classes=[c1, c2, ...]`` on the windows): a MAC sample first picks a class among those with at
    least one valid window (probability proportional to ``ratios``, equal by default), then one of its windows
    uniformly.

    Every output carries in its metadata ``"crop_kind"`` (``"mac"``; ``"random"`` when the frequency draw chose
    a random crop; ``"fallback"`` when it chose MAC but no window was valid), ``"crop_start"``,
    ``"patch_index"`` and, in per-class mode, ``"crop_class"`` (0 for non-MAC crops). The realised MAC rate is
    the share of ``"mac"`` crops.

    Randomness and threads: ``randomize`` draws every sample of a call from ``self.R`` (so ``set_random_state``
    makes runs reproducible) and *returns* them instead of storing them on ``self``; ``__call__`` crops from that
    local list. One instance can therefore be shared by threads (``ThreadDataLoader``) without a thread cropping
    with another thread's windows, which MONAI's ``RandCropByPosNegLabel`` (centers kept on ``self``) allows.

    Not lazy: the windows depend on label content, so ``Compose(lazy=True)`` applies pending operations first.

    Args:
        roi_size: crop size, an int or one value per spatial axis (2-D or 3-D); None: the record's (a record, or
            ``samples`` drawn from one, is then needed at every call).
        rho: minimum foreground share in ``[0, 1]`` (per-class mode: one per class or one for all); None: the
            record's, else ``MAC_DEFAULTS["rho"]``.
        stride: step between window starts (Algorithm 1's ``sigma``); None: the record's, else
            ``MAC_DEFAULTS["stride"]``.
        tau: one MAC crop in ``tau`` samples on average (``>= 1``); give at most one of ``tau`` and ``prob``;
            neither: ``MAC_DEFAULTS["tau"]``.
        prob: probability in ``[0, 1]`` that a sample is a MAC crop.
        num_samples: crops per call (a list is returned, like ``RandCropByPosNegLabel``).
        classes: None (the record's, else binary) or the foreground label values for per-class mode.
        ratios: per-class mode: relative frequency of each class among MAC crops (default equal).
        allow_smaller: if True, an image smaller than ``roi_size`` gives a crop padded to ``roi_size`` (``mode``,
            symmetric) and windows count padded pixels as background; if False, it is a ``ValueError``. None: the
            record's, else False.
        mode: padding mode for ``allow_smaller`` (MONAI/torch pad modes).
        pad_kwargs: other arguments of the pad function.

    Raises:
        ValueError: each bad argument or input, naming it and its value: ``stride < 1``, ``rho`` outside
            ``[0, 1]``, ``tau < 1``, both ``tau`` and ``prob``, crop larger than the image (without
            ``allow_smaller``), image and label of different spatial shape, a label with more than one channel,
            float labels with non-integer values, an argument that differs from the record's.

    Example:
        >>> from monai_imbalance.apps.synthetic import make_synthetic_pair
        >>> pair = make_synthetic_pair((128, 128), fg_fraction=0.1, seed=0)
        >>> crop = RandMaskAwareCrop(roi_size=(64, 64), rho=0.25, stride=16, tau=2, num_samples=4)
        >>> patches = crop(pair["image"], pair["label"])
        >>> [tuple(p.shape) for p in patches]
        [(1, 64, 64), (1, 64, 64), (1, 64, 64), (1, 64, 64)]
        >>> all(p.meta["crop_kind"] in ("mac", "random", "fallback") for p in patches)
        True
    """

    _record_name = "windows"

    def __init__(
        self,
        roi_size: int | Sequence[int] | None = None,
        rho: float | Sequence[float] | None = None,
        stride: int | Sequence[int] | None = None,
        tau: float | None = None,
        prob: float | None = None,
        num_samples: int = 1,
        classes: Sequence[int] | None = None,
        ratios: Sequence[float] | None = None,
        allow_smaller: bool | None = None,
        mode: str = PytorchPadMode.CONSTANT,
        **pad_kwargs: Any,
    ) -> None:
        super().__init__(roi_size, num_samples=num_samples, allow_smaller=allow_smaller, mode=mode, **pad_kwargs)
        if stride is not None:
            stride = _check_int_arg(stride, "stride")
            _check_spatial_ndim(stride, "stride")
        self.rho, self.stride, self.classes = rho, stride, classes
        checked_classes, checked_rho = _check_classes_rho(classes, MAC_DEFAULTS["rho"] if rho is None else rho)
        self.mac_prob = _mac_frequency(tau, prob)
        self.ratios = _check_ratios(ratios, checked_classes)
        # computes the windows when no record is given: the arguments set here, MAC_DEFAULTS for the others
        self.finder = None if roi_size is None else MaskAwareWindows(
            roi_size, rho=checked_rho if checked_classes else checked_rho[0],
            stride=MAC_DEFAULTS["stride"] if stride is None else stride, classes=checked_classes,
            allow_smaller=bool(allow_smaller),
        )

    def windows(self, label: Any) -> dict[str, Any]:
        """The windows record of ``label`` for this crop's arguments (what :class:`MaskAwareWindows` caches)."""
        return self._windows_finder()(label)

    def _windows_finder(self) -> MaskAwareWindows:
        if self.finder is None:
            raise ValueError(
                "RandMaskAwareCrop has no roi_size, so it cannot compute windows itself: give it a windows record "
                "(MaskAwareWindows / MaskAwareWindowsd, which carries roi_size, rho, stride and classes), or a "
                "roi_size."
            )
        return self.finder

    def _record_of(self, label: np.ndarray) -> Mapping[str, Any]:
        return self._windows_finder()._record(label)

    def _given_geometry(self, ndim: int, groups: int) -> dict[str, Any]:
        """The geometry arguments set on this crop, normalised as the record stores them."""
        given: dict[str, Any] = {}
        if self.roi_size is not None:
            given["roi_size"] = ensure_int_sequence(self.roi_size, ndim, "roi_size")
        if self.stride is not None:
            given["stride"] = ensure_int_sequence(self.stride, ndim, "stride")
        if self.rho is not None:
            rho = (self.rho,) * groups if np.isscalar(self.rho) else tuple(self.rho)
            given["rho"] = tuple(float(r) for r in rho)
        if self.classes is not None:
            given["classes"] = tuple(int(c) for c in self.classes)
        if self.allow_smaller is not None:
            given["allow_smaller"] = bool(self.allow_smaller)
        return given

    def check_windows(self, record: Any, spatial_shape: Sequence[int]) -> None:
        """``ValueError`` unless ``record`` is a windows record of this image's grid whose geometry agrees with
        every geometry argument set on this crop (unset ones are read from the record)."""
        if not isinstance(record, Mapping) or "starts" not in record:
            raise ValueError(
                f"windows must be the record of MaskAwareWindows / MaskAwareWindowsd, got {type(record).__name__}."
            )
        if tuple(record["spatial_shape"]) != tuple(spatial_shape):
            raise ValueError(
                f"the windows were computed on spatial shape {tuple(record['spatial_shape'])} but the image has "
                f"{tuple(spatial_shape)}; compute them after every transform that changes the grid."
            )
        for field, value in self._given_geometry(len(spatial_shape), len(record["counts"])).items():
            if record.get(field) != value:
                raise ValueError(
                    f"RandMaskAwareCrop was given {field}={value} but the windows record was computed with "
                    f"{field}={record.get(field)}; the crop reads {', '.join(_MAC_GEOMETRY)} from the record: "
                    "leave them unset on the crop (state them once, on MaskAwareWindowsd), or give the record's values."
                )

    def _group_weights(self, windows: Mapping[str, Any], counts: np.ndarray) -> np.ndarray:
        """Probability weights of the record's groups: ``ratios`` (equal by default), 0 for a group without windows."""
        if self.ratios is None:
            return (counts > 0).astype(np.float64)
        if windows.get("classes") is None or len(self.ratios) != len(counts):
            raise ValueError(
                f"ratios must be one non-negative number per class of classes={windows.get('classes')}, "
                f"got ratios={self.ratios.tolist()}."
            )
        return self.ratios * (counts > 0)

    def randomize(self, spatial_shape: Sequence[int], windows: Mapping[str, Any]) -> list[CropSample]:  # type: ignore[override]
        """Draw ``num_samples`` crops from ``self.R`` and return them (nothing is stored on ``self``).

        Args:
            spatial_shape: spatial shape of the image.
            windows: the windows record of its label (:meth:`windows`, or the cached record); the crop size is
                the record's ``roi_size``.
        """
        n = self.num_samples
        roi = tuple(int(r) for r in windows["roi_size"])
        classes = windows.get("classes")
        counts = np.asarray(windows["counts"])
        weights = self._group_weights(windows, counts)
        is_mac = self.R.random_sample(n) < self.mac_prob
        n_mac = int(is_mac.sum())
        has_windows = weights.sum() > 0
        group = np.zeros(n_mac, dtype=np.int64)
        pick = np.zeros(n_mac, dtype=np.int64)
        if n_mac and has_windows:
            if len(counts) > 1:
                cumulative = np.cumsum(weights)
                group = np.searchsorted(cumulative, self.R.random_sample(n_mac) * cumulative[-1], side="right")
                group = np.minimum(group, len(counts) - 1)
            offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
            pick = offsets[group] + self.R.randint(0, np.maximum(counts[group], 1))
        n_random = n - (n_mac if has_windows else 0)
        random_starts = self._random_starts(spatial_shape, roi, n_random) if n_random else None
        starts = windows["starts"]
        samples, j, k = [], 0, 0
        for mac in is_mac:
            if mac and has_windows:
                label_class = None if classes is None else classes[group[j]]
                samples.append(CropSample(tuple(int(v) for v in starts[pick[j]]), "mac", label_class, None, roi))
                j += 1
            else:
                kind = "fallback" if mac else "random"
                no_class = None if classes is None else 0  # per-class mode: class 0 for random and fallback crops
                samples.append(CropSample(tuple(int(v) for v in random_starts[k]), kind, no_class, None, roi))
                k += 1
        return samples

    def _extra_meta(self, meta: dict, sample: CropSample) -> None:
        if sample.label_class is not None:  # per-class mode
            meta[CROP_CLASS_KEY] = int(sample.label_class)

    def __call__(  # type: ignore[override]
        self,
        img: Any,
        label: Any | None = None,
        windows: Mapping[str, Any] | None = None,
        samples: Sequence[CropSample] | None = None,
    ) -> list[torch.Tensor]:
        """Crop ``num_samples`` patches from ``img``.

        Args:
            img: channel-first image ``(C, *spatial)``, numpy, torch or MetaTensor.
            label: channel-first label ``(1, *spatial)``; needed unless ``windows`` or ``samples`` is given.
            windows: precomputed windows record (:class:`MaskAwareWindows`); computed from ``label`` when None.
            samples: crops drawn earlier by :meth:`randomize` (e.g. to crop the label the same way); no new draw.

        Returns:
            list of ``num_samples`` crops (``MetaTensor`` with the crop's metadata when MONAI tracks metadata).
        """
        return self._crop(img, label, windows, samples)

    def _check_record(self, record: Any, spatial_shape: Sequence[int]) -> None:
        self.check_windows(record, spatial_shape)


class RandMaskAwareCropd(_RandWindowCropd):
    """Dictionary form of :class:`RandMaskAwareCrop` (readings there): one draw per call for all ``keys``,
    ``num_samples`` output dictionaries (like ``RandCropByPosNegLabeld``).

    Use :class:`MaskAwareWindowsd` before it (inside the cached part of the pipeline) and pass its output key as
    ``windows_key``: the windows are then searched once per image, not once per epoch, and the crop reads
    ``roi_size``, ``rho``, ``stride``, ``classes`` and ``allow_smaller`` from the record, so they need not be
    repeated here (if they are, they must agree with it). The record is checked against the image grid and
    removed from the outputs.

    Args:
        keys: keys to crop (image and label, typically); all must share the label's spatial shape.
        label_key: label used to find the windows (channel-first, one channel).
        roi_size, rho, stride, tau, prob, num_samples, classes, ratios, allow_smaller, mode, pad_kwargs: as
            :class:`RandMaskAwareCrop`; ``roi_size`` is needed when there is no ``windows_key``.
        windows_key: key of a precomputed windows record (``MaskAwareWindowsd``'s ``label + "_mac_windows"``), or
            None to compute the windows from the label on every call.
        allow_missing_keys: don't raise an exception if a key is missing.

    Raises:
        ValueError: as :class:`RandMaskAwareCrop`, plus a missing ``windows_key``, no ``roi_size`` without a
            ``windows_key``, and keys whose spatial shapes differ from the label's.
    """

    def __init__(
        self,
        keys: KeysCollection,
        label_key: str,
        roi_size: int | Sequence[int] | None = None,
        rho: float | Sequence[float] | None = None,
        stride: int | Sequence[int] | None = None,
        tau: float | None = None,
        prob: float | None = None,
        num_samples: int = 1,
        windows_key: str | None = None,
        allow_smaller: bool | None = None,
        classes: Sequence[int] | None = None,
        ratios: Sequence[float] | None = None,
        mode: str = PytorchPadMode.CONSTANT,
        allow_missing_keys: bool = False,
        **pad_kwargs: Any,
    ) -> None:
        if windows_key is None and roi_size is None:
            raise ValueError(
                "RandMaskAwareCropd needs a windows_key (the record of MaskAwareWindowsd, which carries the "
                "geometry) or a roi_size to compute the windows on every call."
            )
        super().__init__(keys, label_key, windows_key, allow_missing_keys)
        self.windows_key = windows_key
        self.cropper = RandMaskAwareCrop(
            roi_size, rho=rho, stride=stride, tau=tau, prob=prob, num_samples=num_samples, classes=classes,
            ratios=ratios, allow_smaller=allow_smaller, mode=mode, **pad_kwargs,
        )

    def randomize(self, spatial_shape: Sequence[int], windows: Mapping[str, Any]) -> list[CropSample]:  # type: ignore[override]
        """Draw the crops of one call (see :meth:`RandMaskAwareCrop.randomize`)."""
        return self.cropper.randomize(spatial_shape, windows)


# ---------------------------------------------------------------------------------------------------------------
# PC: probabilistic crop
# ---------------------------------------------------------------------------------------------------------------


class ProbabilisticCropCenters(Transform):
    """Deterministic PC precompute: the center distribution of :class:`RandProbabilisticCrop`, as a small record.

    Reading: crop center drawn with probability proportional to ``EDT(Y > 0)``: each foreground pixel's Euclidean
    distance to the nearest background pixel (0 on background). Optional exponent ``power`` (default 1).

    Only foreground pixels have weight, so the record lists them: their flat (C-order) indices and the running
    sum of their weights ``EDT ** power`` (float64, 12 bytes per foreground pixel instead of a full-size weight
    map, or MONAI's 8 bytes per pixel of foreground and background indices)::

        {"indices": int32 or int64 (F,), "cdf": float64 (F,), "spatial_shape": tuple, "power": float}

    The distance transform runs only on the boxes of :func:`~monai_imbalance.transforms.utils.exact_distance_boxes`
    (the foreground's bounding box grown by one pixel, or one such box per connected component when that box is
    large), which give exactly the distances of the whole image in a fraction of the time. A label without
    background (all foreground) gets equal weights.

    Args:
        power: exponent of the distance, ``>= 0`` (0: uniform over foreground pixels); default
            ``PC_DEFAULTS["power"]`` (1). The crop reads it from the record.

    Raises:
        ValueError: ``power`` negative or not finite; at call time a multi-channel label or one with non-integer
            or negative values.
    """

    def __init__(self, power: float = PC_DEFAULTS["power"]) -> None:
        self.power = _check_power(power)

    def __call__(self, label: Any) -> dict[str, Any]:
        """Compute the centers record of a channel-first label ``(1, *spatial)``."""
        _check_label_shape(label)
        return self._record(_label_values(label))

    def _record(self, arr: np.ndarray) -> dict[str, Any]:
        """The record of a checked spatial class-index array."""
        shape = tuple(int(s) for s in arr.shape)
        fg = arr != 0
        index_dtype = np.int32 if math.prod(shape) < 2**31 else np.int64
        record = {"indices": np.zeros(0, index_dtype), "cdf": np.zeros(0), "spatial_shape": shape, "power": self.power}
        if not fg.any():
            return record
        if fg.all():  # no background pixel at all: every pixel is as far from it as any other
            record.update(indices=np.arange(fg.size, dtype=index_dtype), cdf=np.arange(1.0, fg.size + 1.0))
            return record
        flat_parts, weight_parts = [], []
        for box, select in exact_distance_boxes(fg):
            coords = np.nonzero(fg[box] if select is None else select)
            distance = euclidean_distance(fg[box])[coords]
            weight_parts.append(distance if self.power == 1.0 else distance**self.power)
            flat_parts.append(np.ravel_multi_index(tuple(c + b.start for c, b in zip(coords, box)), shape))
        flat, weights = np.concatenate(flat_parts), np.concatenate(weight_parts)
        if len(flat_parts) > 1:  # C order over the whole image, whatever the boxes
            order = np.argsort(flat, kind="stable")
            flat, weights = flat[order], weights[order]
        record.update(indices=flat.astype(index_dtype), cdf=np.cumsum(weights, dtype=np.float64))
        return record


class ProbabilisticCropCentersd(MapTransform):
    """Dictionary form of :class:`ProbabilisticCropCenters` (reading there): stores the centers record of each label
    key under ``key + centers_postfix`` so that ``CacheDataset`` caches it; :class:`RandProbabilisticCropd` reads
    ``power`` from it.

    Args:
        keys: label keys.
        power: exponent of the distance.
        centers_postfix: postfix of the output key.
        allow_missing_keys: don't raise an exception if a key is missing.
        centres_postfix: deprecated spelling of ``centers_postfix`` (removed in 0.2.0).
    """

    @deprecated_arg("centres_postfix", new_name="centers_postfix", msg_suffix="Use centers_postfix.", **_DEPRECATION)
    def __init__(
        self,
        keys: KeysCollection,
        power: float = PC_DEFAULTS["power"],
        centers_postfix: str = "_pc_centers",
        allow_missing_keys: bool = False,
        centres_postfix: str | None = None,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.centers_postfix = centers_postfix
        self.finder = ProbabilisticCropCenters(power)

    @property
    def centres_postfix(self) -> str:
        """Deprecated spelling of :attr:`centers_postfix`."""
        _warn_renamed("centres_postfix", "centers_postfix")
        return self.centers_postfix

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[str(key) + self.centers_postfix] = self.finder(d[key])
        return d


class RandProbabilisticCrop(_RandWindowCrop):
    """Probabilistic cropping (PC, Kochkarev et al. as described in the MAC paper): crop centers drawn with
    probability proportional to the distance of foreground pixels to the background (the distribution and its
    reading: :class:`ProbabilisticCropCenters`).

    Reading: center -> window: ``start = clip(center - roi // 2, 0, size - roi)`` per axis, so objects at the
    border keep their probability (MONAI's ``RandWeightedCrop`` drops weight outside its valid-center region). No
    foreground -> uniform random crop.

    Outputs carry ``"crop_kind"`` (``"pc"``, or ``"fallback"`` for a label without foreground),
    ``"crop_start"``, ``"crop_center"`` and ``"patch_index"`` in their metadata. Randomness, threads and
    inversion as :class:`RandMaskAwareCrop`: ``randomize`` returns the draws instead of storing them.

    Args:
        roi_size: crop size, an int or one value per spatial axis.
        power: exponent of the distance (``>= 0``); None: the centers record's, else ``PC_DEFAULTS["power"]``.
            Given together with a record computed with another power, a ``ValueError``.
        num_samples: crops per call.
        allow_smaller: if False, an image smaller than ``roi_size`` is a ``ValueError``; if True, the crop is
            padded to ``roi_size``.
        mode, pad_kwargs: padding for ``allow_smaller``.

    Raises:
        ValueError: bad ``power``, ``roi_size`` or ``num_samples``; crop larger than the image without
            ``allow_smaller``; image and label of different spatial shape; a multi-channel label; non-integer label
            values; a centers record for another power or grid.
    """

    _record_name = "centers"

    def __init__(
        self,
        roi_size: int | Sequence[int],
        power: float | None = None,
        num_samples: int = 1,
        allow_smaller: bool = False,
        mode: str = PytorchPadMode.CONSTANT,
        **pad_kwargs: Any,
    ) -> None:
        super().__init__(roi_size, num_samples=num_samples, allow_smaller=allow_smaller, mode=mode, **pad_kwargs)
        self.finder = ProbabilisticCropCenters(PC_DEFAULTS["power"] if power is None else power)
        self.power = None if power is None else self.finder.power

    def centers(self, label: Any) -> dict[str, Any]:
        """The centers record of ``label`` (what :class:`ProbabilisticCropCenters` caches)."""
        return self.finder(label)

    def check_centers(self, record: Any, spatial_shape: Sequence[int]) -> None:
        """``ValueError`` unless ``record`` is a centers record of this image's grid (and of this crop's ``power``,
        when one is set)."""
        if not isinstance(record, Mapping) or "cdf" not in record:
            raise ValueError(
                "centers must be the record of ProbabilisticCropCenters / ProbabilisticCropCentersd, got "
                f"{type(record).__name__}."
            )
        if self.power is not None and record.get("power") != self.power:
            raise ValueError(
                f"RandProbabilisticCrop was given power={self.power} but the centers record was computed with "
                f"power={record.get('power')}; the crop reads power from the record: leave it unset on the crop, or "
                "give the record's value."
            )
        if tuple(record["spatial_shape"]) != tuple(spatial_shape):
            raise ValueError(
                f"the centers were computed on spatial shape {tuple(record['spatial_shape'])} but the image has "
                f"{tuple(spatial_shape)}; compute them after every transform that changes the grid."
            )

    @deprecated(msg_suffix="Use centers().", **_DEPRECATION)
    def centres(self, label: Any) -> dict[str, Any]:
        """Deprecated spelling of :meth:`centers`."""
        return self.centers(label)

    @deprecated(msg_suffix="Use check_centers().", **_DEPRECATION)
    def check_centres(self, record: Any, spatial_shape: Sequence[int]) -> None:
        """Deprecated spelling of :meth:`check_centers`."""
        self.check_centers(record, spatial_shape)

    def randomize(self, spatial_shape: Sequence[int], centers: Mapping[str, Any]) -> list[CropSample]:  # type: ignore[override]
        """Draw ``num_samples`` crops from ``self.R`` and return them (nothing is stored on ``self``)."""
        roi_size = self._roi(spatial_shape)
        roi = np.asarray(roi_size)
        shape = np.asarray(spatial_shape)
        cdf = centers["cdf"]
        n = self.num_samples
        if len(cdf) == 0:
            starts = self._random_starts(spatial_shape, roi, n)
            return [
                CropSample(tuple(int(v) for v in s), "fallback", None, tuple(int(v) for v in s + roi // 2), roi_size)
                for s in starts
            ]
        picks = np.searchsorted(cdf, self.R.random_sample(n) * cdf[-1], side="right")
        flat = centers["indices"][np.minimum(picks, len(cdf) - 1)]
        points = np.stack(np.unravel_index(flat, tuple(spatial_shape)), axis=1)
        starts = np.clip(points - roi // 2, 0, np.maximum(shape - roi, 0))
        return [
            CropSample(tuple(int(v) for v in s), "pc", None, tuple(int(v) for v in c), roi_size)
            for s, c in zip(starts, points)
        ]

    def _extra_meta(self, meta: dict, sample: CropSample) -> None:
        meta[CROP_CENTER_KEY] = sample.center

    def __call__(  # type: ignore[override]
        self,
        img: Any,
        label: Any | None = None,
        centers: Mapping[str, Any] | None = None,
        samples: Sequence[CropSample] | None = None,
        centres: Mapping[str, Any] | None = None,
    ) -> list[torch.Tensor]:
        """Crop ``num_samples`` patches from ``img`` (arguments as :meth:`RandMaskAwareCrop.__call__`, with the
        centers record ``centers`` in place of ``windows``; ``centres`` is its deprecated spelling)."""
        if centres is not None:
            _warn_renamed("centres", "centers")
            centers = centres if centers is None else centers
        return self._crop(img, label, centers, samples)

    def _record_of(self, label: np.ndarray) -> Mapping[str, Any]:
        return self.finder._record(label)

    def _check_record(self, record: Any, spatial_shape: Sequence[int]) -> None:
        self.check_centers(record, spatial_shape)


class RandProbabilisticCropd(_RandWindowCropd):
    """Dictionary form of :class:`RandProbabilisticCrop` (readings there): one draw per call for all ``keys``,
    ``num_samples`` output dictionaries.

    Put :class:`ProbabilisticCropCentersd` in the cached part of the pipeline and pass its output key as
    ``centers_key`` so the distance transform runs once per image; the crop reads ``power`` from the record.

    Args:
        keys: keys to crop; all must share the label's spatial shape.
        label_key: label whose foreground gives the center distribution.
        roi_size, power, num_samples, allow_smaller, mode, pad_kwargs: as :class:`RandProbabilisticCrop`.
        centers_key: key of a precomputed centers record (``label + "_pc_centers"``), or None to compute it on
            every call.
        allow_missing_keys: don't raise an exception if a key is missing.
        centres_key: deprecated spelling of ``centers_key`` (removed in 0.2.0).
    """

    @deprecated_arg("centres_key", new_name="centers_key", msg_suffix="Use centers_key.", **_DEPRECATION)
    def __init__(
        self,
        keys: KeysCollection,
        label_key: str,
        roi_size: int | Sequence[int],
        power: float | None = None,
        num_samples: int = 1,
        centers_key: str | None = None,
        allow_smaller: bool = False,
        mode: str = PytorchPadMode.CONSTANT,
        allow_missing_keys: bool = False,
        centres_key: str | None = None,
        **pad_kwargs: Any,
    ) -> None:
        super().__init__(keys, label_key, centers_key, allow_missing_keys)
        self.centers_key = centers_key
        self.cropper = RandProbabilisticCrop(
            roi_size, power=power, num_samples=num_samples, allow_smaller=allow_smaller, mode=mode, **pad_kwargs
        )

    def randomize(self, spatial_shape: Sequence[int], centers: Mapping[str, Any]) -> list[CropSample]:  # type: ignore[override]
        """Draw the crops of one call (see :meth:`RandProbabilisticCrop.randomize`)."""
        return self.cropper.randomize(spatial_shape, centers)


# ---------------------------------------------------------------------------------------------------------------
# MONAI's aliases, and the deprecated ``centre`` spellings (one release)
# ---------------------------------------------------------------------------------------------------------------

MaskAwareWindowsD = MaskAwareWindowsDict = MaskAwareWindowsd
RandMaskAwareCropD = RandMaskAwareCropDict = RandMaskAwareCropd
ProbabilisticCropCentersD = ProbabilisticCropCentersDict = ProbabilisticCropCentersd
RandProbabilisticCropD = RandProbabilisticCropDict = RandProbabilisticCropd


@deprecated(msg_suffix="Use ProbabilisticCropCenters.", **_DEPRECATION)
class ProbabilisticCropCentres(ProbabilisticCropCenters):
    """Deprecated spelling of :class:`ProbabilisticCropCenters` (removed in 0.2.0)."""


@deprecated(msg_suffix="Use ProbabilisticCropCentersd (default postfix '_pc_centers').", **_DEPRECATION)
class ProbabilisticCropCentresd(ProbabilisticCropCentersd):
    """Deprecated spelling of :class:`ProbabilisticCropCentersd` (removed in 0.2.0); it keeps the old default
    output key postfix ``"_pc_centres"``, so pipelines naming ``label_pc_centres`` keep working."""

    def __init__(
        self,
        keys: KeysCollection,
        power: float = PC_DEFAULTS["power"],
        centres_postfix: str = "_pc_centres",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, power=power, centers_postfix=centres_postfix, allow_missing_keys=allow_missing_keys)


ProbabilisticCropCentresD = ProbabilisticCropCentresDict = ProbabilisticCropCentresd
