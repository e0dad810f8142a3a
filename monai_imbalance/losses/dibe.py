"""DIBE losses: distribution-based DIBE_Dis (Eq. 16), region-based DIBE_Reg (Eq. 18) and their compound DIBE (Eq. 19).

Yi, Zhong, Liu et al., "Harmonizing Output Imbalance for semantic segmentation on extremely-imbalanced input data"
(``papers/dibe_output_imbalance.md``). The paper is binary (one sigmoid channel); here every class is treated
one-vs-rest, averaged over the selected classes, which reduces to the paper for one channel.

Reading: one convention in the whole package, ``alpha`` weighs false positives and ``beta`` false negatives (Salehi's
Tversky paper, MONAI's ``TverskyLoss``). The DIBE paper calls alpha the FP regulator but its Eq. 16 puts alpha on the
``y = 1, y_hat = 0`` branch (missed target pixels), and its experiments behave that way (Table 3, Appendix B, Fig. 8:
raising alpha lowers OII), so a paper setting ``(alpha_paper, beta_paper)`` is ``alpha = beta_paper,
beta = alpha_paper`` here; the paper's default (0.3, 0.7) is ``alpha=0.7, beta=0.3``, the defaults below.
``beta`` defaults to ``1 - alpha``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from monai.utils import LossReduction

from monai_imbalance.losses.one_vs_rest import (
    FocalFamily,
    OneVsRestLoss,
    RegionOnlyLoss,
    check_non_negative,
    check_positive,
    check_unit_interval,
    resolve_alpha_beta,
)
from monai_imbalance.losses.tversky import bounded_power, tversky_terms

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

    Numerics: from logits, ``log p`` and ``log(1 - p)`` come from the logits (exact where ``p`` rounds to 0 or 1,
    down to the smallest normal float: about 87 nats of logit gap in float32, beyond which the loss saturates), and
    the hand-derived backward is bounded, so saturated logits give a large finite loss and finite gradients.
    Probabilities (no activation, or ``other_act``) are clamped to ``[1e-7, 1 - 1e-7]`` inside the logarithms.
    NaN logits give a NaN loss.

    Example:
        >>> loss = DIBEDisLoss(sigmoid=True)  # the paper's binary setting: one foreground channel
        >>> loss(torch.randn(2, 1, 32, 32), (torch.rand(2, 1, 32, 32) > 0.9).float()).shape
        torch.Size([])
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        alpha: float = 0.7,
        beta: float | None = None,
        gamma: float = 2.0,
        lambda_: float = 0.75,
        reduction: LossReduction | str = LossReduction.MEAN,
        weight: Sequence[float] | float | int | torch.Tensor | None = None,
    ) -> None:
        """
        Args:
            include_background: if False, channel 0 (background) is excluded from the loss.
            to_onehot_y: convert ``target`` (class indices ``(B, 1, ...)``) to one-hot.
            sigmoid: apply a sigmoid to ``input`` (logits).
            softmax: apply a softmax to ``input`` (logits).
            other_act: another activation instead (the input is then read as probabilities after it).
            alpha: false-positive regulator, ``>= 0``.
            beta: false-negative regulator, ``>= 0``; default ``1 - alpha``.
            gamma: focusing exponent, ``>= 0``.
            lambda_: class weight of the target (``y = 1``); the background side gets ``1 - lambda_``. In ``[0, 1]``.
            reduction: ``"none"`` (the voxel map ``[B, C, H, W[, D]]``), ``"mean"`` or ``"sum"`` over all voxels and
                classes.
            weight: class weights (one per selected class, or one number) multiplying each class's map.

        Raises:
            ValueError: more than one activation, a bad ``reduction``, or a hyperparameter out of range.
        """
        super().__init__(include_background, to_onehot_y, sigmoid, softmax, other_act, reduction, weight=weight)
        self.alpha, self.beta = resolve_alpha_beta(alpha, beta)
        self.gamma = check_non_negative("gamma", gamma)
        self.lambda_ = check_unit_interval("lambda_", lambda_)

    @property
    def pixel_term(self) -> FocalFamily:
        """The per-pixel term this loss sums (shared with :class:`DIBELoss`)."""
        return FocalFamily(self.lambda_, self.gamma, self.alpha, self.beta)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input: ``(B, C, H, W[, D])`` logits (with ``sigmoid``/``softmax``) or probabilities.
            target: one-hot ``(B, C, ...)`` or class indices ``(B, 1, ...)`` with ``to_onehot_y``; read as hard
                labels (``target > 0.5``): Eq. 16 selects its branch by the label.

        Returns:
            the loss; with ``reduction="none"`` the voxel map ``[B, C, H, W[, D]]`` (``C`` without background when
            ``include_background=False``).

        Raises:
            ValueError: shapes that do not match (the message names both) or class indices out of range.
        """
        if self.reduction == LossReduction.NONE.value:
            terms = self._terms(input, target, self.pixel_term, want_map=True, want_counts=False)
            return self._weighted(terms.pixel, 1)
        terms = self._terms(input, target, self.pixel_term, want_map=False, want_counts=False)
        total = self._weighted(terms.pixel, 1).sum()
        if self.reduction == LossReduction.MEAN.value:
            return total / (terms.pixel.numel() * terms.num_voxels)
        return total


