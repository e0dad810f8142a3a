"""Dice terms of the classes present in each image only: the DBCE paper's Dice for Synapse.

Hosseini and Soleymani Baghshah (DBCE paper, Sec. 3.2): "In Synapse dataset, only the dice loss of the classes that
are present in each sample are considered." An axial slice shows a few of the eight organs; MONAI's ``DiceLoss``
(``batch=False``) gives every absent class a term near 1 that only pushes its probability down, which the cross
entropy does already. :class:`PresentClassDiceLoss` averages the per-image, per-class Dice terms over the pairs
whose class has at least one pixel in that image's target; :class:`PresentClassDiceCELoss` is MONAI's ``DiceCELoss``
with that Dice part (the cross entropy is unchanged, over all classes and pixels).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from monai.losses import DiceCELoss, DiceLoss
from monai.networks import one_hot
from monai.utils import LossReduction

from monai_imbalance.losses.base import SegmentationLoss
from monai_imbalance.losses.utils import arguments_for, check_target

__all__ = ["PresentClassDiceLoss", "PresentClassDiceCELoss"]


class PresentClassDiceLoss(SegmentationLoss):
    """MONAI's ``DiceLoss`` averaged over the (image, class) pairs whose class is present in the image's target.

    ``L = sum_{b,c} present[b,c] * dice_loss[b,c] / max(1, sum_{b,c} present[b,c])`` with ``dice_loss[b, c]`` the
    per-image, per-class term of ``monai.losses.DiceLoss(batch=False)`` and ``present[b, c] = 1`` when class ``c``
    has a pixel in image ``b`` of the target.

    Reading: "sample" is one training image (a 2-D slice); a batch with no present class (only background, with
    ``include_background=False``) has a Dice part of 0 with no gradient.

    The arguments are ``monai.losses.DiceLoss``'s (the input ones as
    :class:`~monai_imbalance.losses.base.SegmentationLoss`), without ``batch``: the terms are per image by
    definition.

    Args:
        reduction: ``"mean"`` (over the present pairs), ``"sum"`` (over the present pairs) or ``"none"``
            (``[B, C]`` per image and class, 0 for absent classes).

    Raises:
        ValueError: class indices (``to_onehot_y``) that are not whole numbers or out of range, a target whose
            shape does not match the input's (both named; :func:`~monai_imbalance.losses.utils.check_target`).

    Example:
        >>> import torch
        >>> loss = PresentClassDiceLoss(to_onehot_y=True, include_background=False, smooth_nr=0, smooth_dr=0)
        >>> target = torch.tensor([[[[1, 1, 0, 0]]]])  # class 1 present, class 2 absent
        >>> probs = torch.tensor([[[[0.0, 0.0, 1.0, 1.0]], [[1.0, 0.5, 0.0, 0.0]], [[0.0, 0.5, 0.0, 0.0]]]])
        >>> round(loss(probs, target).item(), 6)  # class 1 only: 1 - 2 * 1.5 / (1.5 + 2); DiceLoss adds class 2's 1
        0.142857

    Reference:
        S. M. Hosseini and M. Soleymani Baghshah, "Dilated Balanced Cross Entropy Loss for Medical Image
        Segmentation" (preprint), Sec. 3.2 (the Synapse experiments).
    """

    def __init__(
        self, include_background: bool = True, to_onehot_y: bool = False, sigmoid: bool = False, softmax: bool = False,
        other_act: Callable | None = None, squared_pred: bool = False, jaccard: bool = False,
        reduction: LossReduction | str = LossReduction.MEAN, smooth_nr: float = 1e-5, smooth_dr: float = 1e-5,
        weight: Sequence[float] | float | int | torch.Tensor | None = None,
    ) -> None:
        super().__init__(**arguments_for(super().__init__, locals()))
        self.dice = DiceLoss(**arguments_for(DiceLoss, locals(), reduction=LossReduction.NONE, batch=False))

    def present(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``[B, C]`` (channels as the Dice terms): 1 where the class has a pixel in the image's target."""
        n_pred_ch = input.shape[1]
        if self.to_onehot_y and n_pred_ch > 1:
            target = one_hot(target, num_classes=n_pred_ch)
        if not self.include_background and n_pred_ch > 1:
            target = target[:, 1:]
        return (target.flatten(2) > 0).any(-1).to(input.dtype)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input: logits ``(B, C, H, W[, D])`` (or probabilities, as the activation arguments say).
            target: ``(B, 1, ...)`` class indices (``to_onehot_y``) or ``(B, C, ...)`` one-hot.
        """
        check_target(input, target, self.to_onehot_y, getattr(self.dice, "ignore_index", None))
        terms = self.dice(input, target).reshape(input.shape[0], -1)
        present = self.present(input, target)
        kept = torch.where(present > 0, terms, torch.zeros_like(terms))  # absent terms may be 0/0 without smoothing
        if self.reduction == LossReduction.MEAN.value:
            return kept.sum() / present.sum().clamp_min(1.0)
        return self.apply_reduction(kept)


class PresentClassDiceCELoss(DiceCELoss):
    """MONAI's ``DiceCELoss`` whose Dice part is :class:`PresentClassDiceLoss` (the DBCE paper's Dice + CE on
    Synapse; the cross entropy is unchanged, over all classes and pixels).

    The arguments are ``monai.losses.DiceCELoss``'s; ``batch=True`` is not supported (the Dice terms are per image by
    definition).

    Raises:
        ValueError: ``batch=True``; class indices that are not whole numbers or out of range, a target whose shape
            does not match the input's (both named; :func:`~monai_imbalance.losses.utils.check_target`, run once
            per forward by the Dice part, before the cross entropy reads the target); ``monai.losses.DiceCELoss``'s
            errors.
    """


    def __init__(
        self, include_background: bool = True, to_onehot_y: bool = False, sigmoid: bool = False, softmax: bool = False,
        other_act: Callable | None = None, squared_pred: bool = False, jaccard: bool = False,
        reduction: str = "mean", smooth_nr: float = 1e-5, smooth_dr: float = 1e-5, batch: bool = False,
        weight: torch.Tensor | None = None, lambda_dice: float = 1.0, lambda_ce: float = 1.0,
        label_smoothing: float = 0.0,
    ) -> None:
        if batch:
            raise ValueError("PresentClassDiceCELoss counts Dice terms per image: batch=True is not supported.")
        super().__init__(**arguments_for(super().__init__, locals()))
        # MONAI's DiceLoss part has its weight already without the background where dropped: the new part keeps it
        self.dice = PresentClassDiceLoss(**arguments_for(PresentClassDiceLoss, locals(), weight=self.dice.class_weight))
