"""DIBE losses: distribution-based DIBE_Dis (Eq. 16), region-based DIBE_Reg (Eq. 18) and their compound DIBE (Eq. 19).

J. Yi, X. Zhong, W. Liu, Z. Wu, Y. Deng, Z. Wu, "Harmonizing Output Imbalance for semantic segmentation on
extremely-imbalanced input data" (the DIBE paper).
The paper is binary (one sigmoid channel); here every class is treated one-vs-rest, averaged over the selected
classes, which reduces to the paper for one channel. The pixel terms, the soft counts, the reading of ``alpha`` and
``beta`` and the numerics are :mod:`monai_imbalance.losses.one_vs_rest`'s; the input arguments, ``smooth_nr``,
``smooth_dr``, ``batch`` and ``weight`` are :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from monai.utils import LossReduction

from monai_imbalance.losses.one_vs_rest import (
    FocalFamily,
    OneVsRestLoss,
    PixelRegionLoss,
    check_non_negative,
    check_unit_interval,
    resolve_alpha_beta,
)
from monai_imbalance.losses.tversky import TverskyIndexLoss, tversky_parameters
from monai_imbalance.losses.utils import arguments_for

__all__ = ["DIBEDisLoss", "DIBERegLoss", "DIBELoss"]

class DIBEDisLoss(OneVsRestLoss):
    """Distribution-based DIBE loss (DIBE paper Eq. 16): a focal loss whose misclassified pixels get the output
    imbalance regulators. Per pixel and class, ``p`` the class probability, ``y`` its label and ``y_hat = (p >= 0.5)``
    (which only selects the branch; no gradient flows through it)::

        TP (y=1, y_hat=1): -lambda (1 - p)^gamma log p
        FN (y=1, y_hat=0): -lambda (1 + beta) (1 - p^(1 + beta))^gamma log p
        TN (y=0, y_hat=0): -(1 - lambda) p^gamma log(1 - p)
        FP (y=0, y_hat=1): -(1 - lambda) (1 + alpha) (1 - (1 - p)^(1 + alpha))^gamma log(1 - p)

    ``alpha = beta = 0`` is exactly the focal loss with class weight ``lambda`` on the target (Eq. 3; MONAI's
    ``FocalLoss(gamma, alpha=lambda)`` with sigmoid), and also ``gamma = 0`` the weighted BCE (Eq. 2). Multi-class:
    one-vs-rest per class (softmax probabilities, ``y_hat = p >= 0.5``), averaged over the selected classes.

    Reading: ``alpha`` weighs false positives, ``beta`` false negatives; the paper's (0.3, 0.7) is
    ``alpha=0.7, beta=0.3`` here (the default); ``beta`` defaults to ``1 - alpha``.

    The other arguments as :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss` (this loss has no region
    term, hence no ``smooth_nr``, ``smooth_dr``, ``batch``).

    Args:
        alpha: false-positive regulator, ``>= 0``.
        beta: false-negative regulator, ``>= 0``; default ``1 - alpha``.
        gamma: focusing exponent, ``>= 0``.
        lambda_: class weight of the target (``y = 1``); the background side gets ``1 - lambda_``. In ``[0, 1]``.
        reduction: ``"none"`` (the voxel map ``[B, C, H, W[, D]]``, ``C`` the selected classes), ``"mean"`` or
            ``"sum"`` over all voxels and classes.

    Raises:
        ValueError: ``alpha``, ``beta`` or ``gamma`` negative, ``lambda_`` outside ``[0, 1]``; and
            :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss`'s argument errors.

    Example:
        >>> import torch
        >>> loss = DIBEDisLoss()  # probabilities, one channel: the paper's binary setting
        >>> p, y = torch.tensor([[[[0.9, 0.3]]]]), torch.tensor([[[[1.0, 1.0]]]])  # a TP and an FN pixel
        >>> round(loss(p, y).item(), 6)  # (0.75 * 0.01 * -ln 0.9 + 0.75 * 1.3 * (1 - 0.3^1.3)^2 * -ln 0.3) / 2
        0.36758

    Reference:
        Yi et al., "Harmonizing Output Imbalance for semantic segmentation on extremely-imbalanced input data", Eq. 16.
    """

    def __init__(
        self, include_background: bool = True, to_onehot_y: bool = False, sigmoid: bool = False, softmax: bool = False,
        other_act: Callable | None = None, alpha: float = 0.7, beta: float | None = None,
        gamma: float = 2.0, lambda_: float = 0.75, reduction: LossReduction | str = LossReduction.MEAN,
        weight: Sequence[float] | float | int | torch.Tensor | None = None,
    ) -> None:
        super().__init__(**arguments_for(super().__init__, locals()))
        self.alpha, self.beta = resolve_alpha_beta(alpha, beta)
        self.gamma = check_non_negative("gamma", gamma)
        self.lambda_ = check_unit_interval("lambda_", lambda_)

    @property
    def pixel_term(self) -> FocalFamily:
        """The per-pixel term this loss sums (shared with :class:`DIBELoss`)."""
        return FocalFamily(self.lambda_, self.gamma, self.alpha, self.beta)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of ``input`` against ``target`` (see :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss`);
        ``reduction="none"`` gives the voxel map ``[B, C, H, W[, D]]``."""
        if self.reduction == LossReduction.NONE.value:
            terms = self._terms(input, target, self.pixel_term, want_map=True, want_counts=False)
            return self._weighted(terms.pixel, 1)
        terms = self._terms(input, target, self.pixel_term, want_map=False, want_counts=False)
        total = self._weighted(terms.pixel, 1).sum()
        if self.reduction == LossReduction.MEAN.value:
            return total / (terms.pixel.numel() * terms.num_voxels)
        return total


