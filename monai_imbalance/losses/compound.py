"""The DIBE paper's compound baselines that MONAI lacks: Combo (Eq. 9), exponential-logarithmic (Eqs. 10-11) and
Hybrid Focal (Eq. 12). Each is ``theta * mean_x (pixel term) + (1 - theta) * (region term)`` per image and class,
one-vs-rest per class; the activation, pixel term and soft counts are computed once per forward
(:func:`~monai_imbalance.losses.one_vs_rest.one_vs_rest_terms`).

``reduction="none"`` gives ``[B, C]`` (``[C]`` with ``batch=True``, where the region counts are summed over the batch
and the pixel term is averaged over it); ``"mean"``/``"sum"`` reduce that.

Reading: ``alpha`` weighs false positives and ``beta`` false negatives everywhere in this package; the DIBE paper's
(0.3, 0.7), used for all its losses, is ``alpha=0.7, beta=0.3`` here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from monai.utils import LossReduction

from monai_imbalance.losses.dibe import DIBEDisLoss
from monai_imbalance.losses.one_vs_rest import (
    ExpLogCE,
    FocalFamily,
    OneVsRestLoss,
    check_non_negative,
    check_positive,
    check_unit_interval,
)
from monai_imbalance.losses.tversky import FocalTverskyLoss, bounded_power, tversky_terms

__all__ = ["ComboLoss", "ExpLogLoss", "HybridFocalLoss"]

class _CompoundLoss(OneVsRestLoss):
    """``theta * mean_x pixel + (1 - theta) * region`` per image and class; subclasses set ``pixel_term`` and
    ``region_loss``."""

    pixel_term: FocalFamily | ExpLogCE

    def region_loss(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input: ``(B, C, H, W[, D])`` logits (with ``sigmoid``/``softmax``) or probabilities.
            target: one-hot ``(B, C, ...)`` or class indices ``(B, 1, ...)`` with ``to_onehot_y``; hard labels.

        Returns:
            the loss; ``reduction="none"`` gives ``[B, C]`` (``[C]`` with ``batch``).

        Raises:
            ValueError: shapes that do not match (the message names both) or class indices out of range.
        """
        terms = self._terms(input, target, self.pixel_term, want_map=False, want_counts=True)
        region = self.region_loss(*self._region_counts(terms)).to(terms.pixel.dtype)
        return self._reduce(self.theta * self._pixel_mean(terms) + (1.0 - self.theta) * region)


