"""Precision, recall, accuracy, ... per image, savable by ``MetricsSaver`` like MONAI's ``MeanDice`` details.

MONAI's ``ConfusionMatrix`` handler stores each image's raw ``[TP, FP, TN, FN]`` counts as its details, which
``MetricsSaver`` cannot write as per-image metric values (its summary fails on the extra axis).
:class:`PerImageConfusionMatrix` stores the metric itself per image and class (``[images, classes]``), so an
evaluation writes ``val_precision_raw.csv`` like ``val_mean_dice_raw.csv``. The aggregated value is MONAI's.
"""

from __future__ import annotations

from typing import Any

from monai.handlers import ConfusionMatrix
from monai.metrics import compute_confusion_matrix_metric

__all__ = ["PerImageConfusionMatrix"]


class PerImageConfusionMatrix(ConfusionMatrix):
    """``monai.handlers.ConfusionMatrix`` whose saved details are the metric per image and class.

    Args: as ``monai.handlers.ConfusionMatrix`` (``compute_sample=True`` averages the per-image values, the
    default here; False pools the counts of the whole set).
    """

    def __init__(self, *args: Any, compute_sample: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, compute_sample=compute_sample, **kwargs)

    def compute(self) -> Any:
        result = super().compute()
        if self.save_details and self._engine is not None and self._name is not None:
            counts = self._engine.state.metric_details[self._name]  # [images, classes, 4]
            self._engine.state.metric_details[self._name] = compute_confusion_matrix_metric(
                self.metric_fn.metric_name[0], counts
            )
        return result
