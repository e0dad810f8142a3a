"""DIBE_Dis (Eq. 16), DIBE_Reg (Eq. 18) and DIBE (Eq. 19)."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from monai.losses import FocalLoss, TverskyLoss

from monai_imbalance.losses import DIBEDisLoss, DIBELoss, DIBERegLoss, FocalTverskyLoss


def dis_by_hand(p: float, y: int, lam=0.75, gamma=2.0, alpha=0.7, beta=0.3) -> float:
    """Eq. 16 in our convention (alpha on false positives, beta on false negatives)."""
    if y == 1 and p >= 0.5:
        return -lam * (1 - p) ** gamma * math.log(p)
    if y == 1:
        return -lam * (1 - p ** (1 + beta)) ** gamma * (1 + beta) * math.log(p)
    if p < 0.5:
        return -(1 - lam) * p**gamma * math.log(1 - p)
    return -(1 - lam) * (1 - (1 - p) ** (1 + alpha)) ** gamma * (1 + alpha) * math.log(1 - p)


def test_constructor_signatures_follow_the_issue():
    dis = inspect.signature(DIBEDisLoss).parameters
    assert [n for n in dis][:9] == [
        "include_background", "to_onehot_y", "sigmoid", "softmax", "other_act", "alpha", "beta", "gamma", "lambda_"
    ]
    assert (dis["alpha"].default, dis["gamma"].default, dis["lambda_"].default) == (0.7, 2.0, 0.75)
    reg = inspect.signature(DIBERegLoss).parameters
    assert (reg["alpha"].default, reg["gamma"].default) == (0.7, 1.5)
    dibe = inspect.signature(DIBELoss).parameters
    assert list(dibe)[5:11] == ["theta", "lambda_", "gamma_dis", "gamma_reg", "alpha", "beta"]
    defaults = [dibe[n].default for n in ("theta", "lambda_", "gamma_dis", "gamma_reg", "alpha")]
    assert defaults == [0.5, 0.75, 2.0, 1.5, 0.7]
    # Reading: beta defaults to 1 - alpha, so the defaults are the paper's (0.3, 0.7) as alpha=0.7, beta=0.3
    assert DIBEDisLoss().beta == pytest.approx(0.3) and DIBEDisLoss(alpha=0.4).beta == pytest.approx(0.6)
    assert DIBELoss(alpha=0.2).dis.beta == pytest.approx(0.8) and DIBELoss(alpha=0.2).reg.beta == pytest.approx(0.8)


@pytest.mark.parametrize(
    "cls,kwargs,match",
    [
        (DIBEDisLoss, {"alpha": -0.1}, "alpha"),
        (DIBEDisLoss, {"lambda_": 1.5}, "lambda_"),
        (DIBEDisLoss, {"gamma": -1.0}, "gamma"),
        (DIBERegLoss, {"gamma": 0.0}, "gamma"),
        (DIBELoss, {"theta": 2.0}, "theta"),
        (DIBELoss, {"beta": -0.5}, "beta"),
        (DIBEDisLoss, {"sigmoid": True, "softmax": True}, "Incompatible values"),
        (DIBERegLoss, {"reduction": "avg"}, "Unsupported reduction"),
    ],
)
def test_bad_arguments_raise(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_dis_hand_computed_4x4(case44):
    x, y = case44.probs, case44.labels
    expected = sum(dis_by_hand(p, t) for p, t in case44.pairs) / 16
    assert expected == pytest.approx(0.11103473167876218, abs=1e-12)
    assert DIBEDisLoss()(x, y).item() == pytest.approx(expected, rel=1e-9)
    # each branch on its own: the voxel map
    got = DIBEDisLoss(reduction="none")(x, y)[0, 0]
    for (p, t), value in zip(case44.pairs, got.reshape(-1).tolist()):
        assert value == pytest.approx(dis_by_hand(p, t), rel=1e-9)


def test_reg_hand_computed_4x4(case44):
    x, y, tp, fp, fn = case44.probs, case44.labels, case44.tp, case44.fp, case44.fn
    tv = (tp + 1e-5) / (tp + 0.7 * fp + 0.3 * fn + 1e-5)
    assert DIBERegLoss()(x, y).item() == pytest.approx((-math.log(tv)) ** (1 / 1.5), rel=1e-9)
    assert DIBERegLoss()(x, y).item() == pytest.approx(0.5049508636940682, rel=1e-9)


def test_dibe_hand_computed_4x4_and_parts(case44):
    x, y = case44.probs, case44.labels
    loss = DIBELoss()
    expected = 0.5 * DIBEDisLoss()(x, y) + 0.5 * DIBERegLoss()(x, y)
    assert loss(x, y).item() == pytest.approx(expected.item(), rel=1e-12)
    assert loss(x, y).item() == pytest.approx(0.3079927976864152, rel=1e-9)
    theta = DIBELoss(theta=0.2)(x, y)
    assert theta.item() == pytest.approx(0.2 * 0.11103473167876218 + 0.8 * 0.5049508636940682, rel=1e-9)


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("lam,gamma", [(0.25, 2.0), (0.75, 0.0), (0.6, 1.5)])
def test_dis_without_regulators_is_monai_focal_loss(reduction, lam, gamma, random_case):
    x, y = random_case(channels=3, spatial=(8, 7), scale=3.0, multilabel=True)
    ours = DIBEDisLoss(sigmoid=True, alpha=0.0, beta=0.0, gamma=gamma, lambda_=lam, reduction=reduction)(x, y)
    theirs = FocalLoss(gamma=gamma, alpha=lam, reduction=reduction)(x, y)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_dis_without_regulators_softmax_one_vs_rest_focal_by_hand(random_case, onehot):
    # MONAI's softmax focal loss keeps only the true class's term; ours is one-vs-rest per class: compare by hand
    x, labels = random_case(channels=3, spatial=(5, 5), seed=1, dtype=torch.float64)
    p = torch.softmax(x, 1)
    y = onehot(labels, 3)
    lam, gamma = 0.7, 2.0
    focal = -lam * y * (1 - p) ** gamma * torch.log(p) - (1 - lam) * (1 - y) * p**gamma * torch.log(1 - p)
    ours = DIBEDisLoss(softmax=True, to_onehot_y=True, alpha=0.0, beta=0.0, gamma=gamma, lambda_=lam, reduction="none")
    torch.testing.assert_close(ours(x, labels), focal, rtol=1e-9, atol=1e-12)


def test_regulators_only_touch_misclassified_pixels_and_follow_the_reading(case44):
    # beta (FN) acts on y = 1, y_hat = 0 only; alpha (FP) on y = 0, y_hat = 1 only
    x, y = case44.probs, case44.labels
    base = DIBEDisLoss(alpha=0.0, beta=0.0, reduction="none")(x, y)
    fn_only = DIBEDisLoss(alpha=0.0, beta=0.7, reduction="none")(x, y)
    fp_only = DIBEDisLoss(alpha=0.7, beta=0.0, reduction="none")(x, y)
    pred = x >= 0.5
    fn_mask, fp_mask = (y == 1) & ~pred, (y == 0) & pred
    changed_fn = ~torch.isclose(fn_only, base, rtol=1e-12, atol=0.0)
    changed_fp = ~torch.isclose(fp_only, base, rtol=1e-12, atol=0.0)
    assert torch.equal(changed_fn, fn_mask) and torch.equal(changed_fp, fp_mask)
    assert bool((fn_only[fn_mask] > base[fn_mask]).all()) and bool((fp_only[fp_mask] > base[fp_mask]).all())


def test_y_hat_only_selects_the_branch():
    # the loss is discontinuous at p = 0.5 (the branch switches) and its gradient is the branch's own derivative
    p = torch.tensor([[[[0.4999, 0.5001]]]], dtype=torch.float64, requires_grad=True)
    y = torch.ones(1, 1, 1, 2, dtype=torch.float64)
    loss = DIBEDisLoss(reduction="none")(p, y)
    loss.sum().backward()
    lam, b = 0.75, 0.3
    q = 0.4999
    v = 1 - q ** (1 + b)
    fn_grad = lam * (1 + b) * (v**2 * (-1 / q) + 2 * v * (1 + b) * q**b * math.log(q))
    assert p.grad[0, 0, 0, 0].item() == pytest.approx(fn_grad, rel=1e-6)
    q = 0.5001
    tp_grad = lam * (2 * (1 - q) * math.log(q) - (1 - q) ** 2 / q)
    assert p.grad[0, 0, 0, 1].item() == pytest.approx(tp_grad, rel=1e-6)


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("include_background", [True, False])
def test_reg_through_monai_tversky(batch, include_background, random_case):
    x, labels = random_case(channels=3, spatial=(6, 6, 4), seed=2, dtype=torch.float64)  # 3-D
    kw = {"softmax": True, "to_onehot_y": True, "include_background": include_background, "batch": batch}
    tv = 1.0 - TverskyLoss(alpha=0.7, beta=0.3, reduction="none", **kw)(x, labels)
    ours = DIBERegLoss(alpha=0.7, beta=0.3, gamma=1.5, reduction="none", **kw)(x, labels)
    torch.testing.assert_close(ours, (-torch.log(tv)) ** (1 / 1.5), rtol=1e-9, atol=1e-12)
    n = 3 if include_background else 2
    assert ours.shape == ((n,) if batch else (2, n))


@pytest.mark.parametrize("spatial", [(8, 8), (4, 5, 6)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_reductions(spatial, reduction, random_case):
    x, labels = random_case(channels=3, spatial=spatial, seed=3)
    kw = {"softmax": True, "to_onehot_y": True, "include_background": False}
    dis_map = DIBEDisLoss(reduction="none", **kw)(x, labels)  # the voxel map
    reg = DIBERegLoss(reduction="none", **kw)(x, labels)  # [B, C]
    reg_batch = DIBERegLoss(reduction="none", batch=True, **kw)(x, labels)  # [C]
    assert dis_map.shape == (2, 2, *spatial) and reg.shape == (2, 2) and reg_batch.shape == (2,)
    axes = tuple(range(2, dis_map.ndim))
    # Eq. 19 per image and class, and with batch=True per class (the pixel term averaged over the batch too)
    per_class = 0.5 * dis_map.mean(axes) + 0.5 * reg
    batched = 0.5 * dis_map.mean((0, *axes)) + 0.5 * reg_batch
    reduce = {"none": lambda v: v, "mean": torch.mean, "sum": torch.sum}[reduction]
    torch.testing.assert_close(DIBELoss(reduction=reduction, **kw)(x, labels), reduce(per_class))
    torch.testing.assert_close(DIBELoss(reduction=reduction, batch=True, **kw)(x, labels), reduce(batched))
    torch.testing.assert_close(DIBERegLoss(reduction=reduction, **kw)(x, labels), reduce(reg))
    torch.testing.assert_close(DIBEDisLoss(reduction=reduction, **kw)(x, labels), reduce(dis_map))


def test_class_weights(random_case):
    x, labels = random_case(seed=4)
    kw = {"softmax": True, "to_onehot_y": True, "reduction": "none"}
    w = torch.tensor([0.0, 1.0, 2.0])
    for cls in (DIBEDisLoss, DIBERegLoss, DIBELoss):
        plain, weighted = cls(**kw)(x, labels), cls(weight=w, **kw)(x, labels)
        shape = (1, 3) + (1,) * (plain.ndim - 2)
        torch.testing.assert_close(weighted, plain * w.view(shape))
    with pytest.raises(ValueError, match="weight has 3 values but the loss has 2 classes"):
        DIBELoss(weight=w, include_background=False, **kw)(x, labels)


@pytest.mark.parametrize("cls", [DIBEDisLoss, DIBERegLoss, DIBELoss])
def test_perfect_prediction_gives_the_minimum(cls):
    labels = torch.zeros(2, 1, 8, 8)
    labels[:, :, 2:5, 3:6] = 1
    onehot = torch.cat([1 - labels, labels], 1)
    logits = (onehot * 2 - 1) * 60.0  # saturated, correct
    probs = onehot.clone()  # exactly 0 and 1
    for inp, kw in ((logits.requires_grad_(True), {"softmax": True}), (probs.requires_grad_(True), {})):
        loss = cls(**kw)(inp, onehot)
        (grad,) = torch.autograd.grad(loss, inp)
        assert loss.item() == pytest.approx(0.0, abs=1e-6) and torch.isfinite(grad).all()
        worse = cls(**kw)(inp.detach() * 0.5 + 0.25 if not kw else inp.detach() * 0.1, onehot)
        assert worse.item() > loss.item()


@pytest.mark.parametrize("case", ["empty", "all_foreground"])
@pytest.mark.parametrize("cls", [DIBEDisLoss, DIBERegLoss, DIBELoss])
def test_empty_and_full_targets_finite(case, cls):
    y = torch.zeros(2, 1, 8, 8) if case == "empty" else torch.ones(2, 1, 8, 8)
    for x in (torch.randn(2, 1, 8, 8) * 5, torch.full((2, 1, 8, 8), 40.0), torch.full((2, 1, 8, 8), -40.0)):
        x = x.requires_grad_(True)
        loss = cls(sigmoid=True)(x, y)
        (grad,) = torch.autograd.grad(loss, x)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_reg_finite_gradient_near_tversky_one_and_zero():
    # Tv -> 1: (-log Tv)^(2/3) has an infinite slope at 0; Tv -> 0: log of a tiny index
    y = torch.zeros(1, 1, 16, 16)
    y[..., 4:12, 4:12] = 1
    for scale in (1e-9, 1e-3, 1.0, 100.0):
        logits = ((y * 2 - 1) * 20.0 + torch.randn(1, 1, 16, 16) * scale).requires_grad_(True)
        for sign in (1.0, -1.0):  # good and inverted predictions
            loss = DIBERegLoss(sigmoid=True)(logits * sign, y)
            (grad,) = torch.autograd.grad(loss, logits)
            assert torch.isfinite(loss) and torch.isfinite(grad).all()


def _region_slope(loss_cls, tv: torch.Tensor, **kw) -> torch.Tensor:
    """|dL/dTv| of a region loss at Tversky indices ``tv`` (tp = 1, fn = 0, fp chosen to hit ``tv``)."""
    loss = loss_cls(smooth_nr=0.0, smooth_dr=0.0, **kw)
    tp = torch.ones_like(tv)
    fp = ((1 - tv) / tv / loss.alpha).requires_grad_(True)
    value = loss.region_loss(tp, fp, torch.zeros_like(tv))
    (dfp,) = torch.autograd.grad(value.sum(), fp)
    dtv_dfp = -loss.alpha / (1 + loss.alpha * fp.detach()) ** 2
    return (dfp / dtv_dfp).abs()


def test_appendix_a_reg_keeps_a_larger_gradient_than_focal_tversky_as_tv_goes_to_one():
    tv = torch.tensor([0.9, 0.99, 0.999, 0.9999, 0.99999], dtype=torch.float64)
    # the paper's settings: DIBE_Reg gamma 1.5, Focal Tversky exponent 0.75
    reg = _region_slope(DIBERegLoss, tv)
    ft = _region_slope(FocalTverskyLoss, tv)
    assert bool((reg > ft).all())
    assert bool((reg[1:] > reg[:-1]).all())  # no over-suppression: the slope grows as Tv -> 1
    assert bool(((reg / ft)[1:] > (reg / ft)[:-1]).all())  # and pulls away from Focal Tversky's
    # the same exponent for both: larger everywhere in (0, 1) (Eqs. 22-23)
    grid = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    same = _region_slope(FocalTverskyLoss, grid, gamma=1.5)
    assert bool((_region_slope(DIBERegLoss, grid) > same).all())
