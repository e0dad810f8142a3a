"""Precision, recall, accuracy, ... per image, savable by ``MetricsSaver`` like MONAI's ``MeanDice`` details; and the
confusion counts shared by several metric handlers.

MONAI's ``ConfusionMatrix`` handler stores each image's raw ``[TP, FP, TN, FN]`` counts as its details, which
``MetricsSaver`` cannot write as per-image metric values (its summary fails on the extra axis).
:class:`PerImageConfusionMatrix` stores the metric itself per image and class (``[images, classes]``), so an
evaluation writes ``val_precision_raw.csv`` like ``val_mean_dice_raw.csv``. The aggregated value is MONAI's.

Given one :class:`~monai_imbalance.metrics.ConfusionCountsMetric` as ``counts``, the precision, recall and accuracy
handlers and :class:`~monai_imbalance.handlers.OutputImbalanceIndex` of an evaluator count the confusion matrix once
per iteration instead of once each: the first of them attached updates (and resets) the shared counts, the others
only read them when the run completes.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from ignite.metrics.metric import reinit__is_reduced
from monai.handlers import ConfusionMatrix
from monai.metrics import compute_confusion_matrix_metric

from monai_imbalance.metrics.confusion import ConfusionCountsMetric
from monai_imbalance.metrics.oii import nan_image_mask

__all__ = ["PerImageConfusionMatrix"]


class SharedCountsMixin:
    """For ``IgniteMetricHandler`` subclasses whose ``metric_fn`` reads a shared ``ConfusionCountsMetric``
    (``self.counts``): of the handlers sharing one, the first attached (``counts.updated_by``) updates and resets it,
    the others skip ``update`` and ``reset`` and only read it. All of them must be attached to the same engine."""

    counts: ConfusionCountsMetric | None = None

    def attach(self, engine: Any, name: str, *args: Any, **kwargs: Any) -> None:
        super().attach(engine, name, *args, **kwargs)  # type: ignore[misc]
        if self.counts is None:
            return
        owner = self.counts.updated_by
        if owner is None or owner is self:
            self.counts.updated_by = self
        elif getattr(owner, "_engine", None) is not engine:
            raise ValueError(f"{name}: the ConfusionCountsMetric given as counts is already updated by a handler of "
                             "another engine; give each engine its own.")

    def _updates_counts(self) -> bool:
        return self.counts is None or self.counts.updated_by is self

    @reinit__is_reduced
    def reset(self) -> None:
        if self._updates_counts():
            super().reset()  # type: ignore[misc]

    @reinit__is_reduced
    def update(self, output: Any) -> None:
        if self._updates_counts():
            super().update(output)  # type: ignore[misc]


class PerImageConfusionMatrix(SharedCountsMixin, ConfusionMatrix):
    """``monai.handlers.ConfusionMatrix`` whose saved details are the metric per image and class.

    Args: as ``monai.handlers.ConfusionMatrix`` (``compute_sample=True`` averages the per-image values, the
    default here; False pools the counts of the whole set), and

        counts: a :class:`~monai_imbalance.metrics.ConfusionCountsMetric` shared with the other confusion-based
            handlers of the engine (see the module docstring); None: this handler counts for itself (in a
            ``ConfusionCountsMetric`` of its own, whose counts are MONAI's for binarised inputs and keep NaN).

    NaN predictions: the counts of an image whose prediction held NaN or inf are NaN, so its details are NaN, and
    MONAI's reduction leaves it out (NaN when every image is, with shared ``counts``). Each validation with such
    images logs a warning naming their number, also kept as ``self.nan_images``; of handlers sharing ``counts``, the
    one that updates them warns.

    Raises:
        ValueError: ``include_background`` differs from that of ``counts``.
    """

    def __init__(self, *args: Any, compute_sample: bool = True, counts: ConfusionCountsMetric | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, compute_sample=compute_sample, **kwargs)
        own = self.metric_fn
        if counts is None:
            # counting for itself, with the package's counts too: MONAI's get_confusion_matrix counts a NaN
            # prediction as a false positive, so the NaN would be lost
            counts = ConfusionCountsMetric(include_background=own.include_background)
        elif own.include_background != counts.include_background:
            raise ValueError(f"include_background={own.include_background} differs from that of the shared "
                             f"counts ({counts.include_background}).")
        self.metric_fn = counts.confusion_matrix_metric(own.metric_name[0], compute_sample=own.compute_sample,
                                                        reduction=own.reduction)
        self.counts = counts
        self.nan_images = 0

    def compute(self) -> Any:
        result = super().compute()
        buffer = self.metric_fn.get_buffer()  # [images, classes, 4]
        self.nan_images = int(nan_image_mask(buffer).sum()) if isinstance(buffer, torch.Tensor) else 0
        if self.nan_images and self._updates_counts():
            logging.getLogger(__name__).warning(
                f"{self._name}: {self.nan_images} of {buffer.shape[0]} images had NaN or infinite predictions; their "
                "confusion counts are NaN and the reported value leaves them out."
            )
        if self.save_details and self._engine is not None and self._name is not None:
            counts = self._engine.state.metric_details[self._name]  # [images, classes, 4]
            self._engine.state.metric_details[self._name] = compute_confusion_matrix_metric(
                self.metric_fn.metric_name[0], counts
            )
        return result
