"""Balanced CE, DBCE and Bressan's uncertainty-weighted CE, and their base :class:`PixelWeightedCELoss`."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.networks import one_hot

from monai_imbalance.apps.synthetic import make_synthetic_pair
from monai_imbalance.losses import (
    BalancedCELoss,
    DilatedBalancedCELoss,
    PixelWeightedCELoss,
    UncertaintyWeightedCELoss,
)
from monai_imbalance.transforms import DilationWeightMap, UncertaintyWeightMap

HAND_CASE = math.log(2) * (5 / 6 + 20 / 26)  # 1.1108128


def hand_target():
    target = torch.zeros(1, 1, 5, 5)
    target[0, 0, 2, 2] = 1
    return target


# -------------------------------------------------------------------------------------------------------- DBCE


@pytest.mark.parametrize(
    "kwargs, channels, onehot_target",
    [
        (dict(softmax=True, to_onehot_y=True), 2, False),  # CE read from class indices
        (dict(softmax=True), 2, True),  # one-hot target
        (dict(sigmoid=True), 1, False),  # binary, one channel
        (dict(other_act=lambda x: torch.softmax(x, 1), to_onehot_y=True), 2, False),  # probabilities
    ],
)
def test_dbce_hand_case(kwargs, channels, onehot_target):
    target = hand_target()
    if onehot_target:
        target = one_hot(target, 2)
    logits = torch.zeros(1, channels, 5, 5, requires_grad=True)
    loss = DilatedBalancedCELoss(radius=1, **kwargs)(logits, target)
    assert loss.item() == pytest.approx(HAND_CASE, rel=1e-6)
    assert loss.item() == pytest.approx(1.1108128, abs=1e-7)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_dbce_radius_zero_is_balanced_ce_with_inverse_count_plus_one(synthetic_batch):
    logits, target = synthetic_batch(batch=2)
    loss = DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=0)(logits, target)
    ce = F.cross_entropy(logits, target[:, 0], reduction="none")
    expected = 0.0
    for b in range(2):
        counts = torch.bincount(target[b].reshape(-1), minlength=3).double()
        expected += (ce[b].double() / (1 + counts[target[b, 0]])).sum() / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # one image: BalancedCELoss with the given weights 1/(1+n_c) and reduction="sum" is the same loss
    counts = torch.bincount(target[0].reshape(-1), minlength=3).double()
    balanced = BalancedCELoss(softmax=True, to_onehot_y=True, reduction="sum", weight=1 / (1 + counts))
    dbce = DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=0)
    assert dbce(logits[:1], target[:1]).item() == pytest.approx(balanced(logits[:1], target[:1]).item(), rel=1e-5)


def test_dbce_precomputed_map_equals_on_the_fly_and_reductions(synthetic_batch):
    logits, target = synthetic_batch(batch=3, seed=4)
    loss = DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=3)
    weight_map = torch.stack([torch.as_tensor(DilationWeightMap(3)(t.numpy())) for t in target])
    on_the_fly = loss(logits, target)
    assert loss(logits, target, weight_map=weight_map).item() == pytest.approx(on_the_fly.item(), rel=1e-6)
    none = DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=3, reduction="none")(logits, target)
    total = DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=3, reduction="sum")(logits, target)
    assert none.shape == (3, 1, 24, 20)
    assert none.sum(dim=(1, 2, 3)).mean().item() == pytest.approx(on_the_fly.item(), rel=1e-5)
    assert total.item() == pytest.approx(3 * on_the_fly.item(), rel=1e-5)


def _value_and_grad(loss, logits, target, **kwargs):
    x = logits.clone().requires_grad_(True)
    value = loss(x, target, **kwargs)
    value.sum().backward()
    return value.detach(), x.grad


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_index_path_matches_onehot_path_and_the_definition(reduction, synthetic_batch, onehot):
    # class indices with softmax skip the one-hot (log_softmax gathered; BalancedCELoss: torch's weighted CE): the
    # values and gradients equal the one-hot path's and the definition -sum_x w(x) log softmax(x)_y(x)
    logits, target = synthetic_batch(num_classes=4, seed=2)
    weight_map = torch.rand(2, 1, 24, 20, generator=torch.Generator().manual_seed(3))
    class_weight = torch.tensor([0.5, 1.0, 2.0, 4.0])
    frequency = target.numel() / torch.bincount(target.reshape(-1)).double()
    cases = [  # loss, its arguments, forward's extra arguments, the weight of each pixel, what "mean" divides by
        (DilatedBalancedCELoss, {"radius": 2}, {"weight_map": weight_map}, weight_map.double(), 2),
        (BalancedCELoss, {"weight": class_weight}, {}, class_weight.double()[target], target.numel()),
        (BalancedCELoss, {}, {}, frequency[target], target.numel()),
    ]
    for cls, args, call, weights, mean_over in cases:
        loss = cls(softmax=True, to_onehot_y=True, reduction=reduction, **args)
        index = _value_and_grad(loss, logits, target, **call)
        dense = _value_and_grad(cls(softmax=True, reduction=reduction, **args), logits, onehot(target, 4), **call)
        x = logits.double().clone().requires_grad_(True)
        definition = -torch.log_softmax(x, 1).gather(1, target) * weights
        if reduction != "none":
            definition = definition.sum() / (mean_over if reduction == "mean" else 1)
        definition.sum().backward()
        for value, grad in (index, dense):
            torch.testing.assert_close(value.double(), definition.detach(), rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(grad.double(), x.grad, rtol=1e-5, atol=1e-7)


def test_dbce_3d_and_binary_sigmoid():
    label = make_synthetic_pair((12, 10, 8), fg_fraction=0.1, seed=1)["label"]
    target = torch.as_tensor(label[None]).float()
    logits = torch.randn(1, 1, 12, 10, 8, requires_grad=True)
    loss = DilatedBalancedCELoss(sigmoid=True, radius=2)
    weight_map = torch.as_tensor(DilationWeightMap(2)(label))[None]
    value = loss(logits, target)
    assert value.item() == pytest.approx(loss(logits, target, weight_map=weight_map).item(), rel=1e-6)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    assert value.item() == pytest.approx((bce * weight_map).sum().item(), rel=1e-5)
    value.backward()
    assert torch.isfinite(logits.grad).all()


def test_include_background_false_drops_background_pixels(synthetic_batch):
    logits, target = synthetic_batch(seed=6)
    weight_map = torch.ones(2, 1, 24, 20)
    full = DilatedBalancedCELoss(softmax=True, to_onehot_y=True, reduction="none")(logits, target, weight_map)
    fg_only = DilatedBalancedCELoss(softmax=True, to_onehot_y=True, include_background=False, reduction="none")(
        logits, target, weight_map
    )
    background = target == 0
    assert torch.all(fg_only[background] == 0)
    torch.testing.assert_close(fg_only[~background], full[~background])


# ---------------------------------------------------------------------------------------------- balanced CE


def test_balanced_ce_batch_and_image_frequencies(synthetic_batch):
    logits, target = synthetic_batch(seed=8)
    ce = F.cross_entropy(logits, target[:, 0], reduction="none")
    counts = torch.bincount(target.reshape(-1), minlength=3).double()
    weights = target.numel() / counts
    expected = (ce.double() * weights[target[:, 0]]).mean().item()
    assert BalancedCELoss(softmax=True, to_onehot_y=True)(logits, target).item() == pytest.approx(expected, rel=1e-5)
    # per image: each image's own frequencies
    per_image = []
    for b in range(2):
        counts_b = torch.bincount(target[b].reshape(-1), minlength=3).double()
        per_image.append(ce[b].double() * (target[b].numel() / counts_b)[target[b, 0]])
    expected = torch.stack(per_image).mean()
    value = BalancedCELoss(softmax=True, to_onehot_y=True, batch=False)(logits, target)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)


def test_balanced_ce_given_weights_match_torch_and_absent_class(synthetic_batch):
    logits, target = synthetic_batch(seed=9)
    weight = torch.tensor([0.2, 1.5, 3.0])
    expected = F.cross_entropy(logits, target[:, 0], weight=weight, reduction="none").mean()
    loss = BalancedCELoss(softmax=True, to_onehot_y=True, weight=weight)
    assert loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(loss.state_dict()["class_weight"], weight)  # a buffer: saved and moved with the loss
    assert loss.double().class_weight.dtype == torch.float64
    # class 2 absent from the batch: weight 0, the two present classes get N / n_c
    target2 = target.clamp(max=1)
    ce = F.cross_entropy(logits, target2[:, 0], reduction="none").double()
    counts = torch.bincount(target2.reshape(-1), minlength=3).double()
    expected = (ce * (target2.numel() / counts)[target2[:, 0]]).mean()
    value = BalancedCELoss(softmax=True, to_onehot_y=True)(logits, target2)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="weight has 2 values"):
        BalancedCELoss(softmax=True, to_onehot_y=True, weight=[1.0, 2.0])(logits, target)


# ----------------------------------------------------------------------------------------- uncertainty CE


def test_uncertainty_ce_equals_mean_of_weighted_ce_and_precomputed_map(synthetic_batch):
    logits, target = synthetic_batch(seed=10)
    omega = [0.5, 2.0, 4.0]
    loss = UncertaintyWeightedCELoss(softmax=True, to_onehot_y=True, sigma=1.5, class_weights=omega)
    weight_map = torch.stack(
        [torch.as_tensor(UncertaintyWeightMap(1.5, omega)(t.numpy())) for t in target]
    )
    ce = F.cross_entropy(logits, target[:, 0], reduction="none").unsqueeze(1)
    value = loss(logits, target)
    assert value.item() == pytest.approx((ce * weight_map).mean().item(), rel=1e-5)
    assert loss(logits, target, weight_map=weight_map).item() == pytest.approx(value.item(), rel=1e-6)
    assert "class_weights" in loss.state_dict()
    with pytest.raises(ValueError, match="class_weights has 2 values"):
        UncertaintyWeightedCELoss(softmax=True, to_onehot_y=True, class_weights=[1, 1])(logits, target)


# ------------------------------------------------------------------------------------- edge cases and errors


def edge_case_targets():
    empty = torch.zeros(1, 1, 8, 8)
    full = torch.ones(1, 1, 8, 8)
    dot = torch.zeros(1, 1, 8, 8)
    dot[0, 0, 3, 4] = 1
    return {"all-background": empty, "all-foreground": full, "one-pixel": dot}


@pytest.mark.parametrize("name", ["all-background", "all-foreground", "one-pixel"])
@pytest.mark.parametrize(
    "loss",
    [
        DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=2),
        DilatedBalancedCELoss(sigmoid=True, radius=2),
        BalancedCELoss(softmax=True, to_onehot_y=True),
        UncertaintyWeightedCELoss(softmax=True, to_onehot_y=True, sigma=1.0, class_weights=[1.0, 5.0]),
    ],
    ids=["dbce-softmax", "dbce-sigmoid", "balanced", "uncertainty"],
)
def test_gradients_finite_and_nonzero_on_edge_cases(name, loss):
    target = edge_case_targets()[name]
    channels = 1 if loss.sigmoid else 2
    logits = torch.randn(1, channels, 8, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    value = loss(logits, target)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "loss",
    [
        DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=1),
        DilatedBalancedCELoss(sigmoid=True, radius=1),
        BalancedCELoss(softmax=True),
        BalancedCELoss(softmax=True, to_onehot_y=True),
        BalancedCELoss(softmax=True, to_onehot_y=True, batch=False),
        UncertaintyWeightedCELoss(softmax=True, to_onehot_y=True),
    ],
)
def test_nan_logits_give_nan_loss(loss):
    target = hand_target()
    if not loss.to_onehot_y and not loss.sigmoid:
        target = one_hot(target, 2)
    logits = torch.zeros(1, 1 if loss.sigmoid else 2, 5, 5)
    logits[0, 0, 0, 0] = float("nan")  # a pixel far from the object, with a small weight
    assert torch.isnan(loss(logits, target))


def test_bad_inputs_raise_clear_errors(synthetic_batch):
    logits, target = synthetic_batch()
    loss = DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=1)
    with pytest.raises(ValueError, match=r"weight_map must have shape \(2, 1, 24, 20\).*got \(2, 24, 20\)"):
        loss(logits, target, weight_map=torch.ones(2, 24, 20))
    with pytest.raises(ValueError, match="class values in"):
        loss(logits, target + 3)
    with pytest.raises(ValueError, match="different shape"):
        loss(logits, target[..., :10])
    with pytest.raises(ValueError, match="radius"):
        DilatedBalancedCELoss(radius=-2)
    with pytest.raises(ValueError, match="sigma"):
        UncertaintyWeightedCELoss(sigma=0.0)
    with pytest.raises(ValueError, match="Incompatible values"):
        DilatedBalancedCELoss(sigmoid=True, softmax=True)
    with pytest.raises(ValueError, match="Unsupported reduction"):
        BalancedCELoss(reduction="median")
    with pytest.raises(ValueError, match=r"ground truth has different shape"):
        BalancedCELoss(softmax=True)(logits, one_hot(target, 3)[:, :2])


# ------------------------------------------------------------------------------------------------ the base class


class _DistanceToTopWeightedCE(PixelWeightedCELoss):
    """A new weight-map loss in one subclass: weight ``1 + row index`` (any deterministic map of the labels)."""

    def compute_weight_map(self, labels):
        rows = torch.arange(labels.shape[2], dtype=torch.float32, device=labels.device)
        return (1.0 + rows).view(1, 1, -1, 1).expand(labels.shape[0], 1, -1, labels.shape[3])


def test_a_subclass_only_defines_its_map(synthetic_batch):
    logits, target = synthetic_batch(seed=11)
    loss = _DistanceToTopWeightedCE(softmax=True, to_onehot_y=True)
    rows = torch.arange(1.0, 25.0).view(1, 1, -1, 1)
    expected = (F.cross_entropy(logits, target[:, 0], reduction="none").unsqueeze(1) * rows).mean()
    assert loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-5)
    given = torch.ones(2, 1, 24, 20)  # a given map wins over the computed one
    plain = F.cross_entropy(logits, target[:, 0])
    assert loss(logits, target, weight_map=given).item() == pytest.approx(plain.item(), rel=1e-5)
    with pytest.raises(NotImplementedError, match="compute_weight_map"):
        PixelWeightedCELoss(softmax=True, to_onehot_y=True)(logits, target)


@pytest.mark.parametrize(
    "loss",
    [
        DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=2),
        BalancedCELoss(softmax=True, to_onehot_y=True, batch=False),
        UncertaintyWeightedCELoss(sigmoid=True, sigma=1.5),
    ],
    ids=["dbce", "balanced-per-image", "uncertainty-sigmoid"],
)
def test_metatensor_and_tensor_inputs_give_the_same_loss(loss, synthetic_batch):
    logits, target = synthetic_batch(num_classes=2, seed=12)
    if loss.sigmoid:
        logits = logits[:, 1:]
    expected = loss(logits, target)
    value = loss(MetaTensor(logits), MetaTensor(target.float()))
    assert not isinstance(value, MetaTensor)
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)


# ----------------------------------------------------------------------------------- U-Net border-weighted CE


def test_border_weighted_ce_is_the_mean_of_map_times_ce():
    from monai_imbalance.losses import BorderWeightedCELoss, PixelWeightedCELoss
    from monai_imbalance.transforms import BorderWeightMap

    target = torch.zeros(2, 1, 12, 12)
    target[0, 0, 2:5, 2:5] = 1
    target[0, 0, 2:5, 7:10] = 2  # two objects of different classes, 2 px apart
    target[1, 0, 6, 6] = 1
    logits = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    loss = BorderWeightedCELoss(softmax=True, to_onehot_y=True, w0=10.0, sigma=5.0)
    maps = torch.stack([torch.as_tensor(BorderWeightMap(w0=10.0, sigma=5.0)(t.numpy())) for t in target])
    ce = -torch.log_softmax(logits, 1).gather(1, target.long())
    assert loss(logits, target).item() == pytest.approx((maps * ce).mean().item(), rel=1e-6)
    # the same as the family's base with the map given (what the bundles pass as weight_map)
    given = PixelWeightedCELoss(softmax=True, to_onehot_y=True)(logits, target, weight_map=maps)
    assert loss(logits, target, weight_map=maps).item() == pytest.approx(given.item(), rel=1e-6)
    # between the two objects of image 0 the border term is large; image 1 (one object) has none
    assert maps[0, 0, 3, 6] > 5 and torch.allclose(maps[1], BorderWeightMap(w0=0.0)(target[1]))
    with pytest.raises(ValueError, match="sigma"):
        BorderWeightedCELoss(sigma=0)


def test_border_ce_setup_builds_its_map_from_the_loss():
    from monai_imbalance.engines import SegmentationSetup
    from monai_imbalance.transforms import BorderWeightMapd

    setup = SegmentationSetup(loss="border_ce", crop="random", out_channels=2, roi_size=(16, 16),
                              loss_params={"border_ce": {"w0": 5.0, "sigma": 3.0}})
    (transform,) = setup.map_transforms
    assert isinstance(transform, BorderWeightMapd) and setup.loss_inputs == {"weight_map": "label_weight"}
    assert (transform.transform.w0, transform.transform.sigma) == (5.0, 3.0) == (setup.loss.w0, setup.loss.sigma)
    label = torch.zeros(1, 16, 16)
    label[0, 2:5, 2:5] = 1
    label[0, 2:5, 8:12] = 1
    d = transform({"label": label})
    logits = torch.randn(1, 2, 16, 16)
    direct = setup.loss(logits, label[None])
    assert setup.loss(logits, label[None], weight_map=d["label_weight"][None]).item() == pytest.approx(direct.item())
