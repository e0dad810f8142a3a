"""Per-object detection metrics in a MONAI evaluator: object F1, precision, recall, instance Dice, small-object
recall and the object-level OII per class, and a per-object table.

:class:`ObjectMetricHandler` wraps :class:`monai_imbalance.metrics.ObjectMetric` as an ``IgniteMetricHandler``. Its
value (the name it is attached under, e.g. ``val_object_f1``) is ``metric_name`` averaged over classes; at the end of
each run it also sets, in ``engine.state.metrics``, the other means over classes (``<prefix>object_precision``,
``object_recall``, ``instance_dice``, ``small_object_recall``, ``object_oii``, ``fp_objects``) and, with more than one
class, each per class (``<prefix>object_f1_<class name>``, ...), so ``StatsHandler``, ``TensorBoardStatsHandler`` and
``MetricsSaver`` (the ``metrics.csv`` of the 2-D bundles) record them. With ``save_dir`` it writes, on rank 0,
``<file_prefix>_table.csv`` (one row per true or predicted object: case, class, kind, object id, size, matched,
matched id, IoU, Dice, size bin), ``<file_prefix>_summary.csv`` (one row per class) and ``<file_prefix>_summary.json``
(:func:`~monai_imbalance.metrics.write_object_report`), beside MONAI's ``MetricsSaver`` outputs.

Cases are named by the batch's ``id_key`` or the label's file name. Under DDP the rows of every rank are gathered and a
case repeated by ``DistributedSampler(even_divisible=True)`` is counted once, by its name.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.handlers import from_engine
from monai.utils import string_list_all_gather

from monai_imbalance.metrics.objects import (
    CASE_FIELDS,
    OBJECT_FIELDS,
    ObjectMetric,
    flat_object_metrics,
    reduce_over_classes,
    write_object_report,
)

from .utils import PerCaseMetricHandler, first_occurrences, process_rank, world_size

__all__ = ["ObjectMetricHandler"]


class ObjectMetricHandler(PerCaseMetricHandler):
    """Per-object detection metrics (:class:`~monai_imbalance.metrics.ObjectMetric`) as an evaluator metric.

    Args:
        include_background, num_classes, connectivity, match, iou_threshold, assignment, size_bins, use_spacing:
            as :class:`~monai_imbalance.metrics.ObjectMetric` (``num_classes`` for single-channel class-index maps
            with more than two classes, e.g. the label volumes of the 3-D bundles).
        metric_name: the handler's value, averaged over classes (``"f1"`` default).
        class_names: names of the reported classes, in class order (without the background unless
            ``include_background``), or ``{class index: name}``; default ``class_<i>``.
        id_key: batch key naming each case (default ``"id"``; else the label's file name).
        save_dir: where to write the table and summaries after each run (rank 0); None: not written.
        file_prefix: their file name prefix.
        metric_prefix: prefix of the extra metric names (default: the attached name up to ``object_<metric_name>``,
            e.g. ``"val_"`` for ``"val_object_f1"``).
        output_transform: engine output -> ``(pred, label)``; default ``from_engine(["pred", "label"])``.

    Attributes:
        summary: the last per-class summary (:func:`~monai_imbalance.metrics.summarize_object_rows`).
        metrics: the last flat metrics (:func:`~monai_imbalance.metrics.flat_object_metrics`).
    """

    def __init__(
        self,
        include_background: bool = False,
        num_classes: int | None = None,
        connectivity: int | None = None,
        match: str = "iou",
        iou_threshold: float = 0.5,
        assignment: str = "greedy",
        size_bins: Sequence[float] | Mapping[Any, Sequence[float]] | None = None,
        use_spacing: bool = False,
        metric_name: str = "f1",
        class_names: Sequence[str] | Mapping[int, str] | None = None,
        id_key: str = "id",
        save_dir: str | os.PathLike | None = None,
        file_prefix: str = "objects",
        metric_prefix: str | None = None,
        output_transform: Callable | None = None,
    ) -> None:
        metric_fn = ObjectMetric(include_background=include_background, num_classes=num_classes,
                                 connectivity=connectivity, match=match, iou_threshold=iou_threshold,
                                 assignment=assignment, size_bins=size_bins, use_spacing=use_spacing,
                                 metric_name=metric_name)
        super().__init__(metric_fn=metric_fn, output_transform=output_transform or from_engine(["pred", "label"]),
                         save_details=False)
        self.include_background = include_background
        self.class_names = class_names
        self.id_key = id_key
        self.save_dir = None if save_dir is None else Path(save_dir)
        self.file_prefix = file_prefix
        self.metric_prefix = metric_prefix
        self.summary: dict[int, dict[str, Any]] | None = None
        self.metrics: dict[str, float] = {}
        self._case_ids: list[str] = []
        self._objects: torch.Tensor | None = None
        self.logger = logging.getLogger(__name__)

    def _names(self, classes: Sequence[int]) -> dict[int, str]:
        if isinstance(self.class_names, Mapping):
            return {int(k): str(v) for k, v in self.class_names.items()}
        if self.class_names is not None:
            first = 0 if self.include_background else 1
            return {first + i: str(n) for i, n in enumerate(self.class_names)}
        return {c: f"class_{c}" for c in classes}

    def _case_fields(self, item: dict[str, Any], label: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {"rank": process_rank(), "case": len(self._records)}

    def compute(self) -> Any:
        records = [json.loads(r) for r in string_list_all_gather(self._records)]
        objects, cases = self.metric_fn.rows()
        keep = first_occurrences([r["id"] for r in records]) if world_size() > 1 else list(range(len(records)))
        position = {(records[i]["rank"], records[i]["case"]): n for n, i in enumerate(keep)}

        def renumber(rows: torch.Tensor, fields: Sequence[str]) -> torch.Tensor:
            r, c = fields.index("rank"), fields.index("case")
            where = [position.get((int(a), int(b)), -1) for a, b in zip(rows[:, r].tolist(), rows[:, c].tolist())]
            index = torch.tensor(where, dtype=torch.float64)
            rows = rows.clone()
            rows[:, c] = index
            return rows[index >= 0]

        objects, cases = renumber(objects, OBJECT_FIELDS), renumber(cases, CASE_FIELDS)
        self._case_ids = [records[i]["id"] for i in keep]
        self._objects = objects
        self.summary = self.metric_fn.summary(objects, cases)
        self._is_reduced = True
        values = {c: float(v[self.metric_fn.metric_name]) for c, v in self.summary.items()}
        return reduce_over_classes(values, "mean").item()

    def completed(self, engine: Any, name: str) -> None:
        super().completed(engine, name)
        if self.summary is None:
            return
        prefix = self.metric_prefix
        tail = f"object_{self.metric_fn.metric_name}"
        if prefix is None:
            prefix = name[: -len(tail)] if name.endswith(tail) else f"{name}_"
        names = self._names(list(self.summary))
        self.metrics = flat_object_metrics(self.summary, prefix, names)
        for key, value in self.metrics.items():
            if key != name:
                engine.state.metrics[key] = value
        nan_cases = max((v["nan_cases"] for v in self.summary.values()), default=0)
        if nan_cases:
            self.logger.warning("object metrics: %d case(s) whose prediction held NaN or inf were left out", nan_cases)
        if self.save_dir is not None and process_rank() == 0:
            paths = write_object_report(self._objects, self.summary, self.save_dir, self._case_ids, names,
                                        self.file_prefix, self.metrics)
            self.logger.info("object metrics of %d cases written to %s", len(self._case_ids), paths["table"].parent)
