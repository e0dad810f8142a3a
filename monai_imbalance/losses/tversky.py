"""Region terms on soft counts (Tversky index, Dice) and the Focal Tversky loss (Abraham & Khan, ISBI 2019).

The soft counts ``tp = sum p y``, ``fp = sum p (1 - y)``, ``fn = sum (1 - p) y`` per image and class come from
:func:`monai_imbalance.losses.one_vs_rest.one_vs_rest_terms`; the functions here turn them into region terms, in
float64 (they are ``[B, C]`` tensors, so precision costs nothing):

- :func:`tversky_terms`: numerator, denominator and their difference of
  ``Tv = (tp + smooth_nr) / (tp + alpha fp + beta fn + smooth_dr)`` (DIBE paper Eq. 7; ``tp_weight=2, alpha=beta=1``
  gives Dice, Eq. 5). The difference is formed directly, so ``1 - Tv`` and ``-log Tv`` stay accurate as
  ``Tv -> 1``.
- :func:`bounded_power`: ``t^e`` whose slope stays finite at ``t = 0`` when ``e < 1`` (see there).
- :class:`TverskyIndexLoss`: ``(1 - Tv)^(1 / gamma)`` or ``(-log Tv)^(1 / gamma)`` from those, with ``alpha``, ``beta``
  and ``gamma`` checked by :func:`tversky_parameters`: the base of :class:`FocalTverskyLoss` and
  :class:`~monai_imbalance.losses.dibe.DIBERegLoss`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from monai.utils import LossReduction

from monai_imbalance.losses.one_vs_rest import RegionOnlyLoss, check_positive, resolve_alpha_beta
from monai_imbalance.losses.utils import arguments_for

__all__ = [
    "tversky_terms",
    "tversky_parameters",
    "bounded_power",
    "TverskyIndexLoss",
    "FocalTverskyLoss",
    "POWER_FLOOR",
]

# below this, t^e with e < 1 is replaced by its secant through 0 (value exact above, slope bounded by floor^(e-1))
POWER_FLOOR = 1e-8


def tversky_terms(
    tp: torch.Tensor,
    fp: torch.Tensor,
    fn: torch.Tensor,
    alpha: float,
    beta: float,
    smooth_nr: float,
    smooth_dr: float,
    tp_weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(num, den, gap)`` with ``num = w tp + smooth_nr``, ``den = w tp + alpha fp + beta fn + smooth_dr`` and
    ``gap = den - num >= 0``, so that ``Tv = num / den``, ``1 - Tv = gap / den`` and ``-log Tv = log1p(gap / num)``.

    ``gap`` is clamped at 0: with ``smooth_dr < smooth_nr`` an index above 1 reads as 1."""
    num = tp_weight * tp + smooth_nr
    gap = (alpha * fp + beta * fn + (smooth_dr - smooth_nr)).clamp_min(0.0)
    return num, num + gap, gap


def tversky_parameters(alpha: float, beta: float | None, gamma: float) -> tuple[float, float, float]:
    """``(alpha, beta, gamma)`` of a loss ``f(Tv)^(1 / gamma)``, validated: ``alpha, beta >= 0`` with
    ``beta = 1 - alpha`` when not given (:func:`~monai_imbalance.losses.one_vs_rest.resolve_alpha_beta`), ``gamma > 0``.
    """
    return (*resolve_alpha_beta(alpha, beta), check_positive("gamma", gamma))


def bounded_power(t: torch.Tensor, exponent: float, floor: float = POWER_FLOOR) -> torch.Tensor:
    """``t^exponent`` for ``t >= 0`` with a finite slope at 0.

    For ``exponent < 1`` the derivative ``e t^(e-1)`` is infinite at ``t = 0`` (a perfect prediction). Below ``floor``
    the power is replaced by its secant through the origin, ``t floor^(e-1)``: the value is exact for ``t >= floor``,
    continuous, 0 at 0, and the slope never exceeds ``e floor^(e-1)`` (``floor^(e-1)`` below it); with the default
    ``floor = 1e-8`` and ``e = 2/3`` that bound is 464. Exponents ``>= 1`` need no care."""
    if exponent >= 1.0:
        return t if exponent == 1.0 else t.clamp_min(0.0) ** exponent
    t = t.clamp_min(0.0)
    powered = t.clamp_min(floor) ** exponent
    return torch.where(t >= floor, powered, t * floor ** (exponent - 1.0))


