"""One-vs-rest terms shared by the DIBE losses and their baselines: per-pixel focal-family and exp-log CE terms and
soft TP / FP / FN counts, computed once per forward, and the base classes of those losses.

Every class ``c`` is read as a binary problem (one-vs-rest): ``p = P^c`` is the probability of the class, ``y = Y^c``
its hard label, ``q`` the probability of the true outcome (``p`` where ``y = 1``, ``1 - p`` where ``y = 0``) and
``a = 1 - q``. With ``y_hat = (p >= 0.5)`` selecting the branch (never differentiated), the pixel terms are

- :class:`FocalFamily` (DIBE paper Eq. 16; Eq. 3 focal with ``alpha = beta = 0``; Eq. 2 WBCE with also ``gamma = 0``)::

      TP (y=1, y_hat=1): -lambda (1 - p)^gamma log p
      FN (y=1, y_hat=0): -lambda (1 + beta) (1 - p^(1 + beta))^gamma log p
      TN (y=0, y_hat=0): -(1 - lambda) p^gamma log(1 - p)
      FP (y=0, y_hat=1): -(1 - lambda) (1 + alpha) (1 - (1 - p)^(1 + alpha))^gamma log(1 - p)

- :class:`ExpLogCE` (Eq. 11): ``lambda (-log p)^gamma`` where ``y = 1``, ``(1 - lambda) (-log(1 - p))^gamma``
  where ``y = 0``.

Reading: one convention in the whole package, ``alpha`` weighs false positives and ``beta`` false negatives (Salehi's
Tversky paper, MONAI's ``TverskyLoss``). The DIBE paper calls alpha the FP regulator but its Eq. 16 puts alpha on the
``y = 1, y_hat = 0`` branch (missed target pixels), and its experiments behave that way (Table 3, Appendix B, Fig. 8:
raising alpha lowers OII), so a paper setting ``(alpha_paper, beta_paper)`` is ``alpha = beta_paper,
beta = alpha_paper`` here; the paper's default (0.3, 0.7) is ``alpha=0.7, beta=0.3``, every loss's default.
``beta`` defaults to ``1 - alpha``.

:func:`one_vs_rest_terms` returns the pixel term (per image and class sums, or the voxel map) and the soft counts
``tp = sum p y``, ``fp = sum p (1 - y)``, ``fn = sum (1 - p) y`` per image and class, from which the region losses are
built. :func:`reference_terms` is the definition, in plain autograd ops, for any activation; from logits with
``sigmoid=True`` or ``softmax=True`` the same values and gradients come from the fused kernels of
:mod:`monai_imbalance.losses._one_vs_rest_kernels` (tested against the definition), which are several times faster.

Numerics: logarithms come from the logits (stable ``log_softmax`` / ``logsigmoid``), so a confident wrong logit gives a
large finite loss and a finite gradient; probabilities (no activation, or ``other_act``) are clamped to
``[1e-7, 1 - 1e-7]`` inside the logarithms. NaN or infinite inputs give a NaN loss and NaN counts (the package's NaN
policy, :mod:`monai_imbalance.losses.base`; a ``-inf`` logit would otherwise read as ``p = 0``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from monai.utils import LossReduction

from monai_imbalance.losses._one_vs_rest_kernels import KernelTerm, fused_terms
from monai_imbalance.losses.base import SegmentationLoss
from monai_imbalance.losses.utils import (
    activate,
    arguments_for,
    check_input_shape,
    check_same_shape,
    log_probabilities,
    plain_tensor,
    target_to_onehot,
)

__all__ = [
    "FocalFamily",
    "ExpLogCE",
    "OneVsRestTerms",
    "OneVsRestLoss",
    "RegionOnlyLoss",
    "PixelRegionLoss",
    "one_vs_rest_terms",
    "reference_terms",
    "resolve_alpha_beta",
    "check_unit_interval",
    "check_non_negative",
    "check_positive",
]


@dataclass(frozen=True)
class FocalFamily:
    """DIBE_Dis pixel term (Eq. 16) with ``lambda_`` on the target, focusing ``gamma`` and the regulators
    ``alpha`` (false positives) and ``beta`` (false negatives); focal loss (Eq. 3) when ``alpha = beta = 0``,
    weighted BCE (Eq. 2) when also ``gamma = 0``."""

    lambda_: float
    gamma: float
    alpha: float = 0.0
    beta: float = 0.0


@dataclass(frozen=True)
class ExpLogCE:
    """Cross-entropy term of the exponential-logarithmic loss (Eq. 11): ``w_y (-log q)^gamma``."""

    lambda_: float
    gamma: float


PixelTerm = FocalFamily | ExpLogCE


class OneVsRestTerms(NamedTuple):
    """What a one-vs-rest loss is built from. ``pixel``: ``None``, the pixel term summed over space ``[B, C]``, or
    its voxel map ``[B, C, *spatial]``; ``tp``, ``fp``, ``fn``: soft counts ``[B, C]`` (``None`` unless asked);
    ``num_voxels``: spatial size, to turn sums into means. ``C`` counts the selected classes only."""

    pixel: torch.Tensor | None
    tp: torch.Tensor | None
    fp: torch.Tensor | None
    fn: torch.Tensor | None
    num_voxels: int


# --------------------------------------------------------------------------------------------------------------------
# the definition (autograd) and the dispatch to the kernels


def reference_terms(
    input: torch.Tensor, target: torch.Tensor, term: PixelTerm | None,
    sigmoid: bool = False, softmax: bool = False, other_act: Callable | None = None, to_onehot_y: bool = False,
    include_background: bool = True, want_map: bool = False, want_counts: bool = True,
) -> OneVsRestTerms:
    """The definition with plain autograd ops: what the fused kernels compute (their test oracle), for any activation.

    Logarithms come from :func:`~monai_imbalance.losses.utils.log_probabilities` (stable for logits; probabilities
    clamped to ``[1e-7, 1 - 1e-7]``), the soft counts from the activated probabilities themselves.
    """
    check_input_shape(input)
    n_pred_ch = input.shape[1]
    probs = activate(input, sigmoid, softmax, other_act)
    if other_act is not None:
        log_p, log_1mp = log_probabilities(probs)
    else:
        log_p, log_1mp = log_probabilities(input, sigmoid=sigmoid, softmax=softmax)
    target = target_to_onehot(target, n_pred_ch, to_onehot_y)
    if not include_background and n_pred_ch > 1:
        probs, log_p, log_1mp, target = probs[:, 1:], log_p[:, 1:], log_1mp[:, 1:], target[:, 1:]
    check_same_shape(probs, target)
    y = (target > 0.5).to(probs.dtype)
    lo, hi = torch.aminmax(input.detach())
    guard = lo * 0.0 + hi * 0.0  # NaN policy: 0, or NaN when any input value is not finite
    probs = probs + guard.to(probs.dtype)
    log_p, log_1mp = log_p + guard.to(log_p.dtype), log_1mp + guard.to(log_1mp.dtype)
    num_voxels = probs[0, 0].numel()
    pixel = None
    if term is not None:
        pixel = _reference_pixel(log_p, log_1mp, probs.detach() >= 0.5, y, term)
        if not want_map:
            pixel = pixel.sum(tuple(range(2, pixel.ndim)))
    tp = fp = fn = None
    if want_counts:
        axes = tuple(range(2, probs.ndim))
        tp = (probs * y).sum(axes)
        fp = (probs * (1.0 - y)).sum(axes)
        fn = ((1.0 - probs) * y).sum(axes)
    return OneVsRestTerms(pixel, tp, fp, fn, num_voxels)


def _reference_pixel(log_p, log_1mp, y_hat, y, term: PixelTerm) -> torch.Tensor:
    """Eq. 16 / Eq. 11 elementwise with ``torch.where`` over the four branches (autograd does the rest);
    ``y_hat = p >= 0.5`` only selects the branch."""
    positive = y > 0.5
    log_q = torch.where(positive, log_p, log_1mp)
    log_a = torch.where(positive, log_1mp, log_p)
    w = torch.where(positive, log_q.new_tensor(term.lambda_), log_q.new_tensor(1.0 - term.lambda_))
    if isinstance(term, ExpLogCE):
        nlq = (-log_q).clamp_min(0.0)
        if term.gamma == 1.0:
            return w * nlq
        # the derivative of t^gamma is unbounded at t = 0 when gamma < 1: differentiate t^gamma = exp(gamma log t)
        # only where t > 0 (t = 0 only for a clamped probability, whose gradient the clamp already stops)
        safe = nlq.clamp_min(torch.finfo(nlq.dtype).tiny)
        return w * torch.where(nlq > 0, torch.exp(term.gamma * torch.log(safe)), torch.zeros_like(nlq))
    correct = y_hat == positive
    a = torch.exp(log_a)
    m = torch.exp(term.gamma * log_a) if term.gamma != 0 else torch.ones_like(a)
    if term.alpha != 0.0 or term.beta != 0.0:
        r = torch.where(positive, log_q.new_tensor(term.beta), log_q.new_tensor(term.alpha))
        v = (1.0 - torch.exp((1.0 + r) * log_q)).clamp_min(0.5)  # >= 0.5 wherever the wrong branch is used
        m = torch.where(correct, m, (1.0 + r) * v**term.gamma)
    return -w * m * log_q


def one_vs_rest_terms(
    input: torch.Tensor, target: torch.Tensor, term: PixelTerm | None,
    sigmoid: bool = False, softmax: bool = False, other_act: Callable | None = None, to_onehot_y: bool = False,
    include_background: bool = True, want_map: bool = False, want_counts: bool = True, fused: bool = True,
) -> OneVsRestTerms:
    """Pixel term and soft counts of ``input`` against ``target`` in MONAI's conventions.

    Args:
        input: ``(B, C, H, W[, D])`` logits (``sigmoid``/``softmax``) or probabilities.
        target: one-hot ``(B, C, ...)`` or, with ``to_onehot_y``, class indices ``(B, 1, ...)``; read as hard labels
            (``y = target > 0.5``): Eq. 16 selects its branch by the label.
        term: the pixel term, or ``None`` for counts only.
        want_map: pixel term as the voxel map ``(B, C', ...)`` instead of per image and class sums ``(B, C')``.
        want_counts: also return ``tp``, ``fp``, ``fn``.
        fused: use the fused kernels where they apply (logits with ``sigmoid`` or ``softmax``); ``False`` forces
            :func:`reference_terms`.
    """
    check_input_shape(input)
    input, target = plain_tensor(input), plain_tensor(target)
    if fused and other_act is None and (sigmoid or (softmax and input.shape[1] > 1)):
        parts = fused_terms(
            input, target, _kernel_term(term), sigmoid, softmax, to_onehot_y, include_background, want_map, want_counts
        )
        if parts is not None:
            return OneVsRestTerms(*parts)
    return reference_terms(**arguments_for(reference_terms, locals()))  # input, target: the plain tensors


def _kernel_term(term: PixelTerm | None) -> KernelTerm | None:
    if term is None:
        return None
    if isinstance(term, ExpLogCE):
        return KernelTerm(term.lambda_, term.gamma, 0.0, 0.0, exp_log=True)
    return KernelTerm(term.lambda_, term.gamma, term.alpha, term.beta, exp_log=False)


# --------------------------------------------------------------------------------------------------------------------
# base classes of the one-vs-rest losses


def check_unit_interval(name: str, value: float) -> float:
    """``value`` as float when in ``[0, 1]``, else ``ValueError`` naming it."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}.")
    return value


