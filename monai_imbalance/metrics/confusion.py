"""Confusion counts ``[TP, FP, TN, FN]`` per image and class, computed once per iteration and read by several metrics.

An evaluation that reports precision, recall and accuracy (MONAI's ``ConfusionMatrixMetric``) and the OII
(:class:`~monai_imbalance.metrics.OutputImbalanceIndexMetric`) would otherwise count the same confusion matrix four
times per iteration. :class:`ConfusionCountsMetric` buffers the counts once (a ``CumulativeIterationMetric``, so the
buffers are gathered under DDP as MONAI's are); :meth:`ConfusionCountsMetric.confusion_matrix_metric` and
:meth:`ConfusionCountsMetric.oii_metric` give MONAI's ``ConfusionMatrixMetric`` and the package's OII metric reading
that buffer, so their ``aggregate`` is the library's own code on the shared counts. The handlers
:class:`~monai_imbalance.handlers.PerImageConfusionMatrix` and :class:`~monai_imbalance.handlers.OutputImbalanceIndex`
take one through ``counts=``.

NaN predictions (the OII module's NaN policy): the counts of an image whose prediction holds NaN or inf are NaN
(``TN`` too), so they stay visible in the buffer and in the saved details; :meth:`ConfusionCountsMetric.nan_images`
counts those images. MONAI's ``ConfusionMatrixMetric`` leaves NaN values out of its reduction; reading these counts,
it gives NaN (not 0) when every image is NaN.

Example:
    >>> import torch
    >>> counts = ConfusionCountsMetric()
    >>> y = torch.zeros(1, 1, 4, 4); y[..., :2, :2] = 1
    >>> y_pred = y.clone(); y_pred[..., 0, 0] = 0
    >>> counts(y_pred, y).tolist()  # TP, FP, TN, FN of the one image and class
    [[[3.0, 0.0, 12.0, 1.0]]]
    >>> counts.confusion_matrix_metric("recall").aggregate()[0].item()
    0.75
"""

from __future__ import annotations

import math
from typing import Any

import torch
from monai.metrics import ConfusionMatrixMetric, CumulativeIterationMetric
from monai.utils import MetricReduction

from .oii import OutputImbalanceIndexMetric, compute_oii_counts, nan_image_mask

__all__ = ["CONFUSION_FIELDS", "compute_confusion_counts", "ConfusionCountsMetric"]

#: the counts along the last axis, in MONAI's ``get_confusion_matrix`` order
CONFUSION_FIELDS = ("tp", "fp", "tn", "fn")
_OII_COLUMNS = [0, 1, 3]  # TP, FP, FN


def compute_confusion_counts(y_pred: torch.Tensor, y: torch.Tensor, include_background: bool = True) -> torch.Tensor:
    """``[TP, FP, TN, FN]`` per image and class: a float64 tensor ``[B, C, 4]`` (exact counts).

    The counts of MONAI's ``get_confusion_matrix`` for binarised inputs (which gives them as float32), with the TP,
    FP and FN of :func:`~monai_imbalance.metrics.compute_oii_counts` (float64, exact at any size) and
    ``TN = pixels - TP - FP - FN``.

    Args:
        y_pred: binarised one-hot prediction ``(B, C, *spatial)``.
        y: one-hot ground truth of the same shape.
        include_background: whether channel 0 is counted.

    Returns:
        the counts; NaN (all four, all classes) for an image whose ``y_pred`` holds NaN or inf.

    Raises:
        ValueError: different shapes, or fewer than three dimensions.
    """
    tp, fp, fn = compute_oii_counts(y_pred, y, include_background).unbind(-1)
    tn = float(math.prod(y_pred.shape[2:])) - tp - fp - fn
    return torch.stack([tp, fp, tn, fn], -1)


