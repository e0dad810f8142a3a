"""Fused forward and backward of the one-vs-rest terms: the fast path behind
:func:`monai_imbalance.losses.one_vs_rest.one_vs_rest_terms`.

:func:`~monai_imbalance.losses.one_vs_rest.reference_terms` is the definition (plain autograd); this module computes
the same values and gradients from logits with ``sigmoid=True`` or ``softmax=True`` in a few passes over memory,
with a hand-derived backward (``torch.autograd.Function``), processed in cache-sized chunks on CPU. The tests compare
both on random inputs (values and gradients), so the definition stays the oracle.

Why a kernel: autograd of the definition keeps a dozen ``[B, C, *spatial]`` intermediates and runs three to six
times slower than this path at bundle sizes (``benchmarks/bench_dibe_losses.py``), which would put the DIBE losses
far beyond cross entropy's cost.

Numerics: logarithms come from the logits (``log p = x - logsumexp``; ``log(1 - p)`` from the sum of the other
classes' exponentials, exact even where ``1 - p`` is below float resolution, down to the smallest normal float), so a
confident wrong logit gives a large finite loss and a finite gradient. The backward works on the one-vs-rest logit
``l_c = log p_c - log(1 - p_c)``, whose derivative of every term is bounded, so gradients stay finite for saturated
logits.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch

from monai_imbalance.losses.utils import check_class_indices, target_to_onehot

__all__ = ["KernelTerm", "fused_terms"]

# elements per chunk on CPU: the chunk's buffers stay in the last-level cache
_CPU_CHUNK = 1 << 19
# below this mass of the non-maximal classes, their shares e_j / others are formed before scaling (no overflow)
_REST_FLOOR = 1e-30


def _host_branches(device: torch.device) -> bool:
    """Whether the kernels may branch on data (any tied maxima? may ``1 - p_max`` underflow?), which reads a value
    back to the host: on CPU that costs nothing and skips work; on a GPU it would stall the stream at every step, so
    the general form of each branch runs instead (the same values: the tests compare both)."""
    return device.type == "cpu"


class KernelTerm(NamedTuple):
    """The pixel term as the kernels read it: Eq. 16's ``lambda_``, ``gamma``, ``alpha`` (y = 0 side), ``beta``
    (y = 1 side), or with ``exp_log`` Eq. 11's exp-log CE term (``alpha = beta = 0``)."""

    lambda_: float
    gamma: float
    alpha: float
    beta: float
    exp_log: bool


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
    term: KernelTerm,
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
        r = None if term.exp_log else (term.beta if y else term.alpha)
    else:
        log_q = torch.lerp(log_1mp, log_p, y)
        q = torch.lerp(p1m, p, y)
        a = torch.lerp(p, p1m, y)
        sign_w = y + (term.lambda_ - 1.0)
        w = y * (2.0 * term.lambda_ - 1.0) + (1.0 - term.lambda_)
        wrong = (log_p >= log_1mp) != (y > 0.5)
        r = None if term.exp_log else y * (term.beta - term.alpha) + term.alpha
    if term.exp_log:
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


# --------------------------------------------------------------------------------------------------------------------
# fused softmax kernel


