"""What the evaluation handlers that name their cases share: the process rank and world size, the items of a batch,
the cases a padded distributed sampler repeated, and :class:`PerCaseMetricHandler`, which feeds its metric one case
at a time and records each case's name."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from ignite.metrics.metric import reinit__is_reduced
from monai.handlers import IgniteMetricHandler

from monai_imbalance.metrics.volumetric import source_id

__all__ = [
    "process_rank",
    "world_size",
    "first_occurrences",
    "batch_item",
    "PerCaseMetricHandler",
    "HandlerGroup",
    "quiet_other_ranks",
    "trainer_loss",
]


def process_rank() -> int:
    """This process's rank under ``torch.distributed`` (0 without it)."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """The number of processes (ignite's view: 1 without a process group)."""
    import ignite.distributed as idist

    return idist.get_world_size()


def trainer_loss(output: Any) -> Any:
    """The loss of a trainer's output: ``output["loss"]`` of one batch dict (``decollate=False``) or of the first
    item of a decollated list of dicts; any other output (a bare loss) as it is."""
    if isinstance(output, list) and output and isinstance(output[0], dict):
        output = output[0]
    return output["loss"] if isinstance(output, dict) else output


def first_occurrences(ids: Sequence[str]) -> list[int]:
    """Indices of the first occurrence of each id (the cases a padded distributed sampler repeated, dropped)."""
    seen: set[str] = set()
    keep = []
    for i, case in enumerate(ids):
        if case not in seen:
            seen.add(case)
            keep.append(i)
    return keep


def batch_item(batch: Any, index: int, keys: Sequence[str | None]) -> dict[str, Any]:
    """The values of ``keys`` for item ``index`` of an engine's batch: a list of dictionaries (decollated) or one
    collated dictionary (list values indexed, others taken as they are); ``{}`` when the batch is neither."""
    if isinstance(batch, (list, tuple)) and index < len(batch) and isinstance(batch[index], dict):
        return batch[index]
    if isinstance(batch, dict):
        item = {}
        for key in keys:
            if key is not None and key in batch:
                value = batch[key]
                item[key] = value[index] if isinstance(value, (list, tuple)) else value
        return item
    return {}


class PerCaseMetricHandler(IgniteMetricHandler):
    """An ``IgniteMetricHandler`` that calls its metric once per case (``metric_fn(pred[None], label[None],
    **case_kwargs)``) and keeps one JSON record per case in ``self._records`` (gathered with
    ``monai.utils.string_list_all_gather`` in ``compute``): ``{"id": ...}`` plus :meth:`_case_fields`. The id is the
    batch's ``id_key``, else the label's file name, else ``rank<r>_<position>`` (unique per rank).

    Subclasses set ``self.id_key`` and override :meth:`_case_kwargs` / :meth:`_case_fields` and ``compute``.
    """

    id_key: str = "id"
    record_keys: tuple[str | None, ...] = ()

    def _case_kwargs(self, label: Any) -> dict[str, Any]:
        """Extra keyword arguments of the metric call for one case."""
        return {}

    def _case_fields(self, item: dict[str, Any], label: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Extra fields of one case's record (``item``: its values of ``id_key`` and ``record_keys``)."""
        return {}

    @reinit__is_reduced
    def reset(self) -> None:  # also run by ignite's Metric.__init__: the records exist from construction on
        super().reset()
        self._records: list[str] = []
        self._batch: Any = None

    def iteration_completed(self, engine: Any) -> None:
        self._batch = engine.state.batch
        super().iteration_completed(engine)

    @reinit__is_reduced
    def update(self, output: Sequence[Any]) -> None:
        if len(output) != 2:
            raise ValueError(f"output must have length 2 (pred, label), got {len(output)}.")
        y_pred, y = output
        preds = list(y_pred) if not isinstance(y_pred, (list, tuple)) else y_pred
        labels = list(y) if not isinstance(y, (list, tuple)) else y
        for i, (pred, label) in enumerate(zip(preds, labels)):
            kwargs = self._case_kwargs(label)
            self.metric_fn(pred[None], label[None], **kwargs)
            item = batch_item(self._batch, i, (self.id_key, *self.record_keys))
            fallback = source_id(label, -1)
            if fallback == "-1":  # no id and no file name: unique per rank and position
                fallback = f"rank{process_rank()}_{len(self._records)}"
            record = {"id": str(item.get(self.id_key) or fallback), **self._case_fields(item, label, kwargs)}
            self._records.append(json.dumps(record))


class HandlerGroup:
    """Several handlers as one item of a bundle's handler list: ``attach(engine)`` attaches each in order.

    MONAI's experiment tracking (``--tracking mlflow``) and ``ConfigWorkflow.check_properties`` need ``train#handlers``
    to be a list of handler definitions; a setup's own handlers (a number that depends on the loss) go in as one
    ``HandlerGroup`` item of that list.

    Args:
        handlers: objects with an ``attach(engine)`` method.
    """

    def __init__(self, handlers: Sequence[Any] = ()) -> None:
        handlers = list(handlers)
        for h in handlers:
            if not callable(getattr(h, "attach", None)):
                raise TypeError(f"every handler needs an attach(engine) method, got {type(h).__name__}.")
        self.handlers = handlers

    def attach(self, engine: Any) -> None:
        for h in self.handlers:
            h.attach(engine)


class _BelowLevelDropped(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level


def quiet_other_ranks(level: int | str = "WARNING") -> bool:
    """On a process of rank > 0, drop log records below ``level`` at the root logger's handlers (ignite's engine
    info lines, MONAI's and this package's progress lines); rank 0 logs as before. Called once by the bundles'
    multi-GPU configs after the process group is set up. Returns True when this process was quietened.
    """
    if process_rank() == 0:
        return False
    numeric = logging.getLevelName(level) if isinstance(level, str) else int(level)
    if not isinstance(numeric, int):
        raise ValueError(f"level must be a logging level name or number, got {level!r}.")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _BelowLevelDropped) for f in handler.filters):
            handler.addFilter(_BelowLevelDropped(numeric))
    return True