class DIBERegLoss(TverskyIndexLoss):
    """Region-based DIBE loss (DIBE paper Eq. 18): ``(-log Tv)^(1 / gamma)`` per image and class, with the Tversky
    index ``Tv = (TP + smooth_nr) / (TP + alpha FP + beta FN + smooth_dr)`` on soft counts (Eq. 7).

    Compared with Focal Tversky ``(1 - Tv)^(1 / gamma)`` the logarithm keeps a large gradient both as ``Tv -> 0``
    (tiny targets) and as ``Tv -> 1`` (no over-suppression near convergence; paper Appendix A).

    Reading: ``alpha`` weighs false positives, ``beta`` false negatives; the paper's (0.3, 0.7) is
    ``alpha=0.7, beta=0.3`` here (the default); ``beta`` defaults to ``1 - alpha``.

    Numerics: ``-log Tv`` is computed as ``log1p((alpha FP + beta FN + smooth_dr - smooth_nr) / (TP + smooth_nr))``,
    accurate as ``Tv -> 1``, in float64. The derivative of ``t^(1/gamma)`` is infinite at ``t = -log Tv = 0`` when
    ``gamma > 1`` (the default 1.5): below ``t = 1e-8`` the power is replaced by its secant through 0
    (:func:`~monai_imbalance.losses.tversky.bounded_power`), so the value is exact above, a perfect prediction gives
    the minimum 0, and the slope in ``t`` stays below 464 (``gamma = 1.5``).

    A :class:`~monai_imbalance.losses.tversky.TverskyIndexLoss` with ``log_index = True``; the other arguments as
    :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss`.

    Args:
        alpha: weight of false positives, ``>= 0``.
        beta: weight of false negatives, ``>= 0``; default ``1 - alpha``.
        gamma: the loss is ``(-log Tv)^(1 / gamma)``, ``gamma > 0``.

    Raises:
        ValueError: ``alpha`` or ``beta`` negative, ``gamma <= 0``; and
            :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss`'s argument errors.

    Example:
        >>> import torch
        >>> p, y = torch.tensor([[[[0.9, 0.3, 0.2]]]]), torch.tensor([[[[1.0, 1.0, 0.0]]]])  # TP 1.2, FP 0.2, FN 0.8
        >>> round(DIBERegLoss(smooth_nr=0, smooth_dr=0)(p, y).item(), 6)  # (-ln(1.2 / (1.2 + 0.14 + 0.24)))^(2/3)
        0.42299

    Reference:
        Yi et al., "Harmonizing Output Imbalance for semantic segmentation on extremely-imbalanced input data", Eq. 18.
    """

    log_index = True

    def __init__(
        self, include_background: bool = True, to_onehot_y: bool = False, sigmoid: bool = False, softmax: bool = False,
        other_act: Callable | None = None, alpha: float = 0.7, beta: float | None = None, gamma: float = 1.5,
        reduction: LossReduction | str = LossReduction.MEAN, smooth_nr: float = 1e-5, smooth_dr: float = 1e-5,
        batch: bool = False, weight: Sequence[float] | float | int | torch.Tensor | None = None,
    ) -> None:
        super().__init__(**arguments_for(super().__init__, locals()))
        self.alpha, self.beta, self.gamma = tversky_parameters(alpha, beta, gamma)


