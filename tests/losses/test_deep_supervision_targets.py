"""Deep-supervision targets that keep small structures: ``downsample_label`` rules (nearest, max, area) on hand cases,
and ``DeepSupervisionLoss(target_mode=...)`` giving each head the downsampled target while maps stay nearest."""

from __future__ import annotations

import re

import monai.losses
import pytest
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.losses import DiceCELoss

import monai_imbalance.losses.deep_supervision as ds
from monai_imbalance.losses.deep_supervision import DeepSupervisionLoss, downsample_label

MODES = ("nearest", "max", "area")


def _label(shape, points, value=1):
    """``(1, 1, *shape)`` float label with ``value`` at ``points``."""
    label = torch.zeros(1, 1, *shape)
    for p in points:
        label[(0, 0, *p)] = value
    return label


def _onehot(indices, num_classes):
    return F.one_hot(indices[:, 0].long(), num_classes).movedim(-1, 1).to(indices.dtype)


# ------------------------------------------------------------------------------------------------ single pixels


def test_one_pixel_object_is_kept_by_max_at_every_level_and_lost_by_nearest_from_one_quarter():
    label = _label((32, 32), [(5, 9)])
    kept_by_nearest = []
    for factor in (2, 4, 8, 16):
        size = (32 // factor, 32 // factor)
        out = downsample_label(label, size, mode="max")
        expected = torch.zeros(1, 1, *size)
        expected[0, 0, 5 // factor, 9 // factor] = 1  # the one cell holding the pixel
        assert torch.equal(out, expected)
        kept_by_nearest.append(int(downsample_label(label, size, mode="nearest").sum()))
        assert int(downsample_label(label, size, mode="area").sum()) == 0  # 1 pixel of >= 4 is below half a cell
    # nearest-exact samples pixel i * f + f / 2: (5, 9) = (2 * 2 + 1, 2 * 4 + 1) at 1/2, never 4 i + 2 at 1/4
    assert kept_by_nearest == [1, 0, 0, 0]


def test_nearest_is_monais_resize_exactly():
    gen = torch.Generator().manual_seed(0)
    label = torch.randint(0, 4, (2, 1, 15, 13), generator=gen).float()
    for size in [(7, 6), (4, 4), (15, 13), (1, 1)]:
        expected = F.interpolate(label, size=size, mode="nearest-exact")
        assert torch.equal(downsample_label(label, size, mode="nearest"), expected)
    # no value check under nearest: it is MONAI's resize of any tensor
    soft = torch.full((1, 1, 4, 4), 0.5)
    assert torch.equal(downsample_label(soft, (2, 2), mode="nearest"), torch.full((1, 1, 2, 2), 0.5))


# ------------------------------------------------------------------------------------------------ area and max


@pytest.mark.parametrize(
    "mode, threshold, expected",
    [
        ("max", 0.5, [0, 1, 1, 1, 1]),
        ("area", 0.5, [0, 0, 1, 1, 1]),  # 2 of 4 is exactly half: kept (>=)
        ("area", 0.75, [0, 0, 0, 1, 1]),
        ("area", 1.0, [0, 0, 0, 0, 1]),
        ("area", 0.25, [0, 1, 1, 1, 1]),
        ("nearest", 0.5, [0, 0, 0, 0, 1]),  # nearest samples pixel (1, 1) of each cell, set only in the full cell
    ],
)
def test_area_rule_on_2x2_cells_with_0_to_4_foreground_pixels(mode, threshold, expected):
    label = torch.zeros(1, 1, 2, 10)
    order = [(0, 0), (0, 1), (1, 0), (1, 1)]  # pixels of a cell, the sampled (1, 1) last
    for cell in range(5):
        for r, c in order[:cell]:
            label[0, 0, r, 2 * cell + c] = 1
    assert label.sum() == 0 + 1 + 2 + 3 + 4
    out = downsample_label(label, (1, 5), mode=mode, area_threshold=threshold)
    assert out[0, 0, 0].tolist() == expected


@pytest.mark.parametrize(
    "cell, max_class, area_class",
    [
        ([[1, 2], [2, 0]], 2, 2),  # class 2 has most pixels (2 of 4: exactly half)
        ([[1, 2], [0, 0]], 1, 0),  # tie 1:1 -> the smaller class; a quarter each is below half
        ([[3, 3], [2, 1]], 3, 3),
        ([[0, 0], [0, 2]], 2, 0),  # background majority: max still marks the object, area does not
        ([[2, 1], [1, 2]], 1, 1),  # tie 2:2 at exactly half -> the smaller class under both rules
        ([[0, 0], [0, 0]], 0, 0),
    ],
)
def test_multi_class_cell_takes_the_foreground_class_with_most_pixels_ties_to_the_smaller(cell, max_class, area_class):
    label = torch.tensor(cell, dtype=torch.float32)[None, None]
    assert downsample_label(label, (1, 1), mode="max").item() == max_class
    assert downsample_label(label, (1, 1), mode="area").item() == area_class


def test_area_threshold_below_half_takes_a_minority_class():
    label = torch.tensor([[0, 0], [0, 2]], dtype=torch.float32)[None, None]
    assert downsample_label(label, (1, 1), mode="area", area_threshold=0.25).item() == 2
    assert downsample_label(label, (1, 1), mode="area", area_threshold=0.26).item() == 0


def test_classes_pooled_in_chunks_give_the_same_cells_and_ties(monkeypatch):
    gen = torch.Generator().manual_seed(3)
    label = torch.randint(0, 6, (2, 1, 12, 10), generator=gen)
    label[0, 0, :2, :2] = torch.tensor([[5, 2], [2, 5]])  # a 5:2 tie in cell (0, 0) of the 6x5 output
    whole = {m: downsample_label(label, (6, 5), mode=m) for m in ("max", "area")}
    assert whole["max"][0, 0, 0, 0] == 2
    monkeypatch.setattr(ds, "_ONEHOT_BUDGET", 1)  # one class per pooling: the tie spans two chunks
    for mode, expected in whole.items():
        assert torch.equal(downsample_label(label, (6, 5), mode=mode), expected)


# ------------------------------------------------------------------------------------------------ cells


def test_non_divisible_size_covers_every_input_pixel_with_the_adaptive_pooling_cells():
    # 15 -> 4: cells [0, 4), [3, 8), [7, 12), [11, 15) (floor(i 15 / 4), ceil((i + 1) 15 / 4)), by hand
    windows = [range(0, 4), range(3, 8), range(7, 12), range(11, 15)]
    for r in range(15):
        for c in range(15):
            out = downsample_label(_label((15, 15), [(r, c)]), (4, 4), mode="max")[0, 0]
            expected = torch.tensor([[float(r in wr and c in wc) for wc in windows] for wr in windows])
            assert torch.equal(out, expected), (r, c)
            assert out.sum() >= 1
    # nearest misses pixels: 15 -> 4 samples rows/cols floor((i + 0.5) 15 / 4) = 1, 5, 9, 13 only
    missed = sum(
        int(downsample_label(_label((15, 15), [(r, c)]), (4, 4), mode="nearest").sum() == 0)
        for r in range(15)
        for c in range(15)
    )
    assert missed == 15 * 15 - 4 * 4


def test_size_given_as_one_int_and_the_full_size_is_the_identity():
    label = _label((6, 6), [(1, 4)], value=2)
    assert torch.equal(downsample_label(label, 3), downsample_label(label, (3, 3)))
    for mode in MODES:
        assert torch.equal(downsample_label(label, (6, 6), mode=mode), label)


def test_3d_one_voxel_and_a_block():
    label = _label((8, 8, 8), [(5, 2, 7)], value=1)
    label[0, 0, :2, :2, :2] = 2  # a 2x2x2 block, aligned with the 1/2 cells
    half = downsample_label(label, (4, 4, 4), mode="max")
    assert half[0, 0, 2, 1, 3] == 1 and half[0, 0, 0, 0, 0] == 2 and int((half > 0).sum()) == 2
    quarter = downsample_label(label, (2, 2, 2), mode="max")
    assert quarter[0, 0, 1, 0, 1] == 1 and quarter[0, 0, 0, 0, 0] == 2 and int((quarter > 0).sum()) == 2
    area = downsample_label(label, (4, 4, 4), mode="area")
    assert area[0, 0, 0, 0, 0] == 2 and int((area > 0).sum()) == 1  # the block fills its cell, the voxel 1/8
    assert int((downsample_label(label, (2, 2, 2), mode="area") > 0).sum()) == 0  # 8 of 64 voxels
    # nearest-exact samples voxel 2 i + 1 at 1/2: (5, 2, 7) has an even coordinate, the block holds (1, 1, 1)
    nearest = downsample_label(label, (4, 4, 4), mode="nearest")
    assert nearest[0, 0, 0, 0, 0] == 2 and int((nearest > 0).sum()) == 1
    # non-divisible 3-D: 7 -> 3 cells [0, 3), [2, 5), [4, 7): voxel (2, 4, 6) lies in 2 x 2 x 1 cells
    odd = downsample_label(_label((7, 7, 7), [(2, 4, 6)]), (3, 3, 3), mode="max")[0, 0]
    assert odd.nonzero().tolist() == [[0, 1, 2], [0, 2, 2], [1, 1, 2], [1, 2, 2]]


# ------------------------------------------------------------------------------------------------ channels, dtypes


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("spatial, size", [((12, 10), (5, 4)), ((6, 8, 7), (3, 3, 2))])
def test_one_hot_input_stays_one_hot_and_equals_the_downsampled_index_map(mode, spatial, size):
    gen = torch.Generator().manual_seed(1)
    indices = torch.randint(0, 4, (2, 1, *spatial), generator=gen).float()
    onehot = _onehot(indices, 4)
    out = downsample_label(onehot, size, mode=mode)
    assert out.shape == (2, 4, *size) and out.dtype == onehot.dtype
    assert torch.equal(out.sum(1), torch.ones(2, *size))  # background = 1 - any foreground
    assert torch.equal(out, _onehot(downsample_label(indices, size, mode=mode), 4))


def test_multi_label_channels_are_pooled_each_on_its_own():
    label = torch.zeros(1, 2, 4, 4)
    label[0, 0, 0, 0] = 1  # channel 0: one pixel in cell (0, 0)
    label[0, 1, 0:2, 0:2] = 1  # channel 1 overlaps it and fills cell (0, 0)
    label[0, 1, 3, 3] = 1
    out = downsample_label(label, (2, 2), mode="max")
    assert out[0, 0].tolist() == [[1, 0], [0, 0]] and out[0, 1].tolist() == [[1, 0], [0, 1]]
    area = downsample_label(label, (2, 2), mode="area")
    assert area[0, 0].tolist() == [[0, 0], [0, 0]] and area[0, 1].tolist() == [[1, 0], [0, 0]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.uint8, torch.bool])
@pytest.mark.parametrize("mode", MODES)
def test_output_keeps_dtype_and_has_no_gradient(dtype, mode):
    label = _label((8, 8), [(1, 1), (7, 7)]).to(dtype)  # pixels nearest samples at 1/2
    if dtype.is_floating_point:
        label.requires_grad_(True)
    out = downsample_label(label, (4, 4), mode=mode)
    assert out.dtype == dtype and out.device == label.device and not out.requires_grad
    expected = {"nearest": [(0, 0), (3, 3)], "max": [(0, 0), (3, 3)], "area": []}[mode]
    assert [tuple(p) for p in out[0, 0].nonzero().tolist()] == expected


def test_metatensor_is_read_as_its_plain_tensor():
    label = MetaTensor(_label((8, 8), [(2, 3)], value=3))
    out = downsample_label(label, (4, 4))
    assert type(out) is torch.Tensor and out[0, 0, 1, 1] == 3


# ------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "label, kwargs, match",
    [
        (torch.zeros(1, 1, 8, 8), {"size": (4, 4), "mode": "bilinear"}, "mode must be one of 'nearest', 'max', 'area'"),
        (torch.zeros(1, 1, 8, 8), {"size": (4,)}, re.escape("one entry per spatial axis of the label (2), got (4,)")),
        (torch.zeros(1, 1, 8, 8), {"size": (16, 4)}, "larger than the label's spatial shape .8, 8. on axis 0"),
        (torch.zeros(1, 1, 8, 8), {"size": (0, 4)}, "integers >= 1"),
        (torch.zeros(1, 1, 8, 8), {"size": (4, 4), "area_threshold": 0.0}, re.escape("area_threshold must be a number "
                                                                                        "in (0, 1], got 0.0")),
        (torch.zeros(1, 1, 8, 8), {"size": (4, 4), "area_threshold": 1.5}, "area_threshold"),
        (torch.full((1, 1, 8, 8), 0.5), {"size": (4, 4)}, re.escape("label has non-integer values (e.g. [0.5])")),
        (torch.full((1, 1, 8, 8), float("nan")), {"size": (4, 4), "mode": "area"}, "NaN or infinite"),
        (torch.full((1, 1, 8, 8), -1.0), {"size": (4, 4)}, "negative values .min -1."),
        (torch.full((1, 2, 8, 8), 2.0), {"size": (4, 4)}, "must be one-hot or multi-label with 0/1 values"),
        (torch.zeros(1, 8, 8), {"size": (4, 4)}, "must be .B, C, H, W. or"),
    ],
)
def test_bad_inputs_raise_naming_the_problem(label, kwargs, match):
    with pytest.raises(ValueError, match=match):
        downsample_label(label, **kwargs)