def _chunks(batch: int, channels: int, voxels: int, device: torch.device) -> list[tuple[int, int, int, int]]:
    """``(b0, b1, n0, n1)`` slices of a ``[B, C, N]`` tensor: on CPU whole images (contiguous slices) grouped up to
    about ``_CPU_CHUNK`` elements, split along space only when one image is larger than twice that; one slice
    elsewhere."""
    if device.type != "cpu":
        return [(0, batch, 0, voxels)]
    per_image = channels * voxels
    if per_image > 2 * _CPU_CHUNK:
        step = max(1, _CPU_CHUNK // channels)
        return [(b, b + 1, n, min(n + step, voxels)) for b in range(batch) for n in range(0, voxels, step)]
    images = max(1, _CPU_CHUNK // per_image)
    return [(b, min(b + images, batch), 0, voxels) for b in range(0, batch, images)]


class _SoftmaxOneVsRest(torch.autograd.Function):
    """Softmax logits ``[B, C, N]`` and labels ``[B, 1, N]`` -> ``(pixel, tp, sp, sy)`` over channels ``first:``.

    Only the true class (one per pixel) can be TP/FN and only a maximal class can be FP. So the true-negative
    formula runs over every element, evaluated at ``p`` with the maxima zeroed (it vanishes there), and two per-pixel
    sets are added at 1/C of the cost: the maxima (``B``, read as ``y = 0``) and the true class (``A``, ``y = 1``).
    The element-wise passes run in cache-sized chunks writing into preallocated arrays (temporary allocations of
    this size cost page faults that would double the time of each pass).

    Backward: with ``d_c = dL/dl_c`` and ``dl_c/dx_j = (delta_cj - p_j) / (1 - p_c)``, ``dx_j = h_j - p_j sum_c h_c``
    for ``h_c = d_c / (1 - p_c)``; a unique maximum ``m`` (``1 - p_m`` possibly below float resolution) is kept out of
    ``h`` and enters as ``d_m`` at ``j = m`` and ``-d_m p_j / (1 - p_m)`` elsewhere. The region gradient
    ``g_p = g_sp + y g_tp`` adds ``p_j g_p,j - p_j sum_c p_c g_p,c``.
    """

    @staticmethod
    def forward(ctx, x, labels, term, want_map, first):  # type: ignore[override]
        ctx.set_materialize_grads(False)
        bsz, ch, voxels = x.shape
        dtype = x.dtype
        is_max = torch.empty_like(x)
        keep = term is not None
        p_rest = torch.empty_like(x)  # p with the maxima zeroed; p = p_rest + is_max * p_max
        h = torch.empty_like(x) if keep else None
        pixel = (torch.empty_like(x) if want_map else x.new_zeros(bsz, ch)) if keep else x.new_zeros(())
        p_true = x.new_empty(bsz, 1, voxels)
        p_max = x.new_empty(bsz, 1, voxels)
        z_true_all = x.new_empty(bsz, 1, voxels)
        rest_all = x.new_empty(bsz, 1, voxels)
        n_max_all = x.new_empty(bsz, 1, voxels)
        p1m_max = x.new_empty(bsz, 1, voxels) if keep else None
        dl_max = x.new_empty(bsz, 1, voxels) if keep else None
        tp = x.new_zeros(bsz, ch)
        sp = x.new_zeros(bsz, ch)
        sy = x.new_zeros(bsz, ch)
        one = x.new_ones(())
        branch = _host_branches(x.device)
        has_ties = not branch  # without host reads, always the general (tie-aware) form
        chunks = _chunks(bsz, ch, voxels, x.device)
        b_max = max(b1 - b0 for b0, b1, _, _ in chunks)
        k_max = max(n1 - n0 for _, _, n0, n1 in chunks)
        work1 = x.new_empty(b_max, ch, k_max)
        work2 = x.new_empty(b_max, ch, k_max) if keep else None
        for b0, b1, n0, n1 in chunks:
            bs, ks = slice(b0, b1), slice(n0, n1)
            xc, tc = x[bs, :, ks], labels[bs, :, ks]
            w1 = work1[: b1 - b0, :, : n1 - n0]
            mc, rc, pm = is_max[bs, :, ks], p_rest[bs, :, ks], p_max[bs, :, ks]
            torch.sub(xc, xc.amax(1, keepdim=True), out=w1)
            # logit gap of the true class, 0 when it is a maximum
            z_true = torch.gather(w1, 1, tc, out=z_true_all[bs, :, ks])
            e = w1.exp_()
            torch.floor(e, out=mc)  # 1 exactly at the maxima (e == 1), else 0
            torch.sub(e, mc, out=rc)
            # exponentials of the non-maximal classes (maximal logit -> 1), number of maxima
            rest = torch.sum(rc, 1, keepdim=True, out=rest_all[bs, :, ks])
            n_max = torch.sum(mc, 1, keepdim=True, out=n_max_all[bs, :, ks])
            inv_s = torch.add(rest, n_max, out=pm).reciprocal_()  # p of a maximal class
            rc.mul_(inv_s)
            sp[bs] += rc.sum(2) + torch.bmm(mc, inv_s.transpose(1, 2)).squeeze(2)
            torch.exp(z_true, out=p_true[bs, :, ks]).mul_(inv_s)
            if branch and not has_ties:
                has_ties = bool((n_max > 1).any())
            pt = p_true[bs, :, ks]
            t2 = tc.view(b1 - b0, n1 - n0)
            tp[bs].scatter_add_(1, t2, pt.view(b1 - b0, n1 - n0))
            sy[bs].scatter_add_(1, t2, one.expand(b1 - b0, n1 - n0))
            if not keep:
                continue
            # true negatives on the non-maximal classes, where p <= 1/2 and 1 - p is exact to rounding
            w2 = work2[: b1 - b0, :, : n1 - n0]
            q = torch.sub(one, rc, out=w1)
            log_q = _log_1mp(rc, q, term, out=w2)
            hc = h[bs, :, ks]
            loss_c = _true_negative_into(rc, q, log_q, term, hc)
            if want_map:
                pixel[bs, :, ks] = loss_c
            else:
                pixel[bs] += loss_c.sum(2)

        if keep:
            # per pixel, on the whole batch at once: mass of the classes other than one maximum
            # (1 - p_max = others / s), exact down to `tiny`
            t2 = labels.view(bsz, voxels)
            others = rest_all.add_(n_max_all - 1.0)
            log_s = torch.log1p(others)  # s = 1 + others: log1p keeps log p_max = -log s accurate as p_max -> 1
            others.clamp_min_(torch.finfo(dtype).tiny)
            p1m = torch.mul(others, p_max, out=p1m_max)
            log_1mp_max = others.log_().sub_(log_s)
            unique = (n_max_all == 1).to(dtype)
            # B: the maxima, y = 0 (FP where p >= 1/2); the true class among them is replaced by A
            loss_b, dl_b = _general_terms(-log_s, log_1mp_max, p_max, p1m, False, term)
            # A: the true class, y = 1
            true_max = (z_true_all == 0).to(dtype)
            p_true_rest = p_true * (1.0 - true_max)
            p1m_true_rest = torch.sub(one, p_true_rest)
            log_1mp_true_rest = _log_1mp(p_true_rest, p1m_true_rest, term)
            p1m_true = torch.lerp(p1m_true_rest, p1m, true_max)
            log_1mp_true = torch.lerp(log_1mp_true_rest, log_1mp_max, true_max)
            loss_a, dl_a = _general_terms(z_true_all.sub_(log_s), log_1mp_true, p_true, p1m_true, True, term)
            loss_tn_a = _true_negative_into(p_true_rest, p1m_true_rest, log_1mp_true_rest, term, None)
            if has_ties:  # tied maxima (p <= 1/2) couple like ordinary classes: dl / (1 - p); 0 at a unique one
                h.addcmul_(is_max, dl_b.div(p1m).masked_fill_(n_max_all == 1, 0.0))
            torch.lerp(dl_b, dl_a, true_max, out=dl_max).mul_(unique)  # dL/dl of a unique maximum, else 0
            # the true class: dl / (1 - p), except at a unique maximum, whose coupling is handled on its own
            h.scatter_(1, labels, dl_a.div_(p1m_true).mul_(1.0 - true_max * unique))
            if want_map:
                pixel.addcmul_(is_max, loss_b).scatter_(1, labels, loss_a)
            else:
                pixel.unsqueeze(2).baddbmm_(is_max, loss_b.transpose(1, 2))
                pixel.scatter_add_(1, t2, (loss_a - loss_tn_a).sub_(true_max * loss_b).view(bsz, voxels))
        saved: dict = {"p_rest": p_rest, "is_max": is_max, "p_max": p_max, "labels": labels, "p_true": p_true,
                       "has_ties": has_ties}
        if keep:
            saved.update(h=h, p1m_max=p1m_max, dl_max=dl_max)
        else:
            ctx.mark_non_differentiable(pixel)
        ctx.saved = saved
        ctx.meta = (want_map, first)
        ctx.mark_non_differentiable(sy)
        if pixel.ndim:
            pixel = pixel[:, first:]
        return pixel, tp[:, first:], sp[:, first:], sy[:, first:]

    @staticmethod
    def backward(ctx, g_pixel, g_tp, g_sp, _g_sy):  # type: ignore[override]
        want_map, first = ctx.meta
        sv = ctx.saved
        p_rest, is_max, p_max = sv["p_rest"], sv["is_max"], sv["p_max"]
        labels, p_true = sv["labels"], sv["p_true"]
        bsz, ch, voxels = p_rest.shape
        g_pixel, g_tp, g_sp = (_pad_channels(g, first) for g in (g_pixel, g_tp, g_sp))
        if g_pixel is not None and (g_pixel.ndim == 0 or "h" not in sv):
            g_pixel = None
        grad = torch.empty_like(p_rest)
        # with p = p_rest + is_max * p_max: grad_j = [h_j g_j] - p_j * pdot + p_j * g_sp,j
        #   - p_rest_j * d_m / (1 - p_m) + [j = m] d_m + [j = t] p_t g_tp,t
        pdot = p_true.new_zeros(())
        at_max = p_true.new_zeros(())  # what the maximal class gets on top of p_rest's terms
        shares = None
        if g_pixel is not None:
            h, p1m_max, dl_max = sv["h"], sv["p1m_max"], sv["dl_max"]
            if want_map:
                g_pixel = g_pixel.reshape(bsz, ch, voxels)
                g_max = (is_max * g_pixel).sum(1, keepdim=True).mul_(dl_max)
                torch.mul(h, g_pixel, out=grad)
            else:
                g_max = torch.bmm(g_pixel.unsqueeze(1), is_max).mul_(dl_max)
                torch.mul(h, g_pixel.unsqueeze(2), out=grad)
            pdot = grad.sum(1, keepdim=True)
            at_max = g_max
            # the unique maximum's term reaches the other classes through p_j / (1 - p_m) (<= 1)
            if _host_branches(p_rest.device) and bool(p1m_max.min() >= _REST_FLOOR):
                shares = g_max / p1m_max
            else:  # g / (1 - p_m) could overflow: form the bounded shares first
                grad.addcmul_(p_rest / p1m_max, g_max, value=-1.0)
        else:
            grad.zero_()
        g_true = None
        if g_tp is not None:
            g_true = p_true * g_tp.gather(1, labels.view(bsz, voxels)).view(bsz, 1, voxels)
            pdot = pdot + g_true
        p_full = None
        if g_sp is not None:
            g_sp3 = g_sp.unsqueeze(1)
            if sv["has_ties"]:  # p_j g_sp,j at tied maxima needs each one's own g_sp: use p itself
                p_full = torch.addcmul(p_rest, is_max, p_max)
                pdot = pdot + torch.bmm(g_sp3, p_full)
            else:
                g_sp_max = torch.bmm(g_sp3, is_max).mul_(p_max)  # p_m g_sp,m at the (unique) maximum
                pdot = pdot + torch.bmm(g_sp3, p_rest) + g_sp_max
                at_max = at_max + g_sp_max
        if pdot.ndim:
            at_max = at_max - pdot * p_max
            grad.addcmul_(p_rest, pdot if shares is None else pdot + shares, value=-1.0)
        elif shares is not None:
            grad.addcmul_(p_rest, shares, value=-1.0)
        if at_max.ndim:
            grad.addcmul_(is_max, at_max)
        if g_sp is not None:
            grad.addcmul_(p_rest if p_full is None else p_full, g_sp.unsqueeze(2))
        if g_true is not None:
            grad.scatter_add_(1, labels, g_true)
        return grad, None, None, None, None


def _log_1mp(p: torch.Tensor, p1m: torch.Tensor, term: KernelTerm, out: torch.Tensor | None = None) -> torch.Tensor:
    """``log(1 - p)`` for ``p <= 1/2``: ``log1p(-p)`` where the exp-log term raises it to a power below 1 (its relative
    precision matters there); elsewhere it only enters multiplied by ``p`` or summed, and ``log(1 - p)`` from the
    rounded ``1 - p`` is accurate enough (and cheaper)."""
    if term.exp_log and term.gamma != 1.0:
        return torch.neg(p, out=out).log1p_()
    return torch.log(p1m, out=out)


def _true_negative_into(
    p: torch.Tensor, p1m: torch.Tensor, log_1mp: torch.Tensor, term: KernelTerm, h_out: torch.Tensor | None
) -> torch.Tensor:
    """True-negative loss (returned; it reuses the storage of ``p1m`` and ``log_1mp``) and, into ``h_out``, its
    derivative in the one-vs-rest logit divided by ``1 - p`` (what the softmax backward needs). Both vanish where
    ``p = 0``."""
    lam1 = 1.0 - term.lambda_
    if term.exp_log:
        if term.gamma == 1.0:
            if h_out is not None:
                torch.div(p, p1m, out=h_out).mul_(lam1)
            return log_1mp.mul_(-lam1)
        nlq = log_1mp.neg_().clamp_min_(0.0)
        powered = torch.pow(nlq, term.gamma)
        if h_out is not None:  # gamma (-log q)^gamma p / (-log q) / (1 - p), with p / (-log q) in (0, 1]
            ratio = torch.div(p, nlq.clamp_min_(torch.finfo(p.dtype).tiny), out=h_out).clamp_max_(1.0)
            ratio.mul_(powered).div_(p1m).mul_(lam1 * term.gamma)
        return powered.mul_(lam1)
    gamma = term.gamma
    if h_out is not None:  # p / (1 - p) - gamma log(1 - p)
        torch.div(p, p1m, out=h_out).add_(log_1mp, alpha=-gamma)
    if gamma == 0.0:
        if h_out is not None:
            h_out.mul_(lam1)
        return log_1mp.mul_(-lam1)
    m = torch.mul(p, p, out=p1m) if gamma == 2.0 else _pow(p, gamma)
    if h_out is not None:
        h_out.mul_(m).mul_(lam1)
    return log_1mp.mul_(m).mul_(-lam1)


def _pad_channels(g: torch.Tensor | None, first: int) -> torch.Tensor | None:
    """Zeros in front for the dropped background channel."""
    if g is None or first == 0 or g.ndim == 0:
        return g
    return torch.cat([g.new_zeros(g.shape[0], first, *g.shape[2:]), g], 1)


# --------------------------------------------------------------------------------------------------------------------
# fused binary kernel: independent sigmoid channels, and the two-class softmax (a binary problem on x1 - x0)


def _binary_variant(log_q, q, a, wrong, w: float, r: float, term: KernelTerm):
    """Loss and ``dL/dz`` (``z`` the logit of the true outcome) of one one-vs-rest term whose label side fixes
    ``w`` (``lambda`` or ``1 - lambda``) and regulator ``r``; ``wrong`` marks the misclassified elements."""
    if term.exp_log:
        nlq = torch.neg(log_q).clamp_min_(0.0)
        powered = _pow(nlq, term.gamma)
        if term.gamma == 1.0:
            return powered * w, a * (-w)
        ratio = torch.div(a, nlq.clamp_min(torch.finfo(a.dtype).tiny)).clamp_max_(1.0)
        return powered * w, ratio.mul_(powered).mul_(-w * term.gamma)
    gamma = term.gamma
    m = _pow(a, gamma)
    n = q * m if gamma == 1.0 else (q * m).mul_(gamma)
    if r != 0.0:
        u = torch.exp(log_q * (1.0 + r))
        v = torch.neg(u).add_(1.0).clamp_min_(0.5)  # >= 1/2 wherever the wrong branch is used
        v_g1 = _pow(v, gamma - 1.0)
        m = torch.lerp(m, (v * v_g1).mul_(1.0 + r), wrong)
        n = torch.lerp(n, (u * a).mul_(v_g1).mul_((1.0 + r) ** 2 * gamma), wrong)
    loss = (m * log_q).mul_(-w)
    dz = (m * a).sub_(n.mul_(log_q)).mul_(-w)
    return loss, dz


def _binary_chunk(logit: torch.Tensor, y: torch.Tensor, term: KernelTerm | None, pair: bool):
    """One chunk of one-vs-rest logits ``l`` and labels ``y`` (float 0/1), same shape.

    Returns ``(losses, p, pq, dz)``: ``losses`` the term of the class itself and, with ``pair``, of its complement
    (the other class of a two-class softmax, whose one-vs-rest logit is ``-l`` and label ``1 - y``);
    ``p = sigmoid(l)``; ``pq = p (1 - p)``; ``dz`` the matching derivatives in ``z = (2y - 1) l``, the logit of the
    true outcome (the same for both classes of a pair). The true class's term is TP/FN (``lambda``, ``beta``, wrong
    where ``z < 0``), the other class's TN/FP (``1 - lambda``, ``alpha``, wrong where ``z <= 0``: at ``p = 1/2``
    both predict positive)."""
    s = y * 2.0 - 1.0
    z = logit * s
    soft = torch.abs(z).neg_().exp_().log1p_()  # log(1 + e^-|z|)
    log_q = torch.clamp_max(z, 0.0).sub_(soft)
    q = torch.sigmoid(z)
    a = torch.sigmoid(z.neg())
    p = torch.lerp(a, q, y)
    pq = q * a
    if term is None:
        return None, p, pq, None
    lam = term.lambda_
    wrong_true = (z < 0).to(logit.dtype)
    wrong_other = (z <= 0).to(logit.dtype)
    r_true, r_other = term.beta, term.alpha
    loss_t, dz_t = _binary_variant(log_q, q, a, wrong_true, lam, r_true, term)
    loss_o, dz_o = _binary_variant(log_q, q, a, wrong_other, 1.0 - lam, r_other, term)
    losses = [torch.lerp(loss_o, loss_t, y)]
    dz = [torch.lerp(dz_o, dz_t, y)]
    if pair:
        losses.append(loss_t.lerp_(loss_o, y))
        dz.append(dz_t.lerp_(dz_o, y))
    return losses, p, pq, (s, dz)


class _BinaryOneVsRest(torch.autograd.Function):
    """One-vs-rest logits ``l [B, C, N]`` with labels ``y [B, C, N]`` -> ``(pixel, tp, sp, sy)``.

    ``pair=True`` (``C = 1``, ``l = x1 - x0`` of a two-class softmax) also returns the complementary class, in
    front: channels ``(0, 1)``, or only channel 1 when ``first = 1``."""

    @staticmethod
    def forward(ctx, logit, y, term, want_map, pair, first):  # type: ignore[override]
        ctx.set_materialize_grads(False)
        bsz, ch, voxels = logit.shape
        classes = [0, 1][first:] if pair else list(range(ch))
        n_out = len(classes) if pair else ch
        pixel = None
        if term is not None:
            pixel = logit.new_empty(bsz, n_out, voxels) if want_map else logit.new_zeros(bsz, n_out)
        tp = logit.new_zeros(bsz, n_out)
        sp = logit.new_zeros(bsz, n_out)
        sy = logit.new_zeros(bsz, n_out)
        saved = []
        for b0, b1, n0, n1 in _chunks(bsz, ch, voxels, logit.device):
            lc, yc = logit[b0:b1, :, n0:n1], y[b0:b1, :, n0:n1]
            losses, p, pq, dz = _binary_chunk(lc, yc, term, pair)
            if pair:  # channel 1 is the class itself, channel 0 its complement
                per_class = {1: (p, yc), 0: (1.0 - p, 1.0 - yc)}
                for j, cls in enumerate(classes):
                    pc, yy = per_class[cls]
                    tp[b0:b1, j] += (pc * yy).sum((1, 2))
                    sp[b0:b1, j] += pc.sum((1, 2))
                    sy[b0:b1, j] += yy.sum((1, 2))
                    if pixel is not None:
                        part = losses[0] if cls == 1 else losses[1]
                        if want_map:
                            pixel[b0:b1, j : j + 1, n0:n1] = part
                        else:
                            pixel[b0:b1, j] += part.sum((1, 2))
            else:
                tp[b0:b1] += (p * yc).sum(2)
                sp[b0:b1] += p.sum(2)
                sy[b0:b1] += yc.sum(2)
                if pixel is not None:
                    if want_map:
                        pixel[b0:b1, :, n0:n1] = losses[0]
                    else:
                        pixel[b0:b1] += losses[0].sum(2)
            saved.append(((b0, b1, n0, n1), (yc, pq, dz)))
        ctx.saved_chunks = saved
        ctx.meta = (logit.shape, want_map, pair, classes)
        ctx.mark_non_differentiable(sy)
        if pixel is None:
            pixel = logit.new_zeros(())
            ctx.mark_non_differentiable(pixel)
        return pixel, tp, sp, sy

    @staticmethod
    def backward(ctx, g_pixel, g_tp, g_sp, _g_sy):  # type: ignore[override]
        shape, want_map, pair, classes = ctx.meta
        if g_pixel is not None and g_pixel.ndim == 0:
            g_pixel = None
        grad = torch.empty(shape, dtype=ctx.saved_chunks[0][1][1].dtype, device=ctx.saved_chunks[0][1][1].device)
        for (b0, b1, n0, n1), (yc, pq, dz) in ctx.saved_chunks:
            part = None
            if g_pixel is not None and dz is not None:
                s, dzs = dz
                if pair:
                    for j, cls in enumerate(classes):
                        gj = g_pixel[b0:b1, j : j + 1, n0:n1] if want_map else g_pixel[b0:b1, j].view(-1, 1, 1)
                        term = dzs[0] * gj if cls == 1 else dzs[1] * gj
                        part = term if part is None else part.add_(term)
                else:
                    gj = g_pixel[b0:b1, :, n0:n1] if want_map else g_pixel[b0:b1].unsqueeze(2)
                    part = dzs[0] * gj
                part.mul_(s)
            if g_sp is not None or g_tp is not None:
                # dL/dp of the class itself minus that of the complement (pair), times dp/dl = p (1 - p)
                g_p = torch.zeros_like(pq)
                for j, cls in enumerate(classes if pair else [None]):
                    sign = -1.0 if cls == 0 else 1.0
                    sl = slice(None) if cls is None else slice(j, j + 1)
                    if g_sp is not None:
                        g_p.add_(g_sp[b0:b1, sl].unsqueeze(2) if cls is None else g_sp[b0:b1, j].view(-1, 1, 1),
                                 alpha=sign)
                    if g_tp is not None:
                        gt = g_tp[b0:b1, sl].unsqueeze(2) if cls is None else g_tp[b0:b1, j].view(-1, 1, 1)
                        g_p.addcmul_(yc if cls != 0 else 1.0 - yc, gt, value=sign)
                region = g_p.mul_(pq)
                part = region if part is None else part.add_(region)
            grad[b0:b1, :, n0:n1] = 0.0 if part is None else part
        return grad, None, None, None, None, None


# --------------------------------------------------------------------------------------------------------------------
# entry point


def fused_terms(
    input: torch.Tensor,
    target: torch.Tensor,
    term: KernelTerm | None,
    sigmoid: bool,
    softmax: bool,
    to_onehot_y: bool,
    include_background: bool,
    want_map: bool,
    want_counts: bool,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, int] | None:
    """``(pixel, tp, fp, fn, num_voxels)`` as :func:`~monai_imbalance.losses.one_vs_rest.reference_terms` returns
    them, for plain-tensor logits with ``sigmoid`` or ``softmax`` (more than one channel); ``None`` for a softmax
    target that is not one class per pixel (multi-label or soft), which only the definition handles."""
    n_pred_ch = input.shape[1]
    use_softmax = softmax and n_pred_ch > 1
    if softmax and n_pred_ch == 1:
        warnings.warn("single channel prediction, `softmax=True` ignored.", stacklevel=4)
    dtype = input.dtype if input.dtype in (torch.float32, torch.float64) else torch.float32
    bsz = input.shape[0]
    spatial = tuple(input.shape[2:])
    x = input.to(dtype).reshape(bsz, n_pred_ch, -1)
    if use_softmax:
        labels = _labels_for_softmax(target, n_pred_ch, to_onehot_y)
        if labels is None:
            return None
        if labels.shape[0] != bsz or tuple(labels.shape[2:]) != spatial:
            raise ValueError(
                f"ground truth has different shape ({tuple(target.shape)}) from input ({tuple(input.shape)})."
            )
        first = 0 if include_background else 1
        labels = labels.reshape(bsz, 1, -1)
        if n_pred_ch == 2:  # one binary problem on the logit difference
            diff = x[:, 1:2] - x[:, 0:1]
            pixel, tp, sp, sy = _BinaryOneVsRest.apply(diff, labels.to(dtype), term, want_map, True, first)
        else:
            pixel, tp, sp, sy = _SoftmaxOneVsRest.apply(x, labels, term, want_map, first)
    else:
        onehot = target_to_onehot(target, n_pred_ch, to_onehot_y)
        if not include_background and n_pred_ch > 1:
            x, onehot = x[:, 1:], onehot[:, 1:]
        elif not include_background:
            warnings.warn("single channel prediction, `include_background=False` ignored.", stacklevel=4)
        if tuple(onehot.shape) != (bsz, x.shape[1], *spatial):
            raise ValueError(
                f"ground truth has different shape ({tuple(onehot.shape)}) from input ({(bsz, x.shape[1], *spatial)})."
            )
        y = (onehot.reshape(bsz, x.shape[1], -1) > 0.5).to(dtype)
        pixel, tp, sp, sy = _BinaryOneVsRest.apply(x, y, term, want_map, False, 0)
    if term is None:
        pixel = None
    elif want_map:
        pixel = pixel.reshape(bsz, pixel.shape[1], *spatial).to(input.dtype)
    elif pixel.dtype != input.dtype:
        pixel = pixel.to(input.dtype)
    # NaN policy: a NaN or infinite logit gives NaN, never a finite number (the kernels would turn -inf into p = 0)
    lo, hi = torch.aminmax(x.detach())
    guard = lo * 0.0 + hi * 0.0  # 0, or NaN when any logit is not finite
    if pixel is not None:
        pixel = pixel + guard.to(pixel.dtype)
    fp = fn = None
    if want_counts:
        tp = tp + guard
        fp = (sp - tp).clamp_min(0.0)  # rounding can leave -1e-7 where the exact value is 0
        fn = (sy - tp).clamp_min(0.0)
    else:
        tp = None
    num_voxels = 1
    for size in spatial:
        num_voxels *= size
    return pixel, tp, fp, fn, num_voxels


def _labels_for_softmax(target: torch.Tensor, num_classes: int, to_onehot_y: bool) -> torch.Tensor | None:
    """Class index per pixel ``(B, 1, ...)`` (int64), validated; ``None`` for a one-hot target that is not exactly
    one class per pixel (multi-label or soft targets take the reference path)."""
    if to_onehot_y:
        check_class_indices(target, num_classes)
        return target.detach().long()
    if target.shape[1] != num_classes:
        return None
    hard = target.detach() > 0.5
    if not bool((hard.sum(1) == 1).all()):
        return None
    return hard.to(torch.uint8).argmax(1, keepdim=True)
