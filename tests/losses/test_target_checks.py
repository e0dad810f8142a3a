"""Every loss checks its target the same way: class indices that are not whole numbers or out of range, and a target
or a map whose shape does not match the input, raise a ``ValueError`` with the package's message."""

from __future__ import annotations

import inspect
import re
import warnings

import monai.losses
import numpy as np
import pytest
import torch
from torch.nn.modules.loss import _Loss

import monai_imbalance.losses as ours
from monai_imbalance.engines import LOSS_NAMES, SegmentationSetup
from monai_imbalance.losses.present_class_dice import PresentClassDiceCELoss, PresentClassDiceLoss
from monai_imbalance.losses.utils import check_class_indices
from monai_imbalance.utils import validate_label

SHAPE = re.escape("ground truth has different shape")
NON_INTEGER = re.escape("target has non-integer values (e.g. [0.5]); labels must hold class indices.")
# bases that are not losses by themselves (no forward of their own)
ABSTRACT = {"SegmentationLoss", "PixelWeightedCELoss", "DistanceMapLoss"}


def _exported_losses() -> dict[str, type]:
    found = {name: obj for name, obj in inspect.getmembers(ours, inspect.isclass) if issubclass(obj, _Loss)}
    return {name: cls for name, cls in found.items() if name not in ABSTRACT}


def _build_exported(name: str, **kwargs):
    """An instance of an exported loss class with MONAI's activation arguments ``kwargs``."""
    cls = getattr(ours, name)
    if name == "RegionBoundaryLoss":
        return cls(ours.CheckedDiceLoss(**kwargs), ours.BoundaryLoss(**kwargs))
    if name == "DeepSupervisionLoss":
        return cls(ours.DIBELoss(**kwargs))
    if name == "BlobLoss":
        return cls(ours.DIBELoss(**kwargs))
    return cls(**kwargs)


EXPORTED = sorted(_exported_losses())
SOFTMAX = {"softmax": True, "to_onehot_y": True}


def _labels(batch=2, size=(8, 8), channels=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, *size, generator=gen)
    y = torch.zeros(batch, 1, *size)
    y[:, :, 2:5, 2:6] = 1.0
    y[:, :, 5:7, 1:3] = channels - 1
    return x, y


