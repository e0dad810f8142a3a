"""Per-case, per-class Dice, HD95 and OII of volumes in a MONAI evaluator, summarised as TransUNet reports them.

:class:`VolumetricMetrics` wraps :class:`monai_imbalance.metrics.volumetric.VolumetricSegmentationMetric` as an
``IgniteMetricHandler`` so that a bundle's evaluator (volumes predicted by
:class:`~monai_imbalance.inferers.SliceBySliceInferer`) can use it as its key metric. Its value is the
mean Dice over classes of the per-class means over cases; at the end of each run it also sets, in
``engine.state.metrics``, the mean HD95 and OII and every per-class (and per-group, e.g. ACDC's ED/ES) value
(:func:`~monai_imbalance.metrics.volumetric.flat_volume_metrics`), so ``StatsHandler`` and
``TensorBoardStatsHandler`` log them, and with ``save_dir`` writes the per-case and summary CSV/JSON files
(:func:`~monai_imbalance.metrics.volumetric.write_volume_report`). Under DDP the cases of every rank are gathered,
and cases repeated by a ``DistributedSampler(even_divisible=True)`` (which pads the ranks with repeated items, so
that no rank is left without a volume: a rank with none would skip the run and leave the others waiting) are
counted once, by their id.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from monai.handlers import from_engine
from monai.utils import string_list_all_gather

from monai_imbalance.metrics.volumetric import (
    VolumetricSegmentationMetric,
    flat_volume_metrics,
    spacing_of,
    summarize_volume_metrics,
    write_volume_report,
)

from .utils import PerCaseMetricHandler, first_occurrences
from .utils import process_rank as _rank
from .utils import world_size as _world_size

__all__ = ["VolumetricMetrics", "first_occurrences"]


class VolumetricMetrics(PerCaseMetricHandler):
    """Volumetric Dice, HD95 and OII per case and class, as an evaluator metric.

    Args:
        num_classes: classes of the label volumes, background included.
        class_names: names of the reported classes (without the background unless ``include_background``).
        include_background, percentile, empty, use_spacing: as
            :class:`~monai_imbalance.metrics.volumetric.VolumetricSegmentationMetric` (``empty="transunet"``:
            TransUNet's rule for empty masks).
        id_key: batch key naming each case (default ``"id"``; else the label's file name).
        group_key: batch key grouping the cases (ACDC: ``"phase"``, giving ED and ES summaries).
        save_dir: where to write ``<file_prefix>_per_case.csv``, ``_summary.csv`` and ``_report.json`` after each
            run (rank 0); None: not written.
        file_prefix: file name prefix.
        metric_prefix: prefix of the extra metric names (default: the attached name up to ``mean_dice``, e.g.
            ``"val_"`` for ``"val_mean_dice"``).
        output_transform: engine output -> ``(pred, label)`` label volumes (lists or batch-first tensors);
            default ``from_engine(["pred", "label"])``.
        save_details: store the per-case Dice ``[cases, classes]`` in ``engine.state.metric_details``.

    Attributes:
        report: the last report (:func:`~monai_imbalance.metrics.volumetric.summarize_volume_metrics`).
    """

    def __init__(
        self,
        num_classes: int,
        class_names: Sequence[str] | None = None,
        include_background: bool = False,
        percentile: float = 95.0,
        empty: str = "transunet",
        use_spacing: bool = True,
        id_key: str = "id",
        group_key: str | None = None,
        save_dir: str | os.PathLike | None = None,
        file_prefix: str = "volumetric",
        metric_prefix: str | None = None,
        output_transform: Callable | None = None,
        save_details: bool = True,
    ) -> None:
        metric_fn = VolumetricSegmentationMetric(num_classes, class_names, include_background=include_background,
                                                 percentile=percentile, empty=empty, use_spacing=use_spacing)
        super().__init__(metric_fn=metric_fn, output_transform=output_transform or from_engine(["pred", "label"]),
                         save_details=save_details)
        self.id_key = id_key
        self.group_key = group_key
        self.save_dir = None if save_dir is None else Path(save_dir)
        self.file_prefix = file_prefix
        self.metric_prefix = metric_prefix
        self.use_spacing = use_spacing
        self.record_keys = (group_key,)
        self.report: dict[str, Any] | None = None
        self.logger = logging.getLogger(__name__)

    def _case_kwargs(self, label: Any) -> dict[str, Any]:
        return {"spacing": [spacing_of(label) if self.use_spacing else None]}

    def _case_fields(self, item: dict[str, Any], label: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        group = item.get(self.group_key) if self.group_key else None
        return {"group": None if group is None else str(group), "spacing": kwargs["spacing"][0]}

    def compute(self) -> Any:
        records = [json.loads(r) for r in string_list_all_gather(self._records)]
        values = self.metric_fn.get_buffer()
        if _world_size() > 1:
            keep = first_occurrences([r["id"] for r in records])
            records, values = [records[i] for i in keep], values[keep]
        self.report = summarize_volume_metrics(values, self.metric_fn.class_names, records=records,
                                               empty=self.metric_fn.empty)
        self._is_reduced = True
        if self.save_details and self._engine is not None and self._name is not None:
            self._engine.state.metric_details[self._name] = values[..., 0]
        return self.report["summary"]["all"]["mean_dice"]

    def completed(self, engine: Any, name: str) -> None:
        super().completed(engine, name)
        if self.report is None:
            return
        prefix = self.metric_prefix
        if prefix is None:
            prefix = name[: -len("mean_dice")] if name.endswith("mean_dice") else f"{name}_"
        for key, value in flat_volume_metrics(self.report, prefix).items():
            if key != name:
                engine.state.metrics[key] = value
        if self.report.get("oii_skipped"):
            self.logger.warning("OII skipped: %s", self.report["oii_skipped"])
        if self.save_dir is not None and _rank() == 0:
            paths = write_volume_report(self.report, self.save_dir, self.file_prefix)
            self.logger.info("volumetric metrics of %d cases written to %s", len(self.report["cases"]),
                             paths["summary"].parent)
