"""Comparison setups by name: every loss and crop runs a training iteration; errors name the valid options."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.data import DataLoader, Dataset
from monai.transforms import Compose, EnsureTyped

import monai_imbalance.losses as ours
from monai_imbalance.engines import (
    CROP_NAMES,
    LOSS_NAMES,
    PAPER_SETUPS,
    SegmentationSetup,
    SupervisedTrainerWithLossInputs,
    paper_setup,
)
from monai_imbalance.losses import DeepSupervisionLoss


def _items(n=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        label = np.zeros((1, size, size), dtype=np.uint8)
        y, x = rng.integers(2, size // 2, 2)
        label[0, y : y + 10 + i, x : x + 8] = 1
        image = rng.random((3, size, size)).astype(np.float32) + label
        items.append({"image": image, "label": label})
    return items


class _TwoHeads(torch.nn.Module):
    """A tiny network; with ``heads`` it returns a list in training (deep supervision), one tensor in eval."""

    def __init__(self, out_channels: int, heads: int = 1):
        super().__init__()
        self.convs = torch.nn.ModuleList(torch.nn.Conv2d(3, out_channels, 3, padding=1) for _ in range(heads))

    def forward(self, x):
        outs = [conv(x) for conv in self.convs]
        return outs if (self.training and len(outs) > 1) else outs[0]


def _train_one_epoch(setup: SegmentationSetup, heads: int = 1, size: int = 32):
    transforms = Compose(setup.precompute_transforms + setup.crop_transforms + setup.map_transforms
                         + [EnsureTyped(keys=["image", "label"], dtype=torch.float32, track_meta=False)])
    loader = DataLoader(Dataset(_items(size=size), transforms), batch_size=2, num_workers=0)
    net = _TwoHeads(setup.out_channels, heads)
    before = [p.detach().clone() for p in net.parameters()]
    trainer = SupervisedTrainerWithLossInputs(
        device=torch.device("cpu"), max_epochs=1, train_data_loader=loader, network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.1), loss_function=setup.loss_function,
        loss_inputs=setup.loss_inputs, train_handlers=setup.train_handlers, decollate=False)
    losses = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED,
                              lambda e: losses.append(float(e.state.output["loss"].detach())))
    trainer.run()
    moved = any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
    return losses, moved, trainer


@pytest.mark.parametrize("out_channels", [1, 2], ids=["sigmoid", "softmax"])
@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_every_loss_trains_one_epoch(loss, out_channels):
    setup = SegmentationSetup(loss=loss, crop="none", out_channels=out_channels)
    received = []
    setup.loss.register_forward_pre_hook(lambda module, args, kwargs: received.append(dict(kwargs)),
                                         with_kwargs=True)
    losses, moved, trainer = _train_one_epoch(setup)
    assert len(losses) == 2 and all(np.isfinite(losses)), losses
    assert moved, "the optimizer step changed no weight"
    assert trainer.state.epoch == 1
    # the trainer passed each map the setup computes to the loss, under the loss's argument name
    assert len(received) == 2 and all(set(kw) == set(setup.loss_inputs) for kw in received)
    assert list(setup.loss_inputs.values()) == setup.map_keys
    if setup.map_keys:
        assert all(kw[arg].shape[0] == 2 and kw[arg].shape[2:] == (32, 32) for kw in received for arg in kw)


def test_loss_inputs_reach_the_loss_with_the_batch_values():
    setup = SegmentationSetup(loss="dbce", crop="none", out_channels=1, loss_params={"dbce": {"radius": 2}})
    seen = []
    setup.loss.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["weight_map"].clone()),
                                         with_kwargs=True)
    transforms = Compose(setup.map_transforms)
    expected = torch.stack([torch.as_tensor(transforms(dict(it))["label_weight"]) for it in _items()[:2]])
    _train_one_epoch(setup)
    assert torch.allclose(seen[0].float(), expected.float())


def test_missing_map_key_names_the_key_and_the_fix():
    setup = SegmentationSetup(loss="dbce", crop="none", out_channels=1)
    setup.map_transforms = []  # a pipeline without the map transforms
    with pytest.raises(KeyError, match="label_weight.*map_transforms"):
        _train_one_epoch(setup)


@pytest.mark.parametrize("loss", ["dbce", "boundary", "ce"])
def test_deep_supervision_setup_trains(loss):
    setup = SegmentationSetup(loss=loss, crop="none", out_channels=2, deep_supervision=True)
    assert isinstance(setup.loss_function, DeepSupervisionLoss)
    losses, moved, _ = _train_one_epoch(setup, heads=3)
    assert all(np.isfinite(losses)) and moved


def test_boundary_weight_is_scheduled():
    setup = SegmentationSetup(loss="boundary", crop="none", out_channels=1,
                              loss_params={"boundary": {"initial_weight": 0.2, "step": 0.5}})
    _train_one_epoch(setup)
    assert setup.loss.boundary_weight == pytest.approx(0.2)  # epoch 1 of the schedule
    assert setup.map_keys == ["label_sdm"]


@pytest.mark.parametrize("crop", CROP_NAMES)
def test_every_crop_gives_roi_sized_samples(crop):
    setup = SegmentationSetup(loss="dbce", crop=crop, out_channels=1, roi_size=(16, 16), num_samples=2,
                              crop_params={"mac": {"rho": 0.25, "tau": 1, "stride": 4}})
    pipeline = Compose(setup.precompute_transforms + setup.crop_transforms + setup.map_transforms)
    out = pipeline(_items(1)[0])
    samples = out if isinstance(out, list) else [out]
    expected = (1, 16, 16) if crop != "none" else (1, 32, 32)
    assert len(samples) == (1 if crop == "none" else 2)
    for s in samples:
        assert tuple(s["label"].shape) == expected and tuple(s["image"].shape) == (3,) + expected[1:]
        assert tuple(s["label_weight"].shape) == expected  # map computed on the sample itself
        assert not any(k.endswith(("_mac_windows", "_pc_centers")) for k in s)  # records consumed by the crop
    if crop == "mac":  # tau=1: every crop is a MAC crop with at least 25% foreground
        for s in samples:
            assert s["label"].meta["crop_kind"] == "mac"
            assert float(s["label"].float().mean()) >= 0.25
    if crop == "probabilistic":
        assert all(s["label"].meta["crop_kind"] == "pc" for s in samples)


def test_train_one_epoch_with_mac_crop():
    setup = SegmentationSetup(loss="ce", crop="mac", out_channels=1, roi_size=16, crop_params={"mac": {"stride": 4}})
    losses, moved, _ = _train_one_epoch(setup)
    assert len(losses) == 2 and moved


def test_paper_setups():
    assert set(PAPER_SETUPS) == {"NC", "RC", "PC", "MAC", "NCW", "RCW"}
    assert paper_setup("mac") == {"crop": "mac", "loss": "ce"}
    assert paper_setup("RCW") == {"crop": "random", "loss": "balanced_ce"}
    with pytest.raises(ValueError, match="NCW"):
        paper_setup("XYZ")


def test_paper_defaults_and_params():
    mac = SegmentationSetup(crop="mac", roi_size=224)
    assert mac.crop_params == {"rho": 0.25, "tau": 5, "stride": 16}
    dbce = SegmentationSetup(loss="dbce", loss_params={"dbce": {"radius": 10}, "dibe": {"alpha": 0.5}})
    assert dbce.loss.radius == 10  # other losses' entries are ignored
    dibe = SegmentationSetup(loss="dibe")  # the paper's (alpha, beta) = (0.3, 0.7) is alpha=0.7 (FP), beta=0.3 (FN)
    assert (dibe.loss_params["alpha"], dibe.loss_params["beta"]) == (0.7, 0.3)
    ce = SegmentationSetup(loss="ce", out_channels=1)
    assert ce.loss.class_weight.tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"loss": "focal"}, "dice_ce"),
        ({"crop": "center", "roi_size": 8}, "probabilistic"),
        ({"crop": "random"}, "roi_size"),
        ({"loss_params": {"radius": 3}}, "keyed by loss name"),
        ({"crop_params": {"rho": 0.5}}, "keyed by crop name"),
        ({"out_channels": 0}, "out_channels"),
    ],
)
def test_bad_setups_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SegmentationSetup(**kwargs)


def test_deep_supervision_loss_passes_maps_to_every_head():
    base = ours.DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=1)
    loss = DeepSupervisionLoss(base, weight_mode="exp")
    target = torch.zeros(2, 1, 8, 8)
    target[:, :, 2:5, 2:5] = 1
    heads = [torch.randn(2, 2, 8, 8), torch.randn(2, 2, 8, 8)]
    weight_map = torch.rand(2, 1, 8, 8)
    expected = base(heads[0], target, weight_map=weight_map) + 0.5 * base(heads[1], target, weight_map=weight_map)
    assert torch.allclose(loss(heads, target, weight_map=weight_map), expected)
    # a smaller head gets the map resized like MONAI resizes the target, the target by the max rule (default
    # target_mode): rows/cols 2..4 touch the 2x2 cells 1 and 2
    small = torch.randn(2, 2, 4, 4)
    value = loss([heads[0], small], target, weight_map=weight_map)
    resized = torch.nn.functional.interpolate(weight_map, size=(4, 4), mode="nearest-exact")
    small_target = torch.zeros(2, 1, 4, 4)
    small_target[:, :, 1:3, 1:3] = 1
    manual = base(heads[0], target, weight_map=weight_map) + 0.5 * base(small, small_target, weight_map=resized)
    assert torch.allclose(value, manual)
    # target_mode="nearest": MONAI's resize of the target too
    nearest = DeepSupervisionLoss(base, weight_mode="exp", target_mode="nearest")
    nearest_target = torch.nn.functional.interpolate(target, size=(4, 4), mode="nearest-exact")
    manual = base(heads[0], target, weight_map=weight_map) + 0.5 * base(small, nearest_target, weight_map=resized)
    assert torch.allclose(nearest([heads[0], small], target, weight_map=weight_map), manual)
    # a single tensor (evaluation output) is a plain call
    assert torch.allclose(loss(heads[0], target, weight_map=weight_map), base(heads[0], target, weight_map=weight_map))


@pytest.mark.parametrize("loss,present_classes_only", [("dice", False), ("dice_ce", False), ("boundary", False),
                                                        ("dice", True), ("dice_ce", True)])
def test_monai_based_losses_check_labels_like_the_packages_own(loss, present_classes_only):
    # labels out of range raise the package's ValueError, not torch's "index 2 is out of bounds for dimension 1 ..."
    params = {loss: {"present_classes_only": True}} if present_classes_only else None
    setup = SegmentationSetup(loss=loss, crop="none", out_channels=2, loss_params=params)
    x = torch.randn(2, 2, 8, 8)
    target = torch.zeros(2, 1, 8, 8)
    target[0, 0, 2:4, 2:4] = 1
    assert torch.isfinite(setup.loss_function(x, target))
    target[1, 0, 5, 5] = 2
    with pytest.raises(ValueError, match=re.escape(
        "target has class values in [0, 2] but the input has 2 channels (valid values 0..1)."
    )):
        setup.loss_function(x, target)
    target[1, 0, 5, 5] = 0.5
    with pytest.raises(ValueError, match=re.escape("target has non-integer values (e.g. [0.5])")):
        setup.loss_function(x, target)
    with pytest.raises(ValueError, match=re.escape("ground truth has different shape ((3, 1, 8, 8)) from input")):
        setup.loss_function(x, torch.zeros(3, 1, 8, 8))


@pytest.mark.parametrize("mode", ["max", "area", "nearest"])
def test_deep_supervision_target_mode_reaches_the_loss(mode):
    setup = SegmentationSetup(loss="dice", crop="none", out_channels=2, deep_supervision=True,
                              deep_supervision_target_mode=mode)
    assert isinstance(setup.loss_function, DeepSupervisionLoss) and setup.loss_function.target_mode == mode
    target = torch.zeros(1, 1, 8, 8)
    target[..., 0, 0] = 1  # one pixel: in the 4x4 head's target under "max" only
    heads = [torch.randn(1, 2, 8, 8), torch.randn(1, 2, 4, 4)]
    from monai_imbalance.losses import downsample_label

    expected = setup.loss(heads[0], target) + setup.loss(heads[1], downsample_label(target, (4, 4), mode=mode))
    assert setup.loss_function(heads, target).item() == pytest.approx(expected.item(), rel=1e-6)
