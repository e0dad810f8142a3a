"""One-vs-rest terms shared by the DIBE losses and their baselines: per-pixel focal-family and exp-log CE terms,
soft TP / FP / FN counts, computed once per forward with a fused, numerically stable forward and backward.

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

Reading: one convention in the whole package, ``alpha`` weighs false positives and ``beta`` false negatives, so the
paper's setting ``(alpha_paper, beta_paper)`` is ``alpha = beta_paper, beta = alpha_paper`` here (its default
(0.3, 0.7) is ``alpha=0.7, beta=0.3``).

:func:`one_vs_rest_terms` returns the pixel term (per image and class sums, or the voxel map) and the soft counts
``tp = sum p y``, ``fp = sum p (1 - y)``, ``fn = sum (1 - p) y`` per image and class, from which the region losses are
built. From logits with ``sigmoid=True`` or ``softmax=True`` it runs a fused kernel (a ``torch.autograd.Function``
with a hand-derived backward, processed in cache-sized chunks on CPU); with ``other_act`` or probability inputs it
runs :func:`reference_terms`, the plain autograd definition the fused kernel is tested against.

Numerics: logarithms come from the logits (``log p = x - logsumexp``; ``log(1 - p)`` from the sum of the other
classes' exponentials, exact even where ``1 - p`` is below float resolution, down to the smallest normal float), so a
confident wrong logit gives a large finite loss and a finite gradient. The backward works on the one-vs-rest logit
``l_c = log p_c - log(1 - p_c)``, whose derivative of every term above is bounded, so gradients stay finite for
saturated logits. NaN or infinite logits give a NaN loss (the package's NaN policy, ``losses/utils.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

from monai_imbalance.losses.utils import (
    activate,
    check_activation_args,
    check_input_shape,
    check_reduction,
    check_same_shape,
    log_probabilities,
    reduce_loss,
    target_to_onehot,
)

__all__ = [
    "FocalFamily",
    "ExpLogCE",
    "OneVsRestTerms",
    "OneVsRestLoss",
    "one_vs_rest_terms",
    "reference_terms",
    "resolve_alpha_beta",
]

# elements per chunk on CPU: a chunk's dozen intermediate buffers stay in the last-level cache
_CPU_CHUNK = 1 << 18
# added to 1 - p of a unique maximal class before inverting, so that its (separately handled) coupling term is 0
_BIG = 1e30
# below this mass of the non-maximal classes, their shares e_j / others are formed before scaling (no overflow)
_REST_FLOOR = 1e-30


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
# elementwise terms. Each returns (loss, dloss/dl) with l the one-vs-rest logit of the class.


def _pow(base: torch.Tensor, exponent: float) -> torch.Tensor:
    if exponent == 0.0:
        return torch.ones_like(base)
    if exponent == 1.0:
        return base
    if exponent == 2.0:
        return base * base
    return torch.pow(base, exponent)


def _general_terms(
    log_p: torch.Tensor,
    log_1mp: torch.Tensor,
    p: torch.Tensor,
    p1m: torch.Tensor,
    y: torch.Tensor | bool,
    term: PixelTerm,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and its derivative in the one-vs-rest logit for any label and branch (plain tensor ops, no autograd).

    ``y`` is a float tensor of 0/1 or a Python bool for a whole set of elements. With ``z = s l`` (``s = +1`` where
    ``y = 1``, else -1) the logit of the true outcome, ``dq/dz = q a`` and ``d log q/dz = a``, which gives
    ``dL/dz = -w (M a - N log q)`` with ``M`` the modulating factor and ``N = -dM/dz / a``; every factor is bounded.
    Branches are blended arithmetically (both are finite everywhere), not with ``torch.where``.
    """
    if isinstance(y, bool):
        log_q, q, a = (log_p, p, p1m) if y else (log_1mp, p1m, p)
        sign_w = term.lambda_ if y else term.lambda_ - 1.0  # s * w
        w = term.lambda_ if y else 1.0 - term.lambda_
        wrong = (log_p < log_1mp) if y else (log_p >= log_1mp)  # y_hat != y, y_hat = (p >= 1/2)
        r = None if isinstance(term, ExpLogCE) else (term.beta if y else term.alpha)
    else:
        log_q = torch.lerp(log_1mp, log_p, y)
        q = torch.lerp(p1m, p, y)
        a = torch.lerp(p, p1m, y)
        sign_w = y + (term.lambda_ - 1.0)
        w = y * (2.0 * term.lambda_ - 1.0) + (1.0 - term.lambda_)
        wrong = (log_p >= log_1mp) != (y > 0.5)
        r = None if isinstance(term, ExpLogCE) else y * (term.beta - term.alpha) + term.alpha
    if isinstance(term, ExpLogCE):
        nlq = (-log_q).clamp_min_(0.0)
        powered = _pow(nlq, term.gamma)
        # a / (-log q) lies in (0, 1]; 1 in the limit q -> 1 where both vanish
        ratio = torch.div(a, nlq.clamp_min(torch.finfo(nlq.dtype).tiny)).clamp_max_(1.0)
        return powered * w, ratio.mul_(powered).mul_(sign_w).mul_(-term.gamma)
    gamma = term.gamma
    m = _pow(a, gamma)
    n = q * m if gamma == 1.0 else (q * m).mul_(gamma)
    if term.alpha != 0.0 or term.beta != 0.0:
        wrong = wrong.to(log_q.dtype)
        one_r = r + 1.0
        u = torch.exp(log_q * one_r)
        # wrong branch: q < 1/2 so v >= 1 - 0.5^(1 + r) >= 1/2; the clamp only keeps the unused elements finite
        v = torch.rsub(u, 1.0).clamp_min_(0.5)
        v_g1 = _pow(v, gamma - 1.0)
        m_bad = (v * v_g1).mul_(one_r)
        n_bad = (u * a).mul_(v_g1).mul_(one_r * one_r * gamma)
        m = torch.lerp(m, m_bad, wrong)
        n = torch.lerp(n, n_bad, wrong)
    loss = (m * log_q).mul_(w).neg_()
    dl = (m * a).sub_(n.mul_(log_q)).mul_(sign_w).neg_()
    return loss, dl


