"""Ignite handler logging the Output Imbalance Index (DIBE paper Eqs. 13-15) every validation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from monai.handlers.ignite_metric import IgniteMetricHandler
from monai.utils import MetricReduction

from monai_imbalance.metrics.confusion import ConfusionCountsMetric
from monai_imbalance.metrics.oii import OutputImbalanceIndexMetric, compute_oii

from .confusion import SharedCountsMixin

__all__ = ["OutputImbalanceIndex"]


class OutputImbalanceIndex(SharedCountsMixin, IgniteMetricHandler):
    """Computes the Output Imbalance Index from binarised one-hot ``(y_pred, y)`` over a whole validation run.

    By default the counts of the whole run are accumulated per class (micro, the paper's reading) and the OII is
    averaged over classes: one number per validation, which ``TensorBoardStatsHandler`` and ``StatsHandler`` log as
    they log ``MeanDice`` (the paper's Fig. 7 curves). With ``save_details`` the OII of each image and class
    ``[N, C]`` (from that image's counts) goes to ``engine.state.metric_details[name]``, the form ``MetricsSaver``
    writes per image (``<name>_raw.csv``) like MONAI's Dice.

    Reading: ``FP = FN = 0 -> 0``, ``FP = 0 < FN -> 1``, ``FN = 0 < FP -> -1``, ``TP = 0 -> k = 0``; the paper's
    Table 1 row 2:3:3 prints 0.334 where the formula gives 0.344.

    NaN predictions (:mod:`monai_imbalance.metrics.oii`'s NaN policy): images whose prediction held NaN or inf have
    a NaN OII in the details and are left out of the logged value (NaN when no image is left); each validation with
    such images logs a warning naming their number, also kept as ``self.nan_images``. The NaN must reach the handler:
    ``AsDiscrete`` turns a NaN into 0 (threshold) or a class (argmax) before it.

    Args:
        include_background: whether channel 0 is counted.
        reduction: MONAI metric reduction of the per-class (micro) or per-image OII values; ``"mean"`` gives one
            number, ``"mean_batch"`` one per class.
        per_image: OII per image and class (then reduced) instead of from the counts of the whole run.
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``, as for MONAI's handlers.
        save_details: store the per-image counts in ``engine.state.metric_details``.
        counts: a :class:`~monai_imbalance.metrics.ConfusionCountsMetric` shared with the precision, recall, ...
            handlers of the engine (:class:`~monai_imbalance.handlers.PerImageConfusionMatrix`), so that the
            confusion counts are computed once per iteration for all of them; None: this handler counts for itself.

    Raises:
        ValueError: ``include_background`` differs from that of ``counts``.

    See also:
        :py:class:`monai_imbalance.metrics.OutputImbalanceIndexMetric`
    """

    def __init__(
        self,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        per_image: bool = False,
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
        counts: ConfusionCountsMetric | None = None,
    ) -> None:
        if counts is None:
            metric_fn = OutputImbalanceIndexMetric(
                include_background=include_background, reduction=reduction, per_image=per_image
            )
        elif include_background != counts.include_background:
            raise ValueError(f"include_background={include_background} differs from that of the shared counts "
                             f"({counts.include_background}).")
        else:
            metric_fn = counts.oii_metric(reduction=reduction, per_image=per_image)
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)
        self.counts = counts
        self.nan_images = 0

    def compute(self) -> Any:
        result = super().compute()
        self.nan_images = self.metric_fn.nan_images
        if self.nan_images:
            total = self.metric_fn.get_buffer().shape[0]
            logging.getLogger(__name__).warning(
                f"{self._name}: {self.nan_images} of {total} images had NaN or infinite predictions; their OII is NaN "
                "and the reported OII leaves them out."
            )
        if self.save_details:
            details = self._engine.state.metric_details  # the metric's buffer: per-image TP, FP, FN
            counts = details[self._name]
            details[self._name] = compute_oii(counts[..., 0], counts[..., 1], counts[..., 2])
        return result