class DIBERegLoss(RegionOnlyLoss):
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

    Example:
        >>> loss = DIBERegLoss(softmax=True, to_onehot_y=True, include_background=False)
        >>> loss(torch.randn(2, 3, 16, 16), torch.randint(0, 3, (2, 1, 16, 16))).shape
        torch.Size([])
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        alpha: float = 0.7,
        beta: float | None = None,
        gamma: float = 1.5,
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
            alpha: weight of false positives, ``>= 0``.
            beta: weight of false negatives, ``>= 0``; default ``1 - alpha``.
            gamma: the loss is ``(-log Tv)^(1 / gamma)``, ``gamma > 0``.
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
        self.alpha, self.beta = resolve_alpha_beta(alpha, beta)
        self.gamma = check_positive("gamma", gamma)

    def region_loss(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
        """``(-log Tv)^(1 / gamma)`` from soft counts (float64 in, float64 out)."""
        num, _, gap = tversky_terms(tp, fp, fn, self.alpha, self.beta, self.smooth_nr, self.smooth_dr)
        return bounded_power(torch.log1p(gap / num), 1.0 / self.gamma)


class DIBELoss(OneVsRestLoss):
    """DIBE loss (DIBE paper Eq. 19): ``theta * mean_x DIBE_Dis + (1 - theta) * DIBE_Reg`` per image and class, with
    shared hyperparameters: ``lambda_`` and ``gamma_dis`` in :class:`DIBEDisLoss`, ``gamma_reg`` in
    :class:`DIBERegLoss`, the regulators ``alpha``, ``beta`` in both.

    The parts are built in ``__init__`` (``self.dis``, ``self.reg``) and can be called on their own; ``forward``
    computes the activation, the pixel term and the soft counts once for both.

    Reading: ``alpha`` weighs false positives, ``beta`` false negatives; the paper's (0.3, 0.7) is
    ``alpha=0.7, beta=0.3`` here (the default); ``beta`` defaults to ``1 - alpha``. The other defaults are the
    paper's: ``theta=0.5``, ``lambda_=0.75`` on the target, ``gamma_dis=2``, ``gamma_reg=1.5``.

    Numerics: as :class:`DIBEDisLoss` and :class:`DIBERegLoss`.

    Example:
        >>> loss = DIBELoss(softmax=True, to_onehot_y=True)
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
        gamma_dis: float = 2.0,
        gamma_reg: float = 1.5,
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
            theta: weight of the distribution part, ``1 - theta`` of the region part; in ``[0, 1]``.
            lambda_: class weight of the target in DIBE_Dis, in ``[0, 1]``.
            gamma_dis: focusing exponent of DIBE_Dis, ``>= 0``.
            gamma_reg: DIBE_Reg is ``(-log Tv)^(1 / gamma_reg)``, ``gamma_reg > 0``.
            alpha: false-positive regulator of both parts, ``>= 0``.
            beta: false-negative regulator of both parts, ``>= 0``; default ``1 - alpha``.
            reduction: ``"none"`` (``[B, C]``: ``theta`` times the spatial mean of DIBE_Dis plus ``1 - theta`` times
                DIBE_Reg; ``[C]`` with ``batch``), ``"mean"`` or ``"sum"`` of those.
            smooth_nr: added to the numerator of ``Tv``.
            smooth_dr: added to the denominator of ``Tv``.
            batch: sum the region counts over the batch (and average DIBE_Dis over it) before combining.
            weight: class weights (one per selected class, or one number) multiplying the per-class loss.

        Raises:
            ValueError: more than one activation, a bad ``reduction``, or a hyperparameter out of range.
        """
        super().__init__(
            include_background, to_onehot_y, sigmoid, softmax, other_act, reduction, smooth_nr, smooth_dr, batch, weight
        )
        self.theta = check_unit_interval("theta", theta)
        alpha, beta = resolve_alpha_beta(alpha, beta)
        common = {
            "include_background": include_background,
            "to_onehot_y": to_onehot_y,
            "sigmoid": sigmoid,
            "softmax": softmax,
            "other_act": other_act,
            "alpha": alpha,
            "beta": beta,
            "weight": weight,
        }
        self.dis = DIBEDisLoss(gamma=gamma_dis, lambda_=lambda_, reduction=reduction, **common)
        self.reg = DIBERegLoss(
            gamma=gamma_reg, reduction=reduction, smooth_nr=smooth_nr, smooth_dr=smooth_dr, batch=batch, **common
        )

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
        terms = self._terms(input, target, self.dis.pixel_term, want_map=False, want_counts=True)
        region = self.reg.region_loss(*self._region_counts(terms)).to(terms.pixel.dtype)
        return self._reduce(self.theta * self._pixel_mean(terms) + (1.0 - self.theta) * region)