def _true_negative_terms(
    p: torch.Tensor, p1m: torch.Tensor, log_1mp: torch.Tensor, term: PixelTerm
) -> tuple[torch.Tensor, torch.Tensor]:
    """``_general_terms`` for ``y = 0, y_hat = 0`` on whole arrays, in few passes: ``(loss_map, dloss/dl)``."""
    lam1 = 1.0 - term.lambda_
    if isinstance(term, ExpLogCE):
        if term.gamma == 1.0:
            return log_1mp * (-lam1), p * lam1
        nlq = (-log_1mp).clamp_min_(0.0)
        powered = _pow(nlq, term.gamma)
        ratio = torch.div(p, nlq.clamp_min(torch.finfo(p.dtype).tiny)).clamp_max_(1.0)
        return powered * lam1, ratio.mul_(powered).mul_(lam1 * term.gamma)
    gamma = term.gamma
    dl = torch.addcmul(p, p1m, log_1mp, value=-gamma)  # p - gamma (1 - p) log(1 - p)
    if gamma == 0.0:
        return log_1mp * (-lam1), dl.mul_(lam1)
    m = _pow(p, gamma)
    loss = torch.mul(m, log_1mp).mul_(-lam1)
    dl.mul_(m).mul_(lam1)
    return loss, dl


# --------------------------------------------------------------------------------------------------------------------
# fused softmax kernel