def check_non_negative(name: str, value: float) -> float:
    value = float(value)
    if not value >= 0.0:  # also rejects NaN
        raise ValueError(f"{name} must be >= 0, got {value}.")
    return value


def check_positive(name: str, value: float) -> float:
    value = float(value)
    if not value > 0.0:
        raise ValueError(f"{name} must be > 0, got {value}.")
    return value


def resolve_alpha_beta(alpha: float, beta: float | None) -> tuple[float, float]:
    """``(alpha, beta)`` validated, ``beta = 1 - alpha`` when not given (the method readings' single convention)."""
    alpha = check_non_negative("alpha", alpha)
    beta = 1.0 - alpha if beta is None else beta
    return alpha, check_non_negative("beta", beta)


class OneVsRestLoss(SegmentationLoss):
    """Shared plumbing of the DIBE losses and their baselines: class weights, the call into
    :func:`one_vs_rest_terms`, the region counts and the reductions. Not a loss by itself.

    ``forward(input, target)`` of every one-vs-rest loss takes ``input`` ``(B, C, H, W[, D])``, logits (with
    ``sigmoid``/``softmax``) or probabilities, and ``target``, one-hot ``(B, C, ...)`` or class indices ``(B, 1, ...)``
    with ``to_onehot_y``, read as hard labels (``target > 0.5``); mismatched shapes (both named), class indices that
    are not whole numbers and class indices out of range raise a ``ValueError``. One-hot, multi-label and soft
    targets (and the mask of a one-channel output) are documented as thresholded at 0.5 and are not rejected.
    2-D and 3-D alike.

    Args:
        include_background, to_onehot_y, sigmoid, softmax, other_act: as
            :class:`~monai_imbalance.losses.base.SegmentationLoss`; with ``softmax`` the class probabilities are read
            one-vs-rest (``y_hat = p >= 0.5``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``; ``"none"`` gives ``[B, C]`` per image and selected class
            (``[C]`` with ``batch``) unless the loss says otherwise.
        smooth_nr: added to the numerator of a region index (Tversky, Dice).
        smooth_dr: added to the denominator of a region index.
        batch: sum the soft counts over the batch before forming the region index (and average the pixel term over
            it).
        weight: class weights, one per selected class (background excluded when ``include_background=False``) or
            one number, multiplying each class's loss. A registered buffer.

    Raises:
        ValueError: a negative, non-finite or more than 1-D ``weight``; the argument errors of
            :class:`~monai_imbalance.losses.base.SegmentationLoss`.
    """

    def __init__(
        self, include_background: bool = True, to_onehot_y: bool = False, sigmoid: bool = False, softmax: bool = False,
        other_act: Callable | None = None,
        reduction: LossReduction | str = LossReduction.MEAN, smooth_nr: float = 1e-5, smooth_dr: float = 1e-5,
        batch: bool = False, weight: Sequence[float] | float | int | torch.Tensor | None = None,
    ) -> None:
        super().__init__(**arguments_for(super().__init__, locals()))
        self.smooth_nr = float(smooth_nr)
        self.smooth_dr = float(smooth_dr)
        self.batch = batch
        if weight is not None:
            weight = torch.as_tensor(weight, dtype=torch.float32)
            if weight.ndim > 1 or bool((weight < 0).any()) or not bool(torch.isfinite(weight).all()):
                raise ValueError(f"weight must be a non-negative number or 1-D sequence (one per class), got {weight}.")
        self.register_buffer("class_weight", weight)
        self.class_weight: torch.Tensor | None

    def _terms(
        self, input: torch.Tensor, target: torch.Tensor, term: PixelTerm | None, want_map: bool, want_counts: bool
    ) -> OneVsRestTerms:
        return one_vs_rest_terms(input, target, term, **self.input_args(), want_map=want_map, want_counts=want_counts)

    def _weighted(self, values: torch.Tensor, channel_dim: int) -> torch.Tensor:
        """``values`` times the class weight along ``channel_dim`` (``ValueError`` on a length mismatch)."""
        if self.class_weight is None:
            return values
        w = self.class_weight.to(device=values.device, dtype=values.dtype)
        n = values.shape[channel_dim]
        if w.ndim == 1:
            if w.numel() != n:
                raise ValueError(
                    f"weight has {w.numel()} values but the loss has {n} classes"
                    f"{'' if self.include_background else ' (background excluded)'}."
                )
            w = w.view((n,) + (1,) * (values.ndim - channel_dim - 1))
        return values * w

    def _region_counts(self, terms: OneVsRestTerms) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``tp, fp, fn`` as float64 ``[B, C]``, or ``[C]`` summed over the batch when ``batch``."""
        tp, fp, fn = (v.double() for v in (terms.tp, terms.fp, terms.fn))
        if self.batch:
            tp, fp, fn = tp.sum(0), fp.sum(0), fn.sum(0)
        return tp, fp, fn

    def _pixel_mean(self, terms: OneVsRestTerms) -> torch.Tensor:
        """Spatial mean of the pixel term per image and class ``[B, C]`` (``[C]`` over the batch too with ``batch``)."""
        pixel = terms.pixel
        if self.batch:
            return pixel.sum(0) / (pixel.shape[0] * terms.num_voxels)
        return pixel / terms.num_voxels

    def _reduce(self, values: torch.Tensor) -> torch.Tensor:
        """Class weights, then ``none`` (as is), ``mean`` or ``sum``."""
        return self.apply_reduction(self._weighted(values, values.ndim - 1))


class RegionOnlyLoss(OneVsRestLoss):
    """A loss of soft counts only (no per-pixel term): subclasses define ``region_loss(tp, fp, fn)``, float64 in and
    out, one value per image and class (per class with ``batch``). Not a loss by itself; arguments as
    :class:`OneVsRestLoss`."""

    def region_loss(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define region_loss(tp, fp, fn).")

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of ``input`` against ``target`` (see :class:`OneVsRestLoss`), reduced as ``reduction`` says."""
        terms = self._terms(input, target, None, want_map=False, want_counts=True)
        loss = self.region_loss(*self._region_counts(terms)).to(input.dtype)
        return self._reduce(loss)


class PixelRegionLoss(OneVsRestLoss):
    """``theta * mean_x pixel + (1 - theta) * region`` per image and class: a compound of a one-vs-rest pixel term and a
    region term on the soft counts, both from one pass over the input. Not a loss by itself: subclasses set
    ``theta``, ``pixel_term`` and define ``region_loss(tp, fp, fn)`` (float64 in and out); arguments as
    :class:`OneVsRestLoss`."""

    theta: float
    pixel_term: PixelTerm

    def region_loss(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define region_loss(tp, fp, fn).")

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of ``input`` against ``target`` (see :class:`OneVsRestLoss`), reduced as ``reduction`` says."""
        terms = self._terms(input, target, self.pixel_term, want_map=False, want_counts=True)
        region = self.region_loss(*self._region_counts(terms)).to(terms.pixel.dtype)
        return self._reduce(self.theta * self._pixel_mean(terms) + (1.0 - self.theta) * region)
