"""Combo, exponential-logarithmic and Hybrid Focal losses (DIBE paper Eqs. 9-12)."""

from __future__ import annotations

import math

import pytest
import torch
from monai.losses import DiceLoss

from monai_imbalance.losses import ComboLoss, DIBEDisLoss, ExpLogLoss, FocalTverskyLoss, HybridFocalLoss

P44 = [[0.9, 0.6, 0.3, 0.05], [0.8, 0.45, 0.7, 0.1], [0.2, 0.55, 0.95, 0.4], [0.02, 0.3, 0.65, 0.85]]
Y44 = [[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]]
PAIRS = [(p, y) for rp, ry in zip(P44, Y44) for p, y in zip(rp, ry)]
TP, FP, FN = 5.5, 2.32, 2.5  # sum p y, sum p (1 - y), sum (1 - p) y, by hand


def case44():
    return torch.tensor(P44, dtype=torch.float64)[None, None], torch.tensor(Y44, dtype=torch.float64)[None, None]


def wbce(lam=0.75, gamma_ce=1.0):
    return sum((lam * -math.log(p) if y else (1 - lam) * -math.log(1 - p)) ** 1 if gamma_ce == 1 else
               (lam * (-math.log(p)) ** gamma_ce if y else (1 - lam) * (-math.log(1 - p)) ** gamma_ce)
               for p, y in PAIRS) / 16


def dice(s=1e-5):
    return (2 * TP + s) / (2 * TP + FP + FN + s)


def test_hand_computed_4x4():
    x, y = case44()
    focal = sum((0.75 * (1 - p) ** 2 * -math.log(p)) if t else (0.25 * p**2 * -math.log(1 - p)) for p, t in PAIRS) / 16
    tv = (TP + 1e-5) / (TP + 0.7 * FP + 0.3 * FN + 1e-5)
    assert ComboLoss()(x, y).item() == pytest.approx(0.5 * wbce() + 0.5 * (1 - dice()), rel=1e-9)
    assert ExpLogLoss()(x, y).item() == pytest.approx(0.5 * wbce() + 0.5 * -math.log(dice()), rel=1e-9)
    assert HybridFocalLoss()(x, y).item() == pytest.approx(0.5 * focal + 0.5 * (1 - tv) ** 0.75, rel=1e-9)
    # the same numbers as literals
    assert ComboLoss()(x, y).item() == pytest.approx(0.2595980679194567, rel=1e-9)
    assert ExpLogLoss()(x, y).item() == pytest.approx(0.2889490588644723, rel=1e-9)
    assert HybridFocalLoss()(x, y).item() == pytest.approx(0.2338662868311862, rel=1e-9)
    g = 0.3
    wong = ExpLogLoss(theta=0.2, gamma_ce=g, gamma_dice=g)(x, y).item()
    assert wong == pytest.approx(0.2 * wbce(gamma_ce=g) + 0.8 * (-math.log(dice())) ** g, rel=1e-9)


@pytest.mark.parametrize("batch", [False, True])
def test_combo_dice_part_is_monai_dice(batch):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 6, 5, 4, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (2, 1, 6, 5, 4), generator=gen).double()
    kw = {"softmax": True, "to_onehot_y": True, "batch": batch, "reduction": "none"}
    ours = ComboLoss(theta=0.0, **kw)(x, labels)
    theirs = DiceLoss(**kw)(x, labels).reshape(ours.shape)
    torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-12)


def test_hybrid_is_its_parts():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 9, 9, generator=gen, dtype=torch.float64)
    y = (torch.rand(2, 1, 9, 9, generator=gen) > 0.8).double()
    loss = HybridFocalLoss(sigmoid=True, theta=0.3, gamma_focal=1.0, gamma_ft=2.0, alpha=0.4)
    assert isinstance(loss.focal, DIBEDisLoss) and isinstance(loss.focal_tversky, FocalTverskyLoss)
    focal = DIBEDisLoss(sigmoid=True, alpha=0.0, beta=0.0, gamma=1.0, reduction="none")(x, y).mean((2, 3))
    ft = FocalTverskyLoss(sigmoid=True, alpha=0.4, gamma=2.0, reduction="none")(x, y)
    torch.testing.assert_close(loss(x, y), (0.3 * focal + 0.7 * ft).mean())


@pytest.mark.parametrize("cls", [ComboLoss, ExpLogLoss, HybridFocalLoss])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_shapes_and_reductions(cls, reduction):
    x = torch.randn(2, 4, 6, 6)
    labels = torch.randint(0, 4, (2, 1, 6, 6)).float()
    kw = {"softmax": True, "to_onehot_y": True, "include_background": False}
    out = cls(reduction=reduction, **kw)(x, labels)
    full = cls(reduction="none", **kw)(x, labels)
    assert full.shape == (2, 3) and cls(reduction="none", batch=True, **kw)(x, labels).shape == (3,)
    expected = {"none": full, "mean": full.mean(), "sum": full.sum()}[reduction]
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("cls", [ComboLoss, ExpLogLoss, HybridFocalLoss])
def test_perfect_prediction_minimum_and_finite_gradients(cls):
    y = torch.zeros(2, 1, 8, 8)
    y[..., 2:6, 2:6] = 1
    for kwargs in ({}, {"gamma_ce": 0.3, "gamma_dice": 0.3}) if cls is ExpLogLoss else ({},):
        for inp, act in ((y.clone(), {}), ((y * 2 - 1) * 50.0, {"sigmoid": True})):
            inp = inp.requires_grad_(True)
            loss = cls(**act, **kwargs)(inp, y)
            (grad,) = torch.autograd.grad(loss, inp)
            worse = cls(**act, **kwargs)(inp.detach() * 0.9 + 0.05 if not act else inp.detach() * 0.05, y)
            assert torch.isfinite(grad).all() and loss.item() < worse.item()
            # probabilities are clamped to [1e-7, 1 - 1e-7] inside the logarithms: with gamma_ce = 0.3 that floor
            # shows as (1e-7)^0.3 per pixel; from logits the minimum is 0 to float precision
            assert loss.item() == pytest.approx(0.0, abs=2e-3 if (kwargs and not act) else 1e-6)
    for target in (torch.zeros(2, 1, 8, 8), torch.ones(2, 1, 8, 8)):  # empty and all-foreground targets
        x = (torch.randn(2, 1, 8, 8) * 10).requires_grad_(True)
        loss = cls(sigmoid=True)(x, target)
        (grad,) = torch.autograd.grad(loss, x)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()


@pytest.mark.parametrize(
    "cls,kwargs,match",
    [
        (ComboLoss, {"theta": -0.1}, "theta"),
        (ComboLoss, {"lambda_": 1.1}, "lambda_"),
        (ExpLogLoss, {"gamma_ce": 0.0}, "gamma_ce"),
        (ExpLogLoss, {"gamma_dice": -1.0}, "gamma_dice"),
        (HybridFocalLoss, {"gamma_ft": 0.0}, "gamma"),
        (HybridFocalLoss, {"gamma_focal": -1.0}, "gamma_focal"),
    ],
)
def test_bad_arguments_raise(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)