def _chunks(batch: int, channels: int, voxels: int, device: torch.device) -> list[tuple[int, int, int, int]]:
    """``(b0, b1, n0, n1)`` slices of a ``[B, C, N]`` tensor: cache-sized on CPU, one slice elsewhere."""
    if device.type != "cpu":
        return [(0, batch, 0, voxels)]
    per_image = channels * voxels
    if per_image >= _CPU_CHUNK:
        step = max(1, _CPU_CHUNK // channels)
        return [(b, b + 1, n, min(n + step, voxels)) for b in range(batch) for n in range(0, voxels, step)]
    images = max(1, _CPU_CHUNK // per_image)
    return [(b, min(b + images, batch), 0, voxels) for b in range(0, batch, images)]


def _softmax_forward_chunk(x: torch.Tensor, t: torch.Tensor, term: PixelTerm | None, want_map: bool):
    """One chunk ``x [b, C, k]`` of logits with labels ``t [b, 1, k]``.

    Returns ``(pixel map or per-class sums, tp, sp, saved)``; ``sp`` is ``sum p`` per class. Only the true class
    (one per pixel) can be TP/FN and only a maximal class can be FP, so the true-negative formula runs on the whole
    chunk and the two per-pixel sets (true class ``A``, maximal classes ``B``) are corrected at 1/C of the cost.
    """
    tiny = torch.finfo(x.dtype).tiny
    b, c, k = x.shape
    z = x - x.amax(1, keepdim=True)
    z_true = z.gather(1, t)  # logit gap of the true class, 0 when it is a maximum
    e = z.exp_()
    is_max = torch.floor(e)  # 1 exactly at the maxima (e == 1), else 0
    e_rest = e - is_max  # exponentials of the non-maximal classes (0 at the maxima)
    rest = e_rest.sum(1, keepdim=True)
    n_max = is_max.sum(1, keepdim=True)
    s = rest + n_max
    inv_s = s.reciprocal()
    p = e.mul_(inv_s)  # e itself is not needed any more
    e_true = torch.exp(z_true)
    p_true = e_true * inv_s
    tp = torch.zeros(b, c, dtype=x.dtype, device=x.device).scatter_add_(1, t.view(b, k), p_true.view(b, k))
    sp = p.sum(2)
    if term is None:
        return None, tp, sp, (p, t, p_true)

    # mass of the classes other than one maximum (1 - p_max = others / s), exact for any gap down to `tiny`
    others = rest + (n_max - 1.0)
    log_s = torch.log1p(others)  # s = 1 + others: log1p keeps log p_max = -log s accurate as p_max -> 1
    others.clamp_min_(tiny)
    unique = (n_max == 1).to(x.dtype)
    p1m_max = others * inv_s
    log_1mp_max = others.log() - log_s
    # 1 - p and log(1 - p): from p where p <= 1/2 (every non-maximal class), from `others` at the maxima
    p_rest = e_rest.mul_(inv_s)  # p with the maxima zeroed (e_rest is rescaled in place)
    log_1mp = torch.neg(p_rest).log1p_().addcmul_(is_max, log_1mp_max)
    p1m = torch.rsub(p_rest, 1.0).addcmul_(is_max, p1m_max - 1.0)
    # W = 1 / (1 - p), made 0 at a unique maximum, whose coupling the backward handles on its own
    w_inv = torch.addcmul(p1m, is_max, unique * _BIG).reciprocal_()
    loss, dl = _true_negative_terms(p, p1m, log_1mp, term)

    # B: the maximal classes read as y = 0 (FP where p >= 0.5); the true class among them is overwritten by A
    p_max = inv_s
    loss_b, dl_b = _general_terms(-log_s, log_1mp_max, p_max, p1m_max, False, term)
    loss_tn_b, dl_tn_b = _true_negative_terms(p_max, p1m_max, log_1mp_max, term)
    d_loss_b, d_dl_b = loss_b - loss_tn_b, dl_b - dl_tn_b
    if bool(d_dl_b.any()) or bool(d_loss_b.any()):
        dl.addcmul_(is_max, d_dl_b)
        loss.addcmul_(is_max, d_loss_b)

    # A: the true class, y = 1
    true_is_max = z_true == 0
    true_max = true_is_max.to(x.dtype)
    p1m_true = torch.lerp(torch.rsub(p_true, 1.0), p1m_max, true_max)
    log_1mp_true = torch.lerp(torch.log1p(-p_true.clamp_max(0.5)), log_1mp_max, true_max)
    loss_a, dl_a = _general_terms(z_true - log_s, log_1mp_true, p_true, p1m_true, True, term)
    loss_tn_a, _ = _true_negative_terms(p_true, p1m_true, log_1mp_true, term)
    loss_old_a = torch.addcmul(loss_tn_a, true_max, d_loss_b)
    dl.scatter_(1, t, dl_a)
    dl_max = torch.lerp(dl_b, dl_a, true_max).mul_(unique)  # dL/dl of a unique maximum, else 0
    if want_map:
        out = loss.scatter_(1, t, loss_a)
    else:
        out = loss.sum(2).scatter_add_(1, t.view(b, k), (loss_a - loss_old_a).view(b, k))
    return out, tp, sp, (p, t, p_true, dl, w_inv, p_rest, is_max, p1m_max, unique, dl_max)


def _softmax_backward_chunk(saved, g_pixel, g_tp, g_sp, want_map: bool) -> torch.Tensor:
    """Gradient of one chunk's logits. ``g_pixel``: ``[b, C, k]`` (map), ``[b, C]`` (sums) or ``None``; ``g_tp``,
    ``g_sp``: ``[b, C]`` or ``None``. With ``d_c = dL/dl_c``, ``W_c = 1 / (1 - p_c)`` and a unique maximum ``m``
    (``W_m`` set to 0): ``dx_j = d_j W_j - p_j sum_c d_c W_c - d_m e_j / others + [j = m] d_m``, plus the softmax
    Jacobian of the region gradient ``g_p = g_sp + y g_tp``: ``p_j g_p,j - p_j sum_c p_c g_p,c``."""
    p, t, p_true = saved[:3]
    b, _, k = p.shape
    grad = None
    pdot = None
    if g_pixel is not None and len(saved) > 3:
        dl, w_inv, p_rest, is_max, p1m_max, unique, dl_max = saved[3:]
        if want_map:
            g_dl = dl * g_pixel
            g_max = (is_max * g_dl).sum(1, keepdim=True).mul_(unique)
        else:
            g_dl = dl * g_pixel.unsqueeze(2)
            g_max = dl_max * torch.bmm(g_pixel.unsqueeze(1), is_max)
        grad = g_dl.mul_(w_inv)
        pdot = grad.sum(1, keepdim=True)
        # the unique maximum's term reaches the other classes through p_j / (1 - p_m) (<= 1)
        if bool(p1m_max.min() >= _REST_FLOOR):
            grad.addcmul_(p_rest, g_max / p1m_max, value=-1.0)
        else:  # g / (1 - p_m) could overflow: form the bounded shares first
            grad.addcmul_(p_rest / p1m_max, g_max, value=-1.0)
        grad.addcmul_(is_max, g_max)
    g_true = None
    if g_sp is not None:
        region = torch.bmm(g_sp.unsqueeze(1), p)
        pdot = region if pdot is None else pdot.add_(region)
    if g_tp is not None:
        g_true = p_true * g_tp.gather(1, t.view(b, k)).view(b, 1, k)
        pdot = g_true if pdot is None else pdot.add_(g_true)
    if grad is None:
        grad = torch.zeros_like(p) if pdot is None else torch.mul(p, pdot).neg_()
    elif pdot is not None:
        grad.addcmul_(p, pdot, value=-1.0)
    if g_sp is not None:
        grad.addcmul_(p, g_sp.unsqueeze(2))
    if g_true is not None:
        grad.scatter_add_(1, t, g_true)
    return grad


class _SoftmaxOneVsRest(torch.autograd.Function):
    """Softmax logits ``[B, C, N]`` and labels ``[B, 1, N]`` -> ``(pixel, tp, sp, sy)`` over channels ``first:``."""

    @staticmethod
    def forward(ctx, x, labels, term, want_map, first):  # type: ignore[override]
        ctx.set_materialize_grads(False)
        bsz, ch, voxels = x.shape
        pixel = None
        if term is not None:
            pixel = x.new_empty(x.shape) if want_map else x.new_zeros(bsz, ch)
        tp = x.new_zeros(bsz, ch)
        sp = x.new_zeros(bsz, ch)
        saved = []
        for b0, b1, n0, n1 in _chunks(bsz, ch, voxels, x.device):
            out, tp_c, sp_c, keep = _softmax_forward_chunk(
                x[b0:b1, :, n0:n1], labels[b0:b1, :, n0:n1], term, want_map
            )
            if pixel is not None:
                if want_map:
                    pixel[b0:b1, :, n0:n1] = out
                else:
                    pixel[b0:b1] += out
            tp[b0:b1] += tp_c
            sp[b0:b1] += sp_c
            saved.append(((b0, b1, n0, n1), keep))
        ctx.saved_chunks = saved
        ctx.meta = (x.shape, want_map, first)
        sy = x.new_zeros(bsz, ch).scatter_add_(1, labels.view(bsz, voxels), x.new_ones(1, 1).expand(bsz, voxels))
        ctx.mark_non_differentiable(sy)
        if pixel is None:
            pixel = x.new_zeros(())
            ctx.mark_non_differentiable(pixel)
        else:
            pixel = pixel[:, first:]
        return pixel, tp[:, first:], sp[:, first:], sy[:, first:]

    @staticmethod
    def backward(ctx, g_pixel, g_tp, g_sp, _g_sy):  # type: ignore[override]
        shape, want_map, first = ctx.meta
        saved = ctx.saved_chunks
        g_pixel, g_tp, g_sp = (_pad_channels(g, first) for g in (g_pixel, g_tp, g_sp))
        if g_pixel is not None and g_pixel.ndim == 0:
            g_pixel = None
        grad = None
        for (b0, b1, n0, n1), keep in saved:
            gp = None
            if g_pixel is not None:
                gp = g_pixel[b0:b1, :, n0:n1] if want_map else g_pixel[b0:b1]
            part = _softmax_backward_chunk(
                keep, gp, None if g_tp is None else g_tp[b0:b1], None if g_sp is None else g_sp[b0:b1], want_map
            )
            if grad is None:
                grad = part.new_empty(shape)
            grad[b0:b1, :, n0:n1] = part
        return grad, None, None, None, None


def _pad_channels(g: torch.Tensor | None, first: int) -> torch.Tensor | None:
    """Zeros in front for the dropped background channel."""
    if g is None or first == 0 or g.ndim == 0:
        return g
    return torch.cat([g.new_zeros(g.shape[0], first, *g.shape[2:]), g], 1)


# --------------------------------------------------------------------------------------------------------------------
# fused sigmoid kernel (channels independent)


class _SigmoidOneVsRest(torch.autograd.Function):
    """Sigmoid logits ``[B, C, N]`` and binary targets ``[B, C, N]`` -> ``(pixel, tp, sp, sy)``."""

    @staticmethod
    def forward(ctx, x, y, term, want_map):  # type: ignore[override]
        ctx.set_materialize_grads(False)
        bsz, ch, voxels = x.shape
        pixel = None
        if term is not None:
            pixel = x.new_empty(x.shape) if want_map else x.new_zeros(bsz, ch)
        tp = x.new_zeros(bsz, ch)
        sp = x.new_zeros(bsz, ch)
        saved = []
        for b0, b1, n0, n1 in _chunks(bsz, ch, voxels, x.device):
            xc, yc = x[b0:b1, :, n0:n1], y[b0:b1, :, n0:n1]
            p = torch.sigmoid(xc)
            p1m = torch.sigmoid(-xc)
            tp[b0:b1] += (p * yc).sum(2)
            sp[b0:b1] += p.sum(2)
            dl = None
            if term is not None:
                softplus = torch.exp(-xc.abs()).log1p_()  # log(1 + e^-|x|)
                log_p = xc.clamp_max(0.0).sub_(softplus)
                log_1mp = xc.clamp_min(0.0).add_(softplus).neg_()
                loss, dl = _general_terms(log_p, log_1mp, p, p1m, yc, term)
                if want_map:
                    pixel[b0:b1, :, n0:n1] = loss
                else:
                    pixel[b0:b1] += loss.sum(2)
            saved.append(((b0, b1, n0, n1), (p.mul_(p1m), yc, dl)))  # p (1 - p) = dp/dx
        ctx.saved_chunks = saved
        ctx.meta = (x.shape, want_map)
        sy = y.sum(2)
        ctx.mark_non_differentiable(sy)
        if pixel is None:
            pixel = x.new_zeros(())
            ctx.mark_non_differentiable(pixel)
        return pixel, tp, sp, sy

    @staticmethod
    def backward(ctx, g_pixel, g_tp, g_sp, _g_sy):  # type: ignore[override]
        shape, want_map = ctx.meta
        saved = ctx.saved_chunks
        if g_pixel is not None and g_pixel.ndim == 0:
            g_pixel = None
        grad = None
        for (b0, b1, n0, n1), (dp, yc, dl) in saved:
            part = torch.zeros_like(dp)
            if g_pixel is not None and dl is not None:
                part = dl * (g_pixel[b0:b1, :, n0:n1] if want_map else g_pixel[b0:b1].unsqueeze(2))
            if g_sp is not None or g_tp is not None:
                g_p = torch.zeros_like(dp)
                if g_tp is not None:
                    g_p = g_p.addcmul_(yc, g_tp[b0:b1].unsqueeze(2))
                if g_sp is not None:
                    g_p = g_p.add_(g_sp[b0:b1].unsqueeze(2))
                part = part.addcmul_(dp, g_p)
            if grad is None:
                grad = part.new_empty(shape)
            grad[b0:b1, :, n0:n1] = part
        return grad, None, None, None


# --------------------------------------------------------------------------------------------------------------------
# reference (autograd) definition and dispatch


def reference_terms(
    input: torch.Tensor,
    target: torch.Tensor,
    term: PixelTerm | None,
    sigmoid: bool = False,
    softmax: bool = False,
    other_act: Callable | None = None,
    to_onehot_y: bool = False,
    include_background: bool = True,
    want_map: bool = False,
    want_counts: bool = True,
) -> OneVsRestTerms:
    """The definition with plain autograd ops: what the fused kernels compute, for any activation.

    Logarithms come from :func:`~monai_imbalance.losses.utils.log_probabilities` (stable for logits; probabilities
    clamped to ``[1e-7, 1 - 1e-7]``), the soft counts from the activated probabilities themselves.
    """
    check_input_shape(input)
    n_pred_ch = input.shape[1]
    probs = activate(input, sigmoid, softmax, other_act)
    if other_act is not None:
        log_p, log_1mp = log_probabilities(probs)
    elif softmax and n_pred_ch > 1:
        log_p = torch.log_softmax(input, 1)
        # log1p(-p) is exact where p <= 1/2; the masked logsumexp covers p -> 1
        small = probs.detach() <= 0.5
        log_1mp = torch.where(small, torch.log1p(-probs.clamp_max(0.5)), _log1m_softmax(input))
    else:
        log_p, log_1mp = log_probabilities(input, sigmoid=sigmoid)
    target = target_to_onehot(target, n_pred_ch, to_onehot_y)
    if not include_background and n_pred_ch > 1:
        probs, log_p, log_1mp, target = probs[:, 1:], log_p[:, 1:], log_1mp[:, 1:], target[:, 1:]
    check_same_shape(probs, target)
    y = (target > 0.5).to(probs.dtype)
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


def _log1m_softmax(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - softmax(x)_c) = logsumexp_{j != c} x_j - logsumexp_j x_j`` over dim 1, one masked ``logsumexp`` per
    class: exact for any gap and with the exact gradient (``C`` passes; the reference path only)."""
    total = torch.logsumexp(x, 1, keepdim=True)
    eye = torch.eye(x.shape[1], dtype=torch.bool, device=x.device)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    others = [torch.logsumexp(x.masked_fill(eye[c].view(shape), float("-inf")), 1, keepdim=True)
              for c in range(x.shape[1])]
    return torch.cat(others, 1) - total


def _reference_pixel(log_p, log_1mp, y_hat, y, term: PixelTerm) -> torch.Tensor:
    """Eq. 16 / Eq. 11 elementwise with ``torch.where`` over the four branches (autograd does the rest);
    ``y_hat = p >= 0.5`` only selects the branch."""
    positive = y > 0.5
    log_q = torch.where(positive, log_p, log_1mp)
    log_a = torch.where(positive, log_1mp, log_p)
    w = y * (2.0 * term.lambda_ - 1.0) + (1.0 - term.lambda_)
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
        r = y * (term.beta - term.alpha) + term.alpha
        v = (1.0 - torch.exp((1.0 + r) * log_q)).clamp_min(0.5)  # >= 0.5 wherever the wrong branch is used
        m = torch.where(correct, m, (1.0 + r) * v**term.gamma)
    return -w * m * log_q


def one_vs_rest_terms(
    input: torch.Tensor,
    target: torch.Tensor,
    term: PixelTerm | None,
    sigmoid: bool = False,
    softmax: bool = False,
    other_act: Callable | None = None,
    to_onehot_y: bool = False,
    include_background: bool = True,
    want_map: bool = False,
    want_counts: bool = True,
    fused: bool = True,
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
    if hasattr(input, "as_tensor"):  # MetaTensor: plain tensor ops inside the kernels
        input = input.as_tensor()
    if hasattr(target, "as_tensor"):
        target = target.as_tensor()
    n_pred_ch = input.shape[1]
    use_softmax = softmax and n_pred_ch > 1
    if not fused or other_act is not None or not (sigmoid or use_softmax):
        return reference_terms(
            input, target, term, sigmoid, softmax, other_act, to_onehot_y, include_background, want_map, want_counts
        )
    if softmax and n_pred_ch == 1:
        warnings.warn("single channel prediction, `softmax=True` ignored.", stacklevel=3)
    dtype = input.dtype if input.dtype in (torch.float32, torch.float64) else torch.float32
    bsz = input.shape[0]
    spatial = tuple(input.shape[2:])
    x = input.to(dtype).reshape(bsz, n_pred_ch, -1)
    if use_softmax:
        labels = _labels_for_softmax(target, n_pred_ch, to_onehot_y)
        if labels is None:  # a target that is not one class per pixel: no fused path
            return reference_terms(
                input, target, term, sigmoid, softmax, other_act, to_onehot_y, include_background, want_map,
                want_counts,
            )
        first = 0 if include_background else 1
        pixel, tp, sp, sy = _SoftmaxOneVsRest.apply(x, labels.reshape(bsz, 1, -1), term, want_map, first)
    else:
        onehot = target_to_onehot(target, n_pred_ch, to_onehot_y)
        if not include_background and n_pred_ch > 1:
            x, onehot = x[:, 1:], onehot[:, 1:]
        elif not include_background:
            warnings.warn("single channel prediction, `include_background=False` ignored.", stacklevel=3)
        if tuple(onehot.shape) != (bsz, x.shape[1], *spatial):
            raise ValueError(
                f"ground truth has different shape ({tuple(onehot.shape)}) from input ({(bsz, x.shape[1], *spatial)})."
            )
        y = (onehot.reshape(bsz, x.shape[1], -1) > 0.5).to(dtype)
        pixel, tp, sp, sy = _SigmoidOneVsRest.apply(x, y, term, want_map)
    if term is None:
        pixel = None
    elif want_map:
        pixel = pixel.reshape(bsz, pixel.shape[1], *spatial).to(input.dtype)
    elif pixel.dtype != input.dtype:
        pixel = pixel.to(input.dtype)
    fp = fn = None
    if want_counts:
        fp = (sp - tp).clamp_min(0.0)  # rounding can leave -1e-7 where the exact value is 0
        fn = (sy - tp).clamp_min(0.0)
    else:
        tp = None
    num_voxels = 1
    for size in spatial:
        num_voxels *= size
    return OneVsRestTerms(pixel, tp, fp, fn, num_voxels)


def _labels_for_softmax(target: torch.Tensor, num_classes: int, to_onehot_y: bool) -> torch.Tensor | None:
    """Class index per pixel ``(B, 1, ...)`` (int64), validated; ``None`` for a one-hot target that is not exactly
    one class per pixel (multi-label or soft targets take the reference path)."""
    if to_onehot_y:
        if target.shape[1] != 1:
            raise ValueError(
                "to_onehot_y=True expects a target of shape (B, 1, *spatial) holding class indices, "
                f"got {tuple(target.shape)}."
            )
        lo, hi = (v.item() for v in torch.aminmax(target.detach()))
        if lo < 0 or hi >= num_classes:
            raise ValueError(
                f"target has class values in [{lo:g}, {hi:g}] but the input has {num_classes} channels "
                f"(valid values 0..{num_classes - 1})."
            )
        return target.detach().long()
    if target.shape[1] != num_classes:
        return None
    hard = target.detach() > 0.5
    if not bool((hard.sum(1) == 1).all()):
        return None
    return hard.to(torch.uint8).argmax(1, keepdim=True)


# --------------------------------------------------------------------------------------------------------------------
# base class of the one-vs-rest losses


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


class OneVsRestLoss(_Loss):
    """Shared plumbing of the DIBE losses and their baselines: MONAI's input arguments, class weights, the call into
    :func:`one_vs_rest_terms` and the reductions. Not a loss by itself."""

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        reduction: LossReduction | str = LossReduction.MEAN,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        batch: bool = False,
        weight: Sequence[float] | float | int | torch.Tensor | None = None,
    ) -> None:
        super().__init__(reduction=check_reduction(reduction))
        check_activation_args(sigmoid, softmax, other_act)
        self.include_background = include_background
        self.to_onehot_y = to_onehot_y
        self.sigmoid = sigmoid
        self.softmax = softmax
        self.other_act = other_act
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
        return one_vs_rest_terms(
            input,
            target,
            term,
            sigmoid=self.sigmoid,
            softmax=self.softmax,
            other_act=self.other_act,
            to_onehot_y=self.to_onehot_y,
            include_background=self.include_background,
            want_map=want_map,
            want_counts=want_counts,
        )

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
        values = self._weighted(values, values.ndim - 1)
        return reduce_loss(values, self.reduction)
