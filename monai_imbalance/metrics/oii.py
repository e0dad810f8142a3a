"""Output Imbalance Index (OII), DIBE paper Eqs. 13-15 (Yi, Zhong, Liu, Wu, Deng, Wu, *Harmonizing Output
Imbalance for semantic segmentation on extremely-imbalanced input data*).

``x = FP / FN``, ``k = 1 - (2 / pi) atan((FP + FN) / (5 TP))`` and

    OII = 1 - k / (x + 1/x - 1)   for 0 < x <= 1,
    OII = k / (x + 1/x - 1) - 1   for x > 1.

Positive values mean false negatives dominate (under-segmentation), negative values false positives dominate; the
magnitude grows with ``(FP + FN) / TP``. OII lies in ``[-1, 1]``.

Reading (method readings, "DIBE and OII"): hard counts (threshold 0.5 or argmax), accumulated over a whole evaluation
set. The paper's Table 1 is reproduced to 1e-3 except its row 2:3:3, printed 0.334, where the formula gives 0.344 (a
typo in the table). Cases the paper leaves open: ``FP = FN = 0 -> 0``; ``FP = 0 < FN -> 1``; ``FN = 0 < FP -> -1``;
``TP = 0 -> k = 0`` (so ``OII = 1`` when ``FP <= FN``, ``-1`` otherwise; the paper itself sets ``OII = 1`` when
``IoU = 0`` during training).

NaN policy: an image whose prediction holds a NaN or an infinite value has NaN counts, so its OII is NaN, never a
number (0 would read as "perfectly balanced"). :class:`OutputImbalanceIndexMetric` leaves such images out of the
aggregate, as MONAI's ``do_metric_reduction`` leaves out NaN values (``not_nans``), counts them
(:attr:`OutputImbalanceIndexMetric.nan_images`; the handler logs a warning with the count), and gives NaN when no
image is left. The NaN must reach the metric: thresholding (``AsDiscrete(threshold=0.5)``) turns a NaN probability
into 0 and ``argmax`` into a class, so a NaN network output is only seen here if the discretisation keeps it (for
example ``torch.where(torch.isfinite(prob).all(1, keepdim=True), discrete, float("nan"))`` on each image).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import numpy as np
import torch
from monai.metrics import CumulativeIterationMetric
from monai.metrics.utils import do_metric_reduction, ignore_background
from monai.utils import MetricReduction

__all__ = ["compute_oii", "compute_oii_counts", "OutputImbalanceIndexMetric", "OIIResult", "nan_image_mask"]


def _oii_torch(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    # x + 1/x - 1 = (FP^2 - FP FN + FN^2) / (FP FN): with FP and FN scaled by their maximum, k FP FN / (...) needs no
    # division by zero except FP = FN = 0, and the one-sided limits (x -> 0, x -> inf) come out as 0
    scale = torch.maximum(fp, fn)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    a, b = fp / safe, fn / safe
    k = 1.0 - (2.0 / math.pi) * torch.atan2(fp + fn, 5.0 * tp)  # atan2(., 0) = pi / 2: k = 0 when TP = 0
    ratio = k * a * b / torch.where(scale > 0, a * a - a * b + b * b, torch.ones_like(a))
    oii = torch.where(fp <= fn, 1.0 - ratio, ratio - 1.0)
    return torch.where((fp == 0) & (fn == 0), torch.zeros_like(oii), oii)


def compute_oii(tp: Any, fp: Any, fn: Any) -> Any:
    """OII of the counts ``tp``, ``fp``, ``fn`` (Eqs. 13-15), elementwise with broadcasting.

    Args:
        tp, fp, fn: true positive, false positive and false negative counts (or soft counts), ``>= 0``: Python
            numbers, numpy arrays or torch tensors (a tensor anywhere gives a tensor result on its device).

    Returns:
        a float for numbers, a float numpy array for arrays, a floating tensor for tensors (the inputs' floating
        dtype, float64 for integer counts); NaN where an input is NaN.

    Raises:
        ValueError: a negative count.

    Reading: ``FP = FN = 0 -> 0``, ``FP = 0 < FN -> 1``, ``FN = 0 < FP -> -1``, ``TP = 0 -> k = 0``; the paper's Table 1
    row 2:3:3 prints 0.334 where the formula gives 0.344.

    Example:
        >>> round(compute_oii(2, 1, 2), 3)  # Table 1, row 8
        0.457
    """
    tensors = [v for v in (tp, fp, fn) if isinstance(v, torch.Tensor)]
    if tensors:
        dtype = functools.reduce(torch.promote_types, (v.dtype for v in tensors))
        dtype = dtype if dtype.is_floating_point else torch.float64
        tp64, fp64, fn64 = (torch.as_tensor(v, dtype=torch.float64, device=tensors[0].device) for v in (tp, fp, fn))
        if bool(((tp64 < 0) | (fp64 < 0) | (fn64 < 0)).any()):
            raise ValueError("TP, FP and FN must be >= 0.")
        return _oii_torch(*torch.broadcast_tensors(tp64, fp64, fn64)).to(dtype)
    scalar = all(np.ndim(v) == 0 and not isinstance(v, np.ndarray) for v in (tp, fp, fn))
    arrays = [np.asarray(v, dtype=np.float64) for v in (tp, fp, fn)]
    if any(bool(np.any(v < 0)) for v in arrays):
        raise ValueError("TP, FP and FN must be >= 0.")
    out = _oii_torch(*torch.broadcast_tensors(*(torch.from_numpy(np.array(v)) for v in arrays))).numpy()
    return float(out) if scalar else out


def compute_oii_counts(y_pred: torch.Tensor, y: torch.Tensor, include_background: bool = True) -> torch.Tensor:
    """Hard counts per image and class: ``[B, C, 3]`` holding ``(TP, FP, FN)`` (float64, exact).

    Args:
        y_pred: binarised one-hot prediction ``(B, C, H, W[, D])`` (e.g. ``AsDiscrete(argmax=True, to_onehot=C)`` or
            a 0.5 threshold).
        y: one-hot ground truth of the same shape.
        include_background: whether channel 0 is counted.

    Returns:
        the counts; NaN (all classes) for an image whose ``y_pred`` holds a NaN or an infinite value in any channel.

    Raises:
        ValueError: different shapes, or fewer than three dimensions.
    """
    if y_pred.ndim < 3:
        raise ValueError(f"y_pred should have at least 3 dimensions (batch, channel, spatial), got {y_pred.ndim}.")
    # every channel, the background included: a NaN anywhere in an image's prediction makes all its counts unknown
    finite = torch.isfinite(y_pred).flatten(1).all(1) if y_pred.is_floating_point() else None
    if not include_background:
        y_pred, y = ignore_background(y_pred=y_pred, y=y)
    if y.shape != y_pred.shape:
        raise ValueError(f"y_pred and y should have same shapes, got {tuple(y_pred.shape)} and {tuple(y.shape)}.")
    axes = list(range(2, y_pred.ndim))
    y_pred, y = y_pred.to(torch.float64), y.to(torch.float64)
    tp = (y_pred * y).sum(axes)
    fp = y_pred.sum(axes) - tp
    fn = y.sum(axes) - tp
    counts = torch.stack([tp, fp, fn], -1)
    if finite is not None:  # no host synchronisation: a select on the device
        counts = torch.where(finite[:, None, None], counts, torch.full_like(counts, float("nan")))
    return counts


def nan_image_mask(counts: torch.Tensor) -> torch.Tensor:
    """``[N]`` booleans: the images whose counts ``[N, C, K]`` are NaN (their prediction held NaN or inf)."""
    return torch.isnan(counts).flatten(1).any(1)


def reduce_or_nan(values: torch.Tensor, reduction: MetricReduction | str) -> torch.Tensor:
    """MONAI's ``do_metric_reduction`` of ``values`` (NaN values left out), but NaN where no value was left, where
    MONAI gives 0."""
    value, not_nans = do_metric_reduction(values.clone(), reduction)
    if isinstance(value, torch.Tensor) and value.is_floating_point():  # ("mean": value [1], not_nans [])
        value = torch.where(not_nans > 0, value, torch.full_like(value, float("nan")))
    return value


class OIIResult(NamedTuple):
    """What :meth:`OutputImbalanceIndexMetric.aggregate` returns with ``get_counts=True``."""

    oii: torch.Tensor
    tp: torch.Tensor
    fp: torch.Tensor
    fn: torch.Tensor


class OutputImbalanceIndexMetric(CumulativeIterationMetric):
    """Output Imbalance Index over an evaluation set, per class, from binarised one-hot predictions.

    Every iteration stores the hard counts ``(TP, FP, FN)`` of each image and class (``[B, C, 3]``); these buffers are
    gathered across processes like every MONAI ``CumulativeIterationMetric``, so the result is the same under DDP.
    :meth:`aggregate` then computes, by default, the OII of the counts accumulated over the whole set for each class
    (micro; the paper's reading), or with ``per_image=True`` the OII of each image and class. ``reduction`` is MONAI's
    metric reduction on that ``[1, C]`` (micro) or ``[N, C]`` (per image) tensor: ``"mean"`` (default) averages over
    classes (and images), ``"mean_batch"`` gives one value per class, ``"none"`` keeps everything.

    Reading: ``FP = FN = 0 -> 0``, ``FP = 0 < FN -> 1``, ``FN = 0 < FP -> -1``, ``TP = 0 -> k = 0``; the paper's
    Table 1 row 2:3:3 prints 0.334 where the formula gives 0.344. ``ignore_empty=True`` (per image only) instead
    leaves out images where a class has no TP, FP or FN at all (NaN, skipped by the reduction); the default counts them
    as balanced (0), as the reading says.

    NaN predictions (the module's NaN policy): an image whose ``y_pred`` holds NaN or inf has NaN counts and a NaN
    per-image OII. :meth:`aggregate` leaves these images out (micro: of the summed counts; per image: of the
    reduction, as MONAI's ``not_nans``), sets :attr:`nan_images` to their number, and returns NaN, never 0, when no
    value is left (every image NaN, or every image empty with ``ignore_empty``).

    Args:
        include_background: whether channel 0 is counted.
        reduction: MONAI metric reduction of the OII values (see above).
        per_image: OII per image and class instead of from the counts accumulated over the set.
        get_counts: :meth:`aggregate` also returns the TP, FP and FN it used (an :class:`OIIResult`).
        ignore_empty: per image, NaN where a class has no TP, FP or FN.

    Attributes:
        nan_images: the number of images whose prediction held NaN or inf, as of the last :meth:`aggregate` (0
            before it).

    Example:
        >>> metric = OutputImbalanceIndexMetric(include_background=False, get_counts=True)
        >>> y = torch.zeros(1, 2, 4, 4); y[:, 1, :2, :2] = 1; y[:, 0] = 1 - y[:, 1]
        >>> y_pred = y.clone(); y_pred[:, 1, 0, 0] = 0; y_pred[:, 0, 0, 0] = 1  # one missed pixel
        >>> counts = metric(y_pred=y_pred, y=y)  # this batch's (TP, FP, FN) per image and class
        >>> oii, tp, fp, fn = metric.aggregate()
        >>> round(oii.item(), 3), tp.tolist(), fp.tolist(), fn.tolist()
        (1.0, [3.0], [0.0], [1.0])
    """

    def __init__(
        self,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        per_image: bool = False,
        get_counts: bool = False,
        ignore_empty: bool = False,
    ) -> None:
        super().__init__()
        self.include_background = include_background
        self.reduction = reduction
        self.per_image = per_image
        self.get_counts = get_counts
        self.ignore_empty = ignore_empty
        self.nan_images = 0

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Counts ``[B, C, 3]`` of one batch (binarised one-hot ``y_pred`` and ``y``, batch first)."""
        return compute_oii_counts(y_pred, y, self.include_background)

    def aggregate(
        self, reduction: MetricReduction | str | None = None, per_image: bool | None = None
    ) -> torch.Tensor | OIIResult:
        """OII of the accumulated counts (see the class docstring).

        Args:
            reduction: overrides ``self.reduction``.
            per_image: overrides ``self.per_image``.

        Returns:
            the reduced OII, or with ``get_counts`` an :class:`OIIResult` ``(oii, tp, fp, fn)`` whose counts are
            ``[C]`` (summed over the images without NaN) or ``[N, C]`` (per image, NaN rows included). Images whose
            prediction held NaN or inf are left out and counted in :attr:`nan_images`; NaN where nothing is left.
        """
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError("the data to aggregate must be PyTorch Tensor.")
        per_image = self.per_image if per_image is None else per_image
        invalid = nan_image_mask(data)
        self.nan_images = int(invalid.sum())
        if per_image:
            counts = data
        elif self.nan_images < data.shape[0]:
            counts = data[~invalid].sum(0, keepdim=True)
        else:  # no image left: NaN, not the OII of zero counts (0, "balanced")
            counts = torch.full_like(data[:1], float("nan"))
        tp, fp, fn = counts.unbind(-1)
        oii = compute_oii(tp, fp, fn)
        if per_image and self.ignore_empty:
            oii = torch.where((tp + fp + fn) > 0, oii, torch.full_like(oii, float("nan")))
        value = reduce_or_nan(oii, reduction or self.reduction)
        if not self.get_counts:
            return value
        if not per_image:
            tp, fp, fn = tp[0], fp[0], fn[0]
        return OIIResult(value, tp, fp, fn)