class TverskyIndexLoss(RegionOnlyLoss):
    """``f(Tv)^(1 / gamma)`` per image and class with ``f(Tv) = 1 - Tv``, or ``-log Tv`` where ``log_index`` is True:
    the base of :class:`FocalTverskyLoss` and :class:`~monai_imbalance.losses.dibe.DIBERegLoss`. Not a loss by itself:
    a subclass sets ``alpha``, ``beta`` and ``gamma`` (:func:`tversky_parameters`) and ``log_index``; the other
    arguments as :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss`.

    ``Tv = (TP + smooth_nr) / (TP + alpha FP + beta FN + smooth_dr)`` on soft counts (:func:`tversky_terms`, in
    float64): ``1 - Tv`` and ``-log Tv = log1p(gap / num)`` are formed from ``alpha FP + beta FN`` directly, so both
    stay accurate as ``Tv -> 1``, and the power is :func:`bounded_power` (a finite slope at a perfect prediction).
    """

    log_index: bool = False
    alpha: float
    beta: float
    gamma: float

    def region_loss(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
        """``f(Tv)^(1 / gamma)`` from soft counts (float64 in, float64 out)."""
        num, den, gap = tversky_terms(tp, fp, fn, self.alpha, self.beta, self.smooth_nr, self.smooth_dr)
        return bounded_power(torch.log1p(gap / num) if self.log_index else gap / den, 1.0 / self.gamma)


class FocalTverskyLoss(TverskyIndexLoss):
    """Focal Tversky loss ``(1 - Tv)^(1 / gamma)`` per image and class (Abraham & Khan 2019; DIBE paper Eq. 8).

    ``Tv = (TP + smooth_nr) / (TP + alpha FP + beta FN + smooth_dr)`` with soft counts ``TP = sum p y``,
    ``FP = sum p (1 - y)``, ``FN = sum (1 - p) y`` over space (and batch with ``batch=True``), one-vs-rest per class.
    ``gamma = 4/3`` is the exponent 0.75 of every reference implementation (the DIBE paper's "gamma_FT = 0.75").

    Reading: ``alpha`` weighs false positives and ``beta`` false negatives (MONAI's ``TverskyLoss``); the DIBE
    paper's setting (0.3, 0.7) is ``alpha=0.7, beta=0.3`` here (the default, as for every loss of that paper);
    Abraham & Khan's own setting (0.7 on false negatives) is ``alpha=0.3, beta=0.7``.

    Numerics: ``1 - Tv`` is formed from ``alpha FP + beta FN`` directly, and below ``1 - Tv = 1e-8`` the power is
    replaced by its secant (:func:`bounded_power`), so a perfect prediction gives the minimum 0 with a finite
    gradient although ``d/dTv (1 - Tv)^0.75`` is infinite at ``Tv = 1``.

    A :class:`TverskyIndexLoss` (``log_index = False``); the other arguments as
    :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss`.

    Args:
        alpha: weight of false positives, ``>= 0``.
        beta: weight of false negatives, ``>= 0``; default ``1 - alpha``.
        gamma: the loss is ``(1 - Tv)^(1 / gamma)``, ``gamma > 0``.

    Raises:
        ValueError: ``alpha`` or ``beta`` negative, ``gamma <= 0``; and
            :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss`'s argument errors.

    Example:
        >>> import torch
        >>> p = torch.tensor([[[[0.8, 0.6, 0.1, 0.3]]]])
        >>> y = torch.tensor([[[[1.0, 1.0, 0.0, 0.0]]]])  # TP 1.4, FP 0.4, FN 0.6
        >>> round(FocalTverskyLoss(smooth_nr=0, smooth_dr=0)(p, y).item(), 6)  # (1 - 1.4 / (1.4 + 0.28 + 0.18))^0.75
        0.350698

    Reference:
        N. Abraham and N. M. Khan, "A novel focal Tversky loss function with improved attention U-Net for lesion
        segmentation", ISBI 2019.
    """

    def __init__(
        self, include_background: bool = True, to_onehot_y: bool = False, sigmoid: bool = False, softmax: bool = False,
        other_act: Callable | None = None, alpha: float = 0.7, beta: float | None = None, gamma: float = 4.0 / 3.0,
        reduction: LossReduction | str = LossReduction.MEAN, smooth_nr: float = 1e-5, smooth_dr: float = 1e-5,
        batch: bool = False, weight: Sequence[float] | float | int | torch.Tensor | None = None,
    ) -> None:
        super().__init__(**arguments_for(super().__init__, locals()))
        self.alpha, self.beta, self.gamma = tversky_parameters(alpha, beta, gamma)
