"""Ignite handler raising the boundary-loss weight every epoch (Kervadec et al.'s schedule)."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["BoundaryWeightScheduler"]


def _find_weighted_loss(loss: Any) -> Any:
    """The object holding ``boundary_weight``: ``loss`` itself or a wrapped ``.loss`` (``LossWithBatchKeys``)."""
    seen = loss
    while seen is not None and not hasattr(seen, "boundary_weight"):
        seen = getattr(seen, "loss", None)
    if seen is None:
        raise TypeError(
            f"{type(loss).__name__} has no 'boundary_weight' (nor a wrapped .loss with one): pass a "
            "monai_imbalance.losses.RegionBoundaryLoss."
        )
    return seen


class BoundaryWeightScheduler:
    """Set the boundary weight ``w`` of a :class:`monai_imbalance.losses.RegionBoundaryLoss` at the start of each
    epoch: ``w = initial_weight + step * (epoch - 1)``, capped at ``max_weight``.

    Kervadec et al. (MIDL 2019) start at 0.01 and add 0.01 per epoch, so that the region loss leads while the
    prediction is still far from the objects and the boundary loss takes over as it gets close. The weight is a
    function of ``engine.state.epoch``, so a run resumed from a checkpoint continues the schedule.

    Args:
        loss: the ``RegionBoundaryLoss`` (or a wrapper of it with a ``.loss`` attribute, such as
            :class:`monai_imbalance.engines.LossWithBatchKeys`).
        initial_weight: ``w`` of the first epoch, ``>= 0``.
        step: added each epoch, ``>= 0``.
        max_weight: cap; None: no cap, except 1 when the loss uses ``rebalance=True``.

    Raises:
        TypeError: ``loss`` has no ``boundary_weight``.
        ValueError: a negative weight or step, or ``max_weight < initial_weight``.

    Example (bundle config)::

        handlers:
        - _target_: monai_imbalance.handlers.BoundaryWeightScheduler
          loss: "@loss_fn"        # the RegionBoundaryLoss
          initial_weight: 0.01
          step: 0.01
    """

    def __init__(
        self, loss: Any, initial_weight: float = 0.01, step: float = 0.01, max_weight: float | None = None
    ) -> None:
        self.target = _find_weighted_loss(loss)
        if not initial_weight >= 0 or not step >= 0:
            raise ValueError(f"initial_weight and step must be >= 0, got {initial_weight} and {step}.")
        if max_weight is None and getattr(self.target, "rebalance", False):
            max_weight = 1.0
        if max_weight is not None and max_weight < initial_weight:
            raise ValueError(f"max_weight ({max_weight}) must be >= initial_weight ({initial_weight}).")
        self.initial_weight = float(initial_weight)
        self.step = float(step)
        self.max_weight = None if max_weight is None else float(max_weight)
        self.logger = logging.getLogger(__name__)

    def weight_at(self, epoch: int) -> float:
        """The boundary weight of ``epoch`` (1-based)."""
        weight = self.initial_weight + self.step * (max(int(epoch), 1) - 1)
        return weight if self.max_weight is None else min(weight, self.max_weight)

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Any) -> None:
        weight = self.weight_at(engine.state.epoch)
        self.target.boundary_weight = weight
        self.logger.debug("epoch %d: boundary weight %.4g", engine.state.epoch, weight)