def _call(loss, x, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI's one-channel warnings are not what is tested here
        return loss(x, y, **kwargs)


def _setup_loss(name: str, out_channels: int):
    return SegmentationSetup(loss=name, crop="none", out_channels=out_channels).loss


def test_every_exported_loss_is_covered():
    # a new exported loss joins these tests by itself; a new abstract base must be named in ABSTRACT
    assert {"DIBELoss", "CheckedDiceLoss", "CheckedDiceCELoss", "RegionBoundaryLoss"} <= set(EXPORTED)
    assert not ABSTRACT & set(EXPORTED)


# ------------------------------------------------------------------------------------ float class indices (0.5)


@pytest.mark.parametrize("name", EXPORTED)
def test_exported_losses_reject_non_integer_class_indices(name):
    loss = _build_exported(name, **SOFTMAX)
    x, y = _labels()
    assert torch.isfinite(_call(loss, x, y)).all()  # whole-valued float labels are fine
    y[0, 0, 0, 0] = 0.5
    with pytest.raises(ValueError, match=NON_INTEGER):
        _call(loss, x, y)


@pytest.mark.parametrize("name", [*LOSS_NAMES])
def test_registry_losses_reject_non_integer_class_indices(name):
    loss = _setup_loss(name, 3)
    x, y = _labels()
    y[1, 0, 3, 3] = 1.5
    with pytest.raises(ValueError, match=re.escape("target has non-integer values (e.g. [1.5])")):
        _call(loss, x, y)


def test_non_integer_message_is_the_transforms_message():
    y = torch.zeros(1, 1, 4, 4)
    y[0, 0, 1, 1], y[0, 0, 2, 2] = 0.5, 0.25
    with pytest.raises(ValueError) as from_transforms:
        validate_label(y, name="target")
    with pytest.raises(ValueError) as from_losses:
        check_class_indices(y, 2)
    assert str(from_losses.value) == str(from_transforms.value)
    assert "e.g. [0.25, 0.5]" in str(from_losses.value)


def test_nan_class_index_is_named():
    y = torch.zeros(1, 1, 4, 4)
    y[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="target contains NaN or infinite values; labels must be class indices"):
        ours.DIBELoss(**SOFTMAX)(torch.randn(1, 3, 4, 4), y)


@pytest.mark.parametrize("name", ["BalancedCELoss", "DilatedBalancedCELoss", "UncertaintyWeightedCELoss",
                                  "BoundaryLoss", "ModifiedBoundaryLoss"])
def test_one_channel_pixel_and_distance_losses_reject_a_non_binary_mask(name):
    # their weights and distance maps are computed from the mask's classes: 0.5 is no class, 255 is out of range
    loss = _build_exported(name, sigmoid=True)
    x, y = _labels(channels=1)
    assert torch.isfinite(_call(loss, x, y)).all()
    y[0, 0, 0, 0] = 0.5
    with pytest.raises(ValueError, match=NON_INTEGER):
        _call(loss, x, y)
    y[0, 0, 0, 0] = 255
    with pytest.raises(ValueError, match=re.escape("but the one-channel (binary) output (valid values 0..1)")):
        _call(loss, x, y)


# ------------------------------------------------------------------------- targets documented as one-hot or soft


@pytest.mark.parametrize("name", ["DIBELoss", "DIBEDisLoss", "DIBERegLoss", "FocalTverskyLoss", "ComboLoss",
                                  "ExpLogLoss", "HybridFocalLoss", "CheckedDiceLoss", "CheckedDiceCELoss",
                                  "BalancedCELoss"])
def test_soft_one_hot_targets_still_work(name):
    # the one-vs-rest losses document one-hot targets read as hard labels (target > 0.5), MONAI's Dice soft targets,
    # the CE soft one-hot targets: none of them is a class-index map
    loss = _build_exported(name, softmax=True)
    x, _ = _labels()
    soft = torch.softmax(torch.randn(x.shape, generator=torch.Generator().manual_seed(3)), 1)
    value = _call(loss, x, soft)
    assert torch.isfinite(value).all()


@pytest.mark.parametrize("name", ["DIBELoss", "FocalTverskyLoss", "CheckedDiceLoss"])
def test_one_channel_soft_target_of_region_losses_still_works(name):
    loss = _build_exported(name, sigmoid=True)
    x, y = _labels(channels=1)
    y[0, 0, 0, 0] = 0.5
    assert torch.isfinite(_call(loss, x, y)).all()


def test_checked_monai_losses_give_monais_values():
    x, y = _labels()
    for ours_cls, monai_cls, kwargs in [
        (ours.CheckedDiceLoss, monai.losses.DiceLoss, {"include_background": False}),
        (ours.CheckedDiceCELoss, monai.losses.DiceCELoss, {"lambda_ce": 0.5}),
        (ours.CheckedGeneralizedDiceLoss, monai.losses.GeneralizedDiceLoss, {}),
    ]:
        torch.testing.assert_close(ours_cls(**SOFTMAX, **kwargs)(x, y), monai_cls(**SOFTMAX, **kwargs)(x, y))


def test_checked_dice_allows_monais_ignore_index():
    x, y = _labels()
    y[0, 0, 0, 0] = 255
    loss = ours.CheckedDiceLoss(**SOFTMAX, ignore_index=255)
    torch.testing.assert_close(loss(x, y), monai.losses.DiceLoss(**SOFTMAX, ignore_index=255)(x, y))
    with pytest.raises(ValueError, match=re.escape("target has class values in [0, 255]")):
        ours.CheckedDiceLoss(**SOFTMAX)(x, y)


def test_integer_targets_out_of_range_are_named():
    from monai_imbalance.losses.utils import check_target

    x, y = _labels()
    y[0, 0, 0, 0] = -1
    with pytest.raises(ValueError, match=re.escape("class values in [-1, 2] but the input has 3 channels")):
        check_target(x, y.long(), to_onehot_y=True)


# ------------------------------------------------------------------------------------------ shapes of the target


def _mismatched_targets(channels: int, index_target: bool):
    n = 1 if index_target else channels
    return {
        "batch": torch.zeros(3, n, 8, 8),
        "spatial": torch.zeros(2, n, 8, 7),
        "depth": torch.zeros(2, n, 8, 8, 2),
    }


def _assert_shape_error(loss, x, target, **kwargs):
    with pytest.raises(ValueError, match=SHAPE) as error:
        _call(loss, x, target, **kwargs)
    message = str(error.value)
    assert str(tuple(target.shape)) in message and str(tuple(x.shape)) in message, message


@pytest.mark.parametrize("case", ["batch", "spatial", "depth"])
@pytest.mark.parametrize("out_channels", [1, 2, 3], ids=["sigmoid", "softmax2", "softmax3"])
@pytest.mark.parametrize("name", [*LOSS_NAMES])
def test_registry_losses_name_both_shapes(name, out_channels, case):
    loss = _setup_loss(name, out_channels)
    x = torch.randn(2, out_channels, 8, 8)
    _assert_shape_error(loss, x, _mismatched_targets(out_channels, True)[case])


@pytest.mark.parametrize("case", ["batch", "spatial", "depth"])
@pytest.mark.parametrize("kwargs", [SOFTMAX, {"softmax": True}, {"sigmoid": True}],
                         ids=["index", "onehot", "sigmoid"])
@pytest.mark.parametrize("name", EXPORTED)
def test_exported_losses_name_both_shapes(name, kwargs, case):
    loss = _build_exported(name, **kwargs)
    x = torch.randn(2, 3, 8, 8)
    _assert_shape_error(loss, x, _mismatched_targets(3, "to_onehot_y" in kwargs)[case])


def test_dibe_batch_mismatch_is_the_packages_message():
    # input [2, C, H, W] and target [3, 1, H, W]: the package's shape message, not torch's broadcasting error (or,
    # with two classes, a number)
    for channels in (2, 3):
        with pytest.raises(ValueError, match=re.escape(
            f"ground truth has different shape ((3, 1, 8, 8)) from input ((2, {channels}, 8, 8))."
        )):
            ours.DIBELoss(**SOFTMAX)(torch.randn(2, channels, 8, 8), torch.zeros(3, 1, 8, 8))


MAP_LOSSES = {
    "dbce": "weight_map",
    "uncertainty_ce": "weight_map",
    "boundary": "dist_map",
    "modified_boundary": "dist_map",
}


@pytest.mark.parametrize("shape", [(3, 1, 8, 8), (2, 1, 8, 7), (2, 5, 8, 8), (2, 1, 8, 8, 1)])
@pytest.mark.parametrize("name", sorted(MAP_LOSSES))
def test_maps_passed_with_a_wrong_shape_are_named(name, shape):
    setup = SegmentationSetup(loss=name, crop="none", out_channels=3)
    assert set(setup.loss_inputs) == {MAP_LOSSES[name]}
    x, y = _labels()
    if MAP_LOSSES[name] == "dist_map" and shape[1] == 1:
        shape = (shape[0], 3, *shape[2:])  # one map per channel
    with pytest.raises(ValueError, match=re.escape(f"got {shape}")):
        _call(setup.loss, x, y, **{MAP_LOSSES[name]: torch.zeros(shape)})


def test_one_check_per_forward(monkeypatch):
    # the class-index check is one reduction per forward: DIBELoss computes both parts from one pass
    import monai_imbalance.losses._one_vs_rest_kernels as kernels

    calls = []
    original = kernels.check_class_indices
    monkeypatch.setattr(kernels, "check_class_indices", lambda *a, **k: calls.append(1) or original(*a, **k))
    x, y = _labels()
    ours.DIBELoss(**SOFTMAX)(x, y)
    assert len(calls) == 1


def test_present_class_dice_checks_its_target():
    x, y = _labels()
    y[0, 0, 0, 0] = 0.5
    for cls in (PresentClassDiceLoss, PresentClassDiceCELoss):
        with pytest.raises(ValueError, match=NON_INTEGER):
            cls(**SOFTMAX)(x, y)
    with pytest.raises(ValueError, match=SHAPE):
        PresentClassDiceLoss(**SOFTMAX)(x, torch.zeros(3, 1, 8, 8))
    assert np.isfinite(PresentClassDiceCELoss(**SOFTMAX)(x, y.round()).item())
