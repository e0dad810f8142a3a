"""The DIBE paper's compound baselines that MONAI lacks: Combo (Eq. 9), exponential-logarithmic (Eqs. 10-11) and
Hybrid Focal (Eq. 12). Each is ``theta * mean_x (pixel term) + (1 - theta) * (region term)`` per image and class,
one-vs-rest per class (:class:`~monai_imbalance.losses.one_vs_rest.PixelRegionLoss`: the activation, pixel term and
soft counts are computed once per forward).

The input arguments, ``reduction`` (``"none"``: ``[B, C]``, ``[C]`` with ``batch=True``, where the region counts are
summed over the batch and the pixel term is averaged over it), ``smooth_nr``, ``smooth_dr``, ``batch`` and ``weight``
are :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss`'s, as is the reading of ``alpha`` and ``beta``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from monai.utils import LossReduction

from monai_imbalance.losses.dibe import DIBEDisLoss
from monai_imbalance.losses.one_vs_rest import (
    ExpLogCE,
    FocalFamily,
    PixelRegionLoss,
    check_non_negative,
    check_positive,
    check_unit_interval,
)
from monai_imbalance.losses.tversky import FocalTverskyLoss, bounded_power, tversky_terms
from monai_imbalance.losses.utils import arguments_for

__all__ = ["ComboLoss", "ExpLogLoss", "HybridFocalLoss"]


class ComboLoss(PixelRegionLoss):
    """Combo loss (Taghanaki et al. 2019; DIBE paper Eq. 9): ``theta * mean_x WBCE + (1 - theta) * (1 - Dice)``.

    ``WBCE = -lambda log p`` on the target, ``-(1 - lambda) log(1 - p)`` elsewhere (Eq. 2), one-vs-rest per class;
    ``Dice = (2 TP + smooth_nr) / (2 TP + FP + FN + smooth_dr)`` on soft counts, as MONAI's ``DiceLoss``. (The original
    paper subtracts Dice instead of adding ``1 - Dice``: same gradient, offset by ``1 - theta``.)

    The other arguments as :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss`.

    Args:
        theta: weight of the WBCE part, ``1 - theta`` of the Dice part; in ``[0, 1]``.
        lambda_: class weight of the target in WBCE, in ``[0, 1]``.

    Raises:
        ValueError: ``theta`` or ``lambda_`` outside ``[0, 1]``; and
            :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss`'s argument errors.

    Example:
        >>> import torch
        >>> p, y = torch.tensor([[[[0.8, 0.4]]]]), torch.tensor([[[[1.0, 0.0]]]])  # TP 0.8, FP 0.4, FN 0.2
        >>> loss = ComboLoss(smooth_nr=0, smooth_dr=0)  # 0.5 (0.75 ln 1.25 + 0.25 ln(5/3)) / 2 + 0.5 (1 - 1.6 / 2.2)
        >>> round(loss(p, y).item(), 6)
        0.21013

    Reference:
        S. A. Taghanaki et al., "Combo loss: Handling input and output imbalance in multi-organ segmentation",
        Computerized Medical Imaging and Graphics 75, 2019.
    """

    def __init__(
        self, include_background: bool = True, to_onehot_y: bool = False, sigmoid: bool = False, softmax: bool = False,
        other_act: Callable | None = None, theta: float = 0.5, lambda_: float = 0.75,
        reduction: LossReduction | str = LossReduction.MEAN, smooth_nr: float = 1e-5, smooth_dr: float = 1e-5,
        batch: bool = False, weight: Sequence[float] | float | int | torch.Tensor | None = None,
    ) -> None:
        super().__init__(**arguments_for(super().__init__, locals()))
        self.theta, self.lambda_ = check_unit_interval("theta", theta), check_unit_interval("lambda_", lambda_)
        self.pixel_term = FocalFamily(self.lambda_, 0.0)

    def region_loss(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
        """``1 - Dice`` from soft counts."""
        _, den, gap = tversky_terms(tp, fp, fn, 1.0, 1.0, self.smooth_nr, self.smooth_dr, tp_weight=2.0)
        return gap / den


class ExpLogLoss(PixelRegionLoss):
    """Exponential-logarithmic loss as the DIBE paper writes it (Eqs. 10-11):
    ``theta * mean_x L_CE + (1 - theta) * (-log Dice)^gamma_dice`` per image and class, with the one-vs-rest term
    ``L_CE = lambda (-log p)^gamma_ce`` where ``y = 1`` and ``(1 - lambda) (-log(1 - p))^gamma_ce`` where ``y = 0``
    (Eq. 11) and ``Dice = (2 TP + smooth_nr) / (2 TP + FP + FN + smooth_dr)`` on soft counts.

    Against Wong et al.'s loss ``w_Dice E_c[(-ln Dice_c)^gamma_Dice] + w_Cross E_x[w_l (-ln p_l(x))^gamma_Cross]``:
    the Dice part is Wong's, class by class. The CE part is not: Wong's is categorical (at each pixel the term of its
    true class ``l`` only, weighted by ``w_l = (sum_k f_k / f_l)^0.5`` from the label frequencies), this one is the
    mean of the one-vs-rest terms of the selected classes. At a pixel of class ``l`` that mean is

    - with one (sigmoid) channel, or two softmax classes and ``include_background=False``: ``w (-ln p_l)^gamma_ce``
      with ``w = lambda`` on the target and ``1 - lambda`` on the background, Wong's term with ``(1 - lambda, lambda)``
      in place of his frequency weights;
    - with two softmax classes, background included: ``(-ln p_l)^gamma_ce / 2`` whatever ``lambda`` (the
      background channel's term is the foreground's with the other weight): half of Wong's unweighted term;
    - with more classes: ``(lambda (-ln p_l)^gamma_ce + (1 - lambda) sum_{c != l} (-ln(1 - p_c))^gamma_ce) / C'``.

    Defaults are the DIBE paper's settings for this baseline (``gamma_ce = gamma_dice = 1``, ``theta = 0.5``,
    ``lambda_ = 0.75``). Wong et al.'s exponents and their 0.8 / 0.2 weighting of Dice and CE are
    ``ExpLogLoss(theta=0.2, gamma_ce=0.3, gamma_dice=0.3)``, with the CE part as just said (``weight`` scales each
    class's whole loss, Dice part included, so it cannot stand for Wong's ``w_l``).

    Numerics: the slope of ``t^gamma`` at ``t = 0`` is infinite for ``gamma < 1``; the Dice term uses
    :func:`~monai_imbalance.losses.tversky.bounded_power` (secant below ``t = 1e-8``) and the CE term's derivative is
    formed as ``gamma t^gamma * (1 - q) / t``, bounded, from logits.

    The other arguments as :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss`.

    Args:
        theta: weight of the CE part, ``1 - theta`` of the Dice part; in ``[0, 1]``.
        lambda_: class weight of the target in the CE part, in ``[0, 1]``.
        gamma_ce: exponent of the CE part, ``> 0``.
        gamma_dice: exponent of the Dice part, ``> 0``.

    Raises:
        ValueError: ``theta`` or ``lambda_`` outside ``[0, 1]``, ``gamma_ce <= 0`` or ``gamma_dice <= 0``; and
            :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss`'s argument errors.

    Example:
        >>> import torch
        >>> p, y = torch.tensor([[[[0.8, 0.4]]]]), torch.tensor([[[[1.0, 0.0]]]])  # Dice 1.6 / 2.2
        >>> loss = ExpLogLoss(theta=1.0, gamma_ce=0.5)  # the CE part: (0.75 (ln 1.25)^0.5 + 0.25 (ln(5/3))^0.5) / 2
        >>> round(loss(p, y).item(), 6)
        0.266483

    Reference:
        K. C. Wong, M. Moradi, H. Tang, T. Syeda-Mahmood, "3D segmentation with exponential logarithmic loss for
        highly unbalanced object sizes", MICCAI 2018; the DIBE paper (Yi et al.), Eqs. 10-11.
    """

    def __init__(
        self, include_background: bool = True, to_onehot_y: bool = False, sigmoid: bool = False, softmax: bool = False,
        other_act: Callable | None = None, theta: float = 0.5, lambda_: float = 0.75, gamma_ce: float = 1.0,
        gamma_dice: float = 1.0,
        reduction: LossReduction | str = LossReduction.MEAN, smooth_nr: float = 1e-5, smooth_dr: float = 1e-5,
        batch: bool = False, weight: Sequence[float] | float | int | torch.Tensor | None = None,
    ) -> None:
        super().__init__(**arguments_for(super().__init__, locals()))
        self.theta, self.lambda_ = check_unit_interval("theta", theta), check_unit_interval("lambda_", lambda_)
        self.gamma_ce = check_positive("gamma_ce", gamma_ce)
        self.gamma_dice = check_positive("gamma_dice", gamma_dice)
        self.pixel_term = ExpLogCE(self.lambda_, self.gamma_ce)

    def region_loss(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
        """``(-log Dice)^gamma_dice`` from soft counts."""
        num, _, gap = tversky_terms(tp, fp, fn, 1.0, 1.0, self.smooth_nr, self.smooth_dr, tp_weight=2.0)
        return bounded_power(torch.log1p(gap / num), self.gamma_dice)


class HybridFocalLoss(PixelRegionLoss):
    """Hybrid Focal loss (Yeung et al. 2022 as the DIBE paper writes it, Eq. 12):
    ``theta * mean_x Focal + (1 - theta) * FocalTversky``, with the focal loss of Eq. 3 (``lambda`` on the target,
    exponent ``gamma_focal``) and :class:`~monai_imbalance.losses.tversky.FocalTverskyLoss` ``(1 - Tv)^(1/gamma_ft)``.

    The parts are built in ``__init__``: ``self.focal`` (a :class:`~monai_imbalance.losses.dibe.DIBEDisLoss` with
    ``alpha = beta = 0``, which is exactly the focal loss) and ``self.focal_tversky``.

    Reading: ``alpha`` weighs false positives, ``beta`` false negatives (in the Tversky index); the DIBE paper's
    (0.3, 0.7) is ``alpha=0.7, beta=0.3`` here (the default); ``beta`` defaults to ``1 - alpha``.

    The other arguments as :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss`.

    Args:
        theta: weight of the focal part, ``1 - theta`` of the Focal Tversky part; in ``[0, 1]``.
        lambda_: class weight of the target in the focal part, in ``[0, 1]``.
        gamma_focal: focusing exponent of the focal part, ``>= 0``.
        gamma_ft: the Focal Tversky part is ``(1 - Tv)^(1 / gamma_ft)``, ``> 0`` (4/3: exponent 0.75).
        alpha: weight of false positives in ``Tv``, ``>= 0``.
        beta: weight of false negatives in ``Tv``, ``>= 0``; default ``1 - alpha``.

    Raises:
        ValueError: ``theta`` or ``lambda_`` outside ``[0, 1]``, ``gamma_focal``, ``alpha`` or ``beta`` negative,
            ``gamma_ft <= 0``; and :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss`'s argument errors.

    Example:
        >>> import torch
        >>> p, y = torch.tensor([[[[0.8, 0.4]]]]), torch.tensor([[[[1.0, 0.0]]]])
        >>> loss = HybridFocalLoss(theta=0.3)
        >>> parts = 0.3 * loss.focal(p, y) + 0.7 * loss.focal_tversky(p, y)
        >>> bool(torch.isclose(loss(p, y), parts))
        True

    Reference:
        M. Yeung, E. Sala, C.-B. Schonlieb, L. Rundo, "Unified focal loss: Generalising Dice and cross entropy-based
        losses to handle class imbalanced medical image segmentation", Computerized Medical Imaging and Graphics 95,
        2022; the DIBE paper (Yi et al.), Eq. 12.
    """

    def __init__(
        self, include_background: bool = True, to_onehot_y: bool = False, sigmoid: bool = False, softmax: bool = False,
        other_act: Callable | None = None, theta: float = 0.5, lambda_: float = 0.75, gamma_focal: float = 2.0,
        gamma_ft: float = 4.0 / 3.0, alpha: float = 0.7, beta: float | None = None,
        reduction: LossReduction | str = LossReduction.MEAN, smooth_nr: float = 1e-5, smooth_dr: float = 1e-5,
        batch: bool = False, weight: Sequence[float] | float | int | torch.Tensor | None = None,
    ) -> None:
        super().__init__(**arguments_for(super().__init__, locals()))
        self.theta = check_unit_interval("theta", theta)
        check_non_negative("gamma_focal", gamma_focal)
        self.focal = DIBEDisLoss(**arguments_for(DIBEDisLoss, locals(), alpha=0.0, beta=0.0, gamma=gamma_focal))
        self.focal_tversky = FocalTverskyLoss(**arguments_for(FocalTverskyLoss, locals(), gamma=gamma_ft))
        self.pixel_term = self.focal.pixel_term

    def region_loss(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
        return self.focal_tversky.region_loss(tp, fp, fn)
