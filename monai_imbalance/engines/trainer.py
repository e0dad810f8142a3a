"""A ``SupervisedTrainer`` that passes batch keys (weight maps, distance maps) to its loss.

MONAI's ``SupervisedTrainer`` calls ``loss_function(pred, label)``; its ``prepare_batch`` can give extra batch keys
to the *network* only. The DBCE, Bressan and boundary losses read per-pixel maps computed by the data pipeline.
:class:`SupervisedTrainerWithLossInputs` takes them from each batch in its own iteration and calls
``loss_function(pred, label, **{argument: batch[key]})``: one object does the whole wiring, so a config cannot
attach a loss wrapper and forget its handler (the previous design, :class:`~monai_imbalance.engines.LossWithBatchKeys`,
needed both).

Bundle config::

    trainer:
      _target_: monai_imbalance.engines.SupervisedTrainerWithLossInputs
      loss_function: "@setup.loss_function"
      loss_inputs: "@setup.loss_inputs"       # e.g. {"weight_map": "label_weight"}
      ...                                     # every other SupervisedTrainer argument
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import torch
from monai.engines import SupervisedTrainer

__all__ = ["SupervisedTrainerWithLossInputs", "batch_loss_inputs"]


def batch_loss_inputs(
    batch: Mapping[Any, Any], loss_inputs: Mapping[str, str], device: torch.device | str | None = None,
    non_blocking: bool = False,
) -> dict[str, Any]:
    """``{argument: batch[key]}`` for ``loss_inputs = {argument: key}``, tensors as plain tensors on ``device``.

    Raises:
        TypeError: the batch is not a dictionary.
        KeyError: a key is missing (the message names it and lists the batch's keys, and says which transform
            should have written it).
    """
    if not loss_inputs:
        return {}
    if not isinstance(batch, Mapping):
        raise TypeError(f"the loss reads batch keys {sorted(loss_inputs.values())}, so batches must be dictionaries, "
                        f"got {type(batch).__name__}.")
    out = {}
    for argument, key in loss_inputs.items():
        if key not in batch:
            raise KeyError(
                f"the loss reads {argument}= from batch key {key!r}, which the batch lacks (keys: "
                f"{sorted(map(str, batch))}); put the setup's map_transforms in the training transforms."
            )
        value = batch[key]
        if isinstance(value, torch.Tensor):
            value = value.as_tensor() if hasattr(value, "as_tensor") else value
            value = value.to(device=device, non_blocking=non_blocking)
        out[str(argument)] = value
    return out


def _read_batch_loss(handler: Any) -> None:
    """MONAI's experiment-tracking handlers (``--tracking mlflow`` adds an ``MLFlowHandler`` reading
    ``from_engine(['loss'], first=True)``) expect decollated output; on one batch dict that gives a 1-tuple, which
    MLflow cannot log. They read :func:`~monai_imbalance.handlers.utils.trainer_loss` instead."""
    from monai.handlers import MLFlowHandler

    from monai_imbalance.handlers.utils import trainer_loss

    if isinstance(handler, MLFlowHandler) and handler.iteration_log:
        handler.output_transform = trainer_loss


class SupervisedTrainerWithLossInputs(SupervisedTrainer):
    """``monai.engines.SupervisedTrainer`` whose loss also receives batch keys as keyword arguments.

    Args:
        loss_inputs: ``{forward argument: batch key}`` (``SegmentationSetup.loss_inputs``); empty or None: exactly
            ``SupervisedTrainer``.
        args, kwargs: every argument of ``SupervisedTrainer``. With ``decollate=False`` (the bundles: no per-item
            split of every batch, no host sync for the loss), an ``MLFlowHandler`` among ``train_handlers`` reads
            the loss of the batch dict (:func:`~monai_imbalance.handlers.utils.trainer_loss`), as it would from
            decollated output.

    Each iteration reads the keys from the batch (moved to the trainer's device) and runs MONAI's own iteration with
    the loss bound to them, so AMP, gradient accumulation settings, ``optim_set_to_none`` and the iteration events
    behave as in ``SupervisedTrainer``.

    Example:
        >>> trainer = SupervisedTrainerWithLossInputs(  # doctest: +SKIP
        ...     device=device, max_epochs=2, train_data_loader=loader, network=net, optimizer=opt,
        ...     loss_function=DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=20),
        ...     loss_inputs={"weight_map": "label_weight"})
    """

    def __init__(self, *args: Any, loss_inputs: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        if not kwargs.get("decollate", True):
            for handler in kwargs.get("train_handlers") or []:
                _read_batch_loss(handler)
        super().__init__(*args, **kwargs)
        self.loss_inputs = {str(k): str(v) for k, v in dict(loss_inputs or {}).items()}

    def _iteration(self, engine: SupervisedTrainer, batchdata: dict[str, Any]) -> dict:  # type: ignore[override]
        if not self.loss_inputs:
            return super()._iteration(engine, batchdata)
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        extra = batch_loss_inputs(batchdata, self.loss_inputs, engine.state.device, engine.non_blocking)
        loss_function = engine.loss_function
        engine.loss_function = partial(loss_function, **extra)
        try:
            return super()._iteration(engine, batchdata)
        finally:
            engine.loss_function = loss_function
