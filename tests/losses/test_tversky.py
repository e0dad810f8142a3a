"""Focal Tversky loss and the region helpers."""

from __future__ import annotations

import math

import pytest
import torch
from monai.losses import TverskyLoss

from monai_imbalance.losses import DIBERegLoss, FocalTverskyLoss
from monai_imbalance.losses.tversky import TverskyIndexLoss, bounded_power, tversky_parameters, tversky_terms


def test_defaults_and_reading():
    loss = FocalTverskyLoss()
    assert (loss.alpha, loss.beta, loss.gamma) == (0.7, pytest.approx(0.3), pytest.approx(4 / 3))
    assert FocalTverskyLoss(alpha=0.3).beta == pytest.approx(0.7)  # Abraham & Khan's own setting
    with pytest.raises(ValueError, match="gamma"):
        FocalTverskyLoss(gamma=0.0)


def test_focal_tversky_and_dibe_reg_are_the_two_index_losses():
    tp, fp, fn = (torch.tensor([[v]], dtype=torch.float64) for v in (1.2, 0.2, 0.8))
    tv = 1.2 / (1.2 + 0.7 * 0.2 + 0.3 * 0.8)
    for cls, log_index, term in ((FocalTverskyLoss, False, 1 - tv), (DIBERegLoss, True, -math.log(tv))):
        loss = cls(smooth_nr=0, smooth_dr=0, gamma=2.0)
        assert isinstance(loss, TverskyIndexLoss) and loss.log_index is log_index
        assert loss.region_loss(tp, fp, fn).item() == pytest.approx(term**0.5, rel=1e-12)
    assert tversky_parameters(0.4, None, 2) == (0.4, pytest.approx(0.6), 2.0)
    for bad, match in (((-0.1, None, 1.0), "alpha"), ((0.5, -1.0, 1.0), "beta"), ((0.5, None, 0.0), "gamma")):
        with pytest.raises(ValueError, match=match):
            tversky_parameters(*bad)


def test_hand_computed_4x4(case44):
    x, y, tp, fp, fn = case44.probs, case44.labels, case44.tp, case44.fp, case44.fn
    tv = (tp + 1e-5) / (tp + 0.7 * fp + 0.3 * fn + 1e-5)
    assert FocalTverskyLoss()(x, y).item() == pytest.approx((1 - tv) ** 0.75, rel=1e-9)
    assert FocalTverskyLoss()(x, y).item() == pytest.approx(0.4068773970165049, rel=1e-9)


@pytest.mark.parametrize("gamma", [1.0, 4 / 3, 0.5])
@pytest.mark.parametrize("batch", [False, True])
def test_through_monai_tversky(gamma, batch, random_case):
    x, labels = random_case(batch=3, channels=4, spatial=(7, 6), dtype=torch.float64)
    kw = {"softmax": True, "to_onehot_y": True, "include_background": False, "batch": batch, "reduction": "none"}
    tversky = TverskyLoss(alpha=0.3, beta=0.7, **kw)(x, labels)
    ours = FocalTverskyLoss(alpha=0.3, beta=0.7, gamma=gamma, **kw)(x, labels)
    torch.testing.assert_close(ours, tversky ** (1 / gamma), rtol=1e-9, atol=1e-12)


def test_sigmoid_binary_and_3d(random_case):
    x, y = random_case(channels=1, spatial=(5, 6, 7), seed=1, multilabel=True)
    ours = FocalTverskyLoss(sigmoid=True, gamma=1.0, reduction="none")(x, y)
    theirs = TverskyLoss(sigmoid=True, alpha=0.7, beta=0.3, reduction="none")(x, y)
    torch.testing.assert_close(ours, theirs.view(2, 1), rtol=1e-5, atol=1e-6)


def test_perfect_prediction_minimum_with_finite_gradient():
    y = torch.zeros(1, 2, 6, 6)
    y[:, 1, 1:4, 1:4] = 1
    y[:, 0] = 1 - y[:, 1]
    p = y.clone().requires_grad_(True)  # probabilities exactly 0 and 1: 1 - Tv = 0, where (1 - Tv)^0.75 is steep
    loss = FocalTverskyLoss()(p, y)
    (grad,) = torch.autograd.grad(loss, p)
    assert loss.item() == 0.0 and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_tversky_terms_accurate_near_one():
    tp = torch.tensor([1e6], dtype=torch.float64)
    fp = torch.tensor([1e-9], dtype=torch.float64)
    num, den, gap = tversky_terms(tp, fp, torch.zeros(1, dtype=torch.float64), 0.5, 0.5, 1e-5, 1e-5)
    assert (gap / den).item() == pytest.approx(0.5e-9 / 1e6, rel=1e-9)  # 1 - Tv without cancellation
    assert torch.log1p(gap / num).item() == pytest.approx(0.5e-15, rel=1e-9)  # -log Tv
    dice_num, dice_den, _ = tversky_terms(tp, fp, fp, 1.0, 1.0, 0.0, 0.0, tp_weight=2.0)
    assert (dice_num / dice_den).item() == pytest.approx(2e6 / (2e6 + 2e-9))


def test_bounded_power():
    t = torch.tensor([0.0, 1e-12, 1e-8, 1e-4, 0.5, 2.0], dtype=torch.float64, requires_grad=True)
    out = bounded_power(t, 2 / 3)
    exact = t.detach() ** (2 / 3)
    torch.testing.assert_close(out[2:], exact[2:])  # exact from the floor on
    assert out[0].item() == 0.0 and out[1].item() == pytest.approx(1e-12 * 1e-8 ** (-1 / 3))
    (grad,) = torch.autograd.grad(out.sum(), t)
    assert torch.isfinite(grad).all() and grad.max().item() <= 1e-8 ** (-1 / 3) + 1e-9
    assert math.isclose(bounded_power(torch.tensor(3.0), 2.0).item(), 9.0)