class ComboLoss(_CompoundLoss):
    """Combo loss (Taghanaki et al. 2019; DIBE paper Eq. 9): ``theta * mean_x WBCE + (1 - theta) * (1 - Dice)``.

    ``WBCE = -lambda log p`` on the target, ``-(1 - lambda) log(1 - p)`` elsewhere (Eq. 2), one-vs-rest per class;
    ``Dice = (2 TP + smooth_nr) / (2 TP + FP + FN + smooth_dr)`` on soft counts, as MONAI's ``DiceLoss``. (The original
    paper subtracts Dice instead of adding ``1 - Dice``: same gradient, offset by ``1 - theta``.)

    Example:
        >>> loss = ComboLoss(softmax=True, to_onehot_y=True)
        >>> loss(torch.randn(2, 2, 32, 32), torch.randint(0, 2, (2, 1, 32, 32))).shape
        torch.Size([])
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        theta: float = 0.5,
        lambda_: float = 0.75,
        reduction: LossReduction | str = LossReduction.MEAN,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        batch: bool = False,
        weight: Sequence[float] | float | int | torch.Tensor | None = None,
    ) -> None:
        """
        Args:
            include_background: if False, channel 0 (background) is excluded from the loss.
            to_onehot_y: convert ``target`` (class indices ``(B, 1, ...)``) to one-hot.
            sigmoid: apply a sigmoid to ``input`` (logits).
            softmax: apply a softmax to ``input`` (logits).
            other_act: another activation instead (the input is then read as probabilities after it).
            theta: weight of the WBCE part, ``1 - theta`` of the Dice part; in ``[0, 1]``.
            lambda_: class weight of the target in WBCE, in ``[0, 1]``.
            reduction: ``"none"`` (``[B, C]``, ``[C]`` with ``batch``), ``"mean"`` or ``"sum"`` of those.
            smooth_nr: added to the Dice numerator.
            smooth_dr: added to the Dice denominator.
            batch: sum the counts over the batch before forming Dice.
            weight: class weights (one per selected class, or one number) multiplying the per-class loss.

        Raises:
            ValueError: more than one activation, a bad ``reduction``, or a hyperparameter out of range.
        """
        super().__init__(
            include_background, to_onehot_y, sigmoid, softmax, other_act, reduction, smooth_nr, smooth_dr, batch, weight
        )
        self.theta = check_unit_interval("theta", theta)
        self.lambda_ = check_unit_interval("lambda_", lambda_)
        self.pixel_term = FocalFamily(self.lambda_, 0.0)

    def region_loss(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
        """``1 - Dice`` from soft counts."""
        _, den, gap = tversky_terms(tp, fp, fn, 1.0, 1.0, self.smooth_nr, self.smooth_dr, tp_weight=2.0)
        return gap / den


class ExpLogLoss(_CompoundLoss):
    """Exponential-logarithmic loss (Wong et al., MICCAI 2018) as the DIBE paper writes it (Eqs. 10-11):
    ``theta * mean_x L_CE + (1 - theta) * (-log Dice)^gamma_dice`` with
    ``L_CE = lambda (-log p)^gamma_ce`` on the target and ``(1 - lambda) (-log(1 - p))^gamma_ce`` elsewhere.

    Defaults are the DIBE paper's settings for this baseline (``gamma_ce = gamma_dice = 1``, ``theta = 0.5``,
    ``lambda_ = 0.75``); Wong et al. used ``gamma = 0.3`` for both and weights 0.8 (Dice) / 0.2 (CE), i.e.
    ``ExpLogLoss(theta=0.2, gamma_ce=0.3, gamma_dice=0.3)``, with class weights from label frequencies where this
    loss uses ``lambda_`` (give per-class factors through ``weight`` if needed).

    Numerics: the slope of ``t^gamma`` at ``t = 0`` is infinite for ``gamma < 1``; the Dice term uses
    :func:`~monai_imbalance.losses.tversky.bounded_power` (secant below ``t = 1e-8``) and the CE term's derivative is
    formed as ``gamma t^gamma * (1 - q) / t``, bounded, from logits.

    Example:
        >>> loss = ExpLogLoss(softmax=True, to_onehot_y=True, gamma_ce=0.3, gamma_dice=0.3)
        >>> loss(torch.randn(2, 2, 32, 32), torch.randint(0, 2, (2, 1, 32, 32))).shape
        torch.Size([])
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        theta: float = 0.5,
        lambda_: float = 0.75,
        gamma_ce: float = 1.0,
        gamma_dice: float = 1.0,
        reduction: LossReduction | str = LossReduction.MEAN,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        batch: bool = False,
        weight: Sequence[float] | float | int | torch.Tensor | None = None,
    ) -> None:
        """
        Args:
            include_background: if False, channel 0 (background) is excluded from the loss.
            to_onehot_y: convert ``target`` (class indices ``(B, 1, ...)``) to one-hot.
            sigmoid: apply a sigmoid to ``input`` (logits).
            softmax: apply a softmax to ``input`` (logits).
            other_act: another activation instead (the input is then read as probabilities after it).
            theta: weight of the CE part, ``1 - theta`` of the Dice part; in ``[0, 1]``.
            lambda_: class weight of the target in the CE part, in ``[0, 1]``.
            gamma_ce: exponent of the CE part, ``> 0``.
            gamma_dice: exponent of the Dice part, ``> 0``.
            reduction: ``"none"`` (``[B, C]``, ``[C]`` with ``batch``), ``"mean"`` or ``"sum"`` of those.
            smooth_nr: added to the Dice numerator.
            smooth_dr: added to the Dice denominator.
            batch: sum the counts over the batch before forming Dice.
            weight: class weights (one per selected class, or one number) multiplying the per-class loss.

        Raises:
            ValueError: more than one activation, a bad ``reduction``, or a hyperparameter out of range.
        """
        super().__init__(
            include_background, to_onehot_y, sigmoid, softmax, other_act, reduction, smooth_nr, smooth_dr, batch, weight
        )
        self.theta = check_unit_interval("theta", theta)
        self.lambda_ = check_unit_interval("lambda_", lambda_)
        self.gamma_ce = check_positive("gamma_ce", gamma_ce)
        self.gamma_dice = check_positive("gamma_dice", gamma_dice)
        self.pixel_term = ExpLogCE(self.lambda_, self.gamma_ce)

    def region_loss(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
        """``(-log Dice)^gamma_dice`` from soft counts."""
        num, _, gap = tversky_terms(tp, fp, fn, 1.0, 1.0, self.smooth_nr, self.smooth_dr, tp_weight=2.0)
        return bounded_power(torch.log1p(gap / num), self.gamma_dice)


class HybridFocalLoss(_CompoundLoss):
    """Hybrid Focal loss (Yeung et al. 2022 as the DIBE paper writes it, Eq. 12):
    ``theta * mean_x Focal + (1 - theta) * FocalTversky``, with the focal loss of Eq. 3 (``lambda`` on the target,
    exponent ``gamma_focal``) and :class:`~monai_imbalance.losses.tversky.FocalTverskyLoss` ``(1 - Tv)^(1/gamma_ft)``.

    The parts are built in ``__init__``: ``self.focal`` (a :class:`~monai_imbalance.losses.dibe.DIBEDisLoss` with
    ``alpha = beta = 0``, which is exactly the focal loss) and ``self.focal_tversky``.

    Reading: ``alpha`` weighs false positives, ``beta`` false negatives (in the Tversky index); the DIBE paper's
    (0.3, 0.7) is ``alpha=0.7, beta=0.3`` here (the default); ``beta`` defaults to ``1 - alpha``.

    Example:
        >>> loss = HybridFocalLoss(softmax=True, to_onehot_y=True)
        >>> loss(torch.randn(2, 2, 32, 32), torch.randint(0, 2, (2, 1, 32, 32))).shape
        torch.Size([])
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        theta: float = 0.5,
        lambda_: float = 0.75,
        gamma_focal: float = 2.0,
        gamma_ft: float = 4.0 / 3.0,
        alpha: float = 0.7,
        beta: float | None = None,
        reduction: LossReduction | str = LossReduction.MEAN,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        batch: bool = False,
        weight: Sequence[float] | float | int | torch.Tensor | None = None,
    ) -> None:
        """
        Args:
            include_background: if False, channel 0 (background) is excluded from the loss.
            to_onehot_y: convert ``target`` (class indices ``(B, 1, ...)``) to one-hot.
            sigmoid: apply a sigmoid to ``input`` (logits).
            softmax: apply a softmax to ``input`` (logits).
            other_act: another activation instead (the input is then read as probabilities after it).
            theta: weight of the focal part, ``1 - theta`` of the Focal Tversky part; in ``[0, 1]``.
            lambda_: class weight of the target in the focal part, in ``[0, 1]``.
            gamma_focal: focusing exponent of the focal part, ``>= 0``.
            gamma_ft: the Focal Tversky part is ``(1 - Tv)^(1 / gamma_ft)``, ``> 0`` (4/3: exponent 0.75).
            alpha: weight of false positives in ``Tv``, ``>= 0``.
            beta: weight of false negatives in ``Tv``, ``>= 0``; default ``1 - alpha``.
            reduction: ``"none"`` (``[B, C]``, ``[C]`` with ``batch``), ``"mean"`` or ``"sum"`` of those.
            smooth_nr: added to the numerator of ``Tv``.
            smooth_dr: added to the denominator of ``Tv``.
            batch: sum the counts over the batch before forming ``Tv``.
            weight: class weights (one per selected class, or one number) multiplying the per-class loss.

        Raises:
            ValueError: more than one activation, a bad ``reduction``, or a hyperparameter out of range.
        """
        super().__init__(
            include_background, to_onehot_y, sigmoid, softmax, other_act, reduction, smooth_nr, smooth_dr, batch, weight
        )
        self.theta = check_unit_interval("theta", theta)
        common = {
            "include_background": include_background,
            "to_onehot_y": to_onehot_y,
            "sigmoid": sigmoid,
            "softmax": softmax,
            "other_act": other_act,
            "reduction": reduction,
            "weight": weight,
        }
        check_non_negative("gamma_focal", gamma_focal)
        self.focal = DIBEDisLoss(alpha=0.0, beta=0.0, gamma=gamma_focal, lambda_=lambda_, **common)
        self.focal_tversky = FocalTverskyLoss(
            alpha=alpha, beta=beta, gamma=gamma_ft, smooth_nr=smooth_nr, smooth_dr=smooth_dr, batch=batch, **common
        )
        self.pixel_term = self.focal.pixel_term

    def region_loss(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
        return self.focal_tversky.region_loss(tp, fp, fn)