def test_bad_loss_arguments_raise():
    with pytest.raises(ValueError, match="target_mode must be one of 'nearest', 'max', 'area', got 'avg'"):
        DeepSupervisionLoss(DiceCELoss(), target_mode="avg")
    with pytest.raises(ValueError, match="area_threshold"):
        DeepSupervisionLoss(DiceCELoss(), target_mode="area", area_threshold=-0.1)


# ------------------------------------------------------------------------------------------------ the loss

# an 8x8 target: a class-1 pixel at (1, 6), a class-2 3x3 block at rows 4..6, cols 1..3; heads at 1/1, 1/2, 1/4
TARGET = torch.zeros(2, 1, 8, 8)
TARGET[:, 0, 1, 6] = 1
TARGET[:, 0, 4:7, 1:4] = 2
# by hand: max marks every 2x2 (4x4) cell holding a pixel; area needs 2 of 4 (8 of 16); nearest samples pixels
# 2 i + 1 at 1/2 (rows and cols 1, 3, 5, 7) and 4 i + 2 at 1/4 (2, 6)
HAND = {
    "max": ([[0, 0, 0, 1], [0, 0, 0, 0], [2, 2, 0, 0], [2, 2, 0, 0]], [[0, 1], [2, 0]]),
    "area": ([[0, 0, 0, 0], [0, 0, 0, 0], [2, 2, 0, 0], [0, 2, 0, 0]], [[0, 0], [2, 0]]),
    "nearest": ([[0, 0, 0, 0], [0, 0, 0, 0], [2, 2, 0, 0], [0, 0, 0, 0]], [[0, 0], [2, 0]]),
}


