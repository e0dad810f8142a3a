"""MONAI's Dice losses with the package's target checks: what the bundles' ``dice``, ``dice_ce`` and ``boundary``
(its region part) setups are built from.

``monai.losses.DiceLoss`` and ``DiceCELoss`` read a class-index target with ``one_hot`` (torch's scatter) and
``.long()``: a label out of range ends in torch's "index 2 is out of bounds for dimension 1 with size 2", a float
label such as 0.5 is read as class 0, and mismatched shapes raise an ``AssertionError``. The classes here are
MONAI's, unchanged, with the checks every loss of the package runs first
(:func:`~monai_imbalance.losses.utils.check_target`): class indices (``to_onehot_y`` with more than one channel)
must be whole numbers in ``[0, C)`` (or MONAI's ``ignore_index``), and a target whose batch, channels or spatial
size differ from the input's raises a ``ValueError`` naming both shapes. One-hot and soft targets (MONAI's
``soft_label``) are passed on as they are.
"""

from __future__ import annotations

from typing import Any

import torch
from monai.losses import DiceCELoss, DiceLoss, GeneralizedDiceLoss

from monai_imbalance.losses.utils import check_target

__all__ = ["TargetCheckMixin", "CheckedDiceLoss", "CheckedDiceCELoss", "CheckedGeneralizedDiceLoss"]


class TargetCheckMixin:
    """``forward(input, target, ...)`` runs :func:`~monai_imbalance.losses.utils.check_target` (one device
    synchronisation for a class-index target), then the MONAI loss's own ``forward``."""

    def _target_check_args(self) -> tuple[bool, int | None]:
        """``(to_onehot_y, ignore_index)`` of the loss (of its Dice part for ``DiceCELoss``)."""
        owner = self if hasattr(self, "to_onehot_y") else getattr(self, "dice", self)
        return bool(getattr(owner, "to_onehot_y", False)), getattr(owner, "ignore_index", None)

    def forward(self, input: torch.Tensor, target: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        to_onehot_y, ignore_index = self._target_check_args()
        check_target(input, target, to_onehot_y, ignore_index)
        return super().forward(input, target, *args, **kwargs)  # type: ignore[misc,no-any-return]


class CheckedDiceLoss(TargetCheckMixin, DiceLoss):
    """``monai.losses.DiceLoss`` (same arguments, same values) with the package's target checks.

    Raises:
        ValueError: class indices that are not whole numbers, out of ``[0, C)`` (other than ``ignore_index``), or
            a target whose shape does not match the input's (both named); ``monai.losses.DiceLoss``'s errors.
    """


class CheckedDiceCELoss(TargetCheckMixin, DiceCELoss):
    """``monai.losses.DiceCELoss`` (same arguments, same values) with the package's target checks.

    Raises:
        ValueError: as :class:`CheckedDiceLoss`; ``monai.losses.DiceCELoss``'s errors.
    """


class CheckedGeneralizedDiceLoss(TargetCheckMixin, GeneralizedDiceLoss):
    """``monai.losses.GeneralizedDiceLoss`` (same arguments, same values) with the package's target checks.

    Raises:
        ValueError: as :class:`CheckedDiceLoss`; ``monai.losses.GeneralizedDiceLoss``'s errors.
    """
