"""Dice terms of the classes present in each image only: the DBCE paper's Dice for Synapse.

Hosseini and Soleymani Baghshah (DBCE paper, Sec. 3.2): "In Synapse dataset, only the dice loss of the classes that
are present in each sample are considered." An axial slice shows a few of the eight organs; MONAI's ``DiceLoss``
(``batch=False``) gives every absent class a term near 1 that only pushes its probability down, which the cross
entropy does already. :class:`PresentClassDiceLoss` averages the per-image, per-class Dice terms over the pairs
whose class has at least one pixel in that image's target; :class:`PresentClassDiceCELoss` is MONAI's ``DiceCELoss``
with that Dice part (the cross entropy is unchanged, over all classes and pixels).

Reading: "sample" is one training image (a 2-D slice); a batch with no present class (only background, with
``include_background=False``) has a Dice part of 0 with no gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from monai.losses import DiceCELoss, DiceLoss
from monai.networks import one_hot
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

__all__ = ["PresentClassDiceLoss", "PresentClassDiceCELoss"]


class PresentClassDiceLoss(_Loss):
    """MONAI's ``DiceLoss`` averaged over the (image, class) pairs whose class is present in the image's target.

    ``L = sum_{b,c} present[b,c] * dice_loss[b,c] / max(1, sum_{b,c} present[b,c])`` with ``dice_loss[b, c]`` the
    per-image, per-class term of ``monai.losses.DiceLoss(batch=False)`` and ``present[b, c] = 1`` when class ``c``
    has a pixel in image ``b`` of the target.

    Args:
        include_background, to_onehot_y, sigmoid, softmax, other_act, squared_pred, jaccard, smooth_nr, smooth_dr,
            weight: as ``monai.losses.DiceLoss``.
        reduction: ``"mean"`` (over the present pairs), ``"sum"`` (over the present pairs) or ``"none"``
            (``[B, C]`` per image and class, 0 for absent classes).

    Example:
        >>> import torch
        >>> loss = PresentClassDiceLoss(softmax=True, to_onehot_y=True, include_background=False)
        >>> target = torch.zeros(2, 1, 8, 8); target[0, 0, :4] = 1; target[1, 0, 4:] = 2
        >>> value = loss(torch.randn(2, 3, 8, 8), target)   # one term per image (class 1, then class 2)
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        squared_pred: bool = False,
        jaccard: bool = False,
        reduction: LossReduction | str = LossReduction.MEAN,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        weight: Sequence[float] | float | int | torch.Tensor | None = None,
    ) -> None:
        super().__init__(reduction=LossReduction(reduction).value)
        self.dice = DiceLoss(
            include_background=include_background, to_onehot_y=to_onehot_y, sigmoid=sigmoid, softmax=softmax,
            other_act=other_act, squared_pred=squared_pred, jaccard=jaccard, reduction=LossReduction.NONE,
            smooth_nr=smooth_nr, smooth_dr=smooth_dr, batch=False, weight=weight,
        )
        self.include_background = include_background
        self.to_onehot_y = to_onehot_y

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
        terms = self.dice(input, target).reshape(input.shape[0], -1)
        present = self.present(input, target)
        kept = torch.where(present > 0, terms, torch.zeros_like(terms))  # absent terms may be 0/0 without smoothing
        if self.reduction == LossReduction.NONE.value:
            return kept
        if self.reduction == LossReduction.SUM.value:
            return kept.sum()
        return kept.sum() / present.sum().clamp_min(1.0)


class PresentClassDiceCELoss(DiceCELoss):
    """MONAI's ``DiceCELoss`` whose Dice part is :class:`PresentClassDiceLoss` (the DBCE paper's Dice + CE on
    Synapse). Arguments as ``monai.losses.DiceCELoss``; ``batch=True`` is not supported (the Dice terms are per
    image by definition)."""

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        squared_pred: bool = False,
        jaccard: bool = False,
        reduction: str = "mean",
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        batch: bool = False,
        weight: torch.Tensor | None = None,
        lambda_dice: float = 1.0,
        lambda_ce: float = 1.0,
        label_smoothing: float = 0.0,
    ) -> None:
        if batch:
            raise ValueError("PresentClassDiceCELoss counts Dice terms per image: batch=True is not supported.")
        super().__init__(
            include_background=include_background, to_onehot_y=to_onehot_y, sigmoid=sigmoid, softmax=softmax,
            other_act=other_act, squared_pred=squared_pred, jaccard=jaccard, reduction=reduction, smooth_nr=smooth_nr,
            smooth_dr=smooth_dr, batch=False, weight=weight, lambda_dice=lambda_dice, lambda_ce=lambda_ce,
            label_smoothing=label_smoothing,
        )
        dice_weight = weight[1:] if weight is not None and not include_background else weight
        self.dice = PresentClassDiceLoss(
            include_background=include_background, to_onehot_y=to_onehot_y, sigmoid=sigmoid, softmax=softmax,
            other_act=other_act, squared_pred=squared_pred, jaccard=jaccard, reduction=reduction,
            smooth_nr=smooth_nr, smooth_dr=smooth_dr, weight=dice_weight,
        )