def _heads(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 3, s, s, generator=gen) for s in (8, 4, 2)]


@pytest.mark.parametrize("mode", MODES)
def test_hand_targets_are_what_downsample_label_gives(mode):
    half, quarter = (torch.tensor(t, dtype=torch.float32).expand(2, 1, -1, -1) for t in HAND[mode])
    assert torch.equal(downsample_label(TARGET, (4, 4), mode=mode), half)
    assert torch.equal(downsample_label(TARGET, (2, 2), mode=mode), quarter)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("weight_mode, weights", [("exp", [1.0, 0.5, 0.25]), ("same", [1.0, 1.0, 1.0])])
def test_loss_is_the_weighted_sum_over_heads_of_the_loss_on_hand_downsampled_targets(mode, weight_mode, weights):
    base = DiceCELoss(to_onehot_y=True, softmax=True)
    heads = _heads()
    targets = [TARGET] + [torch.tensor(t, dtype=torch.float32).expand(2, 1, -1, -1).clone() for t in HAND[mode]]
    expected = sum(w * base(h, t) for w, h, t in zip(weights, heads, targets))
    got = DeepSupervisionLoss(base, weight_mode=weight_mode, target_mode=mode)(heads, TARGET)
    torch.testing.assert_close(got, expected)
    # the modes give different losses here (the pixel at (1, 6) is in the max target only)
    if mode != "max":
        assert not torch.allclose(got, DeepSupervisionLoss(base, weight_mode=weight_mode)(heads, TARGET))


