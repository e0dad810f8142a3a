"""MONAI's input arguments, held once by :class:`SegmentationLoss` for every loss of the package."""

from __future__ import annotations

import doctest
import importlib
import inspect

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_imbalance import losses
from monai_imbalance.losses import SegmentationLoss
from monai_imbalance.losses.base import INPUT_ARGUMENTS
from monai_imbalance.losses.present_class_dice import PresentClassDiceCELoss, PresentClassDiceLoss

INPUT_ARGS = ["include_background", "to_onehot_y", "sigmoid", "softmax", "other_act"]
LOSSES = [
    losses.BalancedCELoss,
    losses.DilatedBalancedCELoss,
    losses.UncertaintyWeightedCELoss,
    losses.BoundaryLoss,
    losses.ModifiedBoundaryLoss,
    losses.DIBEDisLoss,
    losses.DIBERegLoss,
    losses.DIBELoss,
    losses.FocalTverskyLoss,
    losses.ComboLoss,
    losses.ExpLogLoss,
    losses.HybridFocalLoss,
    PresentClassDiceLoss,
]
ids = [cls.__name__ for cls in LOSSES]


@pytest.mark.parametrize("cls", LOSSES, ids=ids)
def test_signature_starts_with_monais_input_arguments(cls):
    params = inspect.signature(cls).parameters
    assert list(params)[:5] == INPUT_ARGS
    defaults = [params[name].default for name in INPUT_ARGS]
    # Wu's loss is defined on foreground classes: its one documented difference
    assert defaults == [cls is not losses.ModifiedBoundaryLoss, False, False, False, None]
    assert params["reduction"].default == "mean"
    loss = cls(include_background=False, to_onehot_y=True, softmax=True, reduction="sum")
    assert loss.input_args() == dict(zip(INPUT_ARGS, [False, True, False, True, None]))
    assert loss.reduction == "sum"


@pytest.mark.parametrize("cls", [*LOSSES, PresentClassDiceCELoss], ids=[*ids, "PresentClassDiceCELoss"])
def test_signature_shows_every_argument_with_its_default(cls):
    params = inspect.signature(cls).parameters
    assert list(params)[:5] == list(INPUT_ARGUMENTS) == INPUT_ARGS
    assert all(p.default is not inspect.Parameter.empty for p in params.values())
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params.values())


def test_compound_parts_get_the_losss_own_arguments():
    # the parts are built from the compound's arguments picked by name (arguments_for): each part gets its own
    kw = {"include_background": False, "to_onehot_y": True, "softmax": True, "reduction": "sum", "weight": [1.0, 2.0]}
    region = {"smooth_nr": 0.1, "smooth_dr": 0.2, "batch": True}
    dibe = losses.DIBELoss(alpha=0.4, gamma_dis=1.0, gamma_reg=2.0, lambda_=0.6, **kw, **region)
    hybrid = losses.HybridFocalLoss(alpha=0.4, gamma_focal=1.0, gamma_ft=2.0, lambda_=0.6, **kw, **region)
    for dis, reg in ((dibe.dis, dibe.reg), (hybrid.focal, hybrid.focal_tversky)):
        for part in (dis, reg):
            assert part.input_args() == dibe.input_args() and part.reduction == "sum"
            torch.testing.assert_close(part.class_weight, torch.tensor([1.0, 2.0]))
        assert (dis.gamma, dis.lambda_, dis.smooth_nr, dis.batch) == (1.0, 0.6, 1e-5, False)  # no region arguments
        assert (reg.alpha, reg.beta, reg.gamma) == (0.4, pytest.approx(0.6), 2.0)
        assert (reg.smooth_nr, reg.smooth_dr, reg.batch) == (0.1, 0.2, True)
    assert (dibe.dis.alpha, dibe.dis.beta) == (0.4, pytest.approx(0.6))
    assert (hybrid.focal.alpha, hybrid.focal.beta) == (0.0, 0.0)  # the focal part has no regulators
    kw["weight"] = torch.tensor([1.0, 2.0])  # MONAI's DiceCELoss takes a tensor only
    dice = PresentClassDiceCELoss(squared_pred=True, smooth_nr=0.1, lambda_ce=0.5, **kw).dice
    assert type(dice) is PresentClassDiceLoss and dice.input_args() == dibe.input_args()
    assert (dice.reduction, dice.dice.squared_pred, dice.dice.smooth_nr, dice.dice.batch) == ("sum", True, 0.1, False)
    assert dice.dice.reduction == "none"
    torch.testing.assert_close(dice.dice.class_weight, torch.tensor([2.0]))  # background dropped by MONAI's part


@pytest.mark.parametrize("cls", LOSSES, ids=ids)
def test_argument_errors_are_monais(cls):
    with pytest.raises(ValueError, match=r"Incompatible values: more than 1 of \[sigmoid=True, softmax=True"):
        cls(sigmoid=True, softmax=True)
    with pytest.raises(ValueError, match=r"Incompatible values"):
        cls(softmax=True, other_act=torch.tanh)
    with pytest.raises(TypeError, match="other_act must be None or callable"):
        cls(other_act="relu")
    with pytest.raises(ValueError, match=r"Unsupported reduction: median, available options are"):
        cls(reduction="median")


@pytest.mark.parametrize("cls", [c for c in LOSSES if c is not PresentClassDiceLoss], ids=lambda c: c.__name__)
def test_metatensor_inputs_give_the_tensor_value_and_numpy_is_refused(cls, synthetic_batch):
    logits, target = synthetic_batch(shape=(12, 10), num_classes=3, seed=1)
    loss = cls(softmax=True, to_onehot_y=True)
    expected = loss(logits, target.float())
    value = loss(MetaTensor(logits, meta={"filename_or_obj": "x.nii"}), MetaTensor(target.float()))
    assert type(value) is torch.Tensor and value.item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(TypeError, match="input must be a torch.Tensor"):
        loss(np.asarray(logits), target)


def test_prepare_runs_monais_steps_in_order(random_case, onehot):
    logits, labels = random_case(channels=3, spatial=(4, 5, 3), seed=2)  # 3-D
    base = SegmentationLoss(softmax=True, to_onehot_y=True, include_background=False)
    probs, target = base.prepare(MetaTensor(logits), labels)
    torch.testing.assert_close(probs, torch.softmax(logits, 1)[:, 1:])
    torch.testing.assert_close(target, onehot(labels, 3)[:, 1:])
    assert type(probs) is torch.Tensor and type(target) is torch.Tensor
    probs, target = base.prepare(logits, labels, include_background=True)  # the override keeps channel 0
    torch.testing.assert_close(probs, torch.softmax(logits, 1))
    torch.testing.assert_close(target, onehot(labels, 3))
    # the shapes as given (checked before the one-hot and the background drop)
    with pytest.raises(ValueError, match=r"ground truth has different shape \(\(2, 1, 4, 5, 2\)\) from input "
                                         r"\(\(2, 3, 4, 5, 3\)\)"):
        base.prepare(logits, labels[..., :2])


def test_apply_reduction():
    values = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    assert SegmentationLoss(reduction="mean").apply_reduction(values).item() == 3.0
    assert SegmentationLoss(reduction="sum").apply_reduction(values).item() == 12.0
    assert SegmentationLoss(reduction="none").apply_reduction(values) is values


@pytest.mark.parametrize("module", ["balanced_ce", "boundary", "compound", "dibe", "present_class_dice", "tversky"])
def test_docstring_examples(module):
    # the Examples in the docstrings hold known values (by hand, in their comments): run them
    mod = importlib.import_module(f"monai_imbalance.losses.{module}")
    failed, attempted = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0
