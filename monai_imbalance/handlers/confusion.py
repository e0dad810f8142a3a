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

from typing import Any

from ignite.metrics.metric import reinit__is_reduced
from monai.handlers import ConfusionMatrix
from monai.metrics import compute_confusion_matrix_metric

from monai_imbalance.metrics.confusion import ConfusionCountsMetric

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
            handlers of the engine (see the module docstring); None: this handler counts for itself.

    Raises:
        ValueError: ``include_background`` differs from that of ``counts``.
    """

    def __init__(self, *args: Any, compute_sample: bool = True, counts: ConfusionCountsMetric | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, compute_sample=compute_sample, **kwargs)
        if counts is not None:
            own = self.metric_fn
            if own.include_background != counts.include_background:
                raise ValueError(f"include_background={own.include_background} differs from that of the shared "
                                 f"counts ({counts.include_background}).")
            self.metric_fn = counts.confusion_matrix_metric(own.metric_name[0], compute_sample=own.compute_sample,
                                                            reduction=own.reduction)
            self.counts = counts

    def compute(self) -> Any:
        result = super().compute()
        if self.save_details and self._engine is not None and self._name is not None:
            counts = self._engine.state.metric_details[self._name]  # [images, classes, 4]
            self._engine.state.metric_details[self._name] = compute_confusion_matrix_metric(
                self.metric_fn.metric_name[0], counts
            )
        return result
