"""Combo, exponential-logarithmic and Hybrid Focal losses (DIBE paper Eqs. 9-12)."""

from __future__ import annotations

import math

import pytest
import torch
from monai.losses import DiceLoss

from monai_imbalance.losses import ComboLoss, DIBEDisLoss, ExpLogLoss, FocalTverskyLoss, HybridFocalLoss


def wbce(pairs, lam=0.75, gamma_ce=1.0):
    """Mean of Eq. 11 (Eq. 2 for gamma_ce = 1) over the (p, y) pairs."""
    return sum(lam * (-math.log(p)) ** gamma_ce if y else (1 - lam) * (-math.log(1 - p)) ** gamma_ce
               for p, y in pairs) / len(pairs)


def test_hand_computed_4x4(case44):
    x, y, pairs = case44.probs, case44.labels, case44.pairs
    tp, fp, fn = case44.tp, case44.fp, case44.fn
    dice = (2 * tp + 1e-5) / (2 * tp + fp + fn + 1e-5)
    focal = sum((0.75 * (1 - p) ** 2 * -math.log(p)) if t else (0.25 * p**2 * -math.log(1 - p)) for p, t in pairs) / 16
    tv = (tp + 1e-5) / (tp + 0.7 * fp + 0.3 * fn + 1e-5)
    assert ComboLoss()(x, y).item() == pytest.approx(0.5 * wbce(pairs) + 0.5 * (1 - dice), rel=1e-9)
    assert ExpLogLoss()(x, y).item() == pytest.approx(0.5 * wbce(pairs) + 0.5 * -math.log(dice), rel=1e-9)
    assert HybridFocalLoss()(x, y).item() == pytest.approx(0.5 * focal + 0.5 * (1 - tv) ** 0.75, rel=1e-9)
    # the same numbers as literals
    assert ComboLoss()(x, y).item() == pytest.approx(0.2595980679194567, rel=1e-9)
    assert ExpLogLoss()(x, y).item() == pytest.approx(0.2889490588644723, rel=1e-9)
    assert HybridFocalLoss()(x, y).item() == pytest.approx(0.2338662868311862, rel=1e-9)
    g = 0.3
    wong = ExpLogLoss(theta=0.2, gamma_ce=g, gamma_dice=g)(x, y).item()
    assert wong == pytest.approx(0.2 * wbce(pairs, gamma_ce=g) + 0.8 * (-math.log(dice)) ** g, rel=1e-9)


@pytest.mark.parametrize("lam", [0.3, 0.75])
def test_exp_log_ce_part_against_wongs_categorical_term(lam, random_case, onehot):
    # what the docstring says the CE part is, at a pixel of true class l (theta = 1: the CE part alone)
    g = 0.3
    x, labels = random_case(channels=2, spatial=(5, 6), seed=5, scale=2.0, dtype=torch.float64)
    p = torch.softmax(x, 1)
    p_true = p.gather(1, labels.long())
    categorical = (-torch.log(p_true)) ** g  # Wong's term without his frequency weights
    kw = {"theta": 1.0, "lambda_": lam, "gamma_ce": g, "softmax": True, "to_onehot_y": True}
    # two softmax classes, background included: half of it, whatever lambda
    both = ExpLogLoss(**kw)(x, labels)
    torch.testing.assert_close(both, 0.5 * categorical.mean(), rtol=1e-7, atol=0.0)
    # foreground only (or one sigmoid channel): the categorical term with weights (1 - lambda, lambda)
    w = torch.where(labels > 0, lam, 1.0 - lam)
    fg = ExpLogLoss(include_background=False, **kw)(x, labels)
    torch.testing.assert_close(fg, (w * categorical).mean(), rtol=1e-7, atol=0.0)
    sig = ExpLogLoss(**{**kw, "softmax": False, "to_onehot_y": False, "sigmoid": True})(x[:, 1:] - x[:, :1], labels)
    torch.testing.assert_close(sig, (w * categorical).mean(), rtol=1e-7, atol=0.0)
    # more classes: the rest-class terms (1 - lambda)(-ln(1 - p_c))^g are added, unlike Wong's
    x3, labels3 = random_case(channels=3, spatial=(5, 6), seed=6, scale=2.0, dtype=torch.float64)
    p3, y3 = torch.softmax(x3, 1), onehot(labels3, 3)
    terms = lam * y3 * (-torch.log(p3)) ** g + (1 - lam) * (1 - y3) * (-torch.log1p(-p3)) ** g
    torch.testing.assert_close(ExpLogLoss(**kw)(x3, labels3), terms.mean(), rtol=1e-7, atol=0.0)


@pytest.mark.parametrize("batch", [False, True])
def test_combo_dice_part_is_monai_dice(batch, random_case):
    x, labels = random_case(channels=3, spatial=(6, 5, 4), dtype=torch.float64)
    kw = {"softmax": True, "to_onehot_y": True, "batch": batch, "reduction": "none"}
    ours = ComboLoss(theta=0.0, **kw)(x, labels)
    theirs = DiceLoss(**kw)(x, labels).reshape(ours.shape)
    torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-12)


def test_hybrid_is_its_parts(random_case):
    x, y = random_case(channels=1, spatial=(9, 9), seed=1, dtype=torch.float64, multilabel=True)
    loss = HybridFocalLoss(sigmoid=True, theta=0.3, gamma_focal=1.0, gamma_ft=2.0, alpha=0.4)
    # the parts carry the hyperparameters: the focal part is DIBE_Dis without regulators
    assert (loss.focal.alpha, loss.focal.beta, loss.focal.gamma, loss.focal.lambda_) == (0.0, 0.0, 1.0, 0.75)
    assert (loss.focal_tversky.alpha, loss.focal_tversky.beta, loss.focal_tversky.gamma) == (0.4, 0.6, 2.0)
    focal = DIBEDisLoss(sigmoid=True, alpha=0.0, beta=0.0, gamma=1.0, reduction="none")(x, y).mean((2, 3))
    ft = FocalTverskyLoss(sigmoid=True, alpha=0.4, gamma=2.0, reduction="none")(x, y)
    torch.testing.assert_close(loss(x, y), (0.3 * focal + 0.7 * ft).mean())


@pytest.mark.parametrize("cls", [ComboLoss, ExpLogLoss, HybridFocalLoss])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_shapes_and_reductions(cls, reduction, random_case):
    x, labels = random_case(channels=4, seed=7)
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
