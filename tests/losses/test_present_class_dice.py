"""Dice terms of the classes present in each image only (the DBCE paper's Synapse Dice), and its Dice + CE."""

from __future__ import annotations

import pytest
import torch
from monai.losses import DiceCELoss, DiceLoss

from monai_imbalance.engines import SegmentationSetup
from monai_imbalance.losses.present_class_dice import PresentClassDiceCELoss, PresentClassDiceLoss


def _target():
    target = torch.zeros(2, 1, 4, 4)
    target[0, 0, :2] = 1  # image 0: class 1 only
    target[1, 0, 2:] = 2  # image 1: class 2 only
    return target


def test_hand_computed_value():
    # probabilities given directly: image 0 predicts class 1 on its top half with p = 1 (perfect), image 1 predicts
    # class 2 with p = 0.5 on its bottom half (Dice 2*4 / (4 + 8) = 2/3); the absent classes would add terms of 1
    probs = torch.zeros(2, 3, 4, 4)
    probs[0, 1, :2] = 1.0
    probs[0, 0, 2:] = 1.0
    probs[1, 2, 2:] = 0.5
    probs[1, 0, 2:] = 0.5
    probs[1, 0, :2] = 1.0
    loss = PresentClassDiceLoss(to_onehot_y=True, include_background=False, smooth_nr=0, smooth_dr=1e-12)
    assert loss(probs, _target()).item() == pytest.approx((0.0 + (1 - 2 / 3)) / 2)
    every_term = DiceLoss(to_onehot_y=True, include_background=False, smooth_nr=0, smooth_dr=1e-12)(probs, _target())
    assert every_term.item() == pytest.approx((0 + 1 + 1 + 1 / 3) / 4, abs=1e-6)  # what MONAI's DiceLoss gives
    none = PresentClassDiceLoss(to_onehot_y=True, include_background=False, reduction="none")(probs, _target())
    assert none.shape == (2, 2) and none[0, 1] == 0 and none[1, 0] == 0


def test_gradients_flow_only_through_present_classes(random_case):
    logits, _ = random_case(channels=3, spatial=(4, 4))
    kw = {"softmax": True, "to_onehot_y": True, "include_background": False}
    x = logits.clone().requires_grad_(True)
    PresentClassDiceLoss(**kw)(x, _target()).backward()
    # the oracle: MONAI's per-image, per-class terms, of the present pairs only (image 0: class 1, image 1: class 2)
    y = logits.clone().requires_grad_(True)
    terms = DiceLoss(reduction="none", **kw)(y, _target()).reshape(2, 2)
    ((terms[0, 0] + terms[1, 1]) / 2).backward()
    torch.testing.assert_close(x.grad, y.grad)
    assert x.grad.abs().sum() > 0
    empty = torch.zeros(1, 1, 4, 4)  # background only: no present foreground class, a zero loss
    value = PresentClassDiceLoss(softmax=True, to_onehot_y=True, include_background=False)(logits[:1], empty)
    assert value.item() == 0.0


def test_dice_ce_keeps_monai_cross_entropy(random_case):
    logits, _ = random_case(channels=3, spatial=(4, 4), seed=2)
    ours = PresentClassDiceCELoss(softmax=True, to_onehot_y=True, include_background=False, lambda_dice=0.0)
    monai = DiceCELoss(softmax=True, to_onehot_y=True, include_background=False, lambda_dice=0.0)
    assert ours(logits, _target()).item() == pytest.approx(monai(logits, _target()).item())
    both = PresentClassDiceCELoss(softmax=True, to_onehot_y=True, include_background=False)(logits, _target())
    dice = PresentClassDiceLoss(softmax=True, to_onehot_y=True, include_background=False)(logits, _target())
    assert both.item() == pytest.approx(dice.item() + monai(logits, _target()).item(), rel=1e-5)
    with pytest.raises(ValueError, match="batch"):
        PresentClassDiceCELoss(batch=True)


@pytest.mark.parametrize("name", ["dice", "dice_ce"])
def test_setup_option(name, random_case):
    # the setup's option builds the present-class loss (its value), and the default stays MONAI's
    logits, _ = random_case(channels=3, spatial=(4, 4), seed=1)
    target = _target()
    kw = {"softmax": True, "to_onehot_y": True, "include_background": False}
    ours = (PresentClassDiceLoss if name == "dice" else PresentClassDiceCELoss)(**kw)(logits, target)
    monai = (DiceLoss if name == "dice" else DiceCELoss)(**kw)(logits, target)
    assert abs(ours.item() - monai.item()) > 0.1  # absent classes change the value
    option = SegmentationSetup(loss=name, out_channels=3, loss_params={name: {"present_classes_only": True}})
    assert option.loss_function(logits, target).item() == pytest.approx(ours.item(), rel=1e-6)
    default = SegmentationSetup(loss=name, out_channels=3)
    assert default.loss_function(logits, target).item() == pytest.approx(monai.item(), rel=1e-6)


def test_dice_ce_class_weights_reach_the_dice_part(random_case):
    # MONAI's DiceCELoss drops the background weight for its Dice part when the background is excluded: the same here
    logits, _ = random_case(channels=3, spatial=(4, 4), seed=3)
    weight = torch.tensor([0.5, 2.0, 3.0])
    kw = {"softmax": True, "to_onehot_y": True, "include_background": False}
    dice_only = PresentClassDiceCELoss(weight=weight, lambda_ce=0.0, **kw)(logits, _target())
    expected = PresentClassDiceLoss(weight=weight[1:], **kw)(logits, _target())
    unweighted = PresentClassDiceLoss(**kw)(logits, _target())
    assert dice_only.item() == pytest.approx(expected.item(), rel=1e-6)
    assert abs(expected.item() - unweighted.item()) > 1e-3