class _ReadsSharedCounts:
    """A cumulative metric whose buffer is columns of a :class:`ConfusionCountsMetric`'s: calling it adds to the
    shared counts, ``reset`` resets them, ``get_buffer`` reads them (gathered once for all readers under DDP)."""

    def __init__(
        self, counts: ConfusionCountsMetric, columns: list[int] | None, dtype: torch.dtype | None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.counts = counts
        self._columns = columns
        self._dtype = dtype

    def __call__(self, y_pred: Any, y: Any = None, **kwargs: Any) -> Any:
        return self.counts(y_pred, y, **kwargs)

    def reset(self) -> None:
        if hasattr(self, "counts"):
            self.counts.reset()
        else:  # Cumulative.__init__ resets the metric's own buffers, which stay unused
            super().reset()  # type: ignore[misc]

    def get_buffer(self) -> Any:
        data = self.counts.get_buffer()
        if not isinstance(data, torch.Tensor):
            return data
        if self._columns is not None:
            data = data[..., self._columns]
        return data if self._dtype is None else data.to(self._dtype)


class _SharedConfusionMatrixMetric(_ReadsSharedCounts, ConfusionMatrixMetric):
    """MONAI's ``ConfusionMatrixMetric`` on the float32 counts it computes itself (``get_confusion_matrix``);
    NaN instead of MONAI's 0 when every image's counts are NaN (no value left to reduce)."""

    def aggregate(self, *args: Any, **kwargs: Any) -> Any:
        results = super().aggregate(*args, **kwargs)
        data = self.counts.get_buffer()
        if isinstance(data, torch.Tensor) and data.shape[0] > 0 and bool(nan_image_mask(data).all()):
            results = [torch.full_like(r, float("nan")) if isinstance(r, torch.Tensor) and r.is_floating_point()
                       else r for r in results]
        return results


class _SharedOutputImbalanceIndexMetric(_ReadsSharedCounts, OutputImbalanceIndexMetric):
    """The package's OII metric on the shared TP, FP, FN (float64, as :func:`compute_oii_counts` gives them)."""


class ConfusionCountsMetric(CumulativeIterationMetric):
    """Buffers ``[TP, FP, TN, FN]`` per image and class (``[N, C, 4]``, :data:`CONFUSION_FIELDS`) for several metrics.

    Call it once per iteration with binarised one-hot ``(y_pred, y)``; the metrics of
    :meth:`confusion_matrix_metric` and :meth:`oii_metric` then aggregate the same buffer. Under DDP
    :meth:`get_buffer` gathers the buffers of all ranks once (MONAI's ``Cumulative``), whichever metric asks first.

    Args:
        include_background: whether channel 0 is counted.

    Attributes:
        updated_by: set by the handlers sharing these counts
            (:class:`~monai_imbalance.handlers.PerImageConfusionMatrix`, ...): the one that updates and resets them.

    Example: see the module docstring.
    """

    def __init__(self, include_background: bool = True) -> None:
        super().__init__()
        self.include_background = include_background
        self.updated_by: Any = None

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Counts ``[B, C, 4]`` of one batch (binarised one-hot ``y_pred`` and ``y``, batch first)."""
        return compute_confusion_counts(y_pred, y, self.include_background)

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        """The counts of all images so far, ``[N, C, 4]`` (NaN rows for images whose prediction held NaN or inf)."""
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError("the data to aggregate must be PyTorch Tensor.")
        return data

    def nan_images(self) -> int:
        """The number of images so far whose prediction held NaN or inf (their counts are NaN)."""
        data = self.get_buffer()
        return int(nan_image_mask(data).sum()) if isinstance(data, torch.Tensor) and data.numel() else 0

    def confusion_matrix_metric(
        self,
        metric_name: str,
        compute_sample: bool = False,
        reduction: MetricReduction | str = MetricReduction.MEAN,
    ) -> ConfusionMatrixMetric:
        """MONAI's ``ConfusionMatrixMetric(include_background, metric_name, compute_sample, reduction)`` reading these
        counts (cast to float32, the dtype of MONAI's own counts): calling it adds to them, ``reset`` resets them."""
        return _SharedConfusionMatrixMetric(self, None, torch.float32, include_background=self.include_background,
                                            metric_name=metric_name, compute_sample=compute_sample, reduction=reduction)

    def oii_metric(
        self, reduction: MetricReduction | str = MetricReduction.MEAN, per_image: bool = False, **kwargs: Any
    ) -> OutputImbalanceIndexMetric:
        """:class:`~monai_imbalance.metrics.OutputImbalanceIndexMetric` (``include_background`` of these counts,
        ``reduction``, ``per_image``, ``get_counts``, ``ignore_empty``) reading their TP, FP and FN."""
        return _SharedOutputImbalanceIndexMetric(self, _OII_COLUMNS, None, include_background=self.include_background,
                                                 reduction=reduction, per_image=per_image, **kwargs)