def test_nearest_target_mode_equals_monais_deep_supervision_loss():
    base = DiceCELoss(to_onehot_y=True, softmax=True)
    heads = _heads(seed=4)
    expected = monai.losses.DeepSupervisionLoss(base, weight_mode="exp")(heads, TARGET)
    torch.testing.assert_close(DeepSupervisionLoss(base, target_mode="nearest")(heads, TARGET), expected)


class _Recorder(torch.nn.Module):
    """A loss that records what each head gets."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, input, target, *args, **kwargs):
        self.calls.append((target, args, kwargs))
        return input.sum() * 0


@pytest.mark.parametrize("mode", ["max", "area"])
def test_maps_are_still_resized_by_nearest_while_the_target_follows_target_mode(mode):
    recorder = _Recorder()
    loss = DeepSupervisionLoss(recorder, target_mode=mode)
    weight_map = torch.arange(64, dtype=torch.float32).view(1, 1, 8, 8).expand(2, 1, 8, 8)
    distance = -weight_map
    loss(_heads(), TARGET, distance, weight_map=weight_map, radius=3)
    assert len(recorder.calls) == 3
    full, half, quarter = recorder.calls
    assert full[0] is TARGET and full[2]["weight_map"] is weight_map and full[1][0] is distance
    for (target, args, kwargs), hand, step in zip((half, quarter), HAND[mode], (2, 4)):
        assert torch.equal(target, torch.tensor(hand, dtype=torch.float32).expand(2, 1, -1, -1))
        # nearest-exact samples pixel i * step + step / 2: the map's own values, never a max or a mean
        sampled = weight_map[:, :, step // 2 :: step, step // 2 :: step]
        assert torch.equal(kwargs["weight_map"], sampled) and torch.equal(args[0], -sampled)
        assert kwargs["radius"] == 3  # not a tensor: passed as it is


def test_a_head_larger_than_the_target_gets_monais_nearest_resize_and_a_single_tensor_a_plain_call():
    recorder = _Recorder()
    loss = DeepSupervisionLoss(recorder, weight_mode="same")
    target = _label((4, 4), [(1, 2)])
    loss([torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 8, 8)], target)
    assert torch.equal(recorder.calls[1][0], F.interpolate(target, size=(8, 8), mode="nearest-exact"))
    recorder.calls.clear()
    loss(torch.zeros(1, 2, 4, 4), target)
    assert len(recorder.calls) == 1 and recorder.calls[0][0] is target


def test_downsampling_a_target_reads_one_value_back_to_the_host(host_reads):
    # the label check and the class count come back together (one GPU sync per downsampled head, not two)
    reads = host_reads
    label = torch.zeros(2, 1, 16, 16)
    label[:, :, 3:5, 3:5] = 2
    for target in (label, torch.cat([label == c for c in range(3)], 1).float()):  # index map, one-hot
        reads.clear()
        downsample_label(target, (4, 4), mode="max")
        assert len(reads) == 1, reads


@pytest.mark.parametrize("spatial", [(8, 8), (8, 8, 4)])
@pytest.mark.parametrize("weight_mode", ["exp", "same"])
def test_dynunet_stacked_heads_equal_the_list_of_heads(spatial, weight_mode):
    """MONAI's DynUNet(deep_supervision=True) returns (B, 1 + deep_supr_num, C, *spatial) in training."""
    from monai_imbalance.losses import DilatedBalancedCELoss

    gen = torch.Generator().manual_seed(3)
    heads = [torch.randn(2, 3, *spatial, generator=gen, requires_grad=True) for _ in range(3)]
    target = torch.randint(0, 3, (2, 1, *spatial), generator=gen).float()
    weight_map = torch.rand(2, 1, *spatial, generator=gen) + 0.5
    loss = DeepSupervisionLoss(DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=2),
                               weight_mode=weight_mode)
    expected = loss(heads, target, weight_map=weight_map)
    stacked = torch.stack(heads, dim=1)
    assert stacked.ndim == target.ndim + 1
    got = loss(stacked, target, weight_map=weight_map)
    torch.testing.assert_close(got, expected)
    # the stacked tensor is not read as one head: the list of three heads weighs them like the list does
    assert not torch.allclose(got, DeepSupervisionLoss(loss.loss)(heads[0], target, weight_map=weight_map))
    got.backward()
    assert all(h.grad is not None and torch.isfinite(h.grad).all() and h.grad.abs().sum() > 0 for h in heads)


def test_dynunet_training_output_goes_through_the_loss():
    from monai.networks.nets import DynUNet

    net = DynUNet(spatial_dims=2, in_channels=1, out_channels=2, kernel_size=[3, 3, 3], strides=[1, 2, 2],
                  upsample_kernel_size=[2, 2], deep_supervision=True, deep_supr_num=1, res_block=True)
    image = torch.randn(2, 1, 16, 16)
    target = torch.zeros(2, 1, 16, 16)
    target[:, :, 4:9, 4:9] = 1
    out = net.train()(image)
    assert out.shape == (2, 2, 2, 16, 16)
    loss = DeepSupervisionLoss(DiceCELoss(to_onehot_y=True, softmax=True), weight_mode="same")
    torch.testing.assert_close(loss(out, target), loss(list(out.unbind(1)), target))