class DIBELoss(PixelRegionLoss):
    """DIBE loss (DIBE paper Eq. 19): ``theta * mean_x DIBE_Dis + (1 - theta) * DIBE_Reg`` per image and class, with
    shared hyperparameters: ``lambda_`` and ``gamma_dis`` in :class:`DIBEDisLoss`, ``gamma_reg`` in
    :class:`DIBERegLoss`, the regulators ``alpha``, ``beta`` in both.

    The parts are built in ``__init__`` (``self.dis``, ``self.reg``) and can be called on their own; ``forward``
    computes the activation, the pixel term and the soft counts once for both.

    Reading: ``alpha`` weighs false positives, ``beta`` false negatives; the paper's (0.3, 0.7) is
    ``alpha=0.7, beta=0.3`` here (the default); ``beta`` defaults to ``1 - alpha``. The other defaults are the
    paper's: ``theta=0.5``, ``lambda_=0.75`` on the target, ``gamma_dis=2``, ``gamma_reg=1.5``.

    Numerics: as :class:`DIBEDisLoss` and :class:`DIBERegLoss`. The other arguments as
    :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss` (``batch``: the region counts are summed over the
    batch and DIBE_Dis is averaged over it before combining).

    Args:
        theta: weight of the distribution part, ``1 - theta`` of the region part; in ``[0, 1]``.
        lambda_: class weight of the target in DIBE_Dis, in ``[0, 1]``.
        gamma_dis: focusing exponent of DIBE_Dis, ``>= 0``.
        gamma_reg: DIBE_Reg is ``(-log Tv)^(1 / gamma_reg)``, ``gamma_reg > 0``.
        alpha: false-positive regulator of both parts, ``>= 0``.
        beta: false-negative regulator of both parts, ``>= 0``; default ``1 - alpha``.

    Raises:
        ValueError: ``theta`` or ``lambda_`` outside ``[0, 1]``, ``alpha``, ``beta`` or ``gamma_dis`` negative,
            ``gamma_reg <= 0``; and :class:`~monai_imbalance.losses.one_vs_rest.OneVsRestLoss`'s argument errors.

    Example:
        >>> import torch
        >>> p, y = torch.tensor([[[[0.9, 0.3, 0.2]]]]), torch.tensor([[[[1.0, 1.0, 0.0]]]])
        >>> loss = DIBELoss(smooth_nr=0, smooth_dr=0)
        >>> bool(torch.isclose(loss(p, y), 0.5 * loss.dis(p, y) + 0.5 * loss.reg(p, y)))
        True

    Reference:
        Yi et al., "Harmonizing Output Imbalance for semantic segmentation on extremely-imbalanced input data", Eq. 19.
    """

    def __init__(
        self, include_background: bool = True, to_onehot_y: bool = False, sigmoid: bool = False, softmax: bool = False,
        other_act: Callable | None = None, theta: float = 0.5, lambda_: float = 0.75, gamma_dis: float = 2.0,
        gamma_reg: float = 1.5, alpha: float = 0.7, beta: float | None = None,
        reduction: LossReduction | str = LossReduction.MEAN, smooth_nr: float = 1e-5, smooth_dr: float = 1e-5,
        batch: bool = False, weight: Sequence[float] | float | int | torch.Tensor | None = None,
    ) -> None:
        super().__init__(**arguments_for(super().__init__, locals()))
        self.theta = check_unit_interval("theta", theta)
        alpha, beta = resolve_alpha_beta(alpha, beta)
        self.dis = DIBEDisLoss(**arguments_for(DIBEDisLoss, locals(), gamma=gamma_dis))
        self.reg = DIBERegLoss(**arguments_for(DIBERegLoss, locals(), gamma=gamma_reg))

    @property
    def pixel_term(self) -> FocalFamily:  # type: ignore[override]
        return self.dis.pixel_term

    def region_loss(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
        return self.reg.region_loss(tp, fp, fn)
